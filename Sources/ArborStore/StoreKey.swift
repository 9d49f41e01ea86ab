/// A table key: 1 to 511 bytes, compared as bytes (memcmp order).
public protocol StoreKey {
    /// Calls `body` with the key's bytes.
    func withKeyBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R
}

extension UInt64: StoreKey {
    /// Eight bytes, big-endian, so that byte order equals numeric order.
    public func withKeyBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var be = self.bigEndian
        return try withUnsafeBytes(of: &be) { (p: UnsafeRawBufferPointer) throws(E) -> R in try body(p) }
    }
}

extension String: StoreKey {
    /// The UTF-8 bytes (no terminator).
    public func withKeyBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var copy = self
        var result: Result<R, E>?
        copy.withUTF8 { p in result = Result { () throws(E) -> R in try body(UnsafeRawBufferPointer(p)) } }
        return try result!.get()
    }
}

extension Array: StoreKey where Element == UInt8 {
    /// The bytes as they are.
    public func withKeyBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var result: Result<R, E>?
        withUnsafeBytes { p in result = Result { () throws(E) -> R in try body(p) } }
        return try result!.get()
    }
}

/// A stored value: any run of bytes (LMDB limit: under 4 GiB). Numbers are stored in host order,
/// which ArborStore requires to be little-endian.
public protocol StoreValue {
    /// Calls `body` with the value's bytes.
    func withValueBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R
}

extension Array: StoreValue where Element: StorableScalar {
    /// The elements' bytes, contiguous, little-endian.
    public func withValueBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var result: Result<R, E>?
        withUnsafeBytes { p in result = Result { () throws(E) -> R in try body(p) } }
        return try result!.get()
    }
}

extension ArraySlice: StoreValue where Element: StorableScalar {
    /// The elements' bytes, contiguous, little-endian.
    public func withValueBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var result: Result<R, E>?
        withUnsafeBytes { p in result = Result { () throws(E) -> R in try body(p) } }
        return try result!.get()
    }
}

extension String: StoreValue {
    /// The UTF-8 bytes (no terminator).
    public func withValueBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withKeyBytes(body)
    }
}

extension UInt64: StoreValue {
    /// Eight bytes, little-endian.
    public func withValueBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var le = self.littleEndian
        return try withUnsafeBytes(of: &le) { (p: UnsafeRawBufferPointer) throws(E) -> R in try body(p) }
    }
}

extension UInt32: StoreValue {
    /// Four bytes, little-endian.
    public func withValueBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var le = self.littleEndian
        return try withUnsafeBytes(of: &le) { (p: UnsafeRawBufferPointer) throws(E) -> R in try body(p) }
    }
}

/// A fixed-size number that arrays of which can be stored as values (copied as their bytes).
public protocol StorableScalar: BitwiseCopyable {}
extension Float: StorableScalar {}
extension Double: StorableScalar {}
extension Int32: StorableScalar {}
extension UInt32: StorableScalar {}
extension Int64: StorableScalar {}
extension UInt64: StorableScalar {}
extension Int16: StorableScalar {}
extension UInt16: StorableScalar {}
extension UInt8: StorableScalar {}
extension Int8: StorableScalar {}
