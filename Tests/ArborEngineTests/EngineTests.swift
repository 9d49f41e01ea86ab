import ArborInference
import ArborEngine
import ArborMath
import ArborRetrieval
import Dispatch
import Foundation
import Testing

private func randomMatrix(rows: Int, cols: Int, seed: UInt64) -> Matrix {
    var rng = SplitMix64(seed: seed)
    return try! Matrix(rows: rows, cols: cols, values: (0..<(rows * cols)).map { _ in rng.nextUnitFloat() * 2 - 1 })
}

private func temporaryIndexPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("arbor-engine-\(name)-\(getpid())-\(UInt64.random(in: 0 ... .max)).arbor").path
}

private func removeIndex(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
    try? FileManager.default.removeItem(atPath: path + "-lock")
}

/// A vector index over `n` random items (ids 100, 101, ...), fan-out 4, optionally with an HNSW graph.
private struct VectorIndexFixture {
    let n = 240, d = 8
    let items: Matrix
    let ids: [ItemID]
    let path: String

    init(graph: Bool = false) throws {
        items = randomMatrix(rows: n, cols: d, seed: 7)
        ids = (0..<n).map { ItemID(UInt64(100 + $0)) }
        path = temporaryIndexPath("vec")
        let tree = try TreeBuilder.balancedKMeans(embeddings: items, items: ids, options: .init(fanOut: 4, seed: 1))
        var extra: [String: [UInt8]] = [:]
        if graph {
            let hnsw = try HNSWIndex.build(items, ids: ids, configuration: HNSWConfiguration(m: 8, efConstruction: 64, buildThreads: 1))
            extra = try HNSWPersistence.extras(for: hnsw)
        }
        try IndexWriter().write(layout: tree, extra: extra, to: path)
    }

    /// The mean of the leaf vectors of `history`'s known items.
    func meanVector(of history: [ItemID]) -> [Float] {
        let rows = history.compactMap { ids.firstIndex(of: $0) }
        var mean = [Float](repeating: 0, count: d)
        for r in rows { for c in 0..<d { mean[c] += items[r, c] } }
        return mean.map { $0 / Float(rows.count) }
    }
}

@Suite struct EngineTests {
    /// The index's producer (leaf mean pooling here) makes the query; the tree at a beam as wide as
    /// the widest level equals the exact scan; the history's own items are never returned.
    @Test func historySearchUsesTheStoredProducerAndExcludesTheHistory() throws {
        let fixture = try VectorIndexFixture()
        defer { removeIndex(fixture.path) }
        let engine = try Arbor.open(fixture.path)
        #expect(engine.nodeScorer == .innerProduct && engine.queryProducer == .leafMeanPooling)
        #expect(engine.itemCount == fixture.n && engine.dimension == fixture.d)
        let history: [ItemID] = [101, 150, 222]
        let wide = try engine.search(history: history, k: 10, using: .tree(beam: fixture.n))
        let exact = try engine.search(history: history, k: 10, using: .exact)
        #expect(wide.items.map(\.item) == exact.items.map(\.item))
        #expect(zip(wide.items, exact.items).allSatisfy { abs($0.score - $1.score) <= 1e-5 * max(1, abs($1.score)) })
        #expect(wide.items.count == 10 && Set(wide.items.map(\.item)).isDisjoint(with: history))
        // The same ranking as the exact scan of the mean vector, history excluded.
        let flat = try FlatRetriever(items: fixture.items, ids: fixture.ids)
        let reference = try flat.search(Query(vector: fixture.meanVector(of: history), excluded: Set(history)),
                                        parameters: .init(k: 10))
        #expect(exact.items.map(\.item) == reference.items.map(\.item))
        #expect(wide.unknownHistoryItems.isEmpty && !wide.usedFallbackQuery)
    }

