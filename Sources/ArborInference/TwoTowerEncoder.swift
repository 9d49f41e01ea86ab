import ArborMath
import ArborTree

/// The inference side of a trained two-tower model: a behaviour list (item ids, oldest first)
/// becomes the user vector that the tree or the flat scan is searched with.
///
/// `vector = MLP(mean of the behaviour embeddings of the most recent maxHistory known items)`,
/// unit-normalised when the model is cosine — bit for bit the computation of the training tower
/// (up to float summation order).
///
/// - Unknown ids (not in the catalogue) are skipped and counted in
///   ``EncodedQuery/unknownItems`` (``UnknownItemPolicy/ignore``) or rejected with
///   ``TwoTowerError/unknownItem(_:)`` (``UnknownItemPolicy/reject``).
/// - An empty history, or one with no known item, gives ``fallback`` (the unit-normalised,
///   training-frequency-weighted mean of the item vectors: a "most popular" query), flagged in
///   ``EncodedQuery/usedFallback`` (``EmptyHistoryPolicy/fallback``), or throws
///   ``TwoTowerError/emptyHistory`` (``EmptyHistoryPolicy/reject``).
///
/// Stored as named tensors (see ``namedTensors()``): "two-tower.behaviour" `itemCount × d`,
/// "two-tower.mlp.<i>.weight" `inᵢ × outᵢ`, "two-tower.mlp.<i>.bias" `outᵢ`, "two-tower.options"
/// `[3]` (maxHistory, cosine 0/1, temperature), "two-tower.fallback" `[d]`; the item ids (row
/// order, ascending) travel beside them (an index `extra` value, or the weights file's id block).
/// Immutable and thread-safe.
public struct TwoTowerEncoder: Sendable {
    /// Name of the index `extra` value holding the item ids (UInt64 little-endian, row order).
    public static let itemIDsExtraName = "two-tower.item-ids"
    /// Name prefix of every tensor of the encoder.
    public static let tensorPrefix = "two-tower."

    /// Item ids, ascending: row `r` of ``behaviours`` belongs to `ids[r]`.
    public let ids: [ItemID]
    private let rowOf: [ItemID: Int32]
    /// `itemCount × d`, row-major: each item's embedding as a behaviour.
    public let behaviours: Matrix
    /// The user tower, `d → hidden… → d` (ReLU between layers).
    public let mlp: InferenceMLP
    /// Width of the user vector.
    public let dimension: Int
    /// Most recent known behaviours pooled.
    public let maxHistory: Int
    /// Whether user vectors are unit-normalised.
    public let cosine: Bool
    /// The training temperature (informational: ranking does not depend on it).
    public let temperature: Float
    /// The vector of an empty history, `d` values.
    public let fallback: [Float]

