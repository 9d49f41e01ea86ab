import ArborInference
import ArborTree
import Foundation

/// What a model file holds: the kinds an index serves them with, the widths and activations of
/// every MLP, the history length and the sizes that fix every tensor's shape. `arbor export` writes
/// it (in the safetensors metadata under ``metadataKey`` and as a JSON sidecar); `arbor import`
/// checks a weights file against it, tensor by tensor (``expectedTensors()``).
///
/// JSON keys: `format` (``format``), `nodeScorer`, `queryProducer` (the kinds' raw values),
/// `dimension`, `maxHistory`, `items`, `mlps` (`{prefix: {widths, activations}}`), and as the kinds
/// need them `positions`, `interests`, `sdm`, `tree`. Tensor names: docs/MODEL-FILES.md.
public struct ModelSpec: Codable, Sendable, Equatable {
    /// The value of ``format``.
    public static let currentFormat = "arbor-model-1"
    /// The safetensors metadata key holding the spec's JSON.
    public static let metadataKey = "arbor.spec"

    /// One MLP: `widths[0]` inputs, then each layer's outputs; one activation per layer
    /// (`"relu"`, `"prelu"` with a `<prefix>.<i>.prelu` slope tensor, or `"identity"`).
    public struct MLP: Codable, Sendable, Equatable {
        /// Inputs, then each layer's outputs.
        public var widths: [Int]
        /// One per layer: `relu`, `prelu` or `identity`.
        public var activations: [String]
        public init(widths: [Int], activations: [String]) {
            self.widths = widths
            self.activations = activations
        }
    }

    /// SDM's sizes: LSTM layers, category count (0: none), fusion (`gated`, `short-only`, `long-only`).
    public struct SDM: Codable, Sendable, Equatable {
        public var lstmLayers: Int
        public var categories: Int
        public var fusion: String
        public init(lstmLayers: Int, categories: Int, fusion: String) {
            self.lstmLayers = lstmLayers
            self.categories = categories
            self.fusion = fusion
        }
    }

    /// The tree carried in the file: fan-out, node count per level (root first), whether leaves
    /// carry categories.
    public struct Tree: Codable, Sendable, Equatable {
        public var fanOut: Int
        public var levels: [Int]
        public var categories: Bool
        public init(fanOut: Int, levels: [Int], categories: Bool) {
            self.fanOut = fanOut
            self.levels = levels
            self.categories = categories
        }
    }

    /// One tensor the file must hold.
    public struct TensorShape: Sendable, Equatable {
        /// `float`: F32, F16 or BF16 (converted to Float32); `integer`: I64 (item ids, offsets).
        public enum Kind: Sendable, Equatable { case float, integer }
        /// The tensor's name in the file.
        public var name: String
        /// Its exact shape.
        public var shape: [Int]
        /// Which dtypes it may have.
        public var kind: Kind
    }

    /// ``currentFormat``.
    public var format: String = ModelSpec.currentFormat
    /// The node scorer the index serves the model with.
    public var nodeScorer: NodeScorerKind
    /// The query producer (``QueryProducerKind/rawHistory`` exactly when the scorer is attention).
    public var queryProducer: QueryProducerKind
    /// Width of node embeddings and query vectors.
    public var dimension: Int
    /// Most recent behaviours read (SDM: of the latest session); `nil` for kinds without a history.
    public var maxHistory: Int?
    /// Rows of the behaviour/item table (and length of its id list); `nil` when no model has one.
    public var items: Int?
    /// The MLPs by tensor prefix (`dnn`, `attention`, `output`, `two-tower.mlp`, `mind.mlp`).
    public var mlps: [String: MLP]
    /// Attention: rows of the recency embedding `attention.positions`, or `nil` without one.
    public var positions: Int?
    /// MIND: the most interests `K`.
    public var interests: Int?
    /// SDM's sizes.
    public var sdm: SDM?
    /// The tree, when the file carries one (`tree.*` tensors).
    public var tree: Tree?
    /// JTM's hierarchical user features of a DNN or attention scorer, when it has them.
    public var hierarchy: Hierarchy?

