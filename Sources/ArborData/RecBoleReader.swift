/// Items and their categories, as read from an item file.
///
/// Invariants: `items`, `categories` have the same count; `allCategoryOffsets.count == items.count + 1`;
/// item `i`'s categories are `allCategories[allCategoryOffsets[i] ..< allCategoryOffsets[i + 1]]`, the
/// first of which is `categories[i]` (``InteractionLog/noCategory`` when the item lists none).
public struct ItemTable: Sendable, Equatable {
    /// Item ids, in file order.
    public var items: [ItemID] = []
    /// First category of each item.
    public var categories: [UInt32] = []
    /// Boundaries into ``allCategories`` (CSR).
    public var allCategoryOffsets: [Int] = [0]
    /// Every category of every item, concatenated.
    public var allCategories: [UInt32] = []
    /// Category names (id = index) when categories are named tokens such as genres.
    public var categoryNames: [String] = []

    /// An empty table.
    public init() {}

    /// Number of items.
    public var count: Int { items.count }

    /// All categories of item row `i`. O(1), no copy.
    public func categories(ofRow i: Int) -> ArraySlice<UInt32> {
        allCategories[allCategoryOffsets[i] ..< allCategoryOffsets[i + 1]]
    }

    /// First category of each item, keyed by id (items without one are left out).
    public var categoryByItem: [ItemID: UInt32] {
        var m = [ItemID: UInt32](minimumCapacity: count)
        for (i, c) in zip(items, categories) where c != InteractionLog.noCategory { m[i] = c }
        return m
    }

    /// All categories of each item, keyed by id.
    public var allCategoriesByItem: [ItemID: [UInt32]] {
        var m = [ItemID: [UInt32]](minimumCapacity: count)
        for i in 0 ..< count { m[items[i]] = Array(categories(ofRow: i)) }
        return m
    }
}

/// Reader of RecBole "atomic files": tab-separated, with a header of `name:type` columns
/// (`user_id:token  item_id:token  rating:float  timestamp:float`).
///
/// Columns are found by name (the part before `:`), in any order; extra columns are ignored.
/// Parsing streams the file in chunks; cost is O(bytes) with no per-line allocation (except ids
/// under ``TokenPolicy/vocabulary``).
public enum RecBoleReader {
    /// The column names the reader looks for.
    public struct Columns: Sendable, Equatable {
        /// User id column (required).
        public var user: String
        /// Item id column (required).
        public var item: String
        /// Rating column (optional: ratings are absent when the file lacks it).
        public var rating: String
        /// Time column (optional: without it, the row index stands for time).
        public var timestamp: String
        /// Defaults: `user_id`, `item_id`, `rating`, `timestamp`.
        public init(user: String = "user_id", item: String = "item_id", rating: String = "rating", timestamp: String = "timestamp") {
            self.user = user
            self.item = item
            self.rating = rating
            self.timestamp = timestamp
        }
    }

    /// Reads a `.inter` file.
    /// - Parameters:
    ///   - path: the file.
    ///   - columns: column names.
    ///   - users, items: how ids are read (numeric by default; see ``Vocabulary``).
    /// - Returns: a dataset without item categories (see ``read(interactions:items:categoryColumn:)``).
    /// - Throws: ``DataError`` naming the file, and the line or column at fault.
    public static func readInteractions(
        at path: String, columns: Columns = .init(), users: TokenPolicy = .numeric, items: TokenPolicy = .numeric
    ) throws(DataError) -> Dataset {
        var u = TokenReader(users, what: "user")
        var it = TokenReader(items, what: "item")
        let log = try readInter(path, columns, &u, &it)
        return Dataset(name: datasetName(path), interactions: log, userVocabulary: u.result, itemVocabulary: it.result)
    }

    /// Reads a `.item` file: the item id column and a category column (`class` by default) whose
    /// value is a space-separated list of category names (e.g. genres). Categories get ids in order
    /// of first appearance; the first listed is the item's category.
    /// - Throws: ``DataError/missingColumn(file:column:)`` when the id or category column is absent.
    public static func readItems(
        at path: String, itemColumn: String = "item_id", categoryColumn: String = "class", items: TokenPolicy = .numeric
    ) throws(DataError) -> ItemTable {
        var it = TokenReader(items, what: "item")
        return try readItemFile(path, itemColumn, categoryColumn, &it)
    }

