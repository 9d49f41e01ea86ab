#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Tape {
    /// One LSTM layer over padded, masked sequences, fused: forward and backpropagation through
    /// time are one op with its own backward.
    ///
    /// Shapes: `x` is `batch × length × inputs`; `inputWeight` `inputs × 4H`, `recurrentWeight`
    /// `H × 4H`, `bias` `4H`, gate blocks in the order input, forget, cell, output (`i, f, g, o`).
    /// `mask` holds `batch × length` values, 1 for a real step and 0 for padding. The result is
    /// `batch × length × H`: `h_t` at real steps, 0 at padded ones. A padded step carries the
    /// state over unchanged (`h_t = h_{t-1}`, `c_t = c_{t-1}`), so padding may sit anywhere; the
    /// initial state is zero.
    ///
    /// Step `t`: `a = x_t·Wx + h_{t-1}·Wh + b`; `i = σ(a_i)`, `f = σ(a_f)`, `g = tanh(a_g)`,
    /// `o = σ(a_o)`; `c_t = f ⊙ c_{t-1} + i ⊙ g`; `h_t = o ⊙ tanh(c_t)`.
    ///
    /// Cost: the input projection of every step is one GEMM (`(length·batch) × inputs × 4H`); each
    /// step adds one GEMM over the whole mini-batch (`batch × H × 4H`). Backward: one GEMM per step
    /// for `∂h_{t-1}`, then one GEMM each for `∂Wx`, `∂Wh` and `∂x`. Memory O(length · batch · 4H).
    /// - Throws: ``ArborError`` for shapes that do not fit together or a mask of another size.
    public func lstm(
        _ x: Tensor, mask: [Float], inputWeight wx: Tensor, recurrentWeight wh: Tensor, bias: Tensor
    ) throws(ArborError) -> Tensor {
        guard x.rank == 3 else { throw .invalidArgument(name: "lstm input", reason: "needs batch × length × inputs, got \(x.shape)") }
        let (batch, length, inputs) = (x.shape[0], x.shape[1], x.shape[2])
        guard wh.rank == 2, wh.shape[1] == 4 * wh.shape[0] else {
            throw .invalidArgument(name: "lstm recurrentWeight", reason: "needs H × 4H, got \(wh.shape)")
        }
        let hidden = wh.shape[0], g4 = 4 * hidden
        guard wx.rank == 2, wx.shape == [inputs, g4] else {
            throw .dimensionMismatch(field: "lstm inputWeight values", expected: inputs * g4, found: wx.count)
        }
        guard bias.count == g4 else { throw .dimensionMismatch(field: "lstm bias", expected: g4, found: bias.count) }
        guard mask.count == batch * length else {
            throw .dimensionMismatch(field: "lstm mask", expected: batch * length, found: mask.count)
        }
        let rows = batch * length
        // Time-major copy of x: row (t, b).
        var xt = [Float](repeating: 0, count: rows * inputs)
        let xv = x.values
        for b in 0 ..< batch {
            for t in 0 ..< length {
                let src = (b * length + t) * inputs, dst = (t * batch + b) * inputs
                for j in 0 ..< inputs { xt[dst + j] = xv[src + j] }
            }
        }
        // Pre-activations of every step: xt · Wx + b, then + h_{t-1} · Wh per step.
        var act = [Float](repeating: 0, count: rows * g4)
        let bv = bias.values
        for r in 0 ..< rows { for j in 0 ..< g4 { act[r * g4 + j] = bv[j] } }
        gemmBlock(transposeA: false, transposeB: false, m: rows, n: g4, k: inputs, a: xt, b: wx.values, beta: 1, c: &act)
        // States: block t of hs/cs is the state *before* step t (block 0 = zeros), block t+1 after.
        var hs = [Float](repeating: 0, count: (length + 1) * batch * hidden)
        var cs = [Float](repeating: 0, count: (length + 1) * batch * hidden)
        var tanhC = [Float](repeating: 0, count: rows * hidden)
        let whv = wh.values
        let bh = batch * hidden
        for t in 0 ..< length {
            gemmBlock(transposeA: false, transposeB: false, m: batch, n: g4, k: hidden, a: hs, aOffset: t * bh,
                      b: whv, beta: 1, c: &act, cOffset: t * batch * g4)
            for b in 0 ..< batch {
                let prev = t * bh + b * hidden, next = (t + 1) * bh + b * hidden
                if mask[b * length + t] == 0 {
                    for j in 0 ..< hidden { hs[next + j] = hs[prev + j]; cs[next + j] = cs[prev + j] }
                    continue
                }
                let a = (t * batch + b) * g4
                for j in 0 ..< hidden {
                    let i = 1 / (1 + expf(-act[a + j]))
                    let f = 1 / (1 + expf(-act[a + hidden + j]))
                    let g = tanhf(act[a + 2 * hidden + j])
                    let o = 1 / (1 + expf(-act[a + 3 * hidden + j]))
                    act[a + j] = i; act[a + hidden + j] = f; act[a + 2 * hidden + j] = g; act[a + 3 * hidden + j] = o
                    let c = f * cs[prev + j] + i * g
                    let tc = tanhf(c)
                    cs[next + j] = c
                    tanhC[(t * batch + b) * hidden + j] = tc
                    hs[next + j] = o * tc
                }
            }
        }
        var out = [Float](repeating: 0, count: rows * hidden)
        for b in 0 ..< batch {
            for t in 0 ..< length where mask[b * length + t] != 0 {
                let src = (t + 1) * bh + b * hidden, dst = (b * length + t) * hidden
                for j in 0 ..< hidden { out[dst + j] = hs[src + j] }
            }
        }
        let wxv = wx.values
        // The backward sweep runs once for all inputs; the op's closure asks for one input at a time.
        let cache = LSTMGradientCache()
        let needs = (x.requiresGrad, wx.requiresGrad || wh.requiresGrad || bias.requiresGrad)
        func computeGradients(_ g: [Float]) {
            var dA = [Float](repeating: 0, count: rows * g4)
            var dh = [Float](repeating: 0, count: bh), dc = [Float](repeating: 0, count: bh)
            for t in stride(from: length - 1, through: 0, by: -1) {
                for b in 0 ..< batch where mask[b * length + t] != 0 {
                    let go = (b * length + t) * hidden, s = b * hidden
                    let a = (t * batch + b) * g4, prev = t * bh + b * hidden, tcBase = (t * batch + b) * hidden
                    for j in 0 ..< hidden {
                        let dhj = dh[s + j] + g[go + j]
                        let i = act[a + j], f = act[a + hidden + j], gg = act[a + 2 * hidden + j], o = act[a + 3 * hidden + j]
                        let tc = tanhC[tcBase + j]
                        let dcj = dc[s + j] + dhj * o * (1 - tc * tc)
                        dA[a + j] = dcj * gg * i * (1 - i)
                        dA[a + hidden + j] = dcj * cs[prev + j] * f * (1 - f)
                        dA[a + 2 * hidden + j] = dcj * i * (1 - gg * gg)
                        dA[a + 3 * hidden + j] = dhj * tc * o * (1 - o)
                        dc[s + j] = dcj * f
                        dh[s + j] = 0
                    }
                }
                // Masked rows keep dh/dc (their state passed through); real rows get dA_t · Whᵀ.
                gemmBlock(transposeA: false, transposeB: true, m: batch, n: hidden, k: g4, a: dA, aOffset: t * batch * g4,
                          b: whv, beta: 1, c: &dh)
            }
            if needs.1 {
                var dwx = [Float](repeating: 0, count: inputs * g4)
                gemmBlock(transposeA: true, transposeB: false, m: inputs, n: g4, k: rows, a: xt, b: dA, beta: 0, c: &dwx)
                var dwh = [Float](repeating: 0, count: hidden * g4)
                gemmBlock(transposeA: true, transposeB: false, m: hidden, n: g4, k: rows, a: hs, b: dA, beta: 0, c: &dwh)
                var db = [Float](repeating: 0, count: g4)
                for r in 0 ..< rows { for j in 0 ..< g4 { db[j] += dA[r * g4 + j] } }
                cache.wx = dwx; cache.wh = dwh; cache.bias = db
            }
            if needs.0 {
                var dxt = [Float](repeating: 0, count: rows * inputs)
                gemmBlock(transposeA: false, transposeB: true, m: rows, n: inputs, k: g4, a: dA, b: wxv, beta: 0, c: &dxt)
                var dx = [Float](repeating: 0, count: rows * inputs)
                for b in 0 ..< batch {
                    for t in 0 ..< length {
                        let src = (t * batch + b) * inputs, dst = (b * length + t) * inputs
                        for j in 0 ..< inputs { dx[dst + j] = dxt[src + j] }
                    }
                }
                cache.x = dx
            }
            cache.done = true
        }
        return try custom([x, wx, wh, bias], values: out, shape: [batch, length, hidden]) { g, input, grad in
            if !cache.done { computeGradients(g) }
            let src: [Float]
            switch input {
            case 0: src = cache.x
            case 1: src = cache.wx
            case 2: src = cache.wh
            default: src = cache.bias
            }
            for k in 0 ..< min(src.count, grad.count) { grad[k] += src[k] }
        }
    }
}

