// HNSWIndex: the public face of the HNSW graph (build/add, delete, search, export/import).

import ArborMath
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Hierarchical Navigable Small World graph over item vectors (Malkov & Yashunin 2016/2018),
/// modelled on hnswlib: flat arrays (no per-node objects), `M` neighbours per upper layer and `2M` on
/// layer 0, the diversity heuristic, and searches that allocate nothing but their result.
///
/// Build knobs are in ``HNSWConfiguration``; query knobs in `SearchParameters` (`k`, `efSearch`).
///
/// Value semantics and threads: `HNSWIndex` is a value type with copy-on-write storage.
/// - `search` is safe from many threads at once (each call borrows a per-thread context from a pool).
/// - `add`, `markDeleted` and `unmarkDeleted` are `mutating`: Swift's exclusivity rules already keep
///   them from running concurrently with a search on the same variable. A copy taken before a mutation
///   (e.g. the one inside an ``HNSWRetriever``) keeps seeing the old graph; the mutation copies the
///   storage first (O(size of the graph)) when it is shared.
/// - `add` itself may use several threads (``HNSWConfiguration/buildThreads``).
///
/// Example:
/// ```swift
/// var index = try HNSWIndex(dimension: 32, configuration: .init(metric: .cosine, m: 16, efConstruction: 200))
/// try index.add(items, ids: itemIDs)                       // items: Matrix n × 32
/// let result = try index.search(userVector, parameters: SearchParameters(k: 10, efSearch: 64))
/// let retriever = HNSWRetriever(index: index)              // for the benchmark runner
/// ```
public struct HNSWIndex: Sendable {
    /// The build configuration (validated).
    public let configuration: HNSWConfiguration
    /// Dimension of item and query vectors as given.
    public let dimension: Int
    /// The norm bound `B` of ``HNSWMetric/normAugmentedInnerProduct``: fixed by the configuration or by
    /// the first non-empty batch; `nil` before that and for other metrics.
    public private(set) var normBound: Float?
    /// Number of nodes with a deletion mark.
    public private(set) var deletedCount = 0

    private var storage: HNSWStorage
    private let pool: HNSWContextPool
    private let kernel: HNSWDotKernel
    private var generator: HNSWSplitMix64
    private var nodeOf: [ItemID: Int32] = [:]

    /// An empty index for `dimension`-long vectors.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` for `dimension < 1`, a configuration
    ///   out of range (see ``HNSWConfiguration/validated()``), or (named `"kernel"`) an explicit
    ///   ``HNSWConfiguration/kernel`` this CPU cannot run.
    public init(dimension: Int, configuration: HNSWConfiguration = HNSWConfiguration()) throws(ArborError) {
        guard dimension >= 1 else {
            throw .invalidArgument(name: "dimension", reason: "must be at least 1, got \(dimension)")
        }
        let configuration = try configuration.validated()
        self.configuration = configuration
        self.dimension = dimension
        let stride = configuration.metric == .normAugmentedInnerProduct ? dimension + 1 : dimension
        storage = HNSWStorage(stride: stride, m: configuration.m, m0: configuration.maxNeighboursLayer0)
        pool = HNSWContextPool(m0: configuration.maxNeighboursLayer0, stride: stride)
        kernel = try HNSWDotKernel.resolve(configuration.kernel, dimension: stride)
        generator = HNSWSplitMix64(seed: configuration.seed)
        normBound = configuration.metric == .normAugmentedInnerProduct ? configuration.normBound : nil
    }

    /// Builds an index over the rows of `vectors` (see ``add(_:ids:progress:cancellation:)``).
    public static func build(
        _ vectors: Matrix, ids: [ItemID]? = nil, configuration: HNSWConfiguration = HNSWConfiguration(),
        progress: any ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil
    ) throws -> HNSWIndex {
        var index = try HNSWIndex(dimension: vectors.cols, configuration: configuration)
        try index.add(vectors, ids: ids, progress: progress, cancellation: cancellation)
        return index
    }

    // MARK: - Shape

