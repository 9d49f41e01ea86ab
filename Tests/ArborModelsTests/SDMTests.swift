import ArborCore
import ArborEngine
import ArborInference
import ArborMath
import ArborNN
import ArborPipelines
import ArborTree
import Foundation
import Testing

@testable import ArborModels

/// 4 groups of 8 items (ids 500 + row), category = group; a user's sequence stays in one group.
private enum SDMFixture {
    static let itemCount = 32
    static func id(_ r: Int) -> ItemID { ItemID(UInt64(500 + r)) }
    static func catalog(categories: Bool) throws -> TwoTowerCatalog {
        let ids = (0 ..< itemCount).map(id)
        guard categories else { return try TwoTowerCatalog(ids: ids) }
        var cats = [ItemID: UInt32]()
        for r in 0 ..< itemCount where r % 8 != 7 { cats[id(r)] = UInt32(r / 8) }  // row 7 of each group: no category
        return try TwoTowerCatalog(ids: ids, categories: cats)
    }
    static func model(fusion: SDMFusion = .gated, categories: Bool = true, layers: Int = 2, maxSession: Int = 6,
                      seed: UInt64 = 3) throws -> SDMModel {
        let catalog = try catalog(categories: categories)
        let config = SDMConfig(itemCount: itemCount, categoryCount: catalog.categoryCount, dimension: 8, heads: 2,
                               lstmLayers: layers, maxSession: maxSession, maxLong: 5, fusion: fusion, temperature: 0.1)
        return try SDMModel(config: config, catalog: catalog, seed: seed)
    }
    /// A history of `n` items with a gap over 10 minutes before its last `lastSession` items.
    static func history(_ n: Int, lastSession: Int, seed: UInt64) -> ([ItemID], [Double]) {
        var rng = SplitMix64(seed: seed)
        let g = Int(rng.next() % 4)
        let items = (0 ..< n).map { _ in id(g * 8 + Int(rng.next() % 8)) }
        var t = 1_000_000.0
        var times: [Double] = []
        for i in 0 ..< n {
            t += i == n - lastSession ? 3600 : 30
            times.append(t)
        }
        return (items, times)
    }
}

