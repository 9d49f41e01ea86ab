import ArborStore

/// A consistent, zero-copy view of an index file for one query or one batch: a ``TreeView``
/// whose embeddings, child offsets and leaf items are read in place from the memory map.
///
/// Lifetime: lent by ``IndexReader/withView(_:)`` and valid only inside that closure (it points into
/// a read transaction that ends when the closure returns); never store or return it.
/// Use it from one thread; run one ``IndexReader/withView(_:)`` per thread for parallel queries.
/// (The reader keeps the chunk table of the last snapshot for reuse by later transactions that see
/// the same committed data; that is why the type is `Sendable`. Its addresses are only read while a
/// transaction of that snapshot id is open, which keeps the pages they point to in place.)
///
/// Damaged files: chunk sizes are checked when the snapshot starts, so reads stay inside the map;
/// child ranges are clamped to the next level. Checksums are not checked per query (use
/// ``IndexReader/verify()``).
public struct IndexSnapshot: TreeView, @unchecked Sendable {
    /// Index of the leaf level (root = 0).
    public let depth: Int
    /// Embedding width.
    public let dimension: Int
    let nodeCounts: [Int]
    let embeddings: [MappedArray]
    let offsets: [MappedArray]
    /// Format 3: the end of each leaf parent's live slots (level `depth - 1`); `nil` before.
    let childEnds: MappedArray?
    let leafItems: MappedArray
    let categories: MappedArray?

    /// Finds the chunks of every level with one cursor walk over `levels` plus one over `leafItems`
    /// (and `categories`), and checks their sizes. Cost: O(number of chunks), independent of queries.
    init(_ txn: borrowing ReadTransaction, reader: IndexReader) throws {
        let header = reader.header, path = reader.path
        let g = reader.geometry, d = header.dimension, depth = header.depth, nodeCounts = header.levelNodeCounts
        self.depth = depth
        dimension = d
        self.nodeCounts = nodeCounts
        var levelChunks = [[ValueView]](repeating: [], count: 3 * (depth + 1))
        try txn.withCursor(reader.tables.levels) { cursor in
            while let entry = try cursor.next() {
                guard let raw = entry.key.bigEndianUInt64 else {
                    throw IndexError.corruptValue(path: path, table: IndexFormat.levelsTable, key: "key",
                                                  reason: "a key of \(entry.key.count) bytes")
                }
                let (level, kind, chunk) = LargeValue.decodeLevelKey(raw)
                guard level <= depth, kind <= 2, chunk == levelChunks[3 * level + kind].count else {
                    throw IndexError.corruptValue(path: path, table: IndexFormat.levelsTable,
                                                  key: "level \(level) kind \(kind) chunk \(chunk)", reason: "unexpected key")
                }
                levelChunks[3 * level + kind].append(entry.value)
            }
        }
        func mapped(_ views: [ValueView], _ elementBytes: Int, _ per: Int, _ count: Int, _ table: String,
                    _ label: (Int) -> LargeValue) throws -> MappedArray {
            do {
                return try MappedArray(chunks: views, elementBytes: elementBytes, elementsPerChunk: per, count: count)
            } catch {
                let key = error.chunk < views.count ? label(error.chunk).label : "chunk count"
                throw IndexError.corruptValue(path: path, table: table, key: key,
                                              reason: "\(error.found) bytes or chunks, expected \(error.expected)")
            }
        }
        var embeddings: [MappedArray] = []
        var offsets: [MappedArray] = []
        for l in 0...depth {
            let n = nodeCounts[l]
            embeddings.append(try mapped(levelChunks[3 * l], d * 4, g.rowsPerChunk, n, IndexFormat.levelsTable) {
                .embeddings(level: l, chunk: $0)
            })
            offsets.append(try mapped(levelChunks[3 * l + 1], 4, g.offsetsPerChunk, l == depth ? 0 : n + 1,
                                      IndexFormat.levelsTable) { .childOffsets(level: l, chunk: $0) })
        }
        self.embeddings = embeddings
        self.offsets = offsets
        if header.isUpdatable {
            let l = depth - 1
            childEnds = try mapped(levelChunks[3 * l + 2], 4, g.offsetsPerChunk, nodeCounts[l], IndexFormat.levelsTable) {
                .childEnds(level: l, chunk: $0)
            }
        } else {
            for l in 0...depth where !levelChunks[3 * l + 2].isEmpty {
                throw IndexError.corruptValue(path: path, table: IndexFormat.levelsTable, key: "level \(l) child ends",
                                              reason: "format \(header.formatVersion) has no child ends")
            }
            childEnds = nil
        }
        func walk(_ table: Table) throws -> [ValueView] {
            try txn.withCursor(table) { cursor in
                var views: [ValueView] = []
                while let entry = try cursor.next() { views.append(entry.value) }
                return views
            }
        }
        let n = header.leafSlots
        leafItems = try mapped(walk(reader.tables.leafItems), 8, g.itemsPerChunk, n, IndexFormat.leafItemsTable) {
            .leafItems(chunk: $0)
        }
        categories = header.hasCategories
            ? try mapped(walk(reader.tables.categories), 4, g.categoriesPerChunk, n, IndexFormat.categoriesTable) {
                .categories(chunk: $0)
            }
            : nil
    }

