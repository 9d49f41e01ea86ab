import Foundation

/// A safetensors file in memory: an 8-byte little-endian header length `N`, `N` bytes of JSON
/// header (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, …, "__metadata__": {…}}`,
/// offsets relative to the first byte after the header), then the raw tensor data.
///
/// Reading checks everything before any value is used: the header length against the file, the
/// JSON, each dtype, shape and offset pair (inside the data, `end − begin` equal to the element
/// count times the dtype's size, no overlap, no hole). Writing lays the tensors out in the given
/// order, pads the header with spaces to a multiple of 8 and replaces the file atomically.
/// A value type; thread-safe. Memory: the whole file (reading and writing are O(file size)).
public struct SafeTensorsFile: Sendable, Equatable {
    /// The largest header accepted (as the reference implementation: 100 MB).
    public static let maxHeaderBytes = 100_000_000
    /// The tensors, in data order.
    public var tensors: [SafeTensor]
    /// The free `__metadata__` map (string to string).
    public var metadata: [String: String]

    /// A file of `tensors` (names unique) with `metadata`.
    public init(tensors: [SafeTensor], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor called `name`, or `nil`. O(tensors).
    public subscript(name: String) -> SafeTensor? { tensors.first { $0.name == name } }

    /// The tensor called `name`.
    /// - Throws: ``SafeTensorsError/missingTensor(name:)``.
    public func tensor(_ name: String) throws(SafeTensorsError) -> SafeTensor {
        guard let t = self[name] else { throw .missingTensor(name: name) }
        return t
    }

    /// Reads and checks the file at `path`.
    /// - Throws: ``SafeTensorsError`` naming the file and the tensor at fault.
    public init(contentsOf path: String) throws(SafeTensorsError) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .io(path: path, reason: "cannot read: \((error as NSError).localizedDescription)")
        }
        try self.init(bytes: [UInt8](data), source: path)
    }

    /// Parses a file's bytes; `source` names it in errors.
    /// - Throws: ``SafeTensorsError/truncated(path:reason:)`` when the length, header or data run
    ///   past the end; ``SafeTensorsError/badHeader(path:reason:)`` for invalid JSON;
    ///   ``SafeTensorsError/badTensor(path:name:reason:)`` for a malformed entry.
    public init(bytes: [UInt8], source: String) throws(SafeTensorsError) {
        guard bytes.count >= 8 else {
            throw .truncated(path: source, reason: "\(bytes.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = SafeTensor.load64(bytes, 0)
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw .truncated(path: source, reason: "the header length says \(headerLength) bytes but only \(bytes.count - 8) follow it")
        }
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw .badHeader(path: source, reason: "header of \(headerLength) bytes is over \(Self.maxHeaderBytes)")
        }
        let start = 8 + Int(headerLength)
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes[8 ..< start]), options: [])
        } catch {
            throw .badHeader(path: source, reason: "not JSON (\((error as NSError).localizedDescription))")
        }
        guard let header = object as? [String: Any] else { throw .badHeader(path: source, reason: "not a JSON object") }
        let dataLength = bytes.count - start
        var metadata: [String: String] = [:]
        var entries: [(tensor: SafeTensor, begin: Int, end: Int)] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else { throw .badHeader(path: source, reason: "__metadata__ is not an object") }
                for (k, v) in map {
                    guard let s = v as? String else { throw .badHeader(path: source, reason: "__metadata__ value '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            func bad(_ reason: String) -> SafeTensorsError { .badTensor(path: source, name: name, reason: reason) }
            guard let entry = value as? [String: Any] else { throw bad("entry is not an object") }
            guard let dtypeText = entry["dtype"] as? String else { throw bad("no dtype") }
            guard let dtype = SafeTensorsDType(rawValue: dtypeText) else { throw bad("unknown dtype '\(dtypeText)'") }
            guard let shapeValues = entry["shape"] as? [Any] else { throw bad("no shape") }
            var shape: [Int] = []
            for v in shapeValues {
                guard let d = Self.integer(v), d >= 0 else { throw bad("shape \(shapeValues) is not a list of whole numbers >= 0") }
                shape.append(d)
            }
            guard let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
                  let begin = Self.integer(offsets[0]), let end = Self.integer(offsets[1]), begin >= 0, begin <= end else {
                throw bad("data_offsets is not [begin, end] with 0 <= begin <= end")
            }
            var count = 1
            for d in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw bad("shape \(shape) is too large") }
                count = product
            }
            let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, end - begin == byteCount else {
                throw bad("data_offsets [\(begin), \(end)] hold \(end - begin) bytes, shape \(shape) of \(dtype.rawValue) needs \(count) × \(dtype.size)")
            }
            guard end <= dataLength else {
                throw .truncated(path: source, reason: "tensor '\(name)' ends at data byte \(end) but the data has \(dataLength) bytes")
            }
            entries.append((SafeTensor(name: name, dtype: dtype, shape: shape, data: Array(bytes[(start + begin) ..< (start + end)])),
                            begin, end))
        }
        entries.sort { ($0.begin, $0.end, $0.tensor.name) < ($1.begin, $1.end, $1.tensor.name) }
        var covered = 0
        for e in entries {
            guard e.begin == covered else {
                let reason = e.begin < covered ? "its data [\(e.begin), \(e.end)) overlaps the previous tensor's"
                    : "the data bytes \(covered) ..< \(e.begin) before it belong to no tensor"
                throw .badTensor(path: source, name: e.tensor.name, reason: reason)
            }
            covered = e.end
        }
        guard covered == dataLength else {
            throw .badHeader(path: source, reason: "the last \(dataLength - covered) data bytes belong to no tensor")
        }
        tensors = entries.map(\.tensor)
        self.metadata = metadata
    }

    /// The file's bytes: length, header (keys sorted, padded with spaces to a multiple of 8), data in
    /// ``tensors`` order.
    /// - Throws: ``SafeTensorsError/badTensor(path:name:reason:)`` for an empty, reserved or repeated
    ///   name, or data whose size does not match the shape and dtype.
    public func encoded() throws(SafeTensorsError) -> [UInt8] {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for t in tensors {
            guard !t.name.isEmpty, t.name != "__metadata__", header[t.name] == nil else {
                throw .badTensor(path: "(writing)", name: t.name, reason: "empty, reserved or repeated name")
            }
            guard t.shape.allSatisfy({ $0 >= 0 }), t.data.count == t.count * t.dtype.size else {
                throw .badTensor(path: "(writing)", name: t.name,
                                 reason: "\(t.data.count) bytes for shape \(t.shape) of \(t.dtype.rawValue)")
            }
            header[t.name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.data.count]] as [String: Any]
            offset += t.data.count
        }
        var json: [UInt8]
        do { json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) } catch {
            throw .badHeader(path: "(writing)", reason: "\(error)")
        }
        while json.count % 8 != 0 { json.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + json.count + offset)
        appendLittleEndian(UInt64(json.count), to: &out)
        out += json
        for t in tensors { out += t.data }
        return out
    }

    /// Writes the file to `path`, atomically (a temporary file renamed over `path`): a failed write
    /// leaves any file at `path` as it was.
    /// - Throws: as ``encoded()``; ``SafeTensorsError/io(path:reason:)`` when the file cannot be written.
    public func write(to path: String) throws(SafeTensorsError) {
        let bytes = try encoded()
        do { try Data(bytes).write(to: URL(fileURLWithPath: path), options: [.atomic]) } catch {
            throw .io(path: path, reason: "cannot write: \((error as NSError).localizedDescription)")
        }
    }

    /// A JSON number that is a whole number fitting `Int`.
    private static func integer(_ value: Any) -> Int? {
        if let n = value as? NSNumber {
            let d = n.doubleValue
            guard d == d.rounded(), abs(d) < 9.0e15 else { return nil }
            return n.intValue
        }
        return nil
    }
}
