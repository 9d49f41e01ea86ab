extension Tape {
    /// Inverted dropout: each value is zeroed with probability `rate` and the survivors scaled by
    /// `1 / (1 − rate)`, so the expectation is unchanged and inference needs no rescaling (call it
    /// only in training). Draws one `Float` per value from `rng`, so a seed fixes the mask.
    /// O(count).
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` unless `0 ≤ rate < 1`.
    public func dropout(
        _ x: Tensor, rate: Float, rng: inout some RandomNumberGenerator
    ) throws(ArborError) -> Tensor {
        guard rate >= 0, rate < 1 else {
            throw .invalidArgument(name: "dropout rate", reason: "must be in [0, 1), got \(rate)")
        }
        if rate == 0 { return x }
        let keep = 1 / (1 - rate)
        var mask = [Float](repeating: 0, count: x.count)
        for i in 0..<mask.count where NNRandom.unitFloat(&rng) >= rate { mask[i] = keep }
        let xv = x.values
        var out = [Float](repeating: 0, count: x.count)
        for i in 0..<out.count { out[i] = xv[i] * mask[i] }
        return record(out, shape: x.shape, requiresGrad: x.requiresGrad) { [mask] tape, g in
            tape.accumulate(x.id) { dx in for i in 0..<dx.count { dx[i] += g[i] * mask[i] } }
        }
    }
}
