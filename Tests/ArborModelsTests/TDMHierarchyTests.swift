import Foundation
import Testing
import ArborInference
import ArborMath
import ArborNN
import ArborPipelines
import ArborTree
@testable import ArborModels
@testable import ArborRetrieval

/// JTM's hierarchical user features: behaviours replaced by their ancestors at the scored level.
@Suite(.serialized) struct TDMHierarchyTests {
    static func trained(_ kind: TDMScorerKind, recency: Bool = false) throws -> (TDMToyData, TDMModel) {
        let toy = try TDMToyData()
        let model = try toy.model(kind, recency: recency, hierarchical: true)
        _ = try TDMTrainer(config: .init(epochs: 2, batchSize: 16, negatives: .constant(2), seed: 1))
            .train(model, samples: TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6))
        return (toy, model)
    }

    /// The lookup maps each tree item to its ancestor's hierarchy row on every inner level, and
    /// leaves the leaf level (and behaviours outside the tree) alone.
    @Test func levelRowsAreAncestors() throws {
        let toy = try TDMToyData()
        let model = try toy.model(.dnn, hierarchical: true)
        let depth = model.tree.depth
        let hierarchy = try #require(model.hierarchy)
        #expect(hierarchy.shape == [model.levelStart[depth] - model.levelStart[1], toy.d])
        let rows = Array(0..<toy.n)
        #expect(model.levelRows(rows, level: depth) == rows)
        for level in 1..<depth {
            let mapped = model.levelRows(rows, level: level)
            for r in rows {
                let path = model.ancestors(ofLeaf: model.leafOfItem[model.items[r]]!)
                #expect(mapped[r] == toy.n + model.hierarchyRow(level: level, node: path[level]))
            }
        }
        // Each row starts as the mean of the behaviour rows below its node.
        let table = model.behaviour.table.value
        let below = (0..<toy.n).filter { model.ancestors(ofLeaf: model.leafOfItem[model.items[$0]]!)[1] == 0 }
        for c in 0..<toy.d {
            let mean = below.reduce(Float(0)) { $0 + table[$1 * toy.d + c] } / Float(below.count)
            #expect(abs(hierarchy.value[model.hierarchyRow(level: 1, node: 0) * toy.d + c] - mean) <= 1e-5)
        }
    }

    /// Same weights → the training forward pass and the serving scorer (a lookup per level) give
    /// the same scores on every level, within 1e-4; the hierarchy table trains.
    @Test(arguments: [(TDMScorerKind.dnn, false), (.attention, false), (.attention, true)])
    func trainingForwardEqualsServing(kind: TDMScorerKind, recency: Bool) throws {
        let (toy, model) = try Self.trained(kind, recency: recency)
        let fresh = try toy.model(kind, recency: recency, hierarchical: true)
        #expect(model.hierarchy!.value != fresh.hierarchy!.value)
        // (An empty history: the DNN's serving encoder falls back to the mean behaviour, training to
        // zero, with or without the hierarchy; only the attention model is checked on it.)
        let histories: [[ItemID]] = [[100, 102, 104], Array(toy.ids.prefix(9)), [101], [ItemID(9999), 103, 105]]
            + (kind == .attention ? [[]] : [])
        for history in histories {
            for level in 1...toy.tree.depth {
                let nodes = Array(0..<toy.tree.levels[level].nodeCount)
                let a = try model.scores(history: history, level: level, nodes: nodes)
                let b = try servingScores(model, history: history, level: level, nodes: nodes)
                #expect(a.count == b.count)
                for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-4 * max(1, abs(y)), "\(kind) level \(level): \(x) vs \(y)") }
            }
        }
        // The features do change inner levels: the same weights without the hierarchy score otherwise.
        let level = 2
        let nodes = Array(0..<toy.tree.levels[level].nodeCount)
        let with = try model.scores(history: [100, 102, 104], level: level, nodes: nodes)
        let rows = model.behaviourRows(of: [100, 102, 104]).rows
        #expect(model.levelRows(rows, level: level) != rows)
        #expect(with.count == nodes.count)
    }

    /// The index stores the hierarchy: a model loaded from the file scores every level as the
    /// in-memory one (beam search over the loaded index gives the same items).
    @Test(arguments: [TDMScorerKind.dnn, .attention])
    func indexRoundTrip(kind: TDMScorerKind) throws {
        let (toy, model) = try Self.trained(kind, recency: kind == .attention)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tdm-hier-\(getpid())-\(kind.rawValue).arbor").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.writeIndex(to: path)
        let reader = try IndexReader(path: path)
        #expect(reader.tensorNames.contains(ModelTensorNames.hierarchyRows))
        let loaded = try ServingModel.load(from: reader)
        let memory = try model.servingModel()
        let layout = try reader.loadLayout()
        for history in toy.sequences.prefix(5).map({ Array($0.prefix(5)) }) {
            let q1 = try memory.producer.queries(history: history, excluded: []).queries[0]
            let q2 = try loaded.producer.queries(history: history, excluded: []).queries[0]
            for level in 1...layout.depth {
                let nodes = layout.levels[level].embeddings
                func score<S: NodeScorer>(_ scorer: S, _ q: Query) throws -> [Float] {
                    var session = try scorer.makeSession(for: q)
                    var out: [Float] = []
                    session.score(nodes: nodes, level: level, into: &out)
                    return out
                }
                #expect(try score(memory.scorer.scorer, q1) == score(loaded.scorer.scorer, q2))
            }
        }
        switch loaded.scorer {
        case .dnn(let s): #expect(s.hierarchy == (try model.behaviourHierarchy()))
        case .attention(let s): #expect(s.hierarchy == (try model.behaviourHierarchy()))
        case .innerProduct: Issue.record("wrong kind")
        }
    }

    /// A stored lookup naming a row outside the table, or one tensor without the other, is a
    /// clear load error naming the tensor.
    @Test func badStoredHierarchyIsRejected() throws {
        let (_, model) = try Self.trained(.attention)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tdm-hier-bad-\(getpid()).arbor").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let good = try model.servingTensors()
        for mutate in [0, 1] {
            var tensors = good
            if mutate == 0 {
                let i = tensors.firstIndex { $0.name == ModelTensorNames.hierarchyRows }!
                var values = tensors[i].values
                values[0] = 1e6
                tensors[i] = .init(name: tensors[i].name, shape: tensors[i].shape, values: values)
            } else {
                tensors.removeAll { $0.name == ModelTensorNames.hierarchyEmbeddings }
            }
            try IndexWriter().write(layout: model.layout(), tensors: tensors, nodeScorer: .attention, queryProducer: .rawHistory,
                                    extra: [ModelTensorNames.behaviourIDs: ModelTensorNames.encode(ids: model.items)], to: path)
            let reader = try IndexReader(path: path)
            #expect { try AttentionScorer(from: reader) } throws: { error in
                guard case .weightsDoNotMatch(_, let reason)? = error as? ModelLoadError else { return false }
                return reason.contains("hierarchy.")
            }
        }
    }

    /// A new tree (re-clustering) rebuilds the hierarchy for its nodes; training with the features
    /// learns the planted preference.
    @Test func replaceTreeRebuildsAndTrainingLearns() throws {
        let toy = try TDMToyData(users: 60, length: 14)
        let model = try toy.model(.attention, hierarchical: true)
        let samples = TDMSample.slidingWindow(sequences: toy.sequences, maxHistory: 6)
        let report = try TDMTrainer(config: .init(epochs: 8, batchSize: 32, negatives: .constant(3), learningRate: 5e-3,
                                                  sparseLearningRate: 3e-2, seed: 2)).train(model, samples: samples)
        #expect(report.epochs.last!.loss < report.epochs.first!.loss * 0.9, "\(report.epochs.map(\.loss))")
        let leaves = Array(0..<toy.n)
        for parity in 0..<2 {
            let history = (0..<5).map { ItemID(UInt64(100 + 4 * $0 + parity)) }
            let s = try model.scores(history: history, level: toy.tree.depth, nodes: leaves)
            let ranked = leaves.sorted { s[$0] > s[$1] }.prefix(10)
            #expect(ranked.filter { Int(toy.tree.leafItems[$0].rawValue - 100) % 2 == parity }.count >= 8)
        }
        let (embeddings, items) = model.leafEmbeddings()
        let rebuilt = try TreeBuilder.categoryOrder(embeddings: embeddings, items: items.reversed(),
                                                    categories: items.map { _ in UInt32(0) }, options: .init(fanOut: 4))
        try model.replaceTree(rebuilt)
        #expect(model.hierarchy!.shape[0] == model.levelStart[model.tree.depth] - model.levelStart[1])
        let h = try #require(try model.behaviourHierarchy())
        #expect(h.rows.count == model.tree.depth - 1)
        #expect(try model.scores(history: [100, 102], level: 1, nodes: [0]).count == 1)
    }
}
