/// One user–item event.
///
/// Readers produce ``InteractionLog`` (struct of arrays) rather than arrays of this type; an
/// `Interaction` is the row view (`log[i]`) and the unit of ``InteractionLog/append(_:)``.
public struct Interaction: Sendable, Hashable {
    /// External user id (numeric token, or a ``Vocabulary`` id).
    public var user: UInt64
    /// External item id.
    public var item: ItemID
    /// Event time: Unix seconds where the source has them, otherwise an order index.
    public var timestamp: Double
    /// Item category of this event, when the source has one.
    public var category: UInt32?
    /// Explicit rating, when the source has one.
    public var rating: Float?

    /// An event; `category` and `rating` default to absent.
    public init(user: UInt64, item: ItemID, timestamp: Double, category: UInt32? = nil, rating: Float? = nil) {
        self.user = user
        self.item = item
        self.timestamp = timestamp
        self.category = category
        self.rating = rating
    }
}

/// Interactions stored as parallel arrays (struct of arrays): 28 bytes a row with categories,
/// so 10^8 rows fit in about 2.8 GB. Row order is the source's order (file order).
///
/// Invariants: `users`, `items` and `timestamps` have `count` elements; `categories` and `ratings`
/// are either empty (column absent) or have `count` elements. A row without a category in a log that
/// has the column holds ``InteractionLog/noCategory``; a row without a rating holds NaN.
public struct InteractionLog: Sendable, Equatable {
    /// The category value standing for "no category" inside ``categories``.
    public static let noCategory: UInt32 = .max

    /// User id of each row.
    public private(set) var users: [UInt64] = []
    /// Item id of each row.
    public private(set) var items: [ItemID] = []
    /// Time of each row.
    public private(set) var timestamps: [Double] = []
    /// Category of each row, or empty when the source has no category column.
    public private(set) var categories: [UInt32] = []
    /// Rating of each row, or empty when the source has no rating column.
    public private(set) var ratings: [Float] = []

    /// An empty log.
    public init() {}

    /// A log over the given columns.
    /// - Throws: ``DataError/invalidArgument(name:reason:)`` when the column lengths differ.
    public init(
        users: [UInt64], items: [ItemID], timestamps: [Double],
        categories: [UInt32] = [], ratings: [Float] = []
    ) throws(DataError) {
        let n = users.count
        guard items.count == n, timestamps.count == n else {
            throw .invalidArgument(
                name: "interaction columns",
                reason: "users \(n), items \(items.count), timestamps \(timestamps.count) rows")
        }
        guard categories.isEmpty || categories.count == n else {
            throw .invalidArgument(name: "categories", reason: "\(categories.count) values for \(n) rows")
        }
        guard ratings.isEmpty || ratings.count == n else {
            throw .invalidArgument(name: "ratings", reason: "\(ratings.count) values for \(n) rows")
        }
        self.users = users
        self.items = items
        self.timestamps = timestamps
        self.categories = categories
        self.ratings = ratings
    }

    /// A log of the given events, in order.
    public init(_ interactions: some Sequence<Interaction>) {
        for x in interactions { append(x) }
    }

    /// Number of rows.
    @inlinable public var count: Int { users.count }
    /// Whether there are no rows.
    @inlinable public var isEmpty: Bool { users.isEmpty }
    /// Whether the log has a category column.
    public var hasCategories: Bool { !categories.isEmpty }
    /// Whether the log has a rating column.
    public var hasRatings: Bool { !ratings.isEmpty }

    /// Row `i` as an ``Interaction``. O(1).
    public subscript(i: Int) -> Interaction {
        var category: UInt32? = nil
        if !categories.isEmpty, categories[i] != Self.noCategory { category = categories[i] }
        var rating: Float? = nil
        if !ratings.isEmpty, !ratings[i].isNaN { rating = ratings[i] }
        return Interaction(user: users[i], item: items[i], timestamp: timestamps[i], category: category, rating: rating)
    }

    /// Reserves room for `n` rows in every present column.
    public mutating func reserveCapacity(_ n: Int, categories withCategories: Bool = false, ratings withRatings: Bool = false) {
        users.reserveCapacity(n)
        items.reserveCapacity(n)
        timestamps.reserveCapacity(n)
        if withCategories || hasCategories { categories.reserveCapacity(n) }
        if withRatings || hasRatings { ratings.reserveCapacity(n) }
    }

