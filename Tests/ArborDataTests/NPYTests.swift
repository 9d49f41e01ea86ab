import Foundation
import Testing

@testable import ArborData

@Suite struct NPYTests {
    func npy(descr: String = "<f4", fortran: String = "False", shape: String = "(2, 3)", version: UInt8 = 1, data: [Float]) -> [UInt8] {
        var dict = "{'descr': '\(descr)', 'fortran_order': \(fortran), 'shape': \(shape), }"
        let prefix = version == 1 ? 10 : 12
        while (prefix + dict.utf8.count + 1) % 64 != 0 { dict += " " }
        dict += "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
        let n = dict.utf8.count
        out += version == 1 ? [UInt8(n & 0xFF), UInt8(n >> 8)] : [UInt8(n & 0xFF), UInt8(n >> 8), 0, 0]
        out += Array(dict.utf8)
        for v in data { withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 } }
        return out
    }

    @Test func roundTrip() throws {
        let dir = TempDir()
        let m = try Matrix(rows: 3, cols: 2, values: [1, 2, 3, 4, 5, -6.5])
        let p = dir.file("m.npy")
        try NPY.write(m, to: p)
        let bytes = try FileIO.readAll(p)
        #expect(bytes.count == 128 + 24)  // header padded to a multiple of 64, then 24 data bytes
        #expect(String(decoding: bytes[10 ..< 128], as: UTF8.self).hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }"))
        #expect(try NPY.readMatrix(at: p) == m)
        // Empty matrix too.
        let e = Matrix(rows: 0, cols: 4)
        try NPY.write(e, to: dir.file("e.npy"))
        #expect(try NPY.readMatrix(at: dir.file("e.npy")) == e)
    }

    @Test func readsHandWrittenVersions() throws {
        let dir = TempDir()
        let v1 = dir.writeBytes("v1.npy", npy(data: [1, 2, 3, 4, 5, 6]))
        let m = try NPY.readMatrix(at: v1)
        #expect(m.rows == 2 && m.cols == 3 && m[1, 2] == 6)
        let v2 = dir.writeBytes("v2.npy", npy(version: 2, data: [1, 2, 3, 4, 5, 6]))
        #expect(try NPY.readMatrix(at: v2) == m)
    }

    @Test func errors() {
        let dir = TempDir()
        let f8 = dir.writeBytes("f8.npy", npy(descr: "<f8", data: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]))
        #expect(dataError { try NPY.readMatrix(at: f8) } == .invalidNPY(file: f8, reason: "dtype '<f8' is not little-endian float32 ('<f4')"))
        let be = dir.writeBytes("be.npy", npy(descr: ">f4", data: [1, 2, 3, 4, 5, 6]))
        #expect(dataError { try NPY.readMatrix(at: be) } == .invalidNPY(file: be, reason: "dtype '>f4' is not little-endian float32 ('<f4')"))
        let fo = dir.writeBytes("fo.npy", npy(fortran: "True", data: [1, 2, 3, 4, 5, 6]))
        #expect(dataError { try NPY.readMatrix(at: fo) } == .invalidNPY(file: fo, reason: "Fortran (column-major) order is not supported"))
        let one = dir.writeBytes("1d.npy", npy(shape: "(6,)", data: [1, 2, 3, 4, 5, 6]))
        #expect(dataError { try NPY.readMatrix(at: one) } == .invalidNPY(file: one, reason: "shape (6) is not 2-D"))
        let full = npy(data: [1, 2, 3, 4, 5, 6])
        let short = dir.writeBytes("short.npy", Array(full.dropLast(5)))
        #expect(dataError { try NPY.readMatrix(at: short) } == .truncated(file: short, expectedBytes: 128 + 24, foundBytes: 128 + 19))
        let head = dir.writeBytes("head.npy", Array(full.prefix(30)))
        #expect(dataError { try NPY.readMatrix(at: head) } == .truncated(file: head, expectedBytes: 128, foundBytes: 30))
        let extra = dir.writeBytes("extra.npy", full + [0, 0, 0, 0])
        #expect(dataError { try NPY.readMatrix(at: extra) } == .invalidNPY(file: extra, reason: "4 bytes after the 2 × 3 data"))
        let magic = dir.write("magic.npy", "not numpy at all")
        #expect(dataError { try NPY.readMatrix(at: magic) } == .invalidNPY(file: magic, reason: "no \\x93NUMPY magic string"))
        let nan = dir.writeBytes("nan.npy", npy(data: [1, 2, 3, 4, .nan, 6]))
        #expect(dataError { try NPY.readMatrix(at: nan) } == .nonFiniteValue(file: nan, row: 1))
        let inf = dir.writeBytes("inf.npy", npy(data: [.infinity, 2, 3, 4, 5, 6]))
        #expect(dataError { try NPY.readMatrix(at: inf) } == .nonFiniteValue(file: inf, row: 0))
        let absent = dir.file("absent.npy")
        #expect(dataError { try NPY.readMatrix(at: absent) } == .fileNotFound(file: absent))
        let bad = try! Matrix(rows: 2, cols: 1, values: [0, .nan])
        let out = dir.file("out.npy")
        #expect(dataError { try NPY.write(bad, to: out) } == .nonFiniteValue(file: out, row: 1))
        #expect(!FileManager.default.fileExists(atPath: out))
        let noDir = dir.file("no/such/dir.npy")
        if case .writeFailed? = dataError({ try NPY.write(Matrix(rows: 1, cols: 1), to: noDir) }) {} else {
            Issue.record("expected writeFailed")
        }
    }

    @Test func idLists() throws {
        let dir = TempDir()
        let p = dir.file("ids.txt")
        let ids: [ItemID] = [5, 0, 18_446_744_073_709_551_615]
        try IDList.write(ids, to: p)
        #expect(try IDList.read(at: p) == ids)
        let bad = dir.write("bad.txt", "1\n2 3\n")
        #expect(dataError { try IDList.read(at: bad) } == .malformedLine(file: bad, line: 2, reason: "expected one id, found 2 fields"))
        let word = dir.write("word.txt", "1\n\nabc\n")
        #expect(dataError { try IDList.read(at: word) } == .malformedLine(file: word, line: 3, reason: "item id 'abc' is not a non-negative integer"))
        let empty = dir.write("empty.txt", "\n")
        #expect(dataError { try IDList.read(at: empty) } == .empty(file: empty))
        // Matrix + ids agree.
        let m = try Matrix(rows: 3, cols: 1, values: [1, 2, 3])
        try NPY.write(m, to: dir.file("m.npy"))
        let (rids, rm) = try IDList.readEmbeddings(matrix: dir.file("m.npy"), ids: p)
        #expect(rids == ids && rm == m)
        let two = dir.write("two.txt", "1\n2\n")
        if case .invalidArgument? = dataError({ try IDList.readEmbeddings(matrix: dir.file("m.npy"), ids: two) }) {} else {
            Issue.record("expected invalidArgument")
        }
    }
}
