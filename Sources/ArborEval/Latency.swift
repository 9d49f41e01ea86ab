/// The nearest-rank percentile of `sorted` (ascending): for `n` values and `p` in `(0, 100]`, the
/// value of 1-based rank `⌈p · n / 100⌉` (rank 1 for `p = 0`). Exact for `p` given to 6 decimals (the
/// rank is computed in integers, so `p = 95, n = 20` is rank 19, not 20 through rounding error).
/// - Returns: `nil` when `sorted` is empty or `p` is outside `[0, 100]` or not finite.
public func nearestRankPercentile<T>(_ sorted: [T], _ p: Double) -> T? {
    guard !sorted.isEmpty, p.isFinite, p >= 0, p <= 100 else { return nil }
    // p in units of 1e-6 percent; rank = ceil(p·n/100) = ceil(micro·n / 1e8).
    let micro = Int64((p * 1_000_000).rounded())
    let n = Int64(sorted.count)
    let denominator: Int64 = 100_000_000
    let (product, overflow) = micro.multipliedReportingOverflow(by: n)
    let rank: Int64
    if overflow {
        rank = Int64((p * Double(n) / 100).rounded(.up))
    } else {
        rank = (product + denominator - 1) / denominator
    }
    let index = Int(min(max(rank, 1), n)) - 1
    return sorted[index]
}

/// Collects per-query latencies in nanoseconds. Appending does not allocate once
/// ``reserve(_:)`` has made room, so it can sit in a timing loop.
public struct LatencyRecorder: Sendable, Equatable {
    /// The recorded latencies, in nanoseconds, in recording order.
    public private(set) var nanoseconds: [Int64] = []

    /// An empty recorder with room for `capacity` samples.
    public init(capacity: Int = 0) { nanoseconds.reserveCapacity(capacity) }

    /// Makes room for `capacity` samples in all.
    public mutating func reserve(_ capacity: Int) { nanoseconds.reserveCapacity(capacity) }

    /// Records one latency (negative values are clamped to 0).
    public mutating func record(nanoseconds value: Int64) { nanoseconds.append(max(0, value)) }

    /// Records one latency given as a `Duration` (e.g. from `ContinuousClock`).
    public mutating func record(_ duration: Duration) { record(nanoseconds: duration.nanoseconds) }

    /// Times `body` with `ContinuousClock`, records its latency and returns its result.
    public mutating func measure<R>(_ body: () throws -> R) rethrows -> R {
        let clock = ContinuousClock()
        let start = clock.now
        let r = try body()
        record(start.duration(to: clock.now))
        return r
    }

    /// Number of samples.
    public var count: Int { nanoseconds.count }

    /// Appends the samples of `other`.
    public mutating func merge(_ other: LatencyRecorder) { nanoseconds.append(contentsOf: other.nanoseconds) }

    /// Summary statistics of the samples.
    /// - Parameter wallNanoseconds: the wall time the queries took in all (for QPS); with several
    ///   threads this is less than the sum of the latencies. `nil` uses the sum of the latencies
    ///   (one thread, no overhead between queries).
    public func summary(wallNanoseconds: Int64? = nil) -> LatencySummary {
        LatencySummary(nanoseconds: nanoseconds, wallNanoseconds: wallNanoseconds)
    }
}

extension Duration {
    /// The duration in whole nanoseconds (truncated; saturating at `Int64.max`).
    var nanoseconds: Int64 {
        let (s, atto) = components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return s < 0 ? .min : .max }
        return ns &+ atto / 1_000_000_000
    }
}

/// Latency and throughput of a set of queries.
///
/// Percentiles are nearest-rank (``nearestRankPercentile(_:_:)``) over the per-query latencies; the
/// mean is their arithmetic mean; `qps = queries / wall seconds`.
public struct LatencySummary: Sendable, Equatable, Codable {
    /// Number of queries timed.
    public var queries: Int
    /// Mean latency, milliseconds.
    public var meanMs: Double
    /// Median (p50) latency, milliseconds.
    public var p50Ms: Double
    /// 95th-percentile latency, milliseconds.
    public var p95Ms: Double
    /// 99th-percentile latency, milliseconds.
    public var p99Ms: Double
    /// Largest latency, milliseconds.
    public var maxMs: Double
    /// Wall time of the whole run, seconds.
    public var wallSeconds: Double
    /// Queries per second over the wall time: `queries / wallSeconds` (0 when the wall time is 0).
    public var qps: Double

    /// Computes the summary of `nanoseconds` (any order).
    /// - Parameter wallNanoseconds: wall time of the run; `nil` = the sum of the latencies.
    public init(nanoseconds: [Int64], wallNanoseconds: Int64? = nil) {
        let sorted = nanoseconds.sorted()
        let ms = { (v: Int64?) -> Double in Double(v ?? 0) / 1e6 }
        queries = sorted.count
        let total = sorted.reduce(0.0) { $0 + Double($1) }
        meanMs = sorted.isEmpty ? 0 : total / Double(sorted.count) / 1e6
        p50Ms = ms(nearestRankPercentile(sorted, 50))
        p95Ms = ms(nearestRankPercentile(sorted, 95))
        p99Ms = ms(nearestRankPercentile(sorted, 99))
        maxMs = ms(sorted.last)
        wallSeconds = Double(wallNanoseconds ?? Int64(total)) / 1e9
        qps = wallSeconds > 0 ? Double(sorted.count) / wallSeconds : 0
    }

    /// A summary from given values (for tests and for reports read back).
    public init(
        queries: Int, meanMs: Double, p50Ms: Double, p95Ms: Double, p99Ms: Double, maxMs: Double,
        wallSeconds: Double, qps: Double
    ) {
        self.queries = queries
        self.meanMs = meanMs
        self.p50Ms = p50Ms
        self.p95Ms = p95Ms
        self.p99Ms = p99Ms
        self.maxMs = maxMs
        self.wallSeconds = wallSeconds
        self.qps = qps
    }
}
