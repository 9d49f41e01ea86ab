/// A reader of the Thrift compact protocol over a byte range (Parquet's footer and page headers).
/// Only what Parquet's structs use: structs, lists, i16/i32/i64 (zigzag varints), binary, bools,
/// doubles; `skip` steps over any field, including maps and sets, so fields a newer writer adds
/// are ignored. Every read is checked against the end of the range; nesting is capped at 64.
/// A value type over a borrowed buffer: use it only while the buffer lives.
struct ThriftCompactReader {
    /// Compact-protocol type codes.
    enum Kind: UInt8 {
        case stop = 0, boolTrue = 1, boolFalse = 2, byte = 3, i16 = 4, i32 = 5, i64 = 6, double = 7
        case binary = 8, list = 9, set = 10, map = 11, structure = 12
    }

    /// Why the bytes are not a valid message (the caller adds the file and what was being read).
    struct Failure: Error { var reason: String }

    let bytes: UnsafeRawBufferPointer
    private(set) var position: Int
    let end: Int
    private var lastField: [Int16] = []

    init(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) {
        self.bytes = bytes
        position = start
        self.end = end
    }

    mutating func byte() throws(Failure) -> UInt8 {
        guard position < end else { throw Failure(reason: "ends inside a value at byte \(position)") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func varint() throws(Failure) -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 70, by: 7) {
            let b = try byte()
            guard shift < 63 || b <= 1 else { throw Failure(reason: "varint longer than 64 bits at byte \(position)") }
            value |= UInt64(b & 0x7F) << UInt64(shift)
            if b & 0x80 == 0 { return value }
        }
        throw Failure(reason: "varint longer than 10 bytes at byte \(position)")
    }

    mutating func i64() throws(Failure) -> Int64 {
        let z = try varint()
        return Int64(bitPattern: (z >> 1) ^ (0 &- (z & 1)))
    }

    mutating func i32() throws(Failure) -> Int32 {
        let v = try i64()
        guard let n = Int32(exactly: v) else { throw Failure(reason: "\(v) does not fit a 32-bit field") }
        return n
    }

    /// An `i32` field that is a count or size: `0 ... limit`.
    mutating func count(_ what: String, limit: Int = Int(Int32.max)) throws(Failure) -> Int {
        let v = try i64()
        guard v >= 0, v <= Int64(limit) else { throw Failure(reason: "\(what) is \(v), outside 0 ... \(limit)") }
        return Int(v)
    }

    /// A binary field's range in the buffer (no copy).
    mutating func binary() throws(Failure) -> Range<Int> {
        let n = try varint()
        guard n <= UInt64(end - position) else { throw Failure(reason: "a binary field of \(n) bytes runs past the end") }
        defer { position += Int(n) }
        return position ..< position + Int(n)
    }

    mutating func string() throws(Failure) -> String {
        let r = try binary()
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[r]), as: UTF8.self)
    }

    /// Enters a struct: field ids restart at 0.
    mutating func beginStruct() throws(Failure) {
        guard lastField.count < 64 else { throw Failure(reason: "structs nested deeper than 64") }
        lastField.append(0)
    }

    mutating func endStruct() { lastField.removeLast() }

    /// The next field's id and type, or nil at the struct's stop byte. A bool field's value is in
    /// its type: `.boolTrue` or `.boolFalse`.
    mutating func field() throws(Failure) -> (id: Int16, kind: Kind)? {
        let header = try byte()
        guard header != 0 else { return nil }
        guard let kind = Kind(rawValue: header & 0x0F), kind != .stop else { throw Failure(reason: "unknown field type \(header & 0x0F)") }
        let delta = Int16(header >> 4)
        let id: Int16
        if delta == 0 {
            let v = try i64()
            guard let n = Int16(exactly: v) else { throw Failure(reason: "field id \(v) out of range") }
            id = n
        } else {
            id = lastField[lastField.count - 1] &+ delta
        }
        lastField[lastField.count - 1] = id
        return (id, kind)
    }

    /// A list or set header: element type and count (each element at least one byte, so the count
    /// is checked against the bytes left).
    mutating func listHeader() throws(Failure) -> (kind: Kind, count: Int) {
        let header = try byte()
        var n = UInt64(header >> 4)
        if n == 15 { n = try varint() }
        guard let kind = Kind(rawValue: header & 0x0F) else { throw Failure(reason: "unknown list element type \(header & 0x0F)") }
        guard n <= UInt64(end - position) else { throw Failure(reason: "a list of \(n) elements cannot fit in \(end - position) bytes") }
        return (kind, Int(n))
    }

    /// Reads a list of structs, calling `element` for each (positioned inside the struct).
    mutating func structList(_ element: (inout ThriftCompactReader) throws(Failure) -> Void) throws(Failure) {
        let (kind, n) = try listHeader()
        guard kind == .structure else { throw Failure(reason: "expected a list of structs, found type \(kind)") }
        for _ in 0 ..< n {
            try beginStruct()
            try element(&self)
            endStruct()
        }
    }

    /// Reads a list of i32 or i64 values.
    mutating func integerList() throws(Failure) -> [Int64] {
        let (kind, n) = try listHeader()
        guard kind == .i32 || kind == .i64 || kind == .i16 || n == 0 else { throw Failure(reason: "expected a list of integers") }
        var out: [Int64] = []
        out.reserveCapacity(n)
        for _ in 0 ..< n { out.append(try i64()) }
        return out
    }

    /// Reads a list of strings.
    mutating func stringList() throws(Failure) -> [String] {
        let (kind, n) = try listHeader()
        guard kind == .binary || n == 0 else { throw Failure(reason: "expected a list of strings") }
        var out: [String] = []
        out.reserveCapacity(n)
        for _ in 0 ..< n { out.append(try string()) }
        return out
    }

    /// Steps over a value of `kind` (a field's or an element's).
    mutating func skip(_ kind: Kind, inList: Bool = false) throws(Failure) {
        switch kind {
        case .stop: throw Failure(reason: "unexpected stop")
        case .boolTrue, .boolFalse: if inList { _ = try byte() }
        case .byte: _ = try byte()
        case .i16, .i32, .i64: _ = try varint()
        case .double:
            guard end - position >= 8 else { throw Failure(reason: "ends inside a double") }
            position += 8
        case .binary: _ = try binary()
        case .list, .set:
            let (element, n) = try listHeader()
            try nested { (r: inout ThriftCompactReader) throws(Failure) in for _ in 0 ..< n { try r.skip(element, inList: true) } }
        case .map:
            let n = try varint()
            guard n <= UInt64(end - position) else { throw Failure(reason: "a map of \(n) entries runs past the end") }
            guard n > 0 else { return }
            let types = try byte()
            guard let key = Kind(rawValue: types >> 4), let value = Kind(rawValue: types & 0x0F) else { throw Failure(reason: "unknown map types") }
            try nested { (r: inout ThriftCompactReader) throws(Failure) in
                for _ in 0 ..< n {
                    try r.skip(key, inList: true)
                    try r.skip(value, inList: true)
                }
            }
        case .structure:
            try beginStruct()
            while let (_, k) = try field() { try skip(k) }
            endStruct()
        }
    }

    /// Runs `body` one nesting level deeper (lists and maps count toward the cap like structs).
    private mutating func nested(_ body: (inout ThriftCompactReader) throws(Failure) -> Void) throws(Failure) {
        try beginStruct()
        try body(&self)
        endStruct()
    }
}
