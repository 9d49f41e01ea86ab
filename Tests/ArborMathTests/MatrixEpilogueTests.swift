import Testing
@testable import ArborMath

/// The dense-layer epilogue (bias, then PReLU) and the attention kernel's helpers against plain loops.
@Suite struct MatrixEpilogueTests {
    @Test func addBiasThenPReLUEqualsTheDefinition() throws {
        var rng = SplitMix64(seed: 4)
        let rows = 7, cols = 5
        let values = (0..<(rows * cols)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        let bias = (0..<cols).map { _ in rng.nextUnitFloat() - 0.5 }
        let slopes: [Float] = [0, 0.25, 1, -0.5, 0.1]
        var m = try Matrix(rows: rows, cols: cols, values: values)
        m.addBias(bias, thenPReLU: slopes)
        var onlyBias = try Matrix(rows: rows, cols: cols, values: values)
        onlyBias.addBias(bias, thenPReLU: nil)
        var onlyPReLU = try Matrix(rows: rows, cols: cols, values: values)
        onlyPReLU.applyPReLU(slopes: slopes)
        for r in 0..<rows {
            for c in 0..<cols {
                let x = values[r * cols + c] + bias[c]
                #expect(m[r, c] == (x < 0 ? slopes[c] * x : x))
                #expect(onlyBias[r, c] == x)
                let y = values[r * cols + c]
                #expect(onlyPReLU[r, c] == (y < 0 ? slopes[c] * y : y))
            }
        }
    }

    @Test func softmaxRowsAndProductFeatures() throws {
        var x = try Matrix(rows: 2, cols: 3, values: [0, 1, 2, 5, 5, 5])
        AttentionKernel.softmaxRows(&x)
        #expect(abs(x[0, 2] - 0.66524) < 1e-4 && abs(x[1, 0] - 1.0 / 3) < 1e-6)
        let p = try Matrix(rows: 2, cols: 2, values: [1, 2, 3, 4])
        let n = try Matrix(rows: 2, cols: 2, values: [5, 6, 7, 8])
        var f = Matrix(rows: 0, cols: 6)
        AttentionKernel.productFeatures(pooled: p, nodes: n, into: &f)
        #expect(f.values == [1, 2, 5, 6, 5, 12, 3, 4, 7, 8, 21, 32])
    }
}
