#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Tape {
    /// Softmax over the last dimension, optionally masked (for padded sequences).
    ///
    /// `x` is `[..., length]`; each run of `length` values is normalised on its own. `mask`, when
    /// given, holds 1 for real and 0 for padded positions, either one per value of `x` or, for a
    /// rank-3 `x` of shape `batch × rows × length`, one per `(batch, position)` (`batch × length`,
    /// shared by the rows of that batch entry). Masked positions get probability 0; a fully masked
    /// run gives all zeros (no NaN). Backward: `dx = y ⊙ (g − Σ g ⊙ y)` per run. O(count).
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` for a mask of another size.
    public func softmax(_ x: Tensor, mask: [Float]? = nil) throws(ArborError) -> Tensor {
        let length = x.shape[x.rank - 1]
        let runs = length == 0 ? 0 : x.count / length
        let rowsPerMaskRow: Int
        if let mask {
            if mask.count == x.count {
                rowsPerMaskRow = 1
            } else if x.rank == 3, mask.count == x.shape[0] * length {
                rowsPerMaskRow = x.shape[1]
            } else {
                throw .dimensionMismatch(field: "softmax: mask values", expected: x.count, found: mask.count)
            }
        } else {
            rowsPerMaskRow = 1
        }
        let xv = x.values
        var out = [Float](repeating: 0, count: x.count)
        for r in 0..<runs {
            let base = r * length
            let maskBase = (r / rowsPerMaskRow) * length
            var maxValue = -Float.infinity
            for j in 0..<length where mask.map({ $0[maskBase + j] != 0 }) ?? true {
                maxValue = max(maxValue, xv[base + j])
            }
            guard maxValue > -Float.infinity else { continue }  // fully masked: zeros
            var sum: Float = 0
            for j in 0..<length where mask.map({ $0[maskBase + j] != 0 }) ?? true {
                let e = expf(xv[base + j] - maxValue)
                out[base + j] = e
                sum += e
            }
            let inv = 1 / sum
            for j in 0..<length { out[base + j] *= inv }
        }
        return record(out, shape: x.shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in
                for r in 0..<runs {
                    let base = r * length
                    var dot: Float = 0
                    for j in 0..<length { dot += g[base + j] * out[base + j] }
                    for j in 0..<length { dx[base + j] += out[base + j] * (g[base + j] - dot) }
                }
            }
        }
    }
}
