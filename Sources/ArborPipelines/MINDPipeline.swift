import ArborCore
import ArborData
import ArborEval
import ArborInference
import ArborMath
import ArborModels
import ArborRetrieval
import ArborTree
import Foundation

/// Settings of a MIND experiment (train, then benchmark popularity, MIND's flat scan and tree).
public struct MINDExperimentOptions: Sendable {
    /// Embedding width.
    public var dimension: Int = 64
    /// `K`, the most interests per user.
    public var interests: Int = 4
    /// Label-aware attention power (large = argmax).
    public var power: Float = 1000
    /// Hidden widths of the capsule MLP.
    public var hidden: [Int] = []
    /// Routing rounds (MIND: 3).
    public var iterations: Int = 3
    /// Routing agreement scale `β` (``MINDConfig/agreementScale``; MIND: 1).
    public var agreementScale: Float = 1
    /// ComiRec-DR's stop-gradient through the routing (``MINDConfig/routingStopGradient``).
    public var routingStopGradient: Bool = false
    /// Most recent behaviours routed.
    public var maxHistory: Int = 10
    /// Cosine scores.
    public var cosine: Bool = true
    /// Softmax temperature.
    public var temperature: Float = 0.05
    /// Trainer options (the two-tower's).
    public var training = TwoTowerTrainingOptions()
    /// Early-stopping metric and cut-off (Recall@50; equal to HR@50 with one held-out item).
    public var validationMetric: Metric = .recall
    /// Cut-off of the validation metric.
    public var validationK: Int = 50
    /// Cut-offs reported.
    public var ks: [Int] = [10, 50, 200]
    /// Tree beam widths (per interest).
    public var beams: [Int] = [20, 50, 100, 200]
    /// Tree build options (fan-out 16).
    public var tree = TreeBuildOptions(fanOut: 16, iterations: 10, seed: 0, innerNodes: .normalizedMean)
    /// Directory for `last.arbor` / `best.arbor` checkpoints (an index each); `nil` = none.
    public var checkpointDirectory: String? = nil
    /// When set, a two-tower trained with these options on the same data is benchmarked beside
    /// MIND on the same test users in the same run ("two-tower flat", "two-tower tree" rows).
    public var besideTwoTower: TwoTowerExperimentOptions? = nil
    /// Catalogue items never seen in training: left out of the index (default) or kept.
    public var coldItems: ColdItemPolicy = .leaveOut

    /// Defaults.
    public init() {}

    /// The model configuration for `itemCount` items.
    public func config(itemCount: Int) -> MINDConfig {
        var c = MINDConfig(itemCount: itemCount, dimension: dimension, interests: interests, power: power, iterations: iterations,
                           hidden: hidden, maxHistory: maxHistory, cosine: cosine, temperature: temperature)
        c.agreementScale = agreementScale
        c.routingStopGradient = routingStopGradient
        return c
    }
}

/// What a MIND experiment produced.
public struct MINDExperimentResult: Sendable {
    /// The protocol's name.
    public var protocolName: String
    /// The model configuration.
    public var config: MINDConfig
    /// The training run.
    public var training: TwoTowerTrainingReport
    /// The trained encoder (best epoch).
    public var encoder: MINDEncoder
    /// `itemCount × d` item vectors, row `r` = `ids[r]`.
    public var itemVectors: Matrix
    /// Item ids in row order.
    public var ids: [ItemID]
    /// The tree built on the item vectors.
    public var tree: TreeLayout
    /// Benchmark rows on the test users: "popularity", "mind flat", "mind tree" (a beam per
    /// interest, per beam width), "mind tree shared" (one beam for all interests, per width) and,
    /// with ``MINDExperimentOptions/besideTwoTower``, "two-tower flat" and "two-tower tree".
    public var rows: [BenchmarkRow]
    /// Mean number of interests per test user.
    public var meanInterests: Double
    /// Test users whose history had no known item.
    public var fallbackQueries: Int
    /// How the model was trained (data set name and path to be filled by the caller).
    public var provenance: TrainingProvenance
    /// Where the catalogue holds items never seen in training (the Amazon Books demo): how often
    /// they reach the exact top k, against their share of the catalogue. `nil` when none are cold
    /// or the cold ones were left out of the index.
    public var coldItems: ColdItemShare? = nil
    /// The catalogue rows served (``itemVectors`` and ``ids`` hold these rows only).
    public var served: ServedCatalogue

