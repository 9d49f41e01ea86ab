import ArborCore
import ArborMath
import Dispatch
import Synchronization

/// One point of a parameter sweep: search parameters and the label that names them in reports
/// ("beam=200", "ef=64"). The runner replaces `parameters.k` with the `k` it evaluates.
public struct SweepPoint: Sendable, Equatable {
    /// Label in reports and on plot points.
    public var label: String
    /// The parameters to search with (`k` is set by the runner).
    public var parameters: SearchParameters

    /// A point with an explicit label.
    public init(label: String, parameters: SearchParameters) {
        self.label = label
        self.parameters = parameters
    }

    /// Tree beam width `width`, labelled "beam=`width`".
    public static func beam(_ width: Int) -> SweepPoint {
        SweepPoint(label: "beam=\(width)", parameters: SearchParameters(beamWidth: width))
    }

    /// HNSW candidate list size `ef`, labelled "ef=`ef`".
    public static func efSearch(_ ef: Int) -> SweepPoint {
        SweepPoint(label: "ef=\(ef)", parameters: SearchParameters(efSearch: ef))
    }

    /// Labels for a list of parameters: the fields (beam, ef) that vary across the list, e.g.
    /// "beam=200"; "default" for a single point or when nothing but `k` varies.
    public static func labelled(_ parameters: [SearchParameters]) -> [SweepPoint] {
        let beamVaries = Set(parameters.map(\.beamWidth)).count > 1
        let efVaries = Set(parameters.map(\.efSearch)).count > 1
        return parameters.map { p in
            var parts: [String] = []
            if beamVaries { parts.append("beam=\(p.beamWidth)") }
            if efVaries { parts.append("ef=\(p.efSearch)") }
            return SweepPoint(label: parts.isEmpty ? "default" : parts.joined(separator: " "), parameters: p)
        }
    }
}

/// A retriever to benchmark, with the name it goes by in reports and its parameter sweep.
public struct BenchmarkEntry: Sendable {
    /// The name in reports (defaults to the retriever's `name`).
    public var label: String
    /// The retriever.
    public var retriever: any Retriever
    /// The sweep, in the order points are run and plotted.
    public var sweep: [SweepPoint]

    /// An entry with an explicit sweep.
    public init(label: String? = nil, retriever: any Retriever, sweep: [SweepPoint]) {
        self.label = label ?? retriever.name
        self.retriever = retriever
        self.sweep = sweep
    }

    /// An entry over a list of parameters, labelled by ``SweepPoint/labelled(_:)``.
    public init(label: String? = nil, retriever: any Retriever, parameters: [SearchParameters]) {
        self.init(label: label, retriever: retriever, sweep: SweepPoint.labelled(parameters))
    }
}

/// How the runner runs the queries.
public struct BenchmarkConfiguration: Sendable {
    /// The cut-offs to evaluate (each >= 1).
    public var kValues: [Int]
    /// Thread counts to time (each >= 1): every sweep point is run once per count, giving one row per
    /// count. Queries are spread over the threads with `BLAS.concurrentPerform`, so each thread's BLAS
    /// calls run single-threaded whatever `BLAS.threads` is; QPS is measured over the wall time of the
    /// whole set.
    public var threadCounts: [Int]
    /// Queries run (untimed, results discarded) before every timed run, to warm caches and buffers.
    public var warmUp: [Query]
    /// `false` (default): one search per sweep point with `k = max(kValues)`, every smaller `k`
    /// evaluated on the prefix of that ranking (TDM's Recall@M at several M); latency columns are
    /// those of the `max(kValues)` search and repeat on each `k` row. `true`: one search per `k`,
    /// so latency and beam widening follow each `k`.
    public var searchPerK: Bool
    /// Queries per call. 1 (default): `search(_:parameters:)` per query, each timed on its own.
    /// More: consecutive queries go together through `search(batch:parameters:)` (one GEMM for a
    /// flat scan); each query of a batch is given the batch's latency, so percentiles are those a
    /// caller of a batched service sees, and QPS is still queries / wall time.
    public var batchSize: Int

    /// A configuration; see the properties.
    public init(
        kValues: [Int], threadCounts: [Int] = [1], warmUp: [Query] = [], searchPerK: Bool = false, batchSize: Int = 1
    ) {
        self.kValues = kValues
        self.threadCounts = threadCounts
        self.warmUp = warmUp
        self.searchPerK = searchPerK
        self.batchSize = batchSize
    }

