import ArborCore
import ArborEngine
import Foundation

/// The body of `POST /search`, as sent: exactly one of `history`, `vector` or `vectors`, with
/// optional `k`, `beam` (tree), `interestBeams` (tree, multi-interest indexes: `separate` or
/// `shared`), `ef` (HNSW), `retriever` (`tree`, `exact`, `hnsw`), `timestamps`
/// (one per history item) and `exclude` (ids never to return). Unknown fields are refused.
///
/// Numbers of vectors are read as `Double` and checked here, so a value outside Float's range
/// or a `"NaN"`/`"Infinity"` string is refused with its position named, not turned into infinity.
struct SearchRequest: Decodable, Equatable {
    var history: [UInt64]?
    var timestamps: [Double]?
    var vector: [Double]?
    var vectors: [[Double]]?
    var k: Int?
    var beam: Int?
    var interestBeams: String?
    var ef: Int?
    var retriever: String?
    var exclude: [UInt64]?

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case history, timestamps, vector, vectors, k, beam, interestBeams, ef, retriever, exclude
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// A request with no field set.
    init() {}

    init(from decoder: any Decoder) throws {
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        for key in try decoder.container(keyedBy: AnyKey.self).allKeys where !known.contains(key.stringValue) {
            throw RequestError(field: key.stringValue, "unknown field; expected \(CodingKeys.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // A number the decoder cannot represent (an integer beyond Int, a negative id) fails
        // without a coding path; name the field it was read for.
        func field<T: Decodable>(_ key: CodingKeys) throws -> T? {
            do {
                return try c.decodeIfPresent(T.self, forKey: key)
            } catch let error as DecodingError {
                let refusal = Self.describe(error)
                guard refusal.field == "body" else { throw refusal }
                throw RequestError(field: key.rawValue, "a value is malformed or out of range")
            }
        }
        history = try field(.history)
        timestamps = try field(.timestamps)
        vector = try field(.vector)
        vectors = try field(.vectors)
        k = try field(.k)
        beam = try field(.beam)
        interestBeams = try field(.interestBeams)
        ef = try field(.ef)
        retriever = try field(.retriever)
        exclude = try field(.exclude)
    }

    /// Decodes a body, turning every decoding failure into a ``RequestError`` naming the field
    /// (`body` when the text is not JSON or not an object). The usual shape is read by
    /// ``SearchRequestScanner``; everything else by `JSONDecoder` (``decodeWithFoundation(_:)``).
    static func decode(_ bytes: some Collection<UInt8>) throws(RequestError) -> SearchRequest {
        if let request = SearchRequestScanner.parse(bytes) { return request }
        return try decodeWithFoundation(bytes)
    }

    /// ``decode(_:)`` without the scanner: `JSONDecoder`, every failure named.
    static func decodeWithFoundation(_ bytes: some Collection<UInt8>) throws(RequestError) -> SearchRequest {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        do {
            return try decoder.decode(SearchRequest.self, from: Data(bytes))
        } catch let error as RequestError {
            throw error
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty,
               let field = Self.unrepresentableField(bytes) {
                throw RequestError(field: field, "a number is out of range or not an integer where one is expected")
            }
            throw Self.describe(error)
        } catch {
            throw RequestError(field: "body", "not a JSON object: \(error)")
        }
    }

    /// For valid JSON whose numbers the decoder refused without a path (an integer beyond `Int`,
    /// a negative id): the first integer field holding such a number.
    private static func unrepresentableField(_ bytes: some Collection<UInt8>) -> String? {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else { return nil }
        func fits(_ value: Any, min: Double, max: Double) -> Bool {
            guard let n = value as? NSNumber else { return true }  // a type error is reported by the decoder
            let d = n.doubleValue
            return d.rounded() == d && d >= min && d <= max
        }
        for key in ["k", "beam", "ef"] {
            if let v = object[key], !fits(v, min: Double(Int.min), max: Double(Int.max)) { return key }
        }
        for key in ["history", "exclude"] {
            if let list = object[key] as? [Any], !list.allSatisfy({ fits($0, min: 0, max: Double(UInt64.max)) }) { return key }
        }
        return nil
    }

    private static func path(_ codingPath: [any CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let i = key.intValue { text += "[\(i)]" } else { text += text.isEmpty ? key.stringValue : ".\(key.stringValue)" }
        }
        return text.isEmpty ? "body" : text
    }

    private static func describe(_ error: DecodingError) -> RequestError {
        switch error {
        case let .typeMismatch(type, context):
            return RequestError(field: path(context.codingPath), "expected \(name(of: type))")
        case let .valueNotFound(type, context):
            return RequestError(field: path(context.codingPath), "expected \(name(of: type)), found null")
        case let .keyNotFound(key, context):
            return RequestError(field: path(context.codingPath + [key]), "missing")
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty { return RequestError(field: "body", "not valid JSON") }
            return RequestError(field: path(context.codingPath), "out of range or malformed: \(context.debugDescription)")
        @unknown default:
            return RequestError(field: "body", "not a valid request")
        }
    }

    private static func name(of type: Any.Type) -> String {
        switch type {
        case is UInt64.Type, is [UInt64].Type: "a non-negative integer id"
        case is Int.Type: "an integer"
        case is Double.Type: "a number"
        case is String.Type: "a string"
        case is [Double].Type: "an array of numbers"
        case is [[Double]].Type: "an array of arrays of numbers"
        default: "\(type)"
        }
    }
}

/// A request checked against the limits and the index it will run on: nothing in it can make
/// the search fail on its shape or allocate beyond the limits.
struct SearchPlan: Sendable, Equatable {
    enum Input: Sendable, Equatable {
        case history([ItemID], timestamps: [Double]?)
        case vector([Float])
        case vectors([[Float]])
    }
    var input: Input
    var k: Int
    var choice: RetrieverChoice
    var excluded: Set<ItemID>

    /// `interestBeams` of a tree request: absent = a beam per interest.
    private static func interestBeams(_ name: String?) throws(RequestError) -> InterestBeams {
        guard let name else { return .separate }
        guard let mode = InterestBeams(rawValue: name) else {
            throw RequestError(field: "interestBeams", "unknown mode '\(name)'; expected separate or shared")
        }
        return mode
    }

    /// Checks `request` field by field in a fixed order (input, k, retriever and knob, sizes,
    /// values), against `limits` and the index's `dimension`.
    /// - Throws: ``RequestError`` naming the first bad field.
    init(_ request: SearchRequest, limits: ServeConfiguration, dimension: Int) throws(RequestError) {
        let given = [request.history != nil, request.vector != nil, request.vectors != nil].filter { $0 }.count
        guard given == 1 else {
            throw RequestError(field: "history|vector|vectors",
                               given == 0 ? "missing: give exactly one of history, vector, vectors" : "give exactly one of history, vector, vectors")
        }
        k = request.k ?? 10
        guard k >= 1 else { throw RequestError(field: "k", "must be at least 1, got \(k)") }
        guard k <= limits.maxK else { throw RequestError(field: "k", "must be at most \(limits.maxK), got \(k)") }

        switch request.retriever ?? "tree" {
        case "tree":
            guard request.ef == nil else { throw RequestError(field: "ef", "applies to the hnsw retriever only") }
            let beam = request.beam ?? 100
            guard (1...limits.maxBeam).contains(beam) else {
                throw RequestError(field: "beam", "must be in 1...\(limits.maxBeam), got \(beam)")
            }
            let interests = try Self.interestBeams(request.interestBeams)
            choice = .tree(beam: beam, interests: interests)
        case "exact":
            guard request.beam == nil else { throw RequestError(field: "beam", "applies to the tree retriever only") }
            guard request.interestBeams == nil else { throw RequestError(field: "interestBeams", "applies to the tree retriever only") }
            guard request.ef == nil else { throw RequestError(field: "ef", "applies to the hnsw retriever only") }
            choice = .exact
        case "hnsw":
            guard request.beam == nil else { throw RequestError(field: "beam", "applies to the tree retriever only") }
            guard request.interestBeams == nil else { throw RequestError(field: "interestBeams", "applies to the tree retriever only") }
            let ef = request.ef ?? 200
            guard (1...limits.maxEf).contains(ef) else {
                throw RequestError(field: "ef", "must be in 1...\(limits.maxEf), got \(ef)")
            }
            choice = .hnsw(efSearch: ef)
        case let other:
            throw RequestError(field: "retriever", "unknown retriever '\(other)'; expected tree, exact or hnsw")
        }

        let exclude = request.exclude ?? []
        guard exclude.count <= limits.maxHistory else {
            throw RequestError(field: "exclude", "at most \(limits.maxHistory) ids, got \(exclude.count)")
        }
        excluded = Set(exclude.map(ItemID.init(rawValue:)))

        if let history = request.history {
            guard !history.isEmpty else { throw RequestError(field: "history", "must hold at least one item id") }
            guard history.count <= limits.maxHistory else {
                throw RequestError(field: "history", "at most \(limits.maxHistory) items, got \(history.count)")
            }
            if let t = request.timestamps {
                guard t.count == history.count else {
                    throw RequestError(field: "timestamps", "expected \(history.count) values (one per history item), found \(t.count)")
                }
                if let bad = t.firstIndex(where: { !$0.isFinite }) {
                    throw RequestError(field: "timestamps[\(bad)]", "not a finite number")
                }
            }
            input = .history(history.map(ItemID.init(rawValue:)), timestamps: request.timestamps)
        } else {
            guard request.timestamps == nil else { throw RequestError(field: "timestamps", "apply to a history only") }
            if let v = request.vector {
                input = .vector(try Self.floats(v, field: "vector", dimension: dimension))
            } else {
                let rows = request.vectors ?? []
                guard !rows.isEmpty else { throw RequestError(field: "vectors", "must hold at least one vector") }
                guard rows.count <= limits.maxBatch else {
                    throw RequestError(field: "vectors", "at most \(limits.maxBatch) vectors, got \(rows.count)")
                }
                var converted: [[Float]] = []
                converted.reserveCapacity(rows.count)
                for (i, row) in rows.enumerated() {
                    converted.append(try Self.floats(row, field: "vectors[\(i)]", dimension: dimension))
                }
                input = .vectors(converted)
            }
        }
    }

    /// `values` as Float32, after checking the length and that every value is a finite Float32.
    private static func floats(_ values: [Double], field: String, dimension: Int) throws(RequestError) -> [Float] {
        guard values.count == dimension else {
            throw RequestError(field: field, "expected \(dimension) values (the index's dimension), found \(values.count)")
        }
        var out = [Float]()
        out.reserveCapacity(values.count)
        for (j, x) in values.enumerated() {
            let f = Float(x)
            guard x.isFinite, f.isFinite else {
                throw RequestError(field: "\(field)[\(j)]", "\(x) is not a finite 32-bit float")
            }
            out.append(f)
        }
        return out
    }
}
