/// Updates parameters from their recorded gradients and then clears those gradients.
///
/// Optimizer state (moments, accumulators) is kept per parameter object; pass the same
/// parameters on every step. Parameters with `requiresGrad == false` or no gradient are skipped
/// (their state does not advance). Deterministic: the same gradients give the same updates.
/// Tip: drop the tape (or any ``Tensor`` obtained from ``Tape/parameter(_:)``) before `step`, or
/// the first write to a weight array copies it (copy-on-write).
public protocol Optimizer: AnyObject {
    /// Applies one update to every parameter in `parameters` that has a gradient, then calls
    /// ``Parameter/zeroGrad()`` on it.
    func step(_ parameters: [Parameter])
}

/// The global L2 norm of the gradients of `parameters` (dense parts plus coalesced sparse rows),
/// and, if it exceeds `maxNorm`, all gradients scaled by `maxNorm / norm`. Returns the norm before
/// clipping. O(total gradient size).
@discardableResult
public func clipGradientNorm(_ parameters: [Parameter], maxNorm: Float) -> Float {
    var squares: Double = 0
    for p in parameters {
        if !p.gradRows.isEmpty {
            let (rows, values) = p.rowGradient()
            p.zeroGrad()
            p.accumulateRows(rows, values)
        }
        for g in p.grad { squares += Double(g) * Double(g) }
        for g in p.gradRowValues { squares += Double(g) * Double(g) }
    }
    let norm = Float(squares.squareRoot())
    guard norm > maxNorm, norm > 0 else { return norm }
    let factor = maxNorm / norm
    for p in parameters {
        for i in p.grad.indices { p.grad[i] *= factor }
        for i in p.gradRowValues.indices { p.gradRowValues[i] *= factor }
    }
    return norm
}

/// Per-parameter optimizer state, keyed by the parameter's identity (the parameter is retained
/// so that its identity cannot be reused).
final class SlotState {
    let parameter: Parameter
    var first: [Float]
    var second: [Float]
    var step: Int = 0
    /// `second == nil` leaves the second slot empty (Adagrad needs one slot only).
    init(_ parameter: Parameter, first: Float, second: Float?) {
        self.parameter = parameter
        self.first = [Float](repeating: first, count: parameter.count)
        self.second = second.map { [Float](repeating: $0, count: parameter.count) } ?? []
    }
}

/// Looks up or creates the state of `p` in `states`.
func slot(
    _ p: Parameter, in states: inout [ObjectIdentifier: SlotState], first: Float = 0, second: Float? = 0
) -> SlotState {
    if let s = states[ObjectIdentifier(p)] { return s }
    let s = SlotState(p, first: first, second: second)
    states[ObjectIdentifier(p)] = s
    return s
}
