import ArborCore
import ArborStore

/// A read-only, memory-mapped index file.
///
/// Opening maps the file and reads the header only: open time and memory do not depend on the
/// item count. Everything else is read on demand: zero-copy through ``withView(_:)`` (what beam
/// search uses), or copied out by ``loadLayout()``, ``loadLeafMatrix()`` and ``tensor(named:)``.
///
/// Thread rules: an `IndexReader` is immutable and safe to share between threads; every call runs
/// in its own short LMDB read transaction, so readers never block each other or a writer that
/// replaces the file (they keep reading the file they opened).
///
/// Readers of the same file in one process share one LMDB environment (``Environment/shared(path:maxTables:)``),
/// as LMDB requires; a file replaced by a new build is a new file, opened afresh.
public final class IndexReader: Sendable {
    /// The index file.
    public let path: String
    /// The header read at open.
    public let header: IndexHeader
    /// The LMDB id of the committed transaction ``header`` was read at: compare it with
    /// ``committedVersion()`` to learn whether an update has committed since the open.
    public let openedVersion: UInt64
    let environment: Environment
    let tables: IndexTables
    /// The chunk table of the last snapshot and the LMDB snapshot id it was built for: queries
    /// that see the same committed data reuse it instead of walking the cursors again.
    let cachedSnapshot = PosixMutex<(id: UInt64, snapshot: IndexSnapshot)?>(nil)

    /// Opens the index at `path` read-only and checks its header.
    /// - Throws: ``IndexError/notFound(path:)``, ``IndexError/notAnIndex(path:reason:)``,
    ///   ``IndexError/truncated(path:expectedBytes:actualBytes:)``, ``IndexError/foreign(path:)``,
    ///   ``IndexError/formatVersion(path:found:supported:)``, ``IndexError/corruptHeader(path:field:reason:)``.
    /// - Complexity: O(header size); no table but the small meta table is read.
    public init(path: String) throws(IndexError) {
        self.path = path
        do {
            environment = try Environment.shared(path: path, maxTables: IndexFormat.tableCount + 2)
            // The header is read through LMDB, which trusts its pages: check the meta table's few
            // pages first (a damaged one made `mdb_get` read past the map; found by the fuzzer).
            try Environment.checkPages(path: path, tables: [IndexFormat.metaTable])
        } catch {
            throw IndexError(error)
        }
        let meta: Table
        do {
            meta = try environment.openTable(IndexFormat.metaTable)
        } catch .tableNotFound {
            throw .foreign(path: path)
        } catch {
            throw IndexError(error)
        }
        let (header, version) = try Self.readHeader(environment, meta, path: path)
        self.header = header
        openedVersion = version
        tables = try IndexTables(environment, path: path)
    }

    private static func readHeader(_ env: Environment, _ meta: Table, path: String) throws(IndexError) -> (IndexHeader, UInt64) {
        do {
            let txn = try env.beginRead()
            let header = try txn.withValue(meta, IndexFormat.headerKey) { view throws(IndexError) in
                try IndexHeader.decode(view, path: path)
            }
            guard let header else { throw IndexError.foreign(path: path) }
            return (header, txn.snapshotID)
        } catch let error as IndexError {
            throw error
        } catch let error as StoreError {
            throw IndexError(error)
        } catch {
            throw .corruptHeader(path: path, field: "header", reason: "\(error)")
        }
    }

    /// The header as last committed: differs from ``header`` (read at open) once an
    /// ``IndexUpdater`` has committed a batch (item count, generation). One read transaction.
    public func currentHeader() throws(IndexError) -> IndexHeader {
        guard header.formatVersion >= IndexFormat.firstUpdatableVersion else { return header }
        let path = self.path
        return try reading { txn in try currentHeader(in: txn, path: path) }
    }

    /// The header inside an open transaction.
    func currentHeader(in txn: borrowing ReadTransaction, path: String) throws -> IndexHeader {
        let meta: Table
        do { meta = try environment.openTable(IndexFormat.metaTable) } catch { throw IndexError(error) }
        let found = try txn.withValue(meta, IndexFormat.headerKey) { view throws(IndexError) in
            try IndexHeader.decode(view, path: path)
        }
        guard let found else { throw IndexError.foreign(path: path) }
        return found
    }

    /// The LMDB id of the last committed transaction this process can see: changes when an update
    /// commits. Cheap (one read transaction); callers cache derived data by it.
    public func committedVersion() throws(IndexError) -> UInt64 {
        try reading { txn in txn.snapshotID }
    }

