import ArborCore
import ArborInference
import ArborMath
import ArborRetrieval
import ArborTree

/// An open index served with the model it holds: the one entry point of the library.
///
/// Open with ``Arbor/open(_:)``; search with a behaviour list (``search(history:timestamps:k:using:excluding:excludeHistory:unknownItems:)``),
/// a query vector (``search(vector:k:using:excluding:)``) or a batch of vectors
/// (``search(vectors:k:using:excluding:)``). The retriever and its knob are parameters of each call.
///
/// Thread-safety: an engine is safe to share between threads; every search works in buffers of
/// its own. The exact-scan matrix and the HNSW graph are loaded on first use (under a lock); the
/// matrix is reloaded after an update of the file (``IndexUpdater``) commits, and tree searches
/// read each committed state directly. BLAS runs single-threaded unless the program sets `BLAS.threads`.
/// Lifetime: the engine keeps the index file mapped until it is released.
public final class Engine: Sendable {
    /// The open index file.
    public let reader: IndexReader
    /// The node scorer and query producer the header names.
    public let model: ServingModel
    private let tree: any Retriever
    /// The exact scan's matrix and the committed version of the file it was loaded from.
    // PosixMutex (pthread) rather than Synchronization.Mutex: visible to the thread sanitizer.
    private let exactRetriever = PosixMutex<(version: UInt64, retriever: any Retriever)?>(nil)
    private let graphRetriever = PosixMutex<(version: UInt64, retriever: HNSWRetriever)?>(nil)

    /// An engine over an open index.
    /// - Throws: ``ModelLoadError`` when the stored model is incomplete; ``ArborError`` when its
    ///   width differs from the tree's.
    public init(reader: IndexReader) throws {
        self.reader = reader
        model = try ServingModel.load(from: reader)
        tree = try Self.treeRetriever(model.scorer.scorer, reader: reader)
    }

    /// The index file's path.
    public var path: String { reader.path }
    /// Number of items when the index was opened (see ``IndexReader/currentHeader()`` after updates).
    public var itemCount: Int { reader.itemCount }
    /// Width of node embeddings and query vectors.
    public var dimension: Int { reader.dimension }
    /// The node scorer kind.
    public var nodeScorer: NodeScorerKind { reader.nodeScorer }
    /// The query producer kind.
    public var queryProducer: QueryProducerKind { reader.queryProducer }
    /// Whether the index holds an HNSW graph (``RetrieverChoice/hnsw(efSearch:)``).
    public var hasGraph: Bool { HNSWPersistence.hasGraph(reader) }

    // MARK: - Searching

    /// The top `k` items for a user given by a behaviour list (item ids, oldest first).
    ///
    /// The index's query producer turns the history into the query (or one query per interest,
    /// whose results are merged by best score per item). Unknown ids are ignored and reported,
    /// or rejected with `unknownItems: .reject`.
    /// - Parameters:
    ///   - timestamps: one time (seconds) per history item, or `nil`. Session producers (SDM) cut
    ///     sessions with them; without them the whole history is one session. Other producers
    ///     ignore them after checking their count.
    ///   - excludeHistory: also never return the history's own items (default true).
    ///   - perInterest: also return each interest's own list in ``EngineResult/interests``.
    ///
    /// A multi-interest index (MIND) gives `K'` queries; the tree runs their beam searches level by
    /// level together (one scoring call per level for all interests), or one beam shared by all
    /// (`.tree(beam:interests: .shared)`), the exact scan in one GEMM, HNSW one search each; the
    /// merge keeps each item's best score and cuts to `k`.
    /// - Throws: ``ArborError/unknownItem(_:)`` under `.reject`; ``ArborError/invalidArgument(name:reason:)``
    ///   for `k < 1`, a retriever the index cannot serve, or `perInterest` with a shared beam; index read errors.
    public func search(history: [ItemID], timestamps: [Double]? = nil, k: Int = 10, using choice: RetrieverChoice = .tree(),
                       excluding excluded: Set<ItemID> = [], excludeHistory: Bool = true,
                       unknownItems policy: UnknownItemPolicy = .ignore, perInterest: Bool = false) throws -> EngineResult {
        let parameters = try choice.parameters(k: k).validated()
        let unknown = try model.producer.unknownItems(in: history)
        if policy == .reject, let first = unknown.first { throw ArborError.unknownItem(first) }
        let produced = try queries(history: history, timestamps: timestamps,
                                   excluding: excludeHistory ? excluded.union(history) : excluded)
        let retriever = try self.retriever(choice)
        guard perInterest else {
            let merged = try retriever.search(interests: produced.queries, parameters: parameters)
            return EngineResult(items: merged.items, unknownHistoryItems: unknown, usedFallbackQuery: produced.usedFallback,
                                statistics: merged.statistics)
        }
        guard parameters.interestBeams == .separate || produced.queries.count == 1 else {
            throw ArborError.invalidArgument(
                name: "perInterest", reason: "per-interest lists need a beam per interest (interests: .separate), not a shared beam")
        }
        let results = try retriever.searchEach(produced.queries, parameters: parameters)
        let merged = ResultMerge.bestScorePerItem(results, k: parameters.k)
        return EngineResult(items: merged.items, unknownHistoryItems: unknown, usedFallbackQuery: produced.usedFallback,
                            statistics: merged.statistics, interests: results)
    }

