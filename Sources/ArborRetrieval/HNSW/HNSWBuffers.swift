// Low-level pieces of HNSW: growable raw buffers (the flat graph storage), the candidate heap, the
// per-thread search context (epoch-stamped visited set, heaps, scratch), its pool, and the striped
// locks of the multi-threaded build. All unsafe memory of the HNSW code lives in these types.
//
// The locks are `PosixMutex` (pthread), not `Synchronization.Mutex`: on Linux `Mutex` waits on a
// futex, which the thread sanitizer cannot see, so it reported every guarded access as a race.

import ArborCore

/// A growable, manually managed array of plain values. Not copy-on-write: its owner
/// (``HNSWStorage``) frees it and copies it explicitly.
struct HNSWRawBuffer<Element: BitwiseCopyable> {
    private(set) var base: UnsafeMutablePointer<Element>
    private(set) var count: Int
    private(set) var capacity: Int

    init() {
        base = .allocate(capacity: 1)
        count = 0
        capacity = 1
    }

    init(copying source: UnsafeBufferPointer<Element>) {
        self.init()
        reserve(source.count)
        if let from = source.baseAddress { base.initialize(from: from, count: source.count) }
        count = source.count
    }

    /// Makes room for `total` elements (doubling), keeping the contents.
    mutating func reserve(_ total: Int) {
        guard total > capacity else { return }
        let newCapacity = max(total, capacity * 2)
        let fresh = UnsafeMutablePointer<Element>.allocate(capacity: newCapacity)
        fresh.initialize(from: base, count: count)
        base.deallocate()
        base = fresh
        capacity = newCapacity
    }

    /// Appends `n` copies of `value`.
    mutating func append(repeating value: Element, count n: Int) {
        reserve(count + n)
        (base + count).initialize(repeating: value, count: n)
        count += n
    }

    /// Appends the elements of `source`.
    mutating func append(contentsOf source: UnsafeBufferPointer<Element>) {
        reserve(count + source.count)
        if let from = source.baseAddress { (base + count).initialize(from: from, count: source.count) }
        count += source.count
    }

    /// Shrinks to the first `n` elements.
    mutating func truncate(to n: Int) {
        precondition(n <= count)
        count = n
    }

    /// An independent copy with the same contents.
    func copy() -> HNSWRawBuffer { HNSWRawBuffer(copying: UnsafeBufferPointer(start: base, count: count)) }

    /// The contents as an `Array`.
    var array: [Element] { Array(UnsafeBufferPointer(start: base, count: count)) }

    func free() { base.deallocate() }

    subscript(i: Int) -> Element {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }
}

/// A (distance, node) pair; smaller distance = more similar.
struct HNSWCandidate: Equatable {
    var distance: Float
    var node: Int32
}

/// A binary max-heap (largest distance on top) over caller-provided memory. Used as is for the result
/// list (`top`, worst on top) and with negated distances for the candidate queue (closest on top),
/// as hnswlib does with `std::priority_queue`. The caller guarantees the capacity.
struct HNSWCandidateHeap {
    let base: UnsafeMutablePointer<HNSWCandidate>
    private(set) var count = 0

    init(base: UnsafeMutablePointer<HNSWCandidate>) { self.base = base }

    var isEmpty: Bool { count == 0 }
    var top: HNSWCandidate { base[0] }

    mutating func push(_ distance: Float, _ node: Int32) {
        var i = count
        count &+= 1
        while i > 0 {
            let parent = (i &- 1) >> 1
            if base[parent].distance >= distance { break }
            base[i] = base[parent]
            i = parent
        }
        base[i] = HNSWCandidate(distance: distance, node: node)
    }

    @discardableResult
    mutating func pop() -> HNSWCandidate {
        let result = base[0]
        count &-= 1
        if count > 0 {
            let last = base[count]
            var i = 0
            while true {
                var child = 2 &* i &+ 1
                if child >= count { break }
                if child &+ 1 < count, base[child &+ 1].distance > base[child].distance { child &+= 1 }
                if base[child].distance <= last.distance { break }
                base[i] = base[child]
                i = child
            }
            base[i] = last
        }
        return result
    }

    mutating func removeAll() { count = 0 }
}

