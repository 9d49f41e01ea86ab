/// Tells, per query, whether an item belongs to a category the user has already interacted with
/// (TDM's "seen categories excluded" evaluation).
public struct SeenCategoryFilter: Sendable {
    /// `isSeen(queryIndex, item)`: true when `item`'s category is among the seen categories of the
    /// query at `queryIndex`.
    public let isSeen: @Sendable (_ query: Int, _ item: ItemID) -> Bool

    /// A filter from a predicate over (query index, item).
    public init(isSeen: @escaping @Sendable (_ query: Int, _ item: ItemID) -> Bool) {
        self.isSeen = isSeen
    }

    /// A filter from an item → category lookup and each query's seen categories. Items whose
    /// category is unknown (`nil`) are never filtered.
    /// - Parameters:
    ///   - category: the category of an item, or `nil`.
    ///   - seenCategories: per query (same order as the queries), the categories of its history.
    public init<C: Hashable & Sendable>(
        category: @escaping @Sendable (ItemID) -> C?, seenCategories: [Set<C>]
    ) {
        self.isSeen = { q, item in
            guard let c = category(item), q < seenCategories.count else { return false }
            return seenCategories[q].contains(c)
        }
        self.queryCount = seenCategories.count
    }

    /// Number of queries covered, when known (checked against the query count by the runner).
    public private(set) var queryCount: Int? = nil
}

/// What the retrieved lists are compared with, one entry per query (in the order of the queries).
/// At least one of ``relevant`` and ``reference`` must be given.
public struct GroundTruth: Sendable {
    /// The relevant (held-out) items per query: drives recall, precision, F1, hit rate, NDCG and MRR.
    public var relevant: [Set<ItemID>]?
    /// The user's history per query: drives novelty.
    public var seen: [Set<ItemID>]?
    /// Seen categories per query: drives the seen-categories-excluded variants (needs ``relevant``).
    public var seenCategories: SeenCategoryFilter?
    /// Reference rankings per query (e.g. the exact scan's top-k, best first): drives recall vs exact.
    /// A list should hold at least the largest `k` evaluated; a shorter one is used as it is.
    public var reference: [[ItemID]]?

    /// Ground truth from any combination of the four inputs.
    public init(
        relevant: [Set<ItemID>]? = nil, seen: [Set<ItemID>]? = nil,
        seenCategories: SeenCategoryFilter? = nil, reference: [[ItemID]]? = nil
    ) {
        self.relevant = relevant
        self.seen = seen
        self.seenCategories = seenCategories
        self.reference = reference
    }

    /// Quality ground truth: the held-out items per query, with optional history (novelty) and
    /// seen categories.
    public static func items(
        _ relevant: [Set<ItemID>], seen: [Set<ItemID>]? = nil, seenCategories: SeenCategoryFilter? = nil
    ) -> GroundTruth {
        GroundTruth(relevant: relevant, seen: seen, seenCategories: seenCategories)
    }

    /// Reference ground truth: the exact top lists per query, for recall against the exact scan.
    public static func exact(_ reference: [[ItemID]]) -> GroundTruth {
        GroundTruth(reference: reference)
    }

    /// The seen sets of `queries`: each query's `history` together with its `excluded` items.
    public static func seenSets(of queries: [Query]) -> [Set<ItemID>] {
        queries.map { $0.excluded.union($0.history) }
    }

    /// Checks that every per-query array has one entry per query and that something is to be measured.
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` naming the array at fault,
    ///   ``ArborError/invalidArgument(name:reason:)`` when neither truth nor reference is given or
    ///   seen categories come without relevant items.
    public func validate(queryCount: Int) throws(ArborError) {
        guard relevant != nil || reference != nil else {
            throw .invalidArgument(name: "ground truth", reason: "give relevant items or reference lists")
        }
        if let relevant, relevant.count != queryCount {
            throw .dimensionMismatch(field: "ground truth relevant sets", expected: queryCount, found: relevant.count)
        }
        if let seen, seen.count != queryCount {
            throw .dimensionMismatch(field: "ground truth seen sets", expected: queryCount, found: seen.count)
        }
        if let reference, reference.count != queryCount {
            throw .dimensionMismatch(field: "ground truth reference lists", expected: queryCount, found: reference.count)
        }
        if let seenCategories {
            guard relevant != nil else {
                throw .invalidArgument(name: "ground truth", reason: "seen categories need relevant items")
            }
            if let n = seenCategories.queryCount, n != queryCount {
                throw .dimensionMismatch(field: "ground truth seen categories", expected: queryCount, found: n)
            }
        }
    }

    /// Evaluates retrieved lists (one per query, best first) at `k` and averages over the queries,
    /// in query order.
    /// - Throws: ``ArborError`` as ``validate(queryCount:)``, or when `retrieved.count` differs from
    ///   the truth's query count, or `k < 1`.
    public func evaluate(retrieved: [[ItemID]], k: Int) throws(ArborError) -> MetricSummary {
        try accumulate(retrieved: retrieved, k: k).summary
    }

    /// As ``evaluate(retrieved:k:)`` but returns the accumulator (to merge with others).
    public func accumulate(retrieved: [[ItemID]], k: Int) throws(ArborError) -> MetricAccumulator {
        guard k >= 1 else { throw .invalidArgument(name: "k", reason: "must be at least 1, got \(k)") }
        try validate(queryCount: retrieved.count)
        var acc = MetricAccumulator()
        for q in retrieved.indices { acc.add(metrics(query: q, retrieved: retrieved[q], k: k)) }
        return acc
    }

    /// The metrics of query `q` (0-based, within the validated counts) for `retrieved` at `k`.
    public func metrics(query q: Int, retrieved: [ItemID], k: Int) -> QueryMetrics {
        let filter = seenCategories.map { f in { (item: ItemID) in f.isSeen(q, item) } }
        return QueryMetrics.evaluate(
            retrieved: retrieved, k: k, truth: relevant?[q], seen: seen?[q], reference: reference?[q],
            isSeenCategory: filter)
    }
}