    /// Number of nodes, deleted ones included.
    public var count: Int { storage.count }
    /// Number of items a search can return (nodes without a deletion mark).
    public var liveCount: Int { storage.count - deletedCount }
    /// Width of a stored vector (`dimension + 1` for the norm-augmented inner product).
    public var storedDimension: Int { storage.stride }
    /// The top layer of the graph, −1 when empty.
    public var maxLevel: Int { Int(storage.maxLevel) }
    /// The dot-product kernel this index computes distances with: `.portable`, `.avx2`, `.avx512` or
    /// `.blas` (``HNSWConfiguration/kernel`` resolved at creation; `.automatic` by CPU features).
    public var resolvedKernel: HNSWDistanceKernel { kernel.configured }
    /// The kernel whose distances chose the graph's links, stored with the graph: the
    /// ``resolvedKernel`` of the index that added the items; `nil` while empty, for a graph stored
    /// before Arbor recorded it, or when items were added with different kernels (a graph loaded
    /// with another kernel, then grown).
    public private(set) var buildKernel: HNSWDistanceKernel?
    /// Bytes held by the graph's arrays (vectors, levels, neighbour slots and counts, marks, ids), not
    /// counting the id dictionary and the per-thread search contexts; for the benchmark's size column.
    public var graphBytes: Int {
        storage.vectors.count * 4 + storage.levels.count * 4 + storage.upperStart.count * 4
            + storage.layer0.count * 4 + storage.layer0Counts.count * 4 + storage.upper.count * 4
            + storage.upperCounts.count * 4 + storage.deleted.count + storage.ids.count * 8
    }
    /// Whether `id` is in the index (deleted or not).
    public func contains(_ id: ItemID) -> Bool { nodeOf[id] != nil }
    /// Whether `id` carries a deletion mark.
    /// - Throws: ``ArborError/unknownItem(_:)`` if `id` is not in the index.
    public func isDeleted(_ id: ItemID) throws(ArborError) -> Bool {
        guard let node = nodeOf[id] else { throw .unknownItem(id) }
        return storage.deleted[Int(node)]
    }

    // MARK: - Add and delete

