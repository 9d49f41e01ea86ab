import Foundation
@testable import ArborInference
import Testing
import ArborMath
import ArborTree
@testable import ArborModels
@testable import ArborRetrieval

@Suite struct DeepScorerTests {
    let n = 300, d = 6
    var items: Matrix { randomMatrix(rows: n, cols: d, seed: 21) }
    var ids: [ItemID] { (0..<n).map { ItemID(UInt64(500 + $0)) } }

    /// With a beam as wide as the widest level, beam search with a deep scorer returns that scorer's
    /// brute-force top-k over the leaves.
    @Test(arguments: [2, 4])
    func dnnWideBeamEqualsBruteForce(fanOut: Int) throws {
        let tree = try TreeBuilder.balancedKMeans(embeddings: items, items: ids, options: .init(fanOut: fanOut))
        let scorer = try DNNScorer.random(dimension: d, hidden: [16, 8], seed: 3)
        let beam = try TreeRetriever(source: tree, scorer: scorer, itemCount: n, dimension: d)
        let brute = try BruteForceRetriever(scorer: scorer, items: tree.levels[tree.depth].embeddings,
                                            ids: tree.leafItems, leafLevel: tree.depth, blockRows: 64)
        let widest = tree.levels.map(\.nodeCount).max()!
        for q in 0..<10 {
            let query = Query(vector: Array(randomMatrix(rows: 1, cols: d, seed: UInt64(q)).values))
            let a = try beam.search(query, parameters: .init(k: 20, beamWidth: widest))
            let b = try brute.search(query, parameters: .init(k: 20))
            #expect(a.items.map(\.item) == b.items.map(\.item))
        }
    }