    /// The row of `retriever` at `k` (and `parameters` label when given).
    public func row(_ retriever: String, k: Int, parameters: String? = nil) -> BenchmarkRow? {
        rows.first { $0.retriever == retriever && $0.k == k && (parameters == nil || $0.parameters == parameters) }
    }

    /// A Markdown summary: data, training, and a table of `metrics` per retriever and k.
    public func markdown(metrics: [Metric]) -> String {
        var s = "## MIND, \(protocolName)\n\n"
        s += "- model: d = \(config.dimension), K = \(config.interests), p = \(config.power), routing \(config.iterations) rounds, β \(config.agreementScale)\(config.routingStopGradient ? ", stop-gradient" : ""), history \(config.maxHistory), MLP \(([config.dimension] + config.hidden + [config.dimension]).map(String.init).joined(separator: "-")), \(config.cosine ? "cosine / \(config.temperature)" : "dot product"); mean interests per test user \(String(format: "%.2f", meanInterests))\n"
        s += String(format: "- training: %d epochs, best epoch %d (validation %.4f), %@, %.1f s, %.0f samples/s\n",
                    training.epochs.count, training.bestEpoch, training.bestMetric ?? .nan,
                    training.stoppedEarly ? "early-stopped" : "epoch limit", training.wallSeconds, training.samplesPerSecond)
        s += String(format: "- tree: fan-out %d, depth %d\n", tree.fanOut, tree.depth)
        if fallbackQueries > 0 { s += "- \(fallbackQueries) test users had no known history item (fallback vector)\n" }
        if served.coldCount > 0 && coldItems == nil { s += "- \(served.summary)\n" }
        if let cold = coldItems {
            s += String(format: "- cold items (never in training): %.1f%% of the catalogue; share of the exact top %d: ",
                        100 * cold.catalogueShare, cold.k)
            s += cold.topShares.map { String(format: "%@ %.2f%%", $0.retriever, 100 * $0.share) }.joined(separator: ", ") + "\n"
        }
        s += "\n"
        let ks = Array(Set(rows.map(\.k))).sorted()
        var header = ["retriever", "parameters"]
        for k in ks { for m in metrics { header.append("\(m.shortName)@\(k)") }; header.append("evals@\(k)") }
        s += "| " + header.joined(separator: " | ") + " |\n|" + header.map { _ in "---" }.joined(separator: "|") + "|\n"
        var seen = Set<String>()
        for r in rows where seen.insert(r.retriever + "\u{0}" + r.parameters).inserted {
            var cells = [r.retriever, r.parameters]
            for k in ks {
                let row = self.row(r.retriever, k: k, parameters: r.parameters)
                for m in metrics { cells.append(row?.metrics[m].map { String(format: "%.4f", $0) } ?? "-") }
                cells.append(row.map { String(format: "%.0f", $0.evaluationsPerQuery) } ?? "-")
            }
            s += "| " + cells.joined(separator: " | ") + " |\n"
        }
        return s
    }
}

