import ArborCore

/// SDM's session rule, shared by training and serving so both cut a history the same way.
///
/// A history (oldest first) is cut into sessions: a new session starts when the gap to the previous
/// event exceeds ``maxGap`` seconds or the current session already holds ``maxActions`` events.
/// The **short term** is the latest session; the **long term** is everything before it.
///
/// Rules for imperfect input (documented in the README's query-producer note):
/// - no timestamps: the whole history is one session (no long term); the encoder reads its most
///   recent items up to its maximum length;
/// - timestamps out of order: events are ordered by time, stably (the list order breaks ties);
/// - a timestamp count different from the history's, or a NaN/infinite timestamp: an error.
public struct SDMSessionRule: Sendable, Equatable, Codable {
    /// Largest gap inside a session, seconds (SDM: 600).
    public var maxGap: Double
    /// Most events in one session (SDM: 50).
    public var maxActions: Int

    /// A rule; the defaults are SDM's (10 minutes, 50 actions).
    public init(maxGap: Double = 600, maxActions: Int = 50) {
        self.maxGap = maxGap
        self.maxActions = maxActions
    }

    /// Checks `timestamps` against `count` history entries.
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` for another count,
    ///   ``ArborError/nonFiniteValue(field:row:)`` for NaN or infinity.
    public static func validate(timestamps: [Double], count: Int) throws(ArborError) {
        guard timestamps.count == count else {
            throw .dimensionMismatch(field: "timestamps (one per history item)", expected: count, found: timestamps.count)
        }
        if let bad = timestamps.firstIndex(where: { !$0.isFinite }) { throw .nonFiniteValue(field: "timestamps", row: bad) }
    }

    /// The positions of `timestamps` in time order (stable). O(n) when already ordered, else O(n log n).
    public static func timeOrder(_ timestamps: [Double]) -> [Int] {
        var ordered = true
        for i in timestamps.indices.dropFirst() where timestamps[i] < timestamps[i - 1] { ordered = false; break }
        let idx = Array(timestamps.indices)
        if ordered { return idx }
        return idx.sorted { timestamps[$0] < timestamps[$1] || (timestamps[$0] == timestamps[$1] && $0 < $1) }
    }

    /// The start of the latest session of events with times `times` (in time order): the index of
    /// its first event. 0 for an empty or single-session list. O(n).
    public func latestSessionStart(times: some Collection<Double>) -> Int {
        var start = 0, length = 0, last = -Double.infinity, i = 0
        for t in times {
            if length > 0, t - last > maxGap || length >= maxActions { start = i; length = 0 }
            length += 1
            last = t
            i += 1
        }
        return start
    }
}
