/// Keeps the best `k` of a stream of `(score, id)` pairs: a bounded binary min-heap whose root is
/// the worst pair kept. Higher scores are better; equal scores prefer the smaller id, so results
/// are deterministic.
///
/// Complexity: `push` is O(1) when the pair is rejected (the common case in a scan) and O(log k)
/// otherwise; ``sortedResults()`` is O(k log k). Storage is reused across ``reset(k:)`` calls, so a
/// selector kept per thread makes the hot loop allocation-free.
///
/// Not thread-safe: one selector per query or per thread.
public struct TopKSelector: Sendable {
    /// Heap of kept pairs; `scores[0]`/`ids[0]` is the worst kept (the next to be evicted).
    private var scores: [Float] = []
    private var ids: [Int32] = []
    /// Tie-break keys (smaller wins); `UInt64(id)` unless given to ``push(score:id:tieKey:)``.
    private var keys: [UInt64] = []
    /// Capacity of the selection.
    public private(set) var k: Int

    /// A selector for the best `k` pairs. `k` must be >= 0.
    public init(k: Int) {
        precondition(k >= 0)
        self.k = k
        scores.reserveCapacity(min(k, 1 << 16))
        ids.reserveCapacity(min(k, 1 << 16))
    }

    /// Empties the selector and sets a new `k`, keeping the storage.
    public mutating func reset(k: Int) {
        precondition(k >= 0)
        self.k = k
        scores.removeAll(keepingCapacity: true)
        ids.removeAll(keepingCapacity: true)
        keys.removeAll(keepingCapacity: true)
        // Bounded: k may be far larger than what will ever be pushed (e.g. k = 10^11).
        scores.reserveCapacity(min(k, 1 << 16))
        ids.reserveCapacity(min(k, 1 << 16))
        keys.reserveCapacity(min(k, 1 << 16))
    }

    /// Number of pairs kept (at most `k`).
    public var count: Int { scores.count }

    /// True when `k` pairs are kept.
    public var isFull: Bool { scores.count >= k }

    /// The score a new pair must beat to enter once the selector is full (`-infinity` before).
    public var threshold: Float { isFull && k > 0 ? scores[0] : -.infinity }

    /// `a` ranks before `b`: higher score, or equal score and smaller id.
    @inline(__always)
    static func better(_ sa: Float, _ ia: UInt64, _ sb: Float, _ ib: UInt64) -> Bool {
        sa > sb || (sa == sb && ia < ib)
    }

    /// Offers one pair. NaN scores are ignored.
    @inline(__always)
    public mutating func push(score: Float, id: Int32) {
        push(score: score, id: id, tieKey: UInt64(UInt32(bitPattern: id)))
    }

    /// Offers one pair whose ties are broken by `tieKey` (smaller first) instead of `id`, e.g. the
    /// external item id when `id` is a leaf or row index. NaN scores are ignored.
    @inline(__always)
    public mutating func push(score: Float, id: Int32, tieKey: UInt64) {
        if scores.count < k {
            if score.isNaN { return }
            scores.append(score)
            ids.append(id)
            keys.append(tieKey)
            siftUp(scores.count - 1)
        } else if k > 0, TopKSelector.better(score, tieKey, scores[0], keys[0]) {
            scores[0] = score
            ids[0] = id
            keys[0] = tieKey
            siftDown(0)
        }
    }

    private mutating func siftUp(_ start: Int) {
        var i = start
        let s = scores[i], d = ids[i], t = keys[i]
        while i > 0 {
            let p = (i - 1) >> 1
            // Parent must be worse than (or equal to) the child in a min-heap of "goodness".
            if TopKSelector.better(scores[p], keys[p], s, t) {
                scores[i] = scores[p]; ids[i] = ids[p]; keys[i] = keys[p]; i = p
            } else { break }
        }
        scores[i] = s; ids[i] = d; keys[i] = t
    }

    private mutating func siftDown(_ start: Int) {
        let n = scores.count
        var i = start
        let s = scores[i], d = ids[i], t = keys[i]
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            var c = l
            let r = l + 1
            if r < n, TopKSelector.better(scores[l], keys[l], scores[r], keys[r]) { c = r }
            if TopKSelector.better(s, t, scores[c], keys[c]) {
                scores[i] = scores[c]; ids[i] = ids[c]; keys[i] = keys[c]; i = c
            } else { break }
        }
        scores[i] = s; ids[i] = d; keys[i] = t
    }

    /// The kept pairs, best first. O(k log k); allocates the returned arrays.
    public func sortedResults() -> [(score: Float, id: Int32)] {
        var order = Array(scores.indices)
        order.sort { TopKSelector.better(scores[$0], keys[$0], scores[$1], keys[$1]) }
        return order.map { (score: scores[$0], id: ids[$0]) }
    }

    /// Writes the kept ids in heap order (unsorted) into `output`. O(k), no sort: for beam search,
    /// where the next level does not need the beam in order.
    public func unsortedIDs(into output: inout [Int32]) {
        output.removeAll(keepingCapacity: true)
        output.append(contentsOf: ids)
    }
}
