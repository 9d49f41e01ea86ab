import ArborPipelines
import ArborInference
import Foundation
import Testing
import ArborMath
import ArborNN
import ArborTree
@testable import ArborModels
@testable import ArborRetrieval

private func tempPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("tdm-\(name)-\(getpid()).arbor").path
}

private func captureError(_ body: () throws -> Void) -> (any Error)? {
    do { try body(); return nil } catch { return error }
}

@Suite(.serialized) struct TDMIndexTests {
    /// Export → index → load gives the same tree and the same search results.
    @Test(arguments: TDMScorerKind.allCases)
    func indexRoundTrip(kind: TDMScorerKind) throws {
        let toy = try TDMToyData()
        let model = try toy.model(kind)
        _ = try TDMTrainer(config: .init(epochs: 1, batchSize: 16, negatives: .constant(2), seed: 1))
            .train(model, samples: TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6))
        let path = tempPath("rt-\(kind.rawValue)")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.writeIndex(to: path)
        let reader = try IndexReader(path: path)
        #expect(reader.nodeScorer == kind)
        let layout = try reader.loadLayout()
        #expect(layout == model.layout())
        let loaded = try ServingModel.load(from: reader)
        let original = try model.servingModel()
        #expect(loaded.scorer.kind == kind && loaded.producer.kind == model.queryProducerKind)
        func results(_ s: ServingModel) throws -> [[ItemID]] {
            func search<S: NodeScorer>(_ scorer: S, _ q: Query) throws -> [ItemID] {
                try TreeRetriever(source: layout, scorer: scorer, itemCount: layout.itemCount, dimension: layout.dimension)
                    .search(q, parameters: .init(k: 5, beamWidth: 4)).items.map(\.item)
            }
            return try toy.sequences.prefix(5).map { seq in
                try search(s.scorer.scorer, s.producer.queries(history: Array(seq.prefix(4)), excluded: []).queries[0])
            }
        }
        #expect(try results(loaded) == results(original))
        switch (loaded.scorer, original.scorer) {
        case let (.dnn(a), .dnn(b)): #expect(a.mlp == b.mlp)
        case let (.attention(a), .attention(b)):
            #expect(a.attention == b.attention && a.output == b.output && a.behaviourIDs == b.behaviourIDs)
            #expect(a.maxHistory == b.maxHistory)
        case (.innerProduct, .innerProduct):
            let a = try #require(loaded.producer as? MeanPoolingEncoder), b = try #require(original.producer as? MeanPoolingEncoder)
            #expect(a.itemVectors == b.itemVectors)
        default: Issue.record("kinds differ")
        }
    }

    /// The attention model's recency embedding travels through the index; a positions tensor that
    /// is not `P × d` with `P >= maxHistory` is a typed error naming it.
    @Test func recencyEmbeddingRoundTripAndBadShapes() throws {
        let toy = try TDMToyData()
        let model = try toy.model(.attention, recency: true)
        _ = try TDMTrainer(config: .init(epochs: 1, batchSize: 16, negatives: .constant(2), seed: 1))
            .train(model, samples: TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6))
        let path = tempPath("recency")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.writeIndex(to: path)
        guard case .attention(let loaded) = try ServingModel.load(from: IndexReader(path: path)).scorer else {
            Issue.record("not an attention model"); return
        }
        #expect(loaded.positions == model.positions?.matrix)
        let nodes = try IndexReader(path: path).loadLayout().levels[2].embeddings
        var a = try loaded.makeSession(for: Query(history: [100, 103, 104]))
        var b = try model.attentionScorer().makeSession(for: Query(history: [100, 103, 104]))
        var x: [Float] = [], y: [Float] = []
        a.score(nodes: nodes, level: 2, into: &x)
        b.score(nodes: nodes, level: 2, into: &y)
        #expect(x == y)

        var tensors = try model.servingTensors()
        let i = try #require(tensors.firstIndex { $0.name == "attention.positions" })
        let ids = model.items
        // Fewer rows than the history the scorer keeps.
        tensors[i] = .init(name: "attention.positions", shape: [2, toy.d], values: Array(tensors[i].values.prefix(2 * toy.d)))
        let short = captureError { _ = try AttentionScorer(dimension: toy.d, namedTensors: tensors, behaviourIDs: ids) }
        guard case .weightsDoNotMatch(_, let reason)? = short as? ModelLoadError else {
            Issue.record("wrong error \(String(describing: short))"); return
        }
        #expect(reason.contains("attention positions"))
        // Not 2-D.
        tensors[i] = .init(name: "attention.positions", shape: [6 * toy.d], values: Array(repeating: 0, count: 6 * toy.d))
        let flat = captureError { _ = try AttentionScorer(dimension: toy.d, namedTensors: tensors, behaviourIDs: ids) }
        #expect((flat as? ModelLoadError).map { "\($0)".contains("attention.positions") } == true)
    }

    /// Asking for a DNN from an attention index (and vice versa) is a typed kind mismatch.
    @Test func scorerKindMismatchIsATypedError() throws {
        let toy = try TDMToyData()
        let path = tempPath("kind")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try toy.model(.attention).writeIndex(to: path)
        let reader = try IndexReader(path: path)
        #expect(throws: ModelLoadError.kindMismatch(field: "nodeScorer", expected: "dnn", found: "attention")) { try DNNScorer(from: reader) }
        try toy.model(.dnn).writeIndex(to: path)
        let reader2 = try IndexReader(path: path)
        #expect(throws: ModelLoadError.kindMismatch(field: "nodeScorer", expected: "attention", found: "dnn")) { try AttentionScorer(from: reader2) }
    }

    /// An index whose header says "dnn" but whose weights are an attention model's: a clear error.
    @Test func weightsThatDoNotMatchTheKindAreRejected() throws {
        let toy = try TDMToyData()
        let model = try toy.model(.attention)
        let path = tempPath("blob")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try IndexWriter().write(layout: model.layout(), tensors: model.servingTensors(), nodeScorer: .dnn, to: path)
        let reader = try IndexReader(path: path)
        let error = captureError { _ = try DNNScorer(from: reader) }
        guard case .weightsDoNotMatch(let kind, let reason)? = error as? ModelLoadError else {
            Issue.record("wrong error \(String(describing: error))"); return
        }
        #expect(kind == "dnn" && reason.contains("dnn.0.weight"))
        // A DNN blob whose first layer does not take 3·d inputs.
        var tensors = try toy.model(.dnn).servingTensors()
        let i = tensors.firstIndex { $0.name == "dnn.0.weight" }!
        let rows = tensors[i].shape[0] - toy.d, cols = tensors[i].shape[1]
        tensors[i] = .init(name: "dnn.0.weight", shape: [rows, cols], values: Array(tensors[i].values.prefix(rows * cols)))
        #expect(throws: ModelLoadError.self) { try DNNScorer(dimension: toy.d, namedTensors: tensors) }
        // Attention without behaviour ids.
        try IndexWriter().write(layout: model.layout(), tensors: model.servingTensors(), nodeScorer: .attention, to: path)
        #expect(throws: ModelLoadError.self) { try AttentionScorer(from: IndexReader(path: path)) }
        // A sequence scorer recorded with a vector producer cannot be served.
        try IndexWriter().write(layout: model.layout(), tensors: model.servingTensors(), nodeScorer: .attention,
                                queryProducer: .leafMeanPooling, extra: ["behaviour.ids": ModelTensorNames.encode(ids: model.items)],
                                to: path)
        #expect(throws: ModelLoadError.kindMismatch(field: "queryProducer", expected: "history", found: "leaf-mean-pooling")) {
            try ServingModel.load(from: IndexReader(path: path))
        }
    }

    /// Unknown behaviour ids: ignored and counted by default, rejected on request; an empty
    /// history is served (attention: p = 0; vector scorers: the encoder's mean-behaviour fallback).
    @Test func unknownItemsAndEmptyHistory() throws {
        let toy = try TDMToyData()
        let att = try toy.model(.attention).attentionScorer()
        let session = try att.makeSession(for: Query(history: [ItemID(7777), 100, ItemID(8888), 102]))
        #expect(session.skipped == 2)
        let strict = try toy.model(.attention).attentionScorer(unknownItems: .reject)
        #expect(throws: ArborError.unknownItem(ItemID(7777))) { try strict.makeSession(for: Query(history: [100, ItemID(7777)])) }
        let dnnModel = try toy.model(.dnn)
        let encoder = try dnnModel.encoder()
        let encoded = try encoder.encode(history: [ItemID(7777), 101])
        #expect(encoded.unknownItems == 1 && !encoded.usedFallback)
        #expect(throws: ArborError.unknownItem(ItemID(7777))) { try encoder.encode(history: [ItemID(7777)], unknown: .reject) }
        let empty = try encoder.encode(history: [])
        #expect(empty.usedFallback && empty.vector == encoder.fallback)
        // Unknown ids are dropped the same way in training.
        #expect(dnnModel.behaviourRows(of: [ItemID(7777), 101, 102]) == ([1, 2], 1))
        // Empty-history search works for every kind.
        for kind in TDMScorerKind.allCases {
            let m = try toy.model(kind)
            let layout = m.layout()
            let serving = try m.servingModel()
            let produced = try serving.producer.queries(history: [], excluded: [])
            #expect(produced.usedFallback)
            func count<S: NodeScorer>(_ s: S) throws -> Int {
                try TreeRetriever(source: layout, scorer: s, itemCount: toy.n, dimension: toy.d)
                    .search(produced.queries[0], parameters: .init(k: 3)).items.count
            }
            #expect(try count(serving.scorer.scorer) == 3)
        }
    }

    /// Samples whose target is not a tree item are skipped and counted; none left is an error.
    @Test func samplesOutsideTheTree() throws {
        let toy = try TDMToyData()
        let model = try toy.model(.innerProduct)
        let trainer = TDMTrainer(config: .init(epochs: 1, batchSize: 4, negatives: .constant(1)))
        #expect(throws: TDMError.noTrainingSamples) {
            try trainer.train(model, samples: [TDMSample(history: [100], target: ItemID(5555))])
        }
        let report = try trainer.train(model, samples: [TDMSample(history: [100], target: ItemID(5555)),
                                                        TDMSample(history: [100], target: 101)])
        #expect(report.skippedSamples == 1 && report.epochs[0].samples == 1)
    }

    /// Tree learning rebuilds the tree from learned leaves and keeps the best round.
    @Test func treeLearningKeepsTheBestRound() throws {
        let toy = try TDMToyData()
        let model = try toy.model(.innerProduct)
        let initial = model.tree
        var scores = [0.2, 0.4, 0.3]   // one validate call per round (1 epoch each)
        let report = try TDMTreeLearning.run(
            model: model, samples: TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6),
            trainer: TDMTrainer(config: .init(epochs: 1, batchSize: 16, negatives: .constant(2), seed: 1)),
            config: .init(maxRounds: 3)) { _ in scores.removeFirst() }
        #expect(report.rounds.count == 3)
        #expect(report.bestRound == 2)
        #expect(model.tree != initial)
        #expect(Set(model.tree.leafItems) == Set(initial.leafItems))
        try model.tree.validate()
    }

    /// Epoch progress names the tree round: "round 1 train epoch 1", "round 2 train epoch 1", ...
    @Test func treeLearningProgressNamesTheRound() throws {
        final class Recorder: ProgressReporter, @unchecked Sendable {
            let lock = NSLock()
            var finished: [String] = []
            var reports = 0
            func report(task: String, done: Int, total: Int) { lock.withLock { reports += 1 } }
            func finish(task: String) { lock.withLock { finished.append(task) } }
        }
        let toy = try TDMToyData()
        let recorder = Recorder()
        var scores = [0.2, 0.4]
        _ = try TDMTreeLearning.run(
            model: try toy.model(.innerProduct), samples: TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6),
            trainer: TDMTrainer(config: .init(epochs: 1, batchSize: 16, negatives: .constant(2), seed: 1)),
            config: .init(maxRounds: 2), validate: { _ in scores.removeFirst() }, progress: recorder)
        #expect(recorder.finished == ["round 1 train epoch 1", "round 2 train epoch 1"])
        #expect(recorder.reports > 0)
    }

    /// Interrupted in round 2, tree learning throws `CancellationError` and leaves the model with
    /// round 1's tree and best weights (not the half-trained round 2).
    @Test func cancelledTreeLearningKeepsTheBestRoundSoFar() throws {
        let toy = try TDMToyData()
        let samples = TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6)
        let trainer = TDMTrainer(config: .init(epochs: 2, batchSize: 16, negatives: .constant(2), seed: 1))
        // The same run, uninterrupted and stopped after round 1, gives the state to expect.
        let reference = try toy.model(.innerProduct)
        var calls = 0
        _ = try TDMTreeLearning.run(model: reference, samples: samples, trainer: trainer, config: .init(maxRounds: 1)) { _ in
            calls += 1
            return [0.3, 0.5][calls - 1]
        }
        let model = try toy.model(.innerProduct)
        let flag = CancellationFlag()
        calls = 0
        #expect(throws: CancellationError.self) {
            _ = try TDMTreeLearning.run(model: model, samples: samples, trainer: trainer, config: .init(maxRounds: 3),
                                        validate: { _ in
                                            calls += 1
                                            if calls == 3 { flag.cancel() }   // first epoch of round 2
                                            return [0.3, 0.5, 0.9][calls - 1]
                                        }, cancellation: flag)
        }
        #expect(model.tree == reference.tree)
        #expect(model.parameters.map(\.value) == reference.parameters.map(\.value))
        // Cancelled before anything ran: the model is untouched.
        let untouched = try toy.model(.innerProduct)
        let before = untouched.parameters.map(\.value)
        #expect(throws: CancellationError.self) {
            _ = try TDMTreeLearning.run(model: untouched, samples: samples, trainer: trainer, validate: { _ in 0 },
                                        cancellation: flag)
        }
        #expect(untouched.parameters.map(\.value) == before)
    }
}

