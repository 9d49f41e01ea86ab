/// How far a format 3 index has drifted from the tree it was built as, and whether to rebuild.
///
/// Updates never move inner nodes: an added item joins the leaf parent its descent chose, a
/// removed one leaves a free slot. As the catalogue changes, leaf parents fill up or empty out
/// and inner embeddings stop being the mean of their items, so recall of the tree slowly drops.
public struct IndexBalance: Sendable, Equatable {
    /// Live items now, and at build time.
    public var itemCount: Int, builtItemCount: Int
    /// Update batches committed, items added and removed since the build.
    public var generation: Int, added: Int, removed: Int
    /// Leaf parents; those with no free slot; those with no live item.
    public var leafParents: Int, fullLeafParents: Int, emptyLeafParents: Int
    /// Free leaf slots in the whole tree.
    public var freeSlots: Int
    /// Most live items under one leaf parent, and the mean.
    public var largestLeafParent: Int, meanLeafParent: Double

    /// Changed items (added + removed) over items at build time.
    public var churn: Double { builtItemCount == 0 ? 0 : Double(added + removed) / Double(builtItemCount) }

    /// Why a rebuild is due (empty when it is not): churn of 25% or more, half of the leaf
    /// parents full, or a tenth of them empty.
    public var rebuildReasons: [String] {
        var out: [String] = []
        if churn >= 0.25 { out.append(String(format: "%.0f%% of the items changed since the build", churn * 100)) }
        if leafParents > 0 && 2 * fullLeafParents >= leafParents {
            out.append("\(fullLeafParents) of \(leafParents) leaf parents are full")
        }
        if leafParents > 0 && 10 * emptyLeafParents >= leafParents && emptyLeafParents > 0 {
            out.append("\(emptyLeafParents) of \(leafParents) leaf parents are empty")
        }
        if freeSlots == 0 && leafParents > 0 { out.append("no free leaf slot is left") }
        return out
    }
}

extension IndexReader {
    /// The balance of the index as last committed (one read transaction over the child ends);
    /// `nil` for a file that cannot be updated (format 1 or 2, or a one-item tree).
    /// - Complexity: O(leaf parents).
    public func balance() throws(IndexError) -> IndexBalance? {
        guard header.isUpdatable else { return nil }
        let path = self.path
        return try reading { txn in
            let current = try currentHeader(in: txn, path: path)
            let l = depth - 1
            let offsets = try loadChunked(txn, count: levelNodeCounts[l] + 1, perChunk: geometry.offsetsPerChunk,
                                          zero: Int32(0)) { .childOffsets(level: l, chunk: $0) }
            guard let ends = try loadSlotted(txn) else { return nil }
            var full = 0, empty = 0, free = 0, largest = 0, live = 0
            for p in 0 ..< ends.count {
                let n = max(0, Int(ends[p]) - Int(offsets[p])), capacity = max(0, Int(offsets[p + 1]) - Int(offsets[p]))
                if n >= capacity { full += 1 }
                if n == 0 { empty += 1 }
                free += max(0, capacity - n)
                largest = max(largest, n)
                live += n
            }
            return IndexBalance(itemCount: current.itemCount, builtItemCount: current.builtItemCount,
                                generation: current.generation, added: current.addedSinceBuild,
                                removed: current.removedSinceBuild, leafParents: ends.count, fullLeafParents: full,
                                emptyLeafParents: empty, freeSlots: free, largestLeafParent: largest,
                                meanLeafParent: ends.isEmpty ? 0 : Double(live) / Double(ends.count))
        }
    }
}
