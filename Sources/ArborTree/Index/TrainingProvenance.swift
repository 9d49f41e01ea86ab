#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How the model served by an index was trained: what model, on what data, under which protocol,
/// for how long and how well it validated.
///
/// Stored by trainers as the extra value ``extraName`` of the index (JSON, keys sorted, UTF-8;
/// the index checksums it like every extra value). Indexes built without training (`arbor build`)
/// have none: ``IndexReader/trainingProvenance()`` returns `nil` for them.
///
/// Invariants (checked by ``validate()`` before writing and after reading): ``modelKind`` is not
/// empty; ``dimension`` and ``maxHistory`` are >= 1; every ``hidden`` width is >= 1; every count of
/// ``dataset`` is >= 0; `0 <= bestEpoch <= epochsRun`; ``treeRounds`` and ``keptRound`` are both
/// set (`1 <= keptRound <= treeRounds`) or both `nil`; ``validationValue`` and ``trainingSeconds``
/// are finite (seconds >= 0); learning rates are finite and > 0; ``createdAt`` is an ISO 8601
/// date-time. Unknown JSON keys are ignored when reading, so later versions may add optional fields.
public struct TrainingProvenance: Sendable, Equatable, Codable {
    /// The name of the extra value that holds the provenance in an index.
    public static let extraName = "training.provenance"

    /// The data a model was trained on and the sizes of its splits (counts after filtering).
    public struct Dataset: Sendable, Equatable, Codable {
        /// A short name (e.g. "ml-100k"); may be empty when the trainer was not told one.
        public var name: String
        /// The file the data was read from, as given on the command line, if any.
        public var path: String?
        /// Catalogue size: the items the index holds (its leaves).
        public var items: Int
        /// Users whose behaviours were trained on.
        public var trainUsers: Int
        /// Behaviours in the training sequences (interactions trained on).
        public var trainInteractions: Int
        /// Training samples (history → target pairs) the epochs draw from.
        public var trainSamples: Int
        /// Users held out for validation (early stopping, tree rounds).
        public var validationUsers: Int
        /// Users held out for the test report.
        public var testUsers: Int

        /// A data set description; see the properties.
        public init(name: String, path: String? = nil, items: Int, trainUsers: Int, trainInteractions: Int,
                    trainSamples: Int, validationUsers: Int, testUsers: Int) {
            self.name = name
            self.path = path
            self.items = items
            self.trainUsers = trainUsers
            self.trainInteractions = trainInteractions
            self.trainSamples = trainSamples
            self.validationUsers = validationUsers
            self.testUsers = testUsers
        }
    }

    /// The trained model: a TDM scorer kind ("inner-product", "dnn", "attention") or "two-tower".
    public var modelKind: String
    /// Embedding width `d` (node, behaviour and query vectors).
    public var dimension: Int
    /// Hidden widths of the scorer's (or user tower's) MLP, input side first; empty without one.
    public var hidden: [Int]
    /// Most recent behaviours a user is represented by.
    public var maxHistory: Int
    /// The training data.
    public var dataset: Dataset
    /// The evaluation protocol that split the data (e.g. "tdm hold-out", "leave-last-out").
    public var protocolName: String
    /// The seed the run was given (split, initial weights, sampling).
    public var seed: UInt64
    /// Epochs run in total (over every tree round).
    public var epochsRun: Int
    /// The epoch whose weights the index holds, counted within ``keptRound`` when there are tree
    /// rounds (0 when no epoch ran).
    public var bestEpoch: Int
    /// Tree-learning rounds run (TDM), or `nil` for a tree built once after training.
    public var treeRounds: Int?
    /// The round whose tree and weights the index holds (`1 ... treeRounds`), or `nil`.
    public var keptRound: Int?
    /// The validation metric that chose the kept weights (e.g. "recall@50", "ndcg@10"), if any.
    public var validationMetric: String?
    /// Its value for the kept weights, if validated.
    public var validationValue: Double?
    /// The negative sampling (e.g. "growing, about 60 a sample", "mixed: in-batch + 100 uniform, logQ counted").
    public var negatives: String
    /// The optimizers (e.g. "adam (dense) + lazy-adam (embeddings)").
    public var optimizer: String
    /// Learning rate of the dense weights.
    public var learningRate: Float
    /// Learning rate of the embedding tables, when it differs in kind or value from ``learningRate``.
    public var embeddingLearningRate: Float?
    /// Wall-clock seconds of training (with validation and tree rebuilds), up to the write.
    public var trainingSeconds: Double
    /// Where training started (e.g. "category-ordered tree, random embeddings", or a warm start
    /// from another model), when the trainer says; absent in records of earlier versions.
    public var initialization: String?
    /// The model's architecture in words, when the trainer says (e.g. SDM states whether it has a
    /// long term: "long term: none (data without users: short term only, …)").
    public var modelDetails: String?
    /// The Arbor version that trained the model, when the build knows one.
    public var arborVersion: String?
    /// When the record was made: an ISO 8601 date-time in UTC (``timestamp(_:)``).
    public var createdAt: String

