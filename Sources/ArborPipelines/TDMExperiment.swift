import ArborEval
import ArborInference
import ArborData
import ArborMath
import ArborModels
import ArborNN
import ArborRetrieval
import ArborTree
import Foundation

/// Settings of a TDM comparison run (see ``TDMExperiment/run(data:config:log:)``).
public struct TDMExperimentConfig: Sendable {
    /// Embedding width (TDM: 24).
    public var dimension: Int
    /// DNN / output MLP hidden widths (TDM: 128, 64, 24).
    public var hidden: [Int]
    /// Attention unit hidden width.
    public var attentionHidden: Int
    /// Behaviours per user for the inner-product and DNN models.
    public var maxHistory: Int
    /// Behaviours per user for the attention model (its training cost grows with it).
    public var attentionMaxHistory: Int
    /// The attention model adds a learnt recency embedding to each behaviour
    /// (``TDMModelConfig/recencyEmbedding``). Default false.
    public var recencyEmbedding: Bool = false
    /// Training settings (shared by the three models).
    public var training: TDMTrainingConfig
    /// Tree-learning rounds (1 = train on the initial tree only).
    public var treeRounds: Int
    /// Beam width of evaluation and validation.
    public var beamWidth: Int
    /// Validation users used per epoch (the first ones).
    public var validationUsers: Int
    /// Seed of models, initial tree and training.
    public var seed: UInt64
    /// When true and the product-DNN is trained first (it is listed before them in ``kinds``), the
    /// DNN and attention-DNN start from its learnt tree, node embeddings and behaviour embeddings
    /// instead of the category-ordered tree with random embeddings; their scorer weights still
    /// start at random. Default false (every model from the initial tree, as TDM's comparison).
    public var warmStartFromProduct: Bool = false
    /// The scorers to train (default: all three).
    public var kinds: [TDMScorerKind]
    /// The tree rebuild between rounds (TDM re-clustering or JTM re-assignment).
    public var rebuild: TDMTreeRebuild
    /// The flat product-DNN baseline: a two-tower (YouTube-DNN: mean-pooled behaviours, sampled
    /// softmax) trained on the same training users, early-stopped on the same validation users,
    /// scanned exactly; `nil` leaves it out. Its training seed is set from ``seed``. Default: the
    /// two-tower's hold-out defaults (d = 64, last 10 behaviours, recall@50 validation).
    public var twoTower: TwoTowerExperimentOptions? = TwoTowerExperimentOptions(protocol: .userHoldOut)

    /// Defaults sized for ML-100K on two shared cores.
    public init(dimension: Int = 24, hidden: [Int] = [128, 64, 24], attentionHidden: Int = 36, maxHistory: Int = 50,
                attentionMaxHistory: Int = 20, training: TDMTrainingConfig = .init(), treeRounds: Int = 2,
                beamWidth: Int = 100, validationUsers: Int = 200, seed: UInt64 = 0,
                kinds: [TDMScorerKind] = TDMScorerKind.allCases, rebuild: TDMTreeRebuild = .recluster) {
        self.rebuild = rebuild
        self.dimension = dimension
        self.hidden = hidden
        self.attentionHidden = attentionHidden
        self.maxHistory = maxHistory
        self.attentionMaxHistory = attentionMaxHistory
        self.training = training
        self.treeRounds = treeRounds
        self.beamWidth = beamWidth
        self.validationUsers = validationUsers
        self.seed = seed
        self.kinds = kinds
    }
}

/// The outcome of one TDM comparison run.
public struct TDMExperimentReport {
    /// Data set name.
    public var data: String
    /// Seed of the run.
    public var seed: UInt64
    /// Test-user quality per method.
    public var results: [TDMMethodResult]
    /// Per-level recall of the attention model's beam against its brute-force top-50 (levels 1…depth).
    public var levelRecall: [Double]
    /// Tree-learning rounds per scorer kind.
    public var rounds: [TDMScorerKind: [TDMTreeRound]]
    /// Training wall time per scorer kind, seconds.
    public var trainSeconds: [TDMScorerKind: Double]
    /// The trained models (for export).
    public var models: [TDMScorerKind: TDMModel]
    /// How each model was trained, for its index (``TDMModel/writeIndex(to:writer:provenance:)``);
    /// the data set's path is left for the caller to set.
    public var provenance: [TDMScorerKind: TrainingProvenance] = [:]

