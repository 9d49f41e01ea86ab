import ArborPipelines
import Foundation
import Testing
import ArborData
import ArborMath
import ArborInference
import ArborModels
import ArborRetrieval
import ArborTree
@testable import ArborEval

private func smallSynthetic(seed: UInt64 = 1) throws -> (SyntheticCatalog, SyntheticUsers, TDMExperimentData) {
    let catalog = try SyntheticCatalog.generate(.init(itemCount: 120, dimension: 8, superCategoryCount: 3,
                                                              categoriesPerSuperCategory: 4, seed: seed))
    let users = try SyntheticUsers.generate(catalog: catalog, config: .init(userCount: 150, minInterests: 1, maxInterests: 2,
                                                                           minHistoryLength: 10, maxHistoryLength: 20, seed: seed))
    let data = try TDMExperimentData.synthetic(catalog: catalog, users: users, test: .count(20), validation: .count(20), seed: seed)
    return (catalog, users, data)
}

@Suite(.serialized) struct TDMPipelineTests {
    /// The traced beam search is TreeRetriever's beam search; with the widest beam every level keeps
    /// all ancestors of the brute-force top-k.
    @Test func levelTraceMatchesRetrieverAndBruteForce() throws {
        let (_, _, data) = try smallSynthetic()
        let tree = try data.initialTree(dimension: 8, seed: 2)
        let model = try TDMModel(config: .init(kind: .attention, dimension: 8, hidden: [8], attentionHidden: 4, maxHistory: 10, seed: 3),
                                 tree: tree, items: data.items)
        _ = try TDMTrainer(config: .init(epochs: 1, batchSize: 64, negatives: .constant(2), samplesPerEpoch: 256))
            .train(model, samples: data.samples(maxHistory: 10))
        let layout = model.layout()
        let scorer = try model.attentionScorer()
        let retriever = try TreeRetriever(source: layout, scorer: scorer, itemCount: layout.itemCount, dimension: 8)
        let widest = layout.levels.map(\.nodeCount).max()!
        for user in data.test.prefix(5) {
            let q = Query(history: user.history, excluded: Set(user.history))
            let narrow = try TDMBeamDiagnostics.trace(tree: layout, scorer: scorer, query: q, k: 5, beamWidth: 6)
            #expect(try narrow.beamItems == retriever.search(q, parameters: .init(k: 5, beamWidth: 6)).items.map(\.item))
            #expect(narrow.levelRecall.count == layout.depth)
            #expect(narrow.levelRecall.allSatisfy { (0...1).contains($0) })
            let wide = try TDMBeamDiagnostics.trace(tree: layout, scorer: scorer, query: q, k: 5, beamWidth: widest)
            #expect(wide.levelRecall.allSatisfy { $0 == 1 })
            #expect(wide.beamItems == wide.bruteForceItems)
        }
    }

    /// The oracle ranks planted-interest items first, and a short end-to-end run produces every row.
    @Test func syntheticEndToEnd() throws {
        let (catalog, users, data) = try smallSynthetic()
        let oracle = try TDMEvaluation.evaluate(method: TDMMethodName.oracle, users: data.test,
                                                retrieve: TDMEvaluation.syntheticOracle(catalog: catalog, users: users))
        let pop = try TDMEvaluation.evaluate(method: TDMMethodName.popularity, users: data.test,
                                             retrieve: TDMEvaluation.popularityRetriever(popularity: data.popularity))
        #expect(oracle.recall10 > pop.recall10)
        let config = TDMExperimentConfig(dimension: 8, hidden: [8], attentionHidden: 4, maxHistory: 10, attentionMaxHistory: 10,
                                         training: .init(epochs: 2, batchSize: 64, negatives: .constant(2), samplesPerEpoch: 512),
                                         treeRounds: 2, beamWidth: 20, validationUsers: 20, seed: 1)
        var report = try TDMExperiment.run(data: data, config: config)
        report.results.append(oracle)
        let names = Set(report.results.map(\.method))
        for name in [TDMMethodName.treeProduct, TDMMethodName.treeDNN, TDMMethodName.treeAttention, TDMMethodName.bruteAttention,
                     TDMMethodName.flatProduct, TDMMethodName.flatTwoTower, TDMMethodName.popularity] {
            #expect(names.contains(name), "missing \(name)")
        }
        #expect(report.levelRecall.count == report.models[.attention]!.tree.depth)
        let md = TDMExperiment.markdown([report])
        #expect(md.contains("tree + attention-DNN") && md.contains("per level"))
        #expect(md.contains("tree + attention-DNN / flat product-DNN (two-tower): recall@10"))
        // Without the two-tower, its row and ratio are left out.
        var noTwoTower = config
        noTwoTower.twoTower = nil
        noTwoTower.kinds = [.innerProduct]
        let lean = try TDMExperiment.run(data: data, config: noTwoTower)
        #expect(lean.result(TDMMethodName.flatTwoTower) == nil && lean.result(TDMMethodName.flatProduct) != nil)
    }

