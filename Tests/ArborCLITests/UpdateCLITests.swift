import Foundation
import Testing

/// `arbor update` end to end: changes visible to queries, errors naming the file, and an index that
/// is before or after a batch (never between) when the process is killed or the disk is full.
@Suite(.serialized) struct UpdateCLITests {
    typealias CLI = CLITests

    /// A built index (2,000 synthetic items, d = 8) and a batch: 3 new items (ids 900000...) whose
    /// vectors point far along axis 0, 1 and 2, and 5 removals.
    struct Setup {
        let dir: URL, index: URL, add: URL, ids: URL, remove: URL
        init() throws {
            dir = try CLI.temporaryDirectory()
            index = try CLI.buildGoodIndex(in: dir)
            add = dir.appendingPathComponent("new.npy")
            var values = [Float](repeating: 0, count: 24)
            values[0] = 90; values[9] = 90; values[18] = 90
            try CLI.writeNPY(values, rows: 3, cols: 8, to: add)
            ids = dir.appendingPathComponent("new.ids")
            try Data("900000\n900001\n900002\n".utf8).write(to: ids)
            remove = dir.appendingPathComponent("gone.ids")
            try Data("0\n1\n2\n3\n4\n".utf8).write(to: remove)
        }

        var arguments: [String] {
            ["update", "--index", index.path, "--add", add.path, "--ids", ids.path, "--remove", remove.path]
        }

        /// `inspect --verify` passes; returns its output.
        func verified() throws -> String {
            let r = try CLI.run(["inspect", "--index", index.path, "--verify"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("verify: every checksum matches"))
            return r.stdout
        }

        /// The top id of an exact query along axis `axis`.
        func top(axis: Int) throws -> String {
            var v = [String](repeating: "0", count: 8)
            v[axis] = "1"
            let r = try CLI.run(["query", "--index", index.path, "--vector", v.joined(separator: ","), "--k", "1", "--exact"])
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout
        }
    }

    @Test func updateAddsRemovesAndReports() throws {
        let s = try Setup()
        let r = try CLI.run(s.arguments)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("+3 -5"))
        #expect(r.stdout.contains("1998 items, generation 1"))
        #expect(r.stdout.contains("rebuild: not due"))
        let inspect = try s.verified()
        #expect(inspect.contains("after updates: items 1998, generation 1"))
        #expect(try s.top(axis: 1).contains("900001"))
        // The tree finds it too, and removed ids are gone from a query that returns everything.
        let all = try CLI.run(["query", "--index", s.index.path, "--vector", "1,0,0,0,0,0,0,0", "--k", "3000", "--beam", "100000"])
        #expect(all.status == 0 && all.stdout.contains("900000"))
        for line in all.stdout.split(separator: "\n") where line.contains("item") {
            #expect(!["item 0 ", "item 1 ", "item 2 ", "item 3 ", "item 4 "].contains { line.contains($0) })
        }
        // Replace: the same id removed and added moves to its new vector.
        try Data("900001\n".utf8).write(to: s.remove)
        try Data("900001\n".utf8).write(to: s.ids)
        var v = [Float](repeating: 0, count: 8)
        v[3] = 90
        try CLI.writeNPY(v, rows: 1, cols: 8, to: s.add)
        let replace = try CLI.run(s.arguments)
        #expect(replace.status == 0 && replace.stdout.contains("(1 replaced)"), "\(replace.stderr)")
        #expect(try s.top(axis: 3).contains("900001"))
        #expect(try !s.top(axis: 1).contains("900001"))
    }

