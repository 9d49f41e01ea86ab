import ArborInference
import ArborNN
import ArborTree
import Foundation

/// One TDM training sample: a user's behaviours before the target (oldest first) and the target.
public struct TDMSample: Sendable, Equatable {
    /// Behaviours before the target, oldest first (only the last `maxHistory` are used).
    public var history: [ItemID]
    /// The item to retrieve.
    public var target: ItemID
    /// Items the user chose after the target: with it, the target set of beam-aware training's
    /// pseudo-targets (``TDMTrainingTargets/beamAware(beamWidth:randomNegatives:)``); TDM's random
    /// negatives use the target alone. Default empty.
    public var futureTargets: [ItemID] = []

    /// A sample.
    public init(history: [ItemID], target: ItemID, futureTargets: [ItemID] = []) {
        self.history = history
        self.target = target
        self.futureTargets = futureTargets
    }

    /// TDM's sliding window over time-ordered sequences: every position `t >= minHistory` of every
    /// sequence gives `(sequence[max(0, t − maxHistory) ..< t], sequence[t])`, and the next
    /// `futureWindow` items (`sequence[t + 1 ..< t + 1 + futureWindow]`) as future targets.
    /// O(total length · (maxHistory + futureWindow)).
    public static func slidingWindow(sequences: [[ItemID]], maxHistory: Int, minHistory: Int = 1,
                                     futureWindow: Int = 0) -> [TDMSample] {
        var out: [TDMSample] = []
        let window = max(0, futureWindow)
        for seq in sequences where seq.count > minHistory {
            for t in max(1, minHistory)..<seq.count {
                let future = window > 0 ? Array(seq[(t + 1) ..< min(seq.count, t + 1 + window)]) : []
                out.append(TDMSample(history: Array(seq[max(0, t - maxHistory)..<t]), target: seq[t], futureTargets: future))
            }
        }
        return out
    }
}

/// How many random negatives are drawn per level for each sample (TDM: more near the leaves).
public enum TDMNegativeSchedule: Sendable, Equatable {
    /// The same count on every level below the root.
    case constant(Int)
    /// About `total` negatives per sample over all levels, level `l` getting a share proportional
    /// to `l` (so the leaves get the most), at least 1 per level.
    case growing(total: Int)
    /// Explicit counts, index = level (entry 0, the root, is ignored); missing levels reuse the last.
    case perLevel([Int])

    /// Negatives on each level `0 ... depth` of a tree with `levelSizes` nodes per level, each capped
    /// at the level size minus one (the positive). Level 0 always gets 0.
    public func counts(levelSizes: [Int]) -> [Int] {
        let depth = levelSizes.count - 1
        guard depth >= 1 else { return [0] }
        var out = [0]
        let weightSum = Double(depth * (depth + 1) / 2)
        for l in 1...depth {
            let raw: Int
            switch self {
            case .constant(let n): raw = n
            case .growing(let total): raw = max(1, Int((Double(total) * Double(l) / weightSum).rounded()))
            case .perLevel(let list): raw = list.isEmpty ? 0 : list[min(l, list.count - 1)]
            }
            out.append(max(0, min(raw, levelSizes[l] - 1)))
        }
        return out
    }
}

/// Which rows each training sample contributes: TDM's random same-level negatives, or OTM's
/// beam-aware rows.
public enum TDMTrainingTargets: Sendable, Equatable {
    /// TDM: the target's ancestor on every level below the root (label 1) and random nodes of the
    /// same level (label 0), counted by ``TDMTrainingConfig/negatives``.
    case randomNegatives
    /// OTM (Zhuo et al., ICML 2020): beam search of width `beamWidth` with the current model, then
    /// every node it scores on every level (the children of the level above's beam) with its
    /// bottom-up pseudo-target (``TDMPseudoTargets``: 1 when a target leaf is below it). With
    /// `randomNegatives`, TDM's rows are added beside them; without, only the visited nodes train.
    case beamAware(beamWidth: Int, randomNegatives: Bool)
}

/// Which sparse optimizer updates the embedding tables (node and behaviour rows).
public enum TDMSparseOptimizer: String, Sendable, CaseIterable {
    /// Lazy Adam: Adam moments for the touched rows only.
    case lazyAdam = "lazy-adam"
    /// Adagrad over the touched rows.
    case adagrad
}

