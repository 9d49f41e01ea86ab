#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutual-exclusion lock over a value, on `pthread_mutex_t`.
///
/// Use it instead of `Synchronization.Mutex` for locks that thread-sanitizer runs must see: on
/// Linux `Mutex` waits on a futex directly, which the sanitizer does not intercept, so every
/// access it guards is reported as a data race (and real races hide among those reports). The
/// sanitizer intercepts `pthread_mutex_lock`/`unlock` and so knows the happens-before edges.
/// Uncontended, both cost one atomic operation each way.
///
/// Not recursive: calling ``withLock(_:)`` again from inside `body` on the same lock deadlocks.
/// Thread-safety: `Sendable` when `Value` is; `body` runs with the lock held, on the caller's
/// thread. Lifetime: the lock lives as long as the object; no thread may hold it at `deinit`.
public final class PosixMutex<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    // The value lives in memory of its own, not in a stored property: an `inout` access to a
    // property is instrumented by the sanitizer as an access to the object (for a zero-sized
    // value, at the object's header, which every caller reads before taking the lock).
    private let value: UnsafeMutablePointer<Value>

    /// A lock guarding `value`.
    public init(_ value: sending Value) {
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed (\(rc))")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` with the lock held and exclusive access to the value; returns its result.
    public func withLock<R, E: Error>(_ body: (inout sending Value) throws(E) -> sending R) throws(E) -> sending R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}
