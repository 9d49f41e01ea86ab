import ArborMath
import ArborPipelines
import ArborRetrieval
import ArborTree
import Testing

/// `InterestCost` times users of K interest vectors against one vector on the same retriever; its
/// counts (users, evaluations) are exact, whatever the timing.
@Suite("Multi-interest serving cost")
struct InterestCostTests {
    private static func setUp() throws -> (any Retriever, [Query], TreeLayout) {
        var rng = SplitMix64(seed: 5)
        let n = 300, d = 6
        let e = try Matrix(rows: n, cols: d, values: (0 ..< n * d).map { _ in rng.nextUnitFloat() * 2 - 1 })
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: (0 ..< n).map { ItemID(UInt64($0)) },
                                                  options: .init(fanOut: 4))
        let queries = (0 ..< 10).map { _ in Query(vector: (0 ..< d).map { _ in rng.nextUnitFloat() * 2 - 1 }) }
        return (try TreeRetriever(tree: tree), queries, tree)
    }

    @Test func evaluationsAreExactAndMultiCoversK() throws {
        let (retriever, queries, tree) = try Self.setUp()
        let widest = tree.levels.map(\.nodeCount).max()!
        let rows = try InterestCost.measure(retriever: retriever, queries: queries, interests: 3, k: 5, beams: [2, widest])
        #expect(rows.map(\.beam) == [2, widest])
        for row in rows {
            #expect(row.single.queries == 3 && row.multi.queries == 3)  // 10 queries make 3 users of 3
            #expect(row.multiEvaluations >= row.singleEvaluations)
            #expect(row.multiEvaluations <= 3 * row.singleEvaluations + 1e-9)
        }
        // A beam as wide as the widest level scores every node below the root, for every vector.
        #expect(rows[1].singleEvaluations == Double(tree.nodeCount - 1))
        #expect(rows[1].multiEvaluations == Double(3 * (tree.nodeCount - 1)))
    }

    @Test func badInterestCountsAreRejectedBeforeAnySearch() throws {
        let (retriever, queries, _) = try Self.setUp()
        for bad in [0, -1, 65, Int.max] {
            #expect(throws: ArborError.self) {
                try InterestCost.measure(retriever: retriever, queries: queries, interests: bad, k: 5, beams: [4])
            }
        }
        #expect(throws: ArborError.self) {  // 10 queries make no user of 11 interests
            try InterestCost.measure(retriever: retriever, queries: queries, interests: 11, k: 5, beams: [4])
        }
    }
}
