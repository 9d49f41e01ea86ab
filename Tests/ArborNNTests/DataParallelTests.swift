import Testing
@testable import ArborNN

/// A small softmax recommender for the data-parallel checks: a sparse embedding table gathered by
/// the batch's histories, mean-pooled, a dense linear layer, and in-batch softmax cross-entropy
/// (every row scored against every target of the batch, so the shards are coupled as in the
/// two-tower).
private struct TinyRecommender {
    let table: Parameter
    let weight: Parameter
    let histories: [Int]  // batch × 3
    let targets: [Int]
    let batch: Int

    init(seed: UInt64, batch: Int = 7, rows: Int = 11, width: Int = 4) throws {
        var rng = TestRNG(seed: seed)
        table = try Parameter(name: "table", shape: [rows, width],
                              values: (0 ..< rows * width).map { _ in NNRandom.uniform(1, &rng) }, sparse: true)
        weight = try Parameter(name: "weight", shape: [width, width],
                               values: (0 ..< width * width).map { _ in NNRandom.uniform(1, &rng) })
        histories = (0 ..< batch * 3).map { _ in NNRandom.index(below: rows, &rng) }
        targets = (0 ..< batch).map { _ in NNRandom.index(below: rows, &rng) }
        self.batch = batch
    }

    /// The loss of samples `shard` as their share of the batch's mean loss.
    func loss(_ shard: Range<Int>, on tape: Tape) throws -> Tensor {
        let h = Array(histories[shard.lowerBound * 3 ..< shard.upperBound * 3])
        let e = try tape.gather(table, indices: h, indexShape: [shard.count, 3])
        let pooled = try tape.maskedMean(e, mask: [Float](repeating: 1, count: shard.count * 3))
        let users = try tape.matmul(pooled, tape.parameter(weight))
        let items = try tape.gather(table, indices: targets)
        let logits = try tape.matmul(users, items, transposeB: true)
        let loss = try tape.softmaxCrossEntropy(logits, targets: Array(shard))
        return tape.scale(loss, by: DataParallel.shareOfBatch(shard, of: batch))
    }

    var parameters: [Parameter] { [table, weight] }
}

@Suite("Data-parallel training")
struct DataParallelTests {
    @Test func shardsCoverTheBatchInOrderWithSizesWithinOne() {
        for threads in [1, 2, 3, 8] {
            for count in [0, 1, 2, 5, 7, 256] {
                let shards = DataParallel(threads: threads).shards(of: count)
                #expect(shards.count == min(threads, count))
                #expect(shards.first?.lowerBound ?? 0 == 0)
                #expect(shards.last?.upperBound ?? 0 == count)
                for (a, b) in zip(shards, shards.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
                let sizes = shards.map(\.count)
                if let lo = sizes.min(), let hi = sizes.max() { #expect(hi - lo <= 1 && lo >= 1) }
            }
        }
    }

    @Test func threadCountIsClamped() {
        #expect(DataParallel(threads: 0).threads == 1)
        #expect(DataParallel(threads: -5).threads == 1)
        #expect(DataParallel(threads: Int.max).threads == DataParallel.maxThreads)
        #expect(DataParallel.shareOfBatch(0 ..< 4, of: 4) == 1)
        #expect(DataParallel.shareOfBatch(0 ..< 1, of: 4) == 0.25)
    }

    @Test func aSinkThenMergeLeavesTheSameGradientsBitForBit() throws {
        let plain = try TinyRecommender(seed: 3), sunk = try TinyRecommender(seed: 3)
        let t1 = Tape()
        try t1.backward(try plain.loss(0 ..< plain.batch, on: t1))
        let sink = GradientSink()
        let t2 = Tape(sink: sink)
        try t2.backward(try sunk.loss(0 ..< sunk.batch, on: t2))
        #expect(!sunk.table.hasGradient && !sunk.weight.hasGradient)  // nothing reached the parameters yet
        #expect(sink.count > 0)
        sink.merge()
        #expect(sink.count == 0)
        #expect(sunk.weight.grad == plain.weight.grad)
        #expect(sunk.table.gradRows == plain.table.gradRows)
        #expect(sunk.table.gradRowValues == plain.table.gradRowValues)
    }

    @Test func oneThreadIsThePlainTapeBitForBit() throws {
        let plain = try TinyRecommender(seed: 5), parallel = try TinyRecommender(seed: 5)
        let tape = Tape()
        let expected = try plain.loss(0 ..< plain.batch, on: tape)
        try tape.backward(expected)
        let step = try DataParallel(threads: 1).run(count: parallel.batch) { shard, tape in try parallel.loss(shard, on: tape) }
        #expect(step.shardLosses == [expected.scalar])
        #expect(parallel.weight.grad == plain.weight.grad)
        #expect(parallel.table.gradRowValues == plain.table.gradRowValues)
    }

    /// Shards' summed gradients equal the whole batch's (float reassociation only: 1e-5 relative),
    /// and a run repeats bit for bit.
    @Test(arguments: [2, 3, 7])
    func shardedGradientsEqualTheBatchGradient(threads: Int) throws {
        let whole = try TinyRecommender(seed: 9)
        let tape = Tape()
        let loss = try whole.loss(0 ..< whole.batch, on: tape)
        try tape.backward(loss)
        var runs: [[[Float]]] = []
        for _ in 0 ..< 2 {
            let sharded = try TinyRecommender(seed: 9)
            let step = try DataParallel(threads: threads).run(count: sharded.batch) { shard, tape in
                try sharded.loss(shard, on: tape)
            }
            #expect(step.shardLosses.count == threads)
            #expect(abs(step.loss - loss.scalar) <= 1e-5 * abs(loss.scalar))
            let expected = whole.parameters.map { $0.denseGradient().map(Double.init) }
            let got = sharded.parameters.map { $0.denseGradient().map(Double.init) }
            for (e, g) in zip(expected, got) { #expect(relativeError(g, e) < 1e-5) }
            runs.append(sharded.parameters.map { $0.denseGradient() })
        }
        #expect(runs[0] == runs[1])
    }

    @Test func aFailingShardAddsNoGradientAndRethrows() throws {
        struct Boom: Error {}
        let model = try TinyRecommender(seed: 2)
        #expect(throws: Boom.self) {
            _ = try DataParallel(threads: 3).run(count: model.batch) { shard, tape in
                let loss = try model.loss(shard, on: tape)
                if shard.lowerBound > 0 { throw Boom() }
                return loss
            }
        }
        #expect(!model.table.hasGradient && !model.weight.hasGradient)
    }

    @Test func aNonFiniteShardLossAddsNoGradient() throws {
        let model = try TinyRecommender(seed: 4)
        for threads in [1, 2] {
            let step = try DataParallel(threads: threads).run(count: model.batch) { shard, tape in
                let loss = try model.loss(shard, on: tape)
                return shard.lowerBound == 0 ? tape.scale(loss, by: .infinity) : loss
            }
            #expect(!step.loss.isFinite)
            #expect(!model.table.hasGradient && !model.weight.hasGradient)
        }
    }
}
