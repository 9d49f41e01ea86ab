import Foundation

/// Reader and writer of NumPy `.npy` files holding a 2-D float32 matrix (`dtype '<f4'`, C order),
/// the exchange format with the Python peers (numpy, faiss, hnswlib).
///
/// Format versions 1.0, 2.0 and 3.0 are read; 1.0 is written (2.0 when the header needs it), with
/// the header padded so that data starts at a multiple of 64 bytes, as numpy does.
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// Reads a `rows × cols` float32 matrix.
    /// - Throws: ``DataError/invalidNPY(file:reason:)`` for a bad magic string, a dtype other than
    ///   `<f4`, Fortran order, a shape that is not 2-D, or trailing bytes;
    ///   ``DataError/truncated(file:expectedBytes:foundBytes:)`` when data is missing;
    ///   ``DataError/nonFiniteValue(file:row:)`` naming the first row with NaN or infinity.
    /// - Complexity: O(rows × cols); the data is read straight into the matrix storage (no copy).
    public static func readMatrix(at path: String) throws(DataError) -> Matrix {
        let fd = try FileIO.openForReading(path)
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(file: path, reason: String(cString: strerror(errno))) }
        let fileSize = Int(st.st_size)
        var pre = [UInt8](repeating: 0, count: 12)
        let got = try readFully(fd, path, &pre, 0, 12)
        guard got >= 10, Array(pre[0 ..< 6]) == magic else {
            if got < 10 && fileSize > 0 && Array(pre[0 ..< min(6, got)]) == Array(magic[0 ..< min(6, got)]) {
                throw .truncated(file: path, expectedBytes: 10, foundBytes: fileSize)
            }
            throw .invalidNPY(file: path, reason: "no \\x93NUMPY magic string")
        }
        let major = pre[6]
        let headerLength: Int, dataStart: Int
        switch major {
        case 1:
            headerLength = Int(pre[8]) | Int(pre[9]) << 8
            dataStart = 10 + headerLength
        case 2, 3:
            guard got >= 12 else { throw .truncated(file: path, expectedBytes: 12, foundBytes: fileSize) }
            headerLength = Int(pre[8]) | Int(pre[9]) << 8 | Int(pre[10]) << 16 | Int(pre[11]) << 24
            dataStart = 12 + headerLength
        default:
            throw .invalidNPY(file: path, reason: "format version \(major).\(pre[7]) is not 1, 2 or 3")
        }
        guard fileSize >= dataStart else { throw .truncated(file: path, expectedBytes: dataStart, foundBytes: fileSize) }
        var header = [UInt8](repeating: 0, count: headerLength)
        let headerOffset = major == 1 ? 10 : 12
        guard lseek(fd, off_t(headerOffset), SEEK_SET) >= 0 else {
            throw .unreadable(file: path, reason: String(cString: strerror(errno)))
        }
        _ = try readFully(fd, path, &header, 0, headerLength)
        let (rows, cols) = try parseHeader(String(decoding: header, as: UTF8.self), path)
        let (count, o1) = rows.multipliedReportingOverflow(by: cols)
        let (bytes, o2) = count.multipliedReportingOverflow(by: 4)
        guard !o1, !o2 else { throw .invalidNPY(file: path, reason: "shape (\(rows), \(cols)) is too large") }
        let expected = dataStart + bytes
        if fileSize < expected { throw .truncated(file: path, expectedBytes: expected, foundBytes: fileSize) }
        if fileSize > expected {
            throw .invalidNPY(file: path, reason: "\(fileSize - expected) bytes after the \(rows) × \(cols) data")
        }
        var readError: DataError? = nil
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            do {
                let raw = UnsafeMutableRawBufferPointer(buffer)
                var done = 0
                while done < bytes {
                    let n = read(fd, raw.baseAddress! + done, bytes - done)
                    if n < 0 { if errno == EINTR { continue }; throw DataError.unreadable(file: path, reason: String(cString: strerror(errno))) }
                    if n == 0 { throw DataError.truncated(file: path, expectedBytes: expected, foundBytes: dataStart + done) }
                    done += n
                }
                #if _endian(big)
                for i in 0 ..< count { buffer[i] = Float(bitPattern: UInt32(littleEndian: buffer[i].bitPattern)) }
                #endif
                initialized = count
            } catch let e as DataError {
                // Leave the buffer fully initialised so the array is valid, then report.
                for i in 0 ..< count { buffer[i] = 0 }
                initialized = count
                readError = e
            } catch {
                for i in 0 ..< count { buffer[i] = 0 }
                initialized = count
            }
        }
        if let readError { throw readError }
        let matrix: Matrix
        do { matrix = try Matrix(rows: rows, cols: cols, values: values) } catch {
            throw .invalidNPY(file: path, reason: "\(error)")
        }
        if let bad = matrix.firstNonFiniteRow() { throw .nonFiniteValue(file: path, row: bad) }
        return matrix
    }

    static func readFully(_ fd: Int32, _ path: String, _ buf: inout [UInt8], _ offset: Int, _ n: Int) throws(DataError) -> Int {
        var done = 0
        while done < n {
            let r = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress! + offset + done, n - done) }
            if r < 0 { if errno == EINTR { continue }; throw .unreadable(file: path, reason: String(cString: strerror(errno))) }
            if r == 0 { break }
            done += r
        }
        return done
    }

    /// Parses the header dictionary: `{'descr': '<f4', 'fortran_order': False, 'shape': (n, d), }`.
    static func parseHeader(_ h: String, _ path: String) throws(DataError) -> (Int, Int) {
        func value(of key: String) -> Substring? {
            guard let k = h.range(of: "'\(key)'") ?? h.range(of: "\"\(key)\"") else { return nil }
            guard let colon = h[k.upperBound...].firstIndex(of: ":") else { return nil }
            return h[h.index(after: colon)...].drop { $0 == " " }
        }
        guard let d = value(of: "descr") else { throw .invalidNPY(file: path, reason: "header has no 'descr'") }
        let descr = d.prefix { $0 != "," && $0 != "}" }.trimmingCharacters(in: .whitespaces)
            .trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
        guard descr == "<f4" || (descr == "=f4" && Int(littleEndian: 1) == 1) else {
            throw .invalidNPY(file: path, reason: "dtype '\(descr)' is not little-endian float32 ('<f4')")
        }
        guard let f = value(of: "fortran_order") else { throw .invalidNPY(file: path, reason: "header has no 'fortran_order'") }
        if f.hasPrefix("True") { throw .invalidNPY(file: path, reason: "Fortran (column-major) order is not supported") }
        guard f.hasPrefix("False") else { throw .invalidNPY(file: path, reason: "bad 'fortran_order' value") }
        guard let s = value(of: "shape"), s.first == "(", let close = s.firstIndex(of: ")") else {
            throw .invalidNPY(file: path, reason: "header has no 'shape' tuple")
        }
        let parts = s[s.index(after: s.startIndex) ..< close].split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
        guard parts.count == 2 else {
            throw .invalidNPY(file: path, reason: "shape (\(parts.joined(separator: ", "))) is not 2-D")
        }
        guard let r = Int(parts[0]), let c = Int(parts[1]), r >= 0, c >= 0 else {
            throw .invalidNPY(file: path, reason: "bad shape values (\(parts[0]), \(parts[1]))")
        }
        return (r, c)
    }

    /// The header bytes (magic, version, length, padded dictionary) for a `rows × cols` `<f4` matrix.
    static func header(rows: Int, cols: Int) -> [UInt8] {
        var dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(cols)), }"
        let v1 = 10 + dict.utf8.count + 1 <= 65535 + 10
        let prefix = v1 ? 10 : 12
        let total = (prefix + dict.utf8.count + 1 + 63) / 64 * 64
        dict += String(repeating: " ", count: total - prefix - dict.utf8.count - 1) + "\n"
        var out = magic
        let len = dict.utf8.count
        if v1 {
            out += [1, 0, UInt8(len & 0xFF), UInt8(len >> 8)]
        } else {
            out += [2, 0, UInt8(len & 0xFF), UInt8((len >> 8) & 0xFF), UInt8((len >> 16) & 0xFF), UInt8(len >> 24)]
        }
        out += Array(dict.utf8)
        return out
    }

    /// Writes `matrix` as a `.npy` float32 file (atomically: a temporary file renamed into place).
    /// - Throws: ``DataError/nonFiniteValue(file:row:)`` for a row with NaN or infinity (the peers
    ///   would choke on it), ``DataError/writeFailed(file:reason:)``.
    /// - Complexity: O(rows × cols); the values are written straight from the matrix storage.
    public static func write(_ matrix: Matrix, to path: String) throws(DataError) {
        if let bad = matrix.firstNonFiniteRow() { throw .nonFiniteValue(file: path, row: bad) }
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw .writeFailed(file: path, reason: String(cString: strerror(errno))) }
        func put(_ raw: UnsafeRawBufferPointer) -> Bool {
            var off = 0
            while off < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; return false }
                off += n
            }
            return true
        }
        var ok = header(rows: matrix.rows, cols: matrix.cols).withUnsafeBytes { put($0) }
        if ok {
            #if _endian(big)
            let le = matrix.values.map { Float(bitPattern: $0.bitPattern.littleEndian) }
            ok = le.withUnsafeBytes { put($0) }
            #else
            ok = matrix.withUnsafeBufferPointer { put(UnsafeRawBufferPointer($0)) }
            #endif
        }
        let reason = ok ? "" : String(cString: strerror(errno))
        if close(fd) != 0, ok { unlink(tmp); throw .writeFailed(file: path, reason: String(cString: strerror(errno))) }
        guard ok else { unlink(tmp); throw .writeFailed(file: path, reason: reason) }
        if rename(tmp, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw .writeFailed(file: path, reason: reason)
        }
    }
}

