import Foundation

/// Ranking metrics for one query, computed from the retrieved list (item ids, best first) and the
/// ground truth.
///
/// Conventions shared by every function here:
/// - Only the first `k` entries of `retrieved` are read (`P_k`). A list shorter than `k` is not
///   padded: the missing slots count as misses, and denominators that are "`k`" stay `k`.
/// - Duplicates: an item that appears again in `P_k` is counted once, at its first (best) rank. The
///   later copies still occupy their rank slots (so they push other items down and gain nothing).
/// - A metric that is undefined for the input returns `nil`: `k < 1`, or an empty truth set for
///   truth-based metrics (an empty reference list for ``recallAgainstReference(retrieved:reference:k:)``).
///   Accumulators skip `nil` values, so such queries do not drag means toward 0; the count of
///   queries behind every mean is reported next to it.
public enum RankingMetrics {
    /// The distinct items of the first `k` entries of `retrieved`, in order of first appearance,
    /// with the 0-based rank of each first appearance.
    @usableFromInline
    static func distinctPrefix(_ retrieved: [ItemID], k: Int) -> [(item: ItemID, rank: Int)] {
        let n = min(k, retrieved.count)
        guard n > 0 else { return [] }
        var seen = Set<ItemID>(minimumCapacity: n)
        var out = [(item: ItemID, rank: Int)]()
        out.reserveCapacity(n)
        for r in 0 ..< n where seen.insert(retrieved[r]).inserted {
            out.append((retrieved[r], r))
        }
        return out
    }

    /// Number of distinct relevant items among the first `k` retrieved: `|P_k ∩ G|`.
    @usableFromInline
    static func hits(_ retrieved: [ItemID], truth: Set<ItemID>, k: Int) -> Int {
        distinctPrefix(retrieved, k: k).reduce(0) { $0 + (truth.contains($1.item) ? 1 : 0) }
    }

    /// Recall@k = `|P_k ∩ G| / |G|`: the share of the truth set `G` found in the first `k` results.
    /// - Returns: a value in `[0, 1]`, or `nil` when `k < 1` or `G` is empty.
    public static func recall(retrieved: [ItemID], truth: Set<ItemID>, k: Int) -> Double? {
        guard k >= 1, !truth.isEmpty else { return nil }
        return Double(hits(retrieved, truth: truth, k: k)) / Double(truth.count)
    }

    /// Precision@k = `|P_k ∩ G| / k` (TDM's Precision@M; the denominator is `k` even when fewer
    /// than `k` items were returned).
    /// - Returns: a value in `[0, 1]`, or `nil` when `k < 1` or `G` is empty.
    public static func precision(retrieved: [ItemID], truth: Set<ItemID>, k: Int) -> Double? {
        guard k >= 1, !truth.isEmpty else { return nil }
        return Double(hits(retrieved, truth: truth, k: k)) / Double(k)
    }

    /// F1@k = `2 · P · R / (P + R)` of this query's Precision@k and Recall@k, and 0 when both are 0
    /// (TDM's F-measure@M per user; means over queries average the per-query F1).
    /// - Returns: a value in `[0, 1]`, or `nil` when `k < 1` or `G` is empty.
    public static func f1(retrieved: [ItemID], truth: Set<ItemID>, k: Int) -> Double? {
        guard let p = precision(retrieved: retrieved, truth: truth, k: k),
            let r = recall(retrieved: retrieved, truth: truth, k: k)
        else { return nil }
        return f1(precision: p, recall: r)
    }

    /// `2pr / (p + r)`, or 0 when `p + r == 0`.
    @inlinable
    static func f1(precision p: Double, recall r: Double) -> Double {
        p + r > 0 ? 2 * p * r / (p + r) : 0
    }

    /// HitRate@k: 1 when at least one of the first `k` results is in `G`, else 0 (MIND's HitRate@N;
    /// with one held-out target it equals Recall@k).
    /// - Returns: 0 or 1, or `nil` when `k < 1` or `G` is empty.
    public static func hitRate(retrieved: [ItemID], truth: Set<ItemID>, k: Int) -> Double? {
        guard k >= 1, !truth.isEmpty else { return nil }
        return hits(retrieved, truth: truth, k: k) > 0 ? 1 : 0
    }