    /// Embedding width.
    public var dimension: Int { header.dimension }
    /// Largest number of children of a node.
    public var fanOut: Int { header.fanOut }
    /// Index of the leaf level (root = 0).
    public var depth: Int { header.depth }
    /// Number of items when the file was opened (= leaves before format 3; see ``currentHeader()``
    /// for the count after later updates).
    public var itemCount: Int { header.itemCount }
    /// Number of nodes per level, root first.
    public var levelNodeCounts: [Int] { header.levelNodeCounts }
    /// The node scorer recorded at build time.
    public var nodeScorer: NodeScorerKind { header.nodeScorer }
    /// The query producer recorded at build time.
    public var queryProducer: QueryProducerKind { header.queryProducer }
    /// Names of the stored tensors, in the order they were written.
    public var tensorNames: [String] { header.tensors.map(\.name) }
    /// Names of the stored extra values, sorted.
    public var extraNames: [String] { header.extraNames }
    /// Whether leaf categories are stored.
    public var hasCategories: Bool { header.hasCategories }

    /// Throws unless the index's embeddings have `expected` columns (e.g. a scorer's node width).
    public func requireDimension(_ expected: Int, field: String = "dimension") throws(IndexError) {
        guard dimension == expected else {
            throw .dimensionMismatch(path: path, field: field, expected: expected, found: dimension)
        }
    }

    /// Runs `body` in a read transaction, mapping storage errors to ``IndexError``.
    func reading<R>(_ body: (borrowing ReadTransaction) throws -> R) throws(IndexError) -> R {
        do {
            let txn = try environment.beginRead()
            return try body(txn)
        } catch let error as IndexError {
            throw error
        } catch let error as StoreError {
            throw IndexError(error)
        } catch {
            throw .store(.lmdb(path: path, operation: "read", code: -1, message: "\(error)"))
        }
    }

    // MARK: Items

    /// The leaf that holds `item`, or `nil` if the index has no such item. O(log itemCount).
    public func leaf(of item: ItemID) throws(IndexError) -> Int? {
        try reading { txn in try leaf(of: item, in: txn) }
    }

    /// The leaf of each of `items` (`nil` for an item the index lacks), all in one read
    /// transaction. O(items.count · log itemCount).
    public func leaves(of items: [ItemID]) throws(IndexError) -> [Int?] {
        try reading { txn in
            var out: [Int?] = []
            out.reserveCapacity(items.count)
            for item in items { out.append(try leaf(of: item, in: txn)) }
            return out
        }
    }

    /// One lookup inside an open transaction; errors are converted by the caller's ``reading(_:)``.
    func leaf(of item: ItemID, in txn: borrowing ReadTransaction) throws -> Int? {
        let path = self.path, count = header.leafSlots
        return try txn.withValue(tables.items, item.rawValue) { view throws(IndexError) -> Int in
            guard view.count == 8 else {
                throw .corruptValue(path: path, table: IndexFormat.itemsTable, key: "item \(item)",
                                    reason: "\(view.count) bytes, expected 8")
            }
            let raw = view.load(UInt64.self, atByteOffset: 0)
            guard let leaf = Int(exactly: raw), leaf < count else {
                throw .corruptValue(path: path, table: IndexFormat.itemsTable, key: "item \(item)",
                                    reason: "leaf \(raw) is outside 0..<\(count)")
            }
            return leaf
        }
    }

    /// The item at leaf `leaf` (``IndexFormat/freeSlot`` for a free slot of a format 3 file). O(1)
    /// (one read transaction and one lookup).
    /// - Throws: ``IndexError/leafOutOfRange(path:leaf:itemCount:)`` for a leaf outside `0 ..< leafSlots`.
    public func item(atLeaf leaf: Int) throws(IndexError) -> ItemID {
        let slots = header.leafSlots
        guard leaf >= 0 && leaf < slots else { throw .leafOutOfRange(path: path, leaf: leaf, itemCount: slots) }
        let per = IndexFormat.perChunk(elementBytes: 8, chunkBytes: header.chunkBytes)
        let (chunk, offset) = leaf.quotientAndRemainder(dividingBy: per)
        let path = self.path
        return try reading { txn in
            try readLarge(txn, .leafItems(chunk: chunk), verify: false) { view throws(IndexError) -> ItemID in
                guard view.count >= (offset + 1) * 8 else {
                    throw .corruptValue(path: path, table: IndexFormat.leafItemsTable, key: LargeValue.leafItems(chunk: chunk).label,
                                        reason: "\(view.count) bytes, too short for leaf \(leaf)")
                }
                return ItemID(view.load(UInt64.self, atByteOffset: offset * 8))
            }
        }
    }

