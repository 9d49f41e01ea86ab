import ArborInference
import ArborTree

extension TDMNegativeSchedule {
    /// A short readable form for reports and provenance: "5 a level", "growing, about 60 a
    /// sample", "per level 0-2-4".
    public var summary: String {
        switch self {
        case .constant(let n): return "\(n) a level"
        case .growing(let total): return "growing, about \(total) a sample"
        case .perLevel(let list): return "per level " + list.map(String.init).joined(separator: "-")
        }
    }
}

extension TDMTrainingTargets {
    /// A short readable form for provenance, with the random-negative schedule `negatives`:
    /// "growing, about 60 a sample", "beam-aware (OTM, beam 4) beside growing, about 60 a sample",
    /// "beam-aware (OTM, beam 4) only".
    public func summary(_ negatives: TDMNegativeSchedule) -> String {
        switch self {
        case .randomNegatives: return negatives.summary
        case let .beamAware(width, keep):
            return "beam-aware (OTM, beam \(width)) " + (keep ? "beside " + negatives.summary : "only")
        }
    }
}

extension TrainingProvenance {
    /// The protocol name of TDM's user hold-out (``TDMTrainer`` callers that split otherwise pass their own).
    public static let tdmHoldOut = "tdm hold-out"

    /// The provenance of `model` about to be trained with `training` on `dataset`: model kind,
    /// width, hidden widths (none for the inner product), history, seed (the model's), negatives,
    /// optimizers and learning rates. No epoch has run yet (`epochsRun` and `bestEpoch` 0, no tree
    /// round, 0 seconds); ``finished(treeLearning:seconds:)`` fills in the outcome,
    /// and ``TDMTrainer`` fills in its checkpoints' when given this as
    /// ``TDMTrainingConfig/provenance``.
    public init(tdm model: TDMModel, training: TDMTrainingConfig, dataset: Dataset,
                protocolName: String = TrainingProvenance.tdmHoldOut, validationMetric: String? = "recall@50") {
        let c = model.config
        self.init(modelKind: c.kind.rawValue, dimension: c.dimension, hidden: c.kind == .innerProduct ? [] : c.hidden,
                  maxHistory: c.maxHistory, dataset: dataset, protocolName: protocolName, seed: c.seed, epochsRun: 0,
                  bestEpoch: 0, validationMetric: validationMetric, negatives: training.targets.summary(training.negatives),
                  optimizer: "adam (dense) + \(training.sparseOptimizer.rawValue) (embeddings)",
                  learningRate: training.learningRate, embeddingLearningRate: training.sparseLearningRate,
                  trainingSeconds: 0)
    }

    /// This record with the outcome of a tree-learning run: epochs run over all rounds, the kept
    /// round and its best epoch and validation score, the rounds run, `seconds` of wall clock and
    /// a fresh ``createdAt``.
    public func finished(treeLearning report: TDMTreeLearningReport, seconds: Double) -> TrainingProvenance {
        var p = self
        p.epochsRun = report.rounds.reduce(0) { $0 + $1.training.epochs.count }
        let kept = report.rounds.first { $0.round == report.bestRound }
        p.bestEpoch = kept?.training.bestEpoch ?? 0
        p.treeRounds = report.rounds.isEmpty ? nil : report.rounds.count
        p.keptRound = report.rounds.isEmpty ? nil : report.bestRound
        p.validationValue = kept?.validation
        if p.validationValue == nil { p.validationMetric = nil }
        p.trainingSeconds = seconds
        p.createdAt = TrainingProvenance.timestamp()
        return p
    }
}
