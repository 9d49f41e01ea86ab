import ArborInference
import ArborTree
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A two-tower weights file: a training checkpoint (every parameter, to resume or to restore the
/// best epoch) or a trained user encoder (what `arbor train` writes beside the item vectors).
///
/// Layout (little-endian): the magic `ARBORTTW`, a `UInt64` header length, the header as JSON
/// (format version, kind, configuration, epoch, metric, counts, and per tensor its name, shape and
/// FNV-1a digest — ``ArborTree/NamedTensor/digest``), then the item ids (`UInt64` each), the
/// item categories (`Int32` each, checkpoints with categories only), then each tensor's `Float32`
/// values in header order. Reading checks the magic, the version, the exact file size, the ids'
/// digest and every tensor's digest, so a truncated or corrupted file is an error, never a
/// silently wrong model. Writes go to a temporary file renamed into place (a crash mid-write
/// leaves the previous file intact).
public struct TwoTowerWeightsFile: Sendable, Equatable {
    /// What the file holds.
    public enum Kind: String, Sendable, Codable {
        /// Every trainable parameter (``TwoTowerModel/namedTensors()``) and the catalogue.
        case checkpoint
        /// The inference encoder (``TwoTowerEncoder/namedTensors()``) and its item ids.
        case encoder
    }

    /// The format version this build writes and reads.
    public static let formatVersion = 1
    static let magic = Array("ARBORTTW".utf8)

    /// What the file holds.
    public var kind: Kind
    /// The model's configuration.
    public var config: TwoTowerConfig
    /// The epoch the weights are from (0 = initial weights).
    public var epoch: Int
    /// The validation metric of that epoch, when measured.
    public var metric: Double?
    /// Item ids in row order (ascending).
    public var ids: [ItemID]
    /// Dense item categories in row order (``TwoTowerCatalog/categories``); empty without categories.
    public var categories: [Int32]
    /// The weights.
    public var tensors: [ArborTree.NamedTensor]

    /// A file's contents; see the properties.
    public init(kind: Kind, config: TwoTowerConfig, epoch: Int, metric: Double?, ids: [ItemID], categories: [Int32],
                tensors: [ArborTree.NamedTensor]) {
        self.kind = kind
        self.config = config
        self.epoch = epoch
        self.metric = metric
        self.ids = ids
        self.categories = categories
        self.tensors = tensors
    }

    struct TensorEntry: Codable, Equatable {
        var name: String
        var shape: [Int]
        var digest: UInt64
    }

    struct Header: Codable {
        var formatVersion: Int
        var kind: Kind
        var config: TwoTowerConfig
        var epoch: Int
        var metric: Double?
        var itemCount: Int
        var categoryCount: Int
        var idsDigest: UInt64
        var tensors: [TensorEntry]
    }

    /// Writes the file atomically (temporary file, then rename).
    /// - Throws: ``TwoTowerError/invalidInput(_:)`` for a tensor whose values do not fill its shape
    ///   or hold NaN; ``TwoTowerError/writeFailed(path:reason:)``.
    /// - Complexity: O(total size).
    public func write(to path: String) throws(TwoTowerError) {
        for t in tensors {
            do { try t.validate() } catch { throw .invalidInput(error) }
        }
        let header = Header(
            formatVersion: Self.formatVersion, kind: kind, config: config, epoch: epoch, metric: metric.flatMap { $0.isFinite ? $0 : nil },
            itemCount: ids.count, categoryCount: categories.count, idsDigest: Self.digest(ids: ids, categories: categories),
            tensors: tensors.map { TensorEntry(name: $0.name, shape: $0.shape, digest: $0.digest) })
        let json: Data
        do { json = try JSONEncoder().encode(header) } catch { throw .writeFailed(path: path, reason: "\(error)") }
        var data = Data(Self.magic)
        data.reserveCapacity(16 + json.count + ids.count * 8 + categories.count * 4 + tensors.reduce(0) { $0 + $1.values.count * 4 })
        appendLE(&data, UInt64(json.count))
        data.append(json)
        for id in ids { appendLE(&data, id.rawValue) }
        for c in categories { appendLE(&data, UInt32(bitPattern: c)) }
        for t in tensors {
            t.values.withUnsafeBufferPointer { buf in
                #if _endian(little)
                data.append(UnsafeBufferPointer(start: UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: UInt8.self), count: buf.count * 4))
                #else
                for v in buf { appendLE(&data, v.bitPattern) }
                #endif
            }
        }
        let tmpPath = path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        do {
            try data.write(to: URL(fileURLWithPath: tmpPath))
        } catch {
            try? FileManager.default.removeItem(atPath: tmpPath)
            throw .writeFailed(path: path, reason: "\(error)")
        }
        // rename(2) replaces an existing file atomically.
        guard rename(tmpPath, path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: tmpPath)
            throw .writeFailed(path: path, reason: reason)
        }
    }

    /// Reads and checks a file.
    /// - Throws: ``TwoTowerError/badWeightsFile(path:reason:)`` (missing, not a weights file, other
    ///   version, truncated or too long, bad header, ids digest), ``TwoTowerError/digestMismatch(name:expected:found:)``
    ///   naming the first tensor whose values do not match its digest.
    /// - Complexity: O(file size).
    public static func read(at path: String) throws(TwoTowerError) -> TwoTowerWeightsFile {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .badWeightsFile(path: path, reason: FileManager.default.fileExists(atPath: path) ? "cannot read (\(error))" : "no such file")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= 16, Array(bytes[0 ..< 8]) == magic else {
            throw .badWeightsFile(path: path, reason: "missing the ARBORTTW magic")
        }
        var cursor = 8
        let rawHeaderLength = readLE(bytes, &cursor, UInt64.self)
        guard rawHeaderLength > 0, rawHeaderLength <= UInt64(bytes.count - cursor) else {
            throw .badWeightsFile(path: path, reason: "header length \(rawHeaderLength) exceeds the file")
        }
        let headerLength = Int(rawHeaderLength)
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: Data(bytes[cursor ..< cursor + headerLength]))
        } catch {
            throw .badWeightsFile(path: path, reason: "unreadable header (\(error))")
        }
        cursor += headerLength
        guard header.formatVersion == formatVersion else {
            throw .badWeightsFile(path: path, reason: "format version \(header.formatVersion); this build reads \(formatVersion)")
        }
        guard header.itemCount >= 0, header.categoryCount >= 0,
              header.tensors.allSatisfy({ $0.shape.allSatisfy { $0 >= 0 } }) else {
            throw .badWeightsFile(path: path, reason: "negative count or dimension in the header")
        }
        // Sizes come from the file: add them up with overflow checks (a forged header must not trap).
        func checked(_ parts: [(Int, Int)]) -> Int? {
            var total = 0
            for (count, size) in parts {
                let (product, o1) = count.multipliedReportingOverflow(by: size)
                let (sum, o2) = total.addingReportingOverflow(product)
                if o1 || o2 { return nil }
                total = sum
            }
            return total
        }
        var tensorFloats: Int? = 0
        for t in header.tensors {
            let count = t.shape.reduce(Optional(1)) { acc, dim in acc.flatMap { a in checked([(a, dim)]) } }
            tensorFloats = tensorFloats.flatMap { f in count.flatMap { checked([(f, 1), ($0, 1)]) } }
        }
        guard let floats = tensorFloats,
              let expected = checked([(cursor, 1), (header.itemCount, 8), (header.categoryCount, 4), (floats, 4)]) else {
            throw .badWeightsFile(path: path, reason: "the header's sizes overflow")
        }
        guard bytes.count == expected else {
            throw .badWeightsFile(path: path, reason: "\(bytes.count) bytes, the header describes \(expected) (truncated or padded)")
        }
        var ids = [ItemID]()
        ids.reserveCapacity(header.itemCount)
        for _ in 0 ..< header.itemCount { ids.append(ItemID(readLE(bytes, &cursor, UInt64.self))) }
        var categories = [Int32]()
        categories.reserveCapacity(header.categoryCount)
        for _ in 0 ..< header.categoryCount { categories.append(Int32(bitPattern: readLE(bytes, &cursor, UInt32.self))) }
        let idsDigest = digest(ids: ids, categories: categories)
        guard idsDigest == header.idsDigest else {
            throw .digestMismatch(name: "item ids", expected: header.idsDigest, found: idsDigest)
        }
        var tensors: [ArborTree.NamedTensor] = []
        for entry in header.tensors {
            let count = entry.shape.reduce(1, *)
            var values = [Float](repeating: 0, count: count)
            for i in 0 ..< count { values[i] = Float(bitPattern: readLE(bytes, &cursor, UInt32.self)) }
            let t = ArborTree.NamedTensor(name: entry.name, shape: entry.shape, values: values)
            let found = t.digest
            guard found == entry.digest else { throw .digestMismatch(name: entry.name, expected: entry.digest, found: found) }
            tensors.append(t)
        }
        return TwoTowerWeightsFile(kind: header.kind, config: header.config, epoch: header.epoch, metric: header.metric,
                                   ids: ids, categories: categories, tensors: tensors)
    }

    /// FNV-1a 64 over the ids and categories (little-endian bytes).
    static func digest(ids: [ItemID], categories: [Int32]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func eat(_ v: UInt64, _ n: Int) {
            for k in 0 ..< n {
                h ^= (v >> (8 * UInt64(k))) & 0xFF
                h = h &* 0x100_0000_01b3
            }
        }
        eat(UInt64(ids.count), 8)
        for id in ids { eat(id.rawValue, 8) }
        for c in categories { eat(UInt64(UInt32(bitPattern: c)), 4) }
        return h
    }
}

