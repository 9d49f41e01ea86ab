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
    /// Lends the embeddings of the contiguous nodes `nodes` on `level` (such as the children of one
    /// node) in place, without the copy of ``gatherEmbeddings(level:nodes:into:)``: `body(first,
    /// rows)` once per consecutive piece (one piece unless the range crosses a storage chunk),
    /// `rows` holding nodes `first ..< first + rows.count / dimension`, row-major. An index file's
    /// rows are read from the map (copied into `scratch` only if the map is misaligned). The buffer
    /// is valid only inside `body`. O(pieces).
    func forEachEmbeddingRun(level: Int, nodes: Range<Int>, scratch: inout [Float],
                             _ body: (Int, UnsafeBufferPointer<Float>) -> Void)
    /// The item held by leaf `leaf` (an index on level `depth`). O(1).
    func item(atLeaf leaf: Int) -> ItemID
}

extension TreeView {
    /// Through a copy: ``gatherEmbeddings(level:nodes:into:)`` into a fresh matrix, lent whole.
    /// For views that cannot lend rows in place. O(count · dimension), allocates.
    public func forEachEmbeddingRun(level: Int, nodes: Range<Int>, scratch: inout [Float],
                                    _ body: (Int, UnsafeBufferPointer<Float>) -> Void) {
        guard !nodes.isEmpty else { return }
        var rows = Matrix(rows: 0, cols: dimension)
        gatherEmbeddings(level: level, nodes: nodes.map { Int32($0) }, into: &rows)
        rows.withUnsafeBufferPointer { body(nodes.lowerBound, $0) }
    }
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

    /// The rows of `nodes` in the level's embedding matrix, in one piece. O(1).
    public func forEachEmbeddingRun(level: Int, nodes: Range<Int>, scratch: inout [Float],
                                    _ body: (Int, UnsafeBufferPointer<Float>) -> Void) {
        let matrix = levels[level].embeddings
        precondition(nodes.lowerBound >= 0 && nodes.upperBound <= matrix.rows,
                     "embedding run \(nodes) out of 0..<\(matrix.rows)")
        guard !nodes.isEmpty else { return }
        matrix.withUnsafeBufferPointer { all in
            body(nodes.lowerBound, UnsafeBufferPointer(rebasing: all[nodes.lowerBound * dimension ..< nodes.upperBound * dimension]))
        }
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
