import ArborEval
import ArborInference
import ArborData
import ArborMath
import ArborModels
import ArborNN
import ArborRetrieval
import ArborTree
import Foundation

/// One evaluation user of a two-tower experiment: the behaviours the encoder sees, the items to
/// retrieve, and the items the ranking must leave out.
public struct TwoTowerEvalCase: Sendable, Equatable {
    /// External user id.
    public var user: UInt64
    /// Input behaviours, oldest first.
    public var history: [ItemID]
    /// The relevant items (one for leave-last-out; the second half for the TDM protocol).
    public var truth: Set<ItemID>
    /// Items removed from the ranking (the user's already-seen items).
    public var excluded: Set<ItemID>

    /// A case; see the properties.
    public init(user: UInt64, history: [ItemID], truth: Set<ItemID>, excluded: Set<ItemID>) {
        self.user = user
        self.history = history
        self.truth = truth
        self.excluded = excluded
    }
}

/// A data set prepared for two-tower training and evaluation: the catalogue, the training
/// samples (every prefix → next item of each training sequence), the training events (for the
/// popularity baseline) and the validation and test users.
public struct TwoTowerData: Sendable {
    /// A short description of the protocol ("leave-last-out", "user hold-out").
    public var protocolName: String
    /// Every item that can be retrieved (ascending ids), with categories when given.
    public var catalog: TwoTowerCatalog
    /// Per training user, the item rows of its training events, oldest first.
    public var sequences: [[Int]]
    /// Prefix → next item samples of ``sequences``.
    public var samples: TwoTowerSamples
    /// Training event count of each item (the popularity baseline's ranking).
    public var trainCounts: [ItemID: Int]
    /// Validation users (early stopping).
    public var validation: [TwoTowerEvalCase]
    /// Test users (the reported figures).
    public var test: [TwoTowerEvalCase]

    /// Number of training events.
    public var trainEvents: Int { sequences.reduce(0) { $0 + $1.count } }

    /// The leave-last-out protocol (RecBole, MIND) on a ``LeaveLastOutSplit``: training
    /// sequences are each user's train events; validation predicts the validation item from the
    /// train items; test predicts the test item from train + validation items; the ranking
    /// excludes the history (ANCHORS.md's masked variant). The catalogue is every item of the split.
    /// - Parameter itemCategories: item → category for the category embedding, or `nil`.
    /// - Throws: ``TwoTowerError/noTrainingSamples(reason:)`` when no user has two training events.
    public static func leaveLastOut(
        split: LeaveLastOutSplit, itemCategories: [ItemID: UInt32]? = nil
    ) throws(TwoTowerError) -> TwoTowerData {
        let catalog = try TwoTowerCatalog(ids: Array(Set(split.log.items)), categories: itemCategories)
        var sequences: [[Int]] = []
        var counts = [ItemID: Int]()
        for u in 0 ..< split.userCount {
            var seq: [Int] = []
            for i in split.userOffsets[u] ..< split.userOffsets[u + 1] where split.roles[i] == .train {
                let id = split.log.items[i]
                seq.append(catalog.row(of: id)!)
                counts[id, default: 0] += 1
            }
            if !seq.isEmpty { sequences.append(seq) }
        }
        let samples = try TwoTowerSamples(sequences: sequences, itemCount: catalog.count)
        func cases(_ role: SplitRole) -> [TwoTowerEvalCase] {
            split.cases(role).map {
                TwoTowerEvalCase(user: $0.user, history: $0.history, truth: [$0.target], excluded: Set($0.history))
            }
        }
        return TwoTowerData(protocolName: "leave-last-out", catalog: catalog, sequences: sequences, samples: samples,
                            trainCounts: counts, validation: cases(.validation), test: cases(.test))
    }

