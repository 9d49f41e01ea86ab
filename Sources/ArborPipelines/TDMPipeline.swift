import ArborEval
import ArborInference
import ArborData
import ArborMath
import ArborModels
import ArborNN
import ArborRetrieval
import ArborTree
import Foundation

/// Data for a TDM run under the user hold-out protocol: the catalogue, the training users'
/// time-ordered behaviour sequences, and the held-out validation and test users.
public struct TDMExperimentData: Sendable {
    /// A short name for reports.
    public var name: String
    /// Every item of the log (training and held-out users), in increasing id order: the tree's leaves.
    public var items: [ItemID]
    /// Category of each item of ``items`` (0 when unknown): the initial tree's order.
    public var categories: [UInt32]
    /// Training users' behaviours, oldest first, one sequence per user.
    public var sequences: [[ItemID]]
    /// Validation users (history → truth).
    public var validation: [HeldOutUser]
    /// Test users (history → truth).
    public var test: [HeldOutUser]
    /// Training event count per item (popularity baseline).
    public var popularity: [ItemID: Int]
    /// The evaluation protocol, as recorded in a trained index's provenance.
    public var protocolName: String = "tdm hold-out"

    /// Splits `log` with ``UserHoldOutSplit`` (TDM protocol) and gathers the pieces.
    /// - Parameters:
    ///   - minRating: when set, only events with a rating >= it are kept (ML: 4); needs ratings.
    /// - Throws: ``DataError`` from the split; ``ArborError/empty(what:)`` for an empty log.
    public static func holdOut(
        name: String, log full: InteractionLog, test: HoldOutSize = .fraction(0.1),
        validation: HoldOutSize = .fraction(0.1), minRating: Float? = nil, seed: UInt64 = 0
    ) throws -> TDMExperimentData {
        var log = full
        if let minRating, log.hasRatings { log = log.filtered { log.ratings[$0] >= minRating } }
        guard !log.isEmpty else { throw ArborError.empty(what: "interactions") }
        let split = try UserHoldOutSplit.make(from: log, test: test, validation: validation, seed: seed)
        var categoryOf: [ItemID: UInt32] = [:]
        for i in 0..<log.count {
            let c = log.hasCategories ? log.categories[i] : 0
            categoryOf[log.items[i]] = c == InteractionLog.noCategory ? 0 : c
        }
        let items = categoryOf.keys.sorted()
        let groups = split.train.groupedByUser()
        var sequences: [[ItemID]] = []
        var popularity: [ItemID: Int] = [:]
        for u in 0..<groups.count {
            let seq = groups.rows(ofUser: u).map { split.train.items[$0] }
            for it in seq { popularity[it, default: 0] += 1 }
            sequences.append(seq)
        }
        return TDMExperimentData(name: name, items: items, categories: items.map { categoryOf[$0]! },
                                 sequences: sequences, validation: split.validation, test: split.test,
                                 popularity: popularity)
    }

    /// MovieLens-100K in RecBole format (`ml-100k.inter`, `ml-100k.item` with genres as categories),
    /// ratings >= 4 as positives, 10% test and 10% validation users.
    /// - Throws: ``DataError`` for unreadable files.
    public static func movieLens100K(directory: String, test: HoldOutSize = .fraction(0.1),
                                     validation: HoldOutSize = .fraction(0.1), seed: UInt64 = 0) throws -> TDMExperimentData {
        let ds = try RecBoleReader.read(interactions: directory + "/ml-100k.inter", items: directory + "/ml-100k.item")
        return try holdOut(name: "ml-100k", log: ds.interactions, test: test, validation: validation, minRating: 4, seed: seed)
    }

    /// The Amazon Books demo (`train_demo.txt` + `valid_part-0.txt`) under its own protocol
    /// (history → held-out items): training sequences are the training users' rows in order; the
    /// held-out users are split in two by a seeded shuffle, one half validation (early stopping),
    /// the other test. The leaves are every item of the training rows and of the held-out users,
    /// so items never trained stay retrievable with their initial embeddings (the cold-item check
    /// of ANCHORS.md). No categories: the initial tree orders items by id.
    /// - Throws: ``ArborError/empty(what:)`` when there are no training rows or fewer than two
    ///   held-out users.
    public static func amazonBooksDemo(train: Dataset, heldOut: [HeldOutUser], seed: UInt64 = 0) throws -> TDMExperimentData {
        let log = train.interactions
        guard !log.isEmpty else { throw ArborError.empty(what: "Amazon Books training rows") }
        guard heldOut.count >= 2 else { throw ArborError.empty(what: "Amazon Books held-out users (need at least 2)") }
        let items = Set(log.items).union(heldOut.allItems).sorted()
        let groups = log.groupedByUser()
        var sequences: [[ItemID]] = []
        var popularity: [ItemID: Int] = [:]
        for u in 0..<groups.count {
            let seq = groups.rows(ofUser: u).map { log.items[$0] }
            for it in seq { popularity[it, default: 0] += 1 }
            sequences.append(seq)
        }
        let (validation, test) = heldOut.splitValidationTest(seed: seed)
        var data = TDMExperimentData(name: "amazon-books-demo", items: items, categories: [UInt32](repeating: 0, count: items.count),
                                     sequences: sequences, validation: validation, test: test, popularity: popularity)
        data.protocolName = "history -> held-out items (Amazon Books demo)"
        return data
    }

