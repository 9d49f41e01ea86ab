import Testing
import ArborMath
import ArborTree
import ArborInference
import ArborRetrieval
import ArborTestSupport

/// Every retriever passes the one contract of `Retriever` (see `RetrieverContract`): best first with
/// ties by smaller id, exclusions honoured, `k` above the item count returns every other item, and at
/// exhaustive knobs the same ids as the exact scan with scores within 1e-5 (relative).
///
/// The data: 30 items in 4 dimensions with small integer coordinates, so every score is exact in
/// `Float` whatever order BLAS sums in; rows 24..<30 repeat rows 0..<6 (tied scores for every query),
/// and ids decrease with the row, so ties in id order are not ties in row order.
@Suite struct RetrieverContractTests {
    static let n = 30, d = 4

    static let items: Matrix = {
        var rng = SplitMix64(seed: 11)
        var values: [Float] = []
        for _ in 0..<(24 * d) { values.append(Float(Int(rng.next() % 5) - 2)) }
        values += values.prefix(6 * d)
        return try! Matrix(rows: n, cols: d, values: values)
    }()

    static let ids: [ItemID] = (0..<n).map { ItemID(UInt64(1000 - 3 * $0)) }

    static func innerProduct(_ q: Query, _ row: Int) -> Float {
        var s: Float = 0
        for j in 0..<d { s += q.vector[j] * items[row, j] }
        return s
    }

    static let exactInnerProduct = ExactReference(itemIDs: ids) { q, row in innerProduct(q, row) }

    /// Queries with exclusions that matter: none, the exact top 3 (tied pairs among them), half the
    /// catalogue, an id that is not in it, and all but two items.
    static let queries: [Query] = {
        var rng = SplitMix64(seed: 12)
        let vectors: [[Float]] = [Array(items.row(0))] + (0..<3).map { _ in
            (0..<d).map { _ in Float(Int(rng.next() % 5) - 2) }
        }
        var queries = vectors.map { Query(vector: $0) }
        let top3 = try! exactInnerProduct.search(queries[1], parameters: .init(k: 3)).items.map(\.item)
        queries.append(Query(vector: vectors[1], excluded: Set(top3)))
        queries.append(Query(vector: vectors[2], excluded: Set(ids.enumerated().filter { $0.offset % 2 == 0 }.map(\.element))))
        queries.append(Query(vector: vectors[3], excluded: [ItemID(7)]))
        queries.append(Query(vector: vectors[0], excluded: Set(ids.dropFirst(2))))
        return queries
    }()

    static let tree: TreeLayout = try! TreeBuilder.balancedKMeans(embeddings: items, items: ids, options: .init(fanOut: 3))

    static func expectContract(_ check: RetrieverContract.Case, sourceLocation: SourceLocation = #_sourceLocation) {
        let violations = RetrieverContract.violations(check)
        #expect(violations.isEmpty, "\(violations.prefix(10).joined(separator: "\n"))", sourceLocation: sourceLocation)
    }

    @Test func dataHasTiesAndExclusionsThatCutTheTop() throws {
        // Every query that keeps at least half the items ties somewhere in its ranking, and query 4
        // loses its best three items.
        for q in Self.queries where q.excluded.count <= Self.n / 2 {
            let scores = try Self.exactInnerProduct.search(q, parameters: .init(k: Self.n)).items.map(\.score)
            #expect(Set(scores).count < scores.count)
        }
        let top = try Self.exactInnerProduct.search(Query(vector: Self.queries[4].vector), parameters: .init(k: 3))
        #expect(Set(top.items.map(\.item)) == Self.queries[4].excluded)
    }

    @Test func flatScan() throws {
        let flat = try FlatRetriever(items: Self.items, ids: Self.ids, blockRows: 7)
        Self.expectContract(.init(subject: flat, reference: Self.exactInnerProduct, exhaustive: .init(),
                                  itemIDs: Self.ids, queries: Self.queries))
    }

    @Test func bruteForceInnerProduct() throws {
        let brute = try BruteForceRetriever(scorer: InnerProductScorer(dimension: Self.d), items: Self.items,
                                            ids: Self.ids, leafLevel: Self.tree.depth, blockRows: 7)
        Self.expectContract(.init(subject: brute, reference: Self.exactInnerProduct, exhaustive: .init(),
                                  itemIDs: Self.ids, queries: Self.queries))
    }

    @Test func treeInnerProductWithABeamWiderThanTheCatalogue() throws {
        let tree = try TreeRetriever(tree: Self.tree)
        Self.expectContract(.init(subject: tree, reference: Self.exactInnerProduct,
                                  exhaustive: .init(beamWidth: Self.n), itemIDs: Self.ids, queries: Self.queries))
    }

    @Test func hnswWithEfAboveTheItemCount() throws {
        let index = try HNSWIndex.build(Self.items, ids: Self.ids, configuration: .init(m: 4, efConstruction: 16))
        Self.expectContract(.init(subject: HNSWRetriever(index: index), reference: Self.exactInnerProduct,
                                  exhaustive: .init(efSearch: Self.n), itemIDs: Self.ids, queries: Self.queries))
    }

    /// A DNN scorer with small integer weights (exact arithmetic), PReLU and ReLU units.
    static func integerDNN() throws -> DNNScorer {
        var rng = SplitMix64(seed: 13)
        func layer(_ inputs: Int, _ outputs: Int, _ activation: InferenceActivation) throws -> DenseLayer {
            let w = (0..<(inputs * outputs)).map { _ in Float(Int(rng.next() % 5) - 2) }
            let b = (0..<outputs).map { _ in Float(Int(rng.next() % 3) - 1) }
            return try DenseLayer(weight: Matrix(rows: inputs, cols: outputs, values: w), bias: b, activation: activation)
        }
        let mlp = try InferenceMLP(layers: [
            try layer(3 * d, 8, .prelu(slopes: Array(repeating: 0.25, count: 8))),
            try layer(8, 4, .relu),
            try layer(4, 1, .identity),
        ])
        return try DNNScorer(dimension: d, mlp: mlp)
    }

    /// The DNN: brute force against each item scored alone, and the tree against brute force.
    @Test func deepScorerBruteForceAndTree() throws {
        let dnn = try Self.integerDNN()
        let depth = Self.tree.depth
        let items = Self.items
        let alone = ExactReference(itemIDs: Self.ids) { q, row in
            var session = try dnn.makeSession(for: q)
            var scores: [Float] = []
            session.score(nodes: try Matrix(rows: 1, cols: Self.d, values: Array(items.row(row))), level: depth, into: &scores)
            return scores[0]
        }
        let brute = try BruteForceRetriever(scorer: dnn, items: Self.items, ids: Self.ids, leafLevel: depth, blockRows: 7)
        Self.expectContract(.init(subject: brute, reference: alone, exhaustive: .init(),
                                  itemIDs: Self.ids, queries: Self.queries))
        let tree = try TreeRetriever(source: Self.tree, scorer: dnn, itemCount: Self.n, dimension: Self.d)
        Self.expectContract(.init(subject: tree, reference: brute, exhaustive: .init(beamWidth: Self.n),
                                  itemIDs: Self.ids, queries: Self.queries))
        // The DNN ranks differently from the inner product, so the check above is not the same one twice.
        let q = Self.queries[0]
        #expect(try brute.search(q, parameters: .init(k: Self.n)).items.map(\.item)
                != Self.exactInnerProduct.search(q, parameters: .init(k: Self.n)).items.map(\.item))
    }
}
