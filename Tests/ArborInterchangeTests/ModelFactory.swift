import ArborCore
import ArborInference
import ArborMath
import ArborTree
import Foundation

/// Random models of every served kind, written into small indexes, for the exchange tests.
enum ModelKind: String, CaseIterable {
    case dnn, attention, twoTower = "two-tower", mind, sdm
}

struct RandomValues {
    var rng: SplitMix64
    init(seed: UInt64) { rng = SplitMix64(seed: seed) }
    mutating func next(_ n: Int, scale: Float = 0.5) -> [Float] { (0 ..< n).map { _ in (rng.nextUnitFloat() * 2 - 1) * scale } }
    mutating func matrix(_ rows: Int, _ cols: Int, scale: Float = 0.5) -> Matrix {
        try! Matrix(rows: rows, cols: cols, values: next(rows * cols, scale: scale))
    }
}

struct ModelPayload {
    var tensors: [NamedTensor]
    var extra: [String: [UInt8]]
    var nodeScorer: NodeScorerKind
    var producer: QueryProducerKind
}

enum ModelFactory {
    static let d = 8
    static let itemCount = 60
    static let ids: [ItemID] = (0 ..< itemCount).map { ItemID(UInt64(1000 + 3 * $0)) }

    /// A PReLU layer stack `widths` with random weights, biases and slopes.
    static func mlp(_ widths: [Int], prelu: Bool, _ r: inout RandomValues, lastPReLU: Bool = false) -> InferenceMLP {
        var layers: [DenseLayer] = []
        for i in 0 ..< widths.count - 1 {
            let isLast = i == widths.count - 2
            let act: InferenceActivation = isLast ? (lastPReLU ? .prelu(slopes: r.next(widths[i + 1])) : .identity)
                : (prelu ? .prelu(slopes: r.next(widths[i + 1])) : .relu)
            layers.append(try! DenseLayer(weight: r.matrix(widths[i], widths[i + 1]), bias: r.next(widths[i + 1]), activation: act))
        }
        return try! InferenceMLP(layers: layers)
    }

