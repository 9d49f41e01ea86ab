/// Reader of the Taobao UserBehavior CSV (the TDM/JTM data set):
/// `user_id,item_id,category_id,behavior_type,timestamp`, no header, `behavior_type` one of
/// `pv`, `buy`, `cart`, `fav`.
///
/// Streams the file in chunks at constant memory beside the result (28 bytes a kept row); the full
/// public file (about 100M rows) is read without per-line allocation.
public enum TaobaoReader {
    /// A behaviour type.
    public enum Behavior: String, Sendable, CaseIterable, Hashable {
        /// Page view (click).
        case pv
        /// Purchase.
        case buy
        /// Added to cart.
        case cart
        /// Added to favourites.
        case fav
    }

    /// The public data set's time window: 2017-11-25 00:00:00 to 2017-12-03 23:59:59 (UTC+8 midnight
    /// boundaries as published: `[1511539200, 1512316800)`).
    public static let publishedTimeRange: Range<Double> = 1_511_539_200 ..< 1_512_316_800

    /// Reading options.
    public struct Options: Sendable, Equatable {
        /// Behaviours to keep (default: all four).
        public var behaviors: Set<Behavior>
        /// Drop rows whose timestamp lies outside ``timeRange`` (default false: keep every row).
        public var dropOutOfRangeTimestamps: Bool
        /// The valid time window used when ``dropOutOfRangeTimestamps`` is set.
        public var timeRange: Range<Double>

        /// Defaults: all behaviours, keep all rows.
        public init(
            behaviors: Set<Behavior> = Set(Behavior.allCases), dropOutOfRangeTimestamps: Bool = false,
            timeRange: Range<Double> = TaobaoReader.publishedTimeRange
        ) {
            self.behaviors = behaviors
            self.dropOutOfRangeTimestamps = dropOutOfRangeTimestamps
            self.timeRange = timeRange
        }

        /// Page views only, out-of-range rows dropped (TDM's usual preprocessing).
        public static var pageViewsInRange: Options { Options(behaviors: [.pv], dropOutOfRangeTimestamps: true) }
    }

    /// Counts of what the reader saw and dropped.
    public struct Statistics: Sendable, Equatable {
        /// Data lines read.
        public var rowsRead = 0
        /// Rows dropped by the behaviour filter.
        public var droppedByBehavior = 0
        /// Rows dropped by the time window.
        public var droppedOutOfRange = 0
        /// Rows kept.
        public var rowsKept = 0
    }

    /// Reads the file. Every kept row carries its category; item categories are the last category
    /// seen for each item (the public data has one per item).
    /// - Parameters:
    ///   - progress: receives `task: "read taobao"` with rows done every 2^20 rows (total 0).
    /// - Throws: ``DataError/malformedLine(file:line:reason:)`` (bad field, unknown behaviour),
    ///   ``DataError/empty(file:)`` when no line is read, ``DataError/fileNotFound(file:)``.
    public static func read(
        at path: String, options: Options = .init(), progress: any ProgressReporter = SilentProgress()
    ) throws(DataError) -> (dataset: Dataset, statistics: Statistics) {
        var log = InteractionLog()
        // Rows of the public file take 36–40 bytes: reserving for 34 avoids the doubling growth
        // (and its transient 2× peak) at 100M rows, over-reserving by about 10–15% only.
        if options.behaviors.count == Behavior.allCases.count { log.reserveCapacity(FileIO.size(path) / 34, categories: true) }
        var stats = Statistics()
        var fields = FieldSplitter()
        let keep = (pv: options.behaviors.contains(.pv), buy: options.behaviors.contains(.buy),
                    cart: options.behaviors.contains(.cart), fav: options.behaviors.contains(.fav))
        try LineScanner.forEachLine(path) { (line) throws(DataError) in
            let b = line.bytes
            fields.split(b, .byte(0x2C))
            guard fields.count == 5 else {
                throw .malformedLine(file: path, line: line.number, reason: "expected 5 fields, found \(fields.count)")
            }
            stats.rowsRead += 1
            if stats.rowsRead & 0xFFFFF == 0 { progress.report(task: "read taobao", done: stats.rowsRead, total: 0) }
            let bf = fields.field(3, in: b)
            let kept: Bool
            if bf.equals("pv") { kept = keep.pv } else if bf.equals("buy") { kept = keep.buy }
            else if bf.equals("cart") { kept = keep.cart } else if bf.equals("fav") { kept = keep.fav }
            else {
                throw .malformedLine(file: path, line: line.number, reason: "unknown behavior '\(bf.preview)' (pv, buy, cart or fav)")
            }
            guard let user = NumberParser.uint64(fields.field(0, in: b)) else {
                throw .malformedLine(file: path, line: line.number, reason: "user id '\(fields.field(0, in: b).preview)' is not a non-negative integer")
            }
            guard let item = NumberParser.uint64(fields.field(1, in: b)) else {
                throw .malformedLine(file: path, line: line.number, reason: "item id '\(fields.field(1, in: b).preview)' is not a non-negative integer")
            }
            let category = try Fields.uint32(fields.field(2, in: b), "category id", file: path, line: line.number)
            let t = try Fields.double(fields.field(4, in: b), "timestamp", file: path, line: line.number)
            guard kept else { stats.droppedByBehavior += 1; return }
            if options.dropOutOfRangeTimestamps, !options.timeRange.contains(t) { stats.droppedOutOfRange += 1; return }
            log.append(user: user, item: ItemID(item), timestamp: t, category: category)
        }
        progress.finish(task: "read taobao")
        if stats.rowsRead == 0 { throw .empty(file: path) }
        stats.rowsKept = log.count
        return (Dataset(name: "taobao-userbehavior", interactions: log), stats)
    }
}
