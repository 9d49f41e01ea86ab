/// Selects the best `k` of `n` scored candidates in one batch, in O(n) expected time: a
/// quickselect finds the k-th best score, one pass takes everything better, and ties at that
/// score are broken by the smaller tie key. The set kept is exactly the one ``TopKSelector``
/// keeps for the same pairs pushed in any order: higher score first, equal scores by smaller
/// key, NaN scores ignored. Beam search uses it for each level, where `n = beam · fan-out`
/// candidates give up `k = beam`, and a heap would re-sort most of them.
///
/// The pivot rule is fixed (median of three), so a selection never depends on timing; a range
/// that shrinks too slowly is finished by a sort (worst case O(n log n)).
///
/// Buffers are kept across calls: one value per thread (not thread-safe), no allocation once the
/// buffers have grown to the largest `n`.
public struct PartialTopK: Sendable {
    private var values: [Float] = []
    private var ties: [Int32] = []

    /// Empty buffers.
    public init() {}

    /// Writes into `selected` the positions `i` in `0 ..< scores.count` of the best `k` scores
    /// (higher first; equal scores by smaller `tieKey(i)`; NaN never kept): all of them when fewer
    /// than `k` are not NaN. Positions with a better score come first in increasing order, then
    /// the kept positions tied at the k-th score, by tie key. `tieKey` is called only for
    /// positions tied at the k-th score. O(n) expected, plus O(t log t) for `t` such ties.
    public mutating func select(k: Int, scores: UnsafeBufferPointer<Float>, tieKey: (Int) -> UInt64,
                                into selected: inout [Int32]) {
        precondition(k >= 0, "PartialTopK: k = \(k)")
        selected.removeAll(keepingCapacity: true)
        let n = scores.count
        guard k > 0, n > 0 else { return }
        values.removeAll(keepingCapacity: true)
        for s in scores where !s.isNaN { values.append(s) }
        if values.count <= k {
            for i in 0 ..< n where !scores[i].isNaN { selected.append(Int32(i)) }
            return
        }
        let threshold = values.withUnsafeMutableBufferPointer { Self.kthLargest($0, k: k) }
        ties.removeAll(keepingCapacity: true)
        for i in 0 ..< n {
            let s = scores[i]
            if s > threshold { selected.append(Int32(i)) } else if s == threshold { ties.append(Int32(i)) }
        }
        let wanted = k - selected.count
        if ties.count > wanted {
            ties.sort { a, b in
                let (ka, kb) = (tieKey(Int(a)), tieKey(Int(b)))
                return ka < kb || (ka == kb && a < b)
            }
        }
        selected.append(contentsOf: ties.prefix(wanted))
    }

    /// The value at position `k - 1` of `a` sorted in decreasing order (1 <= k <= a.count), with
    /// `a` reordered. Three-way partitions around a median-of-three pivot; after 64 rounds the
    /// remaining range is sorted instead.
    static func kthLargest(_ a: UnsafeMutableBufferPointer<Float>, k: Int) -> Float {
        let target = k - 1
        var lo = 0, hi = a.count - 1
        var rounds = 0
        while lo < hi {
            rounds += 1
            if rounds > 64 {
                var rest = UnsafeMutableBufferPointer(rebasing: a[lo ... hi])
                rest.sort(by: >)
                return a[target]
            }
            let mid = lo + (hi - lo) / 2
            let (x, y, z) = (a[lo], a[mid], a[hi])
            let pivot = max(min(x, y), min(max(x, y), z))
            // [lo, lt): > pivot; [lt, i): == pivot; (gt, hi]: < pivot.
            var lt = lo, i = lo, gt = hi
            while i <= gt {
                let v = a[i]
                if v > pivot {
                    a.swapAt(lt, i); lt += 1; i += 1
                } else if v < pivot {
                    a.swapAt(i, gt); gt -= 1
                } else {
                    i += 1
                }
            }
            if target < lt { hi = lt - 1 } else if target > gt { lo = gt + 1 } else { return pivot }
        }
        return a[lo]
    }
}
