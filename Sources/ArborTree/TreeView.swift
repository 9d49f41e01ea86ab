import ArborMath

/// Read access to a tree's structure and node embeddings, as beam search needs it.
///
/// Two implementations: ``TreeLayout`` (in memory) and the snapshot of an index file (zero-copy
/// views of the memory-mapped LMDB environment, valid only inside the snapshot's closure).
public protocol TreeView {
    /// Index of the leaf level (root = 0).
    var depth: Int { get }
    /// Embedding width.
    var dimension: Int { get }
    /// Number of nodes on `level`.
    func nodeCount(level: Int) -> Int
    /// The children of `node` (on `level < depth`), as node indices on `level + 1`. O(1).
    func children(of node: Int, level: Int) -> Range<Int>
    /// Copies the embeddings of `nodes` (indices on `level`) into `output`, one row per node, in
    /// order; `output` is resized to `nodes.count` rows and keeps its capacity. O(count · dimension).
    func gatherEmbeddings(level: Int, nodes: [Int32], into output: inout Matrix)
    /// The item held by leaf `leaf` (an index on level `depth`). O(1).
    func item(atLeaf leaf: Int) -> ItemID
}

/// Something that can lend a ``TreeView`` for the duration of a closure (one query or one batch).
public protocol TreeSource: Sendable {
    associatedtype View: TreeView
    /// Embedding width of the tree's nodes.
    var dimension: Int { get }
    /// Number of items (leaves).
    var itemCount: Int { get }
    /// Number of nodes on each level, root (one node) to leaves.
    var levelNodeCounts: [Int] { get }
    /// Calls `body` with a consistent view of the tree; the view must not escape `body`.
    func withView<R>(_ body: (borrowing View) throws -> R) throws -> R
}

extension TreeLayout: TreeView {
    /// Nodes on `level`. O(1).
    public func nodeCount(level: Int) -> Int { levels[level].nodeCount }

    /// The children of `node`, from the level's child offsets. O(1).
    public func children(of node: Int, level: Int) -> Range<Int> {
        let offsets = levels[level].childOffsets
        return Int(offsets[node]) ..< Int(offsets[node + 1])
    }

    /// Copies the rows of `nodes` from the level's embedding matrix into `output`. O(count · d).
    public func gatherEmbeddings(level: Int, nodes: [Int32], into output: inout Matrix) {
        precondition(output.cols == dimension, "gather: output has \(output.cols) columns, tree \(dimension)")
        output.gatherRows(from: levels[level].embeddings, rows: nodes)
    }

    /// The item at leaf `leaf`. O(1).
    public func item(atLeaf leaf: Int) -> ItemID { leafItems[leaf] }
}

extension TreeLayout: TreeSource {
    /// An in-memory tree is its own view.
    public typealias View = TreeLayout
    /// Calls `body` with the tree itself (no transaction to open).
    public func withView<R>(_ body: (borrowing TreeLayout) throws -> R) throws -> R { try body(self) }
}
