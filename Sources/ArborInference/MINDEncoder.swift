import ArborCore
import ArborMath
import ArborTree
import Foundation

/// The inference side of a trained MIND model (Li et al., CIKM 2019): a behaviour list (item ids,
/// oldest first) becomes `K'` interest vectors, each retrieving on its own before the results are
/// merged by best score per item.
///
/// For the most recent `maxHistory` known behaviours `e_1 … e_L` (unknown ids are skipped and do
/// not use up the window): `K' = max(1, min(K, ⌊log₂ L⌋))`
/// (`MultiInterest.activeInterests(historyLength:maxInterests:)`); `û_l = e_l · S`; dynamic routing
/// from the stored logits (`routing[l, k]`, drawn once from N(0, 1) at training) for `iterations`
/// rounds over the `K'` active interests (`w_l = softmax_k(b_l)`, `z_k = Σ_l w_lk û_l`,
/// `u_k = squash(z_k)`, `b_lk += β · û_l · u_k`, `β` = ``agreementScale``, MIND's 1); then the MLP (ReLU between layers, linear last) on each
/// capsule and, for a cosine model, unit normalisation. Deterministic: the same history always
/// gives the same vectors. This is the computation of ArborNN's `dynamicRouting` on the training
/// tape, up to float summation order (a test holds them within 1e-4).
///
/// - An empty history, or one with no known item, gives one query: ``fallback`` (the unit-normalised,
///   training-frequency-weighted mean of the item vectors, a "most popular" query), flagged
///   `usedFallback`.
/// - Inactive interests (`K' ≤ k < K`) are not produced at all, so a zero or duplicate capsule never
///   takes a slot in the merged list.
///
/// Stored as named tensors: "mind.behaviour" `itemCount × d` (behaviour embeddings), "mind.bilinear"
/// `d × d` (S), "mind.routing" `maxHistory × K` (initial routing logits), "mind.mlp.<i>.weight"
/// `inᵢ × outᵢ` and "mind.mlp.<i>.bias" `outᵢ`, "mind.options" `[5]` (maxHistory, K, iterations,
/// cosine 0/1, power) for MIND's β = 1, `[6]` with the agreement scale β otherwise (five values read as β = 1), "mind.fallback" `[d]`; the item ids (row order, ascending) in the extra value
/// ``itemIDsExtraName``. Immutable and thread-safe (`Sendable`).
public struct MINDEncoder: Sendable {
    /// Name of the index `extra` value holding the item ids (UInt64 little-endian, row order).
    public static let itemIDsExtraName = "mind.item-ids"
    /// Name prefix of every tensor of the encoder.
    public static let tensorPrefix = "mind."
    static let behaviourName = "mind.behaviour"
    static let bilinearName = "mind.bilinear"
    static let routingName = "mind.routing"
    static let optionsName = "mind.options"
    static let fallbackName = "mind.fallback"
    static let mlpPrefix = "mind.mlp"

    /// Item ids, ascending: row `r` of ``behaviours`` belongs to `ids[r]`.
    public let ids: [ItemID]
    private let rowOf: [ItemID: Int32]
    /// `itemCount × d`, row-major: each item's embedding as a behaviour.
    public let behaviours: Matrix
    /// `d × d`, row-major: the shared bilinear map `S` (`û = e · S`).
    public let bilinear: Matrix
    /// `maxHistory × K`, row-major: initial routing logits per behaviour position and interest.
    public let routingLogits: [Float]
    /// The capsule MLP, `d → hidden… → d`.
    public let mlp: InferenceMLP
    /// Width of the interest vectors.
    public let dimension: Int
    /// `K`: the most interests a user gets.
    public let maxInterests: Int
    /// Most recent known behaviours routed.
    public let maxHistory: Int
    /// Routing rounds (MIND: 3).
    public let iterations: Int
    /// Whether interest vectors are unit-normalised.
    public let cosine: Bool
    /// The label-aware attention power used in training (informational at serving).
    public let power: Float
    /// `β`, the scale of the routing-logit update `b_lk += β · û_l · u_k` (MIND: 1).
    public let agreementScale: Float
    /// The vector of an empty history, `d` values.
    public let fallback: [Float]

