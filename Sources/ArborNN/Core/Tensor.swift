/// A value recorded on a ``Tape``: a shape, its row-major values and the node id that the tape
/// uses to route gradients.
///
/// Shapes are batch-first, rank 1–3: `[features]`, `[batch, features]` (the workhorse, row-major),
/// `[batch, length, features]` for sequences. A scalar (a loss) has shape `[1]`.
/// Invariants: `values.count == shape.reduce(1, *)`; `id` indexes the tape that made the tensor,
/// and a tensor is only passed to ops of that tape. Copying a tensor is O(1) (values are shared
/// copy-on-write).
public struct Tensor {
    /// Index of this node on its tape.
    public let id: Int
    /// Dimensions, rank 1–3.
    public let shape: [Int]
    /// Row-major values.
    public let values: [Float]
    /// Whether a gradient flows back through this node (it depends on a variable or parameter).
    public let requiresGrad: Bool

    init(id: Int, shape: [Int], values: [Float], requiresGrad: Bool) {
        self.id = id
        self.shape = shape
        self.values = values
        self.requiresGrad = requiresGrad
    }

    /// Number of values.
    public var count: Int { values.count }
    /// Number of dimensions.
    public var rank: Int { shape.count }
    /// The first value: the loss of a scalar tensor.
    public var scalar: Float { values[0] }

    /// Throws if any value is NaN or infinite; `row` in the error is the index of the first bad
    /// row of the last dimension (the element index for rank 1). Use it on the loss before
    /// ``Tape/backward(_:)`` to stop a run that diverged. O(count).
    /// - Throws: ``ArborError/nonFiniteValue(field:row:)`` naming `name`.
    public func checkFinite(_ name: String = "loss") throws(ArborError) {
        let width = rank > 1 ? max(1, shape[rank - 1]) : 1
        for (i, v) in values.enumerated() where !v.isFinite {
            throw .nonFiniteValue(field: name, row: i / width)
        }
    }
}
