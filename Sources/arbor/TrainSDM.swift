import ArborCore
import ArborData
import ArborEval
import ArborInference
import ArborMath
import ArborModels
import ArborPipelines
import ArborTree
import ArgumentParser
import Foundation

/// The models `arbor train --model` trains.
enum TrainModel: String, ExpressibleByArgument, CaseIterable {
    case twoTower = "two-tower"
    case mind
    case sdm
}

extension SDMFusion: ExpressibleByArgument {
    public init?(argument: String) {
        guard let f = SDMFusion.allCases.first(where: { $0.name == argument }) else { return nil }
        self = f
    }
}

/// Options of `arbor train --model sdm` (the shared ones — --dim, --loss, --negatives, --batch-size,
/// --epochs, --patience, --lr, --seed, --threads, --ks, --beams, --fan-out — apply too).
struct SDMTrainOptions: ParsableArguments {
    @Option(help: "SDM: a session split file (session_id item_id position split, e.g. yoochoose.split.tsv) instead of --inter: every prefix -> next item, no users, so no long term.")
    var sessionSplit: String?

    @Option(help: "SDM: fusion of the halves: gated, short-only or long-only (the ablation).")
    var fusion: SDMFusion = .gated

    @Option(help: "SDM: self-attention heads (divide --dim).")
    var heads: Int = 4

    @Option(help: "SDM: stacked LSTM layers.")
    var lstmLayers: Int = 1

    @Option(help: "SDM: most recent items of the latest session read.")
    var maxSession: Int = 50

    @Option(help: "SDM: most recent long-term items read.")
    var maxLong: Int = 50

    func validate(inter: String?, splitFile: String?, amazonTrain: String?) throws {
        guard amazonTrain == nil else { throw ValidationError("--model sdm reads --inter (with --split-file) or --session-split") }
        guard (inter != nil) != (sessionSplit != nil) else { throw ValidationError("--model sdm: give exactly one of --inter and --session-split") }
        guard heads >= 1, lstmLayers >= 1, maxSession >= 1, maxLong >= 1 else {
            throw ValidationError("--heads, --lstm-layers, --max-session and --max-long must be at least 1")
        }
    }
}

extension Train {
    /// `arbor train --model sdm`: trains SDM, reports popularity, the flat scan and the tree, and
    /// writes report.md, training.json and (with --index) an SDM index.
    func runSDM() throws {
        let cancellation = CancellationFlag()
        Interrupts.install(cancellation)
        let progress = ProgressPrinter(enabled: !quiet)
        BLAS.threads = 1  // the threads go to data-parallel shards
        let started = ContinuousClock.now
        let data: SDMData
        if let path = sdm.sessionSplit {
            data = try SDMData.sessions(split: SessionSplit.read(at: path))
        } else {
            let dataset = try categories && items != nil
                ? RecBoleReader.read(interactions: inter!, items: items!) : RecBoleReader.readInteractions(at: inter!)
            let split = try splitFile.map { try LeaveLastOutSplit.read(at: $0) }
                ?? LeaveLastOutSplit.make(from: dataset.interactions,
                                          filter: PositiveFilter(minRating: minRating, minUserInteractions: minCount, minItemInteractions: minCount))
            data = try SDMData.leaveLastOut(split: split, itemCategories: categories ? dataset.itemCategories : nil)
        }
        note("data: \(data.protocolName), \(data.catalog.count) items, \(data.sequences.count) training sequences, "
            + "\(data.trainEvents) events; \(data.validation.count) validation, \(data.test.count) test queries"
            + (data.hasLongTerm ? "" : "; no users: short term only (no long term, the gate is not used)"))
        var options = SDMExperimentOptions()
        options.dimension = dim
        options.heads = sdm.heads
        options.lstmLayers = sdm.lstmLayers
        options.maxSession = sdm.maxSession
        options.maxLong = sdm.maxLong
        options.fusion = sdm.fusion
        options.useCategories = categories
        options.temperature = temperature
        options.ks = try parseIntList(ks, option: "--ks")
        options.beams = try parseIntList(beams, option: "--beams")
        options.tree.fanOut = fanOut
        options.tree.seed = seed
        if sdm.sessionSplit != nil { options.validationMetric = .mrr; options.validationK = 20 }
        let lossChoice: TwoTowerLoss = switch loss {
        case .sampled: .sampled(negatives: negatives)
        case .inBatch: .inBatch
        case .mixed: .mixed(negatives: negatives)
        }
        options.training = TwoTowerTrainingOptions(
            loss: lossChoice, logQCorrection: !noLogQ, batchSize: batchSize, epochs: epochs, learningRate: lr,
            embeddingOptimizer: embeddingOptimizer, patience: patience, seed: seed, checkpointDirectory: out + "/checkpoints")
        options.training.threads = threads
        let metricName = options.validationMetric.shortName + "@\(options.validationK)"
        let result = try SDMExperiment.run(data: data, options: options, progress: progress, cancellation: cancellation) { e in
            let t = e.timing
            note(String(
                format: "epoch %2d: loss %.4f, %.0f samples/s (fwd %.2f s, bwd %.2f s, opt %.2f s, batch %.2f s), validation %@ %@%@",
                e.epoch, e.meanLoss, e.samplesPerSecond, t.forward, t.backward, t.optimizer, t.batching, metricName,
                e.validation.map { String(format: "%.4f", $0) } ?? "-", e.improved ? " *" : ""))
        }
        var provenance = result.provenance
        let source = sdm.sessionSplit ?? inter!
        provenance.dataset.name = URL(fileURLWithPath: source).deletingPathExtension().lastPathComponent
        provenance.dataset.path = source
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        if let index {
            try IndexFiles.writeSDMIndex(tree: result.tree, encoder: result.encoder, provenance: provenance, to: index,
                                         progress: progress, cancellation: cancellation)
        }
        var report = reportHeader(title: "arbor train --model sdm")
        report += "- \(provenance.modelDetails ?? "")\n"
        let r = result.report
        report += String(format: "- training: %d epochs (best %d), %.0f samples/s; forward %.1f s, backward %.1f s, optimizer %.1f s, batching %.1f s\n\n",
                         r.epochs.count, r.bestEpoch, r.samplesPerSecond, r.timing.forward, r.timing.backward, r.timing.optimizer, r.timing.batching)
        report += result.markdown()
        try writeReport(report, training: result.report, started: started, files: "report.md, training.json")
    }

    /// The first lines of every `arbor train` report: title, the command as typed, the BLAS kernels,
    /// training threads and seed.
    func reportHeader(title: String) -> String {
        var args = CommandLine.arguments.dropFirst()
        if args.first == "train" { args = args.dropFirst() }
        return "# \(title)\n\n- command: arbor train \(args.joined(separator: " "))\n"
            + "- OpenBLAS: \(BLAS.coreSelection); \(threads) training thread(s); seed \(seed)\n"
    }

    /// Ends `report` with the wall time, writes it to `<out>/report.md` and `training` to
    /// `<out>/training.json`, prints the report and lists the files written (`files`, plus the index).
    func writeReport(_ report: String, training: TwoTowerTrainingReport, started: ContinuousClock.Instant, files: String) throws {
        let report = report + String(format: "\nTotal wall time: %.1f s\n", seconds(since: started))
        try report.write(toFile: out + "/report.md", atomically: true, encoding: .utf8)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(training).write(to: URL(fileURLWithPath: out + "/training.json"))
        print(report)
        note("wrote \(out)/" + files + (index.map { ", \($0)" } ?? ""))
    }
}
