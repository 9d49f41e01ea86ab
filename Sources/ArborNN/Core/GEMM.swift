import ArborMath

/// `C[cOffset...] = alpha · op(A[aOffset...]) · op(B[bOffset...]) + beta · C[cOffset...]` on dense
/// row-major blocks inside larger arrays (one batch entry of a rank-3 tensor). Shapes as in
/// `BLAS.gemm`: `op(A)` is `m × k`, `op(B)` is `k × n`, the block of `C` is `m × n`. O(m·n·k).
/// This is the only place in ArborNN that touches buffer addresses, and only to hand them to
/// `BLAS.gemm`.
func gemmBlock(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
    a: [Float], aOffset: Int = 0, b: [Float], bOffset: Int = 0,
    beta: Float, c: inout [Float], cOffset: Int = 0
) {
    guard m > 0, n > 0 else { return }
    precondition(aOffset + m * k <= a.count && bOffset + k * n <= b.count && cOffset + m * n <= c.count,
                 "gemmBlock: buffer too small")
    if k == 0 {
        for i in cOffset ..< cOffset + m * n { c[i] *= beta }
        return
    }
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            c.withUnsafeMutableBufferPointer { pc in
                BLAS.gemm(
                    transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                    a: pa.baseAddress! + aOffset, lda: transposeA ? m : k,
                    b: pb.baseAddress! + bOffset, ldb: transposeB ? k : n,
                    beta: beta, c: pc.baseAddress! + cOffset, ldc: n)
            }
        }
    }
}

/// Adds the gradient of `op(A)·op(B)` with respect to `A` into `da` (same layout as `A`), given the
/// output gradient `g` (`m × n`). O(m·n·k).
func productGradientA(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    g: [Float], gOffset: Int = 0, b: [Float], bOffset: Int = 0, da: inout [Float], daOffset: Int = 0
) {
    switch (transposeA, transposeB) {
    case (false, false):  // dA (m×k) += g (m×n) · Bᵀ, B is k×n
        gemmBlock(transposeA: false, transposeB: true, m: m, n: k, k: n,
                  a: g, aOffset: gOffset, b: b, bOffset: bOffset, beta: 1, c: &da, cOffset: daOffset)
    case (false, true):  // dA (m×k) += g · B, B is n×k
        gemmBlock(transposeA: false, transposeB: false, m: m, n: k, k: n,
                  a: g, aOffset: gOffset, b: b, bOffset: bOffset, beta: 1, c: &da, cOffset: daOffset)
    case (true, false):  // dA (k×m) += B (k×n) · gᵀ
        gemmBlock(transposeA: false, transposeB: true, m: k, n: m, k: n,
                  a: b, aOffset: bOffset, b: g, bOffset: gOffset, beta: 1, c: &da, cOffset: daOffset)
    case (true, true):  // dA (k×m) += Bᵀ (B n×k) · gᵀ
        gemmBlock(transposeA: true, transposeB: true, m: k, n: m, k: n,
                  a: b, aOffset: bOffset, b: g, bOffset: gOffset, beta: 1, c: &da, cOffset: daOffset)
    }
}

/// Adds the gradient of `op(A)·op(B)` with respect to `B` into `db` (same layout as `B`), given the
/// output gradient `g` (`m × n`). O(m·n·k).
func productGradientB(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    g: [Float], gOffset: Int = 0, a: [Float], aOffset: Int = 0, db: inout [Float], dbOffset: Int = 0
) {
    switch (transposeA, transposeB) {
    case (false, false):  // dB (k×n) += Aᵀ (A m×k) · g
        gemmBlock(transposeA: true, transposeB: false, m: k, n: n, k: m,
                  a: a, aOffset: aOffset, b: g, bOffset: gOffset, beta: 1, c: &db, cOffset: dbOffset)
    case (false, true):  // dB (n×k) += gᵀ · A (m×k)
        gemmBlock(transposeA: true, transposeB: false, m: n, n: k, k: m,
                  a: g, aOffset: gOffset, b: a, bOffset: aOffset, beta: 1, c: &db, cOffset: dbOffset)
    case (true, false):  // dB (k×n) += A (k×m) · g
        gemmBlock(transposeA: false, transposeB: false, m: k, n: n, k: m,
                  a: a, aOffset: aOffset, b: g, bOffset: gOffset, beta: 1, c: &db, cOffset: dbOffset)
    case (true, true):  // dB (n×k) += gᵀ · Aᵀ (A k×m)
        gemmBlock(transposeA: true, transposeB: true, m: n, n: k, k: m,
                  a: g, aOffset: gOffset, b: a, bOffset: aOffset, beta: 1, c: &db, cOffset: dbOffset)
    }
}
