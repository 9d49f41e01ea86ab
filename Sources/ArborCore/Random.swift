import Foundation

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny 64-bit generator, used across Arbor to seed
/// ``Xoshiro256StarStar`` and to derive independent per-chunk / per-user streams.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// Internal state; any value is valid.
    public var state: UInt64

    /// A generator starting at `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// The SplitMix64 finaliser: a bijective 64-bit mixer (good avalanche), usable as a hash.
    @inlinable
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** (Blackman & Vigna 2018): the fast, seeded generator of data generation.
///
/// Deterministic across platforms and runs. Independent streams (per chunk of items, per user)
/// come from ``init(seed:stream:)``, so parallel generation gives the same output whatever the
/// number of threads.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    @usableFromInline var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64
    @usableFromInline var spareNormal: Double? = nil

    /// A generator whose 256-bit state is expanded from `seed` by SplitMix64.
    public init(seed: UInt64) {
        var sm = SplitMix64(seed: seed)
        s0 = sm.next(); s1 = sm.next(); s2 = sm.next(); s3 = sm.next()
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }
    }

    /// A generator with the given raw state (not all zero); for reproducing reference vectors.
    public init(state: (UInt64, UInt64, UInt64, UInt64)) {
        (s0, s1, s2, s3) = state
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }
    }

    /// Stream `stream` of `seed`: a generator independent of the other streams of the same seed.
    public init(seed: UInt64, stream: UInt64) {
        self.init(seed: SplitMix64.mix(seed ^ SplitMix64.mix(stream &+ 0x632B_E59B_D9B4_E019)))
    }

    /// The next 64 random bits.
    @inlinable
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// A uniform integer in `0 ..< bound` (unbiased, Lemire's method). `bound` must be > 0.
    @inlinable
    public mutating func next(below bound: UInt64) -> UInt64 {
        precondition(bound > 0, "bound must be positive")
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return m.high
    }

    /// A uniform `Double` in `[0, 1)` (53 random bits).
    @inlinable
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// A standard normal value (Box–Muller; the second value of each pair is kept for the next call).
    @inlinable
    public mutating func nextGaussian() -> Double {
        if let s = spareNormal { spareNormal = nil; return s }
        var u = nextUnit()
        while u <= 0 { u = nextUnit() }
        let v = nextUnit()
        let r = (-2 * log(u)).squareRoot()
        let a = 2 * Double.pi * v
        spareNormal = r * sin(a)
        return r * cos(a)
    }

    /// An exponential value with mean `mean`.
    @inlinable
    public mutating func nextExponential(mean: Double) -> Double {
        var u = nextUnit()
        while u <= 0 { u = nextUnit() }
        return -mean * log(u)
    }
}

extension SplitMix64 {
    /// A uniform Float in [0, 1) (24 random bits).
    @inlinable
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * (1.0 / Float(1 << 24)) }

    /// A seed derived from `seed` and `salts` (per-node or per-chunk streams): the same inputs
    /// always give the same seed, different salts give unrelated ones.
    public static func derive(_ seed: UInt64, _ salts: UInt64...) -> UInt64 {
        var s = mix(seed &+ 0x9E37_79B9_7F4A_7C15)
        for salt in salts { s = mix(s ^ mix(salt &+ 0x632B_E59B_D9B4_E019)) }
        return s
    }
}
