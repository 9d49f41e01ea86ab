import ArborMath

/// The scoring session of a beam shared by several interests of one user
/// (``InterestBeams/shared``): a node's score is the best of its scores under each interest's
/// session, the score by which ``ResultMerge/bestScorePerItem(_:k:)`` ranks merged items.
///
/// Each call scores the `m` candidates for all `K` interests in one fused call
/// (``ScoringSession/score(sessions:nodes:level:into:)``: one GEMM for inner product) into a
/// reused `K × m` buffer, then keeps the maximum per column. O(K · m · model cost) per level;
/// no allocation once the buffer has grown to the widest level.
struct BestInterestSession<Session: ScoringSession>: ScoringSession {
    /// One session per interest (at least one).
    var interests: [Session]
    /// `interests.count × m` scores of the last call, row-major; capacity reused across levels.
    private var perInterest: [Float] = []

    init(interests: [Session]) {
        precondition(!interests.isEmpty, "a shared beam needs at least one interest")
        self.interests = interests
    }

    var operationsPerCandidate: Double? { interests[0].operationsPerCandidate.map { $0 * Double(interests.count) } }

    mutating func score(nodes: borrowing Matrix, level: Int, into scores: inout [Float]) {
        let m = nodes.rows
        Session.score(sessions: &interests, nodes: nodes, level: level, into: &perInterest)
        scores.removeAll(keepingCapacity: true)
        scores.append(contentsOf: perInterest.prefix(m))
        let count = interests.count
        scores.withUnsafeMutableBufferPointer { best in
            perInterest.withUnsafeBufferPointer { all in
                for q in 1 ..< count {
                    let row = q * m
                    for i in 0 ..< m where all[row + i] > best[i] { best[i] = all[row + i] }
                }
            }
        }
    }
}
