import Testing
@testable import ArborRetrieval
import ArborMath
import CArborKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Test data

/// Seeded generator for test data (HNSWSplitMix64).
private struct TestRNG {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Float { Float(Double(next() >> 11) / 9_007_199_254_740_992.0) }
    mutating func gaussian() -> Float {
        let u = max(uniform(), 1e-7), v = uniform()
        return (-2 * logf(u)).squareRoot() * cosf(2 * .pi * v)
    }
}

/// `n` points around `clusters` centres c ~ N(0, I), point = c + sigma · N(0, I) (the peers' generator),
/// with norms scaled by a random factor in [0.5, 1.5] when `unevenNorms`; plus `queries` fresh draws.
private func clusteredData(
    n: Int, queries: Int, d: Int, clusters: Int = 30, sigma: Float = 0.5, unevenNorms: Bool = false, seed: UInt64 = 7
) -> (items: Matrix, queries: [[Float]]) {
    var rng = TestRNG(state: seed)
    let centres = (0..<clusters).map { _ in (0..<d).map { _ in rng.gaussian() } }
    func draw() -> [Float] {
        let c = centres[Int(rng.next() % UInt64(clusters))]
        var v = c.map { $0 + sigma * rng.gaussian() }
        if unevenNorms {
            let s = 0.5 + rng.uniform()
            v = v.map { $0 * s }
        }
        return v
    }
    let rows = (0..<n).map { _ in draw() }
    let qs = (0..<queries).map { _ in draw() }
    return (try! Matrix(cols: d, rowArrays: rows), qs)
}

private func dot(_ a: ArraySlice<Float>, _ b: [Float]) -> Float {
    var s: Float = 0
    for (x, y) in zip(a, b) { s += x * y }
    return s
}

private func cosine(_ a: ArraySlice<Float>, _ b: [Float]) -> Float {
    dot(a, b) / (dot(a, Array(a)).squareRoot() * dot(b[...], b).squareRoot())
}

/// Exact top-k item ids (ids = row numbers) by `score`, skipping `skip`.
private func exactTopK(
    _ items: Matrix, _ q: [Float], k: Int, skip: Set<Int> = [], score: (ArraySlice<Float>, [Float]) -> Float = dot
) -> [Int] {
    var scored = [(Int, Float)]()
    for r in 0..<items.rows where !skip.contains(r) { scored.append((r, score(items.row(r), q))) }
    scored.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
    return scored.prefix(k).map(\.0)
}

private func recall(
    _ index: HNSWIndex, _ items: Matrix, _ queries: [[Float]], k: Int, ef: Int,
    score: (ArraySlice<Float>, [Float]) -> Float = dot
) throws -> Double {
    var hits = 0
    for q in queries {
        let truth = Set(exactTopK(items, q, k: k, score: score))
        let found = try index.search(q, parameters: SearchParameters(k: k, efSearch: ef))
        hits += found.items.filter { truth.contains(Int($0.item.rawValue)) }.count
    }
    return Double(hits) / Double(queries.count * k)
}

// MARK: - Recall

@Suite("HNSW")
struct HNSWTests {
    @Test("inner product: recall rises with efSearch and reaches 0.99")
    func innerProductRecall() throws {
        let (items, queries) = clusteredData(n: 3000, queries: 40, d: 32, clusters: 300, sigma: 1.0)
        let index = try HNSWIndex.build(items, configuration: .init(metric: .innerProduct, m: 8, efConstruction: 64))
        let r = try [10, 40, 400].map { try recall(index, items, queries, k: 10, ef: $0) }
        print("HNSW ip recall@10 at ef 10/40/400:", r)
        #expect(r[0] < r[1] && r[1] <= r[2])
        #expect(r[2] >= 0.99)
    }

