import ArborStore
import Foundation
import Testing
@testable import ArborTree

@Suite struct IndexOpenErrorTests {
    @Test func missingFile() {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("none.arbor")
        #expect(throws: IndexError.notFound(path: path)) { try IndexReader(path: path) }
    }

    @Test func textFileNamedArbor() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("notes.arbor")
        try String(repeating: "this is a text file, not an index\n", count: 1000)
            .write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: IndexError.self) { try IndexReader(path: path) }
        guard case .notAnIndex(let p, _)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(p == path)
        #expect(error!.description.contains("not an Arbor index"))
    }

    @Test func truncatedCopyOfValidIndex() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("full.arbor"), cut = dir.file("cut.arbor")
        try IndexWriter().write(layout: Fixtures.generatedLayout(items: 5_000, fanOut: 4, dimension: 8), to: path)
        let bytes = fileBytes(path)
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
        let error = #expect(throws: IndexError.self) { try IndexReader(path: cut) }
        guard case .truncated(let p, let expected, let actual)? = error else {
            Issue.record("got \(String(describing: error))"); return
        }
        #expect(p == cut)
        #expect(actual == bytes.count / 2)
        #expect(expected > actual && expected <= bytes.count)
        // The original still opens.
        #expect(try IndexReader(path: path).itemCount == 5_000)
    }

    @Test func lmdbFileWithoutArborHeaderIsForeign() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        // No meta table at all.
        let plain = dir.file("plain.arbor")
        do {
            let env = try Environment(path: plain, access: .readWrite, mapSize: 4 << 20)
            try env.write { txn in try txn.put(try txn.createTable("stuff"), "k", "v") }
        }
        #expect(throws: IndexError.foreign(path: plain)) { try IndexReader(path: plain) }
        // A meta table with some other header.
        let other = dir.file("other.arbor")
        do {
            let env = try Environment(path: other, access: .readWrite, mapSize: 4 << 20)
            try env.write { txn in
                try txn.put(try txn.createTable("meta"), "header", Array("SOMETHING ELSE ENTIRELY, 32 bytes+".utf8))
            }
        }
        #expect(throws: IndexError.foreign(path: other)) { try IndexReader(path: other) }
    }

    @Test func otherFormatVersion() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("v4.arbor")
        var writer = IndexWriter()
        writer.formatVersion = 4
        try writer.write(layout: Fixtures.smallLayout(), to: path)
        #expect(throws: IndexError.formatVersion(path: path, found: 4, supported: 3)) { try IndexReader(path: path) }
        #expect(IndexError.formatVersion(path: path, found: 4, supported: 3).description.contains("format version 4"))
    }

    @Test func damagedHeaderBytes() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("h.arbor")
        try IndexWriter().write(layout: Fixtures.smallLayout(), to: path)
        do {
            let env = try Environment(path: path, access: .readWrite, mapSize: 64 << 20)
            let meta = try env.openTable("meta")
            try env.write { txn in
                var header = try #require(try txn.get(meta, "header"))
                let i = try #require(header.lastIndex(of: UInt8(ascii: "3")))  // fan-out 3 -> 4
                header[i] = UInt8(ascii: "4")
                try txn.put(meta, "header", header)
            }
        }
        #expect(throws: IndexError.corruptHeader(path: path, field: "checksum",
                                                 reason: "the header's bytes do not match its checksum")) {
            try IndexReader(path: path)
        }
    }
}

@Suite struct IndexCorruptionTests {
    /// Rewrites the header of the index at `path` with a valid checksum.
    static func rewriteHeader(_ path: String, _ change: (inout IndexHeader) -> Void) throws {
        var header = try IndexReader(path: path).header
        change(&header)
        let env = try Environment(path: path, access: .readWrite, mapSize: 64 << 20)
        let meta = try env.openTable("meta")
        try env.write { txn in try txn.put(meta, "header", header.encoded()) }
    }

