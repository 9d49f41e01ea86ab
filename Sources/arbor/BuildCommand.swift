import ArborCore
import ArborData
import ArborInference
import ArborModels
import ArborPipelines
import ArborTree
import ArgumentParser
import Foundation

/// `arbor build`: item vectors in, tree index file out (atomically).
struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build a tree index from item vectors (.npy + ids), a behaviour log, or a synthetic catalogue.",
        discussion: paragraphs("""
            From a behaviour log (--dataset), item vectors are an untrained co-occurrence sketch (a
            random projection of the item × user matrix) until a trained model provides them
            (`arbor train`); with --init-method category the tree starts from the item categories,
            as TDM's initial tree does.
            The index is written to a temporary file and moved over --out only when complete: an
            interrupted or failed build (Ctrl-C, kill, bad input) leaves an existing index intact.
            """))

    @Option(help: "Item vectors, a float32 .npy of shape N × d.")
    var vectors: String?

    @Option(help: "Item ids, one unsigned integer a line, in the rows' order (default: 0 ..< N).")
    var ids: String?

    @Option(help: "Item categories, one unsigned integer a line, in the rows' order (optional).")
    var categories: String?

    @OptionGroup var source: DatasetOptions

    @Option(help: "Build from a synthetic catalogue of this many items instead of --vectors.")
    var synthetic: Int?

    @Option(help: "Embedding width of the synthetic catalogue or the co-occurrence sketch.")
    var dim: Int = 64

    @Option(help: "Seed of the synthetic catalogue.")
    var seed: UInt64 = 1

    @Option(help: "The index file to write (replaced atomically).")
    var out: String

    @OptionGroup var tree: TreeOptions

    @OptionGroup var assigned: AssignmentOptions

    @OptionGroup var graph: HNSWOptions

    @Option(help: "Free leaf slots per leaf parent, 0...1024, for `arbor update` to add items without a rebuild (each costs one leaf row of storage; searches never score them).")
    var slack: Int = 4

    @Option(help: "Largest stored chunk in bytes (64 B ... 1 GiB, default 16 MiB). An update rewrites the chunks it touches: smaller chunks make update batches cheaper, larger ones make exact scans faster.")
    var chunkBytes: Int = IndexFormat.defaultChunkBytes

    func validate() throws {
        guard (0...1024).contains(slack) else { throw ValidationError("--slack must be in 0...1024, got \(slack)") }
        guard (64...(1 << 30)).contains(chunkBytes) else {
            throw ValidationError("--chunk-bytes must be in 64...1073741824, got \(chunkBytes)")
        }
        guard [vectors != nil, synthetic != nil, source.dataset != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --vectors, --dataset and --synthetic")
        }
        if let synthetic, synthetic < 1 { throw ValidationError("--synthetic must be at least 1") }
        try requireParentDirectory(of: out, option: "--out")
    }

    func run() throws {
        let cancellation = CancellationFlag()
        Interrupts.install(cancellation)
        let progress = ProgressPrinter()
        let (embeddings, itemIDs, itemCategories) = try loadItems(progress: progress, cancellation: cancellation)
        // The graph first: the tree builder then takes the matrix over (it becomes the leaf level),
        // so a build holds one N × d copy of the vectors, not two.
        let (hnswGraph, hnswSeconds) = try graph.buildGraph(vectors: embeddings, ids: itemIDs, progress: progress,
                                                         cancellation: cancellation)
        let start = ContinuousClock.now
        let layout = assigned.assignment != nil
            ? try assigned.layout(embeddings: embeddings, ids: itemIDs, categories: itemCategories, fanOut: tree.fanOut,
                                    innerNodes: tree.innerNodes)
            : try tree.build(embeddings: consume embeddings, ids: itemIDs, categories: itemCategories,
                             progress: progress, cancellation: cancellation)
        let buildSeconds = seconds(since: start)
        let writeStart = ContinuousClock.now
        try IndexFiles.writeVectorIndex(layout, graph: hnswGraph, to: out, leafSlack: slack, chunkBytes: chunkBytes,
                                        progress: progress, cancellation: cancellation)
        let writeSeconds = seconds(since: writeStart)
        print("built \(out): \(layout.itemCount) items, d = \(layout.dimension), fan-out \(layout.fanOut), depth \(layout.depth), "
              + "\(layout.nodeCount) nodes")
        print(String(format: "tree %.2f s, write %.2f s, file %@", buildSeconds, writeSeconds, formatBytes(fileSize(out))))
        if let hnswSeconds {
            print(String(format: "hnsw graph (M = %d, efConstruction = %d, %@, %d threads) built in %.2f s", graph.hnswM,
                         graph.hnswEfConstruction, graph.hnswMetric.rawValue, graph.hnswThreads, hnswSeconds))
        }
    }

    private func loadItems(progress: ProgressPrinter, cancellation: CancellationFlag) throws -> (Matrix, [ItemID], [UInt32]) {
        if let synthetic {
            let options = SyntheticOptions.make(items: synthetic, dim: dim, seed: seed)
            let catalog = try options.catalog(progress: progress, cancellation: cancellation)
            return (catalog.embeddings, catalog.itemIDs, catalog.categories)
        }
        if source.dataset != nil {
            let dataset = try source.load(progress: progress)
            guard dataset.interactionCount > 0 else { throw ArborError.empty(what: "interactions in \(source.dataset!)") }
            let codes = dataset.denseCodes()
            let matrix = try CooccurrenceSketch.embed(users: codes.userCodes, items: codes.itemCodes,
                                                      itemCount: codes.items.count, dimension: dim, seed: seed)
            let itemIDs = codes.items.ids.map { ItemID($0) }
            let itemCategories = dataset.itemCategories.isEmpty ? [] : itemIDs.map { dataset.itemCategories[$0] ?? 0 }
            note("arbor: \(dataset.interactionCount) interactions, \(codes.users.count) users, \(itemIDs.count) items; co-occurrence sketch d = \(dim)")
            return (matrix, itemIDs, itemCategories)
        }
        let matrix = try NPY.readMatrix(at: vectors!)
        if let bad = matrix.firstRowWithOverflowingNorm() {
            throw CLIError("\(vectors!): row \(bad) is too large: its products overflow Float32 (squared norm above 2.1e37); scale the vectors down")
        }
        var itemIDs: [ItemID]
        if let ids {
            itemIDs = try IDList.read(at: ids)
            guard itemIDs.count == matrix.rows else {
                throw CLIError("\(ids) has \(itemIDs.count) ids but \(vectors!) has \(matrix.rows) rows")
            }
        } else {
            itemIDs = (0..<matrix.rows).map { ItemID(UInt64($0)) }
        }
        var itemCategories: [UInt32] = []
        if let categories {
            let raw = try IDList.read(at: categories)
            guard raw.count == matrix.rows else {
                throw CLIError("\(categories) has \(raw.count) lines but \(vectors!) has \(matrix.rows) rows")
            }
            itemCategories = try raw.enumerated().map { i, c in
                guard c.rawValue <= UInt64(UInt32.max) else {
                    throw CLIError("\(categories): entry \(i + 1): category \(c) does not fit in 32 bits")
                }
                return UInt32(c.rawValue)
            }
        }
        return (matrix, itemIDs, itemCategories)
    }
}

extension SyntheticOptions {
    static func make(items: Int, dim: Int, seed: UInt64, users: Int = 1) -> SyntheticOptions {
        var o = try! SyntheticOptions.parse([])
        o.items = items
        o.dim = dim
        o.seed = seed
        o.users = users
        return o
    }
}
