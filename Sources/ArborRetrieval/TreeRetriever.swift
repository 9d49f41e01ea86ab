import ArborMath
import ArborTree
import ArborInference

/// Retrieval by TDM beam search over a tree (in memory or in an index file) with any scorer.
///
/// Thread-safe: the tree source and scorer are immutable, and each query works in a workspace of
/// its own taken from a pool. Each query reads the tree through one short-lived view (for an index
/// file: one LMDB read transaction).
public struct TreeRetriever<Source: TreeSource, Scorer: NodeScorer>: Retriever {
    /// Name in reports ("tree").
    public let name: String
    /// The tree searched (in memory or an index file).
    public let source: Source
    /// The model that scores the candidates of each level.
    public let scorer: Scorer
    /// Number of items (leaves) of the tree.
    public let itemCount: Int
    /// Nodes on the widest level: beams are clamped to it (a wider beam keeps no more nodes).
    public let widestLevel: Int
    private let pool: WorkspacePool<BeamWorkspace>
    private let batchPool: WorkspacePool<BatchBeamWorkspace>

    /// Batches up to this many queries run level-synchronously (one scoring call per level for all
    /// of them: the interests of one user); larger batches (many users) run query by query, where
    /// scoring every query against the union of all beams' candidates would cost more than it saves.
    public static var synchronousBatchLimit: Int { 16 }

    /// A retriever over `source` scored by `scorer`.
    /// - Parameters:
    ///   - itemCount: the number of leaves (items) of the tree; must equal `source.itemCount`.
    ///   - dimension: node embedding width; must equal `source.dimension` and `scorer.nodeDimension`.
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` naming the part that disagrees.
    public init(name: String = "tree", source: Source, scorer: Scorer, itemCount: Int, dimension: Int) throws {
        guard source.dimension == dimension else {
            throw ArborError.dimensionMismatch(field: "tree dimension", expected: dimension, found: source.dimension)
        }
        guard scorer.nodeDimension == dimension else {
            throw ArborError.dimensionMismatch(field: "scorer node dimension", expected: dimension,
                                               found: scorer.nodeDimension)
        }
        guard source.itemCount == itemCount else {
            throw ArborError.dimensionMismatch(field: "tree items", expected: itemCount, found: source.itemCount)
        }
        self.name = name
        self.source = source
        self.scorer = scorer
        self.itemCount = itemCount
        widestLevel = source.levelNodeCounts.max() ?? 1
        pool = WorkspacePool { BeamWorkspace(dimension: dimension) }
        batchPool = WorkspacePool { BatchBeamWorkspace(dimension: dimension) }
    }

    /// Beam search with `parameters.beamWidth` (raised to `k` when smaller, lowered to the widest
    /// level when larger); `k` above the item count returns every item.
    public func search(_ query: Query, parameters: SearchParameters) throws -> SearchResult {
        try search(query, parameters: parameters, observer: nil)
    }

    /// The beam searches of `queries`. Up to ``synchronousBatchLimit`` queries (one user's
    /// interests) run level by level together: where their beams overlap (near the root) a level's
    /// candidates are gathered once and scored in one call (one GEMM with the query vectors for
    /// inner product), elsewhere each query scores its own; each query's result is the one its own
    /// search gives. Larger batches run query by query.
    public func search(batch queries: [Query], parameters: SearchParameters) throws -> [SearchResult] {
        guard queries.count > 1, queries.count <= Self.synchronousBatchLimit else {
            return try queries.map { try search($0, parameters: parameters, observer: nil) }
        }
        let parameters = try parameters.clamped(itemCount: itemCount, widestLevel: widestLevel)
        var sessions = try queries.map { try scorer.makeSession(for: $0) }
        let excluded = queries.map(\.excluded)
        return try batchPool.with { workspace in
            try source.withView { view in
                BeamSearch.runBatch(view: copy view, sessions: &sessions, k: parameters.k, beamWidth: parameters.beamWidth,
                                    excluded: excluded, workspace: &workspace)
            }
        }
    }

    /// The merged top `k` of one user's interests. With ``InterestBeams/separate`` (the default)
    /// each interest keeps its own beam and the beams run level by level together
    /// (``search(batch:parameters:)``), then merge by best score per item. With
    /// ``InterestBeams/shared`` ONE beam of `beamWidth` nodes serves all interests, each candidate
    /// scored by its best interest in one fused call per level: the gathers and the selection of a
    /// single search, `K` scores per candidate. With a beam as wide as the widest level both equal
    /// the brute-force top `k` of the maximum over interests.
    public func search(interests queries: [Query], parameters: SearchParameters) throws -> SearchResult {
        guard queries.count > 1, parameters.interestBeams == .shared else {
            guard !queries.isEmpty else { return SearchResult(items: []) }
            return ResultMerge.bestScorePerItem(try searchEach(queries, parameters: parameters), k: parameters.k)
        }
        let parameters = try parameters.clamped(itemCount: itemCount, widestLevel: widestLevel)
        var session = BestInterestSession(interests: try queries.map { try scorer.makeSession(for: $0) })
        // Every interest carries the user's exclusions; an item excluded for one is excluded.
        let excluded = queries.dropFirst().reduce(queries[0].excluded) { $0.union($1.excluded) }
        var result = try pool.with { workspace in
            try source.withView { view in
                BeamSearch.run(view: copy view, session: &session, k: parameters.k, beamWidth: parameters.beamWidth,
                               excluded: excluded, workspace: &workspace, observer: nil)
            }
        }
        // Each candidate was scored once per interest.
        result.statistics.modelEvaluations *= queries.count
        return result
    }

    /// The same beam search, reporting what it keeps: `observe(level, nodes)` is called once per
    /// level from 1 to the leaves (level 0 alone for a one-item tree) with the local indices of the
    /// nodes the beam kept on that level (any order; at the leaf level, the leaves of the returned
    /// items, best first). For diagnostics such as per-level recall against brute force; the
    /// result equals ``search(_:parameters:)``'s. Costs one array copy per level.
    public func search(_ query: Query, parameters: SearchParameters,
                       observingLevels observe: (_ level: Int, _ nodes: [Int32]) -> Void) throws -> SearchResult {
        try withoutActuallyEscaping(observe) { escapable in
            try search(query, parameters: parameters, observer: escapable)
        }
    }

    private func search(_ query: Query, parameters: SearchParameters,
                        observer: BeamSearch.LevelObserver?) throws -> SearchResult {
        let parameters = try parameters.clamped(itemCount: itemCount, widestLevel: widestLevel)
        var session = try scorer.makeSession(for: query)
        return try pool.with { workspace in
            try source.withView { view in
                BeamSearch.run(view: copy view, session: &session, k: parameters.k, beamWidth: parameters.beamWidth,
                               excluded: query.excluded, workspace: &workspace, observer: observer)
            }
        }
    }
}

extension TreeRetriever where Source == TreeLayout, Scorer == InnerProductScorer {
    /// Inner-product beam search over an in-memory tree.
    public init(tree: TreeLayout) throws {
        try self.init(source: tree, scorer: InnerProductScorer(dimension: tree.dimension),
                      itemCount: tree.itemCount, dimension: tree.dimension)
    }
}
