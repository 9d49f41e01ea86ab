@_exported import ArborCore

/// A logical array of fixed-size elements (numbers or matrix rows) stored as consecutive chunk
/// values, read in place from the memory map.
///
/// Element `i` lives in chunk `i / elementsPerChunk` at byte offset `(i % elementsPerChunk) *
/// elementBytes`. Every chunk but the last holds exactly `elementsPerChunk` elements.
///
/// Lifetime: built from ``ValueView``s, so valid only while their transaction lives and only inside
/// the closure that lent them. Reads are unaligned-safe (LMDB aligns values to 2 bytes only).
/// Safe to read from one thread at a time per transaction.
public struct MappedArray {
    /// Size of one element in bytes (for matrix rows: `columns * 4`).
    public let elementBytes: Int
    /// Elements per full chunk.
    public let elementsPerChunk: Int
    /// Number of elements.
    public let count: Int
    @usableFromInline let chunks: [UnsafeRawPointer?]

    /// A chunk whose size does not match the layout.
    public struct SizeMismatch: Error, Equatable, Sendable {
        /// Index of the offending chunk (`chunks.count` when the number of chunks is wrong).
        public let chunk: Int
        /// Bytes (or chunks) expected and found.
        public let expected: Int, found: Int
    }

    /// The number of chunks that `count` elements need.
    public static func chunkCount(count: Int, elementsPerChunk: Int) -> Int {
        count == 0 ? 0 : (count + elementsPerChunk - 1) / elementsPerChunk
    }

    /// Checks each chunk's size against the layout and keeps its address.
    /// - Throws: ``SizeMismatch`` naming the first chunk of the wrong size (or a wrong chunk count).
    public init(chunks views: [ValueView], elementBytes: Int, elementsPerChunk: Int, count: Int) throws(SizeMismatch) {
        precondition(elementBytes > 0 && elementsPerChunk > 0 && count >= 0)
        let needed = Self.chunkCount(count: count, elementsPerChunk: elementsPerChunk)
        guard views.count == needed else { throw SizeMismatch(chunk: views.count, expected: needed, found: views.count) }
        var bases: [UnsafeRawPointer?] = []
        bases.reserveCapacity(needed)
        for (c, view) in views.enumerated() {
            let elements = min(elementsPerChunk, count - c * elementsPerChunk)
            guard view.count == elements * elementBytes else {
                throw SizeMismatch(chunk: c, expected: elements * elementBytes, found: view.count)
            }
            bases.append(view.bytes.baseAddress)
        }
        self.elementBytes = elementBytes
        self.elementsPerChunk = elementsPerChunk
        self.count = count
        self.chunks = bases
    }

    @inlinable
    func address(of index: Int) -> UnsafeRawPointer {
        precondition(index >= 0 && index < count, "MappedArray index \(index) out of 0..<\(count)")
        let (c, r) = index.quotientAndRemainder(dividingBy: elementsPerChunk)
        return chunks[c].unsafelyUnwrapped + r * elementBytes
    }

    /// Element `index` read as a little-endian integer of `elementBytes` bytes. O(1).
    /// - Precondition: `0 <= index < count` and `elementBytes == MemoryLayout<T>.size`.
    @inlinable
    public func integer<T: FixedWidthInteger & BitwiseCopyable>(at index: Int, as: T.Type) -> T {
        precondition(MemoryLayout<T>.size == elementBytes, "MappedArray holds \(elementBytes)-byte elements")
        return T(littleEndian: address(of: index).loadUnaligned(as: T.self))
    }

    /// Copies the rows `indices` (elements of `output.cols` floats) into `output`, one row per
    /// index, in order; `output` is resized to `indices.count` rows and keeps its capacity.
    /// Runs of consecutive indices within a chunk (such as the children of one node) are copied
    /// with one memcpy; no allocation when the capacity suffices. O(indices.count · cols).
    /// - Precondition: `elementBytes == output.cols * 4` and every index is in `0 ..< count`.
    public func gatherRows(_ indices: [Int32], into output: inout Matrix) {
        let rowBytes = elementBytes
        precondition(output.cols * MemoryLayout<Float>.size == rowBytes,
                     "gather: output has \(output.cols) columns, rows hold \(rowBytes / 4)")
        output.resize(rows: indices.count)
        guard rowBytes > 0 else { return }
        let per = elementsPerChunk, total = count
        output.withUnsafeMutableBufferPointer { dst in
            guard let base = dst.baseAddress else { return }
            let out = UnsafeMutableRawPointer(base)
            indices.withUnsafeBufferPointer { idx in
                var r = 0
                while r < idx.count {
                    let start = Int(idx[r])
                    precondition(start >= 0 && start < total, "MappedArray index \(start) out of 0..<\(total)")
                    let (c, offset) = start.quotientAndRemainder(dividingBy: per)
                    let limit = min(idx.count - r, per - offset, total - start)
                    var run = 1
                    while run < limit && Int(idx[r + run]) == start + run { run += 1 }
                    out.advanced(by: r * rowBytes).copyMemory(
                        from: chunks[c].unsafelyUnwrapped + offset * rowBytes, byteCount: run * rowBytes)
                    r += run
                }
            }
        }
    }

