import Foundation

/// The DIN-style attention pooling that TDM's attention-DNN trains, fused into one forward and one
/// backward pass over all (row, behaviour) pairs of a training batch.
///
/// A batch has `B` samples, each a padded history of `L` behaviour embeddings (`history`,
/// `B × L × d`, row-major; `mask` is `B × L`, 1 for a real behaviour, 0 for padding), and `R`
/// scored rows, row `r` pairing sample `sampleOfRow[r]` with a node embedding (`node`, `R × d`).
/// For row `r` with sample `s` and behaviour `j` (`e = history[s, j]`, `n = node[r]`):
///
///     pre[r, j]    = e·W₁ₑ + n·W₁ₙ + (e ⊙ n)·W₁ₚ + b₁          (h values)
///     logit[r, j]  = b₂ + Σ_c prelu(pre[r, j, c]; slope_c) · w₂[c]
///     weight[r, ·] = softmax of logit[r, ·] over the real behaviours of s (all 0 if s has none)
///     pooled[r]    = Σ_j weight[r, j] · history[s, j]                (d values)
///
/// `W₁` is `3d × h` row-major with rows `[0, d)` = `W₁ₑ`, `[d, 2d)` = `W₁ₙ`, `[2d, 3d)` = `W₁ₚ`
/// (the attention unit's first layer on `[e, n, e ⊙ n]`); `w₂`, `slopes` and `b₁` have `h` values.
/// This is exactly what ``AttentionKernel`` and the serving attention scorer compute.
///
/// Cost: O(R·L·d·h) in GEMMs (the `e ⊙ n` projection) plus O(B·L·d·h + R·d·h) GEMMs for the
/// per-sample and per-node terms and O(R·L·(d + h)) elementwise work; the backward costs about
/// twice the forward. Rows are processed in chunks of ``chunkRows`` so the per-pair buffers
/// (`chunk·L × max(d, h)`) stay in cache; nothing of size `R·L·h` is stored between the passes
/// (the backward recomputes the pre-activations from the inputs).
public enum AttentionPoolingKernel {
    /// Rows per chunk of the per-pair work.
    public static let chunkRows = 128

    /// Shapes of one fused pass; every array handed to the kernel is checked against them.
    public struct Shape: Sendable, Equatable {
        /// Samples `B`.
        public var samples: Int
        /// Padded history length `L` (>= 1).
        public var length: Int
        /// Scored rows `R`.
        public var rows: Int
        /// Embedding width `d`.
        public var dimension: Int
        /// Hidden width `h` of the attention unit.
        public var hidden: Int

        /// Shapes of a pass.
        public init(samples: Int, length: Int, rows: Int, dimension: Int, hidden: Int) {
            self.samples = samples
            self.length = length
            self.rows = rows
            self.dimension = dimension
            self.hidden = hidden
        }
    }

    /// The weights of the attention unit (see the type's formula).
    public struct Weights: Sendable {
        /// `3d × h`, row-major.
        public var w1: [Float]
        /// `h`.
        public var b1: [Float]
        /// `h` PReLU slopes.
        public var slopes: [Float]
        /// `h` output weights (the `h × 1` second layer).
        public var w2: [Float]
        /// Output bias.
        public var b2: Float

        /// Weights from their arrays.
        public init(w1: [Float], b1: [Float], slopes: [Float], w2: [Float], b2: Float) {
            self.w1 = w1
            self.b1 = b1
            self.slopes = slopes
            self.w2 = w2
            self.b2 = b2
        }
    }

    /// Gradients of a loss with respect to every input of the pass, same layouts as the inputs.
    public struct Gradients: Sendable {
        /// `B × L × d`.
        public var history: [Float]
        /// `R × d`.
        public var node: [Float]
        /// `3d × h`.
        public var w1: [Float]
        /// `h`.
        public var b1: [Float]
        /// `h`.
        public var slopes: [Float]
        /// `h`.
        public var w2: [Float]
        /// Scalar.
        public var b2: Float
    }

