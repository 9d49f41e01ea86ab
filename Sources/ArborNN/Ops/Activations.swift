#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Tape {
    /// `max(x, 0)` elementwise, any shape. The gradient at exactly 0 is taken as 0. O(count).
    public func relu(_ x: Tensor) -> Tensor {
        let xv = x.values
        let out = xv.map { $0 > 0 ? $0 : 0 }
        return record(out, shape: x.shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in for i in 0..<dx.count where xv[i] > 0 { dx[i] += g[i] } }
        }
    }

    /// Parametric ReLU: `x` where positive, `alpha · x` elsewhere. `alpha` is `[features]` (one
    /// slope per feature of the last dimension) or `[1]` (one shared slope); usually a parameter
    /// initialised to 0.25. O(count).
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` if `alpha`'s length is
    ///   neither 1 nor the last dimension of `x`.
    public func prelu(_ x: Tensor, alpha: Tensor) throws(ArborError) -> Tensor {
        let width = x.shape[x.rank - 1]
        guard alpha.rank == 1, alpha.count == 1 || alpha.count == width else {
            throw .dimensionMismatch(field: "prelu: alpha length", expected: width, found: alpha.count)
        }
        let xv = x.values, av = alpha.values
        let shared = alpha.count == 1
        var out = [Float](repeating: 0, count: xv.count)
        // Raw buffers; the slope of element i is av[0] (shared) or av[i % width].
        out.withUnsafeMutableBufferPointer { po in
            xv.withUnsafeBufferPointer { px in
                av.withUnsafeBufferPointer { pa in
                    for i in 0..<px.count {
                        let v = px[i]
                        po[i] = v > 0 ? v : pa[shared ? 0 : i % width] * v
                    }
                }
            }
        }
        return record(out, shape: x.shape, requiresGrad: x.requiresGrad || alpha.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in
                dx.withUnsafeMutableBufferPointer { pd in
                    xv.withUnsafeBufferPointer { px in
                        av.withUnsafeBufferPointer { pa in
                            g.withUnsafeBufferPointer { pg in
                                for i in 0..<pd.count { pd[i] += px[i] > 0 ? pg[i] : pa[shared ? 0 : i % width] * pg[i] }
                            }
                        }
                    }
                }
            }
            tape.accumulate(alpha.id) { da in
                da.withUnsafeMutableBufferPointer { pd in
                    xv.withUnsafeBufferPointer { px in
                        g.withUnsafeBufferPointer { pg in
                            for i in 0..<px.count where px[i] <= 0 { pd[shared ? 0 : i % width] += pg[i] * px[i] }
                        }
                    }
                }
            }
        }
    }

    /// Logistic `1 / (1 + e^-x)` elementwise, computed without overflow. O(count).
    public func sigmoid(_ x: Tensor) -> Tensor {
        let out = x.values.map(stableSigmoid)
        return record(out, shape: x.shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in for i in 0..<dx.count { dx[i] += g[i] * out[i] * (1 - out[i]) } }
        }
    }

    /// Hyperbolic tangent elementwise. O(count).
    public func tanh(_ x: Tensor) -> Tensor {
        let out = x.values.map { Float(libmTanh(Double($0))) }
        return record(out, shape: x.shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in for i in 0..<dx.count { dx[i] += g[i] * (1 - out[i] * out[i]) } }
        }
    }
}

extension Tape {
    /// `e^x` elementwise. O(count).
    public func exp(_ x: Tensor) -> Tensor {
        let out = x.values.map { expf($0) }
        return record(out, shape: x.shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in for i in 0..<dx.count { dx[i] += g[i] * out[i] } }
        }
    }

    /// Natural logarithm elementwise; values must be positive (0 gives −infinity, a negative
    /// value NaN: check with ``Tensor/checkFinite(_:)``). O(count).
    public func log(_ x: Tensor) -> Tensor {
        let xv = x.values
        let out = xv.map { logf($0) }
        return record(out, shape: x.shape, requiresGrad: x.requiresGrad) { tape, g in
            tape.accumulate(x.id) { dx in for i in 0..<dx.count { dx[i] += g[i] / xv[i] } }
        }
    }
}

/// `1 / (1 + e^-x)` without overflow for large `|x|`.
@inline(__always)
func stableSigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + expf(-x)) }
    let e = expf(x)
    return e / (1 + e)
}

@inline(__always)
private func libmTanh(_ x: Double) -> Double { tanh(x) }
