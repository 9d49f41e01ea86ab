/// The values of a column of byte arrays (strings), back to back: value `i` is
/// `bytes[offsets[i] ..< offsets[i + 1]]`. One allocation for all values.
public struct ParquetByteArrays: Sendable, Equatable {
    public var bytes: [UInt8]
    /// `count + 1` offsets into `bytes`, starting at 0, non-decreasing.
    public var offsets: [Int]
    public var count: Int { offsets.count - 1 }
    public subscript(i: Int) -> ArraySlice<UInt8> { bytes[offsets[i] ..< offsets[i + 1]] }
    /// Value `i` as UTF-8 text (invalid sequences replaced).
    public func string(_ i: Int) -> String { String(decoding: self[i], as: UTF8.self) }
}

/// The non-null values of a column, in row order, in one array of the column's physical type.
public enum ParquetValues: Sendable, Equatable {
    case int32([Int32]), int64([Int64]), float([Float]), double([Double]), byteArray(ParquetByteArrays)

    public var count: Int {
        switch self {
        case let .int32(v): v.count
        case let .int64(v): v.count
        case let .float(v): v.count
        case let .double(v): v.count
        case let .byteArray(v): v.count
        }
    }

    /// Value `i` of an integer column, widened; `nil` for other types.
    public func integer(_ i: Int) -> Int64? {
        switch self {
        case let .int32(v): Int64(v[i])
        case let .int64(v): v[i]
        default: nil
        }
    }

    /// Value `i` of a numeric column as Float (doubles and integers rounded); `nil` for byte arrays.
    public func float(_ i: Int) -> Float? {
        switch self {
        case let .int32(v): Float(v[i])
        case let .int64(v): Float(v[i])
        case let .float(v): v[i]
        case let .double(v): Float(v[i])
        case .byteArray: nil
        }
    }
}
