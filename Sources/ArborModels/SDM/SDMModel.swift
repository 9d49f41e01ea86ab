import ArborCore
import ArborInference
import ArborMath
import ArborNN
import ArborTree

/// The shape of an SDM model (Lv et al., CIKM 2019); see ``SDMEncoder`` for the computation.
///
/// Items are rows of a ``TwoTowerCatalog`` (ascending ids, optional categories). The item table
/// is shared by the behaviour input and the item side (`item vector = E[r]`, unit-normalised
/// with ``cosine``); categories enter the long-term attention only.
public struct SDMConfig: Sendable, Equatable, Codable {
    /// Number of items, >= 1.
    public var itemCount: Int
    /// Number of categories (0 = none); used by the long term only.
    public var categoryCount: Int
    /// Width of embeddings, LSTM states and the query vector, >= 1.
    public var dimension: Int
    /// Self-attention heads; divides ``dimension``.
    public var heads: Int
    /// Stacked LSTM layers, >= 1.
    public var lstmLayers: Int
    /// Most recent items of the latest session read, >= 1.
    public var maxSession: Int
    /// Most recent long-term items read, >= 1.
    public var maxLong: Int
    /// The session rule (10 minutes, 50 actions).
    public var sessions: SDMSessionRule
    /// How the halves are fused; ``SDMFusion/shortOnly`` for data without users.
    public var fusion: SDMFusion
    /// Unit-normalised query and item vectors.
    public var cosine: Bool
    /// Softmax temperature of the training loss, > 0.
    public var temperature: Float

    /// A configuration; defaults d = 64, 4 heads, 1 LSTM layer, 50 + 50 items, gated, cosine at 0.05.
    public init(itemCount: Int, categoryCount: Int = 0, dimension: Int = 64, heads: Int = 4, lstmLayers: Int = 1,
                maxSession: Int = 50, maxLong: Int = 50, sessions: SDMSessionRule = .init(), fusion: SDMFusion = .gated,
                cosine: Bool = true, temperature: Float = 0.05) {
        self.itemCount = itemCount
        self.categoryCount = categoryCount
        self.dimension = dimension
        self.heads = heads
        self.lstmLayers = lstmLayers
        self.maxSession = maxSession
        self.maxLong = maxLong
        self.sessions = sessions
        self.fusion = fusion
        self.cosine = cosine
        self.temperature = temperature
    }

    /// Checks the ranges.
    /// - Throws: ``TwoTowerError/invalidConfiguration(field:reason:)`` naming the field.
    public func validate() throws(TwoTowerError) {
        func bad(_ f: String, _ r: String) -> TwoTowerError { .invalidConfiguration(field: f, reason: r) }
        guard itemCount >= 1 else { throw bad("itemCount", "must be at least 1") }
        guard categoryCount >= 0 else { throw bad("categoryCount", "must be >= 0") }
        guard dimension >= 1, heads >= 1, dimension % heads == 0 else { throw bad("heads", "\(heads) must divide the dimension \(dimension)") }
        guard lstmLayers >= 1 else { throw bad("lstmLayers", "must be at least 1") }
        guard maxSession >= 1, maxLong >= 1 else { throw bad("maxSession", "lengths must be at least 1") }
        guard sessions.maxGap >= 0, sessions.maxActions >= 1 else { throw bad("sessions", "gap >= 0 and at least 1 action") }
        guard temperature > 0, temperature.isFinite else { throw bad("temperature", "must be positive") }
    }

    /// Whether categories enter the model (long term with a category table).
    public var usesCategories: Bool { fusion.usesLongTerm && categoryCount > 0 }
}

