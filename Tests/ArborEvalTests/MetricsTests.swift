import Foundation
import Testing

@testable import ArborEval

private func ids(_ values: [UInt64]) -> [ItemID] { values.map { ItemID($0) } }
private func idSet(_ values: [UInt64]) -> Set<ItemID> { Set(values.map { ItemID($0) }) }
private func close(_ a: Double?, _ b: Double, tolerance: Double = 1e-12) -> Bool {
    guard let a else { return false }
    return abs(a - b) <= tolerance
}

@Suite struct MetricsTests {
    @Test func handComputedCase() {
        let retrieved = ids([1, 2, 3, 4, 5])
        let truth = idSet([2, 5, 9])
        #expect(close(RankingMetrics.recall(retrieved: retrieved, truth: truth, k: 5), 2.0 / 3))
        #expect(close(RankingMetrics.precision(retrieved: retrieved, truth: truth, k: 5), 0.4))
        #expect(close(RankingMetrics.f1(retrieved: retrieved, truth: truth, k: 5), 0.5))
        #expect(RankingMetrics.hitRate(retrieved: retrieved, truth: truth, k: 5) == 1)
        #expect(RankingMetrics.hitRate(retrieved: retrieved, truth: truth, k: 1) == 0)
        // Hits at ranks 2 and 5; ideal: 3 relevant items within k = 5.
        let dcg = 1 / log2(3.0) + 1 / log2(6.0)
        let idcg = 1 + 1 / log2(3.0) + 1 / log2(4.0)
        #expect(close(RankingMetrics.ndcg(retrieved: retrieved, truth: truth, k: 5), dcg / idcg))
        // At k = 2: one hit at rank 2, ideal over min(3, 2) = 2 items.
        #expect(close(RankingMetrics.ndcg(retrieved: retrieved, truth: truth, k: 2), (1 / log2(3.0)) / (1 + 1 / log2(3.0))))
        #expect(close(RankingMetrics.recall(retrieved: retrieved, truth: truth, k: 2), 1.0 / 3))
    }

    @Test func ndcgExactValues() {
        // Perfect ranking: NDCG 1.
        #expect(close(RankingMetrics.ndcg(retrieved: ids([7, 8, 1]), truth: idSet([7, 8]), k: 3), 1))
        // Single target at rank 1, 2, 4: 1, 1/log2(3), 1/log2(5).
        #expect(close(RankingMetrics.ndcg(retrieved: ids([5, 1, 2, 3]), truth: idSet([5]), k: 4), 1))
        #expect(close(RankingMetrics.ndcg(retrieved: ids([1, 5, 2, 3]), truth: idSet([5]), k: 4), 0.6309297535714575))
        #expect(close(RankingMetrics.ndcg(retrieved: ids([1, 2, 3, 5]), truth: idSet([5]), k: 4), 0.43067655807339306))
        // Target beyond k: 0.
        #expect(RankingMetrics.ndcg(retrieved: ids([1, 2, 3, 5]), truth: idSet([5]), k: 3) == 0)
        // Ideal DCG is over min(|G|, k): 4 relevant, k = 2, hits at ranks 1 and 2 -> 1.
        #expect(close(RankingMetrics.ndcg(retrieved: ids([1, 2]), truth: idSet([1, 2, 3, 4]), k: 2), 1))
    }

    @Test func kLargerThanList() {
        let retrieved = ids([1, 2])
        let truth = idSet([1, 3])
        #expect(close(RankingMetrics.recall(retrieved: retrieved, truth: truth, k: 10), 0.5))
        #expect(close(RankingMetrics.precision(retrieved: retrieved, truth: truth, k: 10), 0.1))
        #expect(close(RankingMetrics.ndcg(retrieved: retrieved, truth: truth, k: 10), 1 / (1 + 1 / log2(3.0))))
        #expect(close(RankingMetrics.novelty(retrieved: retrieved, seen: idSet([2]), k: 10), 0.1))
        // Empty list: defined, all misses.
        #expect(RankingMetrics.recall(retrieved: [], truth: truth, k: 10) == 0)
        #expect(RankingMetrics.ndcg(retrieved: [], truth: truth, k: 10) == 0)
    }

