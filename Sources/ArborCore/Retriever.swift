/// One item with its score, as retrievers return them (higher score = better).
public struct ScoredItem: Sendable, Equatable {
    /// The item.
    public var item: ItemID
    /// Its score under the retriever's model (higher is better).
    public var score: Float
    @inlinable public init(item: ItemID, score: Float) { self.item = item; self.score = score }
}

/// What a retriever is asked for a user.
///
/// A scorer reads what it needs: the inner-product and DNN scorers read `vector`; sequence models
/// (attention) read `history`. `excluded` items are filtered at the leaves (e.g. items already seen).
public struct Query: Sendable {
    /// The user vector, length = the retriever's query dimension; empty for sequence-only scorers.
    public var vector: [Float]
    /// The user's behaviour sequence, oldest first.
    public var history: [ItemID]
    /// Items that must not be returned.
    public var excluded: Set<ItemID>

    /// A query; give what the scorer reads (a vector, a history, or both).
    public init(vector: [Float] = [], history: [ItemID] = [], excluded: Set<ItemID> = []) {
        self.vector = vector
        self.history = history
        self.excluded = excluded
    }
}

/// Search knobs, kept apart from the index (as faiss's `SearchParameters`).
public struct SearchParameters: Sendable, Equatable {
    /// Number of items to return. Must be >= 1.
    public var k: Int
    /// Beam width of tree search (nodes kept per level). Values below `k` are raised to `k`.
    public var beamWidth: Int
    /// HNSW candidate list size. Values below `k` are raised to `k`.
    public var efSearch: Int
    /// How a tree search runs the several queries of one multi-interest user
    /// (``Retriever/search(interests:parameters:)``); other retrievers ignore it.
    public var interestBeams: InterestBeams

    /// Knobs with common defaults (k 10, beam 100, efSearch 100, a beam per interest).
    public init(k: Int = 10, beamWidth: Int = 100, efSearch: Int = 100, interestBeams: InterestBeams = .separate) {
        self.k = k
        self.beamWidth = beamWidth
        self.efSearch = efSearch
        self.interestBeams = interestBeams
    }

    /// Checks `k >= 1`.
    public func validated() throws(ArborError) -> SearchParameters {
        guard k >= 1 else { throw .invalidArgument(name: "k", reason: "must be at least 1, got \(k)") }
        guard beamWidth >= 1 else {
            throw .invalidArgument(name: "beam", reason: "must be at least 1, got \(beamWidth)")
        }
        guard efSearch >= 1 else {
            throw .invalidArgument(name: "efSearch", reason: "must be at least 1, got \(efSearch)")
        }
        return self
    }

