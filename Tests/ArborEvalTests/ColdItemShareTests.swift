import ArborMath
import ArborPipelines
import ArborRetrieval
import Testing

/// `ColdItemShare` counts the items never seen in training among what a retriever returns.
@Suite("Cold items in the top k")
struct ColdItemShareTests {
    /// Four items on the axes of a plane; items 2 and 3 are cold. A query pointing at item 2 returns
    /// it first: with k = 2 the lists are {2, 0} and {0, 2 or 1}; the share is exact.
    @Test func countsColdItemsAmongTheReturnedOnes() throws {
        let items = try Matrix(rows: 4, cols: 2, values: [1, 0, 0, 1, -1, 0, 0, -1])
        let ids = (0 ..< 4).map { ItemID(UInt64($0)) }
        let flat = try FlatRetriever(name: "flat", items: items, ids: ids)
        let queries = [Query(vector: [-1, 0.1]), Query(vector: [1, 0.5])]
        let trained: [ItemID: Int] = [ItemID(0): 3, ItemID(1): 1, ItemID(3): 0]
        let share = try #require(try ColdItemShare.measure(retrievers: [flat], queries: queries, ids: ids, trained: trained, k: 2))
        #expect(share.catalogueShare == 0.5)  // items 2 (absent) and 3 (count 0)
        #expect(share.k == 2)
        // Query 1: item 2 (-1·-1) then item 1 (0.1): one cold of two. Query 2: items 0 and 1: none.
        #expect(share.topShares.map(\.retriever) == ["flat"] && share.topShares.map(\.share) == [0.25])
    }

    @Test func noColdItemsGivesNil() throws {
        let items = try Matrix(rows: 2, cols: 2, values: [1, 0, 0, 1])
        let ids = [ItemID(7), ItemID(8)]
        let flat = try FlatRetriever(items: items, ids: ids)
        #expect(try ColdItemShare.measure(retrievers: [flat], queries: [Query(vector: [1, 1])], ids: ids,
                                          trained: [ItemID(7): 1, ItemID(8): 2], k: 1) == nil)
        #expect(throws: ArborError.self) {
            try ColdItemShare.measure(retrievers: [flat], queries: [], ids: ids, trained: [:], k: 0)
        }
    }
}
