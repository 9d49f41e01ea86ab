import ArborCore
import ArborData
import ArborEval
import ArborInference
import ArborMath
import ArborModels
import ArborNN
import ArborRetrieval
import ArborTree
import Foundation

/// One evaluation query of an SDM experiment.
public struct SDMEvalCase: Sendable, Equatable {
    /// Input behaviours, oldest first.
    public var history: [ItemID]
    /// Their times (seconds), or `nil` (one session).
    public var timestamps: [Double]?
    /// The item to find.
    public var target: ItemID
    /// Items removed from the ranking (the history under leave-last-out; none for sessions).
    public var excluded: Set<ItemID>

    /// A case; see the properties.
    public init(history: [ItemID], timestamps: [Double]?, target: ItemID, excluded: Set<ItemID>) {
        self.history = history
        self.timestamps = timestamps
        self.target = target
        self.excluded = excluded
    }
}

/// A data set prepared for SDM: catalogue, training sequences (with timestamps when the data has
/// them), samples, popularity counts, validation and test queries, and whether a long term exists.
public struct SDMData: Sendable {
    /// Protocol in words.
    public var protocolName: String
    /// Every item (ascending ids), with categories when given.
    public var catalog: TwoTowerCatalog
    /// Training sequences as catalogue rows.
    public var sequences: [[Int]]
    /// Their times, or `nil` (session data: each sequence is one session).
    public var timestamps: [[Double]]?
    /// Training event count per item.
    public var trainCounts: [ItemID: Int]
    /// Validation queries.
    public var validation: [SDMEvalCase]
    /// Test queries.
    public var test: [SDMEvalCase]
    /// Whether users have earlier sessions (a long term). False for session data (YooChoose,
    /// Diginetica): the model is then short-term only, and says so.
    public var hasLongTerm: Bool

    /// Training events.
    public var trainEvents: Int { sequences.reduce(0) { $0 + $1.count } }

    /// Leave-last-out on a split with timestamps (e.g. `ml-100k.leave-last-out.tsv`): training
    /// sequences are each user's train events; validation predicts the validation item from the
    /// train events, test the test item from train + validation; the history is excluded from the
    /// ranking. Timestamps travel with every sequence and query.
    /// - Throws: ``TwoTowerError`` for an empty catalogue.
    public static func leaveLastOut(split: LeaveLastOutSplit, itemCategories: [ItemID: UInt32]? = nil) throws(TwoTowerError) -> SDMData {
        let catalog = try TwoTowerCatalog(ids: Array(Set(split.log.items)), categories: itemCategories)
        var sequences: [[Int]] = [], times: [[Double]] = [], counts = [ItemID: Int]()
        var validation: [SDMEvalCase] = [], test: [SDMEvalCase] = []
        for u in 0 ..< split.userCount {
            var seq: [Int] = [], ts: [Double] = []
            var hist: [ItemID] = [], histTimes: [Double] = []
            for i in split.userOffsets[u] ..< split.userOffsets[u + 1] {
                let id = split.log.items[i], t = split.log.timestamps[i]
                switch split.roles[i] {
                case .train:
                    seq.append(catalog.row(of: id)!); ts.append(t); counts[id, default: 0] += 1
                    hist.append(id); histTimes.append(t)
                case .validation:
                    validation.append(SDMEvalCase(history: hist, timestamps: histTimes, target: id, excluded: Set(hist)))
                    hist.append(id); histTimes.append(t)
                case .test:
                    test.append(SDMEvalCase(history: hist, timestamps: histTimes, target: id, excluded: Set(hist)))
                }
            }
            if !seq.isEmpty { sequences.append(seq); times.append(ts) }
        }
        return SDMData(protocolName: "leave-last-out", catalog: catalog, sequences: sequences, timestamps: times,
                       trainCounts: counts, validation: validation, test: test, hasLongTerm: true)
    }

