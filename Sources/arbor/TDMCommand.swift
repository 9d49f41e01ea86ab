import ArborCore
import ArborData
import ArborEval
import ArborMath
import ArborModels
import ArborTree
import ArgumentParser
import Foundation

extension TDMScorerKind: ExpressibleByArgument {}

/// `arbor tdm`: TDM's deep scorers trained jointly with the tree, tree re-learning, and the
/// comparison against brute force with the same model, the flat inner product and popularity.
struct TDM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tdm",
        abstract: "Train TDM models (product-DNN, DNN, attention-DNN) with their trees on a behaviour log and compare them.",
        discussion: """
            TDM protocol: ratings >= --min-rating are positives; 10% of the users are held out for
            test and 10% for validation (first half of the history in, second half to find). Each
            model starts from the category-ordered tree, trains node embeddings and scorer jointly
            (a positive per level, random negatives per level), re-clusters the tree on the learned
            leaves and trains again while validation recall@50 rises. Each trained model is written
            as an index (<out>/<kind>.arbor) that `arbor query --index ... --history ...` serves and
            `arbor inspect --index ...` describes (model, data, epochs, tree rounds, validation).
            Example:
              arbor tdm --inter ml-100k.inter --items ml-100k.item --kinds inner-product,attention --out tdm/
            """)

    @Option(help: "RecBole .inter file.")
    var inter: String

    @Option(help: "RecBole .item file (categories for the initial tree).")
    var items: String?

    @Option(help: "Models to train, comma-separated: inner-product, dnn, attention.")
    var kinds: String = "inner-product,dnn,attention"

    @Option(help: "Keep ratings >= this value as positives.")
    var minRating: Float = 4

    @Option(help: "Epochs per tree round at most.")
    var epochs: Int = 5

    @Option(help: "Tree rounds at most (train, re-cluster, train again).")
    var rounds: Int = 2

    @Option(help: "Training samples drawn per epoch (default: all).")
    var samplesPerEpoch: Int?

    @Option(help: "Beam width of validation and test retrieval.")
    var beam: Int = 100

    @Option(help: "Seed of the split, initialisation and sampling.")
    var seed: UInt64 = 0

    @Option(help: "Folder for the indexes and the report.")
    var out: String

    func validate() throws {
        guard epochs >= 1, rounds >= 1, beam >= 1 else { throw ValidationError("--epochs, --rounds and --beam must be at least 1") }
        let names = kinds.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        for k in names where TDMScorerKind(rawValue: k) == nil {
            throw ValidationError("--kinds: '\(k)' is not one of inner-product, dnn, attention")
        }
        guard Set(names).count == names.count else { throw ValidationError("--kinds names a model twice") }
        if let samplesPerEpoch, samplesPerEpoch < 1 { throw ValidationError("--samples-per-epoch must be at least 1") }
    }

    func run() throws {
        BLAS.threads = 1
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let dataset = try items.map { try RecBoleReader.read(interactions: inter, items: $0) }
            ?? RecBoleReader.readInteractions(at: inter)
        let data = try TDMExperimentData.holdOut(name: URL(fileURLWithPath: inter).deletingPathExtension().lastPathComponent, log: dataset.interactions,
                                                 minRating: minRating, seed: seed)
        var config = TDMExperimentConfig(beamWidth: beam, seed: seed)
        config.kinds = kinds.split(separator: ",").compactMap { TDMScorerKind(rawValue: String($0)) }
        config.treeRounds = rounds
        config.training = TDMTrainingConfig(epochs: epochs, batchSize: 128, negatives: .growing(total: 60),
                                            patience: 2, samplesPerEpoch: samplesPerEpoch, seed: seed)
        let report = try TDMExperiment.run(data: data, config: config) { line in note(line) }
        var written: [String] = []
        for kind in config.kinds {
            guard let model = report.models[kind] else { continue }
            let path = out + "/\(kind.rawValue).arbor"
            var provenance = report.provenance[kind]
            provenance?.dataset.path = inter
            try model.writeIndex(to: path, provenance: provenance)
            written.append(path)
        }
        let markdown = TDMExperiment.markdown([report])
        try markdown.write(toFile: out + "/report.md", atomically: true, encoding: .utf8)
        print(markdown)
        print("wrote " + (written + [out + "/report.md"]).joined(separator: ", "))
    }
}
