import ArborInference
import ArborMath
import ArborNN
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The softmax a two-tower model is trained with. Every variant scores a user against its target
/// item and a set of other items, divides by the temperature and minimises the softmax
/// cross-entropy of the target; accidental hits (another column holding the target item) are
/// masked out of the row.
public enum TwoTowerLoss: Sendable, Equatable, Codable {
    /// In-batch softmax: the other targets of the batch are the negatives (`batch × batch`
    /// logits). Popular items are over-sampled as negatives; the logQ correction removes that bias.
    case inBatch
    /// Sampled softmax over `negatives` items drawn uniformly without replacement per batch and
    /// shared by its rows (`batch × (1 + negatives)` logits). With `negatives >= itemCount` every
    /// item is a candidate (the full softmax). Uniform sampling needs no logQ correction (a
    /// constant shift).
    case sampled(negatives: Int)
    /// In-batch negatives plus `negatives` uniform ones (mixed negative sampling, Yang et al.
    /// 2020): `batch × (batch + negatives)` logits; column `j` is corrected by
    /// `log(expected in-batch count of j + negatives / itemCount)`.
    case mixed(negatives: Int)
}

/// How the sampling probability of the logQ correction (Yi et al., RecSys 2019) is estimated.
public enum FrequencyEstimate: Sendable, Equatable, Codable {
    /// Exact counts of each item among the training targets: an item's expected count in a batch
    /// is `batchSize · count / samples`.
    case counted
    /// Yi et al.'s streaming estimate (their Algorithm 2, with one slot per item instead of a hash
    /// array): per item the step it was last seen (`A`) and a moving average of the gap between
    /// sightings (`B ← (1 − rate) · B + rate · (t − A)`); the expected count in a batch is `1 / B`.
    /// `B` starts at `itemCount / batchSize` (uniform).
    case streaming(rate: Double)
}

/// The optimizer of the embedding tables (the MLP always uses ``Adam``).
public enum EmbeddingOptimizerKind: String, Sendable, CaseIterable, Codable {
    /// Dense Adam: every row moves every step (momentum keeps moving rows not in the batch), as
    /// PyTorch's Adam on an embedding does. O(table) per step: for small catalogues.
    case adam
    /// Lazy Adam: only the rows gathered in the batch change. O(touched rows · d) per step.
    case lazyAdam
    /// Adagrad on the gathered rows.
    case adagrad
}

/// Knobs of two-tower training.
public struct TwoTowerTrainingOptions: Sendable, Equatable, Codable {
    /// The softmax and its negatives.
    public var loss: TwoTowerLoss
    /// Apply the logQ sampling-bias correction (only changes ``TwoTowerLoss/inBatch`` and
    /// ``TwoTowerLoss/mixed``).
    public var logQCorrection: Bool
    /// Where the sampling probabilities of the correction come from.
    public var frequency: FrequencyEstimate
    /// Samples per mini-batch, >= 2.
    public var batchSize: Int
    /// Maximum number of epochs, >= 1.
    public var epochs: Int
    /// Adam learning rate of the MLP and (unless overridden) of the embeddings, > 0.
    public var learningRate: Float
    /// Learning rate of the embedding tables; `nil` = ``learningRate``.
    public var embeddingLearningRate: Float?
    /// Optimizer of the embedding tables.
    public var embeddingOptimizer: EmbeddingOptimizerKind
    /// Clip the global gradient norm to this value; `nil` = no clipping.
    public var gradientClip: Float?
    /// Early stopping: stop after this many epochs without a better validation metric, >= 1.
    public var patience: Int
    /// Seed of the initial weights, the sample order and the negatives.
    public var seed: UInt64
    /// Directory for checkpoints (`last.ttw` after every epoch, `best.ttw` on every improvement);
    /// `nil` = none. Created when missing.
    public var checkpointDirectory: String?
    /// Threads per mini-batch (``DataParallel``; clamped to `1 ... DataParallel.maxThreads`): each
    /// takes a contiguous shard of the batch through forward and backward. 1 is the sequential
    /// trainer, bit for bit; other counts are repeatable for the same count.
    public var threads: Int = 1

