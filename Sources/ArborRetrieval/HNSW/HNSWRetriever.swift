// HNSW behind Arbor's `Retriever` protocol, beside the tree and the exact flat scan.

/// The HNSW baseline as a ``Retriever`` (name `"hnsw"`), for the benchmark runner.
///
/// Reads `query.vector` (length = the index's `dimension`) and `query.excluded`; ignores
/// `query.history`. Uses `parameters.k` and `parameters.efSearch` (raised to `k` when smaller);
/// `beamWidth` is for the tree and is ignored here. Results are best first (ties: smaller id) with
/// `statistics.modelEvaluations` = distance computations and `statistics.steps` = graph hops.
/// `k` above ``itemCount`` returns all live items and `efSearch` above the node count is lowered to
/// it (both before any allocation, so `Int.max` is accepted); an empty index returns no items (see
/// ``HNSWIndex/search(_:parameters:excluded:)``).
///
/// Thread safety: safe to call from many threads at once. The retriever holds a snapshot of the index
/// (value semantics): later changes to the caller's `HNSWIndex` variable do not affect it.
///
/// Benchmarking (no timings in tests; the library has no executable): from a release build of a
/// client (the `arbor bench` runner, or a throwaway package depending on Arbor by path), build with
/// `HNSWIndex.build(items, configuration: .init(m: 16, efConstruction: 200, buildThreads: 2))`, take
/// the exact top-k from one GEMM (`BLAS.gemm` of queries by items transposed) as ground truth, then for
/// `efSearch` in 100, 160, 200, 320, 400, 800 measure recall@k and QPS over ≥ 500 queries on one thread
/// (median of a few passes), with `statistics.modelEvaluations` as the cost column. Set
/// `BLAS.threads = 1` first. Compare with hnswlib through `shared/peers/peers_bench.py --items … --queries …`
/// on the same vectors exported as `.npy`; run both metrics (`innerProduct`, `normAugmentedInnerProduct`).
public struct HNSWRetriever: Retriever {
    /// The index searched.
    public let index: HNSWIndex

    /// A retriever over `index`, reported as `name` (e.g. `"hnsw-ip"` and `"hnsw-aug"` to put both
    /// inner-product modes in one benchmark table).
    public init(index: HNSWIndex, name: String = "hnsw") {
        self.index = index
        self.name = name
    }

    /// The name in reports, `"hnsw"` by default.
    public let name: String

    /// Live (not deleted) items.
    public var itemCount: Int { index.liveCount }

    /// The top `parameters.k` live items for `query.vector`, best first.
    /// - Throws: ``ArborError`` for a vector of the wrong dimension, with NaN, zero under cosine, or bad parameters.
    public func search(_ query: Query, parameters: SearchParameters) throws(ArborError) -> SearchResult {
        try index.search(query.vector, parameters: parameters, excluded: query.excluded)
    }
}