    /// The result named `method`, if present.
    public func result(_ method: String) -> TDMMethodResult? { results.first { $0.method == method } }
}

/// Method names used in reports.
public enum TDMMethodName {
    /// Beam search over the learnt tree with the product-DNN.
    public static let treeProduct = "tree + product-DNN"
    /// Beam search with the DNN.
    public static let treeDNN = "tree + DNN"
    /// Beam search with the attention-DNN.
    public static let treeAttention = "tree + attention-DNN"
    /// The attention-DNN scoring every item.
    public static let bruteAttention = "brute force attention-DNN"
    /// The DNN scoring every item.
    public static let bruteDNN = "brute force DNN"
    /// Exact inner-product scan over a two-tower's item vectors (the YouTube product-DNN, trained
    /// with sampled softmax on the same users): the baseline TDM's +21% is measured against.
    public static let flatTwoTower = "flat product-DNN: two-tower (exact IP)"
    /// Exact inner-product scan over the TDM-trained product model's leaf embeddings.
    public static let flatProduct = "flat TDM product model (exact IP)"
    /// Most popular items.
    public static let popularity = "popularity"
    /// Bayes-optimal ranking from the planted interests (synthetic data only).
    public static let oracle = "oracle (true interests)"

    static func tree(_ kind: TDMScorerKind) -> String {
        switch kind { case .innerProduct: treeProduct; case .dnn: treeDNN; case .attention: treeAttention }
    }
}

