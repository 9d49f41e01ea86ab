import ArborInference
import ArborMath
import ArborNN
import ArborTree

/// The scorer a TDM model trains: the node scorer kind its index records (product-DNN = inner
/// product, DNN, attention-DNN).
public typealias TDMScorerKind = NodeScorerKind

/// Shape and initialisation of a ``TDMModel``.
public struct TDMModelConfig: Sendable, Equatable {
    /// The scorer trained.
    public var kind: TDMScorerKind
    /// Width `d` of node and behaviour embeddings (TDM: 24).
    public var dimension: Int
    /// Hidden widths of the DNN / output MLP (TDM: 128, 64, 24); ignored by the inner product.
    public var hidden: [Int]
    /// Hidden width of the attention unit (`3d → h → 1`); attention only.
    public var attentionHidden: Int
    /// Most recent behaviours a user is represented by (training and serving alike), >= 1.
    public var maxHistory: Int
    /// Attention only: a learnt recency embedding is added to each behaviour embedding before the
    /// attention unit (row `r` of `attention.positions` to the `r`-th most recent kept behaviour),
    /// so the unit can weigh recent behaviours apart from old ones. Default false.
    public var recencyEmbedding: Bool
    /// DNN and attention only: JTM's hierarchical user representation. When a node of level `l`
    /// (below the root, above the leaves) is scored, each behaviour that is a tree item is replaced
    /// by its ancestor at level `l`, embedded by a row of the table `hierarchy.table` (one row per
    /// inner node of levels `1 ..< depth`); at the leaves the behaviours are themselves. Behaviours
    /// not in the tree keep their own embedding on every level. Default false.
    public var hierarchicalFeatures: Bool = false
    /// Standard deviation of the initial embedding rows (behaviours and nodes).
    public var embeddingScale: Float
    /// Seed of every initial weight.
    public var seed: UInt64

    /// A configuration; defaults follow TDM's MovieLens setting (d = 24, MLP 128-64-24).
    public init(kind: TDMScorerKind, dimension: Int = 24, hidden: [Int] = [128, 64, 24], attentionHidden: Int = 36,
                maxHistory: Int = 50, recencyEmbedding: Bool = false, hierarchicalFeatures: Bool = false,
                embeddingScale: Float = 0.1, seed: UInt64 = 0) {
        self.kind = kind
        self.hierarchicalFeatures = hierarchicalFeatures
        self.recencyEmbedding = recencyEmbedding
        self.dimension = dimension
        self.hidden = hidden
        self.attentionHidden = attentionHidden
        self.maxHistory = maxHistory
        self.embeddingScale = embeddingScale
        self.seed = seed
    }
}

/// A batch of TDM training (or scoring) rows, laid out for one forward pass.
///
/// `B` samples, each a user history of at most `length` behaviours (rows of the behaviour table,
/// `-1` = padding, real behaviours first), and `R` scored rows, each a (sample, tree node) pair.
/// All levels of all samples go into the same `R` rows, so the scorer runs as a few GEMMs over `R`.
public struct TDMBatch: Sendable, Equatable {
    /// Number of samples `B`.
    public var sampleCount: Int
    /// Padded history length `L` (>= 1).
    public var length: Int
    /// `B × L` behaviour-table rows, `-1` for padding.
    public var behaviours: [Int]
    /// For each of the `R` rows, the sample it belongs to (`0 ..< B`).
    public var sampleOfRow: [Int]
    /// For each row, the global node index (``TDMModel/globalIndex(level:node:)``).
    public var nodeOfRow: [Int]
    /// For each row, 1 for a positive (the target's ancestor), 0 for a sampled negative (OTM's
    /// pseudo-targets may lie in between).
    public var labels: [Float]
    /// Training samples the batch stands for, when not ``sampleCount`` (with hierarchical features
    /// each training sample is one batch sample per level); the loss is a mean over them.
    public var trainingSampleCount: Int? = nil

