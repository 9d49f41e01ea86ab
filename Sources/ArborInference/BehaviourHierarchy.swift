import ArborCore
import ArborMath

/// JTM's hierarchical user representation at serving time: when the nodes of level `l` are
/// scored, each behaviour that is a tree item is replaced by its ancestor at level `l`, embedded by
/// a row of ``embeddings``; at the leaves (and on levels the table does not cover) the behaviours
/// are themselves.
///
/// ``rows`` is the lookup table, built once from the tree when the model is exported: for each
/// level `1 ..< depth` (entry `l - 1`), the hierarchy row of every behaviour row (the behaviour
/// table's order), or `-1` for a behaviour outside the tree, which keeps its own embedding.
/// Serving costs one lookup per behaviour per level. Immutable and thread-safe.
public struct BehaviourHierarchy: Sendable, Equatable {
    /// `H × d`: one embedding per inner node of levels `1 ..< depth`.
    public let embeddings: Matrix
    /// Entry `l - 1`: the hierarchy row (or `-1`) of each behaviour row on level `l`.
    public let rows: [[Int32]]

    /// A hierarchy over a behaviour table of `behaviourCount` rows.
    /// - Throws: ``ArborError`` when a level's lookup does not have `behaviourCount` entries or
    ///   names a row outside `-1 ..< embeddings.rows`.
    public init(embeddings: Matrix, rows: [[Int32]], behaviourCount: Int) throws(ArborError) {
        for (i, level) in rows.enumerated() {
            guard level.count == behaviourCount else {
                throw .dimensionMismatch(field: "hierarchy rows of level \(i + 1)", expected: behaviourCount, found: level.count)
            }
            if let bad = level.first(where: { $0 < -1 || Int($0) >= embeddings.rows }) {
                throw .invalidArgument(name: "hierarchy rows of level \(i + 1)",
                                       reason: "row \(bad) outside -1..<\(embeddings.rows)")
            }
        }
        self.embeddings = embeddings
        self.rows = rows
    }

    /// Whether `level` reads hierarchy rows (`1 ... rows.count`); other levels use the behaviours
    /// themselves.
    @inlinable public func covers(level: Int) -> Bool { level >= 1 && level <= rows.count }

    /// The `L × d` history of `behaviourRows` (rows of `table`, oldest first) for `level`: row `j`
    /// is the level's ancestor embedding of behaviour `j`, or the behaviour's own row of `table`.
    /// O(L · d).
    public func history(level: Int, behaviourRows: [Int], table: Matrix) -> Matrix {
        var out = Matrix(rows: behaviourRows.count, cols: table.cols)
        let map = covers(level: level) ? rows[level - 1] : nil
        for (j, r) in behaviourRows.enumerated() {
            if let map, map[r] >= 0 { out.setRow(j, embeddings.row(Int(map[r]))) } else { out.setRow(j, table.row(r)) }
        }
        return out
    }

    /// The mean of ``history(level:behaviourRows:table:)`` over its rows (`nil` for no rows). O(L · d).
    public func pooled(level: Int, behaviourRows: [Int], table: Matrix) -> [Float]? {
        guard !behaviourRows.isEmpty else { return nil }
        let h = history(level: level, behaviourRows: behaviourRows, table: table)
        var sum = [Float](repeating: 0, count: table.cols)
        for j in 0..<h.rows { for c in 0..<h.cols { sum[c] += h[j, c] } }
        let inv = 1 / Float(h.rows)
        return sum.map { $0 * inv }
    }
}
