/// Constants and key layout of index format version 3.
///
/// Version 3 makes an index updatable in place (``IndexUpdater``): the leaf level is a level of
/// *slots*. Each leaf parent (a node of level `depth - 1`) owns the contiguous slots
/// `childOffsets[p] ..< childOffsets[p + 1]` of the leaf level, of which the first
/// `childEnds[p] - childOffsets[p]` hold its live items and the rest are free (`leafSlack` free
/// slots per leaf parent at build time). `childEnds` is stored as kind 2 of level `depth - 1` in
/// `levels`. A free slot holds the item id `UInt64.max` in `leafItems`, zeros in the embeddings and
/// category 0, and has no entry in `items`. Beam search reads `childOffsets[p] ..< childEnds[p]`,
/// so free slots are never scored. The header's `itemCount` counts live items (at most the slot
/// count `levelNodeCounts[depth]`); `generation` counts committed update batches. Version 1 and 2
/// files (no free slots) still open and serve; they are read-only until rewritten by
/// ``IndexUpgrade/upgrade(_:leafSlack:progress:)``.
///
/// Version 2 differs from version 1 in the header only: the model kinds are typed
/// (`nodeScorer`, `queryProducer`: ``NodeScorerKind``, ``QueryProducerKind``) where version 1 had
/// free strings (`scorerKind`, `encoderKind`). Version 1 files still open: their
/// strings are mapped to the kinds; an unknown string is an error naming the field.
///
/// One LMDB environment (one file, `name.arbor`) with these named tables:
///
/// | table | key | value |
/// |---|---|---|
/// | `meta` | `"header"` | the header: 32-byte binary preamble + JSON (see ``IndexHeader``) |
/// | `levels` | `UInt64` BE `level << 40 \| kind << 32 \| chunk` | kind 0: embeddings, `rows × dimension` Float32; kind 1: child offsets, Int32; kind 2 (level `depth - 1` only, version 3): child ends, Int32 |
/// | `items` | `UInt64` BE item id | leaf slot, `UInt64` LE (live items only) |
/// | `leafItems` | `UInt64` BE chunk | item ids in slot order, `UInt64` LE (`UInt64.max`: free slot) |
/// | `categories` | `UInt64` BE chunk | leaf categories, `UInt32` LE (only if the layout has them) |
/// | `tensors` | UTF-8 name, `0x00`, `UInt32` BE chunk | Float32 values of a named tensor, row-major |
/// | `extra` | UTF-8 name | free bytes stored by other modules (see ``IndexWriter``) |
/// | `checksums` | UTF-8 table name, `0x00`, the value's key | `UInt64` LE byte count, `UInt64` LE FNV-1a 64 |
///
/// Arbor's trainers add extra values such as the behaviour vocabulary of their encoders (`UInt64` LE
/// ids) and `training.provenance` (``TrainingProvenance``, JSON); `arbor build` writes no provenance.
///
/// Every value of `levels`, `leafItems`, `categories`, `tensors` and `extra` is a *large value*
/// with an entry in `checksums`. Arrays are cut into chunks of at most ``IndexHeader/chunkBytes``
/// bytes (whole rows for embeddings); chunk `c` holds elements `c * perChunk ..< (c + 1) * perChunk`.
/// Numbers are little-endian. LMDB aligns values to 2 bytes only: readers load unaligned.
public enum IndexFormat {
    /// The format version this build writes.
    public static let version = 3
    /// The format versions this build reads.
    public static let readableVersions: ClosedRange<Int> = 1...3
    /// The first version that can be updated in place (free leaf slots, child ends).
    public static let firstUpdatableVersion = 3
    /// The `leafItems` entry of a free slot.
    public static let freeSlot = UInt64.max
    /// The 8 bytes that open every header.
    public static let magic: [UInt8] = Array("ARBORIDX".utf8)
    /// Default largest chunk: 16 MiB.
    public static let defaultChunkBytes = 16 << 20
    /// Longest tensor or extra name, in UTF-8 bytes (LMDB keys are at most 511 bytes).
    public static let maxNameBytes = 400

    static let metaTable = "meta"
    static let levelsTable = "levels"
    static let itemsTable = "items"
    static let leafItemsTable = "leafItems"
    static let categoriesTable = "categories"
    static let tensorsTable = "tensors"
    static let extraTable = "extra"
    static let checksumsTable = "checksums"
    static let headerKey = "header"
    static let tableCount = 8

    /// Elements of `elementBytes` bytes per chunk of at most `chunkBytes` bytes (at least 1).
    static func perChunk(elementBytes: Int, chunkBytes: Int) -> Int {
        max(1, chunkBytes / max(1, elementBytes))
    }

    static func bigEndian(_ value: UInt64) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }
}

/// One large value of an index: where it lives and how errors name it.
enum LargeValue: Hashable {
    case embeddings(level: Int, chunk: Int)
    case childOffsets(level: Int, chunk: Int)
    case childEnds(level: Int, chunk: Int)
    case leafItems(chunk: Int)
    case categories(chunk: Int)
    case tensor(name: String, chunk: Int)
    case extra(name: String)

    var table: String {
        switch self {
        case .embeddings, .childOffsets, .childEnds: return IndexFormat.levelsTable
        case .leafItems: return IndexFormat.leafItemsTable
        case .categories: return IndexFormat.categoriesTable
        case .tensor: return IndexFormat.tensorsTable
        case .extra: return IndexFormat.extraTable
        }
    }

    /// The key bytes in its table.
    var key: [UInt8] {
        switch self {
        case let .embeddings(level, chunk):
            return IndexFormat.bigEndian(UInt64(level) << 40 | UInt64(chunk))
        case let .childOffsets(level, chunk):
            return IndexFormat.bigEndian(UInt64(level) << 40 | 1 << 32 | UInt64(chunk))
        case let .childEnds(level, chunk):
            return IndexFormat.bigEndian(UInt64(level) << 40 | 2 << 32 | UInt64(chunk))
        case let .leafItems(chunk), let .categories(chunk):
            return IndexFormat.bigEndian(UInt64(chunk))
        case let .tensor(name, chunk):
            return Array(name.utf8) + [0] + withUnsafeBytes(of: UInt32(chunk).bigEndian) { Array($0) }
        case let .extra(name):
            return Array(name.utf8)
        }
    }

    /// The key of its checksum in the `checksums` table.
    var checksumKey: [UInt8] { Array(table.utf8) + [0] + key }

    /// A readable name for error messages.
    var label: String {
        switch self {
        case let .embeddings(level, chunk): return "level \(level) embeddings chunk \(chunk)"
        case let .childOffsets(level, chunk): return "level \(level) child offsets chunk \(chunk)"
        case let .childEnds(level, chunk): return "level \(level) child ends chunk \(chunk)"
        case let .leafItems(chunk): return "leaf items chunk \(chunk)"
        case let .categories(chunk): return "categories chunk \(chunk)"
        case let .tensor(name, chunk): return "tensor '\(name)' chunk \(chunk)"
        case let .extra(name): return "extra '\(name)'"
        }
    }

    /// Decodes a `levels` key into (level, kind, chunk).
    static func decodeLevelKey(_ key: UInt64) -> (level: Int, kind: Int, chunk: Int) {
        (Int(key >> 40), Int((key >> 32) & 0xFF), Int(key & 0xFFFF_FFFF))
    }
}
