/// Conversions between arrays of fixed-width scalars and their little-endian bytes, for values
/// stored in an index (e.g. a graph's neighbour lists). The only place outside the storage tables
/// where arrays are viewed as raw bytes.
public enum ByteCoding {
    /// The bytes of `values`, in memory order (little-endian on every platform Arbor runs on).
    /// O(count · size).
    public static func bytes<T: StorableScalar>(of values: [T]) -> [UInt8] {
        values.withUnsafeBytes { Array($0) }
    }

    /// The elements encoded in `bytes`, or `nil` when the byte count is not a multiple of the
    /// element size. O(count).
    public static func elements<T: StorableScalar>(of bytes: [UInt8], as _: T.Type) -> [T]? {
        let size = MemoryLayout<T>.stride
        guard bytes.count % size == 0 else { return nil }
        let n = bytes.count / size
        return [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                for i in 0..<n { buffer[i] = raw.loadUnaligned(fromByteOffset: i * size, as: T.self) }
            }
            initialized = n
        }
    }
}