    /// The data set part of a ``TrainingProvenance``: the name, the catalogue size, the training
    /// users and their behaviours, `trainSamples`, and the held-out users (no path: the caller's).
    public func provenanceDataset(trainSamples: Int) -> TrainingProvenance.Dataset {
        TrainingProvenance.Dataset(name: name, items: items.count, trainUsers: sequences.count,
                                   trainInteractions: sequences.reduce(0) { $0 + $1.count }, trainSamples: trainSamples,
                                   validationUsers: validation.count, testUsers: test.count)
    }

    /// Training samples: TDM's sliding window over the training sequences.
    public func samples(maxHistory: Int) -> [TDMSample] {
        TDMSample.slidingWindow(sequences: sequences, maxHistory: maxHistory)
    }

    /// TDM's initial tree: items in category order, random small embeddings (`N(0, scale²)`),
    /// inner nodes the means of their items.
    /// - Throws: ``ArborError`` for bad options.
    public func initialTree(dimension: Int, fanOut: Int = 2, scale: Float = 0.1, seed: UInt64 = 0) throws -> TreeLayout {
        var rng = Xoshiro256StarStar(seed: seed, stream: 11)
        let values = (0..<(items.count * dimension)).map { _ in Float(rng.nextGaussian()) * scale }
        return try TreeBuilder.categoryOrder(embeddings: Matrix(rows: items.count, cols: dimension, values: values),
                                             items: items, categories: categories, options: .init(fanOut: fanOut, seed: seed))
    }
}

/// Quality of one method on held-out users.
public struct TDMMethodResult: Sendable, Equatable, Codable {
    /// Method name ("tree + attention-DNN", …).
    public var method: String
    /// Mean recall@10 over users.
    public var recall10: Double
    /// Mean recall@50 over users.
    public var recall50: Double
    /// Mean precision@10.
    public var precision10: Double
    /// Share of users with at least one truth item in the top 10.
    public var hitRate10: Double
    /// Share of users with at least one truth item in the top 50.
    public var hitRate50: Double
    /// Mean model evaluations (node or item scores) per query.
    public var evaluationsPerQuery: Double
}

/// Evaluation helpers of the TDM pipeline (beam recall, brute-force comparison, baselines).
public enum TDMEvaluation {
    /// Recall@10/@50 and precision@10 of `retrieve` (which returns at least 50 items, best first,
    /// and its model evaluations) over `users`; each user's history is the input and excluded.
    /// O(users · cost of retrieve).
    public static func evaluate(
        method: String, users: [HeldOutUser], retrieve: (HeldOutUser) throws -> (items: [ItemID], evaluations: Int)
    ) throws -> TDMMethodResult {
        var r10 = RunningMean(), r50 = RunningMean(), p10 = RunningMean(), cost = RunningMean()
        var h10 = RunningMean(), h50 = RunningMean()
        for user in users {
            let truth = Set(user.truth)
            guard !truth.isEmpty else { continue }
            let (items, evaluations) = try retrieve(user)
            if let v = RankingMetrics.recall(retrieved: items, truth: truth, k: 10) { r10.add(v) }
            if let v = RankingMetrics.recall(retrieved: items, truth: truth, k: 50) { r50.add(v) }
            if let v = RankingMetrics.precision(retrieved: items, truth: truth, k: 10) { p10.add(v) }
            if let v = RankingMetrics.hitRate(retrieved: items, truth: truth, k: 10) { h10.add(v) }
            if let v = RankingMetrics.hitRate(retrieved: items, truth: truth, k: 50) { h50.add(v) }
            cost.add(Double(evaluations))
        }
        return TDMMethodResult(method: method, recall10: r10.mean ?? 0, recall50: r50.mean ?? 0,
                               precision10: p10.mean ?? 0, hitRate10: h10.mean ?? 0, hitRate50: h50.mean ?? 0,
                               evaluationsPerQuery: cost.mean ?? 0)
    }

