/// A fully connected layer `y = x · W + b`, `W` stored `inputs × outputs` so the forward pass is
/// one GEMM without transposition.
///
/// Input `batch × inputs` (or `batch × length × inputs`, applied to every position through one
/// GEMM over `batch·length` rows); output `batch × outputs` (or `batch × length × outputs`).
/// Parameters: "<name>.weight" `[inputs, outputs]`, "<name>.bias" `[outputs]` (zeros at init).
public final class Linear: Module {
    /// `inputs × outputs`.
    public let weight: Parameter
    /// `[outputs]`, or `nil` for a layer without bias.
    public let bias: Parameter?
    /// Input width.
    public let inputs: Int
    /// Output width.
    public let outputs: Int

    /// A layer with weights drawn from `initializer` (Xavier uniform by default; He normal suits
    /// ReLU layers).
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` for a non-positive width.
    public init(
        inputs: Int, outputs: Int, bias: Bool = true, initializer: Initializer = .xavierUniform,
        name: String = "linear", rng: inout some RandomNumberGenerator
    ) throws(ArborError) {
        guard inputs > 0, outputs > 0 else {
            throw .invalidArgument(name: "\(name) widths", reason: "must be positive, got \(inputs) × \(outputs)")
        }
        self.inputs = inputs
        self.outputs = outputs
        weight = try Parameter(name: "\(name).weight", shape: [inputs, outputs], initializer: initializer, rng: &rng)
        self.bias = bias ? try Parameter(name: "\(name).bias", shape: [outputs], initializer: .zeros, rng: &rng) : nil
    }

    /// The trainable parameters, in serialisation order.
    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    /// `x · W + b` on `tape`. O(rows · inputs · outputs).
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` if `x`'s last dimension is
    ///   not `inputs`.
    public func callAsFunction(_ x: Tensor, on tape: Tape) throws(ArborError) -> Tensor {
        let width = x.shape[x.rank - 1]
        guard width == inputs else {
            throw .dimensionMismatch(field: "\(weight.name) input width", expected: inputs, found: width)
        }
        let flat = x.rank == 2 ? x : try tape.reshape(x, to: [x.count / max(1, inputs), inputs])
        var y = try tape.matmul(flat, tape.parameter(weight))
        if let bias { y = try tape.addBias(y, tape.parameter(bias)) }
        if x.rank == 2 { return y }
        return try tape.reshape(y, to: Array(x.shape.dropLast()) + [outputs])
    }
}