private func appendLE<T: FixedWidthInteger>(_ data: inout Data, _ v: T) {
    withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) }
}

private func readLE<T: FixedWidthInteger>(_ bytes: [UInt8], _ cursor: inout Int, _: T.Type) -> T {
    var v: T = 0
    for k in 0 ..< MemoryLayout<T>.size { v |= T(bytes[cursor + k]) << (8 * k) }
    cursor += MemoryLayout<T>.size
    return v
}

extension TwoTowerModel {
    /// The model's parameters and catalogue as a checkpoint.
    public func checkpoint(epoch: Int, metric: Double?) -> TwoTowerWeightsFile {
        TwoTowerWeightsFile(kind: .checkpoint, config: config, epoch: epoch, metric: metric, ids: catalog.ids,
                            categories: catalog.categories, tensors: namedTensors())
    }

    /// A model restored from a checkpoint file's contents (configuration, catalogue, weights).
    /// - Throws: ``TwoTowerError/badWeightsFile(path:reason:)`` for an encoder file;
    ///   ``TwoTowerError`` as ``load(_:)`` for names or shapes that do not fit the configuration.
    public convenience init(checkpoint file: TwoTowerWeightsFile) throws(TwoTowerError) {
        guard file.kind == .checkpoint else {
            throw .badWeightsFile(path: "checkpoint", reason: "holds a \(file.kind.rawValue), not a checkpoint")
        }
        let catalog = try TwoTowerCatalog(ids: file.ids, denseCategories: file.categories, categoryCount: file.config.categoryCount)
        try self.init(config: file.config, catalog: catalog, seed: 0)
        try load(file.tensors)
    }
}

