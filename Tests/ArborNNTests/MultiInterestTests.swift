import ArborCore
import Testing
@testable import ArborNN

@Suite("MIND layers: routing, squash, label-aware attention, interest count")
struct MultiInterestTests {
    static let logits = MultiInterest.routingLogits(length: 5, interests: 3, seed: 7)

    @Test func activeInterestCountFollowsLog2OfHistory() {
        let k = 4
        let expected = [(0, 1), (1, 1), (2, 1), (3, 1), (4, 2), (7, 2), (8, 3), (15, 3), (16, 4), (1000, 4)]
        for (n, want) in expected {
            #expect(MultiInterest.activeInterests(historyLength: n, maxInterests: k) == want, "history \(n)")
        }
        #expect(MultiInterest.activeInterests(historyLength: 1000, maxInterests: 1) == 1)
    }

    @Test func routingLogitsAreFixedForASeedAndStandardNormal() {
        let a = MultiInterest.routingLogits(length: 50, interests: 4, seed: 1)
        #expect(a == MultiInterest.routingLogits(length: 50, interests: 4, seed: 1))
        #expect(a != MultiInterest.routingLogits(length: 50, interests: 4, seed: 2))
        let big = MultiInterest.routingLogits(length: 1000, interests: 10, seed: 3)
        let mean = big.reduce(0, +) / Float(big.count)
        let variance = big.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(big.count)
        #expect(abs(mean) < 0.05 && abs(variance - 1) < 0.1, "mean \(mean), variance \(variance)")
    }

    /// Finite differences through behaviours and the bilinear map, with padding and a user whose
    /// active interest count is below K.
    @Test func routingGradients() throws {
        let (batch, length, d, k) = (2, 4, 3, 3)
        let mask: [Float] = [1, 1, 1, 0, 1, 1, 1, 1]
        let behaviours = Input([batch, length, d], seed: 41)
        let s = Input([d, d], values: randomValues(d * d, seed: 42).map { $0 * 0.7 })
        try checkGradients([behaviours, s], step: 5e-3, tolerance: 5e-3) { t, x in
            try t.dynamicRouting(x[0], bilinear: x[1], routingLogits: Self.logits, interests: k, mask: mask,
                                 activeInterests: [2, 3], iterations: 3)
        }
    }

    /// Finite differences with a larger agreement scale β (the update `b += β û·u`).
    @Test func routingGradientsWithAgreementScale() throws {
        let (batch, length, d, k) = (2, 4, 3, 3)
        let mask: [Float] = [1, 1, 1, 0, 1, 1, 1, 1]
        let behaviours = Input([batch, length, d], seed: 51)
        let s = Input([d, d], values: randomValues(d * d, seed: 52).map { $0 * 0.7 })
        try checkGradients([behaviours, s], step: 2e-3, tolerance: 1e-2) { t, x in
            try t.dynamicRouting(x[0], bilinear: x[1], routingLogits: Self.logits, interests: k, mask: mask,
                                 activeInterests: [2, 3], iterations: 3, agreementScale: 3)
        }
    }