    /// A provenance record; see the properties for each field's meaning and ``validate()`` for the
    /// invariants (not checked here).
    public init(modelKind: String, dimension: Int, hidden: [Int], maxHistory: Int, dataset: Dataset,
                protocolName: String, seed: UInt64, epochsRun: Int, bestEpoch: Int, treeRounds: Int? = nil,
                keptRound: Int? = nil, validationMetric: String? = nil, validationValue: Double? = nil,
                negatives: String, optimizer: String, learningRate: Float, embeddingLearningRate: Float? = nil,
                trainingSeconds: Double, arborVersion: String? = nil, createdAt: String = TrainingProvenance.timestamp()) {
        self.modelKind = modelKind
        self.dimension = dimension
        self.hidden = hidden
        self.maxHistory = maxHistory
        self.dataset = dataset
        self.protocolName = protocolName
        self.seed = seed
        self.epochsRun = epochsRun
        self.bestEpoch = bestEpoch
        self.treeRounds = treeRounds
        self.keptRound = keptRound
        self.validationMetric = validationMetric
        self.validationValue = validationValue
        self.negatives = negatives
        self.optimizer = optimizer
        self.learningRate = learningRate
        self.embeddingLearningRate = embeddingLearningRate
        self.trainingSeconds = trainingSeconds
        self.arborVersion = arborVersion
        self.createdAt = createdAt
    }

    /// `date` as an ISO 8601 date-time in UTC, whole seconds (e.g. "2026-11-26T10:15:30Z").
    public static func timestamp(_ date: Date = Date()) -> String {
        date.formatted(Date.ISO8601FormatStyle())
    }

    /// The first field that breaks an invariant, by its JSON path (e.g. "dataset.items",
    /// "hidden[1]"), and why; `nil` when every invariant holds.
    func firstProblem() -> (field: String, reason: String)? {
        if modelKind.isEmpty { return ("modelKind", "is empty") }
        if dimension < 1 { return ("dimension", "must be at least 1, got \(dimension)") }
        if let i = hidden.firstIndex(where: { $0 < 1 }) { return ("hidden[\(i)]", "must be at least 1, got \(hidden[i])") }
        if maxHistory < 1 { return ("maxHistory", "must be at least 1, got \(maxHistory)") }
        let counts: [(String, Int)] = [
            ("items", dataset.items), ("trainUsers", dataset.trainUsers), ("trainInteractions", dataset.trainInteractions),
            ("trainSamples", dataset.trainSamples), ("validationUsers", dataset.validationUsers), ("testUsers", dataset.testUsers),
        ]
        for (name, n) in counts where n < 0 { return ("dataset.\(name)", "must be >= 0, got \(n)") }
        if epochsRun < 0 { return ("epochsRun", "must be >= 0, got \(epochsRun)") }
        if bestEpoch < 0 || bestEpoch > epochsRun {
            return ("bestEpoch", "must be in 0...\(epochsRun) (epochsRun), got \(bestEpoch)")
        }
        switch (treeRounds, keptRound) {
        case (nil, nil): break
        case let (rounds?, kept?):
            if rounds < 1 { return ("treeRounds", "must be at least 1, got \(rounds)") }
            if kept < 1 || kept > rounds { return ("keptRound", "must be in 1...\(rounds) (treeRounds), got \(kept)") }
        case (nil, _?): return ("treeRounds", "is missing while keptRound is set")
        case (_?, nil): return ("keptRound", "is missing while treeRounds is set")
        }
        if let v = validationValue, !v.isFinite { return ("validationValue", "must be finite, got \(v)") }
        if !(learningRate.isFinite && learningRate > 0) { return ("learningRate", "must be finite and > 0, got \(learningRate)") }
        if let r = embeddingLearningRate, !(r.isFinite && r > 0) {
            return ("embeddingLearningRate", "must be finite and > 0, got \(r)")
        }
        if !(trainingSeconds.isFinite && trainingSeconds >= 0) {
            return ("trainingSeconds", "must be finite and >= 0, got \(trainingSeconds)")
        }
        if (try? Date(createdAt, strategy: Date.ISO8601FormatStyle())) == nil {
            return ("createdAt", "'\(createdAt)' is not an ISO 8601 date-time (e.g. 2026-11-26T10:15:30Z)")
        }
        return nil
    }