    @Test("cosine: recall rises with efSearch and reaches 0.99")
    func cosineRecall() throws {
        let (items, queries) = clusteredData(n: 3000, queries: 40, d: 32, clusters: 300, sigma: 1.0, unevenNorms: true, seed: 11)
        let index = try HNSWIndex.build(items, configuration: .init(metric: .cosine, m: 8, efConstruction: 64))
        let r = try [10, 40, 400].map { try recall(index, items, queries, k: 10, ef: $0, score: cosine) }
        print("HNSW cosine recall@10 at ef 10/40/400:", r)
        #expect(r[0] < r[1] && r[1] <= r[2])
        #expect(r[2] >= 0.99)
        // Scores are cosines.
        let top = try index.search(queries[0], parameters: SearchParameters(k: 1, efSearch: 400)).items[0]
        #expect(abs(top.score - cosine(items.row(Int(top.item.rawValue)), queries[0])) < 1e-4)
    }

    @Test("norm-augmented MIPS: exact inner-product top-1 on a small case, high recall on clusters")
    func normAugmented() throws {
        let (items, queries) = clusteredData(n: 600, queries: 30, d: 16, unevenNorms: true, seed: 3)
        let index = try HNSWIndex.build(
            items, configuration: .init(metric: .normAugmentedInnerProduct, m: 8, efConstruction: 64))
        #expect(index.storedDimension == 17)
        for q in queries {
            let exact = exactTopK(items, q, k: 1)[0]
            let got = try index.search(q, parameters: SearchParameters(k: 1, efSearch: 64))
            #expect(Int(got.items[0].item.rawValue) == exact)
            // The score is the raw inner product, recovered from the augmented space.
            let ip = dot(items.row(exact), q)
            #expect(abs(got.items[0].score - ip) <= 1e-3 * max(1, abs(ip)))
            #expect(got.statistics.modelEvaluations < items.rows)  // the graph, not the exact fallback
        }
        #expect(try recall(index, items, queries, k: 10, ef: 200) >= 0.99)
        // A later item above the bound is refused; within the bound it is accepted.
        var grown = index
        let bound = try #require(grown.normBound)
        let big = try Matrix(rows: 1, cols: 16, values: [Float](repeating: bound, count: 16))
        #expect(throws: ArborError.self) { try grown.add(big, ids: [9999]) }
        let small = try Matrix(rows: 1, cols: 16, values: [Float](repeating: 0.01, count: 16))
        try grown.add(small, ids: [9999])
        #expect(grown.count == 601)
    }

    @Test("raw inner product and norm augmentation are both measurable on the same data")
    func bothInnerProductModes() throws {
        let (items, queries) = clusteredData(n: 1500, queries: 30, d: 16, unevenNorms: true, seed: 5)
        var results: [String] = []
        for metric in [HNSWMetric.innerProduct, .normAugmentedInnerProduct] {
            let index = try HNSWIndex.build(items, configuration: .init(metric: metric, m: 12, efConstruction: 80))
            let r = try recall(index, items, queries, k: 10, ef: 40)
            results.append("\(metric.rawValue) \(r)")
            #expect(r > 0.8)
        }
        print("HNSW recall@10 ef 40 with uneven norms:", results)
    }

    // MARK: - Semantics

    @Test("deleted items are traversed but never returned")
    func deletion() throws {
        let (items, queries) = clusteredData(n: 1000, queries: 20, d: 16, seed: 21)
        var index = try HNSWIndex.build(items, configuration: .init(m: 8, efConstruction: 64))
        var deleted = Set<Int>()
        for r in stride(from: 0, to: 1000, by: 3) {
            try index.markDeleted(ItemID(UInt64(r)))
            deleted.insert(r)
        }
        try index.markDeleted(0)  // twice: no effect
        #expect(index.deletedCount == deleted.count)
        #expect(index.liveCount == 1000 - deleted.count)
        #expect(try index.isDeleted(3) && !(try index.isDeleted(1)))
        // The entry point may well be deleted; searches still start there.
        var hits = 0
        for q in queries {
            let found = try index.search(q, parameters: SearchParameters(k: 10, efSearch: 100))
            #expect(found.items.count == 10)
            #expect(found.items.allSatisfy { !deleted.contains(Int($0.item.rawValue)) })
            let truth = Set(exactTopK(items, q, k: 10, skip: deleted))
            hits += found.items.filter { truth.contains(Int($0.item.rawValue)) }.count
        }
        #expect(Double(hits) / Double(queries.count * 10) >= 0.95)
        // Exact fallback path (ef >= count) honours marks too.
        let all = try index.search(queries[0], parameters: SearchParameters(k: 2000, efSearch: 10))
        #expect(all.items.count == index.liveCount)
        #expect(all.items.allSatisfy { !deleted.contains(Int($0.item.rawValue)) })
        // k above the live count (most items deleted) returns every live item.
        var sparse = index
        for r in 0..<995 where !deleted.contains(r) { try sparse.markDeleted(ItemID(UInt64(r))) }
        #expect(sparse.liveCount == 3 && index.liveCount == 1000 - deleted.count)
        let rest = try sparse.search(queries[0], parameters: SearchParameters(k: 10, efSearch: 10))
        #expect(rest.items.map(\.item) == exactTopK(items, queries[0], k: 10, skip: Set(0..<995).union(deleted)).map { ItemID(UInt64($0)) })
        try index.unmarkDeleted(3)
        #expect(index.deletedCount == deleted.count - 1)
        #expect(throws: ArborError.unknownItem(123_456)) { try index.markDeleted(123_456) }
    }