    /// Appends one event. Amortised O(1); adding the first category or rating to a non-empty log
    /// back-fills the column (O(count), once).
    public mutating func append(_ x: Interaction) {
        append(user: x.user, item: x.item, timestamp: x.timestamp, category: x.category, rating: x.rating)
    }

    /// Appends one event given by its fields. Amortised O(1).
    public mutating func append(user: UInt64, item: ItemID, timestamp: Double, category: UInt32? = nil, rating: Float? = nil) {
        if let category {
            if categories.count < users.count {
                categories.append(contentsOf: repeatElement(Self.noCategory, count: users.count - categories.count))
            }
            categories.append(category)
        } else if !categories.isEmpty {
            categories.append(Self.noCategory)
        }
        if let rating {
            if ratings.count < users.count {
                ratings.append(contentsOf: repeatElement(Float.nan, count: users.count - ratings.count))
            }
            ratings.append(rating)
        } else if !ratings.isEmpty {
            ratings.append(.nan)
        }
        users.append(user)
        items.append(item)
        timestamps.append(timestamp)
    }

    /// The rows at `rows` (in the given order), with all columns. O(rows.count).
    public func selecting(_ rows: some Sequence<Int>) -> InteractionLog {
        var out = InteractionLog()
        let idx = Array(rows)
        out.users = idx.map { users[$0] }
        out.items = idx.map { items[$0] }
        out.timestamps = idx.map { timestamps[$0] }
        if hasCategories { out.categories = idx.map { categories[$0] } }
        if hasRatings { out.ratings = idx.map { ratings[$0] } }
        return out
    }

    /// The rows for which `keep(row index)` is true, in order. O(count).
    public func filtered(_ keep: (Int) throws -> Bool) rethrows -> InteractionLog {
        var rows = [Int]()
        for i in 0 ..< count where try keep(i) { rows.append(i) }
        return selecting(rows)
    }

    /// Number of distinct users. O(count) with hashing.
    public var userCount: Int { Set(users).count }
    /// Number of distinct items. O(count) with hashing.
    public var itemCount: Int { Set(items).count }

    /// The rows grouped by user (users in increasing id order), each group ordered by time with
    /// ties kept in row (file) order. O(count log count) worst case, O(count) hashing.
    public func groupedByUser() -> UserGroups { groupedByUser(timeKeys: timestamps) }

    /// As ``groupedByUser()``, ordering each group by `timeKeys` (one per row) instead of the timestamps.
    func groupedByUser(timeKeys: [Double]) -> UserGroups {
        let map = DenseIDMap(sorting: users)
        var counts = [Int](repeating: 0, count: map.count + 1)
        var codes = [Int32](repeating: 0, count: count)
        for i in 0 ..< count {
            let c = map.denseIndex(of: users[i])!
            codes[i] = Int32(c)
            counts[c + 1] += 1
        }
        for u in 0 ..< map.count { counts[u + 1] += counts[u] }
        var cursor = counts
        var rows = [Int](repeating: 0, count: count)
        for i in 0 ..< count {
            let c = Int(codes[i])
            rows[cursor[c]] = i
            cursor[c] += 1
        }
        // Stable by time inside each group: rows are in file order already, so sorting on
        // (timestamp, row) keeps file order for ties.
        let ts = timeKeys
        for u in 0 ..< map.count {
            let lo = counts[u], hi = counts[u + 1]
            var sorted = true
            var k = lo + 1
            while k < hi { if ts[rows[k - 1]] > ts[rows[k]] { sorted = false; break }; k += 1 }
            if !sorted {
                rows[lo ..< hi].sort { a, b in ts[a] < ts[b] || (ts[a] == ts[b] && a < b) }
            }
        }
        return UserGroups(users: map.ids, offsets: counts, rows: rows)
    }
}

/// The rows of an ``InteractionLog`` grouped by user, in compressed-sparse-row form.
///
/// Invariants: `offsets.count == users.count + 1`, `offsets[0] == 0`, `offsets.last == rows.count`.
/// User `users[u]` owns `rows[offsets[u] ..< offsets[u + 1]]`, row indices into the log, in time
/// order (ties in file order).
public struct UserGroups: Sendable, Equatable {
    /// Distinct user ids, increasing.
    public let users: [UInt64]
    /// Group boundaries into ``rows``.
    public let offsets: [Int]
    /// Row indices of the log, grouped by user, each group in time order.
    public let rows: [Int]

