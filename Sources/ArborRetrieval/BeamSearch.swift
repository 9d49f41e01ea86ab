import ArborMath
import ArborTree

/// Reusable buffers of one beam search (one per thread; taken from a pool per query).
struct BeamWorkspace: Sendable {
    var beam: [Int32] = []
    var candidates: [Int32] = []
    var embeddings: Matrix
    var scores: [Float] = []
    /// Positions in `candidates` kept by the selection.
    var kept: [Int32] = []
    var selection = PartialTopK()
    /// Rows copied out of a misaligned map (rare; see ``TreeView/forEachEmbeddingRun``).
    var scratch: [Float] = []

    init(dimension: Int) { embeddings = Matrix(rows: 0, cols: dimension) }
}

/// TDM beam search: from the root, score all children of the beam in one batched call, keep the
/// best `beamWidth`, and at the leaf level return the best `k` items.
///
/// With `beamWidth` at least the widest level, every leaf is scored and the result equals the
/// scorer's exact top-k over all items. Cost: at most `beamWidth · fanOut` scores per level, so
/// O(depth · beamWidth · fanOut) model evaluations per query instead of O(N). A session that
/// scores rows in place (inner product) reads each parent's children straight from the tree, one
/// contiguous run per parent; others get the level's candidates gathered into one matrix. Each
/// level's beam is chosen by ``PartialTopK`` (O(candidates)) and kept in increasing node order.
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
        for level in (depth == 0 ? 0 : 1) ... depth {
            scoreChildren(view: view, session: &session, level: level, parents: w.beam, candidates: &w.candidates,
                          scores: &w.scores, embeddings: &w.embeddings, scratch: &w.scratch)
            statistics.modelEvaluations += w.candidates.count
            statistics.steps += 1
            if level < depth {
                // Filters act at the leaves: keep |excluded| more parents of leaves, so that at least
                // `beamWidth` (>= k) non-excluded leaves remain whenever the catalogue has them.
                let keep = level == depth - 1 && !excluded.isEmpty ? beamWidth + excluded.count : beamWidth
                selectBeam(keep: keep, candidates: w.candidates, scores: w.scores, kept: &w.kept,
                           selection: &w.selection, into: &w.beam)
                observer?(level, w.beam)
            } else {
                let items = selectLeaves(view: view, k: k, excluded: excluded, candidates: w.candidates,
                                         scores: &w.scores, kept: &w.kept, selection: &w.selection)
                observer?(depth, w.kept.map { w.candidates[Int($0)] })
                return SearchResult(items: items, statistics: statistics)
            }
        }
        return SearchResult(items: [], statistics: statistics)  // unreachable: the loop ends on the leaves
    }

    /// Lists the children of `parents` (nodes of `level - 1`; for `level == 0`, the root itself)
    /// into `candidates`, parent by parent, and writes their scores into `scores`. In place, one
    /// run per parent, when the session scores rows in place; otherwise gathered into `embeddings`
    /// and scored in one call. O(candidates · model cost).
    static func scoreChildren<View: TreeView, Session: ScoringSession>(
        view: View, session: inout Session, level: Int, parents: [Int32], candidates: inout [Int32],
        scores: inout [Float], embeddings: inout Matrix, scratch: inout [Float]
    ) {
        candidates.removeAll(keepingCapacity: true)
        if level == 0 {
            candidates.append(0)
        } else {
            for node in parents {
                for child in view.children(of: Int(node), level: level - 1) { candidates.append(Int32(child)) }
            }
        }
        guard session.scoresRowsInPlace else {
            view.gatherEmbeddings(level: level, nodes: candidates, into: &embeddings)
            session.score(nodes: embeddings, level: level, into: &scores)
            return
        }
        let m = candidates.count
        if scores.count < m { scores.append(contentsOf: repeatElement(0, count: m - scores.count)) }
        if scores.count > m { scores.removeLast(scores.count - m) }
        let d = view.dimension
        scores.withUnsafeMutableBufferPointer { out in
            var offset = 0
            func scoreRun(_ range: Range<Int>) {
                let at = offset
                view.forEachEmbeddingRun(level: level, nodes: range, scratch: &scratch) { first, rows in
                    let start = at + first - range.lowerBound
                    session.score(rows: rows, level: level,
                                  into: UnsafeMutableBufferPointer(rebasing: out[start ..< start + rows.count / d]))
                }
                offset += range.count
            }
            if level == 0 {
                scoreRun(0 ..< 1)
            } else {
                for node in parents { scoreRun(view.children(of: Int(node), level: level - 1)) }
            }
        }
    }

    /// The best `keep` of `candidates` by score (ties: smaller node), into `beam` in increasing
    /// node order. O(candidates) expected.
    static func selectBeam(keep: Int, candidates: [Int32], scores: [Float], kept: inout [Int32],
                           selection: inout PartialTopK, into beam: inout [Int32]) {
        scores.withUnsafeBufferPointer { s in
            selection.select(k: keep, scores: UnsafeBufferPointer(rebasing: s[0 ..< candidates.count]),
                             tieKey: { UInt64(UInt32(bitPattern: candidates[$0])) }, into: &kept)
        }
        beam.removeAll(keepingCapacity: true)
        for position in kept { beam.append(candidates[Int(position)]) }
        beam.sort()
    }

    /// The best `k` leaves of `candidates` whose items are not `excluded` (ties: smaller item id),
    /// best first; `kept` ends as their positions in the same order. Excluded leaves' scores are
    /// overwritten with NaN. O(candidates) expected plus O(k log k).
    static func selectLeaves<View: TreeView>(view: View, k: Int, excluded: Set<ItemID>, candidates: [Int32],
                                             scores: inout [Float], kept: inout [Int32],
                                             selection: inout PartialTopK) -> [ScoredItem] {
        if !excluded.isEmpty {
            for (i, leaf) in candidates.enumerated() where excluded.contains(view.item(atLeaf: Int(leaf))) {
                scores[i] = .nan
            }
        }
        scores.withUnsafeBufferPointer { s in
            selection.select(k: k, scores: UnsafeBufferPointer(rebasing: s[0 ..< candidates.count]),
                             tieKey: { view.item(atLeaf: Int(candidates[$0])).rawValue }, into: &kept)
        }
        var items = kept.map { ScoredItem(item: view.item(atLeaf: Int(candidates[Int($0)])), score: scores[Int($0)]) }
        // Ties in score are reported by smaller item id, as every retriever does.
        var order = Array(items.indices)
        order.sort { items[$0].score > items[$1].score || (items[$0].score == items[$1].score && items[$0].item < items[$1].item) }
        let positions = kept
        for (j, i) in order.enumerated() { kept[j] = positions[i] }
        items = order.map { items[$0] }
        return items
    }
}

