import ArborCore
import Foundation
import Testing

/// A child process whose stdout and stderr are drained at the same time, each by its own thread, so
/// a child that fills one pipe (64 KiB) while the other is being read never blocks.
final class ChildProcess: Sendable {
    struct Outcome {
        var status: Int32
        /// `.exit` or `.uncaughtSignal` (then `status` is the signal).
        var reason: Process.TerminationReason
        var stdout: String
        var stderr: String
    }

    /// The bytes read so far from one pipe.
    private final class Sink: Sendable {
        let data = PosixMutex(Data())
        var text: String { data.withLock { String(decoding: $0, as: UTF8.self) } }
    }

    nonisolated(unsafe) private let process: Process
    private let stdoutSink = Sink(), stderrSink = Sink()
    private let drained = DispatchGroup()

    /// Starts `executable` with `arguments`; `environment` entries are added to this process's environment.
    init(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        self.process = process
        try process.run()
        for (pipe, sink) in [(out, stdoutSink), (err, stderrSink)] {
            let handle = pipe.fileHandleForReading
            drained.enter()
            let thread = Thread { [drained] in
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    sink.data.withLock { $0.append(chunk) }
                }
                drained.leave()
            }
            thread.start()
        }
    }

    var processIdentifier: Int32 { process.processIdentifier }

    /// What the child wrote to stderr so far.
    var stderrSoFar: String { stderrSink.text }

    /// Waits for the child to exit and both pipes to close.
    func wait() -> Outcome {
        drained.wait()
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, reason: process.terminationReason,
                       stdout: stdoutSink.text, stderr: stderrSink.text)
    }

    /// Polls `condition` every 10 ms until it holds; false after `timeout` seconds.
    static func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            if Date() > deadline { return false }
            usleep(10_000)
        }
        return true
    }
}

@Suite struct ChildProcessTests {
    /// A child that writes 200 KB to stderr before 200 KB to stdout (each more than a pipe holds)
    /// finishes, with every byte of both. The time limit only turns a regression (a deadlock) into a
    /// failure instead of a hang: the child takes well under a second, and the limit also counts the
    /// time the test waits for a thread when the machine is loaded.
    @Test(.timeLimit(.minutes(10))) func childFillingBothPipesFinishes() throws {
        let script = "head -c 200000 /dev/zero | tr '\\0' e >&2; head -c 200000 /dev/zero | tr '\\0' o; "
            + "head -c 100000 /dev/zero | tr '\\0' f >&2"
        let r = try ChildProcess(URL(fileURLWithPath: "/bin/sh"), ["-c", script]).wait()
        #expect(r.status == 0)
        #expect(r.stdout.utf8.count == 200_000 && r.stdout.utf8.allSatisfy { $0 == UInt8(ascii: "o") })
        #expect(r.stderr.utf8.count == 300_000)
    }
}
