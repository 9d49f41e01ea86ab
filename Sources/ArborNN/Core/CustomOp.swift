extension Tape {
    /// Records an op defined outside ArborNN (a fused kernel of a model, say).
    ///
    /// `values` (shape `shape`) is the op's output, already computed from `inputs`. During the
    /// reverse sweep `backward(outputGradient, i, &inputGradient)` is called once for each input
    /// `i` that requires a gradient; it must **add** `∂loss/∂inputs[i]` into `inputGradient`
    /// (`inputs[i].count` values, zeros or earlier contributions). Capture what the backward needs
    /// (inputs, intermediates) in the closure; do not capture the tape. Give the op a
    /// finite-difference test like the built-in ones.
    /// - Throws: ``ArborError`` if `shape` is not rank 1–3 or does not match `values.count`.
    public func custom(
        _ inputs: [Tensor], values: [Float], shape: [Int],
        backward: @escaping (_ outputGradient: [Float], _ input: Int, _ inputGradient: inout [Float]) -> Void
    ) throws(ArborError) -> Tensor {
        try validateShape(shape, op: "custom op")
        guard shape.reduce(1, *) == values.count else {
            throw .dimensionMismatch(field: "custom op values for shape \(shape)", expected: shape.reduce(1, *),
                                     found: values.count)
        }
        let ids = inputs.map(\.id)
        return record(values, shape: shape, requiresGrad: inputs.contains { $0.requiresGrad }) { tape, g in
            for (i, id) in ids.enumerated() {
                tape.accumulate(id) { dx in backward(g, i, &dx) }
            }
        }
    }
}