private final class SDMTempDir {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("sdm-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Largest absolute difference.
private func maxDiff(_ a: some Collection<Float>, _ b: some Collection<Float>) -> Float {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

@Suite("SDM: training forward, serving encoder, sessions, bad input")
struct SDMTests {
    /// Tolerance of training vs serving: 1e-4 absolute per component (Float32, different summation order).
    static let tolerance: Float = 1e-4

    @Test(arguments: [SDMFusion.gated, .shortOnly, .longOnly])
    func trainingForwardEqualsTheServingEncoder(fusion: SDMFusion) throws {
        for categories in [true, false] {
            let model = try SDMFixture.model(fusion: fusion, categories: categories)
            // Rows with and without a long term, of different lengths (padding in the batch).
            let rows: [(short: [Int32], long: [Int32])] = [([1, 2, 3], [4, 5]), ([7], []), ([9, 10, 11, 12, 13, 14], [15, 7, 23, 31, 0]), ([30, 31], [6])]
            var batch = SDMBatch()
            batch.fill(rows.map { (ArraySlice($0.short), ArraySlice($0.long)) })
            let tape = Tape()
            let trainingVectors = try model.userVectors(batch, on: tape)
            let encoder = try model.encoder()
            for (b, r) in rows.enumerated() {
                let served = encoder.encode(shortRows: r.short.map(Int.init), longRows: r.long.map(Int.init))
                let d = model.config.dimension
                #expect(maxDiff(served, trainingVectors.values[b * d ..< (b + 1) * d]) < Self.tolerance, "\(fusion) row \(b)")
            }
        }
    }

    @Test func samplesCutSessionsAsTheEncoderDoes() throws {
        let model = try SDMFixture.model()
        let encoder = try model.encoder()
        let (items, times) = SDMFixture.history(14, lastSession: 4, seed: 9)
        let rows = items.map { encoder.row(of: $0)! }
        let samples = try SDMSamples(sequences: [rows], timestamps: [times], itemCount: SDMFixture.itemCount, rule: .init())
        #expect(samples.count == 13)
        for i in 0 ..< samples.count {
            let t = Int(samples.targets[i])
            let inputs = samples.inputs(i, maxSession: encoder.maxSession, maxLong: encoder.maxLong, long: true)
            let split = try encoder.split(history: Array(items[..<t]), timestamps: Array(times[..<t]))
            #expect(inputs.short.map(Int.init) == split.short)
            #expect(inputs.long.map(Int.init) == split.long)
        }
    }

    @Test func sessionsSplitOnTheGapAndOnFiftyActions() {
        let rule = SDMSessionRule()
        #expect(rule.latestSessionStart(times: [0, 10, 700, 710]) == 2)        // gap 690 s > 600
        #expect(rule.latestSessionStart(times: [0, 10, 610, 620]) == 0)        // gap 600 s is not over 10 minutes
        #expect(rule.latestSessionStart(times: (0 ..< 120).map(Double.init)) == 100)  // 50, 50, 20
        #expect(rule.latestSessionStart(times: [Double]()) == 0)
    }

    @Test func badInputFollowsTheDocumentedRules() throws {
        let encoder = try SDMFixture.model().encoder()
        let (items, times) = SDMFixture.history(10, lastSession: 3, seed: 4)
        let base = try encoder.encode(history: items, timestamps: times)
        #expect(!base.usedFallback)
        // Timestamps missing for some items, or not finite: an error.
        #expect(throws: ArborError.self) { try encoder.encode(history: items, timestamps: Array(times.dropLast())) }
        var nan = times; nan[2] = .nan
        #expect(throws: ArborError.self) { try encoder.encode(history: items, timestamps: nan) }
        // Out of order: ordered by time (stable), the same as the ordered list.
        let perm = Array((0 ..< 10).reversed())
        let shuffled = try encoder.encode(history: perm.map { items[$0] }, timestamps: perm.map { times[$0] })
        #expect(maxDiff(shuffled.vector, base.vector) < 1e-6)
        // Unknown ids are dropped with their timestamps.
        var withUnknown = items, unknownTimes = times
        withUnknown.insert(ItemID(9_999), at: 8); unknownTimes.insert(times[7] + 1, at: 8)
        let u = try encoder.encode(history: withUnknown, timestamps: unknownTimes)
        #expect(u.unknownItems == 1)
        #expect(maxDiff(u.vector, base.vector) < 1e-6)
        // Empty history, or only unknown ids: the fallback, flagged.
        #expect(try encoder.encode(history: [], timestamps: []).usedFallback)
        #expect(try encoder.encode(history: [ItemID(9_999)]).usedFallback)
        // Longer than the maximum: the most recent items are kept.
        let long = (0 ..< 40).map { SDMFixture.id($0 % 32) }
        #expect(try encoder.encode(history: long).vector == (try encoder.encode(history: Array(long.suffix(encoder.maxSession))).vector))
        // No timestamps: one session, no long term (equal to the short-only computation of the last items).
        let split = try encoder.split(history: items, timestamps: nil)
        #expect(split.long.isEmpty && split.short.count == encoder.maxSession)
    }

    @Test func theGateFallsBackToTheShortTermWithoutALongTerm() throws {
        let model = try SDMFixture.model(fusion: .gated)
        let encoder = try model.encoder()
        // One session only: the gated model's vector is its short-term vector alone.
        let short = [3, 4, 5]
        let gated = encoder.encode(shortRows: short, longRows: [])
        // The same weights without long-term parts compute s directly.
        var tensors = encoder.namedTensors().filter { !$0.name.hasPrefix("sdm.gate") && !$0.name.hasPrefix("sdm.long") }
        let i = tensors.firstIndex { $0.name == "sdm.options" }!
        tensors[i].values[6] = Float(SDMFusion.shortOnly.rawValue)
        tensors.removeAll { $0.name.hasPrefix("sdm.category") || $0.name == "sdm.item.category" }
        let shortOnly = try SDMEncoder(tensors: tensors, ids: encoder.ids)
        #expect(maxDiff(gated, shortOnly.encode(shortRows: short, longRows: [])) < 1e-6)
    }

    @Test func missingOrMisshapenTensorsAreNamed() throws {
        let encoder = try SDMFixture.model().encoder()
        let tensors = encoder.namedTensors()
        func loadError(_ t: [ArborTree.NamedTensor]) -> ModelLoadError? {
            do { _ = try SDMEncoder(tensors: t, ids: encoder.ids); return nil } catch { return error }
        }
        #expect(loadError(tensors.filter { $0.name != "sdm.lstm.1.wh" })?.description.contains("sdm.lstm.1.wh") == true)
        var bad = tensors
        let k = bad.firstIndex { $0.name == "sdm.gate.weight" }!
        bad[k].shape = [2, bad[k].values.count / 2]
        #expect(loadError(bad)?.description.contains("sdm.gate.weight") == true)
        #expect(loadError(tensors) == nil)
    }

    @Test func trainsAndServesThroughAnIndexWithAndWithoutTimestamps() throws {
        let model = try SDMFixture.model(layers: 1)
        var sequences: [[Int]] = [], times: [[Double]] = []
        for u in 0 ..< 60 {
            let (items, t) = SDMFixture.history(12, lastSession: 4, seed: UInt64(100 + u))
            sequences.append(items.map { Int($0.rawValue) - 500 })
            times.append(t)
        }
        let samples = try SDMSamples(sequences: sequences, timestamps: times, itemCount: SDMFixture.itemCount, rule: .init())
        let options = TwoTowerTrainingOptions(loss: .mixed(negatives: 10), batchSize: 32, epochs: 3, learningRate: 0.01, seed: 1)
        let report = try SDMTrainer(model: model, options: options).train(samples: samples)
        #expect(report.epochs.count == 3 && report.epochs.allSatisfy { $0.meanLoss.isFinite })
        #expect(report.epochs.last!.meanLoss < report.epochs.first!.meanLoss)

        let encoder = try model.encoder()
        let dir = SDMTempDir()
        let path = dir.path + "/sdm.arbor"
        let tree = try TreeBuilder.balancedKMeans(embeddings: model.itemVectorMatrix(), items: model.catalog.ids)
        try IndexFiles.writeSDMIndex(tree: tree, encoder: encoder, to: path)
        let engine = try Arbor.open(path)
        #expect(engine.queryProducer == .sdm)
        let (h, t) = SDMFixture.history(9, lastSession: 3, seed: 7)
        let withTimes = try engine.queries(history: h, timestamps: t)
        #expect(maxDiff(withTimes.queries[0].vector, try encoder.encode(history: h, timestamps: t).vector) < 1e-6)
        // Queried without timestamps: served as one session (documented), not an error.
        let without = try engine.search(history: h, k: 5)
        #expect(without.items.count == 5)
        let oneSession = try engine.queries(history: h)
        #expect(maxDiff(oneSession.queries[0].vector, try encoder.encode(history: h).vector) < 1e-6)
        #expect(try engine.search(history: h, timestamps: t, k: 5, using: .exact).items.count == 5)
        // A timestamp count that does not match is an error at the front door too.
        #expect(throws: ArborError.self) { try engine.search(history: h, timestamps: [1, 2], k: 5) }
    }
}