    @Test func emptyTruthAndBadKAreUndefined() {
        let retrieved = ids([1, 2, 3])
        #expect(RankingMetrics.recall(retrieved: retrieved, truth: [], k: 3) == nil)
        #expect(RankingMetrics.precision(retrieved: retrieved, truth: [], k: 3) == nil)
        #expect(RankingMetrics.f1(retrieved: retrieved, truth: [], k: 3) == nil)
        #expect(RankingMetrics.hitRate(retrieved: retrieved, truth: [], k: 3) == nil)
        #expect(RankingMetrics.ndcg(retrieved: retrieved, truth: [], k: 3) == nil)
        #expect(RankingMetrics.recall(retrieved: retrieved, truth: idSet([1]), k: 0) == nil)
        #expect(RankingMetrics.recallAgainstReference(retrieved: retrieved, reference: [], k: 3) == nil)
        // Novelty does not need truth.
        let m = QueryMetrics.evaluate(retrieved: retrieved, k: 3, truth: [], seen: idSet([1]))
        #expect(m.recall == nil && m.ndcg == nil)
        #expect(close(m.novelty, 2.0 / 3))
        // The accumulator leaves such queries out of the truth-based means.
        var acc = MetricAccumulator()
        acc.add(m)
        acc.add(QueryMetrics.evaluate(retrieved: retrieved, k: 3, truth: idSet([1, 9]), seen: []))
        #expect(acc.queryCount == 2)
        #expect(acc.count(.recall) == 1)
        #expect(acc.mean(.recall) == 0.5)
        #expect(acc.count(.novelty) == 2)
        #expect(close(acc.mean(.novelty), (2.0 / 3 + 1) / 2))
        #expect(acc.summary.truthQueries == 1)
        #expect(acc.summary.queries == 2)
    }

    @Test func duplicatesCountOnceAtFirstRank() {
        let retrieved = ids([7, 7, 8])
        let truth = idSet([7, 8])
        #expect(RankingMetrics.recall(retrieved: retrieved, truth: truth, k: 3) == 1)
        #expect(close(RankingMetrics.precision(retrieved: retrieved, truth: truth, k: 3), 2.0 / 3))
        #expect(close(RankingMetrics.ndcg(retrieved: retrieved, truth: truth, k: 3), 1.5 / (1 + 1 / log2(3.0))))
        #expect(RankingMetrics.recall(retrieved: retrieved, truth: truth, k: 2) == 0.5)
        #expect(close(RankingMetrics.novelty(retrieved: ids([3, 3, 4]), seen: [], k: 3), 2.0 / 3))
        #expect(RankingMetrics.recallAgainstReference(retrieved: ids([1, 1]), reference: ids([1, 2]), k: 2) == 0.5)
    }

    @Test func reciprocalRank() {
        #expect(RankingMetrics.reciprocalRank(retrieved: ids([4, 5, 6]), truth: idSet([6, 5]), k: 3) == 0.5)
        #expect(RankingMetrics.reciprocalRank(retrieved: ids([4, 5, 6]), truth: idSet([6]), k: 2) == 0)
        #expect(RankingMetrics.reciprocalRank(retrieved: ids([6]), truth: idSet([6]), k: 20) == 1)
        #expect(RankingMetrics.reciprocalRank(retrieved: ids([6]), truth: [], k: 20) == nil)
        #expect(QueryMetrics.evaluate(retrieved: ids([1, 2, 3, 4]), k: 4, truth: idSet([4])).mrr == 0.25)
    }

    @Test func noveltyAndRecallAgainstReference() {
        #expect(RankingMetrics.novelty(retrieved: ids([1, 2, 3, 4]), seen: idSet([2, 4]), k: 4) == 0.5)
        #expect(close(RankingMetrics.recallAgainstReference(retrieved: ids([1, 2, 3]), reference: ids([3, 2, 9, 10]), k: 3), 2.0 / 3))
        // A reference shorter than k: measured against what it has.
        #expect(RankingMetrics.recallAgainstReference(retrieved: ids([1, 2, 3]), reference: ids([3, 2]), k: 3) == 1)
    }

