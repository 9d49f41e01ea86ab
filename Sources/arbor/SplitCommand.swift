import ArborCore
import ArborData
import ArborPipelines
import ArgumentParser
import Foundation

/// `arbor split`: the TDM hold-out split `arbor tdm` trains and tests on, written as text files, so
/// that a model trained elsewhere (e.g. tools/python/ddp_train_attention.py) sees the same users.
struct Split: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the TDM hold-out split of a behaviour log (the one `arbor tdm --seed N` uses) as text files.",
        discussion: paragraphs("""
            Files in --out: items.tsv (item id, category: the tree's leaves), train.txt (one training
            user a line, item ids oldest first, space-separated), validation.tsv and test.tsv (one
            held-out user a line: history ids, a tab, truth ids; ids space-separated).
            """))

    @Option(help: "RecBole .inter file.")
    var inter: String

    @Option(help: "RecBole .item file (categories).")
    var items: String?

    @Option(help: "Keep ratings >= this value as positives.")
    var minRating: Float = 4

    @Option(help: "Seed of the split (as `arbor tdm --seed`).")
    var seed: UInt64 = 0

    @Option(help: "Folder to write the files into (created).")
    var out: String

    func run() throws {
        let dataset = try items.map { try RecBoleReader.read(interactions: inter, items: $0) } ?? RecBoleReader.readInteractions(at: inter)
        let name = URL(fileURLWithPath: inter).deletingPathExtension().lastPathComponent
        let data = try TDMExperimentData.holdOut(name: name, log: dataset.interactions, minRating: minRating, seed: seed)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        func write(_ file: String, _ lines: [String]) throws {
            let path = (out as NSString).appendingPathComponent(file)
            do { try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8) } catch {
                throw CLIError("\(path): cannot write: \((error as NSError).localizedDescription)")
            }
        }
        func ids(_ list: [ItemID]) -> String { list.map { String($0.rawValue) }.joined(separator: " ") }
        try write("items.tsv", zip(data.items, data.categories).map { "\($0.0.rawValue)\t\($0.1)" })
        try write("train.txt", data.sequences.map(ids))
        try write("validation.tsv", data.validation.map { "\(ids($0.history))\t\(ids($0.truth))" })
        try write("test.tsv", data.test.map { "\(ids($0.history))\t\(ids($0.truth))" })
        print("wrote \(out): \(data.items.count) items, \(data.sequences.count) training users, \(data.validation.count) validation and \(data.test.count) test users")
    }
}
