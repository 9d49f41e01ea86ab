import Testing
@testable import ArborNN

@Suite("Ops composed as the models use them")
struct CompositeTests {
    @Test func customOpGradient() throws {
        // y = a³ ⊙ b, a user-defined op.
        try checkGradients([Input([2, 3], seed: 80), Input([2, 3], seed: 81)]) { t, x in
            let (a, b) = (x[0].values, x[1].values)
            let y = zip(a, b).map { $0 * $0 * $0 * $1 }
            return try t.custom([x[0], x[1]], values: y, shape: [2, 3]) { g, i, d in
                for k in 0..<d.count { d[k] += i == 0 ? g[k] * 3 * a[k] * a[k] * b[k] : g[k] * a[k] * a[k] * a[k] }
            }
        }
    }

    @Test func dinStyleAttentionOverAMaskedSequence() throws {
        // batch 2, length 3, width 4: scores = behaviours · target, masked softmax over length,
        // weighted sum of behaviours, concatenated with the target, then a linear scorer.
        let mask: [Float] = [1, 1, 0, /**/ 1, 1, 1]
        try checkGradients([Input([2, 3, 4], seed: 82), Input([2, 4], seed: 83), Input([8, 1], seed: 84)]) { t, x in
            let (seq, target, w) = (x[0], x[1], x[2])
            let q = try t.reshape(target, to: [2, 4, 1])
            let scores = try t.batchedMatmul(seq, q)  // 2 × 3 × 1
            let weights = try t.softmax(t.reshape(scores, to: [2, 1, 3]), mask: mask)  // 2 × 1 × 3
            let pooled = try t.reshape(t.batchedMatmul(weights, seq), to: [2, 4])
            return try t.matmul(t.concat([pooled, target], axis: 1), w)
        }
    }

    @Test func tdmStyleLevelLoss() throws {
        // One user against a positive and two negative nodes per level: BCE over the
        // DNN scores of [u, n, u ⊙ n].
        var rng = TestRNG(seed: 85)
        let nodes = try Embedding(count: 7, dimension: 3, name: "nodes", rng: &rng)
        let scorer = try MLP(sizes: [9, 4, 1], activation: .prelu, name: "dnn", rng: &rng)
        let user = randomValues(3, seed: 86)
        let candidates = [1, 2, 3, 4, 5, 6], labels: [Float] = [1, 0, 0, 1, 0, 0]
        try checkParameterGradients(nodes.parameters + scorer.parameters) { t in
            let u = try t.broadcast(t.constant(user, shape: [1, 3]), to: [6, 3])
            let n = try nodes(candidates, on: t)
            let features = try t.concat([u, n, t.mul(u, n)], axis: 1)
            return try t.binaryCrossEntropyWithLogits(scorer(features, on: t), labels: labels)
        }
    }

    @Test func twoTowerWithSampledSoftmaxLearns() throws {
        // 6 users each always click one item; with sampled softmax the right item ranks first.
        var rng = TestRNG(seed: 87)
        let users = try Embedding(count: 6, dimension: 8, name: "users", rng: &rng)
        let items = try Embedding(count: 12, dimension: 8, name: "items", rng: &rng)
        let tower = try MLP(sizes: [8, 8], name: "tower", rng: &rng)
        let clicked = [3, 7, 1, 10, 5, 0]
        let dense = Adam(learningRate: 0.05), sparse = Adagrad(learningRate: 0.3)
        let logQ = [Float](repeating: Float(-2.4849), count: 4)  // log(1 / 12), uniform sampler
        for _ in 0..<150 {
            let batch = (0..<4).map { _ in NNRandom.index(below: 6, &rng) }
            let negatives = (0..<4).map { _ in NNRandom.index(below: 12, &rng) }
            let positives = batch.map { clicked[$0] }
            let t = Tape()
            let u = try tower(users(batch, on: t), on: t)
            let loss = try t.sampledSoftmaxLoss(
                users: u, positives: items(positives, on: t), negatives: items(negatives, on: t),
                positiveLogQ: logQ, negativeLogQ: logQ, positiveIDs: positives, negativeIDs: negatives)
            try t.backward(loss)
            dense.step(tower.parameters)
            sparse.step(users.parameters + items.parameters)
        }
        let t = Tape()
        let u = try tower(users(Array(0..<6), on: t), on: t)
        let scores = try t.matmul(u, t.parameter(items.table), transposeB: true)  // 6 × 12
        for user in 0..<6 {
            let row = Array(scores.values[user * 12 ..< (user + 1) * 12])
            #expect(row.firstIndex(of: row.max()!) == clicked[user])
        }
    }
}
