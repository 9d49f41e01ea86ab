import Foundation
import Testing
@testable import ArborStore

@Suite struct EnvironmentTests {
    @Test func putGetRoundTripAcrossReopen() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("a.arbor")
        do {
            let env = try Environment(path: path, access: .readWrite, mapSize: 8 << 20)
            try env.write { txn in
                let t = try txn.createTable("t")
                try txn.put(t, "alpha", [UInt8]([1, 2, 3]))
                try txn.put(t, UInt64(42), [Float]([1.5, -2, 3.25]))
            }
        }
        // One data file plus LMDB's lock file: MDB_NOSUBDIR.
        #expect(Set(dir.contents) == ["a.arbor", "a.arbor-lock"])
        let env = try Environment(path: path)
        let t = try env.openTable("t")
        try env.read { txn in
            #expect(try txn.get(t, "alpha") == [1, 2, 3])
            #expect(try txn.get(t, "missing") == nil)
            let floats = try txn.withValue(t, UInt64(42)) { $0.copyElements(as: Float.self) }
            #expect(floats == [1.5, -2, 3.25])
            #expect(try txn.count(t) == 2)
        }
        #expect(throws: StoreError.tableNotFound(path: path, table: "nope")) { try env.openTable("nope") }
    }

    @Test func deleteRemovesKey() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let env = try Environment(path: dir.file("d.arbor"), access: .readWrite, mapSize: 8 << 20)
        try env.write { txn in
            let t = try txn.createTable("t")
            try txn.put(t, "k", "v")
            #expect(try txn.delete(t, "k"))
            #expect(try !txn.delete(t, "k"))
        }
        let t = try env.openTable("t")
        try env.read { txn throws in #expect(try !txn.contains(t, "k")) }
    }

    @Test func cursorVisitsKeysInByteOrder() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let env = try Environment(path: dir.file("c.arbor"), access: .readWrite, mapSize: 8 << 20)
        let keys: [UInt64] = [300, 2, 1 << 40, 17, 0]
        try env.write { txn in
            let t = try txn.createTable("t")
            for k in keys { try txn.put(t, k, UInt64(k * 2)) }
        }
        let t = try env.openTable("t")
        var seen: [UInt64] = []
        var values: [UInt64] = []
        try env.read { txn in
            try txn.withCursor(t) { cursor in
                while let entry = try cursor.next() {
                    seen.append(entry.key.bigEndianUInt64!)
                    values.append(entry.value.load(UInt64.self, atByteOffset: 0))
                }
            }
            let from3 = try txn.withCursor(t) { cursor in try cursor.seek(atLeast: UInt64(3))?.key.bigEndianUInt64 }
            #expect(from3 == 17)
            let last = try txn.withCursor(t) { cursor in try cursor.last()?.key.bigEndianUInt64 }
            #expect(last == 1 << 40)
        }
        #expect(seen == keys.sorted())
        #expect(values == keys.sorted().map { $0 * 2 })
    }

    @Test func throwingWriteLeavesNothing() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let env = try Environment(path: dir.file("w.arbor"), access: .readWrite, mapSize: 8 << 20)
        try env.write { txn in _ = try txn.createTable("t") }
        let t = try env.openTable("t")
        #expect(throws: Boom.self) {
            try env.write { txn in
                try txn.put(t, "k", "v")
                throw Boom()
            }
        }
        // A transaction dropped without commit is aborted too.
        do {
            let txn = try env.beginWrite()
            try txn.put(t, "k2", "v")
        }
        // Explicit abort.
        let txn = try env.beginWrite()
        try txn.put(t, "k3", "v")
        txn.abort()
        try env.read { txn throws in #expect(try txn.count(t) == 0) }
    }

    @Test func zeroCopyViewOfMultiMegabyteValue() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let env = try Environment(path: dir.file("big.arbor"), access: .readWrite, mapSize: 64 << 20)
        let n = 3 * 1024 * 1024 / 4 + 3  // a bit over 3 MB, not a multiple of the page size
        let values = (0..<n).map { Float($0) * 0.5 - 7 }
        try env.write { txn in
            let t = try txn.createTable("big")
            try txn.put(t, "v", values)
        }
        let t = try env.openTable("big")
        try env.read { txn in
            let same = try txn.withValue(t, "v") { view -> Bool in
                #expect(view.count == n * 4)
                #expect(view.checksum == FNV1a64.checksum(of: values))
                // Unaligned-safe element loads agree with the array.
                #expect(Float(bitPattern: view.load(UInt32.self, atByteOffset: 4 * 12345)) == values[12345])
                return view.copyElements(as: Float.self) == values
            }
            #expect(same == true)
        }
    }

    @Test func mappedArrayGathersRowsAcrossChunks() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let env = try Environment(path: dir.file("m.arbor"), access: .readWrite, mapSize: 8 << 20)
        let cols = 3, rows = 10, perChunk = 4
        let all = (0..<(rows * cols)).map(Float.init)
        try env.write { txn in
            let t = try txn.createTable("m")
            for c in 0..<3 {
                let lo = c * perChunk * cols, hi = min(rows, (c + 1) * perChunk) * cols
                try txn.put(t, UInt64(c), all[lo..<hi])
            }
        }
        let t = try env.openTable("m")
        try env.read { txn in
            try txn.withCursor(t) { cursor in
                var views: [ValueView] = []
                while let e = try cursor.next() { views.append(e.value) }
                let array = try MappedArray(chunks: views, elementBytes: cols * 4, elementsPerChunk: perChunk, count: rows)
                var out = Matrix(rows: 0, cols: cols)
                array.gatherRows([9, 0, 4, 3], into: &out)
                #expect(out.values == [27, 28, 29, 0, 1, 2, 12, 13, 14, 9, 10, 11])
                // A consecutive run crossing chunk boundaries (chunks hold rows 0-3, 4-7, 8-9).
                array.gatherRows([2, 3, 4, 5, 6, 7, 8, 9, 1], into: &out)
                #expect(out.values == ([2, 3, 4, 5, 6, 7, 8, 9, 1] as [Int]).flatMap { r in (0..<3).map { Float(r * 3 + $0) } })
                #expect(throws: MappedArray.SizeMismatch.self) {
                    _ = try MappedArray(chunks: views, elementBytes: cols * 4, elementsPerChunk: perChunk, count: 11)
                }
            }
        }
    }

    @Test func checksumIsFNV1a64AndStreams() {
        // Reference values of FNV-1a 64.
        #expect(FNV1a64.checksum(of: [UInt8]()) == 0xcbf2_9ce4_8422_2325)
        #expect(FNV1a64.checksum(of: "a") == 0xaf63_dc4c_8601_ec8c)
        #expect(FNV1a64.checksum(of: "foobar") == 0x8594_4171_f739_67e8)
        var h = FNV1a64()
        h.update("foo"); h.update("bar")
        #expect(h.value == FNV1a64.checksum(of: "foobar"))
    }
}

