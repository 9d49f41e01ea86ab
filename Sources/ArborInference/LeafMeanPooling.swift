import ArborCore
import ArborMath
import ArborTree

/// The query producer of an index built from item vectors without a trained encoder
/// (``QueryProducerKind/leafMeanPooling``): the user vector is the mean of the leaf vectors of the
/// last `maxHistory` known items of the history.
///
/// Only the history's own leaf rows are read (one lookup transaction and one gathered row per
/// id), never the whole leaf matrix, except for a history with no known id: its fallback query is
/// the mean of all item vectors, computed on first use (O(N · d), once) and kept.
/// Thread-safe: the reader is thread-safe and the fallback is computed under a lock.
public final class LeafMeanPooling: QueryProducer {
    /// The index whose leaves are pooled.
    public let reader: IndexReader
    /// Most recent known behaviours pooled.
    public let maxHistory: Int
    private let fallbackVector = PosixMutex<[Float]?>(nil)

    /// A producer over `reader`'s leaves.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` when `maxHistory < 1`.
    public init(reader: IndexReader, maxHistory: Int = 50) throws(ArborError) {
        guard maxHistory >= 1 else { throw .invalidArgument(name: "maxHistory", reason: "must be at least 1, got \(maxHistory)") }
        self.reader = reader
        self.maxHistory = maxHistory
    }

    /// ``QueryProducerKind/leafMeanPooling``.
    public var kind: QueryProducerKind { .leafMeanPooling }

    /// The ids that are not items of the index (one lookup transaction). O(history · log N).
    /// - Throws: `IndexError` when the index cannot be read.
    public func unknownItems(in history: [ItemID]) throws -> [ItemID] {
        let leaves = try reader.leaves(of: history)
        return zip(history, leaves).compactMap { $1 == nil ? $0 : nil }
    }

    /// One query: the mean of the known items' leaf vectors (most recent `maxHistory`).
    /// - Throws: `IndexError` when the index cannot be read.
    public func queries(history: [ItemID], excluded: Set<ItemID>) throws -> ProducedQueries {
        // Leaves and rows from one read transaction (one committed state during updates).
        var gathered = Matrix(rows: 0, cols: reader.dimension)
        let maxHistory = self.maxHistory, depth = reader.depth
        let found = try reader.withView(leavesOf: history) { view, leaves -> Bool in
            var rows: [Int32] = []
            for leaf in leaves.reversed() {
                guard let leaf else { continue }
                rows.append(Int32(leaf))
                if rows.count == maxHistory { break }
            }
            guard !rows.isEmpty else { return false }
            view.gatherEmbeddings(level: depth, nodes: rows, into: &gathered)
            return true
        }
        if !found {
            return ProducedQueries(queries: [Query(vector: try fallback(), history: history, excluded: excluded)],
                                   usedFallback: true)
        }
        var mean = [Float](repeating: 0, count: reader.dimension)
        for r in 0..<gathered.rows { for c in 0..<gathered.cols { mean[c] += gathered[r, c] } }
        let inv = 1 / Float(gathered.rows)
        for c in mean.indices { mean[c] *= inv }
        return ProducedQueries(queries: [Query(vector: mean, history: history, excluded: excluded)], usedFallback: false)
    }

    /// The mean of all item vectors (computed once).
    private func fallback() throws -> [Float] {
        if let known = fallbackVector.withLock({ $0 }) { return known }
        let (all, _) = try reader.loadLeafMatrix()
        var mean = [Float](repeating: 0, count: all.cols)
        for r in 0..<all.rows { for c in 0..<all.cols { mean[c] += all[r, c] } }
        let inv = all.rows > 0 ? 1 / Float(all.rows) : 0
        for c in mean.indices { mean[c] *= inv }
        fallbackVector.withLock { $0 = mean }
        return mean
    }
}