/// Reusable buffers of one level-synchronous batch of beam searches.
struct BatchBeamWorkspace: Sendable {
    /// Per query: the nodes its beam kept on the last level, in increasing order.
    var beams: [[Int32]] = []
    /// Per query: its result, best first (filled on the leaf level).
    var results: [[ScoredItem]] = []
    /// The sorted, de-duplicated union of all beams (the parents of this level's candidates).
    var parents: [Int32] = []
    /// `parentStarts[j] ..< parentStarts[j + 1]`: where the children of `parents[j]` are in `nodes`
    /// (one more entry than `parents`).
    var parentStarts: [Int32] = []
    /// The children of `parents`, parent by parent: this level's candidates of all queries, once each.
    var nodes: [Int32] = []
    /// Fused levels: `queries × nodes.count` scores, row-major by query.
    var scores: [Float] = []
    /// One query's candidates in the order the single search pushes them, and their scores.
    var ownNodes: [Int32] = []
    var ownScores: [Float] = []
    var embeddings: Matrix
    var kept: [Int32] = []
    var selection = PartialTopK()
    var scratch: [Float] = []

    init(dimension: Int) { embeddings = Matrix(rows: 0, cols: dimension) }
}

extension BeamSearch {
    /// Several beam searches (the interests of one user) run level by level together.
    ///
    /// On each level the beams' nodes are merged into one sorted, de-duplicated list of parents.
    /// Where the beams overlap (the union of their candidates is at most half of all their
    /// candidates, as near the root, where every beam holds the whole level), the union's children
    /// (contiguous per parent) are gathered once and scored for every query in ONE call
    /// (``ScoringSession/score(sessions:nodes:level:into:)``: one GEMM for inner product), and each
    /// query reads its own candidates' scores by one lookup per parent. Where the beams have
    /// diverged, each query gathers and scores its own candidates, as the single search does:
    /// scoring every query against a union about `K` times larger, and gathering that union, costs
    /// more than it saves (measured: 5.0x against 4.5x one vector's CPU time for 4 diverging
    /// interests at 10^6 items, beam 400). The choice depends on node counts only, never on timing.
    ///
    /// Every query's result equals what ``run(view:session:k:beamWidth:excluded:workspace:observer:)``
    /// returns for it alone (up to float summation order: candidates are pushed in the same
    /// order), and so do its statistics (its own candidates).
    /// Cost per level: sorting `queries · beamWidth` parents, then either one gather of the union
    /// and one fused scoring call, or one gather and scoring call per query; `O(candidates)`
    /// selection per query.
    static func runBatch<View: TreeView, Session: ScoringSession>(
        view: View, sessions: inout [Session], k: Int, beamWidth: Int, excluded: [Set<ItemID>],
        workspace w: inout BatchBeamWorkspace
    ) -> [SearchResult] {
        let q = sessions.count
        let depth = view.depth
        let beamWidth = max(beamWidth, k)
        var statistics = [SearchStatistics](repeating: SearchStatistics(), count: q)
        while w.beams.count < q { w.beams.append([]); w.results.append([]) }
        for i in 0 ..< q {
            w.beams[i].removeAll(keepingCapacity: true)
            w.beams[i].append(0)
        }
        for level in (depth == 0 ? 0 : 1) ... depth {
            let fused = collectSharedCandidates(view: view, level: level, queries: q, workspace: &w)
            let m = w.nodes.count
            if fused {
                view.gatherEmbeddings(level: level, nodes: w.nodes, into: &w.embeddings)
                Session.score(sessions: &sessions, nodes: w.embeddings, level: level, into: &w.scores)
            }
            let isLeaf = level == depth
            for i in 0 ..< q {
                // This query's candidates, each parent of its beam in beam order and then its
                // children in order (the order in which the single search lists them), with scores.
                if fused {
                    w.ownNodes.removeAll(keepingCapacity: true)
                    w.ownScores.removeAll(keepingCapacity: true)
                    if depth == 0 {
                        w.ownNodes.append(0)
                        w.ownScores.append(w.scores[i])
                    } else {
                        for parent in w.beams[i] {
                            let slot = sortedPosition(of: parent, in: w.parents)
                            let start = i * m + Int(w.parentStarts[slot])
                            let count = Int(w.parentStarts[slot + 1] - w.parentStarts[slot])
                            w.ownScores.append(contentsOf: w.scores[start ..< start + count])
                            for child in view.children(of: Int(parent), level: level - 1) { w.ownNodes.append(Int32(child)) }
                        }
                    }
                } else {
                    scoreChildren(view: view, session: &sessions[i], level: level, parents: w.beams[i],
                                  candidates: &w.ownNodes, scores: &w.ownScores, embeddings: &w.embeddings,
                                  scratch: &w.scratch)
                }
                statistics[i].steps += 1
                statistics[i].modelEvaluations += w.ownNodes.count
                if !isLeaf {
                    let keep = level == depth - 1 && !excluded[i].isEmpty ? beamWidth + excluded[i].count : beamWidth
                    selectBeam(keep: keep, candidates: w.ownNodes, scores: w.ownScores, kept: &w.kept,
                               selection: &w.selection, into: &w.beams[i])
                } else {
                    w.results[i] = selectLeaves(view: view, k: k, excluded: excluded[i], candidates: w.ownNodes,
                                                scores: &w.ownScores, kept: &w.kept, selection: &w.selection)
                }
            }
        }
        return (0 ..< q).map { SearchResult(items: w.results[$0], statistics: statistics[$0]) }
    }

