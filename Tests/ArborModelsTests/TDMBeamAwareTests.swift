import Foundation
import Testing
import ArborMath
import ArborNN
import ArborTree
@testable import ArborModels
@testable import ArborRetrieval

/// OTM's beam-aware training: the nodes beam search visits and their bottom-up pseudo-targets.
@Suite(.serialized) struct TDMBeamAwareTests {
    /// The brute-force pseudo-target of every node of `level`: the largest target among the
    /// leaves below it, found by walking down the child ranges (0 when none is a target).
    static func bruteForceTargets(_ tree: TreeLayout, level: Int, leafTargets: [Int: Float]) -> [Float] {
        (0..<tree.levels[level].nodeCount).map { node in
            var range = node..<(node + 1)
            for l in level..<tree.depth {
                let off = tree.levels[l].childOffsets
                range = Int(off[range.lowerBound])..<Int(off[range.upperBound])
            }
            return range.map { leafTargets[$0] ?? 0 }.max() ?? 0
        }
    }

    /// With a beam as wide as the widest level, every node of every level is visited, and each
    /// one's pseudo-target equals the brute-force definition exactly (single targets, target sets,
    /// graded targets; every scorer, with and without hierarchical features).
    @Test(arguments: [(TDMScorerKind.innerProduct, false), (.dnn, false), (.attention, false), (.dnn, true), (.attention, true)])
    func wideBeamPseudoTargetsEqualBruteForce(kind: TDMScorerKind, hierarchical: Bool) throws {
        let toy = try TDMToyData()
        let model = try toy.model(kind, hierarchical: hierarchical)
        let tree = model.tree
        let widest = tree.levels.map(\.nodeCount).max()!
        let targetSets: [[ItemID: Float]] = [
            [105: 1], [100: 1, 131: 1, 117: 1], [102: 1, 103: 0.5, 120: 0.25], [ItemID(9999): 1, 110: 1], [:],
        ]
        for (i, targets) in targetSets.enumerated() {
            let history = Array(toy.sequences[i].prefix(5))
            let rows = try TDMTrainer().beamAwareRows(model: model, history: history, targets: targets, beamWidth: widest)
            #expect(rows.count == tree.depth + 1 && rows[0].isEmpty)
            var leafTargets: [Int: Float] = [:]
            for (id, v) in targets { if let leaf = model.leafOfItem[id] { leafTargets[leaf] = v } }
            for level in 1...tree.depth {
                let expected = Self.bruteForceTargets(tree, level: level, leafTargets: leafTargets)
                #expect(rows[level].map(\.node).sorted() == Array(0..<tree.levels[level].nodeCount))
                for (node, label) in rows[level] { #expect(label == expected[node], "level \(level) node \(node)") }
            }
        }
    }

    /// A narrow beam visits exactly the children of the nodes the serving beam search keeps on the
    /// level above, with the same trained weights.
    @Test(arguments: [TDMScorerKind.innerProduct, .dnn, .attention])
    func narrowBeamVisitsWhatServingBeamSearchScores(kind: TDMScorerKind) throws {
        let toy = try TDMToyData()
        let model = try toy.model(kind)
        _ = try TDMTrainer(config: .init(epochs: 1, batchSize: 16, negatives: .constant(2), seed: 1))
            .train(model, samples: TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6))
        let layout = model.layout()
        let serving = try model.servingModel()
        let histories = toy.sequences.prefix(6).map { Array($0.prefix(5)) }
        let visits = try TDMBeamVisits.visits(model: model, histories: histories.map { model.behaviourRows(of: $0).rows },
                                              beamWidth: 3)
        func check<S: NodeScorer>(_ scorer: S) throws {
            let retriever = try TreeRetriever(source: layout, scorer: scorer, itemCount: layout.itemCount,
                                              dimension: layout.dimension)
            for (u, history) in histories.enumerated() {
                let q = try serving.producer.queries(history: history, excluded: []).queries[0]
                var kept = [[Int]](repeating: [0], count: layout.depth + 1)
                _ = try retriever.search(q, parameters: .init(k: 3, beamWidth: 3)) { level, nodes in
                    if level < layout.depth { kept[level] = nodes.map(Int.init).sorted() }
                }
                for level in 1...layout.depth {
                    let off = layout.levels[level - 1].childOffsets
                    let children = kept[level - 1].flatMap { Int(off[$0])..<Int(off[$0 + 1]) }.sorted()
                    #expect(visits[u][level].sorted() == children, "\(kind) user \(u) level \(level)")
                }
            }
        }
        try check(serving.scorer.scorer)
    }

