import ArborNN
import Foundation

/// The candidates of one mini-batch of a softmax recommender (the two-tower, MIND and SDM
/// trainers): the batch's targets (the in-batch candidates), the uniform negatives shared by the
/// batch, their logQ corrections and the accidental-hit mask, and the loss of a shard of the
/// batch's users against all of them (``DataParallel``).
///
/// Buffers are kept and refilled by ``draw(targets:rng:expectedInBatch:)``, batch after batch.
/// Reading (``loss(users:positives:shard:temperature:itemVectors:on:)``) is safe from several
/// threads at once; drawing is not.
struct SoftmaxCandidates {
    /// The softmax and its negatives.
    let kind: TwoTowerLoss
    /// Whether in-batch and mixed logits are corrected by `log Q`.
    let logQCorrection: Bool
    /// Catalogue size: negatives are rows `0 ..< itemCount`.
    let itemCount: Int
    /// The batch's target rows, one per sample.
    private(set) var targetRows: [Int] = []
    /// The shared uniform negatives (without replacement), or every item when they outnumber it.
    private(set) var negativeRows: [Int] = []
    /// Per column of the in-batch and mixed logits (targets, then negatives): `log` of its expected
    /// count in a batch; empty without correction or for the sampled softmax.
    private(set) var logQ: [Float] = []
    /// `batch × (batch + negatives)`: 0 where a column holds the row's target item but is not the
    /// row's own column (an accidental hit); empty for the sampled softmax.
    private(set) var mask: [Float] = []
    private var permutation: [Int]

    init(kind: TwoTowerLoss, logQCorrection: Bool, itemCount: Int) {
        self.kind = kind
        self.logQCorrection = logQCorrection
        self.itemCount = itemCount
        permutation = Array(0 ..< itemCount)
    }

    /// Negatives drawn per batch (0 for the in-batch softmax).
    var negativeCount: Int {
        switch kind {
        case .inBatch: return 0
        case let .sampled(k), let .mixed(k): return k
        }
    }

    /// Sets the batch's targets, draws its negatives from `rng` (a partial Fisher–Yates over the
    /// catalogue, `negativeCount` draws) and fills the corrections and mask; `expectedInBatch(row)`
    /// is an item's expected count in a batch (its sampling probability times the batch size).
    /// O(batch² + batch · negatives).
    mutating func draw(targets: [Int], rng: inout SplitMix64, expectedInBatch: (Int) -> Double) {
        targetRows = targets
        negativeRows.removeAll(keepingCapacity: true)
        let s = negativeCount
        if s >= itemCount {
            negativeRows.append(contentsOf: 0 ..< itemCount)
        } else if s > 0 {
            for i in 0 ..< s {
                let j = i + NNRandom.index(below: itemCount - i, &rng)
                permutation.swapAt(i, j)
                negativeRows.append(permutation[i])
            }
        }
        logQ.removeAll(keepingCapacity: true)
        mask.removeAll(keepingCapacity: true)
        if case .sampled = kind { return }
        let batch = targets.count
        let uniform = Double(negativeRows.count) / Double(itemCount)
        if logQCorrection {
            for c in 0 ..< batch { logQ.append(Float(Foundation.log(max(expectedInBatch(targets[c]) + uniform, 1e-9)))) }
            for r in negativeRows { logQ.append(Float(Foundation.log(max(expectedInBatch(r) + uniform, 1e-9)))) }
        }
        let classes = batch + negativeRows.count
        mask.append(contentsOf: repeatElement(1, count: batch * classes))
        mask.withUnsafeMutableBufferPointer { m in
            for b in 0 ..< batch {
                let target = targets[b], row = b * classes
                for c in 0 ..< batch where c != b && targets[c] == target { m[row + c] = 0 }
                for (j, r) in negativeRows.enumerated() where r == target { m[row + batch + j] = 0 }
            }
        }
    }

    /// The loss of the users of samples `shard` (`users`: `shard.count × d`) against every
    /// candidate of the batch, as their share of the batch's mean loss (``DataParallel``).
    ///
    /// - Parameters:
    ///   - positives: the item vectors of all the batch's targets (`batch × d`), computed once per
    ///     tape by the caller (MIND also attends with them).
    ///   - itemVectors: the item tower on rows (for the negatives).
    /// - Returns: shape `[1]`. For the whole batch, exactly the loss the trainers computed before
    ///   data parallelism (no extra op).
    func loss(
        users: Tensor, positives: Tensor, shard: Range<Int>, temperature: Float,
        itemVectors: ([Int]) throws -> Tensor, on tape: Tape
    ) throws -> Tensor {
        let batch = targetRows.count
        let whole = shard.count == batch
        let loss: Tensor
        switch kind {
        case .sampled:
            let own = whole ? positives : try tape.gatherRows(positives, indices: Array(shard))
            loss = try tape.sampledSoftmaxLoss(
                users: users, positives: own, negatives: try itemVectors(negativeRows),
                positiveIDs: whole ? targetRows : Array(targetRows[shard]), negativeIDs: negativeRows,
                temperature: temperature)
        case .inBatch, .mixed:
            var logits = try tape.matmul(users, positives, transposeB: true)
            if !negativeRows.isEmpty {
                let negatives = try itemVectors(negativeRows)
                logits = try tape.concat([logits, try tape.matmul(users, negatives, transposeB: true)], axis: 1)
            }
            logits = tape.scale(logits, by: 1 / temperature)
            let classes = batch + negativeRows.count
            let rowMask = whole ? mask : Array(mask[shard.lowerBound * classes ..< shard.upperBound * classes])
            loss = try tape.softmaxCrossEntropy(logits, targets: Array(shard), logQ: logQ.isEmpty ? nil : logQ, mask: rowMask)
        }
        return whole ? loss : tape.scale(loss, by: DataParallel.shareOfBatch(shard, of: batch))
    }
}