    /// The top `k` items for a query vector (`dimension` values). Vector scorers only (inner
    /// product, DNN); an attention index reads a behaviour list.
    /// - Throws: ``ArborError`` for a vector of the wrong length or with NaN, `k < 1`, or a
    ///   sequence-only scorer.
    public func search(vector: [Float], k: Int = 10, using choice: RetrieverChoice = .tree(),
                       excluding excluded: Set<ItemID> = []) throws -> SearchResult {
        try search(vectors: [vector], k: k, using: choice, excluding: excluded)[0]
    }

    /// The top `k` items for each row of `vectors` (`n × dimension`, row-major); the exact scan
    /// answers the whole batch in one blocked GEMM pass.
    /// - Throws: as ``search(vector:k:using:excluding:)``.
    public func search(vectors: Matrix, k: Int = 10, using choice: RetrieverChoice = .tree(),
                       excluding excluded: Set<ItemID> = []) throws -> [SearchResult] {
        guard vectors.cols == dimension else {
            throw ArborError.dimensionMismatch(field: "query vectors", expected: dimension, found: vectors.cols)
        }
        return try search(vectors: (0..<vectors.rows).map { Array(vectors.row($0)) }, k: k, using: choice, excluding: excluded)
    }

    /// The top `k` items for each vector; as ``search(vectors:k:using:excluding:)-(Matrix,_,_,_)``.
    public func search(vectors: [[Float]], k: Int = 10, using choice: RetrieverChoice = .tree(),
                       excluding excluded: Set<ItemID> = []) throws -> [SearchResult] {
        let parameters = try choice.parameters(k: k).validated()
        guard model.scorer.readsVector else {
            throw ArborError.invalidArgument(
                name: "vector", reason: "the index's \(nodeScorer.rawValue) scorer reads a behaviour list: search with a history")
        }
        for v in vectors { try validateQueryVector(v, dimension: dimension) }
        let queries = vectors.map { Query(vector: $0, excluded: excluded) }
        return try retriever(choice).search(batch: queries, parameters: parameters)
    }

    // MARK: - Parts, for benchmarks and evaluation

    /// The queries the index's producer makes for `history` (one, or one per interest), with
    /// optional per-item `timestamps` (seconds; see ``search(history:timestamps:k:using:excluding:excludeHistory:unknownItems:)``).
    public func queries(history: [ItemID], timestamps: [Double]? = nil, excluding excluded: Set<ItemID> = []) throws -> ProducedQueries {
        try model.producer.queries(history: history, timestamps: timestamps, excluded: excluded)
    }

    /// The retriever behind `choice` (its knob is passed per search), e.g. to sweep it in the
    /// benchmark runner. The exact scan's item matrix and the HNSW graph load on first use.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` for HNSW on an index without a graph
    ///   or with a deep scorer; index read errors.
    public func retriever(_ choice: RetrieverChoice) throws -> any Retriever {
        switch choice {
        case .tree: return tree
        case .exact:
            // An update committed since the matrix was loaded (``IndexUpdater``) reloads it, so
            // the exact scan answers from the catalogue as last committed.
            let version = reader.header.isUpdatable ? try reader.committedVersion() : 0
            return try exactRetriever.withLock { cached in
                if let cached, cached.version == version { return cached.retriever }
                let (items, ids) = try reader.loadLeafMatrix()
                let made: any Retriever
                if case .innerProduct = model.scorer {
                    made = try FlatRetriever(name: "exact", items: items, ids: ids)
                } else {
                    made = try Self.bruteForce(model.scorer.scorer, items: items, ids: ids, leafLevel: reader.depth)
                }
                cached = (version, made)
                return made
            }
        case .hnsw:
            guard case .innerProduct = model.scorer else {
                throw ArborError.invalidArgument(name: "hnsw", reason: "the graph serves inner-product indexes; this one scores with '\(nodeScorer.rawValue)'")
            }
            guard hasGraph else {
                throw ArborError.invalidArgument(name: "hnsw", reason: "\(path) has no HNSW graph; build it with `arbor build --hnsw`")
            }
            let version = reader.header.isUpdatable ? try reader.committedVersion() : 0
            return try graphRetriever.withLock { cached in
                if let cached, cached.version == version { return cached.retriever }
                let made = HNSWRetriever(index: try HNSWPersistence.load(from: reader))
                cached = (version, made)
                return made
            }
        }
    }

    private static func treeRetriever<S: NodeScorer>(_ scorer: S, reader: IndexReader) throws -> any Retriever {
        try TreeRetriever(source: reader, scorer: scorer, itemCount: reader.itemCount, dimension: reader.dimension)
    }

    private static func bruteForce<S: NodeScorer>(_ scorer: S, items: Matrix, ids: [ItemID], leafLevel: Int) throws -> any Retriever {
        try BruteForceRetriever(name: "exact", scorer: scorer, items: items, ids: ids, leafLevel: leafLevel)
    }
}
