import Foundation

/// The serving side of a DIN-style activation unit, for all (node, behaviour) pairs of a level:
///
///     pair[k, j·h + c] = ((e_j ⊙ n_k) · W₁ₚ)[c] = (n_k · stacked)[j·h + c]
///     logits[k, j]     = b₂ + Σ_c f(pair[k, j·h + c] + node[k, c] + history[j, c]) · w₂[c]
///
/// where `f(x) = x` for `x >= 0` and `slope[c] · x` otherwise (identity: slopes 1; ReLU: slopes 0;
/// PReLU: the learned slopes). Shapes: `nodes` is `m × d`, `stacked` is `d × L·h` (column block `j`
/// is `diag(e_j) · W₁ₚ`), `node` (the node term `n · W₁ₙ`) is `m × h`, `history` (`e · W₁ₑ + b₁`) is
/// `L × h`, `w₂` and `slopes` have `h` values; `logits` becomes `m × L`.
///
/// Cost O(m · d · L · h) in GEMMs plus O(m · L · h) elementwise. Rows go in chunks of ``chunkRows``
/// so the `chunk × L·h` pair block stays in cache between its GEMM, the branch-free activation pass
/// and the GEMV that sums it against `w₂`. Allocation-free once `scratch` has grown.
public enum AttentionKernel {
    /// Rows per chunk of the pair block: at 50 behaviours and h = 36 a chunk is 0.9 MB, about L2.
    /// Measured at 10^5 items, beam 200-400 (`arbor bench --scorer attention`): 32 rows 49-51%
    /// of the SGEMM peak for the scorer alone, 64 rows 56-58%, 128 rows 57-60%, 256 rows 60-61%
    /// (B's packing repeats per chunk, so small chunks pay for it).
    public static let chunkRows = 128

    /// Fills `logits` (`m × L`) as above. `scratch` is working storage (any shape; reused).
    /// - Precondition: the shapes agree.
    public static func logits(
        nodes: Matrix, stacked: Matrix, node: Matrix, history: Matrix, w2: [Float], b2: Float, slopes: [Float],
        scratch: inout Matrix, into logits: inout Matrix
    ) {
        let m = node.rows, h = node.cols, l = history.rows, d = nodes.cols
        precondition(nodes.rows == m && stacked.rows == d && stacked.cols == l * h && history.cols == h && w2.count == h
                     && slopes.count == h && logits.cols == l, "attention kernel: inconsistent shapes")
        logits.resize(rows: m)
        guard m > 0, l > 0, h > 0 else { return }
        let chunk = min(chunkRows, m)
        if scratch.cols != l * h { scratch = Matrix(rows: chunk, cols: l * h) } else if scratch.rows < chunk { scratch.resize(rows: chunk) }
        scratch.withUnsafeMutableBufferPointer { p in
            nodes.withUnsafeBufferPointer { x in
                stacked.withUnsafeBufferPointer { st in
                    node.withUnsafeBufferPointer { n in
                        history.withUnsafeBufferPointer { e in
                            slopes.withUnsafeBufferPointer { s in
                                w2.withUnsafeBufferPointer { w in
                                    logits.withUnsafeMutableBufferPointer { out in
                                        let sp = s.baseAddress!
                                        var k0 = 0
                                        while k0 < m {
                                            let rows = min(chunk, m - k0)
                                            BLAS.gemm(transposeA: false, transposeB: false, m: rows, n: l * h, k: d,
                                                      a: x.baseAddress! + k0 * d, lda: d, b: st.baseAddress!, ldb: l * h,
                                                      c: p.baseAddress!, ldc: l * h)
                                            for k in 0..<rows {
                                                let nodeRow = n.baseAddress! + (k0 + k) * h
                                                for j in 0..<l {
                                                    let a = p.baseAddress! + (k * l + j) * h
                                                    let historyRow = e.baseAddress! + j * h
                                                    for c in 0..<h {
                                                        let v = a[c] + nodeRow[c] + historyRow[c]
                                                        a[c] = Swift.max(v, 0) + sp[c] * Swift.min(v, 0)
                                                    }
                                                }
                                            }
                                            let y = out.baseAddress! + k0 * l
                                            for i in 0..<(rows * l) { y[i] = b2 }
                                            BLAS.gemv(rows: rows * l, cols: h, a: p.baseAddress!, lda: h, x: w.baseAddress!,
                                                      beta: 1, y: y)
                                            k0 += rows
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Softmax of every row of `x` (`m × L`), in place. O(m · L).
    public static func softmaxRows(_ x: inout Matrix) {
        let l = x.cols, m = x.rows
        guard l > 0 else { return }
        x.withUnsafeMutableBufferPointer { v in
            for k in 0..<m {
                let row = v.baseAddress! + k * l
                var top = -Float.infinity
                for j in 0..<l { top = Swift.max(top, row[j]) }
                var total: Float = 0
                for j in 0..<l { let e = Foundation.exp(row[j] - top); row[j] = e; total += e }
                let inverse = 1 / total
                for j in 0..<l { row[j] *= inverse }
            }
        }
    }

    /// The output MLP's input `[p, n, p ⊙ n]` for every row: `features` becomes `m × 3d` from
    /// `pooled` and `nodes` (`m × d` each). O(m · d).
    /// - Precondition: `pooled` and `nodes` have the same shape and `features.cols == 3 · d`.
    public static func productFeatures(pooled: Matrix, nodes: Matrix, into features: inout Matrix) {
        let m = nodes.rows, d = nodes.cols
        precondition(pooled.rows == m && pooled.cols == d && features.cols == 3 * d, "attention features: inconsistent shapes")
        features.resize(rows: m)
        guard m > 0, d > 0 else { return }
        pooled.withUnsafeBufferPointer { p in
            nodes.withUnsafeBufferPointer { n in
                features.withUnsafeMutableBufferPointer { f in
                    for k in 0..<m {
                        let pr = p.baseAddress! + k * d, nr = n.baseAddress! + k * d, fr = f.baseAddress! + k * 3 * d
                        for i in 0..<d {
                            fr[i] = pr[i]
                            fr[d + i] = nr[i]
                            fr[2 * d + i] = pr[i] * nr[i]
                        }
                    }
                }
            }
        }
    }
}
