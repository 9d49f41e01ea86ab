import ArborCore
import ArborEngine
import Foundation

/// The index being served, replaceable while requests run (hot reload).
///
/// A request takes the current ``Snapshot`` once and runs to the end on its engine; ``reload(force:)``
/// opens the file again and makes the new engine current for requests that start afterwards.
/// Requests in flight keep the old engine (and with it the old file's memory map) alive until
/// they finish, so none fails or mixes two indexes. A file that does not open (half written,
/// damaged, another dimension is fine) leaves the current index in place and the error is thrown.
///
/// Thread-safety: safe to share; ``snapshot`` takes a lock for a pointer copy, reloads are
/// serialised among themselves and never block readers while the new file opens.
public final class ServedIndex: Sendable {
    /// One loaded version of the index file.
    public struct Snapshot: Sendable {
        /// The engine over this version.
        public let engine: Engine
        /// 1 for the index loaded at start, raised by one at every reload.
        public let generation: Int
        /// The file's identity and times when it was opened (to notice a replacement).
        let stamp: FileStamp
        /// The identity of the LMDB lock file beside it when it was opened.
        let lockStamp: FileStamp?
    }

    /// The served path.
    public let path: String
    private let current: PosixMutex<Snapshot>
    /// Serialises reloads; holds the stamp of the last file that failed to open (not retried
    /// until the file changes again, or a forced reload).
    private let reloads = PosixMutex<FileStamp?>(nil)

    /// Opens `path` (see ``Arbor/open(_:)``).
    /// - Throws: the open errors of ``Arbor/open(_:)``, naming the file.
    public init(path: String) throws {
        self.path = path
        current = PosixMutex(try Self.load(path: path, generation: 1))
    }

    /// The version new requests use.
    public var snapshot: Snapshot { current.withLock { $0 } }

    /// What ``reload(force:)`` did.
    public enum ReloadOutcome: Sendable, Equatable {
        /// The file is the one already loaded (same device, inode, size and modification time).
        case unchanged
        /// A new version is current.
        case reloaded(generation: Int)
    }

    /// Opens the file again when it changed since the last load (or always with `force`), and
    /// makes the new engine current. Cost: one `stat` when unchanged; an index open otherwise.
    /// A file that failed to open is not tried again until it changes (or `force`).
    /// - Throws: the open errors of ``Arbor/open(_:)``; the current index stays in place.
    @discardableResult
    public func reload(force: Bool = false) throws -> ReloadOutcome {
        try reloads.withLock { failed throws -> ReloadOutcome in
            let old = snapshot
            guard let stamp = FileStamp(path: path) else { throw IndexError.notFound(path: path) }
            if !force, stamp == old.stamp || stamp == failed { return .unchanged }
            // A file renamed over the path by another program leaves the old lock file in place,
            // still bound to the old file's environment in this process. LMDB keeps one lock file
            // per data file: opening the new file on it would reset the old readers' shared state
            // (the same thing the index writer avoids by removing the lock file after its rename).
            let lockPath = path + "-lock"
            if stamp != old.stamp, let lock = old.lockStamp, FileStamp(path: lockPath)?.sameFile(as: lock) == true {
                try? FileManager.default.removeItem(atPath: lockPath)
            }
            let next: Snapshot
            do {
                next = try Self.load(path: path, generation: old.generation + 1)
            } catch {
                failed = stamp
                throw error
            }
            failed = nil
            current.withLock { $0 = next }
            return .reloaded(generation: next.generation)
        }
    }

    private static func load(path: String, generation: Int) throws -> Snapshot {
        // The stamp is taken before the open: a replacement between the two is seen as a change
        // at the next check and loaded again (never missed).
        guard let stamp = FileStamp(path: path) else { throw IndexError.notFound(path: path) }
        let engine = try Arbor.open(path)
        return Snapshot(engine: engine, generation: generation, stamp: stamp, lockStamp: FileStamp(path: path + "-lock"))
    }
}

/// A file's identity (device, inode) and its size and modification time.
struct FileStamp: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: UInt64
    var modified: Double

    init?(path: String) {
        guard let a = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
        device = (a[.systemNumber] as? NSNumber)?.uint64Value ?? 0
        inode = (a[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
        size = (a[.size] as? NSNumber)?.uint64Value ?? 0
        modified = (a[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
    }

    func sameFile(as other: FileStamp) -> Bool { device == other.device && inode == other.inode }
}
