import ArborCore
import CLMDB
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if _endian(big)
#error("ArborStore stores numbers little-endian and assumes a little-endian host")
#endif

/// One LMDB environment: a single memory-mapped file (`MDB_NOSUBDIR`; LMDB keeps `<path>-lock`
/// beside it) holding named tables.
///
/// Lifetime: the environment is closed (`mdb_env_close`) when the last reference goes away. Every
/// transaction keeps its environment alive, and no transaction may outlive the process's use of it.
///
/// Thread rules: an environment is safe to share between threads. It is opened with `MDB_NOTLS`,
/// so read transactions are not tied to the thread that began them (but one transaction must not
/// be used by two threads at once). At most one write transaction is active at a time; beginning a
/// second one blocks until the first ends, so never begin a write transaction while holding one.
///
/// LMDB caveat: open each file once per process. Closing a second environment on the same file
/// releases the first one's POSIX locks on the lock file; readers should use ``shared(path:maxTables:)``.
public final class Environment: @unchecked Sendable {
    /// How the environment is opened.
    public enum Access: Sendable, Equatable {
        /// `MDB_RDONLY`: the file must exist; writes are refused.
        case readOnly
        /// The file is created if missing.
        case readWrite
    }

    /// Extra open flags.
    public struct Options: OptionSet, Sendable {
        /// The LMDB flag bits.
        public let rawValue: UInt32
        /// Options from LMDB flag bits.
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// `MDB_NOSYNC`: commits do not flush to disk; call ``sync(force:)`` before relying on the
        /// data (builds use it and flush once at the end).
        public static let noSync = Options(rawValue: UInt32(MDB_NOSYNC))
    }

    /// Geometry read from LMDB's meta page.
    public struct Info: Sendable, Equatable {
        /// Size of the memory map in bytes.
        public var mapSize: Int
        /// Size of a database page in bytes.
        public var pageSize: Int
        /// Number of the last page in use; the file needs `(lastPage + 1) * pageSize` bytes.
        public var lastPage: Int
        /// Id of the last committed transaction.
        public var lastTransaction: Int
    }

    /// The path of the data file.
    public let path: String
    /// Read transactions that may be open at once in all processes using the file (LMDB reader
    /// slots). Every query holds one for its duration; a query beyond the limit fails with
    /// `MDB_READERS_FULL` rather than waiting.
    public static let maxReaders = 4096

    /// How the file was opened.
    public let access: Access
    let handle: OpaquePointer
    /// Named tables opened so far (`mdb_dbi_open` must not run in two transactions at once).
    let tables = PosixMutex<[String: MDB_dbi]>([:])

    /// Opens (or, for `.readWrite`, creates) the environment at `path`.
    ///
    /// - Parameters:
    ///   - path: the data file (one file, `MDB_NOSUBDIR`).
    ///   - access: read-only or read-write.
    ///   - mapSize: the largest the file may grow, in bytes (`mdb_env_set_mapsize`, set before open).
    ///     Ignored for read-only opens, which use the size recorded in the file; 0 keeps the size
    ///     recorded in an existing file (so that readers in other processes never need to remap).
    ///   - maxTables: number of named tables the environment may hold (`mdb_env_set_maxdbs`).
    ///   - options: extra flags.
    /// - Throws: ``StoreError/notFound(path:)`` (read-only, no file),
    ///   ``StoreError/notAnEnvironment(path:reason:)``, ``StoreError/truncated(path:expectedBytes:actualBytes:)``
    ///   (checked before any page beyond the meta pages is touched), or ``StoreError/lmdb(path:operation:code:message:)``.
    public init(path: String, access: Access = .readOnly, mapSize: Int = 1 << 30, maxTables: Int = 16,
                options: Options = []) throws(StoreError) {
        self.path = path
        self.access = access
        let existing = StoreFiles.size(of: path)
        if access == .readOnly && existing == nil { throw .notFound(path: path) }
        if access == .readOnly, let size = existing, size < 2 * 4096 {
            // LMDB needs two meta pages; a shorter file is not an environment (or is cut short).
            throw .notAnEnvironment(path: path, reason: "file has \(size) bytes, shorter than two LMDB meta pages")
        }

        if existing != nil { try PageCheck.checkMainTable(path: path) }
        let lockPath = StoreFiles.lockPath(for: path)
        let lockExisted = StoreFiles.exists(lockPath)
        var flags = UInt32(MDB_NOSUBDIR) | UInt32(MDB_NOTLS) | options.rawValue
        if access == .readOnly { flags |= UInt32(MDB_RDONLY) }
        do {
            handle = try Environment.open(path: path, flags: flags, access: access, mapSize: mapSize,
                                          maxTables: maxTables, fileExisted: existing != nil)
        } catch .lmdb(_, _, let code, _) where access == .readOnly && (code == EACCES || code == EROFS) {
            // The lock file cannot be created (read-only directory or mount): an index that nobody
            // writes can be read without one.
            handle = try Environment.open(path: path, flags: flags | UInt32(MDB_NOLOCK), access: access,
                                          mapSize: mapSize, maxTables: maxTables, fileExisted: true)
        } catch .notAnEnvironment(let p, let reason) {
            // Do not leave a lock file beside a file that is not ours.
            if !lockExisted { try? StoreFiles.remove(lockPath) }
            throw .notAnEnvironment(path: p, reason: reason)
        }
    }

