import Dispatch
import Foundation

/// Balanced k-means: splits a set of points into `k` groups whose sizes differ by at most one
/// (sizes `ceil(n/k)` for the first `n % k` groups, `floor(n/k)` for the rest), with centres
/// learned by Lloyd iterations under that size constraint. The tree builders call it once per node
/// (TDM: recursive balanced 2-means; any fan-out 2...64).
///
/// Assignment under the size constraint: for `k = 2`, points are ranked by how much closer they
/// are to centre 0 than to centre 1 and the first `size0` go to 0 (TDM's median split); for
/// `k > 2`, points in order of regret (the gap between their best and second-best centre, largest
/// first, ties by index) each take their closest centre that still has room. Centres are fitted on a sample of at most ``sampleLimit`` points, then every point is
/// assigned once. Complexity per call: O(iterations · min(n, sampleLimit) · k · d) for the fit
/// (GEMMs) plus O(n · k · d) and a sort of `n · k` pairs for the final assignment.
public struct BalancedKMeans: Sendable {
    /// Number of groups (>= 2).
    public var k: Int
    /// Lloyd iterations at most (stops early when the assignment no longer changes).
    public var iterations: Int
    /// Points used to fit the centres (the final assignment uses all).
    public var sampleLimit: Int
    /// Seed of the initialisation (k-means++ on the sample).
    public var seed: UInt64

    /// A splitter into `k >= 2` groups; see the properties for the other knobs.
    public init(k: Int, iterations: Int = 10, sampleLimit: Int = 32_768, seed: UInt64 = 0) {
        precondition(k >= 2, "balanced k-means needs k >= 2")
        self.k = k
        self.iterations = iterations
        self.sampleLimit = sampleLimit
        self.seed = seed
    }

    /// Sizes of the `k` groups for `n` points: the first `n % k` get one more.
    public static func balancedSizes(count n: Int, groups k: Int) -> [Int] {
        let q = n / k, r = n % k
        return (0..<k).map { $0 < r ? q + 1 : q }
    }

    /// Assigns each of the `n` rows of `points` (row-major `n × d`) to a group in `0 ..< min(k, n)`
    /// with balanced sizes. Returns the group of each row.
    public func assign(points: Matrix) -> [Int32] {
        points.withUnsafeBufferPointer { p in
            assign(points: p.baseAddress!, count: points.rows, dimension: points.cols, seed: seed)
        }
    }

    /// Reorders rows `range` of `matrix` (and the same positions of `labels`) so that each group is
    /// contiguous, groups in order 0, 1, ...; returns the groups' row ranges (at most `k`, each
    /// non-empty). Rows outside `range` are untouched, so disjoint ranges may be split concurrently
    /// through ``partitionConcurrently(_:labels:ranges:seeds:)``.
    public func partition(_ matrix: inout Matrix, labels: inout [Int32], range: Range<Int>) -> [Range<Int>] {
        let d = matrix.cols
        return matrix.withUnsafeMutableBufferPointer { m in
            labels.withUnsafeMutableBufferPointer { l in
                partition(rows: m.baseAddress!, labels: l.baseAddress!, dimension: d, range: range, seed: seed)
            }
        }
    }

    /// Splits many disjoint row ranges of `matrix` at once (in parallel over ranges), each with its
    /// own seed (`seeds[i]` for `ranges[i]`). Returns the child ranges of each input range.
    /// Safe whatever ``BLAS/threads`` is: the worker threads call BLAS with one thread each.
    /// - Precondition: the ranges do not overlap.
    public func partitionConcurrently(
        _ matrix: inout Matrix, labels: inout [Int32], ranges: [Range<Int>], seeds: [UInt64]
    ) -> [[Range<Int>]] {
        precondition(ranges.count == seeds.count)
        let d = matrix.cols
        var results = [[Range<Int>]](repeating: [], count: ranges.count)
        matrix.withUnsafeMutableBufferPointer { m in
            labels.withUnsafeMutableBufferPointer { l in
                results.withUnsafeMutableBufferPointer { out in
                    let box = SendableBox(rows: m.baseAddress!, labels: l.baseAddress!, out: out.baseAddress!)
                    // Ranges are spread over threads, big ones first; each thread runs its BLAS
                    // calls single-threaded (`BLAS.concurrentPerform`).
                    let work = ranges.indices.sorted { ranges[$0].count > ranges[$1].count }
                    let chunks = max(1, min(work.count, ProcessInfo.processInfo.activeProcessorCount * 4))
                    BLAS.concurrentPerform(iterations: chunks) { c in
                        var i = c
                        while i < work.count {
                            let w = work[i]
                            box.out[w] = self.partition(rows: box.rows, labels: box.labels, dimension: d,
                                                        range: ranges[w], seed: seeds[w])
                            i += chunks
                        }
                    }
                }
            }
        }
        return results
    }

