import ArborStore

extension IndexReader {
    /// Elements per chunk of each chunked array, from the header.
    struct ChunkGeometry {
        let rowsPerChunk: Int, offsetsPerChunk: Int, itemsPerChunk: Int, categoriesPerChunk: Int, floatsPerChunk: Int
        init(_ header: IndexHeader) {
            rowsPerChunk = IndexFormat.perChunk(elementBytes: header.dimension * 4, chunkBytes: header.chunkBytes)
            offsetsPerChunk = IndexFormat.perChunk(elementBytes: 4, chunkBytes: header.chunkBytes)
            itemsPerChunk = IndexFormat.perChunk(elementBytes: 8, chunkBytes: header.chunkBytes)
            categoriesPerChunk = offsetsPerChunk
            floatsPerChunk = offsetsPerChunk
        }
    }

    var geometry: ChunkGeometry { ChunkGeometry(header) }

    /// Every large value the header implies, with its expected size in bytes.
    func expectedValues() -> [(value: LargeValue, bytes: Int)] {
        let g = geometry, d = dimension
        var out: [(LargeValue, Int)] = []
        func add(_ count: Int, _ per: Int, _ elementBytes: Int, _ make: (Int) -> LargeValue) {
            for (c, r) in chunkRanges(count: count, perChunk: per).enumerated() { out.append((make(c), r.count * elementBytes)) }
        }
        for (l, n) in levelNodeCounts.enumerated() {
            add(n, g.rowsPerChunk, d * 4) { .embeddings(level: l, chunk: $0) }
            add(l == depth ? 0 : n + 1, g.offsetsPerChunk, 4) { .childOffsets(level: l, chunk: $0) }
            if header.isUpdatable && l == depth - 1 { add(n, g.offsetsPerChunk, 4) { .childEnds(level: l, chunk: $0) } }
        }
        let slots = header.leafSlots
        add(slots, g.itemsPerChunk, 8) { .leafItems(chunk: $0) }
        if hasCategories { add(slots, g.categoriesPerChunk, 4) { .categories(chunk: $0) } }
        for t in header.tensors { add(t.count, g.floatsPerChunk, 4) { .tensor(name: t.name, chunk: $0) } }
        for name in extraNames { out.append((.extra(name: name), -1)) }
        return out
    }

    /// Copies a chunked array of `count` elements (`perChunk` per chunk) out of the map,
    /// checking each chunk's size and checksum.
    func loadChunked<T: StorableScalar>(_ txn: borrowing ReadTransaction, count: Int, perChunk: Int, zero: T,
                                        _ key: (Int) -> LargeValue) throws -> [T] {
        var out = [T](repeating: zero, count: count)
        for (c, range) in chunkRanges(count: count, perChunk: perChunk).enumerated() {
            let value = key(c)
            try readLarge(txn, value, verify: true) { view in
                guard view.count == range.count * MemoryLayout<T>.stride else {
                    throw IndexError.corruptValue(path: path, table: value.table, key: value.label,
                                                  reason: "\(view.count) bytes, expected \(range.count * MemoryLayout<T>.stride)")
                }
                view.copyElements(into: &out, at: range.lowerBound)
            }
        }
        return out
    }

