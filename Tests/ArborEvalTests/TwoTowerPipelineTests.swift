import ArborPipelines
import ArborData
import ArborInference
import ArborModels
import ArborTree
import Foundation
import Testing

@testable import ArborEval

/// 4 groups of 10 items (ids 1000 + row); user `u` (id 1 + u) watches 8 distinct items of group
/// `u % 4` in a random order, rating 5, one event per time step; item 1000 + 39 is also watched by
/// every user first (a popular item that says nothing about the group).
private func plantedLog(users: Int = 80, seed: UInt64 = 7) throws -> InteractionLog {
    var rng = SplitMix64(seed: seed)
    var u: [UInt64] = [], i: [ItemID] = [], t: [Double] = [], r: [Float] = []
    var time = 0.0
    for user in 0 ..< users {
        let g = user % 4
        var items = Array(0 ..< 10).map { g * 10 + $0 }.filter { $0 != 39 }
        for k in stride(from: items.count - 1, to: 0, by: -1) { items.swapAt(k, Int(rng.next() % UInt64(k + 1))) }
        for row in [39] + items.prefix(8) {
            u.append(UInt64(user + 1)); i.append(ItemID(UInt64(1000 + row))); t.append(time); r.append(5)
            time += 1
        }
    }
    return try InteractionLog(users: u, items: i, timestamps: t, ratings: r)
}

private func smallOptions(_ kind: TwoTowerProtocol) -> TwoTowerExperimentOptions {
    var o = TwoTowerExperimentOptions(protocol: kind)
    o.dimension = 16
    o.maxHistory = 10
    o.temperature = 0.1
    o.training = TwoTowerTrainingOptions(loss: .sampled(negatives: 20), batchSize: 32, epochs: 8, learningRate: 0.01,
                                         patience: 8, seed: 1)
    o.ks = [5, 10]
    o.beams = [5, 40]
    o.validationK = 5
    return o
}

private final class Scratch {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("ttpipe-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func write(_ name: String, _ text: String) -> String {
        let p = path + "/" + name
        try! Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }
}

@Suite("TwoTower pipeline")
struct TwoTowerPipelineTests {
    @Test func leaveLastOutBeatsPopularityAndExportsAnIndex() throws {
        let split = try LeaveLastOutSplit.make(
            from: try plantedLog(), filter: PositiveFilter(minRating: 4, minUserInteractions: 2, minItemInteractions: 2))
        let data = try TwoTowerData.leaveLastOut(split: split)
        #expect(data.catalog.count == 40)
        #expect(data.test.count == 80 && data.validation.count == 80)
        #expect(data.samples.count == 80 * 6)  // 7 train events each: 6 prefix samples
        #expect(data.test.allSatisfy { $0.truth.count == 1 && $0.excluded.count == 8 })
        let result = try TwoTowerExperiment.run(data: data, options: smallOptions(.leaveLastOut))
        let pop = try #require(result.row("popularity", k: 5))
        let flat = try #require(result.row("two-tower flat", k: 5))
        let wideTree = try #require(result.row("two-tower tree", k: 5, parameters: "beam=40"))
        #expect(pop.metrics.hitRate! < 0.4)
        #expect(flat.metrics.hitRate! > 0.8, "flat HR@5 \(flat.metrics.hitRate!) vs popularity \(pop.metrics.hitRate!)")
        // A beam as wide as the leaf level's parents is the exact scan.
        #expect(wideTree.metrics.hitRate == flat.metrics.hitRate)
        #expect(result.training.bestEpoch >= 1)
        let md = result.markdown(metrics: [.hitRate, .ndcg], reference: (name: "BPR", hr10: 0.5, hr50: 0.9, ndcg10: 0.3))
        #expect(md.contains("two-tower flat") && md.contains("popularity") && md.contains("/ BPR"))

        let dir = Scratch()
        let index = dir.path + "/tt.arbor"
        try TwoTowerExperiment.export(result, to: dir.path + "/model", indexPath: index)
        for f in ["items.npy", "items.ids", "encoder.ttw"] {
            #expect(FileManager.default.fileExists(atPath: dir.path + "/model/" + f))
        }
        let (vectors, ids) = try (NPY.readMatrix(at: dir.path + "/model/items.npy"), IDList.read(at: dir.path + "/model/items.ids"))
        #expect(vectors == result.itemVectors && ids == result.ids)
        let fromIndex = try TwoTowerEncoder(index: try IndexReader(path: index))
        let fromFile = try TwoTowerEncoder(weightsFile: try TwoTowerWeightsFile.read(at: dir.path + "/model/encoder.ttw"))
        let h = data.test[0].history
        let expected = try result.encoder.encode(history: h)
        #expect(try fromIndex.encode(history: h) == expected)
        #expect(try fromFile.encode(history: h) == expected)

        // Provenance: none unless given; given, it describes this run.
        #expect(try IndexReader(path: index).trainingProvenance() == nil)
        var provenance = result.provenance
        provenance.dataset.name = "planted"
        #expect(provenance.modelKind == "two-tower" && provenance.protocolName == "leave-last-out")
        #expect(provenance.epochsRun == result.training.epochs.count && provenance.bestEpoch == result.training.bestEpoch)
        #expect(provenance.dataset.items == 40 && provenance.dataset.trainSamples == 80 * 6)
        #expect(provenance.validationMetric == "ndcg@5" && provenance.validationValue == result.training.bestMetric)
        try TwoTowerExperiment.export(result, to: dir.path + "/model", indexPath: index, provenance: provenance)
        #expect(try IndexReader(path: index).trainingProvenance() == provenance)
    }

