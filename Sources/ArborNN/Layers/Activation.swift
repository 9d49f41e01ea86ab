/// A pointwise nonlinearity between layers.
public enum Activation: Sendable, Equatable {
    /// No nonlinearity.
    case identity
    /// `max(x, 0)`.
    case relu
    /// Parametric ReLU with one learned slope per feature (initialised to 0.25).
    case prelu
    /// Logistic sigmoid.
    case sigmoid
    /// Hyperbolic tangent.
    case tanh

    /// The weight initializer suited to a layer followed by this activation (He for the ReLU
    /// family, Xavier otherwise).
    public var suggestedInitializer: Initializer {
        switch self {
        case .relu, .prelu: return .heNormal
        default: return .xavierUniform
        }
    }
}

extension Tape {
    /// Applies `activation`; `preluSlope` is required for `.prelu` (`[features]` or `[1]`).
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` for `.prelu` without a slope.
    public func apply(_ activation: Activation, _ x: Tensor, preluSlope: Tensor? = nil) throws(ArborError) -> Tensor {
        switch activation {
        case .identity: return x
        case .relu: return relu(x)
        case .sigmoid: return sigmoid(x)
        case .tanh: return tanh(x)
        case .prelu:
            guard let preluSlope else {
                throw .invalidArgument(name: "prelu", reason: "needs a slope tensor")
            }
            return try prelu(x, alpha: preluSlope)
        }
    }
}