    /// Reads a `.inter` and its `.item` file into one dataset: every row gets its item's first
    /// category, and the dataset keeps all categories and their names.
    public static func read(
        interactions interPath: String, items itemPath: String, categoryColumn: String = "class",
        columns: Columns = .init(), users: TokenPolicy = .numeric, items itemPolicy: TokenPolicy = .numeric
    ) throws(DataError) -> Dataset {
        var u = TokenReader(users, what: "user")
        var it = TokenReader(itemPolicy, what: "item")
        let table = try readItemFile(itemPath, columns.item, categoryColumn, &it)
        var log = try readInter(interPath, columns, &u, &it)
        let byItem = table.categoryByItem
        var cats = [UInt32]()
        cats.reserveCapacity(log.count)
        for item in log.items { cats.append(byItem[item] ?? InteractionLog.noCategory) }
        log = try InteractionLog(
            users: log.users, items: log.items, timestamps: log.timestamps, categories: cats, ratings: log.ratings)
        return Dataset(
            name: datasetName(interPath), interactions: log, itemCategories: byItem,
            itemAllCategories: table.allCategoriesByItem, categoryNames: table.categoryNames,
            userVocabulary: u.result, itemVocabulary: it.result)
    }

    // MARK: - internals

    static func datasetName(_ path: String) -> String {
        let base = path.split(separator: "/").last.map(String.init) ?? path
        if let dot = base.firstIndex(of: ".") , dot != base.startIndex { return String(base[..<dot]) }
        return base
    }

    /// Column index by name (`name` or `name:type`), or nil.
    static func headerIndex(_ header: [String], _ name: String) -> Int? {
        header.firstIndex { h in
            let n = h.split(separator: ":", maxSplits: 1).first.map(String.init) ?? h
            return n == name
        }
    }

    static func readInter(
        _ path: String, _ columns: Columns, _ u: inout TokenReader, _ it: inout TokenReader
    ) throws(DataError) -> InteractionLog {
        var log = InteractionLog()
        var fields = FieldSplitter()
        var header: [String]? = nil
        var ui = 0, ii = 0, ri: Int? = nil, ti: Int? = nil, need = 0
        var row = 0
        try LineScanner.forEachLine(path) { (line) throws(DataError) in
            fields.split(line.bytes, .byte(0x09))
            guard header != nil else {
                let h = (0 ..< fields.count).map { fields.string($0, in: line.bytes) }
                header = h
                guard let a = headerIndex(h, columns.user) else { throw .missingColumn(file: path, column: columns.user) }
                guard let b = headerIndex(h, columns.item) else { throw .missingColumn(file: path, column: columns.item) }
                ui = a; ii = b
                ri = headerIndex(h, columns.rating)
                ti = headerIndex(h, columns.timestamp)
                need = max(ui, ii, ri ?? 0, ti ?? 0) + 1
                return
            }
            try Fields.require(fields, need, file: path, line: line.number)
            let user = try u.read(fields.field(ui, in: line.bytes), file: path, line: line.number)
            let item = try it.read(fields.field(ii, in: line.bytes), file: path, line: line.number)
            var t = Double(row)
            if let ti { t = try Fields.double(fields.field(ti, in: line.bytes), columns.timestamp, file: path, line: line.number) }
            var rating: Float? = nil
            if let ri {
                rating = Float(try Fields.double(fields.field(ri, in: line.bytes), columns.rating, file: path, line: line.number))
            }
            log.append(user: user, item: ItemID(item), timestamp: t, rating: rating)
            row += 1
        }
        if log.isEmpty { throw .empty(file: path) }
        return log
    }

    static func readItemFile(
        _ path: String, _ itemColumn: String, _ categoryColumn: String, _ it: inout TokenReader
    ) throws(DataError) -> ItemTable {
        var table = ItemTable()
        var names = Vocabulary()
        var fields = FieldSplitter()
        var tokens = FieldSplitter()
        var header: [String]? = nil
        var ii = 0, ci = 0
        try LineScanner.forEachLine(path) { (line) throws(DataError) in
            fields.split(line.bytes, .byte(0x09))
            guard header != nil else {
                let h = (0 ..< fields.count).map { fields.string($0, in: line.bytes) }
                header = h
                guard let a = headerIndex(h, itemColumn) else { throw .missingColumn(file: path, column: itemColumn) }
                guard let b = headerIndex(h, categoryColumn) else { throw .missingColumn(file: path, column: categoryColumn) }
                ii = a; ci = b
                return
            }
            try Fields.require(fields, max(ii, ci) + 1, file: path, line: line.number)
            let item = try it.read(fields.field(ii, in: line.bytes), file: path, line: line.number)
            let cell = fields.field(ci, in: line.bytes)
            tokens.split(cell, .whitespace)
            table.items.append(ItemID(item))
            var first = InteractionLog.noCategory
            for k in 0 ..< tokens.count {
                let c = UInt32(names.id(for: tokens.string(k, in: cell)))
                if k == 0 { first = c }
                table.allCategories.append(c)
            }
            table.categories.append(first)
            table.allCategoryOffsets.append(table.allCategories.count)
        }
        if table.items.isEmpty { throw .empty(file: path) }
        table.categoryNames = names.tokens
        return table
    }
}
