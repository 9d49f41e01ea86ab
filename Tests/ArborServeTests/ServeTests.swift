import ArborCore
import ArborEngine
import ArborMath
import ArborServe
import ArborTree
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

// In-process tests of `arbor serve` through Hummingbird's router test client (no port).

private func randomMatrix(rows: Int, cols: Int, seed: UInt64) -> Matrix {
    var rng = SplitMix64(seed: seed)
    return try! Matrix(rows: rows, cols: cols, values: (0..<(rows * cols)).map { _ in rng.nextUnitFloat() * 2 - 1 })
}

/// A folder of its own for each test's index files, removed at the end.
private final class Scratch: Sendable {
    let folder: String
    init() throws {
        folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("arbor-serve-\(getpid())-\(UInt64.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: folder) }
    func path(_ name: String) -> String { folder + "/" + name }
}

private let dimension = 8
private let itemCount = 240

/// Writes (atomically) an inner-product index over `itemCount` random items whose ids start at `firstID`.
private func writeIndex(to path: String, firstID: UInt64, seed: UInt64) throws {
    let items = randomMatrix(rows: itemCount, cols: dimension, seed: seed)
    let ids = (0..<itemCount).map { ItemID(firstID + UInt64($0)) }
    let tree = try TreeBuilder.balancedKMeans(embeddings: items, items: ids, options: .init(fanOut: 4, seed: 1))
    try IndexWriter().write(layout: tree, to: path)
}

private let idsA = Set((0..<UInt64(itemCount)).map { 100 + $0 })
private let idsB = Set((0..<UInt64(itemCount)).map { 5000 + $0 })

private struct SearchBody: Decodable {
    var generation: Int
    var ids: [UInt64]?
    var scores: [Float]?
    var results: [Hit]?
    struct Hit: Decodable { var ids: [UInt64]; var scores: [Float] }
}

private struct ErrorBody: Decodable {
    var error: String
    var field: String
}

private func text(_ response: TestResponse) -> String { String(buffer: response.body) }

private func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(text(response).utf8))
}

private func vectorJSON(_ v: [Float]) -> String { "[" + v.map { "\($0)" }.joined(separator: ",") + "]" }

/// A server over a fresh index A (ids 100...339) in its own folder.
private func makeServer(_ scratch: Scratch, configure: (inout ServeConfiguration) -> Void = { _ in }) throws -> ArborServer {
    let path = scratch.path("x.arbor")
    try writeIndex(to: path, firstID: 100, seed: 7)
    var configuration = ServeConfiguration(indexPath: path)
    configuration.reloadPollMilliseconds = 0
    configure(&configuration)
    return try ArborServer(configuration: configuration)
}

private func post(_ client: some TestClientProtocol, _ body: String) async throws -> TestResponse {
    try await client.execute(uri: "/search", method: .post, headers: [.contentType: "application/json"],
                             body: ByteBuffer(string: body))
}

