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
    /// Free leaf slots given to every leaf parent (0 ... 1024, default 0), so that
    /// ``IndexUpdater`` can add items below it without a rebuild. Each costs one leaf row of
    /// storage; beam search never scores free slots. Removals free slots too, so an index written
    /// with no slack still takes replacements and as many additions as it had removals nearby.
    public var leafSlack: Int = 0

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
        let slotted = formatVersion >= IndexFormat.firstUpdatableVersion && layout.depth >= 1
            ? SlottedLeaves(layout, slack: leafSlack) : nil
        var levelNodeCounts = layout.levels.map(\.nodeCount)
        if let slotted { levelNodeCounts[layout.depth] = slotted.slotLeaf.count }
        var header = IndexHeader(
            formatVersion: formatVersion, dimension: layout.dimension, fanOut: layout.fanOut,
            itemCount: layout.itemCount, levelNodeCounts: levelNodeCounts,
            hasCategories: !layout.leafCategories.isEmpty, nodeScorer: nodeScorer, queryProducer: queryProducer,
            chunkBytes: chunkBytes, tensors: tensors.map { TensorInfo(name: $0.name, shape: $0.shape, digest: $0.digest) },
            extraNames: extra.keys.sorted())
        header.leafSlack = slotted == nil ? 0 : leafSlack
        let ids = slotted?.ids ?? layout.leafItems.map(\.rawValue)
        var work = plan(layout: layout, slotted: slotted, ids: ids, tensors: tensors, extra: extra, names: header.extraNames)
        if let slotted {
            // Child ends of the leaf parents, right after that level's child offsets (key order).
            let fourPer = IndexFormat.perChunk(elementBytes: 4, chunkBytes: chunkBytes)
            let level = layout.depth - 1
            let ends = chunkRanges(count: slotted.ends.count, perChunk: fourPer).enumerated().map { c, r in
                LargeWrite(.childEnds(level: level, chunk: c), .int32s(slotted.ends[r]))
            }
            let at = work.firstIndex { if case .embeddings(layout.depth, _) = $0.value { return true } else { return false } }
            work.insert(contentsOf: ends, at: at ?? work.count)
        }
        var sizes = SizePlan(work: work, itemCount: layout.itemCount)
        if slotted != nil {
            // Room for updates: each batch rewrites the chunks it touches (copy on write) while
            // readers may hold the old pages. The map is virtual; the file grows only as used.
            sizes = SizePlan(dataBytes: sizes.dataBytes, mapSize: sizes.mapSize * 3 + (256 << 20))
        }
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
        guard (0...1024).contains(leafSlack) else {
            throw .invalidArgument(name: "leafSlack", reason: "must be in 0 ... 1024, got \(leafSlack)")
        }
        if leafSlack > 0, layout.depth >= 1 {
            // Slots must stay addressable by the Int32 child offsets.
            let slots = layout.itemCount + layout.levels[layout.depth - 1].nodeCount * leafSlack
            guard slots <= Int(Int32.max) else {
                throw .invalidArgument(name: "leafSlack", reason: "\(slots) leaf slots exceed 2^31 - 1")
            }
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
    /// storage (no copies), except the item ids, converted once; a slotted leaf level is gathered
    /// chunk by chunk while it is written (one chunk in memory at a time).
    private func plan(layout: TreeLayout, slotted: SlottedLeaves?, ids: [UInt64], tensors: [NamedTensor],
                      extra: [String: [UInt8]], names: [String]) -> [LargeWrite] {
        var work: [LargeWrite] = []
        let d = layout.dimension
        let rowsPer = IndexFormat.perChunk(elementBytes: d * 4, chunkBytes: chunkBytes)
        let fourPer = IndexFormat.perChunk(elementBytes: 4, chunkBytes: chunkBytes)
        let eightPer = IndexFormat.perChunk(elementBytes: 8, chunkBytes: chunkBytes)
        for (l, level) in layout.levels.enumerated() {
            let values = level.embeddings.values
            if let slotted, l == layout.depth {
                for (c, r) in chunkRanges(count: slotted.slotLeaf.count, perChunk: rowsPer).enumerated() {
                    work.append(LargeWrite(.embeddings(level: l, chunk: c),
                                           .gatheredRows(source: values, rows: slotted.slotLeaf[r], width: d)))
                }
                continue  // the leaf level has no child offsets
            }
            for (c, r) in chunkRanges(count: level.nodeCount, perChunk: rowsPer).enumerated() {
                work.append(LargeWrite(.embeddings(level: l, chunk: c), .floats(values[r.lowerBound * d ..< r.upperBound * d])))
            }
            let offsets = slotted != nil && l == layout.depth - 1 ? slotted!.offsets : level.childOffsets
            for (c, r) in chunkRanges(count: offsets.count, perChunk: fourPer).enumerated() {
                work.append(LargeWrite(.childOffsets(level: l, chunk: c), .int32s(offsets[r])))
            }
        }
        for (c, r) in chunkRanges(count: ids.count, perChunk: eightPer).enumerated() {
            work.append(LargeWrite(.leafItems(chunk: c), .uint64s(ids[r])))
        }
        let categories = slotted?.categories ?? layout.leafCategories
        for (c, r) in chunkRanges(count: categories.count, perChunk: fourPer).enumerated() {
            work.append(LargeWrite(.categories(chunk: c), .uint32s(categories[r])))
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
        /// Rows of `source` (`width` floats each) in the order of `rows`, a negative entry standing
        /// for a row of zeros: gathered into a temporary buffer each time the bytes are read.
        case gatheredRows(source: [Float], rows: ArraySlice<Int32>, width: Int)

        func withValueBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
            switch self {
            case let .gatheredRows(source, rows, width):
                var buffer = [Float](repeating: 0, count: rows.count * width)
                source.withUnsafeBufferPointer { src in
                    buffer.withUnsafeMutableBufferPointer { dst in
                        for (j, row) in rows.enumerated() where row >= 0 {
                            (dst.baseAddress! + j * width).update(from: src.baseAddress! + Int(row) * width, count: width)
                        }
                    }
                }
                return try buffer.withValueBytes(body)
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
            case let .gatheredRows(_, rows, width): return rows.count * width * 4
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

    init(dataBytes: Int, mapSize: Int) { self.dataBytes = dataBytes; self.mapSize = mapSize }

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
        case .embeddings, .childOffsets, .childEnds: return levels
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
        let order = ids.indices.filter { ids[$0] != IndexFormat.freeSlot }.sorted { ids[$0] < ids[$1] }
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

/// A tree's leaf level laid out in slots (format 3): each leaf parent's items followed by `slack`
/// free slots (item id ``IndexFormat/freeSlot``, zero embedding, category 0). Holds the slots'
/// sources, not their rows: the writer gathers the rows chunk by chunk.
struct SlottedLeaves {
    /// The leaf parents' child offsets over slots (one more entry than leaf parents).
    let offsets: [Int32]
    /// End of each leaf parent's live slots.
    let ends: [Int32]
    /// Per slot: the leaf (row of the tree's leaf level) it holds, or -1 for a free slot.
    let slotLeaf: [Int32]
    /// Per slot: the item id (``IndexFormat/freeSlot`` when free).
    let ids: [UInt64]
    /// Per slot: the category (0 when free); empty when the tree has none.
    let categories: [UInt32]

    init(_ tree: TreeLayout, slack: Int) {
        let depth = tree.depth
        let parents = tree.levels[depth - 1]
        let old = parents.childOffsets
        let hasCategories = !tree.leafCategories.isEmpty
        let slots = tree.itemCount + parents.nodeCount * slack
        var offsets = [Int32](); offsets.reserveCapacity(old.count)
        var ends = [Int32](); ends.reserveCapacity(parents.nodeCount)
        var slotLeaf = [Int32](repeating: -1, count: slots)
        var ids = [UInt64](repeating: IndexFormat.freeSlot, count: slots)
        var categories = [UInt32](repeating: 0, count: hasCategories ? slots : 0)
        var next = 0
        for p in 0 ..< parents.nodeCount {
            offsets.append(Int32(next))
            let range = Int(old[p]) ..< Int(old[p + 1])
            for (j, leaf) in range.enumerated() {
                slotLeaf[next + j] = Int32(leaf)
                ids[next + j] = tree.leafItems[leaf].rawValue
                if hasCategories { categories[next + j] = tree.leafCategories[leaf] }
            }
            ends.append(Int32(next + range.count))
            next += range.count + slack
        }
        offsets.append(Int32(next))
        self.offsets = offsets
        self.ends = ends
        self.slotLeaf = slotLeaf
        self.ids = ids
        self.categories = categories
    }
}
