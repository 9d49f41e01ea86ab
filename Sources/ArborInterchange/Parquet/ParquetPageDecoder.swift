/// Decodes the pages of one column's chunks into flat buffers: levels one byte per slot, values
/// as raw little-endian bytes (or back-to-back byte arrays with offsets). Data pages v1 and v2,
/// dictionary pages, PLAIN and PLAIN_/RLE_DICTIONARY values, RLE/bit-packed hybrid levels and
/// indices; UNCOMPRESSED and SNAPPY. Scratch buffers are reused from page to page; no decode loop
/// allocates per value. Every size is checked against its page before use, and the slots and
/// bytes produced against budgets the file size sets.
final class ParquetPageDecoder {
    struct Failure: Error { var reason: String }

    /// Values as stored: fixed-width values back to back in `data`, or byte arrays with `offsets`.
    struct Store {
        var data: [UInt8] = []
        var offsets: [Int] = [0]
        var count = 0
    }

    let type: ParquetPhysicalType
    let width: Int                  // bytes per fixed-width value; 0 for byte arrays
    let maxDefinition: Int, maxRepetition: Int
    var definitions: [UInt8] = []   // one per slot when maxDefinition > 0
    var repetitions: [UInt8] = []   // one per slot when maxRepetition > 0
    var slots = 0
    var values = Store()
    var slotBudget: Int, byteBudget: Int
    private var dictionary: Store?
    private var scratch: [UInt32] = []
    /// Decompressed pages (grown as needed, freed with the decoder).
    private var pageBuffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    init(type: ParquetPhysicalType, maxDefinition: Int, maxRepetition: Int, slotBudget: Int, byteBudget: Int) {
        self.type = type
        width = switch type { case .int32, .float: 4; case .int64, .double: 8; default: 0 }
        self.maxDefinition = maxDefinition
        self.maxRepetition = maxRepetition
        self.slotBudget = slotBudget
        self.byteBudget = byteBudget
    }

    deinit { pageBuffer.deallocate() }

    /// Decodes one column chunk: pages from `chunk` of `file` until `valueCount` slots are read.
    func decodeChunk(_ file: UnsafeRawBufferPointer, chunk: Range<Int>, valueCount: Int, snappy: Bool) throws(Failure) {
        guard valueCount <= slotBudget else { throw Failure(reason: "\(valueCount) values: more than the file's size allows") }
        dictionary = nil
        var position = chunk.lowerBound, left = valueCount
        while left > 0 {
            guard position < chunk.upperBound else {
                throw Failure(reason: "the chunk ends after \(valueCount - left) of its \(valueCount) values")
            }
            var reader = ThriftCompactReader(file, from: position, to: chunk.upperBound)
            let header: ParquetMetadata.PageHeader
            do { header = try ParquetMetadata.pageHeader(&reader) } catch { throw Failure(reason: "page header at byte \(position): \(error.reason)") }
            position = reader.position
            guard header.uncompressedSize >= 0, header.type != 0 && header.type != 2 && header.type != 3 || header.valueCount >= 0 else {
                throw Failure(reason: "the page header at byte \(position) lacks its sizes or value count")
            }
            guard header.compressedSize >= 0, header.compressedSize <= chunk.upperBound - position else {
                throw Failure(reason: "a page of \(header.compressedSize) bytes at byte \(position) runs past the chunk's end at \(chunk.upperBound)")
            }
            let body = UnsafeRawBufferPointer(rebasing: file[position ..< position + header.compressedSize])
            position += header.compressedSize
            switch header.type {
            case 2:
                guard dictionary == nil else { throw Failure(reason: "a second dictionary page") }
                guard header.encoding == 0 || header.encoding == 2 else { throw Failure(reason: "dictionary encoding \(header.encoding) is not PLAIN") }
                let page = try decompressed(body, size: header.uncompressedSize, snappy: snappy)
                var store = Store()
                try Self.plain(page, count: header.valueCount, type: type, width: width, into: &store, byteBudget: &byteBudget)
                dictionary = store
            case 0, 3:
                guard header.valueCount >= 0, header.valueCount <= left else {
                    throw Failure(reason: "a page of \(header.valueCount) values, with \(left) left in the chunk")
                }
                try dataPage(header, body, snappy: snappy)
                left -= header.valueCount
            default: continue   // index pages and unknown kinds carry no values
            }
        }
    }