    /// Checks the k values and thread counts.
    /// - Throws: ``ArborError/empty(what:)`` or ``ArborError/invalidArgument(name:reason:)``.
    public func validate() throws(ArborError) {
        guard !kValues.isEmpty else { throw .empty(what: "k values") }
        guard !threadCounts.isEmpty else { throw .empty(what: "thread counts") }
        for k in kValues where k < 1 { throw .invalidArgument(name: "k", reason: "must be at least 1, got \(k)") }
        for t in threadCounts where t < 1 {
            throw .invalidArgument(name: "threads", reason: "must be at least 1, got \(t)")
        }
        guard batchSize >= 1 else {
            throw .invalidArgument(name: "batch size", reason: "must be at least 1, got \(batchSize)")
        }
    }
}

/// One line of a benchmark: a retriever at one sweep point, one `k`, one thread count.
public struct BenchmarkRow: Sendable, Equatable, Codable {
    /// The retriever's label.
    public var retriever: String
    /// The sweep point's label ("beam=200").
    public var parameters: String
    /// Position of the sweep point in the entry's sweep (plot order).
    public var sweepIndex: Int
    /// The cut-off the metrics are at.
    public var k: Int
    /// The `k` the search ran with (`k`, or the largest `k` when prefixes are evaluated).
    public var searchK: Int
    /// Threads the queries were spread over.
    public var threads: Int
    /// Queries per retriever call (1 = one query at a time).
    public var batchSize: Int
    /// Quality means.
    public var metrics: MetricSummary
    /// Latency percentiles and QPS.
    public var latency: LatencySummary
    /// Mean of `SearchStatistics.modelEvaluations` per query.
    public var evaluationsPerQuery: Double
    /// Mean of `SearchStatistics.steps` per query (levels or graph hops).
    public var stepsPerQuery: Double

    /// A row from its fields.
    public init(
        retriever: String, parameters: String, sweepIndex: Int, k: Int, searchK: Int, threads: Int,
        batchSize: Int = 1, metrics: MetricSummary, latency: LatencySummary, evaluationsPerQuery: Double, stepsPerQuery: Double
    ) {
        self.retriever = retriever
        self.parameters = parameters
        self.sweepIndex = sweepIndex
        self.k = k
        self.searchK = searchK
        self.threads = threads
        self.batchSize = batchSize
        self.metrics = metrics
        self.latency = latency
        self.evaluationsPerQuery = evaluationsPerQuery
        self.stepsPerQuery = stepsPerQuery
    }
}

/// The results and timings of one timed pass over a query set.
public struct TimedRun: Sendable {
    /// One result per query, in query order.
    public var results: [SearchResult]
    /// One latency per query (nanoseconds), in query order.
    public var latencyNanoseconds: [Int64]
    /// Wall time of the pass (nanoseconds).
    public var wallNanoseconds: Int64
}

/// Runs retrievers side by side on one query set and reports quality, latency and cost per
/// (retriever, sweep point, k, thread count).
///
/// Timing loop: results and latencies go into buffers allocated before the clock starts; metrics are
/// computed after the timed pass, in query order, so quality numbers do not depend on the thread
/// count. Progress goes to the reporter: task "benchmark" counts timed runs; a task per run
/// ("tree beam=200 k=100 t=2") counts its queries.
///
/// Protocols: the runner scores what the retrievers return. For the masked full-ranking protocol
/// (RecBole, MIND: seen items removed) put each user's seen items in `Query.excluded`, so retrievers
/// filter them at the leaves; for TDM's seen-categories-excluded figures give
/// ``GroundTruth/seenCategories``. `run` blocks the calling thread; call it off the cooperative pool
/// (or from a plain thread) in async code. With several threads, keep BLAS single-threaded.
public struct BenchmarkRunner: Sendable {
    /// Cut-offs, threads, warm-up.
    public var configuration: BenchmarkConfiguration
    /// Where progress goes.
    public var progress: any ProgressReporter
    /// Checked between queries; a set flag ends the run with `CancellationError`.
    public var cancellation: CancellationFlag?

    /// A runner.
    public init(
        configuration: BenchmarkConfiguration, progress: any ProgressReporter = SilentProgress(),
        cancellation: CancellationFlag? = nil
    ) {
        self.configuration = configuration
        self.progress = progress
        self.cancellation = cancellation
    }

