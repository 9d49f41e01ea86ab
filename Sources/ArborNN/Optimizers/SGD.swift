/// Plain stochastic gradient descent, `value -= learningRate · g`; sparse parameters change only
/// in the gathered rows. O(gradient size).
public final class SGD: Optimizer {
    /// Step size.
    public var learningRate: Float

    /// An SGD optimizer (no state).
    public init(learningRate: Float = 0.01) { self.learningRate = learningRate }

    /// Updates every parameter with a gradient (only gathered rows of sparse ones), then clears
    /// the gradients.
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
