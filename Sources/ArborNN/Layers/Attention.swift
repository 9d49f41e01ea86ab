extension Tape {
    /// Attention with one query vector per sequence (SDM's user attention, also its long-term
    /// attention): `α = softmax_masked(keys · query)`, result `Σ_k α_k · keys_k`.
    ///
    /// Shapes: `query` `batch × d`, `keys` `batch × length × d` (keys are the values), `mask`
    /// `batch × length` (1 real, 0 padding). Result `batch × d`; a fully masked row gives zeros.
    /// Built from two batched GEMMs and a masked softmax, so its gradient is theirs. O(batch ·
    /// length · d).
    /// - Throws: ``ArborError`` for shapes that do not fit together.
    public func userAttention(query: Tensor, keys: Tensor, mask: [Float]) throws(ArborError) -> Tensor {
        guard keys.rank == 3, query.rank == 2, query.shape[0] == keys.shape[0], query.shape[1] == keys.shape[2] else {
            throw .invalidArgument(name: "userAttention", reason: "query \(query.shape) does not fit keys \(keys.shape)")
        }
        let (batch, length, d) = (keys.shape[0], keys.shape[1], keys.shape[2])
        let q = try reshape(query, to: [batch, d, 1])
        let scores = try reshape(try batchedMatmul(keys, q), to: [batch, 1, length])
        let weights = try softmax(scores, mask: mask)
        return try reshape(try batchedMatmul(weights, keys), to: [batch, d])
    }

    /// SDM's gate with a per-row fallback: `o = (1 − G) ⊙ p + G ⊙ s` where `hasLong[b] == 1`, and
    /// `o = s` where `hasLong[b] == 0` (no long-term behaviour: the short term alone, no gradient to
    /// `G` or `p`).
    ///
    /// Shapes: `gate`, `long`, `short` `batch × d` (`gate` in [0, 1], e.g. after a sigmoid);
    /// `hasLong` `batch` values, 0 or 1. Fused: one pass forward, one backward. O(batch · d).
    /// - Throws: ``ArborError`` for mismatched shapes.
    public func gatedFusion(gate: Tensor, long: Tensor, short: Tensor, hasLong: [Float]) throws(ArborError) -> Tensor {
        guard gate.rank == 2, long.shape == gate.shape, short.shape == gate.shape else {
            throw .invalidArgument(name: "gatedFusion", reason: "gate \(gate.shape), long \(long.shape) and short \(short.shape) must match")
        }
        let (batch, d) = (gate.shape[0], gate.shape[1])
        guard hasLong.count == batch else { throw .dimensionMismatch(field: "gatedFusion hasLong", expected: batch, found: hasLong.count) }
        let g = gate.values, p = long.values, s = short.values
        var out = s
        for b in 0 ..< batch where hasLong[b] != 0 {
            for j in b * d ..< (b + 1) * d { out[j] = (1 - g[j]) * p[j] + g[j] * s[j] }
        }
        return try custom([gate, long, short], values: out, shape: [batch, d]) { dy, input, grad in
            for b in 0 ..< batch {
                let on = hasLong[b] != 0
                for j in b * d ..< (b + 1) * d {
                    switch input {
                    case 0: if on { grad[j] += dy[j] * (s[j] - p[j]) }
                    case 1: if on { grad[j] += dy[j] * (1 - g[j]) }
                    default: grad[j] += on ? dy[j] * g[j] : dy[j]
                    }
                }
            }
        }
    }
}

/// Multi-head scaled dot-product self-attention with a key mask (Vaswani et al.), as in SDM's
/// short-term encoder.
///
/// Input `batch × length × d` and a `batch × length` mask (1 real, 0 padding: padded positions are
/// never attended to); output `batch × length × d`. Each head `h` of width `d / heads` computes
/// `softmax_masked(Q_h K_hᵀ / √(d/heads)) V_h`; the heads are concatenated and projected by `Wo`.
/// Parameters: "<name>.q.weight", "<name>.k.weight", "<name>.v.weight" `[d, d]` (no bias),
/// "<name>.o.weight" `[d, d]`, "<name>.o.bias" `[d]`. O(batch · (length · d² + length² · d)).
public final class MultiHeadSelfAttention: Module {
    /// Width of the input and output.
    public let dimension: Int
    /// Number of heads; divides ``dimension``.
    public let heads: Int
    /// Projections.
    public let query: Linear, key: Linear, value: Linear, output: Linear

    /// A layer with Xavier-uniform projections.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` when `heads` does not divide `dimension`.
    public init(dimension: Int, heads: Int, name: String = "attention", rng: inout some RandomNumberGenerator) throws(ArborError) {
        guard heads >= 1, dimension >= 1, dimension % heads == 0 else {
            throw .invalidArgument(name: "\(name).heads", reason: "\(heads) must divide the width \(dimension)")
        }
        self.dimension = dimension
        self.heads = heads
        query = try Linear(inputs: dimension, outputs: dimension, bias: false, name: "\(name).q", rng: &rng)
        key = try Linear(inputs: dimension, outputs: dimension, bias: false, name: "\(name).k", rng: &rng)
        value = try Linear(inputs: dimension, outputs: dimension, bias: false, name: "\(name).v", rng: &rng)
        output = try Linear(inputs: dimension, outputs: dimension, name: "\(name).o", rng: &rng)
    }

    /// The trainable parameters: q, k, v, o (weight, bias).
    public var parameters: [Parameter] { query.parameters + key.parameters + value.parameters + output.parameters }

    /// The attended sequence. Rows of padded query positions are computed like the others (their
    /// keys are masked too); callers mask them downstream.
    /// - Throws: ``ArborError`` for an input of another width or a mask of another size.
    public func callAsFunction(_ x: Tensor, mask: [Float], on tape: Tape) throws(ArborError) -> Tensor {
        guard x.rank == 3, x.shape[2] == dimension else {
            throw .dimensionMismatch(field: "self-attention input width", expected: dimension, found: x.shape.last ?? 0)
        }
        let q = try query(x, on: tape), k = try key(x, on: tape), v = try value(x, on: tape)
        let width = dimension / heads
        let scale = 1 / Float(width).squareRoot()
        var outs: [Tensor] = []
        outs.reserveCapacity(heads)
        for h in 0 ..< heads {
            let r = h * width ..< (h + 1) * width
            let qh = heads == 1 ? q : try tape.slice(q, axis: -1, range: r)
            let kh = heads == 1 ? k : try tape.slice(k, axis: -1, range: r)
            let vh = heads == 1 ? v : try tape.slice(v, axis: -1, range: r)
            let scores = tape.scale(try tape.batchedMatmul(qh, kh, transposeB: true), by: scale)
            outs.append(try tape.batchedMatmul(try tape.softmax(scores, mask: mask), vh))
        }
        let joined = heads == 1 ? outs[0] : try tape.concat(outs, axis: -1)
        return try output(joined, on: tape)
    }
}
