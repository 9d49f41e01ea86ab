import ArborCore
import ArborEval
import ArborRetrieval

/// The serving cost of a multi-interest user (MIND: `K` interest vectors, each retrieving, results
/// merged by best score) against a single-vector user, on the same retriever and the same vectors.
///
/// User `u` takes the query vectors `u·K ..< u·K + K` as its interests and the first of them as its
/// single vector, so both sides search the same directions. The `K` searches go through
/// ``Retriever/search(batch:parameters:)`` (the tree runs them level by level together: one scoring
/// call per level for all interests) and ``ResultMerge/bestScorePerItem(_:k:)``, exactly what the
/// front door does for a MIND index. One thread; latencies per user. Model-independent: the tree's
/// cost depends on the beam and the number of vectors, not on how the vectors were trained.
public enum InterestCost {
    /// One beam width's figures.
    public struct Row: Sendable, Equatable {
        /// The beam width (or efSearch) of every search.
        public var beam: Int
        /// Interests per user.
        public var interests: Int
        /// One vector per user.
        public var single: LatencySummary
        /// `interests` vectors per user, searched together and merged.
        public var multi: LatencySummary
        /// Mean model evaluations per user, one vector.
        public var singleEvaluations: Double
        /// Mean model evaluations per user, all interests.
        public var multiEvaluations: Double
        /// `multi.p50Ms / single.p50Ms`.
        public var latencyRatio: Double { single.p50Ms > 0 ? multi.p50Ms / single.p50Ms : 0 }
    }

    /// Measures each beam of `beams` over the users that `queries` makes (`queries.count / interests`).
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` when `interests` is outside 1...64 or
    ///   there are fewer queries than `interests`; what the retriever throws; `CancellationError`.
    public static func measure(
        retriever: any Retriever, queries: [Query], interests: Int, k: Int, beams: [Int],
        cancellation: CancellationFlag? = nil
    ) throws -> [Row] {
        guard (1 ... 64).contains(interests) else {
            throw ArborError.invalidArgument(name: "interests", reason: "must be in 1...64, got \(interests)")
        }
        let users = queries.count / interests
        guard users >= 1 else {
            throw ArborError.invalidArgument(name: "interests", reason: "\(queries.count) queries make no user of \(interests) interests")
        }
        var rows: [Row] = []
        for beam in beams {
            let parameters = try SearchParameters(k: k, beamWidth: beam, efSearch: beam).validated()
            var singleTimes: [Int64] = [], multiTimes: [Int64] = []
            var singleEvaluations = 0, multiEvaluations = 0
            let wall0 = ContinuousClock.now
            for u in 0 ..< users {
                if cancellation?.isCancelled == true { throw CancellationError() }
                let t0 = ContinuousClock.now
                let result = try retriever.search(queries[u * interests], parameters: parameters)
                singleTimes.append(nanoseconds(t0.duration(to: .now)))
                singleEvaluations += result.statistics.modelEvaluations
            }
            let singleWall = nanoseconds(wall0.duration(to: .now))
            let wall1 = ContinuousClock.now
            for u in 0 ..< users {
                if cancellation?.isCancelled == true { throw CancellationError() }
                let own = Array(queries[u * interests ..< (u + 1) * interests])
                let t0 = ContinuousClock.now
                let results = try retriever.search(batch: own, parameters: parameters)
                let merged = ResultMerge.bestScorePerItem(results, k: parameters.k)
                multiTimes.append(nanoseconds(t0.duration(to: .now)))
                multiEvaluations += merged.statistics.modelEvaluations
            }
            let multiWall = nanoseconds(wall1.duration(to: .now))
            rows.append(Row(beam: beam, interests: interests,
                            single: LatencySummary(nanoseconds: singleTimes, wallNanoseconds: singleWall),
                            multi: LatencySummary(nanoseconds: multiTimes, wallNanoseconds: multiWall),
                            singleEvaluations: Double(singleEvaluations) / Double(users),
                            multiEvaluations: Double(multiEvaluations) / Double(users)))
        }
        return rows
    }

    private static func nanoseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }
}
