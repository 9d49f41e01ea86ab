import ArborInference
import ArborCore
import ArborMath
import ArborNN
import ArborRetrieval
import ArborTree
import Foundation
import Testing

@testable import ArborModels

// MARK: - Fixtures

/// 4 groups of 10 items (rows 0..<40, ids 1000 + row); user `u` belongs to group `u % 4` and its
/// sequence is 12 random items of that group: the planted preference a two-tower must learn.
private enum Planted {
    static let groups = 4, perGroup = 10
    static var itemCount: Int { groups * perGroup }
    static func id(_ row: Int) -> ItemID { ItemID(UInt64(1000 + row)) }
    static func catalog(categories: Bool = false) throws -> TwoTowerCatalog {
        let ids = (0 ..< itemCount).map(id)
        guard categories else { return try TwoTowerCatalog(ids: ids) }
        var cats = [ItemID: UInt32]()
        for r in 0 ..< itemCount { cats[id(r)] = UInt32(r / perGroup) * 7 }  // sparse raw category values
        return try TwoTowerCatalog(ids: ids, categories: cats)
    }
    static func sequences(users: Int, length: Int = 12, seed: UInt64) -> [[Int]] {
        var rng = SplitMix64(seed: seed)
        return (0 ..< users).map { u in
            let g = u % groups
            return (0 ..< length).map { _ in g * perGroup + Int(rng.next() % UInt64(perGroup)) }
        }
    }
    static func config(categories: Int = 0, hidden: [Int] = [], shared: Bool = true) -> TwoTowerConfig {
        TwoTowerConfig(itemCount: itemCount, categoryCount: categories, dimension: 16, hidden: hidden, maxHistory: 10,
                       cosine: true, temperature: 0.1, shareEmbeddings: shared)
    }
    static func options(_ loss: TwoTowerLoss = .sampled(negatives: 20), epochs: Int = 8, checkpoints: String? = nil) -> TwoTowerTrainingOptions {
        TwoTowerTrainingOptions(loss: loss, batchSize: 32, epochs: epochs, learningRate: 0.01, patience: 3, seed: 1,
                                checkpointDirectory: checkpoints)
    }

    /// Mean share of same-group items in the top 10 of a user whose history is 5 items of one group.
    static func groupPrecision(_ encoder: TwoTowerEncoder, _ vectors: Matrix) throws -> Double {
        var total = 0.0
        var rng = SplitMix64(seed: 99)
        for g in 0 ..< groups {
            let history = (0 ..< 5).map { _ in id(g * perGroup + Int(rng.next() % UInt64(perGroup))) }
            let u = try encoder.encode(history: history).vector
            let scores = (0 ..< itemCount).map { r in zip(u, vectors.row(r)).reduce(Float(0)) { $0 + $1.0 * $1.1 } }
            let top = (0 ..< itemCount).sorted { scores[$0] > scores[$1] }.prefix(10)
            total += Double(top.filter { $0 / perGroup == g }.count) / 10
        }
        return total / Double(groups)
    }
}

