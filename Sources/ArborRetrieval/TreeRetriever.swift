import ArborMath
import ArborTree
import ArborModels

/// Retrieval by TDM beam search over a tree (in memory or in an index file) with any scorer.
///
/// Thread-safe: the tree source and scorer are immutable, and each query works in a workspace of
/// its own taken from a pool. Each query reads the tree through one short-lived view (for an index
/// file: one LMDB read transaction).
public struct TreeRetriever<Source: TreeSource, Scorer: NodeScorer>: Retriever {
    public let name: String
    public let source: Source
    public let scorer: Scorer
    public let itemCount: Int
    private let pool: WorkspacePool<BeamWorkspace>

    /// A retriever over `source` scored by `scorer`.
    /// - Parameters:
    ///   - itemCount: the number of leaves (items) of the tree.
    ///   - dimension: node embedding width; must equal `scorer.nodeDimension`.
    public init(name: String = "tree", source: Source, scorer: Scorer, itemCount: Int, dimension: Int) throws {
        guard scorer.nodeDimension == dimension else {
            throw ArborError.dimensionMismatch(field: "scorer node dimension", expected: dimension,
                                               found: scorer.nodeDimension)
        }
        self.name = name
        self.source = source
        self.scorer = scorer
        self.itemCount = itemCount
        pool = WorkspacePool { BeamWorkspace(dimension: dimension) }
    }

    /// Beam search with `parameters.beamWidth` (raised to `k` when smaller).
    public func search(_ query: Query, parameters: SearchParameters) throws -> SearchResult {
        let parameters = try parameters.validated()
        var session = try scorer.makeSession(for: query)
        return try pool.with { workspace in
            try source.withView { view in
                BeamSearch.run(view: copy view, session: &session, k: parameters.k, beamWidth: parameters.beamWidth,
                               excluded: query.excluded, workspace: &workspace)
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
