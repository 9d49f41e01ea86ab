#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ArborStore

/// What a stored tensor is: its name, shape and digest (``NamedTensor/digest``).
public struct TensorInfo: Sendable, Equatable, Codable {
    /// The tensor's name (unique within the index).
    public var name: String
    /// Its shape; the values are `shape.reduce(1, *)` Float32s, row-major.
    public var shape: [Int]
    /// FNV-1a 64 over the shape and values (see ``NamedTensor/digest``).
    public var digest: UInt64

    /// Number of values.
    public var count: Int { shape.reduce(1, *) }

    enum CodingKeys: String, CodingKey { case name, shape, digest }
    /// Describes a tensor.
    public init(name: String, shape: [Int], digest: UInt64) {
        self.name = name; self.shape = shape; self.digest = digest
    }
    /// Decodes the JSON form (digest as 16 hex digits).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        shape = try c.decode([Int].self, forKey: .shape)
        let hex = try c.decode(String.self, forKey: .digest)
        guard let value = UInt64(hex, radix: 16) else {
            throw DecodingError.dataCorruptedError(forKey: .digest, in: c, debugDescription: "not a hex digest")
        }
        digest = value
    }
    /// Encodes the JSON form (digest as hex text: JSON numbers lose precision above 2^53).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(shape, forKey: .shape)
        // Hex text: JSON numbers lose precision above 2^53.
        try c.encode(String(digest, radix: 16), forKey: .digest)
    }
}

/// The header of an index file: everything known about the index without reading its tables.
///
/// Stored under `meta/"header"` as a 32-byte binary preamble followed by JSON:
/// `"ARBORIDX"` (8 bytes) · format version `UInt32` LE · reserved `UInt32` · JSON length `UInt64` LE
/// · FNV-1a 64 of the JSON `UInt64` LE · the JSON (this type's fields). The version sits in the
/// preamble so that a reader can refuse another version before parsing anything else.
/// Its size depends on the depth and the number of tensors, never on the item count.
public struct IndexHeader: Sendable, Equatable, Codable {
    /// Format version (``IndexFormat/version`` when written by this build).
    public var formatVersion: Int
    /// Embedding width of every node.
    public var dimension: Int
    /// Largest number of children of a node.
    public var fanOut: Int
    /// Number of items (= leaves).
    public var itemCount: Int
    /// Number of nodes on each level, root (level 0, one node) to leaves (level `depth`).
    public var levelNodeCounts: [Int]
    /// Whether leaf categories are stored.
    public var hasCategories: Bool
    /// The model that scores the nodes (JSON key `nodeScorer`; `scorerKind` in format version 1).
    public var nodeScorer: NodeScorerKind
    /// What turns a behaviour list into the query (JSON key `queryProducer`; `encoderKind` in
    /// format version 1, where `"none"` meant ``QueryProducerKind/leafMeanPooling``).
    public var queryProducer: QueryProducerKind
    /// Largest chunk of a chunked array, in bytes.
    public var chunkBytes: Int
    /// The stored tensors (model weights), in the order they were given.
    public var tensors: [TensorInfo]
    /// Names of the stored extra values, sorted.
    public var extraNames: [String]
    /// Free leaf slots each leaf parent got at build time (format 3; 0 before). A leaf parent owns
    /// at most `fanOut + leafSlack` slots.
    public var leafSlack: Int = 0
    /// Update batches committed since the build (format 3; 0 before).
    public var generation: Int = 0
    /// Items at build time (format 3; equals ``itemCount`` before).
    public var builtItemCount: Int = 0
    /// Items added and removed by updates since the build (format 3).
    public var addedSinceBuild: Int = 0, removedSinceBuild: Int = 0

    /// Number of leaf slots (live items and free slots): the leaf level's node count.
    public var leafSlots: Int { levelNodeCounts.last ?? 0 }
    /// Whether the file can be updated in place (format 3 with a leaf-parent level).
    public var isUpdatable: Bool { formatVersion >= IndexFormat.firstUpdatableVersion && depth >= 1 }

    /// Index of the leaf level (root = 0).
    public var depth: Int { levelNodeCounts.count - 1 }
    /// Total number of nodes.
    public var nodeCount: Int { levelNodeCounts.reduce(0, +) }

    static let preambleBytes = 32

    enum CodingKeys: String, CodingKey {
        case formatVersion, dimension, fanOut, itemCount, levelNodeCounts, hasCategories, nodeScorer, queryProducer
        case chunkBytes, tensors, extraNames
        case leafSlack, generation, builtItemCount, addedSinceBuild, removedSinceBuild  // format version 3
        case scorerKind, encoderKind  // format version 1
    }

    /// A header; every field as documented on the property.
    public init(formatVersion: Int, dimension: Int, fanOut: Int, itemCount: Int, levelNodeCounts: [Int],
                hasCategories: Bool, nodeScorer: NodeScorerKind, queryProducer: QueryProducerKind, chunkBytes: Int,
                tensors: [TensorInfo], extraNames: [String]) {
        self.formatVersion = formatVersion; self.dimension = dimension; self.fanOut = fanOut
        self.itemCount = itemCount; self.levelNodeCounts = levelNodeCounts; self.hasCategories = hasCategories
        self.nodeScorer = nodeScorer; self.queryProducer = queryProducer; self.chunkBytes = chunkBytes
        self.tensors = tensors; self.extraNames = extraNames
        builtItemCount = itemCount
    }