    @Test("excluded items of the query are not returned")
    func exclusion() throws {
        let (items, queries) = clusteredData(n: 800, queries: 5, d: 16, seed: 4)
        let retriever = HNSWRetriever(index: try HNSWIndex.build(items, configuration: .init(m: 8, efConstruction: 64)))
        for q in queries {
            let first = try retriever.search(Query(vector: q), parameters: SearchParameters(k: 5, efSearch: 50))
            let excluded = Set(first.items.prefix(3).map(\.item))
            let second = try retriever.search(Query(vector: q, excluded: excluded), parameters: SearchParameters(k: 5, efSearch: 50))
            #expect(second.items.count == 5)
            #expect(second.items.allSatisfy { !excluded.contains($0.item) })
        }
    }

    @Test("efSearch below k is raised to k")
    func efRaisedToK() throws {
        let (items, queries) = clusteredData(n: 1000, queries: 5, d: 16, seed: 8)
        let index = try HNSWIndex.build(items, configuration: .init(m: 8, efConstruction: 64))
        for q in queries {
            let low = try index.search(q, parameters: SearchParameters(k: 25, efSearch: 1))
            let same = try index.search(q, parameters: SearchParameters(k: 25, efSearch: 25))
            #expect(low.items.count == 25)
            #expect(low == same)
        }
    }

    @Test("results are best first with statistics; the retriever reports its name and size")
    func retrieverContract() throws {
        let (items, queries) = clusteredData(n: 1000, queries: 5, d: 16, seed: 9)
        let retriever = HNSWRetriever(index: try HNSWIndex.build(items, configuration: .init(m: 8, efConstruction: 64)))
        #expect(retriever.name == "hnsw")
        #expect(HNSWRetriever(index: retriever.index, name: "hnsw-aug").name == "hnsw-aug")
        #expect(retriever.itemCount == 1000)
        let results = try retriever.search(batch: queries.map { Query(vector: $0) }, parameters: SearchParameters(k: 10, efSearch: 40))
        for result in results {
            #expect(result.items.count == 10)
            for (a, b) in zip(result.items, result.items.dropFirst()) {
                #expect(a.score > b.score || (a.score == b.score && a.item < b.item))
            }
            #expect(result.statistics.modelEvaluations > 0 && result.statistics.modelEvaluations < 1000)
            #expect(result.statistics.steps > 0)
        }
    }

    @Test("k larger than the item count returns every item, exactly ranked")
    func kAboveCount() throws {
        let (items, queries) = clusteredData(n: 7, queries: 3, d: 8, seed: 10)
        let index = try HNSWIndex.build(items, configuration: .init(m: 4, efConstruction: 16))
        for q in queries {
            let found = try index.search(q, parameters: SearchParameters(k: 10, efSearch: 10))
            #expect(found.items.map { Int($0.item.rawValue) } == exactTopK(items, q, k: 10))
        }
    }

