/// A Parquet physical type (how values are stored; the logical type, e.g. a string, is on top).
public enum ParquetPhysicalType: Int32, Sendable, CustomStringConvertible {
    case boolean = 0, int32, int64, int96, float, double, byteArray, fixedLengthByteArray

    public var description: String {
        ["BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"][Int(rawValue)]
    }
}

/// One leaf column of a file's schema: its path from the root (`["vector", "list", "element"]`
/// for Spark's `array<float>`), physical type and level bounds.
public struct ParquetColumnInfo: Sendable, Equatable {
    /// Names from the top-level field down to the leaf.
    public let path: [String]
    /// `nil` for a physical type this reader does not know.
    public let physicalType: ParquetPhysicalType?
    /// Definition levels: how many optional or repeated fields the path crosses.
    public let maxDefinitionLevel: Int
    /// Repetition levels: how many repeated fields the path crosses (0: a flat column, 1: a list).
    public let maxRepetitionLevel: Int
    /// For a list: the definition level at which the repeated field has an element, and the one
    /// at which the list itself is present (below it the row's list is null).
    let elementLevel: Int, listLevel: Int

    /// The dotted path, `vector.list.element`.
    public var name: String { path.joined(separator: ".") }
}

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

/// One column of a file, all row groups concatenated: `rowCount` rows, each a value or null (a
/// flat column) or a list of values or nulls, or a null list (a list column, one repeated level).
/// ``values`` holds only the non-null values; ``elements(ofRow:)`` and ``valueIndex(ofElement:)``
/// map rows to them. A value type.
public struct ParquetColumn: Sendable, Equatable {
    public let info: ParquetColumnInfo
    public let rowCount: Int
    public let values: ParquetValues
    /// List columns: `rowCount + 1` element offsets; `nil` for a flat column (element i = row i).
    let rowElements: [Int]?
    /// Value index of each element, −1 for a null; `nil` when no element is null (element i = value i).
    let elementValues: [Int32]?
    /// List columns: whether each row's list is null; `nil` when none is.
    let nullLists: [Bool]?

    public var name: String { info.name }
    public var isList: Bool { rowElements != nil }

    /// The elements of `row`: one for a flat column, the list's for a list column, `nil` for a
    /// null list. O(1).
    public func elements(ofRow row: Int) -> Range<Int>? {
        guard let starts = rowElements else { return row ..< row + 1 }
        if let nulls = nullLists, nulls[row] { return nil }
        return starts[row] ..< starts[row + 1]
    }

    /// Index into ``values`` of `element`, `nil` when it is null. O(1).
    public func valueIndex(ofElement element: Int) -> Int? {
        guard let map = elementValues else { return element }
        let v = map[element]
        return v < 0 ? nil : Int(v)
    }
}
