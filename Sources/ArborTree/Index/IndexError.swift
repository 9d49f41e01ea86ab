import ArborStore

/// Why an index file cannot be opened, read or written. Every case names the file, and where it
/// applies the table and key (or header field) at fault.
///
/// Writes refuse bad input with ``ArborError`` (from ``TreeLayout/validate()`` and tensor checks)
/// before anything is written, and stop with `CancellationError` when cancelled.
public enum IndexError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No file at `path`.
    case notFound(path: String)
    /// The file is not an LMDB environment (for example a text file named `.arbor`).
    case notAnIndex(path: String, reason: String)
    /// An LMDB environment without an Arbor header (another program's database).
    case foreign(path: String)
    /// The header's format version is not one this build reads.
    case formatVersion(path: String, found: Int, supported: Int)
    /// The file is shorter than its LMDB meta page says (cut short by a copy or a full disk).
    case truncated(path: String, expectedBytes: Int, actualBytes: Int)
    /// The header is damaged or inconsistent: `field` names the part at fault.
    case corruptHeader(path: String, field: String, reason: String)
    /// A large value's bytes do not match the checksum recorded when it was written.
    case checksumMismatch(path: String, table: String, key: String)
    /// A value is missing or has the wrong size for the header's geometry.
    case corruptValue(path: String, table: String, key: String, reason: String)
    /// The stored ``TrainingProvenance`` does not decode or breaks an invariant: `field` is the
    /// JSON path of the field at fault (e.g. `"epochsRun"`, `"dataset.items"`).
    case corruptProvenance(path: String, field: String, reason: String)
    /// No tensor of that name is stored.
    case tensorNotFound(path: String, name: String)
    /// A dimension of the index differs from the one the caller needs.
    case dimensionMismatch(path: String, field: String, expected: Int, found: Int)
    /// A leaf index outside `0 ..< itemCount`.
    case leafOutOfRange(path: String, leaf: Int, itemCount: Int)
    /// Any other storage failure.
    case store(StoreError)

    /// The file the error concerns.
    public var path: String {
        switch self {
        case let .notFound(path), let .notAnIndex(path, _), let .foreign(path), let .formatVersion(path, _, _),
             let .truncated(path, _, _), let .corruptHeader(path, _, _), let .checksumMismatch(path, _, _),
             let .corruptValue(path, _, _, _), let .corruptProvenance(path, _, _), let .tensorNotFound(path, _),
             let .dimensionMismatch(path, _, _, _), let .leafOutOfRange(path, _, _):
            return path
        case let .store(error):
            return error.path
        }
    }

    /// A one-line message naming the file and the cause (what the CLI prints).
    public var description: String {
        switch self {
        case let .notFound(path):
            return "\(path): no such index file"
        case let .notAnIndex(path, reason):
            return "\(path): not an Arbor index (\(reason))"
        case let .foreign(path):
            return "\(path): an LMDB file without an Arbor index header"
        case let .formatVersion(path, found, supported):
            return "\(path): index format version \(found); this build reads versions \(IndexFormat.readableVersions.lowerBound) to \(supported) (rebuild the index)"
        case let .truncated(path, expected, actual):
            return "\(path): index file is truncated: \(actual) bytes on disk, \(expected) needed"
        case let .corruptHeader(path, field, reason):
            return "\(path): damaged index header, field '\(field)': \(reason)"
        case let .checksumMismatch(path, table, key):
            return "\(path): checksum mismatch in table '\(table)', \(key): the file is corrupted"
        case let .corruptValue(path, table, key, reason):
            return "\(path): damaged value in table '\(table)', \(key): \(reason)"
        case let .corruptProvenance(path, field, reason):
            return "\(path): damaged training provenance, field '\(field)': \(reason)"
        case let .tensorNotFound(path, name):
            return "\(path): no tensor named '\(name)'"
        case let .dimensionMismatch(path, field, expected, found):
            return "\(path): \(field) is \(found), expected \(expected)"
        case let .leafOutOfRange(path, leaf, itemCount):
            return "\(path): leaf \(leaf) out of range 0..<\(itemCount)"
        case let .store(error):
            return error.description
        }
    }

    /// Maps a storage error on `path` to the index error a user should see.
    init(_ error: StoreError) {
        switch error {
        case let .notFound(path): self = .notFound(path: path)
        case let .notAnEnvironment(path, reason): self = .notAnIndex(path: path, reason: reason)
        case let .truncated(path, expected, actual):
            self = .truncated(path: path, expectedBytes: expected, actualBytes: actual)
        default: self = .store(error)
        }
    }
}
