import ArborCore
import ArborMath
import ArborStore
import Foundation

/// Adds, removes and replaces items of a format 3 index file in place, without a rebuild.
///
/// Each ``apply(_:)`` is one LMDB write transaction: removals free their slots (the leaf parent's
/// last live item moves into the hole, so live slots stay contiguous), then each addition descends
/// the tree by the inner product of its vector with the node embeddings (a beam of
/// ``descentBeam`` nodes per level) to the best leaf parent with a free slot; if every leaf parent
/// the beam reached is full, the best-scoring leaf parent with room anywhere takes it. Only the
/// chunks a batch touches are rewritten (with their checksums), then the header (item count,
/// generation). Inner node embeddings are not changed: they drift from the mean of their items as
/// the catalogue changes (``IndexReader/balance()`` reports it; rebuild when it says so).
///
/// Readers keep their LMDB snapshot: a query that began before the commit sees the old catalogue,
/// one that begins after sees the new one, none sees part of a batch. A crash or kill at any
/// moment leaves the file as it was before the batch or as it is after (LMDB commits by writing
/// one meta page after the data is synced).
///
/// Thread rules: one updater per file per process (LMDB wants one environment per file); it
/// opens the shared environment read-write, so open it *before* any ``IndexReader`` of the same
/// file in this process (readers opened later share its environment). Batches from several
/// threads or processes are serialized by LMDB's writer lock.
///
/// The vectors must live in the space of the node embeddings: item vectors of an index built from
/// vectors (or a two-tower), which is what the inner-product descent assumes.
public final class IndexUpdater: Sendable {
    /// The index file.
    public let path: String
    /// A reader over the same environment (its ``IndexReader/header`` is the header at open).
    public let reader: IndexReader
    /// Nodes kept per level by the descent of a new item (1 ... 4096, default 32).
    public let descentBeam: Int
    /// Keep extra values (e.g. an HNSW graph) in step with the items, in the same transaction.
    public let maintainers: [any IndexExtraMaintainer]
    let environment: Environment

    /// Opens `path` for updating.
    /// - Throws: ``IndexError`` when the file is not a readable index; ``IndexUpdateError/notUpdatable(path:reason:)``
    ///   for format 1 or 2 files and one-item trees; ``ArborError/invalidArgument(name:reason:)``
    ///   for a `descentBeam` outside 1 ... 4096.
    ///   ``IndexUpdateError/notUpdatable(path:reason:)`` also for a file with an extra value that
    ///   follows the items (`itemBoundExtras`) and no maintainer for it.
    public init(path: String, descentBeam: Int = 32, maintainers: [any IndexExtraMaintainer] = [],
                itemBoundExtras: (String) -> Bool = { _ in false }) throws {
        self.maintainers = maintainers
        guard (1...4096).contains(descentBeam) else {
            throw ArborError.invalidArgument(name: "descentBeam", reason: "must be in 1...4096, got \(descentBeam)")
        }
        self.path = path
        self.descentBeam = descentBeam
        do {
            environment = try Environment.shared(path: path, maxTables: IndexFormat.tableCount + 2, access: .readWrite)
        } catch {
            throw IndexError(error)
        }
        reader = try IndexReader(path: path)
        let header = reader.header
        guard header.formatVersion >= IndexFormat.firstUpdatableVersion else {
            throw IndexUpdateError.notUpdatable(
                path: path, reason: "format version \(header.formatVersion) has no free leaf slots; upgrade it (arbor update --upgrade) or rebuild it")
        }
        guard header.depth >= 1 else {
            throw IndexUpdateError.notUpdatable(path: path, reason: "a one-item tree has no leaf parents; rebuild it")
        }
        for name in header.extraNames where itemBoundExtras(name) && !maintainers.contains(where: { $0.maintains(extra: name) }) {
            throw IndexUpdateError.notUpdatable(path: path, reason: "nothing keeps its extra value '\(name)' in step with the items")
        }
    }