    /// Inserts the rows of `vectors` as items `ids` (default: `count ..< count + rows`, i.e. node numbers).
    ///
    /// All inputs are checked before anything changes. Levels are drawn sequentially from the seeded
    /// generator, then nodes are linked by ``HNSWConfiguration/buildThreads`` threads (1 = the caller's
    /// thread, deterministic). Complexity ≈ O(rows · efConstruction · M · log n) distance computations.
    /// Progress is reported as task `"hnsw build"` every 1,024 items.
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` (columns ≠ `dimension`, or
    ///   `ids.count ≠ rows`), ``ArborError/nonFiniteValue(field:row:)``, ``ArborError/duplicateItem(_:)``
    ///   (an id already present or repeated), ``ArborError/invalidArgument(name:reason:)`` (a zero vector
    ///   under cosine; a norm above the bound under the norm-augmented inner product);
    ///   `CancellationError` when `cancellation` fires: items linked so far stay, the rest are dropped
    ///   and their ids are free again.
    public mutating func add(
        _ vectors: Matrix, ids: [ItemID]? = nil, progress: any ProgressReporter = SilentProgress(),
        cancellation: CancellationFlag? = nil
    ) throws {
        guard vectors.cols == dimension else {
            throw ArborError.dimensionMismatch(field: "item vectors", expected: dimension, found: vectors.cols)
        }
        let rows = vectors.rows
        if rows == 0 { return }
        if let row = vectors.firstNonFiniteRow() { throw ArborError.nonFiniteValue(field: "item vectors", row: row) }
        let start = storage.count
        let newIDs = ids ?? (start ..< start + rows).map { ItemID(UInt64($0)) }
        guard newIDs.count == rows else {
            throw ArborError.dimensionMismatch(field: "ids", expected: rows, found: newIDs.count)
        }
        var batch = Set<ItemID>(minimumCapacity: rows)
        for id in newIDs where nodeOf[id] != nil || !batch.insert(id).inserted { throw ArborError.duplicateItem(id) }
        guard start + rows < Int(Int32.max) else {
            throw ArborError.invalidArgument(name: "item vectors", reason: "an HNSW index holds fewer than 2^31 items")
        }
        // Stored form of every row, checked before any change.
        var bound = normBound
        if configuration.metric == .normAugmentedInnerProduct, bound == nil {
            var largest: Float = 0
            for r in 0..<rows { largest = max(largest, Self.norm(vectors.row(r))) }
            guard largest > 0 else {
                throw ArborError.invalidArgument(name: "item vectors", reason: "all zero: no norm bound for the norm-augmented inner product")
            }
            bound = largest
        }
        let stride = storage.stride
        var stored = [Float](repeating: 0, count: rows * stride)
        for r in 0..<rows {
            try prepareItem(vectors.row(r), row: r, bound: bound, into: &stored, at: r * stride)
        }

        // From here on the index changes.
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        buildKernel = start == 0 ? kernel.configured : (buildKernel == kernel.configured ? buildKernel : nil)
        nodeOf.reserveCapacity(start + rows)
        for (r, id) in newIDs.enumerated() { nodeOf[id] = Int32(start + r) }
        normBound = bound
        let multiplier = configuration.levelMultiplier
        stored.withUnsafeBufferPointer { all in
            for r in 0..<rows {
                let level = Int32(min(Double(HNSWGraph.maximumLevel), (-log(generator.nextUnit()) * multiplier).rounded(.down)))
                storage.appendNode(vector: UnsafeBufferPointer(rebasing: all[r * stride ..< (r + 1) * stride]),
                                   level: level, id: newIDs[r])
            }
        }
        let total = storage.count
        let inserted = link(from: start, to: total, progress: progress, cancellation: cancellation)
        progress.finish(task: "hnsw build")
        if inserted < total {
            for node in inserted..<total { nodeOf[ItemID(rawValue: storage.ids[node])] = nil }
            storage.truncate(nodes: inserted)
            throw CancellationError()
        }
    }

    /// Links nodes `start ..< end` (already appended) into the graph; returns the end of the linked
    /// prefix (`end` unless cancelled).
    private mutating func link(
        from start: Int, to end: Int, progress: any ProgressReporter, cancellation: CancellationFlag?
    ) -> Int {
        let g = storage.pointers(kernel: kernel)
        let entry = PosixMutex(HNSWEntryPoint(node: storage.entryPoint, level: storage.maxLevel))
        // Clamped to the node count before any allocation: a larger list changes nothing (it already
        // holds every reachable node) and `Int.max` would overflow the buffer sizes.
        let efConstruction = min(max(configuration.efConstruction, configuration.m), end)
        let rule = configuration.neighbourSelection
        let threads = min(configuration.buildThreads, end - start)
        let pool = self.pool
        let batch = end - start
        var linkedEnd = start
        if threads <= 1 {
            pool.withContext(nodes: end, ef: efConstruction) { ctx in
                for i in start..<end {
                    if cancellation?.isCancelled == true { break }
                    g.insert(Int32(i), efConstruction: efConstruction, rule: rule, entry: entry, context: ctx, locks: nil)
                    linkedEnd = i + 1
                    if (i - start + 1) % 1024 == 0 { progress.report(task: "hnsw build", done: i - start + 1, total: batch) }
                }
            }
        } else {
            var first = start
            if entry.withLock({ $0.node }) < 0 {  // the first node becomes the entry point, alone
                g.insert(Int32(start), efConstruction: efConstruction, rule: rule, entry: entry,
                         context: HNSWSearchContext(nodes: 1, ef: 1, m0: g.m0, stride: g.stride), locks: nil)
                first = start + 1
            }
            let work = HNSWBuildWork(next: first)
            let alreadyDone = first - start
            let locks = HNSWStripedLocks()
            BLAS.concurrentPerform(iterations: threads) { _ in
                pool.withContext(nodes: end, ef: efConstruction) { ctx in
                    while cancellation?.isCancelled != true {
                        let i = work.next.add(1, ordering: .relaxed).oldValue
                        if i >= end { break }
                        g.insert(Int32(i), efConstruction: efConstruction, rule: rule, entry: entry,
                                 context: ctx, locks: locks)
                        let done = work.done.add(1, ordering: .relaxed).newValue + alreadyDone
                        if done % 1024 == 0 { progress.report(task: "hnsw build", done: done, total: batch) }
                    }
                }
            }
            // Every index handed out below `end` was inserted (workers check cancellation before taking one).
            linkedEnd = min(work.next.load(ordering: .relaxed), end)
        }
        let state = entry.withLock { $0 }
        storage.entryPoint = state.node
        storage.maxLevel = state.level
        return linkedEnd
    }

    /// Marks `id` deleted: searches still traverse its node but never return it. O(1).
    /// Marking an already deleted item does nothing.
    /// - Throws: ``ArborError/unknownItem(_:)``.
    public mutating func markDeleted(_ id: ItemID) throws(ArborError) {
        guard let node = nodeOf[id] else { throw .unknownItem(id) }
        if storage.deleted[Int(node)] { return }
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        storage.deleted[Int(node)] = true
        deletedCount += 1
    }

    /// Removes the deletion mark of `id`. O(1). Unmarking a live item does nothing.
    /// - Throws: ``ArborError/unknownItem(_:)``.
    public mutating func unmarkDeleted(_ id: ItemID) throws(ArborError) {
        guard let node = nodeOf[id] else { throw .unknownItem(id) }
        if !storage.deleted[Int(node)] { return }
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        storage.deleted[Int(node)] = false
        deletedCount -= 1
    }

    // MARK: - Search

    /// The `parameters.k` most similar live items to `vector`, best first (ties: smaller item id).
    ///
    /// Greedy descent from the entry point through the upper layers, then ef-search on layer 0 with
    /// `ef = max(parameters.efSearch, parameters.k)` (an `efSearch` below `k` is raised to `k`).
    /// Before any arithmetic or allocation, `k` is lowered to ``liveCount`` and `ef` to ``count``, so
    /// any positive `k` and `efSearch` (`Int.max` included) are accepted.
    /// Deleted and `excluded` items are traversed but never returned. When `ef ≥ count` (the graph would
    /// visit every node anyway) or `k ≥` ``liveCount`` (the caller wants every item), the index scans all
    /// nodes exactly instead: in particular a `k` larger than ``liveCount`` returns all live items that
    /// are not excluded (fewer than `k`), exactly ranked, without throwing. An empty index (or one whose
    /// items are all deleted) returns no items.
    ///
    /// Scores: `q · x` (``HNSWMetric/innerProduct``, ``HNSWMetric/normAugmentedInnerProduct``) or the
    /// cosine (``HNSWMetric/cosine``). Statistics: `modelEvaluations` = distance computations, `steps` =
    /// hops (neighbour lists read, all layers).
    ///
    /// Thread safety: safe from many threads at once. Allocates only the returned array (after the
    /// first query of each thread, and after the index grows or a larger `ef` is first used).
    /// Complexity ≈ O(ef · M0 · log n) distance computations, each O(dimension).
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` or
    ///   ``ArborError/nonFiniteValue(field:row:)`` for a bad vector, ``ArborError/invalidArgument(name:reason:)``
    ///   for `k < 1`, `efSearch < 1`, or a zero vector under cosine.
    public func search(
        _ vector: [Float], parameters: SearchParameters, excluded: Set<ItemID> = []
    ) throws(ArborError) -> SearchResult {
        let parameters = try parameters.validated()
        try validateQueryVector(vector, dimension: dimension)
        let n = storage.count
        if n == 0 || liveCount == 0 { return SearchResult(items: []) }
        let k = min(parameters.k, liveCount), ef = min(max(parameters.efSearch, k), n)
        let g = storage.pointers(kernel: kernel)
        let filter = HNSWResultFilter(skipDeleted: deletedCount > 0 || !excluded.isEmpty, excluded: excluded.isEmpty ? nil : excluded)
        let scale = normBound ?? 1
        let entryPoint = storage.entryPoint, top = Int(storage.maxLevel)
        return try pool.withContext(nodes: n, ef: ef) { (ctx) throws(ArborError) -> SearchResult in
            try prepareQuery(vector, into: ctx.query)
            let q = UnsafePointer(ctx.query)
            var statistics = SearchStatistics()
            var results: HNSWCandidateHeap
            if ef >= n || k >= liveCount {
                // Exact scan. Every candidate is kept until the sort, so ties at the cut-off go to the
                // smaller item id (a heap of k would drop an arbitrary one of them).
                var all: [(distance: Float, id: UInt64)] = []
                all.reserveCapacity(n)
                for node in 0..<Int32(n) where filter.accepts(node, g) {
                    all.append((g.distance(q, node), g.ids[Int(node)]))
                }
                all.sort { $0.distance != $1.distance ? $0.distance < $1.distance : $0.id < $1.id }
                statistics.modelEvaluations = n
                let items = all.prefix(k).map { ScoredItem(item: ItemID(rawValue: $0.id), score: -$0.distance * scale) }
                return SearchResult(items: items, statistics: statistics)
            } else {
                let entryDistance = g.distance(q, entryPoint)
                statistics.modelEvaluations = 1
                let (start, startDistance) = g.greedyDescent(
                    query: q, entry: entryPoint, entryDistance: entryDistance, from: top, to: 0,
                    context: ctx, locks: nil, statistics: &statistics)
                results = g.searchLayer(
                    query: q, entry: start, entryDistance: startDistance, layer: 0, ef: ef, filter: filter,
                    context: ctx, locks: nil, statistics: &statistics)
            }
            let found = g.drainSorted(&results, into: ctx.sorted)
            var items = [ScoredItem]()
            items.reserveCapacity(found)
            for i in 0..<found {
                let c = ctx.sorted[i]
                items.append(ScoredItem(item: ItemID(rawValue: g.ids[Int(c.node)]), score: -c.distance * scale))
            }
            // Equal scores: smaller item id first, before the cut to k (ties at the cut-off by id).
            for i in items.indices.dropFirst() {
                var j = i
                let x = items[i]
                while j > 0, items[j - 1].score == x.score, items[j - 1].item > x.item {
                    items[j] = items[j - 1]
                    j -= 1
                }
                items[j] = x
            }
            if items.count > k { items.removeLast(items.count - k) }
            return SearchResult(items: items, statistics: statistics)
        }
    }

