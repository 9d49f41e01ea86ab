import Foundation
import Testing
import ArborMath
import ArborStore
import ArborTestSupport
import ArborTree
@testable import ArborRetrieval

@Suite struct HNSWPersistenceTests {
    /// Every index file of a test lives here and goes with the test.
    let scratch: ScratchDirectory

    init() throws { scratch = try ScratchDirectory(prefix: "hnsw-persistence") }

    func fixture() throws -> (path: String, tree: TreeLayout, index: HNSWIndex, vectors: Matrix, ids: [ItemID]) {
        let n = 800, d = 8
        let vectors = randomMatrix(rows: n, cols: d, seed: 31)
        let ids = (0..<n).map { ItemID(UInt64(10_000 + $0)) }
        let tree = try TreeBuilder.balancedKMeans(embeddings: vectors, items: ids)
        let index = try HNSWIndex.build(vectors, ids: ids,
                                        configuration: HNSWConfiguration(metric: .normAugmentedInnerProduct, m: 8, efConstruction: 64))
        let path = scratch.file("hnsw.arbor")
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

    @Test func theBuildKernelIsRecordedAndReadBack() throws {
        let f = try fixture()
        let reader = try IndexReader(path: f.path)
        let built = try #require(f.index.buildKernel)
        #expect(built == f.index.resolvedKernel && built != .automatic && built != .measured)
        let info = try HNSWPersistence.info(from: reader)
        #expect(info.buildKernel == built && info.count == 800 && info.dimension == 8)
        #expect(info.configuration.kernel == .automatic)
        let loaded = try HNSWPersistence.load(from: reader)
        #expect(loaded.buildKernel == built && loaded.resolvedKernel == built)
        // Opening with another kernel keeps the record of the one that built the graph.
        let portable = try HNSWPersistence.load(from: reader, kernel: .portable)
        #expect(portable.resolvedKernel == .portable && portable.buildKernel == built)
        #expect(portable.graph.layer0Neighbours == f.index.graph.layer0Neighbours)
        // Growing it with another kernel makes the record unknown.
        var grown = portable
        try grown.add(randomMatrix(rows: 1, cols: 8, seed: 2), ids: [1])
        #expect(grown.buildKernel == (built == .portable ? .portable : nil))
    }

    @Test func aGraphStoredBeforeTheKernelWasRecordedStillLoads() throws {
        let f = try fixture()
        // hnsw.meta as older builds wrote it: no buildKernel, and the old "simd" kernel name.
        var extras = try HNSWPersistence.extras(for: f.index)
        var meta = try #require(try JSONSerialization.jsonObject(with: Data(extras[HNSWPersistence.metaName]!)) as? [String: Any])
        #expect(meta["buildKernel"] != nil)
        meta["buildKernel"] = nil
        var configuration = try #require(meta["configuration"] as? [String: Any])
        configuration["kernel"] = "simd"
        meta["configuration"] = configuration
        extras[HNSWPersistence.metaName] = Array(try JSONSerialization.data(withJSONObject: meta))
        let path = scratch.file("hnsw-old.arbor")
        try IndexWriter().write(layout: f.tree, extra: extras, to: path)
        let reader = try IndexReader(path: path)
        #expect(try HNSWPersistence.info(from: reader).buildKernel == nil)
        let loaded = try HNSWPersistence.load(from: reader)
        #expect(loaded.buildKernel == nil && loaded.resolvedKernel == .portable)
        #expect(loaded.graph.layer0Neighbours == f.index.graph.layer0Neighbours)
        let q = Array(f.vectors.row(3))
        let p = SearchParameters(k: 10, efSearch: 800)  // an exact scan: ids agree across kernels
        #expect(try loaded.search(q, parameters: p).items.map(\.item) == f.index.search(q, parameters: p).items.map(\.item))
    }

    @Test func anIndexWithoutAGraphSaysSo() throws {
        let tree = try TreeBuilder.balancedKMeans(embeddings: randomMatrix(rows: 10, cols: 2, seed: 1),
                                                  items: (0..<10).map { ItemID(UInt64($0)) })
        let path = scratch.file("nohnsw.arbor")
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
