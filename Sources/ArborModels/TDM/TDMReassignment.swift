import ArborInference
import ArborMath
import ArborTree
import Foundation

/// Settings of JTM-style item re-assignment.
public struct TDMReassignmentConfig: Sendable, Equatable {
    /// Levels descended per greedy step (JTM's `d`; 1 … depth).
    public var levelGap: Int
    /// At most this many training samples per item score its candidate nodes (the most recent).
    public var maxSamplesPerItem: Int

    /// Defaults: two levels per step, 20 samples per item.
    public init(levelGap: Int = 2, maxSamplesPerItem: Int = 20) {
        self.levelGap = levelGap
        self.maxSamplesPerItem = maxSamplesPerItem
    }
}

/// JTM's tree learning (Han et al., NeurIPS 2019), on a fixed tree shape: items are re-assigned
/// to leaf slots greedily, layer by layer. Starting at the root with all items, each step takes a
/// node at level `l` and its items and sends every item to a descendant `c` at level
/// `l + levelGap` that maximises the summed path score `Σ_samples Σ_{j=l+1}^{l+gap} log σ(score(u, anc_j(c)))`
/// over the item's training samples (users who chose it), subject to a capacity per descendant =
/// the number of leaf slots below it (so the tree stays balanced). Pairs are taken best first.
///
/// The tree's shape and inner node embeddings are kept; each item keeps its learned leaf embedding
/// (moved to its new slot). Items without samples fill the slots left over.
public enum TDMReassignment {
    /// A new tree with the items of `model`'s tree re-assigned to leaves.
    /// - Complexity: O(depth/gap · samples · 2^gap) model evaluations plus the sort of
    ///   (item, candidate) pairs per node.
    /// - Throws: ``ArborError`` from the scorers or an invalid configuration.
    public static func reassign(model: TDMModel, samples: [TDMSample], config: TDMReassignmentConfig = .init()) throws -> TreeLayout {
        guard config.levelGap >= 1, config.maxSamplesPerItem >= 1 else {
            throw ArborError.invalidArgument(name: "reassignment", reason: "levelGap and maxSamplesPerItem must be >= 1")
        }
        let layout = model.layout()
        let depth = layout.depth
        guard depth >= 1 else { return layout }
        let serving = try model.servingModel()
        // Samples per item (most recent kept).
        var byItem = [ItemID: [Int]]()
        for (i, s) in samples.enumerated() where model.leafOfItem[s.target] != nil { byItem[s.target, default: []].append(i) }
        for (k, v) in byItem where v.count > config.maxSamplesPerItem { byItem[k] = Array(v.suffix(config.maxSamplesPerItem)) }
        // Descendant ranges.
        func descendants(level: Int, node: Int, to target: Int) -> Range<Int> {
            var range = node..<(node + 1)
            for l in level..<target {
                let off = layout.levels[l].childOffsets
                range = Int(off[range.lowerBound])..<Int(off[range.upperBound])
            }
            return range
        }
        // assignment[level] = items per node at the current step level.
        var current: [[ItemID]] = [layout.leafItems]
        var level = 0
        while level < depth {
            let next = min(depth, level + config.levelGap)
            var assigned = [[ItemID]](repeating: [], count: layout.levels[next].nodeCount)
            for node in 0..<layout.levels[level].nodeCount where !current[node].isEmpty {
                let items = current[node]
                let candidates = descendants(level: level, node: node, to: next)
                var capacity = candidates.map { descendants(level: next, node: $0, to: depth).count }
                // Path score of every (item, candidate).
                var pathScore = [Double](repeating: 0, count: items.count * candidates.count)
                // Nodes per intermediate level and, per candidate, its ancestor offset on each level.
                let levelRanges = ((level + 1)...next).map { descendants(level: level, node: node, to: $0) }
                var ancestorOf = [[Int]](repeating: [], count: levelRanges.count)
                for (j, r) in levelRanges.enumerated() {
                    ancestorOf[j] = candidates.map { c in
                        var n = c
                        for l in stride(from: next, to: level + 1 + j, by: -1) { n = Int(model.parents[l][n]) }
                        return n - r.lowerBound
                    }
                }
                let matrices = levelRanges.enumerated().map { (j, r) -> Matrix in
                    var m = Matrix(rows: 0, cols: layout.dimension)
                    for n in r { m.appendRow(layout.levels[level + 1 + j].embeddings.row(n)) }
                    return m
                }
                var scores: [Float] = []
                for (ii, item) in items.enumerated() {
                    for s in byItem[item] ?? [] {
                        let query = try serving.producer.queries(history: samples[s].history, excluded: []).queries[0]
                        var logs: [[Double]] = []
                        func run<S: ScoringSession>(_ session: inout S) {
                            for (j, m) in matrices.enumerated() {
                                session.score(nodes: m, level: level + 1 + j, into: &scores)
                                logs.append(scores.map { z in -log1p(Foundation.exp(-Double(z))) })
                            }
                        }
                        func score<S: NodeScorer>(_ scorer: S) throws { var se = try scorer.makeSession(for: query); run(&se) }
                        try score(serving.scorer.scorer)
                        for c in 0..<candidates.count {
                            var total = 0.0
                            for j in 0..<logs.count { total += logs[j][ancestorOf[j][c]] }
                            pathScore[ii * candidates.count + c] += total
                        }
                    }
                }
                // Best pairs first, within capacity.
                let order = pathScore.indices.sorted { pathScore[$0] > pathScore[$1] || (pathScore[$0] == pathScore[$1] && $0 < $1) }
                var placed = [Bool](repeating: false, count: items.count)
                var left = items.count
                for p in order where left > 0 {
                    let ii = p / candidates.count, c = p % candidates.count
                    guard !placed[ii], capacity[c] > 0 else { continue }
                    placed[ii] = true
                    capacity[c] -= 1
                    left -= 1
                    assigned[candidates.lowerBound + c].append(items[ii])
                }
            }
            current = assigned
            level = next
        }
        // Leaves: one item each.
        var out = layout
        let oldLeaf = model.leafOfItem
        let leafLevel = layout.levels[depth].embeddings
        var categories: [UInt32] = []
        for (slot, items) in current.enumerated() {
            precondition(items.count == 1, "leaf slot \(slot) got \(items.count) items")
            let item = items[0]
            out.leafItems[slot] = item
            out.levels[depth].embeddings.setRow(slot, leafLevel.row(oldLeaf[item]!))
            if !layout.leafCategories.isEmpty { categories.append(layout.leafCategories[oldLeaf[item]!]) }
        }
        out.leafCategories = categories
        try out.validate()
        return out
    }
}
