import ArborInference
import Foundation
import Testing
@testable import ArborModels

/// A weights file whose header was forged (sizes near 2^64) is an error, never a trap.
@Suite struct TwoTowerForgedFileTests {
    func write(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("forged-\(UUID().uuidString).ttw").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func hugeHeaderLengthIsRejected() throws {
        let path = try write(Array("ARBORTTW".utf8) + [UInt8](repeating: 0xFF, count: 8) + [UInt8](repeating: 0, count: 32))
        #expect(throws: TwoTowerError.self) { try TwoTowerWeightsFile.read(at: path) }
    }

    @Test func overflowingSizesInTheHeaderAreRejected() throws {
        let json = #"{"formatVersion":1,"kind":"checkpoint","itemCount":4611686018427387904,"categoryCount":0,"tensors":[]}"#
        var bytes = Array("ARBORTTW".utf8)
        withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: Array(json.utf8))
        let path = try write(bytes)
        #expect(throws: TwoTowerError.self) { try TwoTowerWeightsFile.read(at: path) }
    }
}
