import ArborCore
import ArborEval
import ArborMath
import ArborEngine
import ArborInference
import ArborModels
import ArborPipelines
import ArborRetrieval
import ArborTree
import Foundation

/// Machine facts printed with every benchmark (the figures are ratios; this says where they ran).
func machineInfo() -> [String: String] {
    var info: [String: String] = [
        "cores": String(ProcessInfo.processInfo.activeProcessorCount),
        "openblas core": BLAS.coreSelection.description,
        "memory GiB": String(ProcessInfo.processInfo.physicalMemory >> 30),
    ]
    if let cpu = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        .split(separator: "\n").first(where: { $0.hasPrefix("model name") })?
        .split(separator: ":").last?.trimmingCharacters(in: .whitespaces) {
        info["cpu"] = cpu
    }
    return info
}

/// One benchmark of an index against the exact scan of its own leaves: the tree at each beam width
/// beside the flat scan, recall@k against the exact top-k, latency, QPS and model evaluations.
struct VectorBenchmark {
    var engine: Engine
    var queries: [ArborCore.Query]
    var k: Int
    var beams: [Int]
    var threads: [Int]
    /// Held-out items per query (quality metrics) and history (novelty), when known.
    var relevant: [Set<ItemID>]? = nil
    var seen: [Set<ItemID>]? = nil
    var extraK: [Int] = []
    /// `efSearch` values to sweep the index's HNSW graph over (empty: the graph is not listed).
    var efSearch: [Int] = []

    func run(progress: ProgressPrinter, cancellation: CancellationFlag) throws -> (rows: [BenchmarkRow], flat: any Retriever) {
        let tree = try engine.retriever(.tree())
        let flat = try engine.retriever(.exact)
        BLAS.threads = 1
        let reference = try BenchmarkRunner.referenceLists(from: flat, queries: queries, k: k, progress: progress)
        let truth = GroundTruth(relevant: relevant, seen: seen, seenCategories: nil, reference: reference)
        var entries = [
            BenchmarkEntry(label: "tree", retriever: tree, sweep: beams.map { SweepPoint.beam($0) }),
            BenchmarkEntry(label: "flat", retriever: flat, sweep: [SweepPoint(label: "exact", parameters: .init(k: k))]),
        ]
        if !efSearch.isEmpty {
            entries.insert(BenchmarkEntry(label: "hnsw", retriever: try engine.retriever(.hnsw()),
                                          sweep: efSearch.map { SweepPoint.efSearch($0) }), at: 1)
        }
        let configuration = BenchmarkConfiguration(kValues: Array(Set([k] + extraK)).sorted(), threadCounts: threads,
                                                    warmUp: Array(queries.prefix(20)))
        let runner = BenchmarkRunner(configuration: configuration, progress: progress, cancellation: cancellation)
        return (try runner.run(entries: entries, queries: queries, truth: truth), flat)
    }
}

/// Queries per second of the flat scan answering `queries` in batches of `batch` (one GEMM scan a batch).
func flatBatchQPS(_ flat: any Retriever, queries: [ArborCore.Query], k: Int, batch: Int) throws -> Double {
    let start = ContinuousClock.now
    var i = 0
    while i < queries.count {
        let chunk = Array(queries[i ..< min(queries.count, i + batch)])
        _ = try flat.search(batch: chunk, parameters: .init(k: k))
        i += batch
    }
    return Double(queries.count) / seconds(since: start)
}

/// The beams at least `k` wide (a narrower beam is raised to `k`, so it would repeat the `k` row),
/// with a note when some were dropped.
func effectiveBeams(_ beams: [Int], k: Int) -> (beams: [Int], note: String?) {
    let kept = beams.filter { $0 >= k }
    let dropped = beams.filter { $0 < k }
    let result = kept.isEmpty ? [k] : kept
    return (result, dropped.isEmpty ? nil : "beams \(dropped.map(String.init).joined(separator: ",")) are narrower than k = \(k) and run as beam \(k); listed once")
}