    /// An empty batch of histories of length `length`.
    public init(length: Int) {
        sampleCount = 0
        self.length = max(1, length)
        behaviours = []
        sampleOfRow = []
        nodeOfRow = []
        labels = []
    }

    /// Appends a sample's history (behaviour-table rows, at most ``length``, oldest first); returns
    /// its sample index.
    public mutating func appendSample(rows: [Int]) -> Int {
        precondition(rows.count <= length)
        behaviours.append(contentsOf: rows)
        behaviours.append(contentsOf: repeatElement(-1, count: length - rows.count))
        sampleCount += 1
        return sampleCount - 1
    }

    /// Appends one scored row.
    public mutating func appendRow(sample: Int, node: Int, label: Float) {
        sampleOfRow.append(sample)
        nodeOfRow.append(node)
        labels.append(label)
    }

    /// Number of scored rows `R`.
    public var rowCount: Int { nodeOfRow.count }

    /// `B × L` mask: 1 for a real behaviour, 0 for padding.
    var mask: [Float] { behaviours.map { $0 >= 0 ? 1 : 0 } }

    /// `B × L` recency rank of each slot: 0 for a sample's most recent (last real) behaviour, 1
    /// for the one before, …; -1 for padding. O(B·L).
    var recencyRanks: [Int] {
        var ranks = [Int](repeating: -1, count: behaviours.count)
        for s in 0..<sampleCount {
            let slots = s * length ..< (s + 1) * length
            let real = behaviours[slots].prefix { $0 >= 0 }.count
            for j in 0..<real { ranks[slots.lowerBound + j] = real - 1 - j }
        }
        return ranks
    }
}

/// A trainable TDM model: a tree whose node embeddings are parameters, a behaviour embedding table,
/// and a scorer (inner product, DNN or attention-DNN) built from ArborNN layers.
///
/// The forward pass (``logits(_:on:)``) computes exactly what the inference scorers compute for the
/// same weights: ``innerProductScorer()`` / ``dnnScorer()`` with ``encoder()`` for the user vector,
/// and ``attentionScorer(unknownItems:)``; a test checks agreement within 1e-4.
///
/// Parameters (names are the keys of ``trainingTensors()``):
/// - `nodes.table` `[nodeCount, d]`, sparse: node `i` of level `l` is row ``globalIndex(level:node:)``;
/// - `behaviour.table` `[itemCount, d]`, sparse: the embedding of each behaviour item (``items``);
/// - dnn: `dnn.<i>.weight|bias|prelu`; attention: `attention.<i>.*` (unit `3d → h → 1`) and
///   `output.<i>.*` (`3d → hidden… → 1`). Hidden layers use PReLU, the last is linear.
///
/// A user is represented by the last ``TDMModelConfig/maxHistory`` behaviours of their history; ids
/// not in ``items`` are dropped (counted by ``behaviourRows(of:)``). Not thread-safe (training state).
public final class TDMModel: Module {
    /// The configuration the model was made with.
    public let config: TDMModelConfig
    /// Behaviour vocabulary: row `i` of `behaviour.table` embeds `items[i]`.
    public let items: [ItemID]
    private let rowOfItem: [ItemID: Int]
    /// The current tree (structure and leaf items); its stored embeddings are the ones it was built
    /// with, the trained ones are in ``nodes`` (see ``layout()``).
    public private(set) var tree: TreeLayout
    /// First global node index of each level (`depth + 2` entries, last = node count).
    public private(set) var levelStart: [Int]
    /// Parent (local index) of each node of level `l >= 1`; `parents[0]` is empty.
    public private(set) var parents: [[Int32]]
    /// Leaf index of each tree item.
    public private(set) var leafOfItem: [ItemID: Int]
    /// Node embeddings over all levels, `[nodeCount, d]`, sparse rows.
    public private(set) var nodes: Parameter
    /// Behaviour embeddings `[items.count, d]`, sparse rows.
    public let behaviour: Embedding
    /// DNN scorer MLP `3d → hidden… → 1` (kind `.dnn`).
    public let dnn: MLP?
    /// Attention unit `3d → h → 1` (kind `.attention`).
    public let attentionUnit: MLP?
    /// Output MLP `3d → hidden… → 1` (kind `.attention`).
    public let output: MLP?
    /// Recency embeddings `[maxHistory, d]`, sparse rows, starting at zero (kind `.attention` with
    /// ``TDMModelConfig/recencyEmbedding``): row `r` is added to the `r`-th most recent behaviour.
    public let positions: Parameter?
    /// JTM's hierarchical behaviour embeddings (``TDMModelConfig/hierarchicalFeatures``):
    /// `[inner nodes of levels 1 ..< depth, d]`, sparse rows; row ``hierarchyRow(level:node:)``.
    /// Rebuilt with the tree (``replaceTree(_:)``): each row starts as the mean of the behaviour
    /// embeddings of the items below its node.
    public private(set) var hierarchy: Parameter?
    /// For each level `0 ... depth`, the history row each behaviour row stands for on that level
    /// (``levelRows(_:level:)``); empty when the model has no hierarchical features.
    private var ancestorRows: [[Int]] = []

