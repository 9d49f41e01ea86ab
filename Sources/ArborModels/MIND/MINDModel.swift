import ArborCore
import ArborInference
import ArborMath
import ArborNN
import ArborTree

/// The architecture of a MIND model (Li et al., CIKM 2019).
public struct MINDConfig: Sendable, Equatable, Codable {
    /// Number of items (rows of the embedding table).
    public var itemCount: Int
    /// Embedding and interest width `d`.
    public var dimension: Int
    /// `K`: the most interests per user (each user gets `K' = max(1, min(K, ⌊log₂ L⌋))`).
    public var interests: Int
    /// Label-aware attention power `p` (0 = mean of the interests, large = argmax).
    public var power: Float
    /// Routing rounds (MIND: 3).
    public var iterations: Int
    /// Hidden widths of the capsule MLP (ReLU between layers, linear last; empty = one linear layer).
    public var hidden: [Int]
    /// Most recent behaviours routed.
    public var maxHistory: Int
    /// Cosine scores (unit interests and items) divided by ``temperature``; else raw dot products.
    public var cosine: Bool
    /// Softmax temperature.
    public var temperature: Float
    /// Seed of the fixed routing logits (drawn once, stored with the model).
    public var routingSeed: UInt64
    /// `β`, the scale of the routing-logit update `b += β · û · u` (MIND: 1; stored with the model).
    public var agreementScale: Float = 1
    /// ComiRec-DR's stop-gradient through the routing rounds before the last (training only: the
    /// forward pass, hence the serving encoder, is the same).
    public var routingStopGradient: Bool = false

    /// A configuration; the defaults follow the two-tower's (d 64, cosine / 0.05, history 10) and
    /// MIND's (K 4, 3 routing rounds, a large power: 1000, near argmax, measured best on planted users).
    public init(itemCount: Int, dimension: Int = 64, interests: Int = 4, power: Float = 1000, iterations: Int = 3,
                hidden: [Int] = [], maxHistory: Int = 10, cosine: Bool = true, temperature: Float = 0.05,
                routingSeed: UInt64 = 0x6d69_6e64) {
        self.itemCount = itemCount
        self.dimension = dimension
        self.interests = interests
        self.power = power
        self.iterations = iterations
        self.hidden = hidden
        self.maxHistory = maxHistory
        self.cosine = cosine
        self.temperature = temperature
        self.routingSeed = routingSeed
    }

    /// Checks the ranges.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` naming the field.
    public func validate() throws(ArborError) {
        guard itemCount >= 1 else { throw .invalidArgument(name: "itemCount", reason: "must be at least 1") }
        guard dimension >= 1 else { throw .invalidArgument(name: "dimension", reason: "must be at least 1") }
        guard (1...64).contains(interests) else { throw .invalidArgument(name: "interests", reason: "must be in 1...64, got \(interests)") }
        guard power >= 0, !power.isNaN else { throw .invalidArgument(name: "power", reason: "must be >= 0, got \(power)") }
        guard iterations >= 1 else { throw .invalidArgument(name: "iterations", reason: "must be at least 1") }
        guard maxHistory >= 1 else { throw .invalidArgument(name: "maxHistory", reason: "must be at least 1") }
        guard temperature > 0, temperature.isFinite else { throw .invalidArgument(name: "temperature", reason: "must be positive") }
        guard hidden.allSatisfy({ $0 >= 1 }) else { throw .invalidArgument(name: "hidden", reason: "widths must be >= 1") }
        guard agreementScale >= 0, agreementScale.isFinite else {
            throw .invalidArgument(name: "agreementScale", reason: "must be finite and >= 0, got \(agreementScale)")
        }
    }
}

