import ArborCore
import Foundation

/// Prints progress of long work on standard error: done/total, rate per second and ETA, at most
/// a few times a second, and only once the work has run for a second.
final class ProgressPrinter: ProgressReporter {
    private struct State {
        var started: [String: Date] = [:]
        var lastPrint: Date = .distantPast
    }
    private let state = PosixMutex(State())
    let enabled: Bool
    /// On a terminal one line is redrawn in place twice a second; otherwise (a log file) a full
    /// line is written every 5 seconds.
    private let interactive: Bool

    init(enabled: Bool = true) {
        self.enabled = enabled
        interactive = isatty(STDERR_FILENO) != 0
    }

    func report(task: String, done: Int, total: Int) {
        guard enabled else { return }
        let now = Date()
        let line: String? = state.withLock { s in
            let start = s.started[task] ?? now
            if s.started[task] == nil { s.started[task] = now }
            let elapsed = now.timeIntervalSince(start)
            guard elapsed >= 1, now.timeIntervalSince(s.lastPrint) >= (interactive ? 0.5 : 5) else { return nil }
            s.lastPrint = now
            let rate = Double(done) / max(elapsed, 1e-9)
            var text = "\(task): \(done)"
            if total > 0 {
                text += "/\(total) (\(Int(100 * Double(done) / Double(total)))%)"
            }
            text += String(format: ", %.1f/s", rate)
            if total > 0, rate > 0 {
                text += String(format: ", ETA %.0f s", Double(total - done) / rate)
            }
            return text + String(format: ", %.0f s elapsed", elapsed)
        }
        if let line {
            FileHandle.standardError.write(Data((interactive ? "\r\u{1B}[K\(line)" : "\(line)\n").utf8))
        }
    }

    func finish(task: String) {
        guard enabled else { return }
        let elapsed: TimeInterval? = state.withLock { s in
            defer { s.started[task] = nil }
            return s.started[task].map { Date().timeIntervalSince($0) }
        }
        if let elapsed, elapsed >= 1 {
            let prefix = interactive ? "\r\u{1B}[K" : ""
            FileHandle.standardError.write(Data(String(format: "%@%@: done in %.1f s\n", prefix, task, elapsed).utf8))
        }
    }
}

/// Turns SIGINT and SIGTERM into a cancellation flag, so that long work stops between units and
/// leaves no broken index behind. A second Ctrl-C exits at once.
enum Interrupts {
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    static func install(_ flag: CancellationFlag) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if flag.isCancelled { exit(130) }
                FileHandle.standardError.write(Data("\narbor: interrupted; stopping cleanly (Ctrl-C again to quit now)\n".utf8))
                flag.cancel()
            }
            source.resume()
            sources.append(source)
        }
    }
}
