/// Errors that any layer of Arbor may raise about its inputs. Each case names the field, file or
/// line at fault so that a user can fix the input; `description` is the message the CLI prints.
///
/// Lower layers with errors of their own (storage, data readers, the index file) define their own
/// typed errors; this type covers argument and shape checks shared by every module.
public enum ArborError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A count or dimension differs from the one required.
    case dimensionMismatch(field: String, expected: Int, found: Int)
    /// A vector holds NaN or an infinite value.
    case nonFiniteValue(field: String, row: Int)
    /// An argument is out of its documented range.
    case invalidArgument(name: String, reason: String)
    /// An item id that the index or catalogue does not contain.
    case unknownItem(ItemID)
    /// The same item id appears twice where ids must be unique.
    case duplicateItem(ItemID)
    /// An operation needs at least one item, user or sample and got none.
    case empty(what: String)

    /// The message the CLI prints: the field at fault and what was wrong.
    public var description: String {
        switch self {
        case let .dimensionMismatch(field, expected, found):
            return "\(field): expected \(expected) values, found \(found)"
        case let .nonFiniteValue(field, row):
            return "\(field): row \(row) holds NaN or an infinite value"
        case let .invalidArgument(name, reason):
            return "invalid \(name): \(reason)"
        case let .unknownItem(id):
            return "unknown item id \(id)"
        case let .duplicateItem(id):
            return "duplicate item id \(id)"
        case let .empty(what):
            return "no \(what)"
        }
    }
}
