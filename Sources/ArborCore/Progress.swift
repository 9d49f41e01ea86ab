import Synchronization

/// A sink for progress of long work (builds, training, benchmarks): units done of a total.
/// The CLI prints rate and ETA; the library only reports. Implementations must be thread-safe.
public protocol ProgressReporter: Sendable {
    /// `done` of `total` units of `task` are complete (`total` 0 when unknown).
    func report(task: String, done: Int, total: Int)
    /// `task` has ended.
    func finish(task: String)
}

/// A reporter that ignores everything (the default in library calls).
public struct SilentProgress: ProgressReporter {
    /// A reporter that drops every report.
    public init() {}
    /// Ignores the report.
    public func report(task: String, done: Int, total: Int) {}
    /// Ignores the end of a task.
    public func finish(task: String) {}
}

/// Passes reports on to `inner` with `prefix` and a space in front of every task name (e.g. the
/// model and tree round in front of a trainer's "train epoch 3").
public struct PrefixedProgress<Inner: ProgressReporter>: ProgressReporter {
    /// Put in front of each task name.
    public let prefix: String
    /// Where the reports go.
    public let inner: Inner
    /// A reporter that prefixes `inner`'s task names with `prefix`.
    public init(prefix: String, inner: Inner) {
        self.prefix = prefix
        self.inner = inner
    }
    /// Reports `prefix task` to `inner`.
    public func report(task: String, done: Int, total: Int) { inner.report(task: "\(prefix) \(task)", done: done, total: total) }
    /// Ends `prefix task` in `inner`.
    public func finish(task: String) { inner.finish(task: "\(prefix) \(task)") }
}

/// A cooperative cancellation flag for long work (Ctrl-C in the CLI sets it).
/// Long loops check ``isCancelled`` between units and throw ``CancellationError``.
public final class CancellationFlag: Sendable {
    private let cancelled = Atomic<Bool>(false)
    /// A flag that is not set.
    public init() {}
    /// True once ``cancel()`` was called (from any thread).
    public var isCancelled: Bool { cancelled.load(ordering: .relaxed) }
    /// Sets the flag; long work stops at its next check. Safe from any thread or signal handler queue.
    public func cancel() { cancelled.store(true, ordering: .relaxed) }
    /// Throws `CancellationError` once cancelled.
    public func check() throws(CancellationError) { if isCancelled { throw CancellationError() } }
}
