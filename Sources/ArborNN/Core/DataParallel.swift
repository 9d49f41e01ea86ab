import ArborMath
import Dispatch

/// Data-parallel training of one mini-batch: the batch is cut into contiguous shards, each shard
/// runs forward and backward on its own thread and its own ``Tape``, and the shards' parameter
/// gradients are then summed into the parameters, dense values by addition and sparse rows by
/// appending, shard by shard in order.
///
/// One mechanism for every trainer (two-tower, TDM, MIND, SDM): the trainer says how to compute
/// the loss of a range of the batch, `run` does the rest. The caller then clips and steps its
/// optimizers as with one tape.
///
/// ## The loss of a shard
/// Gradients add up, so each shard's loss must be its share of the batch loss: the sum of its
/// samples' terms divided by the whole batch's size (``shareOfBatch(_:of:)`` gives the factor for a
/// shard whose loss is a mean over its own samples). The sum of the shard losses is the batch loss.
///
/// ## Determinism
/// The shards depend only on the batch size and ``threads`` (``shards(of:)``); gradients are merged
/// in shard order after every shard has finished. So a run is repeatable for a given thread count,
/// whatever the timing. With one thread (or a batch of one sample) `run` calls the loss once on a
/// plain tape on the calling thread, exactly what a trainer without data parallelism does: results
/// are bit-identical to it. Different thread counts differ in float summation order only.
///
/// ## Thread rules
/// `loss` runs concurrently for different shards: it may read the model's parameters and any shared
/// state, but must not write shared state (draw random numbers or build batches before `run`).
/// BLAS runs single-threaded inside each shard (``BLAS/concurrentPerform(iterations:execute:)``).
public struct DataParallel: Sendable, Equatable {
    /// The most threads a trainer may ask for.
    public static let maxThreads = 64

    /// Threads (and so the most shards) per batch, `1 ... maxThreads`.
    public let threads: Int

    /// Data parallelism over `threads` threads, clamped to `1 ... maxThreads`.
    public init(threads: Int) { self.threads = min(max(1, threads), Self.maxThreads) }

    /// The shards of a batch of `count` samples: `min(threads, count)` contiguous ranges covering
    /// `0 ..< count` in order, sizes differing by at most one (the first ones larger). Empty for
    /// `count <= 0`.
    public func shards(of count: Int) -> [Range<Int>] {
        guard count > 0 else { return [] }
        let n = min(threads, count)
        let base = count / n, extra = count % n
        var out: [Range<Int>] = []
        out.reserveCapacity(n)
        var start = 0
        for s in 0..<n {
            let size = base + (s < extra ? 1 : 0)
            out.append(start ..< start + size)
            start += size
        }
        return out
    }

    /// The factor that turns a mean over `shard`'s samples into its share of the mean over `count`
    /// samples: `shard.count / count` (exactly 1 for the whole batch).
    public static func shareOfBatch(_ shard: Range<Int>, of count: Int) -> Float {
        shard.count == count ? 1 : Float(shard.count) / Float(max(1, count))
    }

    /// What one batch cost and gave.
    public struct Step: Sendable, Equatable {
        /// Each shard's loss (its share of the batch loss), in shard order.
        public var shardLosses: [Float]
        /// The batch loss: the sum of the shard losses.
        public var loss: Float { shardLosses.reduce(0, +) }
        /// Wall seconds of the forward passes (with several shards: the parallel region's wall time
        /// split in the ratio of the shards' summed forward and backward times).
        public var forwardSeconds: Double
        /// Wall seconds of the backward passes (split as `forwardSeconds`).
        public var backwardSeconds: Double
    }

