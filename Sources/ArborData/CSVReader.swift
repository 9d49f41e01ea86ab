/// Reader of generic delimited interaction files: `user,item,timestamp[,category]`.
///
/// A header is optional and detected automatically: the first line is a header when one of its
/// fields is a known column name (see ``Options``) or its third field is not a number. With a
/// header, columns are found by name (case-insensitive, aliases below); without one, by position.
/// Known names: user `user`, `user_id`, `userid`, `sessionid`, `session_id`, `session`; item `item`,
/// `item_id`, `itemid`; time `timestamp`, `time`, `ts`, `order`; category `category`,
/// `category_id`, `categoryid`, `cate_id`. So YooChoose's `SessionId ItemId Time` (tab) reads as is.
/// Fields are not quoted (a quoted field is a malformed line); an empty category field means none.
public enum CSVReader {
    /// Whether the first line is a header.
    public enum HeaderMode: Sendable, Equatable {
        /// Detect (see ``CSVReader``).
        case auto
        /// The first line is a header.
        case present
        /// Every line is data.
        case absent
    }

    /// Reading options.
    public struct Options: Sendable, Equatable {
        /// Field separator byte (default `,`; `\t` and `;` are common).
        public var separator: UInt8
        /// Header handling.
        public var header: HeaderMode
        /// User id policy.
        public var users: TokenPolicy
        /// Item id policy.
        public var items: TokenPolicy
        /// Explicit column names overriding the aliases (header required).
        public var userColumn: String?
        /// Explicit item column name.
        public var itemColumn: String?
        /// Explicit time column name.
        public var timestampColumn: String?
        /// Explicit category column name.
        public var categoryColumn: String?

        /// Defaults: comma, auto header, numeric ids.
        public init(
            separator: UInt8 = UInt8(ascii: ","), header: HeaderMode = .auto, users: TokenPolicy = .numeric,
            items: TokenPolicy = .numeric, userColumn: String? = nil, itemColumn: String? = nil,
            timestampColumn: String? = nil, categoryColumn: String? = nil
        ) {
            self.separator = separator
            self.header = header
            self.users = users
            self.items = items
            self.userColumn = userColumn
            self.itemColumn = itemColumn
            self.timestampColumn = timestampColumn
            self.categoryColumn = categoryColumn
        }
    }

    static let userNames: Set<String> = ["user", "user_id", "userid", "sessionid", "session_id", "session"]
    static let itemNames: Set<String> = ["item", "item_id", "itemid"]
    static let timeNames: Set<String> = ["timestamp", "time", "ts", "order"]
    static let categoryNames: Set<String> = ["category", "category_id", "categoryid", "cate_id"]

    /// Reads the file.
    /// - Throws: ``DataError/missingColumn(file:column:)`` (header without a user, item or time
    ///   column), ``DataError/malformedLine(file:line:reason:)``, ``DataError/empty(file:)``.
    public static func read(at path: String, options: Options = .init()) throws(DataError) -> Dataset {
        var u = TokenReader(options.users, what: "user")
        var it = TokenReader(options.items, what: "item")
        var fields = FieldSplitter()
        var log = InteractionLog()
        var first = true
        var ui = 0, ii = 1, ti = 2, ci: Int? = nil
        var positional = true
        let sep = Separator.byte(options.separator)
        try LineScanner.forEachLine(path) { (line) throws(DataError) in
            let b = line.bytes
            fields.split(b, sep)
            if first {
                first = false
                let names = (0 ..< fields.count).map { fields.string($0, in: b) }
                let lower = names.map { $0.lowercased() }
                let isHeader: Bool
                switch options.header {
                case .present: isHeader = true
                case .absent: isHeader = false
                case .auto:
                    let known = userNames.union(itemNames).union(timeNames).union(categoryNames)
                    isHeader = lower.contains { known.contains($0) }
                        || (fields.count >= 3 && NumberParser.double(fields.field(2, in: b)) == nil)
                }
                if isHeader {
                    positional = false
                    func find(_ explicit: String?, _ aliases: Set<String>, _ label: String) throws(DataError) -> Int? {
                        if let explicit {
                            guard let k = names.firstIndex(of: explicit) ?? lower.firstIndex(of: explicit.lowercased()) else {
                                throw .missingColumn(file: path, column: explicit)
                            }
                            return k
                        }
                        return lower.firstIndex { aliases.contains($0) }
                    }
                    guard let a = try find(options.userColumn, userNames, "user") else { throw .missingColumn(file: path, column: "user") }
                    guard let c = try find(options.itemColumn, itemNames, "item") else { throw .missingColumn(file: path, column: "item") }
                    guard let d = try find(options.timestampColumn, timeNames, "timestamp") else {
                        throw .missingColumn(file: path, column: "timestamp")
                    }
                    ui = a; ii = c; ti = d
                    ci = try find(options.categoryColumn, categoryNames, "category")
                    return
                }
                if options.userColumn != nil || options.itemColumn != nil || options.timestampColumn != nil || options.categoryColumn != nil {
                    throw .missingColumn(file: path, column: options.userColumn ?? options.itemColumn ?? options.timestampColumn ?? options.categoryColumn!)
                }
                ci = fields.count >= 4 ? 3 : nil
            }
            let need = positional ? (ci == nil ? 3 : 4) : max(ui, ii, ti, ci ?? 0) + 1
            try Fields.require(fields, need, file: path, line: line.number)
            let user = try u.read(fields.field(ui, in: b), file: path, line: line.number)
            let item = try it.read(fields.field(ii, in: b), file: path, line: line.number)
            let t = try Fields.double(fields.field(ti, in: b), "timestamp", file: path, line: line.number)
            var category: UInt32? = nil
            if let ci, !fields.field(ci, in: b).isEmpty {  // an empty category field means none
                category = try Fields.uint32(fields.field(ci, in: b), "category", file: path, line: line.number)
            }
            log.append(user: user, item: ItemID(item), timestamp: t, category: category)
        }
        if log.isEmpty { throw .empty(file: path) }
        return Dataset(
            name: RecBoleReader.datasetName(path), interactions: log, userVocabulary: u.result, itemVocabulary: it.result)
    }
}

/// Writes interaction logs as CSV that ``CSVReader`` reads back: a header `user,item,timestamp`
/// (plus `,category` when the log has categories), one event a line, numbers in shortest
/// round-trip form. For exporting (e.g. synthetic data) to Python peers.
public enum CSVWriter {
    /// Writes `log` to `path` atomically. A row without a category writes an empty field.
    /// - Throws: ``DataError/writeFailed(file:reason:)``.
    public static func write(_ log: InteractionLog, to path: String) throws(DataError) {
        try FileIO.writeAll(path, { out in
            out.append(contentsOf: (log.hasCategories ? "user,item,timestamp,category\n" : "user,item,timestamp\n").utf8)
            for i in 0 ..< log.count {
                out.append(contentsOf: String(log.users[i]).utf8)
                out.append(0x2C)
                out.append(contentsOf: String(log.items[i].rawValue).utf8)
                out.append(0x2C)
                let t = log.timestamps[i]
                if t == t.rounded(), abs(t) < 1e15 { out.append(contentsOf: String(Int64(t)).utf8) }
                else { out.append(contentsOf: "\(t)".utf8) }
                if log.hasCategories {
                    out.append(0x2C)
                    if log.categories[i] != InteractionLog.noCategory { out.append(contentsOf: String(log.categories[i]).utf8) }
                }
                out.append(0x0A)
            }
        }, reserve: log.count * 32)
    }
}
