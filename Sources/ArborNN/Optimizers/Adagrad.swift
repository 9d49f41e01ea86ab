/// Adagrad (Duchi et al., 2011): `acc += g²; value -= learningRate · g / (√acc + epsilon)`.
///
/// For a sparse parameter (an ``Embedding`` table) only the rows gathered since the last step
/// change, values and accumulators alike; dense parameters update every value.
/// O(touched rows × width) per sparse parameter, O(count) per dense one. State: one accumulator
/// per value.
public final class Adagrad: Optimizer {
    /// Step size.
    public var learningRate: Float
    /// Starting value of every accumulator (TensorFlow's default 0.1).
    public let initialAccumulator: Float
    /// Added to the root of the accumulator.
    public var epsilon: Float
    private var states: [ObjectIdentifier: SlotState] = [:]

    /// An Adagrad optimizer; state is created on a parameter's first step.
    public init(learningRate: Float = 0.05, initialAccumulator: Float = 0.1, epsilon: Float = 1e-7) {
        self.learningRate = learningRate
        self.initialAccumulator = initialAccumulator
        self.epsilon = epsilon
    }

    /// Updates every parameter with a gradient (only gathered rows of sparse ones), then clears
    /// the gradients.
    public func step(_ parameters: [Parameter]) {
        for p in parameters where p.requiresGrad && p.hasGradient {
            let s = slot(p, in: &states, first: initialAccumulator, second: nil)
            s.step += 1
            let (lr, eps) = (learningRate, epsilon)
            if p.isSparse && p.grad.isEmpty {
                let (rows, g) = p.rowGradient()
                let w = p.rowWidth
                for (i, r) in rows.enumerated() {
                    adagradUpdate(&p.value, &s.first, g, gOffset: i * w, range: r * w ..< (r + 1) * w, lr: lr, eps: eps)
                }
            } else {
                let g = p.gradRows.isEmpty ? p.grad : p.denseGradient()
                adagradUpdate(&p.value, &s.first, g, gOffset: 0, range: 0..<g.count, lr: lr, eps: eps)
            }
            p.zeroGrad()
        }
    }
}

@inline(__always)
private func adagradUpdate(
    _ value: inout [Float], _ acc: inout [Float], _ g: [Float], gOffset: Int, range: Range<Int>,
    lr: Float, eps: Float
) {
    let shift = gOffset - range.lowerBound
    for i in range {
        let gi = g[i + shift]
        acc[i] += gi * gi
        value[i] -= lr * gi / (acc[i].squareRoot() + eps)
    }
}