/// One mini-batch of SDM inputs, padded at the end of each row.
///
/// `shortRows` `batch × shortLength` and `longRows` `batch × longLength` hold item rows, `-1` for
/// padding; the masks hold 1 for real and 0 for padded positions; `hasLong[b]` is 1 when row `b`
/// has at least one long-term item. Every row has at least one short-term item.
public struct SDMBatch: Sendable {
    /// Rows in the batch.
    public var batch = 0
    /// Padded short-term length (>= 1).
    public var shortLength = 1
    /// Padded long-term length (>= 1; all padding when no row has a long term).
    public var longLength = 1
    /// Short-term item rows.
    public var shortRows: [Int] = []
    /// Short-term mask.
    public var shortMask: [Float] = []
    /// Long-term item rows.
    public var longRows: [Int] = []
    /// Long-term mask.
    public var longMask: [Float] = []
    /// Per row, 1 with a long term.
    public var hasLong: [Float] = []

    /// An empty batch.
    public init() {}

    /// Fills the batch from per-row (short, long) rows, each oldest first, reusing storage.
    public mutating func fill(_ rows: [(short: ArraySlice<Int32>, long: ArraySlice<Int32>)]) {
        batch = rows.count
        shortLength = max(1, rows.map(\.short.count).max() ?? 1)
        longLength = max(1, rows.map(\.long.count).max() ?? 1)
        shortRows.removeAll(keepingCapacity: true); shortMask.removeAll(keepingCapacity: true)
        longRows.removeAll(keepingCapacity: true); longMask.removeAll(keepingCapacity: true)
        hasLong.removeAll(keepingCapacity: true)
        for r in rows {
            for x in r.short { shortRows.append(Int(x)); shortMask.append(1) }
            for _ in r.short.count ..< shortLength { shortRows.append(-1); shortMask.append(0) }
            for x in r.long { longRows.append(Int(x)); longMask.append(1) }
            for _ in r.long.count ..< longLength { longRows.append(-1); longMask.append(0) }
            hasLong.append(r.long.isEmpty ? 0 : 1)
        }
    }

    /// The rows `range` of this batch, with the same padded lengths (a shard for data-parallel
    /// training). O(rows · (shortLength + longLength)).
    /// - Precondition: `range` lies within `0 ..< batch`.
    public func rows(_ range: Range<Int>) -> SDMBatch {
        precondition(range.lowerBound >= 0 && range.upperBound <= batch, "SDMBatch.rows: \(range) outside 0..<\(batch)")
        var out = SDMBatch()
        out.batch = range.count
        out.shortLength = shortLength
        out.longLength = longLength
        out.shortRows = Array(shortRows[range.lowerBound * shortLength ..< range.upperBound * shortLength])
        out.shortMask = Array(shortMask[range.lowerBound * shortLength ..< range.upperBound * shortLength])
        out.longRows = Array(longRows[range.lowerBound * longLength ..< range.upperBound * longLength])
        out.longMask = Array(longMask[range.lowerBound * longLength ..< range.upperBound * longLength])
        out.hasLong = Array(hasLong[range])
        return out
    }
}

/// The trainable SDM model: ArborNN parameters and the forward pass on a ``Tape``; exports an
/// ``SDMEncoder`` computing the same vectors at serving time.
///
/// Parameters (checkpoint names = the encoder's tensor names): "sdm.item.table" (sparse),
/// "sdm.category.table" (sparse, with categories), "sdm.lstm.*", "sdm.attention.*", "sdm.user.*",
/// "sdm.long.*" (with a long term), "sdm.gate.*" (gated). Not thread-safe.
public final class SDMModel {
    /// The architecture.
    public let config: SDMConfig
    /// The items.
    public let catalog: TwoTowerCatalog
    /// Item embeddings.
    public let item: Embedding
    /// Category embeddings (long term), when used.
    public let category: Embedding?
    /// The short-term LSTM stack.
    public let lstm: LSTM
    /// The short-term self-attention.
    public let attention: MultiHeadSelfAttention
    /// `u = tanh(W_u · mean + b_u)`.
    public let user: Linear
    /// `p = tanh(W_p [z_item, z_cat] + b_p)`, with a long term.
    public let long: Linear?
    /// `G = σ(W_g [u, s, p] + b_g)`, gated only.
    public let gate: Linear?