/// Settings of ``TDMTrainer``.
public struct TDMTrainingConfig: Sendable {
    /// Most epochs (passes over the samples).
    public var epochs: Int
    /// Samples per batch.
    public var batchSize: Int
    /// Random negatives per level.
    public var negatives: TDMNegativeSchedule
    /// The rows each sample trains on (default TDM's random negatives). Beam-aware training's beam
    /// width must be >= 1 (``TDMTrainer/train(_:samples:validate:checkpoint:progress:cancellation:)``
    /// rejects it otherwise) and is clamped to the widest level.
    public var targets: TDMTrainingTargets = .randomNegatives
    /// Adam learning rate of the dense weights.
    public var learningRate: Float
    /// Learning rate of the embedding tables.
    public var sparseLearningRate: Float
    /// Optimizer of the embedding tables.
    public var sparseOptimizer: TDMSparseOptimizer
    /// Gradient norm clip (0 = off).
    public var clipNorm: Float
    /// Epochs without a better validation score before stopping (needs a validator).
    public var patience: Int
    /// Samples drawn (without replacement, reshuffled each epoch) per epoch; `nil` = all.
    public var samplesPerEpoch: Int?
    /// The training provenance handed to each checkpoint (e.g. from
    /// ``TrainingProvenance/init(tdm:training:dataset:protocolName:validationMetric:)``); the trainer
    /// adds this call's epochs to its `epochsRun`, sets `bestEpoch` to the checkpoint's epoch, the
    /// validation score, its own seconds on top of `trainingSeconds`, and a fresh `createdAt`.
    /// `nil` (the default): checkpoints carry no provenance.
    public var provenance: TrainingProvenance? = nil
    /// Seed of shuffling and negative sampling.
    public var seed: UInt64
    /// Threads per batch (``DataParallel``, clamped to `1 ... DataParallel.maxThreads`): each takes
    /// a contiguous shard of the batch's samples through forward and backward. 1 is the sequential
    /// trainer, bit for bit; other counts are repeatable for the same count.
    public var threads: Int = 1

    /// Defaults: 10 epochs, batch 256, about 100 negatives per sample growing toward the leaves
    /// (TDM's MovieLens setting), Adam 1e-3 with lazy Adam 1e-2 for the tables, patience 2.
    public init(epochs: Int = 10, batchSize: Int = 256, negatives: TDMNegativeSchedule = .growing(total: 100),
                learningRate: Float = 1e-3, sparseLearningRate: Float = 1e-2, sparseOptimizer: TDMSparseOptimizer = .lazyAdam,
                clipNorm: Float = 0, patience: Int = 2, samplesPerEpoch: Int? = nil,
                seed: UInt64 = 0) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.negatives = negatives
        self.learningRate = learningRate
        self.sparseLearningRate = sparseLearningRate
        self.sparseOptimizer = sparseOptimizer
        self.clipNorm = clipNorm
        self.patience = patience
        self.samplesPerEpoch = samplesPerEpoch
        self.seed = seed
    }
}

/// What one epoch did.
public struct TDMEpochReport: Sendable, Equatable {
    /// Epoch number, from 1.
    public var epoch: Int
    /// Mean per-sample loss (summed binary cross-entropy over all levels' rows of a sample).
    public var loss: Double
    /// Samples trained on.
    public var samples: Int
    /// Training throughput (samples per second, wall clock; excludes validation).
    public var samplesPerSecond: Double
    /// Validation score after the epoch (e.g. recall@k of beam search), if a validator was given.
    public var validation: Double?
}

/// The outcome of ``TDMTrainer/train(_:samples:validate:progress:cancellation:)``.
public struct TDMTrainingReport: Sendable, Equatable {
    /// One entry per epoch run.
    public var epochs: [TDMEpochReport]
    /// The epoch whose weights the model holds at the end (best validation, or the last).
    public var bestEpoch: Int
    /// The best validation score, if a validator was given.
    public var bestValidation: Double?
    /// Samples skipped because their target is not a tree item.
    public var skippedSamples: Int
    /// Whether training stopped early (patience ran out).
    public var stoppedEarly: Bool
}