    /// A model over `tree` (whose embeddings initialise the node table) and the behaviour
    /// vocabulary `items` (each id once; items absent from the tree may appear, e.g. history-only).
    /// - Throws: ``ArborError`` for an invalid tree, a tree dimension other than `config.dimension`,
    ///   duplicate items, an empty vocabulary or bad widths.
    public init(config: TDMModelConfig, tree: TreeLayout, items: [ItemID]) throws(ArborError) {
        try tree.validate()
        let d = config.dimension
        guard tree.dimension == d else {
            throw .dimensionMismatch(field: "tree dimension", expected: d, found: tree.dimension)
        }
        guard !items.isEmpty else { throw .empty(what: "behaviour items") }
        guard config.maxHistory >= 1 else {
            throw .invalidArgument(name: "maxHistory", reason: "must be at least 1, got \(config.maxHistory)")
        }
        guard !config.hierarchicalFeatures || config.kind != .innerProduct else {
            throw .invalidArgument(name: "hierarchicalFeatures", reason: "needs the DNN or attention scorer, not the inner product")
        }
        var map = [ItemID: Int](minimumCapacity: items.count)
        for (i, id) in items.enumerated() where map.updateValue(i, forKey: id) != nil { throw .duplicateItem(id) }
        self.config = config
        self.items = items
        rowOfItem = map
        var rng = SplitMix64(seed: config.seed)
        behaviour = try Embedding(count: items.count, dimension: d, initializer: .normal(std: config.embeddingScale),
                                  name: "behaviour", rng: &rng)
        switch config.kind {
        case .innerProduct:
            dnn = nil; attentionUnit = nil; output = nil; positions = nil
        case .dnn:
            dnn = try MLP(sizes: [3 * d] + config.hidden + [1], activation: .prelu, name: "dnn", rng: &rng)
            attentionUnit = nil; output = nil; positions = nil
        case .attention:
            dnn = nil
            attentionUnit = try MLP(sizes: [3 * d, config.attentionHidden, 1], activation: .prelu, name: "attention", rng: &rng)
            output = try MLP(sizes: [3 * d] + config.hidden + [1], activation: .prelu, name: "output", rng: &rng)
            positions = config.recencyEmbedding
                ? try Parameter(name: "attention.positions", shape: [config.maxHistory, d],
                                values: [Float](repeating: 0, count: config.maxHistory * d), sparse: true)
                : nil
        }
        let structure = Self.structure(of: tree)
        self.tree = tree
        levelStart = structure.levelStart
        parents = structure.parents
        leafOfItem = structure.leafOfItem
        nodes = try Parameter(name: "nodes.table", shape: [structure.levelStart.last!, d],
                              values: tree.levels.flatMap(\.embeddings.values), sparse: true)
        if config.hierarchicalFeatures { try rebuildHierarchy() }
    }