    /// Unknown ids are ignored and reported in history order, or rejected on request; a history
    /// with no known id uses the producer's fallback (the mean of all items).
    @Test func unknownHistoryIdsAreReportedOrRejected() throws {
        let fixture = try VectorIndexFixture()
        defer { removeIndex(fixture.path) }
        let engine = try Arbor.open(fixture.path)
        let result = try engine.search(history: [9_999, 101, 8_888], k: 5)
        #expect(result.unknownHistoryItems == [9_999, 8_888])
        #expect(!result.usedFallbackQuery && result.items.count == 5)
        #expect(throws: ArborError.unknownItem(9_999)) {
            try engine.search(history: [101, 9_999], k: 5, unknownItems: .reject)
        }
        let none = try engine.search(history: [9_999], k: 5, using: .exact)
        #expect(none.usedFallbackQuery && none.items.count == 5)
        let allMean = fixture.meanVector(of: fixture.ids)
        let reference = try FlatRetriever(items: fixture.items, ids: fixture.ids).search(Query(vector: allMean), parameters: .init(k: 5))
        #expect(none.items.map(\.item) == reference.items.map(\.item))
    }

    /// Vectors: one, a matrix and a list give the same answers; the exact scan answers a batch.
    @Test func vectorSearchesAgreeAcrossForms() throws {
        let fixture = try VectorIndexFixture()
        defer { removeIndex(fixture.path) }
        let engine = try Arbor.open(fixture.path)
        let queries = randomMatrix(rows: 5, cols: fixture.d, seed: 99)
        for choice in [RetrieverChoice.tree(beam: 50), .exact] {
            let batch = try engine.search(vectors: queries, k: 7, using: choice, excluding: [100, 101])
            #expect(batch.count == 5)
            for q in 0..<queries.rows {
                let one = try engine.search(vector: Array(queries.row(q)), k: 7, using: choice, excluding: [100, 101])
                #expect(one.items.map(\.item) == batch[q].items.map(\.item))
                #expect(!one.items.contains { $0.item == 100 || $0.item == 101 })
            }
        }
    }

    /// Every knob at `Int.max` gives a result, never a trap: `k` is cut to the item count, the
    /// beam to the widest level, `efSearch` to the graph's size.
    @Test func knobsAtIntMaxAreClamped() throws {
        let fixture = try VectorIndexFixture(graph: true)
        defer { removeIndex(fixture.path) }
        let engine = try Arbor.open(fixture.path)
        let v = Array(randomMatrix(rows: 1, cols: fixture.d, seed: 3).row(0))
        let all = try engine.search(vector: v, k: .max, using: .tree(beam: .max), excluding: [100])
        #expect(all.items.count == fixture.n - 1)
        let exact = try engine.search(vector: v, k: .max, using: .exact, excluding: [100])
        #expect(exact.items.map(\.item) == all.items.map(\.item))
        let graph = try engine.search(vector: v, k: 10, using: .hnsw(efSearch: .max))
        #expect(graph.items.count == 10)
        let history = try engine.search(history: [101], k: .max, using: .tree(beam: .max))
        #expect(history.items.count == fixture.n - 1)
    }

    /// Bad knobs and calls the index cannot serve are typed errors naming the argument.
    @Test func badCallsAreTypedErrors() throws {
        let fixture = try VectorIndexFixture()
        defer { removeIndex(fixture.path) }
        let engine = try Arbor.open(fixture.path)
        let v = [Float](repeating: 0.1, count: fixture.d)
        #expect(throws: ArborError.self) { try engine.search(vector: v, k: 0) }
        #expect(throws: ArborError.self) { try engine.search(vector: v, k: 5, using: .tree(beam: 0)) }
        #expect(throws: ArborError.dimensionMismatch(field: "query vector", expected: fixture.d, found: 2)) {
            try engine.search(vector: [1, 2], k: 5)
        }
        #expect(throws: ArborError.nonFiniteValue(field: "query vector", row: 0)) {
            try engine.search(vector: [Float](repeating: .nan, count: fixture.d), k: 5)
        }
        let noGraph = captureError { _ = try engine.search(vector: v, k: 5, using: .hnsw()) }
        #expect("\(noGraph.map { "\($0)" } ?? "")".contains("no HNSW graph"))
        #expect(throws: IndexError.self) { try Arbor.open(fixture.path + ".missing") }
    }

    /// An attention index is served from a behaviour list; a vector search is refused; the tree
    /// at a full beam equals brute force with the same model.
    @Test func attentionIndexServesHistories() throws {
        let d = 6, n = 120
        let items = randomMatrix(rows: n, cols: d, seed: 11)
        let ids = (0..<n).map { ItemID(UInt64(500 + $0)) }
        let scorer = try AttentionScorer.random(dimension: d, behaviourEmbeddings: items, behaviourIDs: ids,
                                                attentionHidden: 8, hidden: [8], seed: 4)
        let tree = try TreeBuilder.balancedKMeans(embeddings: items, items: ids, options: .init(fanOut: 4, seed: 2))
        let path = temporaryIndexPath("att")
        defer { removeIndex(path) }
        try IndexWriter().write(layout: tree, tensors: scorer.namedTensors(), nodeScorer: .attention, queryProducer: .rawHistory,
                                extra: [ModelTensorNames.behaviourIDs: ModelTensorNames.encode(ids: ids)], to: path)
        let engine = try Arbor.open(path)
        #expect(engine.nodeScorer == .attention && engine.queryProducer == .rawHistory)
        let history: [ItemID] = [500, 533, 7777, 590]
        let wide = try engine.search(history: history, k: 8, using: .tree(beam: n))
        let brute = try engine.search(history: history, k: 8, using: .exact)
        #expect(wide.items.map(\.item) == brute.items.map(\.item))
        #expect(wide.unknownHistoryItems == [7777])
        #expect(Set(wide.items.map(\.item)).isDisjoint(with: history))
        #expect(throws: ArborError.self) { try engine.search(vector: [Float](repeating: 0, count: d), k: 3) }
        #expect(throws: ArborError.self) { try engine.search(history: history, k: 3, using: .hnsw()) }
    }

    /// One engine shared by several threads answers as it does alone.
    @Test func sharedAcrossThreads() throws {
        let fixture = try VectorIndexFixture()
        defer { removeIndex(fixture.path) }
        let engine = try Arbor.open(fixture.path)
        let histories: [[ItemID]] = (0..<16).map { i in [ItemID(UInt64(100 + i)), ItemID(UInt64(200 + i % 40))] }
        let alone = try histories.map { try engine.search(history: $0, k: 10).items.map(\.item) }
        let together = PosixMutex<[[ItemID]]>(Array(repeating: [], count: histories.count))
        let failures = PosixMutex(0)
        DispatchQueue.concurrentPerform(iterations: histories.count) { i in
            let choice: RetrieverChoice = i % 2 == 0 ? .tree() : .exact
            do {
                let items = try engine.search(history: histories[i], k: 10, using: choice).items.map(\.item)
                together.withLock { $0[i] = items }
            } catch { failures.withLock { $0 += 1 } }
        }
        #expect(failures.withLock { $0 } == 0)
        let exact = try histories.map { try engine.search(history: $0, k: 10, using: .exact).items.map(\.item) }
        together.withLock { results in
            for i in histories.indices { #expect(results[i] == (i % 2 == 0 ? alone[i] : exact[i])) }
        }
    }

    /// Results of several queries for one user (a multi-interest producer) merge by the best score
    /// per item: duplicates once, the best k, ties by smaller id.
    @Test func mergeKeepsTheBestScorePerItem() {
        let a = SearchResult(items: [.init(item: 5, score: 3), .init(item: 2, score: 1)], statistics: .init(modelEvaluations: 10, steps: 2))
        let b = SearchResult(items: [.init(item: 5, score: 4), .init(item: 9, score: 1), .init(item: 1, score: 1)],
                             statistics: .init(modelEvaluations: 7, steps: 3))
        let empty = SearchResult(items: [])
        let merged = ResultMerge.bestScorePerItem([a, empty, b], k: 3)
        #expect(merged.items == [.init(item: 5, score: 4), .init(item: 1, score: 1), .init(item: 2, score: 1)])
        #expect(merged.statistics == SearchStatistics(modelEvaluations: 17, steps: 5))
        #expect(ResultMerge.bestScorePerItem([b], k: 1).items == [.init(item: 5, score: 4)])
    }
}

private func captureError(_ body: () throws -> Void) -> (any Error)? {
    do { try body(); return nil } catch { return error }
}