    /// Each bad input is refused with the file and the id, row or width named; nothing changes.
    @Test func badUpdatesNameTheFileAndChangeNothing() throws {
        let s = try Setup()
        let before = try Data(contentsOf: s.index)
        try Data("0\n77777777\n".utf8).write(to: s.remove)
        let unknown = try CLI.run(s.arguments)
        #expect(unknown.status != 0 && unknown.stderr.contains("gone.ids: item id 77777777 is not in"), "\(unknown.stderr)")
        try Data("0\n".utf8).write(to: s.remove)
        try Data("900000\n17\n900002\n".utf8).write(to: s.ids)
        let duplicate = try CLI.run(s.arguments)
        #expect(duplicate.status != 0 && duplicate.stderr.contains("new.ids: item id 17 is already in"), "\(duplicate.stderr)")
        try Data("900000\n900001\n900002\n".utf8).write(to: s.ids)
        let wide = s.dir.appendingPathComponent("wide.npy")
        try CLI.writeNPY([Float](repeating: 1, count: 27), rows: 3, cols: 9, to: wide)
        let width = try CLI.run(["update", "--index", s.index.path, "--add", wide.path, "--ids", s.ids.path])
        #expect(width.status != 0 && width.stderr.contains("wide.npy: vectors have 9 columns, the index 8"), "\(width.stderr)")
        var values = [Float](repeating: 1, count: 24)
        values[13] = .nan
        try CLI.writeNPY(values, rows: 3, cols: 8, to: s.add)
        let nan = try CLI.run(s.arguments)
        #expect(nan.status != 0 && nan.stderr.contains("new.npy: row 1"), "\(nan.stderr)")
        values[13] = 2.6e38
        try CLI.writeNPY(values, rows: 3, cols: 8, to: s.add)
        let huge = try CLI.run(s.arguments)
        #expect(huge.status != 0 && huge.stderr.contains("new.npy: row 1 is too large"), "\(huge.stderr)")
        let missing = try CLI.run(["update", "--index", s.index.path, "--add", s.add.path])
        #expect(missing.status != 0 && missing.stderr.contains("--add needs --ids"))
        #expect(try Data(contentsOf: s.index) == before)
        _ = try s.verified()
    }

    /// The update process kills itself (SIGKILL) at a test hook inside the write transaction, or
    /// right after the commit: the index opens and verifies, before the batch or after it.
    @Test(arguments: ["after-removals", "after-additions", "before-commit", "after-commit"])
    func killedUpdateLeavesTheIndexBeforeOrAfter(point: String) throws {
        let s = try Setup()
        let r = try CLI.run(s.arguments, environment: ["ARBOR_TEST_KILL_UPDATE_AT": point])
        #expect(r.reason == .uncaughtSignal && r.status == SIGKILL, "\(r.status) \(r.stderr)")
        let inspect = try s.verified()
        if point == "after-commit" {
            #expect(inspect.contains("after updates: items 1998, generation 1"))
            #expect(try s.top(axis: 2).contains("900002"))
        } else {
            #expect(inspect.contains("items 2000,") && !inspect.contains("after updates"))
            #expect(try !s.top(axis: 2).contains("900002"))
        }
        // The next update works.
        let again = try CLI.run(s.arguments)
        #expect(again.status == 0 || point == "after-commit", "\(again.stderr)")
    }

    /// A file-size limit (`ulimit -f` at the index's current size: the disk is "full") makes the
    /// update fail with a clear error naming the file; the index stays as it was (same committed
    /// state, every checksum, same answers).
    /// A build under the same limit fails too and leaves the old index in place.
    @Test func fullDiskLeavesTheIndexIntact() throws {
        let s = try Setup()
        _ = try s.verified()  // creates the lock file, which is not an index change
        let before = try Data(contentsOf: s.index)
        let blocks = (before.count + 1023) / 1024
        let quoted = ([CLI.executable.path] + s.arguments).map { "'\($0)'" }.joined(separator: " ")
        let r = try ChildProcess(URL(fileURLWithPath: "/bin/bash"), ["-c", "ulimit -f \(blocks); exec \(quoted)"]).wait()
        #expect(r.reason == .exit && r.status != 0, "\(r.reason) \(r.status)")
        #expect(r.stderr.contains(s.index.path) && r.stderr.contains("File too large"), "\(r.stderr)")
        // LMDB may have written pages into free space before the commit failed; the committed
        // index (meta page, every checksum, the answers) is the old one.
        let inspect = try s.verified()
        #expect(inspect.contains("items 2000,") && !inspect.contains("after updates"))
        #expect(try !s.top(axis: 2).contains("900002"))
        let unchanged = try Data(contentsOf: s.index)
        let build = ([CLI.executable.path] + ["build", "--synthetic", "3000", "--dim", "8", "--out", s.index.path])
            .map { "'\($0)'" }.joined(separator: " ")
        let b = try ChildProcess(URL(fileURLWithPath: "/bin/bash"), ["-c", "ulimit -f \(blocks / 4); exec \(build)"]).wait()
        #expect(b.reason == .exit && b.status != 0 && b.stderr.contains("File too large"), "\(b.reason) \(b.status) \(b.stderr)")
        #expect(try Data(contentsOf: s.index) == unchanged)
    }
}
