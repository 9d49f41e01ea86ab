import ArborCore
import ArborMath
import ArborTree

/// Names of the tensors and extra values that serving models are stored under in an index.
/// Training export (ArborModels) writes these names; the loaders of this module read them.
public enum ModelTensorNames {
    /// `[B, d]`: one trained behaviour embedding per known item (mean pooling, attention).
    public static let behaviourEmbeddings = "behaviour.embeddings"
    /// Extra value: the item id of each behaviour row, `UInt64` little-endian, row order.
    public static let behaviourIDs = "behaviour.ids"
    /// `[1]`: the most recent behaviours a user is represented by.
    public static let maxHistory = "encoder.maxHistory"
    /// `[P, d]`, optional: the attention scorer's recency embedding.
    public static let positions = "attention.positions"
    /// `[H, d]`, optional: JTM's hierarchical behaviour embeddings (``BehaviourHierarchy``).
    public static let hierarchyEmbeddings = "hierarchy.embeddings"
    /// `[levels, B]`, with ``hierarchyEmbeddings``: the hierarchy row (or -1) of each behaviour row
    /// per level `1 ... levels`, stored as exact float integers.
    public static let hierarchyRows = "hierarchy.rows"

    /// Item ids as stored in ``behaviourIDs`` (`UInt64` little-endian each). O(n).
    public static func encode(ids: [ItemID]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 8)
        for id in ids { for j in 0..<8 { out.append(UInt8(truncatingIfNeeded: id.rawValue >> (8 * j))) } }
        return out
    }
}

extension InferenceMLP {
    /// The layers as named tensors `<prefix>.<i>.weight` (`inputs × outputs`), `<prefix>.<i>.bias`
    /// (`outputs`) and, for PReLU layers, `<prefix>.<i>.prelu` (`outputs` slopes): the names
    /// ArborNN's `MLP(name: prefix)` uses, so trained weights map one to one. O(weights).
    public func namedTensors(prefix: String) -> [NamedTensor] {
        var out: [NamedTensor] = []
        for (i, layer) in layers.enumerated() {
            out.append(.init(name: "\(prefix).\(i).weight", shape: [layer.inputs, layer.outputs], values: layer.weight.values))
            out.append(.init(name: "\(prefix).\(i).bias", shape: [layer.outputs], values: layer.bias))
            if case .prelu(let slopes) = layer.activation {
                out.append(.init(name: "\(prefix).\(i).prelu", shape: [layer.outputs], values: slopes))
            }
        }
        return out
    }

    /// Rebuilds an MLP from ``namedTensors(prefix:)``: layers `0, 1, …` while `<prefix>.<i>.weight`
    /// exists. A layer with a `.prelu` tensor uses PReLU; otherwise hidden layers use ReLU and the
    /// last layer is linear.
    /// - Throws: ``ModelLoadError/weightsDoNotMatch(kind:reason:)`` (with `kind`) when no layer is
    ///   found, a bias is missing, shapes are not 2-D / 1-D or do not chain.
    public init(namedTensors tensors: [String: NamedTensor], prefix: String, kind: String) throws(ModelLoadError) {
        var layers: [DenseLayer] = []
        var i = 0
        while let w = tensors["\(prefix).\(i).weight"] {
            guard w.shape.count == 2 else {
                throw .weightsDoNotMatch(kind: kind, reason: "\(w.name) has shape \(w.shape), expected 2-D")
            }
            guard let b = tensors["\(prefix).\(i).bias"], b.shape == [w.shape[1]] else {
                throw .weightsDoNotMatch(kind: kind, reason: "\(prefix).\(i).bias is missing or not [\(w.shape[1])]")
            }
            i += 1
            let isLast = tensors["\(prefix).\(i).weight"] == nil
            let activation: InferenceActivation
            if let p = tensors["\(prefix).\(i - 1).prelu"] {
                activation = .prelu(slopes: p.values)
            } else {
                activation = isLast ? .identity : .relu
            }
            do {
                let matrix = try Matrix(rows: w.shape[0], cols: w.shape[1], values: w.values)
                layers.append(try DenseLayer(weight: matrix, bias: b.values, activation: activation, name: "\(prefix).\(i - 1)"))
            } catch {
                throw .weightsDoNotMatch(kind: kind, reason: "\(error)")
            }
        }
        guard !layers.isEmpty else {
            throw .weightsDoNotMatch(kind: kind, reason: "no tensor '\(prefix).0.weight'")
        }
        do { try self.init(layers: layers) } catch { throw .weightsDoNotMatch(kind: kind, reason: "\(error)") }
    }
}

