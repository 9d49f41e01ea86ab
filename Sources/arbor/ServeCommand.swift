import ArborCore
import ArborData
import ArborEngine
import ArborServe
import ArgumentParser
import Dispatch
import Foundation

/// `arbor serve`: the index over HTTP (search, health, Prometheus metrics, hot reload).
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve an index over HTTP: POST /search, GET /health, GET /metrics.",
        discussion: paragraphs("""
            POST /search takes JSON: exactly one of "history" (item ids, oldest first), "vector"
            (dimension floats) or "vectors" (a batch), with optional "k" (default 10), "retriever"
            ("tree", default; "exact"; "hnsw"), "beam" (tree, default 100), "ef" (hnsw, default
            200), "timestamps" (seconds, one per history item) and "exclude" (ids). It answers
            {"generation":1,"ids":[...],"scores":[...]} (best first); "vectors" answers
            {"generation":1,"results":[{"ids":[...],"scores":[...]},...]}. A bad request gets
            HTTP 400 and {"error":"...","field":"..."} naming the field. When the index file is
            replaced (a rename over it, as `arbor build --out` does) or on SIGHUP, new requests use
            the new index and requests in flight finish on the old one. SIGTERM or Ctrl-C stops
            it gracefully.
            """))

    @Option(help: "The index file to serve.")
    var index: String

    @Option(help: "Address to bind (0.0.0.0 for every interface).")
    var host: String = "127.0.0.1"

    @Option(help: "TCP port (0: any free port; the chosen one is printed).")
    var port: Int = 8080

    @Option(help: "Largest request body, in bytes.")
    var maxBodyBytes: Int = 1 << 20

    @Option(help: "Largest k a request may ask for.")
    var maxK: Int = 1000

    @Option(help: "Largest tree beam a request may ask for.")
    var maxBeam: Int = 100_000

    @Option(help: "Most vectors in one \"vectors\" request.")
    var maxBatch: Int = 256

    @Option(help: "How often to check the index file for a replacement, in milliseconds (0: only on SIGHUP).")
    var reloadPollMs: Int = 1000

    @Option(help: ArgumentHelp(
        "Measure instead of serving: send the rows of this float32 .npy to the index in-process, through the front door and through the JSON handler (the service minus HTTP), and print QPS and latency.",
        valueName: "queries.npy"))
    var inProcess: String?

    @Option(help: "With --in-process: thread counts, comma-separated.")
    var threads: String = "1,2,8"

    @Option(help: "With --in-process: seconds per measurement.")
    var seconds: Double = 10

    @Option(help: "With --in-process: items per query.")
    var k: Int = 100

    @Option(help: "With --in-process: tree beam.")
    var beam: Int = 400

    func validate() throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        guard k >= 1 else { throw ValidationError("--k must be at least 1") }
        guard beam >= 1 else { throw ValidationError("--beam must be at least 1") }
    }

    func run() throws {
        var configuration = ServeConfiguration(indexPath: index)
        configuration.host = host
        configuration.port = port
        configuration.maxBodyBytes = maxBodyBytes
        configuration.maxK = maxK
        configuration.maxBeam = maxBeam
        configuration.maxBatch = maxBatch
        configuration.reloadPollMilliseconds = reloadPollMs
        let server = try ArborServer(configuration: configuration.validated())
        if let inProcess {
            let threadCounts = try parseIntList(threads, option: "--threads")
            guard threadCounts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--threads must be at least 1") }
            let m = try NPY.readMatrix(at: inProcess)
            guard m.cols == server.index.snapshot.engine.dimension else {
                throw ArborError.dimensionMismatch(field: "\(inProcess) columns", expected: server.index.snapshot.engine.dimension, found: m.cols)
            }
            let queries = (0..<m.rows).map { Array(m.row($0)) }
            for t in threadCounts {
                for path in InProcessLoad.Path.allCases {
                    print(try InProcessLoad.run(path, index: server.index, limits: server.configuration, queries: queries, k: k,
                                                choice: .tree(beam: beam), threads: t, seconds: seconds))
                }
            }
            return
        }
        let snapshot = server.index.snapshot
        let host = self.host
        try waitFor {
            try await server.run { port in
                note("arbor serve: \(snapshot.engine.path) (\(snapshot.engine.itemCount) items, d = \(snapshot.engine.dimension)) on http://\(host):\(port)")
            }
        }
        note("arbor serve: stopped")
    }
}

/// Runs `body` on the concurrency pool and blocks the calling (main) thread until it ends.
private func waitFor(_ body: @escaping @Sendable () async throws -> Void) throws {
    final class Outcome: @unchecked Sendable { var error: (any Error)? }  // written before signal, read after wait
    let outcome = Outcome()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { try await body() } catch { outcome.error = error }
        done.signal()
    }
    done.wait()
    if let error = outcome.error { throw error }
}
