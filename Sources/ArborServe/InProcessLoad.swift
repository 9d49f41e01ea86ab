import ArborCore
import ArborEngine
import Foundation

/// A closed-loop load generator inside the process, the baseline for the HTTP load figures:
/// `threads` threads each send one request after another for `seconds`, cycling through the
/// queries (thread `t` starts at query `t`), and every latency is kept.
///
/// Two paths: ``Path/engine`` calls ``Engine/search(vector:k:using:excluding:)`` (the front
/// door), ``Path/handler`` sends the same query as a JSON body through ``SearchHandler`` (decode,
/// check, search, encode: everything the service does except HTTP).
public enum InProcessLoad {
    /// Which code the threads call.
    public enum Path: String, Sendable, CaseIterable {
        case engine, handler
    }

    /// What one run measured.
    public struct Measurement: Sendable, CustomStringConvertible {
        public var path: Path
        public var threads: Int
        public var requests: Int
        public var failures: Int
        public var seconds: Double
        /// Median and 99th-percentile latency, milliseconds.
        public var p50: Double
        public var p99: Double
        /// Requests answered per second.
        public var qps: Double { Double(requests) / seconds }

        public var description: String {
            String(format: "in-process %@ threads %d: %.1f QPS, p50 %.2f ms, p99 %.2f ms (%d requests, %d failed, %.1f s)",
                   path.rawValue, threads, qps, p50, p99, requests, failures, seconds)
        }
    }

    /// Runs `threads` threads for `seconds` over `queries` (each `dimension` floats) with `k` and `choice`.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` for `threads < 1`, `seconds <= 0`
    ///   or no queries.
    public static func run(_ path: Path, index: ServedIndex, limits: ServeConfiguration, queries: [[Float]], k: Int,
                           choice: RetrieverChoice, threads: Int, seconds: Double) throws -> Measurement {
        guard threads >= 1 else { throw ArborError.invalidArgument(name: "threads", reason: "must be at least 1, got \(threads)") }
        guard seconds > 0 else { throw ArborError.invalidArgument(name: "seconds", reason: "must be positive, got \(seconds)") }
        guard !queries.isEmpty else { throw ArborError.empty(what: "queries") }
        let handler = SearchHandler(index: index, limits: limits)
        let knob: String
        switch choice {
        case .tree(let beam, _): knob = #","retriever":"tree","beam":\#(beam)"#
        case .exact: knob = #","retriever":"exact""#
        case .hnsw(let ef): knob = #","retriever":"hnsw","ef":\#(ef)"#
        }
        let bodies = queries.map { q in
            Array((#"{"vector":["# + q.map { "\($0)" }.joined(separator: ",") + #"],"k":\#(k)\#(knob)}"#).utf8)
        }
        let latencies = PosixMutex<[Double]>([])
        let failures = PosixMutex(0)
        let done = DispatchGroup()
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int(seconds * 1000))
        let start = clock.now
        for t in 0..<threads {
            done.enter()
            let thread = Thread {
                var mine: [Double] = []
                var failed = 0
                var i = t
                while clock.now < deadline {
                    let q = i % queries.count
                    let begin = clock.now
                    switch path {
                    case .engine:
                        let engine = index.snapshot.engine
                        if (try? engine.search(vector: queries[q], k: k, using: choice)) == nil { failed += 1 }
                    case .handler:
                        if handler.reply(to: bodies[q]).status != 200 { failed += 1 }
                    }
                    let elapsed = clock.now - begin
                    mine.append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) * 1e-15)
                    i += threads
                }
                let collected = mine, failedCount = failed
                latencies.withLock { $0.append(contentsOf: collected) }
                failures.withLock { $0 += failedCount }
                done.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        done.wait()
        let elapsed = clock.now - start
        let all = latencies.withLock { $0 }.sorted()
        func percentile(_ p: Double) -> Double { all.isEmpty ? 0 : all[min(all.count - 1, Int((p * Double(all.count)).rounded(.down)))] }
        return Measurement(path: path, threads: threads, requests: all.count, failures: failures.withLock { $0 },
                           seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18,
                           p50: percentile(0.5), p99: percentile(0.99))
    }
}