    /// Sizes of JTM's hierarchical user features (``ArborInference/BehaviourHierarchy``): tensors
    /// `hierarchy.embeddings` `[nodes, dimension]` and `hierarchy.rows` `[levels, items]` (for each
    /// level, the hierarchy row of each behaviour row, or -1, as floats).
    public struct Hierarchy: Codable, Sendable, Equatable {
        /// Inner nodes with an embedding (rows of `hierarchy.embeddings`).
        public var nodes: Int
        /// Levels with a lookup (rows of `hierarchy.rows`).
        public var levels: Int

        public init(nodes: Int, levels: Int) {
            self.nodes = nodes
            self.levels = levels
        }
    }

    public init(nodeScorer: NodeScorerKind, queryProducer: QueryProducerKind, dimension: Int, maxHistory: Int? = nil,
                items: Int? = nil, mlps: [String: MLP] = [:], positions: Int? = nil, interests: Int? = nil,
                sdm: SDM? = nil, tree: Tree? = nil, hierarchy: Hierarchy? = nil) {
        self.nodeScorer = nodeScorer
        self.queryProducer = queryProducer
        self.dimension = dimension
        self.maxHistory = maxHistory
        self.items = items
        self.mlps = mlps
        self.positions = positions
        self.interests = interests
        self.sdm = sdm
        self.tree = tree
        self.hierarchy = hierarchy
    }

