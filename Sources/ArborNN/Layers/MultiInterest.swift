import ArborCore

extension Tape {
    /// MIND's behaviour-to-interest dynamic routing (Li et al., CIKM 2019, Algorithm 1).
    ///
    /// With `û_l = S·e_l` (the shared bilinear map applied to each behaviour embedding), for
    /// `iterations` rounds: `w_{l·} = softmax_k(b_{lk})` over the active interests of the user,
    /// `z_k = Σ_l w_{lk} û_l`, `u_k = squash(z_k)`, `b_{lk} += û_l · u_k`. The logits start from
    /// `routingLogits` (fixed, drawn once from N(0, 1) per model: see
    /// `MultiInterest.routingLogits(length:interests:seed:)`), so the routing is deterministic.
    /// Gradients flow through `behaviours` and `bilinear` (also through the logit updates, which
    /// are functions of both, unless `stopGradientThroughRouting`); the initial logits are not trained.
    ///
    /// - Parameters:
    ///   - behaviours: `batch × length × d` behaviour embeddings (padded positions may hold anything).
    ///   - bilinear: the `d × d` map `S` (`û = e · S` on row vectors).
    ///   - routingLogits: `maxLength × interests` initial logits, row-major, `maxLength ≥ length`;
    ///     position `l` of every user starts from row `l`.
    ///   - interests: `K`, the number of interest capsules.
    ///   - mask: `batch × length`, 1 for a real behaviour, 0 for padding (padding routes nowhere).
    ///   - activeInterests: per user, `K'_u` in `1...K`; interests `≥ K'_u` get no behaviour and come
    ///     out as zero vectors.
    ///   - iterations: routing rounds (MIND: 3), ≥ 1.
    ///   - agreementScale: `β`, the logit update is `b_{lk} += β · û_l · u_k` (MIND: 1). A larger `β`
    ///     lets the behaviours' agreement, not the fixed random start, decide the routing. Finite, ≥ 0.
    ///   - stopGradientThroughRouting: ComiRec-DR (Cen et al., KDD 2020): every round but the last
    ///     routes a gradient-free copy of `û`, so the routing weights are constants for the backward
    ///     pass and only the last round's `Σ_l w_{lk} û_l` trains `behaviours` and `bilinear`. The
    ///     forward values are the same either way.
    /// - Returns: `batch × K × d` interest capsules.
    /// - Complexity: O(batch · length · d² + iterations · batch · length · K · d).
    /// - Throws: ``ArborError`` for shapes that do not agree or an active count outside `1...K`.
    public func dynamicRouting(
        _ behaviours: Tensor, bilinear: Tensor, routingLogits: [Float], interests: Int, mask: [Float],
        activeInterests: [Int], iterations: Int = 3, agreementScale: Float = 1, stopGradientThroughRouting: Bool = false
    ) throws(ArborError) -> Tensor {
        guard behaviours.rank == 3 else {
            throw .invalidArgument(name: "dynamicRouting", reason: "behaviours must be batch × length × d, got \(behaviours.shape)")
        }
        let (batch, length, d) = (behaviours.shape[0], behaviours.shape[1], behaviours.shape[2])
        guard bilinear.shape == [d, d] else {
            throw .dimensionMismatch(field: "dynamicRouting: bilinear map rows", expected: d, found: bilinear.shape.first ?? 0)
        }
        guard interests >= 1, iterations >= 1 else {
            throw .invalidArgument(name: "dynamicRouting", reason: "needs interests >= 1 and iterations >= 1")
        }
        guard agreementScale >= 0, agreementScale.isFinite else {
            throw .invalidArgument(name: "agreementScale", reason: "must be finite and >= 0, got \(agreementScale)")
        }
        guard routingLogits.count % interests == 0, routingLogits.count / interests >= length else {
            throw .dimensionMismatch(field: "dynamicRouting: routing logits", expected: length * interests, found: routingLogits.count)
        }
        guard mask.count == batch * length else {
            throw .dimensionMismatch(field: "dynamicRouting: mask", expected: batch * length, found: mask.count)
        }
        guard activeInterests.count == batch else {
            throw .dimensionMismatch(field: "dynamicRouting: active interests", expected: batch, found: activeInterests.count)
        }
        if let bad = activeInterests.first(where: { !(1...interests).contains($0) }) {
            throw .invalidArgument(name: "dynamicRouting", reason: "active interests \(bad) outside 1...\(interests)")
        }
        // û = (E · S) ⊙ mask: batch × length × d.
        let flat = try reshape(behaviours, to: [batch * length, d])
        let mapped = try reshape(try matmul(flat, bilinear), to: [batch, length, d])
        let hat = try mul(mapped, try constant(mask, shape: [batch, length, 1]))
        // Logits batch × length × K, the same start for every user; interests ≥ K'_u masked.
        var start = [Float](repeating: 0, count: batch * length * interests)
        var routeMask = [Float](repeating: 0, count: batch * length * interests)
        for b in 0..<batch {
            for l in 0..<length {
                let base = (b * length + l) * interests
                for k in 0..<interests {
                    start[base + k] = routingLogits[l * interests + k]
                    routeMask[base + k] = k < activeInterests[b] ? mask[b * length + l] : 0
                }
            }
        }
        var logits = try constant(start, shape: [batch, length, interests])
        var capsules = logits
        let frozenHat = stopGradientThroughRouting ? stopGradient(hat) : hat
        for round in 0..<iterations {
            let last = round + 1 == iterations
            let routed = last ? hat : frozenHat
            let w = try softmax(logits, mask: routeMask)                              // b × L × K
            let z = try batchedMatmul(w, routed, transposeA: true)                    // b × K × d
            capsules = squash(z)
            if !last {
                var agreement = try batchedMatmul(routed, capsules, transposeB: true)  // b × L × K
                if agreementScale != 1 { agreement = scale(agreement, by: agreementScale) }
                logits = try add(logits, agreement)
            }
        }
        return capsules
    }

