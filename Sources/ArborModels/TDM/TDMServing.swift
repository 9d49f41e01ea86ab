import ArborMath
import ArborNN
import ArborTree

/// Errors of TDM training, export and loading.
public enum TDMError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The index records another scorer kind than the one asked for.
    case scorerKindMismatch(expected: String, found: String)
    /// The weights stored under a scorer kind do not form that scorer (a tensor is missing, has
    /// another shape, or the layers do not chain).
    case weightsDoNotMatchScorerKind(kind: String, reason: String)
    /// The index records a scorer kind Arbor does not know.
    case unknownScorerKind(String)
    /// No training sample remained (every target missing from the tree, or no data).
    case noTrainingSamples
    /// The loss became NaN or infinite.
    case diverged(epoch: Int, batch: Int)
    /// An argument or shape check failed.
    case invalid(ArborError)
    /// Reading or writing the index file failed.
    case index(IndexError)

    /// A one-line message naming what is wrong (what the CLI prints).
    public var description: String {
        switch self {
        case let .scorerKindMismatch(expected, found):
            return "the index holds a '\(found)' scorer, not '\(expected)'"
        case let .weightsDoNotMatchScorerKind(kind, reason):
            return "the weights do not form a '\(kind)' scorer: \(reason)"
        case let .unknownScorerKind(kind):
            return "unknown scorer kind '\(kind)' (known: \(TDMScorerKind.allCases.map(\.rawValue).joined(separator: ", ")))"
        case .noTrainingSamples:
            return "no training samples (targets must be items of the tree)"
        case let .diverged(epoch, batch):
            return "training diverged (non-finite loss) in epoch \(epoch), batch \(batch)"
        case let .invalid(error):
            return error.description
        case let .index(error):
            return error.description
        }
    }
}

/// Tensor names shared by training export and serving load.
enum TDMTensorNames {
    static let behaviourEmbeddings = "behaviour.embeddings"
    static let behaviourIDs = "behaviour.ids"        // extra value: UInt64 LE per id
    static let maxHistory = "encoder.maxHistory"    // [1]
    static let positions = "attention.positions"     // [P, d], optional
}

extension InferenceMLP {
    /// The layers as named tensors `<prefix>.<i>.weight` (`inputs × outputs`), `<prefix>.<i>.bias`
    /// (`outputs`) and, for PReLU layers, `<prefix>.<i>.prelu` (`outputs` slopes): the names
    /// ArborNN's `MLP(name: prefix)` uses, so trained weights map one to one. O(weights).
    public func namedTensors(prefix: String) -> [ArborTree.NamedTensor] {
        var out: [ArborTree.NamedTensor] = []
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
    /// - Throws: ``TDMError/weightsDoNotMatchScorerKind(kind:reason:)`` (with `kind`) when no layer is
    ///   found, a bias is missing, shapes are not 2-D / 1-D or do not chain.
    public init(namedTensors tensors: [String: ArborTree.NamedTensor], prefix: String, kind: String) throws(TDMError) {
        var layers: [DenseLayer] = []
        var i = 0
        while let w = tensors["\(prefix).\(i).weight"] {
            guard w.shape.count == 2 else {
                throw .weightsDoNotMatchScorerKind(kind: kind, reason: "\(w.name) has shape \(w.shape), expected 2-D")
            }
            guard let b = tensors["\(prefix).\(i).bias"], b.shape == [w.shape[1]] else {
                throw .weightsDoNotMatchScorerKind(kind: kind, reason: "\(prefix).\(i).bias is missing or not [\(w.shape[1])]")
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
            } catch let error as ArborError {
                throw .weightsDoNotMatchScorerKind(kind: kind, reason: error.description)
            } catch {
                throw .weightsDoNotMatchScorerKind(kind: kind, reason: "\(error)")
            }
        }
        guard !layers.isEmpty else {
            throw .weightsDoNotMatchScorerKind(kind: kind, reason: "no tensor '\(prefix).0.weight'")
        }
        do { try self.init(layers: layers) } catch let error as ArborError {
            throw .weightsDoNotMatchScorerKind(kind: kind, reason: error.description)
        } catch { throw .weightsDoNotMatchScorerKind(kind: kind, reason: "\(error)") }
    }
}

extension DNNScorer {
    /// The scorer's weights as named tensors (`dnn.<i>.weight|bias|prelu`). O(weights).
    public func namedTensors() -> [ArborTree.NamedTensor] { mlp.namedTensors(prefix: "dnn") }