/// Trains a ``TDMModel`` with TDM's loss: for each sample, the target's ancestor on every level
/// below the root is a positive and random nodes of the same level are negatives; the loss is the
/// sum of their binary cross-entropies (averaged over the samples of a batch). Node embeddings,
/// behaviour embeddings and scorer weights learn jointly (LazyAdam or Adagrad for the tables, Adam
/// for the dense weights).
///
/// Each batch is one forward pass over all rows of all levels (a few GEMMs, see
/// ``TDMModel/logits(_:on:)``), or one per shard on ``TDMTrainingConfig/threads`` threads
/// (``DataParallel``). Deterministic for a seed and a thread count. After each epoch the optional validator
/// scores the model (e.g. beam-search recall on validation users); the best epoch's weights are kept
/// and restored at the end, and training stops after ``TDMTrainingConfig/patience`` epochs without
/// improvement.
public struct TDMTrainer: Sendable {
    /// The settings.
    public var config: TDMTrainingConfig

    /// A trainer with `config`.
    public init(config: TDMTrainingConfig = .init()) { self.config = config }

    /// Builds the batch of `samples` (indices into `all`) with freshly drawn negatives.
    /// O(batch · (maxHistory + Σ negatives)).
    public func makeBatch(model: TDMModel, samples all: [TDMSample], indices: some Collection<Int>,
                          negatives: [Int], rng: inout Xoshiro256StarStar) -> TDMBatch {
        plan(model: model, samples: all, indices: indices, negatives: negatives, randomRows: true, rng: &rng).batch
    }

    /// A batch with its samples and, when `randomRows`, TDM's rows (the target's ancestors and
    /// `negatives[l]` random nodes of each level). `sampleAt[s][l]` is the batch sample that
    /// training sample `s` is scored as on level `l` (one per level with hierarchical features).
    func plan(model: TDMModel, samples all: [TDMSample], indices: some Collection<Int>, negatives: [Int],
              randomRows: Bool, rng: inout Xoshiro256StarStar)
        -> (batch: TDMBatch, sampleAt: [[Int]], histories: [[Int]], leaves: [Int], future: [[Int]]) {
        let tree = model.tree
        var rows: [[Int]] = []
        var leaves: [Int] = []
        var future: [[Int]] = []
        for i in indices {
            guard let leaf = model.leafOfItem[all[i].target] else { continue }
            rows.append(model.behaviourRows(of: all[i].history).rows)
            leaves.append(leaf)
            future.append(all[i].futureTargets.compactMap { model.leafOfItem[$0] })
        }
        var batch = TDMBatch(length: max(1, rows.map(\.count).max() ?? 1))
        var sampleAt: [[Int]] = []
        for (s, leaf) in leaves.enumerated() {
            sampleAt.append(Self.appendSample(model: model, rows: rows[s], to: &batch))
            guard randomRows else { continue }
            let path = model.ancestors(ofLeaf: leaf)
            for l in 1...max(1, tree.depth) where l <= tree.depth {
                let size = tree.levels[l].nodeCount
                batch.appendRow(sample: sampleAt[s][l], node: model.globalIndex(level: l, node: path[l]), label: 1)
                for _ in 0..<negatives[l] {
                    var n = Int(rng.next(below: UInt64(size - 1)))
                    if n >= path[l] { n += 1 }  // uniform over the level without the positive
                    batch.appendRow(sample: sampleAt[s][l], node: model.globalIndex(level: l, node: n), label: 0)
                }
            }
        }
        if model.isHierarchical { batch.trainingSampleCount = leaves.count }
        return (batch, sampleAt, rows, leaves, future)
    }

    /// Appends a user (behaviour rows) to `batch`: once, or once per level with hierarchical
    /// features (levels `1 ... depth`, each with ``TDMModel/levelRows(_:level:)``). Returns the
    /// batch sample of each level `0 ... depth` (entry 0 unused).
    static func appendSample(model: TDMModel, rows: [Int], to batch: inout TDMBatch) -> [Int] {
        let depth = model.tree.depth
        guard model.isHierarchical, depth >= 1 else {
            let s = batch.appendSample(rows: rows)
            return [Int](repeating: s, count: depth + 1)
        }
        var at = [0]
        for l in 1...depth { at.append(batch.appendSample(rows: model.levelRows(rows, level: l))) }
        at[0] = at[1]
        return at
    }

