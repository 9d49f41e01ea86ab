import ArborCore
import ArborEngine
import ArborEval
import ArborPipelines
import ArgumentParser
import Foundation

/// `arbor demo`: what Arbor is for, in about two minutes: the tree against the exact scan on a
/// catalogue of a million items, and the two-tower served from its index on held-out users; with
/// `--deep`, the TDM-trained attention-DNN through its tree against the two-tower and against brute
/// force with the same model. The CLI parses and prints; ``DemoExperiment`` trains and measures.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what Arbor is for: the tree against the exact scan at a million items, a trained model served from its index, and (--deep) a deep model through its tree.",
        discussion: paragraphs("""
            About two minutes on one core with the defaults (release build). Steps: (1) generate 1,000,000 items (d = 64, planted categories) and 200 user queries, build the 16-ary tree, write <out>/catalog.arbor, open it with Arbor.open and answer every query by the exact scan and through the tree (beam 800): recall of the tree against the exact top 100, QPS of both; (2) generate 10,000 items in 100 planted categories and 3,000 users with 2-4 planted interests each; hold out 200 test and 200 validation users (TDM protocol: the first half of each history in, the second half to find); train a two-tower (YouTube-DNN: mean of the last 10 behaviours, sampled softmax with logQ correction, early stopping), build a tree on its item vectors and write <out>/two-tower.arbor; (3) open it and retrieve the top 50 for each test user by its exact scan and through its tree; with --deep also train the attention-DNN jointly with its binary tree (TDM; several minutes), write <out>/attention.arbor and retrieve through its tree and by brute force with the same model; (4) print recall against the held-out behaviour and against the same model's exact top 50, model evaluations, latency and QPS, and the summary lines: where the tree wins and by how much.

            Recall figures are deterministic for a seed; timings are measured on this machine. Reports: <out>/demo.{md,json,csv} and two SVG plots. The indexes stay in <out> for `arbor query --index <out>/two-tower.arbor --history ...` and `arbor inspect`.
            """))

    @Option(help: "Number of generated items.")
    var items: Int = 10_000

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

    @Flag(help: "Also train the attention-DNN with its tree (TDM) and serve it against the two-tower and brute force: several minutes.")
    var deep = false

    @Option(help: "Items of the generated catalogue where the tree is measured against the exact scan (0 skips it).")
    var scaleItems: Int = 1_000_000

    @Option(help: "User queries answered at that scale.")
    var scaleQueries: Int = 200

    @Option(help: "Beam width at that scale.")
    var scaleBeam: Int = 800

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
        guard scaleItems == 0 || scaleItems >= 100 else { throw ValidationError("--scale-items must be 0 or at least 100") }
        guard scaleQueries >= 1, scaleBeam >= 1 else { throw ValidationError("--scale-queries and --scale-beam must be at least 1") }
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
        c.deep = deep
        c.scaleItems = scaleItems
        c.scaleQueries = scaleQueries
        c.scaleBeam = scaleBeam
        return c
    }

    func run() throws {
        let cancellation = CancellationFlag()
        Interrupts.install(cancellation)
        let progress = ProgressPrinter()
        let config = self.config
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let total = ContinuousClock.now

        var scale: DemoScaleResult? = nil
        if scaleItems > 0 {
            print("[1/4] the tree against the exact scan: \(scaleItems) generated items (d = 64), \(scaleQueries) user queries, 16-ary tree, beam \(scaleBeam)")
            let result = try DemoExperiment.scale(config: config, index: out + "/catalog.arbor", progress: progress,
                                                  cancellation: cancellation)
            print(String(format: "      tree built and written in %.1f s -> %@/catalog.arbor (%@)", result.buildSeconds, out,
                         formatBytes(fileSize(out + "/catalog.arbor"))))
            print("      " + result.summary)
            scale = result
        }

        print("[2/4] generating \(items) items (100 categories in 10 super-categories) and \(users) users with 2-4 planted interests, seed \(seed)")
        let (data, oracle) = try DemoExperiment.data(config)
        print("      \(data.sequences.count) training users (\(data.sequences.reduce(0) { $0 + $1.count }) events), "
              + "\(data.validation.count) validation and \(data.test.count) test users")
        let twoTowerPath = out + "/two-tower.arbor", attentionPath = out + "/attention.arbor"
        print(deep ? "      training the two-tower (flat baseline) and the attention-DNN with its tree" : "      training the two-tower")
        let trained = try DemoExperiment.train(data: data, config: config, twoTowerIndex: twoTowerPath,
                                               attentionIndex: deep ? attentionPath : nil,
                                               progress: progress, cancellation: cancellation) { print("      " + $0) }
        print(String(format: "      two-tower %.1f s (best epoch %d of %d), tree fan-out %d, depth %d -> %@ (%@)",
                     trained.twoTowerSeconds, trained.twoTowerBestEpoch, trained.twoTowerEpochs, trained.twoTowerTree.fanOut,
                     trained.twoTowerTree.depth, twoTowerPath, formatBytes(fileSize(twoTowerPath))))
        if let a = trained.attention {
            print(String(format: "      attention-DNN %.1f s (%d epochs, best round %d), learnt tree fan-out %d, depth %d -> %@ (%@)",
                         a.seconds, a.epochs, a.bestRound, a.tree.fanOut, a.tree.depth, attentionPath,
                         formatBytes(fileSize(attentionPath))))
        }

        print("[3/4] opening the index\(deep ? "es" : "") (Arbor.open) and retrieving the top \(config.k) for \(data.test.count) test users")
        let twoTower = try Arbor.open(twoTowerPath)
        let attention = deep ? try Arbor.open(attentionPath) : nil
        print("      \(twoTowerPath): \(twoTower.nodeScorer.rawValue) scorer, \(twoTower.queryProducer.rawValue) query producer"
              + (attention.map { "; \(attentionPath): \($0.nodeScorer.rawValue) scorer, \($0.queryProducer.rawValue) query producer" } ?? ""))
        let result = try DemoExperiment.measure(twoTower: twoTower, attention: attention, users: data.test, oracle: oracle,
                                                config: config, progress: progress, cancellation: cancellation)

        let summaryLines = (scale.map { ["tree vs exact scan: " + $0.summary] } ?? []) + [result.twoTowerSummary]
            + (result.attentionSummary.map { [$0] } ?? [])
        print("[4/4] results (recall: held-out behaviour; recall vs exact: the same model's exact / brute-force top \(config.k))")
        let report = BenchmarkReport(
            metadata: RunMetadata(
                machine: machineInfo(),
                dataset: "synthetic: \(items) items, \(users) users with 2-4 planted interests, \(data.test.count) test users (first half -> second half), seed \(seed)",
                notes: [String(format: "two-tower trained %.1f s", trained.twoTowerSeconds)]
                    + (trained.attention.map { [String(format: "attention-DNN trained %.1f s", $0.seconds)] } ?? [])
                    + [String(format: "oracle (ranks by the planted interests) recall@%d %.4f", config.k, result.oracleRecall)]
                    + summaryLines),
            rows: result.rows + (scale.map { [$0.exact, $0.tree] } ?? []))
        print("")
        print(report.markdownTable())
        print("")
        let paths = try writeReport(report, k: config.k, to: out, baseName: "demo", title: "Arbor demo", metric: .recall)
        print(String(format: "done in %.1f s; reports: %@", seconds(since: total), paths.joined(separator: ", ")))
        for line in summaryLines { print(line) }
    }
}