    /// An encoder from raw weights.
    /// - Parameters:
    ///   - ids: item ids, strictly increasing (row order of `behaviours`).
    ///   - behaviours: `ids.count × d`; `bilinear`: `d × d`; `routingLogits`: `maxHistory × maxInterests`.
    ///   - mlp: `d → … → d`.
    /// - Throws: ``ModelLoadError/weightsDoNotMatch(kind:reason:)`` naming the tensor at fault.
    public init(ids: [ItemID], behaviours: Matrix, bilinear: Matrix, routingLogits: [Float], mlp: InferenceMLP,
                maxInterests: Int, maxHistory: Int, iterations: Int, cosine: Bool, power: Float,
                agreementScale: Float = 1, fallback: [Float]) throws(ModelLoadError) {
        func bad(_ reason: String) -> ModelLoadError { .weightsDoNotMatch(kind: QueryProducerKind.mind.rawValue, reason: reason) }
        let d = behaviours.cols
        guard !ids.isEmpty, behaviours.rows == ids.count, d >= 1 else {
            throw bad("\(Self.behaviourName) is \(behaviours.rows) × \(d) for \(ids.count) item ids")
        }
        for i in 1 ..< ids.count where !(ids[i - 1] < ids[i]) {
            throw bad("item ids must be strictly increasing (row order), \(ids[i - 1]) before \(ids[i])")
        }
        guard bilinear.rows == d, bilinear.cols == d else {
            throw bad("\(Self.bilinearName) is \(bilinear.rows) × \(bilinear.cols), expected \(d) × \(d)")
        }
        guard maxInterests >= 1, maxHistory >= 1, iterations >= 1 else {
            throw bad("\(Self.optionsName): interests \(maxInterests), history \(maxHistory), iterations \(iterations) must be >= 1")
        }
        guard routingLogits.count == maxHistory * maxInterests else {
            throw bad("\(Self.routingName) holds \(routingLogits.count) values, expected \(maxHistory) × \(maxInterests)")
        }
        guard mlp.layers.first?.inputs == d, mlp.layers.last?.outputs == d else {
            throw bad("\(Self.mlpPrefix) maps \(mlp.layers.first?.inputs ?? 0) → \(mlp.layers.last?.outputs ?? 0), expected \(d) → \(d)")
        }
        guard fallback.count == d else { throw bad("\(Self.fallbackName) holds \(fallback.count) values, expected \(d)") }
        guard agreementScale >= 0, agreementScale.isFinite else {
            throw bad("\(Self.optionsName): agreement scale \(agreementScale) must be finite and >= 0")
        }
        if let r = behaviours.values.firstIndex(where: { !$0.isFinite }) { throw bad("\(Self.behaviourName) row \(r / d) is not finite") }
        guard bilinear.values.allSatisfy(\.isFinite), routingLogits.allSatisfy(\.isFinite), fallback.allSatisfy(\.isFinite) else {
            throw bad("\(Self.bilinearName), \(Self.routingName) or \(Self.fallbackName) holds a non-finite value")
        }
        self.ids = ids
        var map = [ItemID: Int32](minimumCapacity: ids.count)
        for (i, id) in ids.enumerated() { map[id] = Int32(i) }
        rowOf = map
        self.behaviours = behaviours
        self.bilinear = bilinear
        self.routingLogits = routingLogits
        self.mlp = mlp
        dimension = d
        self.maxInterests = maxInterests
        self.maxHistory = maxHistory
        self.iterations = iterations
        self.cosine = cosine
        self.power = power
        self.agreementScale = agreementScale
        self.fallback = fallback
    }

    /// Number of items the encoder knows.
    public var itemCount: Int { ids.count }

    /// The row of `id`, or `nil` when unknown. O(1).
    public func row(of id: ItemID) -> Int? { rowOf[id].map(Int.init) }