/// Runs TDM's comparison: product-DNN, DNN and attention-DNN trained with their trees (with tree
/// learning), evaluated by beam search, against brute force with the same model, the flat exact
/// inner product with the product-DNN's item embeddings, and popularity.
public enum TDMExperiment {
    /// One run on `data`. Summary lines (epochs, rounds, results) go to `log`; the samples of each
    /// training epoch to `progress`. `cancellation` is checked between training batches: the run
    /// then stops with `CancellationError` (no report; nothing is written by the run itself).
    /// - Throws: training and data errors, `CancellationError`.
    public static func run(data: TDMExperimentData, config: TDMExperimentConfig,
                           progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil,
                           log: @escaping (String) -> Void = { _ in }) throws -> TDMExperimentReport {
        var results: [TDMMethodResult] = []
        var rounds: [TDMScorerKind: [TDMTreeRound]] = [:]
        var seconds: [TDMScorerKind: Double] = [:]
        var models: [TDMScorerKind: TDMModel] = [:]
        var levelRecall: [Double] = []
        var provenance: [TDMScorerKind: TrainingProvenance] = [:]
        // Fail before any training rather than after it: both sets drive the run.
        guard !data.test.isEmpty else { throw ArborError.empty(what: "test users (hold out more users or use a larger log)") }
        guard !data.validation.isEmpty else { throw ArborError.empty(what: "validation users (early stopping needs them)") }
        if let options = config.twoTower {
            results.append(try twoTowerBaseline(data: data, options: options, seed: config.seed, log: log))
        }
        let validate = TDMEvaluation.beamRecallValidator(users: data.validation, k: 50, beamWidth: config.beamWidth,
                                                         maxUsers: config.validationUsers)
        for kind in config.kinds {
            let history = kind == .attention ? config.attentionMaxHistory : config.maxHistory
            let warm = config.warmStartFromProduct && kind != .innerProduct ? models[.innerProduct] : nil
            let model = try initialModel(kind: kind, data: data, config: config, warmStart: warm)
            if warm != nil { log("  [\(kind.rawValue)] warm start: the product-DNN's learnt tree and embeddings") }
            var training = config.training
            training.seed = SplitMix64.derive(config.seed, UInt64(TDMScorerKind.allCases.firstIndex(of: kind)!))
            let start = ContinuousClock.now
            let samples = data.samples(maxHistory: history)
            var base = TrainingProvenance(tdm: model, training: training,
                                          dataset: data.provenanceDataset(trainSamples: samples.count),
                                          protocolName: data.protocolName)
            base.initialization = warm != nil ? "warm start: the product-DNN's learnt tree, node and behaviour embeddings"
                : "initial tree (category order), random embeddings"
            training.provenance = base
            let report = try TDMTreeLearning.run(
                model: model, samples: samples, trainer: TDMTrainer(config: training),
                config: .init(maxRounds: config.treeRounds, build: .init(fanOut: 2, seed: config.seed), rebuild: config.rebuild),
                validate: { m in
                    let v = try validate(m)
                    log("  [\(kind.rawValue)] validation recall@50 = \(String(format: "%.4f", v))")
                    return v
                },
                progress: PrefixedProgress(prefix: "  [\(kind.rawValue)]", inner: progress), cancellation: cancellation)
            let elapsed = start.duration(to: .now).components
            seconds[kind] = Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
            rounds[kind] = report.rounds
            provenance[kind] = base.finished(treeLearning: report, seconds: seconds[kind]!)
            for r in report.rounds {
                let epochs = r.training.epochs.map {
                    String(format: "e%d loss %.3f %.0f samples/s val %.4f", $0.epoch, $0.loss, $0.samplesPerSecond, $0.validation ?? -1)
                }
                log("[\(kind.rawValue)] round \(r.round): best val \(String(format: "%.4f", r.validation)); " + epochs.joined(separator: "; "))
            }
            log("[\(kind.rawValue)] best round \(report.bestRound), \(Int(seconds[kind]!)) s")
            models[kind] = model
            results.append(try TDMEvaluation.evaluate(method: TDMMethodName.tree(kind), users: data.test,
                                                      retrieve: TDMEvaluation.retriever(model: model, beamWidth: config.beamWidth)))
            switch kind {
            case .attention:
                results.append(try TDMEvaluation.evaluate(
                    method: TDMMethodName.bruteAttention, users: data.test,
                    retrieve: TDMEvaluation.retriever(model: model, beamWidth: config.beamWidth, bruteForce: true)))
                levelRecall = try TDMBeamDiagnostics.meanLevelRecall(model: model, users: data.test, k: 50,
                                                                    beamWidth: config.beamWidth)
            case .dnn:
                results.append(try TDMEvaluation.evaluate(
                    method: TDMMethodName.bruteDNN, users: data.test,
                    retrieve: TDMEvaluation.retriever(model: model, beamWidth: config.beamWidth, bruteForce: true)))
            case .innerProduct:
                results.append(try TDMEvaluation.evaluate(method: TDMMethodName.flatProduct, users: data.test,
                                                          retrieve: TDMEvaluation.flatRetriever(model: model)))
            }
            log(results.suffix(2).map { String(format: "%@: R@10 %.4f R@50 %.4f", $0.method, $0.recall10, $0.recall50) }
                .joined(separator: " | "))
        }
        results.append(try TDMEvaluation.evaluate(method: TDMMethodName.popularity, users: data.test,
                                                  retrieve: TDMEvaluation.popularityRetriever(popularity: data.popularity)))
        return TDMExperimentReport(data: data.name, seed: config.seed, results: results, levelRecall: levelRecall,
                                   rounds: rounds, trainSeconds: seconds, models: models, provenance: provenance)
    }

    /// The flat product-DNN baseline: a two-tower trained (seed `seed`) on `data`'s training users,
    /// early-stopped on its validation users, and its exact flat scan evaluated on its test users.
    /// - Throws: ``TwoTowerError`` from training.
    static func twoTowerBaseline(data: TDMExperimentData, options: TwoTowerExperimentOptions, seed: UInt64,
                                 log: @escaping (String) -> Void) throws -> TDMMethodResult {
        var options = options
        options.training.seed = seed
        let twoTowerData = try TwoTowerData(tdm: data)
        let trained = try TwoTowerExperiment.train(data: twoTowerData, options: options) { e in
            log(String(format: "  [two-tower] e%d loss %.3f %.0f samples/s val %.4f", e.epoch, e.meanLoss, e.samplesPerSecond,
                       e.validation ?? -1))
        }
        log(String(format: "[two-tower] best epoch %d of %d, %.0f s", trained.report.bestEpoch, trained.report.epochs.count,
                   trained.report.wallSeconds))
        let flat = try TDMEvaluation.evaluate(
            method: TDMMethodName.flatTwoTower, users: data.test,
            retrieve: TDMEvaluation.flatRetriever(twoTower: trained.encoder, items: trained.itemVectors,
                                                  ids: twoTowerData.catalog.ids))
        log(String(format: "%@: R@10 %.4f R@50 %.4f", flat.method, flat.recall10, flat.recall50))
        return flat
    }

