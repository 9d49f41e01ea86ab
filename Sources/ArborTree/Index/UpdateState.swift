import ArborStore

/// The leaf-level state one update transaction works on: the header as committed, the leaf
/// parents' slot ranges and live ends, and copies of the chunks it has touched (written back,
/// with their checksums, by ``writeBack(_:)``).
struct UpdateState {
    let header: IndexHeader
    let path: String
    let tables: IndexTables
    let dimension: Int
    let rowsPerChunk: Int, itemsPerChunk: Int, fourPerChunk: Int
    /// Slot ranges of the leaf parents: parent `p` owns `offsets[p] ..< offsets[p + 1]`.
    let offsets: [Int32]
    /// End of each leaf parent's live slots.
    var ends: [Int32]
    var dirtyEnds = Set<Int>()
    var rows: [Int: [Float]] = [:]
    var ids: [Int: [UInt64]] = [:]
    var categories: [Int: [UInt32]] = [:]

    init(_ txn: borrowing WriteTransaction, reader: IndexReader) throws {
        path = reader.path
        tables = reader.tables
        let meta = try reader.environment.openTable(IndexFormat.metaTable)
        let path = self.path
        let found = try txn.withValue(meta, IndexFormat.headerKey) { view throws(IndexError) in
            try IndexHeader.decode(view, path: path)
        }
        guard let found else { throw IndexError.foreign(path: path) }
        header = found
        guard found.levelNodeCounts == reader.header.levelNodeCounts, found.dimension == reader.header.dimension else {
            throw IndexError.corruptHeader(path: path, field: "levelNodeCounts", reason: "the tree changed since it was opened")
        }
        dimension = found.dimension
        let g = IndexReader.ChunkGeometry(found)
        rowsPerChunk = g.rowsPerChunk
        itemsPerChunk = g.itemsPerChunk
        fourPerChunk = g.offsetsPerChunk
        let level = found.depth - 1, parents = found.levelNodeCounts[level]
        func load(_ count: Int, _ key: (Int) -> LargeValue) throws -> [Int32] {
            var out: [Int32] = []
            out.reserveCapacity(count)
            for c in 0 ..< (count + g.offsetsPerChunk - 1) / g.offsetsPerChunk {
                let value = key(c)
                let chunk = try txn.withValue(reader.tables.levels, value.key) { $0.copyElements(as: Int32.self) }
                guard let chunk else {
                    throw IndexError.corruptValue(path: path, table: value.table, key: value.label, reason: "missing")
                }
                out.append(contentsOf: chunk)
            }
            guard out.count == count else {
                throw IndexError.corruptValue(path: path, table: IndexFormat.levelsTable, key: "level \(level)",
                                              reason: "\(out.count) entries, expected \(count)")
            }
            return out
        }
        offsets = try load(parents + 1) { .childOffsets(level: level, chunk: $0) }
        ends = try load(parents) { .childEnds(level: level, chunk: $0) }
        for p in 0 ..< parents {
            guard offsets[p] <= ends[p], ends[p] <= offsets[p + 1], Int(offsets[p + 1]) <= found.leafSlots else {
                throw IndexError.corruptValue(path: path, table: IndexFormat.levelsTable, key: "level \(level) node \(p)",
                                              reason: "child end \(ends[p]) outside its slots \(offsets[p])..<\(offsets[p + 1])")
            }
        }
    }

    /// Whether leaf parent `p` has a free slot.
    func hasRoom(_ p: Int32) -> Bool { ends[Int(p)] < offsets[Int(p) + 1] }

    /// The slot of `id`, or `nil` when the index lacks it.
    func slot(of id: ItemID, _ txn: borrowing WriteTransaction) throws -> Int? {
        let path = self.path, slots = header.leafSlots
        return try txn.withValue(tables.items, id.rawValue) { view throws(IndexError) -> Int in
            guard view.count == 8, let slot = Int(exactly: view.load(UInt64.self, atByteOffset: 0)), slot < slots else {
                throw .corruptValue(path: path, table: IndexFormat.itemsTable, key: "item \(id)", reason: "not a slot")
            }
            return slot
        }
    }

