import ArborEngine
import ArborMath
import ArborRetrieval
@testable import ArborTree
import Foundation
import Synchronization
import Testing

private func vectors(rows: Int, cols: Int, seed: UInt64) -> Matrix {
    var rng = SplitMix64(seed: seed)
    return try! Matrix(rows: rows, cols: cols, values: (0..<(rows * cols)).map { _ in rng.nextUnitFloat() * 2 - 1 })
}

private func temporaryPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory
        .appendingPathComponent("arbor-update-\(name)-\(getpid())-\(UInt64.random(in: 0 ... .max)).arbor").path
}

private func remove(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
    try? FileManager.default.removeItem(atPath: path + "-lock")
}

/// A catalogue kept in memory beside the index: the truth every search is compared with.
private struct Catalogue {
    var vectors: [ItemID: [Float]] = [:]

    mutating func apply(_ batch: IndexBatch) {
        for id in batch.removals { vectors[id] = nil }
        for (r, id) in batch.additions.enumerated() { vectors[id] = Array(batch.vectors.row(r)) }
    }

    /// The exact top `k` by inner product (ties by smaller id).
    func top(_ q: [Float], k: Int) -> [ItemID] {
        let scored = vectors.map { id, v in (id, zip(q, v).reduce(Float(0)) { $0 + $1.0 * $1.1 }) }
        return scored.sorted { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }.prefix(k).map(\.0)
    }
}

/// An index over `n` random items (ids 100, 101, ...), fan-out 4, `slack` free slots per leaf
/// parent, 256-byte chunks (so that batches touch several chunks).
private struct Fixture {
    let n: Int, d = 8
    let path: String
    var catalogue = Catalogue()

    init(n: Int = 240, slack: Int = 3, graph: Bool = false, chunkBytes: Int = 256) throws {
        self.n = n
        let items = vectors(rows: n, cols: d, seed: 7)
        let ids = (0..<n).map { ItemID(UInt64(100 + $0)) }
        path = temporaryPath("fixture")
        let tree = try TreeBuilder.balancedKMeans(embeddings: items, items: ids, options: .init(fanOut: 4, seed: 1))
        var extra: [String: [UInt8]] = [:]
        if graph {
            let hnsw = try HNSWIndex.build(items, ids: ids, configuration: HNSWConfiguration(m: 8, efConstruction: 64, buildThreads: 1))
            extra = try HNSWPersistence.extras(for: hnsw)
        }
        var writer = IndexWriter(chunkBytes: chunkBytes)
        writer.leafSlack = slack
        try writer.write(layout: tree, extra: extra, to: path)
        for (r, id) in ids.enumerated() { catalogue.vectors[id] = Array(items.row(r)) }
    }

    /// A batch adding `count` random items from `firstID` and removing `removals`.
    func batch(adding count: Int, from firstID: UInt64, removing removals: [ItemID] = [], seed: UInt64) -> IndexBatch {
        IndexBatch(removals: removals, additions: (0..<count).map { ItemID(firstID + UInt64($0)) },
                   vectors: vectors(rows: count, cols: d, seed: seed))
    }
}

/// The README's update block, compiled as it stands (not run).
private func readmeUpdateBlock(newRows: [Float]) throws {
let updater = try Arbor.updater("items.arbor")
let summary = try updater.apply(IndexBatch(removals: [17], additions: [900_001, 17],
                                           vectors: try Matrix(rows: 2, cols: 64, values: newRows)))
print(summary.itemCount, try updater.reader.balance()?.rebuildReasons ?? [])
}

