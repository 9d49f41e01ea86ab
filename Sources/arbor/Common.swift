import ArborCore
import ArborData
import ArborMath
import ArborRetrieval
import ArborTree
import ArgumentParser
import Foundation

/// Options shared by the commands that build a tree.
struct TreeOptions: ParsableArguments {
    @Option(help: "Children per inner node, 2...64. Default 16: on ML-100K the 16-ary tree matches the exact scan's HR@50 from beam 100, the binary one does not (docs/RESULTS.md); TDM's trained trees use 2.")
    var fanOut: Int = 16

    @Option(help: "Tree initialisation: 'kmeans' (recursive balanced k-means on the vectors) or 'category' (TDM's initial tree: items in category order).")
    var initMethod: TreeInit = .kmeans

    @Option(help: "Inner node embedding: 'normalized-mean' or 'mean' of the items below the node.")
    var innerNodes: InnerNodeEmbedding = .normalizedMean

    @Option(help: "Lloyd iterations per k-means split.")
    var iterations: Int = 10

    @Option(help: "Seed of the tree build.")
    var treeSeed: UInt64 = 0

    func validate() throws {
        guard (2...64).contains(fanOut) else { throw ValidationError("--fan-out must be in 2...64, got \(fanOut)") }
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1") }
    }

    var buildOptions: TreeBuildOptions {
        TreeBuildOptions(fanOut: fanOut, iterations: iterations, seed: treeSeed, innerNodes: innerNodes)
    }

    /// Builds the tree with progress and cancellation.
    func build(embeddings: consuming Matrix, ids: [ItemID], categories: [UInt32], progress: ProgressPrinter,
               cancellation: CancellationFlag) throws -> TreeLayout {
        // Node splits run on all cores, each with one BLAS thread (the builder's BLAS.concurrentPerform).
        switch initMethod {
        case .kmeans:
            return try TreeBuilder.balancedKMeans(embeddings: consume embeddings, items: ids, categories: categories,
                                                  options: buildOptions, progress: progress, cancellation: cancellation)
        case .category:
            guard !categories.isEmpty else {
                throw CLIError("--init-method category needs item categories (--categories, or a data set with categories)")
            }
            return try TreeBuilder.categoryOrder(embeddings: embeddings, items: ids, categories: categories,
                                                 options: buildOptions, progress: progress, cancellation: cancellation)
        }
    }
}

enum TreeInit: String, ExpressibleByArgument, CaseIterable {
    case kmeans, category
}

extension InnerNodeEmbedding: ExpressibleByArgument {}

/// Options of the synthetic catalogue (the embedded default data set).
struct SyntheticOptions: ParsableArguments {
    @Option(help: "Number of synthetic items.")
    var items: Int = 100_000

    @Option(help: "Embedding width of the synthetic items.")
    var dim: Int = 64

    @Option(help: "Number of synthetic users (each gives one query and a behaviour history).")
    var users: Int = 2_000

    @Option(help: "Seed of the synthetic data.")
    var seed: UInt64 = 1

    func validate() throws {
        guard items >= 1 else { throw ValidationError("--items must be at least 1") }
        guard dim >= 1 else { throw ValidationError("--dim must be at least 1") }
        guard users >= 1 else { throw ValidationError("--users must be at least 1") }
    }

    func catalog(progress: ProgressPrinter, cancellation: CancellationFlag) throws -> SyntheticCatalog {
        var config = SyntheticCatalogConfig(itemCount: items, dimension: dim, seed: seed)
        config.itemCount = items
        return try SyntheticCatalog.generate(config, progress: progress, cancellation: cancellation)
    }

    func users(catalog: SyntheticCatalog, progress: ProgressPrinter, cancellation: CancellationFlag) throws -> SyntheticUsers {
        var config = SyntheticUsersConfig(userCount: users)
        config.seed = seed &+ 1
        return try SyntheticUsers.generate(catalog: catalog, config: config, progress: progress, cancellation: cancellation)
    }
}

/// An error in what the user gave at run time (a file's content, a list's value): printed as
/// `Error: <message>` with exit status 1, without the usage text of a command-line mistake.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Checks that the folder that will hold `path` exists, before any long work starts.
func requireParentDirectory(of path: String, option: String) throws {
    let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw ValidationError("\(option) \(path): the folder \(parent) does not exist")
    }
}

/// Parses "1,2,3" into item ids.
func parseIDs(_ text: String, option: String) throws -> [ItemID] {
    try text.split(separator: ",", omittingEmptySubsequences: false).enumerated().map { i, token in
        let t = token.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty else { throw CLIError("\(option): value \(i) is empty") }
        guard let v = UInt64(t) else { throw CLIError("\(option): '\(t)' is not an item id") }
        return ItemID(v)
    }
}

