import ArborCore
import ArborMath
import ArborTree

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How an SDM model combines its short-term and long-term vectors.
public enum SDMFusion: Int, Sendable, CaseIterable, Codable {
    /// `o = (1 − G) ⊙ p + G ⊙ s`, `G = σ(W_g [u, s, p] + b_g)`; `o = s` when a query has no long term.
    case gated = 0
    /// `o = s`: the model has no long-term part (data without users, or the ablation).
    case shortOnly = 1
    /// `o = p`: the long term alone (the ablation).
    case longOnly = 2

    /// The spelling used by the CLI and reports.
    public var name: String {
        switch self {
        case .gated: "gated"
        case .shortOnly: "short-only"
        case .longOnly: "long-only"
        }
    }

    /// Whether the model has a long-term part.
    public var usesLongTerm: Bool { self != .shortOnly }
}

/// The inference side of SDM (Lv et al., CIKM 2019): a behaviour list with timestamps becomes
/// one query vector. No ArborNN: plain loops and BLAS, the same arithmetic as the training model.
///
/// Per query (item ids oldest first, with optional timestamps, see ``SDMSessionRule``):
/// 1. unknown ids are dropped (with their timestamps); the rest is cut into sessions; the short
///    term is the latest session's most recent `maxSession` items, the long term the earlier items'
///    most recent `maxLong` (none without timestamps, or when the model is ``SDMFusion/shortOnly``);
/// 2. `u = tanh(W_u · mean(E[short ∪ long]) + b_u)` (the user embedding, from behaviour only);
/// 3. short term: `X = LSTM(E[short])` (stacked), `X̂ = MultiHeadSelfAttention(X)`,
///    `s = Σ softmax(X̂ · u) X̂` (the user attention);
/// 4. long term: `z_item = Σ softmax(E[long] · u) E[long]`, with categories also
///    `z_cat = Σ softmax(C[cat(long)] · u) C[cat(long)]` (no category: a zero row),
///    `p = tanh(W_p [z_item, z_cat] + b_p)`;
/// 5. `o` by ``SDMFusion``; unit-normalised when cosine.
/// A history with no known id gives ``fallback`` (flagged in ``EncodedQuery/usedFallback``).
///
/// Stored tensors (prefix `sdm.`): "sdm.item.table" `n × d`; "sdm.category.table" `c × d` and
/// "sdm.item.category" `n` (dense category or −1) with categories; "sdm.lstm.<l>.wx"
/// `in × 4d`, ".wh" `d × 4d`, ".bias" `4d`; "sdm.attention.{q,k,v,o}.weight" `d × d`,
/// "sdm.attention.o.bias" `d`; "sdm.user.weight" `d × d`, "sdm.user.bias" `d`; with a long term
/// "sdm.long.weight" `(f·d) × d`, "sdm.long.bias" `d` (f = 1, or 2 with categories); gated also
/// "sdm.gate.weight" `3d × d`, "sdm.gate.bias" `d`; "sdm.options" `[9]` (heads, maxSession, maxLong,
/// maxGap, maxActions, lstm layers, fusion, cosine, temperature); "sdm.fallback" `d`. Item ids
/// travel in the index extra ``itemIDsExtraName``. Immutable and thread-safe.
///
/// Cost per query: O(L·d·4d·layers + L²·d + (L + M)·d + d²) for L short and M long items.
public struct SDMEncoder: Sendable {
    /// Index `extra` value with the item ids (UInt64 little-endian, row order).
    public static let itemIDsExtraName = "sdm.item-ids"
    /// Name prefix of every tensor.
    public static let tensorPrefix = "sdm."

    /// Item ids, ascending (row order).
    public let ids: [ItemID]
    private let rowOf: [ItemID: Int32]
    /// Width of embeddings and of the query vector.
    public let dimension: Int
    /// Attention heads.
    public let heads: Int
    /// Most recent items of the latest session read.
    public let maxSession: Int
    /// Most recent long-term items read.
    public let maxLong: Int
    /// The session rule.
    public let sessions: SDMSessionRule
    /// Fusion of the two halves.
    public let fusion: SDMFusion
    /// Unit-normalised output.
    public let cosine: Bool
    /// Training temperature (informational).
    public let temperature: Float
    /// The query of a history with no known item.
    public let fallback: [Float]
    private let tensors: [String: [Float]]
    private let shapes: [String: [Int]]
    private let itemCategory: [Int32]
    private let categoryCount: Int
    private let lstmLayers: Int

