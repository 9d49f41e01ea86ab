import Foundation

/// A Parquet file in memory, read by its footer: `PAR1`, column chunks, the FileMetaData in the
/// Thrift compact protocol, its 4-byte little-endian length, `PAR1`. Reads what Spark, pyarrow and
/// parquet-mr write for flat tables and one-level lists (`array<float>`): INT32, INT64, FLOAT,
/// DOUBLE and BYTE_ARRAY columns, data pages v1 and v2, dictionary pages, PLAIN and dictionary
/// encodings, UNCOMPRESSED or SNAPPY. Anything else (GZIP, ZSTD, DELTA encodings, nested lists,
/// encryption) is a typed error naming the column and what it uses.
///
/// Hostile files: every offset, length and count is checked against the bytes that must hold it
/// before use, and a column's decoded size is capped by the file's size (at most 64 values and 256
/// value bytes per file byte, plus 2^16 values and 2^24 bytes), so a small file cannot ask for a
/// huge allocation. A value type; thread-safe. Memory: the whole file plus the columns read.
public struct ParquetFile: Sendable {
    /// The file's path (or the name given), as errors show it.
    public let source: String
    /// Rows over all row groups.
    public let rowCount: Int
    /// The leaf columns, in schema order.
    public let columns: [ParquetColumnInfo]
    /// The writer (`created_by`), e.g. `parquet-mr version 1.13.1` or `parquet-cpp-arrow version 18.0.0`.
    public let createdBy: String?
    private let bytes: [UInt8]
    private let rowGroups: [ParquetMetadata.RowGroup]

    /// Whether `bytes` start with the Parquet magic `PAR1`.
    public static func hasMagic(_ bytes: some Collection<UInt8>) -> Bool { bytes.starts(with: Array("PAR1".utf8)) }

