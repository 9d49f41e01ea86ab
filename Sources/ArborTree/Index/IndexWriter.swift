import ArborStore
import Foundation

/// Writes a tree, its model's weights and free extra values into an index file (format
/// ``IndexFormat/version``).
///
/// A write validates everything first (nothing is written on bad input), builds a new environment at
/// `<path>.tmp-<pid>-<n>`, flushes it and renames it over `path`. If the write fails or is cancelled,
/// the temporary file is removed and an existing index at `path` stays as it was; readers of the
/// old file are never blocked. The header is committed last, so a temporary file is never a
/// readable index before it is complete.
///
/// Memory: the data is committed in write transactions of about ``commitBytes`` each, so LMDB's
/// dirty pages stay bounded however large the index is.
///
/// Extra values: other modules (e.g. an HNSW graph) store their payloads as named byte strings in
/// the `extra` table through the `extra` argument, checksummed like every large value, and read them
/// back with ``IndexReader/extra(named:)`` or zero-copy with ``IndexReader/withExtra(named:_:)``.
/// Each is one LMDB value (under 4 GiB); encode numbers little-endian.
public struct IndexWriter: Sendable {
    /// Largest chunk of a chunked array in bytes (default 16 MiB; 64 B ... 1 GiB). Smaller chunks
    /// only matter for tests; a row of embeddings is never split.
    public var chunkBytes: Int
    /// Bytes written per write transaction before it is committed (default 256 MiB).
    public var commitBytes: Int = 256 << 20
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
    ///   - nodeScorer: the scorer the tree serves (recorded in the header; its weights are among
    ///     `tensors`).
    ///   - queryProducer: what turns a behaviour list into the query (recorded in the header).
    ///   - extra: named byte strings for other modules (names as for tensors).
    ///   - path: the index file (conventionally `name.arbor`).
    ///   - progress: receives `write index` progress in bytes, and `finish` at the end (also on failure).
    ///   - cancellation: checked before each chunk and once more before the rename; once set, the
    ///     write stops.
    /// - Returns: the header written.
    /// - Throws: ``ArborError`` for invalid input (nothing written), `CancellationError` when
    ///   cancelled, ``IndexError`` when the file cannot be written. In every case `path` is unchanged.
    /// - Complexity: O(size of the data + itemCount · log itemCount).
    @discardableResult
    public func write(
        layout: TreeLayout, tensors: [NamedTensor] = [], nodeScorer: NodeScorerKind = .innerProduct,
        queryProducer: QueryProducerKind = .leafMeanPooling, extra: [String: [UInt8]] = [:], to path: String,
        progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil
    ) throws -> IndexHeader {
        try validate(layout: layout, tensors: tensors, extra: extra)
        try cancellation?.check()
        defer { progress.finish(task: "write index") }
        let header = IndexHeader(
            formatVersion: formatVersion, dimension: layout.dimension, fanOut: layout.fanOut,
            itemCount: layout.itemCount, levelNodeCounts: layout.levels.map(\.nodeCount),
            hasCategories: !layout.leafCategories.isEmpty, nodeScorer: nodeScorer, queryProducer: queryProducer,
            chunkBytes: chunkBytes, tensors: tensors.map { TensorInfo(name: $0.name, shape: $0.shape, digest: $0.digest) },
            extraNames: extra.keys.sorted())
        let ids = layout.leafItems.map(\.rawValue)
        let work = plan(layout: layout, ids: ids, tensors: tensors, extra: extra, names: header.extraNames)
        let sizes = SizePlan(work: work, itemCount: layout.itemCount)
        do {
            try Environment.replaceAtomically(path: path, mapSize: sizes.mapSize, maxTables: IndexFormat.tableCount + 2) { env in
                var sink = try ChunkSink(env: env, progress: progress, cancellation: cancellation,
                                         totalBytes: sizes.dataBytes, commitBytes: max(1, commitBytes))
                try sink.putAll(work)
                try sink.putItemMap(ids)
                // Committed twice: then both LMDB meta pages describe the complete index, so a
                // reader that picks either one (e.g. through a stale lock file) sees all of it.
                let encoded = header.encoded()
                for _ in 0..<2 {
                    try env.write { txn in try txn.put(sink.tables.meta, IndexFormat.headerKey, encoded) }
                }
                IndexWriterTestHook.pauseIfRequested()
                try cancellation?.check()
            }
        } catch let error as StoreError {
            throw IndexError(error)
        }
        return header
    }