    @Test func userHoldOutReportsRecall() throws {
        let split = try UserHoldOutSplit.make(from: try plantedLog(users: 120), test: .count(20), validation: .count(20), seed: 3)
        let data = try TwoTowerData.userHoldOut(split: split)
        #expect(data.test.count == 20 && data.sequences.count == 80)
        #expect(data.test.allSatisfy { $0.truth.count == 5 && $0.history.count == 4 })
        let result = try TwoTowerExperiment.run(data: data, options: smallOptions(.userHoldOut))
        let pop = try #require(result.row("popularity", k: 10))
        let flat = try #require(result.row("two-tower flat", k: 10))
        #expect(flat.metrics.recall! > pop.metrics.recall! + 0.3, "flat R@10 \(flat.metrics.recall!), pop \(pop.metrics.recall!)")
        #expect(flat.metrics.precision != nil && flat.metrics.f1 != nil)
    }

    @Test func aDataSetWithNoPositivesAfterFilteringIsAClearError() throws {
        let dir = Scratch()
        var text = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        for u in 1 ... 10 { for i in 1 ... 10 { text += "\(u)\t\(i)\t3\t\(u * 100 + i)\n" } }
        let path = dir.write("low.inter", text)
        for kind in TwoTowerProtocol.allCases {
            #expect(throws: DataError.invalidArgument(name: "filter", reason: "no interaction survives it")) {
                try TwoTowerData.load(interactions: path, protocol: kind)
            }
        }
        // Positives exist, but every user has a single training event: nothing to learn from.
        var one = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        for u in 1 ... 6 { one += "\(u)\t\(u % 3 + 1)\t5\t\(u)\n" }
        let onePath = dir.write("one.inter", one)
        #expect(throws: TwoTowerError.self) {
            try TwoTowerData.load(interactions: onePath, protocol: .leaveLastOut,
                                  filter: PositiveFilter(minRating: 4, minUserInteractions: 1, minItemInteractions: 1))
        }
    }
}

