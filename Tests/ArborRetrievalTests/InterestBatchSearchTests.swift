import ArborMath
import ArborTree
import ArborInference
import Testing
@testable import ArborRetrieval

@Suite("Several interests of one user through the tree, level-synchronously")
struct InterestBatchSearchTests {
    /// With a beam as wide as the widest level, the merged tree result for K interest vectors is
    /// the brute-force top-k over items of the maximum over interests (scores within 1e-4).
    @Test(arguments: [2, 3, 4])
    func wideBeamMergeEqualsBruteForceMaxOverInterests(interests: Int) throws {
        let n = 700, d = 8, k = 30
        let e = randomMatrix(rows: n, cols: d, seed: 11)
        let ids = (0..<n).map { ItemID(UInt64(5000 + $0)) }
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: ids, options: .init(fanOut: 16))
        let widest = tree.levels.map(\.nodeCount).max()!
        let retriever = try TreeRetriever(tree: tree)
        let vectors = randomMatrix(rows: interests, cols: d, seed: UInt64(20 + interests))
        let excluded: Set<ItemID> = [ids[3], ids[500]]
        let queries = (0..<interests).map { Query(vector: Array(vectors.row($0)), excluded: excluded) }
        let results = try retriever.search(batch: queries, parameters: SearchParameters(k: k, beamWidth: widest))
        let merged = ResultMerge.bestScorePerItem(results, k: k)
        // Brute force: per item the max over interests, excluded items left out, ties by id.
        var best: [(ItemID, Float)] = []
        for r in 0..<n where !excluded.contains(ids[r]) {
            var m = -Float.infinity
            for q in 0..<interests {
                var s: Float = 0
                for c in 0..<d { s += e[r, c] * vectors[q, c] }
                m = max(m, s)
            }
            best.append((ids[r], m))
        }
        best.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
        #expect(merged.items.map(\.item) == best.prefix(k).map(\.0))
        for (a, b) in zip(merged.items, best.prefix(k)) { #expect(abs(a.score - b.1) < 1e-4) }
    }

    /// A narrow beam: each interest's result from the level-synchronous batch equals its own
    /// single search (same items, scores within 1e-5), and so do the evaluation counts.
    @Test func batchEqualsSeparateSearches() throws {
        let n = 3000, d = 16
        let e = randomMatrix(rows: n, cols: d, seed: 12)
        let ids = (0..<n).map { ItemID(UInt64($0)) }
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: ids, options: .init(fanOut: 16))
        let retriever = try TreeRetriever(tree: tree)
        let vectors = randomMatrix(rows: 4, cols: d, seed: 13)
        let queries = (0..<4).map { Query(vector: Array(vectors.row($0)), excluded: $0 == 1 ? [ItemID(7)] : []) }
        let p = SearchParameters(k: 20, beamWidth: 20)
        let batch = try retriever.search(batch: queries, parameters: p)
        for (q, result) in zip(queries, batch) {
            let single = try retriever.search(q, parameters: p)
            #expect(result.items.map(\.item) == single.items.map(\.item))
            for (a, b) in zip(result.items, single.items) { #expect(abs(a.score - b.score) < 1e-5) }
            #expect(result.statistics == single.statistics)
        }
        // Duplicate interests give identical lists, and the merge keeps k distinct items.
        let twice = try retriever.search(batch: [queries[0], queries[0]], parameters: p)
        #expect(twice[0] == twice[1])
        let merged = ResultMerge.bestScorePerItem(twice, k: 20)
        #expect(Set(merged.items.map(\.item)).count == merged.items.count && merged.items.count == 20)
    }
}
