import ArborCore
import ArborMath
import Foundation

/// Element-wise activation of a dense layer.
public enum InferenceActivation: Sendable, Equatable {
    case identity
    case relu
    /// Parametric ReLU with one learned slope per output unit (TDM's choice).
    case prelu(slopes: [Float])
    case sigmoid

    /// The activation of one value in column `column` (the PReLU slope is per column).
    @inline(__always)
    func value(_ x: Float, column: Int) -> Float {
        switch self {
        case .identity: return x
        case .relu: return x < 0 ? 0 : x
        case .prelu(let slopes): return x < 0 ? x * slopes[column] : x
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        }
    }

    func apply(_ x: inout Matrix) {
        switch self {
        case .identity: return
        case .relu: x.applyReLU()
        case .prelu(let slopes): x.applyPReLU(slopes: slopes)
        case .sigmoid: x.applySigmoid()
        }
    }
}

/// A fully connected layer for inference: `y = act(x · W + b)`, `W` is `inputs × outputs`
/// (row-major), `b` has `outputs` values. Immutable and thread-safe.
public struct DenseLayer: Sendable, Equatable {
    /// `inputs × outputs`, row-major.
    public let weight: Matrix
    /// `outputs` values.
    public let bias: [Float]
    /// Applied element-wise after the bias.
    public let activation: InferenceActivation

    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` when the bias or PReLU
    ///   slopes do not have `weight.cols` values, or ``ArborError/nonFiniteValue(field:row:)``.
    public init(weight: Matrix, bias: [Float], activation: InferenceActivation, name: String = "layer") throws {
        guard bias.count == weight.cols else {
            throw ArborError.dimensionMismatch(field: "\(name).bias", expected: weight.cols, found: bias.count)
        }
        if case .prelu(let slopes) = activation, slopes.count != weight.cols {
            throw ArborError.dimensionMismatch(field: "\(name).slopes", expected: weight.cols, found: slopes.count)
        }
        if let bad = weight.firstNonFiniteRow() { throw ArborError.nonFiniteValue(field: "\(name).weight", row: bad) }
        if bias.contains(where: { !$0.isFinite }) { throw ArborError.nonFiniteValue(field: "\(name).bias", row: 0) }
        self.weight = weight
        self.bias = bias
        self.activation = activation
    }

    /// Width of the input rows.
    public var inputs: Int { weight.rows }
    /// Width of the output rows.
    public var outputs: Int { weight.cols }

    /// `output = act(input · W + b)`; `input` is `m × inputs`, `output` becomes `m × outputs`
    /// (its storage reused). One GEMM, O(m · inputs · outputs).
    public func forward(_ input: Matrix, into output: inout Matrix) {
        precondition(output.cols == outputs)
        BLAS.gemm(input, weight, into: &output)
        addBiasAndActivate(&output)
    }

    /// Adds the bias to every row of `x` (`m × outputs`) and applies the activation in place.
    public func addBiasAndActivate(_ x: inout Matrix) {
        addBiasAndActivate(&x, bias: bias)
    }

    /// Adds `bias` (`outputs` values, e.g. the layer's bias plus a per-query term) to every row of
    /// `x` and applies the activation in place; PReLU in the same pass. O(m · outputs).
    public func addBiasAndActivate(_ x: inout Matrix, bias: [Float]) {
        if case .prelu(let slopes) = activation {
            x.addBias(bias, thenPReLU: slopes)
        } else {
            x.addToEachRow(bias)
            activation.apply(&x)
        }
    }
}

/// A stack of dense layers for inference.
public struct InferenceMLP: Sendable, Equatable {
    /// The layers, first to last; each one's outputs equal the next one's inputs.
    public let layers: [DenseLayer]

    /// - Throws: ``ArborError`` when consecutive layers' widths do not chain.
    public init(layers: [DenseLayer]) throws {
        for (i, pair) in zip(layers, layers.dropFirst()).enumerated() where pair.0.outputs != pair.1.inputs {
            throw ArborError.dimensionMismatch(field: "layer \(i + 1) inputs", expected: pair.0.outputs,
                                               found: pair.1.inputs)
        }
        self.layers = layers
    }

    /// Runs layers `from...` on `input` using `buffers` (one per layer, reused); returns the last.
    public func forward(_ input: Matrix, from first: Int = 0, buffers: inout [Matrix]) -> Matrix {
        if buffers.count != layers.count { buffers = layers.map { Matrix(rows: 0, cols: $0.outputs) } }
        var current = input
        for i in first..<layers.count {
            layers[i].forward(current, into: &buffers[i])
            current = buffers[i]
        }
        return current
    }
}

extension InferenceMLP {
    /// A randomly initialised stack for `widths` (`widths[0]` inputs, then each layer's outputs):
    /// He-uniform weights, zero biases, PReLU (slopes 0.25) between layers, identity on the last.
    /// Layers are named `prefix.i` in errors. For tests and as the starting point of training.
    public static func random(widths: [Int], prefix: String, using rng: inout SplitMix64) throws -> InferenceMLP {
        var layers: [DenseLayer] = []
        for (i, (a, b)) in zip(widths, widths.dropFirst()).enumerated() {
            let limit = (6 / Float(a)).squareRoot()
            let w = try Matrix(rows: a, cols: b, values: (0..<(a * b)).map { _ in (rng.nextUnitFloat() * 2 - 1) * limit })
            let act: InferenceActivation = i == widths.count - 2 ? .identity : .prelu(slopes: Array(repeating: 0.25, count: b))
            layers.append(try DenseLayer(weight: w, bias: Array(repeating: 0, count: b), activation: act, name: "\(prefix).\(i)"))
        }
        return try InferenceMLP(layers: layers)
    }
}
