import Foundation

// Byte-level reading and parsing shared by every reader. Files are read in large chunks with
// `read(2)` and cut into lines with `memchr`; fields are byte ranges into the chunk, numbers are
// parsed straight from the bytes. No `String` is allocated per line, so the 100M-row Taobao file
// streams at constant memory.

/// A view of one line: its bytes (without the line terminator) and its 1-based line number.
struct LineView {
    let bytes: UnsafeBufferPointer<UInt8>
    let number: Int
}

enum FileIO {
    /// Opens `path` for reading, mapping errno to ``DataError``.
    static func openForReading(_ path: String) throws(DataError) -> Int32 {
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            let code = errno
            if code == ENOENT { throw .fileNotFound(file: path) }
            throw .unreadable(file: path, reason: String(cString: strerror(code)))
        }
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw .unreadable(file: path, reason: "is a directory")
        }
        return fd
    }

    /// The file's size in bytes, or 0 when it cannot be stat'ed (the reader then reports why).
    static func size(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    /// Reads the whole file into a byte array (for small files and binary formats).
    static func readAll(_ path: String) throws(DataError) -> [UInt8] {
        let fd = try openForReading(path)
        defer { close(fd) }
        var st = stat()
        var capacity = 1 << 16
        if fstat(fd, &st) == 0, st.st_size > 0 { capacity = Int(st.st_size) + 1 }
        var out = [UInt8]()
        out.reserveCapacity(capacity)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(file: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0 ..< n])
        }
        return out
    }

    /// Writes `bytes` to `path` atomically (a temporary file renamed into place).
    static func writeAll(_ path: String, _ body: (inout [UInt8]) -> Void, reserve: Int = 0) throws(DataError) {
        var bytes = [UInt8]()
        bytes.reserveCapacity(reserve)
        body(&bytes)
        try writeBytes(path, bytes)
    }

    static func writeBytes(_ path: String, _ bytes: [UInt8]) throws(DataError) {
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw .writeFailed(file: path, reason: String(cString: strerror(errno))) }
        var offset = 0
        let ok: Bool = bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; return false }
                offset += n
            }
            return true
        }
        let reason = ok ? "" : String(cString: strerror(errno))
        close(fd)
        guard ok else { unlink(tmp); throw .writeFailed(file: path, reason: reason) }
        if rename(tmp, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw .writeFailed(file: path, reason: reason)
        }
    }
}

/// Streams the lines of a file in large chunks. Empty lines (after removing `\r`) are skipped but
/// counted, so line numbers always match an editor's.
enum LineScanner {
    static func forEachLine(
        _ path: String, chunkSize: Int = 1 << 22,
        _ body: (LineView) throws(DataError) -> Void
    ) throws(DataError) {
        let fd = try FileIO.openForReading(path)
        defer { close(fd) }
        var capacity = max(chunkSize, 16)
        var buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        defer { buffer.deallocate() }
        var filled = 0
        var lineNumber = 0
        var eof = false
        while !eof {
            if filled == capacity {  // one line longer than the buffer: grow
                let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2)
                bigger.update(from: buffer, count: filled)
                buffer.deallocate()
                buffer = bigger
                capacity *= 2
            }
            let n = read(fd, buffer + filled, capacity - filled)
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(file: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { eof = true } else { filled += n }
            var start = 0
            while start < filled {
                let remaining = filled - start
                guard let nl = memchr(buffer + start, 0x0A, remaining) else { break }
                let end = buffer.distance(to: nl.assumingMemoryBound(to: UInt8.self))
                lineNumber += 1
                try emit(buffer, start, end, lineNumber, body)
                start = end + 1
            }
            if eof, start < filled {
                lineNumber += 1
                try emit(buffer, start, filled, lineNumber, body)
                start = filled
            }
            if start > 0 {
                let rest = filled - start
                if rest > 0 { memmove(buffer, buffer + start, rest) }
                filled = rest
            }
        }
    }

    @inline(__always)
    private static func emit(
        _ buffer: UnsafeMutablePointer<UInt8>, _ start: Int, _ end: Int, _ number: Int,
        _ body: (LineView) throws(DataError) -> Void
    ) throws(DataError) {
        var s = start, e = end
        if e > s, buffer[e - 1] == 0x0D { e -= 1 }
        // A UTF-8 byte-order mark at the start of the file is not part of the first field.
        if number == 1, e - s >= 3, buffer[s] == 0xEF, buffer[s + 1] == 0xBB, buffer[s + 2] == 0xBF { s += 3 }
        if e == s { return }
        try body(LineView(bytes: UnsafeBufferPointer(start: buffer + s, count: e - s), number: number))
    }
}

/// How fields of a line are separated.
enum Separator: Equatable {
    /// One byte (`,`, `\t`, `;`); consecutive separators delimit empty fields.
    case byte(UInt8)
    /// Runs of spaces and tabs; leading and trailing blanks are ignored.
    case whitespace
}

/// Cuts a line into fields, reusing its storage from line to line.
struct FieldSplitter {
    var starts: [Int] = []
    var ends: [Int] = []
    var count: Int { starts.count }

    init() {
        starts.reserveCapacity(32)
        ends.reserveCapacity(32)
    }

