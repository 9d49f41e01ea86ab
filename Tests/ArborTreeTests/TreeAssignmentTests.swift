import ArborMath
import ArborTree
import Testing

/// Every item's path (child index per level) in `layout`.
private func paths(of layout: TreeLayout) -> [(ItemID, [Int])] {
    var out: [[Int]] = [[]]
    for level in 0 ..< layout.depth {
        let off = layout.levels[level].childOffsets
        var next: [[Int]] = []
        for node in 0 ..< layout.levels[level].nodeCount {
            for (k, _) in (Int(off[node]) ..< Int(off[node + 1])).enumerated() { next.append(out[node] + [k]) }
        }
        out = next
    }
    return zip(layout.leafItems, out).map { ($0, $1) }
}

private func text(_ rows: [(ItemID, [Int])]) -> String {
    "item\tpath\n" + rows.map { "\($0.0.rawValue)\t\($0.1.map(String.init).joined(separator: "/"))" }.joined(separator: "\n") + "\n"
}

@Suite struct TreeAssignmentTests {
    let n = 37, d = 4
    var items: [ItemID] { (0 ..< n).map { ItemID(UInt64(500 + $0)) } }
    var vectors: Matrix {
        var rng = SplitMix64(seed: 3)
        return try! Matrix(rows: n, cols: d, values: (0 ..< n * d).map { _ in rng.nextUnitFloat() * 2 - 1 })
    }
    var arborTree: TreeLayout { try! TreeBuilder.balancedKMeans(embeddings: vectors, items: items, options: .init(fanOut: 3, seed: 1)) }

    func layout(_ text: String, tolerance: Double = 0.1, nodes: [String: [Float]] = [:]) throws(AssignmentError) -> TreeLayout {
        try TreeAssignment.parse(text, source: "paths.tsv").layout(embeddings: vectors, items: items, fanOut: 3,
                                                                   tolerance: tolerance, nodeEmbeddings: nodes)
    }

    /// The paths of a tree Arbor built give back that tree exactly (structure, leaf order, embeddings).
    @Test func pathsOfAnArborTreeRebuildIt() throws {
        let tree = arborTree
        let rebuilt = try layout(text(paths(of: tree).shuffled()))
        #expect(rebuilt.levelNodeCounts == tree.levelNodeCounts)
        #expect(rebuilt.leafItems == tree.leafItems)
        for (l, (a, b)) in zip(rebuilt.levels, tree.levels).enumerated() {
            #expect(a.childOffsets == b.childOffsets)
            let diff = zip(a.embeddings.values, b.embeddings.values).map { abs($0 - $1) }.max() ?? 0
            #expect(diff <= 1e-5, "level \(l): largest difference \(diff)")
        }
    }

    /// Given inner-node embeddings replace the computed ones.
    @Test func nodeEmbeddingsAreUsed() throws {
        let nodes = try TreeAssignment.parseNodeEmbeddings("\t1,2,3,4\n0/1\t0.5,0,0,0\n", source: "nodes.tsv")
        let t = try layout(text(paths(of: arborTree)), nodes: nodes)
        #expect(Array(t.levels[0].embeddings.row(0)) == [1, 2, 3, 4])
        #expect(Array(t.levels[2].embeddings.row(1)) == [0.5, 0, 0, 0])
        #expect(throws: AssignmentError.badLine(source: "n", line: 1, reason: "'x' is not a finite number")) {
            try TreeAssignment.parseNodeEmbeddings("0\t1,x\n", source: "n")
        }
    }

    @Test func duplicateItemIsRefused() throws {
        var rows = paths(of: arborTree)
        rows.append((rows[3].0, rows[5].1))
        #expect(throws: AssignmentError.duplicateItem(rows[3].0, firstLine: 5, line: 39)) { try layout(text(rows)) }
    }

    @Test func unknownAndMissingItemsAreRefused() throws {
        var rows = paths(of: arborTree)
        rows[2].0 = ItemID(9)
        #expect(throws: AssignmentError.unknownItem(ItemID(9), line: 4)) { try layout(text(rows)) }
        rows = paths(of: arborTree)
        let dropped = rows.remove(at: 0).0
        #expect(throws: AssignmentError.missingItem(dropped)) { try layout(text(rows)) }
    }

    /// A child index skipped under a node is an empty node, named by its path.
    @Test func emptyNodeIsRefused() throws {
        // 18 items under the root's child 0, 19 under child 2, none under child 1.
        let rows = items.enumerated().map { i, id -> (ItemID, [Int]) in
            let (top, j) = i < 18 ? (0, i) : (2, i - 18)
            return (id, [top, j / 9, (j % 9) / 3, j % 3])
        }
        #expect(throws: AssignmentError.emptyNode(path: "1")) { try layout(text(rows), tolerance: 10) }
        // A child index past the fan-out.
        var wide = rows
        wide[0].1[3] = 3
        #expect(throws: AssignmentError.childOutOfRange(wide[0].0, line: 2, index: 3, fanOut: 3)) { try layout(text(wide), tolerance: 10) }
    }

    @Test func depthMismatchAndSharedLeafAreRefused() throws {
        var rows = paths(of: arborTree)
        rows[4].1.removeLast()
        #expect(throws: AssignmentError.depthMismatch(rows[4].0, line: 6, expected: rows[0].1.count, found: rows[0].1.count - 1)) {
            try layout(text(rows))
        }
        rows = paths(of: arborTree)
        rows[1].1 = rows[0].1
        #expect(throws: AssignmentError.sharedLeaf(path: rows[0].1.map(String.init).joined(separator: "/"), items: [rows[0].0, rows[1].0])) {
            try layout(text(rows))
        }
    }

    /// A first-level node with far more items than its sibling: refused at tolerance 0.1, named by the node.
    @Test func unbalancedNodeIsRefused() throws {
        // 37 items, fan-out 3, depth 4: 27 items under node 0 (full), 10 under node 1.
        let rows = items.enumerated().map { i, id -> (ItemID, [Int]) in
            let (top, j) = i < 27 ? (0, i) : (1, i - 27)
            return (id, [top, j / 9, (j % 9) / 3, j % 3])
        }
        #expect(throws: AssignmentError.unbalanced(path: "0", items: 27, allowed: 15 ... 22)) { try layout(text(rows)) }
        #expect(try layout(text(rows), tolerance: 3).itemCount == 37)
    }

    @Test func badLinesNameTheLine() throws {
        #expect(throws: AssignmentError.badLine(source: "paths.tsv", line: 2, reason: "'x' is not an item id")) {
            try TreeAssignment.parse("1\t0/0\nx\t0/1\n", source: "paths.tsv")
        }
        #expect(throws: AssignmentError.badLine(source: "paths.tsv", line: 1, reason: "path '0/-1': '-1' is not a child index")) {
            try TreeAssignment.parse("1\t0/-1\n", source: "paths.tsv")
        }
    }
}
