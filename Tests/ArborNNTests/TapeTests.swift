import Testing
@testable import ArborNN

@Suite("Tape mechanics")
struct TapeTests {
    @Test func gradientsAccumulateAcrossBackwardPassesUntilTheStep() throws {
        let p = try Parameter(name: "p", shape: [2], values: [1, 2])
        for _ in 0..<2 {
            let t = Tape()
            try t.backward(t.sum(t.scale(t.parameter(p), by: 3)))
        }
        #expect(p.grad == [6, 6])
        SGD(learningRate: 0.5).step([p])
        #expect(p.value == [-2, -1])
        #expect(!p.hasGradient)
    }

    @Test func aTapeRunsBackwardOnce() throws {
        let t = Tape()
        let x = try t.variable([1, 2], shape: [2])
        let loss = t.sum(x)
        try t.backward(loss)
        #expect(throws: ArborError.invalidArgument(name: "backward", reason: "this tape already ran backward")) {
            try t.backward(loss)
        }
    }

    @Test func constantsHaveNoGradientAndFrozenParametersAreSkipped() throws {
        let frozen = try Parameter(name: "f", shape: [2], values: [1, 1])
        frozen.requiresGrad = false
        let t = Tape()
        let c = try t.constant([1, 2], shape: [2])
        let x = try t.variable([3, 4], shape: [2])
        let y = try t.mul(t.mul(c, x), t.parameter(frozen))
        #expect(y.requiresGrad)
        try t.backward(t.sum(y))
        #expect(t.gradient(of: c) == nil)
        #expect(t.gradient(of: x) == [1, 2])
        #expect(!frozen.hasGradient)
    }

    @Test func unusedBranchesGetZeroGradients() throws {
        let t = Tape()
        let x = try t.variable([1, 2, 3], shape: [3])
        _ = t.relu(x)  // recorded but not part of the loss
        let s = try t.slice(x, range: 0..<1)
        try t.backward(t.sum(s))
        #expect(t.gradient(of: x) == [1, 0, 0])
    }

    @Test func initializersAreSeededAndScaled() throws {
        var r1 = TestRNG(seed: 3), r2 = TestRNG(seed: 3)
        let a = Initializer.heNormal.values(count: 20_000, fanIn: 50, fanOut: 10, rng: &r1)
        let b = Initializer.heNormal.values(count: 20_000, fanIn: 50, fanOut: 10, rng: &r2)
        #expect(a == b)
        let variance = a.map { Double($0 * $0) }.reduce(0, +) / Double(a.count)
        #expect(abs(variance - 2.0 / 50) < 0.003)
        let x = Initializer.xavierUniform.values(count: 1000, fanIn: 3, fanOut: 3, rng: &r1)
        #expect(x.allSatisfy { abs($0) <= 1 } && x.contains { abs($0) > 0.9 })
        var r3 = TestRNG(seed: 4)
        let counts = (0..<6000).reduce(into: [Int](repeating: 0, count: 6)) { c, _ in c[NNRandom.index(below: 6, &r3)] += 1 }
        #expect(counts.allSatisfy { abs($0 - 1000) < 120 })
    }
}