/// The beam sweep of a `--beams` option: parsed, narrower beams raised to `k` (see
/// ``effectiveBeams(_:k:)``), and the note about the dropped ones printed to standard error.
func beamSweep(_ text: String, k: Int) throws -> [Int] {
    let (list, dropped) = effectiveBeams(try parseIntList(text, option: "--beams"), k: k)
    if let dropped { note("arbor: " + dropped) }
    return list
}

/// Writes the report files and the recall-against-QPS plot; returns the paths written.
/// The plots show `metric` (default: recall against the exact scan when measured, else recall).
func writeReport(_ report: BenchmarkReport, k: Int, to directory: String, baseName: String, title: String,
                 metric: Metric? = nil) throws -> [String] {
    let dir = URL(fileURLWithPath: directory)
    var paths = try report.write(to: dir, baseName: baseName, title: title).map(\.path)
    let svg = dir.appendingPathComponent("\(baseName)-recall-qps.svg")
    try report.recallPlot(k: k, metric: metric, x: .qps, title: "\(title): recall@\(k) against queries per second").write(to: svg)
    paths.append(svg.path)
    let svgLatency = dir.appendingPathComponent("\(baseName)-recall-latency.svg")
    try report.recallPlot(k: k, metric: metric, x: .p50, title: "\(title): recall@\(k) against p50 latency").write(to: svgLatency)
    paths.append(svgLatency.path)
    return paths
}

/// "tree beam=200 reaches recall 0.97 at 12.3x the flat scan's QPS" lines for the summary.
func summarize(rows: [BenchmarkRow], k: Int, target: Double = 0.95) -> [String] {
    var lines: [String] = []
    for t in Set(rows.map(\.threads)).sorted() {
        let atK = rows.filter { $0.k == k && $0.threads == t }
        guard let flat = atK.first(where: { $0.retriever == "flat" }) else { continue }
        let tree = atK.filter { $0.retriever == "tree" }
        defer {
            for row in atK where row.retriever == "hnsw" {
                lines.append(String(format: "%d thread(s): hnsw %@ recall@%d %.4f at %.1fx the flat QPS", t, row.parameters, k,
                                    row.metrics.recallVsExact ?? 0, row.latency.qps / flat.latency.qps))
            }
        }
        if let best = tree.first(where: { ($0.metrics.recallVsExact ?? 0) >= target }) {
            lines.append(String(format: "%d thread(s): tree %@ reaches recall@%d %.4f against the exact scan at %.1fx its QPS (%.0f vs %.0f QPS, %.0f vs %.0f model evaluations per query)",
                                t, best.parameters, k, best.metrics.recallVsExact ?? 0, best.latency.qps / flat.latency.qps,
                                best.latency.qps, flat.latency.qps, best.evaluationsPerQuery, flat.evaluationsPerQuery))
        } else if let last = tree.last {
            lines.append(String(format: "%d thread(s): no beam reached recall %.2f; widest %@ gives %.4f at %.1fx the flat QPS",
                                t, target, last.parameters, last.metrics.recallVsExact ?? 0, last.latency.qps / flat.latency.qps))
        }
    }
    return lines
}

/// A deep scorer in the tree beside the same scorer run over every item: recall of the beam against
/// brute force, model evaluations, latency and QPS (the cost of the model at this catalogue size).
/// Also returns the leaf matrix it loaded (`N × d`), for the scorer-alone measurement.
func deepModelRows<S: NodeScorer>(
    _ scorer: S, reader: IndexReader, queries: [ArborCore.Query], k: Int, beams: [Int], threads: [Int],
    progress: ProgressPrinter, cancellation: CancellationFlag
) throws -> (rows: [BenchmarkRow], leaves: Matrix) {
    BLAS.threads = 1
    let tree = try TreeRetriever(source: reader, scorer: scorer, itemCount: reader.itemCount, dimension: reader.dimension)
    let (leaves, ids) = try reader.loadLeafMatrix()
    let brute = try BruteForceRetriever(scorer: scorer, items: leaves, ids: ids, leafLevel: reader.depth)
    let reference = try BenchmarkRunner.referenceLists(from: brute, queries: queries, k: k, progress: progress)
    let entries = [
        BenchmarkEntry(label: "tree", retriever: tree, sweep: beams.map { SweepPoint.beam($0) }),
        BenchmarkEntry(label: "brute-force", retriever: brute, sweep: [SweepPoint(label: "all items", parameters: .init(k: k))]),
    ]
    let runner = BenchmarkRunner(configuration: BenchmarkConfiguration(kValues: [k], threadCounts: threads),
                                 progress: progress, cancellation: cancellation)
    return (try runner.run(entries: entries, queries: queries, truth: .exact(reference)), leaves)
}

