import Foundation
import Testing
@testable import ArborStore

@Suite struct FileErrorTests {
    @Test func missingFileIsNotFound() {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("none.arbor")
        #expect(throws: StoreError.notFound(path: path)) { try Environment(path: path) }
    }

    @Test func textFileIsNotAnEnvironment() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("text.arbor")
        try String(repeating: "hello, not lmdb\n", count: 2000).write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: StoreError.self) { try Environment(path: path) }
        guard case .notAnEnvironment(let p, _)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(p == path)
        #expect(dir.contents == ["text.arbor"])  // no lock file left beside a foreign file
        // A short text file too.
        let short = dir.file("short.arbor")
        try "hi".write(toFile: short, atomically: true, encoding: .utf8)
        let error2 = #expect(throws: StoreError.self) { try Environment(path: short) }
        guard case .notAnEnvironment? = error2 else { Issue.record("got \(String(describing: error2))"); return }
    }

    @Test func truncatedFileIsRefusedBeforeAnyPageIsRead() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("t.arbor")
        do {
            let env = try Environment(path: path, access: .readWrite, mapSize: 64 << 20)
            try env.write { txn in
                let t = try txn.createTable("t")
                try txn.put(t, "v", [Float](repeating: 1, count: 1 << 20))
            }
        }
        let full = try #require(StoreFiles.size(of: path))
        #expect(truncate(path, off_t(full / 2)) == 0)
        let error = #expect(throws: StoreError.self) { try Environment(path: path) }
        guard case .truncated(let p, let expected, let actual)? = error else {
            Issue.record("got \(String(describing: error))"); return
        }
        #expect(p == path && actual == full / 2 && expected > actual)
        #expect(error!.description.contains("truncated"))
    }

    @Test func readOnlyDirectoryIsReadableWithoutLockFile() throws {
        let dir = TemporaryDirectory(); defer { chmod(dir.path, 0o755); dir.cleanup() }
        let path = dir.file("ro.arbor")
        do {
            let env = try Environment(path: path, access: .readWrite, mapSize: 4 << 20)
            try env.write { txn in try txn.put(try txn.createTable("t"), "k", "v") }
        }
        try StoreFiles.remove(StoreFiles.lockPath(for: path))
        #expect(chmod(dir.path, 0o555) == 0)
        let env = try Environment(path: path)
        let t = try env.openTable("t")
        try env.read { txn throws in #expect(try txn.get(t, "k") == Array("v".utf8)) }
    }

    @Test func atomicReplaceKeepsOldFileOnError() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("r.arbor")
        try Environment.replaceAtomically(path: path, mapSize: 8 << 20) { env in
            try env.write { txn in try txn.put(try txn.createTable("t"), "gen", "1") }
        }
        #expect(throws: Boom.self) {
            try Environment.replaceAtomically(path: path, mapSize: 8 << 20) { env in
                try env.write { txn in try txn.put(try txn.createTable("t"), "gen", "2") }
                throw Boom()
            }
        }
        #expect(!dir.contents.contains { $0.contains(".tmp-") })
        do {
            let env = try Environment(path: path)
            let t = try env.openTable("t")
            try env.read { txn throws in #expect(try txn.get(t, "gen") == Array("1".utf8)) }
        }
        try Environment.replaceAtomically(path: path, mapSize: 8 << 20) { env in
            try env.write { txn in try txn.put(try txn.createTable("t"), "gen", "2") }
        }
        let env = try Environment(path: path)
        let t = try env.openTable("t")
        try env.read { txn throws in #expect(try txn.get(t, "gen") == Array("2".utf8)) }
        #expect(!dir.contents.contains { $0.contains(".tmp-") })
    }

    @Test func staleTemporaryOfDeadProcessIsRemoved() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("s.arbor")
        // A pid above Linux's largest pid_max (2^22) belongs to no process.
        let stale = [path + ".tmp-4199999", path + ".tmp-4199999-3", path + ".tmp-4199999-3-lock"]
        for file in stale { try "partial".write(toFile: file, atomically: false, encoding: .utf8) }
        let live = Environment.makeTemporaryPath(for: path)  // this process: alive, left alone
        let other = path + ".tmp-notapid"
        for file in [live, other] { try "other".write(toFile: file, atomically: false, encoding: .utf8) }
        Environment.removeStaleTemporaries(for: path)
        for file in stale { #expect(!FileManager.default.fileExists(atPath: file)) }
        #expect(FileManager.default.fileExists(atPath: live))
        #expect(FileManager.default.fileExists(atPath: other))
    }
}
