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

/// `arbor train`: trains the two-tower / YouTube-DNN model on a RecBole interaction file, reports
/// its quality next to popularity (flat scan and tree), and writes the learned item vectors, the
/// user encoder and optionally a ready index carrying the encoder.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the two-tower (YouTube-DNN) or MIND model and build a tree on its item vectors.",
        discussion: paragraphs("""
            Trains on every prefix -> next item of the training users, with early
            stopping on validation NDCG@10 (leave-last-out) or Recall@50 (hold-out),
            then benchmarks popularity, the exact flat scan and the tree on the
            test users.

            Examples:
              arbor train --inter ml-100k.inter --out model/ --index ml.arbor
              arbor train --inter ml-100k.inter --protocol hold-out
              arbor train --inter ml-100k.inter --loss sampled --negatives 1000
              arbor train --inter ml-100k.inter --epochs 3 --threads 2
              arbor train --model mind --interests 4 --pow 1000 --inter ml-100k.inter --index mind.arbor
              arbor train --model mind --synthetic 5000 --max-history 30

            --model mind trains MIND (multi-interest: dynamic routing into K'
            interests, label-aware attention with power --pow, the same softmax
            and negatives); early stopping on validation Recall@50; the index
            then serves K' searches per user, merged. --synthetic N generates
            users with 2-4 planted interests over N items (hold-out protocol) and
            reports the oracle that knows them.

            Writes <out>/items.npy and <out>/items.ids (item vectors, for
            `arbor build`), <out>/encoder.ttw (the user encoder, digest-checked),
            <out>/checkpoints/{last,best}.ttw, <out>/report.md and
            <out>/training.json; with --index, an index whose encoder
            ("two-tower") turns a behaviour list into the query vector.
            """))

    @Option(help: "Model: 'two-tower' (YouTube-DNN, one vector per user), 'mind' (multi-interest) or 'sdm' (sessions; see the SDM options).")
    var model: TrainModel = .twoTower

    @Option(help: "MIND: the most interests per user (K; a user with L behaviours gets max(1, min(K, floor(log2 L)))).")
    var interests: Int = 4

    @Flag(help: "MIND: also train the two-tower with the same options on the same data, and report it beside MIND on the same test users in one table.")
    var besideTwoTower = false

    @Option(help: "MIND: label-aware attention power p (0 = mean of the interests, large = argmax).")
    var pow: Float = 1000

    @Option(help: "MIND: dynamic routing rounds.")
    var routingIterations: Int = 3

    @Option(help: "MIND: scale beta of the routing-logit update b += beta * (u_hat . u) (MIND: 1; larger lets agreement, not the random start, route).")
    var routingScale: Float = 1

    @Flag(help: "MIND: stop the gradient through the routing rounds before the last (ComiRec-DR).")
    var routingStopGradient = false

    @Option(help: "Two-tower and MIND: catalogue items never seen in training (random vectors): 'leave-out' of the index, unknown in histories; or 'keep' them (the cold-item check).")
    var coldItems: ColdItemPolicy = .leaveOut

    @Option(help: "Instead of --inter: generated users with 2-4 planted interests over this many items (hold-out; the oracle is reported).")
    var synthetic: Int?

    @Option(help: "With --synthetic: number of generated users.")
    var syntheticUsers: Int = 3000

    @Option(help: "MIND with --synthetic: also write each test user's interest vectors and planted interests as JSON here (for tools/mind-diagnosis.py).")
    var diagnosis: String?

    @OptionGroup(title: "SDM (--model sdm)")
    var sdm: SDMTrainOptions

    @Option(help: "RecBole .inter file (user_id, item_id, rating, timestamp).")
    var inter: String?

    @Option(help: "Instead of --inter: the Amazon Books demo's train_demo.txt (with --amazon-valid).")
    var amazonTrain: String?

    @Option(help: "The Amazon Books demo's valid_part-0.txt: held-out users, split half validation, half test.")
    var amazonValid: String?

    @Option(help: "RecBole .item file: item categories for the category embedding (with --categories).")
    var items: String?

    @Option(help: "Evaluation protocol: 'leave-last-out' (RecBole) or 'hold-out' (TDM user hold-out).")
    var `protocol`: TwoTowerProtocol = .leaveLastOut

    @Option(help: "Exact leave-last-out split file (user_id item_id timestamp split) used instead of splitting --inter.")
    var splitFile: String?

    @Option(help: "Hold-out protocol: share of users held out for test, and again for validation.")
    var holdOut: Double = 0.1

    @Option(help: "Keep ratings >= this value as positives (RecBole's ML-100K protocol: 4).")
    var minRating: Float = 4

    @Option(help: "Minimum positives per user and per item (k-core).")
    var minCount: Int = 5

    @Option(help: "Output directory for vectors, encoder, checkpoints and report.")
    var out: String = "two-tower"

    @Option(help: "Also write an index (tree on the learned item vectors + the user encoder) at this path.")
    var index: String?

    @Option(help: "Start from this checkpoint (<out>/checkpoints/last.ttw or best.ttw) instead of random weights.")
    var initFrom: String?

    @Option(help: "Embedding width.")
    var dim: Int = 64

    @Option(help: "Hidden widths of the user tower MLP, comma-separated (empty: one linear layer).")
    var hidden: String = ""

    @Option(help: "Most recent behaviours pooled by the user tower (10 was best on ML-100K).")
    var maxHistory: Int = 10

    @Option(help: "Softmax temperature (cosine similarity); with --dot-product use 1.")
    var temperature: Float = 0.05

    @Flag(help: "Raw dot product instead of cosine similarity.")
    var dotProduct = false

    @Flag(help: "Separate user-tower input embeddings (default: shared with the item tower).")
    var separateEmbeddings = false

    @Flag(help: "Add a category embedding to both towers (needs --items).")
    var categories = false

    @Option(help: "Loss: 'sampled' (uniform negatives), 'in-batch', or 'mixed' (in-batch + uniform negatives).")
    var loss: LossKind = .mixed

    @Option(help: "Uniform negatives per batch for 'sampled' and 'mixed' (>= item count: full softmax).")
    var negatives: Int = 100

    @Flag(name: .customLong("no-logq"), help: "Disable the logQ correction of in-batch / mixed negatives.")
    var noLogQ = false

    @Option(help: "Frequency estimate of the logQ correction: 'counted' or 'streaming'.")
    var frequency: FrequencyKind = .counted

    @Option(help: "Mini-batch size.")
    var batchSize: Int = 256

    @Option(help: "Maximum epochs.")
    var epochs: Int = 40

    @Option(help: "Early-stopping patience in epochs.")
    var patience: Int = 5

    @Option(help: "Adam learning rate.")
    var lr: Float = 2e-3

    @Option(help: "Embedding optimizer: adam, lazyAdam or adagrad.")
    var embeddingOptimizer: EmbeddingOptimizerKind = .adam

    @Option(help: "Seed of initial weights, sample order and negatives (and the hold-out split).")
    var seed: UInt64 = 0

    @Option(help: "Training threads: each mini-batch is cut into this many shards trained in parallel (1 = sequential; results are repeatable for a given count).")
    var threads: Int = 1

    @Option(help: "Cut-offs reported, comma-separated.")
    var ks: String = "10,50,200"

    @Option(help: "Tree beam widths, comma-separated.")
    var beams: String = "20,50,100,200"

    @Option(help: "Tree fan-out, 2...64 (default 16, as build and bench: the tree on the learned vectors matches the exact scan at a smaller beam than a binary one).")
    var fanOut: Int = 16

    @Flag(help: "No progress lines.")
    var quiet = false

    enum LossKind: String, ExpressibleByArgument, CaseIterable {
        case sampled, inBatch = "in-batch", mixed
    }

    enum FrequencyKind: String, ExpressibleByArgument, CaseIterable {
        case counted, streaming
    }

    func validate() throws {
        if model == .sdm { return try sdm.validate(inter: inter, splitFile: splitFile, amazonTrain: amazonTrain) }
        guard [inter != nil, amazonTrain != nil, synthetic != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --inter, --amazon-train and --synthetic")
        }
        if let synthetic, synthetic < 100 { throw ValidationError("--synthetic needs at least 100 items") }
        guard (1...64).contains(interests) else { throw ValidationError("--interests must be in 1...64") }
        guard pow >= 0 else { throw ValidationError("--pow must be >= 0") }
        guard (amazonTrain == nil) == (amazonValid == nil) else { throw ValidationError("--amazon-train and --amazon-valid go together") }
        if amazonTrain != nil, splitFile != nil || categories || items != nil || `protocol` != .leaveLastOut {
            throw ValidationError("--amazon-train has its own protocol (history -> held-out items) and no categories: drop --protocol, --split-file, --items and --categories")
        }
        if let index { try requireParentDirectory(of: index, option: "--index") }
        guard dim >= 1 else { throw ValidationError("--dim must be at least 1") }
        guard maxHistory >= 1 else { throw ValidationError("--max-history must be at least 1") }
        guard temperature > 0 else { throw ValidationError("--temperature must be positive") }
        guard negatives >= 1 else { throw ValidationError("--negatives must be at least 1") }
        guard batchSize >= 2 else { throw ValidationError("--batch-size must be at least 2") }
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        guard patience >= 1 else { throw ValidationError("--patience must be at least 1") }
        guard lr > 0 else { throw ValidationError("--lr must be positive") }
        guard (1 ... DataParallel.maxThreads).contains(threads) else {
            throw ValidationError("--threads must be in 1...\(DataParallel.maxThreads), got \(threads)")
        }
        guard (2...64).contains(fanOut) else { throw ValidationError("--fan-out must be in 2...64") }
        guard holdOut > 0, holdOut < 0.5 else { throw ValidationError("--hold-out must be in (0, 0.5)") }
        if categories && items == nil { throw ValidationError("--categories needs --items (the .item file)") }
        if splitFile != nil && `protocol` != .leaveLastOut { throw ValidationError("--split-file applies to --protocol leave-last-out") }
        if besideTwoTower && model != .mind { throw ValidationError("--beside-two-tower applies to --model mind") }
        guard (1...20).contains(routingIterations) else { throw ValidationError("--routing-iterations must be in 1...20, got \(routingIterations)") }
        guard routingScale >= 0, routingScale <= 1000, routingScale.isFinite else {
            throw ValidationError("--routing-scale must be in [0, 1000], got \(routingScale)")
        }
        if diagnosis != nil && (model != .mind || synthetic == nil) { throw ValidationError("--diagnosis applies to --model mind with --synthetic") }
        _ = try parseIntList(ks, option: "--ks")
        _ = try parseIntList(beams, option: "--beams")
        if !hidden.isEmpty { _ = try parseIntList(hidden, option: "--hidden") }
    }

    func run() throws {
        if model == .sdm { return try runSDM() }
        let cancellation = CancellationFlag()
        Interrupts.install(cancellation)
        let progress = ProgressPrinter(enabled: !quiet)
        BLAS.threads = 1  // the threads go to data-parallel shards, each calling BLAS single-threaded
        let started = ContinuousClock.now

        let data: TwoTowerData
        var oracle: TDMMethodResult? = nil
        var generated: (catalog: SyntheticCatalog, users: SyntheticUsers)? = nil
        if let synthetic {
            let catalog = try SyntheticCatalog.generate(.init(itemCount: synthetic, dimension: 16, superCategoryCount: 10,
                                                              categoriesPerSuperCategory: 10, seed: seed))
            let users = try SyntheticUsers.generate(catalog: catalog, config: .init(userCount: syntheticUsers, minInterests: 2, maxInterests: 4,
                                                                                   minHistoryLength: 20, maxHistoryLength: 60, seed: seed))
            data = try TwoTowerData.synthetic(catalog: catalog, users: users, test: .count(300), validation: .count(200), seed: seed)
            generated = (catalog, users)
            oracle = try TDMEvaluation.evaluate(
                method: TDMMethodName.oracle,
                users: data.test.map { HeldOutUser(user: $0.user, history: $0.history, truth: Array($0.truth)) },
                retrieve: TDMEvaluation.syntheticOracle(catalog: catalog, users: users))
        } else if let amazonTrain, let amazonValid {
            data = try TwoTowerData.amazonBooksDemo(train: AmazonBooksDemo.readTrain(at: amazonTrain),
                                                    heldOut: AmazonBooksDemo.readValidation(at: amazonValid), seed: seed)
        } else {
            data = try TwoTowerData.load(
                interactions: inter!, items: categories ? items : nil, protocol: `protocol`,
                filter: PositiveFilter(minRating: minRating, minUserInteractions: minCount, minItemInteractions: minCount),
                splitFile: splitFile, holdOut: (.fraction(holdOut), .fraction(holdOut)), holdOutSeed: seed)
        }
        note("data: \(data.protocolName), \(data.catalog.count) items, \(data.sequences.count) training users, "
            + "\(data.trainEvents) events -> \(data.samples.count) samples; \(data.validation.count) validation, \(data.test.count) test users")

        if model == .mind {
            try runMIND(data: data, oracle: oracle, generated: generated, progress: progress, cancellation: cancellation,
                        started: started)
            return
        }
        let options = try twoTowerOptions(checkpoints: out + "/checkpoints")
        try runTwoTower(data: data, options: options, oracle: oracle, progress: progress, cancellation: cancellation,
                        started: started)
    }

    /// The two-tower's options from the command line; checkpoints into `checkpoints` when given.
    func twoTowerOptions(checkpoints: String?) throws -> TwoTowerExperimentOptions {
        var options = TwoTowerExperimentOptions(protocol: amazonTrain != nil || synthetic != nil ? .userHoldOut : `protocol`)
        options.dimension = dim
        options.hidden = hidden.isEmpty ? [] : try parseIntList(hidden, option: "--hidden")
        options.maxHistory = maxHistory
        options.cosine = !dotProduct
        options.temperature = temperature
        options.shareEmbeddings = !separateEmbeddings
        options.useCategories = categories
        options.ks = try parseIntList(ks, option: "--ks")
        options.beams = try parseIntList(beams, option: "--beams")
        options.tree.fanOut = fanOut
        options.tree.seed = seed
        options.coldItems = coldItems
        let lossChoice: TwoTowerLoss = switch loss {
        case .sampled: .sampled(negatives: negatives)
        case .inBatch: .inBatch
        case .mixed: .mixed(negatives: negatives)
        }
        options.training = TwoTowerTrainingOptions(
            loss: lossChoice, logQCorrection: !noLogQ, frequency: frequency == .counted ? .counted : .streaming(rate: 0.05),
            batchSize: batchSize, epochs: epochs, learningRate: lr, embeddingOptimizer: embeddingOptimizer,
            patience: patience, seed: seed, checkpointDirectory: checkpoints)
        options.training.threads = threads
        if let initFrom { options.initialWeights = try TwoTowerWeightsFile.read(at: initFrom) }
        return options
    }

    /// The default `--model two-tower`: train, export, report.
    func runTwoTower(data: TwoTowerData, options: TwoTowerExperimentOptions, oracle: TDMMethodResult?,
                     progress: ProgressPrinter, cancellation: CancellationFlag, started: ContinuousClock.Instant) throws {

        let metricName = options.validationMetric.shortName + "@\(options.validationK)"
        let result = try TwoTowerExperiment.run(data: data, options: options, progress: progress, cancellation: cancellation) { e in
            let t = e.timing
            note(String(
                format: "epoch %2d: loss %.4f, %.0f samples/s (fwd %.2f s, bwd %.2f s, opt %.2f s, batch %.2f s), validation %@ %@%@",
                e.epoch, e.meanLoss, e.samplesPerSecond, t.forward, t.backward, t.optimizer, t.batching, metricName,
                e.validation.map { String(format: "%.4f", $0) } ?? "-", e.improved ? " *" : ""))
        }
        var provenance = result.provenance
        let source = inter ?? amazonTrain ?? "synthetic-\(synthetic ?? 0)"
        provenance.dataset.name = URL(fileURLWithPath: source).deletingPathExtension().lastPathComponent
        provenance.dataset.path = source
        try TwoTowerExperiment.export(result, to: out, indexPath: index, provenance: provenance, progress: progress,
                                      cancellation: cancellation)

        let metrics = reportMetrics
        var report = reportHeader(title: "arbor train") + "\n"
        // RecBole's BPR figures (ANCHORS.md) apply to ML-100K leave-last-out with the default filter only.
        let bpr = `protocol` == .leaveLastOut && (inter?.lowercased().contains("ml-100k") ?? false) && minRating == 4 && minCount == 5
        report += result.markdown(metrics: metrics, reference: bpr ? (name: "RecBole BPR", hr10: 0.1279, hr50: 0.3721, ndcg10: 0.0632) : nil)
        if let oracle { report += String(format: "\nOracle (knows the planted interests): Recall@50 %.4f, HR@50 %.4f\n", oracle.recall50, oracle.hitRate50) }
        try writeReport(report, training: result.training, started: started,
                        files: "items.npy, items.ids, encoder.ttw, report.md, training.json")
    }
}