    /// The page's bytes after decompression (the page itself when not compressed).
    private func decompressed(_ body: UnsafeRawBufferPointer, size: Int, snappy: Bool) throws(Failure) -> UnsafeRawBufferPointer {
        guard snappy else {
            guard size == body.count else { throw Failure(reason: "an uncompressed page of \(body.count) bytes says \(size)") }
            return body
        }
        guard size <= 32 * body.count + 64 else { throw Failure(reason: "\(body.count) Snappy bytes cannot hold \(size)") }
        if pageBuffer.count < size {
            pageBuffer.deallocate()
            pageBuffer = .allocate(byteCount: max(size, 2 * pageBuffer.count), alignment: 8)
        }
        let page = UnsafeMutableRawBufferPointer(rebasing: pageBuffer[..<size])
        do { try Snappy.decompress(body, into: page) } catch { throw Failure(reason: "Snappy data: \(error.reason)") }
        return UnsafeRawBufferPointer(page)   // valid until the next page is decompressed
    }

    private func dataPage(_ h: ParquetMetadata.PageHeader, _ body: UnsafeRawBufferPointer, snappy: Bool) throws(Failure) {
        let n = h.valueCount
        guard n <= slotBudget - slots else { throw Failure(reason: "more values than the file's size allows") }
        var page: UnsafeRawBufferPointer, levelBytes: (rep: UnsafeRawBufferPointer?, def: UnsafeRawBufferPointer?) = (nil, nil)
        if h.type == 3 {
            let levels = h.repetitionBytes + h.definitionBytes
            guard levels <= body.count, levels <= h.uncompressedSize else { throw Failure(reason: "levels of \(levels) bytes in a page of \(body.count)") }
            levelBytes = (UnsafeRawBufferPointer(rebasing: body[..<h.repetitionBytes]), UnsafeRawBufferPointer(rebasing: body[h.repetitionBytes ..< levels]))
            page = try decompressed(UnsafeRawBufferPointer(rebasing: body[levels...]), size: h.uncompressedSize - levels, snappy: snappy && h.isCompressed)
        } else {
            page = try decompressed(body, size: h.uncompressedSize, snappy: snappy)
            for level in [maxRepetition, maxDefinition] where level > 0 {
                guard (level == maxRepetition ? h.repetitionEncoding : h.definitionEncoding) == 3 else {
                    throw Failure(reason: "levels in encoding \(level == maxRepetition ? h.repetitionEncoding : h.definitionEncoding), only RLE is read")
                }
            }
            func prefixed(_ page: inout UnsafeRawBufferPointer) throws(Failure) -> UnsafeRawBufferPointer {
                guard page.count >= 4 else { throw Failure(reason: "the page ends inside a level length") }
                let length = Int(page.loadUnaligned(as: UInt32.self).littleEndian)
                guard length <= page.count - 4 else { throw Failure(reason: "levels of \(length) bytes run past the page") }
                defer { page = UnsafeRawBufferPointer(rebasing: page[(4 + length)...]) }
                return UnsafeRawBufferPointer(rebasing: page[4 ..< 4 + length])
            }
            if maxRepetition > 0 { levelBytes.rep = try prefixed(&page) }
            if maxDefinition > 0 { levelBytes.def = try prefixed(&page) }
        }
        var present = n
        if maxRepetition > 0 { try levels(levelBytes.rep!, count: n, max: maxRepetition, into: &repetitions) }
        if maxDefinition > 0 {
            let start = definitions.count
            try levels(levelBytes.def!, count: n, max: maxDefinition, into: &definitions)
            present = 0
            for d in definitions[start...] where Int(d) == maxDefinition { present += 1 }
        }
        slots += n
        switch h.encoding {
        case 0: try Self.plain(page, count: present, type: type, width: width, into: &values, byteBudget: &byteBudget)
        case 2, 8:
            guard let dictionary else { throw Failure(reason: "dictionary-encoded values without a dictionary page") }
            guard present > 0 else { return }
            guard page.count >= 1, page[0] <= 32 else { throw Failure(reason: "bad dictionary index width") }
            scratch.removeAll(keepingCapacity: true)
            try Self.hybrid(UnsafeRawBufferPointer(rebasing: page[1...]), bitWidth: Int(page[0]), count: present, into: &scratch)
            try gather(dictionary)
        default: throw Failure(reason: "values in encoding \(Self.encodingName(h.encoding)); only PLAIN and dictionary encodings are read")
        }
    }

    /// Appends `count` levels (each checked `<= max`) to `out`.
    private func levels(_ bytes: UnsafeRawBufferPointer, count: Int, max: Int, into out: inout [UInt8]) throws(Failure) {
        scratch.removeAll(keepingCapacity: true)
        try Self.hybrid(bytes, bitWidth: Int.bitWidth - max.leadingZeroBitCount, count: count, into: &scratch)
        for v in scratch {
            guard v <= UInt32(max) else { throw Failure(reason: "level \(v) above the column's maximum \(max)") }
            out.append(UInt8(v))
        }
    }