    /// Options; the defaults suit ML-100K-sized data (in-batch plus 100 uniform negatives with
    /// counted logQ, batch 256, Adam 2e-3, patience 5, seed 0).
    public init(
        loss: TwoTowerLoss = .mixed(negatives: 100), logQCorrection: Bool = true, frequency: FrequencyEstimate = .counted,
        batchSize: Int = 256, epochs: Int = 40, learningRate: Float = 2e-3, embeddingLearningRate: Float? = nil,
        embeddingOptimizer: EmbeddingOptimizerKind = .adam, gradientClip: Float? = nil, patience: Int = 5,
        seed: UInt64 = 0, checkpointDirectory: String? = nil
    ) {
        self.loss = loss
        self.logQCorrection = logQCorrection
        self.frequency = frequency
        self.batchSize = batchSize
        self.epochs = epochs
        self.learningRate = learningRate
        self.embeddingLearningRate = embeddingLearningRate
        self.embeddingOptimizer = embeddingOptimizer
        self.gradientClip = gradientClip
        self.patience = patience
        self.seed = seed
        self.checkpointDirectory = checkpointDirectory
    }

    /// Checks the ranges.
    /// - Throws: ``TwoTowerError/invalidConfiguration(field:reason:)``.
    public func validate() throws(TwoTowerError) {
        guard batchSize >= 2 else { throw .invalidConfiguration(field: "batchSize", reason: "must be at least 2, got \(batchSize)") }
        guard epochs >= 1 else { throw .invalidConfiguration(field: "epochs", reason: "must be at least 1, got \(epochs)") }
        guard learningRate > 0, learningRate.isFinite else {
            throw .invalidConfiguration(field: "learningRate", reason: "must be positive, got \(learningRate)")
        }
        if let e = embeddingLearningRate, !(e > 0 && e.isFinite) {
            throw .invalidConfiguration(field: "embeddingLearningRate", reason: "must be positive, got \(e)")
        }
        guard patience >= 1 else { throw .invalidConfiguration(field: "patience", reason: "must be at least 1, got \(patience)") }
        if let c = gradientClip, !(c > 0) { throw .invalidConfiguration(field: "gradientClip", reason: "must be positive, got \(c)") }
        switch loss {
        case .inBatch: break
        case let .sampled(n), let .mixed(n):
            guard n >= 1 else { throw .invalidConfiguration(field: "negatives", reason: "must be at least 1, got \(n)") }
        }
        if case let .streaming(rate) = frequency, !(rate > 0 && rate <= 1) {
            throw .invalidConfiguration(field: "frequency rate", reason: "must be in (0, 1], got \(rate)")
        }
    }
}

extension TwoTowerTrainingOptions {
    /// The optimizer of the embedding tables these options name (``embeddingOptimizer`` at
    /// ``embeddingLearningRate``, or ``learningRate`` when that is unset); shared by the two-tower,
    /// MIND and SDM trainers.
    public func makeEmbeddingOptimizer() -> any Optimizer {
        let rate = embeddingLearningRate ?? learningRate
        switch embeddingOptimizer {
        case .adam: return Adam(learningRate: rate)
        case .lazyAdam: return LazyAdam(learningRate: rate)
        case .adagrad: return Adagrad(learningRate: rate)
        }
    }
}

/// Training samples: per user a behaviour sequence (dense item rows, oldest first), and the
/// (sequence, position) pairs whose item is a target predicted from the items before it.
///
/// Storage is flat (no per-sample arrays): ``items`` holds every sequence back to back,
/// ``offsets`` delimits them; sample `i` predicts `items[targets[i]]` from
/// `items[offsets[sequence[i]] ..< targets[i]]` (of which the trainer keeps the most recent
/// `maxHistory`).
public struct TwoTowerSamples: Sendable, Equatable {
    /// Every sequence's item rows, back to back.
    public let items: [Int32]
    /// Sequence `s` is `items[offsets[s] ..< offsets[s + 1]]`.
    public let offsets: [Int]
    /// Per sample, the flat position of its target in ``items``.
    public let targets: [Int32]
    /// Per sample, its sequence.
    public let sequence: [Int32]

