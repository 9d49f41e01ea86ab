import ArborCore
import ArborInference
import ArborMath
import ArborStore
import ArborTree

/// Imports a model trained elsewhere (a safetensors file and its ``ModelSpec``) into an index.
///
/// The file is checked against the spec first (``ModelSpec/expectedTensors()``: every tensor
/// present, of its shape and a usable dtype, nothing else, finite values); the tree comes from the
/// file when the spec has one, else from the existing index at the target path. The new index is
/// written beside the target, opened, its model loaded (``ServingModel/load(from:)``) and its
/// history length compared with the spec; only then is it renamed over the target. Any failure
/// leaves the target as it was.
///
/// What the new index keeps from the old one (model-only import): the tree and the extra values
/// that are not part of a model (an HNSW graph). Dropped: the old model's tensors, id lists and
/// training provenance. An import with a tree drops every old extra value (a graph over other
/// vectors would be stale).
public enum ModelImport {
    /// Writes `file`'s model into the index at `indexPath` (or, with `output`, into a new index
    /// there, leaving `indexPath` untouched).
    /// - Returns: the header written.
    /// - Throws: ``ModelExchangeError`` naming the tensor, spec field or file at fault; the target is
    ///   unchanged in every case. O(file size + index size).
    @discardableResult
    public static func importModel(_ file: SafeTensorsFile, spec: ModelSpec, into indexPath: String,
                                   output: String? = nil) throws(ModelExchangeError) -> IndexHeader {
        let converted = try ModelFileCheck.check(file, against: spec)
        let target = output ?? indexPath
        var extra: [String: [UInt8]] = [:]
        let layout: TreeLayout
        if let tree = spec.tree {
            layout = try treeLayout(tree, dimension: spec.dimension, converted)
        } else {
            let reader: IndexReader
            do { reader = try IndexReader(path: indexPath) } catch { throw .index(error) }
            guard reader.dimension == spec.dimension else {
                throw .indexMismatch(path: indexPath, reason: "the index is \(reader.dimension) wide, the spec's dimension is \(spec.dimension)")
            }
            do { layout = try reader.loadLayout() } catch { throw .index(error) }
            for name in reader.extraNames
            where !ModelFileNames.idLists.contains(name) && name != TrainingProvenance.extraName {
                do { extra[name] = try reader.extra(named: name) } catch { throw .index(error) }
            }
        }
        for name in ModelFileNames.idLists {
            guard let ids = converted.integers[name] else { continue }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(ids.count * 8)
            for id in ids { for j in 0 ..< 8 { bytes.append(UInt8(truncatingIfNeeded: UInt64(bitPattern: id) >> (8 * j))) } }
            extra[name] = bytes
        }
        let temporary = Environment.makeTemporaryPath(for: target)
        defer {
            try? StoreFiles.remove(temporary)
            try? StoreFiles.remove(StoreFiles.lockPath(for: temporary))
        }
        let header: IndexHeader
        do {
            header = try IndexWriter().write(layout: layout, tensors: converted.floats, nodeScorer: spec.nodeScorer,
                                             queryProducer: spec.queryProducer, extra: extra, to: temporary)
        } catch let e as ArborError { throw .invalid(e) } catch let e as IndexError { throw .index(e) } catch {
            throw .invalid(.invalidArgument(name: "index write", reason: "\(error)"))
        }
        try verify(temporary, spec: spec)
        do {
            try StoreFiles.rename(temporary, to: target)
        } catch { throw .io(path: target, reason: "cannot move the new index into place: \(error)") }
        try? StoreFiles.remove(StoreFiles.lockPath(for: target))
        StoreFiles.syncDirectory(containing: target)
        return header
    }

    /// The tree carried by the file (spec ``ModelSpec/Tree``), checked by ``TreeLayout/validate()``.
    static func treeLayout(_ tree: ModelSpec.Tree, dimension d: Int,
                           _ converted: ModelFileCheck.Converted) throws(ModelExchangeError) -> TreeLayout {
        let floats = Dictionary(converted.floats.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var levels: [TreeLevel] = []
        for (l, count) in tree.levels.enumerated() {
            let name = ModelFileNames.levelEmbeddings(l)
            guard let e = floats[name] else { throw .missingTensor(name: name, expectedShape: [count, d]) }
            var offsets: [Int32] = []
            if l + 1 < tree.levels.count {
                let offsetsName = ModelFileNames.levelOffsets(l)
                let raw = converted.integers[offsetsName] ?? []
                guard raw.allSatisfy({ $0 >= 0 && $0 <= Int64(tree.levels[l + 1]) }) else {
                    throw .badValues(name: offsetsName, reason: "offsets must lie in 0 ... \(tree.levels[l + 1])")
                }
                offsets = raw.map { Int32($0) }
            }
            do {
                levels.append(TreeLevel(embeddings: try Matrix(rows: count, cols: d, values: e.values), childOffsets: offsets))
            } catch { throw .invalid(error) }
        }
        let items = (converted.integers[ModelFileNames.leafItems] ?? []).map { ItemID(UInt64(bitPattern: $0)) }
        var categories: [UInt32] = []
        if tree.categories {
            let raw = converted.integers[ModelFileNames.leafCategories] ?? []
            guard raw.allSatisfy({ $0 >= 0 && $0 <= Int64(UInt32.max) }) else {
                throw .badValues(name: ModelFileNames.leafCategories, reason: "categories must lie in 0 ... 2^32 - 1")
            }
            categories = raw.map { UInt32($0) }
        }
        let layout = TreeLayout(dimension: d, fanOut: tree.fanOut, levels: levels, leafItems: items, leafCategories: categories)
        do { try layout.validate() } catch { throw .invalid(error) }
        return layout
    }

    /// Opens the written index and loads its model; the spec's history length must be the model's.
    static func verify(_ path: String, spec: ModelSpec) throws(ModelExchangeError) {
        let reader: IndexReader
        do { reader = try IndexReader(path: path) } catch { throw .index(error) }
        let model: ServingModel
        do { model = try ServingModel.load(from: reader) } catch { throw .model(error) }
        let loaded: (Int, String)?
        if case .attention(let a) = model.scorer {
            loaded = (a.maxHistory, ModelTensorNames.maxHistory)
        } else if let p = model.producer as? MeanPoolingEncoder {
            loaded = (p.maxHistory, ModelTensorNames.maxHistory)
        } else if let p = model.producer as? TwoTowerEncoder {
            loaded = (p.maxHistory, "two-tower.options")
        } else if let p = model.producer as? MINDEncoder {
            loaded = (p.maxHistory, "mind.options")
        } else if let p = model.producer as? SDMEncoder {
            loaded = (p.maxSession, "sdm.options")
        } else {
            loaded = nil
        }
        if let (value, tensor) = loaded, value != spec.maxHistory {
            throw .badValues(name: tensor, reason: "holds a history length of \(value), the spec's maxHistory is \(spec.maxHistory.map(String.init) ?? "missing")")
        }
    }
}
