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
        }
        add(itemCount, g.itemsPerChunk, 8) { .leafItems(chunk: $0) }
        if hasCategories { add(itemCount, g.categoriesPerChunk, 4) { .categories(chunk: $0) } }
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

    /// Copies the whole tree into memory, checking every checksum on the way.
    /// - Throws: ``IndexError/checksumMismatch(path:table:key:)`` or ``IndexError/corruptValue(path:table:key:reason:)``.
    /// - Complexity: O(file size); allocates the whole tree.
    public func loadLayout() throws(IndexError) -> TreeLayout {
        let g = geometry, d = dimension
        let layout = try reading { txn in
            var levels: [TreeLevel] = []
            for (l, n) in levelNodeCounts.enumerated() {
                let values = try loadChunked(txn, count: n * d, perChunk: g.rowsPerChunk * d, zero: Float(0)) {
                    .embeddings(level: l, chunk: $0)
                }
                let offsets = try loadChunked(txn, count: l == depth ? 0 : n + 1, perChunk: g.offsetsPerChunk,
                                              zero: Int32(0)) { .childOffsets(level: l, chunk: $0) }
                levels.append(TreeLevel(embeddings: try Matrix(rows: n, cols: d, values: values), childOffsets: offsets))
            }
            let items = try loadChunked(txn, count: itemCount, perChunk: g.itemsPerChunk, zero: UInt64(0)) {
                .leafItems(chunk: $0)
            }
            let categories = hasCategories
                ? try loadChunked(txn, count: itemCount, perChunk: g.categoriesPerChunk, zero: UInt32(0)) { .categories(chunk: $0) }
                : []
            return TreeLayout(dimension: d, fanOut: fanOut, levels: levels, leafItems: items.map(ItemID.init(rawValue:)),
                              leafCategories: categories)
        }
        do {
            try layout.validate()
        } catch {
            throw .corruptValue(path: path, table: IndexFormat.levelsTable, key: "tree", reason: error.description)
        }
        return layout
    }

    /// The leaf embeddings (`itemCount × dimension`, row-major, row `j` = leaf `j`) and the item
    /// at each leaf, copied out with checksums checked. O(itemCount · dimension).
    public func loadLeafMatrix() throws(IndexError) -> (Matrix, [ItemID]) {
        let g = geometry, d = dimension, n = itemCount, leafLevel = depth
        return try reading { txn in
            let values = try loadChunked(txn, count: n * d, perChunk: g.rowsPerChunk * d, zero: Float(0)) {
                .embeddings(level: leafLevel, chunk: $0)
            }
            let items = try loadChunked(txn, count: n, perChunk: g.itemsPerChunk, zero: UInt64(0)) { .leafItems(chunk: $0) }
            return (try Matrix(rows: n, cols: d, values: values), items.map(ItemID.init(rawValue:)))
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
            let mapped = try txn.count(tables.items)
            guard mapped == itemCount else {
                throw IndexError.corruptValue(path: path, table: IndexFormat.itemsTable, key: "all",
                                              reason: "\(mapped) items, expected \(itemCount)")
            }
        }
        let (_, items) = try loadLeafMatrixItemsOnly()
        for (leaf, found) in try leaves(of: items).enumerated() where found != leaf {
            throw .corruptValue(path: path, table: IndexFormat.itemsTable, key: "item \(items[leaf])",
                                reason: "does not map back to leaf \(leaf)")
        }
    }

    private func loadLeafMatrixItemsOnly() throws(IndexError) -> (Void, [ItemID]) {
        let per = geometry.itemsPerChunk, n = itemCount
        let items = try reading { txn in
            try loadChunked(txn, count: n, perChunk: per, zero: UInt64(0)) { .leafItems(chunk: $0) }
        }
        return ((), items.map(ItemID.init(rawValue:)))
    }
}