    /// Every prefix → next item sample of `sequences` (sequence-aware training, as GRU4Rec and
    /// SASRec): position `p` of a sequence is a target when at least `minHistory` items precede it.
    /// - Parameters:
    ///   - sequences: per user, item rows `0 ..< itemCount`, oldest first.
    ///   - itemCount: the catalogue size (rows are checked against it).
    /// - Throws: ``TwoTowerError/noTrainingSamples(reason:)`` when no position qualifies;
    ///   ``TwoTowerError/invalidConfiguration(field:reason:)`` for a row outside the catalogue.
    /// - Complexity: O(total length).
    public init(sequences: [[Int]], itemCount: Int, minHistory: Int = 1) throws(TwoTowerError) {
        guard minHistory >= 1 else { throw .invalidConfiguration(field: "minHistory", reason: "must be at least 1, got \(minHistory)") }
        var items = [Int32](), offsets = [0], targets = [Int32](), sequence = [Int32]()
        items.reserveCapacity(sequences.reduce(0) { $0 + $1.count })
        for (s, seq) in sequences.enumerated() {
            for (p, r) in seq.enumerated() {
                guard (0 ..< itemCount).contains(r) else {
                    throw .invalidConfiguration(field: "training sequences", reason: "item row \(r) of sequence \(s) is outside 0..<\(itemCount)")
                }
                if p >= minHistory {
                    targets.append(Int32(items.count))
                    sequence.append(Int32(s))
                }
                items.append(Int32(r))
            }
            offsets.append(items.count)
        }
        guard !targets.isEmpty else {
            throw .noTrainingSamples(reason: "no sequence has more than \(minHistory) item(s) (\(sequences.count) sequences)")
        }
        self.items = items
        self.offsets = offsets
        self.targets = targets
        self.sequence = sequence
    }

    /// Number of samples.
    public var count: Int { targets.count }
    /// Number of sequences.
    public var sequenceCount: Int { offsets.count - 1 }

    /// How often each item is a target (the counted frequencies), `itemCount` values.
    public func targetCounts(itemCount: Int) -> [Double] {
        var c = [Double](repeating: 0, count: itemCount)
        for t in targets { c[Int(items[Int(t)])] += 1 }
        return c
    }
}

/// Where the time of an epoch went, in seconds (measured with `ContinuousClock` around each phase).
public struct TwoTowerTiming: Sendable, Equatable, Codable {
    /// Assembling batches: sample order, padded histories, negatives, logQ.
    public var batching: Double = 0
    /// Forward passes (towers, logits, loss).
    public var forward: Double = 0
    /// Reverse sweeps (`Tape.backward`).
    public var backward: Double = 0
    /// Optimizer steps (and gradient clipping).
    public var optimizer: Double = 0
    /// Validation.
    public var validation: Double = 0
    /// Checkpoint writes.
    public var checkpoint: Double = 0

    /// A zero timing.
    public init() {}

    /// Adds `other` into this timing.
    public mutating func add(_ other: TwoTowerTiming) {
        batching += other.batching
        forward += other.forward
        backward += other.backward
        optimizer += other.optimizer
        validation += other.validation
        checkpoint += other.checkpoint
    }

    /// Training time proper (batching + forward + backward + optimizer).
    public var training: Double { batching + forward + backward + optimizer }
}

/// What one epoch did.
public struct TwoTowerEpochStats: Sendable, Equatable, Codable {
    /// 1-based epoch number.
    public var epoch: Int
    /// Mean training loss over the epoch's batches.
    public var meanLoss: Double
    /// Samples trained on.
    public var samples: Int
    /// Training throughput: samples / (batching + forward + backward + optimizer seconds).
    public var samplesPerSecond: Double
    /// The validation metric after the epoch (higher is better), when a validator was given.
    public var validation: Double?
    /// Whether this epoch set a new best validation metric.
    public var improved: Bool
    /// Where the time went.
    public var timing: TwoTowerTiming
}