    @Test func inconsistentHeaderIsRefusedAtOpen() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let a = dir.file("a.arbor"), b = dir.file("b.arbor")
        try IndexWriter().write(layout: Fixtures.smallLayout(), to: a)
        try IndexWriter().write(layout: Fixtures.smallLayout(), to: b)
        try Self.rewriteHeader(a) { $0.itemCount = 8 }
        #expect(throws: IndexError.corruptHeader(path: a, field: "itemCount", reason: "is 8, the leaf level has 7 slots")) {
            try IndexReader(path: a)
        }
        try Self.rewriteHeader(b) { $0.levelNodeCounts = [1, 1 << 50, 7] }
        #expect(throws: IndexError.self) { try IndexReader(path: b) }
    }

    @Test func headerDimensionDisagreeingWithChunks() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("dim.arbor")
        try IndexWriter().write(layout: Fixtures.smallLayout(), to: path)
        try Self.rewriteHeader(path) { $0.dimension = 5 }
        let reader = try IndexReader(path: path)
        #expect(reader.dimension == 5)
        let error = #expect(throws: IndexError.self) { try reader.withView { _ in } }
        guard case .corruptValue(_, "levels", "level 0 embeddings chunk 0", _)? = error else {
            Issue.record("got \(String(describing: error))"); return
        }
        #expect(throws: IndexError.self) { try reader.loadLayout() }
        #expect(throws: IndexError.self) { try reader.verify() }
    }

    @Test func flippedBytesInsideAChunk() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("flip.arbor")
        let layout = Fixtures.smallLayout()
        try IndexWriter(chunkBytes: 64).write(layout: layout, to: path)  // 4 rows per chunk
        // Leaf 5's embedding (level 2, chunk 1) as it sits in the file.
        let row = Array(layout.levels[2].embeddings.row(5))
        let pattern = row.withUnsafeBytes { Data($0) }
        var bytes = fileBytes(path)
        var found = 0
        var search = bytes.startIndex ..< bytes.endIndex
        while let r = bytes.range(of: pattern, in: search) {
            bytes[r.lowerBound + 6] ^= 0x5A
            found += 1
            search = r.upperBound ..< bytes.endIndex
        }
        #expect(found >= 1)
        try bytes.write(to: URL(fileURLWithPath: path))

        let reader = try IndexReader(path: path)  // the header is intact: open succeeds
        let expected = IndexError.checksumMismatch(path: path, table: "levels", key: "level 2 embeddings chunk 1")
        #expect(throws: expected) { try reader.verify() }
        #expect(throws: expected) { try reader.loadLayout() }
        #expect(throws: expected) { try reader.loadLeafMatrix() }
    }

    @Test func rewrittenChunkKeepingOldChecksum() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("rw.arbor")
        let tensors = Fixtures.tensors()
        try IndexWriter(chunkBytes: 256).write(layout: Fixtures.smallLayout(), tensors: tensors, to: path)
        do {
            let env = try Environment(path: path, access: .readWrite, mapSize: 64 << 20)
            let table = try env.openTable("tensors")
            let chunk = LargeValue.tensor(name: "big", chunk: 1)
            try env.write { txn in
                var floats = try #require(try txn.withValue(table, chunk.key) { $0.copyElements(as: Float.self) })
                floats[3] += 1
                try txn.put(table, chunk.key, floats)
            }
        }
        let reader = try IndexReader(path: path)
        let expected = IndexError.checksumMismatch(path: path, table: "tensors", key: "tensor 'big' chunk 1")
        #expect(throws: expected) { try reader.tensor(named: "big") }
        #expect(throws: expected) { try reader.verify() }
        // Other tensors and the tree are still readable.
        #expect(try reader.tensor(named: "mlp.0.bias") == tensors[1])
        #expect(try reader.loadLayout() == Fixtures.smallLayout())
    }
}

extension IndexCorruptionTests {
    /// A damaged `items` value (a leaf index with the top bit set) is an IndexError, not a trap.
    @Test func itemMapValueAbove2To63IsAnError() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("items.arbor")
        try IndexWriter().write(layout: Fixtures.smallLayout(), to: path)
        do {
            let env = try Environment(path: path, access: .readWrite, mapSize: 64 << 20)
            let items = try env.openTable("items")
            try env.write { txn in try txn.put(items, UInt64(70), [UInt64.max]) }
        }
        let reader = try IndexReader(path: path)
        #expect(throws: IndexError.self) { try reader.leaf(of: 70) }
    }
}