@Suite struct SharedEnvironmentTests {
    @Test func sameFileSharesOneEnvironmentUntilReplaced() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("s.arbor")
        try Environment.replaceAtomically(path: path, mapSize: 4 << 20) { env in
            try env.write { txn in try txn.put(try txn.createTable("t"), "gen", "1") }
        }
        let a = try Environment.shared(path: path)
        let b = try Environment.shared(path: path)
        #expect(a === b)
        try Environment.replaceAtomically(path: path, mapSize: 4 << 20) { env in
            try env.write { txn in try txn.put(try txn.createTable("t"), "gen", "2") }
        }
        let c = try Environment.shared(path: path)
        #expect(c !== a)
        let ta = try a.openTable("t"), tc = try c.openTable("t")
        try a.read { txn throws in #expect(try txn.get(ta, "gen") == Array("1".utf8)) }
        try c.read { txn throws in #expect(try txn.get(tc, "gen") == Array("2".utf8)) }
        #expect(throws: StoreError.notFound(path: dir.file("none"))) { try Environment.shared(path: dir.file("none")) }
    }
}

@Suite struct AlignmentTests {
    /// Small values sit inside LMDB's leaf pages right after their key, so keys of odd lengths give
    /// values at addresses that are not 4-byte aligned; every accessor must still read them right.
    @Test func unalignedValuesReadCorrectly() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let env = try Environment(path: dir.file("align.arbor"), access: .readWrite, mapSize: 8 << 20)
        let values: [Float] = [1.5, -2.25, 3, 4.75, 5, 6.5]
        let keys: [[UInt8]] = [[1], [2, 2], [3, 3, 3], [4, 4, 4, 4], [5, 5, 5, 5, 5]]
        try env.write { txn in
            let t = try txn.createTable("t")
            for k in keys { try txn.put(t, k, values) }
        }
        let t = try env.openTable("t")
        var misaligned = 0
        try env.read { txn in
            for k in keys {
                try txn.withValue(t, k) { view in
                    view.withUnsafeBytes { if UInt(bitPattern: $0.baseAddress!) % 4 != 0 { misaligned += 1 } }
                    #expect(view.copyElements(as: Float.self) == values)
                    #expect(Float(bitPattern: view.load(UInt32.self, atByteOffset: 4)) == -2.25)
                    let array = try MappedArray(chunks: [view], elementBytes: 8, elementsPerChunk: 3, count: 3)
                    var out = Matrix(rows: 0, cols: 2)
                    array.gatherRows([2, 0], into: &out)
                    #expect(out.values == [5, 6.5, 1.5, -2.25])
                    var seen: [Float] = []
                    array.forEachFloatChunk { _, chunk in seen.append(contentsOf: chunk) }
                    #expect(seen == values)
                }
            }
        }
        // LMDB aligns values to 2 bytes only: some of these land off a 4-byte boundary.
        #expect(misaligned > 0)
    }
}

@Suite struct ExplicitTransactionTests {
    @Test func beginCommitEndAndSmallAccessors() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("x.arbor")
        let env = try Environment(path: path, access: .readWrite, mapSize: 4 << 20, options: .noSync)
        #expect(try !env.hasTable("t"))
        var txn = try env.beginWrite()
        let t = try txn.createTable("t")
        try txn.put(t, "b", "second")
        try txn.put(t, "a", "first")
        try txn.commit()
        try env.sync()
        #expect(try env.hasTable("t"))
        let info = env.info
        #expect(info.pageSize >= 4096 && info.lastTransaction == 1 && info.mapSize == 4 << 20)
        #expect(StoreFiles.size(of: path)! >= (info.lastPage + 1) * info.pageSize)

        let read = try env.beginRead()
        let first = try read.withCursor(t) { cursor in try cursor.first().map { ($0.key.string, $0.value.string) } }
        #expect(first?.0 == "a" && first?.1 == "first")
        #expect(try read.withValue(t, "b") { $0.string } == "second")
        read.end()

    }

    @Test func readOnlyEnvironmentRefusesWrites() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("ro.arbor")
        try Environment.replaceAtomically(path: path, mapSize: 4 << 20) { env in
            try env.write { txn in _ = try txn.createTable("t") }
        }
        let ro = try Environment.shared(path: path)
        #expect(ro.access == .readOnly)
        let error = #expect(throws: StoreError.self) { _ = try ro.beginWrite() }
        #expect(error?.path == path)
    }
}
