/// Merging the results of several queries for one user (one per interest of a multi-interest
/// producer): each item keeps its best score, duplicates are dropped, and the best `k` remain,
/// ties broken by smaller item id as every retriever does. An interest that found nothing, or the
/// same items as another, never takes a slot from a better item.
public enum ResultMerge {
    /// The merged top `k` of `results`; statistics are summed. O(total items · log).
    public static func bestScorePerItem(_ results: [SearchResult], k: Int) -> SearchResult {
        if results.count == 1 {
            var only = results[0]
            if only.items.count > k { only.items.removeLast(only.items.count - k) }
            return only
        }
        var best: [ItemID: Float] = [:]
        var statistics = SearchStatistics()
        for result in results {
            statistics.modelEvaluations += result.statistics.modelEvaluations
            statistics.steps += result.statistics.steps
            for hit in result.items where best[hit.item].map({ hit.score > $0 }) ?? true {
                best[hit.item] = hit.score
            }
        }
        var items = best.map { ScoredItem(item: $0.key, score: $0.value) }
        items.sort { $0.score > $1.score || ($0.score == $1.score && $0.item < $1.item) }
        if items.count > max(0, k) { items.removeLast(items.count - max(0, k)) }
        return SearchResult(items: items, statistics: statistics)
    }
}
