import Foundation
import Testing
import ArborMath
import ArborStore
import ArborTree
@testable import ArborRetrieval

@Suite struct HNSWPersistenceTests {
    func fixture() throws -> (path: String, tree: TreeLayout, index: HNSWIndex, vectors: Matrix, ids: [ItemID]) {
        let n = 800, d = 8
        let vectors = randomMatrix(rows: n, cols: d, seed: 31)
        let ids = (0..<n).map { ItemID(UInt64(10_000 + $0)) }
        let tree = try TreeBuilder.balancedKMeans(embeddings: vectors, items: ids)
        let index = try HNSWIndex.build(vectors, ids: ids,
                                        configuration: HNSWConfiguration(metric: .normAugmentedInnerProduct, m: 8, efConstruction: 64))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hnsw-\(UUID().uuidString).arbor").path
        try IndexWriter().write(layout: tree, extra: try HNSWPersistence.extras(for: index), to: path)
        return (path, tree, index, vectors, ids)
    }

    @Test func graphRoundTripsThroughTheIndexFile() throws {
        let f = try fixture()
        let reader = try IndexReader(path: f.path)
        #expect(HNSWPersistence.hasGraph(reader))
        let loaded = try HNSWPersistence.load(from: reader)
        #expect(loaded.graph == f.index.graph)
        let q = Array(f.vectors.row(3))
        let p = SearchParameters(k: 10, efSearch: 50)
        #expect(try loaded.search(q, parameters: p) == f.index.search(q, parameters: p))
        try reader.verify()
        // The tree beside it is untouched.
        #expect(try reader.loadLayout() == f.tree)
    }

    @Test func anIndexWithoutAGraphSaysSo() throws {
        let tree = try TreeBuilder.balancedKMeans(embeddings: randomMatrix(rows: 10, cols: 2, seed: 1),
                                                  items: (0..<10).map { ItemID(UInt64($0)) })
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("nohnsw-\(UUID().uuidString).arbor").path
        try IndexWriter().write(layout: tree, to: path)
        let reader = try IndexReader(path: path)
        #expect(!HNSWPersistence.hasGraph(reader))
        #expect(throws: ArborError.self) { try HNSWPersistence.load(from: reader) }
    }

    @Test func aDamagedGraphValueFailsItsChecksum() throws {
        let f = try fixture()
        // Flip one byte inside the stored neighbour lists (found by their exact bytes in the file).
        var file = try Data(contentsOf: URL(fileURLWithPath: f.path))
        let needle = Data(ByteCoding.bytes(of: Array(f.index.graph.layer0Neighbours.prefix(64))))
        let range = try #require(file.range(of: needle))
        file[range.lowerBound + 5] ^= 0x40
        try file.write(to: URL(fileURLWithPath: f.path))
        let reader = try IndexReader(path: f.path)
        #expect {
            try HNSWPersistence.load(from: reader)
        } throws: { error in
            guard case IndexError.checksumMismatch(_, let table, let key) = error else { return false }
            return table == "extra" && key.contains("hnsw.layer0")
        }
        #expect(throws: IndexError.self) { try reader.verify() }
    }
}