    /// The knobs validated (``validated()``) and clamped to what a search over `itemCount` items
    /// can use, before any arithmetic or allocation depends on them: `k` to the item count, the
    /// beam to `k ... widestLevel` (a beam as wide as the widest level already keeps every node),
    /// `efSearch` to `k ... graphNodes`. Each bound is applied only when given, so `Int.max` is a
    /// valid request for "everything". O(1).
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` for a knob below 1.
    public func clamped(itemCount: Int, widestLevel: Int? = nil, graphNodes: Int? = nil) throws(ArborError) -> SearchParameters {
        var p = try validated()
        p.k = min(p.k, max(1, itemCount))
        if let widestLevel { p.beamWidth = min(max(p.beamWidth, p.k), max(widestLevel, p.k)) }
        if let graphNodes { p.efSearch = min(max(p.efSearch, p.k), max(graphNodes, p.k)) }
        return p
    }
}

/// Counters of one search, for the cost columns of the benchmark.
public struct SearchStatistics: Sendable, Equatable {
    /// Number of (query, node or item) pairs the model scored.
    public var modelEvaluations: Int = 0
    /// Number of levels (tree) or graph hops (HNSW) visited.
    public var steps: Int = 0
    /// Counters, zero by default.
    public init(modelEvaluations: Int = 0, steps: Int = 0) {
        self.modelEvaluations = modelEvaluations
        self.steps = steps
    }
}

/// The answer to one query: at most `k` items, best first, with the cost of finding them.
public struct SearchResult: Sendable, Equatable {
    /// At most `k` items, best first.
    public var items: [ScoredItem]
    /// What the search cost.
    public var statistics: SearchStatistics
    /// A result from its items and statistics.
    public init(items: [ScoredItem], statistics: SearchStatistics = .init()) {
        self.items = items
        self.statistics = statistics
    }
}

/// Anything that returns the top-k items for a query: the tree (beam search), the exact flat scan,
/// HNSW. One protocol, so that the benchmark runner compares them side by side.
///
/// Thread safety: a retriever is safe to call from many threads at once; per-query buffers are
/// per call (or per thread), never shared.
public protocol Retriever: Sendable {
    /// A short name for reports ("tree", "flat", "hnsw").
    var name: String { get }
    /// Number of retrievable items.
    var itemCount: Int { get }
    /// The top `parameters.k` items for `query`, best first, ties broken by smaller item id.
    /// - Throws: ``ArborError`` for a vector of the wrong dimension or with NaN, or bad parameters.
    func search(_ query: Query, parameters: SearchParameters) throws -> SearchResult
    /// The answers to many queries; implementations batch them into GEMMs where they can.
    func search(batch queries: [Query], parameters: SearchParameters) throws -> [SearchResult]
    /// The merged top `parameters.k` of several queries of ONE user (the interests of a
    /// multi-interest producer): each item scored by its best query, de-duplicated, best first,
    /// ties broken by smaller item id (``ResultMerge/bestScorePerItem(_:k:)``); statistics summed.
    /// The default answers the queries as one batch and merges; the tree can instead run one beam
    /// shared by all queries (``SearchParameters/interestBeams``).
    func search(interests queries: [Query], parameters: SearchParameters) throws -> SearchResult
}

extension Retriever {
    /// Default: one query at a time.
    public func search(batch queries: [Query], parameters: SearchParameters) throws -> [SearchResult] {
        try queries.map { try search($0, parameters: parameters) }
    }

    /// Default: ``searchEach(_:parameters:)``, then ``ResultMerge/bestScorePerItem(_:k:)``. An
    /// empty list of queries finds nothing.
    public func search(interests queries: [Query], parameters: SearchParameters) throws -> SearchResult {
        guard !queries.isEmpty else { return SearchResult(items: []) }
        return ResultMerge.bestScorePerItem(try searchEach(queries, parameters: parameters), k: parameters.k)
    }

    /// Each query's own result, in order: one query through ``search(_:parameters:)``, several as
    /// one ``search(batch:parameters:)``.
    public func searchEach(_ queries: [Query], parameters: SearchParameters) throws -> [SearchResult] {
        queries.count == 1 ? [try search(queries[0], parameters: parameters)] : try search(batch: queries, parameters: parameters)
    }
}

/// How a tree search runs the query vectors of one multi-interest user (``SearchParameters/interestBeams``).
public enum InterestBeams: String, Sendable, Equatable, CaseIterable {
    /// Each interest keeps a beam of its own, `beamWidth` nodes wide (MIND's serving: one search
    /// per interest, merged); the beams run level by level together, one scoring call per level.
    /// Cost: about K single searches, less the levels near the root that all beams share.
    /// Per-interest lists are available.
    case separate
    /// One beam of `beamWidth` nodes for all interests, each node scored by its best interest:
    /// beam search on the merge's own score (max over interests). Cost: one search's gathers and
    /// selection plus K scores per candidate (one GEMM per level), so a wider beam costs about
    /// what K separate beams do. No per-interest lists.
    case shared
}

/// Checks a query vector's length and values.
/// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` or ``ArborError/nonFiniteValue(field:row:)``.
public func validateQueryVector(_ vector: [Float], dimension: Int) throws(ArborError) {
    guard vector.count == dimension else {
        throw .dimensionMismatch(field: "query vector", expected: dimension, found: vector.count)
    }
    for v in vector where !v.isFinite { throw .nonFiniteValue(field: "query vector", row: 0) }
}
