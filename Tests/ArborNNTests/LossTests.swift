import Testing
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
@testable import ArborNN

@Suite("Losses: values, gradients and the logQ correction")
struct LossTests {
    @Test func checkerCatchesAWrongGradient() throws {
        // A deliberately wrong op (backward doubles the gradient) must fail the check.
        let worst = try checkGradients([Input([2, 3], seed: 1)], expectPass: false) { t, x in
            let a = x[0]
            return t.record(a.values, shape: a.shape, requiresGrad: a.requiresGrad) { tape, g in
                tape.accumulate(a.id) { d in for i in 0..<d.count { d[i] += 2 * g[i] } }
            }
        }
        #expect(worst > 0.1)
    }

    @Test func binaryCrossEntropyGradient() throws {
        let labels: [Float] = [1, 0, 1, 0, 0, 1]
        try checkGradients([Input([2, 3], seed: 60)]) { t, x in
            try t.binaryCrossEntropyWithLogits(t.scale(x[0], by: 3), labels: labels)
        }
        let weights: [Float] = [1, 2, 0.5, 1, 3, 0]
        try checkGradients([Input([6], seed: 61)]) { t, x in
            try t.binaryCrossEntropyWithLogits(x[0], labels: labels, weights: weights)
        }
    }

    @Test func binaryCrossEntropyValueIsStableForLargeLogits() throws {
        let t = Tape()
        let z = try t.constant([0, 100, -100, 2], shape: [4])
        let loss = try t.binaryCrossEntropyWithLogits(z, labels: [1, 1, 0, 0])
        // log 2 + 0 + 0 + (2 + log(1 + e^-2))
        let expected = (Float(0.6931472) + 2 + log1pf(expf(-2))) / 4
        #expect(abs(loss.scalar - expected) < 1e-6)
        try loss.checkFinite()
    }

    @Test func softmaxCrossEntropyGradientWithLogQAndMask() throws {
        let targets = [2, 0, 3]
        let logQ: [Float] = [-1, -2, -0.5, -3]
        let mask: [Float] = [1, 0, 1, 1, /**/ 1, 1, 1, 0, /**/ 0, 1, 1, 1]
        try checkGradients([Input([3, 4], seed: 62)]) { t, x in
            try t.softmaxCrossEntropy(t.scale(x[0], by: 2), targets: targets, logQ: logQ, mask: mask)
        }
        let perRow = randomValues(12, seed: 63)
        try checkGradients([Input([3, 4], seed: 64)]) { t, x in
            try t.softmaxCrossEntropy(x[0], targets: targets, logQ: perRow)
        }
    }

    @Test func softmaxCrossEntropyValue() throws {
        let t = Tape()
        let logits = try t.constant([1, 2, 3], shape: [1, 3])
        let loss = try t.softmaxCrossEntropy(logits, targets: [0])
        let expected = logf(expf(1) + expf(2) + expf(3)) - 1
        #expect(abs(loss.scalar - expected) < 1e-5)
    }

    @Test func logQSubtractsTheLogSamplingProbabilityFromEachLogit() throws {
        let logits = randomValues(12, seed: 65)
        let logQ: [Float] = [-0.5, -1.5, -3, -0.1]
        let t = Tape()
        let corrected = try t.softmaxCrossEntropy(try t.constant(logits, shape: [3, 4]), targets: [1, 3, 0], logQ: logQ)
        var shifted = logits
        for b in 0..<3 { for c in 0..<4 { shifted[b * 4 + c] -= logQ[c] } }
        let manual = try t.softmaxCrossEntropy(try t.constant(shifted, shape: [3, 4]), targets: [1, 3, 0])
        #expect(abs(corrected.scalar - manual.scalar) < 1e-6)
        // A uniform logQ changes nothing (softmax is shift-invariant)...
        let uniform = try t.softmaxCrossEntropy(try t.constant(logits, shape: [3, 4]), targets: [1, 3, 0],
                                                logQ: [Float](repeating: -2, count: 4))
        let plain = try t.softmaxCrossEntropy(try t.constant(logits, shape: [3, 4]), targets: [1, 3, 0])
        #expect(abs(uniform.scalar - plain.scalar) < 1e-6)
        // ...and a rare positive beside a popular negative: corrected logits [0 + 3, 0 + 0.1].
        let popularNegative = try t.softmaxCrossEntropy(try t.constant([0, 0], shape: [1, 2]), targets: [0],
                                                        logQ: [-3, -0.1])
        #expect(abs(popularNegative.scalar - log1pf(expf(-2.9))) < 1e-6)
    }