    /// The spec's JSON (keys sorted, pretty-printed).
    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return (try? encoder.encode(self)) ?? Data()
    }

    /// A spec from JSON; `source` names it in errors.
    /// - Throws: ``ModelExchangeError/badSpec(field:reason:)`` for JSON that is not a spec or
    ///   unknown kinds.
    public static func decode(_ data: Data, source: String) throws(ModelExchangeError) -> ModelSpec {
        do { return try JSONDecoder().decode(ModelSpec.self, from: data) } catch let DecodingError.dataCorrupted(c) {
            throw .badSpec(field: Self.path(c.codingPath), reason: "\(source): \(c.debugDescription)")
        } catch let DecodingError.keyNotFound(key, c) {
            throw .badSpec(field: Self.path(c.codingPath + [key]), reason: "\(source): missing")
        } catch let DecodingError.typeMismatch(_, c) {
            throw .badSpec(field: Self.path(c.codingPath), reason: "\(source): \(c.debugDescription)")
        } catch let DecodingError.valueNotFound(_, c) {
            throw .badSpec(field: Self.path(c.codingPath), reason: "\(source): null")
        } catch {
            throw .badSpec(field: "(file)", reason: "\(source): \(error)")
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.isEmpty ? "(top level)" : keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }

    /// Every tensor a file of this spec holds, with its shape, in a fixed order. Checks the spec's
    /// sizes first (before any arithmetic on them).
    /// - Throws: ``ModelExchangeError/badSpec(field:reason:)`` naming the field: an unknown format,
    ///   a size out of range, an MLP missing or of the wrong widths or activations for its kind, a
    ///   kind pair that cannot serve (attention needs the raw history and the other way round).
    public func expectedTensors() throws(ModelExchangeError) -> [TensorShape] {
        guard format == Self.currentFormat else { throw .badSpec(field: "format", reason: "'\(format)', expected '\(Self.currentFormat)'") }
        let limit = 1 << 31
        func size(_ field: String, _ value: Int?, min: Int = 1) throws(ModelExchangeError) -> Int {
            guard let value else { throw .badSpec(field: field, reason: "missing (needed by \(nodeScorer.rawValue)/\(queryProducer.rawValue))") }
            guard value >= min, value < limit else { throw .badSpec(field: field, reason: "\(value) is not in \(min) ..< 2^31") }
            return value
        }
        let d = try size("dimension", dimension)
        guard (nodeScorer == .attention) == (queryProducer == .rawHistory) else {
            throw .badSpec(field: "queryProducer", reason: "'\(queryProducer.rawValue)' cannot feed node scorer '\(nodeScorer.rawValue)'")
        }
        var out: [TensorShape] = []
        func float(_ name: String, _ shape: [Int]) { out.append(.init(name: name, shape: shape, kind: .float)) }
        func ids(_ name: String, _ n: Int) { out.append(.init(name: name, shape: [n], kind: .integer)) }
        /// The tensors of MLP `prefix` (`first` inputs, `last` outputs); `hidden` and `final`: the
        /// activations allowed for hidden layers and for the last layer.
        func mlp(_ prefix: String, first: Int, last: Int, layers: Int? = nil, hidden: Set<String>, final: Set<String>) throws(ModelExchangeError) {
            guard let m = mlps[prefix] else { throw .badSpec(field: "mlps.\(prefix)", reason: "missing") }
            guard m.widths.count >= 2, m.widths.count <= 64, m.widths.allSatisfy({ $0 >= 1 && $0 < limit }) else {
                throw .badSpec(field: "mlps.\(prefix).widths", reason: "\(m.widths): need 2 to 64 widths, each >= 1")
            }
            guard m.widths.first == first, m.widths.last == last else {
                throw .badSpec(field: "mlps.\(prefix).widths", reason: "\(m.widths) must go from \(first) to \(last)")
            }
            if let layers, m.widths.count - 1 != layers {
                throw .badSpec(field: "mlps.\(prefix).widths", reason: "\(m.widths) must have \(layers) layers")
            }
            guard m.activations.count == m.widths.count - 1 else {
                throw .badSpec(field: "mlps.\(prefix).activations", reason: "\(m.activations.count) activations for \(m.widths.count - 1) layers")
            }
            for (i, a) in m.activations.enumerated() {
                let isLast = i == m.activations.count - 1
                let allowed = isLast ? final : hidden
                guard allowed.contains(a) else {
                    throw .badSpec(field: "mlps.\(prefix).activations.\(i)",
                                   reason: "'\(a)' for a \(isLast ? "last" : "hidden") layer; allowed: \(allowed.sorted().joined(separator: ", "))")
                }
                float("\(prefix).\(i).weight", [m.widths[i], m.widths[i + 1]])
                float("\(prefix).\(i).bias", [m.widths[i + 1]])
                if a == "prelu" { float("\(prefix).\(i).prelu", [m.widths[i + 1]]) }
            }
        }
        let tdmHidden: Set<String> = ["relu", "prelu"], tdmLast: Set<String> = ["identity", "prelu"]
        var known: Set<String> = []
        switch nodeScorer {
        case .innerProduct: break
        case .dnn:
            try mlp("dnn", first: 3 * d, last: 1, hidden: tdmHidden, final: tdmLast)
            known.insert("dnn")
        case .attention:
            try mlp("attention", first: 3 * d, last: 1, layers: 2, hidden: tdmHidden, final: tdmLast)
            try mlp("output", first: 3 * d, last: 1, hidden: tdmHidden, final: tdmLast)
            known.formUnion(["attention", "output"])
            let n = try size("items", items), h = try size("maxHistory", maxHistory)
            float(ModelTensorNames.behaviourEmbeddings, [n, d])
            float(ModelTensorNames.maxHistory, [1])
            if positions != nil {
                let p = try size("positions", positions, min: h)
                float(ModelTensorNames.positions, [p, d])
            }
            ids(ModelTensorNames.behaviourIDs, n)
        }
        switch queryProducer {
        case .leafMeanPooling, .rawHistory: break
        case .behaviourMeanPooling:
            let n = try size("items", items)
            _ = try size("maxHistory", maxHistory)
            float(ModelTensorNames.behaviourEmbeddings, [n, d])
            float(ModelTensorNames.maxHistory, [1])
            ids(ModelTensorNames.behaviourIDs, n)
        case .twoTower:
            let n = try size("items", items)
            _ = try size("maxHistory", maxHistory)
            float("two-tower.behaviour", [n, d])
            try mlp("two-tower.mlp", first: d, last: d, hidden: ["relu"], final: ["identity"])
            known.insert("two-tower.mlp")
            float("two-tower.options", [3])
            float("two-tower.fallback", [d])
            ids("two-tower.item-ids", n)
        case .mind:
            let n = try size("items", items), h = try size("maxHistory", maxHistory), k = try size("interests", interests)
            float("mind.behaviour", [n, d])
            float("mind.bilinear", [d, d])
            float("mind.routing", [h, k])
            try mlp("mind.mlp", first: d, last: d, hidden: tdmHidden, final: tdmLast)
            known.insert("mind.mlp")
            float("mind.options", [5])
            float("mind.fallback", [d])
            ids("mind.item-ids", n)
        case .sdm:
            let n = try size("items", items)
            _ = try size("maxHistory", maxHistory)
            guard let sdm else { throw .badSpec(field: "sdm", reason: "missing (needed by the sdm producer)") }
            let layers = try size("sdm.lstmLayers", sdm.lstmLayers)
            let c = try size("sdm.categories", sdm.categories, min: 0)
            guard ["gated", "short-only", "long-only"].contains(sdm.fusion) else {
                throw .badSpec(field: "sdm.fusion", reason: "'\(sdm.fusion)', expected gated, short-only or long-only")
            }
            float("sdm.options", [9])
            float("sdm.item.table", [n, d])
            if c > 0 {
                float("sdm.category.table", [c, d])
                float("sdm.item.category", [n])
            }
            for l in 0 ..< layers {
                float("sdm.lstm.\(l).wx", [d, 4 * d])
                float("sdm.lstm.\(l).wh", [d, 4 * d])
                float("sdm.lstm.\(l).bias", [4 * d])
            }
            for p in ["q", "k", "v", "o"] { float("sdm.attention.\(p).weight", [d, d]) }
            float("sdm.attention.o.bias", [d])
            float("sdm.user.weight", [d, d])
            float("sdm.user.bias", [d])
            if sdm.fusion != "short-only" {
                float("sdm.long.weight", [(c > 0 ? 2 : 1) * d, d])
                float("sdm.long.bias", [d])
            }
            if sdm.fusion == "gated" {
                float("sdm.gate.weight", [3 * d, d])
                float("sdm.gate.bias", [d])
            }
            float("sdm.fallback", [d])
            ids("sdm.item-ids", n)
        }
        for name in mlps.keys.sorted() where !known.contains(name) {
            throw .badSpec(field: "mlps.\(name)", reason: "not an MLP of \(nodeScorer.rawValue)/\(queryProducer.rawValue)")
        }
        if let hierarchy {
            guard nodeScorer == .attention || (nodeScorer == .dnn && queryProducer == .behaviourMeanPooling) else {
                throw .badSpec(field: "hierarchy", reason: "read by an attention scorer, or a dnn scorer over behaviour-mean-pooling "
                               + "(its behaviour table), not \(nodeScorer.rawValue)/\(queryProducer.rawValue)")
            }
            let n = try size("items", items)
            let nodes = try size("hierarchy.nodes", hierarchy.nodes)
            let levels = try size("hierarchy.levels", hierarchy.levels, min: 0)
            guard levels <= 64 else { throw .badSpec(field: "hierarchy.levels", reason: "\(levels) is more than 64") }
            float(ModelTensorNames.hierarchyEmbeddings, [nodes, d])
            float(ModelTensorNames.hierarchyRows, [levels, n])
        }
        if let tree {
            guard (2 ... 64).contains(tree.fanOut) else { throw .badSpec(field: "tree.fanOut", reason: "\(tree.fanOut) is not in 2 ... 64") }
            guard tree.levels.count >= 1, tree.levels.count <= 64, tree.levels.first == 1,
                  tree.levels.allSatisfy({ $0 >= 1 && $0 < limit }) else {
                throw .badSpec(field: "tree.levels", reason: "\(tree.levels): need 1 to 64 levels, the root level of 1 node")
            }
            for (l, count) in tree.levels.enumerated() {
                float(ModelFileNames.levelEmbeddings(l), [count, d])
                if l + 1 < tree.levels.count { ids(ModelFileNames.levelOffsets(l), count + 1) }
            }
            ids(ModelFileNames.leafItems, tree.levels.last!)
            if tree.categories { ids(ModelFileNames.leafCategories, tree.levels.last!) }
        }
        return out
    }
}
