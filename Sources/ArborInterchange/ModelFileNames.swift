import ArborInference

/// Names of the tensors a model file holds besides the index's own named tensors (whose names it
/// keeps): the item-id lists (index extra values, stored as I64 tensors) and the tree.
public enum ModelFileNames {
    /// `[n_l, d]` F32: the node embeddings of level `l` (root = 0, leaves last).
    public static func levelEmbeddings(_ l: Int) -> String { "tree.level.\(l).embeddings" }
    /// `[n_l + 1]` I64: level `l`'s child offsets (children of node `j` are `offsets[j] ..< offsets[j+1]`
    /// of level `l + 1`); every level but the leaves.
    public static func levelOffsets(_ l: Int) -> String { "tree.level.\(l).offsets" }
    /// `[itemCount]` I64: the item id at each leaf.
    public static let leafItems = "tree.leaf-items"
    /// `[itemCount]` I64: the category of each leaf, when the tree has them.
    public static let leafCategories = "tree.leaf-categories"

    /// The index extra values that are item-id lists (UInt64 little-endian), one per model kind
    /// that has a behaviour table; exported as I64 tensors of the same name.
    public static let idLists: [String] = [
        ModelTensorNames.behaviourIDs, TwoTowerEncoder.itemIDsExtraName, MINDEncoder.itemIDsExtraName,
        SDMEncoder.itemIDsExtraName,
    ]
}