    /// A freshly initialised model (seeded).
    /// - Throws: ``TwoTowerError`` for a bad configuration or one that disagrees with the catalogue.
    public init(config: SDMConfig, catalog: TwoTowerCatalog, seed: UInt64 = 0) throws(TwoTowerError) {
        try config.validate()
        guard config.itemCount == catalog.count else {
            throw .invalidConfiguration(field: "itemCount", reason: "\(config.itemCount) but the catalogue holds \(catalog.count)")
        }
        guard config.categoryCount == catalog.categoryCount else {
            throw .invalidConfiguration(field: "categoryCount", reason: "\(config.categoryCount) but the catalogue holds \(catalog.categoryCount)")
        }
        self.config = config
        self.catalog = catalog
        var rng = SplitMix64(seed: seed)
        let d = config.dimension
        do {
            item = try Embedding(count: config.itemCount, dimension: d, name: "sdm.item", rng: &rng)
            category = config.usesCategories ? try Embedding(count: config.categoryCount, dimension: d, name: "sdm.category", rng: &rng) : nil
            lstm = try LSTM(inputs: d, hidden: d, layerCount: config.lstmLayers, name: "sdm.lstm", rng: &rng)
            attention = try MultiHeadSelfAttention(dimension: d, heads: config.heads, name: "sdm.attention", rng: &rng)
            user = try Linear(inputs: d, outputs: d, name: "sdm.user", rng: &rng)
            long = config.fusion.usesLongTerm
                ? try Linear(inputs: (config.usesCategories ? 2 : 1) * d, outputs: d, name: "sdm.long", rng: &rng) : nil
            gate = config.fusion == .gated ? try Linear(inputs: 3 * d, outputs: d, name: "sdm.gate", rng: &rng) : nil
        } catch {
            throw .invalidInput(error)
        }
    }

    /// Every parameter, in checkpoint order.
    public var parameters: [Parameter] {
        var ps = [item.table]
        if let category { ps.append(category.table) }
        ps += lstm.parameters + attention.parameters + user.parameters
        if let long { ps += long.parameters }
        if let gate { ps += gate.parameters }
        return ps
    }

    /// Embedding tables (sparse-row gradients).
    public var embeddingParameters: [Parameter] { parameters.filter(\.isSparse) }
    /// Dense weights.
    public var denseParameters: [Parameter] { parameters.filter { !$0.isSparse } }

    /// The query vectors of a batch, `batch × d`. O(batch · (L·d·4d·layers + L²·d + M·d)).
    public func userVectors(_ b: SDMBatch, on tape: Tape) throws(ArborError) -> Tensor {
        let d = config.dimension
        let es = try tape.gather(item.table, indices: b.shortRows, indexShape: [b.batch, b.shortLength])
        let uses = config.fusion.usesLongTerm
        let el = uses ? try tape.gather(item.table, indices: b.longRows, indexShape: [b.batch, b.longLength]) : nil
        // u from the mean of every behaviour read.
        let pooled: Tensor
        if let el {
            var mask = [Float]()
            mask.reserveCapacity(b.batch * (b.shortLength + b.longLength))
            for r in 0 ..< b.batch {
                mask.append(contentsOf: b.shortMask[r * b.shortLength ..< (r + 1) * b.shortLength])
                mask.append(contentsOf: b.longMask[r * b.longLength ..< (r + 1) * b.longLength])
            }
            pooled = try tape.maskedMean(try tape.concat([es, el], axis: 1), mask: mask)
        } else {
            pooled = try tape.maskedMean(es, mask: b.shortMask)
        }
        let u = tape.tanh(try user(pooled, on: tape))
        let x = try lstm(es, mask: b.shortMask, on: tape)
        let xh = try attention(x, mask: b.shortMask, on: tape)
        let s = try tape.userAttention(query: u, keys: xh, mask: b.shortMask)
        var o = s
        if let el, let long {
            var z = try tape.userAttention(query: u, keys: el, mask: b.longMask)
            if let category {
                let cats = b.longRows.map { $0 >= 0 ? Int(catalog.categories[$0]) : -1 }
                let ec = try tape.gather(category.table, indices: cats, indexShape: [b.batch, b.longLength])
                z = try tape.concat([z, try tape.userAttention(query: u, keys: ec, mask: b.longMask)], axis: 1)
            }
            let p = tape.tanh(try long(z, on: tape))
            if let gate {
                let g = tape.sigmoid(try gate(try tape.concat([u, s, p], axis: 1), on: tape))
                o = try tape.gatedFusion(gate: g, long: p, short: s, hasLong: b.hasLong)
            } else {
                o = p
            }
        }
        _ = d
        return config.cosine ? tape.l2Normalize(o) : o
    }

