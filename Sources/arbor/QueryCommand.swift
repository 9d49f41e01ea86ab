import ArborCore
import ArborData
import ArborMath
import ArborModels
import ArborRetrieval
import ArborTree
import ArgumentParser
import Foundation

/// `arbor query`: top-k items for a vector, a file of vectors, or a behaviour list.
struct Query: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Retrieve the top-k items from an index by beam search (or the exact scan).",
        discussion: paragraphs("""
            Give the user as --vector "0.1,0.2,...", as --vectors queries.npy (one row a user), or as
            --history "id,id,..." (oldest first): the history is encoded by the index's trained
            encoder (`arbor train --index`), or else by mean pooling of the items' leaf vectors.
            Unknown ids are ignored and counted, or rejected with --reject-unknown; a history with
            no known id falls back to the encoder's default query (two-tower: the training-frequency
            weighted mean of the item vectors; mean pooling: the mean of all item vectors).
            """))

    @Option(help: "The index file.")
    var index: String

    @Option(help: "One user vector, comma-separated.")
    var vector: String?

    @Option(help: "A float32 .npy of user vectors, one a row.")
    var vectors: String?

    @Option(help: "A behaviour list of item ids, comma-separated, oldest first.")
    var history: String?

    @Option(help: "With --vectors: answer only the first N rows.")
    var limit: Int?

    @Option(help: "Items to return.")
    var k: Int = 10

    @Option(help: "Beam width (nodes kept per level); raised to k when smaller.")
    var beam: Int = 100

    @Option(help: "Item ids never to return, comma-separated (e.g. items already seen).")
    var exclude: String?

    @Flag(help: "Use the exact flat scan over all items instead of beam search.")
    var exact = false

    @Flag(help: "Use the index's HNSW graph (built with `arbor build --hnsw`) instead of beam search.")
    var hnsw = false

    @Option(help: "HNSW candidate list size; raised to k when smaller.")
    var efSearch: Int = 200

    @Flag(help: "With --history: fail on ids missing from the index instead of ignoring them.")
    var rejectUnknown = false

    func validate() throws {
        let given = [vector, vectors, history].compactMap { $0 }.count
        guard given == 1 else { throw ValidationError("give exactly one of --vector, --vectors and --history") }
        guard !(exact && hnsw) else { throw ValidationError("give at most one of --exact and --hnsw") }
        guard k >= 1 else { throw ValidationError("--k must be at least 1") }
        guard beam >= 1 else { throw ValidationError("--beam must be at least 1") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        let reader = try IndexReader(path: index)
        var excluded = Set<ItemID>()
        if let exclude { excluded = Set(try parseIDs(exclude, option: "--exclude")) }
        var queries: [ArborCore.Query] = []
        // TDM-trained indexes carry their own behaviour encoder ("mean-pooling") or read the raw
        // history ("history"): the stored model serves them.
        if reader.scorerKind != "inner-product" || ["mean-pooling", "history"].contains(reader.encoderKind) {
            try runDeepModel(reader: reader, excluded: excluded)
            return
        }
        let trainedEncoder = history != nil && reader.encoderKind == TwoTowerEncoder.encoderKind
        let (tree, flat) = try openRetrievers(reader: reader, loadFlat: exact)
        if let vector {
            queries = [ArborCore.Query(vector: try parseVector(vector, option: "--vector"), excluded: excluded)]
        } else if let vectors {
            let m = try NPY.readMatrix(at: vectors)
            guard m.cols == reader.dimension else {
                throw ArborError.dimensionMismatch(field: "\(vectors) columns", expected: reader.dimension, found: m.cols)
            }
            let n = min(m.rows, limit ?? m.rows)
            queries = (0..<n).map { ArborCore.Query(vector: Array(m.row($0)), excluded: excluded) }
        } else if let history {
            let ids = try parseIDs(history, option: "--history")
            let policy: UnknownItemPolicy = rejectUnknown ? .reject : .ignore
            let encoded: EncodedQuery
            if trainedEncoder {
                encoded = try TwoTowerEncoder(index: reader).encode(history: ids, unknown: policy)
            } else {
                encoded = try meanOfLeafVectors(reader: reader, history: ids, policy: policy)
            }
            if encoded.unknownItems > 0 { note("arbor: ignored \(encoded.unknownItems) history ids not in the index") }
            if encoded.usedFallback { note("arbor: no known history item; using the encoder's fallback query") }
            queries = [ArborCore.Query(vector: encoded.vector, history: ids, excluded: excluded.union(ids))]
        }
        var retriever: any Retriever = exact ? flat! : tree
        if hnsw {
            guard HNSWPersistence.hasGraph(reader) else {
                throw CLIError("\(index) has no HNSW graph; build it with `arbor build --hnsw`")
            }
            retriever = HNSWRetriever(index: try HNSWPersistence.load(from: reader))
        }
        let parameters = SearchParameters(k: k, beamWidth: beam, efSearch: efSearch)
        for (q, query) in queries.enumerated() {
            let result = try retriever.search(query, parameters: parameters)
            if queries.count > 1 { print("# query \(q)") }
            print("rank\titem\tscore")
            for (rank, item) in result.items.enumerated() {
                print("\(rank + 1)\t\(item.item)\t\(item.score)")
            }
            note("# \(retriever.name): \(result.statistics.modelEvaluations) model evaluations")
        }
    }

    /// The mean-pooled user vector of `history` on an index without a trained encoder: only the
    /// history's own leaf rows are read (one lookup and one gathered row per id), not the whole
    /// leaf matrix. A history with no known item falls back to the mean of all item vectors, as
    /// ``MeanPoolingEncoder`` documents; only then is the leaf matrix read.
    func meanOfLeafVectors(reader: IndexReader, history ids: [ItemID], policy: UnknownItemPolicy) throws -> EncodedQuery {
        var seen = Set<ItemID>()
        let distinct = ids.filter { seen.insert($0).inserted }
        var known: [ItemID] = [], leaves: [Int32] = []
        for (id, leaf) in zip(distinct, try reader.leaves(of: distinct)) {
            if let leaf { known.append(id); leaves.append(Int32(leaf)) }
        }
        if known.isEmpty {
            let (all, allIDs) = try reader.loadLeafMatrix()
            return try MeanPoolingEncoder(itemVectors: all, ids: allIDs).encode(history: ids, unknown: policy)
        }
        var rows = Matrix(rows: 0, cols: reader.dimension)
        try reader.withView { view in view.gatherEmbeddings(level: reader.depth, nodes: leaves, into: &rows) }
        return try MeanPoolingEncoder(itemVectors: rows, ids: known).encode(history: ids, unknown: policy)
    }

    /// An index trained by TDM with a deep scorer ("dnn", "attention"): the stored model scores the
    /// tree (or, with --exact, every item), the query is the behaviour list.
    private func runDeepModel(reader: IndexReader, excluded: Set<ItemID>) throws {
        guard let history else {
            throw CLIError("\(index) serves the '\(reader.scorerKind)' model, which reads a behaviour list: give --history")
        }
        guard !hnsw else { throw CLIError("--hnsw serves inner-product indexes only") }
        let ids = try parseIDs(history, option: "--history")
        let policy: UnknownItemPolicy = rejectUnknown ? .reject : .ignore
        let model = try TDMServingModel.load(from: reader, unknownItems: policy)
        // Count (or reject) over the whole history, as the two-tower path does.
        let unknown = model.unknownItems(in: ids)
        if rejectUnknown, let first = unknown.first { throw ArborError.unknownItem(first) }
        if !unknown.isEmpty { note("arbor: ignored \(unknown.count) history ids not in the index") }
        if !ids.isEmpty, unknown.count == ids.count { note("arbor: no known history item; using the model's fallback query") }
        let query = try model.query(history: ids, excluded: excluded.union(ids), unknownItems: policy)
        let retriever: any Retriever
        switch model {
        case .innerProduct(let scorer, _): retriever = try deepRetriever(scorer, reader: reader)
        case .dnn(let scorer, _): retriever = try deepRetriever(scorer, reader: reader)
        case .attention(let scorer): retriever = try deepRetriever(scorer, reader: reader)
        }
        let result = try retriever.search(query, parameters: SearchParameters(k: k, beamWidth: beam))
        print("rank\titem\tscore")
        for (rank, item) in result.items.enumerated() { print("\(rank + 1)\t\(item.item)\t\(item.score)") }
        note("# \(retriever.name) (\(reader.scorerKind)): \(result.statistics.modelEvaluations) model evaluations")
    }

    private func deepRetriever<S: NodeScorer>(_ scorer: S, reader: IndexReader) throws -> any Retriever {
        if exact {
            let (leaves, ids) = try reader.loadLeafMatrix()
            return try BruteForceRetriever(scorer: scorer, items: leaves, ids: ids, leafLevel: reader.depth)
        }
        return try TreeRetriever(source: reader, scorer: scorer, itemCount: reader.itemCount, dimension: reader.dimension)
    }
}
