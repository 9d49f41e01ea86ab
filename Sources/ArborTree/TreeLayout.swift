@_exported import ArborCore

/// One level of a tree: the embeddings of its nodes and where each node's children start.
public struct TreeLevel: Sendable, Equatable {
    /// `nodeCount × dimension`, row-major: node `i`'s embedding is row `i`.
    public var embeddings: Matrix
    /// For inner levels, `nodeCount + 1` offsets into the next level: node `i`'s children are
    /// `childOffsets[i] ..< childOffsets[i + 1]`. Non-decreasing, first 0, last = next level's count.
    /// Empty at the leaf level.
    public var childOffsets: [Int32]

    /// A level from its embeddings and child offsets (checked by ``TreeLayout/validate()``).
    public init(embeddings: Matrix, childOffsets: [Int32]) {
        self.embeddings = embeddings
        self.childOffsets = childOffsets
    }

    /// Number of nodes on this level.
    public var nodeCount: Int { embeddings.rows }
}

/// A TDM item tree held in memory: levels `0` (the root) to `depth` (the leaves).
///
/// Invariants (checked by ``validate()``):
/// - level 0 has exactly one node; every level's embeddings have `dimension` columns;
/// - every inner node has between 1 and `fanOut` children, and each level's children are contiguous
///   and in parent order (children of node `i` precede those of node `i + 1`);
/// - every leaf sits at level `depth` and holds exactly one item: leaf `j` is `leafItems[j]`;
///   item ids are unique. Items whose branch ends early hang below chains of one-child nodes.
public struct TreeLayout: Sendable, Equatable {
    /// Embedding width of every node.
    public let dimension: Int
    /// Largest number of children of one node (2 ... 64; TDM uses 2).
    public let fanOut: Int
    /// Levels from the root (index 0) to the leaves (index `depth`).
    public var levels: [TreeLevel]
    /// Item at each leaf, in leaf order (`levels[depth].nodeCount` entries).
    public var leafItems: [ItemID]
    /// Category of each leaf's item, in leaf order; empty when the catalogue has none.
    public var leafCategories: [UInt32]

    /// A tree from its parts; call ``validate()`` before serving it (the builders do).
    public init(dimension: Int, fanOut: Int, levels: [TreeLevel], leafItems: [ItemID],
                leafCategories: [UInt32] = []) {
        self.dimension = dimension
        self.fanOut = fanOut
        self.levels = levels
        self.leafItems = leafItems
        self.leafCategories = leafCategories
    }

    /// Index of the leaf level (the root is level 0).
    public var depth: Int { levels.count - 1 }
    /// Number of items (= leaves).
    public var itemCount: Int { leafItems.count }
    /// Total number of nodes over all levels.
    public var nodeCount: Int { levels.reduce(0) { $0 + $1.nodeCount } }
    /// Nodes on each level, root first.
    public var levelNodeCounts: [Int] { levels.map(\.nodeCount) }

    /// Checks every invariant listed on the type.
    /// - Throws: ``ArborError`` naming the level and node that breaks one.
    public func validate() throws(ArborError) {
        guard let root = levels.first, root.nodeCount == 1 else {
            throw .invalidArgument(name: "tree", reason: "level 0 must hold exactly one root node")
        }
        guard (2...64).contains(fanOut) else {
            throw .invalidArgument(name: "fanOut", reason: "must be in 2...64, got \(fanOut)")
        }
        for (l, level) in levels.enumerated() {
            guard level.embeddings.cols == dimension else {
                throw .dimensionMismatch(field: "level \(l) embeddings", expected: dimension,
                                         found: level.embeddings.cols)
            }
            if let bad = level.embeddings.firstNonFiniteRow() {
                throw .nonFiniteValue(field: "level \(l) embeddings", row: bad)
            }
            if l == depth {
                guard level.childOffsets.isEmpty else {
                    throw .invalidArgument(name: "tree", reason: "leaf level \(l) must have no child offsets")
                }
                continue
            }
            let next = levels[l + 1].nodeCount
            guard level.childOffsets.count == level.nodeCount + 1, level.childOffsets.first == 0,
                  Int(level.childOffsets.last!) == next else {
                throw .invalidArgument(name: "tree", reason: "level \(l) child offsets do not cover level \(l + 1)")
            }
            for i in 0..<level.nodeCount {
                let c = Int(level.childOffsets[i + 1] - level.childOffsets[i])
                guard c >= 1 && c <= fanOut else {
                    throw .invalidArgument(name: "tree", reason: "level \(l) node \(i) has \(c) children (fan-out \(fanOut))")
                }
            }
        }
        guard leafItems.count == levels[depth].nodeCount else {
            throw .dimensionMismatch(field: "leaf items", expected: levels[depth].nodeCount, found: leafItems.count)
        }
        guard leafCategories.isEmpty || leafCategories.count == leafItems.count else {
            throw .dimensionMismatch(field: "leaf categories", expected: leafItems.count, found: leafCategories.count)
        }
        var seen = Set<ItemID>(minimumCapacity: leafItems.count)
        for id in leafItems where !seen.insert(id).inserted { throw .duplicateItem(id) }
    }
}