    /// Number of nodes on `level`. O(1).
    public func nodeCount(level: Int) -> Int { nodeCounts[level] }

    /// The children of `node` on `level < depth`, as indices on `level + 1`. O(1): two unaligned
    /// loads from the mapped offsets; clamped to the next level's nodes. For a leaf parent of a
    /// format 3 file: its live slots only (three loads).
    public func children(of node: Int, level: Int) -> Range<Int> {
        let table = offsets[level]
        let next = nodeCounts[level + 1]
        let lo = min(max(0, Int(table.integer(at: node, as: Int32.self))), next)
        var hi = min(max(lo, Int(table.integer(at: node + 1, as: Int32.self))), next)
        if level == depth - 1, let ends = childEnds {
            // Format 3: only the live slots of a leaf parent.
            hi = min(max(lo, Int(ends.integer(at: node, as: Int32.self))), hi)
        }
        return lo ..< hi
    }

    /// Copies the embeddings of `nodes` (on `level`) into `output`, one memcpy per row from the
    /// map; `output` is resized to `nodes.count` rows and keeps its capacity. O(count · dimension).
    /// - Precondition: `output.cols == dimension`; every node index is on the level.
    public func gatherEmbeddings(level: Int, nodes: [Int32], into output: inout Matrix) {
        precondition(output.cols == dimension, "gather: output has \(output.cols) columns, tree \(dimension)")
        embeddings[level].gatherRows(nodes, into: &output)
    }

    /// Lends the embeddings of the contiguous `nodes` on `level` from the map, one piece per stored
    /// chunk the range touches (see ``MappedArray/forEachFloatRun(_:scratch:_:)``). O(pieces).
    public func forEachEmbeddingRun(level: Int, nodes: Range<Int>, scratch: inout [Float],
                                    _ body: (Int, UnsafeBufferPointer<Float>) -> Void) {
        embeddings[level].forEachFloatRun(nodes, scratch: &scratch, body)
    }

    /// Calls `body` once per stored chunk of `level`'s embeddings with the chunk's node range and
    /// its `range.count × dimension` values (row-major), zero-copy when aligned (see
    /// ``MappedArray/forEachFloatChunk(_:)``): a level scan is one GEMM per chunk (16 MiB by
    /// default). The buffer is valid only inside `body`.
    public func forEachEmbeddingChunk(level: Int, _ body: (Range<Int>, UnsafeBufferPointer<Float>) throws -> Void) rethrows {
        try embeddings[level].forEachFloatChunk(body)
    }

    /// The item held by leaf `leaf`. O(1).
    public func item(atLeaf leaf: Int) -> ItemID {
        ItemID(leafItems.integer(at: leaf, as: UInt64.self))
    }

    /// The category of the item at leaf `leaf`, or `nil` when the index stores none. O(1).
    public func category(atLeaf leaf: Int) -> UInt32? {
        categories?.integer(at: leaf, as: UInt32.self)
    }
}

extension IndexReader: TreeSource {
    /// The zero-copy snapshot lent by ``withView(_:)``.
    public typealias View = IndexSnapshot

    /// Calls `body` with a consistent zero-copy snapshot of the index (one short read transaction
    /// plus a walk over the chunk keys). The snapshot must not escape `body`. Safe to call from
    /// many threads at once.
    /// - Throws: ``IndexError`` if the file's chunks do not match its header, or what `body` throws.
    public func withView<R>(_ body: (borrowing IndexSnapshot) throws -> R) throws -> R {
        try withView(leavesOf: []) { view, _ in try body(view) }
    }

    /// ``withView(_:)`` that also looks up the leaves of `items` (`nil` for an item the index lacks)
    /// in the same read transaction: while an ``IndexUpdater`` commits batches (which may move an
    /// item to another slot), the leaves and the view belong to one committed state.
    public func withView<R>(leavesOf items: [ItemID], _ body: (borrowing IndexSnapshot, [Int?]) throws -> R) throws -> R {
        let txn: ReadTransaction
        do { txn = try environment.beginRead() } catch { throw IndexError(error) }
        // Addresses into the map depend only on the committed data a transaction sees: a snapshot
        // built for the same LMDB snapshot id is reused. An update (``IndexUpdater``) commits a new
        // snapshot id, so the next transaction rebuilds the table from its own committed chunks.
        let id = txn.snapshotID
        let snapshot: IndexSnapshot
        if let cached = cachedSnapshot.withLock({ $0 }), cached.id == id {
            snapshot = cached.snapshot
        } else {
            do {
                snapshot = try IndexSnapshot(txn, reader: self)
            } catch let error as StoreError {
                throw IndexError(error)
            }
            cachedSnapshot.withLock { $0 = (id, snapshot) }
        }
        var leaves: [Int?] = []
        leaves.reserveCapacity(items.count)
        do {
            for item in items { leaves.append(try leaf(of: item, in: txn)) }
        } catch let error as StoreError {
            throw IndexError(error)
        }
        let result = try body(snapshot, leaves)
        // End the transaction explicitly after `body`: the snapshot points into it.
        txn.end()
        return result
    }
}
