import ArborCore
import ArborMath

/// TDM's "product-DNN" scorer: `score(u, n) = u · n`. With it, the tree is a learned hierarchical
/// index for maximum inner product search, and a beam as wide as the widest level returns exactly
/// the flat scan's top-k.
///
/// The query must carry `vector` of length ``nodeDimension``; a session scores `m` candidates with
/// one GEMV. Thread-safe (immutable).
public struct InnerProductScorer: NodeScorer {
    /// Width of user and node vectors.
    public let nodeDimension: Int

    /// A scorer for `dimension`-wide user and node vectors.
    public init(dimension: Int) {
        precondition(dimension > 0)
        nodeDimension = dimension
    }

    /// Checks the query vector (length, finiteness) once per query.
    public func makeSession(for query: Query) throws -> Session {
        try validateQueryVector(query.vector, dimension: nodeDimension)
        return Session(user: query.vector)
    }

    /// Per-query state: the user vector.
    public struct Session: ScoringSession {
        let user: [Float]
        /// `scores[i] = nodes.row(i) · user`. O(m · d), one GEMV.
        public mutating func score(nodes: borrowing Matrix, level: Int, into scores: inout [Float]) {
            BLAS.gemv(nodes, user, into: &scores)
        }

        /// `2d`: one dot product per candidate.
        public var operationsPerCandidate: Double? { Double(2 * user.count) }
    }
}