    // MARK: - Internals (raw buffers stay in this file)

    private struct SendableBox: @unchecked Sendable {
        let rows: UnsafeMutablePointer<Float>
        let labels: UnsafeMutablePointer<Int32>
        let out: UnsafeMutablePointer<[Range<Int>]>
    }

    private func partition(rows: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<Int32>,
                           dimension d: Int, range: Range<Int>, seed: UInt64) -> [Range<Int>] {
        let n = range.count
        if n <= 1 { return n == 1 ? [range] : [] }
        let base = rows + range.lowerBound * d
        let groups = assign(points: UnsafePointer(base), count: n, dimension: d, seed: seed)
        let g = min(k, n)
        // Counting sort of rows by group (stable: a group keeps its rows' order), applied in place
        // by following the permutation's cycles with one spare row, so memory stays O(n) indices
        // instead of a second copy of the rows.
        var starts = [Int](repeating: 0, count: g + 1)
        for x in groups { starts[Int(x) + 1] += 1 }
        for i in 0..<g { starts[i + 1] += starts[i] }
        var next = Array(starts.dropLast())
        var destination = [Int32](repeating: 0, count: n)
        for i in 0..<n {
            destination[i] = Int32(next[Int(groups[i])])
            next[Int(groups[i])] += 1
        }
        Self.permuteRows(base, labels: labels + range.lowerBound, dimension: d, destination: &destination)
        return (0..<g).map { (range.lowerBound + starts[$0]) ..< (range.lowerBound + starts[$0 + 1]) }
    }

    /// Moves row `i` (and label `i`) to position `destination[i]`, in place, for a permutation
    /// `destination` of `0 ..< n`. Each cycle is walked once with one spare row; a moved row's
    /// entry is set to its own index, marking it done. O(n · d) moves, O(d) extra memory.
    static func permuteRows(_ rows: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<Int32>, dimension d: Int,
                            destination: inout [Int32]) {
        let n = destination.count
        let spare = UnsafeMutablePointer<Float>.allocate(capacity: max(d, 1))
        defer { spare.deallocate() }
        for start in 0..<n where Int(destination[start]) != start {
            // Carry the row at `start` along its cycle: at each step it lands on its destination,
            // and the row found there is carried on.
            spare.update(from: rows + start * d, count: d)
            var carriedLabel = labels[start]
            var at = start
            while true {
                let to = Int(destination[at])
                destination[at] = Int32(at)
                if to == start {
                    (rows + start * d).update(from: spare, count: d)
                    labels[start] = carriedLabel
                    break
                }
                // Swap the carried row with the one at `to`.
                for j in 0..<d { let t = rows[to * d + j]; rows[to * d + j] = spare[j]; spare[j] = t }
                swap(&carriedLabel, &labels[to])
                at = to
            }
        }
    }

    private func assign(points: UnsafePointer<Float>, count n: Int, dimension d: Int, seed: UInt64) -> [Int32] {
        let g = min(k, n)
        if n <= k { return (0..<n).map { Int32($0) } }
        var rng = SplitMix64(seed: seed)
        // Sample (without replacement, by a partial shuffle of indices) for fitting.
        let m = min(n, sampleLimit)
        var sampleIndex = Array(0..<n)
        if m < n {
            for i in 0..<m {
                let j = i + Int(rng.next() % UInt64(n - i))
                sampleIndex.swapAt(i, j)
            }
        }
        var sample = [Float](repeating: 0, count: m * d)
        for i in 0..<m {
            for c in 0..<d { sample[i * d + c] = points[sampleIndex[i] * d + c] }
        }
        var centres = kMeansPlusPlus(sample, count: m, dimension: d, groups: g, rng: &rng)
        var sampleGroups = [Int32](repeating: -1, count: m)
        var cost = [Float](repeating: 0, count: m * g)
        for _ in 0..<max(1, iterations) {
            computeCosts(sample, count: m, dimension: d, centres: centres, groups: g, into: &cost)
            let newGroups = balancedAssignment(cost: cost, count: m, groups: g)
            if newGroups == sampleGroups { break }
            sampleGroups = newGroups
            centres = means(sample, count: m, dimension: d, groups: sampleGroups, groupCount: g, previous: centres)
        }
        if m == n {
            // The sample is a permutation of all points only when m < n; here it is the identity.
            return sampleGroups
        }
        var allCost = [Float](repeating: 0, count: n * g)
        computeCosts(points, count: n, dimension: d, centres: centres, groups: g, into: &allCost)
        return balancedAssignment(cost: allCost, count: n, groups: g)
    }

