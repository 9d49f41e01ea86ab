import ArborMath
import ArborInference

/// Scores every item with the same scorer the tree uses: the reference that shows what beam
/// search loses with a deep model (TDM's "brute force" column). For the inner product, use
/// ``FlatRetriever`` instead, which turns the scan into one GEMM per block.
///
/// Items are scored in blocks of ``blockRows`` rows through one ``ScoringSession`` per query.
/// Thread-safe; buffers come from a pool.
public struct BruteForceRetriever<Scorer: NodeScorer>: Retriever {
    /// Name in reports ("brute-force").
    public let name: String
    /// The model run over every item.
    public let scorer: Scorer
    /// `N × d`, row-major: the leaf (item) embeddings the scorer reads.
    public let items: Matrix
    /// The id of each item row.
    public let ids: [ItemID]
    /// The level index passed to the scorer for items (the tree's leaf level).
    public let leafLevel: Int
    /// Items scored per call of the scorer.
    public let blockRows: Int
    private let pool: WorkspacePool<Workspace>

    struct Workspace: Sendable {
        var block: Matrix
        var scores: [Float] = []
        var selector = TopKSelector(k: 0)
    }

    /// - Throws: ``ArborError`` when `items.cols != scorer.nodeDimension` or counts differ.
    public init(name: String = "brute-force", scorer: Scorer, items: Matrix, ids: [ItemID], leafLevel: Int,
                blockRows: Int = 2048) throws {
        guard items.cols == scorer.nodeDimension else {
            throw ArborError.dimensionMismatch(field: "item embeddings", expected: scorer.nodeDimension,
                                               found: items.cols)
        }
        guard items.rows == ids.count else {
            throw ArborError.dimensionMismatch(field: "item ids", expected: items.rows, found: ids.count)
        }
        self.name = name
        self.scorer = scorer
        self.items = items
        self.ids = ids
        self.leafLevel = leafLevel
        self.blockRows = max(1, blockRows)
        let d = items.cols
        pool = WorkspacePool { Workspace(block: Matrix(rows: 0, cols: d)) }
    }

    /// Number of items scored per query.
    public var itemCount: Int { items.rows }

    /// O(N) model evaluations per query, in blocks.
    public func search(_ query: Query, parameters: SearchParameters) throws -> SearchResult {
        let parameters = try parameters.clamped(itemCount: items.rows)
        var session = try scorer.makeSession(for: query)
        let excludedRows = query.excluded
        return pool.with { w in
            w.selector.reset(k: parameters.k)
            var start = 0
            let n = items.rows
            w.block.reserveRows(blockRows)
            while start < n {
                let rows = min(blockRows, n - start)
                w.block.copyRows(from: items, rows: start ..< start + rows)
                session.score(nodes: w.block, level: leafLevel, into: &w.scores)
                for r in 0..<rows {
                    if !excludedRows.isEmpty, excludedRows.contains(ids[start + r]) { continue }
                    w.selector.push(score: w.scores[r], id: Int32(start + r), tieKey: ids[start + r].rawValue)
                }
                start += rows
            }
            var out = w.selector.sortedResults().map { ScoredItem(item: ids[Int($0.id)], score: $0.score) }
            out.sort { $0.score > $1.score || ($0.score == $1.score && $0.item < $1.item) }
            return SearchResult(items: out, statistics: SearchStatistics(modelEvaluations: n, steps: 1))
        }
    }
}