    /// The TDM protocol on a ``UserHoldOutSplit``: training sequences are the training users'
    /// events; a held-out user's first half is the input and the second half the truth; the
    /// ranking excludes the input half. The catalogue is every item of the training and held-out
    /// events.
    /// - Throws: ``TwoTowerError/noTrainingSamples(reason:)`` when no training user has two events.
    public static func userHoldOut(
        split: UserHoldOutSplit, itemCategories: [ItemID: UInt32]? = nil
    ) throws(TwoTowerError) -> TwoTowerData {
        var all = Set(split.train.items)
        for h in split.validation + split.test {
            all.formUnion(h.history)
            all.formUnion(h.truth)
        }
        let catalog = try TwoTowerCatalog(ids: Array(all), categories: itemCategories)
        let (sequences, counts) = trainingSequences(split.train, catalog: catalog)
        let samples = try TwoTowerSamples(sequences: sequences, itemCount: catalog.count)
        return TwoTowerData(protocolName: "user hold-out (TDM)", catalog: catalog, sequences: sequences, samples: samples,
                            trainCounts: counts, validation: cases(split.validation), test: cases(split.test))
    }

    /// Held-out users as evaluation cases: the history is the input and is excluded from the ranking.
    static func cases(_ users: [HeldOutUser]) -> [TwoTowerEvalCase] {
        users.map { TwoTowerEvalCase(user: $0.user, history: $0.history, truth: Set($0.truth), excluded: Set($0.history)) }
    }

    /// Each user's events of `log` as catalogue rows, oldest first (users without events are left
    /// out), and the event count of each item (the popularity baseline's ranking).
    /// - Precondition: every item of `log` is in `catalog`.
    static func trainingSequences(_ log: InteractionLog, catalog: TwoTowerCatalog) -> (sequences: [[Int]], counts: [ItemID: Int]) {
        let groups = log.groupedByUser()
        var sequences: [[Int]] = []
        var counts = [ItemID: Int]()
        for u in 0 ..< groups.count {
            let seq = groups.rows(ofUser: u).map { row -> Int in
                let id = log.items[row]
                counts[id, default: 0] += 1
                return catalog.row(of: id)!
            }
            if !seq.isEmpty { sequences.append(seq) }
        }
        return (sequences, counts)
    }

    /// The Amazon Books demo of the MIND example (`train_demo.txt` + `valid_part-0.txt`): training
    /// sequences are the training users' rows in order; the held-out users (history -> held-out
    /// items) are split in two by a seeded shuffle, one half validation (early stopping), the other
    /// test. The catalogue is every item of the training rows and of the held-out users, so items
    /// never seen in training stay in the ranking with their initial vectors: the cold-item check
    /// ANCHORS.md describes (about three quarters of the held-out items never occur in training).
    /// - Throws: ``TwoTowerError/noTrainingSamples(reason:)`` when no training user has two rows.
    public static func amazonBooksDemo(train: Dataset, heldOut: [HeldOutUser], seed: UInt64 = 0) throws(TwoTowerError) -> TwoTowerData {
        let all = Set(train.interactions.items).union(heldOut.allItems)
        let catalog = try TwoTowerCatalog(ids: Array(all), categories: nil)
        let (sequences, counts) = trainingSequences(train.interactions, catalog: catalog)
        let samples = try TwoTowerSamples(sequences: sequences, itemCount: catalog.count)
        let (validation, test) = heldOut.splitValidationTest(seed: seed)
        return TwoTowerData(protocolName: "Amazon Books demo (history -> held-out items)", catalog: catalog,
                            sequences: sequences, samples: samples, trainCounts: counts,
                            validation: cases(validation), test: cases(test))
    }

