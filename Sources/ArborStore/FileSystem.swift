import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Small POSIX helpers for the files around an environment (size checks, atomic rename, cleanup).
public enum StoreFiles {
    /// The size in bytes of the regular file at `path`, or `nil` if nothing exists there.
    public static func size(of path: String) -> Int? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int(st.st_size)
    }

    /// Whether a file (of any kind) exists at `path`.
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    /// The lock file LMDB keeps beside an environment opened with `MDB_NOSUBDIR`.
    public static func lockPath(for path: String) -> String { path + "-lock" }

    /// Removes `path` if it exists. Missing files are not an error.
    public static func remove(_ path: String) throws(StoreError) {
        if unlink(path) != 0 && errno != ENOENT {
            throw systemError(path, "unlink")
        }
    }

    /// Renames `from` to `to` atomically (`rename(2)`), replacing `to` if it exists.
    public static func rename(_ from: String, to: String) throws(StoreError) {
        #if canImport(Glibc) || canImport(Musl)
        let rc = Glibc.rename(from, to)
        #else
        let rc = Darwin.rename(from, to)
        #endif
        if rc != 0 { throw systemError(to, "rename from \(from)") }
    }

    /// Flushes the directory holding `path`, so that a rename within it survives a crash.
    /// Failures are ignored: not every file system supports `fsync` on directories.
    public static func syncDirectory(containing path: String) {
        let directory = self.directory(of: path)
        let fd = open(directory, O_RDONLY)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        _ = close(fd)
    }

    /// The directory part of `path` (`"."` when it has none).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The id of this process (used to name temporary files).
    public static var processID: Int32 { getpid() }

    /// Whether a process with id `pid` is alive (`kill(pid, 0)`); `true` when unsure.
    public static func isProcessAlive(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        if kill(pid, 0) == 0 { return true }
        return errno != ESRCH
    }

    /// Names of the entries of the directory holding `path` whose names start with `prefix`.
    static func siblings(of path: String, withPrefix prefix: String) -> [String] {
        let directory = self.directory(of: path)
        // (Copying `dirent.d_name` as a 256-byte tuple reads past short entries: list by name instead.)
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return entries.filter { $0.hasPrefix(prefix) }.sorted().map { directory + "/" + $0 }
    }

    static func systemError(_ path: String, _ operation: String) -> StoreError {
        let code = errno
        return .system(path: path, operation: operation, errno: code, message: String(cString: strerror(code)))
    }
}
