import ArborCore
import ArborInference
import ArborMath
import ArborNN
import Foundation

/// SDM training samples: per sequence (a user's time-ordered training events, or one session of
/// a session data set) the item rows and, per position, where its session starts; every position
/// `p >= 1` of a sequence is a target predicted from the items before it.
///
/// Sessions are cut with ``SDMSessionRule`` exactly as ``SDMEncoder`` cuts a query (the rule is
/// causal, so the sessions of a prefix are those of the whole sequence). Without timestamps a
/// sequence is one session. Storage is flat.
public struct SDMSamples: Sendable {
    /// Every sequence's item rows, back to back.
    public let items: [Int32]
    /// Sequence `s` is `items[offsets[s] ..< offsets[s + 1]]`.
    public let offsets: [Int]
    /// Per flat position, the flat position where its session starts.
    public let sessionStart: [Int32]
    /// Per sample, the flat position of its target.
    public let targets: [Int32]
    /// Per sample, its sequence.
    public let sequence: [Int32]

    /// Samples of `sequences` (rows oldest first), cut into sessions by `rule` with `timestamps`
    /// (one array per sequence, same lengths; out-of-order times are ordered stably first) or,
    /// when `nil`, one session per sequence.
    /// - Throws: ``TwoTowerError/noTrainingSamples(reason:)`` when no sequence has two items;
    ///   ``TwoTowerError/invalidConfiguration(field:reason:)`` for rows outside the catalogue or
    ///   timestamps of another length.
    public init(sequences: [[Int]], timestamps: [[Double]]?, itemCount: Int, rule: SDMSessionRule) throws(TwoTowerError) {
        if let timestamps, timestamps.count != sequences.count {
            throw .invalidConfiguration(field: "timestamps", reason: "\(timestamps.count) arrays for \(sequences.count) sequences")
        }
        var items = [Int32](), offsets = [0], starts = [Int32](), targets = [Int32](), seqOf = [Int32]()
        for (s, seq) in sequences.enumerated() {
            var order = Array(seq.indices)
            var times: [Double] = []
            if let timestamps {
                guard timestamps[s].count == seq.count else {
                    throw .invalidConfiguration(field: "timestamps", reason: "sequence \(s) has \(seq.count) items and \(timestamps[s].count) times")
                }
                order = SDMSessionRule.timeOrder(timestamps[s])
                times = order.map { timestamps[s][$0] }
            }
            let base = items.count
            var start = base, length = 0, last = -Double.infinity
            for (p, i) in order.enumerated() {
                let r = seq[i]
                guard (0 ..< itemCount).contains(r) else {
                    throw .invalidConfiguration(field: "training sequences", reason: "item row \(r) outside 0..<\(itemCount)")
                }
                if timestamps != nil {
                    let t = times[p]
                    if length > 0, t - last > rule.maxGap || length >= rule.maxActions { start = base + p; length = 0 }
                    length += 1
                    last = t
                }
                if p >= 1 { targets.append(Int32(items.count)); seqOf.append(Int32(s)) }
                items.append(Int32(r))
                starts.append(Int32(start))
            }
            offsets.append(items.count)
        }
        guard !targets.isEmpty else { throw .noTrainingSamples(reason: "no sequence has two items (\(sequences.count) sequences)") }
        self.items = items
        self.offsets = offsets
        sessionStart = starts
        self.targets = targets
        sequence = seqOf
    }

    /// Number of samples.
    public var count: Int { targets.count }

    /// The (short, long) rows of sample `i`, oldest first: the latest session of the prefix (its
    /// most recent `maxSession`) and, when `long`, the `maxLong` items before that session.
    public func inputs(_ i: Int, maxSession: Int, maxLong: Int, long: Bool) -> (short: ArraySlice<Int32>, long: ArraySlice<Int32>) {
        let t = Int(targets[i])
        let begin = offsets[Int(sequence[i])]
        let ss = Int(sessionStart[t - 1])
        let short = items[max(ss, t - maxSession) ..< t]
        let longPart = long ? items[max(begin, ss - maxLong) ..< ss] : items[ss ..< ss]
        return (short, longPart)
    }