    /// The session protocol of ANCHORS.md on an exact split (`yoochoose.split.tsv`): each train
    /// session is a sequence (one session, no timestamps); every position `p >= 1` of a validation
    /// or test session is a query (its prefix, up to 50, predicts it); seen items are **not**
    /// removed. No users, so no long term.
    /// - Throws: ``TwoTowerError`` for an empty catalogue.
    public static func sessions(split: SessionSplit, maxPrefix: Int = 50) throws(TwoTowerError) -> SDMData {
        var all = Set<ItemID>()
        for s in split.sessions { all.formUnion(s.items) }
        let catalog = try TwoTowerCatalog(ids: Array(all))
        var sequences: [[Int]] = [], counts = [ItemID: Int]()
        var validation: [SDMEvalCase] = [], test: [SDMEvalCase] = []
        for s in split.sessions {
            switch s.role {
            case .train:
                sequences.append(s.items.map { catalog.row(of: $0)! })
                for id in s.items { counts[id, default: 0] += 1 }
            case .validation, .test:
                for p in 1 ..< max(1, s.items.count) {
                    let c = SDMEvalCase(history: Array(s.items[max(0, p - maxPrefix) ..< p]), timestamps: nil, target: s.items[p], excluded: [])
                    if s.role == .test { test.append(c) } else { validation.append(c) }
                }
            }
        }
        return SDMData(protocolName: "sessions (every prefix -> next item, seen items kept)", catalog: catalog,
                       sequences: sequences, timestamps: nil, trainCounts: counts, validation: validation, test: test,
                       hasLongTerm: false)
    }
}

/// Settings of an SDM experiment.
public struct SDMExperimentOptions: Sendable {
    /// Embedding width.
    public var dimension = 64
    /// Attention heads.
    public var heads = 4
    /// LSTM layers.
    public var lstmLayers = 1
    /// Most recent items of the latest session.
    public var maxSession = 50
    /// Most recent long-term items.
    public var maxLong = 50
    /// Fusion (forced to short-only when the data has no long term).
    public var fusion: SDMFusion = .gated
    /// Use the data's categories in the long-term attention.
    public var useCategories = false
    /// Softmax temperature.
    public var temperature: Float = 0.05
    /// Trainer options (shared with the two-tower).
    public var training = TwoTowerTrainingOptions()
    /// Early-stopping metric.
    public var validationMetric: Metric = .ndcg
    /// Its cut-off.
    public var validationK = 10
    /// Cut-offs reported.
    public var ks = [10, 50]
    /// Tree beams reported.
    public var beams = [50, 200]
    /// Tree options.
    public var tree = TreeBuildOptions()

    /// Defaults.
    public init() {}
}

/// The figures of one retriever at one cut-off.
public struct SDMResultRow: Sendable, Equatable, Codable {
    /// "popularity", "sdm flat", "sdm tree beam 200".
    public var retriever: String
    /// Cut-off.
    public var k: Int
    /// HitRate@k, NDCG@k, MRR@k over the test queries.
    public var hitRate: Double, ndcg: Double, mrr: Double
    /// Mean retrieval time per query, microseconds (batch of all queries / count for the flat scan).
    public var retrievalMicros: Double
}

/// What an SDM experiment returns.
public struct SDMExperimentResult: Sendable {
    /// The configuration trained.
    public var config: SDMConfig
    /// The training run.
    public var report: TwoTowerTrainingReport
    /// The trained encoder.
    public var encoder: SDMEncoder
    /// The tree on the item vectors.
    public var tree: TreeLayout
    /// Figures on the test queries.
    public var rows: [SDMResultRow]
    /// Mean encoding time per test query, microseconds.
    public var encodeMicros: Double
    /// Test queries that had a long term (earlier sessions).
    public var queriesWithLongTerm: Int
    /// Test queries.
    public var testQueries: Int
    /// Provenance for the index.
    public var provenance: TrainingProvenance

    /// A Markdown table of ``rows`` with the encoding cost and the long-term note.
    public func markdown() -> String {
        var s = "| retriever | k | HR@k | NDCG@k | MRR@k | retrieval µs/query |\n|---|---|---|---|---|---|\n"
        for r in rows {
            s += String(format: "| %@ | %d | %.4f | %.4f | %.4f | %.1f |\n", r.retriever, r.k, r.hitRate, r.ndcg, r.mrr, r.retrievalMicros)
        }
        s += String(format: "\nEncoding: %.1f µs/query (SDM encoder, 1 thread). ", encodeMicros)
        s += "Long term: " + (provenance.modelDetails ?? "") + String(format: "; %d of %d test queries had earlier sessions.\n",
                                                                     queriesWithLongTerm, testQueries)
        return s
    }
}

