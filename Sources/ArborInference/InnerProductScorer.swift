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

        /// Rows lent in place are scored by the CPU's dot kernel (see ``ExactScan``): no copy.
        public var scoresRowsInPlace: Bool { true }

        /// `scores[i] = row(i) · user` with the CPU's dot kernel (CArborKernels' `arbor_dot_rows`,
        /// the exact scan's batch-1 kernel), so each row's score is a fixed function of the row and
        /// the query, wherever the row sits. O(m · d).
        public mutating func score(rows: UnsafeBufferPointer<Float>, level: Int, into scores: UnsafeMutableBufferPointer<Float>) {
            DotKernel.scoreRows(query: user, rows: rows, into: scores)
        }

        /// `2d`: one dot product per candidate.
        public var operationsPerCandidate: Double? { Double(2 * user.count) }

        /// All interests in one GEMM: `scores (q × m) = users (q × d) · nodesᵀ`. O(q · m · d).
        public static func score(sessions: inout [Session], nodes: borrowing Matrix, level: Int, into scores: inout [Float]) {
            let (q, m) = (sessions.count, nodes.rows)
            guard q > 0, m > 0 else { scores.removeAll(keepingCapacity: true); return }
            let d = sessions[0].user.count
            if scores.count != q * m {
                if scores.count > q * m { scores.removeLast(scores.count - q * m) } else {
                    scores.append(contentsOf: repeatElement(0, count: q * m - scores.count))
                }
            }
            var users = [Float]()
            users.reserveCapacity(q * d)
            for s in sessions { users.append(contentsOf: s.user) }
            nodes.withUnsafeBufferPointer { pn in
                users.withUnsafeBufferPointer { pu in
                    scores.withUnsafeMutableBufferPointer { ps in
                        BLAS.gemm(transposeA: false, transposeB: true, m: q, n: m, k: d, a: pu.baseAddress!, lda: d,
                                  b: pn.baseAddress!, ldb: d, c: ps.baseAddress!, ldc: m)
                    }
                }
            }
        }
    }
}