    /// Makes ``hierarchy`` and the per-level row maps for the current tree: each inner node's row is
    /// the mean of the behaviour rows of the tree items below it (zero when none has one).
    /// O(items · depth · d).
    private func rebuildHierarchy() throws(ArborError) {
        let d = dimension, depth = tree.depth
        let inner = depth >= 1 ? levelStart[depth] - levelStart[1] : 0
        var sums = [Float](repeating: 0, count: inner * d)
        var counts = [Int](repeating: 0, count: inner)
        var maps = [[Int]](repeating: [], count: depth + 1)
        let table = behaviour.table.value
        for l in 1..<max(1, depth) { maps[l] = Array(0..<items.count) }
        for (leaf, id) in tree.leafItems.enumerated() {
            guard let row = rowOfItem[id], depth >= 2 else { continue }
            let path = ancestors(ofLeaf: leaf)
            for l in 1..<depth {
                let h = hierarchyRow(level: l, node: path[l])
                maps[l][row] = items.count + h
                counts[h] += 1
                for c in 0..<d { sums[h * d + c] += table[row * d + c] }
            }
        }
        for h in 0..<inner where counts[h] > 0 {
            let inv = 1 / Float(counts[h])
            for c in 0..<d { sums[h * d + c] *= inv }
        }
        ancestorRows = maps
        hierarchy = try Parameter(name: "hierarchy.table", shape: [max(1, inner), d],
                                  values: inner > 0 ? sums : [Float](repeating: 0, count: d), sparse: true)
    }

    /// Row of inner node `node` of level `level` (`1 ..< depth`) in ``hierarchy``.
    @inlinable public func hierarchyRow(level: Int, node: Int) -> Int { levelStart[level] - levelStart[1] + node }

    /// Whether histories differ per level (``TDMModelConfig/hierarchicalFeatures``).
    public var isHierarchical: Bool { hierarchy != nil }

    /// The history rows a user's behaviour rows (``behaviourRows(of:)``) stand for when nodes of
    /// `level` are scored: the rows themselves without hierarchical features or at the leaves;
    /// otherwise row `items.count + h` for a tree item whose level-`level` ancestor has hierarchy row
    /// `h`, the own row for other behaviours. O(rows).
    public func levelRows(_ rows: [Int], level: Int) -> [Int] {
        guard level < ancestorRows.count, !ancestorRows[level].isEmpty else { return rows }
        let map = ancestorRows[level]
        return rows.map { $0 >= 0 ? map[$0] : $0 }
    }

    /// For each level `1 ..< depth`, the hierarchy row (or `-1` for a behaviour outside the tree)
    /// of every behaviour row: the lookup table serving needs. Empty without hierarchical features.
    public func hierarchyLookup() -> [[Int32]] {
        guard isHierarchical, tree.depth >= 2 else { return [] }
        return (1..<tree.depth).map { l in ancestorRows[l].map { $0 >= items.count ? Int32($0 - items.count) : -1 } }
    }

    private static func structure(of tree: TreeLayout) -> (levelStart: [Int], parents: [[Int32]], leafOfItem: [ItemID: Int]) {
        var start = [0]
        for level in tree.levels { start.append(start.last! + level.nodeCount) }
        var parents: [[Int32]] = [[]]
        for l in 0..<tree.depth {
            let off = tree.levels[l].childOffsets
            var p = [Int32](repeating: 0, count: tree.levels[l + 1].nodeCount)
            for i in 0..<tree.levels[l].nodeCount {
                for c in Int(off[i])..<Int(off[i + 1]) { p[c] = Int32(i) }
            }
            parents.append(p)
        }
        var leaf = [ItemID: Int](minimumCapacity: tree.itemCount)
        for (j, id) in tree.leafItems.enumerated() { leaf[id] = j }
        return (start, parents, leaf)
    }

