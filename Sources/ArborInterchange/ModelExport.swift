import ArborCore
import ArborInference
import ArborTree

/// Exports the model an index serves as a safetensors file and its ``ModelSpec``.
///
/// The file holds every named tensor of the index under its own name (F32), the item-id lists of
/// the model (``ModelFileNames/idLists``, I64) and, unless `includeTree` is false, the tree
/// (``ModelFileNames``: node embeddings per level, child offsets, leaf items and categories). The
/// spec is checked against the file before it is returned, so an export always imports.
public enum ModelExport {
    /// The model of the index at `path` as a file and its spec (the spec's JSON is also in the
    /// file's metadata under ``ModelSpec/metadataKey``). O(index size) with the tree.
    /// - Throws: ``ModelExchangeError/index(_:)`` for read errors, ``ModelExchangeError/model(_:)``
    ///   when the index's model does not load, other cases when its tensors break the spec.
    public static func export(indexAt path: String, includeTree: Bool = true) throws(ModelExchangeError) -> (file: SafeTensorsFile, spec: ModelSpec) {
        let reader: IndexReader
        do { reader = try IndexReader(path: path) } catch { throw .index(error) }
        // The model must load: an index whose weights do not form its model is not exported.
        do { _ = try ServingModel.load(from: reader) } catch { throw .model(error) }
        var named: [String: NamedTensor] = [:]
        var order: [String] = []
        do {
            for name in reader.tensorNames {
                named[name] = try reader.tensor(named: name)
                order.append(name)
            }
        } catch { throw .index(error) }
        let readsHistoryTensor = reader.nodeScorer == .attention || reader.queryProducer == .behaviourMeanPooling
        if readsHistoryTensor, named[ModelTensorNames.maxHistory] == nil {
            // Older indexes: the loaders' default (50), made explicit.
            named[ModelTensorNames.maxHistory] = NamedTensor(name: ModelTensorNames.maxHistory, shape: [1], values: [50])
            order.append(ModelTensorNames.maxHistory)
        }
        var tensors = order.map { SafeTensor.float32($0, shape: named[$0]!.shape, values: named[$0]!.values) }
        for name in ModelFileNames.idLists where reader.extraNames.contains(name) {
            let bytes: [UInt8]?
            do { bytes = try reader.extra(named: name) } catch { throw .index(error) }
            guard let bytes, bytes.count % 8 == 0 else { throw .badValues(name: name, reason: "extra value is not a list of UInt64") }
            let ids = stride(from: 0, to: bytes.count, by: 8).map { Int64(bitPattern: SafeTensor.load64(bytes, $0)) }
            tensors.append(.int64(name, shape: [ids.count], values: ids))
        }
        var spec = try describe(reader: reader, named: named)
        if includeTree {
            let layout: TreeLayout
            do { layout = try reader.loadLayout() } catch { throw .index(error) }
            spec.tree = .init(fanOut: layout.fanOut, levels: layout.levelNodeCounts, categories: !layout.leafCategories.isEmpty)
            for (l, level) in layout.levels.enumerated() {
                tensors.append(.float32(ModelFileNames.levelEmbeddings(l), shape: [level.nodeCount, layout.dimension],
                                        values: level.embeddings.values))
                if l < layout.depth {
                    tensors.append(.int64(ModelFileNames.levelOffsets(l), shape: [level.childOffsets.count],
                                          values: level.childOffsets.map(Int64.init)))
                }
            }
            tensors.append(.int64(ModelFileNames.leafItems, shape: [layout.itemCount],
                                  values: layout.leafItems.map { Int64(bitPattern: $0.rawValue) }))
            if !layout.leafCategories.isEmpty {
                tensors.append(.int64(ModelFileNames.leafCategories, shape: [layout.itemCount],
                                      values: layout.leafCategories.map(Int64.init)))
            }
        }
        let specJSON = String(decoding: spec.encoded(), as: UTF8.self)
        let file = SafeTensorsFile(tensors: tensors, metadata: [ModelSpec.metadataKey: specJSON, "format": "pt"])
        _ = try ModelFileCheck.check(file, against: spec)
        return (file, spec)
    }