    /// Reads a RecBole `.inter` file (and optionally its `.item` file for categories), keeps the
    /// positives (`filter`, default ratings >= 4 and a 5-core) and prepares `protocol`.
    /// - Parameters:
    ///   - splitFile: for leave-last-out, an exact split file (`ml-100k.leave-last-out.tsv`) read
    ///     instead of splitting the log.
    ///   - holdOutSeed: seed of the user hold-out.
    /// - Throws: `DataError` for unreadable files or when nothing survives the filter (a clear
    ///   "no interaction survives it"), ``TwoTowerError`` as the protocol constructors.
    public static func load(
        interactions: String, items: String? = nil, protocol kind: TwoTowerProtocol, filter: PositiveFilter = .init(),
        splitFile: String? = nil, holdOut: (test: HoldOutSize, validation: HoldOutSize) = (.fraction(0.1), .fraction(0.1)),
        holdOutSeed: UInt64 = 0
    ) throws -> TwoTowerData {
        let dataset = try items.map { try RecBoleReader.read(interactions: interactions, items: $0) }
            ?? RecBoleReader.readInteractions(at: interactions)
        let categories = items == nil ? nil : dataset.itemCategories
        switch kind {
        case .leaveLastOut:
            let split = try splitFile.map { try LeaveLastOutSplit.read(at: $0) }
                ?? LeaveLastOutSplit.make(from: dataset.interactions, filter: filter)
            return try leaveLastOut(split: split, itemCategories: categories)
        case .userHoldOut:
            let kept = filter.apply(to: dataset.interactions)
            guard !kept.isEmpty else {
                throw DataError.invalidArgument(name: "filter", reason: "no interaction survives it")
            }
            let split = try UserHoldOutSplit.make(from: kept, test: holdOut.test, validation: holdOut.validation, seed: holdOutSeed)
            return try userHoldOut(split: split, itemCategories: categories)
        }
    }
}

extension TwoTowerData {
    /// The data of a TDM experiment (``TDMExperimentData``) for the two-tower: the same catalogue
    /// (every leaf of the TDM tree), the same training sequences, and the same validation and test
    /// users, so the two-tower's flat scan is evaluated on exactly the users the TDM models are.
    /// - Throws: ``TwoTowerError/noTrainingSamples(reason:)`` when no training user has two events;
    ///   ``TwoTowerError/invalidConfiguration(field:reason:)`` when a training item is not in `data.items`.
    public init(tdm data: TDMExperimentData) throws(TwoTowerError) {
        let catalog = try TwoTowerCatalog(ids: data.items, categories: nil)
        var sequences: [[Int]] = []
        sequences.reserveCapacity(data.sequences.count)
        for sequence in data.sequences {
            var rows: [Int] = []
            rows.reserveCapacity(sequence.count)
            for id in sequence {
                guard let row = catalog.row(of: id) else {
                    throw .invalidConfiguration(field: "TDM data", reason: "training item \(id) is not among its items")
                }
                rows.append(row)
            }
            sequences.append(rows)
        }
        self.init(protocolName: data.protocolName, catalog: catalog, sequences: sequences,
                  samples: try TwoTowerSamples(sequences: sequences, itemCount: catalog.count),
                  trainCounts: data.popularity, validation: Self.cases(data.validation), test: Self.cases(data.test))
    }
}

/// The two evaluation protocols of the two-tower experiment.
public enum TwoTowerProtocol: String, Sendable, CaseIterable, Codable {
    /// Leave-last-out (RecBole, MIND): HitRate@K and NDCG@K of the single held-out item.
    case leaveLastOut = "leave-last-out"
    /// The TDM user hold-out: precision, recall and F1 @M of the held-out second halves.
    case userHoldOut = "hold-out"
}

/// Evaluation helpers shared by training-time validation and the final benchmark.
public enum TwoTowerEvaluation {
    /// One query per case: the encoder's user vector (one batched MLP pass), the case's
    /// exclusions and history. Unknown history ids are ignored; empty histories get the fallback.
    /// - Throws: ``TwoTowerError`` from the encoder.
    public static func queries(encoder: TwoTowerEncoder, cases: [TwoTowerEvalCase]) throws(TwoTowerError) -> [Query] {
        let encoded = try encoder.encode(histories: cases.map(\.history))
        return zip(encoded, cases).map { Query(vector: $0.vector, history: $1.history, excluded: $1.excluded) }
    }

    /// The ground truth of `cases` (relevant items and histories for novelty).
    public static func truth(_ cases: [TwoTowerEvalCase]) -> GroundTruth {
        GroundTruth.items(cases.map(\.truth), seen: cases.map { Set($0.history) })
    }