    private func validate(layout: TreeLayout, tensors: [NamedTensor], extra: [String: [UInt8]]) throws(ArborError) {
        try layout.validate()
        guard (64...(1 << 30)).contains(chunkBytes) else {
            throw .invalidArgument(name: "chunkBytes", reason: "must be in 64 ... 2^30, got \(chunkBytes)")
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

    /// Every large value to write, in key order within each table. Slices share the caller's
    /// storage (no copies), except the item ids, converted once.
    private func plan(layout: TreeLayout, ids: [UInt64], tensors: [NamedTensor], extra: [String: [UInt8]],
                      names: [String]) -> [LargeWrite] {
        var work: [LargeWrite] = []
        let d = layout.dimension
        let rowsPer = IndexFormat.perChunk(elementBytes: d * 4, chunkBytes: chunkBytes)
        let fourPer = IndexFormat.perChunk(elementBytes: 4, chunkBytes: chunkBytes)
        let eightPer = IndexFormat.perChunk(elementBytes: 8, chunkBytes: chunkBytes)
        for (l, level) in layout.levels.enumerated() {
            let values = level.embeddings.values
            for (c, r) in chunkRanges(count: level.nodeCount, perChunk: rowsPer).enumerated() {
                work.append(LargeWrite(.embeddings(level: l, chunk: c), .floats(values[r.lowerBound * d ..< r.upperBound * d])))
            }
            for (c, r) in chunkRanges(count: level.childOffsets.count, perChunk: fourPer).enumerated() {
                work.append(LargeWrite(.childOffsets(level: l, chunk: c), .int32s(level.childOffsets[r])))
            }
        }
        for (c, r) in chunkRanges(count: ids.count, perChunk: eightPer).enumerated() {
            work.append(LargeWrite(.leafItems(chunk: c), .uint64s(ids[r])))
        }
        for (c, r) in chunkRanges(count: layout.leafCategories.count, perChunk: fourPer).enumerated() {
            work.append(LargeWrite(.categories(chunk: c), .uint32s(layout.leafCategories[r])))
        }
        for t in tensors {
            for (c, r) in chunkRanges(count: t.values.count, perChunk: fourPer).enumerated() {
                work.append(LargeWrite(.tensor(name: t.name, chunk: c), .floats(t.values[r])))
            }
        }
        for name in names { work.append(LargeWrite(.extra(name: name), .bytes(extra[name]!))) }
        return work
    }
}

/// `0 ..< count` cut into ranges of `perChunk` (the last one shorter).
func chunkRanges(count: Int, perChunk: Int) -> [Range<Int>] {
    stride(from: 0, to: count, by: perChunk).map { $0 ..< min(count, $0 + perChunk) }
}

/// One large value to write and its bytes.
struct LargeWrite {
    enum Payload: StoreValue {
        case floats(ArraySlice<Float>), int32s(ArraySlice<Int32>), uint32s(ArraySlice<UInt32>)
        case uint64s(ArraySlice<UInt64>), bytes([UInt8])

        func withValueBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
            switch self {
            case let .floats(s): return try s.withValueBytes(body)
            case let .int32s(s): return try s.withValueBytes(body)
            case let .uint32s(s): return try s.withValueBytes(body)
            case let .uint64s(s): return try s.withValueBytes(body)
            case let .bytes(b): return try b.withValueBytes(body)
            }
        }

        var byteCount: Int {
            switch self {
            case let .floats(s): return s.count * 4
            case let .int32s(s): return s.count * 4
            case let .uint32s(s): return s.count * 4
            case let .uint64s(s): return s.count * 8
            case let .bytes(b): return b.count
            }
        }
    }

    let value: LargeValue
    let payload: Payload
    init(_ value: LargeValue, _ payload: Payload) { self.value = value; self.payload = payload }
}

/// How big the new environment must be.
struct SizePlan {
    let dataBytes: Int
    let mapSize: Int

