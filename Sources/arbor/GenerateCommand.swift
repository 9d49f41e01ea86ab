import ArborCore
import ArborData
import ArgumentParser
import Foundation

/// `arbor generate`: the synthetic catalogue with planted hierarchical interests, written as files
/// that `arbor build`, `arbor bench` and the Python peers read.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a synthetic catalogue, users and queries (deterministic for a seed).",
        discussion: paragraphs("""
            Writes into --out: items.npy (N × d float32), items.ids (one id a line), items.categories,
            queries.npy (one user vector a row), interactions.csv (user,item,timestamp,category).
            Items = super-category centre + category offset + noise; users have 1-4 interests.
            """))

    @OptionGroup var data: SyntheticOptions

    @Option(help: "Output folder (created if missing).")
    var out: String

    func run() throws {
        let cancellation = CancellationFlag()
        Interrupts.install(cancellation)
        let progress = ProgressPrinter()
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let start = ContinuousClock.now
        let catalog = try data.catalog(progress: progress, cancellation: cancellation)
        let users = try data.users(catalog: catalog, progress: progress, cancellation: cancellation)
        let dir = URL(fileURLWithPath: out)
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        try NPY.write(catalog.embeddings, to: path("items.npy"))
        try IDList.write(catalog.itemIDs, to: path("items.ids"))
        try IDList.write(catalog.categories.map { ItemID(UInt64($0)) }, to: path("items.categories"))
        try NPY.write(users.queries, to: path("queries.npy"))
        try CSVWriter.write(users.interactionLog(catalog: catalog), to: path("interactions.csv"))
        print("generated \(catalog.itemCount) items (d = \(data.dim), \(catalog.categoryCount) categories), "
              + "\(users.count) users, \(users.eventCount) events in \(String(format: "%.1f", seconds(since: start))) s -> \(out)")
    }
}