    /// A validator for ``TwoTowerTrainer/train(samples:validate:progress:cancellation:onEpoch:)``:
    /// `metric@k` of the exact flat scan over the model's current item vectors, averaged over
    /// `cases` (e.g. NDCG@10 on leave-last-out validation users).
    /// Cost per call: one batched encoder pass and one GEMM scan, O(cases · items · d).
    /// - Parameter served: the catalogue rows searched and known to the encoder; `nil`: all.
    public static func validator(
        cases: [TwoTowerEvalCase], metric: Metric = .ndcg, k: Int = 10, itemFrequencies: [Double]? = nil,
        served: ServedCatalogue? = nil
    ) -> (TwoTowerModel) throws -> Double {
        let truth = GroundTruth.items(cases.map(\.truth))
        return { model in
            let encoder = try model.encoder(itemFrequencies: itemFrequencies, rows: served?.rows)
            let queries = try queries(encoder: encoder, cases: cases)
            let vectors = model.itemVectorMatrix()
            let flat = try FlatRetriever(items: served?.select(vectors) ?? vectors,
                                         ids: served?.select(model.catalog.ids) ?? model.catalog.ids)
            let results = try flat.search(batch: queries, parameters: SearchParameters(k: min(k, flat.itemCount)))
            let summary = try truth.evaluate(retrieved: results.map { $0.items.map(\.item) }, k: k)
            return summary[metric] ?? 0
        }
    }
}

/// Settings of a full two-tower experiment (train, then benchmark popularity, the flat scan and
/// the tree on the test users).
public struct TwoTowerExperimentOptions: Sendable {
    /// Embedding and user vector width.
    public var dimension: Int = 64
    /// Hidden widths of the user tower MLP.
    public var hidden: [Int] = []
    /// Most recent behaviours pooled (10 was best on ML-100K: validation NDCG@10 0.085–0.088
    /// against 0.072–0.080 with 50).
    public var maxHistory: Int = 10
    /// Cosine towers (else dot product).
    public var cosine: Bool = true
    /// Softmax temperature.
    public var temperature: Float = 0.05
    /// User tower pools the item tower's table.
    public var shareEmbeddings: Bool = true
    /// Use the data's item categories in both towers (when it has any).
    public var useCategories: Bool = false
    /// Trainer options.
    public var training = TwoTowerTrainingOptions()
    /// Early-stopping metric and its cut-off (NDCG@10 for leave-last-out, Recall@50 for TDM).
    public var validationMetric: Metric = .ndcg
    /// Cut-off of the validation metric.
    public var validationK: Int = 10
    /// Cut-offs reported (those above the catalogue size are dropped).
    public var ks: [Int] = [10, 50, 200]
    /// Tree beam widths (each raised to `k` by the search).
    public var beams: [Int] = [20, 50, 100, 200]
    /// Tree build options (fan-out, k-means iterations, seed, inner node rule).
    public var tree = TreeBuildOptions(fanOut: 2, iterations: 10, seed: 0, innerNodes: .normalizedMean)
    /// Threads the benchmark spreads the test queries over.
    public var queryThreads: Int = 1
    /// A checkpoint to start from (resume, or fine-tune) instead of random weights; its
    /// catalogue must equal the data's and its tensors must fit the configuration.
    public var initialWeights: TwoTowerWeightsFile? = nil
    /// Catalogue items never seen in training: left out of the index (default) or kept.
    public var coldItems: ColdItemPolicy = .leaveOut

    /// Defaults for `protocol` (validation metric NDCG@10 or Recall@50).
    public init(protocol kind: TwoTowerProtocol = .leaveLastOut) {
        if kind == .userHoldOut {
            validationMetric = .recall
            validationK = 50
        }
    }

    /// The model configuration for `catalog`.
    public func config(for catalog: TwoTowerCatalog) -> TwoTowerConfig {
        TwoTowerConfig(
            itemCount: catalog.count, categoryCount: useCategories ? catalog.categoryCount : 0, dimension: dimension,
            hidden: hidden, maxHistory: maxHistory, cosine: cosine, temperature: temperature, shareEmbeddings: shareEmbeddings)
    }
}