    /// β scales the update: β = 0 routes by the fixed start alone (equal to one round), β = 1 is
    /// MIND's routing, and a negative or infinite β is an error naming it.
    @Test func agreementScaleZeroIsOneRoundAndBadScalesAreErrors() throws {
        let (length, d, k) = (4, 3, 3)
        let t = Tape()
        let e = try t.constant(randomValues(length * d, seed: 53), shape: [1, length, d])
        let s = try t.constant(randomValues(d * d, seed: 54), shape: [d, d])
        func route(_ iterations: Int, _ beta: Float) throws -> [Float] {
            try t.dynamicRouting(e, bilinear: s, routingLogits: Self.logits, interests: k, mask: [1, 1, 1, 1],
                                 activeInterests: [3], iterations: iterations, agreementScale: beta).values
        }
        #expect(try route(3, 0) == route(1, 1))
        #expect(try route(3, 1) == t.dynamicRouting(e, bilinear: s, routingLogits: Self.logits, interests: k, mask: [1, 1, 1, 1],
                                                    activeInterests: [3], iterations: 3).values)
        #expect(try route(3, 5) != route(3, 1))
        for bad in [Float(-1), .infinity, .nan] {
            #expect { try route(3, bad) } throws: { error in
                guard case ArborError.invalidArgument(let name, _) = error else { return false }
                return name == "agreementScale"
            }
        }
    }

    /// ComiRec-DR's stop-gradient: the same forward values; the gradient is that of one routing
    /// round started from the final logits held constant (computed here from the capsules of the
    /// earlier rounds), which differs from the full gradient.
    @Test func stopGradientThroughRoutingTreatsTheRoutingAsConstant() throws {
        let (length, d, k, beta) = (5, 3, 3, Float(2))
        let eValues = randomValues(length * d, seed: 55), sValues = randomValues(d * d, seed: 56).map { $0 * 0.7 }
        let mask: [Float] = [1, 1, 1, 1, 0]
        func run(stop: Bool, iterations: Int, logits: [Float] = Self.logits) throws -> (values: [Float], grads: [[Float]]) {
            let t = Tape()
            let e = try t.variable(eValues, shape: [1, length, d]), s = try t.variable(sValues, shape: [d, d])
            let y = try t.dynamicRouting(e, bilinear: s, routingLogits: logits, interests: k, mask: mask, activeInterests: [3],
                                         iterations: iterations, agreementScale: beta, stopGradientThroughRouting: stop)
            try t.backward(t.sum(try t.mul(y, try t.constant(randomValues(y.count, seed: 57), shape: y.shape))))
            return (y.values, [t.gradient(of: e)!, t.gradient(of: s)!])
        }
        let full = try run(stop: false, iterations: 3), stopped = try run(stop: true, iterations: 3)
        #expect(full.values == stopped.values)
        // Final logits: start + β Σ_{r < 2} û_l · u_k(r), u(r) = the capsules after r + 1 rounds.
        var hat = [Float](repeating: 0, count: length * d)
        for l in 0..<length where mask[l] == 1 {
            for j in 0..<d { for i in 0..<d { hat[l * d + j] += eValues[l * d + i] * sValues[i * d + j] } }
        }
        var logits = Self.logits
        for r in 1...2 {
            let u = try run(stop: false, iterations: r).values
            for l in 0..<length { for c in 0..<k { for j in 0..<d { logits[l * k + c] += beta * hat[l * d + j] * u[c * d + j] } } }
        }
        let frozen = try run(stop: false, iterations: 1, logits: logits)
        for (i, value) in frozen.values.enumerated() { #expect(abs(value - stopped.values[i]) < 1e-5) }
        for (g, want) in zip(stopped.grads, frozen.grads) {
            #expect(relativeError(g.map(Double.init), want.map(Double.init)) < 1e-4)
        }
        #expect(relativeError(stopped.grads[0].map(Double.init), full.grads[0].map(Double.init)) > 1e-3)
    }

    @Test func routingMasksPaddingAndInactiveInterests() throws {
        let (length, d, k) = (4, 3, 3)
        let t = Tape()
        var values = randomValues(length * d, seed: 43)
        let s = try t.constant(randomValues(d * d, seed: 44), shape: [d, d])
        let a = try t.dynamicRouting(try t.constant(values, shape: [1, length, d]), bilinear: s, routingLogits: Self.logits,
                                     interests: k, mask: [1, 1, 1, 0], activeInterests: [2])
        // Changing the padded behaviour changes nothing; the inactive capsule is zero.
        for j in 0..<d { values[3 * d + j] = 100 }
        let b = try t.dynamicRouting(try t.constant(values, shape: [1, length, d]), bilinear: s, routingLogits: Self.logits,
                                     interests: k, mask: [1, 1, 1, 0], activeInterests: [2])
        #expect(a.values == b.values)
        #expect(a.values[2 * d ..< 3 * d].allSatisfy { $0 == 0 })
        #expect(a.values[0 ..< d].contains { $0 != 0 })
    }

    @Test func squashGradientsAndLength() throws {
        try checkGradients([Input([3, 4], seed: 45)], step: 5e-3) { t, x in t.squash(x[0]) }
        let t = Tape()
        let y = t.squash(try t.constant([3, 4, 0, 0], shape: [2, 2]))
        // ‖s‖ = 5 → length 25/26; the zero row stays zero.
        #expect(abs((y.values[0] * y.values[0] + y.values[1] * y.values[1]).squareRoot() - 25 / 26) < 1e-5)
        #expect(y.values[2] == 0 && y.values[3] == 0)
    }

    @Test(arguments: [Float(0), 1, 3])
    func labelAwareAttentionGradients(power: Float) throws {
        let (batch, k, d) = (2, 3, 4)
        try checkGradients([Input([batch, k, d], seed: 46), Input([batch, d], seed: 47)], step: 5e-3, tolerance: 5e-3) { t, x in
            try t.labelAwareAttention(interests: x[0], target: x[1], power: power, activeInterests: [3, 2])
        }
    }

    @Test func labelAwareAttentionLargePowerSelectsBestActiveInterest() throws {
        let t = Tape()
        // Interest 2 is closest to the target but inactive for this user: interest 1 wins.
        let v = try t.constant([1, 0, 0, 1, 5, 5], shape: [1, 3, 2])
        let e = try t.constant([0.1, 1], shape: [1, 2])
        for power in [Float(1000), .infinity] {
            let u = try t.labelAwareAttention(interests: v, target: e, power: power, activeInterests: [2])
            #expect(abs(u.values[0] - 0) < 1e-4 && abs(u.values[1] - 1) < 1e-4, "power \(power): \(u.values)")
        }
        let mean = try t.labelAwareAttention(interests: v, target: e, power: 0, activeInterests: [2])
        #expect(abs(mean.values[0] - 0.5) < 1e-6 && abs(mean.values[1] - 0.5) < 1e-6)
    }

    @Test func badShapesAreErrors() throws {
        let t = Tape()
        let e = try t.constant(randomValues(2 * 3 * 2, seed: 48), shape: [2, 3, 2])
        let s = try t.constant([1, 0, 0, 1], shape: [2, 2])
        #expect(throws: ArborError.self) {
            try t.dynamicRouting(e, bilinear: s, routingLogits: Self.logits, interests: 3, mask: [1, 1, 1, 1, 1, 1],
                                 activeInterests: [4, 1])
        }
        #expect(throws: ArborError.self) {
            try t.dynamicRouting(e, bilinear: s, routingLogits: [0, 0], interests: 3, mask: [1, 1, 1, 1, 1, 1],
                                 activeInterests: [1, 1])
        }
        #expect(throws: ArborError.self) {
            try t.labelAwareAttention(interests: e, target: s, power: -1, activeInterests: [1, 1])
        }
    }
}
