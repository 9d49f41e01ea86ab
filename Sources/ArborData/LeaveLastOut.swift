/// The role of an event (or session) in a split.
public enum SplitRole: String, Sendable, Hashable, CaseIterable {
    /// Training data.
    case train
    /// Validation target (spelled `valid` in split files).
    case validation = "valid"
    /// Test target.
    case test
}

/// Which events count as positives before a leave-last-out split (RecBole / TDM MovieLens rules).
public struct PositiveFilter: Sendable, Equatable {
    /// Keep only events with a rating `>= minRating` (ignored when the log has no ratings; `nil`
    /// keeps every event).
    public var minRating: Float?
    /// Minimum number of kept events per user.
    public var minUserInteractions: Int
    /// Minimum number of kept events per item.
    public var minItemInteractions: Int

    /// Defaults: ratings >= 4, users and items with >= 5 positives (ANCHORS.md's ML-100K protocol).
    public init(minRating: Float? = 4, minUserInteractions: Int = 5, minItemInteractions: Int = 5) {
        self.minRating = minRating
        self.minUserInteractions = minUserInteractions
        self.minItemInteractions = minItemInteractions
    }

    /// No filtering at all.
    public static var none: PositiveFilter { PositiveFilter(minRating: nil, minUserInteractions: 0, minItemInteractions: 0) }

    /// The rows that survive: the rating threshold, then users and items with too few events dropped
    /// repeatedly until stable (the k-core, unique whatever the removal order). Rows keep log order.
    /// Complexity: O(count × rounds), rounds usually a handful.
    public func apply(to log: InteractionLog) -> InteractionLog {
        var alive = [Bool](repeating: true, count: log.count)
        if let minRating, log.hasRatings {
            for i in 0 ..< log.count where !(log.ratings[i] >= minRating) { alive[i] = false }
        }
        let um = DenseIDMap(sorting: log.users)
        let im = DenseIDMap(sortingItems: log.items)
        let uc = log.users.map { um.denseIndex(of: $0)! }
        let ic = log.items.map { im.denseIndex(of: $0)! }
        while true {
            var ucount = [Int](repeating: 0, count: um.count)
            var icount = [Int](repeating: 0, count: im.count)
            for i in 0 ..< log.count where alive[i] { ucount[uc[i]] += 1; icount[ic[i]] += 1 }
            var changed = false
            for i in 0 ..< log.count where alive[i] {
                if ucount[uc[i]] < minUserInteractions || icount[ic[i]] < minItemInteractions {
                    alive[i] = false
                    changed = true
                }
            }
            if !changed { break }
        }
        return log.filtered { alive[$0] }
    }
}

/// How events are put in time order before a leave-last-out split.
public enum TimeOrder: Sendable, Equatable {
    /// By the exact timestamps, ties in file order.
    case exact
    /// As RecBole 1.2.1 does: timestamps min-max normalised over the kept events and rounded to
    /// `Float32` (about 1 s resolution on ML-100K), ties in file order. This reproduces
    /// `ml-100k.leave-last-out.tsv` (the split of the RecBole figures in ANCHORS.md) exactly; with
    /// ``exact``, 2 of its 938 test targets differ (events 1 s apart that the rounding merges).
    case recBoleFloat32
}

/// One evaluation case of leave-last-out: the history and the single target.
public struct LeaveLastOutCase: Sendable, Equatable {
    /// External user id.
    public var user: UInt64
    /// Earlier events, oldest first (for test: train + validation items; for validation: train items).
    public var history: [ItemID]
    /// The held-out item.
    public var target: ItemID

    /// A case.
    public init(user: UInt64, history: [ItemID], target: ItemID) {
        self.user = user
        self.history = history
        self.target = target
    }
}

/// The leave-last-out protocol (RecBole, MIND): per user, by time (ties in file order, see
/// ``TimeOrder``), the last event is the test target, the one before the validation target, the
/// rest training.
///
/// A user with 2 events gets one training and one test event (no validation); a user with one event
/// is training only. Storage: the kept events grouped by user (users in increasing id order, each
/// group oldest first) with one role per row.
public struct LeaveLastOutSplit: Sendable, Equatable {
    /// The kept events, grouped by user, each group in time order.
    public let log: InteractionLog
    /// Role of each row of ``log``.
    public let roles: [SplitRole]
    /// Distinct users, increasing (or in file order for a split read from a file).
    public let users: [UInt64]
    /// User `users[u]` owns rows `userOffsets[u] ..< userOffsets[u + 1]`.
    public let userOffsets: [Int]

    /// Number of kept events.
    public var interactionCount: Int { log.count }
    /// Number of users.
    public var userCount: Int { users.count }
    /// Number of distinct items.
    public var itemCount: Int { log.itemCount }