    /// OTM's rows for the users of a batch: beam search (``TDMBeamVisits``) then every visited
    /// node with its pseudo-target for the target set (the target's leaf and `future[s]`), appended
    /// to `batch` as rows of the users' samples.
    func appendBeamRows(model: TDMModel, batch: inout TDMBatch, sampleAt: [[Int]], histories: [[Int]], leaves: [Int],
                        future: [[Int]], beamWidth: Int) throws(ArborError) {
        let visits = try TDMBeamVisits.visits(model: model, histories: histories, beamWidth: beamWidth)
        for (s, leaf) in leaves.enumerated() {
            var set: [Int: Float] = [leaf: 1]
            for f in future[s] { set[f] = 1 }
            let targets = TDMPseudoTargets.targets(model: model, leafTargets: set)
            for l in 1...max(1, model.tree.depth) where l <= model.tree.depth {
                for node in visits[s][l] {
                    batch.appendRow(sample: sampleAt[s][l], node: model.globalIndex(level: l, node: node),
                                    label: targets[l][node] ?? 0)
                }
            }
        }
    }

    /// The rows beam-aware training gives one user: for each level `0 ... depth`, the nodes beam
    /// search of width `beamWidth` scores there with the current model, each with its pseudo-target
    /// for `targets` (target items with their values in `[0, 1]`, e.g. 1 for each future item;
    /// items outside the tree are ignored). Entry 0 (the root) is empty.
    /// O(depth · beamWidth · fanOut) model evaluations.
    /// - Throws: ``ArborError`` for a beam width below 1.
    public func beamAwareRows(model: TDMModel, history: [ItemID], targets: [ItemID: Float],
                              beamWidth: Int) throws(ArborError) -> [[(node: Int, label: Float)]] {
        var leafTargets: [Int: Float] = [:]
        for (id, v) in targets { if let leaf = model.leafOfItem[id] { leafTargets[leaf] = max(leafTargets[leaf] ?? v, v) } }
        let pseudo = TDMPseudoTargets.targets(model: model, leafTargets: leafTargets)
        let visits = try TDMBeamVisits.visits(model: model, histories: [model.behaviourRows(of: history).rows],
                                              beamWidth: beamWidth)[0]
        return visits.enumerated().map { l, nodes in nodes.map { (node: $0, label: pseudo[l][$0] ?? 0) } }
    }

    /// The loss of one batch, recorded on `tape`: summed binary cross-entropy per sample, averaged
    /// over the samples. Shape `[1]`.
    public func loss(model: TDMModel, batch: TDMBatch, on tape: Tape) throws(ArborError) -> Tensor {
        let logits = try model.logits(batch, on: tape)
        let mean = try tape.binaryCrossEntropyWithLogits(logits, labels: batch.labels)
        return tape.scale(mean, by: Float(batch.rowCount) / Float(max(1, batch.trainingSampleCount ?? batch.sampleCount)))
    }

