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

/// Reusable buffers of one level-synchronous batch of beam searches.
struct BatchBeamWorkspace: Sendable {
    /// Per query: the nodes its beam kept on the last level (at the end: its leaves, best first).
    var beams: [[Int32]] = []
    /// Per query: the scores of its final leaves, parallel to `beams`.
    var leafScores: [[Float]] = []
    /// The sorted, de-duplicated union of all beams (the parents of this level's candidates).
    var parents: [Int32] = []
    /// `parentStarts[j] ..< parentStarts[j + 1]`: where the children of `parents[j]` are in `nodes`
    /// (one more entry than `parents`).
    var parentStarts: [Int32] = []
    /// The children of `parents`, parent by parent: this level's candidates of all queries, once each.
    var nodes: [Int32] = []
    var embeddings: Matrix
    var scores: [Float] = []
    var selector = TopKSelector(k: 0)

    init(dimension: Int) { embeddings = Matrix(rows: 0, cols: dimension) }
}

extension BeamSearch {
    /// Several beam searches (the interests of one user) run level by level together. On each
    /// level the beams' nodes are merged into one sorted, de-duplicated list of parents, whose
    /// children (contiguous per parent) are gathered once and scored for every query in ONE call
    /// (``ScoringSession/score(sessions:nodes:level:into:)``: one GEMM for inner product); each
    /// beam then keeps its own best `beamWidth` among the children of its own parents, found by
    /// one lookup per parent rather than per candidate.
    ///
    /// Every query's result equals what ``run(view:session:k:beamWidth:excluded:workspace:observer:)``
    /// returns for it alone (up to float summation order: candidates are pushed in the same
    /// order). Statistics per query count its own candidates, as the single search does (the fused
    /// call also scores the other beams' candidates: `queries × union` products per level, which
    /// costs little against the shared gather when the beams overlap, as they do near the root).
    /// Cost per level: sorting `queries · beamWidth` parents, one gather of the union of the
    /// candidates, one scoring call, and `O(candidates)` selection per query.
    static func runBatch<View: TreeView, Session: ScoringSession>(
        view: View, sessions: inout [Session], k: Int, beamWidth: Int, excluded: [Set<ItemID>],
        workspace w: inout BatchBeamWorkspace
    ) -> [SearchResult] {
        let q = sessions.count
        let depth = view.depth
        let beamWidth = max(beamWidth, k)
        var statistics = [SearchStatistics](repeating: SearchStatistics(), count: q)
        while w.beams.count < q { w.beams.append([]); w.leafScores.append([]) }
        for i in 0 ..< q {
            w.beams[i].removeAll(keepingCapacity: true)
            w.beams[i].append(0)
        }
        for level in (depth == 0 ? 0 : 1) ... depth {
            collectCandidates(view: view, level: level, queries: q, workspace: &w)
            view.gatherEmbeddings(level: level, nodes: w.nodes, into: &w.embeddings)
            Session.score(sessions: &sessions, nodes: w.embeddings, level: level, into: &w.scores)
            let m = w.nodes.count
            let isLeaf = level == depth
            for i in 0 ..< q {
                statistics[i].steps += 1
                if !isLeaf {
                    w.selector.reset(k: level == depth - 1 && !excluded[i].isEmpty ? beamWidth + excluded[i].count : beamWidth)
                } else {
                    w.selector.reset(k: k)
                }
                var evaluations = 0
                w.scores.withUnsafeBufferPointer { allScores in
                    let scores = UnsafeBufferPointer(rebasing: allScores[i * m ..< (i + 1) * m])
                    // Each parent of this query's beam, in beam order, then its children in order:
                    // the order in which the single search pushes them.
                    let parentsOfQuery = depth == 0 ? [Int32(0)] : w.beams[i]
                    for parent in parentsOfQuery {
                        let start: Int, count: Int
                        if depth == 0 {
                            (start, count) = (0, 1)
                        } else {
                            let slot = sortedPosition(of: parent, in: w.parents)
                            start = Int(w.parentStarts[slot])
                            count = Int(w.parentStarts[slot + 1]) - start
                        }
                        evaluations += count
                        for position in start ..< start + count {
                            let node = w.nodes[position]
                            if isLeaf {
                                let item = view.item(atLeaf: Int(node))
                                if !excluded[i].isEmpty, excluded[i].contains(item) { continue }
                                w.selector.push(score: scores[position], id: node, tieKey: item.rawValue)
                            } else {
                                w.selector.push(score: scores[position], id: node)
                            }
                        }
                    }
                }
                statistics[i].modelEvaluations += evaluations
                if isLeaf {
                    let leaves = w.selector.sortedResults()
                    w.beams[i].removeAll(keepingCapacity: true)
                    w.beams[i].append(contentsOf: leaves.map(\.id))
                    w.leafScores[i].removeAll(keepingCapacity: true)
                    w.leafScores[i].append(contentsOf: leaves.map(\.score))
                } else {
                    w.selector.unsortedIDs(into: &w.beams[i])
                }
            }
        }
        var results: [SearchResult] = []
        results.reserveCapacity(q)
        for i in 0 ..< q {
            var items = zip(w.beams[i], w.leafScores[i]).map { ScoredItem(item: view.item(atLeaf: Int($0.0)), score: $0.1) }
            items.sort { $0.score > $1.score || ($0.score == $1.score && $0.item < $1.item) }
            results.append(SearchResult(items: items, statistics: statistics[i]))
        }
        return results
    }

    /// Fills `w.parents` (sorted union of the first `queries` beams, which hold nodes of
    /// `level - 1`), `w.parentStarts` and `w.nodes` (their children, parent by parent). O(u log u)
    /// for `u = queries · beamWidth` parents plus the children copied. For a
    /// one-node tree (`level == 0`, depth 0) the only candidate is the root leaf.
    private static func collectCandidates<View: TreeView>(
        view: View, level: Int, queries q: Int, workspace w: inout BatchBeamWorkspace
    ) {
        w.parents.removeAll(keepingCapacity: true)
        w.parentStarts.removeAll(keepingCapacity: true)
        w.nodes.removeAll(keepingCapacity: true)
        if level == 0 {
            w.nodes.append(0)
            return
        }
        for i in 0 ..< q { w.parents.append(contentsOf: w.beams[i]) }
        w.parents.sort()
        var unique = 0
        for j in 0 ..< w.parents.count where j == 0 || w.parents[j] != w.parents[unique - 1] {
            w.parents[unique] = w.parents[j]
            unique += 1
        }
        w.parents.removeLast(w.parents.count - unique)
        for parent in w.parents {
            w.parentStarts.append(Int32(w.nodes.count))
            for child in view.children(of: Int(parent), level: level - 1) { w.nodes.append(Int32(child)) }
        }
        w.parentStarts.append(Int32(w.nodes.count))
    }

    /// Index of `node` in the sorted, unique `sorted` (binary search; the node is present).
    @inline(__always)
    private static func sortedPosition(of node: Int32, in sorted: [Int32]) -> Int {
        var lo = 0, hi = sorted.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sorted[mid] < node { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
