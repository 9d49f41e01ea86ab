import Synchronization

/// Numbers the temporary files of this process, so that two builds of one path in parallel
/// threads never share a temporary file.
private let temporaryCounter = Atomic<Int>(0)

extension Environment {
    /// A new temporary path for a build of `path` by this process: `<path>.tmp-<pid>-<n>`, where
    /// `n` counts the builds of this process.
    public static func makeTemporaryPath(for path: String) -> String {
        let n = temporaryCounter.add(1, ordering: .relaxed).newValue
        return "\(path).tmp-\(StoreFiles.processID)-\(n)"
    }

    /// Builds a new environment and moves it over `path` atomically.
    ///
    /// `build` fills a fresh environment opened read-write at ``makeTemporaryPath(for:)`` (with
    /// ``Options/noSync``; its commits are flushed once at the end with `mdb_env_sync`). When
    /// `build` returns, the environment is closed, renamed over `path` (`rename(2)`), and the stale
    /// lock files of both names are removed, so the next open starts a fresh lock file.
    ///
    /// If `build` throws (including `CancellationError`) or anything fails before the rename, the
    /// temporary file is removed and the file at `path` is untouched. A crash mid-build leaves only a
    /// `<path>.tmp-<pid>-<n>` file behind, which readers ignore and the next build removes.
    /// Concurrent builds of one path (threads or processes) do not disturb each other; the last
    /// rename wins.
    ///
    /// - Parameters:
    ///   - mapSize: the map size of the new environment (the most it can grow to).
    ///   - build: fills the environment; it must not keep a reference to it after returning.
    /// - Returns: what `build` returns.
    /// - Note: a process that still has the old file open keeps reading the old data (the rename
    ///   does not touch its memory map); processes that open `path` afterwards see the new one.
    public static func replaceAtomically<R>(
        path: String, mapSize: Int, maxTables: Int = 16, _ build: (Environment) throws -> R
    ) throws -> R {
        let directory = StoreFiles.directory(of: path)
        guard StoreFiles.exists(directory) else {
            throw StoreError.system(path: path, operation: "write into directory \(directory)", errno: 2,
                                    message: "No such file or directory")
        }
        removeStaleTemporaries(for: path)
        let temporary = makeTemporaryPath(for: path)
        try StoreFiles.remove(temporary)
        try StoreFiles.remove(StoreFiles.lockPath(for: temporary))
        let result: R
        do {
            result = try buildAndClose(path: temporary, mapSize: mapSize, maxTables: maxTables, build)
            try StoreFiles.rename(temporary, to: path)
        } catch {
            try? StoreFiles.remove(temporary)
            try? StoreFiles.remove(StoreFiles.lockPath(for: temporary))
            throw error
        }
        try? StoreFiles.remove(StoreFiles.lockPath(for: path))
        try? StoreFiles.remove(StoreFiles.lockPath(for: temporary))
        StoreFiles.syncDirectory(containing: path)
        return result
    }

    /// Opens, fills, flushes and closes the environment (closed when this function returns).
    private static func buildAndClose<R>(
        path: String, mapSize: Int, maxTables: Int, _ build: (Environment) throws -> R
    ) throws -> R {
        let environment = try Environment(path: path, access: .readWrite, mapSize: mapSize,
                                          maxTables: maxTables, options: .noSync)
        let result = try build(environment)
        try environment.sync(force: true)
        return result
    }

    /// Removes `<path>.tmp-<pid>[-<n>]` files (and their lock files) left by processes that no
    /// longer run. Temporary files of live processes (a build in progress) are left alone.
    public static func removeStaleTemporaries(for path: String) {
        let prefix = (path.split(separator: "/").last.map(String.init) ?? path) + ".tmp-"
        for candidate in StoreFiles.siblings(of: path, withPrefix: prefix) {
            let name = candidate.split(separator: "/").last.map(String.init) ?? candidate
            let suffix = name.dropFirst(prefix.count)
            let pidText = suffix.prefix { $0 != "-" }
            guard let pid = Int32(pidText), !StoreFiles.isProcessAlive(pid) else { continue }
            try? StoreFiles.remove(candidate)
        }
    }
}
