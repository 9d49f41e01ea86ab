import Testing
@testable import ArborNN

@Suite("Small models learn")
struct TrainingTests {
    /// Full-batch training of a binary classifier; returns the trained model's accuracy.
    private func train(
        _ mlp: MLP, inputs: [Float], labels: [Float], steps: Int, learningRate: Float
    ) throws -> Double {
        let n = labels.count, width = mlp.inputs
        let adam = Adam(learningRate: learningRate)
        for _ in 0..<steps {
            let t = Tape()
            let logits = try mlp(t.constant(inputs, shape: [n, width]), on: t)
            let loss = try t.binaryCrossEntropyWithLogits(logits, labels: labels)
            try loss.checkFinite()
            try t.backward(loss)
            adam.step(mlp.parameters)
        }
        let t = Tape()
        let logits = try mlp(t.constant(inputs, shape: [n, width]), on: t)
        #expect(logits.values.count == labels.count)
        let correct = zip(logits.values, labels).filter { ($0 > 0) == ($1 > 0.5) }.count
        return Double(correct) / Double(n)
    }

    @Test func mlpLearnsXOR() throws {
        var rng = TestRNG(seed: 42)
        let mlp = try MLP(sizes: [2, 8, 1], activation: .tanh, rng: &rng)
        let accuracy = try train(mlp, inputs: [0, 0, 0, 1, 1, 0, 1, 1], labels: [0, 1, 1, 0],
                                 steps: 400, learningRate: 0.05)
        #expect(accuracy == 1)
    }

    @Test func reluMLPLearnsXOR() throws {
        var rng = TestRNG(seed: 7)
        let mlp = try MLP(sizes: [2, 16, 1], activation: .relu, rng: &rng)
        let accuracy = try train(mlp, inputs: [0, 0, 0, 1, 1, 0, 1, 1], labels: [0, 1, 1, 0],
                                 steps: 400, learningRate: 0.05)
        #expect(accuracy == 1)
    }

    @Test func learnsALinearlySeparableTask() throws {
        // Points in [-1, 1]^4 labelled by the sign of w·x + b, with a margin of 0.1.
        var rng = TestRNG(seed: 3)
        let w: [Float] = [1, -2, 0.5, 1.5], b: Float = 0.2
        var inputs: [Float] = [], labels: [Float] = []
        while labels.count < 128 {
            let x = (0..<4).map { _ in NNRandom.uniform(1, &rng) }
            let s = zip(w, x).map(*).reduce(b, +)
            guard abs(s) > 0.1 else { continue }
            inputs += x
            labels.append(s > 0 ? 1 : 0)
        }
        let mlp = try MLP(sizes: [4, 8, 1], activation: .prelu, rng: &rng)
        let accuracy = try train(mlp, inputs: inputs, labels: labels, steps: 300, learningRate: 0.05)
        #expect(accuracy == 1)
    }

    /// Trains a small two-tower-style model (embedding + MLP, sparse and dense optimizers) and
    /// returns its weights.
    private func trainedWeights(seed: UInt64) throws -> [NamedTensor] {
        var rng = TestRNG(seed: seed)
        let items = try Embedding(count: 20, dimension: 4, name: "items", rng: &rng)
        let tower = try MLP(sizes: [4, 6, 4], activation: .relu, name: "user", rng: &rng)
        let dense = Adam(learningRate: 0.01), sparse = LazyAdam(learningRate: 0.01)
        for _ in 0..<20 {
            var history: [Int] = [], targets: [Int] = []
            for _ in 0..<8 {
                for _ in 0..<3 { history.append(NNRandom.index(below: 20, &rng)) }
                targets.append(NNRandom.index(below: 20, &rng))
            }
            let t = Tape()
            let seq = try items(history, indexShape: [8, 3], on: t)
            let user = try tower(t.maskedMean(seq, mask: [Float](repeating: 1, count: 24)), on: t)
            let loss = try t.inBatchSoftmaxLoss(users: t.l2Normalize(user), items: items(targets, on: t),
                                                logQ: [Float](repeating: -3, count: 8), itemIDs: targets,
                                                temperature: 0.2)
            try t.backward(loss)
            dense.step(tower.parameters)
            sparse.step(items.parameters)
        }
        return tower.namedTensors() + items.namedTensors()
    }

    @Test func sameSeedGivesIdenticalWeights() throws {
        let a = try trainedWeights(seed: 5), b = try trainedWeights(seed: 5), c = try trainedWeights(seed: 6)
        #expect(a.map(\.name) == b.map(\.name))
        #expect(a.map(\.values) == b.map(\.values))
        #expect(a.map(\.values) != c.map(\.values))
    }
}
