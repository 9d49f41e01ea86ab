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
    /// How each scorer is trained (default: TDM only); every kind is trained once per method.
    public var methods: [TDMTrainingMethod] = [.tdm]
    /// OTM: beam width of the training beam search (>= 1; clamped to the widest level).
    public var otmBeamWidth: Int = 10
    /// OTM: TDM's random-negative rows are trained beside the beam-aware rows. Default true: nodes
    /// the training beam never visits otherwise never train, and evaluation's wider beam reaches them.
    public var otmRandomNegatives: Bool = true
    /// OTM: the target set of each training sample is its target and the next this many items of
    /// the user's sequence (0: the target alone). Held-out users are scored on all their later
    /// items, so a set of later items matches what evaluation asks for.
    public var otmFutureWindow: Int = 0
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
    /// The trained models of TDM (for export).
    public var models: [TDMScorerKind: TDMModel]
    /// How each model was trained, for its index (``TDMModel/writeIndex(to:writer:provenance:)``);
    /// the data set's path is left for the caller to set.
    public var provenance: [TDMScorerKind: TrainingProvenance] = [:]
    /// Every trained model, by method and kind (``models`` is the TDM entry).
    public var methodModels: [TDMTrainingMethod: [TDMScorerKind: TDMModel]] = [:]
    /// Provenance by method and kind (``provenance`` is the TDM entry).
    public var methodProvenance: [TDMTrainingMethod: [TDMScorerKind: TrainingProvenance]] = [:]
    /// Training cost by method and kind: wall seconds (rounds, validation and tree rebuilds
    /// included) and training samples per second (epochs' samples over their training time).
    public var cost: [TDMTrainingMethod: [TDMScorerKind: (seconds: Double, samplesPerSecond: Double)]] = [:]

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

    /// Beam search with `kind` trained by `method`.
    public static func tree(_ kind: TDMScorerKind, _ method: TDMTrainingMethod) -> String { method.rowPrefix + tree(kind) }

    /// The same model scoring every item (for the product model: its leaves scanned flat).
    public static func bruteForce(_ kind: TDMScorerKind, _ method: TDMTrainingMethod) -> String {
        switch kind {
        case .innerProduct: method.rowPrefix + flatProduct
        case .dnn: method.rowPrefix + bruteDNN
        case .attention: method.rowPrefix + bruteAttention
        }
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
        var methodModels: [TDMTrainingMethod: [TDMScorerKind: TDMModel]] = [:]
        var methodProvenance: [TDMTrainingMethod: [TDMScorerKind: TrainingProvenance]] = [:]
        var cost: [TDMTrainingMethod: [TDMScorerKind: (seconds: Double, samplesPerSecond: Double)]] = [:]
        for method in config.methods {
          for kind in config.kinds {
            let trained = try trainModel(kind: kind, data: data, config: config, method: method,
                                         warmStart: methodModels[method]?[.innerProduct],
                                         validate: validate, progress: progress, cancellation: cancellation, log: log)
            let model = trained.model
            let epochs = trained.report.rounds.flatMap(\.training.epochs)
            let samples = epochs.reduce(0.0) { $0 + Double($1.samples) }
            let busy = epochs.reduce(0.0) { $0 + Double($1.samples) / max(1e-9, $1.samplesPerSecond) }
            cost[method, default: [:]][kind] = (trained.seconds, samples / max(1e-9, busy))
            methodModels[method, default: [:]][kind] = model
            methodProvenance[method, default: [:]][kind] = trained.provenance
            if method == .tdm {
                seconds[kind] = trained.seconds
                rounds[kind] = trained.report.rounds
                provenance[kind] = trained.provenance
                models[kind] = model
            }
            results.append(try TDMEvaluation.evaluate(method: TDMMethodName.tree(kind, method), users: data.test,
                                                      retrieve: TDMEvaluation.retriever(model: model, beamWidth: config.beamWidth)))
            switch kind {
            case .attention, .dnn:
                results.append(try TDMEvaluation.evaluate(
                    method: TDMMethodName.bruteForce(kind, method), users: data.test,
                    retrieve: TDMEvaluation.retriever(model: model, beamWidth: config.beamWidth, bruteForce: true)))
                if kind == .attention, method == .tdm {
                    levelRecall = try TDMBeamDiagnostics.meanLevelRecall(model: model, users: data.test, k: 50,
                                                                        beamWidth: config.beamWidth)
                }
            case .innerProduct:
                results.append(try TDMEvaluation.evaluate(method: TDMMethodName.bruteForce(kind, method), users: data.test,
                                                          retrieve: TDMEvaluation.flatRetriever(model: model)))
            }
            log(results.suffix(2).map { String(format: "%@: R@10 %.4f R@50 %.4f", $0.method, $0.recall10, $0.recall50) }
                .joined(separator: " | "))
          }
        }
        results.append(try TDMEvaluation.evaluate(method: TDMMethodName.popularity, users: data.test,
                                                  retrieve: TDMEvaluation.popularityRetriever(popularity: data.popularity)))
        return TDMExperimentReport(data: data.name, seed: config.seed, results: results, levelRecall: levelRecall,
                                   rounds: rounds, trainSeconds: seconds, models: models, provenance: provenance,
                                   methodModels: methodModels, methodProvenance: methodProvenance, cost: cost)
    }

    /// One model of `kind` trained with its tree on `data` (``TDMTreeLearning``: train, rebuild the
    /// tree, train again while `validate` rises, the best round kept), as ``run(data:config:progress:cancellation:log:)``
    /// trains each of its kinds. With ``TDMExperimentConfig/warmStartFromProduct`` and a
    /// `warmStart` product model, a DNN or attention-DNN starts from its tree and embeddings.
    /// - Returns: the trained model, the tree-learning report, the wall time in seconds and the
    ///   provenance for its index (the data set's path left for the caller).
    /// - Throws: training and data errors, `CancellationError`.
    public static func trainModel(
        kind: TDMScorerKind, data: TDMExperimentData, config: TDMExperimentConfig, method: TDMTrainingMethod = .tdm,
        warmStart product: TDMModel? = nil,
        validate: @escaping (TDMModel) throws -> Double, progress: some ProgressReporter = SilentProgress(),
        cancellation: CancellationFlag? = nil, log: @escaping (String) -> Void = { _ in }
    ) throws -> (model: TDMModel, report: TDMTreeLearningReport, seconds: Double, provenance: TrainingProvenance) {
        let history = kind == .attention ? config.attentionMaxHistory : config.maxHistory
        let warm = config.warmStartFromProduct && kind != .innerProduct ? product : nil
        let tag = method == .tdm ? kind.rawValue : "\(method.rawValue) \(kind.rawValue)"
        let model = try initialModel(kind: kind, data: data, config: config, warmStart: warm,
                                     hierarchical: method.hierarchical(kind))
        if warm != nil { log("  [\(tag)] warm start: the product-DNN's learnt tree and embeddings") }
        var training = config.training
        var rebuild = config.rebuild
        switch method {
        case .tdm: break
        case .jtm: rebuild = .reassign(.init())
        case .otm: training.targets = .beamAware(beamWidth: config.otmBeamWidth, randomNegatives: config.otmRandomNegatives)
        }
        training.seed = SplitMix64.derive(config.seed, UInt64(TDMScorerKind.allCases.firstIndex(of: kind)!))
        let start = ContinuousClock.now
        let samples = method == .otm && config.otmFutureWindow > 0
            ? TDMSample.slidingWindow(sequences: data.sequences, maxHistory: history, futureWindow: config.otmFutureWindow)
            : data.samples(maxHistory: history)
        var base = TrainingProvenance(tdm: model, training: training,
                                      dataset: data.provenanceDataset(trainSamples: samples.count),
                                      protocolName: data.protocolName)
        base.initialization = warm != nil ? "warm start: the product-DNN's learnt tree, node and behaviour embeddings"
            : "initial tree (category order), random embeddings"
        training.provenance = base
        let report = try TDMTreeLearning.run(
            model: model, samples: samples, trainer: TDMTrainer(config: training),
            config: .init(maxRounds: config.treeRounds, build: .init(fanOut: 2, seed: config.seed), rebuild: rebuild),
            validate: { m in
                let v = try validate(m)
                log("  [\(tag)] validation recall@50 = \(String(format: "%.4f", v))")
                return v
            },
            progress: PrefixedProgress(prefix: "  [\(tag)]", inner: progress), cancellation: cancellation)
        let elapsed = start.duration(to: .now).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
        for r in report.rounds {
            let epochs = r.training.epochs.map {
                String(format: "e%d loss %.3f %.0f samples/s val %.4f", $0.epoch, $0.loss, $0.samplesPerSecond, $0.validation ?? -1)
            }
            log("[\(tag)] round \(r.round): best val \(String(format: "%.4f", r.validation)); " + epochs.joined(separator: "; "))
        }
        log("[\(tag)] best round \(report.bestRound), \(Int(seconds)) s")
        return (model, report, seconds, base.finished(treeLearning: report, seconds: seconds))
    }

    /// The flat product-DNN baseline: a two-tower trained (seed `seed`) on `data`'s training users,
    /// early-stopped on its validation users, and its exact flat scan evaluated on its test users.
    /// - Throws: ``TwoTowerError`` from training.
    static func twoTowerBaseline(data: TDMExperimentData, options: TwoTowerExperimentOptions, seed: UInt64,
                                 log: @escaping (String) -> Void) throws -> TDMMethodResult {
        let (trained, _) = try trainTwoTower(data: data, options: options, seed: seed, log: log)
        let flat = try TDMEvaluation.evaluate(
            method: TDMMethodName.flatTwoTower, users: data.test,
            retrieve: TDMEvaluation.flatRetriever(twoTower: trained.encoder, items: trained.itemVectors,
                                                  ids: trained.ids))
        log(String(format: "%@: R@10 %.4f R@50 %.4f", flat.method, flat.recall10, flat.recall50))
        return flat
    }

    /// A two-tower (the flat product-DNN baseline) trained with `options` and seed `seed` on
    /// `data`'s training users, early-stopped on its validation users; also returns `data` in the
    /// two-tower's form (its catalogue orders the item vectors).
    /// - Throws: ``TwoTowerError`` from training, `CancellationError`.
    public static func trainTwoTower(
        data: TDMExperimentData, options: TwoTowerExperimentOptions, seed: UInt64,
        progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil,
        log: @escaping (String) -> Void = { _ in }
    ) throws -> (trained: TwoTowerExperiment.Trained, data: TwoTowerData) {
        var options = options
        options.training.seed = seed
        let twoTowerData = try TwoTowerData(tdm: data)
        let trained = try TwoTowerExperiment.train(data: twoTowerData, options: options, progress: progress,
                                                   cancellation: cancellation) { e in
            log(String(format: "  [two-tower] e%d loss %.3f %.0f samples/s val %.4f", e.epoch, e.meanLoss, e.samplesPerSecond,
                       e.validation ?? -1))
        }
        log(String(format: "[two-tower] best epoch %d of %d, %.0f s", trained.report.bestEpoch, trained.report.epochs.count,
                   trained.report.wallSeconds))
        return (trained, twoTowerData)
    }

    /// The untrained model of `kind` a run starts from: on `data`'s initial (category-ordered)
    /// tree with random embeddings, or, with `warmStart`, on that model's learnt tree with its node
    /// and behaviour embeddings (scorer weights random either way).
    /// - Throws: ``ArborError`` when `warmStart` has another dimension or vocabulary.
    ///   With `hierarchical`, the DNN or attention-DNN uses JTM's hierarchical user features.
    public static func initialModel(kind: TDMScorerKind, data: TDMExperimentData, config: TDMExperimentConfig,
                                    warmStart: TDMModel? = nil, hierarchical: Bool = false) throws -> TDMModel {
        let history = kind == .attention ? config.attentionMaxHistory : config.maxHistory
        let tree = try warmStart?.layout() ?? data.initialTree(dimension: config.dimension, seed: config.seed)
        let model = try TDMModel(
            config: .init(kind: kind, dimension: config.dimension, hidden: config.hidden,
                          attentionHidden: config.attentionHidden, maxHistory: history,
                          recencyEmbedding: kind == .attention && config.recencyEmbedding,
                          hierarchicalFeatures: hierarchical, seed: config.seed),
            tree: tree, items: data.items)
        if let warmStart {
            guard warmStart.items == data.items else {
                throw ArborError.invalidArgument(name: "warm start", reason: "the model's behaviour vocabulary is not the data set's")
            }
            try model.behaviour.table.assign(warmStart.behaviour.table.value)
            if hierarchical { try model.replaceTree(model.tree) }  // hierarchy rows from the warm behaviours
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
            return xs.count > 1 ? String(format: "%.4f ± %.4f", m, s) : String(format: "%.4f", m)
        }
        /// Mean with the 95% interval of the mean (Student's t, n − 1 degrees of freedom).
        func interval(_ xs: [Double]) -> String {
            let (m, s) = stats(xs)
            guard xs.count > 1 else { return String(format: "%.4f", m) }
            let t: [Double] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
                               2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086]
            let h = (xs.count - 2 < t.count ? t[xs.count - 2] : 1.96) * s / Double(xs.count).squareRoot()
            return String(format: "%.4f (95%%: %.4f-%.4f)", m, m - h, m + h)
        }
        var out = "### \(first.data): \(reports.count) seed(s) (\(reports.map { String($0.seed) }.joined(separator: ", ")))\n\n"
        out += "| method | recall@10 | recall@50 | precision@10 | hit rate@10 | hit rate@50 | model evals/query |\n"
        out += "|---|---|---|---|---|---|---|\n"
        for r in first.results {
            let rows = reports.compactMap { $0.result(r.method) }
            out += "| \(r.method) | \(interval(rows.map(\.recall10))) | \(interval(rows.map(\.recall50))) | \(fmt(rows.map(\.precision10))) | "
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
        // TDM / JTM / OTM: the best tree model against the two-tower, each tree against brute force
        // with its own model, and what training cost.
        let methods = TDMTrainingMethod.allCases.filter { m in reports.contains { $0.methodModels[m] != nil } }
        if methods.count > 1 || methods.first != .tdm {
            func ratios(_ a: String, _ b: String, _ k: KeyPath<TDMMethodResult, Double>) -> [Double] {
                reports.compactMap { r in
                    guard let x = r.result(a)?[keyPath: k], let y = r.result(b)?[keyPath: k], y > 0 else { return nil }
                    return x / y
                }
            }
            let trees = methods.flatMap { m in TDMScorerKind.allCases.map { TDMMethodName.tree($0, m) } }
                .filter { name in reports.contains { $0.result(name) != nil } }
            let mean: (String) -> Double = { name in stats(reports.compactMap { $0.result(name)?.recall10 }).0 }
            if let best = trees.max(by: { mean($0) < mean($1) }) {
                let r10 = ratios(best, TDMMethodName.flatTwoTower, \.recall10), r50 = ratios(best, TDMMethodName.flatTwoTower, \.recall50)
                if !r10.isEmpty {
                    out += "- best tree model (\(best)) / flat product-DNN (two-tower): recall@10 \(interval(r10)), recall@50 \(interval(r50)); "
                        + "per seed recall@10 " + r10.map { String(format: "%.3f", $0) }.joined(separator: ", ") + "\n"
                }
            }
            for m in methods {
                for kind in TDMScorerKind.allCases {
                    let r10 = ratios(TDMMethodName.tree(kind, m), TDMMethodName.bruteForce(kind, m), \.recall10)
                    let r50 = ratios(TDMMethodName.tree(kind, m), TDMMethodName.bruteForce(kind, m), \.recall50)
                    let costs = reports.compactMap { $0.cost[m]?[kind] }
                    guard !costs.isEmpty else { continue }
                    out += "- \(m.rawValue.uppercased()) \(kind.rawValue): tree / brute force recall@10 \(interval(r10)), recall@50 \(interval(r50)); "
                        + String(format: "train %.0f s a seed, %.0f samples/s\n", stats(costs.map(\.seconds)).0,
                                 stats(costs.map(\.samplesPerSecond)).0)
                }
            }
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
