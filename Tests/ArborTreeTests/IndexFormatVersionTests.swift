import ArborStore
import Foundation
import Testing
@testable import ArborTree

/// Format version 2 records the model kinds as typed fields; version 1 files (free strings) still
/// open with their kinds mapped, and a kind no build knows is an error naming the field.
@Suite struct IndexFormatVersionTests {
    @Test func version1FilesOpenWithTheirKindsMapped() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("v1.arbor")
        var writer = IndexWriter()
        writer.formatVersion = 1
        try writer.write(layout: Fixtures.smallLayout(), nodeScorer: .dnn, queryProducer: .leafMeanPooling, to: path)
        let reader = try IndexReader(path: path)
        #expect(reader.header.formatVersion == 1)
        #expect(reader.nodeScorer == .dnn && reader.queryProducer == .leafMeanPooling)
        #expect(try reader.loadLayout() == Fixtures.smallLayout())
    }

    @Test func version1JSONSpellsTheOldKeys() throws {
        var header = try headerOf(Fixtures.smallLayout())
        header.formatVersion = 1
        let json = String(decoding: header.encoded().dropFirst(IndexHeader.preambleBytes), as: UTF8.self)
        #expect(json.contains("\"scorerKind\":\"inner-product\"") && json.contains("\"encoderKind\":\"none\""))
        #expect(!json.contains("nodeScorer"))
        #expect(try IndexHeader.decode(bytes: header.encoded(), path: "x") == header)
    }

    @Test(arguments: [
        (1, "\"scorerKind\":\"inner-product\"", "\"scorerKind\":\"mystery\"", "scorerKind"),
        (1, "\"encoderKind\":\"none\"", "\"encoderKind\":\"mind-v0\"", "encoderKind"),
        (2, "\"nodeScorer\":\"inner-product\"", "\"nodeScorer\":\"mystery\"", "nodeScorer"),
        (2, "\"queryProducer\":\"leaf-mean-pooling\"", "\"queryProducer\":\"none\"", "queryProducer"),
    ])
    func unknownKindIsAnErrorNamingTheField(version: Int, find: String, replace: String, field: String) throws {
        var header = try headerOf(Fixtures.smallLayout())
        header.formatVersion = version
        let bytes = header.encoded()
        let json = String(decoding: bytes.dropFirst(IndexHeader.preambleBytes), as: UTF8.self)
        #expect(json.contains(find))
        let forged = Array(json.replacingOccurrences(of: find, with: replace).utf8)
        var preamble = Array(bytes.prefix(IndexHeader.preambleBytes))
        withUnsafeBytes(of: UInt64(forged.count).littleEndian) { for i in 0..<8 { preamble[16 + i] = $0[i] } }
        withUnsafeBytes(of: FNV1a64.checksum(of: forged).littleEndian) { for i in 0..<8 { preamble[24 + i] = $0[i] } }
        let result = Result { () throws(IndexError) -> IndexHeader in
            try IndexHeader.decode(bytes: preamble + forged, path: "forged.arbor")
        }
        guard case .failure(.corruptHeader(let path, let f, let reason)) = result else {
            Issue.record("a forged kind was not refused: \(result)"); return
        }
        #expect(path == "forged.arbor" && f == field && reason.contains("unknown kind"))
    }

    private func headerOf(_ layout: TreeLayout) throws -> IndexHeader {
        IndexHeader(formatVersion: IndexFormat.version, dimension: layout.dimension, fanOut: layout.fanOut,
                    itemCount: layout.itemCount, levelNodeCounts: layout.levelNodeCounts, hasCategories: true,
                    nodeScorer: .innerProduct, queryProducer: .leafMeanPooling, chunkBytes: 1 << 20, tensors: [],
                    extraNames: [])
    }
}