/// The outcome of ``TwoTowerTrainer/train(samples:validate:progress:cancellation:onEpoch:)``.
public struct TwoTowerTrainingReport: Sendable, Equatable, Codable {
    /// One entry per epoch run.
    public var epochs: [TwoTowerEpochStats]
    /// The epoch whose weights the model holds at the end (the best validated one, or the last).
    public var bestEpoch: Int
    /// Its validation metric, when validated.
    public var bestMetric: Double?
    /// Whether early stopping ended the run before the epoch limit.
    public var stoppedEarly: Bool
    /// Time summed over every epoch.
    public var timing: TwoTowerTiming
    /// Samples per second over all epochs (training time proper).
    public var samplesPerSecond: Double {
        let s = epochs.reduce(0) { $0 + $1.samples }
        return timing.training > 0 ? Double(s) / timing.training : 0
    }
    /// Wall time of the run, seconds (training, validation and checkpoints).
    public var wallSeconds: Double
}

/// Trains a ``TwoTowerModel`` with mini-batches and epochs: shuffled samples (seeded), the chosen
/// softmax with logQ correction, Adam on the MLP and the chosen optimizer on the embeddings, a
/// validation metric after every epoch, early stopping with patience (the best epoch's weights
/// are restored at the end), checkpoints, and progress in samples.
///
/// Batch buffers (padded histories, masks, targets, negatives, corrections) are allocated once
/// and reused; the tape allocates its node values per batch. A non-finite loss stops training with
/// ``TwoTowerError/nonFiniteLoss(epoch:batch:lastGoodEpoch:lastGoodCheckpoint:)`` after the model
/// is set back to the last finished epoch's weights. With ``TwoTowerTrainingOptions/threads`` above
/// 1 each batch is cut into shards trained on that many threads (``DataParallel``). Deterministic
/// for a seed and a thread count (BLAS thread count aside, which may change float summation
/// order). Not thread-safe: one `train` call at a time.
public final class TwoTowerTrainer {
    /// The model being trained.
    public let model: TwoTowerModel
    /// The options.
    public let options: TwoTowerTrainingOptions
    private let denseOptimizer: Adam
    private let embeddingOptimizer: any Optimizer
    private var rng: SplitMix64

    // Reused batch buffers.
    private var historyRows: [Int] = []
    private var mask: [Float] = []
    private var targetRows: [Int] = []
    private var candidates: SoftmaxCandidates
    // Streaming frequency state.
    private var streaming: StreamingFrequencyEstimator? = nil
    private var step = 0

    /// A trainer for `model`.
    /// - Throws: ``TwoTowerError/invalidConfiguration(field:reason:)`` for bad options.
    public init(model: TwoTowerModel, options: TwoTowerTrainingOptions) throws(TwoTowerError) {
        try options.validate()
        self.model = model
        self.options = options
        denseOptimizer = Adam(learningRate: options.learningRate)
        embeddingOptimizer = options.makeEmbeddingOptimizer()
        rng = SplitMix64(seed: SplitMix64.derive(options.seed, 0x7477_6f74))
        candidates = SoftmaxCandidates(kind: options.loss, logQCorrection: options.logQCorrection,
                                       itemCount: model.config.itemCount)
    }

    /// Trains on `samples`.
    /// - Parameters:
    ///   - validate: the validation metric of the current weights (higher is better), e.g. NDCG@10
    ///     on validation users; called after every epoch. `nil`: no early stopping, the last
    ///     epoch's weights are kept.
    ///   - progress: task "train epoch <e>" in samples (the CLI turns it into samples/s).
    ///   - onEpoch: called after each epoch's validation and checkpoints.
    /// - Returns: per-epoch statistics and the best epoch.
    /// - Throws: ``TwoTowerError/nonFiniteLoss(epoch:batch:lastGoodEpoch:lastGoodCheckpoint:)``
    ///   (the model then holds the last finished epoch's weights), ``TwoTowerError/writeFailed(path:reason:)``
    ///   for a checkpoint, `CancellationError` (the model holds the best weights so far), or what
    ///   `validate` throws.
    public func train(
        samples: TwoTowerSamples, validate: ((TwoTowerModel) throws -> Double)? = nil,
        progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil,
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
        if case let .streaming(rate) = options.frequency {
            streaming = StreamingFrequencyEstimator(itemCount: n, rate: rate, initialGap: Double(n) / Double(options.batchSize))
        }
        if let dir = options.checkpointDirectory {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw TwoTowerError.writeFailed(path: dir, reason: "\(error)")
            }
        }
        var order = Array(0 ..< samples.count)
        let parallel = DataParallel(threads: options.threads)
        var epochs: [TwoTowerEpochStats] = []
        var total = TwoTowerTiming()
        var best: (epoch: Int, metric: Double, weights: [[Float]])? = nil
        var lastGood = (epoch: 0, weights: model.snapshot())
        var lastCheckpoint: String? = nil
        var sinceBest = 0
        var stoppedEarly = false

