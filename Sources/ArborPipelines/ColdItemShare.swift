import ArborCore

/// How often items never seen in training (cold: their embeddings are still the initial random
/// ones) reach a model's top k, against their share of the catalogue. A model that ranks cold
/// items as if trained returns them about as often as they occur; a sound one far less often.
public struct ColdItemShare: Sendable, Equatable {
    /// One retriever's share of cold items among everything it returned.
    public struct Share: Sendable, Equatable {
        /// The retriever's report name.
        public var retriever: String
        /// Cold items returned / items returned, over all queries (0...1).
        public var share: Double
    }

    /// Cold items / catalogue items (0...1).
    public var catalogueShare: Double
    /// The cut-off of the lists.
    public var k: Int
    /// Per retriever, in the order given.
    public var topShares: [Share]

    /// Measures each retriever's top `k` over `queries`; `nil` when no catalogue item is cold
    /// (every id of `ids` has a count in `trained`). O(retrievers · queries · search).
    /// - Throws: what the retrievers throw; ``ArborError/invalidArgument(name:reason:)`` for `k < 1`.
    public static func measure(retrievers: [any Retriever], queries: [Query], ids: [ItemID], trained: [ItemID: Int],
                               k: Int) throws -> ColdItemShare? {
        let cold = Set(ids.filter { (trained[$0] ?? 0) == 0 })
        guard !cold.isEmpty, !ids.isEmpty else { return nil }
        let parameters = try SearchParameters(k: k).validated()
        var shares: [Share] = []
        for retriever in retrievers {
            var returned = 0, coldReturned = 0
            for query in queries {
                let items = try retriever.search(query, parameters: parameters).items
                returned += items.count
                coldReturned += items.count { cold.contains($0.item) }
            }
            shares.append(Share(retriever: retriever.name, share: returned > 0 ? Double(coldReturned) / Double(returned) : 0))
        }
        return ColdItemShare(catalogueShare: Double(cold.count) / Double(ids.count), k: k, topShares: shares)
    }
}
