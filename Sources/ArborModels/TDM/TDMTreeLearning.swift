import ArborInference
import ArborMath
import ArborTree

/// How a tree-learning round rebuilds the tree from the trained model.
public enum TDMTreeRebuild: Sendable, Equatable {
    /// TDM: recursive balanced k-means on the learned leaf embeddings (a new shape and new inner nodes).
    case recluster
    /// JTM: greedy layer-wise re-assignment of items to leaf slots by path score
    /// (``TDMReassignment``), the shape and inner nodes kept.
    case reassign(TDMReassignmentConfig)
}

/// Settings of TDM's alternation of model training and tree rebuilding.
public struct TDMTreeLearningConfig: Sendable {
    /// Most training rounds (the first trains on the initial tree; each later one on a tree
    /// rebuilt from the previous round's learned leaf embeddings).
    public var maxRounds: Int
    /// A round must beat the best validation score by more than this to count as rising.
    public var minGain: Double
    /// Options of the balanced k-means rebuild (fan-out, iterations, seed).
    public var build: TreeBuildOptions
    /// The rebuild between rounds (default: TDM's re-clustering).
    public var rebuild: TDMTreeRebuild

    /// Defaults: up to 3 rounds, any gain counts, binary tree, re-clustering.
    public init(maxRounds: Int = 3, minGain: Double = 0, build: TreeBuildOptions = .init(fanOut: 2),
                rebuild: TDMTreeRebuild = .recluster) {
        self.maxRounds = maxRounds
        self.minGain = minGain
        self.build = build
        self.rebuild = rebuild
    }
}

/// One round of tree learning.
public struct TDMTreeRound: Sendable, Equatable {
    /// Round number, from 1 (round 1 uses the initial tree).
    public var round: Int
    /// The training report of the round.
    public var training: TDMTrainingReport
    /// The round's best validation score.
    public var validation: Double
}

/// The outcome of ``TDMTreeLearning/run(model:samples:trainer:config:validate:progress:)``.
public struct TDMTreeLearningReport: Sendable, Equatable {
    /// Every round run.
    public var rounds: [TDMTreeRound]
    /// The round whose tree and weights the model holds at the end.
    public var bestRound: Int
}

/// TDM tree learning: train, rebuild the tree by recursive balanced k-means on the learned leaf
/// embeddings (inner nodes start as the means of their items), train again with the scorer and
/// behaviour weights carried over, and so on. Stops when a round's validation score no longer
/// rises (by more than ``TDMTreeLearningConfig/minGain``) or after
/// ``TDMTreeLearningConfig/maxRounds``; the model ends with the tree and weights of the best round.
public enum TDMTreeLearning {
    /// Runs the alternation on `model` (which holds the initial tree).
    /// - Parameters:
    ///   - validate: the score to maximise (e.g. beam-search recall on validation users); also used
    ///     per epoch inside each round.
    ///   - checkpoint: handed to ``TDMTrainer/train(_:samples:validate:checkpoint:progress:cancellation:)``,
    ///     with the provenance of the round.
    ///   - progress: each epoch's samples (``TDMTrainer``'s `train epoch <e>`, as `round <r> train epoch <e>`).
    ///   - cancellation: checked between training batches and before each rebuild; on
    ///     cancellation the model gets the best round's tree and weights so far (or the current
    ///     round's best epoch in round 1) and `CancellationError` is thrown.
    /// - Throws: whatever ``TDMTrainer/train(_:samples:validate:checkpoint:progress:cancellation:)`` or
    ///   ``TreeBuilder/balancedKMeans(embeddings:items:categories:options:progress:cancellation:)`` throw.
    /// - Complexity: rounds × (training + O(depth · N · fanOut · d · iterations) for the rebuild).
    public static func run(
        model: TDMModel, samples: [TDMSample], trainer: TDMTrainer, config: TDMTreeLearningConfig = .init(),
        validate: @escaping (TDMModel) throws -> Double, checkpoint: ((TDMModel, TrainingProvenance?) throws -> Void)? = nil,
        progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil
    ) throws -> TDMTreeLearningReport {
        var rounds: [TDMTreeRound] = []
        var best: (round: Int, score: Double, state: TDMModel.State)? = nil
        let start = ContinuousClock.now
        var epochsBefore = 0
        for round in 1...max(1, config.maxRounds) {
            if let cancellation, cancellation.isCancelled {
                if let best { try model.restore(best.state) }
                throw CancellationError()
            }
            if round > 1, case .reassign(let options) = config.rebuild {
                try model.replaceTree(TDMReassignment.reassign(model: model, samples: samples, config: options))
            } else if round > 1 {
                let (leaves, items) = model.leafEmbeddings()
                let categories = model.tree.leafCategories
                var options = config.build
                options.seed = SplitMix64.derive(config.build.seed, UInt64(round))
                let rebuilt = try TreeBuilder.balancedKMeans(embeddings: leaves, items: items, categories: categories,
                                                             options: options)
                try model.replaceTree(rebuilt)
            }
            // Checkpoints written during this round record it and the epochs and time before it.
            var roundTrainer = trainer
            if var p = trainer.config.provenance {
                let elapsed = start.duration(to: .now).components
                p.epochsRun += epochsBefore
                p.treeRounds = round
                p.keptRound = round
                p.trainingSeconds += Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
                roundTrainer.config.provenance = p
            }
            let report: TDMTrainingReport
            do {
                report = try roundTrainer.train(model, samples: samples, validate: validate, checkpoint: checkpoint,
                                                progress: PrefixedProgress(prefix: "round \(round)", inner: progress),
                                                cancellation: cancellation)
            } catch let error as CancellationError {
                // The trainer restored this round's best epoch; an earlier round may be better still.
                if let best { try model.restore(best.state) }
                throw error
            }
            epochsBefore += report.epochs.count
            let score = try report.bestValidation ?? validate(model)
            rounds.append(TDMTreeRound(round: round, training: report, validation: score))
            if let b = best, score <= b.score + config.minGain { break }
            best = (round, score, model.state())
        }
        if let best { try model.restore(best.state) }
        return TDMTreeLearningReport(rounds: rounds, bestRound: best?.round ?? 1)
    }
}
