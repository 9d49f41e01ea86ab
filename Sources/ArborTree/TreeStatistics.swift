import Foundation

/// Shape of a tree, as `arbor inspect` shows it: depth, nodes per level, children per node, how
/// evenly the items spread below the nodes of each level, and how many one-child (padding) nodes
/// the layout needed.
public struct TreeStatistics: Sendable, Equatable, CustomStringConvertible {
    /// Per-level summary.
    public struct Level: Sendable, Equatable {
        /// Level index (root = 0).
        public var level: Int
        /// Nodes on the level.
        public var nodes: Int
        /// Fewest and most children of a node on this level (0 at the leaves).
        public var minChildren: Int
        /// Most children of a node on this level.
        public var maxChildren: Int
        /// Fewest and most items below one node of this level.
        public var minItems: Int
        /// Most items below one node of this level.
        public var maxItems: Int
        /// Nodes with exactly one child (chains that carry a short branch down to the leaf level).
        public var singleChildNodes: Int
        /// `childCounts[c]` = nodes of this level with exactly `c` children (`maxChildren + 1`
        /// entries; `[nodes]` at the leaves, which have none).
        public var childCounts: [Int]
    }

    /// Index of the leaf level.
    public var depth: Int
    /// Largest number of children allowed per node.
    public var fanOut: Int
    /// Number of items (leaves reachable from the root; free slots of a format 3 index excluded).
    public var itemCount: Int
    /// Nodes over all levels.
    public var nodeCount: Int
    /// One summary per level, root first.
    public var levels: [Level]

    /// Balance: the largest ratio, over levels, of the most to the fewest items below a node (1 =
    /// perfectly balanced).
    public var imbalance: Double {
        levels.map { Double($0.maxItems) / Double(max(1, $0.minItems)) }.max() ?? 1
    }

    /// Leaf occupancy: items over the capacity of a full tree of this depth and fan-out.
    public var leafOccupancy: Double {
        Double(itemCount) / pow(Double(fanOut), Double(depth))
    }

    /// Statistics of any tree view. O(total nodes).
    public init(view: some TreeView, fanOut: Int) {
        depth = view.depth
        self.fanOut = fanOut
        let leaves = view.nodeCount(level: view.depth)
        itemCount = leaves
        var items = [Int](repeating: 1, count: leaves)
        var result: [Level] = [Level(level: view.depth, nodes: leaves, minChildren: 0, maxChildren: 0,
                                     minItems: 1, maxItems: 1, singleChildNodes: 0, childCounts: [leaves])]
        var total = leaves
        for level in stride(from: view.depth - 1, through: 0, by: -1) {
            let count = view.nodeCount(level: level)
            total += count
            var next = [Int](repeating: 0, count: count)
            var summary = Level(level: level, nodes: count, minChildren: .max, maxChildren: 0,
                                minItems: .max, maxItems: 0, singleChildNodes: 0, childCounts: [])
            for node in 0..<count {
                let kids = view.children(of: node, level: level)
                if kids.count >= summary.childCounts.count {
                    summary.childCounts.append(contentsOf: repeatElement(0, count: kids.count + 1 - summary.childCounts.count))
                }
                summary.childCounts[kids.count] += 1
                summary.minChildren = min(summary.minChildren, kids.count)
                summary.maxChildren = max(summary.maxChildren, kids.count)
                if kids.count == 1 { summary.singleChildNodes += 1 }
                next[node] = kids.reduce(0) { $0 + items[$1] }
                summary.minItems = min(summary.minItems, next[node])
                summary.maxItems = max(summary.maxItems, next[node])
            }
            result.append(summary)
            items = next
        }
        // Items reachable from the root: leaves minus the free slots of an updatable index.
        if view.depth > 0 { itemCount = items.first ?? 0 }
        nodeCount = total
        levels = result.reversed()
    }

    /// The most model evaluations one beam search of width `beamWidth` makes on this tree: going
    /// down from the root, the beam holds at most `min(beamWidth, nodes)` nodes of each level and
    /// scores all their children, so level `l + 1` costs at most the children of the `beamWidth`
    /// nodes of level `l` with the most children. The sum over levels is the cost model of beam
    /// search: exact when every node of a level has the same number of children (a balanced
    /// tree), an upper bound otherwise. With fan-out `f` it is about `B·f` per level below the
    /// first level with more than `B` nodes, so cost grows as `B·f·log_f(N / B)`, not `log N`.
    /// `beamWidth` is the beam the search runs with: `TreeRetriever` raises it to `k`, and keeps
    /// one more parent of leaves per excluded item. O(depth · fan-out).
    /// - Precondition: `beamWidth >= 1`.
    public func beamEvaluationBound(beamWidth: Int) -> Int {
        precondition(beamWidth >= 1, "beam width must be at least 1")
        var total = 0
        for level in levels.dropLast() {
            var slots = min(beamWidth, level.nodes)
            for c in stride(from: level.childCounts.count - 1, through: 0, by: -1) where slots > 0 {
                let take = min(slots, level.childCounts[c])
                total += take * c
                slots -= take
            }
        }
        return total
    }

    /// A table of the levels, as `arbor inspect` prints it.
    public var description: String {
        var lines = ["depth \(depth), fan-out \(fanOut), items \(itemCount), nodes \(nodeCount)",
                     String(format: "leaf occupancy %.3f, imbalance (max/min items under a node) %.3f",
                            leafOccupancy, imbalance),
                     "level      nodes  children(min-max)  items/node(min-max)  one-child"]
        for l in levels {
            lines.append(String(format: "%5d %10d %8d-%-8d %10d-%-10d %9d", l.level, l.nodes, l.minChildren,
                                l.maxChildren, l.minItems, l.maxItems, l.singleChildNodes))
        }
        return lines.joined(separator: "\n")
    }
}
