/// A stack of ``Linear`` layers with an activation after each hidden layer (and optionally after
/// the last), e.g. TDM's 128-64-24 tower.
///
/// `sizes = [inputs, hidden..., outputs]`; input `batch × inputs` (or rank 3), output
/// `batch × outputs`. Parameters are named "<name>.<i>.weight", "<name>.<i>.bias" and, for PReLU,
/// "<name>.<i>.prelu" (`[width]`, initialised to 0.25).
public final class MLP: Module {
    /// The layers, first to last.
    public let layers: [Linear]
    /// PReLU slopes per hidden layer (empty unless the activation is `.prelu`).
    public let slopes: [Parameter]
    /// Activation after every hidden layer.
    public let activation: Activation
    /// Activation after the last layer (`.identity` for logits).
    public let outputActivation: Activation

    /// An MLP with layer widths `sizes` (at least two entries).
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` for fewer than two sizes, a
    ///   non-positive width, or `.prelu` as the output activation.
    public init(
        sizes: [Int], activation: Activation = .relu, outputActivation: Activation = .identity,
        name: String = "mlp", rng: inout some RandomNumberGenerator
    ) throws(ArborError) {
        guard sizes.count >= 2 else {
            throw .invalidArgument(name: "\(name) sizes", reason: "needs input and output widths, got \(sizes)")
        }
        guard outputActivation != .prelu else {
            throw .invalidArgument(name: "\(name) output activation", reason: "prelu is only for hidden layers")
        }
        var layers: [Linear] = []
        var slopes: [Parameter] = []
        for i in 0..<(sizes.count - 1) {
            let last = i == sizes.count - 2
            let act = last ? outputActivation : activation
            layers.append(try Linear(inputs: sizes[i], outputs: sizes[i + 1],
                                     initializer: act.suggestedInitializer, name: "\(name).\(i)", rng: &rng))
            if !last && activation == .prelu {
                slopes.append(try Parameter(name: "\(name).\(i).prelu", shape: [sizes[i + 1]],
                                            values: [Float](repeating: 0.25, count: sizes[i + 1])))
            }
        }
        self.layers = layers
        self.slopes = slopes
        self.activation = activation
        self.outputActivation = outputActivation
    }

    /// The trainable parameters, in serialisation order.
    public var parameters: [Parameter] {
        var ps: [Parameter] = []
        for (i, layer) in layers.enumerated() {
            ps += layer.parameters
            if i < slopes.count { ps.append(slopes[i]) }
        }
        return ps
    }

    /// Input width.
    public var inputs: Int { layers[0].inputs }
    /// Output width.
    public var outputs: Int { layers[layers.count - 1].outputs }

    /// The forward pass on `tape`. O(rows · Σ inᵢ·outᵢ).
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` for a wrong input width.
    public func callAsFunction(_ x: Tensor, on tape: Tape) throws(ArborError) -> Tensor {
        var h = x
        for (i, layer) in layers.enumerated() {
            h = try layer(h, on: tape)
            if i < layers.count - 1 {
                h = try tape.apply(activation, h, preluSlope: i < slopes.count ? tape.parameter(slopes[i]) : nil)
            } else {
                h = try tape.apply(outputActivation, h)
            }
        }
        return h
    }
}
