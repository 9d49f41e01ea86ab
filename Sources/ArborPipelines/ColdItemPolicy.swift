import ArborCore
import ArborMath

/// What a trained index does with catalogue items that never occur in the training sequences
/// ("cold" items: neither a target nor a behaviour, so their embeddings are still the random
/// initial ones and their scores mean nothing).
public enum ColdItemPolicy: String, Sendable, CaseIterable {
    /// Left out of the item index (tree and flat scan) and unknown to the encoder, so a cold id in
    /// a history is skipped and counted like any unknown id. The default: a model cannot rank an
    /// item it never saw, and a random vector must not take a slot from a trained one.
    case leaveOut = "leave-out"
    /// Kept with their initial vectors: the cold-item check of the Amazon Books demo, which
    /// measures how often they reach the top k.
    case keep
}

/// The catalogue rows a trained index serves under a ``ColdItemPolicy``: every row with a
/// training count, plus the cold ones with ``ColdItemPolicy/keep``. Row order is kept, so the
/// served ids stay ascending when the catalogue's are.
public struct ServedCatalogue: Sendable, Equatable {
    /// Served catalogue rows, ascending.
    public let rows: [Int]
    /// Catalogue rows never seen in training (0 ... catalogue size).
    public let coldCount: Int
    /// Whether the cold rows are among ``rows``.
    public let policy: ColdItemPolicy
    /// The size of the whole catalogue.
    public let catalogueCount: Int

    /// The rows of `ids` to serve: row `r` is cold when `trainCounts[ids[r]]` is absent or 0.
    /// O(ids).
    /// - Throws: ``ArborError/empty(what:)`` when no catalogue item occurs in training (nothing to serve).
    public init(ids: [ItemID], trainCounts: [ItemID: Int], policy: ColdItemPolicy) throws(ArborError) {
        let trained = ids.indices.filter { (trainCounts[ids[$0]] ?? 0) > 0 }
        guard !trained.isEmpty else { throw .empty(what: "catalogue items seen in training") }
        self.rows = policy == .keep ? Array(ids.indices) : trained
        self.coldCount = ids.count - trained.count
        self.policy = policy
        self.catalogueCount = ids.count
    }

    /// Whether every catalogue row is served (nothing left out).
    public var isWholeCatalogue: Bool { rows.count == catalogueCount }

    /// The served rows of `matrix` (`catalogueCount × d`, row-major): `rows.count × d`. O(rows · d).
    public func select(_ matrix: Matrix) -> Matrix {
        precondition(matrix.rows == catalogueCount, "a catalogue matrix has one row per catalogue item")
        return isWholeCatalogue ? matrix : matrix.selectingRows(rows)
    }

    /// The served entries of a per-row array (`catalogueCount` entries). O(rows).
    public func select<T>(_ perRow: [T]) -> [T] {
        precondition(perRow.count == catalogueCount, "a catalogue array has one entry per catalogue item")
        return isWholeCatalogue ? perRow : rows.map { perRow[$0] }
    }

    /// One report line: how many catalogue items were cold and what happened to them.
    public var summary: String {
        let share = catalogueCount > 0 ? 100 * Double(coldCount) / Double(catalogueCount) : 0
        switch policy {
        case .leaveOut:
            return "cold items (never in training): \(coldCount) of \(catalogueCount) (\(String(format: "%.1f", share))%), left out of the index"
        case .keep:
            return "cold items (never in training): \(coldCount) of \(catalogueCount) (\(String(format: "%.1f", share))%), kept with their initial vectors"
        }
    }
}