    /// NDCG@k with binary relevance and a log2 discount:
    /// `DCG = Σ_{i=1..k} rel_i / log2(i + 1)`, where `rel_i = 1` when the item at rank `i` (1-based)
    /// is in `G` and has not appeared at an earlier rank, else 0;
    /// `IDCG = Σ_{i=1..min(|G|, k)} 1 / log2(i + 1)`; `NDCG = DCG / IDCG`.
    /// - Returns: a value in `[0, 1]`, or `nil` when `k < 1` or `G` is empty.
    public static func ndcg(retrieved: [ItemID], truth: Set<ItemID>, k: Int) -> Double? {
        guard k >= 1, !truth.isEmpty else { return nil }
        var dcg = 0.0
        for (item, rank) in distinctPrefix(retrieved, k: k) where truth.contains(item) {
            dcg += 1 / log2(Double(rank + 2))
        }
        return dcg / idealDCG(relevant: min(truth.count, k))
    }

    /// MRR@k (reciprocal rank): `1 / r`, where `r` is the 1-based rank of the first item of `G`
    /// among the first `k` results, and 0 when none is there (the session baselines' MRR@20).
    /// - Returns: a value in `[0, 1]`, or `nil` when `k < 1` or `G` is empty.
    public static func reciprocalRank(retrieved: [ItemID], truth: Set<ItemID>, k: Int) -> Double? {
        guard k >= 1, !truth.isEmpty else { return nil }
        for r in 0 ..< min(k, retrieved.count) where truth.contains(retrieved[r]) {
            return 1 / Double(r + 1)
        }
        return 0
    }

    /// `Σ_{i=1..n} 1 / log2(i + 1)`.
    @usableFromInline
    static func idealDCG(relevant n: Int) -> Double {
        var s = 0.0
        for i in 0 ..< n { s += 1 / log2(Double(i + 2)) }
        return s
    }

    /// Novelty@k = `|P_k \ S| / k`: the share of the `k` result slots holding a distinct item not in
    /// the user's history `S` (TDM's Novelty@M). When the retriever already excludes seen items
    /// this is 1 for a full list.
    /// - Returns: a value in `[0, 1]`, or `nil` when `k < 1`.
    public static func novelty(retrieved: [ItemID], seen: Set<ItemID>, k: Int) -> Double? {
        guard k >= 1 else { return nil }
        let fresh = distinctPrefix(retrieved, k: k).reduce(0) { $0 + (seen.contains($1.item) ? 0 : 1) }
        return Double(fresh) / Double(k)
    }

    /// Recall@k against a reference ranking (e.g. the exact scan of the same scorer):
    /// `|P_k ∩ E_k| / |E_k|`, where `E_k` is the set of distinct items among the first `k` entries of
    /// `reference`. This measures what an approximate search loses; items tied in score with the
    /// reference's k-th item but not listed in it count as misses.
    /// - Returns: a value in `[0, 1]`, or `nil` when `k < 1` or `reference` is empty.
    public static func recallAgainstReference(retrieved: [ItemID], reference: [ItemID], k: Int) -> Double? {
        guard k >= 1, !reference.isEmpty else { return nil }
        let exact = Set(reference.prefix(k))
        let found = distinctPrefix(retrieved, k: k).reduce(0) { $0 + (exact.contains($1.item) ? 1 : 0) }
        return Double(found) / Double(exact.count)
    }

    /// Removes the items whose category the user has already interacted with (TDM's "seen
    /// categories excluded" protocol): the result keeps the order of `items`.
    /// Items for which `isSeenCategory` is false (including items of unknown category) stay.
    public static func excludingSeenCategories(
        _ items: some Sequence<ItemID>, isSeenCategory: (ItemID) -> Bool
    ) -> [ItemID] {
        items.filter { !isSeenCategory($0) }
    }
}