@Suite(.serialized) struct TDMProvenanceIndexTests {
    static func dataset(_ toy: TDMToyData) -> TrainingProvenance.Dataset {
        .init(name: "toy", path: "/tmp/toy.inter", items: toy.n, trainUsers: toy.sequences.count,
              trainInteractions: toy.sequences.reduce(0) { $0 + $1.count }, trainSamples: 440, validationUsers: 0, testUsers: 0)
    }

    /// `writeIndex(provenance:)` stores the record beside the model (read back equal); without it
    /// the index has none; a record that breaks an invariant is refused and the old index kept.
    @Test func writeIndexStoresTheTrainingProvenance() throws {
        let toy = try TDMToyData()
        let model = try toy.model(.dnn)
        let training = TDMTrainingConfig(epochs: 1, batchSize: 16, negatives: .growing(total: 6), seed: 1)
        let p = TrainingProvenance(tdm: model, training: training, dataset: Self.dataset(toy))
        #expect(p.modelKind == "dnn" && p.hidden == [12, 6] && p.maxHistory == 6 && p.seed == 3)
        #expect(p.negatives == "growing, about 6 a sample" && p.embeddingLearningRate == training.sparseLearningRate)
        #expect(TrainingProvenance(tdm: try toy.model(.innerProduct), training: training, dataset: Self.dataset(toy)).hidden == [])
        let path = tempPath("prov")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.writeIndex(to: path, provenance: p)
        #expect(try IndexReader(path: path).trainingProvenance() == p)
        #expect(try ServingModel.load(from: IndexReader(path: path)).producer.unknownItems(in: [100, 7777, 101, 8888]) == [7777, 8888])
        var bad = p
        bad.bestEpoch = 5
        #expect(throws: TDMError.invalid(.invalidArgument(name: "training provenance field 'bestEpoch'",
                                                          reason: "must be in 0...0 (epochsRun), got 5"))) {
            try model.writeIndex(to: path, provenance: bad)
        }
        #expect(try IndexReader(path: path).trainingProvenance() == p)
        try model.writeIndex(to: path)
        #expect(try IndexReader(path: path).trainingProvenance() == nil)
    }

    /// Checkpoints written during tree learning record the round, the epochs so far and the
    /// validation score of the checkpoint; the finished record counts every round.
    @Test func checkpointsAndTreeLearningRecordEpochsAndRounds() throws {
        let toy = try TDMToyData()
        let model = try toy.model(.innerProduct)
        let path = tempPath("prov-ckpt")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var training = TDMTrainingConfig(epochs: 2, batchSize: 16, negatives: .constant(2), seed: 1)
        let base = TrainingProvenance(tdm: model, training: training, dataset: Self.dataset(toy))
        training.provenance = base
        var calls = 0.0
        // Rising scores: every epoch of both rounds improves and is checkpointed.
        let report = try TDMTreeLearning.run(
            model: model, samples: TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6),
            trainer: TDMTrainer(config: training), config: .init(maxRounds: 2),
            validate: { _ in calls += 1; return calls / 10 },
            checkpoint: { model, provenance in try model.writeIndex(to: path, provenance: provenance) })
        #expect(report.rounds.count == 2 && report.bestRound == 2)
        let checkpoint = try #require(try IndexReader(path: path).trainingProvenance())
        #expect(checkpoint.epochsRun == 4 && checkpoint.bestEpoch == 2)
        #expect(checkpoint.treeRounds == 2 && checkpoint.keptRound == 2)
        #expect(checkpoint.validationMetric == "recall@50" && checkpoint.validationValue == 0.4)
        #expect(checkpoint.trainingSeconds > 0 && checkpoint.dataset == base.dataset)
        let finished = base.finished(treeLearning: report, seconds: 1.5)
        #expect(finished.epochsRun == 4 && finished.bestEpoch == 2 && finished.treeRounds == 2 && finished.keptRound == 2)
        #expect(finished.validationValue == 0.4 && finished.trainingSeconds == 1.5)
        try finished.validate()
    }
}