/// What a two-tower experiment produced: the training report, the trained encoder and item
/// vectors, the tree built on them, and the benchmark rows (popularity, flat, tree per beam).
public struct TwoTowerExperimentResult: Sendable {
    /// The protocol's name.
    public var protocolName: String
    /// Catalogue size.
    public var itemCount: Int
    /// Training users, events and samples.
    public var trainUsers: Int, trainEvents: Int, trainSamples: Int
    /// Validation and test users.
    public var validationUsers: Int, testUsers: Int
    /// The training run.
    public var training: TwoTowerTrainingReport
    /// The trained user encoder (best epoch).
    public var encoder: TwoTowerEncoder
    /// The model configuration.
    public var config: TwoTowerConfig
    /// `itemCount × d` item vectors (row `r` = `ids[r]`).
    public var itemVectors: Matrix
    /// Item ids in row order.
    public var ids: [ItemID]
    /// The tree built by balanced k-means on the item vectors.
    public var tree: TreeLayout
    /// Seconds the tree build took.
    public var treeBuildSeconds: Double
    /// Benchmark rows on the test users: "popularity", "two-tower flat", "two-tower tree" (per beam).
    public var rows: [BenchmarkRow]
    /// Test queries whose history had no known item (encoder fallback used).
    public var fallbackQueries: Int
    /// How the model was trained, for ``TwoTowerExperiment/export(_:to:indexPath:provenance:progress:cancellation:)``:
    /// the data set's name is empty and its path `nil` (the data does not know them; set both).
    public var provenance: TrainingProvenance
    /// The catalogue rows served (``itemVectors`` and ``ids`` hold these rows only).
    public var served: ServedCatalogue

    /// The row of `retriever` at `k` (and `parameters` label when given).
    public func row(_ retriever: String, k: Int, parameters: String? = nil) -> BenchmarkRow? {
        rows.first { $0.retriever == retriever && $0.k == k && (parameters == nil || $0.parameters == parameters) }
    }

    /// A Markdown summary: the data, the training (epochs, best epoch, time, samples/s and the
    /// forward/backward/optimizer split), then a table of the chosen metrics and the model
    /// evaluations per query at each k for every retriever (tree beams are raised to k), and, when `reference` is given (name → HR@10, HR@50, NDCG@10), the ratio of
    /// the flat two-tower's figures to it.
    public func markdown(metrics: [Metric], reference: (name: String, hr10: Double, hr50: Double, ndcg10: Double)? = nil) -> String {
        var s = "## Two-tower, \(protocolName)\n\n"
        s += "- data: \(itemCount) items, \(trainUsers) training users, \(trainEvents) training events, \(trainSamples) samples; \(validationUsers) validation and \(testUsers) test users\n"
        s += "- model: d = \(config.dimension), MLP \(config.towerSizes.map(String.init).joined(separator: "-")), history \(config.maxHistory), \(config.cosine ? "cosine / \(config.temperature)" : "dot product"), \(config.shareEmbeddings ? "shared" : "separate") embeddings\(config.categoryCount > 0 ? ", \(config.categoryCount) categories" : "")\n"
        let t = training.timing
        s += String(format: "- training: %d epochs, best epoch %d (validation %.4f), %@; %.1f s training + %.1f s validation, %.0f samples/s\n",
                    training.epochs.count, training.bestEpoch, training.bestMetric ?? .nan,
                    training.stoppedEarly ? "early-stopped" : "epoch limit", t.training, t.validation, training.samplesPerSecond)
        if t.training > 0 {
            s += String(format: "- time split: batching %.0f%%, forward %.0f%%, backward %.0f%%, optimizer %.0f%%\n",
                        100 * t.batching / t.training, 100 * t.forward / t.training, 100 * t.backward / t.training,
                        100 * t.optimizer / t.training)
        }
        s += String(format: "- tree: fan-out %d, depth %d, built in %.2f s\n", tree.fanOut, tree.depth, treeBuildSeconds)
        if fallbackQueries > 0 { s += "- \(fallbackQueries) test users had no known history item (fallback vector)\n" }
        if served.coldCount > 0 { s += "- \(served.summary)\n" }
        s += "\n"
        let ks = Array(Set(rows.map(\.k))).sorted()
        var header = ["retriever", "parameters"]
        for k in ks {
            for m in metrics { header.append("\(m.shortName)@\(k)") }
            header.append("evals@\(k)")
        }
        header.append("p50 ms@\(ks.last!)")
        s += "| " + header.joined(separator: " | ") + " |\n"
        s += "|" + header.map { _ in "---" }.joined(separator: "|") + "|\n"
        var seen = Set<String>()
        for r in rows where seen.insert(r.retriever + "\u{0}" + r.parameters).inserted {
            var cells = [r.retriever, r.parameters]
            for k in ks {
                let row = self.row(r.retriever, k: k, parameters: r.parameters)
                for m in metrics { cells.append(row?.metrics[m].map { String(format: "%.4f", $0) } ?? "-") }
                cells.append(row.map { String(format: "%.0f", $0.evaluationsPerQuery) } ?? "-")
            }
            let last = self.row(r.retriever, k: ks.last!, parameters: r.parameters) ?? r
            cells.append(String(format: "%.3f", last.latency.p50Ms))
            s += "| " + cells.joined(separator: " | ") + " |\n"
        }
        if let reference, let r10 = row("two-tower flat", k: 10) {
            let hr10 = r10.metrics.hitRate ?? 0, n10 = r10.metrics.ndcg ?? 0
            s += String(format: "\nTwo-tower flat / %@: HR@10 %.4f / %.4f = %.2f", reference.name, hr10, reference.hr10, hr10 / reference.hr10)
            if let r50 = row("two-tower flat", k: 50) {
                let hr50 = r50.metrics.hitRate ?? 0
                s += String(format: ", HR@50 %.4f / %.4f = %.2f", hr50, reference.hr50, hr50 / reference.hr50)
            }
            s += String(format: ", NDCG@10 %.4f / %.4f = %.2f\n", n10, reference.ndcg10, n10 / reference.ndcg10)
        }
        return s
    }
}

