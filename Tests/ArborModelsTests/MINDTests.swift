import ArborCore
import ArborData
import ArborEngine
import ArborInference
import ArborMath
import ArborModels
import ArborNN
import ArborPipelines
import ArborRetrieval
import ArborTree
import Foundation
import Testing

private func mindIndexPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("mind-\(name)-\(UUID().uuidString).arbor").path
}

private func removeIndex(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
    try? FileManager.default.removeItem(atPath: path + "-lock")
}

/// A small MIND model with random weights (a hidden layer, K = 4, history 20), ids 100, 102, ...
private func smallModel(cosine: Bool = true, iterations: Int = 3, agreementScale: Float = 1,
                        stopGradient: Bool = false) throws -> MINDModel {
    let n = 60
    var config = MINDConfig(itemCount: n, dimension: 8, interests: 4, power: 5, iterations: iterations, hidden: [12],
                            maxHistory: 20, cosine: cosine)
    config.agreementScale = agreementScale
    config.routingStopGradient = stopGradient
    return try MINDModel(config: config, ids: (0..<n).map { ItemID(UInt64(100 + 2 * $0)) }, seed: 3)
}

@Suite("MIND: training model, serving encoder, index, front door")
struct MINDTests {
    /// The training tape's interests equal the serving encoder's within 1e-4, for histories of
    /// several lengths (K' = 1, 2, 3, 4; padding in the batch; a history longer than maxHistory).
    @Test(arguments: [true, false])
    func trainingForwardEqualsServingEncoder(cosine: Bool) throws {
        try expectTrainingForwardEqualsServing(try smallModel(cosine: cosine))
    }