    // MARK: - Vector transforms

    private static func norm(_ v: ArraySlice<Float>) -> Float {
        var s: Float = 0
        for x in v { s += x * x }
        return s.squareRoot()
    }

    /// Writes the stored form of item row `r` (see ``HNSWMetric``) at `stored[offset...]`.
    private func prepareItem(
        _ v: ArraySlice<Float>, row r: Int, bound: Float?, into stored: inout [Float], at offset: Int
    ) throws(ArborError) {
        switch configuration.metric {
        case .innerProduct:
            for (j, x) in v.enumerated() { stored[offset + j] = x }
        case .cosine:
            let norm = Self.norm(v)
            guard norm > 0 else {
                throw .invalidArgument(name: "item vectors", reason: "row \(r) is zero: it has no cosine")
            }
            for (j, x) in v.enumerated() { stored[offset + j] = x / norm }
        case .normAugmentedInnerProduct:
            let b = bound!, norm = Self.norm(v)
            guard norm <= b * (1 + 1e-6) else {
                throw .invalidArgument(
                    name: "item vectors",
                    reason: "row \(r) has norm \(norm), above the norm bound \(b) fixed for this index; rebuild or set HNSWConfiguration.normBound")
            }
            for (j, x) in v.enumerated() { stored[offset + j] = x / b }
            let ratio = norm / b
            stored[offset + dimension] = max(0, 1 - ratio * ratio).squareRoot()
        }
    }

