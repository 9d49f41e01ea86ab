import ArborCore
import ArborTree
import ArgumentParser
import Foundation

/// `arbor build --assignment`: a tree computed elsewhere (item → path), checked and stored.
struct AssignmentOptions: ParsableArguments {
    @Option(help: "A tree built elsewhere: one 'item<TAB>path' a line, path = child index per level from the root ('3/0/12'), e.g. from tools/spark/build_tree.py. Checked: every item exactly once, one depth, no empty node, balance within --balance-tolerance. Uses --fan-out.")
    var assignment: String?

    @Option(help: "With --assignment: inner-node embeddings, one 'path<TAB>v1,v2,...' a line (root: empty path); others are the normalised mean of the items below.")
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
        let text = try Self.read(path)
        let parsed = try TreeAssignment.parse(text, source: path)
        let nodes = try nodeEmbeddings.map { try TreeAssignment.parseNodeEmbeddings(Self.read($0), source: $0) } ?? [:]
        do {
            return try parsed.layout(embeddings: embeddings, items: ids, categories: categories, fanOut: fanOut,
                                     tolerance: balanceTolerance, innerNodes: innerNodes, nodeEmbeddings: nodes)
        } catch { throw CLIError("\(path): \(error)") }
    }

    static func read(_ path: String) throws -> String {
        do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw CLIError("\(path): cannot read: \((error as NSError).localizedDescription)")
        }
    }
}