/// Runs the whole two-tower experiment on prepared data: train with early stopping on the
/// validation users, export the encoder and item vectors, build the tree on the learned item
/// vectors, and benchmark popularity, the exact flat scan and the tree (at each beam) on the test
/// users with ``BenchmarkRunner`` (one search per k, seen items excluded).
public enum TwoTowerExperiment {
    /// What ``train(data:options:progress:cancellation:onEpoch:)`` returns.
    public struct Trained {
        /// The model configuration.
        public var config: TwoTowerConfig
        /// The training run.
        public var report: TwoTowerTrainingReport
        /// The user encoder of the trained model (logQ-corrected with the training target counts).
        public var encoder: TwoTowerEncoder
        /// `served.rows.count × d` item vectors, row `r` = ``ids``[r].
        public var itemVectors: Matrix
        /// The served item ids (ascending): the catalogue's, less the cold items left out.
        public var ids: [ItemID]
        /// Which catalogue rows are served (``TwoTowerExperimentOptions/coldItems``).
        public var served: ServedCatalogue
    }

    /// Trains a two-tower on `data`'s samples (from `options.initialWeights` when set), stopping
    /// early on `options.validationMetric@validationK` of the validation users (none: epoch limit).
    /// The encoder and item vectors returned serve the rows `options.coldItems` keeps.
    /// - Throws: ``TwoTowerError`` (training, NaN loss, initial weights of another catalogue or
    ///   shape), ``ArborError`` when no catalogue item occurs in training, `CancellationError`.
    public static func train(
        data: TwoTowerData, options: TwoTowerExperimentOptions, progress: some ProgressReporter = SilentProgress(),
        cancellation: CancellationFlag? = nil, onEpoch: ((TwoTowerEpochStats) -> Void)? = nil
    ) throws -> Trained {
        let served = try ServedCatalogue(ids: data.catalog.ids, trainCounts: data.trainCounts, policy: options.coldItems)
        let config = options.config(for: data.catalog)
        let model = try TwoTowerModel(config: config, catalog: data.catalog, seed: options.training.seed)
        if let initial = options.initialWeights {
            guard initial.kind == .checkpoint else {
                throw TwoTowerError.badWeightsFile(path: "initial weights", reason: "holds a \(initial.kind.rawValue), not a checkpoint")
            }
            guard initial.ids == data.catalog.ids else {
                throw TwoTowerError.invalidConfiguration(
                    field: "initial weights", reason: "the checkpoint's \(initial.ids.count) items differ from the data's \(data.catalog.count)")
            }
            try model.load(initial.tensors)
        }
        let trainer = try TwoTowerTrainer(model: model, options: options.training)
        let frequencies = data.samples.targetCounts(itemCount: data.catalog.count)
        let validate = data.validation.isEmpty
            ? nil
            : TwoTowerEvaluation.validator(cases: data.validation, metric: options.validationMetric, k: options.validationK,
                                           itemFrequencies: frequencies, served: served)
        let report = try trainer.train(samples: data.samples, validate: validate, progress: progress,
                                       cancellation: cancellation, onEpoch: onEpoch)
        return Trained(config: config, report: report, encoder: try model.encoder(itemFrequencies: frequencies, rows: served.rows),
                       itemVectors: served.select(model.itemVectorMatrix()), ids: served.select(data.catalog.ids), served: served)
    }