@Suite struct UpdateTests {
    /// An added item is found by the tree and the exact scan; the file verifies; counts follow.
    @Test func addedItemIsFound() throws {
        var f = try Fixture()
        defer { remove(f.path) }
        let updater = try Arbor.updater(f.path)
        let engine = try Arbor.open(f.path)
        let before = try engine.search(vector: [Float](repeating: 3, count: f.d), k: 1, using: .exact)
        var v = [Float](repeating: 0, count: f.d)
        v[2] = 50  // far out along one axis: the top item for a query along it
        let batch = IndexBatch(additions: [9000], vectors: try Matrix(rows: 1, cols: f.d, values: v))
        let summary = try updater.apply(batch)
        f.catalogue.apply(batch)
        #expect(summary == IndexUpdateSummary(added: 1, itemCount: f.n + 1, generation: 1))
        var q = [Float](repeating: 0, count: f.d)
        q[2] = 1
        for choice in [RetrieverChoice.exact, .tree(beam: 100)] {
            let top = try engine.search(vector: q, k: 3, using: choice)
            #expect(top.items.first?.item == 9000, "\(choice)")
            #expect(abs((top.items.first?.score ?? 0) - 50) < 1e-4)
        }
        #expect(before.items.count == 1)
        #expect(try engine.reader.currentHeader().itemCount == f.n + 1)
        #expect(try engine.reader.leaf(of: 9000) != nil)
        try engine.reader.verify()
        // A reader opened afterwards (another open of the file) sees it too.
        #expect(try IndexReader(path: f.path).currentHeader().generation == 1)
    }

