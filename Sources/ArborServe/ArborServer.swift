import ArborCore
import ArborEngine
import Foundation
import Hummingbird
import ServiceLifecycle
import UnixSignals

/// `arbor serve`: the front door over HTTP (Hummingbird 2).
///
/// Routes:
/// - `POST /search`: JSON in, JSON out (``SearchHandler``); bodies over
///   ``ServeConfiguration/maxBodyBytes`` are refused with 400 (`field: body`) while being read;
/// - `GET /health`: `{"status":"ok","generation":g,"items":n,"dimension":d}`;
/// - `GET /metrics`: Prometheus text (``ServiceMetrics``).
///
/// Hot reload: the index file is checked every ``ServeConfiguration/reloadPollMilliseconds`` and
/// on SIGHUP; a replaced file (atomic rename) is opened and new requests use it while requests
/// in flight finish on the old one (``ServedIndex``). A batch committed into the file in place
/// (`arbor update`) is noticed by its LMDB transaction id and served the same way. SIGTERM and SIGINT shut down gracefully:
/// the listener closes and requests in flight are answered.
///
/// Searches run on the handler's task (the cooperative pool, one thread per core): the work is
/// CPU-bound and short, so no thread hop is added.
public final class ArborServer: Sendable {
    /// The validated configuration.
    public let configuration: ServeConfiguration
    /// The served index.
    public let index: ServedIndex
    /// The metrics `GET /metrics` prints.
    public let metrics: ServiceMetrics
    private let handler: SearchHandler

    /// Opens the index and prepares the routes (nothing listens until ``run(onListening:)``).
    /// - Throws: ``ArborError`` for a bad configuration field; the open errors of ``Arbor/open(_:)``.
    public init(configuration: ServeConfiguration) throws {
        let configuration = try configuration.validated()
        self.configuration = configuration
        index = try ServedIndex(path: configuration.indexPath)
        metrics = ServiceMetrics()
        handler = SearchHandler(index: index, limits: configuration)
        metrics.publish(index.snapshot)
    }

    /// Reloads the index when its file changed (or always with `force`), publishing the new
    /// version's metrics. A file that does not open leaves the served index as it was.
    /// - Returns: what was done, or the open error.
    @discardableResult
    public func reload(force: Bool = false) -> Result<ServedIndex.ReloadOutcome, any Error> {
        do {
            let outcome = try index.reload(force: force)
            if case .reloaded = outcome {
                metrics.publish(index.snapshot)
                metrics.countReload(ok: true)
            }
            return .success(outcome)
        } catch {
            metrics.countReload(ok: false)
            return .failure(error)
        }
    }

    /// The routes, for an application or for in-process tests.
    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        let metrics = self.metrics, handler = self.handler, index = self.index
        let maxBody = configuration.maxBodyBytes
        router.post("search") { request, _ -> Response in
            let start = ContinuousClock.now
            var request = request
            let reply: Reply
            if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBody {
                reply = .refusal(RequestError(field: "body", "\(length) bytes, more than the limit of \(maxBody)"))
            } else {
                do {
                    let body = try await request.collectBody(upTo: maxBody)
                    reply = handler.reply(to: body.readableBytesView)
                } catch {
                    reply = .refusal(RequestError(field: "body", "more than the limit of \(maxBody) bytes"))
                }
            }
            metrics.recordSearch(ContinuousClock.now - start)
            metrics.countRequest(path: "/search", status: reply.status)
            return Self.response(reply, contentType: "application/json")
        }
        router.get("health") { _, _ -> Response in
            let snapshot = index.snapshot
            let text = "{\"status\":\"ok\",\"generation\":\(snapshot.generation),\"items\":\(snapshot.engine.itemCount),\"dimension\":\(snapshot.engine.dimension)}"
            metrics.countRequest(path: "/health", status: 200)
            return Self.response(.json(200, text), contentType: "application/json")
        }
        router.get("metrics") { _, _ -> Response in
            metrics.countRequest(path: "/metrics", status: 200)
            return Self.response(Reply(status: 200, body: Array(metrics.render().utf8)),
                                 contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        return router
    }

    /// The application: routes, the configured address, and (with `watch`) the reload watcher.
    /// - Parameter onListening: called once with the port the server listens on.
    public func makeApplication(watch: Bool = true, onListening: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol
    {
        Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "arbor"),
            services: watch ? [IndexWatcher(server: self)] : [],
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) })
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully (requests in flight answered).
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try await makeApplication(watch: true, onListening: onListening).runService()
    }

    private static func response(_ reply: Reply, contentType: String) -> Response {
        Response(status: .init(code: reply.status), headers: [.contentType: contentType],
                 body: ResponseBody(byteBuffer: ByteBuffer(bytes: reply.body)))
    }
}

/// Reloads the index on SIGHUP and when the file changes (polled), until shutdown.
struct IndexWatcher: Service {
    let server: ArborServer

    func run() async throws {
        let poll = server.configuration.reloadPollMilliseconds
        let server = self.server
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in hangups { Self.report(server.reload(force: true), path: server.index.path, trigger: "SIGHUP") }
                }
                if poll > 0 {
                    group.addTask {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: .milliseconds(poll))
                            if Task.isCancelled { break }
                            Self.report(server.reload(force: false), path: server.index.path, trigger: "file change")
                        }
                    }
                }
                await group.waitForAll()
            }
        }
    }

    private static func report(_ result: Result<ServedIndex.ReloadOutcome, any Error>, path: String, trigger: String) {
        switch result {
        case .success(.unchanged): return
        case let .success(.reloaded(generation)):
            FileHandle.standardError.write(Data("arbor serve: reloaded \(path) (\(trigger)), generation \(generation)\n".utf8))
        case let .failure(error):
            FileHandle.standardError.write(Data("arbor serve: kept the current index; reloading \(path) failed: \(error)\n".utf8))
        }
    }
}