    /// Number of users.
    public var count: Int { users.count }
    /// The row indices of dense user `u`, oldest first. O(1), no copy.
    public func rows(ofUser u: Int) -> ArraySlice<Int> { rows[offsets[u] ..< offsets[u + 1]] }
}

/// A bijection between external 64-bit ids and dense indices `0 ..< count`.
///
/// Used to re-index users and items for embedding tables. Lookup is a hash probe, O(1) expected.
public struct DenseIDMap: Sendable, Equatable {
    /// The external id of each dense index.
    public private(set) var ids: [UInt64] = []
    private var index: [UInt64: Int] = [:]

    /// An empty map.
    public init() {}

    /// Dense indices in order of first appearance in `values` (duplicates ignored).
    public init(firstAppearanceOf values: some Sequence<UInt64>) {
        for v in values { _ = insert(v) }
    }

    /// Dense indices in increasing id order (deterministic whatever the row order).
    public init(sorting values: some Sequence<UInt64>) {
        let unique = Set(values).sorted()
        ids = unique
        index.reserveCapacity(unique.count)
        for (i, v) in unique.enumerated() { index[v] = i }
    }

    /// Number of ids.
    public var count: Int { ids.count }

    /// The dense index of `id`, or `nil` when unknown.
    @inlinable public func denseIndex(of id: UInt64) -> Int? { lookup(id) }

    @usableFromInline func lookup(_ id: UInt64) -> Int? { index[id] }

    /// The dense index of `id`, adding it at the end when new.
    public mutating func insert(_ id: UInt64) -> Int {
        if let i = index[id] { return i }
        let i = ids.count
        ids.append(id)
        index[id] = i
        return i
    }
}

extension DenseIDMap {
    /// A map over item ids, in increasing id order.
    public init(sortingItems items: some Sequence<ItemID>) { self.init(sorting: items.lazy.map(\.rawValue)) }
    /// The dense index of an item id, or `nil`.
    public func denseIndex(of item: ItemID) -> Int? { lookup(item.rawValue) }
}

/// Maps string tokens (ids that are not decimal numbers) to dense `UInt64` ids `0 ..< count`, in
/// order of first appearance, and back.
///
/// The choice for non-numeric ids in ArborData: by default (``TokenPolicy/numeric``) a reader
/// rejects a non-numeric user or item token with ``DataError/malformedLine(file:line:reason:)``
/// naming file and line. With ``TokenPolicy/vocabulary`` *every* token of that column (numeric or
/// not) goes through a vocabulary, so ids never collide, and the dataset keeps the vocabulary to
/// map ids back to tokens.
public struct Vocabulary: Sendable, Equatable {
    /// Token of each id.
    public private(set) var tokens: [String] = []
    private var ids: [String: UInt64] = [:]

    /// An empty vocabulary.
    public init() {}

    /// Number of tokens.
    public var count: Int { tokens.count }

    /// The id of `token`, adding it when new. Amortised O(token length).
    public mutating func id(for token: String) -> UInt64 {
        if let id = ids[token] { return id }
        let id = UInt64(tokens.count)
        tokens.append(token)
        ids[token] = id
        return id
    }

    /// The id of `token`, or `nil` when unknown.
    public func lookup(_ token: String) -> UInt64? { ids[token] }

    /// The token of `id`, or `nil` when out of range.
    public func token(of id: UInt64) -> String? { id < UInt64(tokens.count) ? tokens[Int(id)] : nil }
}

/// How a reader turns user and item tokens into ids.
public enum TokenPolicy: Sendable, Equatable {
    /// Tokens must be decimal `UInt64`; anything else is a malformed line (file and line named).
    case numeric
    /// Every token goes through a ``Vocabulary`` (dense ids in order of first appearance).
    case vocabulary
}

/// Interactions plus what is known about items: the unit the protocols and trainers consume.
public struct Dataset: Sendable {
    /// A short name for reports (e.g. `"ml-100k"`).
    public var name: String
    /// The events, in source order.
    public var interactions: InteractionLog
    /// Category of each item (the first one when the source lists several).
    public var itemCategories: [ItemID: UInt32]
    /// All categories of each item, when the source lists several (e.g. movie genres).
    public var itemAllCategories: [ItemID: [UInt32]]
    /// Names of categories when the source names them (category id = index), else empty.
    public var categoryNames: [String]
    /// The user vocabulary when users were read with ``TokenPolicy/vocabulary``.
    public var userVocabulary: Vocabulary?
    /// The item vocabulary when items were read with ``TokenPolicy/vocabulary``.
    public var itemVocabulary: Vocabulary?