    /// A DNN scorer from ``namedTensors()`` (other tensors are ignored).
    /// - Throws: ``TDMError/weightsDoNotMatchScorerKind(kind:reason:)`` when `dnn.*` tensors are
    ///   missing or do not form an MLP `3d → … → 1`.
    public init(dimension: Int, namedTensors tensors: [ArborTree.NamedTensor]) throws(TDMError) {
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let mlp = try InferenceMLP(namedTensors: byName, prefix: "dnn", kind: TDMScorerKind.dnn.rawValue)
        do { try self.init(dimension: dimension, mlp: mlp) } catch let error as ArborError {
            throw .weightsDoNotMatchScorerKind(kind: TDMScorerKind.dnn.rawValue, reason: error.description)
        } catch { throw .weightsDoNotMatchScorerKind(kind: TDMScorerKind.dnn.rawValue, reason: "\(error)") }
    }

    /// The DNN scorer stored in an index written by ``TDMModel/writeIndex(to:writer:provenance:)``.
    /// - Throws: ``TDMError/scorerKindMismatch(expected:found:)`` when the index serves another
    ///   scorer; ``TDMError/weightsDoNotMatchScorerKind(kind:reason:)`` when its tensors do not form a
    ///   DNN of the index's dimension; ``TDMError/index(_:)`` for file errors.
    public init(from reader: IndexReader) throws(TDMError) {
        try requireKind(.dnn, reader)
        try self.init(dimension: reader.dimension, namedTensors: loadTensors(reader, prefixes: ["dnn."]))
    }
}

extension AttentionScorer {
    /// The weights as named tensors: `attention.<i>.*`, `output.<i>.*`, `behaviour.embeddings`
    /// `[B, d]`, `encoder.maxHistory` `[1]` and, when present, `attention.positions` `[P, d]`
    /// (behaviour ids travel apart: ``behaviourIDs``). O(weights).
    public func namedTensors() -> [ArborTree.NamedTensor] {
        attention.namedTensors(prefix: "attention") + output.namedTensors(prefix: "output") + [
            .init(name: TDMTensorNames.behaviourEmbeddings, shape: [behaviourEmbeddings.rows, nodeDimension],
                  values: behaviourEmbeddings.values),
            .init(name: TDMTensorNames.maxHistory, shape: [1], values: [Float(maxHistory)]),
        ] + (positions.map { [.init(name: TDMTensorNames.positions, shape: [$0.rows, $0.cols], values: $0.values)] } ?? [])
    }

    /// An attention scorer from ``namedTensors()`` and the behaviour ids (one per embedding row).
    /// - Throws: ``TDMError/weightsDoNotMatchScorerKind(kind:reason:)`` when a tensor is missing or
    ///   the shapes do not form an attention scorer of width `dimension`.
    public init(dimension: Int, namedTensors tensors: [ArborTree.NamedTensor], behaviourIDs: [ItemID],
                unknownItems: UnknownItemPolicy = .ignore) throws(TDMError) {
        let kind = TDMScorerKind.attention.rawValue
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let unit = try InferenceMLP(namedTensors: byName, prefix: "attention", kind: kind)
        let out = try InferenceMLP(namedTensors: byName, prefix: "output", kind: kind)
        guard let e = byName[TDMTensorNames.behaviourEmbeddings], e.shape.count == 2 else {
            throw .weightsDoNotMatchScorerKind(kind: kind, reason: "no 2-D tensor '\(TDMTensorNames.behaviourEmbeddings)'")
        }
        let maxHistory = byName[TDMTensorNames.maxHistory].flatMap { $0.values.first.flatMap { Int(exactly: $0) } }
            .map { min(max($0, 1), 1_000_000) } ?? 50
        if let p = byName[TDMTensorNames.positions], p.shape.count != 2 {
            throw .weightsDoNotMatchScorerKind(kind: kind, reason: "'\(TDMTensorNames.positions)' has shape \(p.shape), expected 2-D")
        }
        do {
            let matrix = try Matrix(rows: e.shape[0], cols: e.shape[1], values: e.values)
            let positions = try byName[TDMTensorNames.positions].map { try Matrix(rows: $0.shape[0], cols: $0.shape[1], values: $0.values) }
            try self.init(dimension: dimension, behaviourEmbeddings: matrix, behaviourIDs: behaviourIDs, attention: unit,
                          output: out, maxHistory: maxHistory, unknownItems: unknownItems, positions: positions)
        } catch let error as ArborError {
            throw .weightsDoNotMatchScorerKind(kind: kind, reason: error.description)
        } catch { throw .weightsDoNotMatchScorerKind(kind: kind, reason: "\(error)") }
    }