    private static func check(_ s: Shape, history: [Float], mask: [Float], sampleOfRow: [Int], node: [Float], weights: Weights) {
        let d = s.dimension, h = s.hidden
        precondition(s.length >= 1 && d >= 1 && h >= 1, "attention pooling: empty shape \(s)")
        precondition(history.count == s.samples * s.length * d && mask.count == s.samples * s.length
                     && sampleOfRow.count == s.rows && node.count == s.rows * d,
                     "attention pooling: batch arrays do not match \(s)")
        precondition(weights.w1.count == 3 * d * h && weights.b1.count == h && weights.slopes.count == h
                     && weights.w2.count == h, "attention pooling: weights do not match \(s)")
        precondition(sampleOfRow.allSatisfy { (0..<s.samples).contains($0) }, "attention pooling: sample index out of range")
    }

    /// What the forward pass yields, and keeps for the backward pass.
    public struct Forward: Sendable {
        /// Attention weights, `R × L` (0 on padding).
        public let weights: [Float]
        /// Pooled behaviours, `R × d`.
        public let pooled: [Float]
        /// The per-sample and per-node terms of the first layer, reused by the backward pass.
        let terms: Terms
    }

    /// The forward pass: attention weights (`R × L`, 0 on padding) and pooled vectors (`R × d`).
    /// - Precondition: the arrays match `shape` and every `sampleOfRow` entry is in `0 ..< B`.
    public static func forward(
        shape s: Shape, history: [Float], mask: [Float], sampleOfRow: [Int], node: [Float], weights: Weights
    ) -> Forward {
        check(s, history: history, mask: mask, sampleOfRow: sampleOfRow, node: node, weights: weights)
        let d = s.dimension, h = s.hidden, l = s.length
        var attention = [Float](repeating: 0, count: s.rows * l)
        var pooled = [Float](repeating: 0, count: s.rows * d)
        let terms = Terms(s, history: history, node: node, w1: weights.w1)
        guard s.rows > 0 else { return Forward(weights: attention, pooled: pooled, terms: terms) }
        let chunk = min(chunkRows, s.rows)
        var pair = [Float](repeating: 0, count: chunk * l * d)
        var pre = [Float](repeating: 0, count: chunk * l * h)
        history.withUnsafeBufferPointer { e in
            node.withUnsafeBufferPointer { n in
                mask.withUnsafeBufferPointer { mk in
                    attention.withUnsafeMutableBufferPointer { att in
                        pooled.withUnsafeMutableBufferPointer { out in
                            var r0 = 0
                            while r0 < s.rows {
                                let m = min(chunk, s.rows - r0)
                                preActivations(s, rows: r0..<(r0 + m), e: e, n: n, sampleOfRow: sampleOfRow,
                                               terms: terms, w1: weights.w1, b1: weights.b1, pair: &pair, pre: &pre)
                                pre.withUnsafeBufferPointer { p in
                                    for i in 0..<m {
                                        let r = r0 + i, sample = sampleOfRow[r]
                                        let a = att.baseAddress! + r * l
                                        for j in 0..<l {
                                            let x = p.baseAddress! + (i * l + j) * h
                                            var logit = weights.b2
                                            for c in 0..<h {
                                                let v = x[c]
                                                logit += (v > 0 ? v : weights.slopes[c] * v) * weights.w2[c]
                                            }
                                            a[j] = logit
                                        }
                                        maskedSoftmax(a, mask: mk.baseAddress! + sample * l, count: l)
                                        let o = out.baseAddress! + r * d
                                        for j in 0..<l where a[j] != 0 {
                                            let row = e.baseAddress! + (sample * l + j) * d
                                            for c in 0..<d { o[c] += a[j] * row[c] }
                                        }
                                    }
                                }
                                r0 += m
                            }
                        }
                    }
                }
            }
        }
        return Forward(weights: attention, pooled: pooled, terms: terms)
    }