    /// Benchmarks every entry at every sweep point, k and thread count.
    /// - Returns: rows ordered by entry, sweep point, thread count, then k.
    /// - Throws: ``ArborError`` for an invalid configuration, ground truth of the wrong size
    ///   (`dimensionMismatch`), no queries or no entries (`empty`); `CancellationError`; or the first
    ///   error a retriever throws.
    public func run(entries: [BenchmarkEntry], queries: [Query], truth: GroundTruth) throws -> [BenchmarkRow] {
        try configuration.validate()
        guard !entries.isEmpty else { throw ArborError.empty(what: "retrievers to benchmark") }
        guard !queries.isEmpty else { throw ArborError.empty(what: "queries") }
        try truth.validate(queryCount: queries.count)
        for entry in entries where entry.sweep.isEmpty {
            throw ArborError.empty(what: "sweep points for \(entry.label)")
        }
        let ks = Array(Set(configuration.kValues)).sorted()
        let searchKs = configuration.searchPerK ? ks : [ks.last!]
        let totalRuns = entries.reduce(0) { $0 + $1.sweep.count } * searchKs.count * configuration.threadCounts.count
        var done = 0
        var rows: [BenchmarkRow] = []
        progress.report(task: "benchmark", done: 0, total: totalRuns)
        for entry in entries {
            for (sweepIndex, point) in entry.sweep.enumerated() {
                for threads in configuration.threadCounts {
                    for searchK in searchKs {
                        var parameters = point.parameters
                        parameters.k = searchK
                        let task = "\(entry.label) \(point.label) k=\(searchK) t=\(threads)"
                        try cancellation?.check()
                        if configuration.batchSize > 1, !configuration.warmUp.isEmpty {
                            _ = try entry.retriever.search(batch: configuration.warmUp, parameters: parameters)
                        } else {
                            for q in configuration.warmUp {
                                try cancellation?.check()
                                _ = try entry.retriever.search(q, parameters: parameters)
                            }
                        }
                        let run = try Self.timedRun(
                            retriever: entry.retriever, queries: queries, parameters: parameters,
                            threads: threads, batchSize: configuration.batchSize, progress: progress, task: task,
                            cancellation: cancellation)
                        let latency = LatencySummary(nanoseconds: run.latencyNanoseconds, wallNanoseconds: run.wallNanoseconds)
                        var evaluations = 0.0, steps = 0.0
                        for r in run.results {
                            evaluations += Double(r.statistics.modelEvaluations)
                            steps += Double(r.statistics.steps)
                        }
                        let lists = run.results.map { $0.items.map(\.item) }
                        for k in (configuration.searchPerK ? [searchK] : ks) {
                            let summary = try truth.evaluate(retrieved: lists, k: k)
                            rows.append(BenchmarkRow(
                                retriever: entry.label, parameters: point.label, sweepIndex: sweepIndex, k: k,
                                searchK: searchK, threads: threads, batchSize: configuration.batchSize, metrics: summary, latency: latency,
                                evaluationsPerQuery: evaluations / Double(queries.count),
                                stepsPerQuery: steps / Double(queries.count)))
                        }
                        done += 1
                        progress.report(task: "benchmark", done: done, total: totalRuns)
                    }
                }
            }
        }
        progress.finish(task: "benchmark")
        return rows
    }

