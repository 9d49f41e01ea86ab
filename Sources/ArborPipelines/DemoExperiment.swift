import ArborCore
import ArborData
import ArborEngine
import ArborEval
import ArborInference
import ArborMath
import ArborModels
import ArborTree
import Foundation

/// Settings of `arbor demo` (``DemoExperiment``): generated users with several planted interests
/// and the two-tower served from its index; a large generated catalogue where the tree is measured
/// against the exact scan; and, with ``deep``, the TDM-trained attention-DNN through its tree.
public struct DemoExperimentConfig: Sendable {
    /// Generated items (100 categories in 10 super-categories, d = 16).
    public var items: Int = 10_000
    /// Generated users, 2-4 planted interests each (test and validation users included).
    public var users: Int = 3_000
    /// Held-out test users (first half of the history in, second half to find).
    public var testUsers: Int = 200
    /// Held-out validation users (early stopping of both models).
    public var validationUsers: Int = 200
    /// Seed of the data, the split, the models and their training.
    public var seed: UInt64 = 1
    /// Attention-DNN: epochs per tree round at most.
    public var epochs: Int = 2
    /// Attention-DNN: tree rounds at most (train, re-cluster, train again).
    public var rounds: Int = 1
    /// Attention-DNN: training samples drawn per epoch (`nil`: all).
    public var samplesPerEpoch: Int? = 30_000
    /// Two-tower: epochs at most (early stopping on validation recall@50).
    public var twoTowerEpochs: Int = 5
    /// Fan-out of the tree built on the two-tower's item vectors.
    public var twoTowerFanOut: Int = 16
    /// Beam width of the tree searches (and of the attention-DNN's validation).
    public var beam: Int = 100
    /// Items per query.
    public var k: Int = 50
    /// Also train the attention-DNN with its tree and serve it (minutes, not seconds: TDM training).
    public var deep: Bool = false
    /// Items of the generated catalogue (d = 64) where the tree is measured against the exact scan;
    /// 0 skips that part.
    public var scaleItems: Int = 1_000_000
    /// Generated user queries answered at that scale.
    public var scaleQueries: Int = 200
    /// Beam width at that scale.
    public var scaleBeam: Int = 800
    /// Items per query at that scale.
    public var scaleK: Int = 100

    /// The defaults; see the properties.
    public init() {}
}

/// The two trained models, written to their index files.
public struct DemoTraining: Sendable {
    /// The split the models were trained and are evaluated on.
    public var data: TDMExperimentData
    /// Two-tower training: wall seconds, best epoch, epochs run.
    public var twoTowerSeconds: Double, twoTowerBestEpoch: Int, twoTowerEpochs: Int
    /// The two-tower's tree shape (k-means on its item vectors).
    public var twoTowerTree: (fanOut: Int, depth: Int)
    /// Attention-DNN training with its tree (``DemoExperimentConfig/deep``): wall seconds, epochs
    /// run over all rounds, best round, the learnt tree's shape.
    public var attention: (seconds: Double, epochs: Int, bestRound: Int, tree: (fanOut: Int, depth: Int))?
}

/// The tree against the exact scan on a large generated catalogue, both served by one ``Engine``.
public struct DemoScaleResult: Sendable {
    /// Items in the catalogue.
    public var items: Int
    /// The exact scan (the reference) and the tree at ``DemoExperimentConfig/scaleBeam``.
    public var exact: BenchmarkRow, tree: BenchmarkRow
    /// Tree build and index write, seconds.
    public var buildSeconds: Double

    /// "at 1,000,000 items the tree (beam 800) finds 0.983 of the exact scan's top 100 at 14.2x its QPS (…)".
    public var summary: String {
        String(format: "at %d items the tree (%@) finds %.3f of the exact scan's top %d at %.1fx its QPS (%.0f vs %.1f QPS, %.0f vs %.0f dot products per query)",
               items, tree.parameters, tree.metrics.recallVsExact ?? 0, tree.k,
               exact.latency.qps > 0 ? tree.latency.qps / exact.latency.qps : .nan, tree.latency.qps, exact.latency.qps,
               tree.evaluationsPerQuery, exact.evaluationsPerQuery)
    }
}

/// What the demo measured on the test users, every model served by an ``Engine``.
public struct DemoResult: Sendable {
    /// Every measured row (held-out recall, recall against the same model's exact/brute-force top-k, latency, QPS).
    public var rows: [BenchmarkRow]
    /// The two-tower's exact inner-product scan (the flat baseline).
    public var twoTowerExact: BenchmarkRow
    /// The two-tower through its tree.
    public var twoTowerTree: BenchmarkRow
    /// The attention-DNN through its tree (beam search) and scoring every item (brute force, the
    /// same model); `nil` without ``DemoExperimentConfig/deep``.
    public var attention: (tree: BenchmarkRow, brute: BenchmarkRow)?
    /// Recall@k (held-out behaviour) of an oracle ranking by the planted interests: the ceiling.
    public var oracleRecall: Double

