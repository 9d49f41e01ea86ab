import ArborCore
import ArborMath
import Foundation

/// TDM's "attention-DNN" scorer: a DIN-style activation unit weights each of the user's behaviours
/// by its relevance to the node, the weighted behaviours are pooled, and an InferenceMLP over
/// `[p, n, p ⊙ n]` (pooled user vector, node embedding, their product) gives the score.
///
/// InferenceActivation unit: `a_j(n) = w₂ · PReLU([e_j, n, e_j ⊙ n] · W₁ + b₁) + b₂` for behaviour embedding
/// `e_j`; weights are the softmax of `a_j(n)` over the (non-padded) behaviours; `p(n) = Σ_j w_j e_j`.
/// (`[e, n, e⊙n, e − n]` adds nothing: `e − n` is linear in `e` and `n`, so it folds into `W₁`.)
///
/// Query-only work happens once per session: `E · W₁ₑ + b₁` (`L × h`) and the stacked matrices
/// `diag(e_j) · W₁ₚ` (`d × L·h`). A level of `m` candidates then costs GEMMs of `m × d × L·h`,
/// `m × d × h`, `m × L × d`, and the output InferenceMLP. Histories use the last ``maxHistory`` behaviours;
/// unknown behaviour ids are skipped and counted, or rejected (``unknownItems``); an empty history
/// gives `p = 0` (the node term of the InferenceMLP alone then ranks nodes).
///
/// With ``positions`` (TDM training's recency embedding), row `r` is added to the `r`-th most
/// recent kept behaviour before anything else, so `e_j` above reads `e_j + pos_r(j)`.
public struct AttentionScorer: NodeScorer {
    public let nodeDimension: Int
    /// `B × d`, row-major: embeddings of the behaviour items (rows belong to ``behaviourIDs``).
    public let behaviourEmbeddings: Matrix
    public let behaviourIDs: [ItemID]
    private let rowOf: [ItemID: Int32]
    /// InferenceActivation unit: `3d × h` then `h × 1`.
    public let attention: InferenceMLP
    /// Output InferenceMLP: `3d × …` then `… × 1`.
    public let output: InferenceMLP
    public let maxHistory: Int
    public let unknownItems: UnknownItemPolicy
    /// `P × d` recency embeddings (`P >= maxHistory`; row 0 = the most recent behaviour), or `nil`.
    public let positions: Matrix?
    /// JTM's hierarchical features: on a level the hierarchy covers, each behaviour is replaced by
    /// its ancestor's embedding there (before the recency row is added); `nil` = the behaviours
    /// on every level.
    public let hierarchy: BehaviourHierarchy?

    /// - Throws: ``ArborError`` when shapes do not chain (attention and output MLPs take `3d`
    ///   inputs and end in one unit), ids repeat, counts differ, or `positions` is not
    ///   `P × d` with `P >= maxHistory`.
    public init(dimension d: Int, behaviourEmbeddings: Matrix, behaviourIDs: [ItemID], attention: InferenceMLP,
                output: InferenceMLP, maxHistory: Int = 50, unknownItems: UnknownItemPolicy = .ignore,
                positions: Matrix? = nil, hierarchy: BehaviourHierarchy? = nil) throws {
        guard behaviourEmbeddings.cols == d else {
            throw ArborError.dimensionMismatch(field: "behaviour embeddings", expected: d, found: behaviourEmbeddings.cols)
        }
        guard behaviourEmbeddings.rows == behaviourIDs.count else {
            throw ArborError.dimensionMismatch(field: "behaviour ids", expected: behaviourEmbeddings.rows,
                                               found: behaviourIDs.count)
        }
        guard attention.layers.count == 2, attention.layers[0].inputs == 3 * d, attention.layers[1].outputs == 1 else {
            throw ArborError.invalidArgument(name: "attention unit", reason: "needs two layers, 3·\(d) inputs, one output")
        }
        guard let first = output.layers.first, first.inputs == 3 * d, output.layers.last!.outputs == 1 else {
            throw ArborError.invalidArgument(name: "output InferenceMLP", reason: "needs 3·\(d) inputs and one output")
        }
        guard maxHistory >= 1 else {
            throw ArborError.invalidArgument(name: "maxHistory", reason: "must be at least 1, got \(maxHistory)")
        }
        if let positions {
            guard positions.cols == d else {
                throw ArborError.dimensionMismatch(field: "attention positions", expected: d, found: positions.cols)
            }
            guard positions.rows >= maxHistory else {
                throw ArborError.invalidArgument(name: "attention positions",
                                                 reason: "\(positions.rows) rows for a history of up to \(maxHistory)")
            }
        }
        if let hierarchy {
            guard hierarchy.embeddings.cols == d, hierarchy.rows.allSatisfy({ $0.count == behaviourIDs.count }) else {
                throw ArborError.invalidArgument(name: "attention hierarchy",
                                                 reason: "needs \(d)-wide rows and one lookup entry per behaviour")
            }
        }
        var map = [ItemID: Int32](minimumCapacity: behaviourIDs.count)
        for (i, id) in behaviourIDs.enumerated() where map.updateValue(Int32(i), forKey: id) != nil {
            throw ArborError.duplicateItem(id)
        }
        self.hierarchy = hierarchy
        nodeDimension = d
        self.positions = positions
        self.behaviourEmbeddings = behaviourEmbeddings
        self.behaviourIDs = behaviourIDs
        rowOf = map
        self.attention = attention
        self.output = output
        self.maxHistory = maxHistory
        self.unknownItems = unknownItems
    }

