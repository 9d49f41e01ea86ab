// The HNSW algorithms over ``HNSWGraphPointers``, after the paper and hnswlib (`hnswalg.h`):
// greedy descent on upper layers, ef-search on one layer (Algorithm 2), neighbour selection
// (Algorithm 3 / 4), and insertion (Algorithm 1) with pruning of full neighbour lists.
//
// Concurrency: with `locks == nil` nothing is locked (one writer, or readers only). With locks (a
// concurrent build) every read or write of a neighbour list holds that node's stripe; a thread never
// holds two stripes at once.

import ArborCore
import CArborKernels

/// Which visited nodes may enter the result list.
struct HNSWResultFilter {
    /// Skip nodes with a deletion mark (queries); builds link to deleted nodes like any other.
    var skipDeleted: Bool
    /// Items the query excludes (`nil` when none).
    var excluded: Set<ItemID>?

    static let all = HNSWResultFilter(skipDeleted: false, excluded: nil)

    @inline(__always) func accepts(_ node: Int32, _ g: HNSWGraphPointers) -> Bool {
        if !skipDeleted { return true }
        if g.deleted[Int(node)] { return false }
        if let excluded, excluded.contains(ItemID(rawValue: g.ids[Int(node)])) { return false }
        return true
    }
}

extension HNSWGraphPointers {
    /// The neighbours of `node` on `layer`: the slots themselves, or (under a concurrent build) a copy
    /// taken under the node's lock into `scratch`.
    @inline(__always)
    func neighbours(of node: Int32, layer: Int, locks: HNSWStripedLocks?, scratch: UnsafeMutablePointer<Int32>)
        -> (UnsafePointer<Int32>, Int)
    {
        let (slots, count) = list(node, layer: layer)
        guard let locks else { return (UnsafePointer(slots), Int(count.pointee)) }
        let n = locks.withLock(node) { () -> Int in
            let n = Int(count.pointee)
            scratch.update(from: slots, count: n)
            return n
        }
        return (UnsafePointer(scratch), n)
    }

    /// Greedy descent from `entry` through layers `from` down to `to + 1` (the paper's ef = 1 phase):
    /// on each layer, move to the closest neighbour while one is closer. Returns the node reached.
    func greedyDescent(
        query q: UnsafePointer<Float>, entry: Int32, entryDistance: Float, from: Int, to: Int,
        context ctx: HNSWSearchContext, locks: HNSWStripedLocks?, statistics: inout SearchStatistics
    ) -> (node: Int32, distance: Float) {
        var current = entry, currentDistance = entryDistance
        var layer = from
        while layer > to {
            var changed = true
            while changed {
                changed = false
                statistics.steps += 1
                let (nb, n) = neighbours(of: current, layer: layer, locks: locks, scratch: ctx.neighbours)
                statistics.modelEvaluations += n
                distances(q, nb, count: n, into: ctx.batchDistances)
                for j in 0..<n {
                    let d = ctx.batchDistances[j]
                    if d < currentDistance {
                        currentDistance = d
                        current = nb[j]
                        changed = true
                    }
                }
            }
            layer -= 1
        }
        return (current, currentDistance)
    }

    /// ef-search on one layer (hnswlib `searchBaseLayerST`): best-first expansion from `entry`, keeping
    /// the `ef` closest accepted nodes. Nodes the filter rejects are expanded but never kept.
    /// Returns the result heap (worst on top) over `ctx`'s memory; valid until the context is reused.
    func searchLayer(
        query q: UnsafePointer<Float>, entry: Int32, entryDistance: Float, layer: Int, ef: Int,
        filter: HNSWResultFilter, context ctx: HNSWSearchContext, locks: HNSWStripedLocks?,
        statistics: inout SearchStatistics
    ) -> HNSWCandidateHeap {
        let visited = ctx.visited, epoch = ctx.nextEpoch()
        var top = HNSWCandidateHeap(base: ctx.topStorage)      // max-heap on distance: worst result on top
        var queue = HNSWCandidateHeap(base: ctx.queueStorage)  // max-heap on -distance: closest candidate on top
        var bound = Float.infinity                          // distance of the worst kept result
        if filter.accepts(entry, self) {
            top.push(entryDistance, entry)
            bound = entryDistance
        }
        queue.push(-entryDistance, entry)
        visited[Int(entry)] = epoch

        while !queue.isEmpty {
            let closest = queue.top
            if -closest.distance > bound && top.count == ef { break }
            queue.pop()
            statistics.steps += 1
            if !queue.isEmpty, locks == nil {
                // The next node to expand is probably the new top: bring its list in while this
                // one is processed (hnswlib does the same).
                let (slots, count) = list(queue.top.node, layer: layer)
                arbor_prefetch(count, 4)
                arbor_prefetch(slots, capacity(layer: layer) * 4)
            }
            let (nb, n) = neighbours(of: closest.node, layer: layer, locks: locks, scratch: ctx.neighbours)
            // The unvisited neighbours first, then their distances in one batched call (which
            // prefetches each next vector); the same order and bits as one distance at a time.
            var fresh = 0
            for j in 0..<n {
                let node = nb[j]
                if visited[Int(node)] == epoch { continue }
                visited[Int(node)] = epoch
                ctx.batchNodes[fresh] = node
                fresh += 1
            }
            if fresh == 0 { continue }
            distances(q, ctx.batchNodes, count: fresh, into: ctx.batchDistances)
            statistics.modelEvaluations += fresh
            for j in 0..<fresh {
                let node = ctx.batchNodes[j], d = ctx.batchDistances[j]
                if top.count < ef || d < bound {
                    queue.push(-d, node)
                    if filter.accepts(node, self) {
                        top.push(d, node)
                        if top.count > ef { top.pop() }
                        bound = top.top.distance
                    }
                }
            }
        }
        return top
    }

