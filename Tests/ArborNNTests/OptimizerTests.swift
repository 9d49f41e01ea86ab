import Testing
@testable import ArborNN

@Suite("Optimizers")
struct OptimizerTests {
    /// One step of `loss = Σ (p − target)²` for a dense parameter.
    private func quadraticStep(_ p: Parameter, _ target: [Float], _ opt: some Optimizer) throws -> Float {
        let t = Tape()
        let d = try t.sub(t.parameter(p), t.constant(target, shape: p.shape))
        let loss = t.sum(try t.mul(d, d))
        try t.backward(loss)
        opt.step([p])
        return loss.scalar
    }

    @Test func adamConvergesOnAQuadratic() throws {
        let p = try Parameter(name: "p", shape: [3], values: [5, -3, 2])
        let target: [Float] = [1, 2, -1]
        let adam = Adam(learningRate: 0.05)
        var loss: Float = .infinity
        for _ in 0..<1500 { loss = try quadraticStep(p, target, adam) }
        #expect(loss < 1e-4)
        #expect(p.value.count == target.count)
        for (v, c) in zip(p.value, target) { #expect(abs(v - c) < 1e-2) }
        #expect(!p.hasGradient)  // step clears gradients
    }

    @Test func adamWeightDecayIsDecoupled() throws {
        // Zero gradient: only the decay acts, value · (1 − lr·wd) per step.
        let p = try Parameter(name: "p", shape: [1], values: [1])
        let adam = Adam(learningRate: 0.1, weightDecay: 0.1)
        for _ in 0..<100 {
            let t = Tape()
            try t.backward(t.sum(t.scale(t.parameter(p), by: 0)))
            adam.step([p])
        }
        #expect(abs(p.value[0] - 0.366032) < 1e-4)
    }

    @Test func sgdAndAdagradConvergeOnAQuadratic() throws {
        let target: [Float] = [0.5, -0.5]
        let a = try Parameter(name: "a", shape: [2], values: [3, 3])
        let sgd = SGD(learningRate: 0.1)
        for _ in 0..<200 { _ = try quadraticStep(a, target, sgd) }
        #expect(a.value.count == target.count)
        for (v, c) in zip(a.value, target) { #expect(abs(v - c) < 1e-3) }
        let b = try Parameter(name: "b", shape: [2], values: [3, 3])
        let adagrad = Adagrad(learningRate: 0.5)
        for _ in 0..<500 { _ = try quadraticStep(b, target, adagrad) }
        #expect(b.value.count == target.count)
        for (v, c) in zip(b.value, target) { #expect(abs(v - c) < 1e-2) }
    }

    @Test(arguments: ["adagrad", "lazyAdam", "sgd"])
    func sparseOptimizerChangesOnlyTouchedRows(kind: String) throws {
        var rng = TestRNG(seed: 11)
        let emb = try Embedding(count: 8, dimension: 3, rng: &rng)
        let opt: any Optimizer = switch kind {
        case "adagrad": Adagrad(learningRate: 0.1)
        case "lazyAdam": LazyAdam(learningRate: 0.1)
        default: SGD(learningRate: 0.1)
        }
        let before = emb.table.value
        for step in 0..<3 {
            let t = Tape()
            let rows = step == 0 ? [2, 5, 2] : [5]
            let x = try emb(rows, on: t)
            try t.backward(t.sum(t.mul(x, x)))
            opt.step([emb.table])
        }
        for r in 0..<8 {
            let old = Array(before[r * 3 ..< r * 3 + 3]), new = Array(emb.table.value[r * 3 ..< r * 3 + 3])
            if r == 2 || r == 5 { #expect(old != new, "row \(r) should move") } else { #expect(old == new, "row \(r) moved") }
        }
    }

    @Test func lazyAdamMatchesAdamOnADenseParameter() throws {
        let p = try Parameter(name: "p", shape: [2], values: [1, 2])
        let q = try Parameter(name: "q", shape: [2], values: [1, 2])
        let (adam, lazy) = (Adam(learningRate: 0.1), LazyAdam(learningRate: 0.1))
        for _ in 0..<5 {
            _ = try quadraticStep(p, [0, 0], adam)
            _ = try quadraticStep(q, [0, 0], lazy)
        }
        #expect(p.value == q.value)
    }

    @Test func clipGradientNormScalesDenseAndSparse() throws {
        let p = try Parameter(name: "p", shape: [2], values: [0, 0])
        let e = try Parameter(name: "e", shape: [3, 1], values: [0, 0, 0], sparse: true)
        let t = Tape()
        let loss = try t.add(t.sum(t.mul(t.parameter(p), t.constant([3, 0], shape: [2]))),
                             t.sum(t.scale(t.gather(e, indices: [1, 1]), by: 2)))
        try t.backward(loss)
        // gradients: p = [3, 0], e row 1 = 4 → norm 5
        let norm = clipGradientNorm([p, e], maxNorm: 1)
        #expect(abs(norm - 5) < 1e-6)
        #expect(abs(p.grad[0] - 0.6) < 1e-6)
        #expect(e.rowGradient().rows == [1])
        #expect(abs(e.rowGradient().values[0] - 0.8) < 1e-6)
    }
}