    /// An encoder from raw weights.
    /// - Parameters:
    ///   - ids: item ids, strictly increasing (row order of `behaviours`).
    ///   - behaviours: `ids.count × dimension`, row-major.
    ///   - layers: per MLP layer, its `inputs × outputs` weight (row-major) and `outputs` biases.
    /// - Throws: ``TwoTowerError`` naming the tensor at fault (shapes that do not chain, NaN, ids
    ///   not increasing).
    public init(
        ids: [ItemID], behaviours: [Float], layers: [(weight: [Float], bias: [Float])], dimension: Int,
        maxHistory: Int, cosine: Bool, temperature: Float, fallback: [Float]
    ) throws(TwoTowerError) {
        guard !ids.isEmpty else { throw .noItems }
        guard dimension >= 1 else { throw .invalidConfiguration(field: "dimension", reason: "must be at least 1") }
        guard maxHistory >= 1 else { throw .invalidConfiguration(field: "maxHistory", reason: "must be at least 1, got \(maxHistory)") }
        for i in 1 ..< ids.count where !(ids[i - 1] < ids[i]) {
            if ids[i - 1] == ids[i] { throw .duplicateItem(ids[i]) }
            throw .invalidConfiguration(field: "item ids", reason: "must be in ascending order (row order)")
        }
        guard behaviours.count == ids.count * dimension else {
            throw .shapeMismatch(name: Self.behaviourName, expected: [ids.count, dimension],
                                 found: [behaviours.count / max(1, dimension), dimension])
        }
        guard fallback.count == dimension else {
            throw .shapeMismatch(name: Self.fallbackName, expected: [dimension], found: [fallback.count])
        }
        guard !layers.isEmpty else { throw .missingTensor(name: Self.weightName(0)) }
        var dense: [DenseLayer] = []
        var inputs = dimension
        for (i, layer) in layers.enumerated() {
            guard inputs > 0, layer.weight.count % inputs == 0, layer.weight.count > 0 else {
                throw .shapeMismatch(name: Self.weightName(i), expected: [inputs, -1], found: [layer.weight.count])
            }
            let outputs = layer.weight.count / inputs
            guard layer.bias.count == outputs else {
                throw .shapeMismatch(name: Self.biasName(i), expected: [outputs], found: [layer.bias.count])
            }
            do {
                dense.append(try DenseLayer(
                    weight: try Matrix(rows: inputs, cols: outputs, values: layer.weight), bias: layer.bias,
                    activation: i == layers.count - 1 ? .identity : .relu, name: Self.tensorPrefix + "mlp.\(i)"))
            } catch let e as ArborError {
                throw .invalidInput(e)
            } catch {
                throw .invalidInput(.invalidArgument(name: "layer \(i)", reason: "\(error)"))
            }
            inputs = outputs
        }
        guard inputs == dimension else {
            throw .shapeMismatch(name: Self.weightName(layers.count - 1), expected: [dense.last!.inputs, dimension],
                                 found: [dense.last!.inputs, inputs])
        }
        if let bad = behaviours.firstIndex(where: { !$0.isFinite }) {
            throw .invalidInput(.nonFiniteValue(field: Self.behaviourName, row: bad / dimension))
        }
        if fallback.contains(where: { !$0.isFinite }) { throw .invalidInput(.nonFiniteValue(field: Self.fallbackName, row: 0)) }
        self.ids = ids
        var map = [ItemID: Int32](minimumCapacity: ids.count)
        for (i, id) in ids.enumerated() { map[id] = Int32(i) }
        rowOf = map
        do {
            self.behaviours = try Matrix(rows: ids.count, cols: dimension, values: behaviours)
            mlp = try InferenceMLP(layers: dense)
        } catch let e as ArborError {
            throw .invalidInput(e)
        } catch {
            throw .invalidInput(.invalidArgument(name: "mlp", reason: "\(error)"))
        }
        self.dimension = dimension
        self.maxHistory = maxHistory
        self.cosine = cosine
        self.temperature = temperature
        self.fallback = fallback
    }

    /// Number of items the encoder knows.
    public var itemCount: Int { ids.count }

    /// The row of `id`, or `nil` when unknown. O(1).
    public func row(of id: ItemID) -> Int? { rowOf[id].map(Int.init) }

    // MARK: - Encoding

    /// The user vector for `history` (oldest first).
    ///
    /// The most recent `maxHistory` known items are pooled (unknown ones are skipped, so they do not
    /// use up the window). O(|history| + maxHistory · d + MLP).
    /// - Throws: ``TwoTowerError/unknownItem(_:)`` (with `.reject`, naming the most recent unknown
    ///   id), ``TwoTowerError/emptyHistory`` (with `.reject` and no known item).
    public func encode(
        history: [ItemID], unknown: UnknownItemPolicy = .ignore, empty: EmptyHistoryPolicy = .fallback
    ) throws(TwoTowerError) -> EncodedQuery {
        try encode(histories: [history], unknown: unknown, empty: empty)[0]
    }

    /// The user vectors of many histories through one MLP pass (a GEMM per layer): one
    /// ``EncodedQuery`` per history, in order. O(Σ|history| + n · maxHistory · d + n · MLP).
    /// - Throws: as ``encode(history:unknown:empty:)``.
    public func encode(
        histories: [[ItemID]], unknown: UnknownItemPolicy = .ignore, empty: EmptyHistoryPolicy = .fallback
    ) throws(TwoTowerError) -> [EncodedQuery] {
        let d = dimension
        var pooledValues = [Float](repeating: 0, count: histories.count * d)
        var unknownCounts = [Int](repeating: 0, count: histories.count)
        var usedCounts = [Int](repeating: 0, count: histories.count)
        behaviours.values.withUnsafeBufferPointer { table in
            pooledValues.withUnsafeMutableBufferPointer { out in
                for (q, history) in histories.enumerated() {
                    var used = 0
                    for id in history.reversed() {
                        guard let r = rowOf[id] else { unknownCounts[q] += 1; continue }
                        guard used < maxHistory else { continue }
                        let base = Int(r) * d
                        for j in 0 ..< d { out[q * d + j] += table[base + j] }
                        used += 1
                    }
                    usedCounts[q] = used
                    if used > 0 {
                        let inv = 1 / Float(used)
                        for j in 0 ..< d { out[q * d + j] *= inv }
                    }
                }
            }
        }
        if unknown == .reject {
            for (q, history) in histories.enumerated() where unknownCounts[q] > 0 {
                throw .unknownItem(history.last { rowOf[$0] == nil }!)
            }
        }
        if empty == .reject, usedCounts.contains(0) { throw .emptyHistory }
        let pooled = try! Matrix(rows: histories.count, cols: d, values: pooledValues)
        var buffers: [Matrix] = []
        let users = mlp.forward(pooled, buffers: &buffers)
        var out: [EncodedQuery] = []
        out.reserveCapacity(histories.count)
        for q in 0 ..< histories.count {
            if usedCounts[q] == 0 {
                out.append(EncodedQuery(vector: fallback, unknownItems: unknownCounts[q], usedFallback: true))
                continue
            }
            var v = Array(users.row(q))
            if cosine {
                var s: Float = 0
                for x in v { s += x * x }
                let inv = 1 / (s + 1e-12).squareRoot()
                for j in 0 ..< d { v[j] *= inv }
            }
            out.append(EncodedQuery(vector: v, unknownItems: unknownCounts[q], usedFallback: false))
        }
        return out
    }

