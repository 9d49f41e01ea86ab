import ArborCore
import ArborTree

/// Why the model stored in an index cannot be served. Every case names the index field or tensor
/// at fault; `description` is the message the CLI prints.
public enum ModelLoadError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The index records another kind than the loader asked for (`field`: `nodeScorer` or
    /// `queryProducer`).
    case kindMismatch(field: String, expected: String, found: String)
    /// The weights stored for a kind do not form that model (a tensor is missing, has another
    /// shape, or the layers do not chain).
    case weightsDoNotMatch(kind: String, reason: String)
    /// Reading the index file failed.
    case index(IndexError)

    /// A one-line message naming what is wrong.
    public var description: String {
        switch self {
        case let .kindMismatch(field, expected, found):
            return "the index's \(field) is '\(found)', not '\(expected)'"
        case let .weightsDoNotMatch(kind, reason):
            return "the weights do not form a '\(kind)' model: \(reason)"
        case let .index(error):
            return error.description
        }
    }
}
