@_exported import ArborCore
import COpenBLAS

/// Safe entry points to OpenBLAS. Every product of size in Arbor goes through here.
///
/// All matrices are row-major `Float32`. The pointer-taking overloads exist for the storage layer
/// (zero-copy views of memory-mapped values) and are the only place where raw buffers meet BLAS.
public enum BLAS {
    /// OpenBLAS's kernel name for this CPU (e.g. "Cooperlake"); print it in benchmark output.
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Threads OpenBLAS uses inside one call. Set it to 1 when the caller parallelises itself.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }

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
        cblas_sgemv(CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, Int32(rows), Int32(cols),
                    alpha, a, Int32(lda), x, 1, beta, y, 1)
    }

    /// Dot product of two equal-length arrays.
    public static func dot(_ x: [Float], _ y: [Float]) -> Float {
        precondition(x.count == y.count)
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
