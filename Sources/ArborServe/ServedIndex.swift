import ArborCore
import ArborEngine
import Foundation

/// The index being served, replaceable while requests run (hot reload).
///
/// A request takes the current ``Snapshot`` once and runs to the end on its engine; ``reload(force:)``
/// opens the file again and makes the new engine current for requests that start afterwards.
/// Two kinds of change are noticed: a new file at the path (another device or inode: an atomic
/// rename by `arbor build`), and a batch committed in place into the same file (`arbor update`,
/// ``IndexUpdater``), seen as a new LMDB transaction id. The second reopens the index on the
/// environment already mapped (cheap: the header and the model) so that the item count, the
/// generation and every cached matrix follow the update.
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
    /// Serialises reloads; holds the stamp and committed version of the last file that failed to
    /// open (not retried until the file changes again, or a forced reload).
    private let reloads = PosixMutex<FailedLoad?>(nil)

    private struct FailedLoad: Equatable, Sendable {
        var stamp: FileStamp
        var version: UInt64?
    }

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
        /// The file is the one already loaded (same device and inode) and no update has been
        /// committed into it since.
        case unchanged
        /// A new version is current.
        case reloaded(generation: Int)
    }

    /// Opens the file again when it is a new file or an update was committed into it since the
    /// last load (or always with `force`), and makes the new engine current. Cost when unchanged:
    /// one `stat` and one LMDB read transaction begun and ended (no page is read); an index open
    /// otherwise. A file that failed to open is not tried again until it changes (or `force`).
    /// - Throws: the open errors of ``Arbor/open(_:)``; the current index stays in place.
    @discardableResult
    public func reload(force: Bool = false) throws -> ReloadOutcome {
        try reloads.withLock { failed throws -> ReloadOutcome in
            let old = snapshot
            guard let stamp = FileStamp(path: path) else { throw IndexError.notFound(path: path) }
            let sameFile = stamp.sameFile(as: old.stamp)
            // The same file: only a committed transaction changes what readers see (its size and
            // times change with every write, and say nothing about commits).
            let version = sameFile ? try old.engine.reader.committedVersion() : nil
            if !force {
                if FailedLoad(stamp: stamp, version: version) == failed { return .unchanged }
                if sameFile, version == old.engine.reader.openedVersion { return .unchanged }
            }
            // A file renamed over the path by another program leaves the old lock file in place,
            // still bound to the old file's environment in this process. LMDB keeps one lock file
            // per data file: opening the new file on it would reset the old readers' shared state
            // (the same thing the index writer avoids by removing the lock file after its rename).
            // An update in place keeps the file and its lock file, which its writer shares.
            let lockPath = path + "-lock"
            if !sameFile, let lock = old.lockStamp, FileStamp(path: lockPath)?.sameFile(as: lock) == true {
                try? FileManager.default.removeItem(atPath: lockPath)
            }
            let next: Snapshot
            do {
                next = try Self.load(path: path, generation: old.generation + 1)
            } catch {
                failed = FailedLoad(stamp: stamp, version: version)
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