    /// What ``interests(history:)`` returns.
    public struct Interests: Sendable, Equatable {
        /// `K' × d`, row-major: one interest vector per row (one row, the fallback, when `usedFallback`).
        public var vectors: Matrix
        /// Ids of the history the encoder does not know (skipped).
        public var unknownItems: Int
        /// True when no known behaviour remained and ``MINDEncoder/fallback`` was used.
        public var usedFallback: Bool
    }

    /// The interest vectors of `history` (oldest first).
    /// Complexity: O(|history| + L · d² + iterations · L · K' · d + K' · MLP), L ≤ maxHistory.
    public func interests(history: [ItemID]) -> Interests {
        let d = dimension
        // The most recent maxHistory known rows, oldest first.
        var rows = [Int]()
        rows.reserveCapacity(min(history.count, maxHistory))
        var unknown = 0
        for id in history.reversed() {
            guard let r = rowOf[id] else { unknown += 1; continue }
            if rows.count < maxHistory { rows.append(Int(r)) }
        }
        rows.reverse()
        let length = rows.count
        guard length > 0 else {
            return Interests(vectors: try! Matrix(rows: 1, cols: d, values: fallback), unknownItems: unknown, usedFallback: true)
        }
        let k = MultiInterest.activeInterests(historyLength: length, maxInterests: maxInterests)
        // û = E_rows · S (L × d): one GEMM on the gathered rows.
        var gathered = Matrix(rows: length, cols: d)
        behaviours.values.withUnsafeBufferPointer { table in
            gathered.withUnsafeMutableBufferPointer { out in
                for (l, r) in rows.enumerated() { for j in 0 ..< d { out[l * d + j] = table[r * d + j] } }
            }
        }
        var hat = Matrix(rows: length, cols: d)
        BLAS.gemm(gathered, bilinear, into: &hat)
        var logits = [Float](repeating: 0, count: length * k)
        for l in 0 ..< length { for j in 0 ..< k { logits[l * k + j] = routingLogits[l * maxInterests + j] } }
        var weights = [Float](repeating: 0, count: length * k)
        var capsules = [Float](repeating: 0, count: k * d)
        hat.values.withUnsafeBufferPointer { u in
            for round in 0 ..< iterations {
                // w_l = softmax over the active interests of b_l.
                for l in 0 ..< length {
                    var m = -Float.infinity
                    for j in 0 ..< k { m = max(m, logits[l * k + j]) }
                    var s: Float = 0
                    for j in 0 ..< k { let e = expf(logits[l * k + j] - m); weights[l * k + j] = e; s += e }
                    for j in 0 ..< k { weights[l * k + j] /= s }
                }
                // z_k = Σ_l w_lk û_l, then squash (as ArborNN: ‖z‖ = sqrt(‖z‖² + 1e-9)).
                for i in 0 ..< k * d { capsules[i] = 0 }
                for l in 0 ..< length {
                    for j in 0 ..< k {
                        let w = weights[l * k + j]
                        for c in 0 ..< d { capsules[j * d + c] += w * u[l * d + c] }
                    }
                }
                for j in 0 ..< k {
                    var s: Float = 0
                    for c in 0 ..< d { s += capsules[j * d + c] * capsules[j * d + c] }
                    let n = (s + 1e-9).squareRoot()
                    let f = n / (1 + n * n)
                    for c in 0 ..< d { capsules[j * d + c] *= f }
                }
                if round + 1 < iterations {
                    for l in 0 ..< length {
                        for j in 0 ..< k {
                            var dot: Float = 0
                            for c in 0 ..< d { dot += u[l * d + c] * capsules[j * d + c] }
                            logits[l * k + j] += agreementScale * dot
                        }
                    }
                }
            }
        }
        var buffers: [Matrix] = []
        var out = mlp.forward(try! Matrix(rows: k, cols: d, values: capsules), buffers: &buffers)
        if cosine {
            out.withUnsafeMutableBufferPointer { v in
                for j in 0 ..< k {
                    var s: Float = 0
                    for c in 0 ..< d { s += v[j * d + c] * v[j * d + c] }
                    let inv = 1 / (s + 1e-12).squareRoot()
                    for c in 0 ..< d { v[j * d + c] *= inv }
                }
            }
        }
        return Interests(vectors: out, unknownItems: unknown, usedFallback: false)
    }

