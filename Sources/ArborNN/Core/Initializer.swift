/// How a parameter's values are drawn when it is created.
///
/// `fanIn`/`fanOut` are the input and output widths of the layer (for a `[in, out]` weight,
/// `in` and `out`). Draws consume the generator in row-major order, so a seed fixes the values.
public enum Initializer: Sendable, Equatable {
    /// All zeros (biases).
    case zeros
    /// Every value equal to the constant (PReLU slopes, Adagrad-style starts).
    case constant(Float)
    /// Uniform in `[-limit, limit)`.
    case uniform(limit: Float)
    /// Normal with mean 0 and the given standard deviation.
    case normal(std: Float)
    /// Glorot/Xavier uniform: limit `sqrt(6 / (fanIn + fanOut))`. For tanh/sigmoid/linear layers.
    case xavierUniform
    /// He/Kaiming normal: std `sqrt(2 / fanIn)`. For ReLU layers.
    case heNormal

    /// `count` values drawn from this initializer. O(count).
    public func values(
        count: Int, fanIn: Int, fanOut: Int, rng: inout some RandomNumberGenerator
    ) -> [Float] {
        switch self {
        case .zeros:
            return [Float](repeating: 0, count: count)
        case let .constant(c):
            return [Float](repeating: c, count: count)
        case let .uniform(limit):
            return (0..<count).map { _ in NNRandom.uniform(limit, &rng) }
        case let .normal(std):
            return (0..<count).map { _ in std * NNRandom.gaussian(&rng) }
        case .xavierUniform:
            let limit = (6 / Float(max(1, fanIn + fanOut))).squareRoot()
            return (0..<count).map { _ in NNRandom.uniform(limit, &rng) }
        case .heNormal:
            let std = (2 / Float(max(1, fanIn))).squareRoot()
            return (0..<count).map { _ in std * NNRandom.gaussian(&rng) }
        }
    }
}