    /// Trains `model` on `samples`.
    /// - Parameters:
    ///   - validate: scores the model after each epoch (higher is better), e.g. beam-search recall
    ///     on validation users; `nil` runs every epoch and keeps the last weights.
    ///   - progress: `train epoch <e>` with samples done of the epoch's samples.
    ///   - cancellation: checked between batches; the best weights so far are restored before throwing.
    ///   - checkpoint: called after every epoch that improves the validation score (or every epoch
    ///     without a validator) with the model and the provenance of that point (``TDMTrainingConfig/provenance``
    ///     brought up to date), e.g. to write an index (ArborPipelines' `TDMIndexFile`); its errors stop training.
    /// - Throws: ``TDMError/noTrainingSamples`` when no sample's target is in the tree,
    ///   ``TDMError/diverged(epoch:batch:)`` for a non-finite loss, ``TDMError/invalid(_:)``,
    ///   what `checkpoint` throws, `CancellationError`.
    public func train(
        _ model: TDMModel, samples: [TDMSample], validate: ((TDMModel) throws -> Double)? = nil,
        checkpoint: ((TDMModel, TrainingProvenance?) throws -> Void)? = nil,
        progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil
    ) throws -> TDMTrainingReport {
        guard config.batchSize >= 1, config.epochs >= 0 else {
            throw TDMError.invalid(.invalidArgument(name: "training config", reason: "batch size and epochs must be positive"))
        }
        var beamWidth: Int? = nil
        var randomRows = true
        if case let .beamAware(width, keepRandom) = config.targets {
            guard width >= 1 else {
                throw TDMError.invalid(.invalidArgument(name: "beam-aware beam width", reason: "must be at least 1, got \(width)"))
            }
            beamWidth = min(width, model.tree.levels.map(\.nodeCount).max() ?? 1)
            randomRows = keepRandom
        }
        let usable = samples.indices.filter { model.leafOfItem[samples[$0].target] != nil }
        guard !usable.isEmpty else { throw TDMError.noTrainingSamples }
        let negatives = config.negatives.counts(levelSizes: model.tree.levels.map(\.nodeCount))
        let dense = Adam(learningRate: config.learningRate)
        let sparse: Optimizer = config.sparseOptimizer == .lazyAdam
            ? LazyAdam(learningRate: config.sparseLearningRate) : Adagrad(learningRate: config.sparseLearningRate)
        var rng = Xoshiro256StarStar(seed: config.seed, stream: 7)
        let parallel = DataParallel(threads: config.threads)
        var order = usable
        var reports: [TDMEpochReport] = []
        var best: (epoch: Int, score: Double, state: TDMModel.State)? = nil
        var stale = 0
        var stoppedEarly = false
        let trainStart = ContinuousClock.now
        for epoch in 1...max(1, config.epochs) where config.epochs > 0 {
            // Seeded Fisher–Yates.
            for i in stride(from: order.count - 1, to: 0, by: -1) {
                order.swapAt(i, Int(rng.next(below: UInt64(i + 1))))
            }
            let take = min(order.count, config.samplesPerEpoch ?? order.count)
            let start = ContinuousClock.now
            var lossSum = 0.0
            var batchIndex = 0
            var done = 0
            while done < take {
                if let cancellation, cancellation.isCancelled {
                    if let best { try model.restore(best.state) }
                    throw CancellationError()
                }
                let end = min(take, done + config.batchSize)
                // One batch per shard, drawn in sample order (the same negatives as one batch).
                let shards = parallel.shards(of: end - done)
                let plans = shards.map { shard in
                    plan(model: model, samples: samples, indices: order[done + shard.lowerBound ..< done + shard.upperBound],
                         negatives: negatives, randomRows: randomRows, rng: &rng)
                }
                let step = try parallel.run(count: end - done) { shard, tape in
                    let plan = plans[shards.firstIndex(of: shard)!]
                    var batch = plan.batch
                    if let beamWidth {
                        // Beam search with the weights of this step, in this shard's thread.
                        try self.appendBeamRows(model: model, batch: &batch, sampleAt: plan.sampleAt,
                                                histories: plan.histories, leaves: plan.leaves, future: plan.future,
                                                beamWidth: beamWidth)
                    }
                    let loss = try self.loss(model: model, batch: batch, on: tape)
                    return shard.count == end - done ? loss : tape.scale(loss, by: DataParallel.shareOfBatch(shard, of: end - done))
                }
                guard step.loss.isFinite else { throw TDMError.diverged(epoch: epoch, batch: batchIndex) }
                if config.clipNorm > 0 { clipGradientNorm(model.parameters, maxNorm: config.clipNorm) }
                sparse.step(model.sparseParameters)
                dense.step(model.denseParameters)
                lossSum += Double(step.loss) * Double(end - done)
                done = end
                batchIndex += 1
                progress.report(task: "train epoch \(epoch)", done: done, total: take)
            }
            progress.finish(task: "train epoch \(epoch)")
            let elapsed = start.duration(to: .now).components
            let seconds = max(1e-9, Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18)
            let score = try validate?(model)
            reports.append(TDMEpochReport(epoch: epoch, loss: lossSum / Double(max(1, take)), samples: take,
                                          samplesPerSecond: Double(take) / seconds, validation: score))
            let improved = score.map { s in best.map { s > $0.score } ?? true } ?? true
            if improved {
                best = (epoch, score ?? 0, model.state())
                stale = 0
                if let checkpoint {
                    let provenance = config.provenance.map { base in
                        var p = base
                        p.epochsRun = base.epochsRun + epoch
                        p.bestEpoch = epoch
                        if let score { p.validationValue = score }
                        let total = trainStart.duration(to: .now).components
                        p.trainingSeconds = base.trainingSeconds + Double(total.seconds) + Double(total.attoseconds) * 1e-18
                        p.createdAt = TrainingProvenance.timestamp()
                        return p
                    }
                    try checkpoint(model, provenance)
                }
            } else {
                stale += 1
                if validate != nil, stale >= config.patience { stoppedEarly = true; break }
            }
        }
        if let best, validate != nil { try model.restore(best.state) }
        return TDMTrainingReport(epochs: reports, bestEpoch: best?.epoch ?? 0,
                                 bestValidation: validate == nil ? nil : best?.score,
                                 skippedSamples: samples.count - usable.count, stoppedEarly: stoppedEarly)
    }
}
