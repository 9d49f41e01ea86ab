/// Index plan for numpy-style broadcasting of up to two rank-≤3 operands: shapes are aligned on
/// the right, and each dimension must be equal or 1 in an operand (then that operand repeats).
struct BroadcastPlan {
    /// The result shape.
    let shape: [Int]
    /// Result dimensions padded to rank 3.
    let o0: Int, o1: Int, o2: Int
    /// Strides of operand a (0 along broadcast dimensions).
    let a0: Int, a1: Int, a2: Int
    /// Strides of operand b.
    let b0: Int, b1: Int, b2: Int

    init(_ a: [Int], _ b: [Int], op: String) throws(ArborError) {
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            guard da == db || da == 1 || db == 1 else {
                throw .dimensionMismatch(field: "\(op): broadcast of \(a) and \(b), axis \(i)", expected: da, found: db)
            }
            out[i] = da == 1 ? db : da
        }
        shape = out
        let o = Self.pad(out)
        (o0, o1, o2) = (o[0], o[1], o[2])
        let sa = Self.strides(Self.pad(a), o)
        let sb = Self.strides(Self.pad(b), o)
        (a0, a1, a2) = (sa[0], sa[1], sa[2])
        (b0, b1, b2) = (sb[0], sb[1], sb[2])
    }

    private static func pad(_ s: [Int]) -> [Int] { [Int](repeating: 1, count: 3 - s.count) + s }

    private static func strides(_ d: [Int], _ o: [Int]) -> [Int] {
        let contiguous = [d[1] * d[2], d[2], 1]
        return (0..<3).map { d[$0] == 1 && o[$0] != 1 ? 0 : contiguous[$0] }
    }

    /// Number of result elements.
    var count: Int { o0 * o1 * o2 }

    /// Calls `body(outIndex, aIndex, bIndex)` for every result element in row-major order.
    @inline(__always)
    func forEach(_ body: (Int, Int, Int) -> Void) {
        var o = 0
        for i0 in 0..<o0 {
            for i1 in 0..<o1 {
                var ia = i0 * a0 + i1 * a1
                var ib = i0 * b0 + i1 * b1
                for _ in 0..<o2 {
                    body(o, ia, ib)
                    o += 1
                    ia += a2
                    ib += b2
                }
            }
        }
    }
}
