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
    var beams: [[Int32]] = []
    var candidates: [[Int32]] = []
    var leafScores: [[Float]] = []
    var union: [Int32] = []
    var embeddings: Matrix
    var scores: [Float] = []
    var selector = TopKSelector(k: 0)

    init(dimension: Int) { embeddings = Matrix(rows: 0, cols: dimension) }
}

extension BeamSearch {
    /// Several beam searches (the interests of one user) run level by level together: on each
    /// level the candidates of all beams are merged into one sorted, de-duplicated list, their
    /// embeddings gathered once, and scored for every query in ONE call
    /// (``ScoringSession/score(sessions:nodes:level:into:)``: one GEMM for inner product); each
    /// beam then keeps its own best `beamWidth` among its own candidates. Every query's result
    /// equals what ``run(view:session:k:beamWidth:excluded:workspace:observer:)`` returns for it
    /// alone (up to float summation order). Statistics per query count its own candidates, as the
    /// single search does (the fused GEMM also scores the other beams' candidates: `queries × union`
    /// products per level). Cost per level: one gather of the union and one scoring call.
    static func runBatch<View: TreeView, Session: ScoringSession>(
        view: View, sessions: inout [Session], k: Int, beamWidth: Int, excluded: [Set<ItemID>],
        workspace w: inout BatchBeamWorkspace
    ) -> [SearchResult] {
        let q = sessions.count
        let depth = view.depth
        let beamWidth = max(beamWidth, k)
        var statistics = [SearchStatistics](repeating: SearchStatistics(), count: q)
        while w.beams.count < q { w.beams.append([]); w.candidates.append([]); w.leafScores.append([]) }
        for i in 0 ..< q {
            w.beams[i].removeAll(keepingCapacity: true)
            w.beams[i].append(0)
            w.candidates[i].removeAll(keepingCapacity: true)
            if depth == 0 { w.candidates[i].append(0) }
        }
        for level in 0 ... depth {
            if level > 0 {
                for i in 0 ..< q {
                    w.candidates[i].removeAll(keepingCapacity: true)
                    for node in w.beams[i] {
                        for child in view.children(of: Int(node), level: level - 1) { w.candidates[i].append(Int32(child)) }
                    }
                }
            } else if depth > 0 {
                continue
            }
            w.union.removeAll(keepingCapacity: true)
            for i in 0 ..< q { w.union.append(contentsOf: w.candidates[i]) }
            w.union.sort()
            var unique = 0
            for j in 0 ..< w.union.count where j == 0 || w.union[j] != w.union[unique - 1] {
                w.union[unique] = w.union[j]
                unique += 1
            }
            w.union.removeLast(w.union.count - unique)
            view.gatherEmbeddings(level: level, nodes: w.union, into: &w.embeddings)
            Session.score(sessions: &sessions, nodes: w.embeddings, level: level, into: &w.scores)
            let m = w.union.count
            for i in 0 ..< q {
                statistics[i].modelEvaluations += w.candidates[i].count
                statistics[i].steps += 1
                let isLeaf = level == depth
                if !isLeaf {
                    w.selector.reset(k: level == depth - 1 && !excluded[i].isEmpty ? beamWidth + excluded[i].count : beamWidth)
                } else {
                    w.selector.reset(k: k)
                }
                for node in w.candidates[i] {
                    let position = unionPosition(of: node, in: w.union)
                    let score = w.scores[i * m + position]
                    if isLeaf {
                        let item = view.item(atLeaf: Int(node))
                        if !excluded[i].isEmpty, excluded[i].contains(item) { continue }
                        w.selector.push(score: score, id: node, tieKey: item.rawValue)
                    } else {
                        w.selector.push(score: score, id: node)
                    }
                }
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

    /// Index of `node` in the sorted, unique `union` (binary search; the node is present).
    @inline(__always)
    private static func unionPosition(of node: Int32, in union: [Int32]) -> Int {
        var lo = 0, hi = union.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if union[mid] < node { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