private final class TempDir {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("twotower-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

private func trained(
    _ loss: TwoTowerLoss = .sampled(negatives: 20), categories: Bool = false, hidden: [Int] = [], shared: Bool = true,
    frequency: FrequencyEstimate = .counted
) throws -> (TwoTowerModel, TwoTowerTrainingReport) {
    let catalog = try Planted.catalog(categories: categories)
    let model = try TwoTowerModel(config: Planted.config(categories: catalog.categoryCount, hidden: hidden, shared: shared),
                                  catalog: catalog, seed: 3)
    var options = Planted.options(loss)
    options.frequency = frequency
    let trainer = try TwoTowerTrainer(model: model, options: options)
    let samples = try TwoTowerSamples(sequences: Planted.sequences(users: 80, seed: 5), itemCount: Planted.itemCount)
    let report = try trainer.train(samples: samples)
    return (model, report)
}

// MARK: - Learning

@Suite("TwoTower: learning a planted preference")
struct TwoTowerLearningTests {
    @Test func sampledSoftmaxLearnsThePlantedGroups() throws {
        let catalog = try Planted.catalog()
        let untrained = try TwoTowerModel(config: Planted.config(), catalog: catalog, seed: 3)
        let before = try Planted.groupPrecision(try untrained.encoder(), untrained.itemVectorMatrix())
        let (model, report) = try trained()
        let after = try Planted.groupPrecision(try model.encoder(), model.itemVectorMatrix())
        #expect(before < 0.6)
        #expect(after >= 0.9, "top-10 same-group share \(after) (before training \(before))")
        #expect(report.epochs.count == 8)
        #expect(report.epochs.last!.meanLoss < report.epochs.first!.meanLoss)
        #expect(report.epochs.allSatisfy { $0.samplesPerSecond > 0 && $0.samples == 80 * 11 })
    }

    @Test(arguments: [TwoTowerLoss.inBatch, .mixed(negatives: 10)])
    func inBatchAndMixedLossesLearnToo(loss: TwoTowerLoss) throws {
        let (model, _) = try trained(loss)
        let after = try Planted.groupPrecision(try model.encoder(), model.itemVectorMatrix())
        #expect(after >= 0.85, "\(loss): same-group share \(after)")
    }

    @Test func streamingFrequencyCategoriesSeparateTablesAndHiddenLayers() throws {
        let (model, report) = try trained(.mixed(negatives: 8), categories: true, hidden: [24], shared: false,
                                          frequency: .streaming(rate: 0.1))
        #expect(model.categoryEmbedding != nil && model.historyEmbedding != nil)
        #expect(model.isFinite)
        #expect(report.epochs.allSatisfy { $0.meanLoss.isFinite })
        let after = try Planted.groupPrecision(try model.encoder(), model.itemVectorMatrix())
        #expect(after >= 0.85, "same-group share \(after)")
    }

    @Test func sameSeedSameWeights() throws {
        let (a, _) = try trained()
        let (b, _) = try trained()
        #expect(a.snapshot() == b.snapshot())
    }

    @Test func earlyStoppingRestoresTheBestEpoch() throws {
        let catalog = try Planted.catalog()
        let model = try TwoTowerModel(config: Planted.config(), catalog: catalog, seed: 3)
        let trainer = try TwoTowerTrainer(model: model, options: Planted.options(epochs: 10))
        let samples = try TwoTowerSamples(sequences: Planted.sequences(users: 40, seed: 5), itemCount: Planted.itemCount)
        // A validator that peaks at epoch 2, then declines: patience 3 stops after epoch 5.
        var calls = 0
        var weightsAtTwo: [[Float]] = []
        let report = try trainer.train(samples: samples, validate: { m in
            calls += 1
            if calls == 2 { weightsAtTwo = m.snapshot() }
            return calls == 2 ? 1.0 : 0.5 - Double(calls) * 0.01
        })
        #expect(report.epochs.count == 5)
        #expect(report.stoppedEarly)
        #expect(report.bestEpoch == 2)
        #expect(report.bestMetric == 1.0)
        #expect(model.snapshot() == weightsAtTwo)
    }

    @Test func encoderMatchesTheTrainingTower() throws {
        let (model, _) = try trained(.inBatch, categories: true, hidden: [12], shared: false)
        let encoder = try model.encoder()
        let history = [3, 7, 7, 21]
        let tape = Tape()
        let u = try model.userVectors(historyRows: history + [-1], batch: 1, length: 5, mask: [1, 1, 1, 1, 0], on: tape)
        let v = try encoder.encode(history: history.map(Planted.id)).vector
        #expect(u.values.count == v.count)
        for (a, b) in zip(u.values, v) { #expect(abs(a - b) < 1e-5) }
        // Item tower on the tape equals the exported item vectors.
        let items = try model.itemVectors(rows: [0, 39], on: Tape())
        let m = model.itemVectorMatrix()
        for j in 0 ..< 16 {
            #expect(abs(items.values[j] - m[0, j]) < 1e-6)
            #expect(abs(items.values[16 + j] - m[39, j]) < 1e-6)
        }
    }
}

// MARK: - Encoder behaviour and serialisation

@Suite("TwoTower: encoder, weights and index")
struct TwoTowerEncoderTests {
    @Test func unknownIdsAreCountedOrRejectedAndEmptyHistoriesFallBack() throws {
        let (model, _) = try trained()
        let encoder = try model.encoder(itemFrequencies: (0 ..< Planted.itemCount).map { Double($0 % 3) })
        let known = [Planted.id(1), Planted.id(2)]
        let plain = try encoder.encode(history: known)
        let withUnknown = try encoder.encode(history: [ItemID(7), Planted.id(1), ItemID(8), Planted.id(2)])
        #expect(withUnknown.unknownItems == 2)
        #expect(!withUnknown.usedFallback)
        #expect(withUnknown.vector == plain.vector)
        #expect(throws: TwoTowerError.unknownItem(ItemID(8))) {
            try encoder.encode(history: [ItemID(7), Planted.id(1), ItemID(8)], unknown: .reject)
        }
        let empty = try encoder.encode(history: [])
        #expect(empty.usedFallback && empty.unknownItems == 0)
        #expect(empty.vector == encoder.fallback)
        let norm = encoder.fallback.reduce(0) { $0 + $1 * $1 }
        #expect(abs(norm - 1) < 1e-4)
        let allUnknown = try encoder.encode(history: [ItemID(5)])
        #expect(allUnknown.usedFallback && allUnknown.unknownItems == 1)
        #expect(throws: TwoTowerError.emptyHistory) { try encoder.encode(history: [], empty: .reject) }
        // Only the most recent maxHistory (10) known items count.
        let long = (0 ..< 30).map { Planted.id($0) }
        #expect(try encoder.encode(history: long).vector == (try encoder.encode(history: Array(long.suffix(10))).vector))
    }

    @Test func encoderRoundTripsThroughNamedTensorsAndAnIndex() throws {
        let (model, _) = try trained(.sampled(negatives: 20), hidden: [20])
        let encoder = try model.encoder()
        let again = try TwoTowerEncoder(tensors: encoder.namedTensors(), ids: encoder.ids)
        let h = [Planted.id(4), Planted.id(30)]
        #expect(try again.encode(history: h) == (try encoder.encode(history: h)))

        let dir = TempDir()
        let tree = try TreeBuilder.balancedKMeans(embeddings: model.itemVectorMatrix(), items: model.catalog.ids)
        let payload = encoder.indexPayload()
        let path = dir.path + "/tt.arbor"
        try IndexWriter().write(layout: tree, tensors: payload.tensors, queryProducer: .twoTower,
                                extra: payload.extra, to: path)
        let reader = try IndexReader(path: path)
        #expect(reader.queryProducer == .twoTower)
        let loaded = try TwoTowerEncoder(index: reader)
        #expect(loaded.ids == encoder.ids)
        #expect(try loaded.encode(history: h) == (try encoder.encode(history: h)))
        // The loaded encoder drives the tree: its top item for a group-2 history is a group-2 item.
        let retriever = try TreeRetriever(source: reader, scorer: InnerProductScorer(dimension: reader.dimension),
                                          itemCount: reader.itemCount, dimension: reader.dimension)
        let q = try loaded.encode(history: [Planted.id(20), Planted.id(25)])
        let top = try retriever.search(Query(vector: q.vector), parameters: SearchParameters(k: 5, beamWidth: 40))
        #expect(top.items.allSatisfy { Int($0.item.rawValue - 1000) / 10 == 2 })
    }

    @Test func anIndexWithoutTheEncoderIsRefused() throws {
        let dir = TempDir()
        let catalog = try Planted.catalog()
        let model = try TwoTowerModel(config: Planted.config(), catalog: catalog)
        let tree = try TreeBuilder.balancedKMeans(embeddings: model.itemVectorMatrix(), items: catalog.ids)
        let path = dir.path + "/plain.arbor"
        try IndexWriter().write(layout: tree, to: path)
        #expect(throws: TwoTowerError.self) { try TwoTowerEncoder(index: try IndexReader(path: path)) }
    }

    @Test func encoderTensorsOfOtherShapesAreRejected() throws {
        let encoder = try TwoTowerModel(config: Planted.config(hidden: [8]), catalog: try Planted.catalog()).encoder()
        var tensors = encoder.namedTensors()
        // Drop a tensor.
        #expect(throws: TwoTowerError.missingTensor(name: "two-tower.fallback")) {
            try TwoTowerEncoder(tensors: tensors.filter { $0.name != "two-tower.fallback" }, ids: encoder.ids)
        }
        // Fewer ids than behaviour rows.
        #expect(throws: TwoTowerError.self) { try TwoTowerEncoder(tensors: tensors, ids: Array(encoder.ids.dropLast())) }
        // A layer whose width does not chain.
        let i = tensors.firstIndex { $0.name == "two-tower.mlp.1.weight" }!
        tensors[i] = ArborTree.NamedTensor(name: tensors[i].name, shape: [9, 16], values: [Float](repeating: 0, count: 144))
        #expect(throws: TwoTowerError.shapeMismatch(name: "two-tower.mlp.1.weight", expected: [8, 16], found: [9, 16])) {
            try TwoTowerEncoder(tensors: tensors, ids: encoder.ids)
        }
        // A foreign two-tower tensor.
        let extra = encoder.namedTensors() + [ArborTree.NamedTensor(name: "two-tower.other", shape: [1], values: [0])]
        #expect(throws: TwoTowerError.unexpectedTensor(name: "two-tower.other")) {
            try TwoTowerEncoder(tensors: extra, ids: encoder.ids)
        }
    }

    @Test func weightsFilesRoundTripAndCheckDigests() throws {
        let dir = TempDir()
        let (model, _) = try trained(.inBatch, categories: true)
        let path = dir.path + "/ck.ttw"
        try model.checkpoint(epoch: 3, metric: 0.25).write(to: path)
        let file = try TwoTowerWeightsFile.read(at: path)
        #expect(file.epoch == 3 && file.metric == 0.25 && file.kind == .checkpoint)
        let restored = try TwoTowerModel(checkpoint: file)
        #expect(restored.snapshot() == model.snapshot())
        #expect(restored.catalog == model.catalog)

        let encoderPath = dir.path + "/enc.ttw"
        let encoder = try model.encoder()
        try encoder.weightsFile(config: model.config, epoch: 3, metric: nil).write(to: encoderPath)
        let loaded = try TwoTowerEncoder(weightsFile: try TwoTowerWeightsFile.read(at: encoderPath))
        #expect(try loaded.encode(history: [Planted.id(3)]) == (try encoder.encode(history: [Planted.id(3)])))
        // An encoder file is not a checkpoint.
        #expect(throws: TwoTowerError.self) { try TwoTowerModel(checkpoint: try TwoTowerWeightsFile.read(at: encoderPath)) }
    }

    @Test func aCorruptedWeightsFileIsADigestMismatch() throws {
        let dir = TempDir()
        let (model, _) = try trained()
        let path = dir.path + "/ck.ttw"
        try model.checkpoint(epoch: 1, metric: nil).write(to: path)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 3] ^= 0x40  // a bit of the last tensor (the MLP bias)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        do {
            _ = try TwoTowerWeightsFile.read(at: path)
            Issue.record("a corrupted file was read")
        } catch let TwoTowerError.digestMismatch(name, expected, found) {
            #expect(name == "two-tower.mlp.0.bias")
            #expect(expected != found)
        }
        // Truncated, foreign and missing files.
        try Data(bytes.dropLast(10)).write(to: URL(fileURLWithPath: path))
        #expect(throws: TwoTowerError.self) { try TwoTowerWeightsFile.read(at: path) }
        try Data("not weights at all".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: TwoTowerError.badWeightsFile(path: path, reason: "missing the ARBORTTW magic")) {
            try TwoTowerWeightsFile.read(at: path)
        }
        #expect(throws: TwoTowerError.badWeightsFile(path: dir.path + "/none.ttw", reason: "no such file")) {
            try TwoTowerWeightsFile.read(at: dir.path + "/none.ttw")
        }
    }

    @Test func aCheckpointOfOtherShapesIsRejected() throws {
        let dir = TempDir()
        let catalog = try Planted.catalog()
        let small = try TwoTowerModel(config: Planted.config(), catalog: catalog)
        let path = dir.path + "/small.ttw"
        try small.checkpoint(epoch: 0, metric: nil).write(to: path)
        let file = try TwoTowerWeightsFile.read(at: path)
        var wider = Planted.config()
        wider.dimension = 24
        let other = try TwoTowerModel(config: wider, catalog: catalog)
        #expect(throws: TwoTowerError.shapeMismatch(name: "two-tower.item.table", expected: [40, 24], found: [40, 16])) {
            try other.load(file.tensors)
        }
        let separate = try TwoTowerModel(config: Planted.config(shared: false), catalog: catalog)
        #expect(throws: TwoTowerError.missingTensor(name: "two-tower.history.table")) { try separate.load(file.tensors) }
        let hidden = try TwoTowerModel(config: Planted.config(hidden: [8]), catalog: catalog)
        #expect(throws: TwoTowerError.self) { try hidden.load(file.tensors) }
    }
}

