/// Readers of the Amazon Books demo of a public MIND example (PaddleRec).
public enum AmazonBooksDemo {
    /// Reads `train_demo.txt`: CSV `user,item,order_index`, no header. The order index becomes the
    /// timestamp.
    /// - Throws: ``DataError`` naming file and line.
    public static func readTrain(at path: String) throws(DataError) -> Dataset {
        var fields = FieldSplitter()
        var log = InteractionLog()
        try LineScanner.forEachLine(path) { (line) throws(DataError) in
            let b = line.bytes
            fields.split(b, .byte(0x2C))
            guard fields.count == 3 else {
                throw .malformedLine(file: path, line: line.number, reason: "expected 3 fields, found \(fields.count)")
            }
            var r = TokenReader(.numeric, what: "user")
            let user = try r.read(fields.field(0, in: b), file: path, line: line.number)
            var ri = TokenReader(.numeric, what: "item")
            let item = try ri.read(fields.field(1, in: b), file: path, line: line.number)
            let t = try Fields.double(fields.field(2, in: b), "order index", file: path, line: line.number)
            log.append(user: user, item: ItemID(item), timestamp: t)
        }
        if log.isEmpty { throw .empty(file: path) }
        return Dataset(name: "amazon-books-demo", interactions: log)
    }

    /// Reads `valid_part-0.txt`: one user a line, space-separated `key:value` tokens
    /// `user_id:U target_item:0 hist_item:I ... eval_item:J ...`. `hist_item` values form the
    /// history (in order), `eval_item` values the truth; `target_item` is ignored.
    /// - Throws: ``DataError/malformedLine(file:line:reason:)`` for a token without `:`, an unknown
    ///   key, a non-numeric value, a line without `user_id` or without `eval_item`.
    public static func readValidation(at path: String) throws(DataError) -> [HeldOutUser] {
        var fields = FieldSplitter()
        var out = [HeldOutUser]()
        try LineScanner.forEachLine(path) { (line) throws(DataError) in
            let b = line.bytes
            fields.split(b, .whitespace)
            var user: UInt64? = nil
            var history = [ItemID](), truth = [ItemID]()
            for k in 0 ..< fields.count {
                let f = fields.field(k, in: b)
                guard let colon = f.firstIndex(of: 0x3A) else {
                    throw .malformedLine(file: path, line: line.number, reason: "token '\(f.preview)' is not key:value")
                }
                let key = UnsafeBufferPointer(rebasing: f[..<colon])
                let value = UnsafeBufferPointer(rebasing: f[(colon + 1)...])
                guard let v = NumberParser.uint64(value) else {
                    throw .malformedLine(file: path, line: line.number, reason: "value of '\(key.preview)' is not a non-negative integer: '\(value.preview)'")
                }
                if key.equals("hist_item") { history.append(ItemID(v)) }
                else if key.equals("eval_item") { truth.append(ItemID(v)) }
                else if key.equals("user_id") { user = v }
                else if key.equals("target_item") { continue }
                else { throw .malformedLine(file: path, line: line.number, reason: "unknown key '\(key.preview)'") }
            }
            guard let user else { throw .malformedLine(file: path, line: line.number, reason: "no user_id") }
            guard !truth.isEmpty else { throw .malformedLine(file: path, line: line.number, reason: "no eval_item") }
            out.append(HeldOutUser(user: user, history: history, truth: truth))
        }
        if out.isEmpty { throw .empty(file: path) }
        return out
    }
}