    /// TDM, JTM and OTM side by side: one tree row and one brute-force row per method and scorer,
    /// JTM's DNN and attention models with hierarchical features and OTM's trained beam-aware, the
    /// table's intervals and the per-method cost lines; over two seeds.
    @Test func methodsTableHasEveryRow() throws {
        var reports: [TDMExperimentReport] = []
        for seed: UInt64 in [1, 2] {
            let (_, _, data) = try smallSynthetic(seed: seed)
            var config = TDMExperimentConfig(dimension: 8, hidden: [8], attentionHidden: 4, maxHistory: 10, attentionMaxHistory: 10,
                                             training: .init(epochs: 1, batchSize: 64, negatives: .constant(2), samplesPerEpoch: 256),
                                             treeRounds: 2, beamWidth: 20, validationUsers: 20, seed: seed)
            config.twoTower = nil
            config.methods = [.tdm, .jtm, .otm]
            config.otmBeamWidth = 3
            let report = try TDMExperiment.run(data: data, config: config)
            for m in config.methods {
                for kind in TDMScorerKind.allCases {
                    #expect(report.result(TDMMethodName.tree(kind, m)) != nil, "\(m) \(kind)")
                    #expect(report.result(TDMMethodName.bruteForce(kind, m)) != nil, "\(m) \(kind)")
                    let cost = try #require(report.cost[m]?[kind])
                    #expect(cost.seconds > 0 && cost.samplesPerSecond > 0)
                }
            }
            #expect(report.methodModels[.jtm]?[.attention]?.isHierarchical == true)
            #expect(report.methodModels[.jtm]?[.innerProduct]?.isHierarchical == false)
            #expect(report.methodModels[.otm]?[.dnn]?.isHierarchical == false)
            #expect(report.models[.attention] === report.methodModels[.tdm]?[.attention])
            reports.append(report)
        }
        let md = TDMExperiment.markdown(reports)
        #expect(md.contains("| JTM tree + attention-DNN | ") && md.contains("| OTM brute force DNN | "))
        #expect(md.contains("(95%: "))
        #expect(md.contains("- OTM attention: tree / brute force recall@10"))
        #expect(md.contains("- JTM inner-product: tree / brute force recall@10"))
    }

