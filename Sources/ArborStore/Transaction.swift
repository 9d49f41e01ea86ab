import CLMDB

/// The LMDB transaction behind a ``ReadTransaction`` or ``WriteTransaction``. Opaque to users.
public struct TransactionHandle {
    let pointer: OpaquePointer
    let environment: Environment
}

/// What every transaction can do: read values, count entries, iterate with a cursor.
///
/// Lifetimes: a ``ValueView`` (and anything built on one, such as ``MappedArray``) points into the
/// memory map and is valid only until its transaction ends. The closure-scoped APIs below lend
/// views for the duration of the closure; they must not be stored or returned.
public protocol Transaction: ~Copyable {
    /// The underlying LMDB transaction.
    var handle: TransactionHandle { get }
}

extension Transaction where Self: ~Copyable {
    /// The path of the environment's file (for error messages).
    public var path: String { handle.environment.path }

    /// Calls `body` with a zero-copy view of the value stored under `key`, or returns `nil` when
    /// there is none. The view is valid only inside `body`. O(log n) in the table's size.
    public func withValue<R>(_ table: Table, _ key: some StoreKey,
                             _ body: (ValueView) throws -> R) throws -> R? {
        guard let view = try lookup(table, key) else { return nil }
        return try body(view)
    }

    /// A copy of the value stored under `key`, or `nil` when there is none.
    public func get(_ table: Table, _ key: some StoreKey) throws(StoreError) -> [UInt8]? {
        try lookup(table, key)?.copyBytes()
    }

    /// Whether `table` holds `key`.
    public func contains(_ table: Table, _ key: some StoreKey) throws(StoreError) -> Bool {
        try lookup(table, key) != nil
    }

    /// Number of entries in `table` (`mdb_stat`). O(1).
    public func count(_ table: Table) throws(StoreError) -> Int {
        var st = MDB_stat()
        try check(mdb_stat(handle.pointer, table.dbi, &st), path, "mdb_stat \(table.name)")
        return st.ms_entries
    }

    /// Calls `body` with a cursor over `table`, positioned before the first entry. The cursor and
    /// every view it returns are valid only inside `body`.
    public func withCursor<R>(_ table: Table, _ body: (inout Cursor) throws -> R) throws -> R {
        var pointer: OpaquePointer?
        try check(mdb_cursor_open(handle.pointer, table.dbi, &pointer), path, "mdb_cursor_open \(table.name)")
        var cursor = Cursor(pointer: pointer!, path: path, table: table.name)
        return try body(&cursor)
    }

    /// A zero-copy view of the value under `key`, valid until the transaction ends.
    func lookup(_ table: Table, _ key: some StoreKey) throws(StoreError) -> ValueView? {
        let txn = handle.pointer
        let path = self.path
        return try key.withKeyBytes { (k: UnsafeRawBufferPointer) throws(StoreError) -> ValueView? in
            var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            var mv = MDB_val()
            let rc = mdb_get(txn, table.dbi, &mk, &mv)
            if rc == MDB_NOTFOUND { return nil }
            try check(rc, path, "mdb_get \(table.name)")
            return ValueView(mv)
        }
    }
}

/// A read-only snapshot of an environment (an LMDB read transaction).
///
/// Short-lived by design: begin it per query or per batch and let it end. While it lives, LMDB
/// cannot reuse the pages it sees, so a forgotten reader makes the file grow under later writes.
/// `~Copyable`: it ends exactly once, by ``end()`` or when it goes out of scope (`mdb_txn_abort`).
/// Use it from one thread at a time (it may move between threads: the environment uses `MDB_NOTLS`).
public struct ReadTransaction: ~Copyable, Transaction {
    /// The underlying LMDB transaction.
    public let handle: TransactionHandle
    private var ended = false

    init(handle: TransactionHandle) { self.handle = handle }

    /// The id of the committed write transaction this snapshot sees (`mdb_txn_id`): two read
    /// transactions with the same id see the same data at the same map addresses.
    public var snapshotID: UInt64 { UInt64(mdb_txn_id(handle.pointer)) }

