/// SplitMix64: a small, fast, seedable generator (Steele, Lea & Flood 2014). Deterministic for a
/// seed on every platform; used wherever Arbor needs reproducible randomness.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A uniform Float in [0, 1).
    @inline(__always)
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * (1.0 / Float(1 << 24)) }
    /// A seed derived from this seed and `salt`s (for per-node or per-chunk streams).
    public static func derive(_ seed: UInt64, _ salts: UInt64...) -> UInt64 {
        var g = SplitMix64(seed: seed)
        var s = g.next()
        for salt in salts { g = SplitMix64(seed: s ^ (salt &* 0x9E37_79B9_7F4A_7C15)); s = g.next() }
        return s
    }
}