    /// The attention scorer stored in an index written by ``TDMModel/writeIndex(to:writer:provenance:)``.
    /// - Throws: as ``init(from:unknownItems:)``'s DNN counterpart: kind mismatch, weights that
    ///   do not form the scorer, file errors.
    public init(from reader: IndexReader, unknownItems: UnknownItemPolicy = .ignore) throws(TDMError) {
        try requireKind(.attention, reader)
        let tensors = try loadTensors(reader, prefixes: ["attention.", "output.", "behaviour.", "encoder."])
        try self.init(dimension: reader.dimension, namedTensors: tensors, behaviourIDs: loadBehaviourIDs(reader),
                      unknownItems: unknownItems)
    }
}

extension MeanPoolingEncoder {
    /// The encoder stored beside a DNN or inner-product scorer (`behaviour.embeddings`,
    /// `encoder.maxHistory` and the behaviour ids).
    /// - Throws: ``TDMError/weightsDoNotMatchScorerKind(kind:reason:)`` when the tensors are
    ///   missing or do not fit; ``TDMError/index(_:)`` for file errors.
    public init(from reader: IndexReader) throws(TDMError) {
        let kind = reader.scorerKind
        let tensors = try loadTensors(reader, prefixes: ["behaviour.", "encoder."])
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        guard let e = byName[TDMTensorNames.behaviourEmbeddings], e.shape.count == 2, e.shape[1] == reader.dimension else {
            throw .weightsDoNotMatchScorerKind(kind: kind, reason: "no [n, \(reader.dimension)] '\(TDMTensorNames.behaviourEmbeddings)'")
        }
        let maxHistory = byName[TDMTensorNames.maxHistory].flatMap { $0.values.first.flatMap { Int(exactly: $0) } }
            .map { min(max($0, 1), 1_000_000) } ?? 50
        let ids = try loadBehaviourIDs(reader)
        do {
            try self.init(itemVectors: Matrix(rows: e.shape[0], cols: e.shape[1], values: e.values), ids: ids,
                          maxHistory: maxHistory)
        } catch let error as ArborError {
            throw .weightsDoNotMatchScorerKind(kind: kind, reason: error.description)
        } catch { throw .weightsDoNotMatchScorerKind(kind: kind, reason: "\(error)") }
    }
}

/// A serving model loaded from an index: the scorer and, for vector scorers, the encoder that
/// turns a history into the query vector.
public enum TDMServingModel: Sendable {
    /// Product-DNN: `u · n`, `u` from the encoder.
    case innerProduct(InnerProductScorer, MeanPoolingEncoder)
    /// DNN over `[u, n, u ⊙ n]`, `u` from the encoder.
    case dnn(DNNScorer, MeanPoolingEncoder)
    /// Attention-DNN over the raw history.
    case attention(AttentionScorer)

    /// Loads the scorer named by the index's `scorerKind`.
    /// - Throws: ``TDMError/unknownScorerKind(_:)``, ``TDMError/weightsDoNotMatchScorerKind(kind:reason:)``,
    ///   ``TDMError/index(_:)``.
    public static func load(from reader: IndexReader, unknownItems: UnknownItemPolicy = .ignore) throws(TDMError) -> TDMServingModel {
        guard let kind = TDMScorerKind(rawValue: reader.scorerKind) else { throw .unknownScorerKind(reader.scorerKind) }
        switch kind {
        case .innerProduct: return .innerProduct(InnerProductScorer(dimension: reader.dimension), try MeanPoolingEncoder(from: reader))
        case .dnn: return .dnn(try DNNScorer(from: reader), try MeanPoolingEncoder(from: reader))
        case .attention: return .attention(try AttentionScorer(from: reader, unknownItems: unknownItems))
        }
    }