    // MARK: - Named tensors

    static let behaviourName = tensorPrefix + "behaviour"
    static let optionsName = tensorPrefix + "options"
    static let fallbackName = tensorPrefix + "fallback"
    static func weightName(_ i: Int) -> String { tensorPrefix + "mlp.\(i).weight" }
    static func biasName(_ i: Int) -> String { tensorPrefix + "mlp.\(i).bias" }

    /// The encoder's weights as named tensors (see the type's documentation for names and shapes),
    /// for `IndexWriter.write(tensors:)` or a weights file. The item ids are not among them: see
    /// ``itemIDBytes`` and ``indexPayload()``.
    public func namedTensors() -> [ArborTree.NamedTensor] {
        var out = [ArborTree.NamedTensor(name: Self.behaviourName, shape: [itemCount, dimension], values: behaviours.values)]
        for (i, layer) in mlp.layers.enumerated() {
            out.append(.init(name: Self.weightName(i), shape: [layer.inputs, layer.outputs], values: layer.weight.values))
            out.append(.init(name: Self.biasName(i), shape: [layer.outputs], values: layer.bias))
        }
        out.append(.init(name: Self.optionsName, shape: [3], values: [Float(maxHistory), cosine ? 1 : 0, temperature]))
        out.append(.init(name: Self.fallbackName, shape: [dimension], values: fallback))
        return out
    }

    /// The item ids as bytes (UInt64 little-endian, row order): the index `extra` value
    /// ``itemIDsExtraName``.
    public var itemIDBytes: [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(ids.count * 8)
        for id in ids { withUnsafeBytes(of: id.rawValue.littleEndian) { bytes.append(contentsOf: $0) } }
        return bytes
    }

    /// What to hand to `IndexWriter.write`: `tensors:` and `extra:` (merge with other extras), with
    /// `queryProducer:` ``QueryProducerKind/twoTower``.
    public func indexPayload() -> (tensors: [ArborTree.NamedTensor], extra: [String: [UInt8]]) {
        (namedTensors(), [Self.itemIDsExtraName: itemIDBytes])
    }