/// The gradients of one LSTM op, computed by the first backward call and read by the others.
private final class LSTMGradientCache {
    var done = false
    var x: [Float] = []
    var wx: [Float] = []
    var wh: [Float] = []
    var bias: [Float] = []
}

/// A stack of LSTM layers (``Tape/lstm(_:mask:inputWeight:recurrentWeight:bias:)``), each reading
/// the previous layer's outputs.
///
/// Input `batch × length × inputs` with a `batch × length` mask; output `batch × length × hidden`
/// (zeros at padded steps). Parameters per layer `l`: "<name>.<l>.wx" `[in_l, 4·hidden]`,
/// "<name>.<l>.wh" `[hidden, 4·hidden]`, "<name>.<l>.bias" `[4·hidden]` (forget-gate block at 1,
/// the rest 0, so early training remembers). Gate blocks in the order `i, f, g, o`.
public final class LSTM: Module {
    /// Width of the input.
    public let inputs: Int
    /// Width of every layer's state.
    public let hidden: Int
    /// Per layer: input weight, recurrent weight, bias.
    public let layers: [(wx: Parameter, wh: Parameter, bias: Parameter)]

    /// A stack of `layerCount` layers, weights Xavier-uniform.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` for a non-positive width or layer count.
    public init(inputs: Int, hidden: Int, layerCount: Int = 1, name: String = "lstm",
                rng: inout some RandomNumberGenerator) throws(ArborError) {
        guard inputs > 0, hidden > 0, layerCount > 0 else {
            throw .invalidArgument(name: "\(name) size", reason: "inputs, hidden and layers must be positive, got \(inputs), \(hidden), \(layerCount)")
        }
        self.inputs = inputs
        self.hidden = hidden
        var ls: [(wx: Parameter, wh: Parameter, bias: Parameter)] = []
        for l in 0 ..< layerCount {
            let wx = try Parameter(name: "\(name).\(l).wx", shape: [l == 0 ? inputs : hidden, 4 * hidden],
                                   initializer: .xavierUniform, rng: &rng)
            let wh = try Parameter(name: "\(name).\(l).wh", shape: [hidden, 4 * hidden], initializer: .xavierUniform, rng: &rng)
            var b = [Float](repeating: 0, count: 4 * hidden)
            for j in hidden ..< 2 * hidden { b[j] = 1 }
            ls.append((wx, wh, try Parameter(name: "\(name).\(l).bias", shape: [4 * hidden], values: b)))
        }
        layers = ls
    }

    /// The trainable parameters, layer by layer (wx, wh, bias).
    public var parameters: [Parameter] { layers.flatMap { [$0.wx, $0.wh, $0.bias] } }

    /// The top layer's outputs. O(layers · length · batch · (inputs + hidden) · 4·hidden).
    /// - Throws: ``ArborError`` for an input of the wrong width or a mask of the wrong size.
    public func callAsFunction(_ x: Tensor, mask: [Float], on tape: Tape) throws(ArborError) -> Tensor {
        var h = x
        for l in layers {
            h = try tape.lstm(h, mask: mask, inputWeight: tape.parameter(l.wx), recurrentWeight: tape.parameter(l.wh),
                              bias: tape.parameter(l.bias))
        }
        return h
    }
}