    /// Item vectors for `rows`, `rows.count × d` (unit norm with cosine). O(rows · d).
    public func itemVectors(rows: [Int], on tape: Tape) throws(ArborError) -> Tensor {
        let v = try tape.gather(item.table, indices: rows)
        return config.cosine ? tape.l2Normalize(v) : v
    }

    /// Every item's vector, `itemCount × d`, catalogue order: what the tree and flat scan index.
    public func itemVectorMatrix() -> Matrix {
        let d = config.dimension
        var m = item.table.value
        if config.cosine {
            for r in 0 ..< config.itemCount {
                var n: Float = 0
                for j in 0 ..< d { n += m[r * d + j] * m[r * d + j] }
                let inv = 1 / (n + 1e-12).squareRoot()
                for j in 0 ..< d { m[r * d + j] *= inv }
            }
        }
        return try! Matrix(rows: config.itemCount, cols: d, values: m)
    }

    /// The serving encoder with the current weights; `fallback` is the training-frequency-weighted,
    /// normalised mean item vector (uniform when `itemFrequencies` is nil).
    /// - Throws: ``ModelLoadError`` when the weights hold NaN.
    public func encoder(itemFrequencies: [Double]? = nil) throws(ModelLoadError) -> SDMEncoder {
        let vectors = itemVectorMatrix()
        let d = config.dimension
        var fb = [Double](repeating: 0, count: d)
        for r in 0 ..< config.itemCount {
            let w = itemFrequencies.map { r < $0.count ? $0[r] : 0 } ?? 1
            guard w > 0 else { continue }
            for j in 0 ..< d { fb[j] += w * Double(vectors[r, j]) }
        }
        let norm = fb.reduce(0) { $0 + $1 * $1 }.squareRoot()
        var tensors = parameters.map { ArborTree.NamedTensor(name: $0.name, shape: $0.shape, values: $0.value) }
        let c = config
        tensors.append(.init(name: "sdm.options", shape: [9], values: [
            Float(c.heads), Float(c.maxSession), Float(c.maxLong), Float(c.sessions.maxGap), Float(c.sessions.maxActions),
            Float(c.lstmLayers), Float(c.fusion.rawValue), c.cosine ? 1 : 0, c.temperature]))
        tensors.append(.init(name: "sdm.fallback", shape: [d], values: fb.map { Float(norm > 0 ? $0 / norm : 0) }))
        if category != nil {
            tensors.append(.init(name: "sdm.item.category", shape: [config.itemCount], values: catalog.categories.map(Float.init)))
        }
        return try SDMEncoder(tensors: tensors, ids: catalog.ids)
    }

    /// A copy of every parameter's values.
    public func snapshot() -> [[Float]] { parameters.map(\.value) }

    /// Restores values from ``snapshot()``.
    public func restore(_ values: [[Float]]) { for (p, v) in zip(parameters, values) { try! p.assign(v) } }
}