/// Reader and writer of id lists: one decimal id per line (row `i` of a matrix file is the vector
/// of the `i`-th id), the companion of ``NPY`` for exporting item or user vectors.
public enum IDList {
    /// Reads the ids, in order. Blank lines are skipped.
    /// - Throws: ``DataError/malformedLine(file:line:reason:)`` for a line that is not one
    ///   non-negative integer, ``DataError/empty(file:)``, ``DataError/fileNotFound(file:)``.
    public static func read(at path: String) throws(DataError) -> [ItemID] {
        var out = [ItemID]()
        var fields = FieldSplitter()
        try LineScanner.forEachLine(path) { (line) throws(DataError) in
            fields.split(line.bytes, .whitespace)
            if fields.count == 0 { return }
            guard fields.count == 1 else {
                throw .malformedLine(file: path, line: line.number, reason: "expected one id, found \(fields.count) fields")
            }
            var r = TokenReader(.numeric, what: "item")
            out.append(ItemID(try r.read(fields.field(0, in: line.bytes), file: path, line: line.number)))
        }
        if out.isEmpty { throw .empty(file: path) }
        return out
    }

    /// Writes one id per line (atomically).
    /// - Throws: ``DataError/writeFailed(file:reason:)``.
    public static func write(_ ids: [ItemID], to path: String) throws(DataError) {
        try FileIO.writeAll(path, { bytes in
            for id in ids {
                bytes.append(contentsOf: String(id.rawValue).utf8)
                bytes.append(0x0A)
            }
        }, reserve: ids.count * 9)
    }

    /// Reads a matrix and its id list and checks they agree (one id a row, ids unique).
    /// - Throws: ``DataError/invalidArgument(name:reason:)`` when the counts differ or an id repeats,
    ///   plus the errors of ``NPY/readMatrix(at:)`` and ``read(at:)``.
    public static func readEmbeddings(matrix matrixPath: String, ids idsPath: String) throws(DataError) -> (ids: [ItemID], matrix: Matrix) {
        let m = try NPY.readMatrix(at: matrixPath)
        let ids = try read(at: idsPath)
        guard ids.count == m.rows else {
            throw .invalidArgument(name: "id list", reason: "\(idsPath) has \(ids.count) ids for the \(m.rows) rows of \(matrixPath)")
        }
        var seen = Set<ItemID>(minimumCapacity: ids.count)
        for (k, id) in ids.enumerated() where !seen.insert(id).inserted {
            throw .invalidArgument(name: "id list", reason: "\(idsPath): id \(id) repeats (line \(k + 1))")
        }
        return (ids, m)
    }
}
