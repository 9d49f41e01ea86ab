import ArborCore

/// A thread-safe stack of reusable per-query workspaces: a query takes one (or makes one when the
/// pool is empty) and gives it back, so steady-state searches allocate no buffers and concurrent
/// searches never share one. Holds at most as many workspaces as searches ever ran at once.
/// Locked with ``PosixMutex`` so that thread-sanitizer runs see the hand-over between threads.
final class WorkspacePool<Workspace: Sendable>: Sendable {
    private let stack = PosixMutex<[Workspace]>([])
    private let make: @Sendable () -> Workspace

    init(make: @escaping @Sendable () -> Workspace) { self.make = make }

    /// Runs `body` with a workspace that no other caller holds meanwhile.
    func with<R>(_ body: (inout Workspace) throws -> R) rethrows -> R {
        var w = stack.withLock { $0.popLast() } ?? make()
        defer { let done = w; stack.withLock { $0.append(done) } }
        return try body(&w)
    }
}