    /// The backward pass: every input's gradient given `pooledGradient` (`R × d`, ∂loss/∂pooled)
    /// and what ``forward(shape:history:mask:sampleOfRow:node:weights:)`` returned for the same
    /// inputs (its weights and first-layer terms are reused; the pre-activations are recomputed).
    /// Same cost as about two forward passes.
    /// - Precondition: as for the forward pass; `pooledGradient` is `R × d`.
    public static func backward(
        shape s: Shape, history: [Float], mask: [Float], sampleOfRow: [Int], node: [Float], weights: Weights,
        forward: Forward, pooledGradient: [Float]
    ) -> Gradients {
        check(s, history: history, mask: mask, sampleOfRow: sampleOfRow, node: node, weights: weights)
        let d = s.dimension, h = s.hidden, l = s.length
        let attention = forward.weights
        precondition(attention.count == s.rows * l && pooledGradient.count == s.rows * d,
                     "attention pooling: backward arrays do not match \(s)")
        var gHistory = [Float](repeating: 0, count: history.count), gNode = [Float](repeating: 0, count: node.count)
        var gW1 = [Float](repeating: 0, count: 3 * d * h), gB1 = [Float](repeating: 0, count: h)
        var gSlopes = [Float](repeating: 0, count: h), gW2 = [Float](repeating: 0, count: h)
        guard s.rows > 0 else {
            return Gradients(history: gHistory, node: gNode, w1: gW1, b1: gB1, slopes: gSlopes, w2: gW2, b2: 0)
        }
        let slopes = weights.slopes, w2 = weights.w2
        let terms = forward.terms
        let chunk = min(chunkRows, s.rows)
        var pair = [Float](repeating: 0, count: chunk * l * d)
        var pre = [Float](repeating: 0, count: chunk * l * h)
        var dLogit = [Float](repeating: 0, count: l)
        var dHistoryTerm = [Float](repeating: 0, count: s.samples * l * h)   // ∂/∂(e·W₁ₑ)
        var dNodeTerm = [Float](repeating: 0, count: s.rows * h)               // ∂/∂(n·W₁ₙ)
        var dPair = [Float](repeating: 0, count: chunk * l * d)
        var b2 = Float(0)
        history.withUnsafeBufferPointer { e in
            node.withUnsafeBufferPointer { n in
                attention.withUnsafeBufferPointer { att in
                    pooledGradient.withUnsafeBufferPointer { gp in
                        gHistory.withUnsafeMutableBufferPointer { ge in
                            gNode.withUnsafeMutableBufferPointer { gn in
                                var r0 = 0
                                while r0 < s.rows {
                                    let m = min(chunk, s.rows - r0)
                                    preActivations(s, rows: r0..<(r0 + m), e: e, n: n, sampleOfRow: sampleOfRow,
                                                   terms: terms, w1: weights.w1, b1: weights.b1, pair: &pair, pre: &pre)
                                    // pre becomes ∂loss/∂pre in place, row by row.
                                    pre.withUnsafeMutableBufferPointer { p in
                                        for i in 0..<m {
                                            let r = r0 + i, sample = sampleOfRow[r]
                                            let a = att.baseAddress! + r * l
                                            let go = gp.baseAddress! + r * d
                                            // pooled = Σ a_j e_j: ∂e_j += a_j·go, ∂a_j = go·e_j.
                                            var weighted = Float(0)
                                            for j in 0..<l {
                                                guard a[j] != 0 else { dLogit[j] = 0; continue }
                                                let row = e.baseAddress! + (sample * l + j) * d
                                                let grow = ge.baseAddress! + (sample * l + j) * d
                                                var dot = Float(0)
                                                for c in 0..<d { dot += go[c] * row[c]; grow[c] += a[j] * go[c] }
                                                dLogit[j] = dot
                                                weighted += a[j] * dot
                                            }
                                            for j in 0..<l { dLogit[j] = a[j] * (dLogit[j] - weighted) }
                                            for j in 0..<l {
                                                let x = p.baseAddress! + (i * l + j) * h
                                                let da = dLogit[j]
                                                b2 += da
                                                for c in 0..<h {
                                                    let v = x[c]
                                                    let slope = slopes[c]
                                                    gW2[c] += da * (v > 0 ? v : slope * v)
                                                    let dAct = da * w2[c]
                                                    if v > 0 { x[c] = dAct } else { gSlopes[c] += dAct * v; x[c] = slope * dAct }
                                                }
                                            }
                                            for j in 0..<l {
                                                let x = p.baseAddress! + (i * l + j) * h
                                                let ht = (sample * l + j) * h
                                                for c in 0..<h {
                                                    gB1[c] += x[c]
                                                    dNodeTerm[r * h + c] += x[c]
                                                    dHistoryTerm[ht + c] += x[c]
                                                }
                                            }
                                        }
                                    }
                                    // ∂W₁ₚ += pairᵀ · ∂pre;  ∂pair = ∂pre · W₁ₚᵀ.
                                    let pairs = m * l
                                    pair.withUnsafeBufferPointer { pp in
                                        pre.withUnsafeBufferPointer { dp in
                                            weights.w1.withUnsafeBufferPointer { w in
                                                gW1.withUnsafeMutableBufferPointer { gw in
                                                    dPair.withUnsafeMutableBufferPointer { dpp in
                                                        BLAS.gemm(transposeA: true, transposeB: false, m: d, n: h, k: pairs,
                                                                  a: pp.baseAddress!, lda: d, b: dp.baseAddress!, ldb: h,
                                                                  beta: 1, c: gw.baseAddress! + 2 * d * h, ldc: h)
                                                        BLAS.gemm(transposeA: false, transposeB: true, m: pairs, n: d, k: h,
                                                                  a: dp.baseAddress!, lda: h, b: w.baseAddress! + 2 * d * h, ldb: h,
                                                                  beta: 0, c: dpp.baseAddress!, ldc: d)
                                                    }
                                                }
                                            }
                                        }
                                    }
                                    // pair = e ⊙ n: ∂e += ∂pair ⊙ n, ∂n += Σ_j ∂pair ⊙ e.
                                    dPair.withUnsafeBufferPointer { dpp in
                                        for i in 0..<m {
                                            let r = r0 + i, sample = sampleOfRow[r]
                                            let nr = n.baseAddress! + r * d, gnr = gn.baseAddress! + r * d
                                            for j in 0..<l {
                                                let dpr = dpp.baseAddress! + (i * l + j) * d
                                                let row = e.baseAddress! + (sample * l + j) * d
                                                let grow = ge.baseAddress! + (sample * l + j) * d
                                                for c in 0..<d {
                                                    grow[c] += dpr[c] * nr[c]
                                                    gnr[c] += dpr[c] * row[c]
                                                }
                                            }
                                        }
                                    }
                                    r0 += m
                                }
                                // Per-node and per-sample terms: ∂W₁ₙ += nᵀ·∂NT, ∂n += ∂NT·W₁ₙᵀ; same for e.
                                weights.w1.withUnsafeBufferPointer { w in
                                    gW1.withUnsafeMutableBufferPointer { gw in
                                        dNodeTerm.withUnsafeBufferPointer { dnt in
                                            BLAS.gemm(transposeA: true, transposeB: false, m: d, n: h, k: s.rows,
                                                      a: n.baseAddress!, lda: d, b: dnt.baseAddress!, ldb: h,
                                                      beta: 1, c: gw.baseAddress! + d * h, ldc: h)
                                            BLAS.gemm(transposeA: false, transposeB: true, m: s.rows, n: d, k: h,
                                                      a: dnt.baseAddress!, lda: h, b: w.baseAddress! + d * h, ldb: h,
                                                      beta: 1, c: gn.baseAddress!, ldc: d)
                                        }
                                        dHistoryTerm.withUnsafeBufferPointer { dht in
                                            let pairs = s.samples * l
                                            BLAS.gemm(transposeA: true, transposeB: false, m: d, n: h, k: pairs,
                                                      a: e.baseAddress!, lda: d, b: dht.baseAddress!, ldb: h,
                                                      beta: 1, c: gw.baseAddress!, ldc: h)
                                            BLAS.gemm(transposeA: false, transposeB: true, m: pairs, n: d, k: h,
                                                      a: dht.baseAddress!, lda: h, b: w.baseAddress!, ldb: h,
                                                      beta: 1, c: ge.baseAddress!, ldc: d)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return Gradients(history: gHistory, node: gNode, w1: gW1, b1: gB1, slopes: gSlopes, w2: gW2, b2: b2)
    }

    /// The per-sample and per-node terms of the first layer: `e·W₁ₑ` (`B·L × h`) and `n·W₁ₙ`
    /// (`R × h`), two GEMMs.
    struct Terms: Sendable {
        var history: [Float]
        var node: [Float]

        init(_ s: Shape, history e: [Float], node n: [Float], w1: [Float]) {
            let d = s.dimension, h = s.hidden
            history = [Float](repeating: 0, count: s.samples * s.length * h)
            node = [Float](repeating: 0, count: s.rows * h)
            w1.withUnsafeBufferPointer { w in
                e.withUnsafeBufferPointer { pe in
                    history.withUnsafeMutableBufferPointer { out in
                        guard s.samples > 0 else { return }
                        BLAS.gemm(transposeA: false, transposeB: false, m: s.samples * s.length, n: h, k: d,
                                  a: pe.baseAddress!, lda: d, b: w.baseAddress!, ldb: h, c: out.baseAddress!, ldc: h)
                    }
                }
                n.withUnsafeBufferPointer { pn in
                    node.withUnsafeMutableBufferPointer { out in
                        guard s.rows > 0 else { return }
                        BLAS.gemm(transposeA: false, transposeB: false, m: s.rows, n: h, k: d,
                                  a: pn.baseAddress!, lda: d, b: w.baseAddress! + d * h, ldb: h, c: out.baseAddress!, ldc: h)
                    }
                }
            }
        }
    }

    /// For rows `rows` (at most the chunk size): `pair = e ⊙ n` (`m·L × d`) and
    /// `pre = pair·W₁ₚ + e·W₁ₑ + n·W₁ₙ + b₁` (`m·L × h`), into the chunk buffers.
    private static func preActivations(
        _ s: Shape, rows: Range<Int>, e: UnsafeBufferPointer<Float>, n: UnsafeBufferPointer<Float>, sampleOfRow: [Int],
        terms: Terms, w1: [Float], b1: [Float], pair: inout [Float], pre: inout [Float]
    ) {
        let d = s.dimension, h = s.hidden, l = s.length, m = rows.count
        pair.withUnsafeMutableBufferPointer { pp in
            for (i, r) in rows.enumerated() {
                let sample = sampleOfRow[r]
                let nr = n.baseAddress! + r * d
                for j in 0..<l {
                    let row = e.baseAddress! + (sample * l + j) * d
                    let out = pp.baseAddress! + (i * l + j) * d
                    for c in 0..<d { out[c] = row[c] * nr[c] }
                }
            }
            w1.withUnsafeBufferPointer { w in
                pre.withUnsafeMutableBufferPointer { out in
                    BLAS.gemm(transposeA: false, transposeB: false, m: m * l, n: h, k: d,
                              a: pp.baseAddress!, lda: d, b: w.baseAddress! + 2 * d * h, ldb: h, c: out.baseAddress!, ldc: h)
                }
            }
        }
        pre.withUnsafeMutableBufferPointer { out in
            terms.history.withUnsafeBufferPointer { ht in
                terms.node.withUnsafeBufferPointer { nt in
                    for (i, r) in rows.enumerated() {
                        let sample = sampleOfRow[r]
                        let ntr = nt.baseAddress! + r * h
                        for j in 0..<l {
                            let x = out.baseAddress! + (i * l + j) * h
                            let htr = ht.baseAddress! + (sample * l + j) * h
                            for c in 0..<h { x[c] += htr[c] + ntr[c] + b1[c] }
                        }
                    }
                }
            }
        }
    }

    /// Softmax of `logits[0 ..< count]` over the entries whose `mask` is non-zero, in place; masked
    /// entries become 0, and all become 0 when no entry is real.
    private static func maskedSoftmax(_ logits: UnsafeMutablePointer<Float>, mask: UnsafePointer<Float>, count: Int) {
        var top = -Float.infinity
        for j in 0..<count where mask[j] != 0 { top = max(top, logits[j]) }
        guard top > -Float.infinity else {
            for j in 0..<count { logits[j] = 0 }
            return
        }
        var sum = Float(0)
        for j in 0..<count {
            if mask[j] != 0 { logits[j] = Foundation.exp(logits[j] - top); sum += logits[j] } else { logits[j] = 0 }
        }
        let inverse = 1 / sum
        for j in 0..<count { logits[j] *= inverse }
    }
}
