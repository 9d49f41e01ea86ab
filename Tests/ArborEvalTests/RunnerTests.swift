import Foundation
import Testing

@testable import ArborEval

/// Query `i` carries `i` in `vector[0]`; its truth is items `100·i ..< 100·i + 5`.
private func makeQueries(_ n: Int) -> [Query] {
    (0 ..< n).map { Query(vector: [Float($0)], history: [ItemID(UInt64(9_000 + $0))]) }
}

private func truthSets(_ n: Int) -> [Set<ItemID>] {
    (0 ..< n).map { i in Set((0 ..< 5).map { ItemID(UInt64(100 * i + $0)) }) }
}

/// Returns the query's truth first (then filler), and `i` model evaluations for query `i`.
private struct PerfectRetriever: Retriever {
    var name: String { "perfect" }
    var itemCount: Int { 1_000_000 }
    func search(_ query: Query, parameters: SearchParameters) throws -> SearchResult {
        let i = Int(query.vector[0])
        let items = (0 ..< parameters.k).map { ScoredItem(item: ItemID(UInt64(100 * i + $0)), score: Float(-$0)) }
        return SearchResult(items: items, statistics: SearchStatistics(modelEvaluations: i, steps: 3))
    }
}

/// Always the same items, none of them relevant; 42 evaluations per query.
private struct WrongRetriever: Retriever {
    var name: String { "wrong" }
    var itemCount: Int { 10 }
    func search(_ query: Query, parameters: SearchParameters) throws -> SearchResult {
        let items = (0 ..< parameters.k).map { ScoredItem(item: ItemID(UInt64(5_000_000 + $0)), score: 0) }
        return SearchResult(items: items, statistics: SearchStatistics(modelEvaluations: 42, steps: 1))
    }
}

/// Right for even queries at a beam of at least 2, wrong otherwise: quality depends on the query
/// and on the sweep point.
private struct HalfRetriever: Retriever {
    var name: String { "half" }
    var itemCount: Int { 1_000_000 }
    func search(_ query: Query, parameters: SearchParameters) throws -> SearchResult {
        let i = Int(query.vector[0])
        let good = i % 2 == 0 && parameters.beamWidth >= 2
        let items = (0 ..< parameters.k).map { j in
            ScoredItem(item: ItemID(UInt64(good ? 100 * i + (j * 3) % 5 : 7_000_000 + j)), score: 0)
        }
        return SearchResult(items: items, statistics: SearchStatistics(modelEvaluations: parameters.beamWidth))
    }
}

private struct FailingRetriever: Retriever {
    struct Boom: Error {}
    var name: String { "failing" }
    var itemCount: Int { 1 }
    func search(_ query: Query, parameters: SearchParameters) throws -> SearchResult {
        if query.vector[0] == 3 { throw Boom() }
        return SearchResult(items: [])
    }
}

private final class RecordingProgress: ProgressReporter {
    let events = PosixMutex<[(String, Int, Int)]>([])
    let finished = PosixMutex<[String]>([])
    func report(task: String, done: Int, total: Int) { events.withLock { $0.append((task, done, total)) } }
    func finish(task: String) { finished.withLock { $0.append(task) } }
}