    // MARK: - Named tensors

    /// The encoder's weights as named tensors (names and shapes in the type's documentation).
    public func namedTensors() -> [NamedTensor] {
        var out = [
            NamedTensor(name: Self.behaviourName, shape: [itemCount, dimension], values: behaviours.values),
            NamedTensor(name: Self.bilinearName, shape: [dimension, dimension], values: bilinear.values),
            NamedTensor(name: Self.routingName, shape: [maxHistory, maxInterests], values: routingLogits),
        ]
        out += mlp.namedTensors(prefix: Self.mlpPrefix)
        // MIND's β = 1 keeps the original five values, which every reader (the interchange spec,
        // tools/python) knows; a sixth is written only for another β.
        var options = [Float(maxHistory), Float(maxInterests), Float(iterations), cosine ? 1 : 0, power]
        if agreementScale != 1 { options.append(agreementScale) }
        out.append(NamedTensor(name: Self.optionsName, shape: [options.count], values: options))
        out.append(NamedTensor(name: Self.fallbackName, shape: [dimension], values: fallback))
        return out
    }

    /// What to hand to `IndexWriter.write` with query producer ``QueryProducerKind/mind``: the
    /// named tensors and the item-id extra value.
    public func indexPayload() -> (tensors: [NamedTensor], extra: [String: [UInt8]]) {
        (namedTensors(), [Self.itemIDsExtraName: ModelTensorNames.encode(ids: ids)])
    }

    /// An encoder from its named tensors (other prefixes ignored) and item ids (row order).
    /// - Throws: ``ModelLoadError/weightsDoNotMatch(kind:reason:)`` naming a missing tensor or one
    ///   of the wrong shape.
    public init(tensors: [NamedTensor], ids: [ItemID]) throws(ModelLoadError) {
        func bad(_ reason: String) -> ModelLoadError { .weightsDoNotMatch(kind: QueryProducerKind.mind.rawValue, reason: reason) }
        var byName = [String: NamedTensor]()
        for t in tensors where t.name.hasPrefix(Self.tensorPrefix) { byName[t.name] = t }
        func need(_ name: String, rank: Int) throws(ModelLoadError) -> NamedTensor {
            guard let t = byName[name] else { throw bad("missing tensor '\(name)'") }
            guard t.shape.count == rank, t.values.count == t.shape.reduce(1, *) else {
                throw bad("tensor '\(name)' has shape \(t.shape), expected rank \(rank)")
            }
            return t
        }
        let options = try need(Self.optionsName, rank: 1)
        guard options.shape == [5] || options.shape == [6] else {
            throw bad("tensor '\(Self.optionsName)' has shape \(options.shape), expected [6] (or [5] before the agreement scale)")
        }
        let o = options.values
        for (i, v) in o.prefix(3).enumerated() where !(v >= 1 && v <= 1_000_000 && v == v.rounded()) {
            throw bad("tensor '\(Self.optionsName)' value \(i) is \(v), expected a whole number >= 1")
        }
        let (maxHistory, interests) = (Int(o[0]), Int(o[1]))
        let behaviour = try need(Self.behaviourName, rank: 2)
        guard behaviour.shape[0] == ids.count else {
            throw bad("tensor '\(Self.behaviourName)' has shape \(behaviour.shape), expected [\(ids.count), d]")
        }
        let d = behaviour.shape[1]
        let s = try need(Self.bilinearName, rank: 2)
        guard s.shape == [d, d] else { throw bad("tensor '\(Self.bilinearName)' has shape \(s.shape), expected [\(d), \(d)]") }
        let routing = try need(Self.routingName, rank: 2)
        guard routing.shape == [maxHistory, interests] else {
            throw bad("tensor '\(Self.routingName)' has shape \(routing.shape), expected [\(maxHistory), \(interests)]")
        }
        let fb = try need(Self.fallbackName, rank: 1)
        guard fb.shape == [d] else { throw bad("tensor '\(Self.fallbackName)' has shape \(fb.shape), expected [\(d)]") }
        let mlp = try InferenceMLP(namedTensors: byName, prefix: Self.mlpPrefix, kind: QueryProducerKind.mind.rawValue)
        do {
            try self.init(ids: ids, behaviours: try Matrix(rows: ids.count, cols: d, values: behaviour.values),
                          bilinear: try Matrix(rows: d, cols: d, values: s.values), routingLogits: routing.values, mlp: mlp,
                          maxInterests: interests, maxHistory: maxHistory, iterations: Int(o[2]), cosine: o[3] != 0,
                          power: o[4], agreementScale: o.count > 5 ? o[5] : 1, fallback: fb.values)
        } catch let e as ModelLoadError { throw e } catch { throw bad("\(error)") }
    }