    /// Runs `queries` once through `retriever`, spread over `threads` threads, and times each call
    /// and the whole pass. Results land in query order whatever the thread count.
    /// - Parameter batchSize: queries per call; above 1, consecutive queries go through
    ///   `search(batch:parameters:)` (batches are cut before the clock starts) and every query of a
    ///   batch gets the batch's latency.
    /// - Throws: ``ArborError`` for `threads < 1`, `batchSize < 1` or a batch answered with the wrong
    ///   number of results; `CancellationError`; the first retriever error.
    public static func timedRun(
        retriever: any Retriever, queries: [Query], parameters: SearchParameters, threads: Int = 1,
        batchSize: Int = 1, progress: any ProgressReporter = SilentProgress(), task: String = "queries",
        cancellation: CancellationFlag? = nil
    ) throws -> TimedRun {
        guard threads >= 1 else { throw ArborError.invalidArgument(name: "threads", reason: "must be at least 1, got \(threads)") }
        guard batchSize >= 1 else {
            throw ArborError.invalidArgument(name: "batch size", reason: "must be at least 1, got \(batchSize)")
        }
        let n = queries.count
        let batches: [[Query]] = batchSize == 1 ? [] : stride(from: 0, to: n, by: batchSize).map {
            Array(queries[$0 ..< min($0 + batchSize, n)])
        }
        let units = batchSize == 1 ? n : batches.count
        var results = [SearchResult](repeating: SearchResult(items: []), count: n)
        var latencies = [Int64](repeating: 0, count: n)
        let state = RunState()
        let reportEvery = max(1, n / 100)
        let clock = ContinuousClock()
        var wall: Int64 = 0
        progress.report(task: task, done: 0, total: n)
        results.withUnsafeMutableBufferPointer { resultBuffer in
            latencies.withUnsafeMutableBufferPointer { latencyBuffer in
                let out = SendableBuffers(results: resultBuffer, latencies: latencyBuffer)
                let worker: @Sendable () -> Void = {
                    while !state.stop.load(ordering: .relaxed) {
                        let i = state.next.wrappingAdd(1, ordering: .relaxed).oldValue
                        if i >= units { break }
                        if cancellation?.isCancelled == true {
                            state.failure.withLock { if $0 == nil { $0 = CancellationError() } }
                            state.stop.store(true, ordering: .relaxed)
                            break
                        }
                        let start = clock.now
                        var doneHere = 1
                        do {
                            if batchSize == 1 {
                                let r = try retriever.search(queries[i], parameters: parameters)
                                let elapsed = start.duration(to: clock.now)
                                out.results[i] = r
                                out.latencies[i] = elapsed.nanoseconds
                            } else {
                                let batch = batches[i]
                                let rs = try retriever.search(batch: batch, parameters: parameters)
                                let elapsed = start.duration(to: clock.now).nanoseconds
                                guard rs.count == batch.count else {
                                    throw ArborError.dimensionMismatch(
                                        field: "results of batch \(i)", expected: batch.count, found: rs.count)
                                }
                                let first = i * batchSize
                                for (j, r) in rs.enumerated() {
                                    out.results[first + j] = r
                                    out.latencies[first + j] = elapsed
                                }
                                doneHere = batch.count
                            }
                        } catch {
                            state.failure.withLock { if $0 == nil { $0 = error } }
                            state.stop.store(true, ordering: .relaxed)
                            break
                        }
                        let c = state.completed.wrappingAdd(doneHere, ordering: .relaxed).newValue
                        if c / reportEvery != (c - doneHere) / reportEvery || c == n {
                            progress.report(task: task, done: c, total: n)
                        }
                    }
                }
                let start = clock.now
                if threads == 1 {
                    worker()
                } else {
                    BLAS.concurrentPerform(iterations: threads) { _ in worker() }
                }
                wall = start.duration(to: clock.now).nanoseconds
            }
        }
        progress.finish(task: task)
        if let error = state.failure.withLock({ $0 }) { throw error }
        return TimedRun(results: results, latencyNanoseconds: latencies, wallNanoseconds: wall)
    }

    /// The reference top-`k` lists of `queries` from `retriever` (typically the exact flat scan, or
    /// the tree's scorer run brute force), for ``GroundTruth/exact(_:)``.
    /// - Throws: as ``timedRun(retriever:queries:parameters:threads:progress:task:cancellation:)``,
    ///   and ``ArborError/invalidArgument(name:reason:)`` for `k < 1`.
    public static func referenceLists(
        from retriever: any Retriever, queries: [Query], k: Int,
        parameters: SearchParameters = SearchParameters(), threads: Int = 1,
        progress: any ProgressReporter = SilentProgress()
    ) throws -> [[ItemID]] {
        guard k >= 1 else { throw ArborError.invalidArgument(name: "k", reason: "must be at least 1, got \(k)") }
        var p = parameters
        p.k = k
        let run = try timedRun(
            retriever: retriever, queries: queries, parameters: p, threads: threads, progress: progress,
            task: "reference \(retriever.name) k=\(k)")
        return run.results.map { $0.items.map(\.item) }
    }
}

/// Shared counters of one timed pass.
private final class RunState: Sendable {
    let failure = PosixMutex<(any Error)?>(nil)
    let next = Atomic<Int>(0)
    let completed = Atomic<Int>(0)
    let stop = Atomic<Bool>(false)
}

/// Output buffers shared by the worker threads; each query index is written by exactly one thread.
private struct SendableBuffers: @unchecked Sendable {
    let results: UnsafeMutableBufferPointer<SearchResult>
    let latencies: UnsafeMutableBufferPointer<Int64>
}