    /// Every trainable parameter: the embedding tables, then the dense weights.
    public var parameters: [Parameter] { sparseParameters + denseParameters }

    /// The dense (MLP) parameters, for Adam.
    public var denseParameters: [Parameter] {
        (dnn?.parameters ?? []) + (attentionUnit?.parameters ?? []) + (output?.parameters ?? [])
    }

    /// The sparse embedding tables (`nodes.table`, `behaviour.table`, and `attention.positions`
    /// when present), for LazyAdam / Adagrad.
    public var sparseParameters: [Parameter] {
        [nodes, behaviour.table] + (positions.map { [$0] } ?? []) + (hierarchy.map { [$0] } ?? [])
    }

    /// Embedding width `d`.
    public var dimension: Int { config.dimension }

    /// Global row of node `node` of level `level` in ``nodes``.
    @inlinable public func globalIndex(level: Int, node: Int) -> Int { levelStart[level] + node }

    /// The ancestor of leaf `leaf` at every level `0 ... depth` (local indices; the last is the leaf).
    /// O(depth).
    public func ancestors(ofLeaf leaf: Int) -> [Int] {
        var path = [Int](repeating: 0, count: tree.depth + 1)
        var node = leaf
        for l in stride(from: tree.depth, through: 1, by: -1) {
            path[l] = node
            node = Int(parents[l][node])
        }
        return path
    }

    /// The behaviour-table rows a history maps to: the last `maxHistory` entries, unknown ids
    /// dropped (as the serving encoder and attention scorer do), and how many were dropped.
    /// O(min(history, maxHistory)).
    public func behaviourRows(of history: some Collection<ItemID>) -> (rows: [Int], unknown: Int) {
        var rows: [Int] = []
        var unknown = 0
        for id in history.suffix(config.maxHistory) {
            if let r = rowOfItem[id] { rows.append(r) } else { unknown += 1 }
        }
        return (rows, unknown)
    }

    /// Row of `item` in the behaviour table, if it is in the vocabulary.
    public func behaviourRow(of item: ItemID) -> Int? { rowOfItem[item] }

    // MARK: - Forward pass

    /// One logit per row of `batch` (shape `[R]`); the training loss applies binary
    /// cross-entropy to them. Cost, with `B` samples, `R` rows, history `L`:
    /// inner product O(R·d); DNN O(R·(3d·h₁ + Σ hᵢhᵢ₊₁)); attention O(R·L·d·h + R·(3d·h₁ + …)) as
    /// GEMMs (the attention unit's `[e, n, e⊙n]·W₁` is split into `e·W₁ₑ` per sample,
    /// `n·W₁ₙ` per row and `(e⊙n)·W₁ₚ`, as the serving scorer does).
    /// - Throws: ``ArborError`` for indices out of range or inconsistent batch arrays.
    public func logits(_ batch: TDMBatch, on tape: Tape) throws(ArborError) -> Tensor {
        let b = batch.sampleCount, l = batch.length, r = batch.rowCount
        guard batch.behaviours.count == b * l, batch.sampleOfRow.count == r, batch.labels.count == r else {
            throw .dimensionMismatch(field: "TDM batch arrays", expected: b * l, found: batch.behaviours.count)
        }
        let mask = batch.mask
        let node = try tape.gather(nodes, indices: batch.nodeOfRow)                        // R × d
        let history = try historyEmbeddings(batch.behaviours, samples: b, length: l, on: tape)  // B × L × d
        switch config.kind {
        case .innerProduct, .dnn:
            let user = try tape.maskedMean(history, mask: mask)                             // B × d
            let u = try tape.gatherRows(user, indices: batch.sampleOfRow)                   // R × d
            let product = try tape.mul(u, node)
            if config.kind == .innerProduct { return try tape.sum(product, axis: 1) }
            let x = try tape.concat([u, node, product], axis: -1)                           // R × 3d
            return try tape.reshape(dnn!(x, on: tape), to: [r])
        case .attention:
            var history = history
            if let positions {
                let recent = try tape.gather(positions, indices: batch.recencyRanks, indexShape: [b, l])
                history = try tape.add(history, recent)
            }
            let pooled = try attentionPooling(history: history, node: node, batch: batch, mask: mask, on: tape)
            let x = try tape.concat([pooled, node, tape.mul(pooled, node)], axis: -1)
            return try tape.reshape(output!(x, on: tape), to: [r])
        }
    }

