import ArborStore

/// Writes a tree, its model's weights and free extra values into an index file (format
/// ``IndexFormat/version``).
///
/// A write validates everything first (nothing is written on bad input), builds a new environment at
/// `<path>.tmp-<pid>` in one write transaction, flushes it and renames it over `path`. If the
/// write fails or is cancelled, the temporary file is removed and an existing index at `path`
/// stays as it was; readers of the old file are never blocked.
///
/// Extra values: other modules (e.g. an HNSW graph) store their payloads as named byte strings in
/// the `extra` table through the `extra` argument, checksummed like every large value, and read them
/// back with ``IndexReader/extra(named:)`` or zero-copy with ``IndexReader/withExtra(named:_:)``.
/// Each is one LMDB value (under 4 GiB); encode numbers little-endian.
public struct IndexWriter: Sendable {
    /// Largest chunk of a chunked array in bytes (default 16 MiB, at least 64). Smaller chunks only
    /// matter for tests; a row of embeddings is never split.
    public var chunkBytes: Int
    /// The format version written into the header. Internal: tests write other versions.
    var formatVersion: Int = IndexFormat.version

    /// A writer with the given chunk size.
    public init(chunkBytes: Int = IndexFormat.defaultChunkBytes) {
        self.chunkBytes = chunkBytes
    }

    /// Writes `layout` (and `tensors`, `extra`) to `path`, replacing any index there atomically.
    ///
    /// - Parameters:
    ///   - layout: the tree; checked with ``TreeLayout/validate()`` first.
    ///   - tensors: model weights, unique names; each checked with ``NamedTensor/validate()``.
    ///   - scorerKind: the scorer the tree serves (recorded in the header).
    ///   - encoderKind: the query encoder (recorded in the header).
    ///   - extra: named byte strings for other modules (names as for tensors).
    ///   - path: the index file (conventionally `name.arbor`).
    ///   - progress: receives `write index` progress in bytes.
    ///   - cancellation: checked before each chunk; once set, the write stops.
    /// - Returns: the header written.
    /// - Throws: ``ArborError`` for invalid input (nothing written), `CancellationError` when
    ///   cancelled, ``IndexError`` when the file cannot be written. In every case `path` is unchanged.
    /// - Complexity: O(size of the data + itemCount · log itemCount).
    @discardableResult
    public func write(
        layout: TreeLayout, tensors: [NamedTensor] = [], scorerKind: String = "inner-product",
        encoderKind: String = "none", extra: [String: [UInt8]] = [:], to path: String,
        progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil
    ) throws -> IndexHeader {
        try validate(layout: layout, tensors: tensors, extra: extra)
        try cancellation?.check()
        let header = IndexHeader(
            formatVersion: formatVersion, dimension: layout.dimension, fanOut: layout.fanOut,
            itemCount: layout.itemCount, levelNodeCounts: layout.levels.map(\.nodeCount),
            hasCategories: !layout.leafCategories.isEmpty, scorerKind: scorerKind, encoderKind: encoderKind,
            chunkBytes: chunkBytes, tensors: tensors.map { TensorInfo(name: $0.name, shape: $0.shape, digest: $0.digest) },
            extraNames: extra.keys.sorted())
        let plan = SizePlan(layout: layout, tensors: tensors, extra: extra, chunkBytes: chunkBytes)
        do {
            try Environment.replaceAtomically(path: path, mapSize: plan.mapSize, maxTables: IndexFormat.tableCount + 2) { env in
                try env.write { txn in
                    var sink = try ChunkSink(txn: &txn, progress: progress, cancellation: cancellation, totalBytes: plan.dataBytes)
                    try writeLevels(layout, &sink, &txn)
                    try writeItems(layout, &sink, &txn)
                    try writeTensors(tensors, &sink, &txn)
                    for name in header.extraNames {
                        try sink.put(&txn, .extra(name: name), extra[name]!)
                    }
                    let meta = try txn.createTable(IndexFormat.metaTable)
                    try txn.put(meta, IndexFormat.headerKey, header.encoded())
                }
            }
        } catch let error as StoreError {
            throw IndexError(error)
        }
        progress.finish(task: "write index")
        return header
    }

    private func validate(layout: TreeLayout, tensors: [NamedTensor], extra: [String: [UInt8]]) throws(ArborError) {
        try layout.validate()
        guard chunkBytes >= 64 else {
            throw .invalidArgument(name: "chunkBytes", reason: "must be at least 64, got \(chunkBytes)")
        }
        var names = Set<String>()
        for t in tensors {
            try t.validate()
            guard names.insert(t.name).inserted else {
                throw .invalidArgument(name: "tensors", reason: "the name '\(t.name)' appears twice")
            }
        }
        for name in extra.keys {
            let bytes = name.utf8.count
            guard bytes >= 1, bytes <= IndexFormat.maxNameBytes, !name.utf8.contains(0) else {
                throw .invalidArgument(name: "extra name '\(name)'",
                                       reason: "must be 1 to \(IndexFormat.maxNameBytes) UTF-8 bytes without NUL")
            }
        }
    }

    private func writeLevels(_ layout: TreeLayout, _ sink: inout ChunkSink, _ txn: inout WriteTransaction) throws {
        let d = layout.dimension
        let rowsPer = IndexFormat.perChunk(elementBytes: d * 4, chunkBytes: chunkBytes)
        let offsetsPer = IndexFormat.perChunk(elementBytes: 4, chunkBytes: chunkBytes)
        for (l, level) in layout.levels.enumerated() {
            let values = level.embeddings.values
            for (c, range) in chunkRanges(count: level.nodeCount, perChunk: rowsPer).enumerated() {
                try sink.put(&txn, .embeddings(level: l, chunk: c), values[range.lowerBound * d ..< range.upperBound * d])
            }
            for (c, range) in chunkRanges(count: level.childOffsets.count, perChunk: offsetsPer).enumerated() {
                try sink.put(&txn, .childOffsets(level: l, chunk: c), level.childOffsets[range])
            }
        }
    }

