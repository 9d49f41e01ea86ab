import Testing
@testable import ArborNN

@Suite("Finite-difference gradients of every op")
struct OpGradientTests {
    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func matmul(transposeA: Bool, transposeB: Bool) throws {
        let (m, k, n) = (3, 4, 2)
        let a = Input(transposeA ? [k, m] : [m, k], seed: 1)
        let b = Input(transposeB ? [n, k] : [k, n], seed: 2)
        try checkGradients([a, b]) { t, x in try t.matmul(x[0], x[1], transposeA: transposeA, transposeB: transposeB) }
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func batchedMatmul(transposeA: Bool, transposeB: Bool) throws {
        let (batch, m, k, n) = (2, 3, 4, 2)
        let a = Input(transposeA ? [batch, k, m] : [batch, m, k], seed: 3)
        let b = Input(transposeB ? [batch, n, k] : [batch, k, n], seed: 4)
        try checkGradients([a, b]) { t, x in
            try t.batchedMatmul(x[0], x[1], transposeA: transposeA, transposeB: transposeB)
        }
    }

    @Test func matmulMatchesNaiveProduct() throws {
        let t = Tape()
        let a = try t.constant([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let b = try t.constant([1, 0, 0, 1, 1, 1], shape: [3, 2])
        let c = try t.matmul(a, b)
        #expect(c.shape == [2, 2])
        #expect(c.values == [4, 5, 10, 11])
        let ct = try t.matmul(a, a, transposeB: true)
        #expect(ct.values == [14, 32, 32, 77])
    }

    @Test func addWithBroadcasting() throws {
        try checkGradients([Input([2, 3], seed: 5), Input([3], seed: 6)]) { t, x in try t.add(x[0], x[1]) }
        try checkGradients([Input([2, 1, 3], seed: 7), Input([4, 1], seed: 8)]) { t, x in try t.add(x[0], x[1]) }
    }

    @Test func subWithBroadcasting() throws {
        try checkGradients([Input([3, 1], seed: 9), Input([3, 4], seed: 10)]) { t, x in try t.sub(x[0], x[1]) }
    }

    @Test func elementwiseProduct() throws {
        try checkGradients([Input([2, 3], seed: 11), Input([2, 3], seed: 12)]) { t, x in try t.mul(x[0], x[1]) }
        try checkGradients([Input([2, 4, 3], seed: 13), Input([2, 1, 3], seed: 14)]) { t, x in try t.mul(x[0], x[1]) }
    }

    @Test func biasAdd() throws {
        try checkGradients([Input([4, 3], seed: 15), Input([3], seed: 16)]) { t, x in try t.addBias(x[0], x[1]) }
        try checkGradients([Input([2, 2, 3], seed: 17), Input([3], seed: 18)]) { t, x in try t.addBias(x[0], x[1]) }
    }

    @Test func explicitBroadcast() throws {
        try checkGradients([Input([1, 3], seed: 19)]) { t, x in try t.broadcast(x[0], to: [2, 4, 3]) }
        try checkGradients([Input([2, 1, 3], seed: 20)]) { t, x in try t.broadcast(x[0], to: [2, 5, 3]) }
    }

    @Test func scaleAndShift() throws {
        try checkGradients([Input([2, 3], seed: 21)]) { t, x in t.scale(x[0], by: -2.5) }
        try checkGradients([Input([2, 3], seed: 22)]) { t, x in t.addScalar(x[0], 3) }
    }

    @Test func relu() throws {
        try checkGradients([Input([3, 4], seed: 23)]) { t, x in t.relu(x[0]) }
    }

    @Test func preluPerFeatureAndShared() throws {
        try checkGradients([Input([3, 4], seed: 24), Input([4], seed: 25)]) { t, x in try t.prelu(x[0], alpha: x[1]) }
        try checkGradients([Input([2, 2, 3], seed: 26), Input([1], seed: 27)]) { t, x in try t.prelu(x[0], alpha: x[1]) }
    }

    @Test func sigmoid() throws {
        try checkGradients([Input([3, 4], seed: 28)]) { t, x in t.sigmoid(t.scale(x[0], by: 3)) }
    }

    @Test func tanh() throws {
        try checkGradients([Input([3, 4], seed: 29)]) { t, x in t.tanh(t.scale(x[0], by: 2)) }
    }

    @Test func softmax() throws {
        try checkGradients([Input([3, 5], seed: 30)]) { t, x in try t.softmax(t.scale(x[0], by: 2)) }
    }

    @Test func maskedSoftmaxPerValueMask() throws {
        let mask: [Float] = [1, 1, 0, 1, 0, /**/ 0, 1, 1, 1, 1, /**/ 1, 0, 0, 0, 0]
        try checkGradients([Input([3, 5], seed: 31)]) { t, x in try t.softmax(x[0], mask: mask) }
    }

    @Test func maskedSoftmaxSequenceMask() throws {
        // batch 2 × rows 3 × length 4, mask batch × length.
        let mask: [Float] = [1, 1, 1, 0, /**/ 1, 0, 0, 0]
        try checkGradients([Input([2, 3, 4], seed: 32)]) { t, x in try t.softmax(x[0], mask: mask) }
    }

    @Test func concatAlongEachAxis() throws {
        try checkGradients([Input([2, 3], seed: 33), Input([2, 2], seed: 34), Input([2, 1], seed: 35)]) { t, x in
            try t.concat(x, axis: 1)
        }
        try checkGradients([Input([1, 3], seed: 36), Input([2, 3], seed: 37)]) { t, x in try t.concat(x, axis: 0) }
        try checkGradients([Input([2, 2, 3], seed: 38), Input([2, 1, 3], seed: 39)]) { t, x in try t.concat(x, axis: 1) }
    }

    @Test func sliceAlongEachAxis() throws {
        try checkGradients([Input([3, 5], seed: 40)]) { t, x in try t.slice(x[0], axis: 1, range: 1..<4) }
        try checkGradients([Input([3, 5], seed: 41)]) { t, x in try t.slice(x[0], axis: 0, range: 2..<3) }
        try checkGradients([Input([2, 4, 3], seed: 42)]) { t, x in try t.slice(x[0], axis: 1, range: 0..<2) }
    }

    @Test func reshape() throws {
        try checkGradients([Input([2, 3, 2], seed: 43)]) { t, x in try t.reshape(x[0], to: [6, 2]) }
        try checkGradients([Input([2, 3, 2], seed: 43)]) { t, x in
            let r = try t.reshape(x[0], to: [3, 4])
            return try t.mul(r, r)
        }
    }

    @Test func sumAndMeanOfAll() throws {
        try checkGradients([Input([2, 3], seed: 44)]) { t, x in t.sum(x[0]) }
        try checkGradients([Input([2, 3, 2], seed: 45)]) { t, x in t.mean(x[0]) }
    }

    @Test(arguments: [0, 1, 2, -1])
    func sumAndMeanAlongAxis(axis: Int) throws {
        try checkGradients([Input([2, 3, 4], seed: 46)]) { t, x in try t.sum(x[0], axis: axis) }
        try checkGradients([Input([2, 3, 4], seed: 47)]) { t, x in try t.mean(x[0], axis: axis) }
    }

    @Test func maskedMean() throws {
        let mask: [Float] = [1, 1, 0, 0, /**/ 1, 1, 1, 1, /**/ 0, 0, 0, 0]
        try checkGradients([Input([3, 4, 2], seed: 48)]) { t, x in try t.maskedMean(x[0], mask: mask) }
    }

    @Test func gatherRowsOfTensor() throws {
        try checkGradients([Input([4, 3], seed: 49)]) { t, x in try t.gatherRows(x[0], indices: [2, 0, 2, -1, 3]) }
        try checkGradients([Input([4, 3], seed: 50)]) { t, x in
            try t.gatherRows(x[0], indices: [1, 1, 3, 0], indexShape: [2, 2])
        }
    }

    @Test func gatherFromSparseTable() throws {
        let table = try Parameter(name: "t", shape: [5, 3], values: randomValues(15, seed: 51), sparse: true)
        try checkParameterGradients([table]) { t in try t.gather(table, indices: [4, 1, 4, -1, 0], indexShape: [1, 5]) }
        let dense = try Parameter(name: "d", shape: [5, 3], values: randomValues(15, seed: 52))
        try checkParameterGradients([dense]) { t in try t.gather(dense, indices: [3, 3, 2]) }
    }

    @Test func l2Normalize() throws {
        try checkGradients([Input([3, 4], seed: 53)]) { t, x in t.l2Normalize(x[0]) }
        try checkGradients([Input([2, 2, 3], seed: 54)]) { t, x in t.l2Normalize(x[0]) }
    }

    @Test func parameterLeaf() throws {
        let p = try Parameter(name: "p", shape: [3, 2], values: randomValues(6, seed: 55))
        try checkParameterGradients([p]) { t in try t.mul(t.parameter(p), t.parameter(p)) }
    }

    @Test func division() throws {
        try checkGradients([Input([2, 3], seed: 56), Input([3], seed: 57)]) { t, x in try t.div(x[0], x[1]) }
    }

    @Test func expAndLog() throws {
        try checkGradients([Input([2, 3], seed: 58)]) { t, x in t.exp(x[0]) }
        try checkGradients([Input([2, 3], seed: 59)]) { t, x in t.log(t.exp(x[0])) }
        try checkGradients([Input([2, 3], seed: 60)]) { t, x in t.log(t.addScalar(try t.mul(x[0], x[0]), 0.5)) }
    }

    @Test func squash() throws {
        try checkGradients([Input([3, 4], seed: 61)]) { t, x in t.squash(x[0]) }
        try checkGradients([Input([2, 2, 3], seed: 62)]) { t, x in t.squash(t.scale(x[0], by: 0.3)) }
        let t = Tape()
        let v = t.squash(try t.constant([3, 4], shape: [1, 2]))
        #expect(abs(v.values[0] - 0.6 * 25 / 26) < 1e-6 && abs(v.values[1] - 0.8 * 25 / 26) < 1e-6)
    }

    @Test func transpose() throws {
        try checkGradients([Input([3, 4], seed: 63)]) { t, x in try t.transpose(x[0]) }
        try checkGradients([Input([2, 3, 4], seed: 64)]) { t, x in try t.transpose(x[0]) }
        let t = Tape()
        #expect(try t.transpose(t.constant([1, 2, 3, 4, 5, 6], shape: [2, 3])).values == [1, 4, 2, 5, 3, 6])
    }

    @Test func dropoutGradientAndSeed() throws {
        try checkGradients([Input([4, 5], seed: 65)]) { t, x in
            var rng = TestRNG(seed: 9)  // same mask on every evaluation
            return try t.dropout(x[0], rate: 0.3, rng: &rng)
        }
        var rng = TestRNG(seed: 10)
        let t = Tape()
        let y = try t.dropout(t.constant([Float](repeating: 1, count: 10_000), shape: [10_000]), rate: 0.25, rng: &rng)
        let kept = y.values.filter { $0 != 0 }
        #expect(kept.allSatisfy { abs($0 - 4.0 / 3.0) < 1e-6 })
        #expect(abs(Double(kept.count) / 10_000 - 0.75) < 0.02)
    }

    @Test func stopGradientBlocksTheFlow() throws {
        let t = Tape()
        let x = try t.variable([1, 2], shape: [2])
        let y = try t.mul(x, t.stopGradient(x))  // d/dx of x·c with c = x held fixed is c
        try t.backward(t.sum(y))
        #expect(t.gradient(of: x) == [1, 2])
    }
}
