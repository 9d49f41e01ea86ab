import ArborCore
import ArborData
import ArborEval
import ArborMath
import ArborModels
import ArborTree
import ArgumentParser
import Foundation

/// `arbor demo`: the main job end to end on the embedded default (a generated catalogue).
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a catalogue and users, build the tree index, retrieve for held-out users, print recall and speed.",
        discussion: """
            Steps: (1) generate items with planted hierarchical interests and users whose behaviour
            follows 1-4 interests; (2) hold out 10% of the users (TDM protocol: first half of the
            history in, second half to find); (3) build the tree by balanced k-means and write the
            index file; (4) reopen it (memory map, header only) and retrieve for each held-out user,
            encoded by mean pooling of the history; (5) print recall against the exact scan and
            against the users' held-out behaviour, with latency and QPS beside the exact scan.
            """)

    @OptionGroup var data: SyntheticOptions

    @OptionGroup var tree: TreeOptions

    @Option(help: "Items per query.")
    var k: Int = 50

    @Option(help: "Beam widths to sweep, comma-separated.")
    var beams: String = "50,100,200,400"

    @Option(help: "Where to write the index (default: a temporary file, removed at the end).")
    var index: String?

    @Option(help: "Folder for the reports.")
    var out: String = "demo-out"

    func run() throws {
        let cancellation = CancellationFlag()
        Interrupts.install(cancellation)
        let progress = ProgressPrinter()
        let (beamList, beamNote) = effectiveBeams(try parseIntList(beams, option: "--beams"), k: k)
        if let beamNote { note("arbor: " + beamNote) }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let total = ContinuousClock.now
        print("[1/5] generating \(data.items) items (d = \(data.dim)) and \(data.users) users, seed \(data.seed)")
        let catalog = try data.catalog(progress: progress, cancellation: cancellation)
        let users = try data.users(catalog: catalog, progress: progress, cancellation: cancellation)
        print("[2/5] holding out users (TDM protocol)")
        let split = try UserHoldOutSplit.make(from: users.interactionLog(catalog: catalog), seed: data.seed)
        let heldOut = split.test.filter { !$0.history.isEmpty && !$0.truth.isEmpty }
        print("      \(split.train.count) training events, \(heldOut.count) test users")
        print("[3/5] building the tree (fan-out \(tree.fanOut), \(tree.initMethod.rawValue), \(tree.innerNodes.rawValue) inner nodes)")
        var start = ContinuousClock.now
        let layout = try tree.build(embeddings: catalog.embeddings, ids: catalog.itemIDs, categories: catalog.categories,
                                    progress: progress, cancellation: cancellation)
        let buildSeconds = seconds(since: start)
        let path = index ?? FileManager.default.temporaryDirectory.appendingPathComponent("arbor-demo-\(getpid()).arbor").path
        defer {
            if index == nil {
                try? FileManager.default.removeItem(atPath: path)
                try? FileManager.default.removeItem(atPath: path + "-lock")
            }
        }
        start = ContinuousClock.now
        try IndexWriter().write(layout: layout, to: path, progress: progress, cancellation: cancellation)
        print(String(format: "      depth %d, %d nodes, built in %.2f s, written in %.2f s (%@)", layout.depth, layout.nodeCount,
                     buildSeconds, seconds(since: start), formatBytes(fileSize(path))))
        print("[4/5] reopening the index and encoding the held-out users")
        start = ContinuousClock.now
        let reader = try IndexReader(path: path)
        print(String(format: "      opened in %.2f ms", seconds(since: start) * 1000))
        let encoder = try MeanPoolingEncoder(itemVectors: catalog.embeddings, ids: catalog.itemIDs)
        let queries = try heldOut.map { user in
            ArborCore.Query(vector: try encoder.encode(history: user.history).vector, history: user.history,
                            excluded: Set(user.history))
        }
        print("[5/5] retrieving top-\(k) for \(queries.count) users: tree at beams \(beams) beside the exact scan")
        let bench = VectorBenchmark(reader: reader, queries: queries, k: k, beams: beamList, threads: [1],
                                    relevant: heldOut.map { Set($0.truth) }, seen: heldOut.map { Set($0.history) },
                                    extraK: k > 10 ? [10] : [])
        let (rows, _) = try bench.run(progress: progress, cancellation: cancellation)
        let report = BenchmarkReport(
            metadata: RunMetadata(machine: machineInfo(),
                                  dataset: "synthetic \(data.items) items, \(heldOut.count) held-out users (first half -> second half)",
                                  notes: ["encoder: mean pooling of the history's item vectors (untrained)"]),
            rows: rows)
        print("")
        print(report.markdownTable())
        for line in summarize(rows: rows, k: k) { print(line) }
        if let flat = rows.first(where: { $0.retriever == "flat" && $0.k == k }),
           let best = rows.filter({ $0.retriever == "tree" && $0.k == k }).last {
            print(String(format: "held-out behaviour recall@%d: exact scan %.4f, tree %@ %.4f", k, flat.metrics.recall ?? 0,
                         best.parameters, best.metrics.recall ?? 0))
        }
        let paths = try writeReport(report, k: k, to: out, baseName: "demo", title: "Arbor demo")
        print(String(format: "done in %.1f s; reports: %@", seconds(since: total), paths.joined(separator: ", ")))
    }
}