/// Trains SDM with early stopping and benchmarks popularity, the exact flat scan and the tree.
public enum SDMExperiment {
    /// The configuration for `data` under `options` (short-only when the data has no long term).
    public static func config(data: SDMData, options: SDMExperimentOptions) -> SDMConfig {
        SDMConfig(itemCount: data.catalog.count, categoryCount: options.useCategories ? data.catalog.categoryCount : 0,
                  dimension: options.dimension, heads: options.heads, lstmLayers: options.lstmLayers,
                  maxSession: options.maxSession, maxLong: options.maxLong,
                  fusion: data.hasLongTerm ? options.fusion : .shortOnly, temperature: options.temperature)
    }

    /// The query vectors of `cases`. Returns the vectors and how many cases had a long term.
    static func encode(_ encoder: SDMEncoder, _ cases: [SDMEvalCase]) throws -> (queries: [Query], withLong: Int) {
        var out: [Query] = []
        out.reserveCapacity(cases.count)
        var withLong = 0
        for c in cases {
            if !(try encoder.split(history: c.history, timestamps: c.timestamps).long.isEmpty) { withLong += 1 }
            let v = try encoder.encode(history: c.history, timestamps: c.timestamps).vector
            out.append(Query(vector: v, history: c.history, excluded: c.excluded))
        }
        return (out, withLong)
    }

    /// HR, NDCG, MRR at `k` of `results` against the cases' targets.
    static func score(_ results: [SearchResult], _ cases: [SDMEvalCase], k: Int) throws -> (Double, Double, Double) {
        let truth = GroundTruth.items(cases.map { [$0.target] })
        let m = try truth.evaluate(retrieved: results.map { $0.items.map(\.item) }, k: k)
        return (m.hitRate ?? 0, m.ndcg ?? 0, m.mrr ?? 0)
    }