/// Parses a history "50,172" or, with timestamps, "50@881250949,172@881251003" (seconds): every
/// entry has a timestamp or none does. Returns the ids and the timestamps (`nil` without).
func parseTimedIDs(_ text: String, option: String) throws -> (ids: [ItemID], timestamps: [Double]?) {
    var ids: [ItemID] = [], times: [Double] = []
    var timed: Bool? = nil
    for (i, token) in text.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
        let t = token.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty else { throw CLIError("\(option): value \(i) is empty") }
        let parts = t.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { throw CLIError("\(option): '\(t)' has more than one '@'") }
        if let timed, timed != (parts.count == 2) {
            throw CLIError("\(option): give a timestamp for every item (id@seconds) or for none; '\(t)' differs")
        }
        timed = parts.count == 2
        guard let v = UInt64(parts[0]) else { throw CLIError("\(option): '\(parts[0])' is not an item id") }
        ids.append(ItemID(v))
        if parts.count == 2 {
            guard let s = Double(parts[1]), s.isFinite else { throw CLIError("\(option): '\(parts[1])' is not a timestamp in seconds") }
            times.append(s)
        }
    }
    return (ids, timed == true ? times : nil)
}

/// Parses "0.1,-2,3e-1" into a vector.
func parseVector(_ text: String, option: String) throws -> [Float] {
    try text.split(separator: ",", omittingEmptySubsequences: false).enumerated().map { i, token in
        let t = token.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty else { throw CLIError("\(option): value \(i) is empty") }
        guard let v = Float(t) else { throw CLIError("\(option): value \(i) '\(t)' is not a number") }
        return v
    }
}

/// Parses "50,100,200" into positive integers.
func parseIntList(_ text: String, option: String) throws -> [Int] {
    try text.split(separator: ",", omittingEmptySubsequences: false).map { token in
        guard let v = Int(token.trimmingCharacters(in: .whitespaces)), v >= 1 else {
            throw CLIError("\(option): '\(token)' is not a positive integer")
        }
        return v
    }
}

/// Size of a file in bytes (0 when missing).
func fileSize(_ path: String) -> Int64 {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
}

func formatBytes(_ n: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB"]
    var v = Double(n), u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return String(format: u == 0 ? "%.0f %@" : "%.1f %@", v, units[u])
}

/// Seconds since `start`.
func seconds(since start: ContinuousClock.Instant) -> Double {
    let d = start.duration(to: .now)
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

/// Writes a line to standard error.
func note(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

extension HNSWMetric: ExpressibleByArgument {}
extension InterestBeams: ExpressibleByArgument {}

/// Options of the HNSW graph built beside the tree (the flat ANN baseline).
struct HNSWOptions: ParsableArguments {
    @Flag(help: "Also build an HNSW graph over the item vectors and store it in the index.")
    var hnsw = false

    @Option(help: "HNSW: neighbours per node per layer (M; 2M on layer 0).")
    var hnswM: Int = 16

    @Option(help: "HNSW: candidate list size while building (efConstruction).")
    var hnswEfConstruction: Int = 200

    @Option(help: "HNSW metric: innerProduct (raw IP graph, as hnswlib's 'ip'), normAugmentedInnerProduct (MIPS reduced to nearest neighbour by one extra coordinate), or cosine.")
    var hnswMetric: HNSWMetric = .innerProduct

    @Option(help: "HNSW: build threads.")
    var hnswThreads: Int = 2

    func validate() throws {
        guard hnswM >= 2 else { throw ValidationError("--hnsw-m must be at least 2") }
        guard hnswEfConstruction >= 1 else { throw ValidationError("--hnsw-ef-construction must be at least 1") }
        guard hnswThreads >= 1 else { throw ValidationError("--hnsw-threads must be at least 1") }
    }

    var configuration: HNSWConfiguration {
        HNSWConfiguration(metric: hnswMetric, m: hnswM, efConstruction: hnswEfConstruction, buildThreads: hnswThreads)
    }

    /// Builds the graph over the leaf vectors when `--hnsw` is given; returns it and the build time.
    func buildGraph(vectors: Matrix, ids: [ItemID], progress: ProgressPrinter,
                    cancellation: CancellationFlag) throws -> (graph: HNSWIndex?, seconds: Double?) {
        guard hnsw else { return (nil, nil) }
        let start = ContinuousClock.now
        let index = try HNSWIndex.build(vectors, ids: ids, configuration: configuration, progress: progress,
                                        cancellation: cancellation)
        return (index, seconds(since: start))
    }
}

/// Help text with its paragraphs reflowed: within a paragraph (blocks separated by a blank line)
/// plain lines are joined with spaces so ArgumentParser can wrap them to the terminal, while lines
/// indented by two or more spaces (examples, lists) stay as they are.
func paragraphs(_ text: String) -> String {
    var out: [String] = []
    var current = ""
    func flush() {
        if !current.isEmpty { out.append(current); current = "" }
    }
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.trimmingCharacters(in: .whitespaces).isEmpty {
            flush()
            out.append("")
        } else if line.hasPrefix("  ") {
            flush()
            out.append(String(line))
        } else {
            current += current.isEmpty ? String(line) : " " + line
        }
    }
    flush()
    return out.joined(separator: "\n")
}
