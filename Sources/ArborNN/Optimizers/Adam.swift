#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Adam (Kingma & Ba, 2015) with bias correction and optional decoupled weight decay (AdamW),
/// for dense weights. Every value of a parameter with a gradient moves each step; for an
/// embedding table whose sparse rows it receives, the rows are densified first (use ``LazyAdam``
/// or ``Adagrad`` to touch only the gathered rows). O(parameter count) per step.
public final class Adam: Optimizer {
    /// Step size.
    public var learningRate: Float
    /// Decay of the first moment.
    public var beta1: Float
    /// Decay of the second moment.
    public var beta2: Float
    /// Added to the root of the second moment.
    public var epsilon: Float
    /// Decoupled weight decay per step (`value -= learningRate · weightDecay · value`); 0 disables.
    public var weightDecay: Float
    private var states: [ObjectIdentifier: SlotState] = [:]

    /// An Adam optimizer; the defaults are Kingma & Ba's.
    public init(
        learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
        weightDecay: Float = 0
    ) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// Updates every value of each parameter with a gradient, then clears the gradients.
    /// O(parameter count).
    public func step(_ parameters: [Parameter]) {
        for p in parameters where p.requiresGrad && p.hasGradient {
            let g = p.gradRows.isEmpty ? p.grad : p.denseGradient()
            let s = slot(p, in: &states)
            s.step += 1
            let c1 = 1 - powf(beta1, Float(s.step))
            let c2 = 1 - powf(beta2, Float(s.step))
            let (b1, b2, lr, eps, wd) = (beta1, beta2, learningRate, epsilon, weightDecay)
            adamUpdate(&p.value, &s.first, &s.second, g, range: 0..<g.count,
                       b1: b1, b2: b2, lr: lr, eps: eps, wd: wd, c1: c1, c2: c2)
            p.zeroGrad()
        }
    }
}

/// The Adam update of `value[i]` for `i` in `range`, with gradient `g[i - range.lowerBound + gOffset]`.
/// One pass over raw buffers (no per-element uniqueness or exclusivity checks); the arithmetic is
/// the textbook order, element by element.
@inline(__always)
func adamUpdate(
    _ value: inout [Float], _ m: inout [Float], _ v: inout [Float], _ g: [Float], gOffset: Int = 0,
    range: Range<Int>, b1: Float, b2: Float, lr: Float, eps: Float, wd: Float, c1: Float, c2: Float
) {
    precondition(range.lowerBound >= 0 && range.upperBound <= value.count && value.count <= m.count && value.count <= v.count
                 && gOffset >= 0 && gOffset + range.count <= g.count, "adamUpdate: range outside the buffers")
    guard !range.isEmpty else { return }
    let shift = gOffset - range.lowerBound
    value.withUnsafeMutableBufferPointer { pv in
        m.withUnsafeMutableBufferPointer { pm in
            v.withUnsafeMutableBufferPointer { pvv in
                g.withUnsafeBufferPointer { pg in
                    let (x, mm, vv, gg) = (pv.baseAddress!, pm.baseAddress!, pvv.baseAddress!, pg.baseAddress!)
                    for i in range {
                        let gi = gg[i + shift]
                        mm[i] = b1 * mm[i] + (1 - b1) * gi
                        vv[i] = b2 * vv[i] + (1 - b2) * gi * gi
                        let update = (mm[i] / c1) / ((vv[i] / c2).squareRoot() + eps)
                        x[i] -= lr * (update + wd * x[i])
                    }
                }
            }
        }
    }
}
