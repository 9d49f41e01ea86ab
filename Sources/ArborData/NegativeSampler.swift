import Foundation

/// Samples indices `0 ..< count` from a fixed discrete distribution in O(1) per draw
/// (Walker's alias method; Vose's construction, O(count) time and memory).
public struct AliasSampler: Sendable {
    /// Probability of each index (normalised weights).
    public let probabilities: [Double]
    private let threshold: [Double]
    private let alias: [Int32]

    /// A sampler over non-negative `weights` (at least one positive, all finite).
    /// - Throws: ``DataError/invalidArgument(name:reason:)`` otherwise.
    public init(weights: [Double]) throws(DataError) {
        let n = weights.count
        guard n > 0, n < Int(Int32.max) else { throw .invalidArgument(name: "weights", reason: "need 1 ..< 2^31 weights, got \(n)") }
        var total = 0.0
        for (i, w) in weights.enumerated() {
            guard w >= 0, w.isFinite else { throw .invalidArgument(name: "weights", reason: "weight \(i) is \(w)") }
            total += w
        }
        guard total > 0 else { throw .invalidArgument(name: "weights", reason: "all weights are zero") }
        probabilities = weights.map { $0 / total }
        var scaled = probabilities.map { $0 * Double(n) }
        var threshold = [Double](repeating: 1, count: n)
        var alias = [Int32](repeating: 0, count: n)
        var small = [Int](), large = [Int]()
        for i in 0 ..< n { if scaled[i] < 1 { small.append(i) } else { large.append(i) } }
        while let s = small.popLast() {
            guard let l = large.last else { threshold[s] = 1; alias[s] = Int32(s); continue }
            threshold[s] = scaled[s]
            alias[s] = Int32(l)
            scaled[l] -= 1 - scaled[s]
            if scaled[l] < 1 { large.removeLast(); small.append(l) }
        }
        for l in large { threshold[l] = 1; alias[l] = Int32(l) }
        self.threshold = threshold
        self.alias = alias
    }

    /// Number of indices.
    public var count: Int { probabilities.count }

    /// One draw. O(1).
    @inlinable
    public func sample(using rng: inout Xoshiro256StarStar) -> Int {
        let i = Int(rng.next(below: UInt64(count)))
        return rng.nextUnit() < thresholdAt(i) ? i : aliasAt(i)
    }

    @usableFromInline func thresholdAt(_ i: Int) -> Double { threshold[i] }
    @usableFromInline func aliasAt(_ i: Int) -> Int { Int(alias[i]) }
}

/// Negative items for sampled-softmax or BCE training, uniform or by popularity
/// (`frequency^exponent`, word2vec's 0.75 by default), with the log-probabilities that logQ
/// correction subtracts (Yi et al., RecSys 2019).
///
/// Items are dense indices `0 ..< itemCount` (see ``DenseIDMap``). Thread-safe (immutable); each
/// thread passes its own generator.
public struct NegativeSampler: Sendable {
    /// How negatives are distributed.
    public enum Distribution: Sendable, Equatable {
        /// Every item equally likely.
        case uniform
        /// Probability proportional to `(frequency + smoothing)^exponent`.
        case popularity(exponent: Double = 0.75, smoothing: Double = 1)
    }

    private let sampler: AliasSampler?
    /// Number of items.
    public let itemCount: Int

    /// A sampler over `itemCount` items; `frequencies` (one per item) is required for popularity.
    /// - Throws: ``DataError/invalidArgument(name:reason:)`` for no items, or frequencies of the
    ///   wrong length, negative, or all zero after smoothing.
    public init(itemCount: Int, distribution: Distribution = .uniform, frequencies: [Int] = []) throws(DataError) {
        guard itemCount >= 1 else { throw .invalidArgument(name: "itemCount", reason: "must be >= 1, got \(itemCount)") }
        self.itemCount = itemCount
        switch distribution {
        case .uniform:
            sampler = nil
        case let .popularity(exponent, smoothing):
            guard frequencies.count == itemCount else {
                throw .invalidArgument(name: "frequencies", reason: "\(frequencies.count) values for \(itemCount) items")
            }
            guard exponent >= 0, smoothing >= 0 else {
                throw .invalidArgument(name: "popularity", reason: "exponent and smoothing must be >= 0")
            }
            sampler = try AliasSampler(weights: frequencies.map { pow(Double(max(0, $0)) + smoothing, exponent) })
        }
    }

    /// Probability of drawing `item`.
    public func probability(of item: Int) -> Double {
        sampler?.probabilities[item] ?? 1 / Double(itemCount)
    }

    /// `log(probability)` for logQ correction (subtract it from the logit of a sampled item).
    public func logProbability(of item: Int) -> Float { Float(log(probability(of: item))) }

    /// One draw. O(1).
    public func sample(using rng: inout Xoshiro256StarStar) -> Int {
        sampler?.sample(using: &rng) ?? Int(rng.next(below: UInt64(itemCount)))
    }

    /// `count` draws (with replacement) that avoid `excluded` (e.g. the user's positives) by
    /// rejection, giving up on an item after 64 tries per slot (then accepting it) so a tiny
    /// catalogue cannot loop forever.
    public func sample(_ count: Int, excluding excluded: Set<Int> = [], using rng: inout Xoshiro256StarStar) -> [Int] {
        var out = [Int]()
        out.reserveCapacity(count)
        for _ in 0 ..< count {
            var x = sample(using: &rng)
            var tries = 1
            while excluded.contains(x), tries < 64 { x = sample(using: &rng); tries += 1 }
            out.append(x)
        }
        return out
    }
}
