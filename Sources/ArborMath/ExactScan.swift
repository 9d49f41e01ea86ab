import CArborKernels
/// Exact top-k by inner product over a row-major item matrix: blocked GEMM with a running top-k
/// per query (what faiss's IndexFlatIP does). This is both the flat baseline and the ground truth
/// that measures what beam search loses.
///
/// The item matrix is scanned in blocks of ``blockRows`` rows; each block is scored for all queries
/// in one GEMM (`queries × block`, so a batch of queries turns the memory-bound scan into a
/// compute-bound product), then every query's selector takes the block's scores. One scan serves
/// every query of the batch. A single query is memory-bound: its blocks are scored by the CPU's
/// dot kernel (CArborKernels, chosen by CPU features: AVX-512, AVX2 + FMA or portable) in one
/// streaming pass, while the block's scores stay in cache for the selector.
public struct ExactScan: Sendable {
    /// Rows per block (the block's scores for a batch of queries stay in cache).
    public var blockRows: Int

    /// A scanner with blocks of `blockRows` rows (4096: 1 MB of scores for 64 queries).
    public init(blockRows: Int = 4096) {
        precondition(blockRows > 0)
        self.blockRows = blockRows
    }

    /// Reusable buffers for one caller (thread) of ``search(items:queries:k:workspace:accept:)``.
    public struct Workspace: Sendable {
        var scores: [Float] = []
        var selectors: [TopKSelector] = []
        /// Empty buffers; they grow to the largest batch seen and are kept.
        public init() {}
    }

    /// The top `k` rows of `items` (`N × d`) by inner product with each row of `queries` (`Q × d`).
    ///
    /// - Parameters:
    ///   - accept: when given, a row is kept only if `accept(query, row)` is true (filters such as
    ///     excluded items); it is called only for rows that would enter the top-k.
    /// - Returns: per query, up to `k` `(score, row)` pairs, best first (ties: smaller row).
    /// - Complexity: O(N · Q · d) flops in GEMMs plus O(N · Q) comparisons.
    public func search(
        items: Matrix, queries: Matrix, k: Int, workspace: inout Workspace,
        tieKeys: [UInt64]? = nil, accept: ((Int, Int32) -> Bool)? = nil
    ) -> [[(score: Float, id: Int32)]] {
        precondition(items.cols == queries.cols, "scan: items have \(items.cols) columns, queries \(queries.cols)")
        let q = queries.rows, n = items.rows, d = items.cols
        guard q > 0 else { return [] }
        let block = min(blockRows, max(1, n))
        if workspace.scores.count < q * block {
            workspace.scores = [Float](repeating: 0, count: q * block)
        }
        if workspace.selectors.count < q {
            workspace.selectors.append(contentsOf: (workspace.selectors.count..<q).map { _ in TopKSelector(k: k) })
        }
        for i in 0..<q { workspace.selectors[i].reset(k: k) }
        items.withUnsafeBufferPointer { pi in
            queries.withUnsafeBufferPointer { pq in
                workspace.scores.withUnsafeMutableBufferPointer { ps in
                    guard let itemBase = pi.baseAddress, let queryBase = pq.baseAddress,
                          let scoreBase = ps.baseAddress else { return }
                    var start = 0
                    while start < n {
                        let rows = min(block, n - start)
                        // scores (q × rows) = queries (q × d) · block (rows × d)ᵀ
                        if q == 1 {
                            // One query: a streaming pass with the CPU's dot kernel (memory-bound).
                            arbor_dot_rows(queryBase, itemBase + start * d, rows, d, scoreBase)
                        } else {
                            BLAS.gemm(transposeA: false, transposeB: true, m: q, n: rows, k: d,
                                      a: queryBase, lda: d, b: itemBase + start * d, ldb: d,
                                      c: scoreBase, ldc: rows)
                        }
                        for query in 0..<q {
                            Self.select(scores: scoreBase + query * rows, count: rows, firstRow: start,
                                        query: query, selector: &workspace.selectors[query], tieKeys: tieKeys, accept: accept)
                        }
                        start += rows
                    }
                }
            }
        }
        return (0..<q).map { workspace.selectors[$0].sortedResults() }
    }

    @inline(__always)
    private static func select(scores: UnsafePointer<Float>, count: Int, firstRow: Int, query: Int,
                               selector: inout TopKSelector, tieKeys: [UInt64]?, accept: ((Int, Int32) -> Bool)?) {
        var threshold = selector.threshold
        for j in 0..<count {
            let s = scores[j]
            // `>=` keeps equal scores: the selector breaks the tie by row.
            if s >= threshold {
                let row = Int32(firstRow + j)
                if let accept, !accept(query, row) { continue }
                if let tieKeys { selector.push(score: s, id: row, tieKey: tieKeys[Int(row)]) } else { selector.push(score: s, id: row) }
                threshold = selector.threshold
            }
        }
    }
}
