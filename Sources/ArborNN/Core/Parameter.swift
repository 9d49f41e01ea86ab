/// A trainable tensor that lives outside any tape: its values persist across batches and an
/// optimizer updates them from the gradients that ``Tape/backward(_:)`` accumulates.
///
/// Shape: rank 1–3, row-major; an embedding table is `rows × width` (`shape == [rows, width]`).
/// Invariants: `value.count == shape.reduce(1, *)`; `grad` is empty or has `value.count` entries;
/// `gradRows.count * rowWidth == gradRowValues.count`.
///
/// Gradients come in two forms. Dense uses (``Tape/parameter(_:)``) add into ``grad``. A parameter
/// created with `sparse: true` receives row gathers (``Tape/gather(_:indices:indexShape:)``) as a list of
/// (row index, row gradient) pairs instead of a dense table-sized gradient, so a step touches only
/// the rows seen in the batch. Not thread-safe: one training loop owns a parameter.
public final class Parameter {
    /// A unique name within its model ("tower.0.weight"); the key of serialised weights.
    public let name: String
    /// The shape, rank 1–3.
    public let shape: [Int]
    /// Values, row-major, `shape.reduce(1, *)` of them. Optimizers update them in place; set them
    /// from outside with ``assign(_:)`` (or load a model with ``loadNamedTensors(_:into:)``).
    public internal(set) var value: [Float]
    /// Dense gradient, same layout as `value`; empty until a dense use adds to it.
    public internal(set) var grad: [Float] = []
    /// Whether row gathers record sparse row gradients (embedding tables).
    public let isSparse: Bool
    /// Row indices of the recorded sparse gradients, in the order they were recorded (may repeat).
    public internal(set) var gradRows: [Int] = []
    /// `gradRows.count × rowWidth` row gradients, row-major, matching `gradRows`.
    public internal(set) var gradRowValues: [Float] = []
    /// Whether gradients flow into this parameter (false freezes it).
    public var requiresGrad: Bool = true

    /// A parameter over `values`.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` for a rank outside 1–3 or a negative
    ///   dimension; ``ArborError/dimensionMismatch(field:expected:found:)`` if `values.count` differs
    ///   from the shape's element count.
    public init(name: String, shape: [Int], values: [Float], sparse: Bool = false) throws(ArborError) {
        try validateShape(shape, op: "parameter \(name)")
        let count = shape.reduce(1, *)
        guard values.count == count else {
            throw .dimensionMismatch(field: "parameter \(name) values", expected: count, found: values.count)
        }
        self.name = name
        self.shape = shape
        self.value = values
        self.isSparse = sparse
    }

    /// A parameter drawn from `initializer`; fan-in is `shape[0]` and fan-out the product of the
    /// rest (for a rank-1 shape both are `shape[0]`).
    public convenience init(
        name: String, shape: [Int], initializer: Initializer, sparse: Bool = false,
        rng: inout some RandomNumberGenerator
    ) throws(ArborError) {
        try validateShape(shape, op: "parameter \(name)")
        let count = shape.reduce(1, *)
        let fanIn = shape[0]
        let fanOut = shape.count > 1 ? count / max(1, shape[0]) : shape[0]
        try self.init(
            name: name, shape: shape,
            values: initializer.values(count: count, fanIn: fanIn, fanOut: fanOut, rng: &rng),
            sparse: sparse)
    }