    /// The leaf parent owning `slot` (binary search over the offsets).
    func parent(of slot: Int) -> Int {
        var lo = 0, hi = offsets.count - 1  // invariant: offsets[lo] <= slot < offsets[hi]
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if Int(offsets[mid]) <= slot { lo = mid } else { hi = mid }
        }
        return lo
    }

    // MARK: Chunk copies

    private mutating func chunk<T: BitwiseCopyable>(_ cache: inout [Int: [T]], _ c: Int, _ value: LargeValue,
                                                    _ table: Table, _ txn: borrowing WriteTransaction) throws -> [T] {
        if let found = cache[c] { return found }
        guard let copy = try txn.withValue(table, value.key, { $0.copyElements(as: T.self) }) else {
            throw IndexError.corruptValue(path: path, table: value.table, key: value.label, reason: "missing")
        }
        cache[c] = copy
        return copy
    }

    private mutating func loadRows(_ c: Int, _ txn: borrowing WriteTransaction) throws {
        if rows[c] == nil {
            var cache = rows
            _ = try chunk(&cache, c, .embeddings(level: header.depth, chunk: c), tables.levels, txn)
            rows = cache
        }
    }

    private mutating func loadIDs(_ c: Int, _ txn: borrowing WriteTransaction) throws {
        if ids[c] == nil {
            var cache = ids
            _ = try chunk(&cache, c, .leafItems(chunk: c), tables.leafItems, txn)
            ids = cache
        }
    }

    private mutating func loadCategories(_ c: Int, _ txn: borrowing WriteTransaction) throws {
        if categories[c] == nil {
            var cache = categories
            _ = try chunk(&cache, c, .categories(chunk: c), tables.categories, txn)
            categories = cache
        }
    }

    /// Copies slot `from`'s row, id and category into slot `to`, or clears `to` when `from` is nil.
    private mutating func setSlot(_ to: Int, row: [Float], id: UInt64, category: UInt32,
                                  _ txn: borrowing WriteTransaction) throws {
        let d = dimension
        let (rc, ro) = to.quotientAndRemainder(dividingBy: rowsPerChunk)
        try loadRows(rc, txn)
        rows[rc]!.replaceSubrange(ro * d ..< (ro + 1) * d, with: row)
        let (ic, io) = to.quotientAndRemainder(dividingBy: itemsPerChunk)
        try loadIDs(ic, txn)
        ids[ic]![io] = id
        if header.hasCategories {
            let (cc, co) = to.quotientAndRemainder(dividingBy: fourPerChunk)
            try loadCategories(cc, txn)
            categories[cc]![co] = category
        }
    }

    private mutating func readSlot(_ slot: Int, _ txn: borrowing WriteTransaction) throws -> (row: [Float], id: UInt64, category: UInt32) {
        let d = dimension
        let (rc, ro) = slot.quotientAndRemainder(dividingBy: rowsPerChunk)
        try loadRows(rc, txn)
        let row = Array(rows[rc]![ro * d ..< (ro + 1) * d])
        let (ic, io) = slot.quotientAndRemainder(dividingBy: itemsPerChunk)
        try loadIDs(ic, txn)
        var category: UInt32 = 0
        if header.hasCategories {
            let (cc, co) = slot.quotientAndRemainder(dividingBy: fourPerChunk)
            try loadCategories(cc, txn)
            category = categories[cc]![co]
        }
        return (row, ids[ic]![io], category)
    }

    // MARK: Changes

    /// Frees `id`'s slot: the last live item of its leaf parent moves into it.
    mutating func remove(_ id: ItemID, _ txn: borrowing WriteTransaction) throws {
        guard let slot = try slot(of: id, txn) else { throw ArborError.unknownItem(id) }
        let p = parent(of: slot)
        let last = Int(ends[p]) - 1
        guard slot <= last else {
            throw IndexError.corruptValue(path: path, table: IndexFormat.itemsTable, key: "item \(id)",
                                          reason: "slot \(slot) is not live")
        }
        if slot != last {
            let moved = try readSlot(last, txn)
            try setSlot(slot, row: moved.row, id: moved.id, category: moved.category, txn)
            try txn.put(tables.items, moved.id, UInt64(slot))
        }
        try setSlot(last, row: [Float](repeating: 0, count: dimension), id: IndexFormat.freeSlot, category: 0, txn)
        ends[p] -= 1
        dirtyEnds.insert(p / fourPerChunk)
        _ = try txn.delete(tables.items, id.rawValue)
    }

    /// Puts `id` into the first free slot of leaf parent `parent` (which has room).
    mutating func add(_ id: ItemID, vector: ArraySlice<Float>, category: UInt32, below parent: Int32,
                      _ txn: borrowing WriteTransaction) throws {
        let p = Int(parent)
        let slot = Int(ends[p])
        try setSlot(slot, row: Array(vector), id: id.rawValue, category: category, txn)
        ends[p] += 1
        dirtyEnds.insert(p / fourPerChunk)
        try txn.put(tables.items, id.rawValue, UInt64(slot))
    }

    /// Writes every touched chunk and its checksum.
    func writeBack(_ txn: inout WriteTransaction) throws {
        func put<T: StorableScalar>(_ value: LargeValue, _ table: Table, _ payload: [T]) throws {
            try txn.put(table, value.key, payload)
            try txn.put(tables.checksums, value.checksumKey,
                        [UInt64(payload.count * MemoryLayout<T>.stride), FNV1a64.checksum(of: payload)])
        }
        let depth = header.depth
        for (c, chunk) in rows { try put(.embeddings(level: depth, chunk: c), tables.levels, chunk) }
        for (c, chunk) in ids { try put(.leafItems(chunk: c), tables.leafItems, chunk) }
        for (c, chunk) in categories { try put(.categories(chunk: c), tables.categories, chunk) }
        for c in dirtyEnds {
            let lo = c * fourPerChunk, hi = min(ends.count, lo + fourPerChunk)
            try put(.childEnds(level: depth - 1, chunk: c), tables.levels, Array(ends[lo ..< hi]))
        }
    }
}
