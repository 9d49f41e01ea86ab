import ArborInference
import Testing
import ArborMath
import ArborTree
@testable import ArborModels
@testable import ArborRetrieval

@Suite struct ReviewTests {
    /// Retriever contract: "ties broken by smaller item id". Four items with the same vector, so every
    /// score ties; ids in descending row order. k = 1 must give item 0 from every retriever.
    @Test func tiesAtTheCutoffFollowTheItemIDContract() throws {
        let e = Matrix(rows: 4, cols: 2, repeating: 1)
        let ids: [ItemID] = [3, 2, 1, 0]
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: ids, options: .init(fanOut: 2))
        let p = SearchParameters(k: 1, beamWidth: 16)
        let q = Query(vector: [1, 1])
        let flat = try FlatRetriever(items: e, ids: ids).search(q, parameters: p).items.map(\.item)
        let beam = try TreeRetriever(tree: tree).search(q, parameters: p).items.map(\.item)
        let brute = try BruteForceRetriever(scorer: InnerProductScorer(dimension: 2), items: e, ids: ids, leafLevel: tree.depth)
            .search(q, parameters: p).items.map(\.item)
        #expect(flat == [0])
        #expect(brute == [0])
        #expect(beam == [0])
        #expect(beam == flat)
    }

    /// Wide-beam tree vs flat scan with tied scores at the cut-off: the tree breaks ties by leaf
    /// index, the flat scan by row; with a leaf order other than the row order they disagree.
    @Test func wideBeamEqualsFlatScanWithTies() throws {
        let e = try Matrix(rows: 4, cols: 2, values: [1, 0, 0, 1, 1, 0, 0, 1])
        let ids: [ItemID] = [0, 1, 2, 3]
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: ids, options: .init(fanOut: 2))
        let p = SearchParameters(k: 2, beamWidth: 16)
        let q = Query(vector: [1, 1])
        let flat = try FlatRetriever(items: e, ids: ids).search(q, parameters: p).items.map(\.item)
        let beam = try TreeRetriever(tree: tree).search(q, parameters: p).items.map(\.item)
        #expect(beam == flat)
        #expect(flat == [0, 1])
    }

    /// Exclusions are applied only at the leaves, after the beam was cut to max(beam, k) at the level
    /// above: with excluded items under the best branches the tree returns fewer than k items
    /// although the catalogue holds plenty.
    @Test func excludedItemsDoNotStarveTheResult() throws {
        let n = 64, d = 4
        let e = randomMatrix(rows: n, cols: d, seed: 2)
        let ids = (0..<n).map { ItemID(UInt64($0)) }
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: ids, options: .init(fanOut: 2))
        let flat = try FlatRetriever(items: e, ids: ids)
        let q = Array(e.row(3))
        let top = try flat.search(Query(vector: q), parameters: .init(k: 10)).items.map(\.item)
        let excluded = Set(top)
        let res = try TreeRetriever(tree: tree).search(Query(vector: q, excluded: excluded),
                                                       parameters: .init(k: 5, beamWidth: 5))
        #expect(res.items.count == 5)
    }

    /// The attention unit's activation: only PReLU and ReLU are applied; `.sigmoid` is silently
    /// treated as identity, and the second layer's activation is never applied.
    @Test func attentionUnitHonoursItsActivation() throws {
        let d = 2
        let items = try Matrix(rows: 2, cols: d, values: [1, 0, 0, 1])
        let ids: [ItemID] = [1, 2]
        func layer(_ r: Int, _ c: Int, _ v: [Float], _ a: InferenceActivation) throws -> DenseLayer {
            try DenseLayer(weight: Matrix(rows: r, cols: c, values: v), bias: Array(repeating: 0, count: c), activation: a)
        }
        // Attention: 3d -> 1 hidden (sigmoid) -> 1. Output: 3d -> 1 reading only the pooled part.
        func scorer(_ act: InferenceActivation) throws -> AttentionScorer {
            let att = try InferenceMLP(layers: [try layer(6, 1, [5, -5, 0, 0, 0, 0], act), try layer(1, 1, [1], .identity)])
            let out = try InferenceMLP(layers: [try layer(6, 1, [1, 0, 0, 0, 0, 0], .identity)])
            return try AttentionScorer(dimension: d, behaviourEmbeddings: items, behaviourIDs: ids, attention: att, output: out)
        }
        // Reference by hand with sigmoid: logits a1 = sigmoid(5) , a2 = sigmoid(-5); pooled[0] = softmax weight of e1.
        let s1 = 1 / (1 + Foundation.exp(Float(-5))), s2 = 1 / (1 + Foundation.exp(Float(5)))
        let w1 = Foundation.exp(s1) / (Foundation.exp(s1) + Foundation.exp(s2))
        var session = try scorer(.sigmoid).makeSession(for: Query(history: ids))
        var scores: [Float] = []
        session.score(nodes: try Matrix(rows: 1, cols: d, values: [0, 0]), level: 0, into: &scores)
        var identitySession = try scorer(.identity).makeSession(for: Query(history: ids))
        var identityScores: [Float] = []
        identitySession.score(nodes: try Matrix(rows: 1, cols: d, values: [0, 0]), level: 0, into: &identityScores)
        #expect(abs(scores[0] - w1) < 1e-4)
    }

    /// Beam search over the index file must agree with the in-memory tree (sanity for the snapshot path).
    @Test func indexSnapshotBeamEqualsInMemoryBeam() throws {
        let n = 300, d = 8
        let e = randomMatrix(rows: n, cols: d, seed: 5)
        let ids = (0..<n).map { ItemID(UInt64(7 * $0 + 1)) }
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: ids, options: .init(fanOut: 4))
        let path = NSTemporaryDirectory() + "review-\(UInt64.random(in: 0..<UInt64.max)).arbor"
        defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + "-lock") }
        try IndexWriter(chunkBytes: 256).write(layout: tree, to: path)
        let reader = try IndexReader(path: path)
        let a = try TreeRetriever(tree: tree)
        let b = try TreeRetriever(source: reader, scorer: InnerProductScorer(dimension: d), itemCount: n, dimension: d)
        for qi in 0..<10 {
            let q = Query(vector: Array(randomMatrix(rows: 1, cols: d, seed: UInt64(100 + qi)).values))
            let p = SearchParameters(k: 10, beamWidth: 12)
            #expect(try a.search(q, parameters: p) == b.search(q, parameters: p))
        }
    }
}
import Foundation

extension ReviewTests {
    /// A scorer of another width than the index: the init trusts the `dimension:` argument, so the
    /// mismatch surfaces as a precondition trap in gatherEmbeddings at the first query.
    @Test func scorerWidthDifferentFromIndexIsAnError() throws {
        let n = 50
        let e = randomMatrix(rows: n, cols: 8, seed: 5)
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: (0..<n).map { ItemID(UInt64($0)) })
        let path = NSTemporaryDirectory() + "review-\(UInt64.random(in: 0..<UInt64.max)).arbor"
        defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + "-lock") }
        try IndexWriter().write(layout: tree, to: path)
        let reader = try IndexReader(path: path)
        #expect(throws: (any Error).self) {
            let r = try TreeRetriever(source: reader, scorer: InnerProductScorer(dimension: 4), itemCount: n, dimension: 4)
            _ = try r.search(Query(vector: [1, 0, 0, 0]), parameters: .init(k: 3))
        }
    }
}
