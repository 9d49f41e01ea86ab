import Testing
@testable import ArborMath

@Suite struct TopKTests {
    @Test func keepsBestKWithDeterministicTies() {
        var s = TopKSelector(k: 3)
        for (score, id) in [(1.0, 5), (3.0, 1), (2.0, 4), (3.0, 0), (0.5, 9), (2.0, 2)] as [(Float, Int32)] {
            s.push(score: score, id: id)
        }
        let r = s.sortedResults()
        // Equal scores keep the smaller id: (3, 0) before (3, 1), and (2, 2) wins the last place over (2, 4).
        #expect(r.map(\.score) == [3, 3, 2])
        #expect(r.map(\.id) == [0, 1, 2])
    }

    @Test func matchesFullSortOnRandomData() {
        var rng = SplitMix64(seed: 7)
        for k in [1, 5, 50, 200] {
            var s = TopKSelector(k: k)
            var all: [(Float, Int32)] = []
            for i in 0..<1000 {
                let v = Float(Int(rng.next() % 100)) // many ties
                all.append((v, Int32(i)))
                s.push(score: v, id: Int32(i))
            }
            all.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
            #expect(s.sortedResults().map(\.id) == all.prefix(k).map(\.1))
        }
    }

    @Test func tieKeysDecideEqualScores() {
        var s = TopKSelector(k: 1)
        s.push(score: 1, id: 0, tieKey: 30)
        s.push(score: 1, id: 1, tieKey: 20)
        s.push(score: 1, id: 2, tieKey: 25)
        #expect(s.sortedResults().map(\.id) == [1])
    }

    @Test func hugeKDoesNotReserveMemoryUpFront() {
        var s = TopKSelector(k: 100_000_000_000)
        s.push(score: 1, id: 1)
        #expect(s.count == 1 && !s.isFull)
    }

    @Test func ignoresNaNAndHandlesZeroK() {
        var s = TopKSelector(k: 2)
        s.push(score: .nan, id: 1)
        s.push(score: 1, id: 2)
        #expect(s.sortedResults().map(\.id) == [2])
        var z = TopKSelector(k: 0)
        z.push(score: 1, id: 1)
        #expect(z.sortedResults().isEmpty)
    }
}

@Suite struct ExactScanTests {
    @Test func equalsNaiveLoopForBatchesAndBlocks() throws {
        var rng = SplitMix64(seed: 3)
        let n = 1000, d = 8, q = 5
        let items = try Matrix(rows: n, cols: d, values: (0..<(n * d)).map { _ in rng.nextUnitFloat() - 0.5 })
        let queries = try Matrix(rows: q, cols: d, values: (0..<(q * d)).map { _ in rng.nextUnitFloat() - 0.5 })
        for block in [7, 128, 4096] {
            var ws = ExactScan.Workspace()
            let got = ExactScan(blockRows: block).search(items: items, queries: queries, k: 10, workspace: &ws)
            for qi in 0..<q {
                var naive: [(Float, Int32)] = (0..<n).map { i in
                    var s: Float = 0
                    for c in 0..<d { s += items[i, c] * queries[qi, c] }
                    return (s, Int32(i))
                }
                naive.sort { $0.0 > $1.0 }
                #expect(got[qi].map(\.id) == naive.prefix(10).map(\.1))
            }
        }
    }

    /// One query takes the streaming dot-kernel path, a batch the GEMM path: both give the exact
    /// top-k (ids equal a Double reference's, scores within 1e-5 relative of it) for widths that
    /// exercise every kernel tail, and ties keep the smaller row.
    @Test(arguments: [1, 7, 16, 64, 100])
    func singleQueryStreamingPathEqualsTheReference(d: Int) throws {
        var rng = SplitMix64(seed: UInt64(d))
        let n = 3000
        let items = try Matrix(rows: n, cols: d, values: (0..<(n * d)).map { _ in rng.nextUnitFloat() - 0.5 })
        let queries = try Matrix(rows: 3, cols: d, values: (0..<(3 * d)).map { _ in rng.nextUnitFloat() - 0.5 })
        var ws = ExactScan.Workspace()
        let batch = ExactScan(blockRows: 512).search(items: items, queries: queries, k: 20, workspace: &ws)
        #expect(batch.count == 3)
        for qi in 0..<queries.rows {
            let single = try Matrix(rows: 1, cols: d, values: Array(queries.row(qi)))
            let got = ExactScan(blockRows: 512).search(items: items, queries: single, k: 20, workspace: &ws)[0]
            var reference: [(score: Double, row: Int32)] = (0..<n).map { i in
                var s = 0.0
                for c in 0..<d { s += Double(items[i, c]) * Double(queries[qi, c]) }
                return (s, Int32(i))
            }
            reference.sort { $0.score > $1.score || ($0.score == $1.score && $0.row < $1.row) }
            #expect(got.count == 20 && batch[qi].count == 20)
            #expect(got.map(\.id) == reference.prefix(20).map(\.row))
            #expect(batch[qi].map(\.id) == reference.prefix(20).map(\.row))
            for (g, r) in zip(got, reference.prefix(20)) {
                #expect(abs(Double(g.score) - r.score) <= 1e-5 * max(1, abs(r.score)))
            }
        }
        // Duplicate rows tie exactly: the smaller row comes first.
        let twins = try Matrix(rows: 4, cols: d, values: (0..<(4 * d)).map { Float(($0 % d) + 1) / Float(d) })
        let one = try Matrix(rows: 1, cols: d, values: [Float](repeating: 1, count: d))
        #expect(ExactScan().search(items: twins, queries: one, k: 3, workspace: &ws)[0].map(\.id) == [0, 1, 2])
    }