    /// The two-tower's line: its tree against its exact scan on the held-out behaviour.
    public var twoTowerSummary: String {
        let k = twoTowerTree.k
        return String(format: "two-tower on held-out users: recall@%d %.3f through the tree (%@, %.0f evaluations) vs %.3f by the exact scan (%.0f); oracle %.3f",
                      k, twoTowerTree.metrics.recall ?? 0, twoTowerTree.parameters, twoTowerTree.evaluationsPerQuery,
                      twoTowerExact.metrics.recall ?? 0, twoTowerExact.evaluationsPerQuery, oracleRecall)
    }

    /// The attention-DNN's line (with ``DemoExperimentConfig/deep``): where the deep model in its
    /// tree wins and by how much.
    public var attentionSummary: String? {
        guard let (attentionTree, attentionBrute) = attention else { return nil }
        let k = attentionTree.k
        func r(_ row: BenchmarkRow) -> Double { row.metrics.recall ?? 0 }
        let gain = r(twoTowerExact) > 0 ? r(attentionTree) / r(twoTowerExact) : .nan
        let speed = attentionBrute.latency.qps > 0 ? attentionTree.latency.qps / attentionBrute.latency.qps : .nan
        return String(format: "tree + attention-DNN: recall@%d %.3f vs two-tower %.3f (%.2fx); same model by brute force %.3f "
                      + "(tree/brute %.2fx, beam finds %.2f of its top %d) at %.1fx its QPS (%.0f vs %.1f QPS, %.0f vs %.0f model evaluations per query)",
                      k, r(attentionTree), r(twoTowerExact), gain, r(attentionBrute),
                      r(attentionBrute) > 0 ? r(attentionTree) / r(attentionBrute) : .nan, attentionTree.metrics.recallVsExact ?? 0, k,
                      speed, attentionTree.latency.qps, attentionBrute.latency.qps,
                      attentionTree.evaluationsPerQuery, attentionBrute.evaluationsPerQuery)
    }
}

/// `arbor demo` as a library: generate multi-interest users, train the two-tower (and, with
/// ``DemoExperimentConfig/deep``, the TDM attention-DNN with its tree), write the indexes, serve
/// each through ``Arbor/open(_:)``; and measure the tree against the exact scan on a large
/// generated catalogue.
public enum DemoExperiment {
    /// Generated items and users with 2-4 planted interests each, split by the TDM protocol
    /// (``TDMExperimentData/synthetic(catalog:users:test:validation:seed:)``), and the oracle that
    /// ranks by the planted interests.
    /// - Throws: ``DataError``/``ArborError`` for sizes the generator or split cannot serve.
    public static func data(_ config: DemoExperimentConfig) throws
        -> (data: TDMExperimentData, oracle: (HeldOutUser) -> (items: [ItemID], evaluations: Int)) {
        let catalog = try SyntheticCatalog.generate(.init(itemCount: config.items, dimension: 16, superCategoryCount: 10,
                                                          categoriesPerSuperCategory: 10, seed: config.seed))
        let users = try SyntheticUsers.generate(catalog: catalog, config: .init(
            userCount: config.users, minInterests: 2, maxInterests: 4, minHistoryLength: 20, maxHistoryLength: 60,
            seed: config.seed))
        let data = try TDMExperimentData.synthetic(catalog: catalog, users: users, test: .count(config.testUsers),
                                                   validation: .count(config.validationUsers), seed: config.seed)
        return (data, TDMEvaluation.syntheticOracle(catalog: catalog, users: users, k: config.k))
    }

