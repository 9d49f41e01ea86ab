import ArborStore
import ArborTree
import Foundation

/// Stores an HNSW graph in an index file beside the tree, and opens it again without a rebuild.
///
/// The graph lives in the index's `extra` table under the names below, each value checksummed like
/// every large value of the file (so ``IndexReader/verify()`` covers it, and a damaged value fails
/// its checksum on load): `hnsw.meta` (JSON: graph format version, configuration, dimension, norm
/// bound, node count, entry point, and `buildKernel`, the kernel that built the graph; a value stored
/// without it reads as `nil`, unknown) and the arrays `hnsw.vectors` (Float32, `n × storedDimension`),
/// `hnsw.ids` (UInt64), `hnsw.deleted` (UInt8), `hnsw.levels`, `hnsw.layer0`, `hnsw.layer0Counts`,
/// `hnsw.upper`, `hnsw.upperCounts` (Int32), little-endian, shapes as ``HNSWGraph`` states.
///
/// Loading copies the arrays and checks every invariant (``HNSWGraph/validate()``); it costs time in
/// proportion to the graph, and happens only when an HNSW retriever is asked for: opening the index
/// itself still reads the header only.
public enum HNSWPersistence {
    /// Version of the graph encoding in `hnsw.meta`.
    public static let graphFormatVersion = 1
    /// Name of the metadata value; its presence marks an index that carries a graph.
    public static let metaName = "hnsw.meta"

    struct Meta: Codable {
        var graphFormatVersion: Int
        var configuration: HNSWConfiguration
        var dimension: Int
        var normBound: Float?
        var count: Int
        var entryPoint: Int32
        /// Absent from graphs stored before it was recorded (decodes as `nil`).
        var buildKernel: HNSWDistanceKernel?
    }

    /// What `hnsw.meta` says about a stored graph, read without loading the graph's arrays.
    public struct StoredGraphInfo: Sendable, Equatable {
        /// The build configuration (its `kernel` is the requested choice, e.g. `.automatic`).
        public var configuration: HNSWConfiguration
        /// Dimension of the vectors as given.
        public var dimension: Int
        /// Number of nodes, deleted ones included.
        public var count: Int
        /// The kernel that built the graph; `nil` when unknown (stored before Arbor recorded it).
        public var buildKernel: HNSWDistanceKernel?
    }

    /// Reads `hnsw.meta` only (cheap: no graph arrays), e.g. for `arbor inspect`.
    /// - Throws: as ``load(from:kernel:)`` for a missing, damaged or unreadable `hnsw.meta`.
    public static func info(from reader: IndexReader) throws -> StoredGraphInfo {
        let meta = try readMeta(reader)
        return StoredGraphInfo(configuration: meta.configuration, dimension: meta.dimension, count: meta.count,
                               buildKernel: meta.buildKernel)
    }

    private static func readMeta(_ reader: IndexReader) throws -> Meta {
        guard let b = try reader.extra(named: metaName) else {
            throw ArborError.invalidArgument(name: metaName, reason: "missing from \(reader.path)")
        }
        return try decodeMeta(b, reader)
    }

    private static func decodeMeta(_ b: [UInt8], _ reader: IndexReader) throws -> Meta {
        let meta: Meta
        do {
            meta = try JSONDecoder().decode(Meta.self, from: Data(b))
        } catch {
            throw ArborError.invalidArgument(name: metaName, reason: "unreadable in \(reader.path): \(error)")
        }
        guard meta.graphFormatVersion == graphFormatVersion else {
            throw ArborError.invalidArgument(name: metaName, reason: "graph format \(meta.graphFormatVersion) in \(reader.path); this build reads \(graphFormatVersion)")
        }
        return meta
    }

    /// The named byte values to pass as `extra:` to ``IndexWriter/write(layout:tensors:nodeScorer:queryProducer:extra:to:progress:cancellation:)``.
    public static func extras(for index: HNSWIndex) throws -> [String: [UInt8]] {
        let g = index.graph
        let meta = Meta(graphFormatVersion: graphFormatVersion, configuration: g.configuration, dimension: g.dimension,
                        normBound: g.normBound, count: g.count, entryPoint: g.entryPoint, buildKernel: g.buildKernel)
        return [
            metaName: Array(try JSONEncoder().encode(meta)),
            "hnsw.vectors": ByteCoding.bytes(of: g.vectors),
            "hnsw.ids": ByteCoding.bytes(of: g.ids.map(\.rawValue)),
            "hnsw.deleted": g.deleted.map { $0 ? UInt8(1) : 0 },
            "hnsw.levels": ByteCoding.bytes(of: g.levels),
            "hnsw.layer0": ByteCoding.bytes(of: g.layer0Neighbours),
            "hnsw.layer0Counts": ByteCoding.bytes(of: g.layer0Counts),
            "hnsw.upper": ByteCoding.bytes(of: g.upperNeighbours),
            "hnsw.upperCounts": ByteCoding.bytes(of: g.upperCounts),
        ]
    }

