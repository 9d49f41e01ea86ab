#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CPU time consumed by the calling thread, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`).
///
/// On a shared, loaded machine wall-clock latencies include the time a thread waits for a core;
/// the difference of two readings on the same thread counts only the time it ran, so a ratio of
/// CPU times between two code paths measured in the same sitting stays meaningful under load.
/// Never use it to choose anything that changes a result. Returns 0 where the clock is missing.
public func threadCPUNanoseconds() -> Int64 {
    var ts = timespec()
    guard clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0 else { return 0 }
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}
