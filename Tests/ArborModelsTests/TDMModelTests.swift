import Foundation
import Testing
import ArborMath
import ArborNN
import ArborTree
@testable import ArborModels
@testable import ArborRetrieval

/// Tiny planted data: items 0..<n; "even" users watch even items, "odd" users odd ones.
struct TDMToyData {
    let n: Int
    let d: Int
    let ids: [ItemID]
    let tree: TreeLayout
    let sequences: [[ItemID]]

    init(n: Int = 32, d: Int = 8, users: Int = 40, length: Int = 12, seed: UInt64 = 1) throws {
        self.n = n
        self.d = d
        ids = (0..<n).map { ItemID(UInt64(100 + $0)) }
        var rng = SplitMix64(seed: seed)
        let emb = try Matrix(rows: n, cols: d, values: (0..<(n * d)).map { _ in (rng.nextUnitFloat() - 0.5) * 0.2 })
        // TDM's category-ordered initial tree (category = parity); unlike k-means it changes no BLAS
        // thread count while parallel tests run GEMMs.
        tree = try TreeBuilder.categoryOrder(embeddings: emb, items: ids, categories: (0..<n).map { UInt32($0 % 2) },
                                             options: .init(fanOut: 2, seed: seed))
        var seqs: [[ItemID]] = []
        for u in 0..<users {
            let parity = u % 2
            seqs.append((0..<length).map { _ in
                let half = Int(rng.next() % UInt64(n / 2))
                return ItemID(UInt64(100 + 2 * half + parity))
            })
        }
        sequences = seqs
    }

    func model(_ kind: TDMScorerKind, seed: UInt64 = 3, maxHistory: Int = 6, recency: Bool = false,
               hierarchical: Bool = false) throws -> TDMModel {
        try TDMModel(config: .init(kind: kind, dimension: d, hidden: [12, 6], attentionHidden: 5, maxHistory: maxHistory,
                                   recencyEmbedding: recency, hierarchicalFeatures: hierarchical, embeddingScale: 0.3, seed: seed),
                     tree: tree, items: ids)
    }
}

/// Serving scores of `nodes` (local indices of `level`) for `history`.
func servingScores(_ model: TDMModel, history: [ItemID], level: Int, nodes: [Int]) throws -> [Float] {
    let layout = model.layout()
    var m = Matrix(rows: 0, cols: model.dimension)
    for n in nodes { m.appendRow(layout.levels[level].embeddings.row(n)) }
    var out: [Float] = []
    let serving = try model.servingModel()
    let query = try serving.producer.queries(history: history, excluded: []).queries[0]
    func score<S: NodeScorer>(_ scorer: S) throws {
        var session = try scorer.makeSession(for: query)
        session.score(nodes: m, level: level, into: &out)
    }
    try score(serving.scorer.scorer)
    return out
}