    static func make(_ kind: ModelKind, seed: UInt64 = 1) -> ModelPayload {
        var r = RandomValues(seed: seed)
        let d = d, n = itemCount
        switch kind {
        case .dnn:
            let scorer = try! DNNScorer(dimension: d, mlp: mlp([3 * d, 16, 8, 1], prelu: true, &r))
            let pooling: [NamedTensor] = [
                .init(name: ModelTensorNames.behaviourEmbeddings, shape: [n, d], values: r.next(n * d)),
                .init(name: ModelTensorNames.maxHistory, shape: [1], values: [5]),
            ]
            return .init(tensors: scorer.namedTensors() + pooling, extra: [ModelTensorNames.behaviourIDs: ModelTensorNames.encode(ids: ids)],
                         nodeScorer: .dnn, producer: .behaviourMeanPooling)
        case .attention:
            let scorer = try! AttentionScorer(dimension: d, behaviourEmbeddings: r.matrix(n, d), behaviourIDs: ids,
                                              attention: mlp([3 * d, 12, 1], prelu: true, &r), output: mlp([3 * d, 16, 1], prelu: true, &r),
                                              maxHistory: 6, positions: r.matrix(6, d, scale: 0.2))
            return .init(tensors: scorer.namedTensors(), extra: [ModelTensorNames.behaviourIDs: ModelTensorNames.encode(ids: ids)],
                         nodeScorer: .attention, producer: .rawHistory)
        case .twoTower:
            let layers = [(weight: r.next(d * 16), bias: r.next(16)), (weight: r.next(16 * d), bias: r.next(d))]
            let encoder = try! TwoTowerEncoder(ids: ids, behaviours: r.next(n * d), layers: layers, dimension: d, maxHistory: 5,
                                               cosine: true, temperature: 0.1, fallback: r.next(d))
            let p = encoder.indexPayload()
            return .init(tensors: p.tensors, extra: p.extra, nodeScorer: .innerProduct, producer: .twoTower)
        case .mind:
            let encoder = try! MINDEncoder(ids: ids, behaviours: r.matrix(n, d), bilinear: r.matrix(d, d), routingLogits: r.next(7 * 3, scale: 1),
                                           mlp: mlp([d, 16, d], prelu: false, &r), maxInterests: 3, maxHistory: 7, iterations: 3,
                                           cosine: true, power: 1, fallback: r.next(d))
            let p = encoder.indexPayload()
            return .init(tensors: p.tensors, extra: p.extra, nodeScorer: .innerProduct, producer: .mind)
        case .sdm:
            let c = 4, layers = 2
            var t: [NamedTensor] = [
                // heads, maxSession, maxLong, maxGap, maxActions, lstm layers, fusion (gated), cosine, temperature
                .init(name: "sdm.options", shape: [9], values: [2, 5, 6, 600, 50, Float(layers), 0, 1, 0.1]),
                .init(name: "sdm.item.table", shape: [n, d], values: r.next(n * d)),
                .init(name: "sdm.category.table", shape: [c, d], values: r.next(c * d)),
                .init(name: "sdm.item.category", shape: [n], values: (0 ..< n).map { Float($0 % 5 == 4 ? -1 : $0 % c) }),
                .init(name: "sdm.attention.o.bias", shape: [d], values: r.next(d)),
                .init(name: "sdm.user.weight", shape: [d, d], values: r.next(d * d)),
                .init(name: "sdm.user.bias", shape: [d], values: r.next(d)),
                .init(name: "sdm.long.weight", shape: [2 * d, d], values: r.next(2 * d * d)),
                .init(name: "sdm.long.bias", shape: [d], values: r.next(d)),
                .init(name: "sdm.gate.weight", shape: [3 * d, d], values: r.next(3 * d * d)),
                .init(name: "sdm.gate.bias", shape: [d], values: r.next(d)),
                .init(name: "sdm.fallback", shape: [d], values: r.next(d)),
            ]
            for p in ["q", "k", "v", "o"] { t.append(.init(name: "sdm.attention.\(p).weight", shape: [d, d], values: r.next(d * d))) }
            for l in 0 ..< layers {
                t.append(.init(name: "sdm.lstm.\(l).wx", shape: [d, 4 * d], values: r.next(4 * d * d)))
                t.append(.init(name: "sdm.lstm.\(l).wh", shape: [d, 4 * d], values: r.next(4 * d * d)))
                t.append(.init(name: "sdm.lstm.\(l).bias", shape: [4 * d], values: r.next(4 * d)))
            }
            let encoder = try! SDMEncoder(tensors: t, ids: ids)
            return .init(tensors: encoder.namedTensors(), extra: [SDMEncoder.itemIDsExtraName: encoder.itemIDBytes],
                         nodeScorer: .innerProduct, producer: .sdm)
        }
    }

    /// A balanced tree over random vectors for ``ids`` (`seed` picks the vectors).
    static func tree(seed: UInt64) -> TreeLayout {
        var r = RandomValues(seed: seed)
        return try! TreeBuilder.balancedKMeans(embeddings: r.matrix(itemCount, d, scale: 1), items: ids, options: .init(fanOut: 4, seed: 1))
    }

    /// Writes `kind`'s model over `tree` to a new temporary index.
    static func writeIndex(_ kind: ModelKind, tree: TreeLayout, seed: UInt64 = 1) throws -> String {
        let p = make(kind, seed: seed)
        let path = temporaryPath("\(kind.rawValue).arbor")
        try IndexWriter().write(layout: tree, tensors: p.tensors, nodeScorer: p.nodeScorer, queryProducer: p.producer,
                                extra: p.extra, to: path)
        return path
    }

    /// Writes a model-less vector index over `tree`.
    static func writeVectorIndex(tree: TreeLayout) throws -> String {
        let path = temporaryPath("vectors.arbor")
        try IndexWriter().write(layout: tree, to: path)
        return path
    }
}

func temporaryPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("arbor-exchange-\(getpid())-\(UInt64.random(in: 0 ... .max))-\(name)").path
}

func removeFile(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
    try? FileManager.default.removeItem(atPath: path + "-lock")
}
