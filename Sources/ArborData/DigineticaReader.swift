/// Reader of the CIKM Cup 2016 (Diginetica) item views: `;`-separated with header
/// `session_id;user_id;item_id;timeframe;eventdate` (`user_id` is `NA` for anonymous sessions).
///
/// The returned log has one "user" per session (`user` = `session_id`); the timestamp is the event
/// date (`YYYY-MM-DD`, as Unix seconds at 00:00 UTC) plus `timeframe` milliseconds, so events sort
/// by date then by their time inside the session.
public enum DigineticaReader {
    /// Reads the file.
    /// - Throws: ``DataError/missingColumn(file:column:)``, ``DataError/malformedLine(file:line:reason:)``
    ///   for a bad id, timeframe or date, ``DataError/empty(file:)``.
    public static func read(at path: String) throws(DataError) -> Dataset {
        var fields = FieldSplitter()
        var header = true
        var cols = (s: 0, i: 2, t: 3, d: 4)
        var log = InteractionLog()
        try LineScanner.forEachLine(path) { (line) throws(DataError) in
            let b = line.bytes
            fields.split(b, .byte(UInt8(ascii: ";")))
            if header {
                header = false
                let names = (0 ..< fields.count).map { fields.string($0, in: b).lowercased() }
                func col(_ n: String) throws(DataError) -> Int {
                    guard let k = names.firstIndex(of: n) else { throw .missingColumn(file: path, column: n) }
                    return k
                }
                cols = (try col("session_id"), try col("item_id"), try col("timeframe"), try col("eventdate"))
                return
            }
            try Fields.require(fields, max(cols.s, cols.i, cols.t, cols.d) + 1, file: path, line: line.number)
            var sr = TokenReader(.numeric, what: "session")
            let session = try sr.read(fields.field(cols.s, in: b), file: path, line: line.number)
            var ir = TokenReader(.numeric, what: "item")
            let item = try ir.read(fields.field(cols.i, in: b), file: path, line: line.number)
            let frame = try Fields.double(fields.field(cols.t, in: b), "timeframe", file: path, line: line.number)
            let df = fields.field(cols.d, in: b)
            guard let day = parseDate(df) else {
                throw .malformedLine(file: path, line: line.number, reason: "eventdate '\(df.preview)' is not YYYY-MM-DD")
            }
            log.append(user: session, item: ItemID(item), timestamp: Double(day) * 86_400 + frame / 1_000)
        }
        if log.isEmpty { throw .empty(file: path) }
        return Dataset(name: "diginetica", interactions: log)
    }

    /// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian), or nil.
    static func parseDate(_ f: UnsafeBufferPointer<UInt8>) -> Int? {
        guard f.count == 10, f[4] == UInt8(ascii: "-"), f[7] == UInt8(ascii: "-"),
              let y = NumberParser.uint64(UnsafeBufferPointer(rebasing: f[0 ..< 4])),
              let m = NumberParser.uint64(UnsafeBufferPointer(rebasing: f[5 ..< 7])),
              let d = NumberParser.uint64(UnsafeBufferPointer(rebasing: f[8 ..< 10])),
              (1 ... 12).contains(m), (1 ... 31).contains(d)
        else { return nil }
        // Howard Hinnant's days_from_civil.
        let yy = Int(y) - (m <= 2 ? 1 : 0)
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let mp = (Int(m) + 9) % 12
        let doy = (153 * mp + 2) / 5 + Int(d) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
