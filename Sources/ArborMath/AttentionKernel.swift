/// The inner loop of a DIN-style activation unit, for all (node, behaviour) pairs of a level:
///
///     logits[k, j] = b₂ + Σ_c f(pair[k, j·h + c] + node[k, c] + history[j, c]) · w₂[c]
///
/// where `f(x) = x` for `x >= 0` and `slope[c] · x` otherwise (identity: slopes 1; ReLU: slopes 0;
/// PReLU: the learned slopes). Shapes: `pair` is `m × L·h`, `node` is `m × h`, `history` is `L × h`,
/// `w₂` and `slopes` have `h` values; `logits` becomes `m × L`. O(m · L · h), allocation-free,
/// contiguous inner loops (the GEMMs that produce `pair` and `node` carry the `d`-sized work).
public enum AttentionKernel {
    public static func logits(
        pair: Matrix, node: Matrix, history: Matrix, w2: [Float], b2: Float, slopes: [Float], into logits: inout Matrix
    ) {
        let m = node.rows, h = node.cols, l = history.rows
        precondition(pair.rows == m && pair.cols == l * h && history.cols == h && w2.count == h && slopes.count == h
                     && logits.cols == l, "attention kernel: inconsistent shapes")
        logits.resize(rows: m)
        guard m > 0, l > 0, h > 0 else { return }
        pair.withUnsafeBufferPointer { p in
            node.withUnsafeBufferPointer { n in
                history.withUnsafeBufferPointer { e in
                    w2.withUnsafeBufferPointer { w in
                        slopes.withUnsafeBufferPointer { s in
                            logits.withUnsafeMutableBufferPointer { out in
                                for k in 0..<m {
                                    let nodeRow = n.baseAddress! + k * h
                                    for j in 0..<l {
                                        let pairRow = p.baseAddress! + (k * l + j) * h
                                        let historyRow = e.baseAddress! + j * h
                                        var a = b2
                                        for c in 0..<h {
                                            let x = pairRow[c] + nodeRow[c] + historyRow[c]
                                            a += (x < 0 ? x * s[c] : x) * w[c]
                                        }
                                        out[k * l + j] = a
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
