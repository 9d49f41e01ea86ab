/// A Parquet physical type (how values are stored; the logical type, e.g. a string, is on top).
public enum ParquetPhysicalType: Int32, Sendable, CustomStringConvertible {
    case boolean = 0, int32, int64, int96, float, double, byteArray, fixedLengthByteArray

    public var description: String {
        ["BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"][Int(rawValue)]
    }
}
