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
        out.withUnsafeMutableBufferPointer { po in
            xv.withUnsafeBufferPointer { px in
                for r in 0..<runs {
                    let xr = px.baseAddress! + r * width, or = po.baseAddress! + r * width
                    var s: Float = 0
                    for j in 0..<width { s += xr[j] * xr[j] }
                    let n = (s + epsilon).squareRoot()
                    norms[r] = n
                    for j in 0..<width { or[j] = xr[j] / n }
                }
            }
        }
        return record(out, shape: x.shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in
                dx.withUnsafeMutableBufferPointer { pd in
                    out.withUnsafeBufferPointer { po in
                        g.withUnsafeBufferPointer { pg in
                            for r in 0..<runs {
                                let base = r * width
                                let o = po.baseAddress! + base, gr = pg.baseAddress! + base, d = pd.baseAddress! + base
                                var dot: Float = 0
                                for j in 0..<width { dot += o[j] * gr[j] }
                                let inv = 1 / norms[r]
                                for j in 0..<width { d[j] += (gr[j] - o[j] * dot) * inv }
                            }
                        }
                    }
                }
            }
        }
    }
}

extension Tape {
    /// MIND's capsule squash over the last dimension: `v = (‖s‖² / (1 + ‖s‖²)) · s / ‖s‖`, i.e.
    /// `s · ‖s‖ / (1 + ‖s‖²)`, shrinking short vectors toward 0 and long ones toward unit length.
    /// `‖s‖` is `sqrt(‖s‖² + epsilon)` so a zero row stays finite. O(count).
    public func squash(_ x: Tensor, epsilon: Float = 1e-9) -> Tensor {
        let width = x.shape[x.rank - 1]
        let runs = width == 0 ? 0 : x.count / width
        let xv = x.values
        var out = [Float](repeating: 0, count: x.count)
        var factors = [Float](repeating: 0, count: runs)  // f(n) = n / (1 + n²)
        var slopes = [Float](repeating: 0, count: runs)  // f'(n) / n
        for r in 0..<runs {
            var s: Float = 0
            for j in 0..<width { s += xv[r * width + j] * xv[r * width + j] }
            let n = (s + epsilon).squareRoot()
            let d = 1 + n * n
            factors[r] = n / d
            slopes[r] = (1 - n * n) / (d * d) / n
            for j in 0..<width { out[r * width + j] = xv[r * width + j] * factors[r] }
        }
        return record(out, shape: x.shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in
                for r in 0..<runs {
                    let base = r * width
                    var dot: Float = 0
                    for j in 0..<width { dot += xv[base + j] * g[base + j] }
                    let (f, k) = (factors[r], slopes[r] * dot)
                    for j in 0..<width { dx[base + j] += f * g[base + j] + k * xv[base + j] }
                }
            }
        }
    }
}
