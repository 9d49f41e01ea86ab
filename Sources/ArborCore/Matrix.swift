/// A dense matrix of `Float32`, `rows × cols`, stored row-major in one contiguous array.
///
/// Invariant: `values.count == rows * cols`. Row `r` occupies `values[r * cols ..< (r + 1) * cols]`.
/// `Matrix` is a value type with copy-on-write storage; a buffer that is reused across queries keeps
/// its capacity through ``resize(rows:)``, so the hot loops that refill it do not allocate.
public struct Matrix: Sendable, Equatable {
    /// Number of rows (`n`).
    public private(set) var rows: Int
    /// Number of columns (`d`), fixed for the life of the matrix.
    public let cols: Int
    /// The `rows × cols` values, row-major.
    public internal(set) var values: [Float]

    /// A `rows × cols` matrix filled with `value`.
    /// - Precondition: `rows >= 0`, `cols >= 0`.
    public init(rows: Int, cols: Int, repeating value: Float = 0) {
        precondition(rows >= 0 && cols >= 0, "Matrix dimensions must be non-negative")
        self.rows = rows
        self.cols = cols
        self.values = [Float](repeating: value, count: rows * cols)
    }

    /// A matrix over `values` (row-major, `rows × cols`).
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` if `values.count != rows * cols`.
    public init(rows: Int, cols: Int, values: [Float]) throws(ArborError) {
        guard rows >= 0, cols >= 0, values.count == rows * cols else {
            throw .dimensionMismatch(field: "matrix values", expected: rows * cols, found: values.count)
        }
        self.rows = rows
        self.cols = cols
        self.values = values
    }

    /// A matrix whose rows are `rowArrays`, each of length `cols`.
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` naming the first row of another length.
    public init(cols: Int, rowArrays: [[Float]]) throws(ArborError) {
        var values = [Float]()
        values.reserveCapacity(rowArrays.count * cols)
        for (r, row) in rowArrays.enumerated() {
            guard row.count == cols else {
                throw .dimensionMismatch(field: "row \(r)", expected: cols, found: row.count)
            }
            values.append(contentsOf: row)
        }
        self.rows = rowArrays.count
        self.cols = cols
        self.values = values
    }

    /// Element at row `r`, column `c`. O(1).
    public subscript(r: Int, c: Int) -> Float {
        get { values[r * cols + c] }
        set { values[r * cols + c] = newValue }
    }

    /// Row `r` as a slice of `cols` values. O(1), no copy.
    @inlinable
    public func row(_ r: Int) -> ArraySlice<Float> {
        values[r * cols ..< (r + 1) * cols]
    }

    /// Overwrites row `r` with `source` (length `cols`).
    public mutating func setRow(_ r: Int, _ source: some Collection<Float>) {
        precondition(source.count == cols, "row length \(source.count) != cols \(cols)")
        var i = r * cols
        for v in source { values[i] = v; i += 1 }
    }

    /// Appends one row (length `cols`). Amortised O(cols).
    public mutating func appendRow(_ source: some Collection<Float>) {
        precondition(source.count == cols, "row length \(source.count) != cols \(cols)")
        values.append(contentsOf: source)
        rows += 1
    }

    /// Changes the row count to `newRows`, keeping existing rows and the array's capacity.
    /// New rows are zero. Does not allocate when the capacity suffices.
    public mutating func resize(rows newRows: Int) {
        precondition(newRows >= 0)
        let target = newRows * cols
        if target < values.count {
            values.removeLast(values.count - target)
        } else if target > values.count {
            values.append(contentsOf: repeatElement(0, count: target - values.count))
        }
        rows = newRows
    }

    /// Reserves room for `rowCapacity` rows so that later ``resize(rows:)`` calls stay allocation-free.
    public mutating func reserveRows(_ rowCapacity: Int) {
        values.reserveCapacity(rowCapacity * cols)
    }

    /// Calls `body` with the row-major values. The buffer is valid only inside `body`.
    @inlinable
    public func withUnsafeBufferPointer<R>(
        _ body: (UnsafeBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try values.withUnsafeBufferPointer(body)
    }

    /// Calls `body` with the mutable row-major values. The buffer is valid only inside `body`.
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try values.withUnsafeMutableBufferPointer { try body($0) }
    }

    /// The index of the first row holding a NaN or infinite value, or `nil` when all are finite.
    public func firstNonFiniteRow() -> Int? {
        guard cols > 0 else { return nil }
        for (i, v) in values.enumerated() where !v.isFinite { return i / cols }
        return nil
    }

    /// Largest squared norm a row may have for Arbor's Float32 arithmetic: inner products between
    /// two such rows, sums of them and k-means distances (at most `4 · max ‖x‖²`) stay finite.
    /// `Float.greatestFiniteMagnitude / 16`, about 2.1e37 (a norm of about 4.6e18).
    public static let largestSquaredNorm = Double(Float.greatestFiniteMagnitude) / 16

    /// The index of the first row whose squared norm (summed in Double) exceeds
    /// ``largestSquaredNorm`` or is not finite, or `nil` when every row is safe. Finite values such
    /// as 2.6e38 pass ``firstNonFiniteRow()`` but overflow Float32 as soon as they are multiplied.
    /// O(rows · cols).
    public func firstRowWithOverflowingNorm() -> Int? {
        guard cols > 0 else { return nil }
        for r in 0 ..< rows {
            var sum = 0.0
            for c in 0 ..< cols {
                let v = Double(values[r * cols + c])
                sum += v * v
            }
            if !(sum <= Self.largestSquaredNorm) { return r }
        }
        return nil
    }
}