    @Test("Int.max for efSearch and k is clamped before any allocation")
    func hugeKnobs() throws {
        let (items, queries) = clusteredData(n: 200, queries: 3, d: 8, seed: 11)
        var index = try HNSWIndex.build(items, configuration: .init(m: 4, efConstruction: 16))
        let retriever = HNSWRetriever(index: index)
        for q in queries {
            let all = try index.search(q, parameters: SearchParameters(k: Int.max, efSearch: Int.max))
            #expect(all.items.map { Int($0.item.rawValue) } == exactTopK(items, q, k: 200))
            let wide = try retriever.search(Query(vector: q), parameters: SearchParameters(k: 10, efSearch: Int.max))
            #expect(wide.items.map { Int($0.item.rawValue) } == exactTopK(items, q, k: 10))
            #expect(wide.statistics.modelEvaluations == 200)  // ef clamped to the node count: one exact pass
            let many = try retriever.search(Query(vector: q), parameters: SearchParameters(k: Int.max, efSearch: 1))
            #expect(many.items.count == 200)
        }
        // Deleted items: k above the live count returns the live items only.
        try index.markDeleted(3)
        let live = try index.search(queries[0], parameters: SearchParameters(k: Int.max, efSearch: Int.max))
        #expect(live.items.count == 199 && !live.items.contains { $0.item == 3 })
        // efConstruction = Int.max builds the same graph as efConstruction = the item count.
        let huge = try HNSWIndex.build(items, configuration: .init(m: 4, efConstruction: .max))
        let exact = try HNSWIndex.build(items, configuration: .init(m: 4, efConstruction: 200))
        #expect(huge.graph.layer0Neighbours == exact.graph.layer0Neighbours)
        #expect(throws: ArborError.self) { try HNSWIndex(dimension: 8, configuration: .init(m: .max)) }
    }