extension IndexCorruptionTests {
    /// Rewrites one large value of the index at `path` (keeping the recorded checksum).
    static func rewrite(_ path: String, _ value: LargeValue, _ transform: ([UInt8]) -> [UInt8]) throws {
        let env = try Environment(path: path, access: .readWrite, mapSize: 64 << 20)
        let table = try env.openTable(value.table)
        try env.write { txn in
            let old = try #require(try txn.get(table, value.key))
            try txn.put(table, value.key, transform(old))
        }
    }

    @Test func chunkOfWrongSizeIsRefusedBySnapshot() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("short.arbor")
        try IndexWriter(chunkBytes: 64).write(layout: Fixtures.smallLayout(), to: path)
        try Self.rewrite(path, .embeddings(level: 2, chunk: 1)) { Array($0.dropLast(4)) }
        let reader = try IndexReader(path: path)
        let error = #expect(throws: IndexError.self) { try reader.withView { _ in } }
        guard case .corruptValue(let p, "levels", "level 2 embeddings chunk 1", _)? = error else {
            Issue.record("got \(String(describing: error))"); return
        }
        #expect(p == path)
        #expect(throws: IndexError.self) { try reader.loadLayout() }
    }

    @Test func outOfRangeChildOffsetsAreClampedNotACrash() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("offsets.arbor")
        var writer = IndexWriter()
        writer.formatVersion = 2  // format 3 also clamps leaf parents to their child ends (tested below)
        try writer.write(layout: Fixtures.smallLayout(), to: path)
        // Level 1 offsets [0, 2, 5, 7] -> [-9, 1000, 5, 7] (same size, bad values).
        try Self.rewrite(path, .childOffsets(level: 1, chunk: 0)) { _ in
            [Int32(-9), 1000, 5, 7].withUnsafeBytes { Array($0) }
        }
        let reader = try IndexReader(path: path)
        try reader.withView { snapshot in
            #expect(snapshot.children(of: 0, level: 1) == 0 ..< 7)
            #expect(snapshot.children(of: 1, level: 1) == 7 ..< 7)
            #expect(snapshot.children(of: 2, level: 1) == 5 ..< 7)
        }
        #expect(throws: IndexError.checksumMismatch(path: path, table: "levels", key: "level 1 child offsets chunk 0")) {
            try reader.verify()
        }
    }
}

@Suite struct IndexWriteSafetyTests {
    static let badLayouts: [(String, TreeLayout, ArborError)] = {
        var nan = Fixtures.smallLayout()
        nan.levels[2].embeddings[1, 2] = .nan
        let small = Fixtures.smallLayout()
        let wrongDimension = TreeLayout(dimension: 5, fanOut: 3, levels: small.levels, leafItems: small.leafItems)
        var duplicate = Fixtures.smallLayout()
        duplicate.leafItems[4] = duplicate.leafItems[1]
        return [
            ("nan", nan, .nonFiniteValue(field: "level 2 embeddings", row: 1)),
            ("dimension", wrongDimension, .dimensionMismatch(field: "level 0 embeddings", expected: 5, found: 4)),
            ("duplicate", duplicate, .duplicateItem(11)),
        ]
    }()

    @Test(arguments: 0..<3)
    func invalidInputIsRefusedAndOldIndexStays(_ which: Int) throws {
        let (_, bad, error) = Self.badLayouts[which]
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("keep.arbor")
        let good = Fixtures.smallLayout()
        try IndexWriter().write(layout: good, tensors: Fixtures.tensors(), to: path)
        let before = fileBytes(path)
        #expect(throws: error) { try IndexWriter().write(layout: bad, to: path) }
        #expect(fileBytes(path) == before)
        #expect(dir.contents == ["keep.arbor"])
        #expect(try IndexReader(path: path).loadLayout() == good)
    }

