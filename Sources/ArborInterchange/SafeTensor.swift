/// The element types of the safetensors format (the `dtype` strings of the header).
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64, .u64: 8
        case .f32, .i32, .u32: 4
        case .f16, .bf16, .i16, .u16: 2
        case .i8, .u8, .bool: 1
        }
    }

    /// Whether ``SafeTensor/floats()`` converts this type to `Float` (F32 as is, F16 and BF16 exactly).
    public var isFloat32Compatible: Bool { self == .f32 || self == .f16 || self == .bf16 }
}

/// One tensor of a safetensors file: its name, element type, shape and raw little-endian bytes
/// (`shape.reduce(1, *) · dtype.size` of them, row-major). A value type; thread-safe.
public struct SafeTensor: Sendable, Equatable {
    /// Unique within a file.
    public var name: String
    /// Element type.
    public var dtype: SafeTensorsDType
    /// Dimensions, each >= 0 (`[]`: a scalar).
    public var shape: [Int]
    /// The data, little-endian, row-major.
    public var data: [UInt8]

    /// A tensor from raw bytes (checked when the file is encoded or read).
    public init(name: String, dtype: SafeTensorsDType, shape: [Int], data: [UInt8]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }

    /// Number of elements (`shape.reduce(1, *)`).
    public var count: Int { shape.reduce(1, *) }

    /// An F32 tensor of `values` (row-major, `shape.reduce(1, *)` of them).
    public static func float32(_ name: String, shape: [Int], values: [Float]) -> SafeTensor {
        var bytes = [UInt8]()
        bytes.reserveCapacity(values.count * 4)
        for v in values { appendLittleEndian(v.bitPattern, to: &bytes) }
        return SafeTensor(name: name, dtype: .f32, shape: shape, data: bytes)
    }

    /// An I64 tensor of `values`.
    public static func int64(_ name: String, shape: [Int], values: [Int64]) -> SafeTensor {
        var bytes = [UInt8]()
        bytes.reserveCapacity(values.count * 8)
        for v in values { appendLittleEndian(UInt64(bitPattern: v), to: &bytes) }
        return SafeTensor(name: name, dtype: .i64, shape: shape, data: bytes)
    }

    /// The values as `Float`: F32 as stored, F16 and BF16 converted exactly (every half and
    /// bfloat16 value is a Float32 value). O(count).
    /// - Throws: ``SafeTensorsError/wrongDType(name:found:expected:)`` for any other dtype.
    public func floats() throws(SafeTensorsError) -> [Float] {
        let n = count
        var out = [Float](repeating: 0, count: n)
        switch dtype {
        case .f32:
            for i in 0 ..< n { out[i] = Float(bitPattern: Self.load32(data, i * 4)) }
        case .f16:
            for i in 0 ..< n { out[i] = Self.halfToFloat(Self.load16(data, i * 2)) }
        case .bf16:
            for i in 0 ..< n { out[i] = Float(bitPattern: UInt32(Self.load16(data, i * 2)) << 16) }
        default:
            throw .wrongDType(name: name, found: dtype.rawValue, expected: "F32, F16 or BF16")
        }
        return out
    }

    /// The values as `Int64`: I64 as stored, U64 by bit pattern, I32 widened. O(count).
    /// - Throws: ``SafeTensorsError/wrongDType(name:found:expected:)`` for any other dtype.
    public func int64s() throws(SafeTensorsError) -> [Int64] {
        let n = count
        var out = [Int64](repeating: 0, count: n)
        switch dtype {
        case .i64, .u64:
            for i in 0 ..< n { out[i] = Int64(bitPattern: Self.load64(data, i * 8)) }
        case .i32:
            for i in 0 ..< n { out[i] = Int64(Int32(bitPattern: Self.load32(data, i * 4))) }
        default:
            throw .wrongDType(name: name, found: dtype.rawValue, expected: "I64, U64 or I32")
        }
        return out
    }

    /// IEEE 754 binary16 bits to `Float` (subnormals, infinities and NaN included).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            // Zero or subnormal: mantissa · 2^-24, exact in Float.
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign == 0 ? magnitude : -magnitude
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | (UInt32(exponent - 15 + 127) << 23) | (mantissa << 13))
    }

    static func load16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
    static func load32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }
    static func load64(_ b: [UInt8], _ at: Int) -> UInt64 { UInt64(load32(b, at)) | UInt64(load32(b, at + 4)) << 32 }
}

func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
    for j in 0 ..< T.bitWidth / 8 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * j))) }
}
