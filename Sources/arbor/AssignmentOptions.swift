import ArborCore
import ArborInterchange
import ArborTree
import ArgumentParser
import Foundation

/// `arbor build --assignment`: a tree computed elsewhere (item → path), checked and stored.
struct AssignmentOptions: ParsableArguments {
    @Option(help: "A tree built elsewhere: one 'item<TAB>path' a line, path = child index per level from the root ('3/0/12'), or a Parquet table with columns item and path (found by its PAR1 magic), e.g. from tools/spark/build_tree.py. Checked: every item exactly once, one depth, no empty node, balance within --balance-tolerance. Uses --fan-out.")
    var assignment: String?

    @Option(help: "With --assignment: inner-node embeddings, one 'path<TAB>v1,v2,...' a line (root: empty path), or a Parquet table with columns node (string) and vector (list of floats); others are the normalised mean of the items below.")
    var nodeEmbeddings: String?

    @Option(help: "With --assignment: how far a node's item count may stray from its level's mean (fraction, plus one item).")
    var balanceTolerance: Double = 0.1

    func validate() throws {
        guard balanceTolerance >= 0, balanceTolerance.isFinite else { throw ValidationError("--balance-tolerance must be >= 0") }
        if nodeEmbeddings != nil, assignment == nil { throw ValidationError("--node-embeddings goes with --assignment") }
    }

    /// The assignment's tree over the loaded items.
    func layout(embeddings: Matrix, ids: [ItemID], categories: [UInt32], fanOut: Int, innerNodes: InnerNodeEmbedding) throws -> TreeLayout {
        let path = assignment!
        let parsed = try Self.read(path, parquet: TreeAssignment.init(parquet:), text: TreeAssignment.parse)
        let nodes = try nodeEmbeddings.map { try Self.read($0, parquet: TreeAssignment.nodeEmbeddings, text: TreeAssignment.parseNodeEmbeddings) } ?? [:]
        do {
            return try parsed.layout(embeddings: embeddings, items: ids, categories: categories, fanOut: fanOut,
                                     tolerance: balanceTolerance, innerNodes: innerNodes, nodeEmbeddings: nodes)
        } catch { throw CLIError("\(path): \(error)") }
    }

    /// The file at `path` through `parquet` when it starts with Parquet's magic (or is named
    /// `.parquet`), else as UTF-8 text through `text`.
    static func read<T>(_ path: String, parquet: (ParquetFile) throws -> T, text: (String, String) throws -> T) throws -> T {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CLIError("\(path): cannot read: \((error as NSError).localizedDescription)")
        }
        if ParquetFile.hasMagic(data) || path.hasSuffix(".parquet") {
            return try parquet(try ParquetFile(bytes: [UInt8](data), source: path))
        }
        guard let string = String(data: data, encoding: .utf8) else { throw CLIError("\(path): neither UTF-8 text nor Parquet") }
        return try text(string, path)
    }
}
