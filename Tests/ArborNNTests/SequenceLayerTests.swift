import Testing
@testable import ArborNN

/// Finite-difference gradient checks of SDM's layers: the fused LSTM (several steps, several
/// layers, padding), multi-head self-attention with masking, the user attention and the gate.
/// Tolerance: relative error below 1e-3 with step 1e-2 (the suite's default), Float32 forward.
@Suite("Sequence layers: LSTM, self-attention, user attention, gate")
struct SequenceLayerTests {
    /// A mask with padding in the middle and at the end, and one row fully padded but for one step.
    static let mask: [Float] = [1, 1, 0, 1,  1, 1, 1, 0,  1, 0, 0, 0]

    @Test func lstmGradientsAcrossStepsWithPadding() throws {
        let (batch, length, inputs, hidden) = (3, 4, 3, 2)
        let x = Input([batch, length, inputs], seed: 201)
        let wx = Input([inputs, 4 * hidden], seed: 202)
        let wh = Input([hidden, 4 * hidden], seed: 203)
        let b = Input([4 * hidden], seed: 204)
        try checkGradients([x, wx, wh, b]) { t, v in
            try t.lstm(v[0], mask: Self.mask, inputWeight: v[1], recurrentWeight: v[2], bias: v[3])
        }
    }

    @Test func lstmMatchesAStepByStepReference() throws {
        // One sequence, one unit: h_t computed by hand from the equations.
        let t = Tape()
        let x = try t.constant([0.5, -0.3], shape: [1, 2, 1])
        let wx = try t.constant([0.1, 0.2, 0.3, 0.4], shape: [1, 4])
        let wh = try t.constant([0.5, -0.5, 0.25, 0.75], shape: [1, 4])
        let b = try t.constant([0, 1, 0, 0], shape: [4])
        let y = try t.lstm(x, mask: [1, 1], inputWeight: wx, recurrentWeight: wh, bias: b)
        func sig(_ v: Double) -> Double { 1 / (1 + Foundation_exp(-v)) }
        var h = 0.0, c = 0.0
        var expected: [Double] = []
        for xv in [0.5, -0.3] {
            let i = sig(0.1 * xv + 0.5 * h), f = sig(0.2 * xv - 0.5 * h + 1)
            let g = Foundation_tanh(0.3 * xv + 0.25 * h), o = sig(0.4 * xv + 0.75 * h)
            c = f * c + i * g
            h = o * Foundation_tanh(c)
            expected.append(h)
        }
        for k in 0 ..< 2 { #expect(abs(Double(y.values[k]) - expected[k]) < 1e-6) }
    }

    @Test func paddedStepsCarryTheStateAndOutputZero() throws {
        let t = Tape()
        var rng = TestRNG(seed: 5)
        let lstm = try LSTM(inputs: 2, hidden: 3, layerCount: 1, rng: &rng)
        let a: [Float] = [0.3, -0.2, 0.7, 0.1]
        // The same two real steps with a pad between them and without it.
        let padded = try lstm(try t.constant([a[0], a[1], 9, 9, a[2], a[3]], shape: [1, 3, 2]), mask: [1, 0, 1], on: t)
        let dense = try lstm(try t.constant(a, shape: [1, 2, 2]), mask: [1, 1], on: t)
        #expect(padded.values[3 ..< 6].allSatisfy { $0 == 0 })
        for j in 0 ..< 3 { #expect(abs(padded.values[6 + j] - dense.values[3 + j]) < 1e-6) }
    }

    @Test func stackedLSTMParameterGradients() throws {
        var rng = TestRNG(seed: 7)
        let lstm = try LSTM(inputs: 3, hidden: 2, layerCount: 2, rng: &rng)
        let x = randomValues(3 * 4 * 3, seed: 208)
        try checkParameterGradients(lstm.parameters) { t in
            try lstm(try t.constant(x, shape: [3, 4, 3]), mask: Self.mask, on: t)
        }
    }

    @Test func selfAttentionGradientsWithMask() throws {
        var rng = TestRNG(seed: 11)
        let attention = try MultiHeadSelfAttention(dimension: 4, heads: 2, rng: &rng)
        try checkGradients([Input([3, 4, 4], seed: 211)]) { t, v in try attention(v[0], mask: Self.mask, on: t) }
        try checkParameterGradients(attention.parameters) { t in
            try attention(try t.constant(randomValues(48, seed: 212), shape: [3, 4, 4]), mask: Self.mask, on: t)
        }
    }

    @Test func selfAttentionIgnoresPaddedKeys() throws {
        var rng = TestRNG(seed: 13)
        let attention = try MultiHeadSelfAttention(dimension: 4, heads: 2, rng: &rng)
        let t = Tape()
        var x = randomValues(12, seed: 214)
        let a = try attention(try t.constant(x, shape: [1, 3, 4]), mask: [1, 1, 0], on: t)
        for j in 8 ..< 12 { x[j] = 50 }  // the padded position's values change
        let b = try attention(try t.constant(x, shape: [1, 3, 4]), mask: [1, 1, 0], on: t)
        for j in 0 ..< 8 { #expect(abs(a.values[j] - b.values[j]) < 1e-6) }
    }

    @Test func userAttentionGradients() throws {
        try checkGradients([Input([3, 4], seed: 221), Input([3, 4, 4], seed: 222)]) { t, v in
            try t.userAttention(query: v[0], keys: v[1], mask: Self.mask)
        }
    }

    @Test func userAttentionOfAnEmptyRowIsZero() throws {
        let t = Tape()
        let y = try t.userAttention(query: try t.constant([1, 2], shape: [1, 2]),
                                    keys: try t.constant([3, 4, 5, 6], shape: [1, 2, 2]), mask: [0, 0])
        #expect(y.values == [0, 0])
    }

    @Test func gateGradientsAndFallback() throws {
        let hasLong: [Float] = [1, 0, 1]
        try checkGradients([Input([3, 4], seed: 231), Input([3, 4], seed: 232), Input([3, 4], seed: 233)]) { t, v in
            try t.gatedFusion(gate: t.sigmoid(v[0]), long: v[1], short: v[2], hasLong: hasLong)
        }
        let t = Tape()
        let g = try t.constant([0.25, 0.5], shape: [2, 1])
        let p = try t.constant([4, 4], shape: [2, 1]), s = try t.constant([8, 8], shape: [2, 1])
        let o = try t.gatedFusion(gate: g, long: p, short: s, hasLong: [1, 0])
        #expect(o.values == [0.75 * 4 + 0.25 * 8, 8])  // row 1 falls back to the short term
    }
}

#if canImport(Glibc)
import Glibc
private func Foundation_exp(_ v: Double) -> Double { Glibc.exp(v) }
private func Foundation_tanh(_ v: Double) -> Double { Glibc.tanh(v) }
#else
import Darwin
private func Foundation_exp(_ v: Double) -> Double { Darwin.exp(v) }
private func Foundation_tanh(_ v: Double) -> Double { Darwin.tanh(v) }
#endif