    /// Beam-aware training alone (no random negatives) lowers the loss and beam search then
    /// retrieves the planted preference; with random negatives beside it, the batch holds both; 2 threads repeat bit for bit.
    @Test(arguments: [TDMScorerKind.innerProduct, .attention])
    func beamAwareTrainingLearns(kind: TDMScorerKind) throws {
        let toy = try TDMToyData(users: 60, length: 14)
        let samples = TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6)
        var config = TDMTrainingConfig(epochs: 8, batchSize: 32, negatives: .constant(3), learningRate: 5e-3,
                                       sparseLearningRate: 3e-2, seed: 2)
        config.targets = .beamAware(beamWidth: 4, randomNegatives: false)
        let model = try toy.model(kind)
        let report = try TDMTrainer(config: config).train(model, samples: samples)
        #expect(report.epochs.last!.loss < report.epochs.first!.loss * 0.9, "\(report.epochs.map(\.loss))")
        // What it is calibrated for: beam search of the training width (4) retrieves the planted parity. (Brute
        // force over all leaves is not: leaves no beam visits are never trained.)
        let layout = model.layout()
        let serving = try model.servingModel()
        func check<S: NodeScorer>(_ scorer: S) throws {
            let retriever = try TreeRetriever(source: layout, scorer: scorer, itemCount: layout.itemCount,
                                              dimension: layout.dimension)
            for parity in 0..<2 {
                let history = (0..<5).map { ItemID(UInt64(100 + 4 * $0 + parity)) }
                let q = try serving.producer.queries(history: history, excluded: []).queries[0]
                let top = try retriever.search(q, parameters: .init(k: 4, beamWidth: 4)).items.map(\.item)
                let matching = top.filter { Int($0.rawValue - 100) % 2 == parity }.count
                #expect(matching == 4, "\(kind) parity \(parity): \(matching)/4")
            }
        }
        try check(serving.scorer.scorer)
        config.epochs = 2
        config.threads = 2
        config.targets = .beamAware(beamWidth: 2, randomNegatives: true)
        let a = try toy.model(kind), b = try toy.model(kind)
        _ = try TDMTrainer(config: config).train(a, samples: samples)
        _ = try TDMTrainer(config: config).train(b, samples: samples)
        #expect(a.parameters.map(\.value) == b.parameters.map(\.value))
    }

    /// A beam width below 1 is rejected before any training; so are inner-product models with
    /// hierarchical features.
    @Test func badOptionsAreRejected() throws {
        let toy = try TDMToyData()
        let model = try toy.model(.dnn)
        let before = model.parameters.map(\.value)
        var config = TDMTrainingConfig(epochs: 1, batchSize: 8)
        config.targets = .beamAware(beamWidth: 0, randomNegatives: false)
        #expect(throws: TDMError.self) {
            try TDMTrainer(config: config).train(model, samples: TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6))
        }
        #expect(model.parameters.map(\.value) == before)
        #expect(throws: ArborError.self) { try TDMBeamVisits.visits(model: model, histories: [[0]], beamWidth: 0) }
        #expect(throws: ArborError.self) { try toy.model(.innerProduct, hierarchical: true) }
    }
}

/// OTM's target sets: a sample's target and the user's next items.
@Suite struct TDMTargetSetTests {
    /// The sliding window hands each sample the next `futureWindow` items (fewer at the end).
    @Test func slidingWindowFutureTargets() {
        let seq: [ItemID] = [1, 2, 3, 4, 5]
        let samples = TDMSample.slidingWindow(sequences: [seq], maxHistory: 2, futureWindow: 2)
        #expect(samples.map(\.target) == [2, 3, 4, 5])
        #expect(samples.map(\.futureTargets) == [[3, 4], [4, 5], [5], []])
        #expect(samples[2].history == [2, 3])
        #expect(TDMSample.slidingWindow(sequences: [seq], maxHistory: 2).allSatisfy { $0.futureTargets.isEmpty })
    }

    /// In a training batch, a visited node's label is 1 exactly when the target or a future target
    /// is below it (wide beam: every node of every level, checked against brute force).
    @Test func batchRowsUseTheWholeTargetSet() throws {
        let toy = try TDMToyData()
        let model = try toy.model(.dnn)
        let tree = model.tree
        let sample = TDMSample(history: [100, 102], target: 104, futureTargets: [131, 117, ItemID(9999)])
        let trainer = TDMTrainer()
        var rng = Xoshiro256StarStar(seed: 1)
        let plan = trainer.plan(model: model, samples: [sample], indices: [0], negatives: [], randomRows: false, rng: &rng)
        var batch = plan.batch
        try trainer.appendBeamRows(model: model, batch: &batch, sampleAt: plan.sampleAt, histories: plan.histories,
                                   leaves: plan.leaves, future: plan.future, beamWidth: tree.levels.map(\.nodeCount).max()!)
        var leafTargets: [Int: Float] = [:]
        for id: ItemID in [104, 131, 117] { leafTargets[model.leafOfItem[id]!] = 1 }
        #expect(batch.rowCount == tree.levels.dropFirst().reduce(0) { $0 + $1.nodeCount })
        for (row, g) in batch.nodeOfRow.enumerated() {
            let level = model.levelStart.lastIndex { $0 <= g }!
            let expected = TDMBeamAwareTests.bruteForceTargets(tree, level: level, leafTargets: leafTargets)
            #expect(batch.labels[row] == expected[g - model.levelStart[level]])
        }
    }
}