    /// Decides whether `level` is scored fused and, if so, fills `w.parents` (the sorted union of
    /// the first `queries` beams, which hold nodes of `level - 1`), `w.parentStarts` and `w.nodes`
    /// (their children, parent by parent). Fused when the union's children are at most half of
    /// all the beams' children counted per beam. A one-node tree (`level == 0`, depth 0) is fused
    /// with the root leaf as the only candidate. O(u log u) for `u = queries · beamWidth` parents,
    /// plus the children listed when fused.
    /// - Returns: whether the level is fused (otherwise `w.nodes` is empty).
    private static func collectSharedCandidates<View: TreeView>(
        view: View, level: Int, queries q: Int, workspace w: inout BatchBeamWorkspace
    ) -> Bool {
        w.parents.removeAll(keepingCapacity: true)
        w.parentStarts.removeAll(keepingCapacity: true)
        w.nodes.removeAll(keepingCapacity: true)
        if level == 0 {
            w.nodes.append(0)
            return true
        }
        var perBeam = 0
        for i in 0 ..< q {
            w.parents.append(contentsOf: w.beams[i])
            for parent in w.beams[i] { perBeam += view.children(of: Int(parent), level: level - 1).count }
        }
        w.parents.sort()
        var unique = 0
        for j in 0 ..< w.parents.count where j == 0 || w.parents[j] != w.parents[unique - 1] {
            w.parents[unique] = w.parents[j]
            unique += 1
        }
        w.parents.removeLast(w.parents.count - unique)
        var union = 0
        for parent in w.parents { union += view.children(of: Int(parent), level: level - 1).count }
        guard union * 2 <= perBeam else { return false }
        for parent in w.parents {
            w.parentStarts.append(Int32(w.nodes.count))
            for child in view.children(of: Int(parent), level: level - 1) { w.nodes.append(Int32(child)) }
        }
        w.parentStarts.append(Int32(w.nodes.count))
        return true
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
