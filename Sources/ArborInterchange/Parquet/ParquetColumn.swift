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