    /// How often each item is a target, `itemCount` values.
    public func targetCounts(itemCount: Int) -> [Double] {
        var c = [Double](repeating: 0, count: itemCount)
        for t in targets { c[Int(items[Int(t)])] += 1 }
        return c
    }
}

/// Trains an ``SDMModel`` with the two-tower's softmax (``TwoTowerLoss``: in-batch, sampled or
/// mixed negatives, logQ-corrected with counted frequencies) and the two-tower's options (batch
/// size, epochs, Adam learning rates, patience, seed, checkpoints): shuffled mini-batches, a
/// validation metric after each epoch, early stopping (the best epoch's weights are restored),
/// progress in samples, per-phase timing; ``TwoTowerTrainingOptions/threads`` shards each batch
/// over threads (``DataParallel``). Not thread-safe; deterministic for a seed and a thread count
/// (BLAS aside).
public final class SDMTrainer {
    /// The model.
    public let model: SDMModel
    /// The options (shared with the two-tower).
    public let options: TwoTowerTrainingOptions
    private let dense: Adam
    private let sparse: any Optimizer
    private var rng: SplitMix64
    private var batch = SDMBatch()
    private var targetRows: [Int] = []
    private var candidates: SoftmaxCandidates

    /// A trainer.
    /// - Throws: ``TwoTowerError/invalidConfiguration(field:reason:)`` for bad options (streaming
    ///   frequencies are not supported here).
    public init(model: SDMModel, options: TwoTowerTrainingOptions) throws(TwoTowerError) {
        try options.validate()
        guard options.frequency == .counted else {
            throw .invalidConfiguration(field: "frequency", reason: "SDM training uses counted frequencies")
        }
        self.model = model
        self.options = options
        dense = Adam(learningRate: options.learningRate)
        sparse = options.makeEmbeddingOptimizer()
        rng = SplitMix64(seed: SplitMix64.derive(options.seed, 0x73646d))
        candidates = SoftmaxCandidates(kind: options.loss, logQCorrection: options.logQCorrection,
                                       itemCount: model.config.itemCount)
    }

