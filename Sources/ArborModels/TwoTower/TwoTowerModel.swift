import ArborInference
import ArborMath
import ArborNN
import ArborTree

/// The trainable two-tower model: ArborNN parameters and the forward passes of both towers on a
/// ``Tape`` (see ``TwoTowerConfig`` for the architecture).
///
/// Parameters (names are the keys of checkpoints):
/// - "two-tower.item.table" `itemCount × d` (sparse rows): the item tower's embeddings;
/// - "two-tower.history.table" `itemCount × d` (sparse rows), only without ``TwoTowerConfig/shareEmbeddings``;
/// - "two-tower.category.table" `categoryCount × d` (sparse rows), only with categories;
/// - "two-tower.mlp.<i>.weight" `inᵢ × outᵢ` and "two-tower.mlp.<i>.bias" `outᵢ`: the user tower.
///
/// A behaviour's embedding is `H[r] + C[category(r)]` (H = the history table, or the item table
/// when shared; C = the category table, when present); the item tower's pre-normalisation vector
/// is `E[r] + C[category(r)]`. Not thread-safe (one training loop owns it).
public final class TwoTowerModel {
    /// The architecture.
    public let config: TwoTowerConfig
    /// The items, in row order.
    public let catalog: TwoTowerCatalog
    /// Item tower embeddings.
    public let itemEmbedding: Embedding
    /// User tower input embeddings when not shared with the item tower.
    public let historyEmbedding: Embedding?
    /// Category embeddings (both towers), when the catalogue has categories.
    public let categoryEmbedding: Embedding?
    /// The user tower's MLP, `dimension → hidden… → dimension`.
    public let tower: MLP

    /// A freshly initialised model: embeddings N(0, 1/√d), the MLP He/Xavier, all drawn from
    /// `SplitMix64(seed:)` in a fixed order, so a seed fixes every initial weight.
    /// - Throws: ``TwoTowerError`` for an invalid configuration or one that disagrees with the
    ///   catalogue (item or category count).
    public init(config: TwoTowerConfig, catalog: TwoTowerCatalog, seed: UInt64 = 0) throws(TwoTowerError) {
        try config.validate()
        guard config.itemCount == catalog.count else {
            throw .invalidConfiguration(field: "itemCount", reason: "\(config.itemCount) but the catalogue holds \(catalog.count) items")
        }
        guard config.categoryCount == catalog.categoryCount else {
            throw .invalidConfiguration(
                field: "categoryCount", reason: "\(config.categoryCount) but the catalogue holds \(catalog.categoryCount) categories")
        }
        self.config = config
        self.catalog = catalog
        var rng = SplitMix64(seed: seed)
        do {
            itemEmbedding = try Embedding(count: config.itemCount, dimension: config.dimension, name: "two-tower.item", rng: &rng)
            historyEmbedding = config.shareEmbeddings
                ? nil
                : try Embedding(count: config.itemCount, dimension: config.dimension, name: "two-tower.history", rng: &rng)
            categoryEmbedding = config.categoryCount > 0
                ? try Embedding(count: config.categoryCount, dimension: config.dimension, name: "two-tower.category", rng: &rng)
                : nil
            tower = try MLP(sizes: config.towerSizes, activation: .relu, outputActivation: .identity,
                            name: "two-tower.mlp", rng: &rng)
        } catch {
            throw .invalidInput(error)
        }
    }

    /// Every parameter, in checkpoint order: item table, history table, category table, MLP.
    public var parameters: [Parameter] {
        var ps = [itemEmbedding.table]
        if let historyEmbedding { ps.append(historyEmbedding.table) }
        if let categoryEmbedding { ps.append(categoryEmbedding.table) }
        return ps + tower.parameters
    }

    /// The embedding tables (sparse-row gradients).
    public var embeddingParameters: [Parameter] { parameters.filter(\.isSparse) }
    /// The dense weights (the MLP).
    public var denseParameters: [Parameter] { tower.parameters }

    /// Categories of `rows` (`-1` = none, a zero row in the gather), or `nil` without categories.
    private func categoryRows(_ rows: [Int]) -> [Int]? {
        guard categoryEmbedding != nil else { return nil }
        let cats = catalog.categories
        return rows.map { $0 >= 0 ? Int(cats[$0]) : -1 }
    }

    /// The user tower on a batch of padded histories.
    /// - Parameters:
    ///   - historyRows: `batch × length` item rows, row-major; `-1` pads (a zero row, no gradient).
    ///   - mask: `batch × length`, 1 for a real behaviour, 0 for padding.
    /// - Returns: `batch × d` user vectors (unit norm with cosine). A history with no real position
    ///   pools to the zero vector.
    /// - Complexity: O(batch · length · d + batch · Σ MLP widths).
    public func userVectors(historyRows: [Int], batch: Int, length: Int, mask: [Float], on tape: Tape) throws(ArborError) -> Tensor {
        let table = (historyEmbedding ?? itemEmbedding).table
        var e = try tape.gather(table, indices: historyRows, indexShape: [batch, length])
        if let categoryEmbedding, let cats = categoryRows(historyRows) {
            e = try tape.add(e, try tape.gather(categoryEmbedding.table, indices: cats, indexShape: [batch, length]))
        }
        let pooled = try tape.maskedMean(e, mask: mask)
        let u = try tower(pooled, on: tape)
        return config.cosine ? tape.l2Normalize(u) : u
    }