    /// A dataset; item categories default to those found in the log's category column.
    public init(
        name: String, interactions: InteractionLog,
        itemCategories: [ItemID: UInt32]? = nil, itemAllCategories: [ItemID: [UInt32]] = [:],
        categoryNames: [String] = [], userVocabulary: Vocabulary? = nil, itemVocabulary: Vocabulary? = nil
    ) {
        self.name = name
        self.interactions = interactions
        if let itemCategories {
            self.itemCategories = itemCategories
        } else {
            var m = [ItemID: UInt32]()
            if interactions.hasCategories {
                for i in 0 ..< interactions.count where interactions.categories[i] != InteractionLog.noCategory {
                    m[interactions.items[i]] = interactions.categories[i]
                }
            }
            self.itemCategories = m
        }
        self.itemAllCategories = itemAllCategories
        self.categoryNames = categoryNames
        self.userVocabulary = userVocabulary
        self.itemVocabulary = itemVocabulary
    }

    /// Number of events.
    public var interactionCount: Int { interactions.count }
    /// Number of distinct users in the events.
    public var userCount: Int { interactions.userCount }
    /// Number of distinct items in the events.
    public var itemCount: Int { interactions.itemCount }

    /// Dense user indices `0 ..< userCount`, in increasing id order.
    public func userIndex() -> DenseIDMap { DenseIDMap(sorting: interactions.users) }
    /// Dense item indices `0 ..< itemCount`, in increasing id order.
    public func itemIndex() -> DenseIDMap { DenseIDMap(sortingItems: interactions.items) }

    /// Every row's dense user and item index (Int32, for embedding lookups), with the two maps.
    /// O(count) hashing.
    public func denseCodes() -> (users: DenseIDMap, items: DenseIDMap, userCodes: [Int32], itemCodes: [Int32]) {
        let um = userIndex(), im = itemIndex()
        let uc = interactions.users.map { Int32(um.denseIndex(of: $0)!) }
        let ic = interactions.items.map { Int32(im.denseIndex(of: $0)!) }
        return (um, im, uc, ic)
    }

    /// Number of events of each item. O(count).
    public func itemFrequencies() -> [ItemID: Int] {
        var f = [ItemID: Int]()
        for it in interactions.items { f[it, default: 0] += 1 }
        return f
    }

    /// Counts and time range of the events. O(count) with hashing.
    public func statistics() -> DatasetStatistics {
        let log = interactions
        var categories = Set<UInt32>(itemCategories.values)
        if log.hasCategories { for c in log.categories where c != InteractionLog.noCategory { categories.insert(c) } }
        let users = log.userCount, items = log.itemCount
        return DatasetStatistics(
            interactions: log.count, users: users, items: items, categories: categories.count,
            firstTimestamp: log.timestamps.min(), lastTimestamp: log.timestamps.max(),
            density: users > 0 && items > 0 ? Double(log.count) / (Double(users) * Double(items)) : 0)
    }

    /// Number of events of each user. O(count).
    public func userFrequencies() -> [UInt64: Int] {
        var f = [UInt64: Int]()
        for u in interactions.users { f[u, default: 0] += 1 }
        return f
    }
}

/// Summary counts of a ``Dataset`` (what `arbor data stats` prints).
public struct DatasetStatistics: Sendable, Equatable, CustomStringConvertible {
    /// Number of events.
    public var interactions: Int
    /// Distinct users.
    public var users: Int
    /// Distinct items in the events.
    public var items: Int
    /// Distinct categories known (from the item table or the events).
    public var categories: Int
    /// Earliest timestamp, `nil` when empty.
    public var firstTimestamp: Double?
    /// Latest timestamp, `nil` when empty.
    public var lastTimestamp: Double?
    /// `interactions / (users × items)`.
    public var density: Double

    /// One line: `N interactions, U users, I items, C categories, density D`.
    public var description: String {
        "\(interactions) interactions, \(users) users, \(items) items, \(categories) categories, density \(density)"
    }
}