    /// The two-tower baseline trains on the TDM run's catalogue and training sequences and is
    /// evaluated on its held-out users; its flat retriever ranks every item by encoder · item
    /// vector with the history left out.
    @Test func twoTowerBaselineSeesTheTDMData() throws {
        let (_, _, data) = try smallSynthetic()
        let tt = try TwoTowerData(tdm: data)
        #expect(tt.catalog.ids == data.items)
        #expect(tt.sequences.map { $0.map { tt.catalog.ids[$0] } } == data.sequences)
        #expect(tt.trainCounts == data.popularity)
        #expect(tt.test.map(\.user) == data.test.map(\.user) && tt.validation.map(\.user) == data.validation.map(\.user))
        #expect(tt.test.map(\.truth) == data.test.map { Set($0.truth) })
        #expect(tt.test.allSatisfy { $0.excluded == Set($0.history) })

        var options = TwoTowerExperimentOptions(protocol: .userHoldOut)
        options.dimension = 8
        options.training.epochs = 1
        let trained = try TwoTowerExperiment.train(data: tt, options: options)
        let retrieve = try TDMEvaluation.flatRetriever(twoTower: trained.encoder, items: trained.itemVectors, ids: tt.catalog.ids, k: 10)
        for user in data.test.prefix(3) {
            let (items, evaluations) = try retrieve(user)
            let u = try trained.encoder.encode(history: user.history).vector
            let seen = Set(user.history)
            var scored: [(id: ItemID, score: Float)] = []
            for r in 0..<tt.catalog.count where !seen.contains(tt.catalog.ids[r]) {
                var dot: Float = 0
                for (a, b) in zip(u, trained.itemVectors.row(r)) { dot += a * b }
                scored.append((tt.catalog.ids[r], dot))
            }
            scored.sort { $0.score > $1.score || ($0.score == $1.score && $0.id < $1.id) }
            let expected = scored.prefix(10).map(\.id)
            #expect(evaluations == tt.catalog.count)
            #expect(Set(items).isDisjoint(with: seen))
            // Same top-10 up to float rounding of near ties: compare as sets of the first 8.
            #expect(Set(items.prefix(8)).isSubset(of: Set(expected)), "user \(user.user)")
        }
    }

