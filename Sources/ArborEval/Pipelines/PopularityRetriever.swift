/// The popularity baseline: every query gets the most frequent training items it has not seen,
/// whatever its vector or history (RecBole's `Pop`).
///
/// Items are ranked once at construction by count (descending), ties by smaller item id; a search
/// walks that list skipping `query.excluded`, so it costs O(k + |excluded|) and scores no model
/// (``SearchStatistics/modelEvaluations`` counts the items looked at). Thread-safe (immutable).
public struct PopularityRetriever: Retriever {
    /// Name in reports.
    public let name: String
    /// Items, most popular first, with their counts as scores.
    public let ranking: [ScoredItem]

    /// A retriever over `counts` (item → number of training events; items with count 0 may be
    /// listed and rank last).
    /// - Throws: ``ArborError/empty(what:)`` for no items.
    /// - Complexity: O(n log n).
    public init(name: String = "popularity", counts: [ItemID: Int]) throws(ArborError) {
        guard !counts.isEmpty else { throw .empty(what: "items to rank by popularity") }
        self.name = name
        ranking = counts.map { ScoredItem(item: $0.key, score: Float($0.value)) }
            .sorted { $0.score > $1.score || ($0.score == $1.score && $0.item < $1.item) }
    }

    /// A retriever counting the items of `events` (one entry per training event), over a
    /// catalogue of `catalog` ids (ids never seen get count 0).
    public init(name: String = "popularity", events: some Sequence<ItemID>, catalog: some Sequence<ItemID> = []) throws(ArborError) {
        var counts = [ItemID: Int]()
        for id in catalog { counts[id] = 0 }
        for id in events { counts[id, default: 0] += 1 }
        try self.init(name: name, counts: counts)
    }

    /// Number of items ranked.
    public var itemCount: Int { ranking.count }

    /// The `k` most popular items not in `query.excluded` (the vector and history are ignored).
    public func search(_ query: Query, parameters: SearchParameters) throws -> SearchResult {
        let parameters = try parameters.validated()
        var items: [ScoredItem] = []
        items.reserveCapacity(parameters.k)
        var looked = 0
        for s in ranking {
            if items.count == parameters.k { break }
            looked += 1
            if query.excluded.contains(s.item) { continue }
            items.append(s)
        }
        return SearchResult(items: items, statistics: SearchStatistics(modelEvaluations: looked, steps: 1))
    }
}