/// The model's arithmetic throughput in each row: evaluations per query × the scorer's
/// operations per candidate (mean over `queries`) × queries per second — the whole query,
/// traversal and top-k included, so a lower bound on the scorer's own rate. With `peak` (the
/// SGEMM GFLOP/s per thread that `../shared/peers/gemm_bench.py` measures), also the share of
/// `threads × peak`. Empty when the scorer does not count its operations.
func modelThroughputNotes<S: NodeScorer>(_ scorer: S, queries: [ArborCore.Query], rows: [BenchmarkRow],
                                         candidateCounts: [Int], nodes: Matrix, peak: Double?) throws -> [String] {
    var total = 0.0
    for q in queries {
        guard let ops = try scorer.makeSession(for: q).operationsPerCandidate else { return [] }
        total += ops
    }
    let perCandidate = total / Double(max(1, queries.count))
    var notes = [String(format: "model arithmetic: %.0f FLOP per candidate (mean over the queries)", perCandidate)]
    notes += try scorerOnlyNotes(scorer, queries: queries, candidates: candidateCounts, nodes: nodes, peak: peak)
    for row in rows where row.latency.qps > 0 {
        let gflops = row.evaluationsPerQuery * perCandidate * row.latency.qps / 1e9
        var line = String(format: "%@ %@, %d thread(s): %.1f GFLOP/s over the whole query", row.retriever, row.parameters,
                          row.threads, gflops)
        if let peak { line += String(format: " = %.0f%% of the SGEMM peak (%.1f GFLOP/s × %d)", 100 * gflops / (peak * Double(row.threads)), peak, row.threads) }
        notes.append(line)
    }
    return notes
}

/// The scorer alone, without traversal: one `score` call on `m` candidate rows (taken from
/// `nodes`, the first `m` leaves) for each `m` of `candidates` (a level's worth: beam × fan-out),
/// in sessions of the first few queries; best of 5 calls after a warm-up, median over queries.
/// Reports GFLOP/s and, with `peak`, the share of one thread's SGEMM peak.
func scorerOnlyNotes<S: NodeScorer>(_ scorer: S, queries: [ArborCore.Query], candidates: [Int], nodes: Matrix,
                                    peak: Double?) throws -> [String] {
    var notes: [String] = []
    for m in candidates where m > 0 && m <= nodes.rows {
        var block = Matrix(rows: 0, cols: nodes.cols)
        block.copyRows(from: nodes, rows: 0..<m)
        var rates: [Double] = []
        var scores: [Float] = []
        for q in queries.prefix(5) {
            var session = try scorer.makeSession(for: q)
            guard let ops = session.operationsPerCandidate else { return [] }
            session.score(nodes: block, level: 1, into: &scores)
            var best = Double.infinity
            for _ in 0..<5 {
                let start = ContinuousClock.now
                session.score(nodes: block, level: 1, into: &scores)
                best = min(best, seconds(since: start))
            }
            rates.append(Double(m) * ops / best / 1e9)
        }
        rates.sort()
        let median = rates[rates.count / 2]
        var line = String(format: "scorer alone, one call on %d candidates, 1 thread: %.1f GFLOP/s", m, median)
        if let peak { line += String(format: " = %.0f%% of the SGEMM peak (%.1f GFLOP/s)", 100 * median / peak, peak) }
        notes.append(line)
    }
    return notes
}
