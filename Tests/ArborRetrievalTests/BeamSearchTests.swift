import Testing
import ArborMath
import ArborTree
import ArborInference
@testable import ArborRetrieval

func randomMatrix(rows: Int, cols: Int, seed: UInt64) -> Matrix {
    var rng = SplitMix64(seed: seed)
    return try! Matrix(rows: rows, cols: cols, values: (0..<(rows * cols)).map { _ in rng.nextUnitFloat() * 2 - 1 })
}

@Suite struct BeamSearchTests {
    /// With a beam at least as wide as the widest level, beam search scores every leaf and must return
    /// exactly the flat scan's top-k, for every fan-out.
    @Test(arguments: [2, 3, 4, 16, 64])
    func wideBeamEqualsFlatScan(fanOut: Int) throws {
        let n = 500, d = 8
        let e = randomMatrix(rows: n, cols: d, seed: UInt64(fanOut))
        let ids = (0..<n).map { ItemID(UInt64(1000 + $0)) }
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: ids, options: .init(fanOut: fanOut))
        let widest = tree.levels.map(\.nodeCount).max()!
        let beam = try TreeRetriever(tree: tree)
        let flat = try FlatRetriever(items: e, ids: ids)
        let queries = randomMatrix(rows: 20, cols: d, seed: 99)
        for q in 0..<queries.rows {
            let query = Query(vector: Array(queries.row(q)))
            let p = SearchParameters(k: 25, beamWidth: widest)
            let a = try beam.search(query, parameters: p)
            let b = try flat.search(query, parameters: p)
            #expect(a.items.map(\.item) == b.items.map(\.item))
            #expect(a.items.count == b.items.count)
            for (x, y) in zip(a.items, b.items) { #expect(abs(x.score - y.score) < 1e-4) }
            #expect(a.statistics.modelEvaluations == tree.nodeCount - 1)
        }
    }

    @Test func narrowBeamScoresFewNodesAndReturnsK() throws {
        let n = 4096, d = 8
        let e = randomMatrix(rows: n, cols: d, seed: 1)
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: (0..<n).map { ItemID(UInt64($0)) })
        let r = try TreeRetriever(tree: tree)
        let res = try r.search(Query(vector: Array(e.row(0))), parameters: .init(k: 10, beamWidth: 20))
        #expect(res.items.count == 10)
        #expect(res.statistics.modelEvaluations <= 2 * 20 * tree.depth)
        #expect(zip(res.items, res.items.dropFirst()).allSatisfy { $0.score >= $1.score })
    }

    @Test func excludedItemsAreNeverReturned() throws {
        let n = 200, d = 4
        let e = randomMatrix(rows: n, cols: d, seed: 2)
        let ids = (0..<n).map { ItemID(UInt64($0)) }
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: ids)
        let flat = try FlatRetriever(items: e, ids: ids)
        let r = try TreeRetriever(tree: tree)
        let q = Array(e.row(3))
        let top = try flat.search(Query(vector: q), parameters: .init(k: 5)).items.map(\.item)
        let excluded = Set(top.prefix(3))
        for retriever in [r, flat] as [any Retriever] {
            let res = try retriever.search(Query(vector: q, excluded: excluded), parameters: .init(k: 5, beamWidth: 256))
            #expect(res.items.count == 5)
            #expect(excluded.isDisjoint(with: res.items.map(\.item)))
            #expect(Array(res.items.map(\.item).prefix(2)) == Array(top.suffix(2)))
        }
    }

    @Test func oneItemTree() throws {
        let tree = try TreeBuilder.balancedKMeans(embeddings: Matrix(rows: 1, cols: 2, repeating: 1), items: [42])
        let res = try TreeRetriever(tree: tree).search(Query(vector: [1, 1]), parameters: .init(k: 3))
        #expect(res.items == [ScoredItem(item: 42, score: 2)])
    }

    @Test func badQueriesAreRejected() throws {
        let tree = try TreeBuilder.balancedKMeans(embeddings: randomMatrix(rows: 10, cols: 3, seed: 1),
                                                  items: (0..<10).map { ItemID(UInt64($0)) })
        let r = try TreeRetriever(tree: tree)
        #expect(throws: ArborError.dimensionMismatch(field: "query vector", expected: 3, found: 2)) {
            try r.search(Query(vector: [1, 2]), parameters: .init(k: 1))
        }
        #expect(throws: ArborError.nonFiniteValue(field: "query vector", row: 0)) {
            try r.search(Query(vector: [1, .nan, 0]), parameters: .init(k: 1))
        }
        #expect(throws: ArborError.self) { try r.search(Query(vector: [1, 2, 3]), parameters: .init(k: 0)) }
    }

    @Test func concurrentSearchesAgreeWithSerialOnes() throws {
        let n = 2000, d = 8
        let e = randomMatrix(rows: n, cols: d, seed: 3)
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: (0..<n).map { ItemID(UInt64($0)) })
        let r = try TreeRetriever(tree: tree)
        let queries = (0..<64).map { Query(vector: Array(e.row($0 * 3))) }
        let p = SearchParameters(k: 10, beamWidth: 40)
        let serial = try queries.map { try r.search($0, parameters: p).items }
        let results = ResultBox(count: queries.count)
        DispatchQueue.concurrentPerform(iterations: queries.count) { i in
            results.set(i, try! r.search(queries[i], parameters: p).items)
        }
        #expect(results.values == serial)
    }
}


extension BeamSearchTests {
    /// Four items with the same vector and ids in descending row order: every score ties, so `k = 1`
    /// is item 0 (the smallest id) from the tree, the flat scan and brute force alike.
    @Test func tiesAtTheCutoffGoToTheSmallerItemID() throws {
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
    }

    /// Tied scores at the cut-off with a leaf order that differs from the row order: a wide beam
    /// still returns what the flat scan returns (ties by item id, not by leaf or row position).
    @Test func wideBeamEqualsFlatScanWithTiesAtTheCutoff() throws {
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

    /// Excluded items under the best branches do not shrink the result: with the flat top 10
    /// excluded and a beam of 5, the tree still returns 5 items, none of them excluded.
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
        #expect(res.items.allSatisfy { !excluded.contains($0.item) })
    }
}

import Dispatch
final class ResultBox: Sendable {
    private let store: PosixMutex<[[ScoredItem]]>
    init(count: Int) { store = PosixMutex(Array(repeating: [], count: count)) }
    func set(_ i: Int, _ v: [ScoredItem]) { store.withLock { $0[i] = v } }
    var values: [[ScoredItem]] { store.withLock { $0 } }
}