    @Test func seenCategoriesExcluded() {
        // Category = id % 10; the user has seen category 1.
        let isSeen = { (item: ItemID) in item.rawValue % 10 == 1 }
        let m = QueryMetrics.evaluate(
            retrieved: ids([11, 2, 21, 3]), k: 4, truth: idSet([21, 3, 5]), isSeenCategory: isSeen)
        // Filtered truth {3, 5}; filtered top-4 [2, 3]: one hit.
        #expect(m.unseenCategoryRecall == 0.5)
        #expect(m.unseenCategoryPrecision == 0.25)
        #expect(close(m.unseenCategoryF1, 2 * 0.5 * 0.25 / 0.75))
        #expect(close(m.recall, 2.0 / 3))
        let none = QueryMetrics.evaluate(retrieved: ids([11]), k: 1, truth: idSet([21]), isSeenCategory: isSeen)
        #expect(none.unseenCategoryRecall == nil)

        let filter = SeenCategoryFilter(category: { (item: ItemID) -> UInt64? in item.rawValue % 10 }, seenCategories: [[1]])
        let truth = GroundTruth.items([idSet([21, 3, 5])], seenCategories: filter)
        let summary = try! truth.evaluate(retrieved: [ids([11, 2, 21, 3])], k: 4)
        #expect(summary.unseenCategoryRecall == 0.5)
    }

    @Test func accumulatorMerges() {
        var a = MetricAccumulator(), b = MetricAccumulator(), all = MetricAccumulator()
        let samples = [QueryMetrics(recall: 1, ndcg: 0.5), QueryMetrics(recall: 0.5), QueryMetrics(recall: 0, novelty: 1)]
        a.add(samples[0])
        b.add(samples[1])
        b.add(samples[2])
        for s in samples { all.add(s) }
        a.merge(b)
        #expect(a == all)
        #expect(a.mean(.recall) == 0.5)
        #expect(a.count(.recall) == 3)
        #expect(a.mean(.ndcg) == 0.5 && a.count(.ndcg) == 1)
        #expect(a.mean(.precision) == nil)
        #expect(a.summary.recall == 0.5)
    }

    @Test func groundTruthCountMismatchIsTyped() {
        let truth = GroundTruth.items([idSet([1]), idSet([2])])
        #expect(throws: ArborError.dimensionMismatch(field: "ground truth relevant sets", expected: 3, found: 2)) {
            try truth.validate(queryCount: 3)
        }
        #expect(throws: ArborError.self) { try GroundTruth().validate(queryCount: 0) }
        #expect(throws: ArborError.self) { try truth.evaluate(retrieved: [[], []], k: 0) }
    }
}

@Suite struct LatencyTests {
    @Test func nearestRankOnKnownSequences() {
        let hundred = Array(1 ... 100)
        #expect(nearestRankPercentile(hundred, 50) == 50)
        #expect(nearestRankPercentile(hundred, 95) == 95)
        #expect(nearestRankPercentile(hundred, 99) == 99)
        #expect(nearestRankPercentile(hundred, 100) == 100)
        #expect(nearestRankPercentile(hundred, 0) == 1)
        #expect(nearestRankPercentile(hundred, 99.5) == 100)
        let twenty = Array(1 ... 20)
        // 0.95 · 20 = 19 exactly: rank 19 (floating point would give 19.000000000000004 → 20).
        #expect(nearestRankPercentile(twenty, 95) == 19)
        #expect(nearestRankPercentile(twenty, 50) == 10)
        #expect(nearestRankPercentile(twenty, 99) == 20)
        #expect(nearestRankPercentile([42], 50) == 42)
        #expect(nearestRankPercentile([Int](), 50) == nil)
        #expect(nearestRankPercentile([1, 2], 101) == nil)
        // 10 values: p50 = 5th, p95 = 10th.
        #expect(nearestRankPercentile(Array(1 ... 10), 50) == 5)
        #expect(nearestRankPercentile(Array(1 ... 10), 95) == 10)
    }

    @Test func summaryFromNanoseconds() {
        var rec = LatencyRecorder(capacity: 4)
        for ms in [3, 1, 4, 2] { rec.record(nanoseconds: Int64(ms) * 1_000_000) }
        rec.record(.milliseconds(5))
        #expect(rec.count == 5)
        let s = rec.summary(wallNanoseconds: 10_000_000)
        #expect(s.queries == 5)
        #expect(s.meanMs == 3)
        #expect(s.p50Ms == 3)
        #expect(s.p95Ms == 5)
        #expect(s.p99Ms == 5)
        #expect(s.maxMs == 5)
        #expect(s.wallSeconds == 0.01)
        #expect(abs(s.qps - 500) < 1e-9)
        // Without a wall time: sum of latencies (15 ms).
        #expect(abs(rec.summary().qps - 5 / 0.015) < 1e-6)
        var other = LatencyRecorder()
        #expect(other.measure { 1 + 1 } == 2)
        rec.merge(other)
        #expect(rec.count == 6)
        #expect(LatencySummary(nanoseconds: []).qps == 0)
    }
}
