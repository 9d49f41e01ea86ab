// HNSW behind Arbor's `Retriever` protocol, beside the tree and the exact flat scan.

/// The HNSW baseline as a ``Retriever`` (name `"hnsw"`), for the benchmark runner.
///
/// Reads `query.vector` (length = the index's `dimension`) and `query.excluded`; ignores
/// `query.history`. Uses `parameters.k` and `parameters.efSearch` (raised to `k` when smaller);
/// `beamWidth` is for the tree and is ignored here. Results are best first (ties: smaller id) with
/// `statistics.modelEvaluations` = distance computations and `statistics.steps` = graph hops.
/// `k` above ``itemCount`` returns all live items; an empty index returns no items (see
/// ``HNSWIndex/search(_:parameters:excluded:)``).
///
/// Thread safety: safe to call from many threads at once. The retriever holds a snapshot of the index
/// (value semantics): later changes to the caller's `HNSWIndex` variable do not affect it.
public struct HNSWRetriever: Retriever {
    /// The index searched.
    public let index: HNSWIndex

    /// A retriever over `index`.
    public init(index: HNSWIndex) { self.index = index }

    /// `"hnsw"`.
    public var name: String { "hnsw" }

    /// Live (not deleted) items.
    public var itemCount: Int { index.liveCount }

    /// The top `parameters.k` live items for `query.vector`, best first.
    /// - Throws: ``ArborError`` for a vector of the wrong dimension, with NaN, zero under cosine, or bad parameters.
    public func search(_ query: Query, parameters: SearchParameters) throws(ArborError) -> SearchResult {
        try index.search(query.vector, parameters: parameters, excluded: query.excluded)
    }
}