    @Test func inBatchSoftmaxGradientAndAccidentalHits() throws {
        let logQ: [Float] = [-1, -2, -1.5]
        try checkGradients([Input([3, 4], seed: 66), Input([3, 4], seed: 67)]) { t, x in
            try t.inBatchSoftmaxLoss(users: x[0], items: x[1], logQ: logQ, itemIDs: [7, 8, 7], temperature: 0.5)
        }
        // With the duplicate masked, row 0 ignores column 2 (the same item as its target).
        let t = Tape()
        let u = try t.constant(randomValues(12, seed: 68), shape: [3, 4])
        let i = try t.constant(randomValues(12, seed: 69), shape: [3, 4])
        let masked = try t.inBatchSoftmaxLoss(users: u, items: i, itemIDs: [7, 8, 7])
        let logits = try t.matmul(u, i, transposeB: true)
        let manual = try t.softmaxCrossEntropy(logits, targets: [0, 1, 2],
                                               mask: [1, 1, 0, /**/ 1, 1, 1, /**/ 0, 1, 1])
        #expect(abs(masked.scalar - manual.scalar) < 1e-6)
    }

    @Test func sampledSoftmaxGradientAndLogQ() throws {
        let posQ: [Float] = [-1, -2]
        let negQ: [Float] = [-0.5, -3, -1]
        try checkGradients([Input([2, 3], seed: 70), Input([2, 3], seed: 71), Input([3, 3], seed: 72)]) { t, x in
            try t.sampledSoftmaxLoss(users: x[0], positives: x[1], negatives: x[2],
                                     positiveLogQ: posQ, negativeLogQ: negQ,
                                     positiveIDs: [5, 6], negativeIDs: [6, 1, 2], temperature: 0.7)
        }
        // Equal to softmax cross-entropy over [u·p, u·N] − logQ with target 0.
        let t = Tape()
        let u = try t.constant(randomValues(6, seed: 73), shape: [2, 3])
        let p = try t.constant(randomValues(6, seed: 74), shape: [2, 3])
        let n = try t.constant(randomValues(9, seed: 75), shape: [3, 3])
        let loss = try t.sampledSoftmaxLoss(users: u, positives: p, negatives: n, positiveLogQ: posQ, negativeLogQ: negQ)
        var logits = [Float](repeating: 0, count: 8)
        for b in 0..<2 {
            for j in 0..<3 { logits[b * 4] += u.values[b * 3 + j] * p.values[b * 3 + j] }
            logits[b * 4] -= posQ[b]
            for s in 0..<3 {
                for j in 0..<3 { logits[b * 4 + 1 + s] += u.values[b * 3 + j] * n.values[s * 3 + j] }
                logits[b * 4 + 1 + s] -= negQ[s]
            }
        }
        var expected: Float = 0
        for b in 0..<2 {
            let row = logits[b * 4 ..< b * 4 + 4]
            let m = row.max()!
            expected += logf(row.map { expf($0 - m) }.reduce(0, +)) + m - row.first!
        }
        #expect(abs(loss.scalar - expected / 2) < 1e-5)
    }

    @Test func checkFiniteNamesTheRow() throws {
        let t = Tape()
        let x = try t.constant([1, 2, .nan, 4], shape: [2, 2])
        #expect(throws: ArborError.nonFiniteValue(field: "scores", row: 1)) { try x.checkFinite("scores") }
        let inf = try t.constant([.infinity], shape: [1])
        #expect(throws: ArborError.nonFiniteValue(field: "loss", row: 0)) { try inf.checkFinite() }
    }
}