    /// Replaces the values (e.g. node embeddings recomputed after a tree rebuild). O(count).
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` if the count differs.
    public func assign(_ values: [Float]) throws(ArborError) {
        guard values.count == value.count else {
            throw .dimensionMismatch(field: "parameter \(name) values", expected: value.count, found: values.count)
        }
        value = values
    }

    /// The values as a `rows × rowWidth` ``Matrix`` (a 2-D weight `inputs × outputs` or an
    /// embedding table), e.g. to build an inference layer from trained weights. O(1) (values are
    /// shared copy-on-write).
    public var matrix: Matrix {
        // The count always equals rowCount · rowWidth, so the initializer cannot fail.
        (try? Matrix(rows: rowCount, cols: rowWidth, values: value)) ?? Matrix(rows: 0, cols: rowWidth)
    }

    /// Number of values.
    public var count: Int { value.count }
    /// Width of one row: the last dimension.
    public var rowWidth: Int { shape[shape.count - 1] }
    /// Number of rows: `count / rowWidth` (the first dimension for a 2-D table).
    public var rowCount: Int { rowWidth == 0 ? 0 : count / rowWidth }

    /// Whether any gradient (dense or sparse) has been recorded since the last ``zeroGrad()``.
    public var hasGradient: Bool { !grad.isEmpty || !gradRows.isEmpty }

    /// Drops all recorded gradients, keeping buffer capacity. O(1) amortised.
    public func zeroGrad() {
        grad.removeAll(keepingCapacity: true)
        gradRows.removeAll(keepingCapacity: true)
        gradRowValues.removeAll(keepingCapacity: true)
    }

    /// Adds a dense gradient (`count` values). O(count).
    func accumulateDense(_ g: [Float]) {
        precondition(g.count == value.count)
        if grad.isEmpty { grad = g; return }
        guard !g.isEmpty else { return }
        grad.withUnsafeMutableBufferPointer { dst in
            g.withUnsafeBufferPointer { src in
                let d = dst.baseAddress!, s = src.baseAddress!
                for i in 0..<src.count { d[i] += s[i] }
            }
        }
    }

    /// Records the gradients of rows `rows[i]` (row `i` of `values`, width `rowWidth`); negative
    /// rows (padding) are skipped. Dense parameters add into ``grad`` instead. O(rows × width).
    func accumulateRows(_ rows: [Int], _ values: [Float]) {
        let w = rowWidth
        precondition(values.count >= rows.count * w, "Parameter \(name): \(values.count) row values for \(rows.count) rows")
        guard w > 0 else { return }
        if isSparse {
            gradRowValues.reserveCapacity(gradRowValues.count + rows.count * w)
            values.withUnsafeBufferPointer { pv in
                for (i, r) in rows.enumerated() where r >= 0 {
                    gradRows.append(r)
                    gradRowValues.append(contentsOf: UnsafeBufferPointer(start: pv.baseAddress! + i * w, count: w))
                }
            }
        } else {
            if grad.isEmpty { grad = [Float](repeating: 0, count: value.count) }
            let limit = rowCount
            grad.withUnsafeMutableBufferPointer { pg in
                values.withUnsafeBufferPointer { pv in
                    for (i, r) in rows.enumerated() where r >= 0 {
                        precondition(r < limit, "Parameter \(name): gradient row \(r) out of 0..<\(limit)")
                        let dst = pg.baseAddress! + r * w, src = pv.baseAddress! + i * w
                        for j in 0..<w { dst[j] += src[j] }
                    }
                }
            }
        }
    }

    /// The full gradient as one dense array of `count` values (zeros where nothing was recorded):
    /// the dense part plus every sparse row. O(count + recorded rows × width).
    public func denseGradient() -> [Float] {
        var g = grad.isEmpty ? [Float](repeating: 0, count: value.count) : grad
        let w = rowWidth
        guard !gradRows.isEmpty, w > 0 else { return g }
        g.withUnsafeMutableBufferPointer { pg in
            gradRowValues.withUnsafeBufferPointer { pv in
                for (i, r) in gradRows.enumerated() {
                    precondition(r >= 0 && r < rowCount, "Parameter \(name): gradient row \(r) out of 0..<\(rowCount)")
                    let dst = pg.baseAddress! + r * w, src = pv.baseAddress! + i * w
                    for j in 0..<w { dst[j] += src[j] }
                }
            }
        }
        return g
    }

    /// The gradient as distinct rows in ascending order with duplicates summed (in recording order,
    /// so the result is deterministic). If a dense gradient exists, every row is included.
    /// O(recorded rows × width + unique rows × log(unique rows)), or O(count) with a dense part.
    public func rowGradient() -> (rows: [Int], values: [Float]) {
        let w = rowWidth
        if !grad.isEmpty {
            return (Array(0..<rowCount), denseGradient())
        }
        let unique = Array(Set(gradRows)).sorted()
        var slot = [Int: Int](minimumCapacity: unique.count)
        for (i, r) in unique.enumerated() { slot[r] = i }
        var values = [Float](repeating: 0, count: unique.count * w)
        for (i, r) in gradRows.enumerated() {
            let s = slot[r]! * w
            for j in 0..<w { values[s + j] += gradRowValues[i * w + j] }
        }
        return (unique, values)
    }
}

/// Checks that `shape` has rank 1–3 and no negative dimension.
func validateShape(_ shape: [Int], op: String) throws(ArborError) {
    guard (1...3).contains(shape.count) else {
        throw .invalidArgument(name: op, reason: "rank must be 1 to 3, got shape \(shape)")
    }
    guard shape.allSatisfy({ $0 >= 0 }) else {
        throw .invalidArgument(name: op, reason: "negative dimension in shape \(shape)")
    }
}
