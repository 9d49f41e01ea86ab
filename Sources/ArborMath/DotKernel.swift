import CArborKernels

/// Inner products of one query with consecutive rows, by the CPU's dot kernel (CArborKernels:
/// AVX-512, AVX2 + FMA or portable, chosen once per process by CPU features, never by timing).
/// The exact scan's batch-1 path and beam search's inner-product scoring share it, so a row scores
/// the same in both: a row's score is a fixed function of the row and the query.
public enum DotKernel {
    /// `scores[r] = query · rows[r · d ..< (r + 1) · d]` for `r < scores.count`, with
    /// `d = query.count`. One streaming pass; no allocation. O(scores.count · d).
    /// - Precondition: `rows.count == scores.count · query.count`.
    @inlinable
    public static func scoreRows(query: [Float], rows: UnsafeBufferPointer<Float>, into scores: UnsafeMutableBufferPointer<Float>) {
        let d = query.count
        precondition(rows.count == scores.count * d, "dot rows: \(rows.count) values for \(scores.count) rows of \(d)")
        guard let out = scores.baseAddress, let base = rows.baseAddress, d > 0 else { return }
        query.withUnsafeBufferPointer { q in
            arbor_dot_rows(q.baseAddress!, base, scores.count, d, out)
        }
    }
}