    /// The embeddings of history rows (`-1` = padding → zeros): behaviour rows below
    /// `items.count`, hierarchy rows above (one gather from each table, added).
    private func historyEmbeddings(_ rows: [Int], samples b: Int, length l: Int, on tape: Tape) throws(ArborError) -> Tensor {
        guard let hierarchy else { return try behaviour(rows, indexShape: [b, l], on: tape) }
        let n = items.count
        let own = try behaviour(rows.map { $0 < n ? $0 : -1 }, indexShape: [b, l], on: tape)
        guard rows.contains(where: { $0 >= n }) else { return own }
        let up = try tape.gather(hierarchy, indices: rows.map { $0 >= n ? $0 - n : -1 }, indexShape: [b, l])
        return try tape.add(own, up)
    }

    /// The attention unit's pooled behaviours per row (`R × d`) as one fused op
    /// (``AttentionPoolingKernel``): the per-(row, behaviour) work runs in cache-sized chunks of
    /// GEMMs, and nothing of size `R·L·h` is kept on the tape.
    private func attentionPooling(history: Tensor, node: Tensor, batch: TDMBatch, mask: [Float],
                                  on tape: Tape) throws(ArborError) -> Tensor {
        guard batch.sampleOfRow.allSatisfy({ (0..<batch.sampleCount).contains($0) }) else {
            throw .invalidArgument(name: "TDM batch sampleOfRow", reason: "a row names a sample outside 0..<\(batch.sampleCount)")
        }
        let unit = attentionUnit!
        let first = unit.layers[0], second = unit.layers[1]
        let inputs = [history, node, tape.parameter(first.weight), tape.parameter(first.bias!),
                      tape.parameter(unit.slopes[0]), tape.parameter(second.weight), tape.parameter(second.bias!)]
        let shape = AttentionPoolingKernel.Shape(samples: batch.sampleCount, length: batch.length, rows: batch.rowCount,
                                                 dimension: dimension, hidden: first.outputs)
        let weights = AttentionPoolingKernel.Weights(w1: inputs[2].values, b1: inputs[3].values, slopes: inputs[4].values,
                                                     w2: inputs[5].values, b2: inputs[6].values[0])
        let historyValues = history.values, nodeValues = node.values, sampleOfRow = batch.sampleOfRow
        let forward = AttentionPoolingKernel.forward(shape: shape, history: historyValues, mask: mask,
                                                     sampleOfRow: sampleOfRow, node: nodeValues, weights: weights)
        // The kernel yields every gradient at once; the tape asks for them input by input.
        final class Cache { var gradients: AttentionPoolingKernel.Gradients? }
        let cache = Cache()
        return try tape.custom(inputs, values: forward.pooled, shape: [batch.rowCount, dimension]) { g, input, dx in
            if cache.gradients == nil {
                cache.gradients = AttentionPoolingKernel.backward(
                    shape: shape, history: historyValues, mask: mask, sampleOfRow: sampleOfRow, node: nodeValues,
                    weights: weights, forward: forward, pooledGradient: g)
            }
            let grads = cache.gradients!
            let source: [Float]
            switch input {
            case 0: source = grads.history
            case 1: source = grads.node
            case 2: source = grads.w1
            case 3: source = grads.b1
            case 4: source = grads.slopes
            case 5: source = grads.w2
            default: source = [grads.b2]
            }
            for i in 0..<dx.count { dx[i] += source[i] }
        }
    }

