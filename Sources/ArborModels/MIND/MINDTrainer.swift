import ArborCore
import ArborInference
import ArborNN
import Foundation

/// Trains a ``MINDModel`` with the two-tower's recipe: shuffled prefix → next-item samples
/// (``TwoTowerSamples``), the same softmax choices (``TwoTowerLoss``: sampled, in-batch or mixed
/// negatives, logQ-corrected with counted target frequencies), Adam on S and the MLP and the chosen
/// optimizer on the embeddings, a validation metric after every epoch with early stopping (the
/// best epoch's weights are restored), checkpoints through a closure, progress in samples.
///
/// The user vector of a sample is the label-aware attention of its `K'` interests on the sample's
/// target (MIND's training); negatives are scored against that same vector. Batch buffers are
/// allocated once and reused. Deterministic for a seed. Not thread-safe.
public final class MINDTrainer {
    /// The model being trained.
    public let model: MINDModel
    /// The options (shared with the two-tower; ``TwoTowerTrainingOptions/checkpointDirectory`` is
    /// ignored: checkpoints go through the `checkpoint` closure of ``train(samples:validate:progress:cancellation:checkpoint:onEpoch:)``).
    public let options: TwoTowerTrainingOptions
    private let denseOptimizer: Adam
    private let embeddingOptimizer: any Optimizer
    private var rng: SplitMix64
    private var historyRows: [Int] = []
    private var mask: [Float] = []
    private var active: [Int] = []
    private var targetRows: [Int] = []
    private var candidates: SoftmaxCandidates

    /// A trainer for `model`.
    /// - Throws: ``TwoTowerError/invalidConfiguration(field:reason:)`` for bad options.
    public init(model: MINDModel, options: TwoTowerTrainingOptions) throws(TwoTowerError) {
        try options.validate()
        self.model = model
        self.options = options
        denseOptimizer = Adam(learningRate: options.learningRate)
        embeddingOptimizer = options.makeEmbeddingOptimizer()
        rng = SplitMix64(seed: SplitMix64.derive(options.seed, 0x6d69_6e64))
        candidates = SoftmaxCandidates(kind: options.loss, logQCorrection: options.logQCorrection,
                                       itemCount: model.config.itemCount)
    }

    /// Trains on `samples`.
    /// - Parameters:
    ///   - validate: the validation metric of the current weights (higher is better, e.g. Recall@50);
    ///     `nil`: no early stopping, the last epoch's weights are kept.
    ///   - checkpoint: called after every epoch with the model, the epoch and whether it improved
    ///     (e.g. to write `last` and `best` files through the pipelines).
    ///   - onEpoch: called after each epoch's validation and checkpoint.
    /// - Throws: ``TwoTowerError/noTrainingSamples(reason:)``, ``TwoTowerError/nonFiniteLoss(epoch:batch:lastGoodEpoch:lastGoodCheckpoint:)``
    ///   (the model then holds the last finished epoch's weights), `CancellationError` (best weights
    ///   so far restored), or what `validate` / `checkpoint` throw.
    public func train(
        samples: TwoTowerSamples, validate: ((MINDModel) throws -> Double)? = nil,
        progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil,
        checkpoint: ((MINDModel, _ epoch: Int, _ improved: Bool) throws -> Void)? = nil,
        onEpoch: ((TwoTowerEpochStats) -> Void)? = nil
    ) throws -> TwoTowerTrainingReport {
        let n = model.config.itemCount
        guard samples.count > 0 else { throw TwoTowerError.noTrainingSamples(reason: "the sample set is empty") }
        if let bad = samples.items.first(where: { Int($0) >= n || $0 < 0 }) {
            throw TwoTowerError.invalidConfiguration(field: "samples", reason: "item row \(bad) is outside 0..<\(n)")
        }
        let wallStart = ContinuousClock.now
        let counts = samples.targetCounts(itemCount: n)
        let totalTargets = Double(samples.count)
        var order = Array(0 ..< samples.count)
        let parallel = DataParallel(threads: options.threads)
        var epochs: [TwoTowerEpochStats] = []
        var total = TwoTowerTiming()
        var best: (epoch: Int, metric: Double, weights: [[Float]])? = nil
        var lastGood = (epoch: 0, weights: model.snapshot())
        var sinceBest = 0
        var stoppedEarly = false
        for epoch in 1 ... options.epochs {
            var timing = TwoTowerTiming()
            var t0 = ContinuousClock.now
            NNRandom.shuffle(&order, &rng)
            var lossSum = 0.0
            var batches = 0
            let task = "train epoch \(epoch)"
            progress.report(task: task, done: 0, total: samples.count)
            var start = 0
            while start < order.count {
                if cancellation?.isCancelled == true {
                    if let best { model.restore(best.weights) }
                    progress.finish(task: task)
                    throw CancellationError()
                }
                let end = min(order.count, start + options.batchSize)
                if end - start < 2 { break }
                t0 = ContinuousClock.now
                let (batch, length) = assemble(samples: samples, order: order[start ..< end])
                prepareNegatives(batch: batch, counts: counts, totalTargets: totalTargets)
                timing.batching += mindSeconds(since: t0)
                let shardStep = try parallel.run(count: batch) { shard, tape in
                    try self.forward(tape: tape, batch: batch, length: length, shard: shard)
                }
                timing.forward += shardStep.forwardSeconds
                timing.backward += shardStep.backwardSeconds
                guard shardStep.loss.isFinite else {
                    model.restore(lastGood.weights)
                    progress.finish(task: task)
                    throw TwoTowerError.nonFiniteLoss(epoch: epoch, batch: batches + 1, lastGoodEpoch: lastGood.epoch,
                                                      lastGoodCheckpoint: nil)
                }
                lossSum += Double(shardStep.loss)
                t0 = ContinuousClock.now
                if let clip = options.gradientClip { clipGradientNorm(model.parameters, maxNorm: clip) }
                denseOptimizer.step(model.denseParameters)
                embeddingOptimizer.step(model.embeddingParameters)
                timing.optimizer += mindSeconds(since: t0)
                batches += 1
                start = end
                progress.report(task: task, done: end, total: samples.count)
            }
            progress.finish(task: task)
            var metric: Double? = nil
            var improved = false
            if let validate {
                t0 = ContinuousClock.now
                let m = try validate(model)
                timing.validation += mindSeconds(since: t0)
                metric = m
                if best == nil || m > best!.metric {
                    best = (epoch, m, model.snapshot())
                    improved = true
                    sinceBest = 0
                } else {
                    sinceBest += 1
                }
            }
            lastGood = (epoch, model.snapshot())
            if let checkpoint {
                t0 = ContinuousClock.now
                try checkpoint(model, epoch, improved)
                timing.checkpoint += mindSeconds(since: t0)
            }
            let trained = min(order.count, batches * options.batchSize)
            let stats = TwoTowerEpochStats(
                epoch: epoch, meanLoss: batches > 0 ? lossSum / Double(batches) : .nan, samples: trained,
                samplesPerSecond: timing.training > 0 ? Double(trained) / timing.training : 0,
                validation: metric, improved: improved, timing: timing)
            epochs.append(stats)
            total.add(timing)
            onEpoch?(stats)
            if validate != nil, sinceBest >= options.patience {
                stoppedEarly = epoch < options.epochs
                break
            }
        }
        var bestEpoch = epochs.last?.epoch ?? 0
        if let best {
            model.restore(best.weights)
            bestEpoch = best.epoch
        }
        return TwoTowerTrainingReport(epochs: epochs, bestEpoch: bestEpoch, bestMetric: best?.metric,
                                      stoppedEarly: stoppedEarly, timing: total, wallSeconds: mindSeconds(since: wallStart))
    }

