import ArborCore
import ArborMath

/// TDM's "DNN" scorer: an InferenceMLP over `[u, n, u ⊙ n]` (user vector, node embedding, their element-wise
/// product) that ends in one output unit, the score.
///
/// Per-query work is hoisted out of the per-node path: the first layer's weight `W₀` (`3d × h`)
/// splits into `W_u`, `W_n`, `W_p` (rows `0..<d`, `d..<2d`, `2d..<3d`), and for a fixed user
/// `[u, n, u⊙n]·W₀ = u·W_u + n·(W_n + diag(u)·W_p)`. A session computes `u·W_u` and the `d × h`
/// matrix `W_n + diag(u)·W_p` once, so a level of `m` candidates costs one `m × d × h` GEMM plus the
/// rest of the InferenceMLP's GEMMs. Thread-safe (immutable); sessions are per query.
public struct DNNScorer: NodeScorer {
    public let nodeDimension: Int
    /// The InferenceMLP; `layers[0].inputs == 3 · nodeDimension`, last layer has one output.
    public let mlp: InferenceMLP

    /// - Throws: ``ArborError`` when the first layer does not take `3 · dimension` inputs or the last
    ///   does not give one output.
    public init(dimension: Int, mlp: InferenceMLP) throws {
        guard let first = mlp.layers.first, let last = mlp.layers.last else {
            throw ArborError.invalidArgument(name: "dnn", reason: "the InferenceMLP has no layers")
        }
        guard first.inputs == 3 * dimension else {
            throw ArborError.dimensionMismatch(field: "dnn layer 0 inputs", expected: 3 * dimension, found: first.inputs)
        }
        guard last.outputs == 1 else {
            throw ArborError.dimensionMismatch(field: "dnn last layer outputs", expected: 1, found: last.outputs)
        }
        nodeDimension = dimension
        self.mlp = mlp
    }

    /// A randomly initialised scorer (He-uniform weights, zero biases, PReLU slopes 0.25), for tests
    /// and as the starting point of training. `hidden` lists the hidden widths (TDM: 128, 64, 24).
    public static func random(dimension: Int, hidden: [Int] = [128, 64, 24], seed: UInt64) throws -> DNNScorer {
        var rng = SplitMix64(seed: seed)
        return try DNNScorer(dimension: dimension,
                             mlp: .random(widths: [3 * dimension] + hidden + [1], prefix: "dnn", using: &rng))
    }

    /// Checks the user vector and precomputes the first layer's user-only work: O(d · h) once per
    /// query. Each level then costs one `m × d × h` GEMM and the rest of the MLP.
    public func makeSession(for query: Query) throws -> Session {
        try validateQueryVector(query.vector, dimension: nodeDimension)
        let d = nodeDimension
        let first = mlp.layers[0]
        let h = first.outputs
        let u = query.vector
        var userTerm = [Float](repeating: 0, count: h)
        var effective = Matrix(rows: d, cols: h)
        for i in 0..<d {
            for j in 0..<h {
                userTerm[j] += u[i] * first.weight[i, j]
                effective[i, j] = first.weight[d + i, j] + u[i] * first.weight[2 * d + i, j]
            }
        }
        let firstBias = zip(first.bias, userTerm).map { $0 + $1 }
        return Session(scorer: self, firstBias: firstBias, effective: effective,
                       hidden: Matrix(rows: 0, cols: h), buffers: [])
    }

    /// Per-query state: `b₀ + u·W_u`, `W_n + diag(u)·W_p`, and reused activation buffers.
    public struct Session: ScoringSession {
        let scorer: DNNScorer
        /// The first layer's bias plus the user's term `u·W_u` (`h` values).
        let firstBias: [Float]
        let effective: Matrix
        var hidden: Matrix
        var buffers: [Matrix]

        /// `2·(d·h₁ + Σ hᵢ·hᵢ₊₁)`: the folded first layer (`[u, n, u ⊙ n]·W₁` is `n·W_eff` plus a
        /// per-query bias) and the rest of the MLP.
        public var operationsPerCandidate: Double? {
            Double(2 * effective.rows * effective.cols
                   + scorer.mlp.layers.dropFirst().reduce(0) { $0 + 2 * $1.inputs * $1.outputs })
        }

        public mutating func score(nodes: borrowing Matrix, level: Int, into scores: inout [Float]) {
            BLAS.gemm(copy nodes, effective, into: &hidden)
            scorer.mlp.layers[0].addBiasAndActivate(&hidden, bias: firstBias)
            let out = scorer.mlp.forward(hidden, from: 1, buffers: &buffers)
            scores.removeAll(keepingCapacity: true)
            scores.append(contentsOf: out.values)
        }
    }
}
