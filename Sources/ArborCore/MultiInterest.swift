import Foundation

/// Rules shared by the training and serving sides of multi-interest models (MIND).
public enum MultiInterest {
    /// MIND's dynamic interest count `K'_u = max(1, min(K, ⌊log₂ |I_u|⌋))` for a history of
    /// `historyLength` known behaviours and at most `maxInterests` interests (`K`). A history of
    /// 0 or 1 behaviour gets one interest. O(1).
    public static func activeInterests(historyLength: Int, maxInterests: Int) -> Int {
        guard historyLength >= 2, maxInterests > 1 else { return 1 }
        let log2 = Int.bitWidth - 1 - historyLength.leadingZeroBitCount  // ⌊log₂ n⌋ for n ≥ 1
        return max(1, min(maxInterests, log2))
    }

    /// The fixed routing logits of MIND's behaviour-to-interest routing: `length × interests`
    /// values drawn from N(0, 1) by SplitMix64(`seed`) (Box–Muller), row-major (row = behaviour
    /// position, oldest first). Drawn once per model and stored with it, so that training and
    /// serving route identically and inference is deterministic. O(length · interests).
    public static func routingLogits(length: Int, interests: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        var out = [Float]()
        out.reserveCapacity(length * interests)
        while out.count < length * interests {
            // Box–Muller on two uniforms in (0, 1].
            let u1 = (Double(rng.next() >> 11) + 1) / 9_007_199_254_740_992.0
            let u2 = Double(rng.next() >> 11) / 9_007_199_254_740_992.0
            let r = (-2 * Foundation.log(u1)).squareRoot()
            out.append(Float(r * Foundation.cos(2 * Double.pi * u2)))
            if out.count < length * interests { out.append(Float(r * Foundation.sin(2 * Double.pi * u2))) }
        }
        return out
    }
}