// MARK: - Bad input

@Suite("TwoTower: bad input")
struct TwoTowerBadInputTests {
    @Test func noTrainingSamples() throws {
        #expect(throws: TwoTowerError.noTrainingSamples(reason: "no sequence has more than 1 item(s) (2 sequences)")) {
            try TwoTowerSamples(sequences: [[1], [2]], itemCount: 5)
        }
        #expect(throws: TwoTowerError.self) { try TwoTowerSamples(sequences: [[1, 9]], itemCount: 5) }
        #expect(throws: TwoTowerError.noItems) { try TwoTowerCatalog(ids: []) }
        #expect(throws: TwoTowerError.duplicateItem(ItemID(3))) { try TwoTowerCatalog(ids: [3, 1, 3]) }
    }

    @Test func badConfigurationAndOptions() throws {
        let catalog = try Planted.catalog()
        var c = Planted.config()
        c.temperature = 0
        #expect(throws: TwoTowerError.self) { try TwoTowerModel(config: c, catalog: catalog) }
        c = Planted.config()
        c.itemCount = 41
        #expect(throws: TwoTowerError.self) { try TwoTowerModel(config: c, catalog: catalog) }
        let model = try TwoTowerModel(config: Planted.config(), catalog: catalog)
        var o = Planted.options()
        o.batchSize = 1
        #expect(throws: TwoTowerError.self) { try TwoTowerTrainer(model: model, options: o) }
        o = Planted.options(.sampled(negatives: 0))
        #expect(throws: TwoTowerError.self) { try TwoTowerTrainer(model: model, options: o) }
    }

    @Test func aNaNLossStopsTrainingAndKeepsTheLastGoodCheckpoint() throws {
        let dir = TempDir()
        let catalog = try Planted.catalog()
        let model = try TwoTowerModel(config: Planted.config(), catalog: catalog, seed: 3)
        let trainer = try TwoTowerTrainer(model: model, options: Planted.options(epochs: 5, checkpoints: dir.path))
        let samples = try TwoTowerSamples(sequences: Planted.sequences(users: 40, seed: 5), itemCount: Planted.itemCount)
        var afterEpochOne: [[Float]] = []
        do {
            _ = try trainer.train(samples: samples, onEpoch: { stats in
                guard stats.epoch == 1 else { return }
                afterEpochOne = model.snapshot()
                // Poison every weight of the MLP: the next forward pass is NaN.
                let w = model.tower.layers[0].weight
                try? w.assign([Float](repeating: .nan, count: w.count))
            })
            Issue.record("training went on through a NaN loss")
        } catch let TwoTowerError.nonFiniteLoss(epoch, batch, good, checkpoint) {
            #expect(epoch == 2 && batch == 1 && good == 1)
            #expect(checkpoint == dir.path + "/last.ttw")
            let file = try TwoTowerWeightsFile.read(at: dir.path + "/last.ttw")
            #expect(file.epoch == 1)
            #expect(file.tensors.allSatisfy { $0.values.allSatisfy(\.isFinite) })
            #expect(model.isFinite)
            #expect(model.snapshot() == afterEpochOne)
            let message = TwoTowerError.nonFiniteLoss(epoch: epoch, batch: batch, lastGoodEpoch: good, lastGoodCheckpoint: checkpoint).description
            #expect(message.contains("NaN") && message.contains("last.ttw"))
        }
    }

    @Test func cancellationStopsBetweenBatches() throws {
        let model = try TwoTowerModel(config: Planted.config(), catalog: try Planted.catalog())
        let trainer = try TwoTowerTrainer(model: model, options: Planted.options())
        let samples = try TwoTowerSamples(sequences: Planted.sequences(users: 40, seed: 5), itemCount: Planted.itemCount)
        let flag = CancellationFlag()
        flag.cancel()
        #expect(throws: CancellationError.self) { try trainer.train(samples: samples, cancellation: flag) }
    }
}

@Suite("TwoTower: streaming frequency")
struct TwoTowerFrequencyTests {
    @Test func streamingEstimateConvergesToTheSamplingRate() {
        var e = StreamingFrequencyEstimator(itemCount: 4, rate: 0.05, initialGap: 10)
        for step in 0 ..< 2000 {
            var items = [0, 0]  // every step (twice in a batch counts once)
            if step % 4 == 0 { items.append(1) }  // every 4th step
            if step % 25 == 0 { items.append(2) }  // every 25th step
            e.observe(step: step, items: items)
        }
        #expect(abs(e.expectedCount(0) - 1) < 1e-6)
        #expect(abs(e.expectedCount(1) - 0.25) < 1e-3)
        #expect(abs(e.expectedCount(2) - 0.04) < 1e-3)
        #expect(e.expectedCount(3) == 0.1)  // never seen: the prior
    }
}