        for epoch in 1 ... options.epochs {
            var timing = TwoTowerTiming()
            var t0 = ContinuousClock.now
            NNRandom.shuffle(&order, &rng)
            timing.batching += twoTowerSeconds(since: t0)
            var lossSum = 0.0
            var batches = 0
            var trained = 0
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
                if end - start < 2 { break }  // a batch of one has no in-batch negatives; drop it
                t0 = ContinuousClock.now
                let (batch, length) = assemble(samples: samples, order: order[start ..< end])
                prepareNegativesAndCorrection(batch: batch, counts: counts, totalTargets: totalTargets)
                timing.batching += twoTowerSeconds(since: t0)

                let shardStep = try parallel.run(count: batch) { shard, tape in
                    try self.forward(tape: tape, batch: batch, length: length, shard: shard)
                }
                timing.forward += shardStep.forwardSeconds
                timing.backward += shardStep.backwardSeconds
                guard shardStep.loss.isFinite else {
                    model.restore(lastGood.weights)
                    progress.finish(task: task)
                    throw TwoTowerError.nonFiniteLoss(epoch: epoch, batch: batches + 1, lastGoodEpoch: lastGood.epoch,
                                                      lastGoodCheckpoint: lastCheckpoint)
                }
                lossSum += Double(shardStep.loss)

                t0 = ContinuousClock.now
                if let clip = options.gradientClip { clipGradientNorm(model.parameters, maxNorm: clip) }
                denseOptimizer.step(model.denseParameters)
                embeddingOptimizer.step(model.embeddingParameters)
                timing.optimizer += twoTowerSeconds(since: t0)
                batches += 1
                trained += end - start
                step += 1
                start = end
                progress.report(task: task, done: end, total: samples.count)
            }
            progress.finish(task: task)
            var metric: Double? = nil
            var improved = false
            if let validate {
                t0 = ContinuousClock.now
                let m = try validate(model)
                timing.validation += twoTowerSeconds(since: t0)
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
            if let dir = options.checkpointDirectory {
                t0 = ContinuousClock.now
                let last = dir + "/last.ttw"
                try model.checkpoint(epoch: epoch, metric: metric).write(to: last)
                lastCheckpoint = last
                if improved { try model.checkpoint(epoch: epoch, metric: metric).write(to: dir + "/best.ttw") }
                timing.checkpoint += twoTowerSeconds(since: t0)
            }
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
                                      stoppedEarly: stoppedEarly, timing: total, wallSeconds: twoTowerSeconds(since: wallStart))
    }

    /// Fills the history, mask and target buffers for the samples `order` (padded to the longest
    /// history of the batch, at most `maxHistory`). Returns (batch, length).
    private func assemble(samples: TwoTowerSamples, order: ArraySlice<Int>) -> (Int, Int) {
        let maxHistory = model.config.maxHistory
        var length = 1
        for i in order {
            let t = Int(samples.targets[i])
            let s = samples.offsets[Int(samples.sequence[i])]
            length = max(length, min(maxHistory, t - s))
        }
        let batch = order.count
        historyRows.removeAll(keepingCapacity: true)
        mask.removeAll(keepingCapacity: true)
        targetRows.removeAll(keepingCapacity: true)
        for i in order {
            let t = Int(samples.targets[i])
            let s = max(samples.offsets[Int(samples.sequence[i])], t - maxHistory)
            for p in s ..< t {
                historyRows.append(Int(samples.items[p]))
                mask.append(1)
            }
            for _ in (t - s) ..< length {
                historyRows.append(-1)
                mask.append(0)
            }
            targetRows.append(Int(samples.items[t]))
        }
        return (batch, length)
    }

    /// Draws the negatives and fills the logQ and candidate-mask buffers for the current targets.
    private func prepareNegativesAndCorrection(batch: Int, counts: [Double], totalTargets: Double) {
        streaming?.observe(step: step, items: targetRows)  // this step's targets, before the correction
        let estimator = streaming
        let batchSize = Double(options.batchSize)
        candidates.draw(targets: targetRows, rng: &rng) { r in
            estimator?.expectedCount(r) ?? batchSize * counts[r] / totalTargets
        }
    }

    /// The loss of the samples `shard` of the assembled batch on `tape`: their share of the batch
    /// loss (``DataParallel``). Every shard scores its users against all the batch's candidates (the
    /// in-batch positives and the shared negatives), so the sum over shards is the batch loss.
    /// Reads the batch buffers only (safe on several threads at once).
    private func forward(tape: Tape, batch: Int, length: Int, shard: Range<Int>) throws -> Tensor {
        let whole = shard.count == batch
        let history = whole ? historyRows : Array(historyRows[shard.lowerBound * length ..< shard.upperBound * length])
        let shardMask = whole ? mask : Array(mask[shard.lowerBound * length ..< shard.upperBound * length])
        let users = try model.userVectors(historyRows: history, batch: shard.count, length: length, mask: shardMask, on: tape)
        let positives = try model.itemVectors(rows: targetRows, on: tape)
        return try candidates.loss(users: users, positives: positives, shard: shard, temperature: model.config.temperature,
                                   itemVectors: { rows in try self.model.itemVectors(rows: rows, on: tape) }, on: tape)
    }
}

