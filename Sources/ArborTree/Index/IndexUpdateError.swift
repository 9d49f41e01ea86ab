/// Why a batch of changes cannot be applied to an index (bad ids, vectors and dimensions are
/// ``ArborError``s; unreadable files are ``IndexError``s). The index is unchanged in every case.
public enum IndexUpdateError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file's format has no free leaf slots (format 1 or 2) or its tree has no leaf-parent level.
    case notUpdatable(path: String, reason: String)
    /// No leaf parent has a free slot for `item`.
    case full(path: String, item: ItemID, slots: Int)
    /// Failure injected by a test at `point` (see ``IndexUpdater``); never raised otherwise.
    case injected(point: String)

    /// The message the CLI prints.
    public var description: String {
        switch self {
        case let .notUpdatable(path, reason):
            return "\(path): cannot be updated in place: \(reason)"
        case let .full(path, item, slots):
            return "\(path): no free leaf slot for item \(item) (all \(slots) slots are taken); rebuild the index with more slack (arbor build --slack)"
        case let .injected(point):
            return "test failure injected at \(point)"
        }
    }
}
