/// A lookup table of `count` rows of width `dimension` with sparse gradients: a batch touches
/// only the rows it gathers, and sparse optimizers (``Adagrad``, ``LazyAdam``) update only those.
///
/// Parameter "<name>.table" `[count, dimension]`, initialised N(0, 1/√dimension) by default so
/// that a dot product of two rows starts with variance `1/dimension`.
public final class Embedding: Module {
    /// `count × dimension`, sparse.
    public let table: Parameter
    /// Number of rows.
    public var count: Int { table.shape[0] }
    /// Row width.
    public var dimension: Int { table.shape[1] }

    /// A table drawn from `initializer` (default normal, std `1/√dimension`).
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` for a non-positive size.
    public init(
        count: Int, dimension: Int, initializer: Initializer? = nil, name: String = "embedding",
        rng: inout some RandomNumberGenerator
    ) throws(ArborError) {
        guard count > 0, dimension > 0 else {
            throw .invalidArgument(name: "\(name) size", reason: "must be positive, got \(count) × \(dimension)")
        }
        let initial = initializer ?? .normal(std: 1 / Float(dimension).squareRoot())
        table = try Parameter(name: "\(name).table", shape: [count, dimension], initializer: initial,
                              sparse: true, rng: &rng)
    }

    /// The trainable parameters, in serialisation order.
    public var parameters: [Parameter] { [table] }

    /// Rows `indices` (negative = padding, a zero row), shaped `indexShape + [dimension]`
    /// (default `[indices.count, dimension]`; pass `[batch, length]` for sequences). O(indices ×
    /// dimension).
    /// - Throws: ``ArborError`` for an index out of range or an index shape that does not hold
    ///   `indices.count` elements.
    public func callAsFunction(_ indices: [Int], indexShape: [Int]? = nil, on tape: Tape) throws(ArborError) -> Tensor {
        try tape.gather(table, indices: indices, indexShape: indexShape)
    }
}