/// The trainable MIND model: ArborNN parameters and the forward pass on a ``Tape``.
///
/// Parameters: "mind.item.table" `itemCount × d` (sparse rows; the items' embeddings, also their
/// embeddings as behaviours), "mind.bilinear" `d × d` (S, dense), "mind.mlp.<i>.weight|bias" (the
/// capsule MLP). The routing logits (`maxHistory × K`, N(0, 1) from ``MINDConfig/routingSeed``) are
/// fixed, not trained. Not thread-safe (one training loop owns it).
public final class MINDModel {
    /// The architecture.
    public let config: MINDConfig
    /// Item ids in row order (ascending).
    public let ids: [ItemID]
    /// Item embeddings (items and behaviours).
    public let itemEmbedding: Embedding
    /// The shared bilinear map `S`, `d × d`.
    public let bilinear: Parameter
    /// The capsule MLP `d → hidden… → d`.
    public let mlp: MLP
    /// `maxHistory × K` fixed routing logits.
    public let routingLogits: [Float]

    /// A freshly initialised model (embeddings N(0, 1/√d), S = I + N(0, 0.1/√d), the MLP He/Xavier),
    /// all drawn from `SplitMix64(seed:)`.
    /// - Throws: ``ArborError`` for an invalid configuration or ids that are not strictly increasing.
    public init(config: MINDConfig, ids: [ItemID], seed: UInt64 = 0) throws(ArborError) {
        try config.validate()
        guard ids.count == config.itemCount else {
            throw .dimensionMismatch(field: "MIND item ids", expected: config.itemCount, found: ids.count)
        }
        for i in 1 ..< max(1, ids.count) where !(ids[i - 1] < ids[i]) {
            throw .invalidArgument(name: "ids", reason: "must be strictly increasing (row order)")
        }
        self.config = config
        self.ids = ids
        var rng = SplitMix64(seed: seed)
        let d = config.dimension
        itemEmbedding = try Embedding(count: config.itemCount, dimension: d, name: "mind.item", rng: &rng)
        var s = [Float](repeating: 0, count: d * d)
        let noise = 0.1 / Float(d).squareRoot()
        for i in 0 ..< d * d { s[i] = NNRandom.gaussian(&rng) * noise }
        for i in 0 ..< d { s[i * d + i] += 1 }
        bilinear = try Parameter(name: "mind.bilinear", shape: [d, d], values: s)
        mlp = try MLP(sizes: [d] + config.hidden + [d], activation: .relu, outputActivation: .identity, name: "mind.mlp", rng: &rng)
        routingLogits = MultiInterest.routingLogits(length: config.maxHistory, interests: config.interests, seed: config.routingSeed)
    }

    /// Every parameter, in checkpoint order.
    public var parameters: [Parameter] { [itemEmbedding.table, bilinear] + mlp.parameters }
    /// The embedding table (sparse-row gradients).
    public var embeddingParameters: [Parameter] { [itemEmbedding.table] }
    /// The dense weights (S and the MLP).
    public var denseParameters: [Parameter] { [bilinear] + mlp.parameters }

    /// The interest capsules of a batch of padded histories after the MLP (unit norm with cosine).
    /// - Parameters:
    ///   - historyRows: `batch × length` item rows, `-1` pads.
    ///   - mask: `batch × length`, 1 real, 0 padding.
    ///   - active: per user `K'` (see `MultiInterest.activeInterests`).
    /// - Returns: `batch × K × d`; interests `≥ K'` are not meaningful (masked downstream).
    /// - Complexity: O(batch · length · d² + iterations · batch · length · K · d + batch · K · MLP).
    public func interests(historyRows: [Int], batch: Int, length: Int, mask: [Float], active: [Int],
                          on tape: Tape) throws(ArborError) -> Tensor {
        let k = config.interests, d = config.dimension
        let e = try tape.gather(itemEmbedding.table, indices: historyRows, indexShape: [batch, length])
        let capsules = try tape.dynamicRouting(e, bilinear: tape.parameter(bilinear), routingLogits: routingLogits, interests: k,
                                               mask: mask, activeInterests: active, iterations: config.iterations,
                                               agreementScale: config.agreementScale,
                                               stopGradientThroughRouting: config.routingStopGradient)
        var v = try mlp(try tape.reshape(capsules, to: [batch * k, d]), on: tape)
        if config.cosine { v = tape.l2Normalize(v) }
        return try tape.reshape(v, to: [batch, k, d])
    }

