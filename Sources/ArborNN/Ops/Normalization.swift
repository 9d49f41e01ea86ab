extension Tape {
    /// Each run of the last dimension scaled to unit L2 norm: `y = x / sqrt(‖x‖² + epsilon)`
    /// (epsilon keeps a zero row finite). Cosine-similarity towers use it before the dot
    /// product. Backward: `dx = (g − y (y · g)) / sqrt(‖x‖² + epsilon)`. O(count).
    public func l2Normalize(_ x: Tensor, epsilon: Float = 1e-12) -> Tensor {
        let width = x.shape[x.rank - 1]
        let runs = width == 0 ? 0 : x.count / width
        let xv = x.values
        var out = [Float](repeating: 0, count: x.count)
        var norms = [Float](repeating: 0, count: runs)
        for r in 0..<runs {
            var s: Float = 0
            for j in 0..<width { s += xv[r * width + j] * xv[r * width + j] }
            let n = (s + epsilon).squareRoot()
            norms[r] = n
            for j in 0..<width { out[r * width + j] = xv[r * width + j] / n }
        }
        return record(out, shape: x.shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in
                for r in 0..<runs {
                    let base = r * width
                    var dot: Float = 0
                    for j in 0..<width { dot += out[base + j] * g[base + j] }
                    let inv = 1 / norms[r]
                    for j in 0..<width { dx[base + j] += (g[base + j] - out[base + j] * dot) * inv }
                }
            }
        }
    }
}
