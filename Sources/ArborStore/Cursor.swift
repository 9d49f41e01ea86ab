import CLMDB

/// One key/value pair seen through a cursor; both views are valid only inside the cursor's closure.
public struct CursorEntry {
    /// The key's bytes.
    public let key: ValueView
    /// The value's bytes (zero-copy into the memory map).
    public let value: ValueView
}

/// A position in a table, moving in key order (memcmp order of the key bytes).
///
/// Obtained from ``Transaction/withCursor(_:_:)``; valid only inside that closure and closed when
/// it returns. Each move is O(log n) at worst, O(1) amortised for ``next()``.
public struct Cursor: ~Copyable {
    let pointer: OpaquePointer
    let path: String
    let table: String

    init(pointer: OpaquePointer, path: String, table: String) {
        self.pointer = pointer
        self.path = path
        self.table = table
    }

    deinit { mdb_cursor_close(pointer) }

    /// Moves to the first entry; `nil` when the table is empty.
    public mutating func first() throws(StoreError) -> CursorEntry? { try move(MDB_FIRST) }

    /// Moves to the last entry; `nil` when the table is empty.
    public mutating func last() throws(StoreError) -> CursorEntry? { try move(MDB_LAST) }

    /// Moves to the next entry (the first one on a fresh cursor); `nil` past the end.
    public mutating func next() throws(StoreError) -> CursorEntry? { try move(MDB_NEXT) }

    /// Moves to the first entry whose key is at least `key` (`MDB_SET_RANGE`); `nil` if none.
    public mutating func seek(atLeast key: some StoreKey) throws(StoreError) -> CursorEntry? {
        let pointer = self.pointer
        let path = self.path
        let table = self.table
        return try key.withKeyBytes { (k: UnsafeRawBufferPointer) throws(StoreError) -> CursorEntry? in
            var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            var mv = MDB_val()
            let rc = mdb_cursor_get(pointer, &mk, &mv, MDB_SET_RANGE)
            if rc == MDB_NOTFOUND { return nil }
            try check(rc, path, "mdb_cursor_get \(table)")
            return CursorEntry(key: ValueView(mk), value: ValueView(mv))
        }
    }

    private func move(_ op: MDB_cursor_op) throws(StoreError) -> CursorEntry? {
        var mk = MDB_val()
        var mv = MDB_val()
        let rc = mdb_cursor_get(pointer, &mk, &mv, op)
        if rc == MDB_NOTFOUND { return nil }
        try check(rc, path, "mdb_cursor_get \(table)")
        return CursorEntry(key: ValueView(mk), value: ValueView(mv))
    }
}
