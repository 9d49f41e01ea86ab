import Foundation

/// A fresh directory under the system's temporary directory, removed with everything in it when
/// the last reference goes (so a test's index files, and LMDB's `-lock` files beside them, never
/// outlive the test). Not thread-safe to share across tests; make one per test.
public final class ScratchDirectory {
    /// The directory's path.
    public let path: String

    /// Creates the directory, named `prefix-<UUID>`.
    /// - Throws: what `FileManager.createDirectory` throws.
    public init(prefix: String = "arbor-test") throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    /// The path of `name` inside the directory (the file is not created).
    public func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