    /// Applies `batch` in one write transaction and returns what it did.
    ///
    /// Everything is checked before the commit; on any error nothing is written.
    /// - Throws: ``ArborError/unknownItem(_:)`` for a removal not in the index,
    ///   ``ArborError/duplicateItem(_:)`` for an addition already in it (and not removed by the
    ///   batch) or an id given twice, ``ArborError/dimensionMismatch(field:expected:found:)``,
    ///   ``ArborError/nonFiniteValue(field:row:)`` and ``ArborError/invalidArgument(name:reason:)``
    ///   for bad vectors or categories, ``IndexUpdateError/full(path:item:slots:)`` when no slot is
    ///   free, ``IndexError`` (e.g. a full disk or map: ``StoreError/mapFull(path:)``).
    /// - Complexity: O(additions · depth · descentBeam · fanOut · d) for the descents plus the size
    ///   of the chunks touched (each rewritten once).
    @discardableResult
    public func apply(_ batch: IndexBatch) throws -> IndexUpdateSummary {
        let header = reader.header
        try validate(batch, header: header)
        let candidates = try descend(batch.vectors)
        do {
            let summary = try environment.write { txn in
                var state = try UpdateState(txn, reader: reader)
                let removedSet = Set(batch.removals)
                for id in batch.removals { try state.remove(id, txn) }
                try UpdateFailure.reach("after-removals", path: path)
                var fallback = 0
                for (row, id) in batch.additions.enumerated() {
                    guard try state.slot(of: id, txn) == nil else { throw ArborError.duplicateItem(id) }
                    var parent = candidates[row].first { state.hasRoom($0) }
                    if parent == nil {
                        parent = try fallbackParent(for: batch.vectors.row(row), state: state)
                        fallback += 1
                    }
                    guard let parent else { throw IndexUpdateError.full(path: path, item: id, slots: header.leafSlots) }
                    try state.add(id, vector: batch.vectors.row(row),
                                  category: batch.categories.isEmpty ? 0 : batch.categories[row], below: parent, txn)
                }
                try UpdateFailure.reach("after-additions", path: path)
                try state.writeBack(&txn)
                // Extras that follow the items (read from the state before this batch, which is
                // the last committed one: writers are serialized).
                for maintainer in maintainers {
                    for (name, bytes) in try maintainer.updatedExtras(for: batch, reader: reader) {
                        guard reader.extraNames.contains(name) else {
                            throw ArborError.invalidArgument(name: "extra '\(name)'", reason: "not in \(path); updates only replace extras")
                        }
                        let value = LargeValue.extra(name: name)
                        try txn.put(reader.tables.extra, value.key, bytes)
                        try txn.put(reader.tables.checksums, value.checksumKey, [UInt64(bytes.count), FNV1a64.checksum(of: bytes)])
                    }
                }
                var current = state.header
                let replaced = batch.additions.reduce(0) { $0 + (removedSet.contains($1) ? 1 : 0) }
                current.itemCount += batch.additions.count - batch.removals.count
                current.generation += 1
                current.addedSinceBuild += batch.additions.count
                current.removedSinceBuild += batch.removals.count
                try txn.put(try environment.openTable(IndexFormat.metaTable), IndexFormat.headerKey, current.encoded())
                try UpdateFailure.reach("before-commit", path: path)
                return IndexUpdateSummary(added: batch.additions.count, removed: batch.removals.count, replaced: replaced,
                                          placedByFallback: fallback, itemCount: current.itemCount,
                                          generation: current.generation)
            }
            try UpdateFailure.reach("after-commit", path: path)
            return summary
        } catch let error as StoreError {
            throw IndexError(error)
        }
    }

    /// Checks the batch against the header (nothing read from the tables yet).
    private func validate(_ batch: IndexBatch, header: IndexHeader) throws {
        let d = header.dimension
        if !batch.additions.isEmpty || batch.vectors.rows > 0 {
            guard batch.vectors.cols == d else {
                throw ArborError.dimensionMismatch(field: "vectors to add", expected: d, found: batch.vectors.cols)
            }
            guard batch.vectors.rows == batch.additions.count else {
                throw ArborError.dimensionMismatch(field: "vectors to add (rows)", expected: batch.additions.count,
                                                   found: batch.vectors.rows)
            }
        }
        guard batch.categories.isEmpty || batch.categories.count == batch.additions.count else {
            throw ArborError.dimensionMismatch(field: "categories to add", expected: batch.additions.count,
                                               found: batch.categories.count)
        }
        if !batch.categories.isEmpty && !header.hasCategories {
            throw ArborError.invalidArgument(name: "categories", reason: "\(path) stores no categories")
        }
        if let bad = batch.vectors.firstNonFiniteRow() { throw ArborError.nonFiniteValue(field: "vectors to add", row: bad) }
        if let bad = batch.vectors.firstRowWithOverflowingNorm() {
            throw ArborError.invalidArgument(
                name: "vectors to add",
                reason: "row \(bad) is too large: its products overflow Float32 (squared norm above 2.1e37)")
        }
        var seen = Set<ItemID>()
        for id in batch.additions {
            guard id.rawValue != IndexFormat.freeSlot else {
                throw ArborError.invalidArgument(name: "item id", reason: "\(id) is reserved for free slots")
            }
            guard seen.insert(id).inserted else { throw ArborError.duplicateItem(id) }
        }
        seen.removeAll()
        for id in batch.removals where !seen.insert(id).inserted { throw ArborError.duplicateItem(id) }
    }

