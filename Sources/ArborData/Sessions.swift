/// Behaviour sessions in compressed-sparse-row form (for SDM and session-based next-item models).
///
/// Invariants: `offsets.count == owners.count + 1`, `offsets[0] == 0`,
/// `offsets.last == items.count == timestamps.count`; session `s` is
/// `items[offsets[s] ..< offsets[s + 1]]`, oldest first, never empty.
public struct Sessions: Sendable, Equatable {
    /// The user (or source session id) owning each session.
    public let owners: [UInt64]
    /// Session boundaries.
    public let offsets: [Int]
    /// Items of all sessions, concatenated.
    public let items: [ItemID]
    /// Times of all sessions' events, concatenated.
    public let timestamps: [Double]

    /// Number of sessions.
    public var count: Int { owners.count }
    /// Items of session `s`, oldest first. O(1), no copy.
    public func items(of s: Int) -> ArraySlice<ItemID> { items[offsets[s] ..< offsets[s + 1]] }
    /// Times of session `s`. O(1), no copy.
    public func timestamps(of s: Int) -> ArraySlice<Double> { timestamps[offsets[s] ..< offsets[s + 1]] }
    /// Length of session `s`.
    public func length(of s: Int) -> Int { offsets[s + 1] - offsets[s] }

    /// Cuts each user's time-ordered events into sessions (SDM's rule): a new session starts when
    /// the gap to the previous event exceeds `maxGap` seconds or the current session already has
    /// `maxLength` events. Users in increasing id order; sessions of a user in time order.
    /// - Throws: ``DataError/invalidArgument(name:reason:)`` for `maxGap < 0` or `maxLength < 1`.
    /// - Complexity: O(count log count) (the per-user time sort).
    public static func split(_ log: InteractionLog, maxGap: Double = 600, maxLength: Int = 50) throws(DataError) -> Sessions {
        guard maxGap >= 0 else { throw .invalidArgument(name: "maxGap", reason: "must be >= 0, got \(maxGap)") }
        guard maxLength >= 1 else { throw .invalidArgument(name: "maxLength", reason: "must be >= 1, got \(maxLength)") }
        let groups = log.groupedByUser()
        var owners = [UInt64](), offsets = [0], items = [ItemID](), times = [Double]()
        items.reserveCapacity(log.count)
        times.reserveCapacity(log.count)
        for u in 0 ..< groups.count {
            var length = 0
            var last = -Double.infinity
            for r in groups.rows(ofUser: u) {
                let t = log.timestamps[r]
                if length > 0, t - last > maxGap || length >= maxLength {
                    owners.append(groups.users[u]); offsets.append(items.count); length = 0
                }
                items.append(log.items[r]); times.append(t)
                length += 1
                last = t
            }
            if length > 0 { owners.append(groups.users[u]); offsets.append(items.count) }
        }
        return Sessions(owners: owners, offsets: offsets, items: items, timestamps: times)
    }
}

/// A session of a session split file.
public struct SplitSession: Sendable, Equatable {
    /// Source session id.
    public var id: UInt64
    /// Items in position order.
    public var items: [ItemID]
    /// Part of the split the session belongs to.
    public var role: SplitRole

    /// A session.
    public init(id: UInt64, items: [ItemID], role: SplitRole) {
        self.id = id
        self.items = items
        self.role = role
    }
}

/// The session next-item protocol of ANCHORS.md: every position `p >= 1` of a session is a target
/// predicted from its prefix; whole sessions are train, validation or test.
public struct SessionSplit: Sendable, Equatable {
    /// Sessions in file (or start-time) order.
    public let sessions: [SplitSession]

    /// Sessions as given.
    public init(sessions: [SplitSession]) { self.sessions = sessions }

