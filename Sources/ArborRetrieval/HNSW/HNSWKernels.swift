// The dot-product kernels of HNSW and the one-time choice between them. The kernels themselves are C
// (target CArborKernels: portable, AVX2 + FMA, AVX-512F, chosen by CPU features); this file maps the
// public ``HNSWDistanceKernel`` onto them and onto OpenBLAS.

import ArborMath
import CArborKernels
import COpenBLAS
import ArborCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The C signature every kernel shares: `(a, b, n) -> a[0..<n] · b[0..<n]`.
typealias HNSWDotFunction = @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?, Int) -> Float

/// OpenBLAS `cblas_sdot` behind the kernel signature.
private let hnswBLASDot: HNSWDotFunction = { a, b, n in cblas_sdot(Int32(n), a, 1, b, 1) }

/// A resolved kernel (``HNSWDistanceKernel`` minus `.automatic` and `.measured`).
enum HNSWDotKernel: Sendable, Equatable, Hashable, CaseIterable {
    case portable
    case avx2
    case avx512
    case blas

    /// The C kernel, `nil` for BLAS.
    var cKernel: arbor_dot_kernel? {
        switch self {
        case .portable: return ARBOR_DOT_PORTABLE
        case .avx2: return ARBOR_DOT_AVX2
        case .avx512: return ARBOR_DOT_AVX512
        case .blas: return nil
        }
    }

    /// The public name of this kernel.
    var configured: HNSWDistanceKernel {
        switch self {
        case .portable: return .portable
        case .avx2: return .avx2
        case .avx512: return .avx512
        case .blas: return .blas
        }
    }

    /// Whether this CPU (and OS) can run the kernel.
    var isSupported: Bool {
        guard let c = cKernel else { return true }
        return arbor_dot_supported(c) != 0
    }

    /// The kernels this CPU can run, in declaration order.
    static var supported: [HNSWDotKernel] { allCases.filter(\.isSupported) }

    /// The function to call; the kernel must be supported.
    var function: HNSWDotFunction {
        guard let c = cKernel else {
            BLAS.ensureConfigured()  // kernel and thread set-up before the first direct cblas_sdot
            return hnswBLASDot
        }
        guard let f = arbor_dot_function(c) else { preconditionFailure("HNSW kernel \(self) is not supported on this CPU") }
        return f
    }

    /// Dot product of `n` floats at `a` and `b`.
    @inline(__always)
    func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float { function(a, b, n) }

    /// The kernel for `choice` on this CPU (`available` = the kernels the CPU runs; tests pass a smaller
    /// set to play an older CPU).
    /// - `.automatic`: the process-wide C dispatch (`arbor_dot_selected`): the best kernel by CPU
    ///   features, unless `arbor_dot_force` fixed another. No timing.
    /// - an explicit kernel: itself, or a typed error when the CPU lacks it.
    /// - `.measured`: the fastest available kernel at `dimension`, timed once per process and dimension.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` named `"kernel"` for an explicit kernel
    ///   this CPU cannot run.
    static func resolve(
        _ choice: HNSWDistanceKernel, dimension n: Int, available: [HNSWDotKernel] = supported
    ) throws(ArborError) -> HNSWDotKernel {
        let explicit: HNSWDotKernel
        switch choice {
        case .automatic:
            let selected: HNSWDotKernel
            switch arbor_dot_selected() {
            case ARBOR_DOT_AVX512: selected = .avx512
            case ARBOR_DOT_AVX2: selected = .avx2
            default: selected = .portable
            }
            return available.contains(selected) ? selected : available.last(where: { $0 != .blas }) ?? .portable
        case .measured:
            if let known = measured.withLock({ $0[n] }) { return known }
            let fastest = measureFastest(dimension: n, among: available)
            return measured.withLock { cache in
                if let known = cache[n] { return known }  // another thread won the race: keep its pick
                cache[n] = fastest
                return fastest
            }
        case .portable: explicit = .portable
        case .avx2: explicit = .avx2
        case .avx512: explicit = .avx512
        case .blas: explicit = .blas
        }
        guard available.contains(explicit) else {
            throw .invalidArgument(
                name: "kernel",
                reason: "\(choice.rawValue) is not supported by this CPU (available: \(available.map(\.configured.rawValue).joined(separator: ", ")))")
        }
        return explicit
    }

    /// Per-dimension choices of `.measured`, for the life of the process.
    private static let measured = PosixMutex<[Int: HNSWDotKernel]>([:])  // pthread: visible to TSan

    /// Times `kernels` over a small block of vectors (best of 3 trials) and returns the fastest.
    /// Only ``HNSWDistanceKernel/measured`` calls this: its answer depends on load and CPU.
    static func measureFastest(dimension n: Int, among kernels: [HNSWDotKernel]) -> HNSWDotKernel {
        guard kernels.count > 1 else { return kernels.first ?? .portable }
        let rows = 64, d = max(n, 1)
        var generator = HNSWSplitMix64(seed: 0x5eed)
        let data = (0..<(rows * d)).map { _ in Float(generator.nextUnit()) - 0.5 }
        let query = (0..<d).map { _ in Float(generator.nextUnit()) - 0.5 }
        var best = [HNSWDotKernel: UInt64]()
        var sink: Float = 0
        data.withUnsafeBufferPointer { block in
            query.withUnsafeBufferPointer { q in
                for _ in 0..<3 {
                    for kernel in kernels {
                        let f = kernel.function
                        let start = hnswMonotonicNanoseconds()
                        for _ in 0..<8 {
                            for r in 0..<rows { sink += f(q.baseAddress!, block.baseAddress! + r * d, d) }
                        }
                        best[kernel] = min(best[kernel] ?? .max, hnswMonotonicNanoseconds() - start)
                    }
                }
            }
        }
        if sink.isNaN { return kernels[0] }  // keeps `sink` alive; never true for finite data
        return kernels.min { (best[$0] ?? .max) < (best[$1] ?? .max) }!
    }
}

/// Nanoseconds from a monotonic clock (for ``HNSWDistanceKernel/measured`` only).
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
