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
    /// Capacity of the selection.
    public private(set) var k: Int

    /// A selector for the best `k` pairs. `k` must be >= 0.
    public init(k: Int) {
        precondition(k >= 0)
        self.k = k
        scores.reserveCapacity(k)
        ids.reserveCapacity(k)
    }

    /// Empties the selector and sets a new `k`, keeping the storage.
    public mutating func reset(k: Int) {
        precondition(k >= 0)
        self.k = k
        scores.removeAll(keepingCapacity: true)
        ids.removeAll(keepingCapacity: true)
        scores.reserveCapacity(k)
        ids.reserveCapacity(k)
    }

    /// Number of pairs kept (at most `k`).
    public var count: Int { scores.count }

    /// True when `k` pairs are kept.
    public var isFull: Bool { scores.count >= k }

    /// The score a new pair must beat to enter once the selector is full (`-infinity` before).
    public var threshold: Float { isFull && k > 0 ? scores[0] : -.infinity }

    /// `a` ranks before `b`: higher score, or equal score and smaller id.
    @inline(__always)
    static func better(_ sa: Float, _ ia: Int32, _ sb: Float, _ ib: Int32) -> Bool {
        sa > sb || (sa == sb && ia < ib)
    }

    /// Offers one pair. NaN scores are ignored.
    @inline(__always)
    public mutating func push(score: Float, id: Int32) {
        if scores.count < k {
            if score.isNaN { return }
            scores.append(score)
            ids.append(id)
            siftUp(scores.count - 1)
        } else if k > 0, TopKSelector.better(score, id, scores[0], ids[0]) {
            scores[0] = score
            ids[0] = id
            siftDown(0)
        }
    }

    private mutating func siftUp(_ start: Int) {
        var i = start
        let s = scores[i], d = ids[i]
        while i > 0 {
            let p = (i - 1) >> 1
            // Parent must be worse than (or equal to) the child in a min-heap of "goodness".
            if TopKSelector.better(scores[p], ids[p], s, d) {
                scores[i] = scores[p]; ids[i] = ids[p]; i = p
            } else { break }
        }
        scores[i] = s; ids[i] = d
    }

    private mutating func siftDown(_ start: Int) {
        let n = scores.count
        var i = start
        let s = scores[i], d = ids[i]
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            var c = l
            let r = l + 1
            if r < n, TopKSelector.better(scores[l], ids[l], scores[r], ids[r]) { c = r }
            if TopKSelector.better(s, d, scores[c], ids[c]) {
                scores[i] = scores[c]; ids[i] = ids[c]; i = c
            } else { break }
        }
        scores[i] = s; ids[i] = d
    }

    /// The kept pairs, best first. O(k log k); allocates the returned arrays.
    public func sortedResults() -> [(score: Float, id: Int32)] {
        var pairs = Array(zip(scores, ids)).map { (score: $0.0, id: $0.1) }
        pairs.sort { TopKSelector.better($0.score, $0.id, $1.score, $1.id) }
        return pairs
    }

    /// Writes the kept ids, best first, into `output` (cleared first, capacity kept).
    public func sortedIDs(into output: inout [Int32]) {
        output.removeAll(keepingCapacity: true)
        for (_, id) in sortedResults() { output.append(id) }
    }

    /// Writes the kept ids in heap order (unsorted) into `output`. O(k), no sort: for beam search,
    /// where the next level does not need the beam in order.
    public func unsortedIDs(into output: inout [Int32]) {
        output.removeAll(keepingCapacity: true)
        output.append(contentsOf: ids)
    }
}