    /// The spec of the model stored in `reader` (without the tree).
    static func describe(reader: IndexReader, named: [String: NamedTensor]) throws(ModelExchangeError) -> ModelSpec {
        var spec = ModelSpec(nodeScorer: reader.nodeScorer, queryProducer: reader.queryProducer, dimension: reader.dimension)
        func mlp(_ prefix: String, lastDefault: String, hiddenDefault: String = "relu") {
            var widths: [Int] = [], activations: [String] = []
            var i = 0
            while let w = named["\(prefix).\(i).weight"], w.shape.count == 2 {
                if widths.isEmpty { widths.append(w.shape[0]) }
                widths.append(w.shape[1])
                let isLast = named["\(prefix).\(i + 1).weight"] == nil
                activations.append(named["\(prefix).\(i).prelu"] != nil ? "prelu" : (isLast ? lastDefault : hiddenDefault))
                i += 1
            }
            spec.mlps[prefix] = .init(widths: widths, activations: activations)
        }
        func first(_ name: String, at i: Int = 0) -> Int? {
            named[name].flatMap { $0.values.count > i ? Int(exactly: $0.values[i].rounded()) : nil }
        }
        switch reader.nodeScorer {
        case .innerProduct: break
        case .dnn: mlp("dnn", lastDefault: "identity")
        case .attention:
            mlp("attention", lastDefault: "identity")
            mlp("output", lastDefault: "identity")
            spec.items = named[ModelTensorNames.behaviourEmbeddings]?.shape.first
            spec.maxHistory = first(ModelTensorNames.maxHistory)
            spec.positions = named[ModelTensorNames.positions]?.shape.first
        }
        if let e = named[ModelTensorNames.hierarchyEmbeddings], let r = named[ModelTensorNames.hierarchyRows],
           e.shape.count == 2, r.shape.count == 2 {
            spec.hierarchy = .init(nodes: e.shape[0], levels: r.shape[0])
        }
        switch reader.queryProducer {
        case .leafMeanPooling, .rawHistory: break
        case .behaviourMeanPooling:
            spec.items = named[ModelTensorNames.behaviourEmbeddings]?.shape.first
            spec.maxHistory = first(ModelTensorNames.maxHistory)
        case .twoTower:
            mlp("two-tower.mlp", lastDefault: "identity")
            spec.items = named["two-tower.behaviour"]?.shape.first
            spec.maxHistory = first("two-tower.options")
        case .mind:
            mlp("mind.mlp", lastDefault: "identity")
            spec.items = named["mind.behaviour"]?.shape.first
            spec.maxHistory = first("mind.options")
            spec.interests = first("mind.options", at: 1)
        case .sdm:
            spec.items = named["sdm.item.table"]?.shape.first
            spec.maxHistory = first("sdm.options", at: 1)
            let fusion = first("sdm.options", at: 6).flatMap(SDMFusion.init(rawValue:))?.name ?? "?"
            spec.sdm = .init(lstmLayers: first("sdm.options", at: 5) ?? 0,
                             categories: named["sdm.category.table"]?.shape.first ?? 0, fusion: fusion)
        }
        return spec
    }
}

/// Checks a file against a spec and converts its tensors (shared by export's self-check and import).
enum ModelFileCheck {
    /// The file's tensors converted: floats as named tensors, integer tensors as `Int64`s.
    struct Converted {
        var floats: [NamedTensor] = []
        var integers: [String: [Int64]] = [:]
    }

    /// Every tensor the spec needs is present with its shape and a usable dtype, nothing else is
    /// there, floats are finite. Errors name the first tensor at fault, in the spec's order.
    static func check(_ file: SafeTensorsFile, against spec: ModelSpec) throws(ModelExchangeError) -> Converted {
        let expected = try spec.expectedTensors()
        var byName: [String: SafeTensor] = [:]
        for t in file.tensors { byName[t.name] = t }
        var out = Converted()
        var seen = Set<String>()
        for e in expected where seen.insert(e.name).inserted {
            guard let t = byName[e.name] else { throw .missingTensor(name: e.name, expectedShape: e.shape) }
            switch e.kind {
            case .float:
                guard t.dtype.isFloat32Compatible else { throw .wrongDType(name: t.name, expected: "F32, F16 or BF16", found: t.dtype.rawValue) }
            case .integer:
                guard [.i64, .u64, .i32].contains(t.dtype) else {
                    throw .wrongDType(name: t.name, expected: "I64 (or U64, I32)", found: t.dtype.rawValue)
                }
            }
            guard t.shape == e.shape else { throw .wrongShape(name: t.name, expected: e.shape, found: t.shape) }
            switch e.kind {
            case .float:
                let values: [Float]
                do { values = try t.floats() } catch { throw .file(error) }
                if let bad = values.firstIndex(where: { !$0.isFinite }) {
                    throw .badValues(name: t.name, reason: "value \(bad) is not finite")
                }
                out.floats.append(NamedTensor(name: t.name, shape: t.shape, values: values))
            case .integer:
                do { out.integers[t.name] = try t.int64s() } catch { throw .file(error) }
            }
        }
        for t in file.tensors.sorted(by: { $0.name < $1.name }) where !seen.contains(t.name) {
            throw .unexpectedTensor(name: t.name)
        }
        return out
    }
}