    /// Checks the invariants listed on the type.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` naming the first bad field
    ///   (`training provenance field '<field>'`).
    public func validate() throws(ArborError) {
        if let (field, reason) = firstProblem() {
            throw .invalidArgument(name: "training provenance field '\(field)'", reason: reason)
        }
    }

    /// The stored form: JSON with sorted keys, UTF-8. Checks ``validate()`` first (JSON cannot
    /// hold the non-finite numbers it refuses).
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` naming the first bad field.
    public func encoded() throws(ArborError) -> [UInt8] {
        try validate()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do { return Array(try encoder.encode(self)) } catch {
            throw .invalidArgument(name: "training provenance", reason: "cannot be encoded: \(error)")
        }
    }

    /// Parses a stored provenance (``encoded()``) and checks ``validate()``'s invariants.
    /// - Parameter path: the index file, for the error.
    /// - Throws: ``IndexError/corruptProvenance(path:field:reason:)`` naming the field at fault by
    ///   its JSON path (`"(json)"` when the bytes are not a JSON object at all).
    public init(decoding bytes: [UInt8], path: String) throws(IndexError) {
        let decoded: TrainingProvenance
        do {
            decoded = try JSONDecoder().decode(TrainingProvenance.self, from: Data(bytes))
        } catch let error as DecodingError {
            let (field, reason) = Self.describe(error)
            throw .corruptProvenance(path: path, field: field, reason: reason)
        } catch {
            throw .corruptProvenance(path: path, field: "(json)", reason: "\(error)")
        }
        if let (field, reason) = decoded.firstProblem() {
            throw .corruptProvenance(path: path, field: field, reason: reason)
        }
        self = decoded
    }

    /// The field (JSON path) and reason of a decoding error.
    private static func describe(_ error: DecodingError) -> (field: String, reason: String) {
        func path(_ keys: [any CodingKey]) -> String {
            var out = ""
            for key in keys {
                if let i = key.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
            }
            return out.isEmpty ? "(json)" : out
        }
        switch error {
        case let .keyNotFound(key, context):
            return (path(context.codingPath + [key]), "is missing")
        case let .typeMismatch(_, context):
            return (path(context.codingPath), context.debugDescription)
        case let .valueNotFound(type, context):
            return (path(context.codingPath), "is null, expected \(type)")
        case let .dataCorrupted(context):
            return (path(context.codingPath), context.debugDescription)
        @unknown default:
            return ("(json)", "\(error)")
        }
    }
}

extension IndexReader {
    /// The training provenance stored with the index, or `nil` when there is none (an index
    /// built, not trained). Reads and checksums the extra value ``TrainingProvenance/extraName``.
    /// - Throws: ``IndexError/corruptProvenance(path:field:reason:)`` for a value that does not
    ///   decode or breaks an invariant; ``IndexError/checksumMismatch(path:table:key:)`` and other
    ///   file errors from ``extra(named:)``.
    public func trainingProvenance() throws(IndexError) -> TrainingProvenance? {
        guard let bytes = try extra(named: TrainingProvenance.extraName) else { return nil }
        return try TrainingProvenance(decoding: bytes, path: path)
    }
}