@Suite struct RunnerTests {
    @Test func perfectAndWrongRetrievers() throws {
        let n = 20
        let queries = makeQueries(n)
        let progress = RecordingProgress()
        let runner = BenchmarkRunner(
            configuration: BenchmarkConfiguration(kValues: [5, 10], warmUp: Array(queries.prefix(2))),
            progress: progress)
        let truth = GroundTruth.items(truthSets(n), seen: GroundTruth.seenSets(of: queries))
        let rows = try runner.run(
            entries: [
                BenchmarkEntry(retriever: PerfectRetriever(), parameters: [SearchParameters()]),
                BenchmarkEntry(label: "fixed wrong", retriever: WrongRetriever(), sweep: [.beam(1), .beam(4)]),
            ], queries: queries, truth: truth)
        #expect(rows.count == 1 * 2 + 2 * 2)
        let perfect = rows.filter { $0.retriever == "perfect" }
        #expect(perfect.map(\.k) == [5, 10])
        for row in perfect {
            #expect(row.metrics.recall == 1)
            #expect(row.metrics.hitRate == 1)
            #expect(row.metrics.ndcg == 1)
            #expect(row.metrics.novelty == 1)
            #expect(row.metrics.queries == n)
            #expect(row.metrics.truthQueries == n)
            #expect(row.evaluationsPerQuery == Double(n - 1) / 2)
            #expect(row.stepsPerQuery == 3)
            #expect(row.searchK == 10)
            #expect(row.parameters == "default")
            #expect(row.threads == 1)
            #expect(row.latency.queries == n)
            #expect(row.latency.p50Ms <= row.latency.p95Ms && row.latency.p95Ms <= row.latency.p99Ms)
            #expect(row.latency.qps > 0)
        }
        #expect(perfect[0].metrics.precision == 1)
        #expect(perfect[1].metrics.precision == 0.5)
        let wrong = rows.filter { $0.retriever == "fixed wrong" }
        #expect(wrong.map(\.parameters) == ["beam=1", "beam=1", "beam=4", "beam=4"])
        #expect(wrong.map(\.sweepIndex) == [0, 0, 1, 1])
        for row in wrong {
            #expect(row.metrics.recall == 0)
            #expect(row.metrics.ndcg == 0)
            #expect(row.metrics.f1 == 0)
            #expect(row.evaluationsPerQuery == 42)
        }
        // Progress: 3 timed runs, reported and finished.
        let events = progress.events.withLock { $0 }
        #expect(events.contains { $0.0 == "benchmark" && $0.1 == 3 && $0.2 == 3 })
        #expect(events.contains { $0.0.hasPrefix("perfect default k=10") && $0.1 == n && $0.2 == n })
        #expect(progress.finished.withLock { $0 }.contains("benchmark"))
    }

    @Test func twoThreadsGiveTheSameQuality() throws {
        let n = 37
        let queries = makeQueries(n)
        let truth = GroundTruth.items(truthSets(n))
        let runner = BenchmarkRunner(configuration: BenchmarkConfiguration(kValues: [1, 3, 5], threadCounts: [1, 2]))
        let rows = try runner.run(
            entries: [BenchmarkEntry(retriever: HalfRetriever(), sweep: [.beam(1), .beam(2), .beam(8)])],
            queries: queries, truth: truth)
        #expect(rows.count == 3 * 2 * 3)
        let one = rows.filter { $0.threads == 1 }
        let two = rows.filter { $0.threads == 2 }
        #expect(one.count == two.count)
        for (a, b) in zip(one, two) {
            #expect(a.parameters == b.parameters && a.k == b.k)
            #expect(a.metrics == b.metrics)
            #expect(a.evaluationsPerQuery == b.evaluationsPerQuery)
        }
        // Even queries (19 of 37) are right at beam >= 2; recall@5 of those is 1 (items 0..4 in some order).
        let r = try #require(one.first { $0.parameters == "beam=2" && $0.k == 5 }?.metrics.recall)
        #expect(abs(r - 19.0 / 37) < 1e-12)
        #expect(one.first { $0.parameters == "beam=1" && $0.k == 5 }?.metrics.recall == 0)
    }

    @Test func timedRunKeepsQueryOrder() throws {
        let queries = makeQueries(50)
        let run = try BenchmarkRunner.timedRun(
            retriever: PerfectRetriever(), queries: queries, parameters: SearchParameters(k: 1), threads: 2)
        #expect(run.results.map { $0.items[0].item.rawValue } == (0 ..< 50).map { UInt64(100 * $0) })
        #expect(run.latencyNanoseconds.count == 50)
        #expect(run.wallNanoseconds > 0)
    }

