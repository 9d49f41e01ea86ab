import ArborInterchange
import ArgumentParser
import Foundation

/// `arbor export`: the model an index serves as a safetensors file and its JSON spec.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an index's model (and tree) as safetensors with a JSON spec, for PyTorch or another engine.",
        discussion: paragraphs("""
            Every weight keeps the name it has in the index; item-id lists and the tree are I64 tensors.
            The spec (model kinds, widths, activations, history length, sizes) goes into the file's
            metadata and into the sidecar --spec (default: the output path with .spec.json).
            Names and shapes: docs/MODEL-FILES.md.
            """))

    @Option(help: "The index file.")
    var index: String

    @Option(help: "The safetensors file to write (replaced atomically).")
    var out: String

    @Option(help: "Where to write the JSON spec (default: <out without .safetensors>.spec.json).")
    var spec: String?

    @Flag(help: "Leave the tree (node embeddings, offsets, leaf items) out of the file.")
    var modelOnly = false

    func validate() throws {
        try requireParentDirectory(of: out, option: "--out")
        if let spec { try requireParentDirectory(of: spec, option: "--spec") }
    }

    func run() throws {
        let (file, model) = try ModelExport.export(indexAt: index, includeTree: !modelOnly)
        try file.write(to: out)
        let specPath = spec ?? Self.defaultSpecPath(for: out)
        do { try model.encoded().write(to: URL(fileURLWithPath: specPath), options: [.atomic]) } catch {
            throw CLIError("\(specPath): cannot write the spec: \((error as NSError).localizedDescription)")
        }
        let bytes = file.tensors.reduce(0) { $0 + $1.data.count }
        print("wrote \(out): \(file.tensors.count) tensors, \(formatBytes(Int64(bytes))) (\(model.nodeScorer.rawValue) / \(model.queryProducer.rawValue), d = \(model.dimension)\(modelOnly ? ", no tree" : ", with the tree"))")
        print("wrote \(specPath)")
    }

    static func defaultSpecPath(for out: String) -> String {
        (out.hasSuffix(".safetensors") ? String(out.dropLast(".safetensors".count)) : out) + ".spec.json"
    }
}

/// `arbor import`: weights trained elsewhere into an index.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load a safetensors model (trained elsewhere) into an index, checked tensor by tensor against its spec.",
        discussion: paragraphs("""
            Every tensor the spec needs must be present with its shape (F32, or F16/BF16 converted
            on load; ids I64) and nothing else may be; every mismatch names the tensor. With a tree in
            the file the index is (re)built from it; without one the model goes onto the tree of the
            existing --index. The index is replaced atomically once the new model loads: a failed
            import leaves it as it was.
            """))

    @Option(help: "The safetensors file.")
    var weights: String

    @Option(help: "The JSON spec (default: the one in the file's metadata).")
    var spec: String?

    @Option(help: "The index to load the model into (replaced atomically).")
    var index: String

    @Option(help: "Write the result here instead of replacing --index.")
    var out: String?

    func validate() throws {
        if let out { try requireParentDirectory(of: out, option: "--out") }
    }

    func run() throws {
        let file = try SafeTensorsFile(contentsOf: weights)
        let model: ModelSpec
        if let spec {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: spec)) } catch {
                throw CLIError("\(spec): cannot read the spec: \((error as NSError).localizedDescription)")
            }
            model = try ModelSpec.decode(data, source: spec)
        } else {
            guard let text = file.metadata[ModelSpec.metadataKey] else {
                throw CLIError("\(weights): no spec in the metadata ('\(ModelSpec.metadataKey)'); pass --spec")
            }
            model = try ModelSpec.decode(Data(text.utf8), source: "\(weights) metadata")
        }
        let header = try ModelImport.importModel(file, spec: model, into: index, output: out)
        print("wrote \(out ?? index): \(header.nodeScorer.rawValue) / \(header.queryProducer.rawValue), \(header.tensors.count) tensors, \(header.itemCount) items\(model.tree == nil ? " (tree kept)" : " (tree from the file)")")
    }
}