    /// Creates, configures and opens an LMDB environment handle; closes it on any failure.
    private static func open(path: String, flags: UInt32, access: Access, mapSize: Int, maxTables: Int,
                             fileExisted: Bool) throws(StoreError) -> OpaquePointer {
        var env: OpaquePointer?
        try check(mdb_env_create(&env), path, "mdb_env_create")
        guard let env else { throw .lmdb(path: path, operation: "mdb_env_create", code: -1, message: "no handle") }
        do throws(StoreError) {
            if access == .readWrite && mapSize > 0 {
                try check(mdb_env_set_mapsize(env, mapSize), path, "mdb_env_set_mapsize")
            }
            try check(mdb_env_set_maxdbs(env, MDB_dbi(max(1, maxTables))), path, "mdb_env_set_maxdbs")
            // Each open read transaction holds one reader slot (MDB_NOTLS: one per query, not per
            // thread); LMDB's default of 126 would fail the 127th concurrent query.
            try check(mdb_env_set_maxreaders(env, UInt32(Environment.maxReaders)), path, "mdb_env_set_maxreaders")
            let rc = mdb_env_open(env, path, flags, 0o644)
            if rc == ENOENT && fileExisted {
                throw StoreError.notAnEnvironment(path: path, reason: "no LMDB meta page")
            }
            try check(rc, path, "mdb_env_open")
            try checkSize(env, path: path)
        } catch {
            mdb_env_close(env)
            throw error
        }
        return env
    }

    deinit { mdb_env_close(handle) }

    /// Refuses a file shorter than its meta page requires (`(me_last_pgno + 1) * ms_psize`).
    private static func checkSize(_ env: OpaquePointer, path: String) throws(StoreError) {
        var info = MDB_envinfo()
        try check(mdb_env_info(env, &info), path, "mdb_env_info")
        var st = MDB_stat()
        try check(mdb_env_stat(env, &st), path, "mdb_env_stat")
        // The meta page's numbers come from the file: a damaged last page number must not
        // overflow here (found by the index fuzzer: last page 0x0E00_0000_0000_0000).
        let (pages, overflowA) = info.me_last_pgno.addingReportingOverflow(1)
        let (needed, overflowB) = pages.multipliedReportingOverflow(by: Int(st.ms_psize))
        guard info.me_last_pgno >= 0, !overflowA, !overflowB else {
            throw .notAnEnvironment(path: path, reason: "meta page: last page \(UInt(bitPattern: info.me_last_pgno)) is beyond any file size")
        }
        let actual = StoreFiles.size(of: path) ?? 0
        if actual < needed { throw .truncated(path: path, expectedBytes: needed, actualBytes: actual) }
    }

    /// The map size, page size and last page, from the meta page. O(1).
    public var info: Info {
        var info = MDB_envinfo()
        var st = MDB_stat()
        mdb_env_info(handle, &info)
        mdb_env_stat(handle, &st)
        return Info(mapSize: info.me_mapsize, pageSize: Int(st.ms_psize), lastPage: info.me_last_pgno,
                    lastTransaction: info.me_last_txnid)
    }

