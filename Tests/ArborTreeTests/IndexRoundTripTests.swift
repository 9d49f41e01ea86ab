import Foundation
import Testing
@testable import ArborTree

@Suite struct IndexRoundTripTests {
    @Test(arguments: [64, IndexFormat.defaultChunkBytes])
    func smallLayoutRoundTrips(chunkBytes: Int) throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("small.arbor")
        let layout = Fixtures.smallLayout()
        try IndexWriter(chunkBytes: chunkBytes).write(layout: layout, nodeScorer: .dnn, queryProducer: .behaviourMeanPooling, to: path)
        #expect(dir.contents == ["small.arbor"])  // one file; no lock file until someone reads

        let reader = try IndexReader(path: path)
        #expect(reader.dimension == 4)
        #expect(reader.fanOut == 3)
        #expect(reader.depth == 2)
        #expect(reader.itemCount == 7)
        #expect(reader.levelNodeCounts == [1, 3, 7])
        #expect(reader.header.nodeCount == 11)
        #expect(reader.nodeScorer == .dnn)
        #expect(reader.queryProducer == .behaviourMeanPooling)
        #expect(reader.hasCategories)
        #expect(reader.header.formatVersion == IndexFormat.version)

        #expect(try reader.loadLayout() == layout)
        try reader.verify()
        try reader.withView { snapshot in
            expectSameAnswers(snapshot, layout)
            #expect((0..<7).map { snapshot.category(atLeaf: $0) } == layout.leafCategories.map { $0 })
        }
        for (leaf, id) in layout.leafItems.enumerated() {
            #expect(try reader.leaf(of: id) == leaf)
            #expect(try reader.item(atLeaf: leaf) == id)
        }
        #expect(try reader.leaf(of: 12345) == nil)
        #expect(throws: IndexError.leafOutOfRange(path: path, leaf: 7, itemCount: 7)) { try reader.item(atLeaf: 7) }
        let (leaves, items) = try reader.loadLeafMatrix()
        #expect(leaves == layout.levels[2].embeddings)
        #expect(items == layout.leafItems)
        #expect(throws: IndexError.dimensionMismatch(path: path, field: "dimension", expected: 8, found: 4)) {
            try reader.requireDimension(8)
        }
    }

    @Test func generatedLayoutAcrossManyChunks() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("gen.arbor")
        let layout = Fixtures.generatedLayout(items: 1000, fanOut: 4, dimension: 6)
        try layout.validate()
        // 200-byte chunks: 8 rows, 50 offsets, 25 items per chunk; rows never split.
        // 1000-byte transactions: the data is committed in many pieces, the header last.
        var writer = IndexWriter(chunkBytes: 200)
        writer.commitBytes = 1000
        try writer.write(layout: layout, to: path)
        let reader = try IndexReader(path: path)
        #expect(!reader.hasCategories)
        #expect(reader.nodeScorer == .innerProduct && reader.queryProducer == .leafMeanPooling)
        #expect(try reader.loadLayout() == layout)
        try reader.verify()
        try reader.withView { expectSameAnswers($0, layout) }
        try reader.withView { #expect($0.category(atLeaf: 0) == nil) }
        // Chunk-wise scan of every level equals the layout's matrices.
        try reader.withView { snapshot in
            for l in 0...layout.depth {
                var rebuilt: [Float] = []
                var next = 0
                snapshot.forEachEmbeddingChunk(level: l) { range, values in
                    #expect(range.lowerBound == next && values.count == range.count * 6)
                    rebuilt.append(contentsOf: values)
                    next = range.upperBound
                }
                #expect(rebuilt == layout.levels[l].embeddings.values, "level \(l)")
            }
        }
    }

    @Test func tensorsAndExtrasRoundTripWithDigest() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("t.arbor")
        let tensors = Fixtures.tensors()
        let extra: [String: [UInt8]] = ["hnsw.graph": Array(0..<255), "note": Array("hello".utf8)]
        try IndexWriter(chunkBytes: 256).write(layout: Fixtures.smallLayout(), tensors: tensors, extra: extra, to: path)
        let reader = try IndexReader(path: path)
        #expect(reader.tensorNames == tensors.map(\.name))
        #expect(reader.header.tensors.map(\.digest) == tensors.map(\.digest))
        #expect(reader.header.tensors.map(\.shape) == tensors.map(\.shape))
        for t in tensors {
            let loaded = try reader.tensor(named: t.name)
            #expect(loaded == t)
            #expect(loaded.digest == t.digest)
        }
        #expect(throws: IndexError.tensorNotFound(path: path, name: "nope")) { try reader.tensor(named: "nope") }
        #expect(reader.extraNames == ["hnsw.graph", "note"])
        #expect(try reader.extra(named: "hnsw.graph") == extra["hnsw.graph"])
        #expect(try reader.extra(named: "missing") == nil)
        let count = try reader.withExtra(named: "note") { $0.count }
        #expect(count == 5)
        try reader.verify()
    }

    @Test func digestDependsOnShapeAndValues() {
        let a = NamedTensor(name: "w", shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        var b = a; b.shape = [3, 2]
        var c = a; c.values[5] = 6.0000005
        #expect(a.digest == NamedTensor(name: "other", shape: [2, 3], values: a.values).digest)
        #expect(a.digest != b.digest)
        #expect(a.digest != c.digest)
    }

    @Test func snapshotsAreSafeFromManyThreads() async throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("mt.arbor")
        let layout = Fixtures.generatedLayout(items: 300, fanOut: 3, dimension: 5)
        try IndexWriter(chunkBytes: 128).write(layout: layout, to: path)
        let reader = try IndexReader(path: path)
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for t in 0..<8 {
                group.addTask {
                    try reader.withView { snapshot in
                        var out = Matrix(rows: 0, cols: 5)
                        var expected = Matrix(rows: 0, cols: 5)
                        let nodes = (0..<50).map { Int32(($0 * 7 + t) % 300) }
                        snapshot.gatherEmbeddings(level: layout.depth, nodes: nodes, into: &out)
                        layout.gatherEmbeddings(level: layout.depth, nodes: nodes, into: &expected)
                        return out == expected && snapshot.item(atLeaf: t) == layout.leafItems[t]
                    }
                }
            }
            var all: [Bool] = []
            for try await ok in group { all.append(ok) }
            return all
        }
        #expect(results == Array(repeating: true, count: 8))
    }

    /// Opening reads the header only: its size does not grow with the item count, and the reader
    /// holds no table data (only the path, the header, the environment and table handles).
    @Test func openIsHeaderOnly() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let small = dir.file("2k.arbor"), large = dir.file("200k.arbor")
        try IndexWriter().write(layout: Fixtures.generatedLayout(items: 2_000, fanOut: 2, dimension: 4), to: small)
        try IndexWriter().write(layout: Fixtures.generatedLayout(items: 200_000, fanOut: 2, dimension: 4), to: large)
        let a = try IndexReader(path: small)
        let b = try IndexReader(path: large)
        #expect(b.itemCount == 200_000)
        #expect(b.depth == 18)
        #expect(b.levelNodeCounts.last == 200_000)
        // The header grows with the depth (a few digits per level), not with the items.
        let sizeA = a.header.encoded().count, sizeB = b.header.encoded().count
        #expect(sizeB < 2_048)
        #expect(sizeB - sizeA < 200)
        #expect(StoreSize.of(large) > 100 * StoreSize.of(small) / 2)
        let stored = Mirror(reflecting: b).children.compactMap(\.label).sorted()
        #expect(stored == ["cachedSnapshot", "environment", "header", "openedVersion", "path", "tables"])
        // Opening builds no snapshot: the chunk table is made by the first query, then reused.
        #expect(b.cachedSnapshot.withLock { $0 } == nil)
        #expect(try b.leaf(of: b.item(atLeaf: 199_999)) == 199_999)
        try b.withView { view in #expect(view.nodeCount(level: 18) == 200_000) }
        #expect(b.cachedSnapshot.withLock { $0 } != nil)
    }
}

extension IndexRoundTripTests {
    /// Read views nest beyond LMDB's default of 126 reader slots: 200 views open at once all succeed.
    @Test func twoHundredNestedReadViews() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("r.arbor")
        try IndexWriter().write(layout: Fixtures.smallLayout(), to: path)
        let reader = try IndexReader(path: path)
        func nest(_ depth: Int) throws -> Int {
            if depth == 0 { return 0 }
            return try reader.withView { _ in try nest(depth - 1) + 1 }
        }
        #expect(try nest(200) == 200)
    }
}

enum StoreSize {
    static func of(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }
}