extension BehaviourHierarchy {
    /// ``ModelTensorNames/hierarchyEmbeddings`` and ``ModelTensorNames/hierarchyRows``. O(H·d + levels·B).
    public func namedTensors() -> [NamedTensor] {
        [.init(name: ModelTensorNames.hierarchyEmbeddings, shape: [embeddings.rows, embeddings.cols], values: embeddings.values),
         .init(name: ModelTensorNames.hierarchyRows, shape: [rows.count, rows.first?.count ?? 0],
               values: rows.flatMap { $0.map(Float.init) })]
    }

    /// The hierarchy in `tensors` (`nil` when it has none) over `behaviourCount` behaviour rows.
    /// - Throws: ``ModelLoadError/weightsDoNotMatch(kind:reason:)`` (with `kind`) for shapes that do
    ///   not fit, rows that are not integers in `-1 ..< H`, or one tensor without the other.
    init?(namedTensors byName: [String: NamedTensor], behaviourCount: Int, dimension: Int, kind: String) throws(ModelLoadError) {
        let e = byName[ModelTensorNames.hierarchyEmbeddings], r = byName[ModelTensorNames.hierarchyRows]
        guard e != nil || r != nil else { return nil }
        guard let e, let r, e.shape.count == 2, e.shape[1] == dimension, r.shape.count == 2,
              r.shape[0] == 0 || r.shape[1] == behaviourCount, e.shape[0] < 1 << 24 else {
            throw .weightsDoNotMatch(kind: kind, reason: "'\(ModelTensorNames.hierarchyEmbeddings)' [H, \(dimension)] and "
                                     + "'\(ModelTensorNames.hierarchyRows)' [levels, \(behaviourCount)] must come together")
        }
        guard r.values.allSatisfy({ $0 == $0.rounded() && $0 >= -1 && $0 < Float(e.shape[0]) }) else {
            throw .weightsDoNotMatch(kind: kind, reason: "'\(ModelTensorNames.hierarchyRows)' holds a value that is not a row of -1..<\(e.shape[0])")
        }
        let levels = (0..<r.shape[0]).map { l in r.values[l * behaviourCount ..< (l + 1) * behaviourCount].map { Int32($0) } }
        do {
            try self.init(embeddings: Matrix(rows: e.shape[0], cols: e.shape[1], values: e.values), rows: levels,
                          behaviourCount: behaviourCount)
        } catch {
            throw .weightsDoNotMatch(kind: kind, reason: "\(error)")
        }
    }
}

extension DNNScorer {
    /// The scorer's weights as named tensors (`dnn.<i>.weight|bias|prelu`, and the hierarchy's
    /// when it has one; its behaviour table is stored by the query producer). O(weights).
    public func namedTensors() -> [NamedTensor] { mlp.namedTensors(prefix: "dnn") + (hierarchy?.namedTensors() ?? []) }

    /// A DNN scorer from ``namedTensors()`` (other tensors are ignored). With hierarchy tensors,
    /// `behaviourIDs` and the tensors of the behaviour mean pooling (`behaviour.embeddings`,
    /// `encoder.maxHistory`) must be present too.
    /// - Throws: ``ModelLoadError/weightsDoNotMatch(kind:reason:)`` when `dnn.*` tensors are
    ///   missing or do not form an MLP `3d → … → 1`, or the hierarchy does not fit.
    public init(dimension: Int, namedTensors tensors: [NamedTensor], behaviourIDs: [ItemID]? = nil) throws(ModelLoadError) {
        let kind = NodeScorerKind.dnn.rawValue
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let mlp = try InferenceMLP(namedTensors: byName, prefix: "dnn", kind: kind)
        var behaviours: MeanPoolingEncoder? = nil
        var hierarchy: BehaviourHierarchy? = nil
        if byName[ModelTensorNames.hierarchyEmbeddings] != nil || byName[ModelTensorNames.hierarchyRows] != nil {
            guard let ids = behaviourIDs, let e = byName[ModelTensorNames.behaviourEmbeddings], e.shape.count == 2 else {
                throw .weightsDoNotMatch(kind: kind, reason: "the hierarchy needs '\(ModelTensorNames.behaviourEmbeddings)' and the behaviour ids")
            }
            do {
                behaviours = try MeanPoolingEncoder(itemVectors: Matrix(rows: e.shape[0], cols: e.shape[1], values: e.values),
                                                    ids: ids, maxHistory: StoredTensors.maxHistory(byName))
            } catch {
                throw .weightsDoNotMatch(kind: kind, reason: "\(error)")
            }
            hierarchy = try BehaviourHierarchy(namedTensors: byName, behaviourCount: ids.count, dimension: dimension, kind: kind)
        }
        do { try self.init(dimension: dimension, mlp: mlp, hierarchy: hierarchy, behaviours: behaviours) } catch {
            throw .weightsDoNotMatch(kind: kind, reason: "\(error)")
        }
    }