    @Test("empty index returns no items but still checks the query")
    func emptyIndex() throws {
        let index = try HNSWIndex(dimension: 4)
        #expect(index.count == 0 && index.maxLevel == -1)
        let result = try index.search([1, 2, 3, 4], parameters: SearchParameters(k: 5))
        #expect(result.items.isEmpty)
        #expect(throws: ArborError.dimensionMismatch(field: "query vector", expected: 4, found: 3)) {
            try index.search([1, 2, 3], parameters: SearchParameters(k: 5))
        }
        let retriever = HNSWRetriever(index: index)
        #expect(retriever.itemCount == 0)
        #expect(try retriever.search(Query(vector: [0, 0, 0, 1]), parameters: .init()).items.isEmpty)
    }

    @Test("bad queries and items throw typed errors")
    func badInputs() throws {
        let (items, _) = clusteredData(n: 50, queries: 0, d: 8, seed: 12)
        var index = try HNSWIndex.build(items, configuration: .init(m: 4, efConstruction: 16))
        #expect(throws: ArborError.dimensionMismatch(field: "query vector", expected: 8, found: 9)) {
            try index.search([Float](repeating: 1, count: 9), parameters: SearchParameters(k: 3))
        }
        var nan = [Float](repeating: 1, count: 8)
        nan[3] = .nan
        #expect(throws: ArborError.nonFiniteValue(field: "query vector", row: 0)) {
            try index.search(nan, parameters: SearchParameters(k: 3))
        }
        #expect(throws: ArborError.self) { try index.search([Float](repeating: 1, count: 8), parameters: SearchParameters(k: 0)) }
        // Items: wrong width, NaN, duplicate ids; nothing changes on failure.
        #expect(throws: ArborError.dimensionMismatch(field: "item vectors", expected: 8, found: 3)) {
            try index.add(Matrix(rows: 1, cols: 3))
        }
        #expect(throws: ArborError.nonFiniteValue(field: "item vectors", row: 0)) {
            try index.add(Matrix(rows: 1, cols: 8, values: nan))
        }
        #expect(throws: ArborError.duplicateItem(5)) { try index.add(Matrix(rows: 1, cols: 8), ids: [5]) }
        #expect(throws: ArborError.duplicateItem(77)) { try index.add(Matrix(rows: 2, cols: 8), ids: [77, 77]) }
        #expect(index.count == 50)
        // Cosine: zero vectors have no direction.
        var cos = try HNSWIndex(dimension: 2, configuration: .init(metric: .cosine))
        #expect(throws: ArborError.self) { try cos.add(Matrix(rows: 1, cols: 2)) }
        try cos.add(Matrix(rows: 2, cols: 2, values: [1, 0, 0, 1]))
        #expect(throws: ArborError.self) { try cos.search([0, 0], parameters: .init(k: 1)) }
        // Configuration ranges.
        #expect(throws: ArborError.self) { try HNSWIndex(dimension: 4, configuration: .init(m: 1)) }
        #expect(throws: ArborError.self) { try HNSWIndex(dimension: 0) }
    }

    // MARK: - Graph export and invariants

    @Test("graph round trip gives the same answers; the checker rejects corrupted graphs")
    func graphRoundTrip() throws {
        let (items, queries) = clusteredData(n: 500, queries: 5, d: 8, seed: 13)
        var index = try HNSWIndex.build(
            items, ids: (0..<500).map { ItemID(UInt64(1000 + $0)) }, configuration: .init(m: 6, efConstruction: 32))
        try index.markDeleted(1004)
        let graph = index.graph
        try graph.validate()
        #expect(graph.count == 500 && graph.levels.contains { $0 > 0 })
        #expect(index.graphBytes >= 500 * (8 * 4 + 12 * 4 + 8))
        let restored = try HNSWIndex(graph: graph)
        #expect(restored.graph == graph)
        #expect(restored.deletedCount == 1 && restored.maxLevel == index.maxLevel)
        for q in queries {
            let p = SearchParameters(k: 10, efSearch: 30)
            #expect(try restored.search(q, parameters: p) == index.search(q, parameters: p))
        }

        func rejects(_ name: String, _ corrupt: (inout HNSWGraph) -> Void) {
            var bad = graph
            corrupt(&bad)
            do {
                _ = try HNSWIndex(graph: bad)
                Issue.record("corrupted graph accepted: \(name)")
            } catch {
                switch error {
                case let .invalidArgument(n, _): #expect(n == name)
                case let .dimensionMismatch(field, _, _): #expect(field == name)
                default: #expect(name == "\(error)")
                }
            }
        }
        let m0 = graph.configuration.maxNeighboursLayer0
        rejects("graph.neighbours") { $0.layer0Neighbours[0] = 500 }
        rejects("graph.neighbours") { $0.layer0Neighbours[3 * m0] = 3 }  // self loop
        rejects("graph.counts") { $0.layer0Counts[7] = Int32(m0 + 1) }
        rejects("graph.counts") { $0.upperCounts[0] = -1 }
        let top = graph.levels.max()!
        let low = Int32(graph.levels.firstIndex { $0 < top }!)
        rejects("graph.entryPoint") { $0.entryPoint = low }
        rejects("graph.entryPoint") { $0.entryPoint = 500 }
        rejects("graph.vectors") { $0.vectors.removeLast() }
        rejects("graph.upperNeighbours") { $0.levels[Int(low)] += 1; $0.upperCounts.append(0) }
        rejects("graph.levels") { $0.levels[1] = -1 }
        // A layer-1 neighbour must live on layer 1.
        rejects("graph.neighbours") { g in
            let firstUpper = g.levels.firstIndex { $0 > 0 }!
            let block = g.levels[..<firstUpper].reduce(0) { $0 + Int($1) }
            let ground = Int32(g.levels.firstIndex { $0 == 0 }!)
            g.upperNeighbours[block * g.configuration.m] = ground
            g.upperCounts[block] = max(g.upperCounts[block], 1)
        }
        do {
            var bad = graph
            bad.vectors[5] = .nan
            #expect(throws: ArborError.nonFiniteValue(field: "graph.vectors", row: 0)) { try HNSWIndex(graph: bad) }
            bad = graph
            bad.ids[2] = bad.ids[1]
            #expect(throws: ArborError.duplicateItem(1001)) { try HNSWIndex(graph: bad) }
        }
        // Empty graph round trip.
        let empty = try HNSWIndex(dimension: 3).graph
        #expect(empty.entryPoint == -1)
        #expect(try HNSWIndex(graph: empty).count == 0)
    }

    // MARK: - Build

    @Test("one-thread builds are deterministic for a seed: identical neighbour lists")
    func deterministicBuild() throws {
        let (items, _) = clusteredData(n: 800, queries: 0, d: 16, seed: 14)
        // The default kernel (.automatic): chosen by CPU features, so both builds use the same one.
        let configuration = HNSWConfiguration(m: 8, efConstruction: 40, seed: 42, buildThreads: 1)
        let a = try HNSWIndex.build(items, configuration: configuration).graph
        let b = try HNSWIndex.build(items, configuration: configuration).graph
        #expect(a.levels == b.levels && a.entryPoint == b.entryPoint)
        #expect(a.layer0Counts == b.layer0Counts && a.layer0Neighbours == b.layer0Neighbours)
        #expect(a.upperCounts == b.upperCounts && a.upperNeighbours == b.upperNeighbours)
        #expect(a == b)
        var other = configuration
        other.seed = 43
        #expect(try HNSWIndex.build(items, configuration: other).graph.levels != a.levels)
    }

    @Test("adding in batches (or one item at a time) gives the same graph as one batch, with one thread")
    func incrementalAdd() throws {
        let (items, _) = clusteredData(n: 300, queries: 0, d: 8, seed: 23)
        let configuration = HNSWConfiguration(m: 6, efConstruction: 24)
        let whole = try HNSWIndex.build(items, configuration: configuration)
        var pieces = try HNSWIndex(dimension: 8, configuration: configuration)
        try pieces.add(Matrix(rows: 100, cols: 8, values: Array(items.values[0 ..< 800])))
        for r in 100..<300 { try pieces.add(Matrix(rows: 1, cols: 8, values: Array(items.row(r)))) }
        #expect(pieces.graph == whole.graph)
    }

    @Test("two-thread build gives a valid graph with similar recall")
    func twoThreadBuild() throws {
        let (items, queries) = clusteredData(n: 2000, queries: 30, d: 32, clusters: 300, sigma: 1.0, seed: 15)
        var configuration = HNSWConfiguration(metric: .cosine, m: 8, efConstruction: 48)
        let one = try HNSWIndex.build(items, configuration: configuration)
        configuration.buildThreads = 2
        let two = try HNSWIndex.build(items, configuration: configuration)
        try two.graph.validate()
        #expect(two.count == 2000)
        // Nodes nobody links to on layer 0. Pruning makes a few in any HNSW build; a concurrent insert
        // once made more by overwriting back-links another thread had just added.
        let orphans = [one, two].map { index in
            let g = index.graph, m0 = g.configuration.maxNeighboursLayer0
            var linked = [Bool](repeating: false, count: g.count)
            linked[Int(g.entryPoint)] = true
            for i in 0..<g.count { for j in 0..<Int(g.layer0Counts[i]) { linked[Int(g.layer0Neighbours[i * m0 + j])] = true } }
            return linked.filter { !$0 }.count
        }
        print("HNSW nodes without a layer-0 in-link: 1 thread \(orphans[0]), 2 threads \(orphans[1])")
        #expect(orphans[1] <= orphans[0] + 1)
        let r1 = try recall(one, items, queries, k: 10, ef: 64, score: cosine)
        let r2 = try recall(two, items, queries, k: 10, ef: 64, score: cosine)
        print("HNSW recall@10 ef 64: 1 thread \(r1), 2 threads \(r2)")
        #expect(r2 >= r1 - 0.03)
        #expect(r2 >= 0.85)
        // Incremental add with two threads into the existing graph.
        var grown = two
        let (more, _) = clusteredData(n: 300, queries: 0, d: 32, clusters: 300, sigma: 1.0, seed: 16)
        try grown.add(more, ids: (0..<300).map { ItemID(UInt64(5000 + $0)) })
        try grown.graph.validate()
        #expect(grown.count == 2300 && two.count == 2000)  // copy-on-write: `two` unchanged
        let hit = try grown.search(Array(more.row(17)), parameters: SearchParameters(k: 1, efSearch: 64))
        #expect(hit.items.first?.item == 5017)
    }

    @Test("neighbour selection rules all build searchable graphs")
    func selectionRules() throws {
        let (items, queries) = clusteredData(n: 1000, queries: 20, d: 16, seed: 17)
        for rule in HNSWNeighbourSelection.allCases {
            let index = try HNSWIndex.build(
                items, configuration: .init(metric: .cosine, m: 8, efConstruction: 48, neighbourSelection: rule))
            try index.graph.validate()
            let r = try recall(index, items, queries, k: 10, ef: 100, score: cosine)
            #expect(r >= 0.95, "\(rule): \(r)")
        }
    }

    @Test("a cancelled build keeps the items linked before it and drops the rest")
    func cancellation() throws {
        let (items, _) = clusteredData(n: 200, queries: 0, d: 8, seed: 18)
        var index = try HNSWIndex.build(items, configuration: .init(m: 4, efConstruction: 16))
        let flag = CancellationFlag()
        flag.cancel()
        let (more, _) = clusteredData(n: 50, queries: 0, d: 8, seed: 19)
        #expect(throws: CancellationError.self) {
            try index.add(more, ids: (0..<50).map { ItemID(UInt64(900 + $0)) }, cancellation: flag)
        }
        #expect(index.count == 200 && !index.contains(900))
        try index.graph.validate()
        try index.add(more, ids: (0..<50).map { ItemID(UInt64(900 + $0)) })
        #expect(index.count == 250)
    }

    // MARK: - Kernels

    /// Tolerance of a float32 dot product of length `n` against the Double reference: relative to
    /// `Σ|a_i b_i|` (the scale of the rounding errors), `1e-5` covers `n · 2⁻²⁴` for every `n ≤ 130`.
    static let dotTolerance = 1e-5

    @Test("every kernel this CPU runs agrees with a Double reference for n in 1...130, unaligned too")
    func kernelsAgreeWithReference() throws {
        var rng = TestRNG(state: 99)
        let kernels = HNSWDotKernel.supported
        #expect(kernels.contains(.portable) && kernels.contains(.blas))
        for n in 1...130 {
            // One float of offset so that rows are not 16-, 32- or 64-byte aligned.
            let a = (0...n).map { _ in rng.gaussian() }, b = (0...n).map { _ in rng.gaussian() }
            var reference = 0.0, scale = 0.0
            for i in 1...n {
                reference += Double(a[i]) * Double(b[i])
                scale += abs(Double(a[i]) * Double(b[i]))
            }
            var results = [HNSWDotKernel: Float]()
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
                for kernel in kernels { results[kernel] = kernel.dot(pa.baseAddress! + 1, pb.baseAddress! + 1, n) }
            } }
            for (kernel, value) in results {
                #expect(abs(Double(value) - reference) <= Self.dotTolerance * scale, "\(kernel) n \(n): \(value) vs \(reference)")
            }
            // AVX2 and AVX-512 share one summation order: identical bits.
            if let x = results[.avx2], let y = results[.avx512] {
                #expect(x.bitPattern == y.bitPattern, "n \(n): avx2 \(x) avx512 \(y)")
            }
        }
    }

    @Test("the batched C kernel equals one call per row, bit for bit")
    func batchedKernel() throws {
        var rng = TestRNG(state: 5)
        let stride = 37, n = 35, rows = 9
        let base = (0..<(rows * stride)).map { _ in rng.gaussian() }
        let q = (0..<n).map { _ in rng.gaussian() }
        let order: [Int32] = [4, 0, 8, 8, 3]
        for kernel in HNSWDotKernel.supported where kernel != .blas {
            let f = kernel.function
            var out = [Float](repeating: 0, count: order.count)
            base.withUnsafeBufferPointer { pb in q.withUnsafeBufferPointer { pq in
                arbor_dot_batch(f, pq.baseAddress, pb.baseAddress, stride, order, order.count, n, &out)
                for (r, row) in order.enumerated() {
                    #expect(out[r].bitPattern == f(pq.baseAddress, pb.baseAddress! + Int(row) * stride, n).bitPattern)
                }
            } }
        }
    }

    @Test("the automatic kernel is chosen by CPU features, not by timing")
    func automaticKernelByCPU() throws {
        let best: HNSWDistanceKernel
        switch arbor_dot_best() {
        case ARBOR_DOT_AVX512: best = .avx512
        case ARBOR_DOT_AVX2: best = .avx2
        default: best = .portable
        }
        for _ in 0..<3 { #expect(try HNSWIndex(dimension: 16).resolvedKernel == best) }
        #expect(String(cString: arbor_dot_kernel_name(arbor_dot_selected())) == best.rawValue)
        // Forcing the kernel already selected succeeds and changes nothing; an invalid one fails cleanly.
        #expect(arbor_dot_force(arbor_dot_selected()) == 0)
        #expect(arbor_dot_force(arbor_dot_kernel(rawValue: 99)) == -1)
        #expect(arbor_dot_function(arbor_dot_kernel(rawValue: 99)) == nil)
        #expect(String(cString: arbor_dot_kernel_name(arbor_dot_kernel(rawValue: 99))) == "invalid")
        print("HNSW automatic kernel on this CPU:", best, "supported:", HNSWDotKernel.supported)
        // `.measured` picks one of the kernels this CPU runs.
        #expect(HNSWDotKernel.supported.map(\.configured).contains(try HNSWIndex(dimension: 16, configuration: .init(kernel: .measured)).resolvedKernel))
    }

    @Test("an explicit kernel the CPU lacks is rejected with an error naming the field")
    func unsupportedKernel() throws {
        let olderCPU: [HNSWDotKernel] = [.portable, .blas]
        for choice in [HNSWDistanceKernel.avx2, .avx512] {
            #expect {
                try HNSWDotKernel.resolve(choice, dimension: 8, available: olderCPU)
            } throws: { error in
                guard case let ArborError.invalidArgument(name, reason) = error else { return false }
                return name == "kernel" && reason.contains(choice.rawValue)
            }
        }
        #expect(try HNSWDotKernel.resolve(.automatic, dimension: 8, available: olderCPU) == .portable)
        #expect(try HNSWDotKernel.resolve(.portable, dimension: 8, available: olderCPU) == .portable)
        // On this CPU: every kernel it lacks is rejected by the index itself.
        for kernel in HNSWDotKernel.allCases where !kernel.isSupported {
            #expect(throws: ArborError.self) { try HNSWIndex(dimension: 8, configuration: .init(kernel: kernel.configured)) }
        }
    }

    @Test("indexes built with each kernel find the exact top-k; AVX2 and AVX-512 build the same graph")
    func indexesPerKernel() throws {
        let (items, queries) = clusteredData(n: 300, queries: 3, d: 17, seed: 20)
        var graphs = [HNSWDotKernel: HNSWIndex]()
        for kernel in HNSWDotKernel.supported {
            let index = try HNSWIndex.build(items, configuration: .init(m: 6, efConstruction: 32, kernel: kernel.configured))
            #expect(index.resolvedKernel == kernel.configured && index.buildKernel == kernel.configured)
            graphs[kernel] = index
            for q in queries {
                // ef = item count: an exact scan with this kernel; ids exactly, scores within tolerance.
                let found = try index.search(q, parameters: SearchParameters(k: 5, efSearch: 300))
                #expect(found.items.map { Int($0.item.rawValue) } == exactTopK(items, q, k: 5))
                for hit in found.items {
                    let row = items.row(Int(hit.item.rawValue))
                    let reference = zip(row, q).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                    let scale = zip(row, q).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
                    #expect(abs(Double(hit.score) - reference) <= Self.dotTolerance * scale)
                }
            }
        }
        if let x = graphs[.avx2], let y = graphs[.avx512] {
            #expect(x.graph.layer0Neighbours == y.graph.layer0Neighbours && x.graph.upperNeighbours == y.graph.upperNeighbours)
        }
    }

    @Test("concurrent searches agree with sequential ones")
    func concurrentSearch() async throws {
        let (items, queries) = clusteredData(n: 1000, queries: 16, d: 16, seed: 22)
        let retriever = HNSWRetriever(index: try HNSWIndex.build(items, configuration: .init(m: 8, efConstruction: 48)))
        let p = SearchParameters(k: 10, efSearch: 50)
        let sequential = try queries.map { try retriever.search(Query(vector: $0), parameters: p) }
        let concurrent = try await withThrowingTaskGroup(of: (Int, SearchResult).self) { group in
            for (i, q) in queries.enumerated() {
                group.addTask { (i, try retriever.search(Query(vector: q), parameters: p)) }
            }
            var out = [SearchResult?](repeating: nil, count: queries.count)
            for try await (i, r) in group { out[i] = r }
            return out.map { $0! }
        }
        #expect(concurrent == sequential)
    }
}
