import ArborCore
import ArborInference
import ArborInterchange
import ArborMath
import ArborTree
import Foundation
import Testing

/// Scores of one query against `nodes` through a scorer (opens the existential).
func sessionScores<S: NodeScorer>(_ scorer: S, _ query: Query, _ nodes: Matrix) throws -> [Float] {
    var session = try scorer.makeSession(for: query)
    var out: [Float] = []
    session.score(nodes: nodes, level: 0, into: &out)
    return out
}

/// `max_j |a_j − b_j| / max_j |b_j|` over one score row: the row's relative error in the max norm
/// (an element-wise ratio is meaningless for scores near zero, which carry only the row's rounding).
func relativeDifference(_ a: [Float], _ b: [Float]) -> Double {
    let scale = Double(b.map { abs($0) }.max() ?? 0)
    let error = zip(a, b).map { Double(abs($0 - $1)) }.max() ?? 0
    return error / max(scale, 1e-30)
}

@Suite struct TorchParityTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/torch")

    /// A model made and saved by PyTorch (tools/python/arbor_torch.py, fixtures written by
    /// tools/python/make_parity_fixtures.py) imports into an index and, served by Arbor, scores
    /// the fixture's nodes for every history as PyTorch does (float64 reference) within 1e-5
    /// relative (``relativeDifference(_:_:)``).
    @Test(arguments: ["dnn", "attention", "two-tower", "mind", "sdm"])
    func arborScoresEqualPyTorchScores(kind: String) throws {
        let file = try SafeTensorsFile(contentsOf: Self.fixtures.appendingPathComponent("\(kind).safetensors").path)
        let cases = try SafeTensorsFile(contentsOf: Self.fixtures.appendingPathComponent("\(kind).cases.safetensors").path)
        let specText = try #require(file.metadata[ModelSpec.metadataKey])
        let spec = try ModelSpec.decode(Data(specText.utf8), source: kind)
        let index = try ModelFactory.writeVectorIndex(tree: ModelFactory.tree(seed: 5))
        defer { removeFile(index) }
        try ModelImport.importModel(file, spec: spec, into: index)
        let model = try ServingModel.load(from: IndexReader(path: index))

        let nodeTensor = try cases.tensor("nodes")
        let nodes = try Matrix(rows: nodeTensor.shape[0], cols: nodeTensor.shape[1], values: nodeTensor.floats())
        let histories = try cases.tensor("histories"), lengths = try cases.tensor("lengths").int64s()
        let ids = try histories.int64s(), times = try cases.tensor("timestamps").floats()
        let rows = try cases.tensor("rows").int64s()
        let expected = try cases.tensor("expected").floats()
        let width = histories.shape[1], m = nodes.rows
        var row = 0, worst = 0.0
        for q in 0 ..< lengths.count {
            let n = Int(lengths[q])
            let history = (0 ..< n).map { ItemID(UInt64(bitPattern: ids[q * width + $0])) }
            let stamps = kind == "sdm" ? (0 ..< n).map { Double(times[q * width + $0]) } : nil
            let queries = try model.producer.queries(history: history, timestamps: stamps, excluded: []).queries
            #expect(queries.count == Int(rows[q]), "query \(q): \(queries.count) query vectors, PyTorch \(rows[q])")
            for query in queries {
                let scores = try sessionScores(model.scorer.scorer, query, nodes)
                let reference = Array(expected[(row * m) ..< ((row + 1) * m)])
                let diff = relativeDifference(scores, reference)
                worst = max(worst, diff)
                #expect(diff <= 1e-5, "\(kind) query \(q): relative difference \(diff)")
                row += 1
            }
        }
        #expect(row * m == expected.count)
        print("parity \(kind): \(row) score rows, largest relative difference Arbor vs PyTorch \(String(format: "%.2e", worst))")
    }
}