    /// Number of items.
    public var itemCount: Int { ids.count }
    /// Whether long-term attention also runs over categories.
    public var hasCategories: Bool { categoryCount > 0 }
    /// The row of `id`, or `nil`. O(1).
    public func row(of id: ItemID) -> Int? { rowOf[id].map(Int.init) }

    static let optionsName = "sdm.options"
    static let fallbackName = "sdm.fallback"

    /// An encoder from named tensors (see the type's documentation) and the item ids in row order.
    /// - Throws: ``ModelLoadError/weightsDoNotMatch(kind:reason:)`` naming the missing, misshapen or
    ///   non-finite tensor, or unordered ids.
    public init(tensors named: [ArborTree.NamedTensor], ids: [ItemID]) throws(ModelLoadError) {
        func fail(_ reason: String) -> ModelLoadError { .weightsDoNotMatch(kind: QueryProducerKind.sdm.rawValue, reason: reason) }
        var byName = [String: ArborTree.NamedTensor]()
        for t in named where t.name.hasPrefix(Self.tensorPrefix) { byName[t.name] = t }
        guard !ids.isEmpty else { throw fail("no item ids") }
        for i in 1 ..< ids.count where !(ids[i - 1] < ids[i]) { throw fail("item ids are not strictly increasing at row \(i)") }
        guard let options = byName[Self.optionsName] else { throw fail("tensor '\(Self.optionsName)' is missing") }
        guard options.shape == [9], options.values.count == 9 else {
            throw fail("tensor '\(Self.optionsName)' has shape \(options.shape), expected [9]")
        }
        let o = options.values
        guard let item = byName["sdm.item.table"], item.shape.count == 2, item.shape[0] == ids.count else {
            throw fail("tensor 'sdm.item.table' is missing or not \(ids.count) × d")
        }
        let d = item.shape[1]
        let fusionCode = Int(o[6])
        guard d >= 1, o[0] >= 1, d % Int(o[0]) == 0, o[1] >= 1, o[2] >= 1, o[3] >= 0, o[4] >= 1, o[5] >= 1,
              let fusion = SDMFusion(rawValue: fusionCode), o[8] > 0, o.allSatisfy(\.isFinite) else {
            throw fail("tensor '\(Self.optionsName)' holds out-of-range options \(o)")
        }
        var values = [String: [Float]]()
        var shapes = [String: [Int]]()
        var known: Set<String> = [Self.optionsName]
        func take(_ name: String, _ shape: [Int]) throws(ModelLoadError) {
            guard let t = byName[name] else { throw fail("tensor '\(name)' is missing") }
            guard t.shape == shape, t.values.count == shape.reduce(1, *) else {
                throw fail("tensor '\(name)' has shape \(t.shape), expected \(shape)")
            }
            if let bad = t.values.firstIndex(where: { !$0.isFinite }) { throw fail("tensor '\(name)' holds a non-finite value at \(bad)") }
            values[name] = t.values
            shapes[name] = shape
            known.insert(name)
        }
        try take("sdm.item.table", [ids.count, d])
        var categories: [Int32] = []
        var categoryCount = 0
        if let c = byName["sdm.category.table"] {
            categoryCount = c.shape.first ?? 0
            try take("sdm.category.table", [categoryCount, d])
            try take("sdm.item.category", [ids.count])
            categories = values["sdm.item.category"]!.map { Int32($0) }
            if let bad = categories.firstIndex(where: { $0 < -1 || Int($0) >= categoryCount }) {
                throw fail("tensor 'sdm.item.category' row \(bad) names category \(categories[bad]) of \(categoryCount)")
            }
        }
        let layers = Int(o[5])
        for l in 0 ..< layers {
            try take("sdm.lstm.\(l).wx", [d, 4 * d])
            try take("sdm.lstm.\(l).wh", [d, 4 * d])
            try take("sdm.lstm.\(l).bias", [4 * d])
        }
        for p in ["q", "k", "v", "o"] { try take("sdm.attention.\(p).weight", [d, d]) }
        try take("sdm.attention.o.bias", [d])
        try take("sdm.user.weight", [d, d])
        try take("sdm.user.bias", [d])
        if fusion.usesLongTerm {
            try take("sdm.long.weight", [(categoryCount > 0 ? 2 : 1) * d, d])
            try take("sdm.long.bias", [d])
        }
        if fusion == .gated {
            try take("sdm.gate.weight", [3 * d, d])
            try take("sdm.gate.bias", [d])
        }
        try take(Self.fallbackName, [d])
        for name in byName.keys.sorted() where !known.contains(name) { throw fail("unexpected tensor '\(name)'") }
        self.ids = ids
        var map = [ItemID: Int32](minimumCapacity: ids.count)
        for (i, id) in ids.enumerated() { map[id] = Int32(i) }
        rowOf = map
        dimension = d
        heads = Int(o[0])
        maxSession = Int(o[1])
        maxLong = Int(o[2])
        sessions = SDMSessionRule(maxGap: Double(o[3]), maxActions: Int(o[4]))
        lstmLayers = layers
        self.fusion = fusion
        cosine = o[7] != 0
        temperature = o[8]
        fallback = values[Self.fallbackName]!
        tensors = values
        self.shapes = shapes
        itemCategory = categories
        self.categoryCount = categoryCount
    }