    @Test func recallAgainstExactReference() throws {
        let queries = makeQueries(10)
        let reference = try BenchmarkRunner.referenceLists(from: PerfectRetriever(), queries: queries, k: 10, threads: 2)
        #expect(reference.count == 10 && reference.allSatisfy { $0.count == 10 })
        let runner = BenchmarkRunner(configuration: BenchmarkConfiguration(kValues: [10], searchPerK: true))
        let rows = try runner.run(
            entries: [
                BenchmarkEntry(retriever: PerfectRetriever(), parameters: [SearchParameters()]),
                BenchmarkEntry(retriever: WrongRetriever(), parameters: [SearchParameters()]),
            ], queries: queries, truth: .exact(reference))
        #expect(rows.map(\.metrics.recallVsExact) == [1, 0])
        #expect(rows.allSatisfy { $0.metrics.recall == nil && $0.metrics.truthQueries == 10 })
    }

    @Test func errorsAreReported() throws {
        let queries = makeQueries(6)
        let runner = BenchmarkRunner(configuration: BenchmarkConfiguration(kValues: [5], threadCounts: [2]))
        let entry = BenchmarkEntry(retriever: PerfectRetriever(), parameters: [SearchParameters()])
        #expect(throws: ArborError.dimensionMismatch(field: "ground truth relevant sets", expected: 6, found: 5)) {
            try runner.run(entries: [entry], queries: queries, truth: .items(truthSets(5)))
        }
        #expect(throws: ArborError.dimensionMismatch(field: "ground truth reference lists", expected: 6, found: 1)) {
            try runner.run(entries: [entry], queries: queries, truth: .exact([[1]]))
        }
        #expect(throws: ArborError.empty(what: "queries")) {
            try runner.run(entries: [entry], queries: [], truth: .items([]))
        }
        let badK = BenchmarkRunner(configuration: BenchmarkConfiguration(kValues: [0]))
        #expect(throws: ArborError.self) { try badK.run(entries: [entry], queries: queries, truth: .items(truthSets(6))) }
        let badThreads = BenchmarkRunner(configuration: BenchmarkConfiguration(kValues: [1], threadCounts: [0]))
        #expect(throws: ArborError.self) { try badThreads.run(entries: [entry], queries: queries, truth: .items(truthSets(6))) }
        #expect(throws: FailingRetriever.Boom.self) {
            try runner.run(
                entries: [BenchmarkEntry(retriever: FailingRetriever(), parameters: [SearchParameters()])],
                queries: queries, truth: .items(truthSets(6)))
        }
        let flag = CancellationFlag()
        flag.cancel()
        let cancelled = BenchmarkRunner(configuration: BenchmarkConfiguration(kValues: [1]), cancellation: flag)
        #expect(throws: CancellationError.self) {
            try cancelled.run(entries: [entry], queries: queries, truth: .items(truthSets(6)))
        }
    }

    @Test func sweepLabels() {
        let points = SweepPoint.labelled([SearchParameters(beamWidth: 100), SearchParameters(beamWidth: 200)])
        #expect(points.map(\.label) == ["beam=100", "beam=200"])
        let both = SweepPoint.labelled([SearchParameters(beamWidth: 1, efSearch: 2), SearchParameters(beamWidth: 3, efSearch: 4)])
        #expect(both.map(\.label) == ["beam=1 ef=2", "beam=3 ef=4"])
        #expect(SweepPoint.labelled([SearchParameters()]).map(\.label) == ["default"])
        #expect(SweepPoint.efSearch(64).parameters.efSearch == 64)
    }
}