@Suite(.serialized) struct TDMModelTests {
    /// Same weights → the training forward pass and the serving scorer give the same scores.
    @Test(arguments: TDMScorerKind.allCases)
    func trainingForwardEqualsServingScorer(kind: TDMScorerKind) throws {
        let toy = try TDMToyData()
        let model = try toy.model(kind)
        // Train a little so weights are not at their initial values.
        _ = try TDMTrainer(config: .init(epochs: 1, batchSize: 16, negatives: .constant(2), seed: 1))
            .train(model, samples: TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6))
        let histories: [[ItemID]] = [[100, 102, 104], Array(toy.ids.prefix(9)), [101], [ItemID(9999), 103, 105]]
        for history in histories {
            for level in [1, 3, toy.tree.depth] {
                let nodes = Array(0..<toy.tree.levels[level].nodeCount)
                let a = try model.scores(history: history, level: level, nodes: nodes)
                let b = try servingScores(model, history: history, level: level, nodes: nodes)
                #expect(a.count == b.count)
                for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-4 * max(1, abs(y)), "\(kind) level \(level): \(x) vs \(y)") }
            }
        }
    }

    /// The attention model's recency embedding: trained (it leaves zero), and the serving scorer
    /// adds the same row to the same behaviour as training: the `r`-th most recent kept one, with
    /// unknown ids and behaviours older than `maxHistory` not counted.
    @Test func recencyEmbeddingTrainsAndServesAlike() throws {
        let toy = try TDMToyData()
        let model = try toy.model(.attention, recency: true)
        let positions = try #require(model.positions)
        #expect(positions.shape == [6, toy.d] && positions.value.allSatisfy { $0 == 0 })
        #expect(model.sparseParameters.contains { $0 === positions })
        _ = try TDMTrainer(config: .init(epochs: 2, batchSize: 16, negatives: .constant(2), seed: 1))
            .train(model, samples: TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6))
        #expect(positions.value.contains { $0 != 0 })
        let scorer = try model.attentionScorer()
        #expect(scorer.positions?.values == positions.value)
        let histories: [[ItemID]] = [[100, 102, 104], Array(toy.ids.prefix(9)), [101], [ItemID(9999), 103, ItemID(9998), 105], []]
        for history in histories {
            for level in [1, toy.tree.depth] {
                let nodes = Array(0..<toy.tree.levels[level].nodeCount)
                let a = try model.scores(history: history, level: level, nodes: nodes)
                let b = try servingScores(model, history: history, level: level, nodes: nodes)
                #expect(a.count == b.count)
                for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-4 * max(1, abs(y)), "level \(level): \(x) vs \(y)") }
            }
        }
        // The order of the behaviours now matters (without positions attention pools a set).
        let order = try model.scores(history: [100, 102, 104], level: toy.tree.depth, nodes: [0, 1, 2])
        let reversed = try model.scores(history: [104, 102, 100], level: toy.tree.depth, nodes: [0, 1, 2])
        #expect(order != reversed)
    }

    /// Recency ranks of a padded batch: 0 for the last real behaviour, -1 for padding.
    @Test func recencyRanksCountFromTheNewestBehaviour() {
        var batch = TDMBatch(length: 4)
        _ = batch.appendSample(rows: [7, 8, 9])
        _ = batch.appendSample(rows: [])
        _ = batch.appendSample(rows: [1, 2, 3, 4])
        #expect(batch.recencyRanks == [2, 1, 0, -1, -1, -1, -1, -1, 3, 2, 1, 0])
    }

    /// An empty history: attention pools to p = 0 in training and serving alike.
    @Test func attentionEmptyHistoryAgrees() throws {
        let toy = try TDMToyData()
        let model = try toy.model(.attention)
        let nodes = Array(0..<toy.tree.levels[2].nodeCount)
        let a = try model.scores(history: [], level: 2, nodes: nodes)
        let b = try servingScores(model, history: [], level: 2, nodes: nodes)
        #expect(a.count == b.count)
        for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-4) }
    }

    /// Training lowers the loss and learns the planted preference: even users rank even items first.
    @Test(arguments: [TDMScorerKind.innerProduct, .dnn, .attention])
    func trainingLearnsPlantedPreference(kind: TDMScorerKind) throws {
        let toy = try TDMToyData(users: 60, length: 14)
        let model = try toy.model(kind)
        let samples = TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6)
        let trainer = TDMTrainer(config: .init(epochs: 8, batchSize: 32, negatives: .constant(3),
                                               learningRate: 5e-3, sparseLearningRate: 3e-2, seed: 2))
        let report = try trainer.train(model, samples: samples)
        #expect(report.epochs.count == 8)
        #expect(report.epochs.last!.loss < report.epochs.first!.loss * 0.9, "\(report.epochs.map(\.loss))")
        // Leaf scores for an even history: even items above odd ones on average, and the top 10 mostly even.
        let leaves = Array(0..<toy.n)
        for parity in 0..<2 {
            let history = (0..<5).map { ItemID(UInt64(100 + 4 * $0 + parity)) }
            let s = try model.scores(history: history, level: toy.tree.depth, nodes: leaves)
            let ranked = leaves.sorted { s[$0] > s[$1] }.prefix(10)
            let matching = ranked.filter { Int(toy.tree.leafItems[$0].rawValue - 100) % 2 == parity }.count
            #expect(matching >= 8, "\(kind) parity \(parity): \(matching)/10")
        }
    }

    /// With a beam as wide as the widest level, beam search with each trained scorer returns its
    /// brute-force top-k.
    @Test(arguments: TDMScorerKind.allCases)
    func wideBeamEqualsBruteForceAfterTraining(kind: TDMScorerKind) throws {
        let toy = try TDMToyData()
        let model = try toy.model(kind)
        _ = try TDMTrainer(config: .init(epochs: 2, batchSize: 16, negatives: .constant(3), seed: 5))
            .train(model, samples: TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6))
        let layout = model.layout()
        let widest = layout.levels.map(\.nodeCount).max()!
        let serving = try model.servingModel()
        func check<S: NodeScorer>(_ scorer: S) throws {
            let beam = try TreeRetriever(source: layout, scorer: scorer, itemCount: layout.itemCount, dimension: layout.dimension)
            let brute = try BruteForceRetriever(scorer: scorer, items: layout.levels[layout.depth].embeddings,
                                                ids: layout.leafItems, leafLevel: layout.depth)
            for history in toy.sequences.prefix(6) {
                let q = try serving.producer.queries(history: Array(history.prefix(5)), excluded: []).queries[0]
                let a = try beam.search(q, parameters: .init(k: 8, beamWidth: widest))
                let b = try brute.search(q, parameters: .init(k: 8))
                #expect(a.items.map(\.item) == b.items.map(\.item))
            }
        }
        try check(serving.scorer.scorer)
    }

    /// The same seed gives bit-identical weights; Adagrad for the tables also trains.
    @Test func trainingIsDeterministicAndAdagradWorks() throws {
        let toy = try TDMToyData()
        let samples = TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6)
        func run(_ optimizer: TDMSparseOptimizer) throws -> (TDMModel, TDMTrainingReport) {
            let model = try toy.model(.attention)
            let report = try TDMTrainer(config: .init(epochs: 3, batchSize: 16, negatives: .constant(2),
                                                      sparseOptimizer: optimizer, seed: 9)).train(model, samples: samples)
            return (model, report)
        }
        let (a, _) = try run(.lazyAdam)
        let (b, _) = try run(.lazyAdam)
        #expect(a.parameters.map(\.value) == b.parameters.map(\.value))
        let (c, report) = try run(.adagrad)
        #expect(report.epochs.last!.loss < report.epochs.first!.loss)
        #expect(c.nodes.value != a.nodes.value)
    }

    @Test func negativeSchedules() {
        let sizes = [1, 2, 4, 8, 16]
        #expect(TDMNegativeSchedule.constant(3).counts(levelSizes: sizes) == [0, 1, 3, 3, 3])
        let growing = TDMNegativeSchedule.growing(total: 20).counts(levelSizes: sizes)
        #expect(growing[0] == 0 && growing[4] >= growing[3] && growing[3] >= growing[2])
        #expect(growing[4] == 8)
        #expect(TDMNegativeSchedule.perLevel([0, 1, 2]).counts(levelSizes: sizes) == [0, 1, 2, 2, 2])
    }

    @Test func batchHoldsOnePositivePerLevelAndValidNegatives() throws {
        let toy = try TDMToyData()
        let model = try toy.model(.dnn)
        let samples = TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6)
        let trainer = TDMTrainer()
        var rng = Xoshiro256StarStar(seed: 1)
        let negatives = TDMNegativeSchedule.constant(2).counts(levelSizes: toy.tree.levels.map(\.nodeCount))
        let batch = trainer.makeBatch(model: model, samples: samples, indices: 0..<4, negatives: negatives, rng: &rng)
        #expect(batch.sampleCount == 4)
        #expect(batch.labels.filter { $0 == 1 }.count == 4 * toy.tree.depth)
        // Each positive is an ancestor of the target's leaf.
        for (row, label) in batch.labels.enumerated() where label == 1 {
            let s = batch.sampleOfRow[row]
            let path = model.ancestors(ofLeaf: model.leafOfItem[samples[s].target]!)
            let g = batch.nodeOfRow[row]
            let level = model.levelStart.lastIndex { $0 <= g }!
            #expect(path[level] == g - model.levelStart[level])
        }
        for (row, label) in batch.labels.enumerated() where label == 0 {
            let g = batch.nodeOfRow[row]
            let level = model.levelStart.lastIndex { $0 <= g }!
            let s = batch.sampleOfRow[row]
            let path = model.ancestors(ofLeaf: model.leafOfItem[samples[s].target]!)
            #expect(path[level] != g - model.levelStart[level])
        }
    }

    /// Early stopping keeps the best epoch's weights, and checkpoints load back.
    @Test func validationEarlyStoppingAndCheckpoint() throws {
        let toy = try TDMToyData()
        let model = try toy.model(.innerProduct)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tdm-ckpt-\(getpid()).arbor").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var calls = 0
        let scores = [0.1, 0.5, 0.4, 0.3, 0.2, 0.9]
        var atBest: [Float] = []
        let report = try TDMTrainer(config: .init(epochs: 6, batchSize: 16, negatives: .constant(2), patience: 2, seed: 1))
            .train(model, samples: TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6), validate: { m in
                calls += 1
                if calls == 2 { atBest = m.nodes.value }
                return scores[calls - 1]
            }, checkpoint: { m, provenance in try m.writeIndex(to: path, provenance: provenance) })
        #expect(report.epochs.count == 4 && report.stoppedEarly && report.bestEpoch == 2)
        #expect(report.bestValidation == 0.5)
        #expect(model.nodes.value == atBest)
        let reader = try IndexReader(path: path)
        #expect(reader.nodeScorer == .innerProduct)
        #expect(try reader.loadLayout() == model.layout())
    }
}