    /// Trains on `samples`; see ``TwoTowerTrainer/train(samples:validate:progress:cancellation:onEpoch:)``
    /// for the meaning of each argument and of the report (checkpoints are the model's named
    /// tensors in `checkpointDirectory/last.sdm` and `best.sdm`, written by `writeCheckpoint`).
    /// - Throws: ``TwoTowerError/nonFiniteLoss(epoch:batch:lastGoodEpoch:lastGoodCheckpoint:)``,
    ///   `CancellationError`, or what `validate` and `writeCheckpoint` throw.
    public func train(
        samples: SDMSamples, validate: ((SDMModel) throws -> Double)? = nil,
        writeCheckpoint: ((SDMModel, _ path: String, _ epoch: Int, _ metric: Double?) throws -> Void)? = nil,
        progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil,
        onEpoch: ((TwoTowerEpochStats) -> Void)? = nil
    ) throws -> TwoTowerTrainingReport {
        let n = model.config.itemCount
        let wallStart = ContinuousClock.now
        let counts = samples.targetCounts(itemCount: n)
        let total = Double(samples.count)
        if let dir = options.checkpointDirectory { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        var order = Array(0 ..< samples.count)
        let parallel = DataParallel(threads: options.threads)
        var epochs: [TwoTowerEpochStats] = []
        var sum = TwoTowerTiming()
        var best: (epoch: Int, metric: Double, weights: [[Float]])? = nil
        var lastGood = (epoch: 0, weights: model.snapshot())
        var sinceBest = 0
        var stoppedEarly = false
        let cfg = model.config
        var rows: [(short: ArraySlice<Int32>, long: ArraySlice<Int32>)] = []
        for epoch in 1 ... options.epochs {
            var timing = TwoTowerTiming()
            NNRandom.shuffle(&order, &rng)
            var lossSum = 0.0, batches = 0, trained = 0
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
                var t0 = ContinuousClock.now
                rows.removeAll(keepingCapacity: true)
                targetRows.removeAll(keepingCapacity: true)
                for i in order[start ..< end] {
                    rows.append(samples.inputs(i, maxSession: cfg.maxSession, maxLong: cfg.maxLong, long: cfg.fusion.usesLongTerm))
                    targetRows.append(Int(samples.items[Int(samples.targets[i])]))
                }
                batch.fill(rows)
                prepareNegatives(counts: counts, total: total)
                timing.batching += seconds(since: t0)
                let shardStep = try parallel.run(count: targetRows.count) { shard, tape in try self.forward(tape, shard: shard) }
                timing.forward += shardStep.forwardSeconds
                timing.backward += shardStep.backwardSeconds
                guard shardStep.loss.isFinite else {
                    model.restore(lastGood.weights)
                    progress.finish(task: task)
                    throw TwoTowerError.nonFiniteLoss(epoch: epoch, batch: batches + 1, lastGoodEpoch: lastGood.epoch, lastGoodCheckpoint: nil)
                }
                lossSum += Double(shardStep.loss)
                t0 = ContinuousClock.now
                if let clip = options.gradientClip { _ = clipGradientNorm(model.parameters, maxNorm: clip) }
                dense.step(model.denseParameters)
                sparse.step(model.embeddingParameters)
                timing.optimizer += seconds(since: t0)
                batches += 1
                trained += end - start
                start = end
                progress.report(task: task, done: end, total: samples.count)
            }
            progress.finish(task: task)
            var metric: Double? = nil
            var improved = false
            if let validate {
                let t0 = ContinuousClock.now
                let m = try validate(model)
                timing.validation += seconds(since: t0)
                metric = m
                if best == nil || m > best!.metric {
                    best = (epoch, m, model.snapshot()); improved = true; sinceBest = 0
                } else {
                    sinceBest += 1
                }
            }
            lastGood = (epoch, model.snapshot())
            if let dir = options.checkpointDirectory, let writeCheckpoint {
                let t0 = ContinuousClock.now
                try writeCheckpoint(model, dir + "/last.sdm", epoch, metric)
                if improved { try writeCheckpoint(model, dir + "/best.sdm", epoch, metric) }
                timing.checkpoint += seconds(since: t0)
            }
            let stats = TwoTowerEpochStats(
                epoch: epoch, meanLoss: batches > 0 ? lossSum / Double(batches) : .nan, samples: trained,
                samplesPerSecond: timing.training > 0 ? Double(trained) / timing.training : 0,
                validation: metric, improved: improved, timing: timing)
            epochs.append(stats)
            sum.add(timing)
            onEpoch?(stats)
            if validate != nil, sinceBest >= options.patience { stoppedEarly = epoch < options.epochs; break }
        }
        var bestEpoch = epochs.last?.epoch ?? 0
        if let best { model.restore(best.weights); bestEpoch = best.epoch }
        return TwoTowerTrainingReport(epochs: epochs, bestEpoch: bestEpoch, bestMetric: best?.metric, stoppedEarly: stoppedEarly,
                                      timing: sum, wallSeconds: seconds(since: wallStart))
    }

    /// Negatives and logQ as the two-tower trainer draws them (uniform without replacement, shared
    /// by the batch; in-batch columns corrected by their expected count).
    private func prepareNegatives(counts: [Double], total: Double) {
        let batchSize = Double(options.batchSize)
        candidates.draw(targets: targetRows, rng: &rng) { r in batchSize * counts[r] / total }
    }

    /// The loss of the samples `shard` of the filled batch: their share of the batch loss
    /// (``DataParallel``), scored against all of the batch's candidates. Reads the batch only.
    private func forward(_ tape: Tape, shard: Range<Int>) throws -> Tensor {
        let users = try model.userVectors(shard.count == targetRows.count ? batch : batch.rows(shard), on: tape)
        let positives = try model.itemVectors(rows: targetRows, on: tape)
        return try candidates.loss(users: users, positives: positives, shard: shard, temperature: model.config.temperature,
                                   itemVectors: { rows in try self.model.itemVectors(rows: rows, on: tape) }, on: tape)
    }
}

private func seconds(since start: ContinuousClock.Instant) -> Double {
    let d = start.duration(to: .now)
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