/// Everything one search (or one insertion) needs, allocated once and reused: an epoch-stamped visited
/// set (a node is visited iff `visited[node] == epoch`; a new search bumps the epoch instead of
/// clearing), the two heaps, and scratch lists. One context is used by one thread at a time; the
/// ``HNSWContextPool`` hands them out.
final class HNSWSearchContext: @unchecked Sendable {
    private(set) var visited: UnsafeMutablePointer<UInt32>
    private(set) var visitedCapacity: Int
    private(set) var epoch: UInt32 = 0
    /// Result heap: `ef + 1` slots.
    private(set) var topStorage: UnsafeMutablePointer<HNSWCandidate>
    /// HNSWCandidate queue: one slot per node (a node enters at most once per search).
    private(set) var queueStorage: UnsafeMutablePointer<HNSWCandidate>
    /// Sorted results / selection scratch: `ef + 1` slots.
    private(set) var sorted: UnsafeMutablePointer<HNSWCandidate>
    private(set) var efCapacity: Int
    /// Neighbour-list copy (read under a lock during concurrent builds): `M0` slots.
    let neighbours: UnsafeMutablePointer<Int32>
    /// Pruning scratch: `prune` holds a full list plus `M` candidates plus one (`M0 + M + 1`),
    /// `pruned` holds `M0 + 1`.
    let prune: UnsafeMutablePointer<HNSWCandidate>
    let pruned: UnsafeMutablePointer<HNSWCandidate>
    /// The prepared (normalised / augmented) query: `stride` floats.
    let query: UnsafeMutablePointer<Float>
    /// One neighbour list's unvisited nodes and their distances (``HNSWGraphPointers/distances``):
    /// `M0` slots each.
    let batchNodes: UnsafeMutablePointer<Int32>
    let batchDistances: UnsafeMutablePointer<Float>

    init(nodes: Int, ef: Int, m0: Int, stride: Int) {
        visitedCapacity = max(nodes, 1)
        visited = .allocate(capacity: visitedCapacity)
        visited.initialize(repeating: 0, count: visitedCapacity)
        queueStorage = .allocate(capacity: visitedCapacity + 1)
        efCapacity = max(ef, m0) + 1
        topStorage = .allocate(capacity: efCapacity + 1)
        sorted = .allocate(capacity: efCapacity + 1)
        neighbours = .allocate(capacity: m0)
        prune = .allocate(capacity: m0 + m0 / 2 + 1)  // a full list plus M new entries plus one
        pruned = .allocate(capacity: m0 + 1)
        query = .allocate(capacity: max(stride, 1))
        batchNodes = .allocate(capacity: m0)
        batchDistances = .allocate(capacity: m0)
    }

    deinit {
        visited.deallocate()
        queueStorage.deallocate()
        topStorage.deallocate()
        sorted.deallocate()
        neighbours.deallocate()
        prune.deallocate()
        pruned.deallocate()
        query.deallocate()
        batchNodes.deallocate()
        batchDistances.deallocate()
    }

    /// Grows the buffers for `nodes` nodes and lists of `ef` (allocates only when the index grew or a
    /// larger `ef` is asked for than ever before on this context).
    func prepare(nodes: Int, ef: Int) {
        if nodes > visitedCapacity {
            let newCapacity = max(nodes, visitedCapacity * 2)
            visited.deallocate()
            visited = .allocate(capacity: newCapacity)
            visited.initialize(repeating: 0, count: newCapacity)
            epoch = 0
            queueStorage.deallocate()
            queueStorage = .allocate(capacity: newCapacity + 1)
            visitedCapacity = newCapacity
        }
        if ef + 1 > efCapacity {
            efCapacity = ef + 1
            topStorage.deallocate()
            topStorage = .allocate(capacity: efCapacity + 1)
            sorted.deallocate()
            sorted = .allocate(capacity: efCapacity + 1)
        }
    }

    /// Starts a new visited generation and returns its stamp. O(1), except every 2³² searches.
    func nextEpoch() -> UInt32 {
        if epoch == .max {
            visited.update(repeating: 0, count: visitedCapacity)
            epoch = 0
        }
        epoch &+= 1
        return epoch
    }
}

/// A thread-safe free list of ``HNSWSearchContext``s: a search takes one (creating it only when all are in
/// use, i.e. at most one per concurrent thread) and returns it, so steady-state queries allocate nothing.
final class HNSWContextPool: Sendable {
    private let free = PosixMutex<[HNSWSearchContext]>([])
    let m0: Int
    let stride: Int

    init(m0: Int, stride: Int) {
        self.m0 = m0
        self.stride = stride
    }

    /// Runs `body` with a context prepared for `nodes` nodes and lists of `ef`.
    func withContext<R, E: Error>(nodes: Int, ef: Int, _ body: (HNSWSearchContext) throws(E) -> R) throws(E) -> R {
        let context = free.withLock { $0.popLast() } ?? HNSWSearchContext(nodes: nodes, ef: ef, m0: m0, stride: stride)
        context.prepare(nodes: nodes, ef: ef)
        defer {
            free.withLock { list in
                list.append(context)
            }
        }
        return try body(context)
    }
}

/// Lock striping for neighbour lists during a concurrent build: node `i` is guarded by stripe
/// `i mod stripes`. A thread holds at most one stripe at a time, so there is no lock ordering to get
/// wrong and no deadlock.
final class HNSWStripedLocks: Sendable {
    private let stripes: [PosixMutex<Void>]
    private let mask: Int

    /// `count` is rounded up to a power of two.
    init(count: Int = 4096) {
        var n = 1
        while n < count { n <<= 1 }
        stripes = (0..<n).map { _ in PosixMutex(()) }
        mask = n - 1
    }

    @inline(__always)
    func withLock<R>(_ node: Int32, _ body: () -> R) -> R {
        stripes[Int(node) & mask].withLock { _ in body() }
    }
}