    /// Copies the whole tree into memory, checking every checksum on the way. A format 3 file's
    /// free leaf slots are left out (the tree as last committed, compacted).
    /// - Throws: ``IndexError/checksumMismatch(path:table:key:)`` or ``IndexError/corruptValue(path:table:key:reason:)``;
    ///   ``IndexError/corruptValue(path:table:key:reason:)`` also when updates left a leaf parent
    ///   with no item or more than 64 (a valid file, but not a valid in-memory tree: rebuild it).
    /// - Complexity: O(file size); allocates the whole tree.
    public func loadLayout() throws(IndexError) -> TreeLayout {
        let g = geometry, d = dimension
        let layout = try reading { txn in
            let slotted = try loadSlotted(txn)
            var levels: [TreeLevel] = []
            for (l, n) in levelNodeCounts.enumerated() {
                let values = try loadChunked(txn, count: n * d, perChunk: g.rowsPerChunk * d, zero: Float(0)) {
                    .embeddings(level: l, chunk: $0)
                }
                let offsets = try loadChunked(txn, count: l == depth ? 0 : n + 1, perChunk: g.offsetsPerChunk,
                                              zero: Int32(0)) { .childOffsets(level: l, chunk: $0) }
                levels.append(TreeLevel(embeddings: try Matrix(rows: n, cols: d, values: values), childOffsets: offsets))
            }
            let slots = header.leafSlots
            var items = try loadChunked(txn, count: slots, perChunk: g.itemsPerChunk, zero: UInt64(0)) {
                .leafItems(chunk: $0)
            }
            var categories = hasCategories
                ? try loadChunked(txn, count: slots, perChunk: g.categoriesPerChunk, zero: UInt32(0)) { .categories(chunk: $0) }
                : []
            if let slotted {
                // Compact: each leaf parent's live slots, in order.
                let p = depth - 1
                let offsets = levels[p].childOffsets
                var kept: [Int] = [], newOffsets: [Int32] = [0]
                for node in 0 ..< levels[p].nodeCount {
                    let live = Int(offsets[node]) ..< min(Int(slotted[node]), Int(offsets[node + 1]))
                    guard !live.isEmpty else {
                        throw IndexError.corruptValue(path: path, table: IndexFormat.levelsTable, key: "level \(p) node \(node)",
                                                      reason: "updates removed all its items; rebuild the index to load its tree")
                    }
                    kept.append(contentsOf: live)
                    newOffsets.append(Int32(kept.count))
                }
                levels[p].childOffsets = newOffsets
                let leaves = levels[depth].embeddings
                var values = [Float](); values.reserveCapacity(kept.count * d)
                for slot in kept { values.append(contentsOf: leaves.row(slot)) }
                levels[depth] = TreeLevel(embeddings: try Matrix(rows: kept.count, cols: d, values: values), childOffsets: [])
                items = kept.map { items[$0] }
                if hasCategories { categories = kept.map { categories[$0] } }
            }
            // Additions may have given a leaf parent more than `fanOut` children (up to
            // `fanOut + leafSlack`): the in-memory tree states the largest.
            var widest = fanOut
            if slotted != nil, depth >= 1 {
                let o = levels[depth - 1].childOffsets
                for p in 0 ..< levels[depth - 1].nodeCount { widest = max(widest, Int(o[p + 1] - o[p])) }
            }
            return TreeLayout(dimension: d, fanOut: min(64, widest), levels: levels,
                              leafItems: items.map(ItemID.init(rawValue:)), leafCategories: categories)
        }
        do {
            try layout.validate()
        } catch {
            throw .corruptValue(path: path, table: IndexFormat.levelsTable, key: "tree", reason: error.description)
        }
        return layout
    }

    /// The leaf embeddings (`items × dimension`, row-major) and the item of each row, copied out
    /// of one consistent snapshot with checksums checked: row `j` is leaf `j` of a file never
    /// updated; a format 3 file's free slots are skipped (rows in slot order).
    /// O(leafSlots · dimension).
    public func loadLeafMatrix() throws(IndexError) -> (Matrix, [ItemID]) {
        let g = geometry, d = dimension, n = header.leafSlots, leafLevel = depth
        return try reading { txn in
            var values = try loadChunked(txn, count: n * d, perChunk: g.rowsPerChunk * d, zero: Float(0)) {
                .embeddings(level: leafLevel, chunk: $0)
            }
            var items = try loadChunked(txn, count: n, perChunk: g.itemsPerChunk, zero: UInt64(0)) { .leafItems(chunk: $0) }
            if items.contains(IndexFormat.freeSlot) {
                var w = 0
                for r in 0 ..< n where items[r] != IndexFormat.freeSlot {
                    if w != r {
                        items[w] = items[r]
                        for c in 0 ..< d { values[w * d + c] = values[r * d + c] }
                    }
                    w += 1
                }
                items.removeLast(n - w)
                values.removeLast((n - w) * d)
            }
            return (try Matrix(rows: items.count, cols: d, values: values), items.map(ItemID.init(rawValue:)))
        }
    }

    /// Format 3: the child ends of the leaf parents (`nil` before format 3).
    func loadSlotted(_ txn: borrowing ReadTransaction) throws -> [Int32]? {
        guard header.isUpdatable else { return nil }
        let l = depth - 1
        return try loadChunked(txn, count: levelNodeCounts[l], perChunk: geometry.offsetsPerChunk, zero: Int32(0)) {
            .childEnds(level: l, chunk: $0)
        }
    }