    /// Empties `heap` into `out` sorted by ascending distance (ties: smaller node first); returns the count.
    func drainSorted(_ heap: inout HNSWCandidateHeap, into out: UnsafeMutablePointer<HNSWCandidate>) -> Int {
        let n = heap.count
        var i = n
        while !heap.isEmpty {
            i -= 1
            out[i] = heap.pop()
        }
        // Insertion pass for equal distances (the heap leaves their order arbitrary).
        var a = 1
        while a < n {
            let x = out[a]
            var b = a
            while b > 0, out[b - 1].distance == x.distance, out[b - 1].node > x.node {
                out[b] = out[b - 1]
                b -= 1
            }
            out[b] = x
            a += 1
        }
        return n
    }

    /// Chooses at most `limit` neighbours among `count` candidates sorted by ascending distance to the
    /// base element, compacting them into the front of `candidates`; returns how many were kept.
    /// `.heuristic` is Algorithm 4: keep a candidate only if it is closer to the base element than to
    /// every neighbour already kept. `pruned` is scratch for `.heuristicKeepingPruned`.
    func selectNeighbours(
        _ candidates: UnsafeMutablePointer<HNSWCandidate>, count: Int, limit: Int,
        rule: HNSWNeighbourSelection, pruned: UnsafeMutablePointer<HNSWCandidate>
    ) -> Int {
        if count <= limit || rule == .simple { return min(count, limit) }
        var kept = 0, discarded = 0
        for i in 0..<count {
            if kept == limit { break }
            let c = candidates[i]
            let v = vector(c.node)
            var diverse = true
            for s in 0..<kept where distance(v, candidates[s].node) < c.distance {
                diverse = false
                break
            }
            if diverse {
                candidates[kept] = c
                kept += 1
            } else if rule == .heuristicKeepingPruned, discarded < limit {
                pruned[discarded] = c
                discarded += 1
            }
        }
        if rule == .heuristicKeepingPruned {
            var p = 0
            while kept < limit, p < discarded {
                candidates[kept] = pruned[p]
                kept += 1
                p += 1
            }
        }
        return kept
    }

    /// Adds `newNode` (at distance `d` from `node`) to `node`'s list on `layer`, pruning with `rule`
    /// when the list is full (hnswlib `connectNewElement`, the neighbour side).
    func link(_ node: Int32, to newNode: Int32, distance d: Float, layer: Int,
              rule: HNSWNeighbourSelection, context ctx: HNSWSearchContext, locks: HNSWStripedLocks?)
    {
        func update() {
            let (slots, countCell) = self.list(node, layer: layer)
            let n = Int(countCell.pointee), capacity = self.capacity(layer: layer)
            // Already linked (a concurrent build can get there first through another path).
            for j in 0..<n where slots[j] == newNode { return }
            if n < capacity {
                slots[n] = newNode
                countCell.pointee = Int32(n + 1)
                return
            }
            // Full: choose `capacity` among the current neighbours and the new node.
            let candidates = ctx.prune
            let base = self.vector(node)
            candidates[0] = HNSWCandidate(distance: d, node: newNode)
            for j in 0..<n { candidates[j + 1] = HNSWCandidate(distance: self.distance(base, slots[j]), node: slots[j]) }
            hnswSortByDistance(candidates, count: n + 1)
            let kept = self.selectNeighbours(candidates, count: n + 1, limit: capacity, rule: rule, pruned: ctx.pruned)
            for j in 0..<kept { slots[j] = candidates[j].node }
            countCell.pointee = Int32(kept)
        }
        if let locks { locks.withLock(node) { update() } } else { update() }
    }

