#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Tape {
    /// Mean softmax cross-entropy over the rows of `logits` (`batch × classes`), each row's target
    /// class given by `targets`, with the sampling-bias correction of Yi et al. (RecSys 2019).
    ///
    /// The corrected logit is `z[b, c] = logits[b, c] − logQ[c]` (or `logQ[b, c]`), where `logQ` is
    /// the log of the probability that candidate `c` was sampled (in-batch: the item's
    /// frequency-based probability of appearing in a batch). `mask` (`batch × classes`, 1 keep,
    /// 0 drop) removes candidates from a row's softmax, e.g. accidental hits of the target among
    /// sampled negatives; a row's target is always kept. Loss per row:
    /// `logsumexp(z[b, kept]) − z[b, target]`; the result is their mean, shape `[1]`.
    /// Backward: `(softmax(z) − onehot(target)) / batch` on the kept columns. O(batch × classes).
    /// - Throws: ``ArborError`` if `logits` is not 2-D, a target is out of range, or `logQ` / `mask`
    ///   have another size.
    public func softmaxCrossEntropy(
        _ logits: Tensor, targets: [Int], logQ: [Float]? = nil, mask: [Float]? = nil
    ) throws(ArborError) -> Tensor {
        guard logits.rank == 2 else {
            throw .invalidArgument(name: "softmaxCrossEntropy", reason: "logits must be batch × classes, got \(logits.shape)")
        }
        let (batch, classes) = (logits.shape[0], logits.shape[1])
        guard targets.count == batch else {
            throw .dimensionMismatch(field: "softmaxCrossEntropy: targets", expected: batch, found: targets.count)
        }
        for t in targets where !(0..<classes).contains(t) {
            throw .invalidArgument(name: "softmaxCrossEntropy target", reason: "\(t) out of 0..<\(classes)")
        }
        let perRowQ: Bool
        if let logQ {
            if logQ.count == classes && logQ.count != batch * classes {
                perRowQ = false
            } else if logQ.count == batch * classes {
                perRowQ = true
            } else {
                throw .dimensionMismatch(field: "softmaxCrossEntropy: logQ", expected: classes, found: logQ.count)
            }
        } else {
            perRowQ = false
        }
        if let mask, mask.count != batch * classes {
            throw .dimensionMismatch(field: "softmaxCrossEntropy: mask", expected: batch * classes, found: mask.count)
        }
        let x = logits.values
        // Probabilities of the corrected, masked softmax (0 on dropped columns). One pass per row
        // over raw buffers; per element: z = x − logQ, then exp(z − max), sum, scale.
        var probs = [Float](repeating: 0, count: batch * classes)
        var total: Double = 0
        let noQ = [Float](), noMask = [Float]()
        let q = logQ ?? noQ, keep = mask ?? noMask
        let hasQ = logQ != nil, hasMask = mask != nil
        probs.withUnsafeMutableBufferPointer { pp in
            x.withUnsafeBufferPointer { px in
                q.withUnsafeBufferPointer { pq in
                    keep.withUnsafeBufferPointer { pk in
                        for b in 0..<batch {
                            let base = b * classes
                            let t = targets[b]
                            let row = pp.baseAddress! + base, xr = px.baseAddress! + base
                            let qr = hasQ ? pq.baseAddress! + (perRowQ ? base : 0) : nil
                            let kr = hasMask ? pk.baseAddress! + base : nil
                            var maxValue = -Float.infinity
                            for c in 0..<classes {
                                if let kr, kr[c] == 0, c != t { continue }
                                let z = xr[c] - (qr.map { $0[c] } ?? 0)
                                row[c] = z
                                maxValue = max(maxValue, z)
                            }
                            var sum: Float = 0
                            for c in 0..<classes {
                                if let kr, kr[c] == 0, c != t { row[c] = 0; continue }
                                let zt = row[c]
                                let e = expf(zt - maxValue)
                                if c == t { total -= Double(zt - maxValue) }
                                row[c] = e
                                sum += e
                            }
                            total += Double(logf(sum))
                            let inv = 1 / sum
                            for c in 0..<classes { row[c] *= inv }
                        }
                    }
                }
            }
        }
        let n = Float(max(1, batch))
        return record([Float(total) / n], shape: [1], requiresGrad: logits.requiresGrad) { tape, g in
            tape.accumulate(logits.id) { dx in
                let s = g[0] / n
                dx.withUnsafeMutableBufferPointer { pd in
                    probs.withUnsafeBufferPointer { pp in
                        for b in 0..<batch {
                            let base = b * classes
                            let d = pd.baseAddress! + base, p = pp.baseAddress! + base
                            for c in 0..<classes { d[c] += s * p[c] }
                            d[targets[b]] -= s
                        }
                    }
                }
            }
        }
    }

    /// In-batch softmax loss of a two-tower model: row `b` of `users` (`batch × d`) should score
    /// row `b` of `items` (`batch × d`) above the other items of the batch.
    ///
    /// Logits are `users · itemsᵀ / temperature` (`batch × batch`, one GEMM), corrected by
    /// `logQ[c]` = log of item `c`'s sampling probability (Yi et al.); when `itemIDs` is given,
    /// other columns holding the same item as a row's target are dropped from that row (accidental
    /// hits). Shape `[1]`. O(batch² · d).
    /// - Throws: ``ArborError`` for mismatched shapes or a non-positive temperature.
    public func inBatchSoftmaxLoss(
        users: Tensor, items: Tensor, logQ: [Float]? = nil, itemIDs: [Int]? = nil, temperature: Float = 1
    ) throws(ArborError) -> Tensor {
        guard temperature > 0 else {
            throw .invalidArgument(name: "temperature", reason: "must be positive, got \(temperature)")
        }
        guard users.rank == 2, items.rank == 2, users.shape[0] == items.shape[0] else {
            throw .dimensionMismatch(field: "inBatchSoftmaxLoss: item rows", expected: users.shape[0],
                                     found: items.rank == 2 ? items.shape[0] : items.count)
        }
        let batch = users.shape[0]
        if let logQ, logQ.count != batch {
            throw .dimensionMismatch(field: "inBatchSoftmaxLoss: logQ", expected: batch, found: logQ.count)
        }
        var mask: [Float]? = nil
        if let itemIDs {
            guard itemIDs.count == batch else {
                throw .dimensionMismatch(field: "inBatchSoftmaxLoss: itemIDs", expected: batch, found: itemIDs.count)
            }
            var m = [Float](repeating: 1, count: batch * batch)
            for b in 0..<batch {
                for c in 0..<batch where c != b && itemIDs[c] == itemIDs[b] { m[b * batch + c] = 0 }
            }
            mask = m
        }
        var logits = try matmul(users, items, transposeB: true)
        if temperature != 1 { logits = scale(logits, by: 1 / temperature) }
        return try softmaxCrossEntropy(logits, targets: Array(0..<batch), logQ: logQ, mask: mask)
    }

    /// Sampled softmax loss: row `b` of `users` (`batch × d`) against its positive (row `b` of
    /// `positives`, `batch × d`) and `S` shared sampled negatives (`negatives`, `S × d`).
    ///
    /// Logits are `[u_b · p_b, u_b · n_1, …, u_b · n_S] / temperature` (`batch × (1 + S)`), then
    /// corrected by the log sampling probabilities `positiveLogQ` (`batch`) and `negativeLogQ`
    /// (`S`) as in Yi et al.; negatives equal to the row's positive (by `positiveIDs` /
    /// `negativeIDs`, when given) are masked out. Shape `[1]`. O(batch · S · d).
    /// - Throws: ``ArborError`` for mismatched shapes or a non-positive temperature.
    public func sampledSoftmaxLoss(
        users: Tensor, positives: Tensor, negatives: Tensor,
        positiveLogQ: [Float]? = nil, negativeLogQ: [Float]? = nil,
        positiveIDs: [Int]? = nil, negativeIDs: [Int]? = nil, temperature: Float = 1
    ) throws(ArborError) -> Tensor {
        guard temperature > 0 else {
            throw .invalidArgument(name: "temperature", reason: "must be positive, got \(temperature)")
        }
        guard users.rank == 2, positives.shape == users.shape else {
            throw .invalidArgument(name: "sampledSoftmaxLoss",
                                   reason: "positives \(positives.shape) must match users \(users.shape)")
        }
        guard negatives.rank == 2, negatives.shape[1] == users.shape[1] else {
            throw .dimensionMismatch(field: "sampledSoftmaxLoss: negative width", expected: users.shape[1],
                                     found: negatives.rank == 2 ? negatives.shape[1] : negatives.count)
        }
        let batch = users.shape[0], samples = negatives.shape[0], classes = 1 + samples
        if let positiveLogQ, positiveLogQ.count != batch {
            throw .dimensionMismatch(field: "sampledSoftmaxLoss: positiveLogQ", expected: batch, found: positiveLogQ.count)
        }
        if let negativeLogQ, negativeLogQ.count != samples {
            throw .dimensionMismatch(field: "sampledSoftmaxLoss: negativeLogQ", expected: samples, found: negativeLogQ.count)
        }
        var logQ: [Float]? = nil
        if positiveLogQ != nil || negativeLogQ != nil {
            var q = [Float](repeating: 0, count: batch * classes)
            for b in 0..<batch {
                q[b * classes] = positiveLogQ?[b] ?? 0
                for s in 0..<samples { q[b * classes + 1 + s] = negativeLogQ?[s] ?? 0 }
            }
            logQ = q
        }
        var mask: [Float]? = nil
        if let positiveIDs, let negativeIDs {
            guard positiveIDs.count == batch, negativeIDs.count == samples else {
                throw .dimensionMismatch(field: "sampledSoftmaxLoss: ids", expected: batch + samples,
                                         found: positiveIDs.count + negativeIDs.count)
            }
            var m = [Float](repeating: 1, count: batch * classes)
            for b in 0..<batch {
                for s in 0..<samples where negativeIDs[s] == positiveIDs[b] { m[b * classes + 1 + s] = 0 }
            }
            mask = m
        }
        let positive = try reshape(try sum(try mul(users, positives), axis: 1), to: [batch, 1])
        let negative = try matmul(users, negatives, transposeB: true)
        var logits = try concat([positive, negative], axis: 1)
        if temperature != 1 { logits = scale(logits, by: 1 / temperature) }
        return try softmaxCrossEntropy(logits, targets: [Int](repeating: 0, count: batch), logQ: logQ, mask: mask)
    }
}