    /// The DNN scorer stored in an index (node scorer ``NodeScorerKind/dnn``).
    /// - Throws: ``ModelLoadError/kindMismatch(field:expected:found:)`` when the index serves
    ///   another scorer; ``ModelLoadError/weightsDoNotMatch(kind:reason:)`` when its tensors do not
    ///   form a DNN of the index's dimension; ``ModelLoadError/index(_:)`` for file errors.
    public init(from reader: IndexReader) throws(ModelLoadError) {
        try StoredTensors.require(.dnn, reader)
        var tensors = try StoredTensors.load(reader, prefixes: ["dnn.", "hierarchy."])
        var ids: [ItemID]? = nil
        if tensors.contains(where: { $0.name.hasPrefix("hierarchy.") }) {
            tensors += try StoredTensors.load(reader, prefixes: ["behaviour.", "encoder."])
            ids = try StoredTensors.behaviourIDs(reader)
        }
        try self.init(dimension: reader.dimension, namedTensors: tensors, behaviourIDs: ids)
    }
}

extension AttentionScorer {
    /// The weights as named tensors: `attention.<i>.*`, `output.<i>.*`, `behaviour.embeddings`
    /// `[B, d]`, `encoder.maxHistory` `[1]` and, when present, `attention.positions` `[P, d]`
    /// (behaviour ids travel apart as the extra value ``ModelTensorNames/behaviourIDs``). O(weights).
    public func namedTensors() -> [NamedTensor] {
        attention.namedTensors(prefix: "attention") + output.namedTensors(prefix: "output") + [
            .init(name: ModelTensorNames.behaviourEmbeddings, shape: [behaviourEmbeddings.rows, nodeDimension],
                  values: behaviourEmbeddings.values),
            .init(name: ModelTensorNames.maxHistory, shape: [1], values: [Float(maxHistory)]),
        ] + (positions.map { [.init(name: ModelTensorNames.positions, shape: [$0.rows, $0.cols], values: $0.values)] } ?? [])
            + (hierarchy?.namedTensors() ?? [])
    }

    /// An attention scorer from ``namedTensors()`` and the behaviour ids (one per embedding row).
    /// - Throws: ``ModelLoadError/weightsDoNotMatch(kind:reason:)`` when a tensor is missing or
    ///   the shapes do not form an attention scorer of width `dimension`.
    public init(dimension: Int, namedTensors tensors: [NamedTensor], behaviourIDs: [ItemID],
                unknownItems: UnknownItemPolicy = .ignore) throws(ModelLoadError) {
        let kind = NodeScorerKind.attention.rawValue
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let unit = try InferenceMLP(namedTensors: byName, prefix: "attention", kind: kind)
        let out = try InferenceMLP(namedTensors: byName, prefix: "output", kind: kind)
        guard let e = byName[ModelTensorNames.behaviourEmbeddings], e.shape.count == 2 else {
            throw .weightsDoNotMatch(kind: kind, reason: "no 2-D tensor '\(ModelTensorNames.behaviourEmbeddings)'")
        }
        let maxHistory = StoredTensors.maxHistory(byName)
        if let p = byName[ModelTensorNames.positions], p.shape.count != 2 {
            throw .weightsDoNotMatch(kind: kind, reason: "'\(ModelTensorNames.positions)' has shape \(p.shape), expected 2-D")
        }
        let hierarchy = try BehaviourHierarchy(namedTensors: byName, behaviourCount: behaviourIDs.count, dimension: dimension,
                                               kind: kind)
        do {
            let matrix = try Matrix(rows: e.shape[0], cols: e.shape[1], values: e.values)
            let positions = try byName[ModelTensorNames.positions].map { try Matrix(rows: $0.shape[0], cols: $0.shape[1], values: $0.values) }
            try self.init(dimension: dimension, behaviourEmbeddings: matrix, behaviourIDs: behaviourIDs, attention: unit,
                          output: out, maxHistory: maxHistory, unknownItems: unknownItems, positions: positions,
                          hierarchy: hierarchy)
        } catch {
            throw .weightsDoNotMatch(kind: kind, reason: "\(error)")
        }
    }

