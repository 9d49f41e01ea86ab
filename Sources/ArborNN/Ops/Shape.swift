extension Tape {
    /// The same values under another shape with the same element count (e.g. `batch × length ×
    /// features` to `(batch·length) × features` for a shared Linear layer). O(1) forward (values
    /// are shared); backward passes the gradient through unchanged.
    /// - Throws: ``ArborError`` if the counts differ or `shape` is not rank 1–3.
    public func reshape(_ x: Tensor, to shape: [Int]) throws(ArborError) -> Tensor {
        try validateShape(shape, op: "reshape")
        let count = shape.reduce(1, *)
        guard count == x.count else {
            throw .dimensionMismatch(field: "reshape \(x.shape) to \(shape)", expected: x.count, found: count)
        }
        return record(x.values, shape: shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in for i in 0..<dx.count { dx[i] += g[i] } }
        }
    }

    /// Concatenation along `axis` (negative counts from the end). All inputs have the same rank
    /// and agree on every other dimension. Used for `[u, n, u ⊙ n]` feature vectors.
    /// O(total count).
    /// - Throws: ``ArborError`` for an empty list, a bad axis or mismatched shapes.
    public func concat(_ xs: [Tensor], axis: Int = -1) throws(ArborError) -> Tensor {
        guard let first = xs.first else { throw .empty(what: "tensors to concatenate") }
        let rank = first.rank
        let ax = axis < 0 ? axis + rank : axis
        guard (0..<rank).contains(ax) else {
            throw .invalidArgument(name: "concat axis", reason: "\(axis) out of range for rank \(rank)")
        }
        for x in xs {
            guard x.rank == rank else { throw .dimensionMismatch(field: "concat rank", expected: rank, found: x.rank) }
            for d in 0..<rank where d != ax && x.shape[d] != first.shape[d] {
                throw .dimensionMismatch(field: "concat dimension \(d)", expected: first.shape[d], found: x.shape[d])
            }
        }
        let outer = first.shape[..<ax].reduce(1, *)
        let inner = first.shape[(ax + 1)...].reduce(1, *)
        let lengths = xs.map { $0.shape[ax] }
        let total = lengths.reduce(0, +)
        var shape = first.shape
        shape[ax] = total
        var out = [Float](repeating: 0, count: outer * total * inner)
        var offset = 0
        for (x, len) in zip(xs, lengths) {
            let block = len * inner
            let xv = x.values
            for o in 0..<outer {
                let dst = (o * total + offset) * inner
                for i in 0..<block { out[dst + i] = xv[o * block + i] }
            }
            offset += len
        }
        return record(out, shape: shape, requiresGrad: xs.contains { $0.requiresGrad }) { tape, g in
            var offset = 0
            for (x, len) in zip(xs, lengths) {
                let block = len * inner
                tape.accumulate(x.id) { dx in
                    for o in 0..<outer {
                        let src = (o * total + offset) * inner
                        for i in 0..<block { dx[o * block + i] += g[src + i] }
                    }
                }
                offset += len
            }
        }
    }

    /// The sub-tensor with indices `range` along `axis` (negative counts from the end), all of
    /// every other dimension. Backward scatters the gradient into the slice. O(result count).
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` for a bad axis or range.
    public func slice(_ x: Tensor, axis: Int = -1, range: Range<Int>) throws(ArborError) -> Tensor {
        let ax = axis < 0 ? axis + x.rank : axis
        guard (0..<x.rank).contains(ax) else {
            throw .invalidArgument(name: "slice axis", reason: "\(axis) out of range for rank \(x.rank)")
        }
        let len = x.shape[ax]
        guard range.lowerBound >= 0, range.upperBound <= len else {
            throw .invalidArgument(name: "slice range", reason: "\(range) out of 0..<\(len)")
        }
        let outer = x.shape[..<ax].reduce(1, *)
        let inner = x.shape[(ax + 1)...].reduce(1, *)
        let width = range.count * inner
        var shape = x.shape
        shape[ax] = range.count
        var out = [Float](repeating: 0, count: outer * width)
        let xv = x.values
        for o in 0..<outer {
            let src = (o * len + range.lowerBound) * inner
            for i in 0..<width { out[o * width + i] = xv[src + i] }
        }
        return record(out, shape: shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in
                for o in 0..<outer {
                    let dst = (o * len + range.lowerBound) * inner
                    for i in 0..<width { dx[dst + i] += g[o * width + i] }
                }
            }
        }
    }

    /// Swaps the last two dimensions: `rows × cols` becomes `cols × rows`, `batch × m × n`
    /// becomes `batch × n × m`. O(count).
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` for a rank-1 input.
    public func transpose(_ x: Tensor) throws(ArborError) -> Tensor {
        guard x.rank >= 2 else {
            throw .invalidArgument(name: "transpose", reason: "needs rank 2 or 3, got \(x.shape)")
        }
        let (rows, cols) = (x.shape[x.rank - 2], x.shape[x.rank - 1])
        let batch = x.count / max(1, rows * cols)
        var shape = x.shape
        shape.swapAt(x.rank - 2, x.rank - 1)
        let xv = x.values
        var out = [Float](repeating: 0, count: x.count)
        for b in 0..<batch {
            let base = b * rows * cols
            for r in 0..<rows { for c in 0..<cols { out[base + c * rows + r] = xv[base + r * cols + c] } }
        }
        return record(out, shape: shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in
                for b in 0..<batch {
                    let base = b * rows * cols
                    for r in 0..<rows { for c in 0..<cols { dx[base + r * cols + c] += g[base + c * rows + r] } }
                }
            }
        }
    }

    /// The same values with no gradient flowing back (MIND's routing logits, targets computed
    /// from the model itself). O(1).
    public func stopGradient(_ x: Tensor) -> Tensor {
        record(x.values, shape: x.shape, requiresGrad: false, backward: nil)
    }
}
