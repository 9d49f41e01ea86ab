import CLMDB

/// Errors raised by the storage layer. Every case names the file it concerns, so that a message
/// printed by the CLI tells the user which file to look at.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No file exists at `path`.
    case notFound(path: String)
    /// The file at `path` exists but is not an LMDB environment (LMDB reported `MDB_INVALID`,
    /// `MDB_VERSION_MISMATCH`, or the file is shorter than LMDB's two meta pages).
    case notAnEnvironment(path: String, reason: String)
    /// The file is shorter than its own meta page says it must be: reading the missing pages would
    /// crash the process (SIGBUS), so the environment is refused.
    case truncated(path: String, expectedBytes: Int, actualBytes: Int)
    /// A named table does not exist (and was not to be created).
    case tableNotFound(path: String, table: String)
    /// The environment has no room left: the map size chosen when it was opened is too small.
    case mapFull(path: String)
    /// Any other LMDB failure: the operation, LMDB's return code and its message (`mdb_strerror`).
    case lmdb(path: String, operation: String, code: Int32, message: String)
    /// A file-system call (stat, rename, unlink) failed with `errno`.
    case system(path: String, operation: String, errno: Int32, message: String)

    /// The file the error concerns.
    public var path: String {
        switch self {
        case let .notFound(path), let .notAnEnvironment(path, _), let .truncated(path, _, _),
             let .tableNotFound(path, _), let .mapFull(path), let .lmdb(path, _, _, _),
             let .system(path, _, _, _):
            return path
        }
    }

    /// A one-line message naming the file and the cause (what the CLI prints).
    public var description: String {
        switch self {
        case let .notFound(path):
            return "\(path): no such file"
        case let .notAnEnvironment(path, reason):
            return "\(path): not an LMDB file (\(reason))"
        case let .truncated(path, expected, actual):
            return "\(path): file is truncated: \(actual) bytes on disk, \(expected) needed"
        case let .tableNotFound(path, table):
            return "\(path): no table named '\(table)'"
        case let .mapFull(path):
            return "\(path): map size exhausted (MDB_MAP_FULL); reopen with a larger map size"
        case let .lmdb(path, operation, code, message):
            return "\(path): \(operation) failed: \(message) (LMDB code \(code))"
        case let .system(path, operation, errno, message):
            return "\(path): \(operation) failed: \(message) (errno \(errno))"
        }
    }

    /// Maps an LMDB return code to a typed error.
    static func from(code: Int32, path: String, operation: String) -> StoreError {
        switch code {
        case MDB_MAP_FULL: return .mapFull(path: path)
        case MDB_INVALID, MDB_VERSION_MISMATCH:
            return .notAnEnvironment(path: path, reason: lmdbMessage(code))
        default:
            return .lmdb(path: path, operation: operation, code: code, message: lmdbMessage(code))
        }
    }
}

/// LMDB's message for a return code (`mdb_strerror`, which also covers errno values).
func lmdbMessage(_ code: Int32) -> String {
    guard let text = mdb_strerror(code) else { return "error \(code)" }
    return String(cString: text)
}

/// Throws unless `code` is `MDB_SUCCESS`.
@inline(__always)
func check(_ code: Int32, _ path: String, _ operation: @autoclosure () -> String) throws(StoreError) {
    if code != MDB_SUCCESS { throw StoreError.from(code: code, path: path, operation: operation()) }
}