/// Trains MIND on prepared data (the two-tower's ``TwoTowerData``: leave-last-out, hold-out, the
/// Amazon Books demo, or generated users), builds the tree on the learned item vectors and
/// benchmarks popularity, MIND's exact flat scan and its tree (K' searches per user, merged, or
/// one beam shared by the interests), optionally beside a two-tower trained on the same data.
public enum MINDExperiment {
    /// A validator: `metric@k` of the exact flat scan with the model's current encoder (each
    /// user's interests searched and merged), averaged over `cases`. O(cases · K · items · d).
    /// - Parameter served: the catalogue rows searched and known to the encoder; `nil`: all.
    public static func validator(cases: [TwoTowerEvalCase], metric: Metric, k: Int,
                                 itemFrequencies: [Double]?, served: ServedCatalogue? = nil) -> (MINDModel) throws -> Double {
        let truth = GroundTruth.items(cases.map(\.truth))
        return { model in
            let encoder = try model.encoder(itemFrequencies: itemFrequencies, rows: served?.rows)
            let vectors = model.itemVectorMatrix()
            let flat = try FlatRetriever(items: served?.select(vectors) ?? vectors, ids: served?.select(model.ids) ?? model.ids)
            let retriever = MultiInterestRetriever(name: "mind flat", producer: encoder, base: flat)
            let parameters = SearchParameters(k: min(k, flat.itemCount))
            let results = try cases.map { try retriever.search(Query(history: $0.history, excluded: $0.excluded), parameters: parameters) }
            return try truth.evaluate(retrieved: results.map { $0.items.map(\.item) }, k: k)[metric] ?? 0
        }
    }

    /// Trains MIND on `data` (early stopping on the validation users when there are any); writes
    /// `last.arbor` / `best.arbor` checkpoints (an index each) when `options.checkpointDirectory` is set.
    /// Validation, checkpoints and the returned encoder serve the rows `options.coldItems` keeps.
    /// - Throws: ``TwoTowerError``, ``ArborError`` (also when no catalogue item occurs in training),
    ///   `CancellationError`, index write errors.
    public static func train(
        data: TwoTowerData, options: MINDExperimentOptions, progress: some ProgressReporter = SilentProgress(),
        cancellation: CancellationFlag? = nil, onEpoch: ((TwoTowerEpochStats) -> Void)? = nil
    ) throws -> (model: MINDModel, report: TwoTowerTrainingReport, encoder: MINDEncoder, served: ServedCatalogue) {
        let served = try ServedCatalogue(ids: data.catalog.ids, trainCounts: data.trainCounts, policy: options.coldItems)
        let config = options.config(itemCount: data.catalog.count)
        let model = try MINDModel(config: config, ids: data.catalog.ids, seed: options.training.seed)
        let trainer = try MINDTrainer(model: model, options: options.training)
        let frequencies = data.samples.targetCounts(itemCount: data.catalog.count)
        let validate = data.validation.isEmpty ? nil
            : validator(cases: data.validation, metric: options.validationMetric, k: options.validationK, itemFrequencies: frequencies,
                        served: served)
        var checkpoint: ((MINDModel, Int, Bool) throws -> Void)? = nil
        if let dir = options.checkpointDirectory {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let treeOptions = options.tree
            checkpoint = { model, _, improved in
                let tree = try TreeBuilder.balancedKMeans(embeddings: served.select(model.itemVectorMatrix()),
                                                          items: served.select(model.ids), options: treeOptions)
                let encoder = try model.encoder(itemFrequencies: frequencies, rows: served.rows)
                try IndexFiles.writeMINDIndex(tree: tree, encoder: encoder, to: dir + "/last.arbor")
                if improved { try IndexFiles.writeMINDIndex(tree: tree, encoder: encoder, to: dir + "/best.arbor") }
            }
        }
        let report = try trainer.train(samples: data.samples, validate: validate, progress: progress, cancellation: cancellation,
                                       checkpoint: checkpoint, onEpoch: onEpoch)
        return (model, report, try model.encoder(itemFrequencies: frequencies, rows: served.rows), served)
    }

