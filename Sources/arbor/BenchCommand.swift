import ArborCore
import ArborData
import ArborEval
import ArborMath
import ArborEngine
import ArborInference
import ArborModels
import ArborPipelines
import ArborRetrieval
import ArborTree
import ArgumentParser
import Foundation

/// `arbor bench`: tree against the exact scan on one query set, side by side.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark beam search against the exact flat scan: recall@k, latency, QPS, evaluations.",
        discussion: paragraphs("""
            Either an existing index with a query file (--index, --queries), or --synthetic N, which
            generates N items and users, builds the index (into --index-out, default a temporary
            file), then benchmarks it. Writes bench.md, bench.json, bench.csv and SVG plots into --out.
            Example (the 1M figure of the README):
              arbor bench --synthetic 1000000 --fan-out 16 --beams 25,50,100,200,400 --out bench-1m
            """))

    @Option(help: "An index to benchmark.")
    var index: String?

    @Option(help: "Query vectors (.npy, one a row) for --index.")
    var queries: String?

    @Option(help: "Generate, build and benchmark a synthetic catalogue of this many items.")
    var synthetic: Int?

    @Option(help: "With --synthetic: embedding width.")
    var dim: Int = 64

    @Option(help: "With --synthetic: number of query users.")
    var users: Int = 1000

    @Option(help: "With --synthetic: seed.")
    var seed: UInt64 = 1

    @Option(help: "With --synthetic: where to keep the built index (default: a temporary file, removed).")
    var indexOut: String?

    @OptionGroup var tree: TreeOptions

    @OptionGroup var graph: HNSWOptions

    @Option(help: "HNSW efSearch values to sweep, comma-separated (when the index has a graph).")
    var efs: String = "100,200,400,800"

    @Option(help: "Use only the first N queries.")
    var limit: Int?

    @Option(help: "Items per query (recall@k is measured against the exact top-k).")
    var k: Int = 100

    @Option(help: "Beam widths to sweep, comma-separated.")
    var beams: String = "50,100,200,400,800,1600"

    @Option(help: "Thread counts to time, comma-separated (BLAS stays single-threaded).")
    var threads: String = "1"

    @Option(help: "Batch size of the extra flat batch-QPS figure (0 to skip).")
    var flatBatch: Int = 256

    @Option(help: "Also time users with this many interest vectors (MIND), searched together through the tree and merged, against one vector per user, at each beam (0 to skip; 1...64).")
    var interests: Int = 0

    @Option(help: "With --interests: how the tree runs a user's interests, comma-separated: 'separate' (a beam per interest, level by level together, then merged) and/or 'shared' (one beam scored by the best interest). Each row reports merged recall@k against the exact top k of the best score over the interests.")
    var interestBeams: String = "separate"

    @Option(help: "Folder for the reports.")
    var out: String = "bench-out"

    @Option(help: "With --synthetic: the scorer beam search runs, inner-product (against the exact scan) or dnn / attention (randomly initialised, against brute force with the same model: the cost of a deep model at this scale).")
    var scorer: NodeScorerKind = .innerProduct

    @Option(help: "Seed of the random deep scorer's weights.")
    var scorerSeed: UInt64 = 1

    @Option(help: "With --scorer dnn|attention: the one-thread SGEMM GFLOP/s of this machine (median of ../shared/peers/gemm_bench.py), to report the model's share of it.")
    var gemmPeak: Double?


    func validate() throws {
        if let gemmPeak, !(gemmPeak > 0) { throw ValidationError("--gemm-peak must be a positive GFLOP/s figure") }
        guard (index == nil) != (synthetic == nil) else { throw ValidationError("give exactly one of --index and --synthetic") }
        if index != nil, queries == nil { throw ValidationError("--index needs --queries") }
        if index != nil, scorer != .innerProduct { throw ValidationError("--scorer \(scorer.rawValue) needs --synthetic (its users' histories)") }
        guard k >= 1 else { throw ValidationError("--k must be at least 1") }
        guard (0 ... 64).contains(interests) else { throw ValidationError("--interests must be in 0...64, got \(interests)") }
        if interests > 0, scorer != .innerProduct { throw ValidationError("--interests applies to the inner-product scorer") }
        _ = try interestBeamModes()
    }

    /// `--interest-beams`, parsed: at least one mode, each named once.
    private func interestBeamModes() throws -> [InterestBeams] {
        var modes: [InterestBeams] = []
        for name in interestBeams.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = name.trimmingCharacters(in: .whitespaces)
            guard let mode = InterestBeams(rawValue: trimmed) else {
                throw ValidationError("--interest-beams: '\(trimmed)' is not one of separate, shared")
            }
            guard !modes.contains(mode) else { throw ValidationError("--interest-beams names '\(trimmed)' twice") }
            modes.append(mode)
        }
        return modes
    }

    func run() throws {
        let cancellation = CancellationFlag()
        Interrupts.install(cancellation)
        let progress = ProgressPrinter()
        let beamList = try beamSweep(beams, k: k)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let threadList = try parseIntList(threads, option: "--threads")
        var notes = ["openblas threads 1", "k = \(k)"]
        var dataset = ""
        var indexPath = index ?? ""
        var removeIndex = false
        var queryVectors: Matrix
        var syntheticData: (catalog: SyntheticCatalog, users: SyntheticUsers)? = nil
        if let synthetic {
            let options = SyntheticOptions.make(items: synthetic, dim: dim, seed: seed, users: users)
            let catalog = try options.catalog(progress: progress, cancellation: cancellation)
            let userSet = try options.users(catalog: catalog, progress: progress, cancellation: cancellation)
            queryVectors = userSet.queries
            syntheticData = (catalog, userSet)
            let start = ContinuousClock.now
            let layout = try tree.build(embeddings: catalog.embeddings, ids: catalog.itemIDs, categories: catalog.categories,
                                        progress: progress, cancellation: cancellation)
            let buildSeconds = seconds(since: start)
            if let indexOut { indexPath = indexOut } else {
                indexPath = FileManager.default.temporaryDirectory.appendingPathComponent("arbor-bench-\(getpid()).arbor").path
                removeIndex = true
            }
            let (hnswGraph, hnswSeconds) = try graph.buildGraph(vectors: catalog.embeddings, ids: catalog.itemIDs,
                                                             progress: progress, cancellation: cancellation)
            if let hnswSeconds {
                notes.append(String(format: "hnsw build %.2f s (M = %d, efConstruction = %d, %@, %d threads)", hnswSeconds,
                                    graph.hnswM, graph.hnswEfConstruction, graph.hnswMetric.rawValue, graph.hnswThreads))
            }
            let writeStart = ContinuousClock.now
            try IndexFiles.writeVectorIndex(layout, graph: hnswGraph, to: indexPath, progress: progress, cancellation: cancellation)
            notes.append(String(format: "tree build %.2f s (fan-out %d, %@), index write %.2f s, index file %@",
                                buildSeconds, tree.fanOut, tree.innerNodes.rawValue, seconds(since: writeStart),
                                formatBytes(fileSize(indexPath))))
            dataset = "synthetic: \(synthetic) items, d = \(dim), \(catalog.categoryCount) categories, \(users) user queries, seed \(seed)"
        } else {
            queryVectors = try NPY.readMatrix(at: queries!)
            dataset = "\(index!) with queries \(queries!)"
        }
        defer {
            if removeIndex {
                try? FileManager.default.removeItem(atPath: indexPath)
                try? FileManager.default.removeItem(atPath: indexPath + "-lock")
            }
        }
        let openStart = ContinuousClock.now
        let reader = try IndexReader(path: indexPath)
        notes.append(String(format: "index open %.2f ms (header only)", seconds(since: openStart) * 1000))
        guard queryVectors.cols == reader.dimension else {
            throw ArborError.dimensionMismatch(field: "query columns", expected: reader.dimension, found: queryVectors.cols)
        }
        let n = min(queryVectors.rows, limit ?? queryVectors.rows)
        if scorer != .innerProduct, let syntheticData {
            let queries = (0..<n).map { u in
                ArborCore.Query(vector: Array(queryVectors.row(u)),
                                history: syntheticData.users.history(of: u).suffix(50).map { ItemID(UInt64($0)) })
            }
            notes.append("scorer \(scorer.rawValue), random weights (seed \(scorerSeed)); reference: brute force with the same model")
            func measure<S: NodeScorer>(_ model: S) throws -> [BenchmarkRow] {
                let measured = try deepModelRows(model, reader: reader, queries: queries, k: k, beams: beamList, threads: threadList,
                                                 progress: progress, cancellation: cancellation)
                notes += try modelThroughputNotes(model, queries: queries, rows: measured.rows,
                                                  candidateCounts: beamList.map { $0 * reader.fanOut },
                                                  nodes: measured.leaves, peak: gemmPeak)
                return measured.rows
            }
            let rows: [BenchmarkRow]
            switch scorer {
            case .dnn:
                rows = try measure(DNNScorer.random(dimension: reader.dimension, seed: scorerSeed))
            default:
                rows = try measure(AttentionScorer.random(dimension: reader.dimension, behaviourEmbeddings: syntheticData.catalog.embeddings,
                                                          behaviourIDs: syntheticData.catalog.itemIDs, seed: scorerSeed))
            }
            let report = BenchmarkReport(metadata: RunMetadata(machine: machineInfo(), dataset: dataset, notes: notes), rows: rows)
            let title = "Arbor tree vs brute force, \(scorer.rawValue) scorer"
            let paths = try writeReport(report, k: k, to: out, baseName: "bench", title: title)
            print(report.markdown(title: title))
            print("wrote " + paths.joined(separator: ", "))
            return
        }
        let queryList = (0..<n).map { ArborCore.Query(vector: Array(queryVectors.row($0))) }
        let engine = try Engine(reader: reader)
        var bench = VectorBenchmark(engine: engine, queries: queryList, k: k, beams: beamList, threads: threadList)
        if engine.hasGraph {
            let loadStart = ContinuousClock.now
            guard let graph = (try engine.retriever(.hnsw())) as? HNSWRetriever else { throw CLIError("\(indexPath): no HNSW graph") }
            bench.efSearch = try parseIntList(efs, option: "--efs")
            notes.append(String(format: "hnsw graph loaded from the index in %.2f s (%@, M = %d, %@ in memory)",
                                seconds(since: loadStart), graph.index.configuration.metric.rawValue,
                                graph.index.configuration.m, formatBytes(Int64(graph.index.graphBytes))))
        }
        let (rows, flat) = try bench.run(progress: progress, cancellation: cancellation)
        if flatBatch > 0 {
            let single = try flatBatchQPS(flat, queries: queryList, k: k, batch: 1)
            let batched = try flatBatchQPS(flat, queries: queryList, k: k, batch: flatBatch)
            notes.append(String(format: "flat exact scan, 1 thread: %.1f QPS one query at a time, %.1f QPS in batches of %d (%.2f ms/query)",
                                single, batched, flatBatch, 1000 / batched))
        }
        if interests > 0 {
            let costs = try InterestCost.measure(retriever: try engine.retriever(.tree()), exact: try engine.retriever(.exact),
                                                 queries: queryList, interests: interests, k: k, beams: beamList,
                                                 interestBeams: try interestBeamModes(), cancellation: cancellation)
            for row in costs {
                notes.append(String(
                    format: "%d interests through the tree, %@ beam %d, 1 thread: p50 %.2f ms / p99 %.2f ms, %.0f users/s, %.0f evaluations, merged recall@%d %.4f, CPU %.2f ms; one vector: p50 %.2f ms / p99 %.2f ms, %.0f users/s, %.0f evaluations, recall %.4f, CPU %.2f ms; p50 ratio %.2fx, CPU ratio %.2fx",
                    row.interests, row.interestBeams == .shared ? "one shared" : "per-interest", row.beam, row.multi.p50Ms,
                    row.multi.p99Ms, row.multi.qps, row.multiEvaluations, k, row.multiRecall ?? 0, row.multiCPUMs,
                    row.single.p50Ms, row.single.p99Ms, row.single.qps, row.singleEvaluations, row.singleRecall ?? 0,
                    row.singleCPUMs, row.latencyRatio, row.cpuRatio))
            }
        }
        let report = BenchmarkReport(metadata: RunMetadata(machine: machineInfo(), dataset: dataset, notes: notes), rows: rows)
        let paths = try writeReport(report, k: k, to: out, baseName: "bench", title: "Arbor tree vs exact scan")
        print(report.markdown(title: "Arbor tree vs exact scan"))
        for line in summarize(rows: rows, k: k) { print(line) }
        print("wrote " + paths.joined(separator: ", "))
    }
}