    /// Trains the two-tower (its tree: balanced k-means on its item vectors, fan-out
    /// ``DemoExperimentConfig/twoTowerFanOut``) and, with ``DemoExperimentConfig/deep`` and an
    /// `attentionIndex`, the attention-DNN with its tree, and writes their indexes. Training lines
    /// go to `log`.
    /// - Throws: training, data and index-write errors, `CancellationError`.
    public static func train(
        data: TDMExperimentData, config: DemoExperimentConfig, twoTowerIndex: String, attentionIndex: String?,
        progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil,
        log: @escaping (String) -> Void = { _ in }
    ) throws -> DemoTraining {
        BLAS.threads = 1
        var tdm = TDMExperimentConfig(beamWidth: config.beam, validationUsers: config.validationUsers, seed: config.seed,
                                      kinds: [.attention])
        tdm.treeRounds = config.rounds
        tdm.training = TDMTrainingConfig(epochs: config.epochs, batchSize: 128, negatives: .growing(total: 60),
                                         patience: 2, samplesPerEpoch: config.samplesPerEpoch, seed: config.seed)
        var twoTowerOptions = tdm.twoTower ?? TwoTowerExperimentOptions(protocol: .userHoldOut)
        twoTowerOptions.training.epochs = config.twoTowerEpochs
        twoTowerOptions.training.patience = 2
        twoTowerOptions.tree = TreeBuildOptions(fanOut: config.twoTowerFanOut, seed: config.seed, innerNodes: .normalizedMean)

        log("[two-tower] training (at most \(config.twoTowerEpochs) epochs)")
        let (twoTower, _) = try TDMExperiment.trainTwoTower(data: data, options: twoTowerOptions, seed: config.seed,
                                                            cancellation: cancellation, log: log)
        let tree = try TreeBuilder.balancedKMeans(embeddings: twoTower.itemVectors, items: twoTower.ids,
                                                  options: twoTowerOptions.tree, progress: progress, cancellation: cancellation)
        try IndexFiles.writeTwoTowerIndex(tree: tree, encoder: twoTower.encoder, to: twoTowerIndex, cancellation: cancellation)
        var training = DemoTraining(data: data, twoTowerSeconds: twoTower.report.wallSeconds,
                                    twoTowerBestEpoch: twoTower.report.bestEpoch, twoTowerEpochs: twoTower.report.epochs.count,
                                    twoTowerTree: (tree.fanOut, tree.depth), attention: nil)
        guard config.deep, let attentionIndex else { return training }

        log("[attention] training with its tree (at most \(config.rounds) round(s) of \(config.epochs) epoch(s)"
            + (config.samplesPerEpoch.map { " of \($0) samples" } ?? "") + ")")
        let validate = TDMEvaluation.beamRecallValidator(users: data.validation, k: 50, beamWidth: config.beam,
                                                         maxUsers: config.validationUsers)
        let attention = try TDMExperiment.trainModel(kind: .attention, data: data, config: tdm, validate: validate,
                                                     progress: progress, cancellation: cancellation, log: log)
        var provenance = attention.provenance
        provenance.dataset.name = "synthetic (\(config.items) items, \(config.users) users, seed \(config.seed))"
        try attention.model.writeIndex(to: attentionIndex, provenance: provenance)
        let learnt = attention.model.layout()
        training.attention = (attention.seconds, attention.report.rounds.reduce(0) { $0 + $1.training.epochs.count },
                              attention.report.bestRound, (learnt.fanOut, learnt.depth))
        return training
    }

    /// Measures both indexes on `users` (history in, excluded; truth = the held-out behaviour),
    /// each served by its engine: the two-tower by exact scan and through its tree, the
    /// attention-DNN through its tree and by brute force. Recall is deterministic; latency and
    /// QPS are timings (one thread).
    /// - Throws: ``ArborError`` from the engines and the runner, `CancellationError`.
    public static func measure(
        twoTower: Engine, attention: Engine?, users: [HeldOutUser], oracle: (HeldOutUser) -> (items: [ItemID], evaluations: Int),
        config: DemoExperimentConfig, progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil
    ) throws -> DemoResult {
        BLAS.threads = 1
        let users = users.filter { !$0.truth.isEmpty }
        guard !users.isEmpty else { throw ArborError.empty(what: "test users with held-out behaviour") }
        let k = config.k
        let relevant = users.map { Set($0.truth) }
        let seen = users.map { Set($0.history) }
        let ks = k > 10 ? [10, k] : [k]
        /// The exact (brute-force) pass runs once: its lists are also the reference the tree is measured against.
        func rows(_ engine: Engine, name: String, exactLabel: String) throws -> [BenchmarkRow] {
            let queries = try users.map { try engine.queries(history: $0.history, excluding: Set($0.history)).queries[0] }
            let exact = try engine.retriever(.exact), tree = try engine.retriever(.tree(beam: config.beam))
            for q in queries.prefix(5) { _ = try exact.search(q, parameters: .init(k: k)) }
            let run = try BenchmarkRunner.timedRun(retriever: exact, queries: queries, parameters: .init(k: k), progress: progress,
                                                   task: "\(name) \(exactLabel)", cancellation: cancellation)
            let reference = run.results.map { $0.items.map(\.item) }
            let truth = GroundTruth(relevant: relevant, seen: seen, reference: reference)
            let latency = LatencySummary(nanoseconds: run.latencyNanoseconds, wallNanoseconds: run.wallNanoseconds)
            let n = Double(queries.count)
            let evaluations = run.results.reduce(0.0) { $0 + Double($1.statistics.modelEvaluations) } / n
            let steps = run.results.reduce(0.0) { $0 + Double($1.statistics.steps) } / n
            var out = try ks.map { kk in
                BenchmarkRow(retriever: "\(name) \(exactLabel)", parameters: exactLabel, sweepIndex: 0, k: kk, searchK: k,
                             threads: 1, metrics: try truth.evaluate(retrieved: reference, k: kk), latency: latency,
                             evaluationsPerQuery: evaluations, stepsPerQuery: steps)
            }
            let runner = BenchmarkRunner(configuration: BenchmarkConfiguration(kValues: ks, warmUp: Array(queries.prefix(5))),
                                         progress: progress, cancellation: cancellation)
            out += try runner.run(entries: [BenchmarkEntry(label: "\(name) tree", retriever: tree, sweep: [SweepPoint.beam(config.beam)])],
                                  queries: queries, truth: truth)
            return out
        }
        let all = try rows(twoTower, name: "two-tower", exactLabel: "exact")
            + (attention.map { try rows($0, name: "attention-DNN", exactLabel: "brute force") } ?? [])
        func row(_ name: String) -> BenchmarkRow { all.first { $0.retriever == name && $0.k == k }! }
        var oracleRecall = RunningMean()
        for user in users {
            if let r = RankingMetrics.recall(retrieved: oracle(user).items, truth: Set(user.truth), k: k) { oracleRecall.add(r) }
        }
        return DemoResult(rows: all, twoTowerExact: row("two-tower exact"), twoTowerTree: row("two-tower tree"),
                          attention: attention == nil ? nil : (row("attention-DNN tree"), row("attention-DNN brute force")),
                          oracleRecall: oracleRecall.mean ?? 0)
    }