    mutating func split(_ line: UnsafeBufferPointer<UInt8>, _ separator: Separator) {
        starts.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
        switch separator {
        case .byte(let sep):
            var s = 0
            for i in 0 ..< line.count where line[i] == sep {
                starts.append(s); ends.append(i); s = i + 1
            }
            starts.append(s); ends.append(line.count)
        case .whitespace:
            var i = 0
            let n = line.count
            while i < n {
                while i < n, line[i] == 0x20 || line[i] == 0x09 { i += 1 }
                if i == n { break }
                let s = i
                while i < n, line[i] != 0x20, line[i] != 0x09 { i += 1 }
                starts.append(s); ends.append(i)
            }
        }
    }

    /// Field `k` with surrounding blanks trimmed.
    @inline(__always)
    func field(_ k: Int, in line: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        var s = starts[k], e = ends[k]
        while s < e, line[s] == 0x20 || line[s] == 0x09 { s += 1 }
        while e > s, line[e - 1] == 0x20 || line[e - 1] == 0x09 { e -= 1 }
        return UnsafeBufferPointer(rebasing: line[s ..< e])
    }

    func string(_ k: Int, in line: UnsafeBufferPointer<UInt8>) -> String {
        String(decoding: field(k, in: line), as: UTF8.self)
    }
}

enum NumberParser {
    /// Decimal digits only (no sign), no overflow; `nil` otherwise.
    @inline(__always)
    static func uint64(_ f: UnsafeBufferPointer<UInt8>) -> UInt64? {
        guard !f.isEmpty, f.count <= 20 else { return nil }
        var v: UInt64 = 0
        for b in f {
            let d = b &- 0x30
            guard d < 10 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(d))
            if o1 || o2 { return nil }
            v = a
        }
        return v
    }

    /// A decimal number as `strtod` reads it (sign, fraction, exponent); `nil` for anything else,
    /// including trailing garbage. Plain integers of up to 15 digits take a fast exact path.
    static func double(_ f: UnsafeBufferPointer<UInt8>) -> Double? {
        guard !f.isEmpty, f.count < 64 else { return nil }
        if f.count <= 15, let u = uint64(f) { return Double(u) }
        // Only characters a decimal float may contain (rejects "nan", "inf", hex).
        for b in f {
            switch b {
            case 0x30 ... 0x39, 0x2B, 0x2D, 0x2E, 0x45, 0x65: continue
            default: return nil
            }
        }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { tmp -> Double? in
            for i in 0 ..< f.count { tmp[i] = CChar(bitPattern: f[i]) }
            tmp[f.count] = 0
            var end: UnsafeMutablePointer<CChar>? = nil
            let v = strtod(tmp.baseAddress!, &end)
            guard let end, tmp.baseAddress!.distance(to: end) == f.count else { return nil }
            return v
        }
    }
}

extension UnsafeBufferPointer where Element == UInt8 {
    /// The bytes as a `String` (for error messages and tokens), shortened to 40 characters.
    var preview: String {
        let s = String(decoding: self, as: UTF8.self)
        return s.count > 40 ? String(s.prefix(40)) + "…" : s
    }

    func equals(_ s: StaticString) -> Bool {
        guard count == s.utf8CodeUnitCount else { return false }
        if count == 0 { return true }
        return memcmp(baseAddress!, s.utf8Start, count) == 0
    }
}

/// Reads user or item tokens under a ``TokenPolicy``.
struct TokenReader {
    let policy: TokenPolicy
    var vocabulary = Vocabulary()
    let what: String

    init(_ policy: TokenPolicy, what: String) {
        self.policy = policy
        self.what = what
    }

    @inline(__always)
    mutating func read(_ f: UnsafeBufferPointer<UInt8>, file: String, line: Int) throws(DataError) -> UInt64 {
        switch policy {
        case .numeric:
            guard let v = NumberParser.uint64(f) else {
                if f.isEmpty { throw .malformedLine(file: file, line: line, reason: "empty \(what) id") }
                throw .malformedLine(
                    file: file, line: line, reason: "\(what) id '\(f.preview)' is not a non-negative integer")
            }
            return v
        case .vocabulary:
            guard !f.isEmpty else { throw .malformedLine(file: file, line: line, reason: "empty \(what) id") }
            return vocabulary.id(for: String(decoding: f, as: UTF8.self))
        }
    }

    /// The vocabulary when the policy used one.
    var result: Vocabulary? { policy == .vocabulary ? vocabulary : nil }
}

enum Fields {
    @inline(__always)
    static func double(_ f: UnsafeBufferPointer<UInt8>, _ name: String, file: String, line: Int) throws(DataError) -> Double {
        guard let v = NumberParser.double(f) else {
            throw .malformedLine(file: file, line: line, reason: "\(name) '\(f.preview)' is not a number")
        }
        return v
    }

    @inline(__always)
    static func uint32(_ f: UnsafeBufferPointer<UInt8>, _ name: String, file: String, line: Int) throws(DataError) -> UInt32 {
        guard let v = NumberParser.uint64(f), v < UInt64(UInt32.max) else {
            throw .malformedLine(file: file, line: line, reason: "\(name) '\(f.preview)' is not an integer below 2^32 - 1")
        }
        return UInt32(v)
    }

    @inline(__always)
    static func require(_ fields: FieldSplitter, _ n: Int, file: String, line: Int) throws(DataError) {
        if fields.count < n {
            throw .malformedLine(file: file, line: line, reason: "expected \(n) fields, found \(fields.count)")
        }
    }
}