    /// Runs the experiment.
    /// - Parameters:
    ///   - onEpoch: called after each training epoch (for printing progress).
    /// - Throws: ``TwoTowerError`` (training, NaN loss, initial weights of another catalogue or
    ///   shape), ``ArborError`` (tree, benchmark), `CancellationError`.
    public static func run(
        data: TwoTowerData, options: TwoTowerExperimentOptions, progress: some ProgressReporter = SilentProgress(),
        cancellation: CancellationFlag? = nil, onEpoch: ((TwoTowerEpochStats) -> Void)? = nil
    ) throws -> TwoTowerExperimentResult {
        guard !data.test.isEmpty else { throw ArborError.empty(what: "test users") }
        let trained = try train(data: data, options: options, progress: progress, cancellation: cancellation, onEpoch: onEpoch)
        let (config, report, encoder, vectors) = (trained.config, trained.report, trained.encoder, trained.itemVectors)
        let ids = trained.ids
        let treeStart = ContinuousClock.now
        let tree = try TreeBuilder.balancedKMeans(embeddings: vectors, items: ids, options: options.tree,
                                                  progress: progress, cancellation: cancellation)
        let treeSeconds = twoTowerSeconds(since: treeStart)

        let encoded = try encoder.encode(histories: data.test.map(\.history))
        let queries = zip(encoded, data.test).map { Query(vector: $0.vector, history: $1.history, excluded: $1.excluded) }
        let pop = PopularityRetriever(counts: data.trainCounts, name: "popularity")
        let flat = try FlatRetriever(name: "two-tower flat", items: vectors, ids: ids)
        let treeRetriever = try TreeRetriever(
            name: "two-tower tree", source: tree, scorer: InnerProductScorer(dimension: tree.dimension),
            itemCount: tree.itemCount, dimension: tree.dimension)
        let ks = options.ks.filter { $0 <= ids.count }
        let runner = BenchmarkRunner(
            configuration: BenchmarkConfiguration(kValues: ks.isEmpty ? [min(10, ids.count)] : ks,
                                                  threadCounts: [options.queryThreads], searchPerK: true),
            progress: progress, cancellation: cancellation)
        let rows = try runner.run(
            entries: [
                BenchmarkEntry(retriever: pop, sweep: [SweepPoint(label: "-", parameters: SearchParameters())]),
                BenchmarkEntry(retriever: flat, sweep: [SweepPoint(label: "exact", parameters: SearchParameters())]),
                BenchmarkEntry(retriever: treeRetriever, sweep: options.beams.map(SweepPoint.beam)),
            ],
            queries: queries, truth: TwoTowerEvaluation.truth(data.test))
        let t = options.training
        let provenance = TrainingProvenance(
            modelKind: QueryProducerKind.twoTower.rawValue, dimension: config.dimension, hidden: config.hidden,
            maxHistory: config.maxHistory,
            dataset: .init(name: "", items: ids.count, trainUsers: data.sequences.count, trainInteractions: data.trainEvents,
                           trainSamples: data.samples.count, validationUsers: data.validation.count, testUsers: data.test.count),
            protocolName: data.protocolName, seed: t.seed, epochsRun: report.epochs.count, bestEpoch: report.bestEpoch,
            validationMetric: data.validation.isEmpty ? nil : "\(options.validationMetric.shortName.lowercased())@\(options.validationK)",
            validationValue: report.bestMetric, negatives: negativesSummary(t),
            optimizer: "adam (dense) + \(t.embeddingOptimizer.rawValue) (embeddings)", learningRate: t.learningRate,
            embeddingLearningRate: t.embeddingLearningRate ?? t.learningRate, trainingSeconds: report.wallSeconds)
        return TwoTowerExperimentResult(
            protocolName: data.protocolName, itemCount: ids.count, trainUsers: data.sequences.count,
            trainEvents: data.trainEvents, trainSamples: data.samples.count, validationUsers: data.validation.count,
            testUsers: data.test.count, training: report, encoder: encoder, config: config, itemVectors: vectors, ids: ids,
            tree: tree, treeBuildSeconds: treeSeconds, rows: rows, fallbackQueries: encoded.filter(\.usedFallback).count,
            provenance: provenance, served: trained.served)
    }

