import ArborInference
import ArborCore

/// The shape of a two-tower / YouTube-DNN model (Covington et al., RecSys 2016; Yi et al.,
/// RecSys 2019): what the weights look like, independent of how they are trained.
///
/// - User tower: the embeddings of the user's most recent ``maxHistory`` behaviours (masked,
///   variable length) are averaged, then passed through an MLP
///   `dimension → hidden… → dimension` (ReLU between layers, none after the last), then, with
///   ``cosine``, scaled to unit L2 norm.
/// - Item tower: the item's embedding plus, when ``categoryCount`` > 0, its category's embedding;
///   with ``cosine``, scaled to unit L2 norm.
/// - Score: `user · item` (divided by ``temperature`` inside the training loss only; the ranking
///   does not depend on it).
///
/// Items are known to the model by a dense row `0 ..< itemCount` (the catalogue order: ascending
/// item id, see ``TwoTowerCatalog``).
public struct TwoTowerConfig: Sendable, Equatable, Codable {
    /// Number of items (rows of the item tables), >= 1.
    public var itemCount: Int
    /// Number of item categories (rows of the category table); 0 = no category embedding.
    public var categoryCount: Int
    /// Width of every embedding and of the user vector, >= 1.
    public var dimension: Int
    /// Hidden widths of the user tower's MLP (empty = one linear layer `dimension → dimension`).
    public var hidden: [Int]
    /// Most recent behaviours pooled by the user tower (older ones are dropped), >= 1.
    public var maxHistory: Int
    /// Unit-normalise both towers (cosine similarity); otherwise a raw dot product.
    public var cosine: Bool
    /// Softmax temperature of the training loss, > 0 (0.05–0.1 suits cosine; 1 suits dot products).
    public var temperature: Float
    /// The user tower pools the item tower's embedding table (one table of `itemCount` rows);
    /// otherwise it has a table of its own (YouTube-DNN's separate input embeddings).
    public var shareEmbeddings: Bool

    /// A configuration; see the properties. Defaults: d = 64, no hidden layer, 50 behaviours,
    /// cosine with temperature 0.05, shared embeddings.
    public init(
        itemCount: Int, categoryCount: Int = 0, dimension: Int = 64, hidden: [Int] = [], maxHistory: Int = 50,
        cosine: Bool = true, temperature: Float = 0.05, shareEmbeddings: Bool = true
    ) {
        self.itemCount = itemCount
        self.categoryCount = categoryCount
        self.dimension = dimension
        self.hidden = hidden
        self.maxHistory = maxHistory
        self.cosine = cosine
        self.temperature = temperature
        self.shareEmbeddings = shareEmbeddings
    }

    /// Checks every field's range.
    /// - Throws: ``TwoTowerError/invalidConfiguration(field:reason:)`` naming the field at fault.
    public func validate() throws(TwoTowerError) {
        guard itemCount >= 1 else { throw .invalidConfiguration(field: "itemCount", reason: "must be at least 1, got \(itemCount)") }
        guard categoryCount >= 0 else {
            throw .invalidConfiguration(field: "categoryCount", reason: "must be >= 0, got \(categoryCount)")
        }
        guard dimension >= 1 else { throw .invalidConfiguration(field: "dimension", reason: "must be at least 1, got \(dimension)") }
        guard hidden.allSatisfy({ $0 >= 1 }) else {
            throw .invalidConfiguration(field: "hidden", reason: "widths must be positive, got \(hidden)")
        }
        guard maxHistory >= 1 else {
            throw .invalidConfiguration(field: "maxHistory", reason: "must be at least 1, got \(maxHistory)")
        }
        guard temperature > 0, temperature.isFinite else {
            throw .invalidConfiguration(field: "temperature", reason: "must be positive and finite, got \(temperature)")
        }
    }

    /// Layer widths of the user tower's MLP: `[dimension] + hidden + [dimension]`.
    public var towerSizes: [Int] { [dimension] + hidden + [dimension] }
}

/// The items a two-tower model knows: ids in ascending order (row `r` of every item table is
/// `ids[r]`) and, optionally, one category per item.
///
/// Invariants: `ids` strictly increasing; `categories` empty or `ids.count` values, each
/// `< categoryCount` or ``noCategory``.
public struct TwoTowerCatalog: Sendable, Equatable {
    /// Marks an item without a category.
    public static let noCategory: Int32 = -1
    /// Item ids, strictly increasing.
    public let ids: [ItemID]
    /// Per item, its dense category `0 ..< categoryCount` or ``noCategory``; empty without categories.
    public let categories: [Int32]
    /// Number of distinct categories (0 without categories).
    public let categoryCount: Int
    private let rowOf: [ItemID: Int32]

    /// A catalogue over `ids` (any order, unique; sorted here) with optional categories keyed by id
    /// (arbitrary `UInt32` values, mapped to dense indices in ascending order; ids missing from the
    /// map get ``noCategory``).
    /// - Throws: ``TwoTowerError/noItems`` for no ids, ``TwoTowerError/duplicateItem(_:)``.
    /// - Complexity: O(n log n).
    public init(ids: [ItemID], categories: [ItemID: UInt32]? = nil) throws(TwoTowerError) {
        guard !ids.isEmpty else { throw .noItems }
        let sorted = ids.sorted()
        for i in 1 ..< max(1, sorted.count) where sorted[i] == sorted[i - 1] { throw .duplicateItem(sorted[i]) }
        self.ids = sorted
        var map = [ItemID: Int32](minimumCapacity: sorted.count)
        for (i, id) in sorted.enumerated() { map[id] = Int32(i) }
        rowOf = map
        if let categories {
            let distinct = Array(Set(sorted.compactMap { categories[$0] })).sorted()
            var dense = [UInt32: Int32](minimumCapacity: distinct.count)
            for (i, c) in distinct.enumerated() { dense[c] = Int32(i) }
            self.categories = sorted.map { id in categories[id].flatMap { dense[$0] } ?? Self.noCategory }
            categoryCount = distinct.count
        } else {
            self.categories = []
            categoryCount = 0
        }
    }

    /// A catalogue from checked rows (ids strictly increasing, categories dense or empty).
    init(validatedIDs ids: [ItemID], categories: [Int32], categoryCount: Int) {
        self.ids = ids
        self.categories = categories
        self.categoryCount = categoryCount
        var map = [ItemID: Int32](minimumCapacity: ids.count)
        for (i, id) in ids.enumerated() { map[id] = Int32(i) }
        rowOf = map
    }

    /// Number of items.
    public var count: Int { ids.count }

    /// The dense row of `id`, or `nil` when the catalogue does not hold it. O(1).
    public func row(of id: ItemID) -> Int? { rowOf[id].map(Int.init) }
}
