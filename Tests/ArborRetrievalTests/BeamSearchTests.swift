import Testing
import ArborMath
import ArborTree
import ArborInference
import ArborModels
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

import Dispatch
import Synchronization
final class ResultBox: Sendable {
    private let store: Mutex<[[ScoredItem]]>
    init(count: Int) { store = Mutex(Array(repeating: [], count: count)) }
    func set(_ i: Int, _ v: [ScoredItem]) { store.withLock { $0[i] = v } }
    var values: [[ScoredItem]] { store.withLock { $0 } }
}
