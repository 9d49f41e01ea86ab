/// Errors raised by the ArborData readers, writers and protocols.
///
/// Every case names the file (as the path given by the caller) and, where it applies, the 1-based
/// line number, the column or the matrix row at fault, so that a user can fix the input.
/// `description` is the one-line message the CLI prints.
public enum DataError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file does not exist.
    case fileNotFound(file: String)
    /// The file exists but cannot be opened or read (permissions, a directory, an I/O error).
    case unreadable(file: String, reason: String)
    /// The file holds no data rows (or, for a reader with a header, only the header).
    case empty(file: String)
    /// A required column is absent from the header.
    case missingColumn(file: String, column: String)
    /// A line cannot be parsed: too few fields, a non-numeric id, a bad number, ...
    /// `line` is 1-based and counts every physical line, the header included.
    case malformedLine(file: String, line: Int, reason: String)
    /// A `.npy` file whose header is unsupported or broken (dtype other than `<f4`, Fortran order,
    /// a shape that is not 2-D, a bad magic string).
    case invalidNPY(file: String, reason: String)
    /// The file is shorter than its header promises.
    case truncated(file: String, expectedBytes: Int, foundBytes: Int)
    /// A matrix row (0-based) holds NaN or an infinite value.
    case nonFiniteValue(file: String, row: Int)
    /// Writing a file failed.
    case writeFailed(file: String, reason: String)
    /// An argument (option, fraction, size) is out of its documented range.
    case invalidArgument(name: String, reason: String)

    /// A one-line message naming the file and the line, column or row at fault.
    public var description: String {
        switch self {
        case let .fileNotFound(file):
            return "\(file): file not found"
        case let .unreadable(file, reason):
            return "\(file): cannot read: \(reason)"
        case let .empty(file):
            return "\(file): no data rows"
        case let .missingColumn(file, column):
            return "\(file): missing column '\(column)' in the header"
        case let .malformedLine(file, line, reason):
            return "\(file):\(line): \(reason)"
        case let .invalidNPY(file, reason):
            return "\(file): unsupported .npy file: \(reason)"
        case let .truncated(file, expected, found):
            return "\(file): truncated: expected \(expected) bytes, found \(found)"
        case let .nonFiniteValue(file, row):
            return "\(file): row \(row) holds NaN or an infinite value"
        case let .writeFailed(file, reason):
            return "\(file): cannot write: \(reason)"
        case let .invalidArgument(name, reason):
            return "invalid \(name): \(reason)"
        }
    }
}