    /// A retrieval function for the serving model of `model` over its current tree: beam search
    /// with `beamWidth`, or, when `bruteForce`, the same scorer over all leaves.
    public static func retriever(
        model: TDMModel, beamWidth: Int, k: Int = 50, bruteForce: Bool = false
    ) throws -> (HeldOutUser) throws -> (items: [ItemID], evaluations: Int) {
        let layout = model.layout()
        let serving = try model.servingModel()
        func make<S: NodeScorer>(_ scorer: S) throws -> any Retriever {
            if bruteForce {
                return try BruteForceRetriever(scorer: scorer, items: layout.levels[layout.depth].embeddings,
                                               ids: layout.leafItems, leafLevel: layout.depth)
            }
            return try TreeRetriever(source: layout, scorer: scorer, itemCount: layout.itemCount, dimension: layout.dimension)
        }
        let retriever = try make(serving.scorer.scorer)
        return { user in
            let query = try serving.producer.queries(history: user.history, excluded: Set(user.history)).queries[0]
            let result = try retriever.search(query, parameters: .init(k: k, beamWidth: beamWidth))
            return (result.items.map(\.item), result.statistics.modelEvaluations)
        }
    }

    /// The flat exact inner-product scan over `model`'s leaf (item) embeddings with the model's
    /// mean-pooled user vector (the TDM-trained product model, scanned flat). `model` should be an
    /// inner-product model.
    public static func flatRetriever(model: TDMModel, k: Int = 50) throws -> (HeldOutUser) throws -> (items: [ItemID], evaluations: Int) {
        let (leaves, ids) = model.leafEmbeddings()
        let encoder = try model.encoder()
        return try flatRetriever(items: leaves, ids: ids, k: k) { try encoder.encode(history: $0).vector }
    }

    /// The flat exact inner-product scan over a two-tower's item vectors (`items.count × d`, row `r`
    /// = `ids[r]`) with its encoder's user vector: the flat product-DNN (YouTube-DNN) baseline.
    public static func flatRetriever(twoTower encoder: TwoTowerEncoder, items: Matrix, ids: [ItemID],
                                     k: Int = 50) throws -> (HeldOutUser) throws -> (items: [ItemID], evaluations: Int) {
        try flatRetriever(items: items, ids: ids, k: k) { try encoder.encode(history: $0).vector }
    }

    /// The exact flat scan of `items` with the user vector `userVector(history)`; the history is excluded.
    private static func flatRetriever(
        items: Matrix, ids: [ItemID], k: Int, userVector: @escaping ([ItemID]) throws -> [Float]
    ) throws -> (HeldOutUser) throws -> (items: [ItemID], evaluations: Int) {
        let flat = try FlatRetriever(items: items, ids: ids)
        return { user in
            let q = Query(vector: try userVector(user.history), excluded: Set(user.history))
            let r = try flat.search(q, parameters: .init(k: k))
            return (r.items.map(\.item), r.statistics.modelEvaluations)
        }
    }

    /// Most popular training items, the user's history excluded.
    public static func popularityRetriever(popularity: [ItemID: Int], k: Int = 50) -> (HeldOutUser) -> (items: [ItemID], evaluations: Int) {
        let ranked = popularity.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.map(\.key)
        return { user in
            let seen = Set(user.history)
            return (Array(ranked.lazy.filter { !seen.contains($0) }.prefix(k)), 0)
        }
    }

    /// A per-epoch validator for ``TDMTrainer``: mean recall@`k` of beam search (width
    /// `beamWidth`) with the model's current weights on (at most `maxUsers` of) `users`.
    public static func beamRecallValidator(users: [HeldOutUser], k: Int = 50, beamWidth: Int = 100,
                                           maxUsers: Int = 500) -> (TDMModel) throws -> Double {
        let chosen = Array(users.prefix(maxUsers))
        return { model in
            let retrieve = try retriever(model: model, beamWidth: beamWidth, k: k)
            var mean = RunningMean()
            for user in chosen where !user.truth.isEmpty {
                if let r = RankingMetrics.recall(retrieved: try retrieve(user).items, truth: Set(user.truth), k: k) { mean.add(r) }
            }
            return mean.mean ?? 0
        }
    }
}

/// What beam search keeps on each level compared with the brute-force top-k of the same scorer.
public struct TDMLevelTrace: Sendable, Equatable {
    /// For levels `1 ... depth`: the share of the brute-force top-k's ancestors on that level that the
    /// beam kept (`|beam_l ∩ anc_l(top-k)| / |anc_l(top-k)|`); the last entry is the final recall of
    /// the beam's top-k against the brute-force top-k.
    public var levelRecall: [Double]
    /// The beam's final top-k items.
    public var beamItems: [ItemID]
    /// The brute-force top-k items.
    public var bruteForceItems: [ItemID]
}