    /// Checks every B-tree and overflow page of the file with `pread` (bounds, node offsets,
    /// overflow extents) before a full read through LMDB, which trusts its pages: a damaged page
    /// is a ``StoreError/notAnEnvironment(path:reason:)`` instead of a crash. O(file pages).
    public static func checkPages(path: String) throws(StoreError) {
        try PageCheck.checkAllTables(path: path)
    }

    /// Like ``checkPages(path:)`` for the named tables `tables` only (and the main table that
    /// records them): for a reader that reads a few small tables at open and must not trust
    /// their pages. Names the file does not hold are skipped. O(pages of those tables).
    public static func checkPages(path: String, tables: Set<String>) throws(StoreError) {
        try PageCheck.checkTables(path: path, names: tables)
    }

    /// Flushes the data file to disk (`mdb_env_sync`). With `force`, also when opened with
    /// ``Options/noSync``.
    public func sync(force: Bool = true) throws(StoreError) {
        try check(mdb_env_sync(handle, force ? 1 : 0), path, "mdb_env_sync")
    }

    /// Begins a read transaction: a consistent snapshot that never blocks writers or other readers.
    /// Keep it short: a long reader stops LMDB from reusing pages freed by later writes.
    public func beginRead() throws(StoreError) -> ReadTransaction {
        var txn: OpaquePointer?
        try check(mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txn), path, "mdb_txn_begin (read)")
        return ReadTransaction(handle: TransactionHandle(pointer: txn!, environment: self))
    }

    /// Begins the write transaction. Blocks while another write transaction is active.
    /// - Throws: ``StoreError`` (e.g. `EACCES` on a read-only environment).
    public func beginWrite() throws(StoreError) -> WriteTransaction {
        var txn: OpaquePointer?
        try check(mdb_txn_begin(handle, nil, 0, &txn), path, "mdb_txn_begin (write)")
        return WriteTransaction(handle: TransactionHandle(pointer: txn!, environment: self))
    }

    /// Runs `body` in a read transaction that ends when `body` returns; values seen through it
    /// must not escape `body`.
    public func read<R>(_ body: (borrowing ReadTransaction) throws -> R) throws -> R {
        let txn = try beginRead()
        return try body(txn)
    }

    /// Runs `body` in a write transaction and commits it when `body` returns; aborts it (nothing
    /// written) when `body` throws.
    public func write<R>(_ body: (inout WriteTransaction) throws -> R) throws -> R {
        var txn = try beginWrite()
        let result = try body(&txn)
        try txn.commit()
        return result
    }

    /// Opens the existing named table `name` (cached after the first call).
    /// - Throws: ``StoreError/tableNotFound(path:table:)`` when the file has no such table.
    public func openTable(_ name: String) throws(StoreError) -> Table {
        if let dbi = tables.withLock({ $0[name] }) { return Table(name: name, dbi: dbi) }
        return try tables.withLock { (cache: inout [String: MDB_dbi]) throws(StoreError) -> Table in
            if let dbi = cache[name] { return Table(name: name, dbi: dbi) }
            var txn: OpaquePointer?
            // A read transaction even in a read-write environment: it never waits for the writer.
            try check(mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txn), path, "mdb_txn_begin (open table)")
            var dbi = MDB_dbi(0)
            let rc = mdb_dbi_open(txn, name, 0, &dbi)
            if rc != MDB_SUCCESS {
                mdb_txn_abort(txn)
                if rc == MDB_NOTFOUND { throw StoreError.tableNotFound(path: path, table: name) }
                if rc == MDB_INCOMPATIBLE {
                    throw StoreError.tableNotFound(path: path, table: name)
                }
                throw StoreError.from(code: rc, path: path, operation: "mdb_dbi_open \(name)")
            }
            try check(mdb_txn_commit(txn), path, "mdb_txn_commit (open table)")
            cache[name] = dbi
            return Table(name: name, dbi: dbi)
        }
    }

    /// Whether the environment holds a named table `name`.
    public func hasTable(_ name: String) throws(StoreError) -> Bool {
        do { _ = try openTable(name); return true } catch .tableNotFound { return false }
    }
}

/// A named table (an LMDB named database, `MDB_dbi`) of one environment. Keys are compared as
/// bytes (memcmp order); see ``StoreKey``. A handle is valid for the life of its environment.
public struct Table: Sendable, Hashable {
    /// The table's name.
    public let name: String
    let dbi: MDB_dbi
}