    /// Appends the dictionary entries `scratch` indexes to `values`.
    private func gather(_ dictionary: Store) throws(Failure) {
        for i in scratch {
            guard Int(i) < dictionary.count else { throw Failure(reason: "dictionary index \(i) of a dictionary of \(dictionary.count)") }
            let a: Int, b: Int
            if width > 0 {
                (a, b) = (Int(i) * width, Int(i) * width + width)
            } else {
                (a, b) = (dictionary.offsets[Int(i)], dictionary.offsets[Int(i) + 1])
                guard b - a <= byteBudget else { throw Failure(reason: "more value bytes than the file's size allows") }
                byteBudget -= b - a
            }
            values.data.append(contentsOf: dictionary.data[a ..< b])
            if width == 0 { values.offsets.append(values.data.count) }
            values.count += 1
        }
    }

    /// Appends `count` PLAIN values of `type` from `page` to `store`.
    static func plain(_ page: UnsafeRawBufferPointer, count: Int, type: ParquetPhysicalType, width: Int, into store: inout Store,
                      byteBudget: inout Int) throws(Failure) {
        if width > 0 {
            guard count <= page.count / width else { throw Failure(reason: "\(count) values of \(width) bytes in \(page.count) bytes") }
            store.data.append(contentsOf: page[..<(count * width)])
        } else {
            var p = 0
            for _ in 0 ..< count {
                guard page.count - p >= 4 else { throw Failure(reason: "the page ends inside a byte-array length") }
                let n = Int(page.loadUnaligned(fromByteOffset: p, as: UInt32.self).littleEndian)
                guard n <= page.count - p - 4 else { throw Failure(reason: "a byte array of \(n) bytes runs past the page") }
                guard n <= byteBudget else { throw Failure(reason: "more value bytes than the file's size allows") }
                byteBudget -= n
                store.data.append(contentsOf: page[(p + 4) ..< (p + 4 + n)])
                store.offsets.append(store.data.count)
                p += 4 + n
            }
        }
        store.count += count
    }

    /// Appends `count` values of the RLE/bit-packed hybrid encoding (`bitWidth` 0 ... 32) to `out`.
    static func hybrid(_ input: UnsafeRawBufferPointer, bitWidth: Int, count: Int, into out: inout [UInt32]) throws(Failure) {
        let mask: UInt64 = (1 << UInt64(bitWidth)) - 1
        var p = 0, produced = 0
        while produced < count {
            var header = 0
            for shift in stride(from: 0, through: 28, by: 7) {
                guard p < input.count else { throw Failure(reason: "levels or indices end after \(produced) of \(count) values") }
                let b = Int(input[p])
                p += 1
                header |= (b & 0x7F) << shift
                if b & 0x80 == 0 { break }
                guard shift < 28 else { throw Failure(reason: "a run header longer than 5 bytes") }
            }
            if header & 1 == 0 {
                let run = header >> 1, bytes = (bitWidth + 7) / 8
                guard input.count - p >= bytes else { throw Failure(reason: "the data ends inside a run's value") }
                var value: UInt64 = 0
                for i in 0 ..< bytes { value |= UInt64(input[p + i]) << UInt64(8 * i) }
                p += bytes
                guard value <= mask else { throw Failure(reason: "a run's value \(value) is wider than \(bitWidth) bits") }
                let n = min(run, count - produced)
                out.append(contentsOf: repeatElement(UInt32(value), count: n))
                produced += n
            } else {
                let groupBytes = (header >> 1) * bitWidth, available = min(groupBytes, input.count - p)
                let n = min((header >> 1) * 8, count - produced)
                guard (n * bitWidth + 7) / 8 <= available else { throw Failure(reason: "a bit-packed run ends past the data") }
                var acc: UInt64 = 0, bits = 0, q = p
                for _ in 0 ..< n {
                    while bits < bitWidth {
                        acc |= UInt64(input[q]) << UInt64(bits)
                        q += 1
                        bits += 8
                    }
                    out.append(UInt32(truncatingIfNeeded: acc & mask))
                    acc >>= UInt64(bitWidth)
                    bits -= bitWidth
                }
                p += available
                produced += n
            }
        }
    }

    static func encodingName(_ e: Int32) -> String {
        let names = [0: "PLAIN", 2: "PLAIN_DICTIONARY", 3: "RLE", 4: "BIT_PACKED", 5: "DELTA_BINARY_PACKED",
                     6: "DELTA_LENGTH_BYTE_ARRAY", 7: "DELTA_BYTE_ARRAY", 8: "RLE_DICTIONARY", 9: "BYTE_STREAM_SPLIT"]
        return names[Int(e)] ?? "\(e)"
    }
}