    // MARK: Extra values

    /// A copy of the extra value `name`, or `nil` if there is none. Checks its checksum.
    public func extra(named name: String) throws(IndexError) -> [UInt8]? {
        guard extraNames.contains(name) else { return nil }
        return try reading { txn in
            try readLarge(txn, .extra(name: name), verify: true) { $0.copyBytes() }
        }
    }

    /// Copies of the extra values `names` (`nil` for a name the index lacks), all from one read
    /// transaction: one committed state even while an ``IndexUpdater`` commits batches. Checks
    /// their checksums.
    public func extras(named names: [String]) throws(IndexError) -> [String: [UInt8]] {
        try reading { txn in
            var out: [String: [UInt8]] = [:]
            for name in names where extraNames.contains(name) {
                out[name] = try readLarge(txn, .extra(name: name), verify: true) { $0.copyBytes() }
            }
            return out
        }
    }

    /// Calls `body` with a zero-copy view of the extra value `name` (valid only inside `body`;
    /// see ``ValueView``), or returns `nil` if there is none. The checksum is not checked here
    /// (``verify()`` does).
    /// - Throws: ``IndexError`` when the value is missing from the file, or what `body` throws.
    public func withExtra<R>(named name: String, _ body: (ValueView) throws -> R) throws -> R? {
        guard extraNames.contains(name) else { return nil }
        let txn: ReadTransaction
        do { txn = try environment.beginRead() } catch { throw IndexError(error) }
        return try readLarge(txn, .extra(name: name), verify: false, body)
    }

    // MARK: Large values

    /// Calls `body` with the large value `value`, after checking that it exists and (with `verify`)
    /// that its size and checksum match the recorded ones.
    func readLarge<R>(_ txn: borrowing ReadTransaction, _ value: LargeValue, verify: Bool,
                      _ body: (ValueView) throws -> R) throws -> R {
        let table = try tables.table(value.table)
        let found = try txn.withValue(table, value.key) { view -> R in
            if verify { try checkSum(txn, value, view) }
            return try body(view)
        }
        guard let found else {
            throw IndexError.corruptValue(path: path, table: value.table, key: value.label, reason: "missing")
        }
        return found
    }

    /// Compares `view` with the checksum recorded for `value`.
    func checkSum(_ txn: borrowing ReadTransaction, _ value: LargeValue, _ view: ValueView) throws {
        let recorded = try txn.withValue(tables.checksums, value.checksumKey) { sum -> (Int, UInt64)? in
            guard sum.count == 16 else { return nil }
            guard let count = Int(exactly: sum.load(UInt64.self, atByteOffset: 0)) else { return nil }
            return (count, sum.load(UInt64.self, atByteOffset: 8))
        }
        guard let recorded, let (count, checksum) = recorded else {
            throw IndexError.corruptValue(path: path, table: value.table, key: value.label, reason: "no checksum recorded")
        }
        guard count == view.count, checksum == view.checksum else {
            throw IndexError.checksumMismatch(path: path, table: value.table, key: value.label)
        }
    }
}

/// The table handles of an open index.
struct IndexTables: Sendable {
    let levels, items, leafItems, categories, tensors, extra, checksums: Table

    init(_ env: Environment, path: String) throws(IndexError) {
        func open(_ name: String) throws(IndexError) -> Table {
            do { return try env.openTable(name) } catch .tableNotFound {
                throw .corruptValue(path: path, table: name, key: "table", reason: "the table is missing")
            } catch { throw IndexError(error) }
        }
        levels = try open(IndexFormat.levelsTable)
        items = try open(IndexFormat.itemsTable)
        leafItems = try open(IndexFormat.leafItemsTable)
        categories = try open(IndexFormat.categoriesTable)
        tensors = try open(IndexFormat.tensorsTable)
        extra = try open(IndexFormat.extraTable)
        checksums = try open(IndexFormat.checksumsTable)
    }

    func table(_ name: String) throws(IndexError) -> Table {
        switch name {
        case IndexFormat.levelsTable: return levels
        case IndexFormat.leafItemsTable: return leafItems
        case IndexFormat.categoriesTable: return categories
        case IndexFormat.tensorsTable: return tensors
        case IndexFormat.extraTable: return extra
        default: return checksums
        }
    }
}
