import Foundation
import Testing
import ArborData
import ArborMath
import ArborInference
import ArborTree
import ArborRetrieval

/// The README's custom scorer ("Your own model"), verbatim: a user-written model plugs into beam search.
struct MyScorer: NodeScorer {                        // e.g. a bilinear model u·W·n
    let w: Matrix                                    // d × d
    var nodeDimension: Int { w.rows }
    func makeSession(for query: Query) throws -> Session {
        var uw = Matrix(rows: 0, cols: w.cols)       // per-query work happens once, here
        BLAS.gemm(try Matrix(rows: 1, cols: w.rows, values: query.vector), w, into: &uw)
        return Session(uw: uw.values)
    }
    struct Session: ScoringSession {
        let uw: [Float]
        mutating func score(nodes: borrowing Matrix, level: Int, into scores: inout [Float]) {
            BLAS.gemv(copy nodes, uw, into: &scores)   // one GEMV for the whole level
        }
    }
}

@Suite struct ReadmeExampleTests {
    @Test func libraryExampleRunsAndTheCustomScorerMatchesBruteForce() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("readme-\(UUID().uuidString).arbor").path
        defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + "-lock") }
        // Building and searching an index through the lower layers, at a test-sized catalogue.
        let catalog = try SyntheticCatalog.generate(.init(itemCount: 3_000, dimension: 64))
        let tree = try TreeBuilder.balancedKMeans(embeddings: catalog.embeddings, items: catalog.itemIDs,
                                                  options: .init(fanOut: 16, innerNodes: .normalizedMean))
        try IndexWriter().write(layout: tree, to: path)
        let index = try IndexReader(path: path)
        let retriever = try TreeRetriever(source: index, scorer: InnerProductScorer(dimension: 64),
                                          itemCount: index.itemCount, dimension: 64)
        let userVector = Array(catalog.embeddings.row(7)), seen: Set<ItemID> = [catalog.itemIDs[7]]
        let top = try retriever.search(Query(vector: userVector, excluded: seen), parameters: .init(k: 100, beamWidth: 400))
        #expect(top.items.count == 100)
        #expect(!top.items.contains { seen.contains($0.item) })

        // The custom scorer: with a beam wider than every level, the tree equals brute force.
        var rng = SplitMix64(seed: 3)
        let w = try Matrix(rows: 64, cols: 64, values: (0..<4096).map { _ in rng.nextUnitFloat() - 0.5 })
        let custom = try TreeRetriever(source: index, scorer: MyScorer(w: w), itemCount: index.itemCount, dimension: 64)
        let (leaves, ids) = try index.loadLeafMatrix()
        let brute = try BruteForceRetriever(scorer: MyScorer(w: w), items: leaves, ids: ids, leafLevel: index.depth)
        let q = Query(vector: userVector)
        let a = try custom.search(q, parameters: .init(k: 20, beamWidth: 3_000))
        let b = try brute.search(q, parameters: .init(k: 20))
        #expect(a.items.map(\.item) == b.items.map(\.item))
    }
}
