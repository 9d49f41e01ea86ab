extension Tape {
    /// Sum of all values, shape `[1]`. O(count).
    public func sum(_ x: Tensor) -> Tensor {
        var s: Float = 0
        for v in x.values { s += v }
        return record([s], shape: [1], requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in for i in 0..<dx.count { dx[i] += g[0] } }
        }
    }

    /// Mean of all values, shape `[1]` (0 for an empty tensor). O(count).
    public func mean(_ x: Tensor) -> Tensor {
        scale(sum(x), by: x.count == 0 ? 0 : 1 / Float(x.count))
    }

    /// Sum along `axis` (negative counts from the end); the axis is removed (a rank-1 input gives
    /// `[1]`). E.g. `batch × features` summed over axis 1 is `[batch]`. O(count).
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` for a bad axis.
    public func sum(_ x: Tensor, axis: Int) throws(ArborError) -> Tensor {
        try reduce(x, axis: axis, scale: 1)
    }

    /// Mean along `axis`; the axis is removed (see ``sum(_:axis:)``). O(count).
    public func mean(_ x: Tensor, axis: Int) throws(ArborError) -> Tensor {
        let ax = axis < 0 ? axis + x.rank : axis
        let len = (0..<x.rank).contains(ax) ? x.shape[ax] : 1
        return try reduce(x, axis: axis, scale: len == 0 ? 0 : 1 / Float(len))
    }

    /// Mean over the real (unmasked) positions of a sequence: `x` is `batch × length × features`,
    /// `mask` is `batch × length` (1 real, 0 padding); the result is `batch × features`, zero for a
    /// sequence with no real position. Pools behaviour embeddings into a user vector. O(count).
    /// - Throws: ``ArborError`` if `x` is not rank 3 or the mask has another size.
    public func maskedMean(_ x: Tensor, mask: [Float]) throws(ArborError) -> Tensor {
        guard x.rank == 3 else {
            throw .invalidArgument(name: "maskedMean", reason: "needs batch × length × features, got \(x.shape)")
        }
        let (batch, length, width) = (x.shape[0], x.shape[1], x.shape[2])
        guard mask.count == batch * length else {
            throw .dimensionMismatch(field: "maskedMean: mask values", expected: batch * length, found: mask.count)
        }
        // weights[b, l] = mask / (number of real positions of b)
        var weights = [Float](repeating: 0, count: batch * length)
        for b in 0..<batch {
            var n: Float = 0
            for l in 0..<length { n += mask[b * length + l] }
            guard n > 0 else { continue }
            for l in 0..<length { weights[b * length + l] = mask[b * length + l] / n }
        }
        let xv = x.values
        var out = [Float](repeating: 0, count: batch * width)
        guard width > 0 else { return record(out, shape: [batch, width], requiresGrad: x.requiresGrad) { _, _ in } }
        out.withUnsafeMutableBufferPointer { po in
            xv.withUnsafeBufferPointer { px in
                for b in 0..<batch {
                    let o = po.baseAddress! + b * width
                    for l in 0..<length {
                        let w = weights[b * length + l]
                        guard w != 0 else { continue }
                        let src = px.baseAddress! + (b * length + l) * width
                        for j in 0..<width { o[j] += w * src[j] }
                    }
                }
            }
        }
        return record(out, shape: [batch, width], requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in
                dx.withUnsafeMutableBufferPointer { pd in
                    g.withUnsafeBufferPointer { pg in
                        for b in 0..<batch {
                            let gr = pg.baseAddress! + b * width
                            for l in 0..<length {
                                let w = weights[b * length + l]
                                guard w != 0 else { continue }
                                let d = pd.baseAddress! + (b * length + l) * width
                                for j in 0..<width { d[j] += w * gr[j] }
                            }
                        }
                    }
                }
            }
        }
    }

    private func reduce(_ x: Tensor, axis: Int, scale: Float) throws(ArborError) -> Tensor {
        let ax = axis < 0 ? axis + x.rank : axis
        guard (0..<x.rank).contains(ax) else {
            throw .invalidArgument(name: "reduction axis", reason: "\(axis) out of range for rank \(x.rank)")
        }
        let outer = x.shape[..<ax].reduce(1, *)
        let len = x.shape[ax]
        let inner = x.shape[(ax + 1)...].reduce(1, *)
        var shape = x.shape
        shape.remove(at: ax)
        if shape.isEmpty { shape = [1] }
        var out = [Float](repeating: 0, count: outer * inner)
        let xv = x.values
        for o in 0..<outer {
            for l in 0..<len {
                let src = (o * len + l) * inner
                for i in 0..<inner { out[o * inner + i] += xv[src + i] }
            }
        }
        if scale != 1 { for i in 0..<out.count { out[i] *= scale } }
        return record(out, shape: shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in
                for o in 0..<outer {
                    for l in 0..<len {
                        let dst = (o * len + l) * inner
                        for i in 0..<inner { dx[dst + i] += scale * g[o * inner + i] }
                    }
                }
            }
        }
    }
}
