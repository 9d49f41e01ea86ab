#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Adagrad (Duchi et al., 2011): `acc += g²; value -= learningRate · g / (√acc + epsilon)`.
///
/// For a sparse parameter (an ``Embedding`` table) only the rows gathered since the last step
/// change, values and accumulators alike; dense parameters update every value.
/// O(touched rows × width) per sparse parameter, O(count) per dense one.
public final class Adagrad: Optimizer {
    /// Step size.
    public var learningRate: Float
    /// Starting value of every accumulator (TensorFlow's default 0.1).
    public let initialAccumulator: Float
    /// Added to the root of the accumulator.
    public var epsilon: Float
    private var states: [ObjectIdentifier: SlotState] = [:]

    public init(learningRate: Float = 0.05, initialAccumulator: Float = 0.1, epsilon: Float = 1e-7) {
        self.learningRate = learningRate
        self.initialAccumulator = initialAccumulator
        self.epsilon = epsilon
    }

    public func step(_ parameters: [Parameter]) {
        for p in parameters where p.requiresGrad && p.hasGradient {
            let s = slot(p, in: &states, first: initialAccumulator)
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

/// Lazy Adam (TensorFlow's `LazyAdamOptimizer`): Adam whose moments and values change only for
/// the rows of a sparse parameter gathered since the last step; bias correction uses the
/// parameter's step count. Dense parameters get plain ``Adam`` updates.
/// O(touched rows × width) per sparse parameter, O(count) per dense one.
public final class LazyAdam: Optimizer {
    /// Step size.
    public var learningRate: Float
    /// Decay of the first moment.
    public var beta1: Float
    /// Decay of the second moment.
    public var beta2: Float
    /// Added to the root of the second moment.
    public var epsilon: Float
    private var states: [ObjectIdentifier: SlotState] = [:]

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    public func step(_ parameters: [Parameter]) {
        for p in parameters where p.requiresGrad && p.hasGradient {
            let s = slot(p, in: &states)
            s.step += 1
            let c1 = 1 - powf(beta1, Float(s.step))
            let c2 = 1 - powf(beta2, Float(s.step))
            let (b1, b2, lr, eps) = (beta1, beta2, learningRate, epsilon)
            if p.isSparse && p.grad.isEmpty {
                let (rows, g) = p.rowGradient()
                let w = p.rowWidth
                for (i, r) in rows.enumerated() {
                    adamUpdate(&p.value, &s.first, &s.second, g, gOffset: i * w, range: r * w ..< (r + 1) * w,
                               b1: b1, b2: b2, lr: lr, eps: eps, wd: 0, c1: c1, c2: c2)
                }
            } else {
                let g = p.gradRows.isEmpty ? p.grad : p.denseGradient()
                adamUpdate(&p.value, &s.first, &s.second, g, range: 0..<g.count,
                           b1: b1, b2: b2, lr: lr, eps: eps, wd: 0, c1: c1, c2: c2)
            }
            p.zeroGrad()
        }
    }
}

/// Plain stochastic gradient descent, `value -= learningRate · g`; sparse parameters change only
/// in the gathered rows. O(gradient size).
public final class SGD: Optimizer {
    /// Step size.
    public var learningRate: Float

    public init(learningRate: Float = 0.01) { self.learningRate = learningRate }

    public func step(_ parameters: [Parameter]) {
        let lr = learningRate
        for p in parameters where p.requiresGrad && p.hasGradient {
            if p.isSparse && p.grad.isEmpty {
                let (rows, g) = p.rowGradient()
                let w = p.rowWidth
                for (i, r) in rows.enumerated() {
                    for j in 0..<w { p.value[r * w + j] -= lr * g[i * w + j] }
                }
            } else {
                let g = p.gradRows.isEmpty ? p.grad : p.denseGradient()
                for i in 0..<g.count { p.value[i] -= lr * g[i] }
            }
            p.zeroGrad()
        }
    }
}