/// Yi et al.'s streaming estimate of how often each item is sampled (RecSys 2019, Algorithm 2,
/// with one slot per item instead of a hash array): per item, the step it was last seen (`A`)
/// and a moving average `B` of the number of steps between its sightings,
/// `B ← (1 − rate) · B + rate · (t − A)`. `1 / B` estimates the item's expected count per step
/// (per batch), the sampling probability that the logQ correction subtracts.
///
/// Memory: two `Double`s per item. O(items of the step) per ``observe(step:items:)``.
public struct StreamingFrequencyEstimator: Sendable, Equatable {
    /// Weight of the newest gap, in (0, 1].
    public let rate: Double
    private var lastSeen: [Double]
    private var gap: [Double]

    /// An estimator over `itemCount` items whose gaps start at `initialGap` steps (e.g.
    /// `itemCount / batchSize`, a uniform prior).
    /// - Precondition: `itemCount >= 0`, `rate` in (0, 1], `initialGap > 0`.
    public init(itemCount: Int, rate: Double, initialGap: Double) {
        precondition(rate > 0 && rate <= 1 && initialGap > 0, "rate in (0, 1] and a positive initial gap")
        self.rate = rate
        lastSeen = [Double](repeating: -1, count: itemCount)
        gap = [Double](repeating: initialGap, count: itemCount)
    }

    /// Records that `items` (rows) were sampled at training step `step` (steps increase). An item
    /// listed twice in one step counts once.
    public mutating func observe(step: Int, items: [Int]) {
        let t = Double(step)
        for r in items where lastSeen[r] != t {
            if lastSeen[r] >= 0 { gap[r] = (1 - rate) * gap[r] + rate * (t - lastSeen[r]) }
            lastSeen[r] = t
        }
    }

    /// The estimated number of times item `row` appears per step: `1 / B`.
    public func expectedCount(_ row: Int) -> Double { 1 / max(gap[row], 1e-9) }
}

/// Seconds since `start`.
private func twoTowerSeconds(since start: ContinuousClock.Instant) -> Double {
    let d = start.duration(to: .now)
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
