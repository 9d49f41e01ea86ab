import ArborCore
import ArborMath

/// What an encoder does with history items it does not know.
public enum UnknownItemPolicy: String, Sendable, CaseIterable {
    /// Skip them and count them in ``EncodedQuery/unknownItems``.
    case ignore
    /// Throw ``ArborError/unknownItem(_:)`` naming the first one.
    case reject
}

/// A user vector with what was dropped to make it.
public struct EncodedQuery: Sendable, Equatable {
    /// The user vector (length = the encoder's dimension).
    public var vector: [Float]
    /// History items that were not in the catalogue (ignored).
    public var unknownItems: Int
    /// True when no known item remained and the fallback vector was used.
    public var usedFallback: Bool
}

/// YouTube-DNN-style query producer without a trained tower: the user vector is the mean of the
/// embeddings of the user's most recent behaviours (optionally L2-normalised).
///
/// Empty or all-unknown histories fall back to the mean of all item vectors (a popularity-like
/// query), documented and flagged in ``EncodedQuery/usedFallback``. Thread-safe (immutable).
public struct MeanPoolingEncoder: Sendable {
    /// `N × d`, row-major: the item vectors the encoder pools.
    public let itemVectors: Matrix
    private let rowOf: [ItemID: Int32]
    /// Most recent behaviours used (older ones are dropped).
    public let maxHistory: Int
    /// Scale the pooled vector to unit norm.
    public let normalize: Bool
    /// The vector used for an empty history: the mean of all item vectors.
    public let fallback: [Float]

    /// An encoder over `itemVectors` whose rows belong to `ids`.
    /// - Throws: ``ArborError`` for mismatched counts or duplicate ids.
    public init(itemVectors: Matrix, ids: [ItemID], maxHistory: Int = 50, normalize: Bool = false) throws {
        guard itemVectors.rows == ids.count else {
            throw ArborError.dimensionMismatch(field: "item ids", expected: itemVectors.rows, found: ids.count)
        }
        guard maxHistory >= 1 else {
            throw ArborError.invalidArgument(name: "maxHistory", reason: "must be at least 1, got \(maxHistory)")
        }
        var map = [ItemID: Int32](minimumCapacity: ids.count)
        for (i, id) in ids.enumerated() where map.updateValue(Int32(i), forKey: id) != nil {
            throw ArborError.duplicateItem(id)
        }
        self.itemVectors = itemVectors
        rowOf = map
        self.maxHistory = maxHistory
        self.normalize = normalize
        var mean = [Float](repeating: 0, count: itemVectors.cols)
        for r in 0..<itemVectors.rows { for c in 0..<itemVectors.cols { mean[c] += itemVectors[r, c] } }
        let inv = itemVectors.rows > 0 ? 1 / Float(itemVectors.rows) : 0
        fallback = mean.map { $0 * inv }
    }

    /// Vector width.
    public var dimension: Int { itemVectors.cols }

    /// Whether `id` has an item vector (else ``encode(history:unknown:)`` ignores or rejects it). O(1).
    public func knows(_ id: ItemID) -> Bool { rowOf[id] != nil }

    /// The rows of ``itemVectors`` the last ``maxHistory`` entries of `history` pool, oldest first,
    /// unknown ids skipped (what ``encode(history:unknown:)`` averages). O(min(history, maxHistory)).
    public func rows(of history: [ItemID]) -> [Int] { history.suffix(maxHistory).compactMap { rowOf[$0].map(Int.init) } }

    /// The user vector for `history` (oldest first). O(min(history, maxHistory) · d).
    public func encode(history: [ItemID], unknown policy: UnknownItemPolicy = .ignore) throws -> EncodedQuery {
        var sum = [Float](repeating: 0, count: dimension)
        var used = 0, unknown = 0
        for id in history.suffix(maxHistory) {
            guard let row = rowOf[id] else {
                if policy == .reject { throw ArborError.unknownItem(id) }
                unknown += 1
                continue
            }
            let r = Int(row)
            for c in 0..<dimension { sum[c] += itemVectors[r, c] }
            used += 1
        }
        if used == 0 {
            return EncodedQuery(vector: finish(fallback), unknownItems: unknown, usedFallback: true)
        }
        let inv = 1 / Float(used)
        return EncodedQuery(vector: finish(sum.map { $0 * inv }), unknownItems: unknown, usedFallback: false)
    }

    private func finish(_ v: [Float]) -> [Float] {
        guard normalize else { return v }
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? v.map { $0 / norm } : v
    }
}
