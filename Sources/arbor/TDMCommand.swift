import ArborCore
import ArborData
import ArborEval
import ArborInference
import ArborMath
import ArborModels
import ArborNN
import ArborPipelines
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
        discussion: paragraphs("""
            TDM protocol: ratings >= --min-rating are positives; 10% of the users are held out for test and 10% for validation (first half of the history in, second half to find). Each model starts from the category-ordered tree, trains node embeddings and scorer jointly (a positive per level, random negatives per level), re-clusters the tree on the learned leaves and trains again while validation recall@50 rises. Beside them: the flat product-DNN baseline, a two-tower (YouTube-DNN) trained on the same users and scanned exactly (--no-two-tower leaves it out), and popularity. Each trained model is written as an index (<out>/<kind>.arbor, or <kind>-seed<N>.arbor for several seeds) that `arbor query --index ... --history ...` serves and `arbor inspect --index ...` describes (model, data, epochs, tree rounds, validation).

            With --amazon-train/--amazon-valid instead of --inter: the Amazon Books demo (train on the training users, history -> held-out items for the others, half validation, half test). With --synthetic N: generated users with several planted interests each, where a single mean vector cannot serve them; an oracle that knows the interests bounds what is possible.

            Examples:
              arbor tdm --inter ml-100k.inter --items ml-100k.item --kinds inner-product,attention --seeds 0,1,2 --out tdm/
              arbor tdm --amazon-train train_demo.txt --amazon-valid valid_part-0.txt --out tdm-amazon/
              arbor tdm --synthetic 5000 --kinds inner-product,attention --seeds 0,1,2 --out tdm-synthetic/
            """))

    @Option(help: "RecBole .inter file.")
    var inter: String?

    @Option(help: "Instead of --inter: the Amazon Books demo's train_demo.txt (with --amazon-valid).")
    var amazonTrain: String?

    @Option(help: "The Amazon Books demo's valid_part-0.txt (held-out users: history and items to find).")
    var amazonValid: String?

    @Option(help: "Instead of a log: generate this many items and users with 2-4 planted interests each (3,000 users, 300 test and 200 validation); the report adds an oracle that knows the interests.")
    var synthetic: Int?

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

    @Option(name: [.customLong("seeds"), .customLong("seed")], help: "Seeds of the split, initialisation and sampling, comma-separated: each seed is a full run, and the report gives mean ± standard deviation over them.")
    var seeds: String = "0"

    @Option(help: "Embedding width d of nodes and behaviours (TDM: 24).")
    var dimension: Int = 24

    @Option(help: "Random negatives per training sample over all levels, more near the leaves (TDM: 100 on MovieLens).")
    var negatives: Int = 60

    @Option(help: "Most recent behaviours the product-DNN and DNN pool.")
    var history: Int = 50

    @Option(help: "Most recent behaviours the attention-DNN attends over.")
    var attentionHistory: Int = 20

    @Option(help: "Adam learning rate of the dense weights.")
    var learningRate: Float = 1e-3

    @Option(help: "Learning rate of the embedding tables (lazy Adam).")
    var sparseLearningRate: Float = 1e-2

    @Option(help: "Training samples per batch.")
    var batchSize: Int = 128

    @Option(help: "Epochs without a better validation recall before a round stops.")
    var patience: Int = 2

    @Option(help: "Training threads: each batch is cut into this many shards trained in parallel (1 = sequential; results are repeatable for a given count).")
    var threads: Int = 1

    @Flag(help: "Start the DNN and attention-DNN from the product-DNN's learnt tree and embeddings (train inner-product first).")
    var warmStart = false

    @Flag(help: "The attention-DNN adds a learnt recency embedding to each behaviour (row r to the r-th most recent), so it can weigh recent behaviours apart from old ones; stored in the index as attention.positions.")
    var recency = false

    @Flag(inversion: .prefixedNo, help: "Also train the flat product-DNN baseline: a two-tower (YouTube-DNN, sampled softmax, d = 64, last 10 behaviours) on the same training users, scanned exactly; the report gives tree + attention-DNN against it.")
    var twoTower = true

    @Option(help: "Tree rebuild between rounds: recluster (TDM: balanced k-means on the learnt leaves) or reassign (JTM: greedy layer-wise re-assignment with node capacity).")
    var rebuild: String = "recluster"

    @Option(help: "Training methods, comma-separated: tdm (random negatives), jtm (re-assignment and hierarchical user features), otm (beam-aware training); each trains every model of --kinds.")
    var methods: String = "tdm"

    @Option(help: "OTM: beam width of the beam search run for each training sample.")
    var otmBeam: Int = 10

    @Option(help: "OTM: each sample's target set is its target and the user's next N items (0 = the target alone); a visited node's pseudo-target is 1 when any of them is below it.")
    var otmFuture: Int = 0

    @Flag(help: "OTM: train on the beam's visited nodes only (default: TDM's random negatives beside them).")
    var otmBeamOnly = false

    @Option(help: "Folder for the indexes and the report.")
    var out: String

    func validate() throws {
        guard [inter != nil, amazonTrain != nil, synthetic != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --inter, --amazon-train and --synthetic")
        }
        if let synthetic, synthetic < 100 { throw ValidationError("--synthetic needs at least 100 items") }
        guard (1 ... DataParallel.maxThreads).contains(threads) else {
            throw ValidationError("--threads must be in 1...\(DataParallel.maxThreads), got \(threads)")
        }
        guard (amazonTrain == nil) == (amazonValid == nil) else { throw ValidationError("--amazon-train and --amazon-valid go together") }
        if amazonTrain != nil, items != nil { throw ValidationError("--items goes with --inter (the Amazon demo has no categories)") }
        guard epochs >= 1, rounds >= 1, beam >= 1 else { throw ValidationError("--epochs, --rounds and --beam must be at least 1") }
        let kindValues = try kindList()
        if let samplesPerEpoch, samplesPerEpoch < 1 { throw ValidationError("--samples-per-epoch must be at least 1") }
        _ = try seedList()
        guard dimension >= 1, negatives >= 1, history >= 1, attentionHistory >= 1, batchSize >= 1, patience >= 1 else {
            throw ValidationError("--dimension, --negatives, --history, --attention-history, --batch-size and --patience must be at least 1")
        }
        guard learningRate > 0, sparseLearningRate > 0 else { throw ValidationError("learning rates must be positive") }
        if warmStart {
            guard let p = kindValues.firstIndex(of: .innerProduct), kindValues.count > p + 1 else {
                throw ValidationError("--warm-start needs inner-product listed in --kinds before dnn or attention")
            }
        }
        guard ["recluster", "reassign"].contains(rebuild) else { throw ValidationError("--rebuild: '\(rebuild)' is not recluster or reassign") }
        _ = try methodList()
        guard otmBeam >= 1 else { throw ValidationError("--otm-beam must be at least 1, got \(otmBeam)") }
        guard otmFuture >= 0 else { throw ValidationError("--otm-future must be at least 0, got \(otmFuture)") }
    }

    /// The methods of `--methods`, in order, each once.
    func methodList() throws -> [TDMTrainingMethod] {
        let list = try methods.split(separator: ",", omittingEmptySubsequences: false).map { part -> TDMTrainingMethod in
            guard let m = TDMTrainingMethod(rawValue: String(part)) else {
                throw ValidationError("--methods: '\(part)' is not one of tdm, jtm, otm")
            }
            return m
        }
        guard Set(list).count == list.count else { throw ValidationError("--methods names a method twice") }
        return list
    }

    /// The models of `--kinds`, in order, each once.
    func kindList() throws -> [TDMScorerKind] {
        let list = try kinds.split(separator: ",", omittingEmptySubsequences: false).map { part -> TDMScorerKind in
            guard let kind = TDMScorerKind(rawValue: String(part)) else {
                throw ValidationError("--kinds: '\(part)' is not one of inner-product, dnn, attention")
            }
            return kind
        }
        guard Set(list).count == list.count else { throw ValidationError("--kinds names a model twice") }
        return list
    }

    /// The seeds of `--seeds`, each once.
    func seedList() throws -> [UInt64] {
        let list = try seeds.split(separator: ",", omittingEmptySubsequences: false).map { part -> UInt64 in
            guard let v = UInt64(part.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--seeds: '\(part)' is not a non-negative integer")
            }
            return v
        }
        guard Set(list).count == list.count else { throw ValidationError("--seeds names a seed twice") }
        return list
    }

    func run() throws {
        BLAS.threads = 1
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        // The log is read once; each seed splits it anew.
        // Each seed's data, and for generated users the oracle's row.
        let load: (UInt64) throws -> (data: TDMExperimentData, oracle: TDMMethodResult?)
        let source: String
        if let synthetic {
            let itemCount = synthetic
            load = { seed in
                let catalog = try SyntheticCatalog.generate(.init(itemCount: itemCount, dimension: 16, superCategoryCount: 10,
                                                                  categoriesPerSuperCategory: 10, seed: seed))
                let users = try SyntheticUsers.generate(catalog: catalog, config: .init(userCount: 3_000, minInterests: 2, maxInterests: 4,
                                                                                       minHistoryLength: 20, maxHistoryLength: 60, seed: seed))
                let data = try TDMExperimentData.synthetic(catalog: catalog, users: users, test: .count(300), validation: .count(200),
                                                           seed: seed)
                let oracle = try TDMEvaluation.evaluate(method: TDMMethodName.oracle, users: data.test,
                                                        retrieve: TDMEvaluation.syntheticOracle(catalog: catalog, users: users))
                return (data, oracle)
            }
            source = "synthetic \(synthetic) items"
        } else if let inter {
            let dataset = try items.map { try RecBoleReader.read(interactions: inter, items: $0) }
                ?? RecBoleReader.readInteractions(at: inter)
            let name = URL(fileURLWithPath: inter).deletingPathExtension().lastPathComponent
            load = { seed in (try TDMExperimentData.holdOut(name: name, log: dataset.interactions, minRating: minRating, seed: seed), nil) }
            source = inter
        } else {
            let train = try AmazonBooksDemo.readTrain(at: amazonTrain!)
            let heldOut = try AmazonBooksDemo.readValidation(at: amazonValid!)
            load = { seed in (try TDMExperimentData.amazonBooksDemo(train: train, heldOut: heldOut, seed: seed), nil) }
            source = amazonTrain!
        }
        let cancellation = CancellationFlag()
        Interrupts.install(cancellation)
        let progress = ProgressPrinter()
        let seedValues = try seedList()
        var reports: [TDMExperimentReport] = []
        var written: [String] = []
        for seed in seedValues {
            if seedValues.count > 1 { note("== seed \(seed) ==") }
            let (data, oracle) = try load(seed)
            var config = TDMExperimentConfig(dimension: dimension, maxHistory: history, attentionMaxHistory: attentionHistory,
                                             beamWidth: beam, seed: seed)
            config.kinds = try kindList()
            config.methods = try methodList()
            config.otmBeamWidth = otmBeam
            config.otmRandomNegatives = !otmBeamOnly
            config.otmFutureWindow = otmFuture
            config.treeRounds = rounds
            config.rebuild = rebuild == "reassign" ? .reassign(.init()) : .recluster
            config.warmStartFromProduct = warmStart
            if !twoTower { config.twoTower = nil }
            config.recencyEmbedding = recency
            config.training = TDMTrainingConfig(epochs: epochs, batchSize: batchSize, negatives: .growing(total: negatives),
                                                learningRate: learningRate, sparseLearningRate: sparseLearningRate,
                                                patience: patience, samplesPerEpoch: samplesPerEpoch, seed: seed)
            config.training.threads = threads
            config.twoTower?.training.threads = threads
            var report = try TDMExperiment.run(data: data, config: config, progress: progress,
                                               cancellation: cancellation) { line in note(line) }
            if let oracle { report.results.append(oracle) }
            // One index per model and seed: <kind>.arbor for a single seed, <kind>-seed<N>.arbor for
            // several; JTM and OTM models as <method>-<kind>….
            for method in config.methods {
                for kind in config.kinds {
                    guard let model = report.methodModels[method]?[kind] else { continue }
                    let name = (method == .tdm ? "" : method.rawValue + "-") + kind.rawValue
                    let path = out + (seedValues.count == 1 ? "/\(name).arbor" : "/\(name)-seed\(seed).arbor")
                    var provenance = report.methodProvenance[method]?[kind]
                    provenance?.dataset.path = source
                    try model.writeIndex(to: path, provenance: provenance)
                    written.append(path)
                }
            }
            reports.append(report)
            if seedValues.count > 1 { note(TDMExperiment.markdown(reports)) }
        }
        let markdown = TDMExperiment.markdown(reports)
        try markdown.write(toFile: out + "/report.md", atomically: true, encoding: .utf8)
        print(markdown)
        print("wrote " + (written + [out + "/report.md"]).joined(separator: ", "))
    }
}
