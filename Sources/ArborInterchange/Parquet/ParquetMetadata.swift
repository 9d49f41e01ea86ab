/// The parts of Parquet's Thrift structs this reader uses (field ids from parquet.thrift); every
/// other field is skipped. Internal: ``ParquetFile`` checks them against the file before use.
enum ParquetMetadata {
    /// `SchemaElement`: a group (`children > 0`) or a leaf column (`type` set).
    struct SchemaElement {
        var name = ""
        var type: Int32?            // Type: 0 BOOLEAN, 1 INT32, 2 INT64, 3 INT96, 4 FLOAT, 5 DOUBLE, 6 BYTE_ARRAY, 7 FIXED
        var repetition: Int32 = 0   // 0 REQUIRED, 1 OPTIONAL, 2 REPEATED
        var children = 0
    }

    /// `ColumnMetaData` (inside `ColumnChunk.meta_data`).
    struct ColumnChunk {
        var type: Int32 = -1
        var path: [String] = []
        var codec: Int32 = 0
        var valueCount: Int64 = 0
        var compressedSize: Int64 = 0
        var dataPageOffset: Int64 = -1
        var dictionaryPageOffset: Int64?
        var hasMetadata = false
        var inOtherFile = false
    }

    struct RowGroup {
        var columns: [ColumnChunk] = []
        var rowCount: Int64 = -1
    }

    struct File {
        var schema: [SchemaElement] = []
        var rowCount: Int64 = -1
        var rowGroups: [RowGroup] = []
        var createdBy: String?
        var encrypted = false
    }

    /// `PageHeader` with the fields of its data (v1 or v2) or dictionary page header.
    struct PageHeader {
        var type: Int32 = -1         // 0 DATA_PAGE, 1 INDEX_PAGE, 2 DICTIONARY_PAGE, 3 DATA_PAGE_V2
        var uncompressedSize = -1
        var compressedSize = -1
        var valueCount = -1          // data v1/v2, dictionary
        var encoding: Int32 = -1     // of the values
        var definitionEncoding: Int32 = 3
        var repetitionEncoding: Int32 = 3
        var definitionBytes = 0      // v2 only
        var repetitionBytes = 0      // v2 only
        var isCompressed = true      // v2 only
    }

    typealias Reader = ThriftCompactReader
    typealias Failure = ThriftCompactReader.Failure

    static func file(_ r: inout Reader) throws(Failure) -> File {
        var f = File()
        try r.beginStruct()
        while let (id, kind) = try r.field() {
            switch (id, kind) {
            case (2, .list): try r.structList { (r: inout Reader) throws(Failure) in f.schema.append(try schemaElement(&r)) }
            case (3, .i64): f.rowCount = try r.i64()
            case (4, .list): try r.structList { (r: inout Reader) throws(Failure) in f.rowGroups.append(try rowGroup(&r)) }
            case (6, .binary): f.createdBy = try r.string()
            case (8, .structure): f.encrypted = true; try r.skip(kind)
            default: try r.skip(kind)
            }
        }
        r.endStruct()
        return f
    }

    static func schemaElement(_ r: inout Reader) throws(Failure) -> SchemaElement {
        var e = SchemaElement()
        while let (id, kind) = try r.field() {
            switch (id, kind) {
            case (1, .i32): e.type = try r.i32()
            case (3, .i32): e.repetition = try r.i32()
            case (4, .binary): e.name = try r.string()
            case (5, .i32): e.children = try r.count("a schema element's child count")
            default: try r.skip(kind)
            }
        }
        return e
    }

    static func rowGroup(_ r: inout Reader) throws(Failure) -> RowGroup {
        var g = RowGroup()
        while let (id, kind) = try r.field() {
            switch (id, kind) {
            case (1, .list): try r.structList { (r: inout Reader) throws(Failure) in g.columns.append(try columnChunk(&r)) }
            case (3, .i64): g.rowCount = try r.i64()
            default: try r.skip(kind)
            }
        }
        return g
    }

    static func columnChunk(_ r: inout Reader) throws(Failure) -> ColumnChunk {
        var c = ColumnChunk()
        while let (id, kind) = try r.field() {
            switch (id, kind) {
            case (1, .binary): c.inOtherFile = !(try r.binary()).isEmpty
            case (3, .structure):
                c.hasMetadata = true
                try r.beginStruct()
                while let (id, kind) = try r.field() {
                    switch (id, kind) {
                    case (1, .i32): c.type = try r.i32()
                    case (3, .list): c.path = try r.stringList()
                    case (4, .i32): c.codec = try r.i32()
                    case (5, .i64): c.valueCount = try r.i64()
                    case (7, .i64): c.compressedSize = try r.i64()
                    case (9, .i64): c.dataPageOffset = try r.i64()
                    case (11, .i64): c.dictionaryPageOffset = try r.i64()
                    default: try r.skip(kind)
                    }
                }
                r.endStruct()
            default: try r.skip(kind)
            }
        }
        return c
    }

    static func pageHeader(_ r: inout Reader) throws(Failure) -> PageHeader {
        var h = PageHeader()
        try r.beginStruct()
        while let (id, kind) = try r.field() {
            switch (id, kind) {
            case (1, .i32): h.type = try r.i32()
            case (2, .i32): h.uncompressedSize = try r.count("uncompressed_page_size")
            case (3, .i32): h.compressedSize = try r.count("compressed_page_size")
            case (5, .structure), (7, .structure), (8, .structure):
                try r.beginStruct()
                while let (field, k) = try r.field() {
                    switch (id, field, k) {
                    case (_, 1, .i32): h.valueCount = try r.count("num_values")
                    case (5, 2, .i32), (7, 2, .i32), (8, 4, .i32): h.encoding = try r.i32()
                    case (5, 3, .i32): h.definitionEncoding = try r.i32()
                    case (5, 4, .i32): h.repetitionEncoding = try r.i32()
                    case (8, 5, .i32): h.definitionBytes = try r.count("definition_levels_byte_length")
                    case (8, 6, .i32): h.repetitionBytes = try r.count("repetition_levels_byte_length")
                    case (8, 7, .boolFalse): h.isCompressed = false
                    default: try r.skip(k)
                    }
                }
                r.endStruct()
            default: try r.skip(kind)
            }
        }
        r.endStruct()
        return h
    }
}