    /// Trains and benchmarks.
    /// - Throws: training errors, ``ArborError``, `CancellationError`.
    public static func run(
        data: SDMData, options: SDMExperimentOptions, progress: some ProgressReporter = SilentProgress(),
        cancellation: CancellationFlag? = nil, onEpoch: ((TwoTowerEpochStats) -> Void)? = nil
    ) throws -> SDMExperimentResult {
        guard !data.test.isEmpty else { throw ArborError.empty(what: "test queries") }
        let config = config(data: data, options: options)
        let model = try SDMModel(config: config, catalog: data.catalog, seed: options.training.seed)
        let samples = try SDMSamples(sequences: data.sequences, timestamps: data.timestamps, itemCount: data.catalog.count,
                                     rule: config.sessions)
        let frequencies = samples.targetCounts(itemCount: data.catalog.count)
        let validate: ((SDMModel) throws -> Double)? = data.validation.isEmpty ? nil : { m in
            let encoder = try m.encoder(itemFrequencies: frequencies)
            let flat = try FlatRetriever(items: m.itemVectorMatrix(), ids: m.catalog.ids)
            let results = try flat.search(batch: try encode(encoder, data.validation).queries,
                                          parameters: SearchParameters(k: min(options.validationK, m.catalog.count)))
            let (hr, ndcg, mrr) = try score(results, data.validation, k: options.validationK)
            switch options.validationMetric {
            case .hitRate: return hr
            case .mrr: return mrr
            default: return ndcg
            }
        }
        let trainer = try SDMTrainer(model: model, options: options.training)
        let report = try trainer.train(
            samples: samples, validate: validate,
            writeCheckpoint: { m, path, epoch, metric in
                let tensors = m.parameters.map { ArborTree.NamedTensor(name: $0.name, shape: $0.shape, values: $0.value) }
                try SDMCheckpoint.write(tensors, ids: m.catalog.ids, epoch: epoch, to: path)
            },
            progress: progress, cancellation: cancellation, onEpoch: onEpoch)
        let encoder = try model.encoder(itemFrequencies: frequencies)
        let vectors = model.itemVectorMatrix()
        let ids = data.catalog.ids
        let tree = try TreeBuilder.balancedKMeans(embeddings: vectors, items: ids, options: options.tree, progress: progress,
                                                  cancellation: cancellation)
        var start = ContinuousClock.now
        let (queries, withLong) = try encode(encoder, data.test)
        let encodeMicros = elapsed(since: start) * 1e6 / Double(data.test.count)
        var rows: [SDMResultRow] = []
        let pop = PopularityRetriever(counts: data.trainCounts, name: "popularity")
        let flat = try FlatRetriever(name: "sdm flat", items: vectors, ids: ids)
        let treeRetriever = try TreeRetriever(name: "sdm tree", source: tree, scorer: InnerProductScorer(dimension: tree.dimension),
                                              itemCount: tree.itemCount, dimension: tree.dimension)
        let kMax = min(options.ks.max() ?? 10, ids.count)
        func add(_ name: String, _ search: () throws -> [SearchResult]) throws {
            start = ContinuousClock.now
            let results = try search()
            let micros = elapsed(since: start) * 1e6 / Double(queries.count)
            for k in options.ks where k <= ids.count {
                let (hr, ndcg, mrr) = try score(results, data.test, k: k)
                rows.append(SDMResultRow(retriever: name, k: k, hitRate: hr, ndcg: ndcg, mrr: mrr, retrievalMicros: micros))
            }
        }
        try add("popularity") { try queries.map { try pop.search($0, parameters: SearchParameters(k: kMax)) } }
        try add("sdm flat") { try flat.search(batch: queries, parameters: SearchParameters(k: kMax)) }
        for beam in options.beams {
            try add("sdm tree beam \(beam)") {
                try queries.map { try treeRetriever.search($0, parameters: SearchParameters(k: kMax, beamWidth: max(beam, kMax))) }
            }
        }
        let t = options.training
        var provenance = TrainingProvenance(
            modelKind: QueryProducerKind.sdm.rawValue, dimension: config.dimension, hidden: [], maxHistory: config.maxSession,
            dataset: .init(name: "", items: ids.count, trainUsers: data.sequences.count, trainInteractions: data.trainEvents,
                           trainSamples: samples.count, validationUsers: data.validation.count, testUsers: data.test.count),
            protocolName: data.protocolName, seed: t.seed, epochsRun: report.epochs.count, bestEpoch: report.bestEpoch,
            validationMetric: data.validation.isEmpty ? nil : "\(options.validationMetric.shortName.lowercased())@\(options.validationK)",
            validationValue: report.bestMetric, negatives: "\(t.loss)" + (t.logQCorrection ? ", logQ counted" : ""),
            optimizer: "adam (dense) + \(t.embeddingOptimizer.rawValue) (embeddings)", learningRate: t.learningRate,
            trainingSeconds: report.wallSeconds)
        provenance.modelDetails = details(config: config, data: data)
        return SDMExperimentResult(config: config, report: report, encoder: encoder, tree: tree, rows: rows,
                                   encodeMicros: encodeMicros, queriesWithLongTerm: withLong, testQueries: data.test.count,
                                   provenance: provenance)
    }

    /// The model in words, with the long-term flag stated.
    static func details(config c: SDMConfig, data: SDMData) -> String {
        let long: String
        if !data.hasLongTerm {
            long = "none (data without users: short term only, the gate is not used)"
        } else {
            long = "\(c.fusion.name)" + (c.usesCategories ? ", items + categories" : ", items")
        }
        return "SDM: LSTM \(c.lstmLayers) layer(s), \(c.heads) heads, session \(c.maxSession), long \(c.maxLong); long term: \(long)"
    }

    private static func elapsed(since start: ContinuousClock.Instant) -> Double {
        let d = start.duration(to: .now)
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}

/// SDM checkpoints: the model's named tensors and item ids in a small index-free file
/// (`ARBORSDM`, JSON header with names and shapes, ids, Float32 values), written atomically.
public enum SDMCheckpoint {
    /// Writes `tensors` and `ids` to `path` (temporary file renamed into place).
    /// - Throws: file errors.
    public static func write(_ tensors: [ArborTree.NamedTensor], ids: [ItemID], epoch: Int, to path: String) throws {
        struct Header: Codable { var epoch: Int; var items: Int; var names: [String]; var shapes: [[Int]] }
        let header = try JSONEncoder().encode(Header(epoch: epoch, items: ids.count, names: tensors.map(\.name), shapes: tensors.map(\.shape)))
        var data = Data("ARBORSDM".utf8)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(header)
        for id in ids { withUnsafeBytes(of: id.rawValue.littleEndian) { data.append(contentsOf: $0) } }
        for t in tensors { t.values.withUnsafeBytes { data.append(contentsOf: $0) } }
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