    /// Decodes ``itemIDBytes``.
    /// - Throws: ``TwoTowerError/badWeightsFile(path:reason:)`` for a length that is not a multiple of 8.
    public static func decodeItemIDs(_ bytes: [UInt8], source: String = "item ids") throws(TwoTowerError) -> [ItemID] {
        guard bytes.count % 8 == 0 else {
            throw .badWeightsFile(path: source, reason: "item id block of \(bytes.count) bytes is not a multiple of 8")
        }
        var ids = [ItemID]()
        ids.reserveCapacity(bytes.count / 8)
        for i in stride(from: 0, to: bytes.count, by: 8) {
            var v: UInt64 = 0
            for k in 0 ..< 8 { v |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
            ids.append(ItemID(v))
        }
        return ids
    }

    /// An encoder from its named tensors and item ids (row order).
    ///
    /// Checks names (every required tensor present, no foreign `two-tower.` tensor; tensors of
    /// other prefixes, such as a scorer's, are ignored), shapes (behaviours `ids.count × d`, MLP
    /// layers chaining `d → … → d`, options `[3]`, fallback `[d]`) and values (finite).
    /// - Throws: ``TwoTowerError/missingTensor(name:)``, ``TwoTowerError/unexpectedTensor(name:)``,
    ///   ``TwoTowerError/shapeMismatch(name:expected:found:)``, ``TwoTowerError/invalidInput(_:)``.
    public init(tensors: [ArborTree.NamedTensor], ids: [ItemID]) throws(TwoTowerError) {
        var byName = [String: ArborTree.NamedTensor]()
        for t in tensors where t.name.hasPrefix(Self.tensorPrefix) { byName[t.name] = t }
        guard let behaviour = byName[Self.behaviourName] else { throw .missingTensor(name: Self.behaviourName) }
        guard behaviour.shape.count == 2, behaviour.shape[0] == ids.count, behaviour.values.count == behaviour.shape.reduce(1, *) else {
            throw .shapeMismatch(name: Self.behaviourName, expected: [ids.count, behaviour.shape.last ?? 0], found: behaviour.shape)
        }
        let d = behaviour.shape[1]
        guard let options = byName[Self.optionsName] else { throw .missingTensor(name: Self.optionsName) }
        guard options.shape == [3], options.values.count == 3 else {
            throw .shapeMismatch(name: Self.optionsName, expected: [3], found: options.shape)
        }
        guard let fallback = byName[Self.fallbackName] else { throw .missingTensor(name: Self.fallbackName) }
        guard fallback.shape == [d], fallback.values.count == d else {
            throw .shapeMismatch(name: Self.fallbackName, expected: [d], found: fallback.shape)
        }
        var layers: [(weight: [Float], bias: [Float])] = []
        var known: Set<String> = [Self.behaviourName, Self.optionsName, Self.fallbackName]
        var inputs = d
        var i = 0
        while let w = byName[Self.weightName(i)] {
            guard let b = byName[Self.biasName(i)] else { throw .missingTensor(name: Self.biasName(i)) }
            guard w.shape.count == 2, w.shape[0] == inputs, w.values.count == w.shape.reduce(1, *) else {
                throw .shapeMismatch(name: w.name, expected: [inputs, w.shape.last ?? 0], found: w.shape)
            }
            guard b.shape == [w.shape[1]], b.values.count == w.shape[1] else {
                throw .shapeMismatch(name: b.name, expected: [w.shape[1]], found: b.shape)
            }
            layers.append((w.values, b.values))
            known.insert(w.name)
            known.insert(b.name)
            inputs = w.shape[1]
            i += 1
        }
        guard !layers.isEmpty else { throw .missingTensor(name: Self.weightName(0)) }
        guard inputs == d else {
            throw .shapeMismatch(name: Self.weightName(i - 1), expected: [byName[Self.weightName(i - 1)]!.shape[0], d],
                                 found: byName[Self.weightName(i - 1)]!.shape)
        }
        for name in byName.keys.sorted() where !known.contains(name) { throw .unexpectedTensor(name: name) }
        let o = options.values
        guard o[0] >= 1, o[0] <= 1_000_000, o[0] == o[0].rounded(), o[2] > 0, o[2].isFinite else {
            throw .invalidConfiguration(field: Self.optionsName, reason: "maxHistory \(o[0]) or temperature \(o[2]) out of range")
        }
        try self.init(ids: ids, behaviours: behaviour.values, layers: layers, dimension: d, maxHistory: Int(o[0]),
                      cosine: o[1] != 0, temperature: o[2], fallback: fallback.values)
    }

    /// The encoder stored in an index (written with ``indexPayload()`` and query producer
    /// ``QueryProducerKind/twoTower``). Tensor digests and chunk checksums are checked by the reader.
    /// - Throws: ``TwoTowerError/invalidConfiguration(field:reason:)`` when the index carries another
    ///   encoder kind; `IndexError` for a missing or corrupted tensor; ``TwoTowerError`` as
    ///   ``init(tensors:ids:)``, or when the user vector width differs from the index's dimension.
    public init(index reader: IndexReader) throws {
        guard reader.queryProducer == .twoTower else {
            throw TwoTowerError.invalidConfiguration(
                field: "queryProducer",
                reason: "index \(reader.path) carries '\(reader.queryProducer.rawValue)', not '\(QueryProducerKind.twoTower.rawValue)'")
        }
        let names = reader.tensorNames.filter { $0.hasPrefix(Self.tensorPrefix) }
        var tensors: [ArborTree.NamedTensor] = []
        for name in names { tensors.append(try reader.tensor(named: name)) }
        guard let bytes = try reader.extra(named: Self.itemIDsExtraName) else {
            throw TwoTowerError.missingTensor(name: Self.itemIDsExtraName)
        }
        let ids = try Self.decodeItemIDs(bytes, source: reader.path)
        try self.init(tensors: tensors, ids: ids)
        guard dimension == reader.dimension else {
            throw TwoTowerError.shapeMismatch(name: Self.fallbackName, expected: [reader.dimension], found: [dimension])
        }
    }
}
