@_exported import ArborCore
@_exported import ArborInference
@_exported import ArborTree

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
}