    /// The tree against the exact scan at scale: generates ``DemoExperimentConfig/scaleItems``
    /// items (d = 64, planted categories) and ``DemoExperimentConfig/scaleQueries`` user queries,
    /// builds the 16-ary tree, writes it to `index`, opens it with ``Arbor/open(_:)`` and answers
    /// every query by the exact scan (the reference) and through the tree. Recall is deterministic
    /// for a seed; QPS is a timing (one thread).
    /// - Throws: data, build, index and search errors, `CancellationError`.
    public static func scale(
        config: DemoExperimentConfig, index: String, progress: some ProgressReporter = SilentProgress(),
        cancellation: CancellationFlag? = nil
    ) throws -> DemoScaleResult {
        let catalog = try SyntheticCatalog.generate(.init(itemCount: config.scaleItems, dimension: 64, seed: config.seed),
                                                    progress: progress, cancellation: cancellation)
        var usersConfig = SyntheticUsersConfig(userCount: config.scaleQueries)
        usersConfig.seed = config.seed &+ 1
        let users = try SyntheticUsers.generate(catalog: catalog, config: usersConfig, progress: progress, cancellation: cancellation)
        let start = ContinuousClock.now
        let tree = try TreeBuilder.balancedKMeans(embeddings: catalog.embeddings, items: catalog.itemIDs, categories: catalog.categories,
                                                  options: TreeBuildOptions(fanOut: 16, seed: config.seed, innerNodes: .normalizedMean),
                                                  progress: progress, cancellation: cancellation)
        try IndexFiles.writeVectorIndex(tree, to: index, progress: progress, cancellation: cancellation)
        let elapsed = start.duration(to: .now).components
        let engine = try Arbor.open(index)
        let queries = (0..<users.queries.rows).map { Query(vector: Array(users.queries.row($0))) }
        let exact = try engine.retriever(.exact)
        let reference = try BenchmarkRunner.referenceLists(from: exact, queries: queries, k: config.scaleK, progress: progress)
        let runner = BenchmarkRunner(configuration: BenchmarkConfiguration(kValues: [config.scaleK], warmUp: Array(queries.prefix(5))),
                                     progress: progress, cancellation: cancellation)
        let rows = try runner.run(entries: [
            BenchmarkEntry(label: "exact", retriever: exact, sweep: [SweepPoint(label: "exact", parameters: .init(k: config.scaleK))]),
            BenchmarkEntry(label: "tree", retriever: try engine.retriever(.tree()), sweep: [SweepPoint.beam(config.scaleBeam)]),
        ], queries: queries, truth: .exact(reference))
        return DemoScaleResult(items: config.scaleItems, exact: rows.first { $0.retriever == "exact" }!,
                               tree: rows.first { $0.retriever == "tree" }!,
                               buildSeconds: Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18)
    }
}
