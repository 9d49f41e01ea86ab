import Testing
@testable import ArborNN

@Suite("Layers: shapes, gradients, serialisation")
struct LayerTests {
    @Test func linearShapesAndGradients() throws {
        var rng = TestRNG(seed: 1)
        let layer = try Linear(inputs: 3, outputs: 2, name: "fc", rng: &rng)
        #expect(layer.weight.shape == [3, 2])
        #expect(layer.bias?.shape == [2])
        #expect(layer.parameters.map(\.name) == ["fc.weight", "fc.bias"])
        let x2 = randomValues(12, seed: 2)
        let x3 = randomValues(18, seed: 3)
        let t = Tape()
        #expect(try layer(t.constant(x2, shape: [4, 3]), on: t).shape == [4, 2])
        #expect(try layer(t.constant(x3, shape: [2, 3, 3]), on: t).shape == [2, 3, 2])
        try checkParameterGradients(layer.parameters) { t in try layer(t.constant(x2, shape: [4, 3]), on: t) }
        try checkParameterGradients(layer.parameters) { t in try layer(t.constant(x3, shape: [2, 3, 3]), on: t) }
        // and the input gradient
        try checkGradients([Input([4, 3], seed: 4)]) { t, x in try layer(x[0], on: t) }
        #expect(throws: ArborError.dimensionMismatch(field: "fc.weight input width", expected: 3, found: 4)) {
            let t = Tape()
            _ = try layer(t.constant([Float](repeating: 0, count: 8), shape: [2, 4]), on: t)
        }
    }

    @Test(arguments: [Activation.relu, .prelu, .tanh, .sigmoid])
    func mlpShapesAndGradients(activation: Activation) throws {
        var rng = TestRNG(seed: 5)
        let mlp = try MLP(sizes: [4, 5, 3, 2], activation: activation, name: "tower", rng: &rng)
        var names = ["tower.0.weight", "tower.0.bias", "tower.1.weight", "tower.1.bias", "tower.2.weight", "tower.2.bias"]
        if activation == .prelu { names.insert("tower.1.prelu", at: 4); names.insert("tower.0.prelu", at: 2) }
        #expect(mlp.parameters.map(\.name) == names)
        let x = randomValues(12, seed: 6)
        let t = Tape()
        #expect(try mlp(t.constant(x, shape: [3, 4]), on: t).shape == [3, 2])
        // ReLU kinks would spoil finite differences within a step of 0; this seed keeps clear of them.
        try checkParameterGradients(mlp.parameters) { t in
            try mlp(t.constant(x, shape: [3, 4]), on: t)
        }
    }

    @Test func embeddingShapesPaddingAndSparseGradient() throws {
        var rng = TestRNG(seed: 7)
        let emb = try Embedding(count: 10, dimension: 4, name: "items", rng: &rng)
        #expect(emb.table.isSparse)
        let t = Tape()
        let seq = try emb([3, 1, -1, 9, 9, -1], indexShape: [2, 3], on: t)
        #expect(seq.shape == [2, 3, 4])
        #expect(Array(seq.values[8..<12]) == [0, 0, 0, 0])  // padding row
        #expect(Array(seq.values[0..<4]) == Array(emb.table.value[12..<16]))
        let pooled = try t.maskedMean(seq, mask: [1, 1, 0, 1, 1, 0])
        try t.backward(t.sum(pooled))
        #expect(emb.table.grad.isEmpty)
        #expect(emb.table.gradRows == [3, 1, 9, 9])
        let (rows, values) = emb.table.rowGradient()
        #expect(rows == [1, 3, 9])
        #expect(values == [Float](repeating: 0.5, count: 8) + [Float](repeating: 1, count: 4))
        try checkParameterGradients([emb.table]) { t in
            try t.maskedMean(emb([3, 1, -1, 9, 9, -1], indexShape: [2, 3], on: t), mask: [1, 1, 0, 1, 1, 0])
        }
        #expect(throws: ArborError.self) { try emb([10], on: Tape()) }
    }

    @Test func namedTensorsRoundTripAndChecks() throws {
        var rng = TestRNG(seed: 8)
        let a = try MLP(sizes: [3, 4, 2], name: "m", rng: &rng)
        let b = try MLP(sizes: [3, 4, 2], name: "m", rng: &rng)
        #expect(a.layers[0].weight.value != b.layers[0].weight.value)
        let saved = a.namedTensors()
        #expect(saved.map(\.name) == ["m.0.weight", "m.0.bias", "m.1.weight", "m.1.bias"])
        #expect(saved[0].shape == [3, 4])
        try b.load(saved)
        #expect(a.parameters.count == b.parameters.count)
        for (p, q) in zip(a.parameters, b.parameters) { #expect(p.value == q.value) }
        let w = b.layers[0].weight.matrix
        #expect(w.rows == 3 && w.cols == 4 && w.values == saved[0].values)

        var wrongShape = saved
        wrongShape[0].shape = [4, 3]
        #expect(throws: ArborError.invalidArgument(name: "weights", reason: "\"m.0.weight\" has shape [4, 3], expected [3, 4]")) {
            try b.load(wrongShape)
        }
        #expect(throws: ArborError.invalidArgument(name: "weights", reason: "no tensor for parameter \"m.1.bias\"")) {
            try b.load(Array(saved.dropLast()))
        }
        #expect(throws: ArborError.invalidArgument(name: "weights", reason: "tensor \"extra\" matches no parameter")) {
            try b.load(saved + [(name: "extra", shape: [1], values: [0])])
        }
        var short = saved
        short[1].values.removeLast()
        #expect(throws: ArborError.dimensionMismatch(field: "weights \"m.0.bias\" values", expected: 4, found: 3)) {
            try b.load(short)
        }
    }

    @Test func shapeErrorsNameTheOp() throws {
        let t = Tape()
        let a = try t.constant([Float](repeating: 1, count: 6), shape: [2, 3])
        let b = try t.constant([Float](repeating: 1, count: 8), shape: [4, 2])
        #expect(throws: ArborError.dimensionMismatch(field: "matmul inner dimension", expected: 3, found: 4)) {
            try t.matmul(a, b)
        }
        #expect(throws: ArborError.self) { try t.add(a, b) }
        #expect(throws: ArborError.dimensionMismatch(field: "softmax: mask values", expected: 6, found: 2)) {
            try t.softmax(a, mask: [1, 1])
        }
        #expect(throws: ArborError.dimensionMismatch(field: "constant values for shape [2, 2]", expected: 4, found: 3)) {
            try t.constant([1, 2, 3], shape: [2, 2])
        }
        #expect(throws: ArborError.dimensionMismatch(field: "backward: loss values", expected: 1, found: 6)) {
            try t.backward(a)
        }
    }

    @Test func fullyMaskedSoftmaxRowIsZero() throws {
        let t = Tape()
        let x = try t.variable([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let y = try t.softmax(x, mask: [0, 0, 0, 1, 1, 0])
        #expect(Array(y.values[0..<3]) == [0, 0, 0])
        #expect(abs(y.values[3] + y.values[4] - 1) < 1e-6 && y.values[5] == 0)
        try t.backward(t.sum(t.mul(y, y)))
        #expect(t.gradient(of: x)!.allSatisfy { $0.isFinite })
    }
}