/// Compares ``TreeRetriever``'s beam search with brute force for one tree and scorer. Everything
/// that depends only on the tree (both retrievers, each node's parent, each item's leaf) is built
/// once here, so tracing many queries costs only the searches.
public struct TDMBeamTracer<S: NodeScorer> {
    private let tree: TreeLayout
    private let brute: BruteForceRetriever<S>
    private let beam: TreeRetriever<TreeLayout, S>
    /// `parents[l][i]`: the parent (on level `l - 1`) of node `i` of level `l`; `parents[0]` is empty.
    private let parents: [[Int]]
    private let leafOf: [ItemID: Int]

    /// A tracer over `tree` with `scorer`. O(nodes + items).
    /// - Throws: what the retrievers throw for a tree and scorer that do not fit.
    public init(tree: TreeLayout, scorer: S) throws {
        self.tree = tree
        brute = try BruteForceRetriever(scorer: scorer, items: tree.levels[tree.depth].embeddings, ids: tree.leafItems,
                                        leafLevel: tree.depth)
        beam = try TreeRetriever(source: tree, scorer: scorer, itemCount: tree.itemCount, dimension: tree.dimension)
        var parents: [[Int]] = [[]]
        for l in 0..<tree.depth {
            let off = tree.levels[l].childOffsets
            var p = [Int](repeating: 0, count: tree.levels[l + 1].nodeCount)
            for i in 0..<tree.levels[l].nodeCount { for c in Int(off[i])..<Int(off[i + 1]) { p[c] = i } }
            parents.append(p)
        }
        self.parents = parents
        var leafOf = [ItemID: Int](minimumCapacity: tree.itemCount)
        for (leaf, id) in tree.leafItems.enumerated() { leafOf[id] = leaf }
        self.leafOf = leafOf
    }

    /// Brute force (every leaf scored) and the beam search, observed level by level, for `query`.
    /// - Complexity: O(N) + O(depth · beamWidth · fanOut) model evaluations.
    /// - Throws: what the scorer's session throws for the query.
    public func trace(query: Query, k: Int, beamWidth: Int) throws -> TDMLevelTrace {
        let depth = tree.depth
        let bruteItems = try brute.search(query, parameters: .init(k: k)).items.map(\.item)
        // Ancestors of the brute-force top-k on every level.
        var ancestors = [Set<Int>](repeating: [], count: depth + 1)
        for item in bruteItems {
            var node = leafOf[item]!
            for l in stride(from: depth, through: 1, by: -1) { ancestors[l].insert(node); node = parents[l][node] }
        }
        var recall = [Double](repeating: 1, count: depth)
        let result = try beam.search(query, parameters: .init(k: k, beamWidth: beamWidth)) { level, nodes in
            guard level >= 1, !ancestors[level].isEmpty else { return }
            let found = nodes.reduce(0) { $0 + (ancestors[level].contains(Int($1)) ? 1 : 0) }
            recall[level - 1] = Double(found) / Double(ancestors[level].count)
        }
        return TDMLevelTrace(levelRecall: recall, beamItems: result.items.map(\.item), bruteForceItems: bruteItems)
    }
}

/// Diagnostics of beam search against brute force with the same scorer.
public enum TDMBeamDiagnostics {
    /// One query's trace (``TDMBeamTracer/trace(query:k:beamWidth:)``); for many queries on one
    /// tree, make a ``TDMBeamTracer`` once instead.
    /// - Complexity: O(nodes) to prepare, then as the tracer's `trace`.
    /// - Throws: what the scorer's session throws for the query.
    public static func trace<S: NodeScorer>(tree: TreeLayout, scorer: S, query: Query, k: Int, beamWidth: Int) throws -> TDMLevelTrace {
        try TDMBeamTracer(tree: tree, scorer: scorer).trace(query: query, k: k, beamWidth: beamWidth)
    }

    /// Mean per-level recall (see ``TDMLevelTrace/levelRecall``) of the model's serving scorer
    /// over `users` (history as input, excluded from results).
    public static func meanLevelRecall(model: TDMModel, users: [HeldOutUser], k: Int, beamWidth: Int) throws -> [Double] {
        let layout = model.layout()
        let serving = try model.servingModel()
        func mean<S: NodeScorer>(_ scorer: S) throws -> [Double] {
            let tracer = try TDMBeamTracer(tree: layout, scorer: scorer)
            var sums = [Double](repeating: 0, count: layout.depth)
            for user in users {
                let q = try serving.producer.queries(history: user.history, excluded: Set(user.history)).queries[0]
                for (i, r) in try tracer.trace(query: q, k: k, beamWidth: beamWidth).levelRecall.enumerated() { sums[i] += r }
            }
            return sums.map { $0 / Double(max(1, users.count)) }
        }
        return try mean(serving.scorer.scorer)
    }
}