    init(work: [LargeWrite], itemCount: Int) {
        let bytes = work.reduce(0) { $0 + $1.payload.byteCount }
        dataBytes = bytes + itemCount * 16
        // Overflow pages round each value up to a page (plus its checksum entry); the item map's
        // B-tree takes under 64 bytes an item; tables, meta and the free list fit in the margin.
        let estimate = bytes + work.count * 3 * 4096 + itemCount * 64 + (32 << 20)
        let withMargin = estimate + estimate / 4
        mapSize = (withMargin + (1 << 20) - 1) / (1 << 20) * (1 << 20)
    }
}

/// The index tables of an environment being written.
struct WriterTables {
    let meta, levels, items, leafItems, categories, tensors, extra, checksums: Table

    func table(for value: LargeValue) -> Table {
        switch value {
        case .embeddings, .childOffsets: return levels
        case .leafItems: return leafItems
        case .categories: return categories
        case .tensor: return tensors
        case .extra: return extra
        }
    }
}

/// Writes large values with their checksums in bounded transactions, reports progress and checks
/// cancellation before each value.
struct ChunkSink {
    let env: Environment
    let tables: WriterTables
    let progress: any ProgressReporter
    let cancellation: CancellationFlag?
    let totalBytes: Int
    let commitBytes: Int
    var doneBytes = 0

    /// Creates every table in a first transaction (their handles stay valid after it commits).
    init(env: Environment, progress: some ProgressReporter, cancellation: CancellationFlag?,
         totalBytes: Int, commitBytes: Int) throws {
        self.env = env
        tables = try env.write { txn in
            WriterTables(
                meta: try txn.createTable(IndexFormat.metaTable), levels: try txn.createTable(IndexFormat.levelsTable),
                items: try txn.createTable(IndexFormat.itemsTable), leafItems: try txn.createTable(IndexFormat.leafItemsTable),
                categories: try txn.createTable(IndexFormat.categoriesTable),
                tensors: try txn.createTable(IndexFormat.tensorsTable), extra: try txn.createTable(IndexFormat.extraTable),
                checksums: try txn.createTable(IndexFormat.checksumsTable))
        }
        self.progress = progress
        self.cancellation = cancellation
        self.totalBytes = totalBytes
        self.commitBytes = commitBytes
    }

    /// Writes `work` in transactions of about `commitBytes`.
    mutating func putAll(_ work: [LargeWrite]) throws {
        var next = 0
        while next < work.count {
            var batch = 0
            var done = doneBytes
            try env.write { txn in
                while next < work.count && (batch == 0 || batch + work[next].payload.byteCount <= commitBytes) {
                    try cancellation?.check()
                    let item = work[next]
                    let checksum = FNV1a64.checksum(of: item.payload)
                    let count = item.payload.byteCount
                    try txn.put(tables.table(for: item.value), item.value.key, item.payload)
                    try txn.put(tables.checksums, item.value.checksumKey, [UInt64(count), checksum])
                    batch += count
                    done += count
                    progress.report(task: "write index", done: min(done, totalBytes), total: totalBytes)
                    next += 1
                }
            }
            doneBytes = done
        }
    }

    /// Writes item id -> leaf, appended in key order (B-tree pages filled completely).
    mutating func putItemMap(_ ids: [UInt64]) throws {
        let order = ids.indices.sorted { ids[$0] < ids[$1] }
        let perTransaction = max(1, commitBytes / 16)
        var start = 0
        while start < order.count {
            try cancellation?.check()
            let end = min(order.count, start + perTransaction)
            try env.write { txn in
                for n in start..<end {
                    if n & 0xFFFF == 0 { try cancellation?.check() }
                    try txn.put(tables.items, ids[order[n]], UInt64(order[n]), append: true)
                }
            }
            doneBytes += (end - start) * 16
            progress.report(task: "write index", done: min(doneBytes, totalBytes), total: totalBytes)
            start = end
        }
    }
}

/// Test hook, inert unless the environment variable `ARBOR_TEST_PAUSE_BEFORE_RENAME` is set to a file
/// path. Then every index write, once the temporary file holds the complete index but before it is
/// renamed over the target, creates that file and waits until it is deleted. Tests use it to
/// interrupt or kill a writer at a known point instead of after a guessed delay.
enum IndexWriterTestHook {
    static let variable = "ARBOR_TEST_PAUSE_BEFORE_RENAME"

    static func pauseIfRequested() {
        guard let marker = ProcessInfo.processInfo.environment[variable], !marker.isEmpty else { return }
        _ = FileManager.default.createFile(atPath: marker, contents: nil)
        while FileManager.default.fileExists(atPath: marker) { usleep(10_000) }
    }
}