/// The metrics of one query at one `k`. A field is `nil` when the metric was not asked for (no
/// truth, history, category filter or reference given) or is undefined for this query (see
/// ``RankingMetrics``).
public struct QueryMetrics: Sendable, Equatable {
    /// Recall@k (``RankingMetrics/recall(retrieved:truth:k:)``).
    public var recall: Double?
    /// Precision@k (``RankingMetrics/precision(retrieved:truth:k:)``).
    public var precision: Double?
    /// F1@k (``RankingMetrics/f1(retrieved:truth:k:)``).
    public var f1: Double?
    /// HitRate@k (``RankingMetrics/hitRate(retrieved:truth:k:)``).
    public var hitRate: Double?
    /// NDCG@k (``RankingMetrics/ndcg(retrieved:truth:k:)``).
    public var ndcg: Double?
    /// MRR@k (``RankingMetrics/reciprocalRank(retrieved:truth:k:)``).
    public var mrr: Double?
    /// Novelty@k (``RankingMetrics/novelty(retrieved:seen:k:)``).
    public var novelty: Double?
    /// Recall@k with seen categories excluded: the first `k` results and the truth set are both
    /// filtered by ``RankingMetrics/excludingSeenCategories(_:isSeenCategory:)`` before Recall@k;
    /// `nil` when the filtered truth is empty.
    public var unseenCategoryRecall: Double?
    /// Precision@k with seen categories excluded (hits among the filtered results, divided by `k`).
    public var unseenCategoryPrecision: Double?
    /// F1@k of ``unseenCategoryPrecision`` and ``unseenCategoryRecall``.
    public var unseenCategoryF1: Double?
    /// Recall@k against the reference list (``RankingMetrics/recallAgainstReference(retrieved:reference:k:)``).
    public var recallVsExact: Double?

    /// All fields `nil` unless given.
    public init(
        recall: Double? = nil, precision: Double? = nil, f1: Double? = nil, hitRate: Double? = nil,
        ndcg: Double? = nil, mrr: Double? = nil, novelty: Double? = nil, unseenCategoryRecall: Double? = nil,
        unseenCategoryPrecision: Double? = nil, unseenCategoryF1: Double? = nil, recallVsExact: Double? = nil
    ) {
        self.recall = recall
        self.precision = precision
        self.f1 = f1
        self.hitRate = hitRate
        self.ndcg = ndcg
        self.mrr = mrr
        self.novelty = novelty
        self.unseenCategoryRecall = unseenCategoryRecall
        self.unseenCategoryPrecision = unseenCategoryPrecision
        self.unseenCategoryF1 = unseenCategoryF1
        self.recallVsExact = recallVsExact
    }

    /// Computes every metric whose inputs are given, for the first `k` entries of `retrieved`.
    /// - Parameters:
    ///   - retrieved: item ids, best first.
    ///   - k: cut-off, >= 1 (otherwise every field is `nil`).
    ///   - truth: the relevant items `G` (recall, precision, F1, hit rate, NDCG, MRR), or `nil`.
    ///   - seen: the user's history `S` (novelty), or `nil`.
    ///   - reference: a reference ranking such as the exact scan (recall vs exact), or `nil`.
    ///   - isSeenCategory: whether an item's category is among the user's seen categories (the
    ///     seen-categories-excluded variants; needs `truth`), or `nil`.
    public static func evaluate(
        retrieved: [ItemID], k: Int, truth: Set<ItemID>?, seen: Set<ItemID>? = nil,
        reference: [ItemID]? = nil, isSeenCategory: ((ItemID) -> Bool)? = nil
    ) -> QueryMetrics {
        var m = QueryMetrics()
        guard k >= 1 else { return m }
        if let truth, !truth.isEmpty {
            let hits = RankingMetrics.hits(retrieved, truth: truth, k: k)
            let r = Double(hits) / Double(truth.count)
            let p = Double(hits) / Double(k)
            m.recall = r
            m.precision = p
            m.f1 = RankingMetrics.f1(precision: p, recall: r)
            m.hitRate = hits > 0 ? 1 : 0
            m.ndcg = RankingMetrics.ndcg(retrieved: retrieved, truth: truth, k: k)
            m.mrr = RankingMetrics.reciprocalRank(retrieved: retrieved, truth: truth, k: k)
            if let isSeenCategory {
                let filteredTruth = Set(truth.lazy.filter { !isSeenCategory($0) })
                if !filteredTruth.isEmpty {
                    let top = RankingMetrics.excludingSeenCategories(
                        retrieved.prefix(k), isSeenCategory: isSeenCategory)
                    let h = RankingMetrics.hits(top, truth: filteredTruth, k: k)
                    let r2 = Double(h) / Double(filteredTruth.count)
                    let p2 = Double(h) / Double(k)
                    m.unseenCategoryRecall = r2
                    m.unseenCategoryPrecision = p2
                    m.unseenCategoryF1 = RankingMetrics.f1(precision: p2, recall: r2)
                }
            }
        }
        if let seen { m.novelty = RankingMetrics.novelty(retrieved: retrieved, seen: seen, k: k) }
        if let reference {
            m.recallVsExact = RankingMetrics.recallAgainstReference(retrieved: retrieved, reference: reference, k: k)
        }
        return m
    }
}

