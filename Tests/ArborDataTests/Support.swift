import Foundation
import Testing

@testable import ArborData

/// The shared data folder (`../shared/data` from the package root), resolved from this file.
enum SharedData {
    static let root: String = {
        let here = URL(fileURLWithPath: #filePath)  // .../Tests/ArborDataTests/Support.swift
        let package = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return package.deletingLastPathComponent().appendingPathComponent("shared/data").path
    }()

    static func path(_ relative: String) -> String { root + "/" + relative }

    static var available: Bool {
        FileManager.default.fileExists(atPath: path("ml-100k/ml-100k.inter"))
    }
}

/// A fresh temporary directory, removed when the value is released.
final class TempDir {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("arbordata-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `text` to `name` and returns the full path.
    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        let p = path + "/" + name
        try! Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }

    func writeBytes(_ name: String, _ bytes: [UInt8]) -> String {
        let p = path + "/" + name
        try! Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    func file(_ name: String) -> String { path + "/" + name }
}

/// Runs `body` and returns the DataError it throws, or records an issue.
func dataError<T>(_ body: () throws -> T, sourceLocation: SourceLocation = #_sourceLocation) -> DataError? {
    do {
        _ = try body()
        Issue.record("expected a DataError, none thrown", sourceLocation: sourceLocation)
        return nil
    } catch let e as DataError {
        return e
    } catch {
        Issue.record("expected a DataError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