    /// Calls `body` with the elements `range` as `Float`s, in as few consecutive pieces as the
    /// chunks allow (one piece unless `range` crosses a chunk boundary): `body(first, values)`
    /// where `values` holds elements `first ..< first + values.count / (elementBytes / 4)`,
    /// row-major. Zero-copy when the chunk is 4-byte aligned in the map (large values are);
    /// otherwise the piece is copied into `scratch`, whose capacity is kept for the next call.
    /// The buffer is valid only inside `body`. O(pieces) when aligned, O(range.count) otherwise.
    /// - Precondition: `range` lies in `0 ..< count`; `elementBytes` is a multiple of 4.
    @inlinable
    public func forEachFloatRun(_ range: Range<Int>, scratch: inout [Float],
                                _ body: (Int, UnsafeBufferPointer<Float>) -> Void) {
        precondition(range.lowerBound >= 0 && range.upperBound <= count,
                     "MappedArray range \(range) out of 0..<\(count)")
        let floatsPerElement = elementBytes / 4
        var start = range.lowerBound
        while start < range.upperBound {
            let (c, offset) = start.quotientAndRemainder(dividingBy: elementsPerChunk)
            let run = min(range.upperBound - start, elementsPerChunk - offset)
            let base = chunks[c].unsafelyUnwrapped + offset * elementBytes
            let n = run * floatsPerElement
            if UInt(bitPattern: base) % UInt(MemoryLayout<Float>.alignment) == 0 {
                body(start, UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: n))
            } else {
                if scratch.count < n { scratch.append(contentsOf: repeatElement(0, count: n - scratch.count)) }
                scratch.withUnsafeMutableBytes { dst in
                    dst.baseAddress!.copyMemory(from: base, byteCount: n * 4)
                    body(start, UnsafeBufferPointer(start: dst.baseAddress!.assumingMemoryBound(to: Float.self), count: n))
                }
            }
            start += run
        }
    }

    /// Calls `body` once per chunk with the chunk's element range and its values as `Float`s
    /// (`range.count × (elementBytes / 4)`, row-major): zero-copy when the chunk is 4-byte aligned
    /// in the map (large values are, in practice), otherwise through one aligned copy reused
    /// across chunks. Lets a caller run one GEMM per chunk over a whole level.
    /// The buffer is valid only inside `body`. O(count) when copying, O(chunks) otherwise.
    /// - Precondition: `elementBytes` is a multiple of 4.
    public func forEachFloatChunk(_ body: (Range<Int>, UnsafeBufferPointer<Float>) throws -> Void) rethrows {
        precondition(elementBytes % 4 == 0, "forEachFloatChunk: elements of \(elementBytes) bytes are not Floats")
        let floatsPerElement = elementBytes / 4
        var scratch: [Float] = []
        for (c, base) in chunks.enumerated() {
            let lo = c * elementsPerChunk
            let range = lo ..< min(count, lo + elementsPerChunk)
            let n = range.count * floatsPerElement
            guard let base, n > 0 else { try body(range, UnsafeBufferPointer(start: nil, count: 0)); continue }
            if UInt(bitPattern: base) % UInt(MemoryLayout<Float>.alignment) == 0 {
                try body(range, UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: n))
            } else {
                if scratch.count < n { scratch = [Float](repeating: 0, count: n) }
                try scratch.withUnsafeMutableBytes { dst in
                    dst.baseAddress!.copyMemory(from: base, byteCount: n * 4)
                    try body(range, UnsafeBufferPointer(start: dst.baseAddress!.assumingMemoryBound(to: Float.self), count: n))
                }
            }
        }
    }
}