    /// The stored tensor `name`, with its chunk checksums and digest checked.
    /// - Throws: ``IndexError/tensorNotFound(path:name:)``, ``IndexError/checksumMismatch(path:table:key:)``.
    public func tensor(named name: String) throws(IndexError) -> NamedTensor {
        guard let info = header.tensors.first(where: { $0.name == name }) else {
            throw .tensorNotFound(path: path, name: name)
        }
        let per = geometry.floatsPerChunk
        let values = try reading { txn in
            try loadChunked(txn, count: info.count, perChunk: per, zero: Float(0)) { .tensor(name: name, chunk: $0) }
        }
        let tensor = NamedTensor(name: name, shape: info.shape, values: values)
        guard tensor.digest == info.digest else {
            throw .checksumMismatch(path: path, table: IndexFormat.tensorsTable, key: "tensor '\(name)' digest")
        }
        return tensor
    }

    /// Reads every large value and checks its size and checksum, then checks that the item map
    /// and the leaf order agree. Use it after copying a file or when a query misbehaves.
    /// - Throws: the first ``IndexError/checksumMismatch(path:table:key:)`` or
    ///   ``IndexError/corruptValue(path:table:key:reason:)`` found.
    /// - Complexity: O(file size + itemCount · log itemCount).
    public func verify() throws(IndexError) {
        let expected = expectedValues()
        let path = self.path
        try reading { txn in
            // LMDB trusts its pages: check their structure first (with this read transaction
            // open, so that a concurrent update cannot reuse the pages being checked).
            try Environment.checkPages(path: path)
            for (value, bytes) in expected {
                try readLarge(txn, value, verify: true) { view in
                    guard bytes < 0 || view.count == bytes else {
                        throw IndexError.corruptValue(path: path, table: value.table, key: value.label,
                                                      reason: "\(view.count) bytes, expected \(bytes)")
                    }
                }
            }
            let levelValues = expected.filter { $0.value.table == IndexFormat.levelsTable }.count
            let stored = try txn.count(tables.levels)
            guard stored == levelValues else {
                throw IndexError.corruptValue(path: path, table: IndexFormat.levelsTable, key: "all",
                                              reason: "\(stored) values, expected \(levelValues)")
            }
            // The header, item map, slot table and child ends of one committed state.
            let current = try currentHeader(in: txn, path: path)
            let mapped = try txn.count(tables.items)
            guard mapped == current.itemCount else {
                throw IndexError.corruptValue(path: path, table: IndexFormat.itemsTable, key: "all",
                                              reason: "\(mapped) items, expected \(current.itemCount)")
            }
            let slots = header.leafSlots
            let items = try loadChunked(txn, count: slots, perChunk: geometry.itemsPerChunk, zero: UInt64(0)) {
                .leafItems(chunk: $0)
            }
            var live = [Bool](repeating: true, count: slots)
            if let ends = try loadSlotted(txn) {
                let l = depth - 1
                let offsets = try loadChunked(txn, count: levelNodeCounts[l] + 1, perChunk: geometry.offsetsPerChunk,
                                              zero: Int32(0)) { .childOffsets(level: l, chunk: $0) }
                for p in 0 ..< levelNodeCounts[l] {
                    let lo = Int(offsets[p]), hi = Int(offsets[p + 1]), end = Int(ends[p])
                    guard 0 <= lo, lo <= end, end <= hi, hi <= slots else {
                        throw IndexError.corruptValue(path: path, table: IndexFormat.levelsTable, key: "level \(l) node \(p)",
                                                      reason: "child end \(end) outside its slots \(lo)..<\(hi)")
                    }
                    for slot in end ..< hi { live[slot] = false }
                }
            }
            var liveCount = 0
            for (slot, id) in items.enumerated() {
                guard live[slot] == (id != IndexFormat.freeSlot) else {
                    throw IndexError.corruptValue(path: path, table: IndexFormat.leafItemsTable, key: "slot \(slot)",
                                                  reason: live[slot] ? "a live slot holds no item" : "a free slot holds item \(id)")
                }
                guard live[slot] else { continue }
                liveCount += 1
                let found = try leaf(of: ItemID(id), in: txn)
                guard found == slot else {
                    throw IndexError.corruptValue(path: path, table: IndexFormat.itemsTable, key: "item \(id)",
                                                  reason: "does not map back to leaf \(slot)")
                }
            }
            guard liveCount == current.itemCount else {
                throw IndexError.corruptValue(path: path, table: IndexFormat.leafItemsTable, key: "all",
                                              reason: "\(liveCount) live slots, the header says \(current.itemCount) items")
            }
        }
    }
}