/// The metrics a benchmark row can carry, in report order. The raw value is the JSON/CSV key.
public enum Metric: String, CaseIterable, Codable, Sendable {
    /// Recall@k.
    case recall
    /// Precision@k.
    case precision
    /// F1@k.
    case f1
    /// HitRate@k.
    case hitRate
    /// NDCG@k.
    case ndcg
    /// MRR@k.
    case mrr
    /// Novelty@k.
    case novelty
    /// Recall@k with seen categories excluded.
    case unseenCategoryRecall
    /// Precision@k with seen categories excluded.
    case unseenCategoryPrecision
    /// F1@k with seen categories excluded.
    case unseenCategoryF1
    /// Recall@k against the exact reference lists.
    case recallVsExact

    /// A short column header ("Recall", "NDCG", "R vs exact").
    public var shortName: String {
        switch self {
        case .recall: "Recall"
        case .precision: "Precision"
        case .f1: "F1"
        case .hitRate: "HitRate"
        case .ndcg: "NDCG"
        case .mrr: "MRR"
        case .novelty: "Novelty"
        case .unseenCategoryRecall: "Recall (new cat.)"
        case .unseenCategoryPrecision: "Precision (new cat.)"
        case .unseenCategoryF1: "F1 (new cat.)"
        case .recallVsExact: "Recall vs exact"
        }
    }

    /// The key path of this metric in ``QueryMetrics``.
    public var queryKeyPath: KeyPath<QueryMetrics, Double?> {
        switch self {
        case .recall: \.recall
        case .precision: \.precision
        case .f1: \.f1
        case .hitRate: \.hitRate
        case .ndcg: \.ndcg
        case .mrr: \.mrr
        case .novelty: \.novelty
        case .unseenCategoryRecall: \.unseenCategoryRecall
        case .unseenCategoryPrecision: \.unseenCategoryPrecision
        case .unseenCategoryF1: \.unseenCategoryF1
        case .recallVsExact: \.recallVsExact
        }
    }
}

/// A mergeable arithmetic mean: a sum and a count.
public struct RunningMean: Sendable, Equatable, Codable {
    /// Sum of the values added.
    public private(set) var sum: Double = 0
    /// Number of values added.
    public private(set) var count: Int = 0
    /// An empty mean.
    public init() {}
    /// Adds one value.
    public mutating func add(_ value: Double) { sum += value; count += 1 }
    /// Adds the values of `other` (as if they had been added here).
    public mutating func merge(_ other: RunningMean) { sum += other.sum; count += other.count }
    /// `sum / count`, or `nil` when nothing was added.
    public var mean: Double? { count > 0 ? sum / Double(count) : nil }
}

/// Averages ``QueryMetrics`` over queries: one ``RunningMean`` per ``Metric``, each skipping the
/// queries where that metric is `nil`. Mergeable, so parallel workers can each keep one.
///
/// Note: merging changes the order of floating-point additions, so a merged mean can differ from a
/// sequential one in the last bits; the runner accumulates in query order for reproducible numbers.
public struct MetricAccumulator: Sendable, Equatable {
    private var means = [RunningMean](repeating: RunningMean(), count: Metric.allCases.count)
    /// Number of queries added (whatever their fields).
    public private(set) var queryCount = 0

