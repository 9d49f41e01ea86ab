/// Seeded sampling helpers over any `RandomNumberGenerator` (use ArborCore's `SplitMix64` for
/// reproducible runs). Every draw is computed here from `next()` with fixed arithmetic, so a seed
/// gives the same numbers on every platform and Swift version (the standard library's
/// `Float.random(in:using:)` does not promise that).
public enum NNRandom {
    /// A uniform `Float` in `[0, 1)` from the top 24 bits of one `next()`. O(1).
    @inlinable
    public static func unitFloat(_ rng: inout some RandomNumberGenerator) -> Float {
        Float(rng.next() >> 40) * (1.0 / Float(1 << 24))
    }

    /// A uniform `Float` in `[-limit, limit)`. O(1).
    @inlinable
    public static func uniform(_ limit: Float, _ rng: inout some RandomNumberGenerator) -> Float {
        (2 * unitFloat(&rng) - 1) * limit
    }

    /// A standard normal draw (Box–Muller, one `next()` pair per value, no cached second value so
    /// that the stream position depends only on the number of draws). O(1).
    public static func gaussian(_ rng: inout some RandomNumberGenerator) -> Float {
        // u1 in (0, 1]: avoids log(0).
        let u1 = (Double(rng.next() >> 11) + 1) * (1.0 / 9_007_199_254_740_992.0)
        let u2 = Double(rng.next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// A uniform integer in `0 ..< bound` (Lemire's multiply-shift with rejection, so unbiased).
    /// - Precondition: `bound > 0`. Expected O(1).
    public static func index(below bound: Int, _ rng: inout some RandomNumberGenerator) -> Int {
        precondition(bound > 0, "index(below:) needs a positive bound")
        let b = UInt64(bound)
        var product = rng.next().multipliedFullWidth(by: b)
        if product.low < b {
            let threshold = (0 &- b) % b
            while product.low < threshold { product = rng.next().multipliedFullWidth(by: b) }
        }
        return Int(product.high)
    }

    /// Shuffles `array` in place (Fisher–Yates with ``index(below:_:)``). O(n).
    public static func shuffle<T>(_ array: inout [T], _ rng: inout some RandomNumberGenerator) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            let j = index(below: i + 1, &rng)
            if i != j { array.swapAt(i, j) }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
