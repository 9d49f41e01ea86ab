/// The popularity baseline ("Pop" in RecBole): every user gets the most frequent items of the
/// training interactions, minus the query's `excluded` items. Score = interaction count.
///
/// Ranking: count descending, ties broken by smaller item id. `SearchStatistics.modelEvaluations`
/// counts the ranked items inspected (excluded ones included), `steps` is 1. Immutable after
/// construction, so safe to call from many threads.
public struct PopularityRetriever: Retriever {
    /// "pop".
    public let name: String
    /// Items ranked by count descending, then id ascending.
    public let ranking: [ScoredItem]
    /// Number of distinct items seen in the interactions.
    public var itemCount: Int { ranking.count }

    /// Counts `interactions` (one item id per interaction; repeats count again).
    public init(interactions: some Sequence<ItemID>, name: String = "pop") {
        var counts: [ItemID: Int] = [:]
        for item in interactions { counts[item, default: 0] += 1 }
        self.init(counts: counts, name: name)
    }

    /// Ranks items by given counts (items with count <= 0 are left out).
    public init(counts: [ItemID: Int], name: String = "pop") {
        self.name = name
        self.ranking = counts.lazy.filter { $0.value > 0 }
            .sorted { a, b in a.value != b.value ? a.value > b.value : a.key < b.key }
            .map { ScoredItem(item: $0.key, score: Float($0.value)) }
    }

    /// The `parameters.k` most popular items not in `query.excluded` (fewer when the catalogue runs
    /// out). The query's vector and history are not read.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` for `k < 1`.
    public func search(_ query: Query, parameters: SearchParameters) throws -> SearchResult {
        let k = try parameters.validated().k
        var items: [ScoredItem] = []
        items.reserveCapacity(min(k, ranking.count))
        var inspected = 0
        for candidate in ranking {
            if items.count == k { break }
            inspected += 1
            if query.excluded.contains(candidate.item) { continue }
            items.append(candidate)
        }
        return SearchResult(items: items, statistics: SearchStatistics(modelEvaluations: inspected, steps: 1))
    }
}
