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
    /// JTM's hierarchical features, with the behaviour pooling they replace rows of: on a level the
    /// hierarchy covers, the user vector is the mean of the behaviours' level ancestors (from the
    /// query's history) instead of `Query.vector`. `nil`: `Query.vector` on every level.
    public let hierarchy: BehaviourHierarchy?
    /// The behaviour table and id lookup the hierarchy's rows refer to (with ``hierarchy``).
    public let behaviours: MeanPoolingEncoder?

    /// - Throws: ``ArborError`` when the first layer does not take `3 · dimension` inputs or the last
    ///   does not give one output.
    ///   With `hierarchy`, `behaviours` must be given, of width `dimension`, with one table row per
    ///   entry of each level's lookup.
    public init(dimension: Int, mlp: InferenceMLP, hierarchy: BehaviourHierarchy? = nil,
                behaviours: MeanPoolingEncoder? = nil) throws {
        guard let first = mlp.layers.first, let last = mlp.layers.last else {
            throw ArborError.invalidArgument(name: "dnn", reason: "the InferenceMLP has no layers")
        }
        guard first.inputs == 3 * dimension else {
            throw ArborError.dimensionMismatch(field: "dnn layer 0 inputs", expected: 3 * dimension, found: first.inputs)
        }
        guard last.outputs == 1 else {
            throw ArborError.dimensionMismatch(field: "dnn last layer outputs", expected: 1, found: last.outputs)
        }
        if let hierarchy {
            guard let behaviours, behaviours.dimension == dimension, hierarchy.embeddings.cols == dimension,
                  hierarchy.rows.allSatisfy({ $0.count == behaviours.itemVectors.rows }) else {
                throw ArborError.invalidArgument(name: "dnn hierarchy",
                                                 reason: "needs the behaviour table it indexes, \(dimension) wide")
            }
        }
        nodeDimension = dimension
        self.mlp = mlp
        self.hierarchy = hierarchy
        self.behaviours = hierarchy == nil ? nil : behaviours
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
        let (firstBias, effective) = userTerms(query.vector)
        let rows = behaviours?.rows(of: query.history) ?? []
        return Session(scorer: self, firstBias: firstBias, effective: effective,
                       hidden: Matrix(rows: 0, cols: mlp.layers[0].outputs), buffers: [],
                       vector: query.vector, behaviourRows: rows, termsLevel: -1)
    }

    /// `b₀ + u·W_u` and `W_n + diag(u)·W_p` for user vector `u`. O(d · h).
    func userTerms(_ u: [Float]) -> (firstBias: [Float], effective: Matrix) {
        let d = nodeDimension
        let first = mlp.layers[0]
        let h = first.outputs
        var userTerm = [Float](repeating: 0, count: h)
        var effective = Matrix(rows: d, cols: h)
        for i in 0..<d {
            for j in 0..<h {
                userTerm[j] += u[i] * first.weight[i, j]
                effective[i, j] = first.weight[d + i, j] + u[i] * first.weight[2 * d + i, j]
            }
        }
        return (zip(first.bias, userTerm).map { $0 + $1 }, effective)
    }

    /// Per-query state: `b₀ + u·W_u`, `W_n + diag(u)·W_p`, and reused activation buffers.
    public struct Session: ScoringSession {
        let scorer: DNNScorer
        /// The first layer's bias plus the user's term `u·W_u` (`h` values).
        var firstBias: [Float]
        var effective: Matrix
        var hidden: Matrix
        var buffers: [Matrix]
        /// The query's user vector (every level without a hierarchy, the leaves with one).
        let vector: [Float]
        /// Behaviour rows of the query's history (hierarchy only).
        let behaviourRows: [Int]
        /// The level the user terms are for (`-1`: ``vector``'s).
        var termsLevel: Int

        /// `2·(d·h₁ + Σ hᵢ·hᵢ₊₁)`: the folded first layer (`[u, n, u ⊙ n]·W₁` is `n·W_eff` plus a
        /// per-query bias) and the rest of the MLP.
        public var operationsPerCandidate: Double? {
            Double(2 * effective.rows * effective.cols
                   + scorer.mlp.layers.dropFirst().reduce(0) { $0 + 2 * $1.inputs * $1.outputs })
        }

        public mutating func score(nodes: borrowing Matrix, level: Int, into scores: inout [Float]) {
            if let hierarchy = scorer.hierarchy, let behaviours = scorer.behaviours {
                // One user vector per level: the mean of the behaviours' ancestors there.
                let key = hierarchy.covers(level: level) ? level : -1
                if key != termsLevel {
                    let u = key < 0 ? vector
                        : hierarchy.pooled(level: key, behaviourRows: behaviourRows, table: behaviours.itemVectors) ?? vector
                    (firstBias, effective) = scorer.userTerms(u)
                    termsLevel = key
                }
            }
            BLAS.gemm(copy nodes, effective, into: &hidden)
            scorer.mlp.layers[0].addBiasAndActivate(&hidden, bias: firstBias)
            let out = scorer.mlp.forward(hidden, from: 1, buffers: &buffers)
            scores.removeAll(keepingCapacity: true)
            scores.append(contentsOf: out.values)
        }
    }
}