    /// An empty accumulator.
    public init() {}

    /// Adds one query's metrics; `nil` fields are skipped.
    public mutating func add(_ metrics: QueryMetrics) {
        queryCount += 1
        for (i, metric) in Metric.allCases.enumerated() {
            if let v = metrics[keyPath: metric.queryKeyPath] { means[i].add(v) }
        }
    }

    /// Adds everything `other` holds.
    public mutating func merge(_ other: MetricAccumulator) {
        queryCount += other.queryCount
        for i in means.indices { means[i].merge(other.means[i]) }
    }

    /// The running mean of `metric`.
    public subscript(metric: Metric) -> RunningMean {
        means[Metric.allCases.firstIndex(of: metric)!]
    }

    /// Mean of `metric` over the queries where it is defined, or `nil` if it never was.
    public func mean(_ metric: Metric) -> Double? { self[metric].mean }

    /// Number of queries where `metric` was defined.
    public func count(_ metric: Metric) -> Int { self[metric].count }

    /// The means as a ``MetricSummary``.
    public var summary: MetricSummary {
        var s = MetricSummary(queries: queryCount)
        for metric in Metric.allCases { s[metric] = mean(metric) }
        s.truthQueries = max(count(.recall), count(.recallVsExact))
        return s
    }
}

/// Means of the metrics over a query set (what a benchmark row reports). `nil` = not measured.
public struct MetricSummary: Sendable, Equatable, Codable {
    /// Number of queries evaluated.
    public var queries: Int
    /// Number of queries with a non-empty truth set (or reference list, when only that was given):
    /// the population of the truth-based means. Queries with empty truth are left out of them.
    public var truthQueries: Int
    /// Mean Recall@k.
    public var recall: Double?
    /// Mean Precision@k.
    public var precision: Double?
    /// Mean per-query F1@k.
    public var f1: Double?
    /// Mean HitRate@k (share of queries with at least one hit).
    public var hitRate: Double?
    /// Mean NDCG@k.
    public var ndcg: Double?
    /// Mean MRR@k.
    public var mrr: Double?
    /// Mean Novelty@k.
    public var novelty: Double?
    /// Mean Recall@k with seen categories excluded.
    public var unseenCategoryRecall: Double?
    /// Mean Precision@k with seen categories excluded.
    public var unseenCategoryPrecision: Double?
    /// Mean F1@k with seen categories excluded.
    public var unseenCategoryF1: Double?
    /// Mean Recall@k against the reference lists.
    public var recallVsExact: Double?

    /// A summary of `queries` queries with no means yet.
    public init(queries: Int = 0, truthQueries: Int = 0) {
        self.queries = queries
        self.truthQueries = truthQueries
    }

    /// The mean of `metric`, or `nil` when it was not measured.
    public subscript(metric: Metric) -> Double? {
        get {
            switch metric {
            case .recall: recall
            case .precision: precision
            case .f1: f1
            case .hitRate: hitRate
            case .ndcg: ndcg
            case .mrr: mrr
            case .novelty: novelty
            case .unseenCategoryRecall: unseenCategoryRecall
            case .unseenCategoryPrecision: unseenCategoryPrecision
            case .unseenCategoryF1: unseenCategoryF1
            case .recallVsExact: recallVsExact
            }
        }
        set {
            switch metric {
            case .recall: recall = newValue
            case .precision: precision = newValue
            case .f1: f1 = newValue
            case .hitRate: hitRate = newValue
            case .ndcg: ndcg = newValue
            case .mrr: mrr = newValue
            case .novelty: novelty = newValue
            case .unseenCategoryRecall: unseenCategoryRecall = newValue
            case .unseenCategoryPrecision: unseenCategoryPrecision = newValue
            case .unseenCategoryF1: unseenCategoryF1 = newValue
            case .recallVsExact: recallVsExact = newValue
            }
        }
    }
}
