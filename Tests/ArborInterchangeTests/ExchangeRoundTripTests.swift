import ArborCore
import ArborEngine
import ArborInference
import ArborInterchange
import ArborTree
import Foundation
import Testing

/// Histories over the factory's ids (some unknown, one empty), with timestamps for SDM.
let sampleHistories: [[ItemID]] = [
    [ItemID(1000), ItemID(1003), ItemID(1030), ItemID(1090)],
    [ItemID(1150), ItemID(1006), ItemID(7), ItemID(1177), ItemID(1021), ItemID(1009), ItemID(1012), ItemID(1060)],
    [ItemID(1015)],
    [],
]
let sampleTimes: [[Double]] = [[0, 10, 20, 5000], [0, 5, 9, 2000, 2010, 2015, 9000, 9001], [3], []]

/// The results of `engine` for every sample history, through the tree and by the exact scan.
func results(_ engine: Engine, kind: ModelKind) throws -> [[ScoredItem]] {
    var out: [[ScoredItem]] = []
    for (h, times) in zip(sampleHistories, sampleTimes) {
        let t = kind == .sdm ? times : nil
        out.append(try engine.search(history: h, timestamps: t, k: 10, using: .tree(beam: 8)).items)
        out.append(try engine.search(history: h, timestamps: t, k: 10, using: .exact).items)
    }
    return out
}

@Suite struct ExchangeRoundTripTests {
    /// Export (with the tree) through the file's bytes, import into a fresh index built over other
    /// vectors: the new index answers every history exactly as the original (same items, same
    /// scores), for every served kind.
    @Test(arguments: ModelKind.allCases)
    func exportThenImportIntoAFreshIndexGivesIdenticalResults(kind: ModelKind) throws {
        let original = try ModelFactory.writeIndex(kind, tree: ModelFactory.tree(seed: 5))
        let fresh = try ModelFactory.writeVectorIndex(tree: ModelFactory.tree(seed: 99))
        defer { removeFile(original); removeFile(fresh) }
        let (file, spec) = try ModelExport.export(indexAt: original)
        let reread = try SafeTensorsFile(bytes: file.encoded(), source: "round trip")
        #expect(reread == file)
        let specText = try #require(reread.metadata[ModelSpec.metadataKey])
        #expect(try ModelSpec.decode(Data(specText.utf8), source: "metadata") == spec)
        try ModelImport.importModel(reread, spec: spec, into: fresh)
        let a = try results(Arbor.open(original), kind: kind)
        let b = try results(Arbor.open(fresh), kind: kind)
        #expect(a.allSatisfy { !$0.isEmpty })
        #expect(a == b)
        let (reader1, reader2) = (try IndexReader(path: original), try IndexReader(path: fresh))
        #expect(reader1.nodeScorer == reader2.nodeScorer && reader1.queryProducer == reader2.queryProducer)
        #expect(try reader1.loadLayout() == reader2.loadLayout())
    }

    /// Without the tree, the model goes onto the target's own tree (kept as it was).
    @Test(arguments: [ModelKind.attention, .mind])
    func modelOnlyImportKeepsTheTargetsTree(kind: ModelKind) throws {
        let tree = ModelFactory.tree(seed: 5)
        let original = try ModelFactory.writeIndex(kind, tree: tree)
        let target = try ModelFactory.writeVectorIndex(tree: tree)
        defer { removeFile(original); removeFile(target) }
        let (file, spec) = try ModelExport.export(indexAt: original, includeTree: false)
        #expect(spec.tree == nil && !file.tensors.contains { $0.name.hasPrefix("tree.") })
        try ModelImport.importModel(file, spec: spec, into: target)
        #expect(try results(Arbor.open(original), kind: kind) == results(Arbor.open(target), kind: kind))
    }

    /// The spec describes the model: kinds, widths, activations, history length, sizes.
    @Test func specDescribesTheAttentionModel() throws {
        let path = try ModelFactory.writeIndex(.attention, tree: ModelFactory.tree(seed: 5))
        defer { removeFile(path) }
        let spec = try ModelExport.export(indexAt: path).spec
        #expect(spec.nodeScorer == .attention && spec.queryProducer == .rawHistory)
        #expect(spec.dimension == 8 && spec.maxHistory == 6 && spec.items == 60 && spec.positions == 6)
        #expect(spec.mlps["attention"] == .init(widths: [24, 12, 1], activations: ["prelu", "identity"]))
        #expect(spec.mlps["output"] == .init(widths: [24, 16, 1], activations: ["prelu", "identity"]))
        #expect(spec.tree?.fanOut == 4 && spec.tree?.levels.last == 60)
    }

