extension Tape {
    /// Rows of an embedding table: `table` is `rows × width`; the result has shape
    /// `indexShape + [width]` (default `[indices.count, width]`; `[batch, length]` gives a
    /// `batch × length × width` sequence). A negative index (padding) gives a zero row and no
    /// gradient. Backward records only the gathered rows on the parameter (sparse gradient) when
    /// `table.isSparse`, else adds them into its dense gradient; the table itself never goes on the
    /// tape. O(indices × width).
    /// - Throws: ``ArborError`` if `table` is not 2-D, an index is ≥ the row count, or `indexShape`
    ///   does not hold `indices.count` elements.
    public func gather(_ table: Parameter, indices: [Int], indexShape: [Int]? = nil) throws(ArborError) -> Tensor {
        guard table.shape.count == 2 else {
            throw .invalidArgument(name: "gather", reason: "table must be rows × width, got \(table.shape)")
        }
        let width = table.shape[1]
        let rows = table.shape[0]
        let shape = try gatherShape(indices.count, indexShape, width)
        let tv = table.value
        var out = [Float](repeating: 0, count: indices.count * width)
        for (i, r) in indices.enumerated() where r >= 0 {
            guard r < rows else {
                throw .invalidArgument(name: "gather index", reason: "\(r) out of 0..<\(rows) for \(table.name)")
            }
            for j in 0..<width { out[i * width + j] = tv[r * width + j] }
        }
        return record(out, shape: shape, requiresGrad: table.requiresGrad) { tape, g in
            if let sink = tape.gradientSink { sink.recordRows(table, indices, g) } else { table.accumulateRows(indices, g) }
        }
    }

    /// Rows of a 2-D tensor `x` (`rows × width`), as ``gather(_:indices:indexShape:)`` but for a
    /// computed tensor: backward scatter-adds into a dense gradient of `x`. O(indices × width).
    /// - Throws: ``ArborError`` if `x` is not 2-D, an index is ≥ the row count, or `indexShape`
    ///   does not hold `indices.count` elements.
    public func gatherRows(_ x: Tensor, indices: [Int], indexShape: [Int]? = nil) throws(ArborError) -> Tensor {
        guard x.rank == 2 else {
            throw .invalidArgument(name: "gatherRows", reason: "input must be rows × width, got \(x.shape)")
        }
        let (rows, width) = (x.shape[0], x.shape[1])
        let shape = try gatherShape(indices.count, indexShape, width)
        let xv = x.values
        var out = [Float](repeating: 0, count: indices.count * width)
        for (i, r) in indices.enumerated() where r >= 0 {
            guard r < rows else {
                throw .invalidArgument(name: "gatherRows index", reason: "\(r) out of 0..<\(rows)")
            }
            for j in 0..<width { out[i * width + j] = xv[r * width + j] }
        }
        return record(out, shape: shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in
                for (i, r) in indices.enumerated() where r >= 0 {
                    for j in 0..<width { dx[r * width + j] += g[i * width + j] }
                }
            }
        }
    }

    private func gatherShape(_ count: Int, _ indexShape: [Int]?, _ width: Int) throws(ArborError) -> [Int] {
        let ishape = indexShape ?? [count]
        guard ishape.reduce(1, *) == count, (1...2).contains(ishape.count) else {
            throw .dimensionMismatch(field: "gather: index shape \(ishape)", expected: count, found: ishape.reduce(1, *))
        }
        return ishape + [width]
    }
}