/// The ML-100K figures of the report, on the real data (shared folder). Off by default (about a
/// minute in release, much longer in debug); run with
/// `ARBOR_TWO_TOWER_ML100K=1 swift test -c release --filter TwoTowerML100K`.
@Suite("TwoTowerML100K", .enabled(if: ProcessInfo.processInfo.environment["ARBOR_TWO_TOWER_ML100K"] != nil))
struct TwoTowerML100KTests {
    static let inter: String = {
        let here = URL(fileURLWithPath: #filePath)
        let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.deletingLastPathComponent().appendingPathComponent("shared/data/ml-100k/ml-100k.inter").path
    }()

    @Test func leaveLastOutBeatsPopularityAndNearsBPR() throws {
        let data = try TwoTowerData.load(interactions: Self.inter, protocol: .leaveLastOut)
        #expect(data.catalog.count == 1008 && data.test.count == 938)
        let result = try TwoTowerExperiment.run(data: data, options: TwoTowerExperimentOptions(protocol: .leaveLastOut))
        print(result.markdown(metrics: [.hitRate, .ndcg], reference: (name: "RecBole BPR", hr10: 0.1279, hr50: 0.3721, ndcg10: 0.0632)))
        let pop = try #require(result.row("popularity", k: 10))
        let flat10 = try #require(result.row("two-tower flat", k: 10))
        let flat50 = try #require(result.row("two-tower flat", k: 50))
        #expect(abs(pop.metrics.hitRate! - 0.0810) < 0.005)  // RecBole's Pop
        #expect(flat10.metrics.hitRate! > 0.0810 * 1.3)
        #expect(flat10.metrics.ndcg! > 0.0404 * 1.3)
        #expect(flat50.metrics.hitRate! > 0.3721 * 0.85)  // within reach of BPR
    }

    @Test func userHoldOutFlatAgainstTree() throws {
        let data = try TwoTowerData.load(interactions: Self.inter, protocol: .userHoldOut)
        let result = try TwoTowerExperiment.run(data: data, options: TwoTowerExperimentOptions(protocol: .userHoldOut))
        print(result.markdown(metrics: [.recall, .precision, .f1]))
        let pop = try #require(result.row("popularity", k: 50))
        let flat = try #require(result.row("two-tower flat", k: 50))
        let tree = try #require(result.row("two-tower tree", k: 50, parameters: "beam=200"))
        #expect(flat.metrics.recall! > pop.metrics.recall!)
        #expect(tree.metrics.recall! > flat.metrics.recall! * 0.95)
    }
}

@Suite("TwoTower pipeline: starting from a checkpoint")
struct TwoTowerInitialWeightsTests {
    @Test func aCheckpointOfOtherShapesOrItemsIsRefused() throws {
        let split = try LeaveLastOutSplit.make(
            from: try plantedLog(), filter: PositiveFilter(minRating: 4, minUserInteractions: 2, minItemInteractions: 2))
        let data = try TwoTowerData.leaveLastOut(split: split)
        var options = smallOptions(.leaveLastOut)
        options.training.epochs = 1
        var wide = options.config(for: data.catalog)
        wide.dimension = 8
        let other = try TwoTowerModel(config: wide, catalog: data.catalog)
        options.initialWeights = other.checkpoint(epoch: 1, metric: nil)
        #expect(throws: TwoTowerError.shapeMismatch(name: "two-tower.item.table", expected: [40, 16], found: [40, 8])) {
            try TwoTowerExperiment.run(data: data, options: options)
        }
        let fewer = try TwoTowerModel(config: TwoTowerConfig(itemCount: 3, dimension: 16), catalog: try TwoTowerCatalog(ids: [1, 2, 3]))
        options.initialWeights = fewer.checkpoint(epoch: 1, metric: nil)
        #expect(throws: TwoTowerError.self) { try TwoTowerExperiment.run(data: data, options: options) }
        // The right checkpoint resumes.
        let same = try TwoTowerModel(config: options.config(for: data.catalog), catalog: data.catalog, seed: 9)
        options.initialWeights = same.checkpoint(epoch: 1, metric: nil)
        let result = try TwoTowerExperiment.run(data: data, options: options)
        #expect(result.training.epochs.count == 1)
    }
}
