import Foundation
import Testing

@testable import ArborMath

/// What Arbor did about OpenBLAS's kernels is recorded consistently, and BLAS computes correctly
/// with the kernels in use (whichever this machine gets).
@Suite("BLAS kernel selection")
struct BLASCoreSelectionTests {
    @Test func selectionIsConsistentWithTheCoreInUse() {
        let selection = BLAS.coreSelection
        #expect(BLAS.coreName == selection.inUse)
        #expect(BLAS.coreSelection == selection, "decided once per process")
        switch selection.outcome {
        case .upgraded:
            #expect(selection.inUse != selection.detected)
            #expect(["Haswell", "SkylakeX", "Cooperlake", "SapphireRapids", "Zen"].contains(selection.inUse))
            #expect(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil)
        case .userChoice:
            #expect(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] != nil)
            #expect(selection.inUse == selection.detected)
        case .kept, .notDynamic, .refused:
            #expect(selection.inUse == selection.detected)
        }
        #expect(selection.description.hasPrefix(selection.inUse))
    }

    /// A GEMM with the kernels in use against a plain triple loop in Double (relative 1e-5).
    @Test func gemmWithTheSelectedKernelsIsCorrect() {
        let (m, n, k) = (37, 29, 70)
        let a = (0 ..< m * k).map { Float(($0 * 7919) % 23) / 11 - 1 }
        let b = (0 ..< k * n).map { Float(($0 * 104_729) % 19) / 9 - 1 }
        var c = [Float](repeating: 0, count: m * n)
        BLAS.gemm(m: m, n: n, k: k, a: a, b: b, c: &c)
        for i in 0 ..< m {
            for j in 0 ..< n {
                var s = 0.0
                for p in 0 ..< k { s += Double(a[i * k + p]) * Double(b[p * n + j]) }
                #expect(abs(Double(c[i * n + j]) - s) <= 1e-5 * max(1, abs(s)))
            }
        }
    }
}
