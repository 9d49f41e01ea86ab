import ArborCore
import ArborInference
import ArborInterchange
import ArborTree
import Foundation
import Testing

/// A valid exported attention model (with the tree) and an index to import into.
struct Exported {
    let file: SafeTensorsFile
    let spec: ModelSpec
    let index: String

    init() throws {
        index = try ModelFactory.writeIndex(.attention, tree: ModelFactory.tree(seed: 5))
        (file, spec) = try ModelExport.export(indexAt: index)
    }

    /// Imports `file` with `spec` into the index; the index must stay byte for byte as it was.
    func importExpectingFailure(_ file: SafeTensorsFile, spec: ModelSpec? = nil) throws -> ModelExchangeError? {
        let before = try Data(contentsOf: URL(fileURLWithPath: index))
        var caught: ModelExchangeError?
        do { try ModelImport.importModel(file, spec: spec ?? self.spec, into: index) } catch { caught = error }
        #expect(try Data(contentsOf: URL(fileURLWithPath: index)) == before, "the index changed")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: (index as NSString).deletingLastPathComponent)
            .filter { $0.hasPrefix((index as NSString).lastPathComponent + ".tmp-") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
        return caught
    }
}

@Suite struct SafeTensorsFileTests {
    func sample() -> SafeTensorsFile {
        SafeTensorsFile(tensors: [.float32("a", shape: [2, 3], values: [1, 2, 3, 4, 5, 6]), .int64("ids", shape: [2], values: [7, -1]),
                                  .float32("s", shape: [], values: [0.5])], metadata: ["k": "v"])
    }

    /// Bytes round trip; the header is 8-byte aligned; offsets are contiguous in the given order.
    @Test func roundTrip() throws {
        let bytes = try sample().encoded()
        let n = Int(bytes[0]) | Int(bytes[1]) << 8
        #expect(n % 8 == 0 && bytes.count == 8 + n + 24 + 16 + 4)
        let back = try SafeTensorsFile(bytes: bytes, source: "x")
        #expect(back == sample())
        #expect(try back.tensor("a").floats() == [1, 2, 3, 4, 5, 6] && back["ids"]?.int64s() == [7, -1])
        let path = temporaryPath("t.safetensors")
        defer { removeFile(path) }
        try sample().write(to: path)
        #expect(try SafeTensorsFile(contentsOf: path) == sample())
    }

    @Test func truncatedFileIsRefused() throws {
        let bytes = try sample().encoded()
        #expect(throws: SafeTensorsError.truncated(path: "f", reason: "5 bytes, shorter than the 8-byte header length")) {
            try SafeTensorsFile(bytes: Array(bytes.prefix(5)), source: "f")
        }
        // Cut inside the data: the last tensor's data runs past the end.
        do {
            _ = try SafeTensorsFile(bytes: Array(bytes.dropLast(3)), source: "f")
            Issue.record("accepted a truncated file")
        } catch let SafeTensorsError.truncated(path, reason) {
            #expect(path == "f" && reason.contains("tensor 's'"))
        }
    }