    /// A randomly initialised scorer (for tests and as a training start).
    public static func random(dimension d: Int, behaviourEmbeddings: Matrix, behaviourIDs: [ItemID],
                              attentionHidden: Int = 36, hidden: [Int] = [128, 64, 24], seed: UInt64) throws -> AttentionScorer {
        var rng = SplitMix64(seed: seed)
        return try AttentionScorer(dimension: d, behaviourEmbeddings: behaviourEmbeddings, behaviourIDs: behaviourIDs,
                                   attention: .random(widths: [3 * d, attentionHidden, 1], prefix: "attention", using: &rng),
                                   output: .random(widths: [3 * d] + hidden + [1], prefix: "output", using: &rng))
    }

    /// Whether `id` has a behaviour embedding (else sessions skip or reject it). O(1).
    public func knows(_ id: ItemID) -> Bool { rowOf[id] != nil }

    public func makeSession(for query: Query) throws -> Session {
        var rows: [Int] = []
        for id in query.history.suffix(maxHistory) {
            if let r = rowOf[id] { rows.append(Int(r)) } else if unknownItems == .reject { throw ArborError.unknownItem(id) }
        }
        let parts = historyParts(rows: rows, level: -1)
        var nodeWeight = Matrix(rows: nodeDimension, cols: attention.layers[0].weight.cols)
        for i in 0..<nodeDimension { nodeWeight.setRow(i, attention.layers[0].weight.row(nodeDimension + i)) }
        return Session(scorer: self, history: parts.history, historyTerm: parts.historyTerm, stacked: parts.stacked,
                       nodeWeight: nodeWeight, skipped: query.history.suffix(maxHistory).count - rows.count,
                       behaviourRows: rows)
    }

    /// The query-only work for behaviour rows `rows` on `level` (its hierarchy ancestors when the
    /// hierarchy covers it; `-1` = the behaviours themselves): the `L × d` history (recency rows
    /// added), `E · W₁ₑ + b₁` (`L × h`) and the stacked `diag(e_j) · W₁ₚ` (`d × L·h`). O(L · d · h).
    func historyParts(rows: [Int], level: Int) -> (history: Matrix, historyTerm: Matrix, stacked: Matrix) {
        let d = nodeDimension
        let l = rows.count
        var history = hierarchy.map { $0.history(level: level, behaviourRows: rows, table: behaviourEmbeddings) }
            ?? Matrix(rows: l, cols: d)
        if hierarchy == nil { for (j, r) in rows.enumerated() { history.setRow(j, behaviourEmbeddings.row(r)) } }
        if let positions {
            for j in 0..<l {
                let rank = l - 1 - j
                for i in 0..<d { history[j, i] += positions[rank, i] }
            }
        }
        let w1 = attention.layers[0].weight
        let h = w1.cols
        // E · W₁ₑ + b₁  (L × h)
        var historyTerm = Matrix(rows: l, cols: h)
        var stacked = Matrix(rows: d, cols: max(1, l) * h)
        for j in 0..<l {
            for c in 0..<h {
                var s = attention.layers[0].bias[c]
                for i in 0..<d { s += history[j, i] * w1[i, c] }
                historyTerm[j, c] = s
            }
            for i in 0..<d {
                let e = history[j, i]
                for c in 0..<h { stacked[i, j * h + c] = e * w1[2 * d + i, c] }
            }
        }
        return (history, historyTerm, stacked)
    }

    /// Per-query state and reused buffers.
    public struct Session: ScoringSession {
        let scorer: AttentionScorer
        /// `L × d` behaviour embeddings of this user (on the level ``partsLevel``).
        var history: Matrix
        var historyTerm: Matrix
        var stacked: Matrix
        let nodeWeight: Matrix
        /// The behaviour rows of the user's history (for the hierarchy's per-level parts).
        let behaviourRows: [Int]
        /// The level ``history`` is for (`-1`: the behaviours themselves).
        var partsLevel = -1
        /// History items that were not in the behaviour table.
        public let skipped: Int
        /// The attention unit's negative-input slopes (`nil`: not piecewise linear), fixed per scorer.
        let hiddenSlopes: [Float]?
        var pairTerm = Matrix(rows: 0, cols: 1)
        var nodeTerm = Matrix(rows: 0, cols: 1)
        var logits: [Float] = []
        var weights = Matrix(rows: 0, cols: 1)
        var pooled = Matrix(rows: 0, cols: 1)
        var features = Matrix(rows: 0, cols: 1)
        var buffers: [Matrix] = []

