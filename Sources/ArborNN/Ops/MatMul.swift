extension Tape {
    /// Matrix product `op(a) · op(b)` of 2-D tensors through one `BLAS.gemm`.
    ///
    /// `op(a)` is `m × k` (`a` stored `m × k`, or `k × m` with `transposeA`), `op(b)` is `k × n`;
    /// the result is `m × n`, row-major. Backward: two GEMMs (one per input that needs a gradient).
    /// Complexity O(m·n·k) forward and per input backward.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` for a non-2-D input,
    ///   ``ArborError/dimensionMismatch(field:expected:found:)`` if the inner dimensions differ.
    public func matmul(
        _ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false
    ) throws(ArborError) -> Tensor {
        guard a.rank == 2, b.rank == 2 else {
            throw .invalidArgument(name: "matmul", reason: "needs 2-D operands, got \(a.shape) and \(b.shape)")
        }
        let m = transposeA ? a.shape[1] : a.shape[0]
        let k = transposeA ? a.shape[0] : a.shape[1]
        let kb = transposeB ? b.shape[1] : b.shape[0]
        let n = transposeB ? b.shape[0] : b.shape[1]
        guard k == kb else { throw .dimensionMismatch(field: "matmul inner dimension", expected: k, found: kb) }
        var out = [Float](repeating: 0, count: m * n)
        gemmBlock(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                  a: a.values, b: b.values, beta: 0, c: &out)
        return record(out, shape: [m, n], requiresGrad: a.requiresGrad || b.requiresGrad) { tape, g in
            tape.accumulate(a.id) { da in
                productGradientA(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                 g: g, b: b.values, da: &da)
            }
            tape.accumulate(b.id) { db in
                productGradientB(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                 g: g, a: a.values, db: &db)
            }
        }
    }

    /// Batched matrix product of rank-3 tensors: for every batch entry `i`,
    /// `out[i] = op(a[i]) · op(b[i])`, one GEMM per entry.
    ///
    /// `a` is `batch × m × k` (`batch × k × m` with `transposeA`), `b` is `batch × k × n`
    /// (`batch × n × k` with `transposeB`); the result is `batch × m × n`. Attention scores
    /// (`Q · Kᵀ`) and attention-weighted sums (`weights · V`) are this op.
    /// Complexity O(batch·m·n·k).
    /// - Throws: ``ArborError`` if either input is not rank 3 or the batch or inner dimensions differ.
    public func batchedMatmul(
        _ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false
    ) throws(ArborError) -> Tensor {
        guard a.rank == 3, b.rank == 3 else {
            throw .invalidArgument(name: "batchedMatmul",
                                   reason: "needs 3-D operands, got \(a.shape) and \(b.shape)")
        }
        let batch = a.shape[0]
        guard b.shape[0] == batch else {
            throw .dimensionMismatch(field: "batchedMatmul batch", expected: batch, found: b.shape[0])
        }
        let m = transposeA ? a.shape[2] : a.shape[1]
        let k = transposeA ? a.shape[1] : a.shape[2]
        let kb = transposeB ? b.shape[2] : b.shape[1]
        let n = transposeB ? b.shape[1] : b.shape[2]
        guard k == kb else {
            throw .dimensionMismatch(field: "batchedMatmul inner dimension", expected: k, found: kb)
        }
        let sa = m * k, sb = k * n, sc = m * n
        var out = [Float](repeating: 0, count: batch * sc)
        for i in 0..<batch {
            gemmBlock(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                      a: a.values, aOffset: i * sa, b: b.values, bOffset: i * sb,
                      beta: 0, c: &out, cOffset: i * sc)
        }
        return record(out, shape: [batch, m, n], requiresGrad: a.requiresGrad || b.requiresGrad) { tape, g in
            tape.accumulate(a.id) { da in
                for i in 0..<batch {
                    productGradientA(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                     g: g, gOffset: i * sc, b: b.values, bOffset: i * sb,
                                     da: &da, daOffset: i * sa)
                }
            }
            tape.accumulate(b.id) { db in
                for i in 0..<batch {
                    productGradientB(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                     g: g, gOffset: i * sc, a: a.values, aOffset: i * sa,
                                     db: &db, dbOffset: i * sb)
                }
            }
        }
    }
}
