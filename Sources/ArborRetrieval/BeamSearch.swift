import ArborMath
import ArborTree

/// Reusable buffers of one beam search (one per thread; taken from a pool per query).
struct BeamWorkspace: Sendable {
    var beam: [Int32] = []
    var candidates: [Int32] = []
    var embeddings: Matrix
    var scores: [Float] = []
    var selector = TopKSelector(k: 0)

    init(dimension: Int) { embeddings = Matrix(rows: 0, cols: dimension) }
}

/// TDM beam search: from the root, score all children of the beam in one batched call, keep the
/// best `beamWidth`, and at the leaf level return the best `k` items.
///
/// With `beamWidth` at least the widest level, every leaf is scored and the result equals the
/// scorer's exact top-k over all items. Cost: at most `beamWidth · fanOut` scores per level, so
/// O(depth · beamWidth · fanOut) model evaluations per query instead of O(N).
enum BeamSearch {
    /// Told, per level, the nodes the beam kept (see ``TreeRetriever/search(_:parameters:observingLevels:)``).
    typealias LevelObserver = (_ level: Int, _ nodes: [Int32]) -> Void

    static func run<View: TreeView, Session: ScoringSession>(
        view: View, session: inout Session, k: Int, beamWidth: Int, excluded: Set<ItemID>,
        workspace w: inout BeamWorkspace, observer: LevelObserver? = nil
    ) -> SearchResult {
        var statistics = SearchStatistics()
        let depth = view.depth
        let beamWidth = max(beamWidth, k)
        w.beam.removeAll(keepingCapacity: true)
        w.beam.append(0)
        if depth == 0 {
            // A one-item tree: the root is the leaf.
            w.candidates.removeAll(keepingCapacity: true)
            w.candidates.append(0)
        }
        for level in 0...depth {
            if level > 0 {
                w.candidates.removeAll(keepingCapacity: true)
                for node in w.beam {
                    for child in view.children(of: Int(node), level: level - 1) {
                        w.candidates.append(Int32(child))
                    }
                }
            } else if depth > 0 {
                continue  // the root is never scored: it is the only node of level 0
            }
            view.gatherEmbeddings(level: level, nodes: w.candidates, into: &w.embeddings)
            session.score(nodes: w.embeddings, level: level, into: &w.scores)
            statistics.modelEvaluations += w.candidates.count
            statistics.steps += 1
            if level < depth {
                // Filters act at the leaves: keep |excluded| more parents of leaves, so that at least
                // `beamWidth` (>= k) non-excluded leaves remain whenever the catalogue has them.
                w.selector.reset(k: level == depth - 1 && !excluded.isEmpty ? beamWidth + excluded.count : beamWidth)
                for (i, node) in w.candidates.enumerated() { w.selector.push(score: w.scores[i], id: node) }
                w.selector.unsortedIDs(into: &w.beam)
                observer?(level, w.beam)
            } else {
                w.selector.reset(k: k)
                for (i, leaf) in w.candidates.enumerated() {
                    let item = view.item(atLeaf: Int(leaf))
                    if !excluded.isEmpty, excluded.contains(item) { continue }
                    w.selector.push(score: w.scores[i], id: leaf, tieKey: item.rawValue)
                }
            }
        }
        let leaves = w.selector.sortedResults()
        var items = leaves.map { ScoredItem(item: view.item(atLeaf: Int($0.id)), score: $0.score) }
        // Ties in score are reported by smaller item id, as every retriever does.
        items.sort { $0.score > $1.score || ($0.score == $1.score && $0.item < $1.item) }
        observer?(depth, leaves.map(\.id))
        return SearchResult(items: items, statistics: statistics)
    }
}