    /// Removed items are never returned, whatever the retriever and k; the rest still are.
    @Test func removedItemsAreNeverReturned() throws {
        var f = try Fixture()
        defer { remove(f.path) }
        let updater = try Arbor.updater(f.path)
        let engine = try Arbor.open(f.path)
        let gone = (0..<40).map { ItemID(UInt64(100 + 6 * $0)) }
        let batch = IndexBatch(removals: gone)
        try updater.apply(batch)
        f.catalogue.apply(batch)
        let q = Array(vectors(rows: 1, cols: f.d, seed: 99).row(0))
        for choice in [RetrieverChoice.exact, .tree(beam: 10_000), .tree(beam: 8)] {
            let all = try engine.search(vector: q, k: 10_000, using: choice)
            #expect(Set(all.items.map(\.item)).isDisjoint(with: gone), "\(choice)")
        }
        let everything = try engine.search(vector: q, k: 10_000, using: .tree(beam: 10_000))
        #expect(everything.items.count == f.n - 40)
        for id in gone { #expect(try engine.reader.leaf(of: id) == nil) }
        try engine.reader.verify()
    }

    /// A replaced item (removed and added in one batch) is served with its new vector only.
    @Test func replacedItemTakesItsNewVector() throws {
        var f = try Fixture()
        defer { remove(f.path) }
        let updater = try Arbor.updater(f.path)
        let engine = try Arbor.open(f.path)
        var v = [Float](repeating: 0, count: f.d)
        v[5] = -40
        let batch = IndexBatch(removals: [150], additions: [150], vectors: try Matrix(rows: 1, cols: f.d, values: v))
        let summary = try updater.apply(batch)
        f.catalogue.apply(batch)
        #expect(summary.replaced == 1 && summary.itemCount == f.n)
        var q = [Float](repeating: 0, count: f.d)
        q[5] = -1
        let top = try engine.search(vector: q, k: 1, using: .tree(beam: 10_000))
        #expect(top.items.map(\.item) == [150])
        #expect(abs(top.items[0].score - 40) < 1e-4)
        let all = try engine.search(vector: q, k: 10_000, using: .exact)
        #expect(all.items.filter { $0.item == 150 }.count == 1)
        try engine.reader.verify()
    }

    /// After many batches (additions, removals, replacements; slack 2, so leaf parents fill up), a beam
    /// as wide as the widest level returns exactly the flat scan's top k, which is the in-memory
    /// catalogue's exact top k; the HNSW graph follows the same catalogue.
    @Test func wideBeamEqualsTheFlatScanAfterUpdates() throws {
        var f = try Fixture(slack: 2, graph: true)
        defer { remove(f.path) }
        let updater = try Arbor.updater(f.path)
        let engine = try Arbor.open(f.path)
        var next: UInt64 = 5000
        for round in 0..<12 {
            let live = f.catalogue.vectors.keys.sorted()
            let removals = (0..<6).map { live[(round * 37 + $0 * 29) % live.count] }
            var batch = f.batch(adding: 10, from: next, removing: removals, seed: 1000 + UInt64(round))
            // Replace two of the removed ids.
            batch.additions[0] = removals[0]
            batch.additions[1] = removals[1]
            next += 10
            try updater.apply(batch)
            f.catalogue.apply(batch)
        }
        #expect(try engine.reader.currentHeader().itemCount == f.catalogue.vectors.count)
        try engine.reader.verify()
        let queries = vectors(rows: 20, cols: f.d, seed: 5)
        for r in 0..<queries.rows {
            let q = Array(queries.row(r))
            let truth = f.catalogue.top(q, k: 25)
            let exact = try engine.search(vector: q, k: 25, using: .exact)
            let tree = try engine.search(vector: q, k: 25, using: .tree(beam: 100_000))
            #expect(exact.items.map(\.item) == truth)
            #expect(tree.items.map(\.item) == truth)
            for (a, b) in zip(exact.items, tree.items) { #expect(abs(a.score - b.score) < 1e-4) }
            let graph = try engine.search(vector: q, k: 25, using: .hnsw(efSearch: 100_000))
            #expect(graph.items.map(\.item) == truth)
        }
        // Several vectors at once (a multi-interest user): the tree runs them level by level over
        // the updated leaf runs, and the merge is the catalogue's top k of the best score per item.
        let interests = (0 ..< 3).map { Array(queries.row($0)) }
        let perInterest = try engine.search(vectors: interests, k: 25, using: .tree(beam: 100_000))
        let merged = ResultMerge.bestScorePerItem(perInterest, k: 25)
        var best: [(item: ItemID, score: Float)] = []
        for (id, v) in f.catalogue.vectors {
            var top = -Float.infinity
            for q in interests { top = max(top, zip(q, v).reduce(Float(0)) { $0 + $1.0 * $1.1 }) }
            best.append((id, top))
        }
        best.sort { $0.score > $1.score || ($0.score == $1.score && $0.item < $1.item) }
        #expect(merged.items.map(\.item) == best.prefix(25).map(\.item))
    }

    /// Four reader threads query (tree and exact, k = everything) while batches commit: every
    /// result is exactly the catalogue of one committed state, never a mix.
    @Test func readersSeeOnlyCommittedStates() throws {
        var f = try Fixture(n: 200, slack: 2)
        defer { remove(f.path) }
        // The plan, and the catalogue after each batch.
        var batches: [IndexBatch] = []
        var states: [Set<ItemID>] = [Set(f.catalogue.vectors.keys)]
        var next: UInt64 = 7000
        for b in 0..<20 {
            let live = states.last!.sorted()
            let removals = (0..<5).map { live[(b * 13 + $0 * 31) % live.count] }
            let batch = f.batch(adding: 5, from: next, removing: Array(Set(removals)), seed: 300 + UInt64(b))
            next += 5
            f.catalogue.apply(batch)
            batches.append(batch)
            states.append(Set(f.catalogue.vectors.keys))
        }
        let known = Set(states)
        let plan = batches
        let updater = try Arbor.updater(f.path)
        let engine = try Arbor.open(f.path)
        let done = Atomic<Bool>(false)
        let failures = PosixMutex<[String]>([])
        let queriesRun = Atomic<Int>(0)
        let q = Array(vectors(rows: 1, cols: f.d, seed: 77).row(0))
        DispatchQueue.concurrentPerform(iterations: 5) { worker in
            if worker == 0 {
                for batch in plan {
                    do { try updater.apply(batch) } catch { failures.withLock { $0.append("update: \(error)") } }
                    usleep(2_000)
                }
                done.store(true, ordering: .releasing)
                return
            }
            var rounds = 0
            while !done.load(ordering: .acquiring) || rounds < 3 {
                rounds += 1
                do {
                    let choice: RetrieverChoice = worker % 2 == 0 ? .exact : .tree(beam: 100_000)
                    let result = try engine.search(vector: q, k: 100_000, using: choice)
                    let seen = Set(result.items.map(\.item))
                    if seen.count != result.items.count || !known.contains(seen) {
                        failures.withLock { $0.append("worker \(worker): \(seen.count) items, not a committed state") }
                    }
                    queriesRun.add(1, ordering: .relaxed)
                } catch {
                    failures.withLock { $0.append("worker \(worker): \(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(queriesRun.load(ordering: .relaxed) >= 12)
        #expect(try engine.reader.currentHeader().generation == 20)
        try engine.reader.verify()
    }

    /// Bad batches are refused with the field named, and the index is left exactly as it was.
    @Test func badBatchesAreRefusedAndChangeNothing() throws {
        let f = try Fixture()
        defer { remove(f.path) }
        let updater = try Arbor.updater(f.path)
        let engine = try Arbor.open(f.path)
        let d = f.d
        let one = vectors(rows: 1, cols: d, seed: 3)
        var nan = one
        nan[0, 1] = .nan
        var huge = one
        huge[0, 0] = 2.6e38
        let cases: [(IndexBatch, String)] = [
            (IndexBatch(removals: [100, 4242]), "unknown item id 4242"),
            (IndexBatch(additions: [101], vectors: one), "duplicate item id 101"),
            (IndexBatch(additions: [9, 9], vectors: vectors(rows: 2, cols: d, seed: 1)), "duplicate item id 9"),
            (IndexBatch(removals: [100, 100]), "duplicate item id 100"),
            (IndexBatch(additions: [9], vectors: vectors(rows: 1, cols: d + 1, seed: 1)), "vectors to add: expected 8 values, found 9"),
            (IndexBatch(additions: [9, 10], vectors: one), "vectors to add (rows): expected 2 values, found 1"),
            (IndexBatch(additions: [9], vectors: nan), "vectors to add: row 0 holds NaN"),
            (IndexBatch(additions: [9], vectors: huge), "row 0 is too large"),
            (IndexBatch(additions: [ItemID(UInt64.max)], vectors: one), "reserved for free slots"),
            (IndexBatch(additions: [9], vectors: one, categories: [1]), "stores no categories"),
        ]
        for (batch, message) in cases {
            do {
                try updater.apply(batch)
                Issue.record("accepted: \(message)")
            } catch {
                #expect("\(error)".contains(message), "\(error)")
            }
        }
        let header = try engine.reader.currentHeader()
        #expect(header.generation == 0 && header.itemCount == f.n)
        #expect(try engine.reader.leaf(of: 100) != nil && engine.reader.leaf(of: 9) == nil)
        try engine.reader.verify()
    }

    /// A failure inside the write transaction (injected after the removals, after the additions,
    /// and just before the commit) leaves the index exactly as it was; the next batch commits.
    @Test func injectedFailuresLeaveTheIndexAsItWas() throws {
        let f = try Fixture()
        defer { remove(f.path) }
        let updater = try Arbor.updater(f.path)
        let engine = try Arbor.open(f.path)
        let q = Array(vectors(rows: 1, cols: f.d, seed: 11).row(0))
        let before = try engine.search(vector: q, k: 10_000, using: .tree(beam: 10_000))
        let batch = f.batch(adding: 7, from: 8000, removing: [100, 101, 102], seed: 12)
        for point in ["after-removals", "after-additions", "before-commit"] {
            UpdateFailure.arm(point, for: f.path)
            #expect(throws: IndexUpdateError.injected(point: point)) { try updater.apply(batch) }
            UpdateFailure.arm(nil, for: f.path)
            let now = try engine.search(vector: q, k: 10_000, using: .tree(beam: 10_000))
            #expect(now.items == before.items, "\(point)")
            #expect(try engine.reader.currentHeader().generation == 0)
            try engine.reader.verify()
        }
        try updater.apply(batch)
        #expect(try engine.reader.currentHeader().itemCount == f.n + 4)
    }

    /// With no slack, a full tree refuses an addition (typed error); a removal frees a slot for it.
    @Test func fullTreeRefusesAdditionsUntilASlotIsFree() throws {
        let f = try Fixture(slack: 0)
        defer { remove(f.path) }
        let updater = try Arbor.updater(f.path)
        let batch = f.batch(adding: 1, from: 9100, seed: 2)
        #expect(throws: IndexUpdateError.full(path: f.path, item: 9100, slots: f.n)) { try updater.apply(batch) }
        var freeing = batch
        freeing.removals = [123]
        let summary = try updater.apply(freeing)
        #expect(summary.itemCount == f.n && summary.generation == 1)
        let balance = try #require(try updater.reader.balance())
        #expect(balance.freeSlots == 0 && balance.added == 1 && balance.removed == 1)
        #expect(balance.rebuildReasons.contains("no free leaf slot is left"))
    }

    /// An updater must open the file before any reader of this process (one LMDB environment per
    /// file): opened after a reader, it is refused with a message that says so.
    @Test func updaterAfterAReaderIsRefused() throws {
        let f = try Fixture()
        defer { remove(f.path) }
        let engine = try Arbor.open(f.path)
        do {
            _ = try Arbor.updater(f.path)
            Issue.record("an updater opened over a read-only environment")
        } catch {
            #expect("\(error)".contains("open the writer before any reader"), "\(error)")
        }
        #expect(engine.itemCount == f.n)
    }

    /// A slack outside 0 ... 1024 is refused before anything is written.
    @Test func badSlackIsRefused() throws {
        let path = temporaryPath("slack")
        defer { remove(path) }
        let tree = try TreeBuilder.balancedKMeans(embeddings: vectors(rows: 20, cols: 4, seed: 1),
                                                  items: (0..<20).map { ItemID(UInt64($0)) }, options: .init(fanOut: 4))
        for bad in [-1, 1025] {
            var writer = IndexWriter()
            writer.leafSlack = bad
            #expect(throws: ArborError.invalidArgument(name: "leafSlack", reason: "must be in 0 ... 1024, got \(bad)")) {
                try writer.write(layout: tree, to: path)
            }
        }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    /// Files of an older format open and serve but are not updated in place.
    @Test func olderFormatsAreReadOnly() throws {
        let path = temporaryPath("v2")
        defer { remove(path) }
        let items = vectors(rows: 50, cols: 4, seed: 1)
        let tree = try TreeBuilder.balancedKMeans(embeddings: items, items: (0..<50).map { ItemID(UInt64($0)) },
                                                  options: .init(fanOut: 4))
        var writer = IndexWriter()
        writer.formatVersion = 2
        writer.leafSlack = 3  // ignored: format 2 has no slots
        try writer.write(layout: tree, to: path)
        do {
            _ = try Arbor.updater(path)
            Issue.record("a format 2 file was opened for updates")
        } catch let error as IndexUpdateError {
            guard case .notUpdatable = error else { Issue.record("\(error)"); return }
        }
        let reader = try IndexReader(path: path)
        #expect(reader.header.formatVersion == 2 && reader.header.leafSlots == 50)
        #expect(try reader.balance() == nil)
        try reader.verify()
        #expect(try reader.loadLayout() == tree)
        // Upgraded explicitly: format 3 with free slots, the same tree, then updatable.
        let header = try IndexUpgrade.upgrade(path, leafSlack: 2)
        #expect(header.formatVersion == IndexFormat.version && header.leafSlack == 2 && header.itemCount == 50)
        let updater = try IndexUpdater(path: path)
        #expect(try updater.reader.loadLayout() == tree)
        let added = try updater.apply(IndexBatch(additions: [777], vectors: vectors(rows: 1, cols: 4, seed: 9)))
        #expect(added.itemCount == 51)
        try updater.reader.verify()
    }

    /// The in-memory tree loaded from an updated file is compact and valid: the slots of every leaf
    /// parent's live items, in order.
    @Test func loadedLayoutLeavesFreeSlotsOut() throws {
        var f = try Fixture()
        defer { remove(f.path) }
        let updater = try Arbor.updater(f.path)
        let batch = f.batch(adding: 9, from: 6000, removing: [105, 106, 300], seed: 21)
        try updater.apply(batch)
        f.catalogue.apply(batch)
        let layout = try updater.reader.loadLayout()
        try layout.validate()
        #expect(Set(layout.leafItems) == Set(f.catalogue.vectors.keys))
        let (matrix, ids) = try updater.reader.loadLeafMatrix()
        #expect(Set(ids) == Set(f.catalogue.vectors.keys) && matrix.rows == ids.count)
        for (r, id) in ids.enumerated() { #expect(Array(matrix.row(r)) == f.catalogue.vectors[id]!) }
    }
}