    /// The attention scorer stored in an index (node scorer ``NodeScorerKind/attention``).
    /// - Throws: as ``DNNScorer/init(from:)``: kind mismatch, weights that do not form the scorer,
    ///   file errors.
    public init(from reader: IndexReader, unknownItems: UnknownItemPolicy = .ignore) throws(ModelLoadError) {
        try StoredTensors.require(.attention, reader)
        let tensors = try StoredTensors.load(reader, prefixes: ["attention.", "output.", "behaviour.", "encoder.", "hierarchy."])
        try self.init(dimension: reader.dimension, namedTensors: tensors, behaviourIDs: StoredTensors.behaviourIDs(reader),
                      unknownItems: unknownItems)
    }
}

extension MeanPoolingEncoder {
    /// The trained behaviour mean pooling stored beside a DNN or inner-product scorer
    /// (`behaviour.embeddings`, `encoder.maxHistory` and the behaviour ids; query producer
    /// ``QueryProducerKind/behaviourMeanPooling``).
    /// - Throws: ``ModelLoadError/weightsDoNotMatch(kind:reason:)`` when the tensors are
    ///   missing or do not fit; ``ModelLoadError/index(_:)`` for file errors.
    public init(from reader: IndexReader) throws(ModelLoadError) {
        let kind = QueryProducerKind.behaviourMeanPooling.rawValue
        let tensors = try StoredTensors.load(reader, prefixes: ["behaviour.", "encoder."])
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        guard let e = byName[ModelTensorNames.behaviourEmbeddings], e.shape.count == 2, e.shape[1] == reader.dimension else {
            throw .weightsDoNotMatch(kind: kind, reason: "no [n, \(reader.dimension)] '\(ModelTensorNames.behaviourEmbeddings)'")
        }
        let ids = try StoredTensors.behaviourIDs(reader)
        do {
            try self.init(itemVectors: Matrix(rows: e.shape[0], cols: e.shape[1], values: e.values), ids: ids,
                          maxHistory: StoredTensors.maxHistory(byName))
        } catch {
            throw .weightsDoNotMatch(kind: kind, reason: "\(error)")
        }
    }
}

/// Reading stored weights, shared by the loaders above.
enum StoredTensors {
    static func require(_ kind: NodeScorerKind, _ reader: IndexReader) throws(ModelLoadError) {
        guard reader.nodeScorer == kind else {
            throw .kindMismatch(field: "nodeScorer", expected: kind.rawValue, found: reader.nodeScorer.rawValue)
        }
    }

    static func load(_ reader: IndexReader, prefixes: [String]) throws(ModelLoadError) -> [NamedTensor] {
        var out: [NamedTensor] = []
        for name in reader.tensorNames where prefixes.contains(where: { name.hasPrefix($0) }) {
            do { out.append(try reader.tensor(named: name)) } catch { throw .index(error) }
        }
        return out
    }

    /// `encoder.maxHistory`, clamped to 1...1,000,000; 50 when absent.
    static func maxHistory(_ byName: [String: NamedTensor]) -> Int {
        byName[ModelTensorNames.maxHistory].flatMap { $0.values.first.flatMap { Int(exactly: $0) } }
            .map { min(max($0, 1), 1_000_000) } ?? 50
    }

    static func behaviourIDs(_ reader: IndexReader) throws(ModelLoadError) -> [ItemID] {
        let bytes: [UInt8]?
        do { bytes = try reader.extra(named: ModelTensorNames.behaviourIDs) } catch { throw .index(error) }
        guard let bytes, bytes.count % 8 == 0 else {
            throw .weightsDoNotMatch(kind: reader.nodeScorer.rawValue,
                                     reason: "no behaviour id list '\(ModelTensorNames.behaviourIDs)'")
        }
        var ids: [ItemID] = []
        ids.reserveCapacity(bytes.count / 8)
        for i in stride(from: 0, to: bytes.count, by: 8) {
            var v: UInt64 = 0
            for j in 0..<8 { v |= UInt64(bytes[i + j]) << (8 * j) }
            ids.append(ItemID(v))
        }
        return ids
    }
}