@Suite struct PopularityTests {
    @Test func ranksByCountAndHonoursExclusions() throws {
        let pop = PopularityRetriever(interactions: [3, 1, 3, 2, 2, 3, 5].map { ItemID($0) })
        #expect(pop.itemCount == 4)
        let all = try pop.search(Query(), parameters: SearchParameters(k: 10))
        // 3 (x3), then 2 (x2), then 1 and 5 (x1, smaller id first).
        #expect(all.items.map(\.item.rawValue) == [3, 2, 1, 5])
        #expect(all.items.map(\.score) == [3, 2, 1, 1])
        let masked = try pop.search(Query(excluded: [ItemID(3)]), parameters: SearchParameters(k: 2))
        #expect(masked.items.map(\.item.rawValue) == [2, 1])
        #expect(masked.statistics.modelEvaluations == 3)
        #expect(throws: ArborError.self) { try pop.search(Query(), parameters: SearchParameters(k: 0)) }

        // In the runner: one target per user, masked, Recall@k = HitRate@k.
        let queries = [Query(excluded: [ItemID(3)]), Query()]
        let truth = GroundTruth.items([[ItemID(2)], [ItemID(5)]])
        let rows = try BenchmarkRunner(configuration: BenchmarkConfiguration(kValues: [1, 4])).run(
            entries: [BenchmarkEntry(retriever: pop, parameters: [SearchParameters()])], queries: queries, truth: truth)
        #expect(rows.map(\.metrics.recall) == [0.5, 1])
        #expect(rows.map(\.metrics.hitRate) == [0.5, 1])
    }
}

/// PerfectRetriever answers, but batches go through its own `search(batch:)`, which records their sizes.
private final class BatchRecordingRetriever: Retriever {
    let sizes = PosixMutex<[Int]>([])
    var name: String { "batched" }
    var itemCount: Int { 1_000_000 }
    func search(_ query: Query, parameters: SearchParameters) throws -> SearchResult {
        try PerfectRetriever().search(query, parameters: parameters)
    }
    func search(batch queries: [Query], parameters: SearchParameters) throws -> [SearchResult] {
        sizes.withLock { $0.append(queries.count) }
        return try queries.map { try search($0, parameters: parameters) }
    }
}

/// Drops the last result of every batch.
private struct ShortBatchRetriever: Retriever {
    var name: String { "short" }
    var itemCount: Int { 1 }
    func search(_ query: Query, parameters: SearchParameters) throws -> SearchResult { SearchResult(items: []) }
    func search(batch queries: [Query], parameters: SearchParameters) throws -> [SearchResult] {
        Array(repeating: SearchResult(items: []), count: max(0, queries.count - 1))
    }
}

@Suite struct BatchTests {
    @Test func batchedRunsMatchPerQueryQuality() throws {
        let n = 23
        let queries = makeQueries(n)
        let retriever = BatchRecordingRetriever()
        let truth = GroundTruth.items(truthSets(n))
        let batched = try BenchmarkRunner(configuration: BenchmarkConfiguration(kValues: [5], threadCounts: [2], batchSize: 8))
            .run(entries: [BenchmarkEntry(retriever: retriever, parameters: [SearchParameters()])], queries: queries, truth: truth)
        #expect(retriever.sizes.withLock { $0.sorted() } == [7, 8, 8])
        #expect(batched.count == 1)
        #expect(batched[0].batchSize == 8)
        #expect(batched[0].metrics.recall == 1)
        #expect(batched[0].evaluationsPerQuery == Double(n - 1) / 2)
        #expect(batched[0].latency.queries == n)
        let run = try BenchmarkRunner.timedRun(
            retriever: retriever, queries: queries, parameters: SearchParameters(k: 1), threads: 2, batchSize: 5)
        #expect(run.results.map { $0.items[0].item.rawValue } == (0 ..< UInt64(n)).map { 100 * $0 })
        // Every query of a batch carries the batch latency.
        #expect(run.latencyNanoseconds[0] == run.latencyNanoseconds[4])
        let report = BenchmarkReport(metadata: RunMetadata(dataset: "d"), rows: batched)
        #expect(report.markdownTable().contains("| batch |"))
        #expect(throws: ArborError.dimensionMismatch(field: "results of batch 0", expected: 4, found: 3)) {
            try BenchmarkRunner.timedRun(
                retriever: ShortBatchRetriever(), queries: makeQueries(4), parameters: SearchParameters(), batchSize: 4)
        }
        #expect(throws: ArborError.self) {
            try BenchmarkRunner.timedRun(retriever: retriever, queries: queries, parameters: SearchParameters(), batchSize: 0)
        }
    }
}