    /// The query for a history: the encoded vector for vector scorers (unknown ids follow
    /// `unknownItems`; an empty history gives the encoder's fallback, the mean behaviour), the
    /// history itself for attention. `excluded` is passed through.
    /// - Throws: ``ArborError/unknownItem(_:)`` under `.reject`.
    public func query(history: [ItemID], excluded: Set<ItemID> = [], unknownItems: UnknownItemPolicy = .ignore) throws -> Query {
        switch self {
        case .innerProduct(_, let encoder), .dnn(_, let encoder):
            return Query(vector: try encoder.encode(history: history, unknown: unknownItems).vector, history: history, excluded: excluded)
        case .attention:
            return Query(history: history, excluded: excluded)
        }
    }
}

extension TDMServingModel {
    /// The ids of `history` the model has no behaviour embedding for, in history order (the whole
    /// history, also behaviours older than the model's `maxHistory`): what serving ignores, or
    /// rejects under ``UnknownItemPolicy/reject``. O(history).
    public func unknownItems(in history: [ItemID]) -> [ItemID] {
        switch self {
        case .innerProduct(_, let encoder), .dnn(_, let encoder): return history.filter { !encoder.knows($0) }
        case .attention(let scorer): return history.filter { !scorer.knows($0) }
        }
    }
}

private func requireKind(_ kind: TDMScorerKind, _ reader: IndexReader) throws(TDMError) {
    guard reader.scorerKind == kind.rawValue else {
        throw .scorerKindMismatch(expected: kind.rawValue, found: reader.scorerKind)
    }
}

private func loadTensors(_ reader: IndexReader, prefixes: [String]) throws(TDMError) -> [ArborTree.NamedTensor] {
    var out: [ArborTree.NamedTensor] = []
    for name in reader.tensorNames where prefixes.contains(where: { name.hasPrefix($0) }) {
        do { out.append(try reader.tensor(named: name)) } catch { throw .index(error) }
    }
    return out
}

private func loadBehaviourIDs(_ reader: IndexReader) throws(TDMError) -> [ItemID] {
    let bytes: [UInt8]?
    do { bytes = try reader.extra(named: TDMTensorNames.behaviourIDs) } catch { throw .index(error) }
    guard let bytes, bytes.count % 8 == 0 else {
        throw .weightsDoNotMatchScorerKind(kind: reader.scorerKind, reason: "no behaviour id list '\(TDMTensorNames.behaviourIDs)'")
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

func encodeIDs(_ ids: [ItemID]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(ids.count * 8)
    for id in ids { for j in 0..<8 { out.append(UInt8(truncatingIfNeeded: id.rawValue >> (8 * j))) } }
    return out
}

// MARK: - Export from a trained model

extension TDMModel {
    /// The behaviour table as a matrix (`items.count × d`).
    var behaviourMatrix: Matrix { behaviour.table.matrix }

    /// The query encoder of the inner-product and DNN scorers: mean of the behaviour embeddings
    /// of the last `maxHistory` known items (empty history → mean of all behaviour rows).
    /// - Throws: ``ArborError`` (cannot happen for a valid model).
    public func encoder() throws(ArborError) -> MeanPoolingEncoder {
        do { return try MeanPoolingEncoder(itemVectors: behaviourMatrix, ids: items, maxHistory: config.maxHistory) }
        catch let e as ArborError { throw e } catch { throw .invalidArgument(name: "encoder", reason: "\(error)") }
    }

    /// The product-DNN serving scorer (`u · n`).
    public func innerProductScorer() -> InnerProductScorer { InnerProductScorer(dimension: dimension) }

    private func inferenceMLP(_ mlp: MLP, name: String) throws(ArborError) -> InferenceMLP {
        var layers: [DenseLayer] = []
        for (i, layer) in mlp.layers.enumerated() {
            let act: InferenceActivation = i < mlp.slopes.count ? .prelu(slopes: mlp.slopes[i].value) : .identity
            do {
                layers.append(try DenseLayer(weight: layer.weight.matrix, bias: layer.bias!.value, activation: act, name: "\(name).\(i)"))
            } catch let e as ArborError { throw e } catch { throw .invalidArgument(name: name, reason: "\(error)") }
        }
        do { return try InferenceMLP(layers: layers) } catch let e as ArborError { throw e } catch {
            throw .invalidArgument(name: name, reason: "\(error)")
        }
    }

    /// The DNN serving scorer with the current weights.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` if the model is not a DNN model.
    public func dnnScorer() throws(ArborError) -> DNNScorer {
        guard let dnn else { throw .invalidArgument(name: "scorer", reason: "the model is '\(config.kind.rawValue)', not 'dnn'") }
        do { return try DNNScorer(dimension: dimension, mlp: inferenceMLP(dnn, name: "dnn")) }
        catch let e as ArborError { throw e } catch { throw .invalidArgument(name: "dnn", reason: "\(error)") }
    }

    /// The attention serving scorer with the current weights.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` if the model is not an attention model.
    public func attentionScorer(unknownItems: UnknownItemPolicy = .ignore) throws(ArborError) -> AttentionScorer {
        guard let attentionUnit, let output else {
            throw .invalidArgument(name: "scorer", reason: "the model is '\(config.kind.rawValue)', not 'attention'")
        }
        do {
            return try AttentionScorer(dimension: dimension, behaviourEmbeddings: behaviourMatrix, behaviourIDs: items,
                                       attention: inferenceMLP(attentionUnit, name: "attention"),
                                       output: inferenceMLP(output, name: "output"), maxHistory: config.maxHistory,
                                       unknownItems: unknownItems, positions: positions?.matrix)
        } catch let e as ArborError { throw e } catch { throw .invalidArgument(name: "attention", reason: "\(error)") }
    }

    /// The serving model (scorer and encoder) with the current weights.
    public func servingModel(unknownItems: UnknownItemPolicy = .ignore) throws(ArborError) -> TDMServingModel {
        switch config.kind {
        case .innerProduct: return .innerProduct(innerProductScorer(), try encoder())
        case .dnn: return .dnn(try dnnScorer(), try encoder())
        case .attention: return .attention(try attentionScorer(unknownItems: unknownItems))
        }
    }

    /// The serving weights as named tensors for the index (scorer weights, `behaviour.embeddings`,
    /// `encoder.maxHistory`); behaviour ids go in the extra value `behaviour.ids`.
    public func servingTensors() throws(ArborError) -> [ArborTree.NamedTensor] {
        let common: [ArborTree.NamedTensor] = [
            .init(name: TDMTensorNames.behaviourEmbeddings, shape: [items.count, dimension], values: behaviour.table.value),
            .init(name: TDMTensorNames.maxHistory, shape: [1], values: [Float(config.maxHistory)]),
        ]
        switch config.kind {
        case .innerProduct: return common
        case .dnn: return try dnnScorer().namedTensors() + common
        case .attention: return try attentionScorer().namedTensors()
        }
    }

    /// Writes the trained tree (node embeddings from training), the serving weights and the scorer
    /// kind into an index file (replacing it atomically).
    /// - Parameters:
    ///   - provenance: how the model was trained, stored as the extra value
    ///     ``TrainingProvenance/extraName`` (JSON) for `arbor inspect`; `nil` stores none.
    /// - Throws: ``TDMError/invalid(_:)`` for invalid weights or a provenance that breaks its
    ///   invariants (``TrainingProvenance/validate()``), ``TDMError/index(_:)`` for file errors.
    @discardableResult
    public func writeIndex(to path: String, writer: IndexWriter = .init(),
                           provenance: TrainingProvenance? = nil) throws(TDMError) -> IndexHeader {
        do {
            var extra = [TDMTensorNames.behaviourIDs: encodeIDs(items)]
            if let provenance { extra[TrainingProvenance.extraName] = try provenance.encoded() }
            return try writer.write(layout: layout(), tensors: servingTensors(), scorerKind: config.kind.rawValue,
                                    encoderKind: config.kind == .attention ? "history" : "mean-pooling",
                                    extra: extra, to: path)
        } catch let e as ArborError { throw .invalid(e) } catch let e as IndexError { throw .index(e) } catch {
            throw .invalid(.invalidArgument(name: "index write", reason: "\(error)"))
        }
    }
}
