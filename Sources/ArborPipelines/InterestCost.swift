import ArborCore
import ArborEval
import ArborRetrieval

/// The serving cost of a multi-interest user (MIND: `K` interest vectors, each retrieving, results
/// merged by best score) against a single-vector user, on the same retriever and the same vectors.
///
/// User `u` takes the query vectors `u·K ..< u·K + K` as its interests and the first of them as its
/// single vector, so both sides search the same directions. The `K` vectors go through
/// ``Retriever/search(interests:parameters:)`` exactly as the front door sends a MIND user: with
/// ``InterestBeams/separate`` the tree runs a beam per interest, level by level together (one
/// scoring call per level for all interests), then merges; with ``InterestBeams/shared`` one beam
/// scored by the best interest. One thread; latencies per user. Model-independent: the tree's cost
/// depends on the beam and the number of vectors, not on how the vectors were trained.
///
/// With an exact retriever, each row also gives recall@k against the exact answer of the same
/// kind: the exact top `k` of the single vector, and the exact top `k` of the maximum over the
/// interests (what a merge of exact per-interest lists returns).
public enum InterestCost {
    /// One beam width's and one interest-beam mode's figures.
    public struct Row: Sendable, Equatable {
        /// The beam width (or efSearch) of every search.
        public var beam: Int
        /// Interests per user.
        public var interests: Int
        /// A beam per interest, or one shared beam.
        public var interestBeams: InterestBeams
        /// One vector per user.
        public var single: LatencySummary
        /// `interests` vectors per user, searched and merged.
        public var multi: LatencySummary
        /// Mean model evaluations per user, one vector.
        public var singleEvaluations: Double
        /// Mean model evaluations per user, all interests (a shared beam's candidate scored by `K`
        /// interests counts `K`).
        public var multiEvaluations: Double
        /// Mean recall@k of the single vector's list against its exact top k; `nil` without an exact retriever.
        public var singleRecall: Double?
        /// Mean recall@k of the merged list against the exact top k of the best score over the
        /// interests; `nil` without an exact retriever.
        public var multiRecall: Double?
        /// Mean CPU time of the calling thread per user, one vector, milliseconds.
        public var singleCPUMs: Double
        /// Mean CPU time of the calling thread per user, all interests searched and merged, milliseconds.
        public var multiCPUMs: Double
        /// `multi.p50Ms / single.p50Ms`.
        public var latencyRatio: Double { single.p50Ms > 0 ? multi.p50Ms / single.p50Ms : 0 }
        /// `multiCPUMs / singleCPUMs`: the cost ratio without the time spent waiting for a core,
        /// which inflates the longer searches' wall-clock latency on a loaded machine.
        public var cpuRatio: Double { singleCPUMs > 0 ? multiCPUMs / singleCPUMs : 0 }
    }

    /// Measures each beam of `beams`, for each mode of `interestBeams`, over the users that
    /// `queries` makes (`queries.count / interests`). The single vectors are timed once per beam
    /// and shared by that beam's rows. O(users · (interests + 1) · search) per row, plus one exact
    /// search per user and per single vector when `exact` is given. Wall-clock latencies and the
    /// thread's CPU time are both recorded (see ``Row/cpuRatio``).
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` when `interests` is outside 1...64,
    ///   there are fewer queries than `interests`, or `interestBeams` is empty; what the
    ///   retrievers throw; `CancellationError`.
    public static func measure(
        retriever: any Retriever, exact: (any Retriever)? = nil, queries: [Query], interests: Int, k: Int, beams: [Int],
        interestBeams modes: [InterestBeams] = [.separate], cancellation: CancellationFlag? = nil
    ) throws -> [Row] {
        guard (1 ... 64).contains(interests) else {
            throw ArborError.invalidArgument(name: "interests", reason: "must be in 1...64, got \(interests)")
        }
        let users = queries.count / interests
        guard users >= 1 else {
            throw ArborError.invalidArgument(name: "interests", reason: "\(queries.count) queries make no user of \(interests) interests")
        }
        guard !modes.isEmpty else {
            throw ArborError.invalidArgument(name: "interestBeams", reason: "name at least one mode")
        }
        let userQueries = (0 ..< users).map { Array(queries[$0 * interests ..< ($0 + 1) * interests]) }
        // Exact answers, once: per single vector, and per user of the max over its interests.
        var singleTruth: [Set<ItemID>] = [], multiTruth: [Set<ItemID>] = []
        if let exact {
            let p = try SearchParameters(k: k).validated()
            for own in userQueries {
                if cancellation?.isCancelled == true { throw CancellationError() }
                singleTruth.append(Set(try exact.search(own[0], parameters: p).items.map(\.item)))
                multiTruth.append(Set(try exact.search(interests: own, parameters: p).items.map(\.item)))
            }
        }
        /// Searches every user once with `search`: latencies, mean evaluations, hits against
        /// `truth` (when there is an exact reference) and the thread's CPU ms per user.
        func timed(truth: [Set<ItemID>], _ search: (Int) throws -> SearchResult)
            throws -> (latency: LatencySummary, evaluations: Double, hits: Int, cpuMs: Double) {
            var times: [Int64] = [], evaluations = 0, hits = 0
            let wall0 = ContinuousClock.now
            let cpu0 = threadCPUNanoseconds()
            for u in 0 ..< users {
                if cancellation?.isCancelled == true { throw CancellationError() }
                let t0 = ContinuousClock.now
                let result = try search(u)
                times.append(nanoseconds(t0.duration(to: .now)))
                evaluations += result.statistics.modelEvaluations
                if exact != nil { hits += result.items.count { truth[u].contains($0.item) } }
            }
            let cpuMs = Double(threadCPUNanoseconds() - cpu0) / 1e6 / Double(users)
            return (LatencySummary(nanoseconds: times, wallNanoseconds: nanoseconds(wall0.duration(to: .now))),
                    Double(evaluations) / Double(users), hits, cpuMs)
        }
        var rows: [Row] = []
        for beam in beams {
            let base = try SearchParameters(k: k, beamWidth: beam, efSearch: beam).validated()
            let single = try timed(truth: singleTruth) { try retriever.search(userQueries[$0][0], parameters: base) }
            for mode in modes {
                var parameters = base
                parameters.interestBeams = mode
                let multi = try timed(truth: multiTruth) { try retriever.search(interests: userQueries[$0], parameters: parameters) }
                rows.append(Row(
                    beam: beam, interests: interests, interestBeams: mode, single: single.latency, multi: multi.latency,
                    singleEvaluations: single.evaluations, multiEvaluations: multi.evaluations,
                    singleRecall: exact == nil ? nil : recall(hits: single.hits, truth: singleTruth),
                    multiRecall: exact == nil ? nil : recall(hits: multi.hits, truth: multiTruth),
                    singleCPUMs: single.cpuMs, multiCPUMs: multi.cpuMs))
            }
        }
        return rows
    }

    /// Hits over the total size of the truth lists (each at most k).
    private static func recall(hits: Int, truth: [Set<ItemID>]) -> Double {
        let total = truth.reduce(0) { $0 + $1.count }
        return total > 0 ? Double(hits) / Double(total) : 0
    }

    private static func nanoseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }
}
