import ArborCore
import ArborTree
import ArgumentParser
import Foundation

/// `arbor inspect`: what an index holds, its shape and balance, and (optionally) a full check.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show an index's header, tree shape and balance; --verify checks every checksum.")

    @Option(help: "The index file.")
    var index: String

    @Flag(help: "Read every stored value and check its checksum (reads the whole file).")
    var verify = false

    func run() throws {
        let start = ContinuousClock.now
        let reader = try IndexReader(path: index)
        let openMs = seconds(since: start) * 1000
        let h = reader.header
        print("index \(index) (\(formatBytes(fileSize(index)))), format v\(h.formatVersion), opened in \(String(format: "%.2f", openMs)) ms")
        print("items \(h.itemCount), dimension \(h.dimension), fan-out \(h.fanOut), depth \(h.depth), nodes \(h.nodeCount)")
        print("scorer \(h.scorerKind), encoder \(h.encoderKind), categories \(h.hasCategories ? "yes" : "no")")
        if !h.tensors.isEmpty {
            print("tensors:")
            for t in h.tensors { print("  \(t.name) \(t.shape) digest \(String(t.digest, radix: 16))") }
        }
        if !h.extraNames.isEmpty { print("extra values: \(h.extraNames.joined(separator: ", "))") }
        let stats = try reader.withView { view in TreeStatistics(view: copy view, fanOut: h.fanOut) }
        print(stats)
        if verify {
            let v = ContinuousClock.now
            try reader.verify()
            print(String(format: "verify: every checksum matches (%.2f s)", seconds(since: v)))
        }
    }
}