    /// Runs forward and backward of a batch of `count` samples, shard by shard (see the type's
    /// documentation), and adds the gradients to the parameters.
    ///
    /// - Parameters:
    ///   - count: samples in the batch, >= 1.
    ///   - loss: the loss of the samples in a range, recorded on the tape it is given: its share
    ///     of the batch loss, a single value. Runs concurrently for different shards.
    /// - Returns: the shard losses and times. When a shard loss is not finite, no gradient is
    ///   added to any parameter (the caller decides what to do).
    /// - Throws: what `loss` or ``Tape/backward(_:)`` throws (the first in shard order); no gradient
    ///   is added then.
    public func run(count: Int, loss: (_ shard: Range<Int>, _ tape: Tape) throws -> Tensor) throws -> Step {
        let shards = shards(of: count)
        guard shards.count > 1 else {
            let t0 = ContinuousClock.now
            let tape = Tape()
            let value = try loss(0 ..< max(0, count), tape)
            let t1 = ContinuousClock.now
            guard value.count == 1, value.scalar.isFinite else {
                return Step(shardLosses: [value.count == 1 ? value.scalar : .nan],
                            forwardSeconds: seconds(t0, t1), backwardSeconds: 0)
            }
            try tape.backward(value)
            return Step(shardLosses: [value.scalar], forwardSeconds: seconds(t0, t1), backwardSeconds: seconds(t1, .now))
        }
        let t0 = ContinuousClock.now
        // `loss` does not outlive this call: `work` is released before `run` returns.
        let work = withoutActuallyEscaping(loss) { escapable in
            let work = ShardWork(loss: escapable, shards: shards)
            BLAS.concurrentPerform(iterations: shards.count) { s in work.run(s) }
            return work.finish()
        }
        let wall = seconds(t0, .now)
        for outcome in work.outcomes {
            if case let .failure(error) = outcome { throw error }
        }
        var losses: [Float] = [], forward = 0.0, backward = 0.0
        for outcome in work.outcomes {
            guard case let .success(done) = outcome else { continue }
            losses.append(done.loss)
            forward += done.forward
            backward += done.backward
        }
        let total = max(1e-12, forward + backward)
        let step = Step(shardLosses: losses, forwardSeconds: wall * forward / total, backwardSeconds: wall * backward / total)
        guard losses.allSatisfy(\.isFinite) else { return step }
        for sink in work.sinks { sink.merge() }
        return step
    }
}

/// The shards of one `DataParallel.run`: each index is written by exactly one thread, and read only
/// after `concurrentPerform` has returned.
private final class ShardWork: @unchecked Sendable {
    struct Done { var loss: Float; var forward: Double; var backward: Double }
    let loss: (Range<Int>, Tape) throws -> Tensor
    let shards: [Range<Int>]
    let sinks: [GradientSink]
    private let results: UnsafeMutableBufferPointer<Result<Done, any Error>?>

    init(loss: @escaping (Range<Int>, Tape) throws -> Tensor, shards: [Range<Int>]) {
        self.loss = loss
        self.shards = shards
        sinks = shards.map { _ in GradientSink() }
        results = .allocate(capacity: shards.count)
        results.initialize(repeating: nil)
    }

    deinit {
        results.deinitialize()
        results.deallocate()
    }

    func run(_ s: Int) {
        let t0 = ContinuousClock.now
        do {
            let tape = Tape(sink: sinks[s])
            let value = try loss(shards[s], tape)
            let t1 = ContinuousClock.now
            guard value.count == 1, value.scalar.isFinite else {
                results[s] = .success(Done(loss: value.count == 1 ? value.scalar : .nan, forward: seconds(t0, t1), backward: 0))
                return
            }
            try tape.backward(value)
            results[s] = .success(Done(loss: value.scalar, forward: seconds(t0, t1), backward: seconds(t1, .now)))
        } catch {
            results[s] = .failure(error)
        }
    }

    /// The outcomes and sinks, once every shard has run; drops the closure.
    func finish() -> (outcomes: [Result<Done, any Error>], sinks: [GradientSink]) {
        (results.compactMap { $0 }, sinks)
    }
}

private func seconds(_ a: ContinuousClock.Instant, _ b: ContinuousClock.Instant) -> Double {
    let d = a.duration(to: b).components
    return Double(d.seconds) + Double(d.attoseconds) * 1e-18
}