        init(scorer: AttentionScorer, history: Matrix, historyTerm: Matrix, stacked: Matrix, nodeWeight: Matrix,
             skipped: Int, behaviourRows: [Int]) {
            self.scorer = scorer
            self.behaviourRows = behaviourRows
            self.history = history
            self.historyTerm = historyTerm
            self.stacked = stacked
            self.nodeWeight = nodeWeight
            self.skipped = skipped
            hiddenSlopes = Self.negativeSlopes(scorer.attention.layers[0].activation, width: nodeWeight.cols)
            let d = scorer.nodeDimension, h = nodeWeight.cols
            pairTerm = Matrix(rows: 0, cols: stacked.cols)
            nodeTerm = Matrix(rows: 0, cols: h)
            weights = Matrix(rows: 0, cols: max(1, history.rows))
            pooled = Matrix(rows: 0, cols: d)
            features = Matrix(rows: 0, cols: 3 * d)
        }

        /// The per-unit slope for negative inputs when the activation is piecewise linear through 0
        /// (identity 1, ReLU 0, PReLU its slopes); `nil` for others (sigmoid).
        static func negativeSlopes(_ activation: InferenceActivation, width h: Int) -> [Float]? {
            switch activation {
            case .identity: return Array(repeating: 1, count: h)
            case .relu: return Array(repeating: 0, count: h)
            case .prelu(let slopes): return slopes
            case .sigmoid: return nil
            }
        }

        /// `2·(d·L·h + d·h + L·d) + 2·Σ` output-MLP widths: the pair projection `(e ⊙ n)·W₁ₚ` for
        /// every behaviour, the node term, the weighted pooling and the output MLP (the activation
        /// unit's `L·h` elementwise work not counted).
        public var operationsPerCandidate: Double? {
            let d = scorer.nodeDimension, l = history.rows, h = nodeWeight.cols
            let attention = l > 0 ? 2 * (d * l * h + d * h + l * d) : 0
            return Double(attention + scorer.output.layers.reduce(0) { $0 + 2 * $1.inputs * $1.outputs })
        }

        public mutating func score(nodes: borrowing Matrix, level: Int, into scores: inout [Float]) {
            if let hierarchy = scorer.hierarchy {
                let key = hierarchy.covers(level: level) ? level : -1
                if key != partsLevel {
                    (history, historyTerm, stacked) = scorer.historyParts(rows: behaviourRows, level: key)
                    partsLevel = key
                }
            }
            let m = nodes.rows, d = scorer.nodeDimension, l = history.rows
            let nodeMatrix = copy nodes
            if l > 0 {
                let h = nodeWeight.cols
                BLAS.gemm(nodeMatrix, nodeWeight, into: &nodeTerm)   // m × h:   n · W₁ₙ
                let unit = scorer.attention.layers
                let hiddenActivation = unit[0].activation, outputActivation = unit[1].activation
                let w2 = unit[1].weight, b2 = unit[1].bias[0]
                weights.resize(rows: m)
                if let slopes = hiddenSlopes {
                    // Identity, ReLU and PReLU: the chunked kernel (pair GEMM, activation, GEMV).
                    AttentionKernel.logits(nodes: nodeMatrix, stacked: stacked, node: nodeTerm, history: historyTerm,
                                           w2: w2.values, b2: b2, slopes: slopes, scratch: &pairTerm, into: &weights)
                } else {
                    BLAS.gemm(nodeMatrix, stacked, into: &pairTerm)  // m × L·h: (e_j ⊙ n) · W₁ₚ
                    for k in 0..<m {
                        for j in 0..<l {
                            var a = b2
                            for c in 0..<h {
                                let x = pairTerm[k, j * h + c] + nodeTerm[k, c] + historyTerm[j, c]
                                a += hiddenActivation.value(x, column: c) * w2[c, 0]
                            }
                            weights[k, j] = a
                        }
                    }
                }
                if outputActivation != .identity {
                    for k in 0..<m { for j in 0..<l { weights[k, j] = outputActivation.value(weights[k, j], column: 0) } }
                }
                AttentionKernel.softmaxRows(&weights)
                BLAS.gemm(weights, history, into: &pooled)           // m × d
            } else {
                pooled = Matrix(rows: m, cols: d)
            }
            AttentionKernel.productFeatures(pooled: pooled, nodes: nodeMatrix, into: &features)
            let out = scorer.output.forward(features, buffers: &buffers)
            scores.removeAll(keepingCapacity: true)
            scores.append(contentsOf: out.values)
        }
    }
}