    /// True when `reader`'s index carries a graph.
    public static func hasGraph(_ reader: IndexReader) -> Bool { reader.extraNames.contains(metaName) }

    /// Reads the graph back (checksums, sizes and graph invariants checked). `kernel` replaces the
    /// stored kernel choice (see ``HNSWIndex/init(graph:kernel:)``); `nil` keeps it.
    /// - Throws: ``IndexError`` (missing value, checksum mismatch), ``ArborError`` (a graph whose
    ///   arrays break an invariant, another graph format version, a stored explicit kernel this CPU
    ///   cannot run).
    public static func load(from reader: IndexReader, kernel: HNSWDistanceKernel? = nil) throws -> HNSWIndex {
        // Every value from one read transaction: one committed state, even during updates.
        let stored = try reader.extras(named: [metaName, "hnsw.vectors", "hnsw.ids", "hnsw.deleted", "hnsw.levels",
                                               "hnsw.layer0", "hnsw.layer0Counts", "hnsw.upper", "hnsw.upperCounts"])
        func bytes(_ name: String) throws -> [UInt8] {
            guard let b = stored[name] else {
                throw ArborError.invalidArgument(name: name, reason: "missing from \(reader.path)")
            }
            return b
        }
        func array<T: StorableScalar>(_ name: String, _ type: T.Type) throws -> [T] {
            guard let values = ByteCoding.elements(of: try bytes(name), as: type) else {
                throw ArborError.invalidArgument(name: name, reason: "byte count is not a multiple of \(MemoryLayout<T>.stride) in \(reader.path)")
            }
            return values
        }
        let meta = try decodeMeta(try bytes(metaName), reader)
        let graph = HNSWGraph(
            configuration: meta.configuration, dimension: meta.dimension, normBound: meta.normBound,
            vectors: try array("hnsw.vectors", Float.self), ids: try array("hnsw.ids", UInt64.self).map { ItemID($0) },
            deleted: try bytes("hnsw.deleted").map { $0 != 0 }, levels: try array("hnsw.levels", Int32.self),
            layer0Neighbours: try array("hnsw.layer0", Int32.self), layer0Counts: try array("hnsw.layer0Counts", Int32.self),
            upperNeighbours: try array("hnsw.upper", Int32.self), upperCounts: try array("hnsw.upperCounts", Int32.self),
            entryPoint: meta.entryPoint, buildKernel: meta.buildKernel)
        guard graph.count == meta.count else {
            throw ArborError.dimensionMismatch(field: "hnsw.levels (nodes)", expected: meta.count, found: graph.count)
        }
        return try HNSWIndex(graph: graph, kernel: kernel)
    }
}

/// Keeps the HNSW graph beside a tree in step with ``IndexUpdater`` batches: removed items are
/// marked deleted (never returned; the graph still routes through them), added items are linked
/// into the graph. A replaced item's old node keeps routing under a retired id (`UInt64.max - node`,
/// deleted), so its id can join again with its new vector.
public struct HNSWGraphMaintainer: IndexExtraMaintainer {
    /// A maintainer for graphs stored by ``HNSWPersistence``.
    public init() {}

    /// Whether `name` is a graph value (`hnsw.*`).
    public func maintains(extra name: String) -> Bool { name.hasPrefix("hnsw.") }

    /// Loads the graph, applies the batch, and returns every graph value.
    /// Cost: loading and re-encoding the whole graph, plus linking the additions.
    public func updatedExtras(for batch: IndexBatch, reader: IndexReader) throws -> [String: [UInt8]] {
        guard HNSWPersistence.hasGraph(reader) else { return [:] }
        var index = try HNSWPersistence.load(from: reader)
        for id in batch.removals where index.contains(id) { try index.markDeleted(id) }
        let returning = batch.additions.filter { index.contains($0) }
        if !returning.isEmpty {
            // Retire the old nodes of ids that come back (replaced, or removed earlier).
            var graph = index.graph
            let nodes = Dictionary(uniqueKeysWithValues: graph.ids.enumerated().map { ($1, $0) })
            for id in returning {
                let node = nodes[id]!
                graph.ids[node] = ItemID(UInt64.max - UInt64(node))
                graph.deleted[node] = true
            }
            index = try HNSWIndex(graph: graph)
        }
        if !batch.additions.isEmpty { try index.add(batch.vectors, ids: batch.additions) }
        return try HNSWPersistence.extras(for: index)
    }
}

extension HNSWPersistence {
    /// Whether the extra value `name` belongs to a graph (and so must follow updates of the items).
    public static func isGraphValue(_ name: String) -> Bool { name.hasPrefix("hnsw.") }
}