    /// Writes the stored form of a query (normalised for cosine, `[q, 0]` for the augmented metric).
    private func prepareQuery(_ v: [Float], into q: UnsafeMutablePointer<Float>) throws(ArborError) {
        switch configuration.metric {
        case .innerProduct:
            for j in 0..<dimension { q[j] = v[j] }
        case .cosine:
            let norm = Self.norm(v[...])
            guard norm > 0 else { throw .invalidArgument(name: "query vector", reason: "zero vector: it has no cosine") }
            for j in 0..<dimension { q[j] = v[j] / norm }
        case .normAugmentedInnerProduct:
            for j in 0..<dimension { q[j] = v[j] }
            q[dimension] = 0
        }
    }

    // MARK: - Raw graph (persistence)

    /// The graph as plain arrays (a copy, O(size)), for the index file. See ``HNSWGraph`` for shapes.
    public var graph: HNSWGraph {
        HNSWGraph(
            configuration: configuration, dimension: dimension, normBound: normBound,
            vectors: storage.vectors.array, ids: storage.ids.array.map { ItemID(rawValue: $0) },
            deleted: storage.deleted.array, levels: storage.levels.array,
            layer0Neighbours: storage.layer0.array, layer0Counts: storage.layer0Counts.array,
            upperNeighbours: storage.upper.array, upperCounts: storage.upperCounts.array,
            entryPoint: storage.entryPoint, buildKernel: buildKernel)
    }