    @Test func filterSkipsRejectedRows() throws {
        let items = try Matrix(rows: 4, cols: 1, values: [4, 3, 2, 1])
        let queries = try Matrix(rows: 1, cols: 1, values: [1])
        var ws = ExactScan.Workspace()
        let got = ExactScan().search(items: items, queries: queries, k: 2, workspace: &ws) { _, row in row != 0 }
        #expect(got[0].map(\.id) == [1, 2])
    }
}

@Suite struct BalancedKMeansTests {
    @Test func sizesDifferByAtMostOne() {
        #expect(BalancedKMeans.balancedSizes(count: 10, groups: 3) == [4, 3, 3])
        #expect(BalancedKMeans.balancedSizes(count: 2, groups: 4) == [1, 1, 0, 0])
    }

    @Test(arguments: [2, 3, 8])
    func separatesPlantedClustersWithBalancedSizes(k: Int) throws {
        // k well separated clusters of 50 points each: a balanced split must recover them exactly.
        var rng = SplitMix64(seed: 11)
        let d = 4, per = 50
        var rows: [[Float]] = []
        var truth: [Int] = []
        for c in 0..<k {
            for _ in 0..<per {
                rows.append((0..<d).map { j in Float(j == c % d ? 10 * (c / d + 1) : 0) + 0.1 * rng.nextUnitFloat() })
                truth.append(c)
            }
        }
        let m = try Matrix(cols: d, rowArrays: rows)
        let groups = BalancedKMeans(k: k, seed: 1).assign(points: m)
        var counts = [Int](repeating: 0, count: k)
        for g in groups { counts[Int(g)] += 1 }
        #expect(counts.allSatisfy { $0 == per })
        // Same planted cluster ⇒ same group.
        for c in 0..<k {
            let gs = Set((0..<rows.count).filter { truth[$0] == c }.map { groups[$0] })
            #expect(gs.count == 1)
        }
    }

    @Test func partitionReordersRowsAndLabelsTogether() throws {
        var rng = SplitMix64(seed: 5)
        let n = 101, d = 3
        var m = try Matrix(rows: n, cols: d, values: (0..<(n * d)).map { _ in rng.nextUnitFloat() })
        let original = m
        var labels = (0..<n).map { Int32($0) }
        let ranges = BalancedKMeans(k: 4, seed: 2).partition(&m, labels: &labels, range: 0..<n)
        #expect(ranges.map(\.count) == [26, 25, 25, 25])
        #expect(Set(labels).count == n)
        for r in 0..<n { #expect(Array(m.row(r)) == Array(original.row(Int(labels[r])))) }
    }

    /// The in-place reordering is the stable counting sort by group: groups in order, each keeping
    /// its rows' original order (so trees are the same as with the copying sort it replaced).
    @Test func partitionIsAStableSortByGroup() throws {
        var rng = SplitMix64(seed: 9)
        for (n, k) in [(2, 2), (17, 3), (1000, 16), (4099, 7)] {
            let d = 5
            var m = try Matrix(rows: n, cols: d, values: (0..<(n * d)).map { _ in rng.nextUnitFloat() })
            let original = m
            let kmeans = BalancedKMeans(k: k, seed: 4)
            let groups = kmeans.assign(points: original)
            var labels = (0..<n).map { Int32($0) }
            _ = kmeans.partition(&m, labels: &labels, range: 0..<n)
            let expected = (0..<n).sorted { (groups[$0], $0) < (groups[$1], $1) }.map { Int32($0) }
            #expect(labels == expected, "n = \(n), k = \(k)")
            for r in 0..<n { #expect(Array(m.row(r)) == Array(original.row(Int(labels[r])))) }
        }
    }

    @Test func permuteRowsFollowsEveryCycle() {
        // destination: 0 -> 2, 1 -> 0, 2 -> 1 (one 3-cycle), 3 stays, 4 <-> 5.
        var destination: [Int32] = [2, 0, 1, 3, 5, 4]
        var rows: [Float] = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
        var labels: [Int32] = [10, 11, 12, 13, 14, 15]
        rows.withUnsafeMutableBufferPointer { r in
            labels.withUnsafeMutableBufferPointer { l in
                BalancedKMeans.permuteRows(r.baseAddress!, labels: l.baseAddress!, dimension: 2, destination: &destination)
            }
        }
        #expect(rows == [1, 1, 2, 2, 0, 0, 3, 3, 5, 5, 4, 4])
        #expect(labels == [11, 12, 10, 13, 15, 14])
    }
}