    /// Runs the experiment: train, build the tree (fan-out from `options.tree`), benchmark on the test users.
    /// - Throws: as ``train(data:options:progress:cancellation:onEpoch:)``; ``ArborError`` for no test users.
    public static func run(
        data: TwoTowerData, options: MINDExperimentOptions, progress: some ProgressReporter = SilentProgress(),
        cancellation: CancellationFlag? = nil, onEpoch: ((TwoTowerEpochStats) -> Void)? = nil
    ) throws -> MINDExperimentResult {
        guard !data.test.isEmpty else { throw ArborError.empty(what: "test users") }
        let (model, report, encoder, served) = try train(data: data, options: options, progress: progress,
                                                         cancellation: cancellation, onEpoch: onEpoch)
        let vectors = served.select(model.itemVectorMatrix())
        let ids = served.select(data.catalog.ids)
        let tree = try TreeBuilder.balancedKMeans(embeddings: vectors, items: ids, options: options.tree,
                                                  progress: progress, cancellation: cancellation)
        let queries = data.test.map { Query(history: $0.history, excluded: $0.excluded) }
        var interestSum = 0, fallbacks = 0
        for q in queries {
            let e = encoder.interests(history: q.history)
            interestSum += e.vectors.rows
            if e.usedFallback { fallbacks += 1 }
        }
        let flat = MultiInterestRetriever(name: "mind flat", producer: encoder,
                                          base: try FlatRetriever(name: "mind flat", items: vectors, ids: ids))
        let treeRetriever = MultiInterestRetriever(
            name: "mind tree", producer: encoder,
            base: try TreeRetriever(name: "mind tree", source: tree, scorer: InnerProductScorer(dimension: tree.dimension),
                                    itemCount: tree.itemCount, dimension: tree.dimension))
        let sharedTree = MultiInterestRetriever(name: "mind tree shared", producer: encoder, base: treeRetriever.base)
        let pop = PopularityRetriever(counts: data.trainCounts, name: "popularity")
        var entries = [
            BenchmarkEntry(retriever: pop, sweep: [SweepPoint(label: "-", parameters: SearchParameters())]),
            BenchmarkEntry(retriever: flat, sweep: [SweepPoint(label: "exact", parameters: SearchParameters())]),
            BenchmarkEntry(retriever: treeRetriever, sweep: options.beams.map(SweepPoint.beam)),
            BenchmarkEntry(retriever: sharedTree, sweep: options.beams.map {
                SweepPoint(label: "shared beam=\($0)", parameters: SearchParameters(beamWidth: $0, interestBeams: .shared))
            }),
        ]
        var flatRetrievers: [any Retriever] = [flat]
        if var twoTowerOptions = options.besideTwoTower {
            twoTowerOptions.coldItems = options.coldItems
            let twoTower = try twoTowerEntries(data: data, options: twoTowerOptions, beams: options.beams,
                                               progress: progress, cancellation: cancellation)
            entries += twoTower.entries
            flatRetrievers.append(twoTower.flat)
        }
        let ks = options.ks.filter { $0 <= ids.count }
        let runner = BenchmarkRunner(
            configuration: BenchmarkConfiguration(kValues: ks.isEmpty ? [min(10, ids.count)] : ks, threadCounts: [1], searchPerK: true),
            progress: progress, cancellation: cancellation)
        let rows = try runner.run(entries: entries, queries: queries, truth: TwoTowerEvaluation.truth(data.test))
        let cold = served.policy == .keep
            ? try ColdItemShare.measure(retrievers: flatRetrievers, queries: queries, ids: ids, trained: data.trainCounts,
                                        k: min(50, ids.count))
            : nil
        let config = model.config
        let t = options.training
        let provenance = TrainingProvenance(
            modelKind: QueryProducerKind.mind.rawValue, dimension: config.dimension, hidden: config.hidden,
            maxHistory: config.maxHistory,
            dataset: .init(name: "", items: ids.count, trainUsers: data.sequences.count, trainInteractions: data.trainEvents,
                           trainSamples: data.samples.count, validationUsers: data.validation.count, testUsers: data.test.count),
            protocolName: data.protocolName, seed: t.seed, epochsRun: report.epochs.count, bestEpoch: report.bestEpoch,
            validationMetric: data.validation.isEmpty ? nil : "\(options.validationMetric.shortName.lowercased())@\(options.validationK)",
            validationValue: report.bestMetric, negatives: "MIND K = \(config.interests), p = \(config.power); \(t.loss)",
            optimizer: "adam (dense) + \(t.embeddingOptimizer.rawValue) (embeddings)", learningRate: t.learningRate,
            embeddingLearningRate: t.embeddingLearningRate ?? t.learningRate, trainingSeconds: report.wallSeconds)
        return MINDExperimentResult(
            protocolName: data.protocolName, config: config, training: report, encoder: encoder, itemVectors: vectors, ids: ids,
            tree: tree, rows: rows, meanInterests: Double(interestSum) / Double(max(1, queries.count)),
            fallbackQueries: fallbacks, provenance: provenance, coldItems: cold, served: served)
    }

