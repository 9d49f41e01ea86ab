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
        // The same through the merged entry point, with a beam per interest and with one shared beam.
        for mode in InterestBeams.allCases {
            let p = SearchParameters(k: k, beamWidth: widest, interestBeams: mode)
            let result = try retriever.search(interests: queries, parameters: p)
            #expect(result.items.map(\.item) == best.prefix(k).map(\.0), "\(mode)")
            for (a, b) in zip(result.items, best.prefix(k)) { #expect(abs(a.score - b.1) < 1e-4) }
            // Every node below the root is scored once per interest in both modes.
            #expect(result.statistics.modelEvaluations == interests * (tree.nodeCount - 1))
        }
    }

    /// One shared beam is beam search on the best score over the interests: with a narrow beam it
    /// equals a single beam search whose scorer is that maximum (brute-force session), and each of
    /// its items carries the best interest's score.
    @Test func sharedBeamIsBeamSearchOnTheBestInterest() throws {
        let n = 2000, d = 8, k = 15
        let e = randomMatrix(rows: n, cols: d, seed: 41)
        let ids = (0..<n).map { ItemID(UInt64($0)) }
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: ids, options: .init(fanOut: 8))
        let retriever = try TreeRetriever(tree: tree)
        let vectors = randomMatrix(rows: 3, cols: d, seed: 42)
        let queries = (0..<3).map { Query(vector: Array(vectors.row($0)), excluded: [ItemID(5)]) }
        let p = SearchParameters(k: k, beamWidth: 12, interestBeams: .shared)
        let shared = try retriever.search(interests: queries, parameters: p)
        // The reference: the single-query beam search with a session that takes the max by hand.
        var session = MaxOfInnerProducts(vectors: (0..<3).map { Array(vectors.row($0)) })
        var workspace = BeamWorkspace(dimension: d)
        let reference = BeamSearch.run(view: tree, session: &session, k: k, beamWidth: 12, excluded: [ItemID(5)],
                                       workspace: &workspace)
        #expect(shared.items.map(\.item) == reference.items.map(\.item))
        for (a, b) in zip(shared.items, reference.items) { #expect(abs(a.score - b.score) < 1e-5) }
        #expect(shared.statistics.modelEvaluations == 3 * reference.statistics.modelEvaluations)
        #expect(!shared.items.contains { $0.item == ItemID(5) })
        for hit in shared.items {
            let row = Int(hit.item.rawValue)
            let best = (0..<3).map { q in (0..<d).reduce(Float(0)) { $0 + e[row, $1] * vectors[q, $1] } }.max()!
            #expect(abs(hit.score - best) < 1e-4)
        }
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

/// A hand-written session: per node the maximum inner product over several vectors, one dot
/// product at a time (no BLAS), as the reference of the shared beam.
private struct MaxOfInnerProducts: ScoringSession {
    let vectors: [[Float]]

    mutating func score(nodes: borrowing Matrix, level: Int, into scores: inout [Float]) {
        scores.removeAll(keepingCapacity: true)
        for r in 0..<nodes.rows {
            var best = -Float.infinity
            for v in vectors {
                var s: Float = 0
                for c in 0..<nodes.cols { s += nodes[r, c] * v[c] }
                best = max(best, s)
            }
            scores.append(best)
        }
    }
}