    /// The untrained model of `kind` a run starts from: on `data`'s initial (category-ordered)
    /// tree with random embeddings, or, with `warmStart`, on that model's learnt tree with its node
    /// and behaviour embeddings (scorer weights random either way).
    /// - Throws: ``ArborError`` when `warmStart` has another dimension or vocabulary.
    public static func initialModel(kind: TDMScorerKind, data: TDMExperimentData, config: TDMExperimentConfig,
                                    warmStart: TDMModel? = nil) throws -> TDMModel {
        let history = kind == .attention ? config.attentionMaxHistory : config.maxHistory
        let tree = try warmStart?.layout() ?? data.initialTree(dimension: config.dimension, seed: config.seed)
        let model = try TDMModel(
            config: .init(kind: kind, dimension: config.dimension, hidden: config.hidden,
                          attentionHidden: config.attentionHidden, maxHistory: history,
                          recencyEmbedding: kind == .attention && config.recencyEmbedding, seed: config.seed),
            tree: tree, items: data.items)
        if let warmStart {
            guard warmStart.items == data.items else {
                throw ArborError.invalidArgument(name: "warm start", reason: "the model's behaviour vocabulary is not the data set's")
            }
            try model.behaviour.table.assign(warmStart.behaviour.table.value)
        }
        return model
    }

    /// A Markdown table of several runs (seeds): mean ± standard deviation per method, then the
    /// ratios the targets name and the per-level beam recall.
    public static func markdown(_ reports: [TDMExperimentReport]) -> String {
        guard let first = reports.first else { return "" }
        func stats(_ xs: [Double]) -> (Double, Double) {
            let m = xs.reduce(0, +) / Double(max(1, xs.count))
            let v = xs.count > 1 ? xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(xs.count - 1) : 0
            return (m, v.squareRoot())
        }
        func fmt(_ xs: [Double]) -> String {
            let (m, s) = stats(xs)
            return reports.count > 1 ? String(format: "%.4f ± %.4f", m, s) : String(format: "%.4f", m)
        }
        var out = "### \(first.data): \(reports.count) seed(s) (\(reports.map { String($0.seed) }.joined(separator: ", ")))\n\n"
        out += "| method | recall@10 | recall@50 | precision@10 | hit rate@10 | hit rate@50 | model evals/query |\n"
        out += "|---|---|---|---|---|---|---|\n"
        for r in first.results {
            let rows = reports.compactMap { $0.result(r.method) }
            out += "| \(r.method) | \(fmt(rows.map(\.recall10))) | \(fmt(rows.map(\.recall50))) | \(fmt(rows.map(\.precision10))) | "
                + "\(fmt(rows.map(\.hitRate10))) | \(fmt(rows.map(\.hitRate50))) | "
                + String(format: "%.0f", stats(rows.map(\.evaluationsPerQuery)).0) + " |\n"
        }
        func ratio(_ a: String, _ b: String, _ k: KeyPath<TDMMethodResult, Double>) -> String? {
            let xs = reports.compactMap { r -> Double? in
                guard let x = r.result(a)?[keyPath: k], let y = r.result(b)?[keyPath: k], y > 0 else { return nil }
                return x / y
            }
            return xs.isEmpty ? nil : fmt(xs)
        }
        out += "\n"
        for (baseline, name) in [(TDMMethodName.flatTwoTower, "flat product-DNN (two-tower)"),
                                 (TDMMethodName.flatProduct, "flat TDM product model")] {
            if let r10 = ratio(TDMMethodName.treeAttention, baseline, \.recall10),
               let r50 = ratio(TDMMethodName.treeAttention, baseline, \.recall50) {
                out += "- tree + attention-DNN / \(name): recall@10 \(r10), recall@50 \(r50)\n"
            }
        }
        if let r = ratio(TDMMethodName.treeAttention, TDMMethodName.bruteAttention, \.recall10) {
            out += "- beam / brute force (attention-DNN), recall@10: \(r)\n"
        }
        if let r = ratio(TDMMethodName.treeAttention, TDMMethodName.bruteAttention, \.recall50) {
            out += "- beam / brute force (attention-DNN), recall@50: \(r)\n"
        }
        if let r = ratio(TDMMethodName.treeDNN, TDMMethodName.bruteDNN, \.recall50) {
            out += "- beam / brute force (DNN), recall@50: \(r)\n"
        }
        if let r = ratio(TDMMethodName.treeAttention, TDMMethodName.oracle, \.recall50) {
            out += "- tree + attention-DNN / oracle, recall@50: \(r)\n"
        }
        let levels = first.levelRecall.indices.map { i in reports.compactMap { i < $0.levelRecall.count ? $0.levelRecall[i] : nil } }
        if !levels.isEmpty {
            out += "- attention-DNN beam vs brute-force top-50, recall per level 1…\(levels.count): "
                + levels.map { String(format: "%.3f", stats($0).0) }.joined(separator: ", ") + "\n"
        }
        for kind in TDMScorerKind.allCases {
            let rs = reports.compactMap { $0.rounds[kind] }
            guard !rs.isEmpty else { continue }
            let desc = rs.map { rounds in rounds.map { String(format: "%.4f", $0.validation) }.joined(separator: " → ") }
            let secs = reports.compactMap { $0.trainSeconds[kind] }
            out += "- \(kind.rawValue): validation recall@50 per tree round \(desc.joined(separator: " / ")); train "
                + String(format: "%.0f s", stats(secs).0) + "\n"
        }
        return out
    }
}


