import ArborCore
import ArborEngine
import ArborEval
import ArborPipelines
import ArgumentParser
import Foundation

/// `arbor demo`: what Arbor is for, in about two minutes. A deep model (the TDM-trained
/// attention-DNN) served through its tree against the flat two-tower and against brute force
/// with the same model. The CLI parses and prints; ``DemoExperiment`` trains and measures.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what Arbor is for: a deep model served through its tree beats the flat two-tower, at many times the speed of brute force with the same model.",
        discussion: paragraphs("""
            About two minutes on one core with the defaults (release build). Steps: (1) generate 50,000 items in 100 planted categories and 3,000 users with 2-4 planted interests each (a single user vector cannot serve several interests); hold out 200 test and 200 validation users (TDM protocol: the first half of each history in, the second half to find); (2) train the flat baseline, a two-tower (YouTube-DNN: mean of the last 10 behaviours, sampled softmax with logQ correction, early stopping), build a tree on its item vectors and write <out>/two-tower.arbor; (3) train the attention-DNN jointly with its binary tree (TDM: a positive and random negatives on every level), write <out>/attention.arbor; (4) open both indexes with Arbor.open and retrieve the top 50 for each test user: the two-tower by its exact scan and through its tree, the attention-DNN through its tree (beam search) and by brute force over every item; (5) print recall@50 against the held-out behaviour, recall against the same model's exact top 50, model evaluations, latency and QPS, and a summary line with where the tree wins and by how much.

            Recall figures are deterministic for a seed; timings are measured on this machine. Reports: <out>/demo.{md,json,csv} and two SVG plots. The indexes stay in <out> for `arbor query --index <out>/attention.arbor --history ...` and `arbor inspect`.
            """))

    @Option(help: "Number of generated items.")
    var items: Int = 50_000

    @Option(help: "Number of generated users (test and validation users included).")
    var users: Int = 3_000

    @Option(help: "Held-out test users.")
    var testUsers: Int = 200

    @Option(help: "Held-out validation users (early stopping).")
    var validationUsers: Int = 200

    @Option(help: "Seed of the data, the split and the training.")
    var seed: UInt64 = 1

    @Option(help: "Attention-DNN: epochs per tree round at most.")
    var epochs: Int = 2

    @Option(help: "Attention-DNN: tree rounds at most (train, re-cluster, train again).")
    var rounds: Int = 1

    @Option(help: "Attention-DNN: training samples drawn per epoch.")
    var samplesPerEpoch: Int = 30_000

    @Option(help: "Two-tower: epochs at most (early stopping on validation recall).")
    var twoTowerEpochs: Int = 5

    @Option(help: "Beam width of the tree searches.")
    var beam: Int = 100

    @Option(help: "Folder for the indexes and the reports.")
    var out: String = "demo-out"

    func validate() throws {
        guard items >= 100 else { throw ValidationError("--items must be at least 100") }
        guard users >= 20 else { throw ValidationError("--users must be at least 20") }
        guard testUsers >= 1, validationUsers >= 1 else { throw ValidationError("--test-users and --validation-users must be at least 1") }
        guard testUsers + validationUsers < users else { throw ValidationError("--test-users + --validation-users must leave training users") }
        guard epochs >= 1, rounds >= 1, samplesPerEpoch >= 1, twoTowerEpochs >= 1 else {
            throw ValidationError("--epochs, --rounds, --samples-per-epoch and --two-tower-epochs must be at least 1")
        }
        guard beam >= 1 else { throw ValidationError("--beam must be at least 1") }
    }

    var config: DemoExperimentConfig {
        var c = DemoExperimentConfig()
        c.items = items
        c.users = users
        c.testUsers = testUsers
        c.validationUsers = validationUsers
        c.seed = seed
        c.epochs = epochs
        c.rounds = rounds
        c.samplesPerEpoch = samplesPerEpoch
        c.twoTowerEpochs = twoTowerEpochs
        c.beam = beam
        return c
    }

    func run() throws {
        let cancellation = CancellationFlag()
        Interrupts.install(cancellation)
        let progress = ProgressPrinter()
        let config = self.config
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let total = ContinuousClock.now

        print("[1/4] generating \(items) items (100 categories in 10 super-categories) and \(users) users with 2-4 planted interests, seed \(seed)")
        let (data, oracle) = try DemoExperiment.data(config)
        print("      \(data.sequences.count) training users (\(data.sequences.reduce(0) { $0 + $1.count }) events), "
              + "\(data.validation.count) validation and \(data.test.count) test users")

        print("[2/4] training the two-tower (flat baseline) and the attention-DNN with its tree")
        let twoTowerPath = out + "/two-tower.arbor", attentionPath = out + "/attention.arbor"
        let trained = try DemoExperiment.train(data: data, config: config, twoTowerIndex: twoTowerPath, attentionIndex: attentionPath,
                                               progress: progress, cancellation: cancellation) { print("      " + $0) }
        print(String(format: "      two-tower %.1f s (best epoch %d of %d), tree fan-out %d, depth %d -> %@ (%@)",
                     trained.twoTowerSeconds, trained.twoTowerBestEpoch, trained.twoTowerEpochs, trained.twoTowerTree.fanOut,
                     trained.twoTowerTree.depth, twoTowerPath, formatBytes(fileSize(twoTowerPath))))
        print(String(format: "      attention-DNN %.1f s (%d epochs, best round %d), learnt tree fan-out %d, depth %d -> %@ (%@)",
                     trained.attentionSeconds, trained.attentionEpochs, trained.attentionBestRound, trained.attentionTree.fanOut,
                     trained.attentionTree.depth, attentionPath, formatBytes(fileSize(attentionPath))))

        print("[3/4] opening both indexes (Arbor.open) and retrieving the top \(config.k) for \(data.test.count) test users")
        let twoTower = try Arbor.open(twoTowerPath), attention = try Arbor.open(attentionPath)
        print("      \(twoTowerPath): \(twoTower.nodeScorer.rawValue) scorer, \(twoTower.queryProducer.rawValue) query producer; "
              + "\(attentionPath): \(attention.nodeScorer.rawValue) scorer, \(attention.queryProducer.rawValue) query producer")
        let result = try DemoExperiment.measure(twoTower: twoTower, attention: attention, users: data.test, oracle: oracle,
                                                config: config, progress: progress, cancellation: cancellation)

        print("[4/4] results (recall: held-out behaviour; recall vs exact: the same model's exact / brute-force top \(config.k))")
        let report = BenchmarkReport(
            metadata: RunMetadata(
                machine: machineInfo(),
                dataset: "synthetic: \(items) items, \(users) users with 2-4 planted interests, \(data.test.count) test users (first half -> second half), seed \(seed)",
                notes: [String(format: "two-tower trained %.1f s; attention-DNN trained %.1f s", trained.twoTowerSeconds,
                               trained.attentionSeconds),
                        String(format: "oracle (ranks by the planted interests) recall@%d %.4f", config.k, result.oracleRecall),
                        result.summary]),
            rows: result.rows)
        print("")
        print(report.markdownTable())
        print("")
        print(String(format: "oracle (ranks by the planted interests): recall@%d %.4f", config.k, result.oracleRecall))
        let paths = try writeReport(report, k: config.k, to: out, baseName: "demo", title: "Arbor demo", metric: .recall)
        print(String(format: "done in %.1f s; reports: %@", seconds(since: total), paths.joined(separator: ", ")))
        print(result.summary)
    }
}