@Suite(.serialized) struct TDMReassignmentTests {
    /// On a parity-grouped tree with a few items misplaced into the other half, JTM re-assignment of
    /// a trained model moves them back: level-1 subtrees become parity-pure again.
    @Test func reassignmentGroupsPlantedInterests() throws {
        let base = try TDMToyData()
        var mixed = base.tree
        let half = base.n / 2
        for i in 0..<3 { mixed.leafItems.swapAt(i, half + i) }   // 3 even items among the odd, and back
        let model = try TDMModel(config: .init(kind: .innerProduct, dimension: base.d, maxHistory: 6, embeddingScale: 0.3, seed: 3),
                                 tree: mixed, items: base.ids)
        let samples = TDMSample.slidingWindow(sequences: base.sequences, maxHistory: 6)
        _ = try TDMTrainer(config: .init(epochs: 6, batchSize: 32, negatives: .constant(3), learningRate: 5e-3,
                                         sparseLearningRate: 3e-2, seed: 2)).train(model, samples: samples)
        func purity(_ t: TreeLayout) -> Double {
            // Share of the majority parity among the leaves of each level-1 node, averaged.
            var total = 0.0
            for n in 0..<t.levels[1].nodeCount {
                var range = n..<(n + 1)
                for l in 1..<t.depth { let o = t.levels[l].childOffsets; range = Int(o[range.lowerBound])..<Int(o[range.upperBound]) }
                let even = range.filter { t.leafItems[$0].rawValue % 2 == 0 }.count
                total += Double(max(even, range.count - even)) / Double(range.count)
            }
            return total / Double(t.levels[1].nodeCount)
        }
        #expect(purity(model.tree) < 0.85)
        let tree = try TDMReassignment.reassign(model: model, samples: samples, config: .init(levelGap: 2, maxSamplesPerItem: 10))
        #expect(Set(tree.leafItems) == Set(base.ids))
        #expect(tree.levels.map(\.childOffsets) == model.tree.levels.map(\.childOffsets))
        #expect(purity(tree) == 1, "purity \(purity(tree))")
        // Each item keeps its learned leaf embedding.
        let old = model.layout()
        for (slot, item) in tree.leafItems.enumerated() {
            #expect(Array(tree.levels[tree.depth].embeddings.row(slot)) == Array(old.levels[old.depth].embeddings.row(model.leafOfItem[item]!)))
        }
        // As a tree-learning rebuild.
        let report = try TDMTreeLearning.run(model: model, samples: samples,
                                             trainer: TDMTrainer(config: .init(epochs: 1, batchSize: 32, negatives: .constant(2))),
                                             config: .init(maxRounds: 2, rebuild: .reassign(.init(levelGap: 3))),
                                             validate: { m in purity(m.tree) })
        #expect(report.rounds.count == 2 && report.bestRound == 2)
    }
}
