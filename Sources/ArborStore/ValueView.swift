import CLMDB

/// A zero-copy view of a stored key or value: bytes inside LMDB's memory map.
///
/// Lifetime: valid only while the transaction that produced it is alive, and only inside the
/// closure that lent it; never store or return it. In a write transaction, only until the next
/// put or delete (LMDB may move dirty pages). Alignment: LMDB promises only 2-byte alignment,
/// so every accessor here loads unaligned (or copies); never bind the bytes to a wider type.
public struct ValueView {
    @usableFromInline let bytes: UnsafeRawBufferPointer

    init(_ value: MDB_val) {
        if let base = value.mv_data {
            bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(base), count: value.mv_size)
        } else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
        }
    }

    /// Number of bytes.
    @inlinable public var count: Int { bytes.count }

    /// Calls `body` with the raw bytes (valid only inside `body`, and only 2-byte aligned).
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(bytes)
    }

    /// A copy of the bytes.
    public func copyBytes() -> [UInt8] { Array(bytes) }

    /// The bytes as UTF-8 text (invalid sequences repaired).
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    /// The little-endian integer at `offset` (unaligned load).
    /// - Precondition: `offset + MemoryLayout<T>.size <= count`.
    @inlinable
    public func load<T: FixedWidthInteger & BitwiseCopyable>(_: T.Type, atByteOffset offset: Int) -> T {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= bytes.count, "load past the end of a value")
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// The big-endian `UInt64` key this view holds (as written by `UInt64`'s ``StoreKey``
    /// conformance), or `nil` if it is not 8 bytes long.
    public var bigEndianUInt64: UInt64? {
        guard bytes.count == 8 else { return nil }
        return UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self))
    }

    /// A copy of the bytes as `count / stride` elements of `T` (trailing bytes ignored). Unaligned-safe.
    public func copyElements<T: BitwiseCopyable>(as: T.Type) -> [T] {
        let n = bytes.count / MemoryLayout<T>.stride
        return [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            if n > 0 {
                UnsafeMutableRawBufferPointer(buffer).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: bytes[0 ..< n * MemoryLayout<T>.stride]))
            }
            initialized = n
        }
    }

    /// Copies the bytes, read as elements of `T`, into `array` starting at element `index` (one
    /// memcpy, unaligned-safe; trailing bytes that do not fill an element are ignored).
    /// Returns the number of elements copied.
    /// - Precondition: `index + count / stride(T) <= array.count`.
    @discardableResult
    public func copyElements<T: BitwiseCopyable>(into array: inout [T], at index: Int) -> Int {
        let stride = MemoryLayout<T>.stride
        let n = bytes.count / stride
        precondition(index >= 0 && index + n <= array.count, "copyElements: destination too small")
        guard n > 0 else { return 0 }
        array.withUnsafeMutableBytes { dst in
            UnsafeMutableRawBufferPointer(rebasing: dst[index * stride ..< (index + n) * stride])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0 ..< n * stride]))
        }
        return n
    }

    /// The FNV-1a 64 checksum of the bytes. O(count).
    public var checksum: UInt64 {
        var h = FNV1a64()
        h.update(bytes)
        return h.value
    }
}