    /// The two-tower's rows beside MIND: trained with `options` on the same data, its exact scan
    /// and its tree (built with `options.tree`) answering the same history queries through its own
    /// encoder, at MIND's beam widths.
    private static func twoTowerEntries(
        data: TwoTowerData, options: TwoTowerExperimentOptions, beams: [Int], progress: some ProgressReporter,
        cancellation: CancellationFlag?
    ) throws -> (entries: [BenchmarkEntry], flat: any Retriever) {
        let trained = try TwoTowerExperiment.train(data: data, options: options, progress: progress, cancellation: cancellation)
        let ids = trained.ids
        let tree = try TreeBuilder.balancedKMeans(embeddings: trained.itemVectors, items: ids, options: options.tree,
                                                  progress: progress, cancellation: cancellation)
        let flat = MultiInterestRetriever(
            name: "two-tower flat", producer: trained.encoder,
            base: try FlatRetriever(name: "two-tower flat", items: trained.itemVectors, ids: ids))
        let treeRetriever = MultiInterestRetriever(
            name: "two-tower tree", producer: trained.encoder,
            base: try TreeRetriever(name: "two-tower tree", source: tree, scorer: InnerProductScorer(dimension: tree.dimension),
                                    itemCount: tree.itemCount, dimension: tree.dimension))
        return ([
            BenchmarkEntry(retriever: flat, sweep: [SweepPoint(label: "exact", parameters: SearchParameters())]),
            BenchmarkEntry(retriever: treeRetriever, sweep: beams.map(SweepPoint.beam)),
        ], flat)
    }

    /// Writes the index for serving (tree on the item vectors + the MIND encoder + provenance).
    /// - Throws: `IndexError`/``ArborError`` from the writer.
    public static func export(_ result: MINDExperimentResult, indexPath: String, provenance: TrainingProvenance? = nil,
                              progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil) throws {
        try IndexFiles.writeMINDIndex(tree: result.tree, encoder: result.encoder, provenance: provenance ?? result.provenance,
                                      to: indexPath, progress: progress, cancellation: cancellation)
    }
}

extension TwoTowerData {
    /// Generated users with planted interests (``SyntheticUsers``) as two-tower / MIND data, under
    /// the TDM user hold-out: training users' events are the training sequences; a held-out user's
    /// first half is the input, the second half the truth. Every catalogue item is retrievable.
    /// - Throws: as ``TDMExperimentData/synthetic(catalog:users:test:validation:seed:)``.
    public static func synthetic(catalog: SyntheticCatalog, users: SyntheticUsers, test: HoldOutSize = .count(300),
                                 validation: HoldOutSize = .count(200), seed: UInt64 = 0) throws -> TwoTowerData {
        try TwoTowerData(tdm: try TDMExperimentData.synthetic(catalog: catalog, users: users, test: test, validation: validation, seed: seed))
    }
}