    /// The same with the routing options: 5 rounds, agreement scale β = 4, ComiRec-DR's
    /// stop-gradient (training only); and β survives the encoder's tensors (a sixth option value).
    @Test func trainingForwardEqualsServingEncoderWithRoutingOptions() throws {
        let model = try smallModel(iterations: 5, agreementScale: 4, stopGradient: true)
        try expectTrainingForwardEqualsServing(model)
        let encoder = try model.encoder()
        #expect(encoder.agreementScale == 4 && encoder.iterations == 5)
        let tensors = encoder.namedTensors()
        #expect(tensors.first { $0.name == "mind.options" }?.values.count == 6)
        let back = try MINDEncoder(tensors: tensors, ids: encoder.ids)
        #expect(back.agreementScale == 4)
        let history = Array(encoder.ids.prefix(17))
        #expect(back.interests(history: history) == encoder.interests(history: history))
        #expect(back.interests(history: history) != (try smallModel().encoder()).interests(history: history))
        // MIND's β = 1 keeps the five values older readers know.
        #expect(try smallModel().encoder().namedTensors().first { $0.name == "mind.options" }?.values.count == 5)
        var bad = tensors
        let i = bad.firstIndex { $0.name == "mind.options" }!
        bad[i].values[5] = -2
        #expect { try MINDEncoder(tensors: bad, ids: encoder.ids) } throws: { error in
            (error as? ModelLoadError).map { "\($0)".contains("agreement scale") } ?? false
        }
        var config = model.config
        config.agreementScale = .nan
        #expect { try MINDModel(config: config, ids: model.ids) } throws: { error in
            guard case ArborError.invalidArgument(let name, _) = error else { return false }
            return name == "agreementScale"
        }
    }

    private func expectTrainingForwardEqualsServing(_ model: MINDModel) throws {
        let encoder = try model.encoder()
        let histories: [[Int]] = [[3], [1, 2, 5], [7, 8, 9, 10, 11], Array(0 ..< 9), Array(5 ..< 30)]
        let length = 20, k = 4, d = 8
        var rows: [Int] = [], mask: [Float] = [], active: [Int] = []
        for h in histories {
            let window = Array(h.suffix(length))
            rows += window + [Int](repeating: -1, count: length - window.count)
            mask += [Float](repeating: 1, count: window.count) + [Float](repeating: 0, count: length - window.count)
            active.append(MultiInterest.activeInterests(historyLength: window.count, maxInterests: k))
        }
        #expect(active == [1, 1, 2, 3, 4])
        let tape = Tape()
        let trained = try model.interests(historyRows: rows, batch: histories.count, length: length, mask: mask,
                                          active: active, on: tape)
        for (b, h) in histories.enumerated() {
            let served = encoder.interests(history: h.map { model.ids[$0] })
            #expect(!served.usedFallback && served.unknownItems == 0)
            #expect(served.vectors.rows == active[b])
            for j in 0 ..< active[b] {
                for c in 0 ..< d {
                    let t = trained.values[(b * k + j) * d + c]
                    #expect(abs(t - served.vectors[j, c]) < 1e-4, "user \(b) interest \(j) column \(c)")
                }
            }
        }
    }

    @Test func badInputEmptyHistoryUnknownIdsAndShortHistories() throws {
        let model = try smallModel()
        let encoder = try model.encoder(itemFrequencies: (0 ..< 60).map { Double($0 % 3) })
        // Empty history and only unknown ids: one fallback query.
        for history in [[], [ItemID(1), ItemID(3)]] {
            let produced = try encoder.queries(history: history, excluded: [])
            #expect(produced.usedFallback && produced.queries.count == 1)
            #expect(produced.queries[0].vector == encoder.fallback)
        }
        // Unknown ids are ignored and reported: the same interests as without them.
        let known = [model.ids[4], model.ids[9], model.ids[12], model.ids[30]]
        let mixed = [ItemID(1), model.ids[4], model.ids[9], ItemID(77), model.ids[12], model.ids[30]]
        #expect(encoder.unknownItems(in: mixed) == [ItemID(1), ItemID(77)])
        let a = encoder.interests(history: known), b = encoder.interests(history: mixed)
        #expect(a.vectors == b.vectors && b.unknownItems == 2 && a.unknownItems == 0)
        // K = 4 but a history of 2 or 3 items: one interest; 4 items: two.
        #expect(encoder.interests(history: Array(known.prefix(2))).vectors.rows == 1)
        #expect(encoder.interests(history: Array(known.prefix(3))).vectors.rows == 1)
        #expect(encoder.interests(history: known).vectors.rows == 2)
        // Deterministic: the same history gives the same vectors.
        #expect(encoder.interests(history: known) == encoder.interests(history: known))
    }

    @Test func encoderTensorsRoundTripAndMisshapenTensorsAreNamed() throws {
        let encoder = try smallModel().encoder()
        let tensors = encoder.namedTensors()
        let back = try MINDEncoder(tensors: tensors, ids: encoder.ids)
        #expect(back.interests(history: Array(encoder.ids.prefix(9))) == encoder.interests(history: Array(encoder.ids.prefix(9))))
        var broken = tensors
        let i = broken.firstIndex { $0.name == "mind.bilinear" }!
        broken[i] = NamedTensor(name: "mind.bilinear", shape: [8, 7], values: [Float](repeating: 0, count: 56))
        #expect { try MINDEncoder(tensors: broken, ids: encoder.ids) } throws: { error in
            guard case ModelLoadError.weightsDoNotMatch(let kind, let reason) = error else { return false }
            return kind == "mind" && reason.contains("mind.bilinear")
        }
        let missing = tensors.filter { $0.name != "mind.routing" }
        #expect { try MINDEncoder(tensors: missing, ids: encoder.ids) } throws: { error in
            (error as? ModelLoadError).map { "\($0)".contains("mind.routing") } ?? false
        }
    }

    /// The index written by the pipelines serves through the front door: K' interests searched
    /// and merged (tree at a wide beam = exact), per-interest lists on request, bad input handled,
    /// and the index refused by another producer's loader with a typed error.
    @Test func frontDoorServesAMINDIndex() throws {
        let model = try smallModel()
        let encoder = try model.encoder()
        let vectors = model.itemVectorMatrix()
        let tree = try TreeBuilder.balancedKMeans(embeddings: vectors, items: model.ids, options: .init(fanOut: 4))
        let path = mindIndexPath("front")
        defer { removeIndex(path) }
        try IndexFiles.writeMINDIndex(tree: tree, encoder: encoder, to: path)
        let engine = try Arbor.open(path)
        #expect(engine.queryProducer == .mind)
        let history = Array(model.ids[10 ..< 26])  // 16 items: K' = 4
        let wide = tree.levels.map(\.nodeCount).max()!
        let viaTree = try engine.search(history: history, k: 10, using: .tree(beam: wide), perInterest: true)
        let exact = try engine.search(history: history, k: 10, using: .exact)
        #expect(viaTree.interests.count == 4)
        #expect(viaTree.items.map(\.item) == exact.items.map(\.item))
        #expect(Set(viaTree.items.map(\.item)).isDisjoint(with: history))
        // Each merged item's score is its best over the interests' lists.
        for hit in viaTree.items {
            let best = viaTree.interests.compactMap { $0.items.first { $0.item == hit.item }?.score }.max()
            #expect(best == hit.score)
        }
        // One beam shared by the interests: at a wide beam the same exact merged list; per-interest
        // lists cannot come from it and are refused by name.
        let shared = try engine.search(history: history, k: 10, using: .tree(beam: wide, interests: .shared))
        #expect(shared.items.map(\.item) == exact.items.map(\.item))
        #expect(shared.interests.isEmpty)
        #expect { try engine.search(history: history, k: 10, using: .tree(beam: wide, interests: .shared), perInterest: true) }
            throws: { error in
                guard case ArborError.invalidArgument(let name, _) = error else { return false }
                return name == "perInterest"
            }
        let empty = try engine.search(history: [], k: 5)
        #expect(empty.usedFallbackQuery && empty.items.count == 5)
        let unknown = try engine.search(history: [ItemID(1)] + history, k: 5)
        #expect(unknown.unknownHistoryItems == [ItemID(1)])
        #expect(throws: ArborError.self) { try engine.search(history: [ItemID(1)], k: 5, unknownItems: .reject) }
        // Opened as another kind: typed errors.
        let reader = try IndexReader(path: path)
        #expect(throws: TwoTowerError.self) { try TwoTowerEncoder(index: reader) }
        let vectorPath = mindIndexPath("vector")
        defer { removeIndex(vectorPath) }
        try IndexFiles.writeVectorIndex(tree, to: vectorPath)
        #expect(throws: ModelLoadError.kindMismatch(field: "queryProducer", expected: "mind", found: "leaf-mean-pooling")) {
            try MINDEncoder(index: try IndexReader(path: vectorPath))
        }
    }

    /// A short run on generated users with planted interests: the loss falls, validation recall
    /// is recorded, and the trained encoder gives several interests to long histories.
    @Test func shortTrainingOnPlantedInterests() throws {
        let catalog = try SyntheticCatalog.generate(.init(itemCount: 400, dimension: 8, superCategoryCount: 5,
                                                          categoriesPerSuperCategory: 4, seed: 1))
        let users = try SyntheticUsers.generate(catalog: catalog, config: .init(userCount: 300, minInterests: 2, maxInterests: 3,
                                                                               minHistoryLength: 16, maxHistoryLength: 30, seed: 1))
        let data = try TwoTowerData.synthetic(catalog: catalog, users: users, test: .count(30), validation: .count(30), seed: 1)
        var options = MINDExperimentOptions()
        options.dimension = 16
        options.maxHistory = 16
        options.training = TwoTowerTrainingOptions(loss: .mixed(negatives: 50), batchSize: 128, epochs: 3, learningRate: 5e-3, seed: 1)
        let (_, report, encoder, _) = try MINDExperiment.train(data: data, options: options)
        #expect(report.epochs.count == 3)
        #expect(report.epochs.last!.meanLoss < report.epochs.first!.meanLoss)
        #expect(report.bestMetric != nil)
        #expect(encoder.interests(history: data.test[0].history).vectors.rows >= 2)
    }

    /// Planted-interest data whose lowest 20 catalogue rows never occur in training (taken out of
    /// every training sequence): cold items with random vectors.
    private func dataWithColdItems() throws -> (TwoTowerData, cold: [ItemID]) {
        let catalog = try SyntheticCatalog.generate(.init(itemCount: 200, dimension: 8, superCategoryCount: 4,
                                                          categoriesPerSuperCategory: 3, seed: 2))
        let users = try SyntheticUsers.generate(catalog: catalog, config: .init(userCount: 200, minInterests: 2, maxInterests: 3,
                                                                               minHistoryLength: 16, maxHistoryLength: 24, seed: 2))
        var data = try TwoTowerData.synthetic(catalog: catalog, users: users, test: .count(20), validation: .count(20), seed: 2)
        data.sequences = data.sequences.map { $0.filter { $0 >= 20 } }.filter { $0.count >= 2 }
        data.samples = try TwoTowerSamples(sequences: data.sequences, itemCount: data.catalog.count)
        data.trainCounts = [:]
        for sequence in data.sequences { for row in sequence { data.trainCounts[data.catalog.ids[row], default: 0] += 1 } }
        let cold = data.catalog.ids.filter { data.trainCounts[$0] == nil }
        return (data, cold)
    }

    /// Items never seen in training are left out of the served index by default: not retrievable
    /// through the tree or the flat scan, and unknown (skipped, counted) in a history; kept with
    /// their vectors under `.keep`. The same for the two-tower beside MIND.
    @Test func coldItemsAreLeftOutOfTheIndexAndUnknownInHistories() throws {
        let (data, cold) = try dataWithColdItems()
        #expect(cold.count >= 20)
        var options = MINDExperimentOptions()
        options.dimension = 8
        options.maxHistory = 16
        options.ks = [10]
        options.beams = [50]
        options.training = TwoTowerTrainingOptions(loss: .mixed(negatives: 20), batchSize: 128, epochs: 1, learningRate: 5e-3, seed: 1)
        var twoTower = TwoTowerExperimentOptions(protocol: .userHoldOut)
        twoTower.dimension = 8
        twoTower.training = options.training
        twoTower.ks = [10]
        options.besideTwoTower = twoTower
        let result = try MINDExperiment.run(data: data, options: options)
        #expect(result.served.coldCount == cold.count && result.served.policy == .leaveOut)
        #expect(result.ids.count == data.catalog.count - cold.count)
        #expect(Set(result.ids).isDisjoint(with: cold))
        #expect(result.tree.itemCount == result.ids.count && result.itemVectors.rows == result.ids.count)
        #expect(result.encoder.itemCount == result.ids.count)
        #expect(result.coldItems == nil)
        #expect(result.markdown(metrics: [.recall]).contains("cold items (never in training): \(cold.count) of \(data.catalog.count)"))
        let history = Array(result.ids.prefix(12))
        let withCold = [try #require(cold.first)]
        let plain = result.encoder.interests(history: history)
        let mixed = result.encoder.interests(history: withCold + history)
        #expect(mixed.unknownItems == 1 && plain.unknownItems == 0)
        #expect(mixed.vectors == plain.vectors)
        // Through the front door: the index holds no cold item, and a cold id in a history is reported.
        let path = mindIndexPath("cold")
        defer { removeIndex(path) }
        try MINDExperiment.export(result, indexPath: path)
        let engine = try Arbor.open(path)
        #expect(engine.itemCount == result.ids.count)
        let found = try engine.search(history: withCold + history, k: 20, using: .exact)
        #expect(found.unknownHistoryItems == withCold)
        #expect(Set(found.items.map(\.item)).isDisjoint(with: cold))
        // The two-tower's rows beside MIND never return a cold item either.
        let twoTowerTrained = try TwoTowerExperiment.train(data: data, options: twoTower)
        #expect(Set(twoTowerTrained.ids).isDisjoint(with: cold) && twoTowerTrained.ids.count == result.ids.count)
        #expect(try twoTowerTrained.encoder.encode(history: withCold + history).unknownItems == 1)

        // Kept: every catalogue item is served, and the cold-item share is measured.
        options.coldItems = .keep
        options.besideTwoTower = nil
        let kept = try MINDExperiment.run(data: data, options: options)
        #expect(kept.ids == data.catalog.ids && kept.encoder.itemCount == data.catalog.count)
        #expect(kept.encoder.interests(history: withCold + history).unknownItems == 0)
        let share = try #require(kept.coldItems)
        #expect(abs(share.catalogueShare - Double(cold.count) / Double(data.catalog.count)) < 1e-12)
    }

    /// A catalogue none of whose items occurs in training has nothing to serve: a typed error.
    @Test func aCatalogueWithNoTrainedItemIsRefused() throws {
        #expect(throws: ArborError.empty(what: "catalogue items seen in training")) {
            try ServedCatalogue(ids: [ItemID(1), ItemID(2)], trainCounts: [ItemID(3): 4], policy: .leaveOut)
        }
        let served = try ServedCatalogue(ids: [ItemID(1), ItemID(2), ItemID(5)], trainCounts: [ItemID(5): 1, ItemID(1): 2],
                                         policy: .leaveOut)
        #expect(served.rows == [0, 2] && served.coldCount == 1)
        let m = try Matrix(rows: 3, cols: 2, values: [0, 1, 2, 3, 4, 5])
        #expect(served.select(m) == (try Matrix(rows: 2, cols: 2, values: [0, 1, 4, 5])))
        #expect(served.select([ItemID(1), ItemID(2), ItemID(5)]) == [ItemID(1), ItemID(5)])
    }
}