    @Test func headerLongerThanTheFileIsRefused() throws {
        var bytes = try sample().encoded()
        bytes[0] = 0xFF; bytes[1] = 0xFF; bytes[2] = 0x01
        #expect(throws: SafeTensorsError.truncated(path: "f", reason: "the header length says \(0x1FFFF) bytes but only \(bytes.count - 8) follow it")) {
            try SafeTensorsFile(bytes: bytes, source: "f")
        }
    }

    /// Malformed entries name the tensor: unknown dtype, offsets that do not fit the shape, overlap.
    @Test func malformedEntriesNameTheTensor() throws {
        func file(_ header: String, data: Int) -> [UInt8] {
            var json = Array(header.utf8)
            while json.count % 8 != 0 { json.append(0x20) }
            let out: [UInt8] = (0 ..< 8).map { UInt8(truncatingIfNeeded: json.count >> (8 * $0)) }
            return out + json + [UInt8](repeating: 0, count: data)
        }
        let cases: [(String, Int, String)] = [
            (#"{"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, 4, "w"),
            (#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, 4, "w"),
            (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"v":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#, 6, "v"),
            (#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, 4, "w"),
        ]
        for (header, data, name) in cases {
            do {
                _ = try SafeTensorsFile(bytes: file(header, data: data), source: "f")
                Issue.record("accepted \(header)")
            } catch let SafeTensorsError.badTensor(_, found, _) {
                #expect(found == name)
            }
        }
        #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(bytes: file("[1,2]", data: 0), source: "f") }
        #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(bytes: file("{\"w\":", data: 0), source: "f") }
    }
}

@Suite struct ImportErrorTests {
    @Test func wrongDTypeNamesTheTensor() throws {
        let e = try Exported()
        defer { removeFile(e.index) }
        var file = e.file
        let i = try #require(file.tensors.firstIndex { $0.name == "output.0.weight" })
        let t = file.tensors[i]
        file.tensors[i] = SafeTensor(name: t.name, dtype: .f64, shape: t.shape, data: [UInt8](repeating: 0, count: t.count * 8))
        #expect(try e.importExpectingFailure(file) == .wrongDType(name: "output.0.weight", expected: "F32, F16 or BF16", found: "F64"))
        // Ids stored as floats.
        var file2 = e.file
        let j = try #require(file2.tensors.firstIndex { $0.name == ModelTensorNames.behaviourIDs })
        file2.tensors[j] = .float32(ModelTensorNames.behaviourIDs, shape: [60], values: Array(repeating: 0, count: 60))
        #expect(try e.importExpectingFailure(file2) == .wrongDType(name: ModelTensorNames.behaviourIDs, expected: "I64 (or U64, I32)", found: "F32"))
    }

    @Test func missingTensorNamesIt() throws {
        let e = try Exported()
        defer { removeFile(e.index) }
        var file = e.file
        file.tensors.removeAll { $0.name == "attention.1.bias" }
        #expect(try e.importExpectingFailure(file) == .missingTensor(name: "attention.1.bias", expectedShape: [1]))
    }

    @Test func extraTensorNamesIt() throws {
        let e = try Exported()
        defer { removeFile(e.index) }
        var file = e.file
        file.tensors.append(.float32("output.9.weight", shape: [1], values: [0]))
        #expect(try e.importExpectingFailure(file) == .unexpectedTensor(name: "output.9.weight"))
    }

    @Test func wrongShapeNamesTheTensor() throws {
        let e = try Exported()
        defer { removeFile(e.index) }
        var file = e.file
        let i = try #require(file.tensors.firstIndex { $0.name == ModelTensorNames.positions })
        file.tensors[i] = .float32(ModelTensorNames.positions, shape: [6, 7], values: Array(repeating: 0, count: 42))
        #expect(try e.importExpectingFailure(file) == .wrongShape(name: ModelTensorNames.positions, expected: [6, 8], found: [6, 7]))
    }

    @Test func nonFiniteValuesNameTheTensor() throws {
        let e = try Exported()
        defer { removeFile(e.index) }
        var file = e.file
        let i = try #require(file.tensors.firstIndex { $0.name == "output.1.bias" })
        file.tensors[i] = .float32("output.1.bias", shape: [1], values: [.nan])
        #expect(try e.importExpectingFailure(file) == .badValues(name: "output.1.bias", reason: "value 0 is not finite"))
    }

    /// Spec fields are checked before anything else: sizes, activations, kinds that cannot serve
    /// together, and a history length the weights contradict.
    @Test func badSpecNamesTheField() throws {
        let e = try Exported()
        defer { removeFile(e.index) }
        var spec = e.spec
        spec.mlps["output"]?.activations[0] = "tanh"
        #expect(try e.importExpectingFailure(e.file, spec: spec) == .badSpec(
            field: "mlps.output.activations.0", reason: "'tanh' for a hidden layer; allowed: prelu, relu"))
        spec = e.spec
        spec.queryProducer = .twoTower
        #expect(try e.importExpectingFailure(e.file, spec: spec) == .badSpec(
            field: "queryProducer", reason: "'two-tower' cannot feed node scorer 'attention'"))
        spec = e.spec
        spec.dimension = -3
        #expect(try e.importExpectingFailure(e.file, spec: spec) == .badSpec(field: "dimension", reason: "-3 is not in 1 ..< 2^31"))
        spec = e.spec
        spec.maxHistory = 4
        #expect(try e.importExpectingFailure(e.file, spec: spec) == .badValues(
            name: ModelTensorNames.maxHistory, reason: "holds a history length of 6, the spec's maxHistory is 4"))
        #expect(throws: ModelExchangeError.self) { try ModelSpec.decode(Data(#"{"nodeScorer": "mlp"}"#.utf8), source: "s") }
    }

    /// A model-only file whose width differs from the target index's is refused, naming the index.
    @Test func modelOnlyImportChecksTheIndexWidth() throws {
        let e = try Exported()
        defer { removeFile(e.index) }
        var spec = e.spec
        spec.tree = nil
        var file = e.file
        file.tensors.removeAll { $0.name.hasPrefix("tree.") }
        // A 4-wide target.
        var r = RandomValues(seed: 3)
        let narrow = try TreeBuilder.balancedKMeans(embeddings: r.matrix(20, 4), items: (0 ..< 20).map { ItemID(UInt64($0)) },
                                                    options: .init(fanOut: 4, seed: 1))
        let target = temporaryPath("narrow.arbor")
        defer { removeFile(target) }
        try IndexWriter().write(layout: narrow, to: target)
        #expect(throws: ModelExchangeError.indexMismatch(path: target, reason: "the index is 4 wide, the spec's dimension is 8")) {
            try ModelImport.importModel(file, spec: spec, into: target)
        }
    }

    /// Weights that match the spec's shapes but do not form the model (ids out of order for an
    /// encoder) are refused by the model loader, and the target is unchanged.
    @Test func weightsThatDoNotLoadLeaveTheIndexUnchanged() throws {
        let index = try ModelFactory.writeIndex(.mind, tree: ModelFactory.tree(seed: 5))
        defer { removeFile(index) }
        let (file, spec) = try ModelExport.export(indexAt: index)
        var bad = file
        let i = try #require(bad.tensors.firstIndex { $0.name == MINDEncoder.itemIDsExtraName })
        var ids = try bad.tensors[i].int64s()
        ids.swapAt(0, 1)
        bad.tensors[i] = .int64(MINDEncoder.itemIDsExtraName, shape: [ids.count], values: ids)
        let e = Exported(file: file, spec: spec, index: index)
        guard case .model = try e.importExpectingFailure(bad) else { Issue.record("expected a model error"); return }
    }
}

extension Exported {
    init(file: SafeTensorsFile, spec: ModelSpec, index: String) {
        self.file = file
        self.spec = spec
        self.index = index
    }
}