    /// A TDM data set whose training users have no two events gives the two-tower no sample, and one
    /// whose training items are not all among its items is inconsistent: typed errors.
    @Test func twoTowerBaselineWithoutSamplesIsATypedError() throws {
        var (_, _, data) = try smallSynthetic()
        let full = data
        data.sequences = data.sequences.map { Array($0.prefix(1)) }
        #expect(throws: TwoTowerError.self) { _ = try TwoTowerData(tdm: data) }
        // A training item outside the data's catalogue (an inconsistent hand-made data set).
        data = full
        data.items.removeAll { $0 == data.sequences[0][0] }
        #expect(throws: TwoTowerError.invalidConfiguration(
            field: "TDM data", reason: "training item \(full.sequences[0][0]) is not among its items")) {
            _ = try TwoTowerData(tdm: data)
        }
    }

    /// Warm start: the attention-DNN starts from the product-DNN's learnt tree, node and behaviour
    /// embeddings; a cold start from the initial tree's.
    @Test func warmStartTakesTheProductModelsTreeAndEmbeddings() throws {
        let (_, _, data) = try smallSynthetic()
        var config = TDMExperimentConfig(dimension: 8, hidden: [8], attentionHidden: 4, maxHistory: 10, attentionMaxHistory: 10,
                                         training: .init(epochs: 1, batchSize: 64, negatives: .constant(2), samplesPerEpoch: 256),
                                         treeRounds: 2, beamWidth: 20, validationUsers: 20, seed: 2, kinds: [.innerProduct])
        config.warmStartFromProduct = true
        config.twoTower = nil
        let product = try #require(try TDMExperiment.run(data: data, config: config).models[.innerProduct])
        let initial = try data.initialTree(dimension: 8, seed: 2)
        let warm = try TDMExperiment.initialModel(kind: .attention, data: data, config: config, warmStart: product)
        #expect(warm.nodes.value == product.nodes.value && warm.behaviour.table.value == product.behaviour.table.value)
        #expect(warm.tree.leafItems == product.tree.leafItems && warm.nodes.value != initial.levels.flatMap(\.embeddings.values))
        let cold = try TDMExperiment.initialModel(kind: .attention, data: data, config: config)
        #expect(cold.tree.leafItems == initial.leafItems && cold.nodes.value == initial.levels.flatMap(\.embeddings.values))
        // A run with the flag logs the warm start of the attention model.
        config.kinds = [.innerProduct, .attention]
        config.treeRounds = 1
        var lines: [String] = []
        let report = try TDMExperiment.run(data: data, config: config) { lines.append($0) }
        #expect(lines.contains { $0.contains("[attention] warm start") })
        // The provenance says how each model started.
        #expect(report.provenance[.attention]?.initialization?.hasPrefix("warm start") == true)
        #expect(report.provenance[.innerProduct]?.initialization?.hasPrefix("initial tree") == true)
    }

    /// Real-data runs (release build): `ARBOR_TDM_RUN=ml100k|synthetic` with optional
    /// `ARBOR_TDM_SEEDS=0,1,2`, `ARBOR_TDM_EPOCHS`, `ARBOR_TDM_OUT=<markdown file>`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["ARBOR_TDM_RUN"] != nil))
    func realRun() throws {
        let env = ProcessInfo.processInfo.environment
        let seeds = (env["ARBOR_TDM_SEEDS"] ?? "0").split(separator: ",").compactMap { UInt64($0) }
        let epochs = Int(env["ARBOR_TDM_EPOCHS"] ?? "") ?? 6
        let rounds = Int(env["ARBOR_TDM_ROUNDS"] ?? "") ?? 2
        let perEpoch = Int(env["ARBOR_TDM_SAMPLES"] ?? "")
        let log: (String) -> Void = { line in FileHandle.standardError.write((line + "\n").data(using: .utf8)!) }
        var reports: [TDMExperimentReport] = []
        for seed in seeds {
            let training = TDMTrainingConfig(epochs: epochs, batchSize: 128, negatives: .growing(total: 60),
                                             learningRate: 1e-3, sparseLearningRate: 1e-2, patience: 2,
                                             samplesPerEpoch: perEpoch, seed: seed)
            var config = TDMExperimentConfig(training: training, treeRounds: rounds, seed: seed)
            let data: TDMExperimentData
            var oracle: TDMMethodResult? = nil
            if env["ARBOR_TDM_RUN"] == "synthetic" {
                let catalog = try SyntheticCatalog.generate(.init(itemCount: 5_000, dimension: 16, superCategoryCount: 10,
                                                                          categoriesPerSuperCategory: 10, seed: seed))
                let users = try SyntheticUsers.generate(catalog: catalog, config: .init(userCount: 3_000, minInterests: 2, maxInterests: 4,
                                                                                       minHistoryLength: 20, maxHistoryLength: 60, seed: seed))
                data = try TDMExperimentData.synthetic(catalog: catalog, users: users, test: .count(300), validation: .count(200), seed: seed)
                oracle = try TDMEvaluation.evaluate(method: TDMMethodName.oracle, users: data.test,
                                                    retrieve: TDMEvaluation.syntheticOracle(catalog: catalog, users: users))
            } else {
                data = try TDMExperimentData.movieLens100K(directory: env["ARBOR_TDM_DATA"] ?? "/work/shared/data/ml-100k", seed: seed)
            }
            config.validationUsers = 200
            if let kinds = env["ARBOR_TDM_KINDS"] {
                config.kinds = kinds.split(separator: ",").compactMap { TDMScorerKind(rawValue: String($0)) }
            }
            if let lr = env["ARBOR_TDM_LR"].flatMap(Float.init) { config.training.learningRate = lr }
            if let lr = env["ARBOR_TDM_SPARSE_LR"].flatMap(Float.init) { config.training.sparseLearningRate = lr }
            if let gap = env["ARBOR_TDM_JTM_GAP"].flatMap(Int.init) { config.rebuild = .reassign(.init(levelGap: gap)) }
            if let beam = env["ARBOR_TDM_BEAM"].flatMap(Int.init) { config.beamWidth = beam }
            log("\(data.name) seed \(seed): \(data.items.count) items, \(data.sequences.count) train users, \(data.validation.count) validation, \(data.test.count) test")
            var report = try TDMExperiment.run(data: data, config: config, log: log)
            if let oracle { report.results.append(oracle) }
            reports.append(report)
            log(TDMExperiment.markdown(reports))
        }
        let md = TDMExperiment.markdown(reports)
        if let out = env["ARBOR_TDM_OUT"] { try md.write(toFile: out, atomically: true, encoding: .utf8) }
        #expect(!reports.isEmpty)
    }
}