    /// The user vectors for training: label-aware attention of the interests on each row's target
    /// (`targets`: `batch × d` item vectors), unit-normalised with cosine. O(batch · K · d).
    public func userVectors(interests: Tensor, targets: Tensor, active: [Int], on tape: Tape) throws(ArborError) -> Tensor {
        let u = try tape.labelAwareAttention(interests: interests, target: targets, power: config.power, activeInterests: active)
        return config.cosine ? tape.l2Normalize(u) : u
    }

    /// Item vectors for `rows`: `rows.count × d` (unit norm with cosine). O(rows · d).
    public func itemVectors(rows: [Int], on tape: Tape) throws(ArborError) -> Tensor {
        let v = try tape.gather(itemEmbedding.table, indices: rows)
        return config.cosine ? tape.l2Normalize(v) : v
    }

    /// Every item's vector, `itemCount × d`, row-major, row order: what the tree and the flat scan index.
    public func itemVectorMatrix() -> Matrix {
        let d = config.dimension
        var m = itemEmbedding.table.value
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

    /// The serving encoder with the current weights.
    /// - Parameters:
    ///   - itemFrequencies: per item row, a non-negative weight (training counts) for the
    ///     empty-history fallback (normalised weighted mean of the item vectors); `nil` = uniform.
    ///   - rows: the item rows the encoder knows (ascending); the others are unknown ids in a
    ///     history, skipped and counted. `nil`: every row.
    /// - Throws: ``ModelLoadError`` when the weights hold NaN.
    public func encoder(itemFrequencies: [Double]? = nil, rows: [Int]? = nil) throws(ModelLoadError) -> MINDEncoder {
        let d = config.dimension
        let vectors = itemVectorMatrix()
        var fallback = [Double](repeating: 0, count: d)
        for r in 0 ..< config.itemCount {
            let w = itemFrequencies.map { r < $0.count ? $0[r] : 0 } ?? 1
            guard w > 0 else { continue }
            for j in 0 ..< d { fallback[j] += w * Double(vectors[r, j]) }
        }
        let norm = fallback.reduce(0) { $0 + $1 * $1 }.squareRoot()
        do {
            let layers = try mlp.layers.enumerated().map { i, layer in
                try DenseLayer(weight: layer.weight.matrix, bias: layer.bias?.value ?? [Float](repeating: 0, count: layer.outputs),
                               activation: i == mlp.layers.count - 1 ? .identity : .relu, name: "mind.mlp.\(i)")
            }
            return try MINDEncoder(
                ids: rows.map { $0.map { ids[$0] } } ?? ids,
                behaviours: rows.map { itemEmbedding.table.matrix.selectingRows($0) } ?? itemEmbedding.table.matrix,
                bilinear: bilinear.matrix, routingLogits: routingLogits,
                mlp: try InferenceMLP(layers: layers), maxInterests: config.interests, maxHistory: config.maxHistory,
                iterations: config.iterations, cosine: config.cosine, power: config.power,
                agreementScale: config.agreementScale, fallback: fallback.map { Float(norm > 0 ? $0 / norm : 0) })
        } catch let e as ModelLoadError { throw e } catch {
            throw .weightsDoNotMatch(kind: QueryProducerKind.mind.rawValue, reason: "\(error)")
        }
    }

    /// A copy of every parameter's values. O(parameters).
    public func snapshot() -> [[Float]] { parameters.map(\.value) }

    /// Restores values taken by ``snapshot()`` of this model.
    public func restore(_ values: [[Float]]) {
        for (p, v) in zip(parameters, values) { try! p.assign(v) }
    }
}
