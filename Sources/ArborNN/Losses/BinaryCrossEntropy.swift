#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Tape {
    /// Mean binary cross-entropy of `logits` against `labels` in [0, 1], computed from the logits
    /// without overflow: `ℓ = max(z, 0) − z·y + log(1 + e^−|z|)`, averaged over all values
    /// (optionally weighted per value: `Σ wᵢℓᵢ / count`). Shape `[1]`. TDM's per-level positives
    /// and negatives are one call. Backward: `(σ(z) − y)·w / count`. O(count).
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` if `labels` or `weights`
    ///   has another count than `logits`.
    public func binaryCrossEntropyWithLogits(
        _ logits: Tensor, labels: [Float], weights: [Float]? = nil
    ) throws(ArborError) -> Tensor {
        guard labels.count == logits.count else {
            throw .dimensionMismatch(field: "binaryCrossEntropy: labels", expected: logits.count, found: labels.count)
        }
        if let weights, weights.count != logits.count {
            throw .dimensionMismatch(field: "binaryCrossEntropy: weights", expected: logits.count, found: weights.count)
        }
        let z = logits.values
        let n = Float(max(1, z.count))
        var total: Double = 0
        for i in 0..<z.count {
            let v = z[i]
            let l = max(v, 0) - v * labels[i] + log1pf(expf(-abs(v)))
            total += Double(l * (weights?[i] ?? 1))
        }
        return record([Float(total) / n], shape: [1], requiresGrad: logits.requiresGrad) { tape, g in
            tape.accumulate(logits.id) { dz in
                let s = g[0] / n
                for i in 0..<dz.count {
                    dz[i] += s * (stableSigmoid(z[i]) - labels[i]) * (weights?[i] ?? 1)
                }
            }
        }
    }
}