    /// Fills history, mask, active-interest and target buffers (histories padded to the longest
    /// of the batch, at most `maxHistory`, oldest first as the serving encoder routes them).
    private func assemble(samples: TwoTowerSamples, order: ArraySlice<Int>) -> (Int, Int) {
        let maxHistory = model.config.maxHistory
        var length = 1
        for i in order {
            let t = Int(samples.targets[i])
            length = max(length, min(maxHistory, t - samples.offsets[Int(samples.sequence[i])]))
        }
        historyRows.removeAll(keepingCapacity: true)
        mask.removeAll(keepingCapacity: true)
        active.removeAll(keepingCapacity: true)
        targetRows.removeAll(keepingCapacity: true)
        for i in order {
            let t = Int(samples.targets[i])
            let s = max(samples.offsets[Int(samples.sequence[i])], t - maxHistory)
            for p in s ..< t { historyRows.append(Int(samples.items[p])); mask.append(1) }
            for _ in (t - s) ..< length { historyRows.append(-1); mask.append(0) }
            active.append(MultiInterest.activeInterests(historyLength: t - s, maxInterests: model.config.interests))
            targetRows.append(Int(samples.items[t]))
        }
        return (order.count, length)
    }

    /// Draws the uniform negatives and fills the logQ and accidental-hit mask buffers (as the two-tower).
    private func prepareNegatives(batch: Int, counts: [Double], totalTargets: Double) {
        let batchSize = Double(options.batchSize)
        candidates.draw(targets: targetRows, rng: &rng) { r in batchSize * counts[r] / totalTargets }
    }

    /// The loss of the samples `shard` of the assembled batch: their share of the batch loss
    /// (``DataParallel``). Each user attends over its interests with its own target, and is scored
    /// against all of the batch's candidates. Reads the batch buffers only.
    private func forward(tape: Tape, batch: Int, length: Int, shard: Range<Int>) throws -> Tensor {
        let whole = shard.count == batch
        let history = whole ? historyRows : Array(historyRows[shard.lowerBound * length ..< shard.upperBound * length])
        let shardMask = whole ? mask : Array(mask[shard.lowerBound * length ..< shard.upperBound * length])
        let shardActive = whole ? active : Array(active[shard])
        let interests = try model.interests(historyRows: history, batch: shard.count, length: length, mask: shardMask,
                                            active: shardActive, on: tape)
        let positives = try model.itemVectors(rows: targetRows, on: tape)
        let ownTargets = whole ? positives : try tape.gatherRows(positives, indices: Array(shard))
        let users = try model.userVectors(interests: interests, targets: ownTargets, active: shardActive, on: tape)
        return try candidates.loss(users: users, positives: positives, shard: shard, temperature: model.config.temperature,
                                   itemVectors: { rows in try self.model.itemVectors(rows: rows, on: tape) }, on: tape)
    }
}

private func mindSeconds(since start: ContinuousClock.Instant) -> Double {
    let d = start.duration(to: .now)
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