// MARK: - Synthetic multi-interest users

extension TDMExperimentData {
    /// Synthetic users with planted interests under the same hold-out protocol (items = catalogue
    /// indices as ids, categories = planted categories).
    /// - Throws: ``DataError`` from the split.
    public static func synthetic(catalog: SyntheticCatalog, users: SyntheticUsers, test: HoldOutSize = .fraction(0.1),
                                 validation: HoldOutSize = .fraction(0.1), seed: UInt64 = 0) throws -> TDMExperimentData {
        var data = try holdOut(name: "synthetic", log: users.interactionLog(catalog: catalog), test: test,
                               validation: validation, seed: seed)
        // Every catalogue item is retrievable, including those nobody interacted with.
        data.items = (0..<catalog.itemCount).map { ItemID(UInt64($0)) }
        data.categories = catalog.categories
        return data
    }
}

extension TDMEvaluation {
    /// The oracle of the synthetic generator: items ranked by their true probability under the
    /// user's planted interests, weights and within-category popularity (exploration spread
    /// uniformly), the user's history excluded. Users are the generator's (id = index).
    public static func syntheticOracle(catalog: SyntheticCatalog, users: SyntheticUsers, k: Int = 50)
        -> (HeldOutUser) -> (items: [ItemID], evaluations: Int) {
        let config = users.config
        return { user in
            let u = Int(user.user)
            var p = [Double](repeating: config.explorationRate / Double(catalog.itemCount), count: catalog.itemCount)
            let exponent = 1 / config.popularityExponent
            for (c, w) in zip(users.interests(of: u), users.interestWeights(of: u)) {
                let members = catalog.items(inCategory: Int(c))
                let size = Double(members.count)
                for (r, item) in members.enumerated() {
                    let share = pow(Double(r + 1) / size, exponent) - pow(Double(r) / size, exponent)
                    p[Int(item)] += (1 - config.explorationRate) * Double(w) * share
                }
            }
            let seen = Set(user.history)
            let ranked = p.indices.filter { !seen.contains(ItemID(UInt64($0))) }
                .sorted { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }
            return (ranked.prefix(k).map { ItemID(UInt64($0)) }, catalog.itemCount)
        }
    }
}
