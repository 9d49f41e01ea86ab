/// Rewrites an index in the current format with free leaf slots, so that an older file (format 1
/// or 2, read-only) can be updated in place afterwards.
public enum IndexUpgrade {
    /// Reads the index at `path` (tree, stored tensors, extra values, model kinds; every checksum
    /// checked) and writes it back in format ``IndexFormat/version`` with `leafSlack` free slots
    /// per leaf parent, atomically (a temporary file renamed over `path`). Readers of the old file
    /// keep the data they opened. Also compacts a format 3 file: free slots are laid out afresh.
    /// - Returns: the new header.
    /// - Throws: ``IndexError`` for an unreadable or damaged file (including a format 3 file whose
    ///   updates emptied a leaf parent: rebuild that one from its vectors), ``ArborError`` for a
    ///   slack outside 0 ... 1024. On any error `path` is unchanged.
    /// - Complexity: O(file size) time and memory.
    @discardableResult
    public static func upgrade(_ path: String, leafSlack: Int, progress: some ProgressReporter = SilentProgress()) throws -> IndexHeader {
        let reader = try IndexReader(path: path)
        let header = try reader.currentHeader()
        let layout = try reader.loadLayout()
        var tensors: [NamedTensor] = []
        for info in header.tensors { tensors.append(try reader.tensor(named: info.name)) }
        let extra = try reader.extras(named: header.extraNames)
        var writer = IndexWriter(chunkBytes: header.chunkBytes)
        writer.leafSlack = leafSlack
        return try writer.write(layout: layout, tensors: tensors, nodeScorer: header.nodeScorer,
                                queryProducer: header.queryProducer, extra: extra, to: path, progress: progress)
    }
}
