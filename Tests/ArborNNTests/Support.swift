import Testing
@testable import ArborNN

/// SplitMix64 for the tests (ArborNN takes any `RandomNumberGenerator`).
struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `count` values in ±[0.2, 1.2) (away from ReLU's kink at 0 by more than the FD step).
func randomValues(_ count: Int, seed: UInt64) -> [Float] {
    var rng = TestRNG(seed: seed)
    return (0..<count).map { _ in
        let m = 0.2 + NNRandom.unitFloat(&rng)
        return NNRandom.unitFloat(&rng) < 0.5 ? -m : m
    }
}

/// One input of a gradient check: its shape and values.
struct Input {
    var shape: [Int]
    var values: [Float]
    init(_ shape: [Int], seed: UInt64 = 1) {
        self.shape = shape
        self.values = randomValues(shape.reduce(1, *), seed: seed)
    }
    init(_ shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }
}

/// Relative error `‖a − n‖ / max(‖a‖, ‖n‖)` (0 when both are below 1e-7).
func relativeError(_ a: [Double], _ n: [Double]) -> Double {
    var diff = 0.0, na = 0.0, nn = 0.0
    for i in a.indices {
        diff += (a[i] - n[i]) * (a[i] - n[i])
        na += a[i] * a[i]
        nn += n[i] * n[i]
    }
    let scale = max(na.squareRoot(), nn.squareRoot())
    return scale < 1e-7 ? diff.squareRoot() : diff.squareRoot() / scale
}

/// The scalar `Σ wₖ yₖ` in Double for fixed pseudo-random weights, so that every output element
/// enters the check.
func projection(_ count: Int) -> [Float] { randomValues(count, seed: 99) }

func projectedLoss(_ y: Tensor) -> Double {
    if y.count == 1 { return Double(y.values[0]) }
    let w = projection(y.count)
    var s = 0.0
    for i in 0..<y.count { s += Double(w[i]) * Double(y.values[i]) }
    return s
}

/// Finite-difference check of every input's gradient: analytic (tape) vs central differences
/// with `step`, on `L = Σ wₖ yₖ` (or `y` itself when scalar). Returns the worst relative error.
@discardableResult
func checkGradients(
    _ inputs: [Input], step: Float = 1e-2, tolerance: Double = 1e-3, expectPass: Bool = true,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ f: (Tape, [Tensor]) throws -> Tensor
) throws -> Double {
    let tape = Tape()
    let xs = try inputs.map { try tape.variable($0.values, shape: $0.shape) }
    let y = try f(tape, xs)
    let loss = y.count == 1 ? y : tape.sum(try tape.mul(y, try tape.constant(projection(y.count), shape: y.shape)))
    try tape.backward(loss)
    var worst = 0.0
    for (i, input) in inputs.enumerated() {
        let analytic = tape.gradient(of: xs[i])!.map(Double.init)
        var numeric = [Double](repeating: 0, count: input.values.count)
        for j in 0..<input.values.count {
            var plus = inputs, minus = inputs
            plus[i].values[j] += step
            minus[i].values[j] -= step
            let lp = try evaluate(plus, f), lm = try evaluate(minus, f)
            // The perturbation actually applied in Float.
            let h = Double(plus[i].values[j]) - Double(minus[i].values[j])
            numeric[j] = (lp - lm) / h
        }
        let err = relativeError(analytic, numeric)
        if !expectPass { worst = max(worst, err); continue }
        #expect(err < tolerance, "input \(i): relative error \(err)\nanalytic \(analytic)\nnumeric  \(numeric)",
                sourceLocation: sourceLocation)
        worst = max(worst, err)
    }
    return worst
}

private func evaluate(_ inputs: [Input], _ f: (Tape, [Tensor]) throws -> Tensor) throws -> Double {
    let tape = Tape()
    let xs = try inputs.map { try tape.constant($0.values, shape: $0.shape) }
    return projectedLoss(try f(tape, xs))
}

/// Finite-difference check of parameter gradients (dense or sparse) of `f`.
@discardableResult
func checkParameterGradients(
    _ parameters: [Parameter], step: Float = 1e-2, tolerance: Double = 1e-3,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ f: (Tape) throws -> Tensor
) throws -> Double {
    for p in parameters { p.zeroGrad() }
    let tape = Tape()
    let y = try f(tape)
    let loss = y.count == 1 ? y : tape.sum(try tape.mul(y, try tape.constant(projection(y.count), shape: y.shape)))
    try tape.backward(loss)
    var worst = 0.0
    for p in parameters {
        let analytic = p.denseGradient().map(Double.init)
        var numeric = [Double](repeating: 0, count: p.count)
        let original = p.value
        for j in 0..<p.count {
            var v = original
            v[j] += step
            try p.assign(v)
            let lp = projectedLoss(try f(Tape()))
            let hp = Double(v[j])
            v[j] = original[j] - step
            try p.assign(v)
            let lm = projectedLoss(try f(Tape()))
            numeric[j] = (lp - lm) / (hp - Double(v[j]))
        }
        try p.assign(original)
        let err = relativeError(analytic, numeric)
        #expect(err < tolerance, "\(p.name): relative error \(err)", sourceLocation: sourceLocation)
        worst = max(worst, err)
        p.zeroGrad()
    }
    return worst
}