    @Test func dnnSessionEqualsTheMLPOnConcatenatedInputs() throws {
        let scorer = try DNNScorer.random(dimension: d, hidden: [5], seed: 4)
        let u = Array(randomMatrix(rows: 1, cols: d, seed: 9).values)
        var session = try scorer.makeSession(for: Query(vector: u))
        let nodes = randomMatrix(rows: 7, cols: d, seed: 10)
        var scores: [Float] = []
        session.score(nodes: nodes, level: 0, into: &scores)
        // Reference: the InferenceMLP on [u, n, u ⊙ n] directly.
        var input = Matrix(rows: 0, cols: 3 * d)
        for r in 0..<nodes.rows {
            let n = Array(nodes.row(r))
            input.appendRow(u + n + zip(u, n).map { $0 * $1 })
        }
        var buffers: [Matrix] = []
        let reference = scorer.mlp.forward(input, buffers: &buffers).values
        #expect(scores.count == reference.count)
        for (a, b) in zip(scores, reference) { #expect(abs(a - b) < 1e-4) }
    }

    @Test(arguments: [2, 3])
    func attentionWideBeamEqualsBruteForce(fanOut: Int) throws {
        let tree = try TreeBuilder.balancedKMeans(embeddings: items, items: ids, options: .init(fanOut: fanOut))
        let scorer = try AttentionScorer.random(dimension: d, behaviourEmbeddings: items, behaviourIDs: ids,
                                                attentionHidden: 8, hidden: [12], seed: 5)
        let beam = try TreeRetriever(source: tree, scorer: scorer, itemCount: n, dimension: d)
        let brute = try BruteForceRetriever(scorer: scorer, items: tree.levels[tree.depth].embeddings,
                                            ids: tree.leafItems, leafLevel: tree.depth, blockRows: 50)
        let widest = tree.levels.map(\.nodeCount).max()!
        for q in 0..<6 {
            let history = (0..<(q + 1) * 3).map { ids[($0 * 37 + q) % n] }
            let query = Query(history: history, excluded: Set(history))
            let a = try beam.search(query, parameters: .init(k: 15, beamWidth: widest))
            let b = try brute.search(query, parameters: .init(k: 15))
            #expect(a.items.map(\.item) == b.items.map(\.item))
            #expect(Set(history).isDisjoint(with: a.items.map(\.item)))
        }
    }

    @Test func attentionWeightsDependOnTheNode() throws {
        // Two behaviours; a node equal to one of them must pool closer to it than to the other.
        let scorer = try AttentionScorer.random(dimension: d, behaviourEmbeddings: items, behaviourIDs: ids,
                                                attentionHidden: 8, hidden: [4], seed: 6)
        var session = try scorer.makeSession(for: Query(history: [ids[0], ids[1]]))
        var scores: [Float] = []
        var nodes = Matrix(rows: 0, cols: d)
        nodes.appendRow(items.row(0))
        nodes.appendRow(items.row(1))
        session.score(nodes: nodes, level: 0, into: &scores)
        #expect(scores.count == 2)
        #expect(session.weights.rows == 2)
        let w = session.weights
        #expect(abs(w[0, 0] + w[0, 1] - 1) < 1e-5)
        #expect(w[0, 0] != w[1, 0])
    }

    @Test func attentionHistoryEdgeCases() throws {
        let scorer = try AttentionScorer.random(dimension: d, behaviourEmbeddings: items, behaviourIDs: ids, seed: 7)
        // Empty history: pooled vector 0, still scores every node.
        var empty = try scorer.makeSession(for: Query())
        var scores: [Float] = []
        empty.score(nodes: randomMatrix(rows: 3, cols: d, seed: 1), level: 0, into: &scores)
        #expect(scores.count == 3 && scores.allSatisfy(\.isFinite))
        // Unknown ids: skipped and counted by default, rejected on request.
        let session = try scorer.makeSession(for: Query(history: [ids[0], 9_999_999]))
        #expect(session.skipped == 1)
        let strict = try AttentionScorer(dimension: d, behaviourEmbeddings: items, behaviourIDs: ids,
                                         attention: scorer.attention, output: scorer.output, unknownItems: .reject)
        #expect(throws: ArborError.unknownItem(9_999_999)) { try strict.makeSession(for: Query(history: [9_999_999])) }
    }

    /// The attention unit applies each layer's own activation: a sigmoid hidden unit gives weights
    /// from sigmoid(±5), an identity one from ±5 (softmax over the two behaviours either way).
    @Test func attentionUnitAppliesItsActivation() throws {
        let d = 2
        let items = try Matrix(rows: 2, cols: d, values: [1, 0, 0, 1])
        let ids: [ItemID] = [1, 2]
        func layer(_ r: Int, _ c: Int, _ v: [Float], _ a: InferenceActivation) throws -> DenseLayer {
            try DenseLayer(weight: Matrix(rows: r, cols: c, values: v), bias: Array(repeating: 0, count: c), activation: a)
        }
        // Attention: 3d -> 1 hidden unit (the activation under test) -> 1. Output: reads pooled[0] only.
        func scorer(_ act: InferenceActivation) throws -> AttentionScorer {
            let att = try InferenceMLP(layers: [try layer(6, 1, [5, -5, 0, 0, 0, 0], act), try layer(1, 1, [1], .identity)])
            let out = try InferenceMLP(layers: [try layer(6, 1, [1, 0, 0, 0, 0, 0], .identity)])
            return try AttentionScorer(dimension: d, behaviourEmbeddings: items, behaviourIDs: ids, attention: att, output: out)
        }
        // pooled[0] is the softmax weight of the first behaviour: logits act(5) and act(-5).
        func firstWeight(_ a1: Float, _ a2: Float) -> Float { Foundation.exp(a1) / (Foundation.exp(a1) + Foundation.exp(a2)) }
        let sigmoid = { (x: Float) in 1 / (1 + Foundation.exp(-x)) }
        let node = try Matrix(rows: 1, cols: d, values: [0, 0])
        var session = try scorer(.sigmoid).makeSession(for: Query(history: ids))
        var scores: [Float] = []
        session.score(nodes: node, level: 0, into: &scores)
        var identitySession = try scorer(.identity).makeSession(for: Query(history: ids))
        var identityScores: [Float] = []
        identitySession.score(nodes: node, level: 0, into: &identityScores)
        #expect(scores.count == 1 && identityScores.count == 1)
        #expect(abs(scores[0] - firstWeight(sigmoid(5), sigmoid(-5))) < 1e-4)
        #expect(abs(identityScores[0] - firstWeight(5, -5)) < 1e-4)
    }
}