    /// The encoder stored in an index (query producer ``QueryProducerKind/mind``).
    /// - Throws: ``ModelLoadError/kindMismatch(field:expected:found:)`` for an index of another
    ///   producer; ``ModelLoadError/index(_:)`` for read errors; ``ModelLoadError/weightsDoNotMatch(kind:reason:)``
    ///   for missing or misshapen tensors or a width other than the index's.
    public init(index reader: IndexReader) throws(ModelLoadError) {
        guard reader.queryProducer == .mind else {
            throw .kindMismatch(field: "queryProducer", expected: QueryProducerKind.mind.rawValue, found: reader.queryProducer.rawValue)
        }
        var tensors: [NamedTensor] = []
        let ids: [ItemID]
        do {
            for name in reader.tensorNames where name.hasPrefix(Self.tensorPrefix) { tensors.append(try reader.tensor(named: name)) }
            guard let bytes = try reader.extra(named: Self.itemIDsExtraName) else {
                throw ModelLoadError.weightsDoNotMatch(kind: QueryProducerKind.mind.rawValue, reason: "missing extra value '\(Self.itemIDsExtraName)'")
            }
            guard bytes.count % 8 == 0 else {
                throw ModelLoadError.weightsDoNotMatch(kind: QueryProducerKind.mind.rawValue,
                                                       reason: "'\(Self.itemIDsExtraName)' is \(bytes.count) bytes, not a multiple of 8")
            }
            var decoded = [ItemID]()
            decoded.reserveCapacity(bytes.count / 8)
            for i in stride(from: 0, to: bytes.count, by: 8) {
                var v: UInt64 = 0
                for b in 0 ..< 8 { v |= UInt64(bytes[i + b]) << (8 * UInt64(b)) }
                decoded.append(ItemID(v))
            }
            ids = decoded
        } catch let e as IndexError { throw .index(e) } catch let e as ModelLoadError { throw e } catch {
            throw .weightsDoNotMatch(kind: QueryProducerKind.mind.rawValue, reason: "\(error)")
        }
        try self.init(tensors: tensors, ids: ids)
        guard dimension == reader.dimension else {
            throw .weightsDoNotMatch(kind: QueryProducerKind.mind.rawValue,
                                     reason: "tensor '\(Self.behaviourName)' is \(dimension) wide, the index \(reader.dimension)")
        }
    }
}

extension MINDEncoder: QueryProducer {
    /// ``QueryProducerKind/mind``.
    public var kind: QueryProducerKind { .mind }

    /// The history's ids outside the catalogue. O(history).
    public func unknownItems(in history: [ItemID]) -> [ItemID] { history.filter { rowOf[$0] == nil } }

    /// `K'` queries, one per active interest (one, the fallback, for a history with no known item).
    public func queries(history: [ItemID], excluded: Set<ItemID>) throws -> ProducedQueries {
        let encoded = interests(history: history)
        let v = encoded.vectors
        let queries = (0 ..< v.rows).map { Query(vector: Array(v.row($0)), history: history, excluded: excluded) }
        return ProducedQueries(queries: queries, usedFallback: encoded.usedFallback)
    }
}