    /// F16 and BF16 weights load as the Float32 values they stand for.
    @Test func halfAndBFloat16WeightsConvertOnLoad() throws {
        let original = try ModelFactory.writeIndex(.dnn, tree: ModelFactory.tree(seed: 5))
        let target = temporaryPath("half.arbor")
        defer { removeFile(original); removeFile(target) }
        let exported = try ModelExport.export(indexAt: original)
        var file = exported.file
        let spec = exported.spec
        // Round every float tensor to bfloat16 (truncation) or half, and store it so.
        var expected: [String: [Float]] = [:]
        for (i, t) in file.tensors.enumerated() where t.dtype == .f32 {
            let values = try t.floats()
            if i % 2 == 0 {
                let bits = values.map { UInt16($0.bitPattern >> 16) }
                expected[t.name] = bits.map { Float(bitPattern: UInt32($0) << 16) }
                file.tensors[i] = SafeTensor(name: t.name, dtype: .bf16, shape: t.shape, data: bits.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
            } else {
                let halves = values.map(halfBits)
                expected[t.name] = try SafeTensor(name: "x", dtype: .f16, shape: [halves.count],
                                                  data: halves.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }).floats()
                file.tensors[i] = SafeTensor(name: t.name, dtype: .f16, shape: t.shape, data: halves.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
            }
        }
        try ModelImport.importModel(file, spec: spec, into: original, output: target)
        let reader = try IndexReader(path: target)
        for name in reader.tensorNames { #expect(try reader.tensor(named: name).values == expected[name], "\(name)") }
        #expect(try reader.loadLayout().levels[1].embeddings.values == expected[ModelFileNames.levelEmbeddings(1)])
    }

    /// Known half and bfloat16 bit patterns decode to their exact values.
    @Test func halfAndBFloat16Decoding() throws {
        let half: [UInt16] = [0x3C00, 0xC100, 0x3555, 0x0001, 0x8000, 0x7BFF]
        let t = SafeTensor(name: "h", dtype: .f16, shape: [6], data: half.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
        #expect(try t.floats() == [1, -2.5, 0.333251953125, Float(sign: .plus, exponent: -24, significand: 1), -0.0, 65504])
        let bf: [UInt16] = [0x3F80, 0xC020, 0x4049]
        let b = SafeTensor(name: "b", dtype: .bf16, shape: [3], data: bf.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
        #expect(try b.floats() == [1, -2.5, 3.140625])
    }
}

/// Float to IEEE half bits, rounding to nearest (test helper; values are small and normal).
func halfBits(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    let sign = UInt16((bits >> 16) & 0x8000)
    let e = Int((bits >> 23) & 0xFF) - 127 + 15
    if x == 0 { return sign }
    if e <= 0 { return sign }  // flush tiny values to zero
    let mantissa = bits & 0x7F_FFFF
    var h = UInt32(e) << 10 | (mantissa >> 13)
    if mantissa & 0x1FFF > 0x1000 || (mantissa & 0x1FFF == 0x1000 && h & 1 == 1) { h += 1 }
    return sign | UInt16(h)
}

/// JTM's hierarchical user features travel with the model: the spec names their sizes, an export
/// imports into a fresh index with identical answers, and a file without them is refused by name.
@Suite struct HierarchyExchangeTests {
    @Test(arguments: [ModelKind.dnn, .attention])
    func hierarchyTensorsRoundTrip(kind: ModelKind) throws {
        var payload = ModelFactory.make(kind)
        var r = RandomValues(seed: 77)
        let nodes = 20, levels = 2  // the tree over 60 items at fan-out 4 has depth 3: levels 1 and 2 read the hierarchy
        let rows = (0 ..< levels).map { _ in
            (0 ..< ModelFactory.itemCount).map { i in i % 7 == 0 ? Int32(-1) : Int32(min(nodes - 1, Int(r.rng.nextUnitFloat() * Float(nodes)))) }
        }
        let hierarchy = try BehaviourHierarchy(embeddings: r.matrix(nodes, ModelFactory.d), rows: rows, behaviourCount: ModelFactory.itemCount)
        payload.tensors += hierarchy.namedTensors()
        let original = temporaryPath("\(kind.rawValue)-jtm.arbor")
        let fresh = try ModelFactory.writeVectorIndex(tree: ModelFactory.tree(seed: 99))
        defer { removeFile(original); removeFile(fresh) }
        try IndexWriter().write(layout: ModelFactory.tree(seed: 5), tensors: payload.tensors, nodeScorer: payload.nodeScorer,
                                queryProducer: payload.producer, extra: payload.extra, to: original)
        #expect(try Self.storedHierarchy(original) == hierarchy)

        let (file, spec) = try ModelExport.export(indexAt: original)
        #expect(spec.hierarchy == ModelSpec.Hierarchy(nodes: nodes, levels: levels))
        let reread = try SafeTensorsFile(bytes: file.encoded(), source: "round trip")
        try ModelImport.importModel(reread, spec: spec, into: fresh)
        #expect(try Self.storedHierarchy(fresh) == hierarchy)
        #expect(try results(Arbor.open(original), kind: kind) == results(Arbor.open(fresh), kind: kind))

        let without = SafeTensorsFile(tensors: file.tensors.filter { $0.name != ModelTensorNames.hierarchyRows }, metadata: file.metadata)
        #expect {
            try ModelImport.importModel(without, spec: spec, into: fresh)
        } throws: { error in
            guard case ModelExchangeError.missingTensor(let name, _) = error else { return false }
            return name == ModelTensorNames.hierarchyRows
        }
        // A hierarchy on a scorer that cannot read it is a spec error naming the field.
        var wrong = spec
        wrong.nodeScorer = .innerProduct
        wrong.queryProducer = .leafMeanPooling
        wrong.mlps = [:]
        #expect(throws: ModelExchangeError.self) { try wrong.expectedTensors() }
    }

    /// The hierarchy the index's stored scorer serves with (`nil` without one).
    static func storedHierarchy(_ path: String) throws -> BehaviourHierarchy? {
        switch try ServingModel.load(from: IndexReader(path: path)).scorer {
        case .dnn(let scorer): scorer.hierarchy
        case .attention(let scorer): scorer.hierarchy
        case .innerProduct: nil
        }
    }
}