    /// The item tower for `rows` (each in `0 ..< itemCount`): `rows.count × d` (unit norm with cosine).
    /// O(rows · d).
    public func itemVectors(rows: [Int], on tape: Tape) throws(ArborError) -> Tensor {
        var v = try tape.gather(itemEmbedding.table, indices: rows)
        if let categoryEmbedding, let cats = categoryRows(rows) {
            v = try tape.add(v, try tape.gather(categoryEmbedding.table, indices: cats))
        }
        return config.cosine ? tape.l2Normalize(v) : v
    }

    // MARK: - Export

    /// The item tower's output for every item, `itemCount × d`, row-major, in catalogue order: the
    /// vectors the tree and the flat scan index. O(itemCount · d).
    public func itemVectorMatrix() -> Matrix {
        let d = config.dimension
        var m = [Float](repeating: 0, count: config.itemCount * d)
        let e = itemEmbedding.table.value
        let c = categoryEmbedding?.table.value
        let cats = catalog.categories
        m.withUnsafeMutableBufferPointer { out in
            for r in 0 ..< config.itemCount {
                var norm: Float = 0
                let cat = c == nil ? -1 : Int(cats[r])
                for j in 0 ..< d {
                    var v = e[r * d + j]
                    if cat >= 0, let c { v += c[cat * d + j] }
                    out[r * d + j] = v
                    norm += v * v
                }
                if config.cosine {
                    let inv = 1 / (norm + 1e-12).squareRoot()
                    for j in 0 ..< d { out[r * d + j] *= inv }
                }
            }
        }
        return try! Matrix(rows: config.itemCount, cols: d, values: m)
    }

    /// The user tower's input embedding of every item (`H[r] + C[category(r)]`), `itemCount × d`.
    func behaviourMatrix() -> [Float] {
        let d = config.dimension
        var out = (historyEmbedding ?? itemEmbedding).table.value
        if let c = categoryEmbedding?.table.value {
            let cats = catalog.categories
            for r in 0 ..< config.itemCount where cats[r] >= 0 {
                let cat = Int(cats[r])
                for j in 0 ..< d { out[r * d + j] += c[cat * d + j] }
            }
        }
        return out
    }

    /// The inference-side user encoder with the current weights.
    /// - Parameters:
    ///   - itemFrequencies: per item row, a non-negative weight (training counts) for the
    ///     empty-history fallback vector; `nil` weights every item equally.
    ///   - rows: the item rows the encoder knows (ascending); the others are unknown ids in a
    ///     history, skipped and counted. `nil`: every row.
    /// - Throws: ``TwoTowerError`` when the weights hold NaN or the weights do not fit.
    public func encoder(itemFrequencies: [Double]? = nil, rows: [Int]? = nil) throws(TwoTowerError) -> TwoTowerEncoder {
        let vectors = itemVectorMatrix()
        let d = config.dimension
        var fallback = [Double](repeating: 0, count: d)
        for r in 0 ..< config.itemCount {
            let w = itemFrequencies.map { r < $0.count ? $0[r] : 0 } ?? 1
            guard w > 0 else { continue }
            for j in 0 ..< d { fallback[j] += w * Double(vectors[r, j]) }
        }
        let norm = fallback.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let fb = fallback.map { Float(norm > 0 ? $0 / norm : 0) }
        var behaviours = behaviourMatrix()
        var ids = catalog.ids
        if let rows {
            ids = rows.map { catalog.ids[$0] }
            behaviours = try! Matrix(rows: config.itemCount, cols: d, values: behaviours).selectingRows(rows).values
        }
        return try TwoTowerEncoder(
            ids: ids, behaviours: behaviours, layers: tower.layers.map { ($0.weight.value, $0.bias?.value ?? []) },
            dimension: d, maxHistory: config.maxHistory, cosine: config.cosine, temperature: config.temperature,
            fallback: fb)
    }

    /// Every parameter as a named tensor (checkpoint payload), in ``parameters`` order. O(1) per
    /// parameter (copy-on-write).
    public func namedTensors() -> [ArborTree.NamedTensor] {
        parameters.map { ArborTree.NamedTensor(name: $0.name, shape: $0.shape, values: $0.value) }
    }

    /// Copies `tensors` into the parameters. All-or-nothing: every name and shape is checked first.
    /// - Throws: ``TwoTowerError/missingTensor(name:)``, ``TwoTowerError/unexpectedTensor(name:)``,
    ///   ``TwoTowerError/shapeMismatch(name:expected:found:)``.
    public func load(_ tensors: [ArborTree.NamedTensor]) throws(TwoTowerError) {
        var byName = [String: ArborTree.NamedTensor]()
        for t in tensors { byName[t.name] = t }
        let ps = parameters
        let known = Set(ps.map(\.name))
        for t in tensors where !known.contains(t.name) { throw .unexpectedTensor(name: t.name) }
        for p in ps {
            guard let t = byName[p.name] else { throw .missingTensor(name: p.name) }
            guard t.shape == p.shape, t.values.count == p.count else {
                throw .shapeMismatch(name: p.name, expected: p.shape, found: t.shape)
            }
        }
        do {
            for p in ps { try p.assign(byName[p.name]!.values) }
        } catch {
            throw .invalidInput(error)
        }
    }

    /// A copy of every parameter's values (to restore the best epoch's weights). O(parameters).
    public func snapshot() -> [[Float]] { parameters.map(\.value) }

    /// Restores values taken by ``snapshot()`` of this model.
    /// - Precondition: `values` came from this model's ``snapshot()``.
    public func restore(_ values: [[Float]]) {
        for (p, v) in zip(parameters, values) { try! p.assign(v) }
    }

    /// Whether every parameter value is finite. O(parameters).
    public var isFinite: Bool { parameters.allSatisfy { $0.value.allSatisfy(\.isFinite) } }
}