extension TwoTowerEncoder {
    /// The encoder as a weights file (kind ``TwoTowerWeightsFile/Kind/encoder``).
    public func weightsFile(config: TwoTowerConfig, epoch: Int, metric: Double?) -> TwoTowerWeightsFile {
        TwoTowerWeightsFile(kind: .encoder, config: config, epoch: epoch, metric: metric, ids: ids, categories: [],
                            tensors: namedTensors())
    }

    /// The encoder of an encoder weights file.
    /// - Throws: ``TwoTowerError/badWeightsFile(path:reason:)`` for a checkpoint; as ``init(tensors:ids:)``.
    public init(weightsFile file: TwoTowerWeightsFile) throws(TwoTowerError) {
        guard file.kind == .encoder else {
            throw .badWeightsFile(path: "encoder", reason: "holds a \(file.kind.rawValue), not an encoder")
        }
        try self.init(tensors: file.tensors, ids: file.ids)
    }
}

extension TwoTowerCatalog {
    /// A catalogue from stored rows: ids strictly increasing, dense categories (or empty).
    /// - Throws: ``TwoTowerError`` for empty, unsorted or duplicate ids, or categories out of range.
    public init(ids: [ItemID], denseCategories: [Int32], categoryCount: Int) throws(TwoTowerError) {
        guard denseCategories.isEmpty || denseCategories.count == ids.count else {
            throw .shapeMismatch(name: "item categories", expected: [ids.count], found: [denseCategories.count])
        }
        for c in denseCategories where c != Self.noCategory && !(0 ..< Int32(categoryCount)).contains(c) {
            throw .invalidConfiguration(field: "item categories", reason: "category \(c) out of 0..<\(categoryCount)")
        }
        for i in 1 ..< max(1, ids.count) where !(ids[i - 1] < ids[i]) {
            throw .invalidConfiguration(field: "item ids", reason: "must be strictly increasing (row order)")
        }
        guard !ids.isEmpty else { throw .noItems }
        self.init(validatedIDs: ids, categories: denseCategories, categoryCount: denseCategories.isEmpty ? 0 : categoryCount)
    }
}