    /// An index over a graph exported by ``graph`` (e.g. read back from the index file), after
    /// ``HNSWGraph/validate()``. O(size of the graph). Items added later draw levels from a generator
    /// seeded with the configuration's seed mixed with the node count.
    ///
    /// `kernel` replaces the stored ``HNSWConfiguration/kernel`` (e.g. `.automatic` to open on any CPU
    /// a graph whose configuration asked for `.avx512`); `nil` keeps it. The graph's links stay as
    /// built; ``buildKernel`` keeps recording the kernel that built them.
    /// - Throws: the ``ArborError`` of ``HNSWGraph/validate()`` naming the first broken invariant, or
    ///   the kernel error of ``init(dimension:configuration:)``.
    public init(graph: HNSWGraph, kernel: HNSWDistanceKernel? = nil) throws(ArborError) {
        try graph.validate()
        var configuration = graph.configuration
        if let kernel { configuration.kernel = kernel }
        try self.init(dimension: graph.dimension, configuration: configuration)
        let n = graph.count
        graph.vectors.withUnsafeBufferPointer { storage.vectors.append(contentsOf: $0) }
        graph.levels.withUnsafeBufferPointer { storage.levels.append(contentsOf: $0) }
        var block: Int32 = 0
        storage.upperStart.reserve(n)
        for level in graph.levels {
            storage.upperStart.append(repeating: block, count: 1)
            block += level
        }
        graph.layer0Neighbours.withUnsafeBufferPointer { storage.layer0.append(contentsOf: $0) }
        graph.layer0Counts.withUnsafeBufferPointer { storage.layer0Counts.append(contentsOf: $0) }
        graph.upperNeighbours.withUnsafeBufferPointer { storage.upper.append(contentsOf: $0) }
        graph.upperCounts.withUnsafeBufferPointer { storage.upperCounts.append(contentsOf: $0) }
        graph.deleted.withUnsafeBufferPointer { storage.deleted.append(contentsOf: $0) }
        graph.ids.map(\.rawValue).withUnsafeBufferPointer { storage.ids.append(contentsOf: $0) }
        storage.entryPoint = graph.entryPoint
        storage.maxLevel = n == 0 ? -1 : graph.levels[Int(graph.entryPoint)]
        for (i, id) in graph.ids.enumerated() { nodeOf[id] = Int32(i) }
        deletedCount = graph.deleted.count(where: { $0 })
        normBound = graph.configuration.metric == .normAugmentedInnerProduct ? graph.normBound : nil
        buildKernel = graph.buildKernel
        generator = HNSWSplitMix64(seed: graph.configuration.seed ^ (UInt64(n) &* 0x9E37_79B9_7F4A_7C15))
    }
}

/// Shared counters of a concurrent build.
private final class HNSWBuildWork: Sendable {
    let next: Atomic<Int>
    let done = Atomic<Int>(0)
    init(next: Int) { self.next = Atomic(next) }
}
