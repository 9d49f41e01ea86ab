import ArborCore
import ArborNN
import ArborTree
import Foundation
import Testing

@testable import ArborModels

/// Every trainer shards its batches through `DataParallel` with `threads > 1`: a run repeats bit for
/// bit for a given thread count, and stays within float reassociation of the sequential trainer.
///
/// Tolerances: after one short epoch the shards' summation order moves weights by ~1e-6; Adam's
/// normalisation can amplify that where a gradient is near 0, so weights are compared at 1e-3
/// absolute and the epoch's mean loss at 1e-4 relative.
@Suite("Data-parallel training: two-tower, MIND, SDM, TDM")
struct DataParallelTrainingTests {
    /// User `u` draws 12 items from group `u % 4` of 10 items (rows 0..<40).
    private static func sequences(users: Int = 60) -> [[Int]] {
        var rng = SplitMix64(seed: 11)
        return (0 ..< users).map { u in (0 ..< 12).map { _ in (u % 4) * 10 + Int(rng.next() % 10) } }
    }

    private static let ids = (0 ..< 40).map { ItemID(UInt64(700 + $0)) }

    /// Trains with `threads` and returns (epoch losses, weights).
    private static func twoTower(_ loss: TwoTowerLoss, threads: Int) throws -> ([Double], [[Float]]) {
        let config = TwoTowerConfig(itemCount: 40, categoryCount: 0, dimension: 8, hidden: [8], maxHistory: 6, cosine: true,
                                    temperature: 0.1, shareEmbeddings: true)
        let model = try TwoTowerModel(config: config, catalog: try TwoTowerCatalog(ids: ids), seed: 3)
        var options = TwoTowerTrainingOptions(loss: loss, batchSize: 32, epochs: 2, learningRate: 0.01, seed: 1)
        options.threads = threads
        let samples = try TwoTowerSamples(sequences: sequences(), itemCount: 40)
        let report = try TwoTowerTrainer(model: model, options: options).train(samples: samples)
        return (report.epochs.map(\.meanLoss), model.snapshot())
    }

    private static func mind(threads: Int) throws -> ([Double], [[Float]]) {
        let config = MINDConfig(itemCount: 40, dimension: 8, interests: 3, power: 5, hidden: [8], maxHistory: 8, cosine: true)
        let model = try MINDModel(config: config, ids: ids, seed: 3)
        var options = TwoTowerTrainingOptions(loss: .mixed(negatives: 10), batchSize: 32, epochs: 2, learningRate: 0.01, seed: 1)
        options.threads = threads
        let samples = try TwoTowerSamples(sequences: sequences(), itemCount: 40)
        let report = try MINDTrainer(model: model, options: options).train(samples: samples)
        return (report.epochs.map(\.meanLoss), model.snapshot())
    }

    private static func sdm(threads: Int) throws -> ([Double], [[Float]]) {
        let config = SDMConfig(itemCount: 40, categoryCount: 0, dimension: 8, heads: 2, lstmLayers: 1, maxSession: 5, maxLong: 5,
                               fusion: .gated, temperature: 0.1)
        let model = try SDMModel(config: config, catalog: try TwoTowerCatalog(ids: ids), seed: 3)
        let seqs = sequences()
        // A session break (an hour) before the last 5 items of every user.
        let times = seqs.map { s in s.indices.map { i in 1_000_000.0 + Double(i) * 30 + (i >= s.count - 5 ? 3600 : 0) } }
        let samples = try SDMSamples(sequences: seqs, timestamps: times, itemCount: 40, rule: .init())
        var options = TwoTowerTrainingOptions(loss: .mixed(negatives: 10), batchSize: 32, epochs: 2, learningRate: 0.01, seed: 1)
        options.threads = threads
        let report = try SDMTrainer(model: model, options: options).train(samples: samples)
        return (report.epochs.map(\.meanLoss), model.snapshot())
    }

    private static func tdm(_ kind: TDMScorerKind, threads: Int) throws -> ([Double], [[Float]]) {
        let toy = try TDMToyData()
        let model = try toy.model(kind)
        let samples = TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6)
        var config = TDMTrainingConfig(epochs: 2, batchSize: 16, negatives: .constant(2), samplesPerEpoch: 96, seed: 9)
        config.threads = threads
        let report = try TDMTrainer(config: config).train(model, samples: samples)
        return (report.epochs.map(\.loss), model.parameters.map(\.value))
    }

    private static func check(_ run: (Int) throws -> ([Double], [[Float]])) throws {
        let (sequentialLoss, sequential) = try run(1)
        let (lossA, a) = try run(3)
        let (lossB, b) = try run(3)
        #expect(lossA == lossB, "3 threads, run twice")
        #expect(a == b, "3 threads, run twice: weights differ")
        for (x, y) in zip(lossA, sequentialLoss) { #expect(abs(x - y) <= 1e-4 * abs(y), "loss \(x) against \(y)") }
        var worst: Float = 0
        for (p, q) in zip(a, sequential) { for (x, y) in zip(p, q) { worst = max(worst, abs(x - y)) } }
        #expect(worst < 1e-3, "largest weight difference against 1 thread: \(worst)")
    }

    @Test(arguments: [TwoTowerLoss.mixed(negatives: 10), .sampled(negatives: 10), .inBatch])
    func twoTower(loss: TwoTowerLoss) throws { try Self.check { try Self.twoTower(loss, threads: $0) } }

    @Test func mind() throws { try Self.check { try Self.mind(threads: $0) } }

    @Test func sdm() throws { try Self.check { try Self.sdm(threads: $0) } }

    @Test(arguments: [TDMScorerKind.innerProduct, .dnn, .attention])
    func tdm(kind: TDMScorerKind) throws { try Self.check { try Self.tdm(kind, threads: $0) } }
}
