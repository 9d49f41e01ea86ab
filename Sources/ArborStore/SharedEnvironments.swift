import ArborCore
import CLMDB
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Environment {
    /// A read-only environment on `path`, shared with every other caller in this process that
    /// opened the same file (same device and inode) and still holds it.
    ///
    /// LMDB wants one environment per file per process: closing a second environment on a file
    /// drops the process's POSIX locks on the lock file, which the first one still relies on.
    /// Readers of indexes should open through here. A file replaced by a rename is a new file
    /// and gets a new environment; holders of the old one keep reading the old data.
    /// `maxTables` applies only when a new environment is opened.
    /// - Throws: the errors of ``init(path:access:mapSize:maxTables:options:)``.
    ///
    /// With `access: .readWrite` (an index updater), the file is opened for writing with the map
    /// size recorded in it; readers that open the same file later in this process share that
    /// environment. A file already open read-only here cannot be reopened for writing
    /// (``StoreError/lmdb(path:operation:code:message:)`` with `EBUSY`): open the writer first.
    public static func shared(path: String, maxTables: Int = 16, access: Access = .readOnly) throws(StoreError) -> Environment {
        guard let identity = FileIdentity(path: path) else { throw .notFound(path: path) }
        return try registry.withLock { (open: inout [FileIdentity: WeakEnvironment]) throws(StoreError) -> Environment in
            if let env = open[identity]?.environment {
                if access == .readWrite && env.access == .readOnly {
                    throw .lmdb(path: path, operation: "open for writing", code: EBUSY,
                                message: "the file is already open read-only in this process; open the writer before any reader")
                }
                return env
            }
            let env = try Environment(path: path, access: access, mapSize: 0, maxTables: maxTables)
            open = open.filter { $0.value.environment != nil }
            // Register under the identity of the file LMDB actually opened.
            open[env.fileIdentity ?? identity] = WeakEnvironment(env)
            return env
        }
    }

    /// Device and inode of the open data file (`mdb_env_get_fd` + `fstat`).
    var fileIdentity: FileIdentity? {
        var fd: Int32 = -1
        guard mdb_env_get_fd(handle, &fd) == MDB_SUCCESS, fd >= 0 else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }
}

private let registry = PosixMutex<[FileIdentity: WeakEnvironment]>([:])

/// A file's identity: device and inode (a renamed-over path is a different file).
struct FileIdentity: Hashable, Sendable {
    let device: UInt64
    let inode: UInt64

    init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        self.init(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }
}

/// A weak reference to an open environment.
final class WeakEnvironment: @unchecked Sendable {
    weak var environment: Environment?
    init(_ environment: Environment) { self.environment = environment }
}