    private func writeItems(_ layout: TreeLayout, _ sink: inout ChunkSink, _ txn: inout WriteTransaction) throws {
        let ids = layout.leafItems.map(\.rawValue)
        let per = IndexFormat.perChunk(elementBytes: 8, chunkBytes: chunkBytes)
        for (c, range) in chunkRanges(count: ids.count, perChunk: per).enumerated() {
            try sink.put(&txn, .leafItems(chunk: c), ids[range])
        }
        if !layout.leafCategories.isEmpty {
            let per = IndexFormat.perChunk(elementBytes: 4, chunkBytes: chunkBytes)
            for (c, range) in chunkRanges(count: layout.leafCategories.count, perChunk: per).enumerated() {
                try sink.put(&txn, .categories(chunk: c), layout.leafCategories[range])
            }
        } else {
            _ = try txn.createTable(IndexFormat.categoriesTable)
        }
        // item id -> leaf, appended in key order (B-tree pages filled completely).
        let items = try txn.createTable(IndexFormat.itemsTable)
        let order = ids.indices.sorted { ids[$0] < ids[$1] }
        for (n, leaf) in order.enumerated() {
            if n & 0xFFF == 0 { try sink.tick(bytes: 0) }
            try txn.put(items, ids[leaf], UInt64(leaf), append: true)
        }
        try sink.tick(bytes: ids.count * 16)
    }

    private func writeTensors(_ tensors: [NamedTensor], _ sink: inout ChunkSink, _ txn: inout WriteTransaction) throws {
        _ = try txn.createTable(IndexFormat.tensorsTable)
        let per = IndexFormat.perChunk(elementBytes: 4, chunkBytes: chunkBytes)
        for t in tensors {
            for (c, range) in chunkRanges(count: t.values.count, perChunk: per).enumerated() {
                try sink.put(&txn, .tensor(name: t.name, chunk: c), t.values[range])
            }
        }
    }
}

/// `0 ..< count` cut into ranges of `perChunk` (the last one shorter).
func chunkRanges(count: Int, perChunk: Int) -> [Range<Int>] {
    stride(from: 0, to: count, by: perChunk).map { $0 ..< min(count, $0 + perChunk) }
}

/// How big the new environment must be.
struct SizePlan {
    let dataBytes: Int
    let mapSize: Int

    init(layout: TreeLayout, tensors: [NamedTensor], extra: [String: [UInt8]], chunkBytes: Int) {
        var bytes = 0
        var values = 0
        for level in layout.levels {
            bytes += level.embeddings.values.count * 4 + level.childOffsets.count * 4
            values += 2 + (level.embeddings.values.count * 4 + level.childOffsets.count * 4) / chunkBytes
        }
        bytes += layout.itemCount * (8 + 4 + 16)
        values += 2 + layout.itemCount * 12 / chunkBytes
        for t in tensors { bytes += t.values.count * 4; values += 1 + t.values.count * 4 / chunkBytes }
        for (_, v) in extra { bytes += v.count; values += 1 }
        dataBytes = bytes
        // Overflow pages round each value up to a page; the items B-tree takes about 64 bytes an
        // item; checksums, tables and the free list fit in the margin.
        let estimate = bytes + values * 2 * 4096 + layout.itemCount * 64 + (32 << 20)
        let withMargin = estimate + estimate / 4
        mapSize = (withMargin + (1 << 20) - 1) / (1 << 20) * (1 << 20)
    }
}

/// Puts large values with their checksums, reports progress and checks cancellation.
struct ChunkSink {
    let tables: [String: Table]
    let checksums: Table
    let progress: any ProgressReporter
    let cancellation: CancellationFlag?
    let totalBytes: Int
    var doneBytes = 0

    init(txn: inout WriteTransaction, progress: some ProgressReporter, cancellation: CancellationFlag?,
         totalBytes: Int) throws {
        var tables: [String: Table] = [:]
        for name in [IndexFormat.levelsTable, IndexFormat.leafItemsTable, IndexFormat.categoriesTable,
                     IndexFormat.tensorsTable, IndexFormat.extraTable] {
            tables[name] = try txn.createTable(name)
        }
        self.tables = tables
        self.checksums = try txn.createTable(IndexFormat.checksumsTable)
        self.progress = progress
        self.cancellation = cancellation
        self.totalBytes = totalBytes
    }

    /// Stores one large value and its checksum, after checking for cancellation.
    mutating func put(_ txn: inout WriteTransaction, _ value: LargeValue, _ data: some StoreValue) throws {
        try cancellation?.check()
        let (count, checksum) = data.withValueBytes { bytes -> (Int, UInt64) in
            var h = FNV1a64()
            h.update(bytes)
            return (bytes.count, h.value)
        }
        try txn.put(tables[value.table]!, value.key, data)
        try txn.put(checksums, value.checksumKey, [UInt64(count), checksum])
        try tick(bytes: count)
    }

    /// Reports `bytes` more done and checks for cancellation.
    mutating func tick(bytes: Int) throws {
        try cancellation?.check()
        guard bytes > 0 else { return }
        doneBytes += bytes
        progress.report(task: "write index", done: min(doneBytes, totalBytes), total: totalBytes)
    }
}
