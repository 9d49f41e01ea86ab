import Testing
@testable import ArborMath

/// `PartialTopK` must keep exactly the set `TopKSelector` keeps (beam search swapped one for the
/// other), on data with many ties, NaNs, signed zeros and adversarial orders.
@Suite struct PartialTopKTests {
    /// The heap's selection, as (score, position) in its order: best first.
    private func heapSelection(_ scores: [Float], k: Int, keys: [UInt64]) -> [Int32] {
        var heap = TopKSelector(k: k)
        for (i, s) in scores.enumerated() { heap.push(score: s, id: Int32(i), tieKey: keys[i]) }
        return heap.sortedResults().map(\.id)
    }

    private func partialSelection(_ scores: [Float], k: Int, keys: [UInt64]) -> [Int32] {
        var selection = PartialTopK()
        var kept: [Int32] = []
        scores.withUnsafeBufferPointer { selection.select(k: k, scores: $0, tieKey: { keys[$0] }, into: &kept) }
        return kept
    }

    @Test func keepsTheHeapsSetOnRandomDataWithTies() {
        var rng = SplitMix64(seed: 11)
        for n in [1, 2, 7, 100, 1000, 6400] {
            for k in [0, 1, 3, 16, 400, n, n + 5] {
                for distinct in [3, 50, 1_000_000] {
                    let scores = (0..<n).map { _ -> Float in
                        let r = rng.next() % 1000
                        if r == 0 { return .nan }
                        if r == 1 { return -0.0 }
                        return Float(Int(rng.next() % UInt64(distinct))) - Float(distinct / 2)
                    }
                    // Distinct keys in a random order (with equal keys the heap's pick among equal
                    // pairs depends on push order, and either pick would be right).
                    let keys = (0..<n).map { UInt64($0) }.shuffled(using: &rng)
                    let heap = heapSelection(scores, k: k, keys: keys)
                    let partial = partialSelection(scores, k: k, keys: keys)
                    #expect(Set(partial) == Set(heap), "n = \(n), k = \(k), distinct = \(distinct)")
                    #expect(partial.count == heap.count)
                    #expect(partial.allSatisfy { !scores[Int($0)].isNaN })
                }
            }
        }
    }

    @Test func orderIsBetterFirstByPositionThenTiesByKey() {
        // Position:        0    1    2    3    4    5
        let scores: [Float] = [2, 5, 2, 9, 2, 1]
        let keys: [UInt64] = [30, 0, 10, 0, 20, 0]
        // Best 4: 9 and 5 (positions 1, 3 in position order), then two of the three 2s by key: 2 (10), 4 (20).
        #expect(partialSelection(scores, k: 4, keys: keys) == [1, 3, 2, 4])
    }

    @Test func sortedAndReversedAndConstantInputs() {
        for n in [10, 1000, 5000] {
            let up = (0..<n).map { Float($0) }
            let keys = (0..<n).map { UInt64($0) }
            #expect(Set(partialSelection(up, k: 7, keys: keys)) == Set((n - 7 ..< n).map { Int32($0) }))
            #expect(Set(partialSelection(up.reversed(), k: 7, keys: keys)) == Set((0 ..< 7).map { Int32($0) }))
            let flat = [Float](repeating: 0.5, count: n)
            #expect(partialSelection(flat, k: 7, keys: keys) == (0 ..< 7).map { Int32($0) })
        }
    }

    @Test func allNaNOrEmptyKeepsNothing() {
        #expect(partialSelection([.nan, .nan], k: 1, keys: [0, 1]).isEmpty)
        #expect(partialSelection([], k: 3, keys: []).isEmpty)
        #expect(partialSelection([.nan, 1, .nan], k: 2, keys: [0, 1, 2]) == [1])
    }

    @Test func kthLargestEqualsSortedPosition() {
        var rng = SplitMix64(seed: 3)
        for n in [1, 2, 3, 64, 999] {
            let values = (0..<n).map { _ in Float(Int(rng.next() % 20)) }
            let sorted = values.sorted(by: >)
            for k in Set([1, n / 2 + 1, n]) {
                var copy = values
                let t = copy.withUnsafeMutableBufferPointer { PartialTopK.kthLargest($0, k: k) }
                #expect(t == sorted[k - 1])
            }
        }
    }
}