    /// Reads the file at `path` and its footer.
    /// - Throws: ``ParquetError`` naming the file.
    public init(contentsOf path: String) throws(ParquetError) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .io(path: path, reason: "cannot read: \((error as NSError).localizedDescription)")
        }
        try self.init(bytes: [UInt8](data), source: path)
    }

    /// Parses a file's footer and schema; `source` names it in errors. O(footer).
    /// - Throws: ``ParquetError/notParquet(path:reason:)``, ``ParquetError/truncated(path:reason:)``,
    ///   ``ParquetError/badMetadata(path:reason:)``.
    public init(bytes: [UInt8], source: String) throws(ParquetError) {
        self.source = source
        self.bytes = bytes
        let magic = Array("PAR1".utf8)
        guard bytes.count >= 12 else { throw .notParquet(path: source, reason: "\(bytes.count) bytes, too short for the magic and a footer") }
        guard bytes.starts(with: magic) else { throw .notParquet(path: source, reason: "no PAR1 magic at the start") }
        guard Array(bytes.suffix(4)) == magic else { throw .truncated(path: source, reason: "no PAR1 magic at the end") }
        let n = bytes.count
        let footerLength = Int(UInt32(bytes[n - 8]) | UInt32(bytes[n - 7]) << 8 | UInt32(bytes[n - 6]) << 16 | UInt32(bytes[n - 5]) << 24)
        guard footerLength <= n - 12 else {
            throw .truncated(path: source, reason: "the footer length says \(footerLength) bytes, only \(n - 12) lie between the magics")
        }
        let footerStart = n - 8 - footerLength
        let parsed = bytes.withUnsafeBytes { buffer in
            Result { () throws(ThriftCompactReader.Failure) -> ParquetMetadata.File in
                var reader = ThriftCompactReader(buffer, from: footerStart, to: n - 8)
                return try ParquetMetadata.file(&reader)
            }
        }
        let file: ParquetMetadata.File
        do { file = try parsed.get() } catch { throw .badMetadata(path: source, reason: "FileMetaData: \(error.reason)") }
        func bad(_ reason: String) -> ParquetError { .badMetadata(path: source, reason: reason) }
        guard !file.encrypted else { throw .unsupported(path: source, column: "*", reason: "the file is encrypted") }
        columns = try Self.leaves(file.schema, source: source)
        var rows = 0
        let budget = Self.slotBudget(fileSize: n)
        for (g, group) in file.rowGroups.enumerated() {
            guard group.rowCount >= 0, group.rowCount <= Int64(budget - rows) else {
                throw .tooLarge(path: source, reason: "row group \(g) claims \(group.rowCount) rows, more than a file of \(n) bytes can hold")
            }
            rows += Int(group.rowCount)
            guard group.columns.count == columns.count else {
                throw bad("row group \(g) has \(group.columns.count) column chunks, the schema \(columns.count) columns")
            }
            for (c, chunk) in group.columns.enumerated() {
                let name = columns[c].name
                guard chunk.hasMetadata, !chunk.inOtherFile else { throw bad("column '\(name)', row group \(g): no metadata or data in another file") }
                guard chunk.path.isEmpty || chunk.path == columns[c].path else {
                    throw bad("row group \(g), chunk \(c) is for '\(chunk.path.joined(separator: "."))', the schema says '\(name)'")
                }
                guard chunk.type == columns[c].physicalType?.rawValue ?? chunk.type else {
                    throw bad("column '\(name)', row group \(g): type \(chunk.type) differs from the schema's")
                }
                let start = Self.chunkStart(chunk)
                guard start >= 4, chunk.compressedSize >= 0, chunk.compressedSize <= Int64(footerStart) - start, chunk.valueCount >= 0 else {
                    throw .truncated(path: source, reason: "column '\(name)', row group \(g): chunk at byte \(start) of \(chunk.compressedSize) bytes lies outside the data (4 ..< \(footerStart))")
                }
            }
        }
        guard Int64(rows) == file.rowCount else { throw bad("num_rows is \(file.rowCount), the row groups hold \(rows)") }
        rowCount = rows
        rowGroups = file.rowGroups
        createdBy = file.createdBy
    }

    /// The column called `name`: a leaf's dotted path (`vector.list.element`) or a top-level field
    /// with a single leaf below it (`vector`).
    /// - Throws: ``ParquetError/missingColumn(path:column:available:)``.
    public func info(_ name: String) throws(ParquetError) -> ParquetColumnInfo {
        if let exact = columns.first(where: { $0.name == name }) { return exact }
        let below = columns.filter { $0.path.first == name }
        guard below.count == 1 else { throw .missingColumn(path: source, column: name, available: columns.map(\.name)) }
        return below[0]
    }

    /// Reads the column called `name` (see ``info(_:)``) from every row group. O(column bytes).
    /// - Throws: ``ParquetError`` naming the column (and row group, for a bad page); unsupported
    ///   physical types, codecs, encodings and nesting are ``ParquetError/unsupported(path:column:reason:)``.
    public func column(_ name: String) throws(ParquetError) -> ParquetColumn {
        let info = try info(name)
        let index = columns.firstIndex(of: info)!
        func unsupported(_ reason: String) -> ParquetError { .unsupported(path: source, column: info.name, reason: reason) }
        guard let type = info.physicalType, [.int32, .int64, .float, .double, .byteArray].contains(type) else {
            throw unsupported("physical type \(info.physicalType?.description ?? "unknown"); INT32, INT64, FLOAT, DOUBLE and BYTE_ARRAY are read")
        }
        guard info.maxRepetitionLevel <= 1 else { throw unsupported("lists inside lists are not read") }
        let codecs = ["UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"]
        let decoder = ParquetPageDecoder(type: type, maxDefinition: info.maxDefinitionLevel, maxRepetition: info.maxRepetitionLevel,
                                         slotBudget: Self.slotBudget(fileSize: bytes.count), byteBudget: (1 << 24) + 256 * bytes.count)
        for (g, group) in rowGroups.enumerated() {
            let chunk = group.columns[index]
            guard chunk.codec == 0 || chunk.codec == 1 else {
                let codec = codecs.indices.contains(Int(chunk.codec)) ? codecs[Int(chunk.codec)] : "codec \(chunk.codec)"
                throw unsupported("row group \(g) is compressed with \(codec); only UNCOMPRESSED and SNAPPY are read")
            }
            let start = Int(Self.chunkStart(chunk))
            let slotsBefore = decoder.slots
            let outcome = bytes.withUnsafeBytes { file in
                Result { () throws(ParquetPageDecoder.Failure) in
                    try decoder.decodeChunk(file, chunk: start ..< start + Int(chunk.compressedSize), valueCount: Int(chunk.valueCount),
                                            snappy: chunk.codec == 1)
                }
            }
            do { try outcome.get() } catch { throw .badPage(path: source, column: info.name, rowGroup: g, reason: error.reason) }
            if info.maxRepetitionLevel > 0, decoder.slots > slotsBefore, decoder.repetitions[slotsBefore] != 0 {
                throw .badPage(path: source, column: info.name, rowGroup: g, reason: "the first value continues a list")
            }
            let rows = info.maxRepetitionLevel == 0 ? decoder.slots - slotsBefore
                : decoder.repetitions[slotsBefore...].reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
            guard rows == Int(group.rowCount) else {
                throw .badPage(path: source, column: info.name, rowGroup: g, reason: "\(rows) rows, the row group has \(group.rowCount)")
            }
        }
        return try Self.assemble(decoder, info: info, rowCount: rowCount, source: source)
    }

    /// Turns levels and stored values into the column's rows.
    private static func assemble(_ d: ParquetPageDecoder, info: ParquetColumnInfo, rowCount: Int, source: String) throws(ParquetError) -> ParquetColumn {
        var elementValues: [Int32]?, rowElements: [Int]?, nullLists: [Bool]?
        let maxDef = UInt8(info.maxDefinitionLevel)
        if info.maxRepetitionLevel == 0 {
            if maxDef > 0, d.definitions.contains(where: { $0 < maxDef }) {
                var next: Int32 = 0
                elementValues = d.definitions.map { def in
                    guard def == maxDef else { return -1 }
                    defer { next += 1 }
                    return next
                }
            }
        } else {
            let elementLevel = UInt8(info.elementLevel), listLevel = UInt8(info.listLevel)
            var starts = [Int](), map = [Int32](), nulls = [Bool](), next: Int32 = 0, anyNull = false, anyNullList = false
            starts.reserveCapacity(rowCount + 1)
            map.reserveCapacity(d.slots)
            for i in 0 ..< d.slots {
                let def = maxDef > 0 ? d.definitions[i] : 0
                if d.repetitions[i] == 0 {
                    starts.append(map.count)
                    nulls.append(def < listLevel)
                    anyNullList = anyNullList || def < listLevel
                }
                guard def >= elementLevel else { continue }   // an empty or null list
                if def == maxDef {
                    map.append(next)
                    next += 1
                } else {
                    map.append(-1)
                    anyNull = true
                }
            }
            starts.append(map.count)
            rowElements = starts
            elementValues = anyNull ? map : nil
            nullLists = anyNullList ? nulls : nil
        }
        let raw = d.values.data
        func numbers<T>(_ make: (UnsafeRawBufferPointer, Int) -> T) -> [T] {
            raw.withUnsafeBytes { b in (0 ..< d.values.count).map { make(b, $0) } }
        }
        let values: ParquetValues = switch d.type {
        case .int32: .int32(numbers { Int32(littleEndian: $0.loadUnaligned(fromByteOffset: 4 * $1, as: Int32.self)) })
        case .int64: .int64(numbers { Int64(littleEndian: $0.loadUnaligned(fromByteOffset: 8 * $1, as: Int64.self)) })
        case .float: .float(numbers { Float(bitPattern: UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 4 * $1, as: UInt32.self))) })
        case .double: .double(numbers { Double(bitPattern: UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8 * $1, as: UInt64.self))) })
        default: .byteArray(ParquetByteArrays(bytes: raw, offsets: d.values.offsets))
        }
        return ParquetColumn(info: info, rowCount: rowCount, values: values, rowElements: rowElements, elementValues: elementValues,
                             nullLists: nullLists)
    }

    private static func chunkStart(_ c: ParquetMetadata.ColumnChunk) -> Int64 {
        if let dict = c.dictionaryPageOffset, dict > 0, dict < c.dataPageOffset { return dict }
        return c.dataPageOffset
    }

    private static func slotBudget(fileSize: Int) -> Int { (1 << 16) + 64 * fileSize }

    /// The leaf columns of a flattened schema (depth first, the root first), with their levels.
    private static func leaves(_ schema: [ParquetMetadata.SchemaElement], source: String) throws(ParquetError) -> [ParquetColumnInfo] {
        guard let root = schema.first, root.children > 0 else { throw .badMetadata(path: source, reason: "an empty schema") }
        var out: [ParquetColumnInfo] = []
        var next = 1
        // (path, definition level, repetition level, element level, list level) above the element.
        func walk(_ count: Int, path: [String], def: Int, rep: Int, element: Int, list: Int, depth: Int) throws(ParquetError) {
            guard depth <= 16 else { throw .badMetadata(path: source, reason: "a schema nested deeper than 16") }
            for _ in 0 ..< count {
                guard next < schema.count else { throw .badMetadata(path: source, reason: "the schema ends inside a group") }
                let e = schema[next]
                next += 1
                guard (0 ... 2).contains(e.repetition) else { throw .badMetadata(path: source, reason: "field '\(e.name)': repetition \(e.repetition)") }
                let d = def + (e.repetition == 0 ? 0 : 1), r = rep + (e.repetition == 2 ? 1 : 0)
                let (el, li) = e.repetition == 2 && rep == 0 ? (d, def) : (element, list)
                if e.children > 0 {
                    try walk(e.children, path: path + [e.name], def: d, rep: r, element: el, list: li, depth: depth + 1)
                } else {
                    guard let t = e.type else { throw .badMetadata(path: source, reason: "field '\(e.name)' has no type and no children") }
                    out.append(ParquetColumnInfo(path: path + [e.name], physicalType: ParquetPhysicalType(rawValue: t),
                                                 maxDefinitionLevel: d, maxRepetitionLevel: r, elementLevel: el, listLevel: li))
                }
            }
        }
        try walk(root.children, path: [], def: 0, rep: 0, element: 0, list: 0, depth: 0)
        guard next == schema.count else { throw .badMetadata(path: source, reason: "\(schema.count - next) schema elements outside the root") }
        return out
    }
}