    /// `cost[i, c] = ‖centre_c‖² − 2 x_i · centre_c` (squared distance up to a per-point constant).
    private func computeCosts(_ x: [Float], count n: Int, dimension d: Int, centres: [Float], groups g: Int,
                              into cost: inout [Float]) {
        x.withUnsafeBufferPointer { computeCosts($0.baseAddress!, count: n, dimension: d, centres: centres, groups: g, into: &cost) }
    }

    /// As above, over `n × d` points read in place (no copy of the points).
    private func computeCosts(_ x: UnsafePointer<Float>, count n: Int, dimension d: Int, centres: [Float], groups g: Int,
                              into cost: inout [Float]) {
        precondition(cost.count >= n * g && centres.count >= g * d)
        centres.withUnsafeBufferPointer { pc in
            cost.withUnsafeMutableBufferPointer { out in
                BLAS.gemm(transposeA: false, transposeB: true, m: n, n: g, k: d, alpha: -2, a: x, lda: d,
                          b: pc.baseAddress!, ldb: d, beta: 0, c: out.baseAddress!, ldc: g)
            }
        }
        for c in 0..<g {
            var s: Float = 0
            for j in 0..<d { s += centres[c * d + j] * centres[c * d + j] }
            var i = c
            while i < n * g { cost[i] += s; i += g }
        }
    }

    private func balancedAssignment(cost: [Float], count n: Int, groups g: Int) -> [Int32] {
        let sizes = BalancedKMeans.balancedSizes(count: n, groups: g)
        var result = [Int32](repeating: 0, count: n)
        if g == 2 {
            // Rank by preference for group 0; ties by index for determinism.
            let preference = (0..<n).map { cost[$0 * 2] - cost[$0 * 2 + 1] }
            let order = (0..<n).sorted { a, b in
                preference[a] < preference[b] || (preference[a] == preference[b] && a < b)
            }
            for (rank, i) in order.enumerated() { result[i] = rank < sizes[0] ? 0 : 1 }
            return result
        }
        // Points with the strongest preference (largest gap between their best and second-best
        // centre) choose first; each takes its closest centre that still has room. O(n·k + n log n).
        var best = [Int32](repeating: 0, count: n)
        var regret = [Float](repeating: 0, count: n)
        for i in 0..<n {
            var b0 = Float.infinity, b1 = Float.infinity, arg = 0
            for c in 0..<g {
                let v = cost[i * g + c]
                if v < b0 { b1 = b0; b0 = v; arg = c } else if v < b1 { b1 = v }
            }
            best[i] = Int32(arg)
            regret[i] = b1 - b0
        }
        let order = (0..<n).sorted { regret[$0] > regret[$1] || (regret[$0] == regret[$1] && $0 < $1) }
        var room = sizes
        for i in order {
            var c = Int(best[i])
            if room[c] == 0 {
                var bestCost = Float.infinity
                for alt in 0..<g where room[alt] > 0 && cost[i * g + alt] < bestCost {
                    bestCost = cost[i * g + alt]
                    c = alt
                }
            }
            room[c] -= 1
            result[i] = Int32(c)
        }
        return result
    }

    private func means(_ x: [Float], count n: Int, dimension d: Int, groups: [Int32], groupCount g: Int,
                       previous: [Float]) -> [Float] {
        var sums = [Float](repeating: 0, count: g * d)
        var counts = [Int](repeating: 0, count: g)
        for i in 0..<n {
            let c = Int(groups[i])
            counts[c] += 1
            for j in 0..<d { sums[c * d + j] += x[i * d + j] }
        }
        for c in 0..<g {
            if counts[c] == 0 {
                for j in 0..<d { sums[c * d + j] = previous[c * d + j] }
            } else {
                let inv = 1 / Float(counts[c])
                for j in 0..<d { sums[c * d + j] *= inv }
            }
        }
        return sums
    }

    /// k-means++ seeding (Arthur & Vassilvitskii 2007) on `n` points.
    private func kMeansPlusPlus(_ x: [Float], count n: Int, dimension d: Int, groups g: Int,
                                rng: inout SplitMix64) -> [Float] {
        var centres = [Float](repeating: 0, count: g * d)
        var first = Int(rng.next() % UInt64(n))
        for j in 0..<d { centres[j] = x[first * d + j] }
        var best = [Float](repeating: .infinity, count: n)
        for c in 1..<g {
            var total: Double = 0
            for i in 0..<n {
                var s: Float = 0
                for j in 0..<d { let t = x[i * d + j] - centres[(c - 1) * d + j]; s += t * t }
                if s < best[i] { best[i] = s }
                total += Double(best[i])
            }
            var pick = Int(rng.next() % UInt64(n))
            if total > 0 {
                var target = Double(rng.nextUnitFloat()) * total
                for i in 0..<n {
                    target -= Double(best[i])
                    if target <= 0 { pick = i; break }
                }
            }
            first = pick
            for j in 0..<d { centres[c * d + j] = x[pick * d + j] }
        }
        return centres
    }
}