    /// MIND's label-aware attention: the user vector for a target item from the interest capsules.
    ///
    /// `weights = softmax_k(power · (v_k · e))` over the active interests, `user = Σ_k weights_k v_k`.
    /// This is MIND's `pow(softmax(V·e), p)` renormalised (softmax weights raised to `p` are again a
    /// softmax, of `p` times the logits): `power = 0` averages the interests, `power = 1` is plain
    /// attention, a large power selects the interest closest to the target (argmax; `.infinity`
    /// makes that exact, with no gradient through the choice).
    ///
    /// - Parameters:
    ///   - interests: `batch × K × d`.
    ///   - target: `batch × d`, one target (label) item vector per user.
    ///   - power: `p ≥ 0`.
    ///   - activeInterests: per user, `K'_u` in `1...K`; the others get weight 0.
    /// - Returns: `batch × d`.
    /// - Complexity: O(batch · K · d).
    /// - Throws: ``ArborError`` for shapes that do not agree, a negative or NaN power.
    public func labelAwareAttention(
        interests: Tensor, target: Tensor, power: Float, activeInterests: [Int]
    ) throws(ArborError) -> Tensor {
        guard interests.rank == 3, target.rank == 2 else {
            throw .invalidArgument(name: "labelAwareAttention",
                                   reason: "needs batch × K × d interests and batch × d targets, got \(interests.shape), \(target.shape)")
        }
        let (batch, k, d) = (interests.shape[0], interests.shape[1], interests.shape[2])
        guard target.shape == [batch, d] else {
            throw .dimensionMismatch(field: "labelAwareAttention: target", expected: batch * d, found: target.count)
        }
        guard power >= 0 else { throw .invalidArgument(name: "power", reason: "must be >= 0, got \(power)") }
        guard activeInterests.count == batch, activeInterests.allSatisfy({ (1...k).contains($0) }) else {
            throw .invalidArgument(name: "labelAwareAttention", reason: "active interests must be \(batch) counts in 1...\(k)")
        }
        var mask = [Float](repeating: 0, count: batch * k)
        for b in 0..<batch { for j in 0..<activeInterests[b] { mask[b * k + j] = 1 } }
        let scores = try reshape(try batchedMatmul(interests, try reshape(target, to: [batch, d, 1])), to: [batch, 1, k])
        let weights: Tensor
        if power.isInfinite {
            // Exact argmax (first best on ties) among the active interests: a constant one-hot.
            var onehot = [Float](repeating: 0, count: batch * k)
            for b in 0..<batch {
                var best = 0
                for j in 1..<max(1, activeInterests[b]) where scores.values[b * k + j] > scores.values[b * k + best] { best = j }
                onehot[b * k + best] = 1
            }
            weights = try constant(onehot, shape: [batch, 1, k])
        } else {
            weights = try softmax(scale(scores, by: power), mask: mask)
        }
        return try reshape(try batchedMatmul(weights, interests), to: [batch, d])
    }
}