@Suite struct ServeRequestTests {
    /// A vector search answers exactly what the front door answers in-process, best first.
    @Test func vectorSearchMatchesTheEngine() async throws {
        let scratch = try Scratch()
        let server = try makeServer(scratch)
        let query = Array(randomMatrix(rows: 1, cols: dimension, seed: 99).row(0))
        let expected = try Arbor.open(server.index.path).search(vector: query, k: 7, using: .tree(beam: 50))
        try await server.makeApplication(watch: false).test(.router) { client in
            let response = try await post(client, #"{"vector": \#(vectorJSON(query)), "k": 7, "beam": 50}"#)
            #expect(response.status == .ok)
            // A single vector is one interest: a shared beam answers the same.
            let shared = try await post(client, #"{"vector": \#(vectorJSON(query)), "k": 7, "beam": 50, "interestBeams": "shared"}"#)
            #expect(try decode(SearchBody.self, shared).ids == expected.items.map(\.item.rawValue))
            let body = try decode(SearchBody.self, response)
            #expect(body.generation == 1)
            #expect(body.ids == expected.items.map(\.item.rawValue))
            let scores = try #require(body.scores)
            #expect(scores.count == 7)
            for (got, want) in zip(scores, expected.items.map(\.score)) { #expect(abs(got - want) <= 1e-6 * max(1, abs(want))) }
        }
    }

    /// The exact retriever, a history (whose items are never returned) and a batch of vectors.
    @Test func historyExactAndBatchRequests() async throws {
        let scratch = try Scratch()
        let server = try makeServer(scratch)
        let engine = try Arbor.open(server.index.path)
        let rows = randomMatrix(rows: 3, cols: dimension, seed: 5)
        try await server.makeApplication(watch: false).test(.router) { client in
            let history = try await post(client, #"{"history": [100, 101, 102, 999999], "k": 5, "retriever": "exact"}"#)
            #expect(history.status == .ok)
            #expect(text(history).contains(#""unknown_history_items":[999999]"#))
            let ids = try #require(try decode(SearchBody.self, history).ids)
            let want = try engine.search(history: [100, 101, 102], k: 5, using: .exact).items.map(\.item.rawValue)
            #expect(ids == want && ids.count == 5 && Set(ids).isDisjoint(with: [100, 101, 102]))

            let vectors = "[" + (0..<3).map { vectorJSON(Array(rows.row($0))) }.joined(separator: ",") + "]"
            let batch = try await post(client, #"{"vectors": \#(vectors), "k": 4}"#)
            #expect(batch.status == .ok)
            let results = try #require(try decode(SearchBody.self, batch).results)
            #expect(results.count == 3)
            for (r, hit) in results.enumerated() {
                #expect(hit.ids == (try engine.search(vector: Array(rows.row(r)), k: 4).items.map(\.item.rawValue)))
            }
        }
    }

    /// Every malformed request gets 400 with the field at fault named; nothing is searched.
    @Test(arguments: [
        ("{not json", "body"),
        ("[1, 2, 3]", "body"),
        (#"{"k": 5}"#, "history|vector|vectors"),
        (#"{"vector": [1,2,3,4,5,6,7,8], "history": [100]}"#, "history|vector|vectors"),
        (#"{"vector": [1, 2, 3]}"#, "vector"),
        (#"{"vectors": [[1,2,3,4,5,6,7,8], [1,2]]}"#, "vectors[1]"),
        (#"{"vectors": []}"#, "vectors"),
        (#"{"vector": [1, "NaN", 3, 4, 5, 6, 7, 8]}"#, "vector[1]"),
        (#"{"vector": [1e39, 2, 3, 4, 5, 6, 7, 8]}"#, "vector[0]"),
        (#"{"vector": [1, 2, 3, 4, 5, 6, 7, "Infinity"]}"#, "vector[7]"),
        (#"{"vector": [1, 2, 3, 4, 5, 6, 7, 8], "k": 1000001}"#, "k"),
        (#"{"vector": [1, 2, 3, 4, 5, 6, 7, 8], "k": 0}"#, "k"),
        (#"{"vector": [1, 2, 3, 4, 5, 6, 7, 8], "k": "ten"}"#, "k"),
        (#"{"vector": [1, 2, 3, 4, 5, 6, 7, 8], "k": 99999999999999999999999}"#, "k"),
        (#"{"vector": [1, 2, 3, 4, 5, 6, 7, 8], "retriever": "annoy"}"#, "retriever"),
        (#"{"vector": [1, 2, 3, 4, 5, 6, 7, 8], "retriever": "hnsw"}"#, "retriever"),
        (#"{"vector": [1, 2, 3, 4, 5, 6, 7, 8], "beam": 0}"#, "beam"),
        (#"{"vector": [1, 2, 3, 4, 5, 6, 7, 8], "retriever": "exact", "beam": 10}"#, "beam"),
        (#"{"vector": [1, 2, 3, 4, 5, 6, 7, 8], "ef": 10}"#, "ef"),
        (#"{"vector": [1, 2, 3, 4, 5, 6, 7, 8], "interestBeams": "both"}"#, "interestBeams"),
        (#"{"vector": [1, 2, 3, 4, 5, 6, 7, 8], "retriever": "exact", "interestBeams": "shared"}"#, "interestBeams"),
        (#"{"vector": [1, 2, 3, 4, 5, 6, 7, 8], "kk": 10}"#, "kk"),
        (#"{"history": []}"#, "history"),
        (#"{"history": [-4]}"#, "history"),
        (#"{"history": [100, 101], "timestamps": [1]}"#, "timestamps"),
        (#"{"vector": null}"#, "history|vector|vectors"),
    ])
    func badRequestNamesTheField(body: String, field: String) async throws {
        let scratch = try Scratch()
        let server = try makeServer(scratch)
        try await server.makeApplication(watch: false).test(.router) { client in
            let response = try await post(client, body)
            #expect(response.status == .badRequest, "\(body)")
            let refusal = try decode(ErrorBody.self, response)
            #expect(refusal.field == field, "\(body): \(refusal.error)")
            #expect(!refusal.error.isEmpty)
        }
    }

    /// A body over the configured limit is refused (400, field body), with or without a length header.
    @Test func oversizedBodyIsRefused() async throws {
        let scratch = try Scratch()
        let server = try makeServer(scratch) { $0.maxBodyBytes = 64 }
        let big = #"{"vector": [1, 2, 3, 4, 5, 6, 7, 8], "k": 10, "exclude": [\#((0..<40).map(String.init).joined(separator: ","))]}"#
        try await server.makeApplication(watch: false).test(.router) { client in
            let response = try await post(client, big)
            #expect(response.status == .badRequest)
            #expect(try decode(ErrorBody.self, response).field == "body")
            // Within the limit, the same endpoint answers.
            #expect(try await post(client, #"{"vector": [1,2,3,4,5,6,7,8]}"#).status == .ok)
        }
    }

    /// The configured k limit applies (here 5).
    @Test func configuredKLimit() async throws {
        let scratch = try Scratch()
        let server = try makeServer(scratch) { $0.maxK = 5 }
        try await server.makeApplication(watch: false).test(.router) { client in
            #expect(try await post(client, #"{"vector": [1,2,3,4,5,6,7,8], "k": 5}"#).status == .ok)
            let refused = try await post(client, #"{"vector": [1,2,3,4,5,6,7,8], "k": 6}"#)
            #expect(refused.status == .badRequest)
            #expect(try decode(ErrorBody.self, refused).field == "k")
        }
    }

    /// A bad configuration is refused before the index is opened.
    @Test func badConfigurationIsRefused() throws {
        var configuration = ServeConfiguration(indexPath: "/nonexistent/x.arbor")
        configuration.maxK = 0
        #expect(throws: ArborError.invalidArgument(name: "max-k", reason: "must be at least 1, got 0")) {
            try ArborServer(configuration: configuration)
        }
        configuration.maxK = 10
        configuration.port = 70000
        #expect(throws: ArborError.self) { try ArborServer(configuration: configuration) }
        configuration.port = 8080
        #expect(throws: (any Error).self) { try ArborServer(configuration: configuration) }  // no such file
    }

    /// Health and Prometheus metrics: request counts by status, the latency histogram, the index
    /// generation and item count.
    @Test func healthAndMetrics() async throws {
        let scratch = try Scratch()
        let server = try makeServer(scratch)
        try await server.makeApplication(watch: false).test(.router) { client in
            let health = try await client.execute(uri: "/health", method: .get)
            #expect(health.status == .ok)
            #expect(text(health) == #"{"status":"ok","generation":1,"items":240,"dimension":8}"#)
            _ = try await post(client, #"{"vector": [1,2,3,4,5,6,7,8]}"#)
            _ = try await post(client, #"{"vector": [1,2,3,4,5,6,7,8]}"#)
            _ = try await post(client, #"{"vector": [1,2]}"#)
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(metrics.status == .ok)
            let lines = Set(text(metrics).split(separator: "\n").map(String.init))
            #expect(lines.contains(#"arbor_http_requests_total{path="/search",status="200"} 2"#))
            #expect(lines.contains(#"arbor_http_requests_total{path="/search",status="400"} 1"#))
            #expect(lines.contains(#"arbor_http_requests_total{path="/health",status="200"} 1"#))
            #expect(lines.contains("arbor_search_duration_seconds_count 3"))
            #expect(lines.contains(#"arbor_search_duration_seconds_bucket{le="+Inf"} 3"#))
            #expect(lines.contains("arbor_index_generation 1.0"))
            #expect(lines.contains("arbor_index_items 240.0"))
            #expect(lines.contains("arbor_index_dimension 8.0"))
        }
    }
}

@Suite struct ServeReloadTests {
    /// A replaced file (written atomically) is loaded by `reload`; new requests use it; an
    /// unchanged file is not reloaded; metrics follow.
    @Test func replacedIndexIsServedAfterReload() async throws {
        let scratch = try Scratch()
        let server = try makeServer(scratch)
        let query = #"{"vector": [1, 2, 3, 4, 5, 6, 7, 8], "k": 10}"#
        try await server.makeApplication(watch: false).test(.router) { client in
            let before = try decode(SearchBody.self, try await post(client, query))
            #expect(before.generation == 1 && Set(before.ids ?? []).isSubset(of: idsA))
            #expect(try server.reload().get() == .unchanged)

            try writeIndex(to: server.index.path, firstID: 5000, seed: 8)
            #expect(try server.reload().get() == .reloaded(generation: 2))
            let after = try decode(SearchBody.self, try await post(client, query))
            #expect(after.generation == 2 && after.ids?.count == 10 && Set(after.ids ?? []).isSubset(of: idsB))
            #expect(try server.reload(force: true).get() == .reloaded(generation: 3))
            let metrics = text(try await client.execute(uri: "/metrics", method: .get))
            #expect(metrics.contains("arbor_index_generation 3.0\n"))
            #expect(metrics.contains(#"arbor_index_reloads_total{outcome="ok"} 2"#))
        }
    }

    /// A file that does not open (not an index) is refused: the old index keeps serving.
    @Test func brokenReplacementKeepsTheOldIndex() async throws {
        let scratch = try Scratch()
        let server = try makeServer(scratch)
        let junk = scratch.path("junk")
        try Data(repeating: 0x41, count: 10_000).write(to: URL(fileURLWithPath: junk))
        #expect(rename(junk, server.index.path) == 0)
        guard case .failure = server.reload() else { Issue.record("a junk file was loaded"); return }
        #expect(try server.reload().get() == .unchanged)  // the same junk is not tried again
        try await server.makeApplication(watch: false).test(.router) { client in
            let response = try await post(client, #"{"vector": [1,2,3,4,5,6,7,8]}"#)
            #expect(response.status == .ok)
            #expect(try decode(SearchBody.self, response).generation == 1)
            #expect(text(try await client.execute(uri: "/metrics", method: .get)).contains(#"arbor_index_reloads_total{outcome="failed"} 1"#))
        }
    }

    /// Another program renames a new file over the index and leaves the old lock file: an
    /// engine still held by a request keeps answering exactly as before, and the new one serves.
    @Test func externalRenameKeepsTheOldEngineWorking() throws {
        let scratch = try Scratch()
        let server = try makeServer(scratch)
        let query = Array(randomMatrix(rows: 1, cols: dimension, seed: 3).row(0))
        let held = server.index.snapshot  // a request in flight
        let before = try held.engine.search(vector: query, k: 10, using: .tree(beam: 20))
        let staged = scratch.path("staged.arbor")
        try writeIndex(to: staged, firstID: 5000, seed: 8)
        #expect(rename(staged, server.index.path) == 0)
        #expect(try server.reload().get() == .reloaded(generation: 2))
        let fresh = try server.index.snapshot.engine.search(vector: query, k: 10, using: .tree(beam: 20))
        #expect(Set(fresh.items.map(\.item.rawValue)).isSubset(of: idsB))
        #expect(try held.engine.search(vector: query, k: 10, using: .tree(beam: 20)) == before)
    }

    /// Requests in flight while the file is replaced and reloaded again and again: every one
    /// answers 200, and each answer comes wholly from the index version it names.
    @Test func reloadWhileRequestsAreInFlight() async throws {
        let scratch = try Scratch()
        let server = try makeServer(scratch)
        let rows = randomMatrix(rows: 16, cols: dimension, seed: 11)
        try await server.makeApplication(watch: false).test(.router) { client in
            try await withThrowingTaskGroup(of: [(Int, [UInt64])].self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        var seen: [(Int, [UInt64])] = []
                        for i in 0..<40 {
                            let body = #"{"vector": \#(vectorJSON(Array(rows.row((worker * 40 + i) % 16)))), "k": 20, "beam": 40}"#
                            let response = try await post(client, body)
                            #expect(response.status == .ok)
                            let decoded = try decode(SearchBody.self, response)
                            seen.append((decoded.generation, decoded.ids ?? []))
                        }
                        return seen
                    }
                }
                group.addTask {
                    // Generation g serves A when g is odd, B when g is even.
                    for g in 2...7 {
                        let staged = scratch.path("staged-\(g).arbor")
                        try writeIndex(to: staged, firstID: g % 2 == 0 ? 5000 : 100, seed: g % 2 == 0 ? 8 : 7)
                        #expect(rename(staged, server.index.path) == 0)
                        #expect(try server.reload().get() == .reloaded(generation: g))
                        try await Task.sleep(for: .milliseconds(5))
                    }
                    return []
                }
                var answered = 0
                for try await seen in group {
                    for (generation, ids) in seen {
                        answered += 1
                        #expect(ids.count == 20)
                        #expect(Set(ids).isSubset(of: generation % 2 == 1 ? idsA : idsB), "generation \(generation)")
                    }
                }
                #expect(answered == 160)
            }
        }
    }
}

@Suite struct ServeUpdateTests {
    /// The device and inode of a file, or nil when it is missing.
    private func identity(_ path: String) -> [UInt64]? {
        guard let a = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
        return [(a[.systemNumber] as? NSNumber)?.uint64Value ?? 0, (a[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0]
    }

    /// Batches committed into the served file in place (``IndexUpdater``, what `arbor update`
    /// runs) are picked up by the next reload check without a restart: the next /search finds the
    /// added item and never the removed one, /health counts the items as committed, an unchanged
    /// file is not reloaded, and the lock file the writer shares stays in place.
    @Test func committedUpdatesAreServedWithoutARestart() async throws {
        let scratch = try Scratch()
        let path = scratch.path("x.arbor")
        let items = randomMatrix(rows: itemCount, cols: dimension, seed: 7)
        let tree = try TreeBuilder.balancedKMeans(embeddings: items, items: (0..<itemCount).map { ItemID(100 + UInt64($0)) },
                                                  options: .init(fanOut: 4, seed: 1))
        var writer = IndexWriter()
        writer.leafSlack = 2
        try writer.write(layout: tree, to: path)
        // One environment per file per process: the writer opens it first, the server shares it.
        let updater = try IndexUpdater(path: path)
        var configuration = ServeConfiguration(indexPath: path)
        configuration.reloadPollMilliseconds = 0
        let server = try ArborServer(configuration: configuration)
        let lock = identity(path + "-lock")
        #expect(lock != nil)

        let query: [Float] = [0.9, -0.4, 0.3, 0.8, -0.7, 0.2, 0.5, -0.6]
        let treeBody = #"{"vector": \#(vectorJSON(query)), "k": 5, "beam": 1000}"#
        let exactBody = #"{"vector": \#(vectorJSON(query)), "k": 5, "retriever": "exact"}"#
        try await server.makeApplication(watch: false).test(.router) { client in
            let before = try decode(SearchBody.self, try await post(client, treeBody))
            #expect(before.generation == 1 && before.ids?.count == 5)
            let removed = try #require(before.ids?.first)
            #expect(try decode(SearchBody.self, try await post(client, exactBody)).ids == before.ids)
            #expect(try server.reload().get() == .unchanged)

            // Batch 1: remove the best item, add one that beats every other (the query, doubled).
            let added: UInt64 = 9_000
            let vector = try Matrix(rows: 1, cols: dimension, values: query.map { $0 * 2 })
            try updater.apply(IndexBatch(removals: [ItemID(removed)], additions: [ItemID(added)], vectors: vector))
            #expect(try server.reload().get() == .reloaded(generation: 2))
            #expect(try server.reload().get() == .unchanged)
            for body in [treeBody, exactBody] {
                let after = try decode(SearchBody.self, try await post(client, body))
                #expect(after.generation == 2)
                #expect(after.ids?.first == added, "\(body)")
                #expect(after.ids?.contains(removed) == false, "\(body)")
                #expect(after.ids?.dropFirst().elementsEqual(before.ids?.dropFirst() ?? []) == true, "\(body)")
            }
            #expect(text(try await client.execute(uri: "/health", method: .get)).contains(#""generation":2,"items":240,"#))

            // Batch 2: remove the added item again; the count drops to 239.
            try updater.apply(IndexBatch(removals: [ItemID(added)]))
            #expect(try server.reload().get() == .reloaded(generation: 3))
            let last = try decode(SearchBody.self, try await post(client, treeBody))
            #expect(last.generation == 3 && last.ids?.contains(added) == false && last.ids?.contains(removed) == false)
            #expect(text(try await client.execute(uri: "/health", method: .get)).contains(#""generation":3,"items":239,"#))
            let metrics = text(try await client.execute(uri: "/metrics", method: .get))
            #expect(metrics.contains("arbor_index_items 239.0\n"), "\(metrics)")
        }
        #expect(identity(path + "-lock") == lock)
    }
}