    /// Scores of `nodes` (local indices of `level`) for a user with `history`, through the training
    /// forward pass (for checks against the serving scorers). O(one forward pass of `nodes.count` rows).
    /// - Throws: ``ArborError`` for a bad level or node index.
    public func scores(history: [ItemID], level: Int, nodes nodeIndices: [Int]) throws(ArborError) -> [Float] {
        guard (0...tree.depth).contains(level) else {
            throw .invalidArgument(name: "level", reason: "\(level) outside 0...\(tree.depth)")
        }
        let count = tree.levels[level].nodeCount
        var batch = TDMBatch(length: config.maxHistory)
        let rows = levelRows(behaviourRows(of: history).rows, level: level)
        batch.length = max(1, rows.count)
        let s = batch.appendSample(rows: rows)
        for n in nodeIndices {
            guard (0..<count).contains(n) else { throw .invalidArgument(name: "node", reason: "\(n) outside 0..<\(count)") }
            batch.appendRow(sample: s, node: globalIndex(level: level, node: n), label: 0)
        }
        let tape = Tape()
        return try logits(batch, on: tape).values
    }

    // MARK: - Trees

    /// The tree with the trained node embeddings. O(nodeCount · d).
    public func layout() -> TreeLayout {
        var out = tree
        let d = dimension
        for l in 0...tree.depth {
            let start = levelStart[l] * d, end = levelStart[l + 1] * d
            // Counts match by construction.
            out.levels[l].embeddings = (try? Matrix(rows: tree.levels[l].nodeCount, cols: d,
                                                    values: Array(nodes.value[start..<end]))) ?? out.levels[l].embeddings
        }
        return out
    }

    /// The trained leaf embedding of every tree item, rows in `tree.leafItems` order: what tree
    /// learning re-clusters. O(items · d).
    public func leafEmbeddings() -> (embeddings: Matrix, items: [ItemID]) {
        let l = layout()
        return (l.levels[l.depth].embeddings, l.leafItems)
    }

    /// Replaces the tree (after re-clustering) and rebuilds the node table from it: the new tree's
    /// embeddings become the node rows. Scorer and behaviour weights are kept. A fresh node
    /// parameter is made, so optimizers start its state anew.
    /// - Throws: ``ArborError`` for an invalid tree or another dimension.
    public func replaceTree(_ newTree: TreeLayout) throws(ArborError) {
        try newTree.validate()
        guard newTree.dimension == dimension else {
            throw .dimensionMismatch(field: "tree dimension", expected: dimension, found: newTree.dimension)
        }
        let s = Self.structure(of: newTree)
        tree = newTree
        levelStart = s.levelStart
        parents = s.parents
        leafOfItem = s.leafOfItem
        nodes = try Parameter(name: "nodes.table", shape: [s.levelStart.last!, dimension],
                              values: newTree.levels.flatMap(\.embeddings.values), sparse: true)
        if config.hierarchicalFeatures { try rebuildHierarchy() }
    }

    // MARK: - State (checkpoints, best epoch / round)

    /// A snapshot of the tree and every parameter value.
    public struct State: Sendable {
        /// The tree structure at the time of the snapshot.
        public let tree: TreeLayout
        /// Parameter values in ``TDMModel/parameters`` order.
        public let values: [[Float]]
    }

    /// The current tree and weights. O(parameter count) (copy-on-write shares the arrays).
    public func state() -> State { State(tree: tree, values: parameters.map(\.value)) }

    /// Restores a snapshot taken with ``state()`` from this model (possibly with another tree).
    /// - Throws: ``ArborError`` when the snapshot does not fit the model.
    public func restore(_ state: State) throws(ArborError) {
        if state.tree != tree { try replaceTree(state.tree) }
        let ps = parameters
        guard ps.count == state.values.count else {
            throw .dimensionMismatch(field: "snapshot parameters", expected: ps.count, found: state.values.count)
        }
        for (p, v) in zip(ps, state.values) { try p.assign(v) }
    }
}