    /// For each row of `vectors`, the leaf parents (local indices on level `depth - 1`) the beam
    /// reaches, best inner product first. One read transaction; inner levels never change after
    /// the build, so the result stays valid for the write transaction that follows.
    func descend(_ vectors: Matrix) throws -> [[Int32]] {
        guard vectors.rows > 0 else { return [] }
        let depth = reader.depth, d = reader.dimension, beamWidth = descentBeam
        return try reader.withView { view in
            var out: [[Int32]] = []
            out.reserveCapacity(vectors.rows)
            var gathered = Matrix(rows: 0, cols: d)
            var scores: [Float] = []
            for r in 0 ..< vectors.rows {
                let x = Array(vectors.row(r))
                var beam: [Int32] = [0]
                var ranked: [(Float, Int32)] = [(0, 0)]
                for level in stride(from: 1, through: depth - 1, by: 1) {
                    var candidates: [Int32] = []
                    for node in beam { for child in view.children(of: Int(node), level: level - 1) { candidates.append(Int32(child)) } }
                    view.gatherEmbeddings(level: level, nodes: candidates, into: &gathered)
                    BLAS.gemv(gathered, x, into: &scores)
                    ranked = zip(scores, candidates).sorted { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
                    // The last step keeps a wider list: it is where a full leaf parent is skipped.
                    let keep = level == depth - 1 ? min(ranked.count, 4 * beamWidth) : min(ranked.count, beamWidth)
                    ranked.removeLast(ranked.count - keep)
                    beam = ranked.map(\.1)
                }
                out.append(ranked.map(\.1))
            }
            return out
        }
    }

    /// The leaf parent with a free slot whose embedding has the largest inner product with `x`
    /// (a scan over the level), or `nil` when none has room.
    private func fallbackParent(for x: ArraySlice<Float>, state: UpdateState) throws -> Int32? {
        let level = reader.depth - 1
        let open = (0 ..< Int32(reader.levelNodeCounts[level])).filter { state.hasRoom($0) }
        guard !open.isEmpty else { return nil }
        return try reader.withView { view in
            var gathered = Matrix(rows: 0, cols: reader.dimension)
            view.gatherEmbeddings(level: level, nodes: open, into: &gathered)
            var scores: [Float] = []
            BLAS.gemv(gathered, Array(x), into: &scores)
            var best = 0
            for i in scores.indices where scores[i] > scores[best] { best = i }
            return open[best]
        }
    }
}

/// Test-only failure injection, inert unless armed. A test arms a point for one file with
/// ``arm(_:for:)`` (an update of that file then throws ``IndexUpdateError/injected(point:)`` there,
/// inside the write transaction);
/// the environment variable `ARBOR_TEST_KILL_UPDATE_AT=<point>` makes the process SIGKILL itself
/// there instead (for tests of a real process). Points: `after-removals`, `after-additions`,
/// `before-commit`, and `after-commit` (kill only; reached by the CLI after the commit).
public enum UpdateFailure {
    static let armed = PosixMutex<[String: String]>([:])
    static let killVariable = "ARBOR_TEST_KILL_UPDATE_AT"

    /// Arms `point` for the next updates of the file at `path` in this process (`nil` disarms).
    /// For tests.
    public static func arm(_ point: String?, for path: String) { armed.withLock { $0[path] = point } }

    /// Throws or kills the process when `point` is armed for `path`.
    static func reach(_ point: String, path: String) throws {
        if let target = ProcessInfo.processInfo.environment[killVariable], target == point {
            kill(getpid(), SIGKILL)
        }
        if armed.withLock({ $0[path] }) == point { throw IndexUpdateError.injected(point: point) }
    }
}

/// Keeps extra values of an index (an HNSW graph beside the tree) in step with its items: called by
/// ``IndexUpdater/apply(_:)`` inside the batch's write transaction, after the tree's changes.
public protocol IndexExtraMaintainer: Sendable {
    /// Whether this maintainer rewrites the extra value `name`.
    func maintains(extra name: String) -> Bool
    /// The new values of the extras it maintains after `batch` (removals, then additions). The
    /// current values are read through `reader` (the last committed state: the one before `batch`).
    /// Throwing aborts the whole batch.
    func updatedExtras(for batch: IndexBatch, reader: IndexReader) throws -> [String: [UInt8]]
}
