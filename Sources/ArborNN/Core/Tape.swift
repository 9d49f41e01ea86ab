/// The record of one forward pass, for reverse-mode differentiation.
///
/// Make a tape per batch, feed inputs as ``constant(_:shape:)`` (no gradient) or
/// ``variable(_:shape:)`` (gradient readable through ``gradient(of:)``), bring parameters in with
/// ``parameter(_:)`` or ``gather(_:indices:indexShape:)``, apply ops (extensions of `Tape`), then call
/// ``backward(_:)`` on the scalar loss: gradients are summed into each ``Parameter``'s `grad` (or its
/// sparse rows). An optimizer step then updates the parameters; the tape is thrown away.
///
/// Nodes are appended in forward order, so the reverse sweep is a walk down the node ids.
/// Memory: each node keeps its values (through its ``Tensor`` and the backward closure) until
/// `backward` runs; `backward` releases the closures. Not thread-safe: one tape per thread. Tapes
/// on several threads may read the same parameters; only tapes made with a ``GradientSink`` may
/// also run `backward` at the same time (plain tapes write into the parameters).
public final class Tape {
    /// Computes the gradient contributions of one node's inputs from the node's output gradient.
    typealias Backward = (_ tape: Tape, _ gradient: [Float]) -> Void

    private var shapes: [[Int]] = []
    private var counts: [Int] = []
    private var needsGrad: [Bool] = []
    private var grads: [[Float]] = []
    private var backwards: [Backward?] = []
    private var consumed = false
    /// Where parameter gradients go: `nil` adds them to the parameters as `backward` runs; a sink
    /// keeps them apart until ``GradientSink/merge()`` (data-parallel shards).
    let gradientSink: GradientSink?

    /// An empty tape whose ``backward(_:)`` adds parameter gradients to the parameters.
    public init() { gradientSink = nil }

    /// An empty tape whose ``backward(_:)`` records parameter gradients in `sink` instead of adding
    /// them to the parameters, so that several tapes can run backward on different threads at
    /// once over the same parameters (see ``DataParallel``). The sink's ``GradientSink/merge()``
    /// then adds them, in the order they were recorded.
    public init(sink: GradientSink) { gradientSink = sink }

    /// Number of nodes recorded.
    public var nodeCount: Int { shapes.count }

    /// Appends a node. `backward` is dropped when no gradient can flow (no input requires one).
    func record(_ values: [Float], shape: [Int], requiresGrad: Bool, backward: Backward?) -> Tensor {
        precondition(!consumed, "Tape: record after backward; make a new tape per forward pass")
        let id = shapes.count
        shapes.append(shape)
        counts.append(values.count)
        needsGrad.append(requiresGrad)
        grads.append([])
        backwards.append(requiresGrad ? backward : nil)
        return Tensor(id: id, shape: shape, values: values, requiresGrad: requiresGrad)
    }

    /// Runs `body` on the gradient buffer of node `id` (zero-filled on first use) when the node
    /// requires a gradient; ops add their contributions inside `body`.
    @inline(__always)
    func accumulate(_ id: Int, _ body: (inout [Float]) -> Void) {
        guard needsGrad[id] else { return }
        if grads[id].isEmpty { grads[id] = [Float](repeating: 0, count: counts[id]) }
        body(&grads[id])
    }

    /// An input with no gradient (features, labels as tensors).
    /// - Throws: ``ArborError`` if the shape is not rank 1–3 or does not match `values.count`.
    public func constant(_ values: [Float], shape: [Int]) throws(ArborError) -> Tensor {
        try checkShape(values.count, shape, op: "constant")
        return record(values, shape: shape, requiresGrad: false, backward: nil)
    }

    /// An input whose gradient is kept on the tape (read it with ``gradient(of:)`` after
    /// ``backward(_:)``); for gradient checks and for inputs that are themselves outputs of
    /// something else.
    /// - Throws: ``ArborError`` if the shape is not rank 1–3 or does not match `values.count`.
    public func variable(_ values: [Float], shape: [Int]) throws(ArborError) -> Tensor {
        try checkShape(values.count, shape, op: "variable")
        return record(values, shape: shape, requiresGrad: true, backward: nil)
    }

    /// A parameter as a dense leaf: its gradient is added to `parameter.grad` by ``backward(_:)``.
    /// O(1) (values are shared, not copied). For embedding tables prefer
    /// ``gather(_:indices:indexShape:)``, which records only the rows used.
    public func parameter(_ parameter: Parameter) -> Tensor {
        record(parameter.value, shape: parameter.shape, requiresGrad: parameter.requiresGrad) { tape, g in
            if let sink = tape.gradientSink { sink.recordDense(parameter, g) } else { parameter.accumulateDense(g) }
        }
    }

    /// The gradient of the loss with respect to `tensor` after ``backward(_:)``: `tensor.count`
    /// values, zeros if no gradient reached it, `nil` if it does not require one.
    public func gradient(of tensor: Tensor) -> [Float]? {
        guard needsGrad[tensor.id] else { return nil }
        let g = grads[tensor.id]
        return g.isEmpty ? [Float](repeating: 0, count: counts[tensor.id]) : g
    }

    /// The reverse sweep from the scalar `loss` (seed gradient 1): every node that `loss` depends
    /// on gets its gradient; parameters receive theirs (added to what they already hold, so
    /// several backward passes before one step accumulate). Releases the backward closures.
    /// Complexity: about twice the forward cost.
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` if `loss` is not a single
    ///   value; ``ArborError/invalidArgument(name:reason:)`` if this tape already ran backward.
    public func backward(_ loss: Tensor) throws(ArborError) {
        guard loss.count == 1 else {
            throw .dimensionMismatch(field: "backward: loss values", expected: 1, found: loss.count)
        }
        guard !consumed else {
            throw .invalidArgument(name: "backward", reason: "this tape already ran backward")
        }
        consumed = true
        guard needsGrad[loss.id] else { backwards.removeAll(); return }
        grads[loss.id] = [1]
        var id = loss.id
        while id >= 0 {
            if let step = backwards[id], !grads[id].isEmpty {
                step(self, grads[id])
            }
            backwards[id] = nil
            id -= 1
        }
        backwards.removeAll()
    }

    private func checkShape(_ count: Int, _ shape: [Int], op: String) throws(ArborError) {
        try validateShape(shape, op: op)
        let expected = shape.reduce(1, *)
        guard expected == count else {
            throw .dimensionMismatch(field: "\(op) values for shape \(shape)", expected: expected, found: count)
        }
    }
}
