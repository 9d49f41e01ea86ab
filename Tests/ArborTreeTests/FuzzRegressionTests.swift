import ArborStore
@testable import ArborTree
import Foundation
import Testing

/// Every input a fuzzer crashed on (Fuzz/regressions/<target>/, see tools/fuzz.sh) is replayed
/// here: opening and verifying it must end in a typed error or a clean result, never a crash.
@Suite struct FuzzRegressionTests {
    static var regressions: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/regressions")
    }

    /// A damaged node offset in the main table's page made `mdb_dbi_open` read past the end of the
    /// file (SIGBUS in liblmdb). The pages LMDB reads at open are now checked first.
    @Test func damagedIndexFilesOpenToATypedError() throws {
        let dir = Self.regressions.appendingPathComponent("index")
        let inputs = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(!inputs.isEmpty)
        for name in inputs {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("arbor-fuzz-\(getpid())-\(name).arbor").path
            defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + "-lock") }
            try Data(contentsOf: dir.appendingPathComponent(name)).write(to: URL(fileURLWithPath: path))
            let outcome = Result { () throws(IndexError) -> Void in
                let reader = try IndexReader(path: path)
                try reader.verify()
            }
            switch outcome {
            case .success: Issue.record("\(name): a damaged file opened and verified")
            case let .failure(error): #expect(error.description.contains(path), "\(name): \(error)")
            }
        }
    }
}
