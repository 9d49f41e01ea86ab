import ArborStore

/// A named Float32 tensor (model weights) stored beside the tree: `values` holds
/// `shape.reduce(1, *)` numbers, row-major (the last dimension varies fastest).
public struct NamedTensor: Sendable, Equatable {
    /// Unique name within an index, 1 to ``IndexFormat/maxNameBytes`` UTF-8 bytes, no NUL.
    public var name: String
    /// Dimensions, each >= 0. A scalar has shape `[]` and one value.
    public var shape: [Int]
    /// The values, row-major.
    public var values: [Float]

    /// A tensor; call ``validate()`` (the writer does) to check that `values` fits `shape`.
    public init(name: String, shape: [Int], values: [Float]) {
        self.name = name
        self.shape = shape
        self.values = values
    }

    /// FNV-1a 64 over the rank and each dimension (`UInt64` LE), then the values' bytes (LE).
    /// Two tensors with equal shapes and bit-identical values have equal digests. O(count).
    public var digest: UInt64 { Self.digest(shape: shape, chunks: [values[...]]) }

    /// The digest of a tensor whose values arrive in pieces (in order).
    static func digest(shape: [Int], chunks: [ArraySlice<Float>]) -> UInt64 {
        var h = FNV1a64()
        h.update(UInt64(shape.count))
        for d in shape { h.update(UInt64(d)) }
        for c in chunks { h.update(c) }
        return h.value
    }

    /// Checks the name, that `values.count` matches `shape`, and that every value is finite.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)``, ``ArborError/dimensionMismatch(field:expected:found:)``
    ///   or ``ArborError/nonFiniteValue(field:row:)`` (row = the flat index of the first bad value).
    public func validate() throws(ArborError) {
        let bytes = name.utf8.count
        guard bytes >= 1, bytes <= IndexFormat.maxNameBytes, !name.utf8.contains(0) else {
            throw .invalidArgument(name: "tensor name '\(name)'",
                                   reason: "must be 1 to \(IndexFormat.maxNameBytes) UTF-8 bytes without NUL")
        }
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw .invalidArgument(name: "tensor '\(name)' shape", reason: "dimensions must be >= 0, got \(shape)")
        }
        let count = shape.reduce(1, *)
        guard values.count == count else {
            throw .dimensionMismatch(field: "tensor '\(name)' values", expected: count, found: values.count)
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw .nonFiniteValue(field: "tensor '\(name)'", row: bad)
        }
    }
}