    /// Ends the snapshot now. Views obtained through it become invalid.
    public consuming func end() {
        mdb_txn_abort(handle.pointer)
        ended = true
    }

    deinit { if !ended { mdb_txn_abort(handle.pointer) } }
}

/// The single write transaction of an environment.
///
/// `~Copyable`: it ends exactly once, by ``commit()`` or ``abort()``; if it goes out of scope
/// without either (for example because an error was thrown), it is aborted and nothing it wrote is
/// kept. Keep it short: it holds the environment's writer lock. Use it from one thread.
public struct WriteTransaction: ~Copyable, Transaction {
    /// The underlying LMDB transaction.
    public let handle: TransactionHandle
    private var ended = false
    private var created: [String: MDB_dbi] = [:]

    init(handle: TransactionHandle) { self.handle = handle }

    /// Opens the named table `name`, creating it if needed (`MDB_CREATE`). The table becomes visible
    /// to other transactions when this one commits; if this one aborts, the handle is invalid.
    public mutating func createTable(_ name: String) throws(StoreError) -> Table {
        let txn = handle.pointer
        let path = self.path
        let dbi = try handle.environment.tables.withLock { (cache: inout [String: MDB_dbi]) throws(StoreError) -> MDB_dbi in
            var dbi = MDB_dbi(0)
            try check(mdb_dbi_open(txn, name, UInt32(MDB_CREATE), &dbi), path, "mdb_dbi_open \(name)")
            return dbi
        }
        created[name] = dbi
        return Table(name: name, dbi: dbi)
    }

    /// Stores `value` under `key`, replacing any previous value. The bytes are copied into the map.
    ///
    /// With `append`, the key must sort after every key already in the table (`MDB_APPEND`: a fast
    /// bulk load of sorted keys, pages filled completely); otherwise LMDB fails with `MDB_KEYEXIST`.
    /// - Throws: ``StoreError/mapFull(path:)`` when the map size is exhausted, ``StoreError/lmdb(path:operation:code:message:)``
    ///   for an empty or over-long key (at most 511 bytes) or an out-of-order append.
    public func put(_ table: Table, _ key: some StoreKey, _ value: some StoreValue, append: Bool = false) throws(StoreError) {
        let flags = append ? UInt32(MDB_APPEND) : 0
        let txn = handle.pointer
        let path = self.path
        try key.withKeyBytes { (k: UnsafeRawBufferPointer) throws(StoreError) in
            try value.withValueBytes { (v: UnsafeRawBufferPointer) throws(StoreError) in
                var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
                var mv = MDB_val(mv_size: v.count, mv_data: UnsafeMutableRawPointer(mutating: v.baseAddress))
                try check(mdb_put(txn, table.dbi, &mk, &mv, flags), path, "mdb_put \(table.name)")
            }
        }
    }

    /// Removes `key` from `table`. Returns whether it was there.
    @discardableResult
    public func delete(_ table: Table, _ key: some StoreKey) throws(StoreError) -> Bool {
        let txn = handle.pointer
        let path = self.path
        return try key.withKeyBytes { (k: UnsafeRawBufferPointer) throws(StoreError) -> Bool in
            var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            let rc = mdb_del(txn, table.dbi, &mk, nil)
            if rc == MDB_NOTFOUND { return false }
            try check(rc, path, "mdb_del \(table.name)")
            return true
        }
    }

    /// Makes every change of this transaction durable and visible (`mdb_txn_commit`).
    /// On failure nothing is kept (LMDB frees the transaction either way).
    public consuming func commit() throws(StoreError) {
        ended = true
        let rc = mdb_txn_commit(handle.pointer)
        try check(rc, path, "mdb_txn_commit")
        let created = self.created
        handle.environment.tables.withLock { cache in
            for (name, dbi) in created { cache[name] = dbi }
        }
    }

    /// Discards every change of this transaction (`mdb_txn_abort`).
    public consuming func abort() {
        mdb_txn_abort(handle.pointer)
        ended = true
    }

    deinit { if !ended { mdb_txn_abort(handle.pointer) } }
}