    @Test func invalidTensorIsRefused() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("t.arbor")
        let wrongShape = NamedTensor(name: "w", shape: [2, 2], values: [1, 2, 3])
        #expect(throws: ArborError.dimensionMismatch(field: "tensor 'w' values", expected: 4, found: 3)) {
            try IndexWriter().write(layout: Fixtures.smallLayout(), tensors: [wrongShape], to: path)
        }
        let nan = NamedTensor(name: "w", shape: [2], values: [1, .infinity])
        #expect(throws: ArborError.nonFiniteValue(field: "tensor 'w'", row: 1)) {
            try IndexWriter().write(layout: Fixtures.smallLayout(), tensors: [nan], to: path)
        }
        let t = NamedTensor(name: "w", shape: [1], values: [1])
        #expect(throws: ArborError.self) {
            try IndexWriter().write(layout: Fixtures.smallLayout(), tensors: [t, t], to: path)
        }
        #expect(dir.contents.isEmpty)
    }

    @Test(arguments: [0, 3])
    func cancellationLeavesOldIndexAndNoTemporaryFiles(afterReports: Int) throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("c.arbor")
        let good = Fixtures.smallLayout()
        try IndexWriter().write(layout: good, to: path)
        let before = fileBytes(path)
        let flag = CancellationFlag()
        if afterReports == 0 { flag.cancel() }
        let progress = CancelAfter(flag, after: max(1, afterReports))
        let other = Fixtures.generatedLayout(items: 500, fanOut: 2, dimension: 4)
        #expect(throws: CancellationError.self) {
            try IndexWriter(chunkBytes: 64).write(layout: other, to: path, progress: progress, cancellation: flag)
        }
        #expect(flag.isCancelled)
        #expect(fileBytes(path) == before)
        #expect(dir.contents == ["c.arbor"])  // no .tmp-<pid>, no stray lock file
        #expect(try IndexReader(path: path).loadLayout() == good)
    }

    @Test func parallelWritesOfOnePathDoNotCollide() async throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("p.arbor")
        let layouts = (0..<4).map { Fixtures.generatedLayout(items: 50 + $0, fanOut: 3, dimension: 4) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for layout in layouts {
                group.addTask { try IndexWriter(chunkBytes: 64).write(layout: layout, to: path) }
            }
            try await group.waitForAll()
        }
        // One of them won, whole; nothing else is left.
        let loaded = try IndexReader(path: path).loadLayout()
        #expect(layouts.contains(loaded))
        #expect(!dir.contents.contains { $0.contains(".tmp-") })
    }

    @Test func writingIntoMissingDirectoryFailsCleanly() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("no/such/dir/x.arbor")
        let error = #expect(throws: IndexError.self) { try IndexWriter().write(layout: Fixtures.smallLayout(), to: path) }
        guard case .store(.system(let p, _, let code, _))? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(p == path && code == 2)
        #expect(dir.contents.isEmpty)
    }

    @Test func staleTemporaryFromKilledBuildIsIgnoredThenRemoved() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("s.arbor")
        let good = Fixtures.smallLayout()
        try IndexWriter().write(layout: good, to: path)
        // A build killed half-way (pid far above pid_max, so no live process owns it).
        let stale = path + ".tmp-4199999"
        try fileBytes(path).prefix(9000).write(to: URL(fileURLWithPath: stale))
        try Data("stale lock".utf8).write(to: URL(fileURLWithPath: stale + "-lock"))
        let reader = try IndexReader(path: path)
        #expect(try reader.loadLayout() == good)
        try reader.verify()
        // The next build cleans up after the dead one.
        try IndexWriter().write(layout: Fixtures.generatedLayout(items: 20, fanOut: 2, dimension: 4), to: dir.file("s.arbor"))
        #expect(!dir.contents.contains { $0.contains(".tmp-") })
    }

    @Test func replacingAnIndexWhileAReaderIsOpen() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("live.arbor")
        let first = Fixtures.smallLayout()
        let second = Fixtures.generatedLayout(items: 40, fanOut: 3, dimension: 4)
        try IndexWriter().write(layout: first, to: path)
        let old = try IndexReader(path: path)
        try IndexWriter().write(layout: second, to: path)
        // The open reader keeps its snapshot of the old file; a new reader sees the new one.
        #expect(try old.loadLayout() == first)
        #expect(try IndexReader(path: path).loadLayout() == second)
    }
}