    /// Reads a split file `session_id item_id position split` with a header (such as
    /// `diginetica.split.tsv`, `yoochoose.split.tsv`). Rows of a session must be contiguous with
    /// positions `0, 1, 2, ...`.
    /// - Throws: ``DataError/malformedLine(file:line:reason:)`` for an out-of-order position, a role
    ///   change inside a session, a non-contiguous session, a bad role or number.
    public static func read(at path: String) throws(DataError) -> SessionSplit {
        var fields = FieldSplitter()
        var header = true
        var cols = (s: 0, i: 1, p: 2, r: 3)
        var out = [SplitSession]()
        var seen = Set<UInt64>()
        try LineScanner.forEachLine(path) { (line) throws(DataError) in
            let b = line.bytes
            fields.split(b, .whitespace)
            if header {
                header = false
                let names = (0 ..< fields.count).map { fields.string($0, in: b) }
                func col(_ n: String) throws(DataError) -> Int {
                    guard let k = names.firstIndex(of: n) else { throw .missingColumn(file: path, column: n) }
                    return k
                }
                cols = (try col("session_id"), try col("item_id"), try col("position"), try col("split"))
                return
            }
            try Fields.require(fields, max(cols.s, cols.i, cols.p, cols.r) + 1, file: path, line: line.number)
            var tr = TokenReader(.numeric, what: "session")
            let sid = try tr.read(fields.field(cols.s, in: b), file: path, line: line.number)
            var ir = TokenReader(.numeric, what: "item")
            let item = try ir.read(fields.field(cols.i, in: b), file: path, line: line.number)
            guard let pos = NumberParser.uint64(fields.field(cols.p, in: b)) else {
                throw .malformedLine(file: path, line: line.number, reason: "position '\(fields.field(cols.p, in: b).preview)' is not an integer")
            }
            let role = try LeaveLastOutSplit.parseRole(fields.field(cols.r, in: b), file: path, line: line.number)
            if pos == 0 {
                guard seen.insert(sid).inserted else {
                    throw .malformedLine(file: path, line: line.number, reason: "session \(sid) starts twice")
                }
                out.append(SplitSession(id: sid, items: [ItemID(item)], role: role))
            } else {
                guard let last = out.last, last.id == sid, UInt64(last.items.count) == pos else {
                    throw .malformedLine(file: path, line: line.number, reason: "position \(pos) of session \(sid) is out of order")
                }
                guard last.role == role else {
                    throw .malformedLine(file: path, line: line.number, reason: "session \(sid) changes split inside")
                }
                out[out.count - 1].items.append(ItemID(item))
            }
        }
        if out.isEmpty { throw .empty(file: path) }
        return SessionSplit(sessions: out)
    }

    /// Builds the split from raw session events (`user` = session id, time orders events within
    /// a session, ties in file order): repeatedly drop sessions shorter than `minSessionLength` and
    /// items with fewer than `minItemCount` occurrences until stable; order sessions by start time
    /// (ties by id); the last `floor(testFraction × n)` sessions are test, the
    /// `floor(validationFraction × n)` before them validation, the rest training.
    ///
    /// `startGranularity` floors start times to multiples of it before ordering: Diginetica's
    /// events carry only a date plus an offset inside the session, so its sessions start at their
    /// date (use 86,400 with ``DigineticaReader``). With it, this reproduces
    /// `diginetica.split.tsv`; with the default 0 it reproduces `yoochoose.split.tsv` (both tested).
    /// - Throws: ``DataError/invalidArgument(name:reason:)`` for bad fractions or when nothing survives.
    public static func make(
        from log: InteractionLog, minSessionLength: Int = 2, minItemCount: Int = 5,
        testFraction: Double = 0.1, validationFraction: Double = 0.1, startGranularity: Double = 0
    ) throws(DataError) -> SessionSplit {
        guard testFraction >= 0, validationFraction >= 0, testFraction + validationFraction <= 1 else {
            throw .invalidArgument(name: "fractions", reason: "test \(testFraction) + validation \(validationFraction) must lie in [0, 1]")
        }
        let groups = log.groupedByUser()
        var sessions: [(id: UInt64, start: Double, items: [ItemID])] = (0 ..< groups.count).map { u in
            let rows = groups.rows(ofUser: u)
            let t = log.timestamps[rows.first!]
            let start = startGranularity > 0 ? (t / startGranularity).rounded(.down) * startGranularity : t
            return (groups.users[u], start, rows.map { log.items[$0] })
        }
        while true {
            var counts = [ItemID: Int]()
            for s in sessions { for i in s.items { counts[i, default: 0] += 1 } }
            var changed = false
            var next = [(id: UInt64, start: Double, items: [ItemID])]()
            for var s in sessions {
                let before = s.items.count
                s.items.removeAll { counts[$0, default: 0] < minItemCount }
                if s.items.count != before { changed = true }
                if s.items.count >= minSessionLength { next.append(s) } else { changed = true }
            }
            sessions = next
            if !changed { break }
        }
        guard !sessions.isEmpty else { throw .invalidArgument(name: "filter", reason: "no session survives it") }
        sessions.sort { $0.start < $1.start || ($0.start == $1.start && $0.id < $1.id) }
        let n = sessions.count
        let nTest = Int(testFraction * Double(n)), nValid = Int(validationFraction * Double(n))
        return SessionSplit(sessions: sessions.enumerated().map { k, s in
            let role: SplitRole = k >= n - nTest ? .test : (k >= n - nTest - nValid ? .validation : .train)
            return SplitSession(id: s.id, items: s.items, role: role)
        })
    }

    /// Number of (prefix, target) pairs of `role`: every position `p >= 1` of its sessions.
    public func pairCount(_ role: SplitRole) -> Int {
        sessions.reduce(0) { $0 + ($1.role == role ? $1.items.count - 1 : 0) }
    }

    /// Calls `body(prefix, target)` for every position `p >= 1` of every `role` session; the prefix
    /// keeps at most `maxPrefix` most recent items.
    public func forEachPair(_ role: SplitRole, maxPrefix: Int = 50, _ body: (ArraySlice<ItemID>, ItemID) throws -> Void) rethrows {
        for s in sessions where s.role == role {
            for p in 1 ..< max(1, s.items.count) {
                try body(s.items[max(0, p - maxPrefix) ..< p], s.items[p])
            }
        }
    }
}
