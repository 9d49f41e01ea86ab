@_exported import ArborCore
@_exported import ArborInference
@_exported import ArborTree
import ArborRetrieval

/// The front door: open an index and serve it with whatever model it holds.
///
/// ```swift
/// let engine = try Arbor.open("ml.arbor")
/// let top = try engine.search(history: [50, 172, 181], k: 10)
/// ```
public enum Arbor {
    /// Opens the index file at `path` (memory map and header; O(model weights), independent of the
    /// catalogue size) and loads the node scorer and query producer its header names.
    /// - Throws: `IndexError` naming the file and field for a missing, foreign, damaged or
    ///   other-version file; ``ModelLoadError`` when the stored model is incomplete.
    public static func open(_ path: String) throws -> Engine {
        try Engine(reader: IndexReader(path: path))
    }

    /// Opens the index file at `path` for updates in place (``IndexUpdater``): add, remove and
    /// replace items in batches, each one write transaction. An HNSW graph stored beside the tree
    /// follows every batch. Open it before any ``open(_:)`` of the same file in this process: an
    /// engine opened afterwards shares its environment and sees each batch once it commits.
    /// - Throws: as ``IndexUpdater/init(path:descentBeam:maintainers:itemBoundExtras:)``.
    public static func updater(_ path: String, descentBeam: Int = 32) throws -> IndexUpdater {
        try IndexUpdater(path: path, descentBeam: descentBeam, maintainers: [HNSWGraphMaintainer()],
                         itemBoundExtras: HNSWPersistence.isGraphValue)
    }
}
