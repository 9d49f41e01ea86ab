import ArborMath

/// The exact flat scan by inner product: every item scored with blocked GEMM and a running top-k.
/// The ground truth of recall measurements and the "flat" baseline of the benchmark.
///
/// Thread-safe; a batch of queries is answered by one scan of the item matrix (GEMM).
public struct FlatRetriever: Retriever {
    /// Name in reports ("flat").
    public let name: String
    /// `N × d`, row-major: item `i`'s vector is row `i`.
    public let items: Matrix
    /// The id of each row.
    public let ids: [ItemID]
    private let idToRow: [ItemID: Int32]
    private let tieKeys: [UInt64]
    private let scan: ExactScan
    private let pool: WorkspacePool<ExactScan.Workspace>

    /// A flat retriever over `items` (`N × d`) with ids `ids` (unique, `N` of them).
    /// - Throws: ``ArborError`` on count mismatch, duplicate ids, or a NaN row.
    public init(name: String = "flat", items: Matrix, ids: [ItemID], blockRows: Int = 4096) throws {
        guard items.rows == ids.count else {
            throw ArborError.dimensionMismatch(field: "item ids", expected: items.rows, found: ids.count)
        }
        if let bad = items.firstNonFiniteRow() { throw ArborError.nonFiniteValue(field: "item vectors", row: bad) }
        var map = [ItemID: Int32](minimumCapacity: ids.count)
        for (i, id) in ids.enumerated() {
            if map.updateValue(Int32(i), forKey: id) != nil { throw ArborError.duplicateItem(id) }
        }
        self.name = name
        self.items = items
        self.ids = ids
        idToRow = map
        tieKeys = ids.map(\.rawValue)
        scan = ExactScan(blockRows: blockRows)
        pool = WorkspacePool { ExactScan.Workspace() }
    }

    /// Number of items.
    public var itemCount: Int { items.rows }
    /// Vector width.
    public var dimension: Int { items.cols }

    /// The exact top `k` by inner product (one GEMV scan over all items). O(N · d).
    /// - Throws: ``ArborError`` for a query vector of the wrong length or with NaN, or `k < 1`.
    public func search(_ query: Query, parameters: SearchParameters) throws -> SearchResult {
        try search(batch: [query], parameters: parameters)[0]
    }

    /// All queries in one blocked GEMM scan. O(N · Q · d).
    public func search(batch queries: [Query], parameters: SearchParameters) throws -> [SearchResult] {
        let parameters = try parameters.clamped(itemCount: items.rows)
        var q = Matrix(rows: 0, cols: dimension)
        q.reserveRows(queries.count)
        for query in queries {
            try validateQueryVector(query.vector, dimension: dimension)
            q.appendRow(query.vector)
        }
        let excludedRows: [Set<Int32>] = queries.map { query in
            Set(query.excluded.compactMap { idToRow[$0] })
        }
        let anyExcluded = excludedRows.contains { !$0.isEmpty }
        let found = pool.with { workspace in
            scan.search(items: items, queries: q, k: parameters.k, workspace: &workspace, tieKeys: tieKeys,
                        accept: anyExcluded ? { query, row in !excludedRows[query].contains(row) } : nil)
        }
        return found.map { list in
            var out = list.map { ScoredItem(item: ids[Int($0.id)], score: $0.score) }
            out.sort { $0.score > $1.score || ($0.score == $1.score && $0.item < $1.item) }
            return SearchResult(items: out, statistics: SearchStatistics(modelEvaluations: items.rows, steps: 1))
        }
    }
}
