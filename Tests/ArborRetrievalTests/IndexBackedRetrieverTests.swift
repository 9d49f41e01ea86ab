import Foundation
import Testing
import ArborMath
import ArborTree
import ArborInference
import ArborRetrieval

/// A tree retriever reading its tree from an index file.
@Suite struct IndexBackedRetrieverTests {
    static func temporaryIndexPath() -> String {
        NSTemporaryDirectory() + "index-backed-\(UInt64.random(in: 0..<UInt64.max)).arbor"
    }

    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.removeItem(atPath: path + "-lock")
    }

    /// Beam search over the index file gives exactly what it gives over the in-memory tree.
    @Test func beamOverTheIndexFileEqualsBeamOverTheInMemoryTree() throws {
        let n = 300, d = 8
        let e = randomMatrix(rows: n, cols: d, seed: 5)
        let ids = (0..<n).map { ItemID(UInt64(7 * $0 + 1)) }
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: ids, options: .init(fanOut: 4))
        let path = Self.temporaryIndexPath()
        defer { Self.remove(path) }
        try IndexWriter(chunkBytes: 256).write(layout: tree, to: path)
        let reader = try IndexReader(path: path)
        let a = try TreeRetriever(tree: tree)
        let b = try TreeRetriever(source: reader, scorer: InnerProductScorer(dimension: d), itemCount: n, dimension: d)
        for qi in 0..<10 {
            let q = Query(vector: Array(randomMatrix(rows: 1, cols: d, seed: UInt64(100 + qi)).values))
            let p = SearchParameters(k: 10, beamWidth: 12)
            #expect(try a.search(q, parameters: p) == b.search(q, parameters: p))
        }
    }

    /// A scorer narrower than the index is refused with an error (at creation or at the first query).
    @Test func scorerWidthDifferentFromIndexIsAnError() throws {
        let n = 50
        let e = randomMatrix(rows: n, cols: 8, seed: 5)
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: (0..<n).map { ItemID(UInt64($0)) })
        let path = Self.temporaryIndexPath()
        defer { Self.remove(path) }
        try IndexWriter().write(layout: tree, to: path)
        let reader = try IndexReader(path: path)
        #expect(throws: (any Error).self) {
            let r = try TreeRetriever(source: reader, scorer: InnerProductScorer(dimension: 4), itemCount: n, dimension: 4)
            _ = try r.search(Query(vector: [1, 0, 0, 0]), parameters: .init(k: 3))
        }
    }
}
