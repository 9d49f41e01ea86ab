import Foundation

/// In-place element-wise operations on matrices, for inference layers. Each is O(rows · cols) and
/// allocation-free.
extension Matrix {
    /// Adds `vector` (length `cols`) to every row.
    public mutating func addToEachRow(_ vector: [Float]) {
        precondition(vector.count == cols, "addToEachRow: \(vector.count) values for \(cols) columns")
        let n = cols
        guard n > 0 else { return }
        withUnsafeMutableBufferPointer { v in
            vector.withUnsafeBufferPointer { b in
                let bp = b.baseAddress!
                for r in 0..<(v.count / n) {
                    let row = v.baseAddress! + r * n
                    for c in 0..<n { row[c] += bp[c] }
                }
            }
        }
    }

    /// `max(x, 0)` on every element.
    public mutating func applyReLU() {
        withUnsafeMutableBufferPointer { v in for i in v.indices where v[i] < 0 { v[i] = 0 } }
    }

    /// Parametric ReLU: negative elements of column `c` are multiplied by `slopes[c]`.
    /// O(rows · cols), one branch-free pass row by row (vectorised).
    public mutating func applyPReLU(slopes: [Float]) {
        precondition(slopes.count == cols)
        addBias(nil, thenPReLU: slopes)
    }

    /// `x = row + bias` (when given), then parametric ReLU with `slopes` (when given) on every
    /// row, in one pass: the epilogue of a dense layer. `bias` and `slopes` have `cols` values.
    /// O(rows · cols), branch-free inner loops (`max(x, 0) + s · min(x, 0)`).
    public mutating func addBias(_ bias: [Float]?, thenPReLU slopes: [Float]?) {
        precondition((bias?.count ?? cols) == cols && (slopes?.count ?? cols) == cols,
                     "addBias(_:thenPReLU:): bias or slopes do not have \(cols) values")
        let n = cols, m = rows
        guard n > 0, m > 0, bias != nil || slopes != nil else { return }
        let b = bias ?? [Float](repeating: 0, count: n)   // allocated only without a bias
        withUnsafeMutableBufferPointer { v in
            b.withUnsafeBufferPointer { pb in
                let bp = pb.baseAddress!
                if let slopes {
                    slopes.withUnsafeBufferPointer { ps in
                        let sp = ps.baseAddress!
                        for r in 0..<m {
                            let row = v.baseAddress! + r * n
                            for c in 0..<n {
                                let x = row[c] + bp[c]
                                row[c] = Swift.max(x, 0) + sp[c] * Swift.min(x, 0)
                            }
                        }
                    }
                } else {
                    for r in 0..<m {
                        let row = v.baseAddress! + r * n
                        for c in 0..<n { row[c] += bp[c] }
                    }
                }
            }
        }
    }

    /// The logistic function on every element.
    public mutating func applySigmoid() {
        withUnsafeMutableBufferPointer { v in for i in v.indices { v[i] = 1 / (1 + Foundation.exp(-v[i])) } }
    }

    /// `self[i, j] *= other[i, j]` (Hadamard product). Shapes must match.
    public mutating func multiplyElementwise(by other: Matrix) {
        precondition(rows == other.rows && cols == other.cols)
        withUnsafeMutableBufferPointer { v in
            other.withUnsafeBufferPointer { o in for i in v.indices { v[i] *= o[i] } }
        }
    }

    /// `self[i, j] *= vector[j]` for every row.
    public mutating func multiplyEachRow(by vector: [Float]) {
        precondition(vector.count == cols)
        let n = cols
        withUnsafeMutableBufferPointer { v in
            vector.withUnsafeBufferPointer { b in
                var i = 0
                while i < v.count {
                    for c in 0..<n { v[i + c] *= b[c] }
                    i += n
                }
            }
        }
    }
}

extension Matrix {
    /// The rows `rows` of `self`, in order: a new `rows.count × cols` matrix. O(rows.count · cols).
    /// - Precondition: every row index is in range.
    public func selectingRows(_ rows: [Int]) -> Matrix {
        var out = Matrix(rows: 0, cols: cols)
        out.gatherRows(from: self, rows: rows.map { Int32($0) })
        return out
    }

    /// Makes `self` the rows `rows` of `source`, in order (resized to `rows.count`, capacity kept).
    /// O(rows.count · cols), one block copy per row.
    /// - Precondition: `source.cols == cols` and every row index is in range.
    public mutating func gatherRows(from source: Matrix, rows: [Int32]) {
        precondition(source.cols == cols, "gatherRows: source has \(source.cols) columns, target \(cols)")
        resize(rows: rows.count)
        let d = cols
        guard d > 0 else { return }
        withUnsafeMutableBufferPointer { dst in
            source.withUnsafeBufferPointer { src in
                guard let to = dst.baseAddress, let from = src.baseAddress else { return }
                for (r, row) in rows.enumerated() {
                    precondition(row >= 0 && Int(row) < source.rows, "gatherRows: row \(row) out of range")
                    (to + r * d).update(from: from + Int(row) * d, count: d)
                }
            }
        }
    }
}

extension Matrix {
    /// Makes `self` the rows `rows` of `source` (resized to `rows.count`, capacity kept): one block
    /// copy. O(rows.count · cols).
    public mutating func copyRows(from source: Matrix, rows: Range<Int>) {
        precondition(source.cols == cols && rows.lowerBound >= 0 && rows.upperBound <= source.rows,
                     "copyRows: rows \(rows) of a \(source.rows) × \(source.cols) matrix into \(cols) columns")
        resize(rows: rows.count)
        let d = cols
        guard d > 0, !rows.isEmpty else { return }
        withUnsafeMutableBufferPointer { dst in
            source.withUnsafeBufferPointer { src in
                dst.baseAddress!.update(from: src.baseAddress! + rows.lowerBound * d, count: rows.count * d)
            }
        }
    }
}
