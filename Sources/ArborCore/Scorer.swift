/// A model that scores tree nodes (or items) for one user: `score(user, nodes) -> [Float]`, batched.
///
/// The scorer is the "arbitrary deep model" of TDM. Retrieval never looks inside it: beam search
/// gathers the embeddings of all candidate nodes of a level into one `m × nodeDimension` matrix and
/// asks the session for `m` scores in one call, so a scorer can run the whole level as GEMMs.
/// Work that depends only on the query (user vector, behaviour projections) belongs in
/// ``makeSession(for:)``, done once per query, not once per node.
///
/// To plug in a model of your own, conform a `Sendable` type to this protocol.
public protocol NodeScorer: Sendable {
    associatedtype Session: ScoringSession
    /// Width of the node (and item) embeddings this scorer reads.
    var nodeDimension: Int { get }
    /// Per-query state. Throws ``ArborError`` if the query lacks what the scorer needs.
    func makeSession(for query: Query) throws -> Session
}

/// Per-query scoring state. Not shared between threads; one per query (or per thread, reused).
public protocol ScoringSession {
    /// Writes one score per row of `nodes` into `scores` (resized to `nodes.rows`).
    /// - Parameters:
    ///   - nodes: `m × nodeDimension`, row-major: the embeddings of the candidates.
    ///   - level: the tree level of the candidates (root = 0); the leaf level for items. Models with
    ///     per-level parameters read it; others ignore it.
    ///   - scores: output, `m` values; its capacity is reused across calls.
    /// Complexity: the model's cost for `m` candidates, ideally a few GEMMs.
    mutating func score(nodes: borrowing Matrix, level: Int, into scores: inout [Float])

    /// Floating-point operations one candidate costs in ``score(nodes:level:into:)``: twice the
    /// multiply-adds of the model's matrix products for one row (the per-query work of
    /// `makeSession` excluded, elementwise activations not counted). Throughput reports divide it
    /// by time to give the model's GFLOP/s; `nil` (the default) when a scorer does not say.
    var operationsPerCandidate: Double? { get }
    /// Scores the same `m` candidates for several queries of one user (the interests of a
    /// multi-interest producer) in one call: `scores[q · m + i]` is `sessions[q]`'s score of row
    /// `i` of `nodes` (`scores` resized to `sessions.count · m`). The tree's batched beam search
    /// calls it once per level for all interests. The default scores query by query; a scorer
    /// that can fuse them (inner product: one GEMM) overrides it.
    static func score(sessions: inout [Self], nodes: borrowing Matrix, level: Int, into scores: inout [Float])

    /// True when this session scores rows lent in place (``score(rows:level:into:)``), so beam
    /// search can skip copying each level's candidates out of the index. `false` by default.
    var scoresRowsInPlace: Bool { get }
    /// Writes one score per row of `rows` (`scores.count` rows of `nodeDimension` floats,
    /// row-major, read in place from the tree; valid only during the call) into `scores`. Called
    /// only when ``scoresRowsInPlace`` is true; each row's score must equal what
    /// ``score(nodes:level:into:)`` gives it up to float rounding, whatever rows surround it.
    /// Complexity: the model's cost for `scores.count` candidates.
    mutating func score(rows: UnsafeBufferPointer<Float>, level: Int, into scores: UnsafeMutableBufferPointer<Float>)
}

extension ScoringSession {
    /// Unknown by default.
    public var operationsPerCandidate: Double? { nil }

    /// Not by default: beam search gathers the candidates into a matrix.
    public var scoresRowsInPlace: Bool { false }

    /// Through a copy into a matrix and ``score(nodes:level:into:)``; beam search does not call it
    /// unless ``scoresRowsInPlace`` is true. O(model cost), allocates.
    public mutating func score(rows: UnsafeBufferPointer<Float>, level: Int, into scores: UnsafeMutableBufferPointer<Float>) {
        let m = scores.count
        guard m > 0 else { return }
        var nodes = Matrix(rows: m, cols: rows.count / m)
        nodes.withUnsafeMutableBufferPointer { dst in
            for i in 0..<min(dst.count, rows.count) { dst[i] = rows[i] }
        }
        var out: [Float] = []
        score(nodes: nodes, level: level, into: &out)
        for i in 0..<m { scores[i] = out[i] }
    }

    /// Query by query: one ``score(nodes:level:into:)`` per session. O(queries · model cost).
    public static func score(sessions: inout [Self], nodes: borrowing Matrix, level: Int, into scores: inout [Float]) {
        let m = nodes.rows
        scores.removeAll(keepingCapacity: true)
        var one: [Float] = []
        one.reserveCapacity(m)
        for q in sessions.indices {
            sessions[q].score(nodes: nodes, level: level, into: &one)
            scores.append(contentsOf: one.prefix(m))
        }
    }
}