    /// Decodes the JSON of format version 1 or 2 (the model kinds moved to typed keys in 2).
    /// An unknown kind is a decoding error naming its key.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        formatVersion = try c.decode(Int.self, forKey: .formatVersion)
        dimension = try c.decode(Int.self, forKey: .dimension)
        fanOut = try c.decode(Int.self, forKey: .fanOut)
        itemCount = try c.decode(Int.self, forKey: .itemCount)
        levelNodeCounts = try c.decode([Int].self, forKey: .levelNodeCounts)
        hasCategories = try c.decode(Bool.self, forKey: .hasCategories)
        chunkBytes = try c.decode(Int.self, forKey: .chunkBytes)
        tensors = try c.decode([TensorInfo].self, forKey: .tensors)
        extraNames = try c.decode([String].self, forKey: .extraNames)
        if formatVersion >= 3 {
            leafSlack = try c.decode(Int.self, forKey: .leafSlack)
            generation = try c.decode(Int.self, forKey: .generation)
            builtItemCount = try c.decode(Int.self, forKey: .builtItemCount)
            addedSinceBuild = try c.decode(Int.self, forKey: .addedSinceBuild)
            removedSinceBuild = try c.decode(Int.self, forKey: .removedSinceBuild)
        } else {
            builtItemCount = itemCount
        }
        func unknown(_ key: CodingKeys, _ text: String, _ known: [String]) -> DecodingError {
            .dataCorruptedError(forKey: key, in: c,
                                debugDescription: "unknown kind '\(text)' (known: \(known.joined(separator: ", ")))")
        }
        if formatVersion == 1 {
            let scorer = try c.decode(String.self, forKey: .scorerKind)
            let producer = try c.decode(String.self, forKey: .encoderKind)
            guard let s = NodeScorerKind(rawValue: scorer) else {
                throw unknown(.scorerKind, scorer, NodeScorerKind.allCases.map(\.rawValue))
            }
            guard let p = QueryProducerKind.fromVersion1(producer) else {
                throw unknown(.encoderKind, producer, ["none"] + QueryProducerKind.allCases.map(\.rawValue))
            }
            nodeScorer = s; queryProducer = p
        } else {
            let scorer = try c.decode(String.self, forKey: .nodeScorer)
            let producer = try c.decode(String.self, forKey: .queryProducer)
            guard let s = NodeScorerKind(rawValue: scorer) else {
                throw unknown(.nodeScorer, scorer, NodeScorerKind.allCases.map(\.rawValue))
            }
            guard let p = QueryProducerKind(rawValue: producer) else {
                throw unknown(.queryProducer, producer, QueryProducerKind.allCases.map(\.rawValue))
            }
            nodeScorer = s; queryProducer = p
        }
    }

    /// Encodes the JSON of this header's ``formatVersion`` (1 only for compatibility tests).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(formatVersion, forKey: .formatVersion)
        try c.encode(dimension, forKey: .dimension)
        try c.encode(fanOut, forKey: .fanOut)
        try c.encode(itemCount, forKey: .itemCount)
        try c.encode(levelNodeCounts, forKey: .levelNodeCounts)
        try c.encode(hasCategories, forKey: .hasCategories)
        try c.encode(chunkBytes, forKey: .chunkBytes)
        try c.encode(tensors, forKey: .tensors)
        try c.encode(extraNames, forKey: .extraNames)
        if formatVersion >= 3 {
            try c.encode(leafSlack, forKey: .leafSlack)
            try c.encode(generation, forKey: .generation)
            try c.encode(builtItemCount, forKey: .builtItemCount)
            try c.encode(addedSinceBuild, forKey: .addedSinceBuild)
            try c.encode(removedSinceBuild, forKey: .removedSinceBuild)
        }
        if formatVersion == 1 {
            try c.encode(nodeScorer.rawValue, forKey: .scorerKind)
            try c.encode(queryProducer == .leafMeanPooling ? "none" : queryProducer.rawValue, forKey: .encoderKind)
        } else {
            try c.encode(nodeScorer, forKey: .nodeScorer)
            try c.encode(queryProducer, forKey: .queryProducer)
        }
    }

    /// The stored bytes: preamble + JSON.
    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = Array(try! encoder.encode(self))  // plain values: encoding cannot fail
        var out = IndexFormat.magic
        out += withUnsafeBytes(of: UInt32(formatVersion).littleEndian) { Array($0) }
        out += [0, 0, 0, 0]
        out += withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) }
        out += withUnsafeBytes(of: FNV1a64.checksum(of: json).littleEndian) { Array($0) }
        return out + json
    }

    /// Parses and checks a stored header.
    /// - Throws: ``IndexError/foreign(path:)`` without the magic, ``IndexError/formatVersion(path:found:supported:)``,
    ///   ``IndexError/corruptHeader(path:field:reason:)`` for a damaged or inconsistent header.
    static func decode(_ view: ValueView, path: String) throws(IndexError) -> IndexHeader {
        try decode(bytes: view.copyBytes(), path: path)
    }

    /// ``decode(_:path:)`` over a copy of the stored bytes.
    static func decode(bytes: [UInt8], path: String) throws(IndexError) -> IndexHeader {
        guard bytes.count >= preambleBytes, Array(bytes[0..<8]) == IndexFormat.magic else {
            throw .foreign(path: path)
        }
        func le<T: FixedWidthInteger>(_: T.Type, _ offset: Int) -> T {
            var v: T = 0
            for i in 0..<MemoryLayout<T>.size { v |= T(bytes[offset + i]) << (8 * i) }
            return v
        }
        let version = Int(le(UInt32.self, 8))
        guard IndexFormat.readableVersions.contains(version) else {
            throw .formatVersion(path: path, found: version, supported: IndexFormat.version)
        }
        let length = le(UInt64.self, 16)
        let checksum = le(UInt64.self, 24)
        guard length == UInt64(bytes.count - preambleBytes) else {
            throw .corruptHeader(path: path, field: "length",
                                 reason: "says \(length) bytes of JSON, found \(bytes.count - preambleBytes)")
        }
        let json = Array(bytes[preambleBytes...])
        guard FNV1a64.checksum(of: json) == checksum else {
            throw .corruptHeader(path: path, field: "checksum", reason: "the header's bytes do not match its checksum")
        }
        let header: IndexHeader
        do {
            header = try JSONDecoder().decode(IndexHeader.self, from: Data(json))
        } catch let DecodingError.keyNotFound(key, _) {
            throw .corruptHeader(path: path, field: key.stringValue, reason: "missing")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
                let DecodingError.dataCorrupted(context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw .corruptHeader(path: path, field: field, reason: context.debugDescription)
        } catch {
            throw .corruptHeader(path: path, field: "json", reason: "\(error)")
        }
        guard header.formatVersion == version else {
            throw .corruptHeader(path: path, field: "formatVersion", reason: "differs from the preamble's \(version)")
        }
        try header.checkConsistency(path: path)
        return header
    }

    /// Checks the geometry a reader relies on before touching any table.
    func checkConsistency(path: String) throws(IndexError) {
        func bad(_ field: String, _ reason: String) -> IndexError {
            .corruptHeader(path: path, field: field, reason: reason)
        }
        // Bounds first, so that no size computed from the header can overflow.
        let maxCount = 1 << 40
        guard dimension > 0 && dimension <= 1 << 16 else { throw bad("dimension", "must be in 1...65536, is \(dimension)") }
        guard levelNodeCounts.count <= 64, levelNodeCounts.allSatisfy({ $0 <= maxCount }) else {
            throw bad("levelNodeCounts", "more than 64 levels or 2^40 nodes on a level")
        }
        for t in tensors {
            var count = 1
            for d in t.shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: max(d, 0))
                guard !overflow, product <= maxCount else { throw bad("tensors", "tensor '\(t.name)' has over 2^40 values") }
                count = product
            }
        }
        guard (2...64).contains(fanOut) else { throw bad("fanOut", "must be in 2...64, is \(fanOut)") }
        guard levelNodeCounts.first == 1 else { throw bad("levelNodeCounts", "level 0 must hold one node") }
        guard levelNodeCounts.allSatisfy({ $0 >= 1 }) else { throw bad("levelNodeCounts", "a level is empty") }
        guard (0...1024).contains(leafSlack) else { throw bad("leafSlack", "must be in 0...1024, is \(leafSlack)") }
        for l in 0..<depth {
            let most = levelNodeCounts[l] * (l == depth - 1 ? fanOut + leafSlack : fanOut)
            if levelNodeCounts[l + 1] > most || levelNodeCounts[l + 1] < levelNodeCounts[l] {
                throw bad("levelNodeCounts", "level \(l + 1) cannot hang below level \(l) with fan-out \(fanOut)")
            }
        }
        if formatVersion >= 3 {
            guard itemCount >= 0, itemCount <= leafSlots else {
                throw bad("itemCount", "is \(itemCount), the leaf level has \(leafSlots) slots")
            }
            guard generation >= 0, builtItemCount >= 0, addedSinceBuild >= 0, removedSinceBuild >= 0 else {
                throw bad("generation", "update counters must not be negative")
            }
        } else {
            guard levelNodeCounts.last == itemCount else {
                throw bad("itemCount", "is \(itemCount), the leaf level holds \(levelNodeCounts.last ?? 0)")
            }
        }
        guard chunkBytes >= 64 else { throw bad("chunkBytes", "must be at least 64, is \(chunkBytes)") }
        for t in tensors where t.shape.contains(where: { $0 < 0 }) {
            throw bad("tensors", "tensor '\(t.name)' has a negative dimension")
        }
    }
}
