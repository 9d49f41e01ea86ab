/// One batch of changes to an index: items to remove, then items to add.
///
/// An id both removed and added in the same batch is *replaced*: its old leaf is freed and the new
/// vector descends the tree to its own place. The batch is applied by ``IndexUpdater/apply(_:)`` in
/// one LMDB write transaction: readers see all of it or none of it.
public struct IndexBatch: Sendable {
    /// Ids to remove; each must be in the index and appear once.
    public var removals: [ItemID]
    /// Ids to add, one per row of ``vectors``; each must be new (or removed in this batch) and
    /// appear once; `UInt64.max` is reserved.
    public var additions: [ItemID]
    /// `additions.count × dimension`, finite, each row's squared norm within
    /// ``Matrix/largestSquaredNorm``.
    public var vectors: Matrix
    /// Empty, or one category per addition (an index that stores categories records 0 for an
    /// addition without one; an index without categories refuses them).
    public var categories: [UInt32]

    /// A batch; see the properties for the rules each part must follow.
    public init(removals: [ItemID] = [], additions: [ItemID] = [], vectors: Matrix? = nil, categories: [UInt32] = []) {
        self.removals = removals
        self.additions = additions
        self.vectors = vectors ?? Matrix(rows: 0, cols: 0)
        self.categories = categories
    }

    /// Whether the batch changes nothing.
    public var isEmpty: Bool { removals.isEmpty && additions.isEmpty }
}

/// What one committed batch did.
public struct IndexUpdateSummary: Sendable, Equatable {
    /// Items added (replacements included).
    public var added: Int
    /// Items removed (replacements included).
    public var removed: Int
    /// Ids both removed and added.
    public var replaced: Int
    /// Additions that found no room below the leaf parents the descent reached and went to the
    /// best-scoring leaf parent with a free slot anywhere in the tree.
    public var placedByFallback: Int
    /// Live items after the batch.
    public var itemCount: Int
    /// Update batches committed since the build, this one included.
    public var generation: Int

    /// A summary; every field as documented on the property.
    public init(added: Int = 0, removed: Int = 0, replaced: Int = 0, placedByFallback: Int = 0, itemCount: Int = 0,
                generation: Int = 0) {
        self.added = added; self.removed = removed; self.replaced = replaced
        self.placedByFallback = placedByFallback; self.itemCount = itemCount; self.generation = generation
    }
}