    /// Writes the trained model's artefacts for serving:
    /// - `<directory>/items.npy` (`itemCount × d` float32) and `<directory>/items.ids` (one id a
    ///   line): the learned item vectors, for `arbor build --vectors --ids`;
    /// - `<directory>/encoder.ttw`: the user encoder (``TwoTowerWeightsFile``, digest-checked);
    /// - when `indexPath` is given, an index at that path holding the tree built on the item vectors
    ///   and the encoder's named tensors (query producer ``QueryProducerKind/twoTower``), so a
    ///   behaviour list can be turned into a query with ``TwoTowerEncoder/init(index:)``, and, when
    ///   `provenance` is given (e.g. ``TwoTowerExperimentResult/provenance`` with the data set
    ///   named), the extra value ``TrainingProvenance/extraName`` that `arbor inspect` shows.
    /// - Throws: `DataError`/``TwoTowerError`` for files that cannot be written, ``ArborError`` or
    ///   `IndexError` from the index writer (``ArborError`` too for a provenance that breaks its invariants).
    public static func export(
        _ result: TwoTowerExperimentResult, to directory: String, indexPath: String? = nil,
        provenance: TrainingProvenance? = nil, progress: some ProgressReporter = SilentProgress(),
        cancellation: CancellationFlag? = nil
    ) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try NPY.write(result.itemVectors, to: directory + "/items.npy")
        try IDList.write(result.ids, to: directory + "/items.ids")
        try result.encoder.weightsFile(config: result.config, epoch: result.training.bestEpoch, metric: result.training.bestMetric)
            .write(to: directory + "/encoder.ttw")
        if let indexPath {
            try IndexFiles.writeTwoTowerIndex(tree: result.tree, encoder: result.encoder, provenance: provenance,
                                              to: indexPath, progress: progress, cancellation: cancellation)
        }
    }
}

/// The negatives of two-tower training in words, e.g. "mixed: in-batch + 100 uniform, logQ counted".
private func negativesSummary(_ t: TwoTowerTrainingOptions) -> String {
    let logQ: String
    switch t.frequency {
    case .counted: logQ = "logQ counted"
    case .streaming(let rate): logQ = "logQ streaming (rate \(rate))"
    }
    switch t.loss {
    case .inBatch: return "in-batch" + (t.logQCorrection ? ", \(logQ)" : "")
    case .sampled(let n): return "sampled: \(n) uniform"
    case .mixed(let n): return "mixed: in-batch + \(n) uniform" + (t.logQCorrection ? ", \(logQ)" : "")
    }
}

/// Seconds since `start`.
private func twoTowerSeconds(since start: ContinuousClock.Instant) -> Double {
    let d = start.duration(to: .now)
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
