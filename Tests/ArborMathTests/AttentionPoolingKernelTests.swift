import Foundation
import Testing
@testable import ArborMath

/// The fused attention pooling against a plain reference and against central differences.
@Suite struct AttentionPoolingKernelTests {
    /// A small batch: 3 samples of history length 5 (one with 2 real behaviours, one empty), 9 rows.
    struct Case {
        var shape = AttentionPoolingKernel.Shape(samples: 3, length: 5, rows: 9, dimension: 4, hidden: 3)
        var history: [Float]
        var mask: [Float]
        var sampleOfRow = [0, 1, 2, 0, 0, 1, 2, 1, 0]
        var node: [Float]
        var weights: AttentionPoolingKernel.Weights

        init(seed: UInt64 = 7) {
            var rng = SplitMix64(seed: seed)
            func draw(_ n: Int, _ scale: Float = 1) -> [Float] { (0..<n).map { _ in (rng.nextUnitFloat() * 2 - 1) * scale } }
            let s = shape
            mask = [1, 1, 1, 1, 1,  1, 1, 0, 0, 0,  0, 0, 0, 0, 0]
            history = draw(s.samples * s.length * s.dimension)
            // Padding rows are zero, as the embedding lookup makes them.
            for i in 0..<(s.samples * s.length) where mask[i] == 0 {
                for c in 0..<s.dimension { history[i * s.dimension + c] = 0 }
            }
            node = draw(s.rows * s.dimension)
            weights = .init(w1: draw(3 * s.dimension * s.hidden), b1: draw(s.hidden, 0.3), slopes: draw(s.hidden, 0.5),
                            w2: draw(s.hidden), b2: 0.2)
        }

        func forward() -> AttentionPoolingKernel.Forward {
            AttentionPoolingKernel.forward(shape: shape, history: history, mask: mask, sampleOfRow: sampleOfRow,
                                           node: node, weights: weights)
        }
    }

    /// The formula written out in Double, one pair at a time.
    static func reference(_ c: Case) -> [Double] {
        let s = c.shape, d = s.dimension, h = s.hidden, l = s.length
        var pooled = [Double](repeating: 0, count: s.rows * d)
        for r in 0..<s.rows {
            let sample = c.sampleOfRow[r]
            var logits = [Double](repeating: -.infinity, count: l)
            for j in 0..<l where c.mask[sample * l + j] != 0 {
                var logit = Double(c.weights.b2)
                for k in 0..<h {
                    var x = Double(c.weights.b1[k])
                    for i in 0..<d {
                        let e = Double(c.history[(sample * l + j) * d + i]), n = Double(c.node[r * d + i])
                        x += e * Double(c.weights.w1[i * h + k]) + n * Double(c.weights.w1[(d + i) * h + k])
                            + e * n * Double(c.weights.w1[(2 * d + i) * h + k])
                    }
                    logit += (x > 0 ? x : Double(c.weights.slopes[k]) * x) * Double(c.weights.w2[k])
                }
                logits[j] = logit
            }
            guard let top = logits.max(), top > -.infinity else { continue }
            let ex = logits.map { $0 == -.infinity ? 0 : Foundation.exp($0 - top) }
            let sum = ex.reduce(0, +)
            for j in 0..<l {
                for i in 0..<d { pooled[r * d + i] += ex[j] / sum * Double(c.history[(sample * l + j) * d + i]) }
            }
        }
        return pooled
    }

    @Test func forwardEqualsReference() {
        let c = Case()
        let got = c.forward()
        let want = Self.reference(c)
        #expect(got.pooled.count == want.count)
        for (a, b) in zip(got.pooled, want) { #expect(abs(Double(a) - b) < 1e-5) }
        // The empty sample's rows pool to zero and have no attention weight.
        for r in 0..<c.shape.rows where c.sampleOfRow[r] == 2 {
            #expect(got.pooled[(r * 4)..<(r * 4 + 4)].allSatisfy { $0 == 0 })
            #expect(got.weights[(r * 5)..<(r * 5 + 5)].allSatisfy { $0 == 0 })
        }
        // Weights sum to one over real behaviours, zero on padding.
        for r in 0..<c.shape.rows where c.sampleOfRow[r] == 1 {
            let w = got.weights[(r * 5)..<(r * 5 + 5)]
            #expect(abs(w.reduce(0, +) - 1) < 1e-6 && w.dropFirst(2).allSatisfy { $0 == 0 })
        }
    }

    /// Every gradient against central differences of `loss = Σ pooled ⊙ G`.
    @Test func gradientsMatchFiniteDifferences() {
        let base = Case()
        var rng = SplitMix64(seed: 99)
        let projection = (0..<(base.shape.rows * base.shape.dimension)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        func loss(_ c: Case) -> Double {
            zip(c.forward().pooled, projection).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        let f = base.forward()
        let g = AttentionPoolingKernel.backward(shape: base.shape, history: base.history, mask: base.mask,
                                                sampleOfRow: base.sampleOfRow, node: base.node, weights: base.weights,
                                                forward: f, pooledGradient: projection)
        let step: Float = 3e-3
        func numeric(_ count: Int, _ perturb: (inout Case, Int, Float) -> Void) -> [Double] {
            (0..<count).map { i in
                var plus = base, minus = base
                perturb(&plus, i, step)
                perturb(&minus, i, -step)
                return (loss(plus) - loss(minus)) / Double(2 * step)
            }
        }
        let s = base.shape
        let checks: [(String, [Float], [Double])] = [
            ("history", g.history, numeric(base.history.count) { c, i, e in if c.mask[i / s.dimension] != 0 { c.history[i] += e } }),
            ("node", g.node, numeric(base.node.count) { c, i, e in c.node[i] += e }),
            ("w1", g.w1, numeric(base.weights.w1.count) { c, i, e in c.weights.w1[i] += e }),
            ("b1", g.b1, numeric(s.hidden) { c, i, e in c.weights.b1[i] += e }),
            ("slopes", g.slopes, numeric(s.hidden) { c, i, e in c.weights.slopes[i] += e }),
            ("w2", g.w2, numeric(s.hidden) { c, i, e in c.weights.w2[i] += e }),
        ]
        for (name, analytic, num) in checks {
            var diff = 0.0, scale = 0.0
            #expect(analytic.count == num.count)
            for (a, n) in zip(analytic, num) {
                diff += (Double(a) - n) * (Double(a) - n)
                scale += n * n
            }
            let error = diff.squareRoot() / max(scale.squareRoot(), 1e-6)
            #expect(error < 2e-3, "\(name): relative error \(error)\nanalytic \(analytic)\nnumeric \(num)")
        }
        // The softmax is shift-invariant: b₂ has no gradient, analytically or numerically.
        let b2Numeric = numeric(1) { c, _, e in c.weights.b2 += e }[0]
        #expect(abs(g.b2) < 1e-5 && abs(b2Numeric) < 1e-3)
    }

    /// More rows than one chunk: the chunked pass equals the reference.
    @Test func manyRowsSpanChunks() {
        var c = Case()
        let rows = AttentionPoolingKernel.chunkRows * 2 + 5
        var rng = SplitMix64(seed: 3)
        c.shape.rows = rows
        c.sampleOfRow = (0..<rows).map { $0 % 3 }
        c.node = (0..<(rows * c.shape.dimension)).map { _ in rng.nextUnitFloat() - 0.5 }
        let got = c.forward().pooled
        #expect(got.count == Self.reference(c).count)
        for (a, b) in zip(got, Self.reference(c)) { #expect(abs(Double(a) - b) < 1e-5) }
    }
}
