import ArborCore
import Prometheus

/// The service's Prometheus metrics, in a registry of its own (nothing global).
///
/// - `arbor_http_requests_total{path, status}`: requests answered, by route and HTTP status;
/// - `arbor_search_duration_seconds`: histogram of `POST /search` handling time (body read,
///   decode, search, encode), successful or not;
/// - `arbor_index_generation`: 1 at start, raised by one at every reload;
/// - `arbor_index_items`, `arbor_index_dimension`, `arbor_index_format_version`: the current index;
/// - `arbor_index_reloads_total{outcome}`: reloads done (`ok`) or refused (`failed`).
///
/// Thread-safety: safe from any thread.
public final class ServiceMetrics: Sendable {
    /// The registry; ``render()`` prints it.
    public let registry = PrometheusCollectorRegistry()
    private let latency: DurationHistogram
    private let generation: Gauge
    private let items: Gauge
    private let dimension: Gauge
    private let formatVersion: Gauge
    private let counters = PosixMutex<[String: Counter]>([:])

    /// Histogram bucket bounds of `arbor_search_duration_seconds`.
    public static let latencyBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(20), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .seconds(5),
    ]

    /// Metrics with every counter at zero.
    public init() {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "arbor", metricName: metric, unitName: unit, helpText: help)
        }
        latency = registry.makeDurationHistogram(
            descriptor: name("search_duration", "seconds", "Time to answer POST /search: read, decode, search, encode."),
            buckets: Self.latencyBuckets)
        generation = registry.makeGauge(descriptor: name("index", "generation", "Index loads since start (1 = the first)."))
        items = registry.makeGauge(descriptor: name("index", "items", "Items in the served index."))
        dimension = registry.makeGauge(descriptor: name("index", "dimension", "Width of the served index's vectors."))
        formatVersion = registry.makeGauge(descriptor: name("index", "format_version", "File format version of the served index."))
    }

    /// Counts one answered request.
    public func countRequest(path: String, status: Int) {
        counter("http_requests", [("path", path), ("status", String(status))],
                help: "HTTP requests answered, by route and status.").increment()
    }

    /// Records one `POST /search` duration.
    public func recordSearch(_ duration: Duration) { latency.record(duration) }

    /// Counts one reload attempt.
    public func countReload(ok: Bool) {
        counter("index_reloads", [("outcome", ok ? "ok" : "failed")], help: "Index reloads, by outcome.").increment()
    }

    /// Publishes the current index's version and size.
    public func publish(_ snapshot: ServedIndex.Snapshot) {
        generation.set(Int64(snapshot.generation))
        items.set(Int64(snapshot.engine.itemCount))
        dimension.set(Int64(snapshot.engine.dimension))
        formatVersion.set(Int64(snapshot.engine.reader.header.formatVersion))
    }

    /// The Prometheus text exposition of every metric.
    public func render() -> String { registry.emitToString() }

    private func counter(_ name: String, _ labels: [(String, String)], help: String) -> Counter {
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        return counters.withLock { cache in
            if let c = cache[key] { return c }
            let c = registry.makeCounter(
                descriptor: MetricNameDescriptor(namespace: "arbor", metricName: name, unitName: "total", helpText: help),
                labels: labels)
            cache[key] = c
            return c
        }
    }
}
