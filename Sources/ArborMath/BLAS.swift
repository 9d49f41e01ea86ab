@_exported import ArborCore
import CArborBLASCore
import COpenBLAS
import Dispatch

/// Safe entry points to OpenBLAS. Every product of size in Arbor goes through here.
///
/// All matrices are row-major `Float32`. The pointer-taking overloads exist for the storage layer
/// (zero-copy views of memory-mapped values) and are the only place where raw buffers meet BLAS.
///
/// ## Threads
/// OpenBLAS's own thread pool is not safe to share between callers on several threads at once. So:
/// - At its first call through `BLAS`, Arbor puts OpenBLAS in single-threaded mode, whatever
///   `OPENBLAS_NUM_THREADS` says; every BLAS call then runs on its caller's thread, and any number
///   of threads may call into Arbor (searches, scorers, training) at once.
/// - A program that calls BLAS from one thread only may ask for more with ``threads``
///   (`BLAS.threads = 8`); it then must not call BLAS from several threads itself.
/// - Arbor's own fan-outs (tree builder's node splits, HNSW build, benchmark runner threads) go
///   through ``concurrentPerform(iterations:execute:)``, which runs OpenBLAS with one thread for
///   their duration and restores the requested count afterwards, so they are safe whatever
///   ``threads`` is.
///
/// ## Kernels
/// OpenBLAS picks its kernels from the CPU model when it loads. A release older than the CPU falls
/// back to generic SSE3 kernels (Debian's 0.3.21 runs Prescott's SGEMM at about 24 GFLOP/s on a
/// family 6 model 207 Xeon with AVX-512, against 117-227 for its SkylakeX kernel). Before the first
/// BLAS call, Arbor replaces such a fallback by the best kernels the CPU's features allow
/// (``coreSelection``); `OPENBLAS_CORETYPE`, when set, is respected as it is. The choice depends on
/// the CPU and the OpenBLAS build only, never on timing.
public enum BLAS {
    /// OpenBLAS's kernel name in use (e.g. "SkylakeX"); print it in benchmark output.
    public static var coreName: String {
        ensureConfigured()
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// What Arbor did about OpenBLAS's kernels (see "Kernels" on ``BLAS``), decided once per process.
    public static var coreSelection: BLASCoreSelection {
        ensureConfigured()
        return selection
    }

    /// Threads OpenBLAS may use inside one call, as the program asked: 1 unless set. Values below 1
    /// count as 1. Setting it is thread-safe; inside ``concurrentPerform(iterations:execute:)`` the
    /// new count takes effect when the fan-out ends.
    /// - Important: above 1, only one thread at a time may call BLAS (see "Threads" on ``BLAS``).
    public static var threads: Int {
        get { threadState.withLock { $0.requested } }
        set {
            threadState.withLock { state in
                state.requested = max(1, newValue)
                state.apply()
            }
        }
    }

    /// Runs `body(0..<iterations)` on several threads (`DispatchQueue.concurrentPerform`) with OpenBLAS
    /// single-threaded until every iteration has returned; then the count of ``threads`` applies again.
    /// Fan-outs may nest or overlap. Use it for any loop whose iterations call BLAS concurrently.
    public static func concurrentPerform(iterations: Int, execute body: @Sendable (Int) -> Void) {
        threadState.withLock { state in
            state.fanOuts += 1
            state.apply()
        }
        defer {
            threadState.withLock { state in
                state.fanOuts -= 1
                state.apply()
            }
        }
        DispatchQueue.concurrentPerform(iterations: iterations, execute: body)
    }

    /// What the program asked for and what OpenBLAS was last told, under one lock.
    struct ThreadState {
        var requested = 1
        var fanOuts = 0
        var applied: Int? = nil

        /// Tells OpenBLAS the count it should use now: 1 during a fan-out, else `requested`.
        mutating func apply() {
            let wanted = fanOuts > 0 ? 1 : requested
            if applied != wanted {
                openblas_set_num_threads(Int32(wanted))
                applied = wanted
            }
        }
    }

    static let threadState = PosixMutex(ThreadState())

    /// The kernel choice, made once before the first BLAS call of the process.
    private static let selection: BLASCoreSelection = {
        let capacity: Int32 = 64
        var before = [CChar](repeating: 0, count: Int(capacity))
        var after = [CChar](repeating: 0, count: Int(capacity))
        let outcome = arbor_openblas_select_core(&before, &after, capacity)
        func text(_ chars: [CChar]) -> String {
            String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        let kind: BLASCoreSelection.Outcome
        switch outcome {
        case ARBOR_BLAS_CORE_UPGRADED: kind = .upgraded
        case ARBOR_BLAS_CORE_USER_CHOICE: kind = .userChoice
        case ARBOR_BLAS_CORE_NOT_DYNAMIC: kind = .notDynamic
        case ARBOR_BLAS_CORE_REFUSED: kind = .refused
        default: kind = .kept
        }
        return BLASCoreSelection(detected: text(before), inUse: text(after), outcome: kind)
    }()

    /// Selects the kernels, then applies the thread count, once, before the first BLAS call of the
    /// process (``threads`` set first applied its count already). Reading it later costs one load.
    private static let configured: Void = {
        _ = selection
        threadState.withLock { $0.apply() }
    }()

    /// The thread count OpenBLAS uses now (for tests of the contract above).
    static var openBLASThreads: Int { Int(openblas_get_num_threads()) }

    /// Called at the top of every entry point below; code that calls OpenBLAS directly (a kernel
    /// table, a test) calls it once before its first call.
    @inline(__always) public static func ensureConfigured() { _ = configured }

    /// `C = alpha · op(A) · op(B) + beta · C` on raw row-major buffers.
    ///
    /// `op(A)` is `m × k`, `op(B)` is `k × n`, `C` is `m × n`; `lda`, `ldb`, `ldc` are the row strides
    /// of the buffers as stored (before transposition). Complexity O(m·n·k).
    /// - Precondition: the buffers are large enough for the shapes and strides given.
    public static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        ensureConfigured()
        if k == 0 {
            // BLAS leaves C untouched when k == 0 only if beta == 1; do the scaling ourselves.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
            return
        }
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `C = alpha · op(A) · op(B) + beta · C` on row-major arrays, dense strides.
    ///
    /// Shapes: `op(A)` is `m × k` (A stored `m × k`, or `k × m` when `transposeA`), `op(B)` is `k × n`,
    /// `C` is `m × n` and must already hold `m · n` values.
    public static func gemm(
        transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: [Float], b: [Float], beta: Float = 0, c: inout [Float]
    ) {
        precondition(a.count >= m * k && b.count >= k * n && c.count >= m * n, "gemm: buffer too small")
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                         a: pa.baseAddress!, lda: transposeA ? m : k,
                         b: pb.baseAddress!, ldb: transposeB ? k : n,
                         beta: beta, c: pc.baseAddress!, ldc: n)
                }
            }
        }
    }

    /// `C = alpha · op(A) · op(B) + beta · C` on matrices; `C` is resized to the product's rows.
    /// - Precondition: inner dimensions agree and `C.cols` equals the product's columns.
    public static func gemm(
        _ a: Matrix, transposeA: Bool = false, _ b: Matrix, transposeB: Bool = false,
        alpha: Float = 1, beta: Float = 0, into c: inout Matrix
    ) {
        let m = transposeA ? a.cols : a.rows
        let k = transposeA ? a.rows : a.cols
        let kb = transposeB ? b.cols : b.rows
        let n = transposeB ? b.rows : b.cols
        precondition(k == kb, "gemm: inner dimensions \(k) and \(kb) differ")
        precondition(c.cols == n, "gemm: output has \(c.cols) columns, product has \(n)")
        if c.rows != m { c.resize(rows: m) }
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    guard let ba = pa.baseAddress, let bb = pb.baseAddress, let bc = pc.baseAddress else {
                        return
                    }
                    gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                         a: ba, lda: a.cols, b: bb, ldb: b.cols, beta: beta, c: bc, ldc: n)
                }
            }
        }
    }

    /// `y = alpha · op(A) · x + beta · y` where A is `rows × cols` row-major.
    public static func gemv(
        transpose: Bool = false, rows: Int, cols: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, x: UnsafePointer<Float>,
        beta: Float = 0, y: UnsafeMutablePointer<Float>
    ) {
        guard rows > 0, cols > 0 else { return }
        ensureConfigured()
        cblas_sgemv(CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, Int32(rows), Int32(cols),
                    alpha, a, Int32(lda), x, 1, beta, y, 1)
    }

    /// Dot product of two equal-length arrays.
    public static func dot(_ x: [Float], _ y: [Float]) -> Float {
        precondition(x.count == y.count)
        ensureConfigured()
        return x.withUnsafeBufferPointer { px in
            y.withUnsafeBufferPointer { py in
                guard let a = px.baseAddress, let b = py.baseAddress else { return 0 }
                return cblas_sdot(Int32(x.count), a, 1, b, 1)
            }
        }
    }
}

extension BLAS {
    /// `y = A · x` for a matrix `A` (`rows × cols`) and `x` of length `cols`; `y` is resized to `rows`
    /// and keeps its capacity. Complexity O(rows · cols).
    public static func gemv(_ a: Matrix, _ x: [Float], into y: inout [Float]) {
        precondition(x.count == a.cols, "gemv: vector has \(x.count) values, matrix \(a.cols) columns")
        if y.count != a.rows {
            if y.count > a.rows { y.removeLast(y.count - a.rows) } else {
                y.append(contentsOf: repeatElement(0, count: a.rows - y.count))
            }
        }
        guard a.rows > 0, a.cols > 0 else { return }
        a.withUnsafeBufferPointer { pa in
            x.withUnsafeBufferPointer { px in
                y.withUnsafeMutableBufferPointer { py in
                    gemv(rows: a.rows, cols: a.cols, a: pa.baseAddress!, lda: a.cols, x: px.baseAddress!,
                         y: py.baseAddress!)
                }
            }
        }
    }
}
