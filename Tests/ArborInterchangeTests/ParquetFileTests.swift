import ArborCore
@testable import ArborInterchange
import ArborMath
import ArborTree
import Foundation
import Testing

/// The Parquet reader on files written by pyarrow and Spark (Tests/Fixtures/parquet, written by
/// tools/python/make_parquet_fixtures.py), and on damaged copies of them.
@Suite struct ParquetFileTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/parquet")

    static func path(_ name: String) -> String { fixtures.appendingPathComponent(name).path }
    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: fixtures.appendingPathComponent(name))) }

    /// A row of `column` as the fixture script prints it: `7`, `2.5`, `abc`, `null`, `[1.0,null]`.
    static func render(_ column: ParquetColumn, row: Int) -> String {
        func value(_ element: Int) -> String {
            guard let v = column.valueIndex(ofElement: element) else { return "null" }
            switch column.values {
            case let .int32(a): return "\(a[v])"
            case let .int64(a): return "\(a[v])"
            case let .float(a): return "\(a[v])"
            case let .double(a): return "\(a[v])"
            case let .byteArray(a): return a.string(v)
            }
        }
        guard let elements = column.elements(ofRow: row) else { return "null" }
        return column.isList ? "[" + elements.map(value).joined(separator: ",") + "]" : value(row)
    }

    /// Every fixture reads back exactly as pyarrow reads it (the `.expected.tsv` beside it): PLAIN
    /// and uncompressed, snappy with dictionaries, data page v2 with nulls, several row groups and
    /// pages, INT32 ids, lists with empty, null and null-element rows, Spark's `array<float>`.
    @Test(arguments: ["plain", "snappy-dict", "v2", "row-groups", "int32", "nulls", "lists", "path-lists", "spark-nodes"])
    func fixtureReadsAsPyArrowReadsIt(name: String) throws {
        let file = try ParquetFile(contentsOf: Self.path("\(name).parquet"))
        let expected = try String(contentsOfFile: Self.path("\(name).expected.tsv"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
        let names = expected[0].map(String.init)
        #expect(file.rowCount == expected.count - 1)
        for (c, name) in names.enumerated() {
            let column = try file.column(name)
            #expect(column.rowCount == file.rowCount)
            let got = (0 ..< column.rowCount).map { Self.render(column, row: $0) }
            #expect(got == expected.dropFirst().map { String($0[c]) }, "column \(name)")
        }
    }

    @Test func schemaNamesTypesAndLevels() throws {
        let file = try ParquetFile(contentsOf: Self.path("spark-nodes.parquet"))
        #expect(file.columns.map(\.name) == ["node", "vector.list.element"])
        #expect(file.columns.map(\.physicalType) == [.byteArray, .float])
        #expect(file.columns.map(\.maxDefinitionLevel) == [1, 3])
        #expect(file.columns.map(\.maxRepetitionLevel) == [0, 1])
        #expect(file.createdBy?.hasPrefix("parquet-mr") == true)
        #expect(try file.info("vector") == file.columns[1])
        let plain = try ParquetFile(contentsOf: Self.path("plain.parquet"))
        #expect(plain.columns.map(\.maxDefinitionLevel) == [0, 0, 0, 0, 0])   // required columns
    }

    /// `tools/spark/build_tree.py` writes the same assignment as Parquet and as text, and both
    /// give the same tree (structure, leaves and node embeddings).
    @Test func sparkJobParquetAssignmentEqualsItsText() throws {
        let fromParquet = try TreeAssignment(parquet: ParquetFile(contentsOf: Self.path("spark-paths.parquet")))
        let text = try String(contentsOfFile: Self.path("spark-paths.tsv"), encoding: .utf8)
        let fromText = try TreeAssignment.parse(text, source: "spark-paths.tsv")
        #expect(fromParquet.entries.count == 64)
        func byItem(_ a: TreeAssignment) -> [String] {
            a.entries.sorted { $0.item.rawValue < $1.item.rawValue }.map { "\($0.item.rawValue)\t\($0.path)" }
        }
        #expect(byItem(fromParquet) == byItem(fromText))
        #expect(fromParquet.entries.map(\.line) == Array(1 ... 64))
        let vectors = try Self.npy("spark-items.npy")
        let ids = (0 ..< 64).map { ItemID(UInt64($0)) }
        let nodes = try TreeAssignment.nodeEmbeddings(parquet: ParquetFile(contentsOf: Self.path("spark-nodes.parquet")))
        let textNodes = try TreeAssignment.parseNodeEmbeddings(String(contentsOfFile: Self.path("spark-nodes.tsv"), encoding: .utf8),
                                                               source: "spark-nodes.tsv")
        #expect(nodes == textNodes && nodes["2"] == [2, 0.5, -0.25, 1])
        let a = try fromParquet.layout(embeddings: vectors, items: ids, fanOut: 4, tolerance: 0.1, nodeEmbeddings: nodes)
        let b = try fromText.layout(embeddings: vectors, items: ids, fanOut: 4, tolerance: 0.1, nodeEmbeddings: textNodes)
        #expect(a == b && a.depth == 3)
    }

    /// The path may be a list of child indices instead of a string; INT32 ids are widened.
    @Test func pathListsAndInt32IdsGiveTheSameEntries() throws {
        let strings = try TreeAssignment(parquet: ParquetFile(contentsOf: Self.path("snappy-dict.parquet")))
        let lists = try TreeAssignment(parquet: ParquetFile(contentsOf: Self.path("path-lists.parquet")))
        let int32 = try TreeAssignment(parquet: ParquetFile(contentsOf: Self.path("int32.parquet")))
        #expect(strings == lists && strings == int32)
        #expect(strings.entries[5] == .init(item: ItemID(135), path: [1, 1], line: 6))
    }

    // MARK: - Bad input

    @Test func truncatedFileBadMagicAndFooterLengthPastTheFile() throws {
        let good = try Self.bytes("plain.parquet")
        #expect(throws: ParquetError.truncated(path: "t", reason: "no PAR1 magic at the end")) {
            try ParquetFile(bytes: Array(good.prefix(good.count - 100)), source: "t")
        }
        var magic = good
        magic[0] = UInt8(ascii: "X")
        #expect(throws: ParquetError.notParquet(path: "m", reason: "no PAR1 magic at the start")) { try ParquetFile(bytes: magic, source: "m") }
        #expect(throws: ParquetError.notParquet(path: "s", reason: "8 bytes, too short for the magic and a footer")) {
            try ParquetFile(bytes: Array("PAR1PAR1".utf8), source: "s")
        }
        var footer = good
        footer.replaceSubrange(good.count - 8 ..< good.count - 4, with: [0xFF, 0xFF, 0xFF, 0x7F])
        #expect(throws: ParquetError.truncated(path: "f", reason: "the footer length says 2147483647 bytes, only \(good.count - 12) lie between the magics")) {
            try ParquetFile(bytes: footer, source: "f")
        }
        // Footer bytes cut short inside: a Thrift error, not a crash.
        var cut = good
        let length = Int(good[good.count - 8]) | Int(good[good.count - 7]) << 8
        cut.replaceSubrange(good.count - 8 ..< good.count - 4, with: [UInt8((length / 2) & 0xFF), UInt8((length / 2) >> 8), 0, 0])
        #expect { try ParquetFile(bytes: cut, source: "c") } throws: { error in
            guard case ParquetError.badMetadata(path: "c", let reason) = error else { return false }
            return reason.hasPrefix("FileMetaData: ")
        }
    }

    /// The first page of `item` in the uncompressed fixture says it is 8191 bytes long: past its chunk.
    @Test func pageLengthPastTheChunk() throws {
        var bytes = try Self.bytes("plain.parquet")
        // PageHeader at byte 4: 0x15 type, 0x15 uncompressed size (varint), 0x15 compressed size (varint).
        try #require(bytes[4] == 0x15 && bytes[6] == 0x15)
        var p = 7
        while bytes[p] & 0x80 != 0 { p += 1 }
        p += 1
        try #require(bytes[p] == 0x15 && bytes[p + 1] & 0x80 != 0 && bytes[p + 2] & 0x80 == 0)   // a 2-byte varint
        bytes[p + 1] = 0xFE
        bytes[p + 2] = 0x7F   // zigzag 16382 = 8191
        let file = try ParquetFile(bytes: bytes, source: "p")
        #expect { try file.column("item") } throws: { error in
            guard case ParquetError.badPage(path: "p", column: "item", rowGroup: 0, let reason) = error else { return false }
            return reason.contains("a page of 8191 bytes") && reason.contains("runs past the chunk")
        }
        #expect(try file.column("path").rowCount == 16)   // the other columns still read
    }

    @Test func unsupportedCodecNamesTheColumnAndCodec() throws {
        let file = try ParquetFile(contentsOf: Self.path("gzip.parquet"))
        #expect(throws: ParquetError.unsupported(path: Self.path("gzip.parquet"), column: "item",
                                                 reason: "row group 0 is compressed with GZIP; only UNCOMPRESSED and SNAPPY are read")) {
            try TreeAssignment(parquet: file)
        }
    }

    @Test func missingColumnNullItemAndBadPathAreNamed() throws {
        let itemsOnly = Self.path("items-only.parquet")
        #expect(throws: ParquetError.missingColumn(path: itemsOnly, column: "path", available: ["item"])) {
            try TreeAssignment(parquet: ParquetFile(contentsOf: itemsOnly))
        }
        let nulls = Self.path("nulls.parquet")
        #expect(throws: ParquetError.nullValue(path: nulls, column: "item", row: 4)) { try TreeAssignment(parquet: ParquetFile(contentsOf: nulls)) }
        #expect(ParquetError.nullValue(path: "x.parquet", column: "item", row: 4).description == "x.parquet: column 'item', row 4: null")
        let lists = Self.path("lists.parquet")
        #expect(throws: ParquetError.nullValue(path: lists, column: "vector.list.element", row: 3)) {
            try TreeAssignment.nodeEmbeddings(parquet: ParquetFile(contentsOf: lists))
        }
        // Column names swapped in the footer: `item` holds the strings.
        let swapped = Self.renamed(try Self.bytes("plain.parquet"), "item", "tmp_", "path", "item", "tmp_", "path")
        #expect(throws: ParquetError.wrongType(path: "w", column: "item", found: "BYTE_ARRAY", expected: "INT64 or INT32 item ids")) {
            try TreeAssignment(parquet: ParquetFile(bytes: swapped, source: "w"))
        }
    }

    /// Every single-byte change and every truncation of two fixtures either reads or throws a
    /// ParquetError: never a crash, a hang or a huge allocation (the fuzzer goes further).
    @Test func damagedCopiesThrowOrRead() throws {
        for name in ["snappy-dict.parquet", "spark-nodes.parquet"] {
            let good = try Self.bytes(name)
            func attempt(_ bytes: [UInt8]) {
                guard let file = try? ParquetFile(bytes: bytes, source: name) else { return }
                for c in file.columns { _ = try? file.column(c.name) }
                _ = try? TreeAssignment(parquet: file)
                _ = try? TreeAssignment.nodeEmbeddings(parquet: file)
            }
            for i in good.indices {
                for v: UInt8 in [0, 0xFF, good[i] ^ 0x01, good[i] &+ 0x40] {
                    var bad = good
                    bad[i] = v
                    attempt(bad)
                }
                attempt(Array(good.prefix(i)) + Array("PAR1".utf8))
            }
        }
    }

    // MARK: - Pieces

    @Test func snappyLiteralsAndOverlappingCopies() throws {
        // "abc", then a copy of 9 bytes from 3 back (overlapping itself), then "d".
        let input: [UInt8] = [13, 0x08, 0x61, 0x62, 0x63, 0x15, 0x03, 0x00, 0x64]
        var out = [UInt8](repeating: 0, count: 13)
        try input.withUnsafeBytes { i in try out.withUnsafeMutableBytes { o in try Snappy.decompress(i, into: o) } }
        #expect(String(decoding: out, as: UTF8.self) == "abcabcabcabcd")
        let badOffset: [UInt8] = [13, 0x08, 0x61, 0x62, 0x63, 0x15, 0x09]
        #expect(throws: Snappy.Failure.self) {
            try badOffset.withUnsafeBytes { i in try out.withUnsafeMutableBytes { o in try Snappy.decompress(i, into: o) } }
        }
    }

    @Test func hybridRunsAndBitPackedGroups() throws {
        // RLE run of 5 × 3 (width 2), then one bit-packed group of 8 values 0,1,2,3,0,1,2,3.
        let input: [UInt8] = [0x0A, 0x03, 0x03, 0b1110_0100, 0b1110_0100]
        var out: [UInt32] = []
        try input.withUnsafeBytes { try ParquetPageDecoder.hybrid($0, bitWidth: 2, count: 11, into: &out) }
        #expect(out == [3, 3, 3, 3, 3, 0, 1, 2, 3, 0, 1])
        #expect(throws: ParquetPageDecoder.Failure.self) {
            var more: [UInt32] = []
            try input.withUnsafeBytes { try ParquetPageDecoder.hybrid($0, bitWidth: 2, count: 14, into: &more) }
        }
    }

    /// Rows of an `.npy` fixture (float32, 2-D).
    static func npy(_ name: String) throws -> Matrix {
        let bytes = try Self.bytes(name)
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        let header = String(decoding: bytes[10 ..< 10 + headerLength], as: UTF8.self)
        let shape = try #require(header.split(separator: "(").last?.split(separator: ")").first)
        let dims = shape.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let values = stride(from: 10 + headerLength, to: bytes.count, by: 4).map { i in
            Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
        }
        return try Matrix(rows: dims[0], cols: dims[1], values: values)
    }

    /// The file with column names swapped in the footer (same lengths, so no offset moves).
    static func renamed(_ bytes: [UInt8], _ pairs: String...) -> [UInt8] {
        var out = bytes
        let footer = out.count - 8 - (Int(out[out.count - 8]) | Int(out[out.count - 7]) << 8)
        for k in stride(from: 0, to: pairs.count, by: 2) {
            let from = Array(pairs[k].utf8), to = Array(pairs[k + 1].utf8)
            precondition(from.count == to.count)
            var i = footer
            while i + from.count <= out.count - 8 {
                if Array(out[i ..< i + from.count]) == from, out[i - 1] == UInt8(from.count) {
                    out.replaceSubrange(i ..< i + from.count, with: to)
                }
                i += 1
            }
        }
        return out
    }
}