    /// The encoder stored in an index with query producer ``QueryProducerKind/sdm``.
    /// - Throws: ``ModelLoadError`` naming the kind, tensor or extra at fault.
    public init(from reader: IndexReader) throws(ModelLoadError) {
        guard reader.queryProducer == .sdm else {
            throw .kindMismatch(field: "queryProducer", expected: QueryProducerKind.sdm.rawValue, found: reader.queryProducer.rawValue)
        }
        var named: [ArborTree.NamedTensor] = []
        do {
            for name in reader.tensorNames where name.hasPrefix(Self.tensorPrefix) { named.append(try reader.tensor(named: name)) }
            guard let bytes = try reader.extra(named: Self.itemIDsExtraName), bytes.count % 8 == 0 else {
                throw ModelLoadError.weightsDoNotMatch(kind: QueryProducerKind.sdm.rawValue, reason: "extra '\(Self.itemIDsExtraName)' is missing or malformed")
            }
            var ids = [ItemID]()
            ids.reserveCapacity(bytes.count / 8)
            for i in stride(from: 0, to: bytes.count, by: 8) {
                var v: UInt64 = 0
                for k in 0 ..< 8 { v |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
                ids.append(ItemID(v))
            }
            try self.init(tensors: named, ids: ids)
        } catch let e as ModelLoadError { throw e } catch let e as IndexError { throw .index(e) } catch {
            throw .weightsDoNotMatch(kind: QueryProducerKind.sdm.rawValue, reason: "\(error)")
        }
        guard dimension == reader.dimension else {
            throw .weightsDoNotMatch(kind: QueryProducerKind.sdm.rawValue,
                                     reason: "tensor 'sdm.item.table' has width \(dimension), the index \(reader.dimension)")
        }
    }

    /// Every tensor, for an index or a test (ids travel beside them, see ``itemIDBytes``).
    public func namedTensors() -> [ArborTree.NamedTensor] {
        let options: [Float] = [Float(heads), Float(maxSession), Float(maxLong), Float(sessions.maxGap), Float(sessions.maxActions),
                                Float(lstmLayers), Float(fusion.rawValue), cosine ? 1 : 0, temperature]
        var out = [ArborTree.NamedTensor(name: Self.optionsName, shape: [9], values: options)]
        for name in tensors.keys.sorted() { out.append(.init(name: name, shape: shapes[name]!, values: tensors[name]!)) }
        return out
    }

    /// The item ids as UInt64 little-endian bytes (the extra ``itemIDsExtraName``).
    public var itemIDBytes: [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(ids.count * 8)
        for id in ids { withUnsafeBytes(of: id.rawValue.littleEndian) { bytes.append(contentsOf: $0) } }
        return bytes
    }

    // MARK: - Encoding

    /// The short- and long-term item rows of a history, after dropping unknown ids, ordering by
    /// time and cutting sessions (see ``SDMSessionRule``). Both oldest first.
    /// - Throws: ``ArborError`` for timestamps of another count or non-finite ones.
    public func split(history: [ItemID], timestamps: [Double]?) throws(ArborError) -> (short: [Int], long: [Int], unknown: Int) {
        if let timestamps { try SDMSessionRule.validate(timestamps: timestamps, count: history.count) }
        let order = timestamps.map(SDMSessionRule.timeOrder) ?? Array(history.indices)
        var rows: [Int] = [], times: [Double] = []
        rows.reserveCapacity(history.count)
        var unknown = 0
        for i in order {
            guard let r = rowOf[history[i]] else { unknown += 1; continue }
            rows.append(Int(r))
            if let timestamps { times.append(timestamps[i]) }
        }
        let start = timestamps == nil ? 0 : sessions.latestSessionStart(times: times)
        let short = Array(rows[max(start, rows.count - maxSession)...])
        let long = fusion.usesLongTerm ? Array(rows[max(0, start - maxLong) ..< start]) : []
        return (short, long, unknown)
    }

    /// The query vector for `history` (oldest first) with optional `timestamps` (seconds, one per
    /// item). O(see the type).
    /// - Throws: ``ArborError`` for bad timestamps.
    public func encode(history: [ItemID], timestamps: [Double]? = nil) throws(ArborError) -> EncodedQuery {
        let (short, long, unknown) = try split(history: history, timestamps: timestamps)
        guard !short.isEmpty else { return EncodedQuery(vector: fallback, unknownItems: unknown, usedFallback: true) }
        return EncodedQuery(vector: encode(shortRows: short, longRows: long), unknownItems: unknown, usedFallback: false)
    }

    /// The query vector from item rows (short term non-empty, both oldest first): steps 2–5 of the
    /// type's documentation. Exposed for the training-vs-serving check.
    public func encode(shortRows: [Int], longRows: [Int]) -> [Float] {
        let d = dimension, e = tensors["sdm.item.table"]!
        let ls = shortRows.count, ll = longRows.count
        func gather(_ table: [Float], _ rows: [Int]) -> [Float] {
            var out = [Float](repeating: 0, count: rows.count * d)
            for (i, r) in rows.enumerated() where r >= 0 { for j in 0 ..< d { out[i * d + j] = table[r * d + j] } }
            return out
        }
        let es = gather(e, shortRows), el = gather(e, longRows)
        // User vector from the mean of every behaviour read.
        var mean = [Float](repeating: 0, count: d)
        for i in 0 ..< ls { for j in 0 ..< d { mean[j] += es[i * d + j] } }
        for i in 0 ..< ll { for j in 0 ..< d { mean[j] += el[i * d + j] } }
        let inv = 1 / Float(ls + ll)
        for j in 0 ..< d { mean[j] *= inv }
        var u = dense(mean, rows: 1, "sdm.user")
        for j in 0 ..< d { u[j] = tanhf(u[j]) }
        // Short term: LSTM stack, self-attention, user attention.
        var x = es
        for l in 0 ..< lstmLayers { x = lstm(x, steps: ls, layer: l) }
        let xh = selfAttention(x, steps: ls)
        let s = attend(u, xh, rows: ls)
        var o = s
        if fusion.usesLongTerm {
            var z = attend(u, el, rows: ll)
            if categoryCount > 0 {  // [z_item, z_cat]
                let cats = longRows.map { Int(itemCategory[$0]) }
                z.append(contentsOf: attend(u, gather(tensors["sdm.category.table"]!, cats), rows: ll))
            }
            var p = dense(z, rows: 1, "sdm.long")
            for j in 0 ..< d { p[j] = tanhf(p[j]) }
            if fusion == .longOnly {
                o = p
            } else if ll > 0 {
                let g = dense(u + s + p, rows: 1, "sdm.gate")  // [u, s, p]
                for j in 0 ..< d {
                    let gj = 1 / (1 + expf(-g[j]))
                    o[j] = (1 - gj) * p[j] + gj * s[j]
                }
            }
        }
        if cosine {
            var n: Float = 0
            for v in o { n += v * v }
            let invn = 1 / (n + 1e-12).squareRoot()
            for j in 0 ..< d { o[j] *= invn }
        }
        return o
    }

    /// `x · W + b` for `rows` rows of `x` with the tensors "<name>.weight" and "<name>.bias".
    private func dense(_ x: [Float], rows: Int, _ name: String) -> [Float] {
        dense(x, rows: rows, weight: name + ".weight", bias: name + ".bias")
    }

    /// `x · W + b` with the named weight and (when present) bias.
    private func dense(_ x: [Float], rows: Int, weight: String, bias: String) -> [Float] {
        let w = tensors[weight]!, b = tensors[bias] ?? []
        let k = x.count / max(1, rows), n = w.count / max(1, k)
        var out = [Float](repeating: 0, count: rows * n)
        if !b.isEmpty { for r in 0 ..< rows { for j in 0 ..< n { out[r * n + j] = b[j] } } }
        BLAS.gemm(m: rows, n: n, k: k, a: x, b: w, beta: b.isEmpty ? 0 : 1, c: &out)
        return out
    }

    /// One LSTM layer over `steps` real steps (no padding), zero initial state.
    private func lstm(_ x: [Float], steps: Int, layer l: Int) -> [Float] {
        let d = dimension, g4 = 4 * d
        let wh = tensors["sdm.lstm.\(l).wh"]!
        var act = dense(x, rows: steps, weight: "sdm.lstm.\(l).wx", bias: "sdm.lstm.\(l).bias")
        var h = [Float](repeating: 0, count: d), c = [Float](repeating: 0, count: d)
        var out = [Float](repeating: 0, count: steps * d)
        for t in 0 ..< steps {
            act.withUnsafeMutableBufferPointer { a in
                h.withUnsafeBufferPointer { hp in
                    wh.withUnsafeBufferPointer { wp in
                        BLAS.gemm(transposeA: false, transposeB: false, m: 1, n: g4, k: d, a: hp.baseAddress!, lda: d,
                                  b: wp.baseAddress!, ldb: g4, beta: 1, c: a.baseAddress! + t * g4, ldc: g4)
                    }
                }
            }
            let a = t * g4
            for j in 0 ..< d {
                let i = 1 / (1 + expf(-act[a + j])), f = 1 / (1 + expf(-act[a + d + j]))
                let g = tanhf(act[a + 2 * d + j]), o = 1 / (1 + expf(-act[a + 3 * d + j]))
                c[j] = f * c[j] + i * g
                h[j] = o * tanhf(c[j])
                out[t * d + j] = h[j]
            }
        }
        return out
    }

    /// Multi-head self-attention over `steps` rows (no padding).
    private func selfAttention(_ x: [Float], steps: Int) -> [Float] {
        let d = dimension, w = d / heads
        let q = dense(x, rows: steps, "sdm.attention.q"), k = dense(x, rows: steps, "sdm.attention.k")
        let v = dense(x, rows: steps, "sdm.attention.v")
        var joined = [Float](repeating: 0, count: steps * d)
        var scores = [Float](repeating: 0, count: steps)
        let scale = 1 / Float(w).squareRoot()
        for h in 0 ..< heads {
            let off = h * w
            for i in 0 ..< steps {
                var m = -Float.infinity
                for j in 0 ..< steps {
                    var s: Float = 0
                    for t in 0 ..< w { s += q[i * d + off + t] * k[j * d + off + t] }
                    scores[j] = s * scale
                    m = max(m, scores[j])
                }
                var sum: Float = 0
                for j in 0 ..< steps { scores[j] = expf(scores[j] - m); sum += scores[j] }
                for j in 0 ..< steps {
                    let a = scores[j] / sum
                    for t in 0 ..< w { joined[i * d + off + t] += a * v[j * d + off + t] }
                }
            }
        }
        return dense(joined, rows: steps, "sdm.attention.o")
    }

    /// `Σ softmax(keys · u) keys` over `rows` keys; zeros for no key.
    private func attend(_ u: [Float], _ keys: [Float], rows: Int) -> [Float] {
        let d = dimension
        var out = [Float](repeating: 0, count: d)
        guard rows > 0 else { return out }
        var scores = [Float](repeating: 0, count: rows)
        var m = -Float.infinity
        for r in 0 ..< rows {
            var s: Float = 0
            for j in 0 ..< d { s += keys[r * d + j] * u[j] }
            scores[r] = s
            m = max(m, s)
        }
        var sum: Float = 0
        for r in 0 ..< rows { scores[r] = expf(scores[r] - m); sum += scores[r] }
        for r in 0 ..< rows {
            let a = scores[r] / sum
            for j in 0 ..< d { out[j] += a * keys[r * d + j] }
        }
        return out
    }
}