    /// Inserts `node` (vector and level already stored, lists empty) into the graph whose current entry
    /// point and top level are in `entry` (Algorithm 1). Raises the entry point when the node's level
    /// is above the current top.
    func insert(
        _ node: Int32, efConstruction: Int, rule: HNSWNeighbourSelection, entry: PosixMutex<HNSWEntryPoint>,
        context ctx: HNSWSearchContext, locks: HNSWStripedLocks?
    ) {
        let level = Int(levels[Int(node)])
        let start = entry.withLock { $0 }
        if start.node < 0 {
            entry.withLock { state in if state.node < 0 { state = HNSWEntryPoint(node: node, level: Int32(level)) } }
            return
        }
        let q = vector(node)
        var statistics = SearchStatistics()
        var current = start.node
        var currentDistance = distance(q, current)
        let top = Int(start.level)
        if level < top {
            (current, currentDistance) = greedyDescent(
                query: q, entry: current, entryDistance: currentDistance, from: top, to: level,
                context: ctx, locks: locks, statistics: &statistics)
        }
        var layer = min(level, top)
        while layer >= 0 {
            var found = searchLayer(
                query: q, entry: current, entryDistance: currentDistance, layer: layer, ef: efConstruction,
                filter: .all, context: ctx, locks: locks, statistics: &statistics)
            let sorted = ctx.sorted
            var n = drainSorted(&found, into: sorted)
            // Never link to itself (possible only if the node was reachable already).
            var w = 0
            for r in 0..<n where sorted[r].node != node { sorted[w] = sorted[r]; w += 1 }
            n = w
            if n > 0 {
                current = sorted[0].node
                currentDistance = sorted[0].distance
            }
            let kept = selectNeighbours(sorted, count: n, limit: m, rule: rule, pruned: ctx.pruned)
            let (slots, countCell) = list(node, layer: layer)
            func write() {
                let existing = Int(countCell.pointee)
                if existing == 0 {
                    for j in 0..<kept { slots[j] = sorted[j].node }
                    countCell.pointee = Int32(kept)
                    return
                }
                // Concurrent builds only: another thread reached this node through a layer above and
                // linked to it here before this list was written. Keep those links (overwriting them
                // would leave their nodes without an in-link); prune when over capacity.
                let merged = ctx.prune
                var total = 0
                for j in 0..<kept { merged[total] = sorted[j]; total += 1 }
                for e in 0..<existing {
                    let other = slots[e]
                    var duplicate = false
                    for j in 0..<kept where sorted[j].node == other { duplicate = true; break }
                    if !duplicate { merged[total] = HNSWCandidate(distance: distance(q, other), node: other); total += 1 }
                }
                if total > capacity(layer: layer) {
                    hnswSortByDistance(merged, count: total)
                    total = selectNeighbours(merged, count: total, limit: capacity(layer: layer), rule: rule, pruned: ctx.pruned)
                }
                for j in 0..<total { slots[j] = merged[j].node }
                countCell.pointee = Int32(total)
            }
            if let locks { locks.withLock(node) { write() } } else { write() }
            for j in 0..<kept {
                link(sorted[j].node, to: node, distance: sorted[j].distance, layer: layer, rule: rule,
                     context: ctx, locks: locks)
            }
            layer -= 1
        }
        if level > top {
            entry.withLock { state in
                if Int32(level) > state.level { state = HNSWEntryPoint(node: node, level: Int32(level)) }
            }
        }
    }
}

/// The graph's entry point and top level (`node == -1` when empty).
struct HNSWEntryPoint: Sendable, Equatable {
    var node: Int32
    var level: Int32
}

/// Insertion sort by (distance, node); lists here hold at most `M0 + 1` entries.
func hnswSortByDistance(_ a: UnsafeMutablePointer<HNSWCandidate>, count n: Int) {
    var i = 1
    while i < n {
        let x = a[i]
        var j = i
        while j > 0, a[j - 1].distance > x.distance || (a[j - 1].distance == x.distance && a[j - 1].node > x.node) {
            a[j] = a[j - 1]
            j -= 1
        }
        a[j] = x
        i += 1
    }
}