    /// Filters `log` with `filter` and splits it.
    /// - Parameters:
    ///   - timeOrder: how events are ordered in time; the default reproduces RecBole's split.
    /// - Throws: ``DataError/invalidArgument(name:reason:)`` when nothing survives the filter.
    /// - Complexity: O(count log count).
    public static func make(
        from log: InteractionLog, filter: PositiveFilter = .init(), timeOrder: TimeOrder = .recBoleFloat32
    ) throws(DataError) -> LeaveLastOutSplit {
        let kept = filter.apply(to: log)
        guard !kept.isEmpty else { throw .invalidArgument(name: "filter", reason: "no interaction survives it") }
        var keys = kept.timestamps
        if timeOrder == .recBoleFloat32 {
            let lo = keys.min()!, hi = keys.max()!
            let span = hi - lo
            for i in 0 ..< keys.count { keys[i] = span > 0 ? Double(Float((keys[i] - lo) / span)) : 0 }
        }
        let groups = kept.groupedByUser(timeKeys: keys)
        let ordered = kept.selecting(groups.rows)
        var roles = [SplitRole](repeating: .train, count: ordered.count)
        for u in 0 ..< groups.count {
            let lo = groups.offsets[u], hi = groups.offsets[u + 1]
            let n = hi - lo
            if n >= 2 { roles[hi - 1] = .test }
            if n >= 3 { roles[hi - 2] = .validation }
        }
        return LeaveLastOutSplit(log: ordered, roles: roles, users: groups.users, userOffsets: groups.offsets)
    }

    /// Reads a split file `user_id item_id timestamp split` (tab- or space-separated, header line,
    /// `split` one of `train`, `valid`, `test`), such as `ml-100k.leave-last-out.tsv`. Users keep
    /// the order of their first appearance; each user's rows keep file order.
    /// - Throws: ``DataError`` naming file and line (bad role, bad number), missing columns, empty file.
    public static func read(at path: String) throws(DataError) -> LeaveLastOutSplit {
        var fields = FieldSplitter()
        var header = true
        var ui = 0, ii = 1, ti = 2, si = 3
        var log = InteractionLog()
        var roles = [SplitRole]()
        try LineScanner.forEachLine(path) { (line) throws(DataError) in
            let b = line.bytes
            fields.split(b, .whitespace)
            if header {
                header = false
                let names = (0 ..< fields.count).map { fields.string($0, in: b).split(separator: ":").first.map(String.init) ?? "" }
                func col(_ n: String) throws(DataError) -> Int {
                    guard let k = names.firstIndex(of: n) else { throw .missingColumn(file: path, column: n) }
                    return k
                }
                ui = try col("user_id"); ii = try col("item_id"); ti = try col("timestamp"); si = try col("split")
                return
            }
            try Fields.require(fields, max(ui, ii, ti, si) + 1, file: path, line: line.number)
            var r = TokenReader(.numeric, what: "user")
            let user = try r.read(fields.field(ui, in: b), file: path, line: line.number)
            var ri = TokenReader(.numeric, what: "item")
            let item = try ri.read(fields.field(ii, in: b), file: path, line: line.number)
            let t = try Fields.double(fields.field(ti, in: b), "timestamp", file: path, line: line.number)
            roles.append(try parseRole(fields.field(si, in: b), file: path, line: line.number))
            log.append(user: user, item: ItemID(item), timestamp: t)
        }
        if log.isEmpty { throw .empty(file: path) }
        // Group by user in order of first appearance, keeping file order inside a user.
        let map = DenseIDMap(firstAppearanceOf: log.users)
        var offsets = [Int](repeating: 0, count: map.count + 1)
        for u in log.users { offsets[map.denseIndex(of: u)! + 1] += 1 }
        for k in 0 ..< map.count { offsets[k + 1] += offsets[k] }
        var cursor = offsets
        var order = [Int](repeating: 0, count: log.count)
        for i in 0 ..< log.count {
            let k = map.denseIndex(of: log.users[i])!
            order[cursor[k]] = i
            cursor[k] += 1
        }
        return LeaveLastOutSplit(
            log: log.selecting(order), roles: order.map { roles[$0] }, users: map.ids, userOffsets: offsets)
    }

    static func parseRole(_ f: UnsafeBufferPointer<UInt8>, file: String, line: Int) throws(DataError) -> SplitRole {
        if f.equals("train") { return .train }
        if f.equals("valid") || f.equals("validation") { return .validation }
        if f.equals("test") { return .test }
        throw .malformedLine(file: file, line: line, reason: "split '\(f.preview)' is not train, valid or test")
    }

    /// The training rows only, grouped by user in time order.
    public var trainLog: InteractionLog { log.filtered { roles[$0] == .train } }

    /// One case per user having a `role` target (`.validation` or `.test`): the target and every
    /// earlier row of the user (train, plus validation for test cases), oldest first.
    public func cases(_ role: SplitRole) -> [LeaveLastOutCase] {
        var out = [LeaveLastOutCase]()
        out.reserveCapacity(users.count)
        for u in 0 ..< users.count {
            let lo = userOffsets[u], hi = userOffsets[u + 1]
            guard let t = (lo ..< hi).first(where: { roles[$0] == role }), role != .train else { continue }
            let history = (lo ..< t).filter { role == .test ? roles[$0] != .test : roles[$0] == .train }.map { log.items[$0] }
            out.append(LeaveLastOutCase(user: users[u], history: history, target: log.items[t]))
        }
        return out
    }

    /// The `role` target of each user (for comparing two splits target for target).
    public func targets(_ role: SplitRole) -> [UInt64: ItemID] {
        var m = [UInt64: ItemID]()
        for i in 0 ..< log.count where roles[i] == role { m[log.users[i]] = log.items[i] }
        return m
    }
}
