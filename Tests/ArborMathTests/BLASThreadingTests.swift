import Testing
@testable import ArborMath

/// OpenBLAS runs single-threaded unless the program asks for more, and always inside
/// `BLAS.concurrentPerform`. (No test asks for more threads outside a fan-out: tests of other suites
/// call BLAS concurrently in this process.)
@Suite struct BLASThreadingTests {
    static func product() -> [Float] {
        var c = [Float](repeating: 0, count: 4)
        BLAS.gemm(m: 2, n: 2, k: 2, a: [1, 2, 3, 4], b: [0, 1, 1, 0], c: &c)
        return c
    }

    @Test func singleThreadedFromTheFirstCall() {
        #expect(Self.product() == [2, 1, 4, 3])
        #expect(BLAS.threads == 1)
        #expect(BLAS.openBLASThreads == 1)
    }

    @Test func fanOutsRunOneBLASThreadEachAndDeferARequestForMore() {
        let seen = PosixMutex<[Int]>([])
        BLAS.concurrentPerform(iterations: 8) { _ in
            let c = Self.product()
            seen.withLock { $0.append(c == [2, 1, 4, 3] ? BLAS.openBLASThreads : -1) }
        }
        #expect(seen.withLock { $0 } == Array(repeating: 1, count: 8))
        BLAS.concurrentPerform(iterations: 1) { _ in
            BLAS.threads = 3  // asked for inside a fan-out: recorded, applied only when it ends
            #expect(BLAS.threads == 3)
            #expect(BLAS.openBLASThreads == 1)
            BLAS.concurrentPerform(iterations: 2) { _ in #expect(BLAS.openBLASThreads == 1) }
            #expect(BLAS.openBLASThreads == 1)
            BLAS.threads = 1
        }
        #expect(BLAS.threads == 1 && BLAS.openBLASThreads == 1)
    }
}
