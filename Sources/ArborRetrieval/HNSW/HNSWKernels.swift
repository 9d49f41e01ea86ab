// The dot-product kernels of HNSW and the one-time choice between them. The only raw-pointer
// arithmetic on vectors in the HNSW code is here.

import COpenBLAS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A resolved kernel (``HNSWDistanceKernel`` minus `.automatic`).
enum HNSWDotKernel: Sendable, Equatable {
    case simd
    case blas

    /// Dot product of `n` floats at `a` and `b`.
    @inline(__always)
    func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        switch self {
        case .simd: return hnswSIMDDot(a, b, n)
        case .blas: return cblas_sdot(Int32(n), a, 1, b, 1)
        }
    }

    /// The kernel for `choice` at dimension `n`; `.automatic` measures once per process and dimension.
    static func resolve(_ choice: HNSWDistanceKernel, dimension n: Int) -> HNSWDotKernel {
        switch choice {
        case .simd: return .simd
        case .blas: return .blas
        case .automatic:
            if let known = calibrated.withLock({ $0[n] }) { return known }
            let measured = measureFaster(dimension: n)
            return calibrated.withLock { cache in
                if let known = cache[n] { return known }  // another thread won the race: keep its pick
                cache[n] = measured
                return measured
            }
        }
    }

    /// Per-dimension choices of `.automatic`, for the life of the process.
    private static let calibrated = Mutex<[Int: HNSWDotKernel]>([:])

    /// Times both kernels over a small block of vectors (best of 3 trials) and returns the faster.
    static func measureFaster(dimension n: Int) -> HNSWDotKernel {
        let rows = 64
        var generator = HNSWSplitMix64(seed: 0x5eed)
        let data = (0..<(rows * max(n, 1))).map { _ in Float(generator.nextUnit()) - 0.5 }
        let query = (0..<max(n, 1)).map { _ in Float(generator.nextUnit()) - 0.5 }
        var best: [HNSWDotKernel: UInt64] = [:]
        var sink: Float = 0
        data.withUnsafeBufferPointer { d in
            query.withUnsafeBufferPointer { q in
                for _ in 0..<3 {
                    for kernel in [HNSWDotKernel.simd, .blas] {
                        let start = hnswMonotonicNanoseconds()
                        for _ in 0..<8 {
                            for r in 0..<rows { sink += kernel.dot(q.baseAddress!, d.baseAddress! + r * n, n) }
                        }
                        let elapsed = hnswMonotonicNanoseconds() - start
                        best[kernel] = min(best[kernel] ?? .max, elapsed)
                    }
                }
            }
        }
        if sink.isNaN { return .blas }  // keeps `sink` alive; never true for finite data
        return (best[.simd] ?? .max) <= (best[.blas] ?? .max) ? .simd : .blas
    }
}

/// Unrolled dot product: four `SIMD8<Float>` accumulators (32 floats per step), then 8 at a time,
/// then a scalar tail. Loads are unaligned (rows of an odd dimension are not 32-byte aligned).
@inline(__always)
func hnswSIMDDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    let pa = UnsafeRawPointer(a), pb = UnsafeRawPointer(b)
    var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
    var i = 0
    while i + 32 <= n {
        let o = i &* 4
        s0 += pa.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            * pb.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
        s1 += pa.loadUnaligned(fromByteOffset: o &+ 32, as: SIMD8<Float>.self)
            * pb.loadUnaligned(fromByteOffset: o &+ 32, as: SIMD8<Float>.self)
        s2 += pa.loadUnaligned(fromByteOffset: o &+ 64, as: SIMD8<Float>.self)
            * pb.loadUnaligned(fromByteOffset: o &+ 64, as: SIMD8<Float>.self)
        s3 += pa.loadUnaligned(fromByteOffset: o &+ 96, as: SIMD8<Float>.self)
            * pb.loadUnaligned(fromByteOffset: o &+ 96, as: SIMD8<Float>.self)
        i &+= 32
    }
    while i + 8 <= n {
        let o = i &* 4
        s0 += pa.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            * pb.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
        i &+= 8
    }
    var sum = ((s0 + s1) + (s2 + s3)).sum()
    while i < n {
        sum += a[i] * b[i]
        i &+= 1
    }
    return sum
}

/// Nanoseconds from a monotonic clock (for the one-time kernel choice only).
func hnswMonotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// HNSWSplitMix64 (Steele, Lea & Flood 2014): a small, fast, seedable generator for node levels.
struct HNSWSplitMix64: RandomNumberGenerator, Sendable, Equatable {
    private(set) var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in `(0, 1]` (never 0, so `-ln(U)` is finite).
    mutating func nextUnit() -> Double {
        Double((next() >> 11) &+ 1) * (1.0 / 9_007_199_254_740_992.0)
    }
}
