#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Lazy Adam (TensorFlow's `LazyAdamOptimizer`): Adam whose moments and values change only for
/// the rows of a sparse parameter gathered since the last step; bias correction uses the
/// parameter's step count. Dense parameters get plain ``Adam`` updates.
/// O(touched rows × width) per sparse parameter, O(count) per dense one. State: two moments per
/// value (a full-size copy of the table each), allocated on the parameter's first step.
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

    /// A lazy Adam optimizer with Adam's usual defaults.
    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    /// Updates every parameter with a gradient (only gathered rows of sparse ones), then clears
    /// the gradients.
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
