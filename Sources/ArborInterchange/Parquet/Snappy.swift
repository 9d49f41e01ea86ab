/// Raw Snappy decompression (the block format Parquet uses per page; no framing): a varint of the
/// uncompressed length, then literals and back-references. Every length and offset is checked:
/// the output never grows past the stated length, which the caller bounds first.
enum Snappy {
    struct Failure: Error { var reason: String }

    /// The stated uncompressed length of `input`.
    static func uncompressedLength(_ input: UnsafeRawBufferPointer) throws(Failure) -> Int {
        var value = 0
        for i in 0 ..< min(5, input.count) {
            let b = Int(input[i])
            value |= (b & 0x7F) << (7 * i)
            if b & 0x80 == 0 { return value }
        }
        throw Failure(reason: "bad length preamble")
    }

    /// Decompresses `input` into `output`, which must come out at exactly `output.count` bytes.
    static func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(Failure) {
        let length = try uncompressedLength(input)
        guard length == output.count else { throw Failure(reason: "holds \(length) bytes, the page header says \(output.count)") }
        var p = 0
        while input[p] & 0x80 != 0 { p += 1 }
        p += 1
        var written = 0
        while p < input.count {
            let tag = Int(input[p])
            p += 1
            var n: Int, offset = 0
            switch tag & 3 {
            case 0:
                n = tag >> 2
                if n >= 60 {
                    let extra = n - 59
                    guard input.count - p >= extra else { throw Failure(reason: "ends inside a literal length") }
                    n = 0
                    for i in 0 ..< extra { n |= Int(input[p + i]) << (8 * i) }
                    p += extra
                }
                n += 1
                guard input.count - p >= n, length - written >= n else { throw Failure(reason: "a literal of \(n) bytes runs past the data") }
                UnsafeMutableRawBufferPointer(rebasing: output[written ..< written + n]).copyMemory(from: UnsafeRawBufferPointer(rebasing: input[p ..< p + n]))
                written += n
                p += n
                continue
            case 1:
                guard p < input.count else { throw Failure(reason: "ends inside a copy") }
                n = 4 + ((tag >> 2) & 7)
                offset = (tag >> 5) << 8 | Int(input[p])
                p += 1
            case 2:
                guard input.count - p >= 2 else { throw Failure(reason: "ends inside a copy") }
                n = (tag >> 2) + 1
                offset = Int(input[p]) | Int(input[p + 1]) << 8
                p += 2
            default:
                guard input.count - p >= 4 else { throw Failure(reason: "ends inside a copy") }
                n = (tag >> 2) + 1
                for i in 0 ..< 4 { offset |= Int(input[p + i]) << (8 * i) }
                p += 4
            }
            guard offset > 0, offset <= written else { throw Failure(reason: "a copy from \(offset) bytes back, with \(written) written") }
            guard length - written >= n else { throw Failure(reason: "a copy runs past the stated length") }
            for i in written ..< written + n { output[i] = output[i - offset] }   // may overlap its own output
            written += n
        }
        guard written == length else { throw Failure(reason: "decompresses to \(written) bytes, stated \(length)") }
    }
}
