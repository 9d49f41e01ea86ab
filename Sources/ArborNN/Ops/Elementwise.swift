extension Tape {
    /// Elementwise `a + b` with broadcasting (shapes aligned on the right; a dimension of 1
    /// repeats). Bias add is `add(x, bias)` with `x` `batch × features` and `bias` `[features]`.
    /// Backward sums the output gradient over broadcast dimensions. O(result count).
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` for incompatible shapes.
    public func add(_ a: Tensor, _ b: Tensor) throws(ArborError) -> Tensor {
        if let rowsOfB = rowBroadcast(a, b) { return addRows(a, b, rows: rowsOfB) }
        return try binary(a, b, op: "add", forward: { $0 + $1 }, da: { g, _, _ in g }, db: { g, _, _ in g })
    }

    /// When `b` repeats over `a`'s leading dimensions (the same shape, or `b` is `a`'s last
    /// dimension: a bias), how many times: `a.count / b.count`; else `nil`.
    private func rowBroadcast(_ a: Tensor, _ b: Tensor) -> Int? {
        if a.shape == b.shape { return 1 }
        guard b.rank == 1, a.rank >= 2, b.count == a.shape[a.rank - 1], b.count > 0 else { return nil }
        return a.count / b.count
    }

    /// `a + b` with `b` repeated `rows` times over `a` (see `rowBroadcast`), on raw buffers: the
    /// same sums, in the same order, as the general broadcast.
    private func addRows(_ a: Tensor, _ b: Tensor, rows: Int) -> Tensor {
        let width = b.count
        let av = a.values, bv = b.values
        var out = [Float](repeating: 0, count: a.count)
        if width > 0 {
            out.withUnsafeMutableBufferPointer { po in
                av.withUnsafeBufferPointer { pa in
                    bv.withUnsafeBufferPointer { pb in
                        for r in 0..<rows {
                            let o = po.baseAddress! + r * width, x = pa.baseAddress! + r * width
                            for j in 0..<width { o[j] = x[j] + pb[j] }
                        }
                    }
                }
            }
        }
        return record(out, shape: a.shape, requiresGrad: a.requiresGrad || b.requiresGrad) { tape, g in
            tape.accumulate(a.id) { ga in
                ga.withUnsafeMutableBufferPointer { pa in
                    g.withUnsafeBufferPointer { pg in for i in 0..<pg.count { pa[i] += pg[i] } }
                }
            }
            tape.accumulate(b.id) { gb in
                gb.withUnsafeMutableBufferPointer { pb in
                    g.withUnsafeBufferPointer { pg in
                        for r in 0..<rows {
                            let gr = pg.baseAddress! + r * width
                            for j in 0..<width { pb[j] += gr[j] }
                        }
                    }
                }
            }
        }
    }

    /// Elementwise `a - b` with broadcasting (see ``add(_:_:)``). O(result count).
    public func sub(_ a: Tensor, _ b: Tensor) throws(ArborError) -> Tensor {
        try binary(a, b, op: "sub", forward: { $0 - $1 }, da: { g, _, _ in g }, db: { g, _, _ in -g })
    }

    /// Elementwise (Hadamard) product `a ⊙ b` with broadcasting (see ``add(_:_:)``).
    /// O(result count).
    public func mul(_ a: Tensor, _ b: Tensor) throws(ArborError) -> Tensor {
        guard a.shape == b.shape else {
            return try binary(a, b, op: "mul", forward: { $0 * $1 }, da: { g, _, y in g * y }, db: { g, x, _ in g * x })
        }
        // Same shapes: one pass over raw buffers (the general path's arithmetic, element by element).
        let av = a.values, bv = b.values
        var out = [Float](repeating: 0, count: av.count)
        out.withUnsafeMutableBufferPointer { po in
            av.withUnsafeBufferPointer { pa in
                bv.withUnsafeBufferPointer { pb in for i in 0..<po.count { po[i] = pa[i] * pb[i] } }
            }
        }
        return record(out, shape: a.shape, requiresGrad: a.requiresGrad || b.requiresGrad) { tape, g in
            tape.accumulate(a.id) { ga in
                ga.withUnsafeMutableBufferPointer { pga in
                    g.withUnsafeBufferPointer { pg in
                        bv.withUnsafeBufferPointer { pb in for i in 0..<pga.count { pga[i] += pg[i] * pb[i] } }
                    }
                }
            }
            tape.accumulate(b.id) { gb in
                gb.withUnsafeMutableBufferPointer { pgb in
                    g.withUnsafeBufferPointer { pg in
                        av.withUnsafeBufferPointer { pa in for i in 0..<pgb.count { pgb[i] += pg[i] * pa[i] } }
                    }
                }
            }
        }
    }

    /// Elementwise quotient `a / b` with broadcasting (see ``add(_:_:)``); `b` must not hold zeros
    /// where it matters (no guard: a zero gives ±infinity). O(result count).
    public func div(_ a: Tensor, _ b: Tensor) throws(ArborError) -> Tensor {
        try binary(a, b, op: "div", forward: { $0 / $1 }, da: { g, _, y in g / y }, db: { g, x, y in -g * x / (y * y) })
    }

    /// `x + bias` where `bias` is `[features]` and `x`'s last dimension is `features`
    /// (`batch × features` or `batch × length × features`). O(x.count).
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` if the widths differ.
    public func addBias(_ x: Tensor, _ bias: Tensor) throws(ArborError) -> Tensor {
        guard bias.rank == 1, bias.count == x.shape[x.rank - 1] else {
            throw .dimensionMismatch(field: "addBias: bias length", expected: x.shape[x.rank - 1], found: bias.count)
        }
        return try add(x, bias)
    }

    /// `x` repeated to `shape` (numpy broadcasting rules). Backward sums over the repeated
    /// dimensions. O(result count).
    /// - Throws: ``ArborError`` if `x` cannot broadcast to `shape` or `shape` is not rank 1–3.
    public func broadcast(_ x: Tensor, to shape: [Int]) throws(ArborError) -> Tensor {
        try validateShape(shape, op: "broadcast")
        let plan = try BroadcastPlan(x.shape, shape, op: "broadcast")
        guard plan.shape == shape else {
            throw .invalidArgument(name: "broadcast", reason: "cannot broadcast \(x.shape) to \(shape)")
        }
        var out = [Float](repeating: 0, count: plan.count)
        let xv = x.values
        plan.forEach { o, ia, _ in out[o] = xv[ia] }
        return record(out, shape: shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in plan.forEach { o, ia, _ in dx[ia] += g[o] } }
        }
    }

    /// `x · factor` for a constant `factor` (temperatures, averaging). O(count).
    public func scale(_ x: Tensor, by factor: Float) -> Tensor {
        let out = x.values.map { $0 * factor }
        return record(out, shape: x.shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in
                dx.withUnsafeMutableBufferPointer { pd in
                    g.withUnsafeBufferPointer { pg in
                        for i in 0..<min(pd.count, pg.count) { pd[i] += pg[i] * factor }
                    }
                }
            }
        }
    }

    /// `x + constant` elementwise. O(count).
    public func addScalar(_ x: Tensor, _ constant: Float) -> Tensor {
        let out = x.values.map { $0 + constant }
        return record(out, shape: x.shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in for i in 0..<dx.count { dx[i] += g[i] } }
        }
    }

    /// Shared body of the broadcasting binary ops: `forward(x, y)` per element and the partials
    /// `da(g, x, y)`, `db(g, x, y)` scaled by the output gradient `g`.
    private func binary(
        _ a: Tensor, _ b: Tensor, op: String,
        forward: @escaping (Float, Float) -> Float,
        da: @escaping (Float, Float, Float) -> Float,
        db: @escaping (Float, Float, Float) -> Float
    ) throws(ArborError) -> Tensor {
        let plan = try BroadcastPlan(a.shape, b.shape, op: op)
        let av = a.values, bv = b.values
        var out = [Float](repeating: 0, count: plan.count)
        if a.shape == b.shape {
            for i in 0..<out.count { out[i] = forward(av[i], bv[i]) }
        } else {
            plan.forEach { o, ia, ib in out[o] = forward(av[ia], bv[ib]) }
        }
        return record(out, shape: plan.shape, requiresGrad: a.requiresGrad || b.requiresGrad) { tape, g in
            tape.accumulate(a.id) { ga in plan.forEach { o, ia, ib in ga[ia] += da(g[o], av[ia], bv[ib]) } }
            tape.accumulate(b.id) { gb in plan.forEach { o, ia, ib in gb[ib] += db(g[o], av[ia], bv[ib]) } }
        }
    }
}