extension Train {
    /// Leave-last-out reports HR and NDCG; hold-out protocols (TDM, Amazon demo, generated) the set metrics.
    var reportMetrics: [Metric] {
        `protocol` == .leaveLastOut && amazonTrain == nil && synthetic == nil
            ? [.hitRate, .ndcg] : [.recall, .precision, .f1, .ndcg, .hitRate]
    }

    /// `--model mind`: train MIND, build the tree (fan-out --fan-out) on its item vectors,
    /// benchmark, write the report, the item vectors and, with --index, the MIND index.
    func runMIND(data: TwoTowerData, oracle: TDMMethodResult?, generated: (catalog: SyntheticCatalog, users: SyntheticUsers)?,
                 progress: ProgressPrinter, cancellation: CancellationFlag, started: ContinuousClock.Instant) throws {
        var options = MINDExperimentOptions()
        options.dimension = dim
        options.interests = interests
        options.power = pow
        options.iterations = routingIterations
        options.agreementScale = routingScale
        options.routingStopGradient = routingStopGradient
        options.hidden = hidden.isEmpty ? [] : try parseIntList(hidden, option: "--hidden")
        options.maxHistory = maxHistory
        options.cosine = !dotProduct
        options.temperature = temperature
        options.ks = try parseIntList(ks, option: "--ks")
        options.beams = try parseIntList(beams, option: "--beams")
        options.tree.fanOut = fanOut
        options.tree.seed = seed
        options.checkpointDirectory = out + "/checkpoints"
        options.coldItems = coldItems
        let lossChoice: TwoTowerLoss = switch loss {
        case .sampled: .sampled(negatives: negatives)
        case .inBatch: .inBatch
        case .mixed: .mixed(negatives: negatives)
        }
        options.training = TwoTowerTrainingOptions(
            loss: lossChoice, logQCorrection: !noLogQ, frequency: .counted, batchSize: batchSize, epochs: epochs,
            learningRate: lr, embeddingOptimizer: embeddingOptimizer, patience: patience, seed: seed)
        options.training.threads = threads
        if besideTwoTower { options.besideTwoTower = try twoTowerOptions(checkpoints: nil) }
        let result = try MINDExperiment.run(data: data, options: options, progress: progress, cancellation: cancellation) { e in
            note(String(format: "epoch %2d: loss %.4f, %.0f samples/s, validation R@50 %@%@", e.epoch, e.meanLoss, e.samplesPerSecond,
                        e.validation.map { String(format: "%.4f", $0) } ?? "-", e.improved ? " *" : ""))
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try NPY.write(result.itemVectors, to: out + "/items.npy")
        try IDList.write(result.ids, to: out + "/items.ids")
        if let diagnosis, let generated {
            try MINDDiagnosisDump(result: result, test: data.test, catalog: generated.catalog, users: generated.users)
                .write(to: diagnosis)
        }
        if let index {
            var provenance = result.provenance
            let source = inter ?? amazonTrain ?? "synthetic-\(synthetic ?? 0)"
            provenance.dataset.name = URL(fileURLWithPath: source).deletingPathExtension().lastPathComponent
            provenance.dataset.path = inter ?? amazonTrain
            try MINDExperiment.export(result, indexPath: index, provenance: provenance, progress: progress, cancellation: cancellation)
        }
        var report = reportHeader(title: "arbor train --model mind") + "\n"
        report += result.markdown(metrics: reportMetrics)
        if let oracle { report += String(format: "\nOracle (knows the planted interests): Recall@50 %.4f, HR@50 %.4f\n", oracle.recall50, oracle.hitRate50) }
        try writeReport(report, training: result.training, started: started,
                        files: "items.npy, items.ids, report.md, training.json, checkpoints/")
    }
}

extension TwoTowerProtocol: ExpressibleByArgument {}
extension EmbeddingOptimizerKind: ExpressibleByArgument {}
extension ColdItemPolicy: ExpressibleByArgument {}
