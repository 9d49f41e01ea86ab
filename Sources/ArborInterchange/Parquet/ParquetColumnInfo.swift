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
