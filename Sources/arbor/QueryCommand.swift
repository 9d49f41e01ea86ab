import ArborCore
import ArborData
import ArborEngine
import ArgumentParser
import Foundation

/// `arbor query`: top-k items for a vector, a file of vectors, or a behaviour list.
struct Query: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Retrieve the top-k items from an index by beam search (or the exact scan).",
        discussion: paragraphs("""
            The index serves itself with the model it holds (its header names the node scorer and
            the query producer). Give the user as --vector "0.1,0.2,...", as --vectors queries.npy
            (one row a user), or as --history "id,id,..." (oldest first): the history is turned
            into the query by the index's producer (a trained two-tower encoder, TDM's behaviour
            mean pooling, the raw sequence for the attention scorer, or else the mean of the
            items' leaf vectors). Unknown ids are ignored and counted, or rejected with
            --reject-unknown; a history with no known id falls back to the producer's default query
            (two-tower: the training-frequency weighted mean of the item vectors; mean pooling: the
            mean of all item vectors; attention: the node term alone). An SDM index reads
            timestamps in seconds, --history "50@881250949,172@881251003" (all or none), to cut
            sessions; without them the whole history is one session. History items are never
            returned. Knobs larger than the index are clamped: the beam to the widest level,
            --ef-search to the item count, --k to the item count.
            """))

    @Option(help: "The index file.")
    var index: String

    @Option(help: "One user vector, comma-separated.")
    var vector: String?

    @Option(help: "A float32 .npy of user vectors, one a row.")
    var vectors: String?

    @Option(help: "A behaviour list of item ids, comma-separated, oldest first; optionally id@seconds for every item (SDM cuts sessions by time).")
    var history: String?

    @Option(help: "With --vectors: answer only the first N rows.")
    var limit: Int?

    @Option(help: "Items to return.")
    var k: Int = 10

    @Option(help: "Beam width (nodes kept per level); raised to k when smaller.")
    var beam: Int = 100

    @Option(help: "A multi-interest (MIND) index through the tree: 'separate' keeps a beam per interest and merges; 'shared' runs one beam scored by the best interest (about one search's cost; a wider beam matches the separate beams' recall).")
    var interestBeams: InterestBeams = .separate

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
        guard efSearch >= 1 else { throw ValidationError("--ef-search must be at least 1") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        let engine = try Arbor.open(index)
        let excluded = try exclude.map { Set(try parseIDs($0, option: "--exclude")) } ?? []
        let choice: RetrieverChoice = exact ? .exact : hnsw ? .hnsw(efSearch: efSearch) : .tree(beam: beam, interests: interestBeams)
        if let history {
            let (ids, timestamps) = try parseTimedIDs(history, option: "--history")
            let result = try engine.search(history: ids, timestamps: timestamps, k: k, using: choice, excluding: excluded,
                                           unknownItems: rejectUnknown ? UnknownItemPolicy.reject : .ignore)
            if !result.unknownHistoryItems.isEmpty {
                note("arbor: ignored \(result.unknownHistoryItems.count) history ids not in the index")
            }
            if result.usedFallbackQuery { note("arbor: no known history item; using the model's fallback query") }
            printResult(result.items, evaluations: result.statistics.modelEvaluations, choice: choice, engine: engine)
            return
        }
        guard engine.model.scorer.readsVector else {
            throw CLIError("\(index) serves the '\(engine.nodeScorer.rawValue)' model, which reads a behaviour list: give --history")
        }
        let rows: [[Float]]
        if let vector {
            rows = [try parseVector(vector, option: "--vector")]
        } else {
            let m = try NPY.readMatrix(at: vectors!)
            guard m.cols == engine.dimension else {
                throw ArborError.dimensionMismatch(field: "\(vectors!) columns", expected: engine.dimension, found: m.cols)
            }
            rows = (0..<min(m.rows, limit ?? m.rows)).map { Array(m.row($0)) }
        }
        let results = try engine.search(vectors: rows, k: k, using: choice, excluding: excluded)
        for (q, result) in results.enumerated() {
            if results.count > 1 { print("# query \(q)") }
            printResult(result.items, evaluations: result.statistics.modelEvaluations, choice: choice, engine: engine)
        }
    }

    private func printResult(_ items: [ScoredItem], evaluations: Int, choice: RetrieverChoice, engine: Engine) {
        print("rank\titem\tscore")
        for (rank, item) in items.enumerated() { print("\(rank + 1)\t\(item.item)\t\(item.score)") }
        note("# \(choice) (\(engine.nodeScorer.rawValue)): \(evaluations) model evaluations")
    }
}
