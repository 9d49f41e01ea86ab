/// Why a Parquet file, or a column of it, cannot be read. Every case names the file; those about
/// one column name it (its dotted path), and those about one value name the row (1-based: row 1 is
/// the first, so a row number reads like the line number of the same table as text). `description` is the message the CLI prints.
public enum ParquetError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file cannot be opened or read.
    case io(path: String, reason: String)
    /// No `PAR1` magic at the start or the end, or too short to hold them and a footer length.
    case notParquet(path: String, reason: String)
    /// The footer, a column chunk or a page runs past the bytes that hold it.
    case truncated(path: String, reason: String)
    /// The footer (Thrift FileMetaData) or the schema is malformed.
    case badMetadata(path: String, reason: String)
    /// A page of a column chunk is malformed (header, levels, values, compressed data).
    case badPage(path: String, column: String, rowGroup: Int, reason: String)
    /// Valid Parquet that this reader does not decode (codec, encoding, physical type, nesting).
    case unsupported(path: String, column: String, reason: String)
    /// A size the file claims is out of proportion to the file (a guard against hostile files).
    case tooLarge(path: String, reason: String)
    /// No column of that name.
    case missingColumn(path: String, column: String, available: [String])
    /// The column exists but holds values the caller cannot use.
    case wrongType(path: String, column: String, found: String, expected: String)
    /// A null where the caller needs a value.
    case nullValue(path: String, column: String, row: Int)
    /// A value the caller cannot use.
    case badValue(path: String, column: String, row: Int, reason: String)

    public var description: String {
        switch self {
        case let .io(path, reason): "\(path): \(reason)"
        case let .notParquet(path, reason): "\(path): not a Parquet file: \(reason)"
        case let .truncated(path, reason): "\(path): truncated Parquet file: \(reason)"
        case let .badMetadata(path, reason): "\(path): bad Parquet footer: \(reason)"
        case let .badPage(path, column, rowGroup, reason): "\(path): column '\(column)', row group \(rowGroup): \(reason)"
        case let .unsupported(path, column, reason): "\(path): column '\(column)': \(reason)"
        case let .tooLarge(path, reason): "\(path): \(reason)"
        case let .missingColumn(path, column, available):
            "\(path): no column '\(column)' (columns: \(available.joined(separator: ", ")))"
        case let .wrongType(path, column, found, expected): "\(path): column '\(column)' holds \(found), expected \(expected)"
        case let .nullValue(path, column, row): "\(path): column '\(column)', row \(row): null"
        case let .badValue(path, column, row, reason): "\(path): column '\(column)', row \(row): \(reason)"
        }
    }
}
