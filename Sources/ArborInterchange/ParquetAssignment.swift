import ArborCore
import ArborTree

/// Trees built elsewhere, as Parquet tables (what `tools/spark/build_tree.py --out x.parquet`,
/// Spark or pyarrow write): the same content as the text forms of ``TreeAssignment``, one row per
/// line. Rows are numbered from 1 in errors, so an entry's `line` is its row.
extension TreeAssignment {
    /// The assignment in `file`: column `item` (INT64 or INT32, >= 0) and column `path`, either a
    /// string `3/0/12` or a list of integers `[3, 0, 12]` (child index per level from the root).
    /// Other columns are ignored. O(rows · depth).
    /// - Throws: ``ParquetError`` naming the file, the column and, for a null or a bad value, the row.
    public init(parquet file: ParquetFile) throws(ParquetError) {
        let items = try file.column("item"), paths = try file.column("path")
        guard Self.isInteger(items) else {
            throw .wrongType(path: file.source, column: items.name, found: Self.kind(items), expected: "INT64 or INT32 item ids")
        }
        guard Self.isInteger(paths, list: true) || (!paths.isList && paths.info.physicalType == .byteArray) else {
            throw .wrongType(path: file.source, column: paths.name, found: Self.kind(paths), expected: "a string '3/0/12' or a list of integers")
        }
        func bad(_ column: ParquetColumn, _ row: Int, _ reason: String) -> ParquetError {
            .badValue(path: file.source, column: column.name, row: row + 1, reason: reason)
        }
        var entries: [Entry] = []
        entries.reserveCapacity(file.rowCount)
        for row in 0 ..< file.rowCount {
            guard let v = items.valueIndex(ofElement: row), let id = items.values.integer(v) else {
                throw .nullValue(path: file.source, column: items.name, row: row + 1)
            }
            guard id >= 0 else { throw bad(items, row, "item id \(id) is negative") }
            guard let elements = paths.elements(ofRow: row) else { throw .nullValue(path: file.source, column: paths.name, row: row + 1) }
            var path: [Int] = []
            if case let .byteArray(strings) = paths.values {
                guard let s = paths.valueIndex(ofElement: row) else { throw .nullValue(path: file.source, column: paths.name, row: row + 1) }
                var current = -1
                for byte in strings[s] {
                    if byte == UInt8(ascii: "/"), current >= 0 {
                        path.append(current)
                        current = -1
                    } else if (UInt8(ascii: "0") ... UInt8(ascii: "9")).contains(byte), current < 1 << 20 {
                        current = max(current, 0) * 10 + Int(byte - UInt8(ascii: "0"))
                    } else {
                        throw bad(paths, row, "path '\(strings.string(s))' is not child indices separated by '/'")
                    }
                }
                guard current >= 0, current < 1 << 20 else { throw bad(paths, row, "path '\(strings.string(s))' is not child indices separated by '/'") }
                path.append(current)
            } else {
                guard !elements.isEmpty else { throw bad(paths, row, "an empty path") }
                path.reserveCapacity(elements.count)
                for e in elements {
                    guard let v = paths.valueIndex(ofElement: e) else { throw bad(paths, row, "a null child index") }
                    let c = paths.values.integer(v)!
                    guard c >= 0, c < 1 << 20 else { throw bad(paths, row, "child index \(c)") }
                    path.append(Int(c))
                }
            }
            entries.append(Entry(item: ItemID(UInt64(id)), path: path, line: row + 1))
        }
        self.init(entries: entries)
    }

    /// Inner-node embeddings from `file`: column `node` (string path, `""` for the root) and column
    /// `vector` (a list of FLOAT or DOUBLE), one row per node. O(rows · d).
    /// - Throws: ``ParquetError`` for a missing or mistyped column, a null, a non-finite value or a
    ///   node given twice, naming the row.
    public static func nodeEmbeddings(parquet file: ParquetFile) throws(ParquetError) -> [String: [Float]] {
        let nodes = try file.column("node"), vectors = try file.column("vector")
        guard case let .byteArray(names) = nodes.values, !nodes.isList else {
            throw .wrongType(path: file.source, column: nodes.name, found: kind(nodes), expected: "node paths as strings")
        }
        guard vectors.isList, [.float, .double].contains(vectors.info.physicalType) else {
            throw .wrongType(path: file.source, column: vectors.name, found: kind(vectors), expected: "a list of FLOAT or DOUBLE")
        }
        var out: [String: [Float]] = [:]
        for row in 0 ..< file.rowCount {
            guard let n = nodes.valueIndex(ofElement: row) else { throw .nullValue(path: file.source, column: nodes.name, row: row + 1) }
            guard let elements = vectors.elements(ofRow: row) else { throw .nullValue(path: file.source, column: vectors.name, row: row + 1) }
            var vector: [Float] = []
            vector.reserveCapacity(elements.count)
            for e in elements {
                guard let v = vectors.valueIndex(ofElement: e), let x = vectors.values.float(v), x.isFinite else {
                    throw .badValue(path: file.source, column: vectors.name, row: row + 1, reason: "a null or non-finite value")
                }
                vector.append(x)
            }
            let name = names.string(n)
            guard out.updateValue(vector, forKey: name) == nil else {
                throw .badValue(path: file.source, column: nodes.name, row: row + 1, reason: "node '\(name)' is given twice")
            }
        }
        return out
    }

    /// An INT32 or INT64 column, flat for item ids, a list for paths.
    private static func isInteger(_ c: ParquetColumn, list: Bool = false) -> Bool {
        [.int32, .int64].contains(c.info.physicalType) && c.isList == list
    }

    private static func kind(_ c: ParquetColumn) -> String {
        let type = c.info.physicalType?.description ?? "an unknown type"
        return c.isList ? "lists of \(type)" : type
    }
}
