import ArborCore
import ArborEngine
import Foundation

/// The answer to one request: an HTTP status and a JSON (or text) body.
public struct Reply: Sendable, Equatable {
    /// The HTTP status code.
    public var status: Int
    /// The body bytes (UTF-8).
    public var body: [UInt8]

    static func json(_ status: Int, _ text: String) -> Reply { Reply(status: status, body: Array(text.utf8)) }

    static func refusal(_ error: RequestError) -> Reply {
        struct Body: Encodable { var error: String; var field: String }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let bytes = (try? encoder.encode(Body(error: error.message, field: error.field))).map { Array($0) }
            ?? Array(#"{"error":"bad request","field":"body"}"#.utf8)
        return Reply(status: 400, body: bytes)
    }

    static func failure(_ message: String) -> Reply {
        struct Body: Encodable { var error: String }
        let bytes = (try? JSONEncoder().encode(Body(error: message))).map { Array($0) } ?? Array(#"{"error":"internal error"}"#.utf8)
        return Reply(status: 500, body: bytes)
    }
}

/// Answers `POST /search` bodies against a ``ServedIndex``: decode, check, search, encode.
/// Independent of HTTP, so it is tested and measured without a server.
///
/// Responses:
/// - `history`: `{"generation":g,"ids":[…],"scores":[…],"unknown_history_items":[…]}`;
/// - `vector`: `{"generation":g,"ids":[…],"scores":[…]}`;
/// - `vectors`: `{"generation":g,"results":[{"ids":[…],"scores":[…]},…]}`;
/// best first, ties by smaller id; `generation` is the index version that answered.
/// A refused request gets 400 and `{"error":message,"field":name}`; a failure of the index
/// itself 500 and `{"error":message}`.
///
/// Thread-safety: safe from many threads at once; each call searches one snapshot of the index.
public struct SearchHandler: Sendable {
    /// The index searched.
    public let index: ServedIndex
    /// The limits applied.
    public let limits: ServeConfiguration

    /// A handler over `index` with `limits`.
    public init(index: ServedIndex, limits: ServeConfiguration) {
        self.index = index
        self.limits = limits
    }

    /// The reply to one body. The body length must already be within ``ServeConfiguration/maxBodyBytes``.
    public func reply(to body: some Collection<UInt8>) -> Reply {
        let snapshot = index.snapshot  // the whole request runs on this version
        let engine = snapshot.engine
        do throws(RequestError) {
            let request = try SearchRequest.decode(body)
            let plan = try SearchPlan(request, limits: limits, dimension: engine.dimension)
            return try run(plan, on: engine, generation: snapshot.generation)
        } catch {
            return .refusal(error)
        }
    }

    private func run(_ plan: SearchPlan, on engine: Engine, generation: Int) throws(RequestError) -> Reply {
        do {
            switch plan.input {
            case let .history(history, timestamps):
                let result = try engine.search(history: history, timestamps: timestamps, k: plan.k, using: plan.choice,
                                               excluding: plan.excluded)
                var text = "{\"generation\":\(generation),"
                Self.append(result.items, to: &text)
                text += ",\"unknown_history_items\":["
                text += result.unknownHistoryItems.map { String($0.rawValue) }.joined(separator: ",")
                text += "]}"
                return .json(200, text)
            case let .vector(vector):
                let result = try engine.search(vector: vector, k: plan.k, using: plan.choice, excluding: plan.excluded)
                var text = "{\"generation\":\(generation),"
                Self.append(result.items, to: &text)
                text += "}"
                return .json(200, text)
            case let .vectors(vectors):
                let results = try engine.search(vectors: vectors, k: plan.k, using: plan.choice, excluding: plan.excluded)
                var text = "{\"generation\":\(generation),\"results\":["
                for (i, result) in results.enumerated() {
                    text += i == 0 ? "{" : ",{"
                    Self.append(result.items, to: &text)
                    text += "}"
                }
                text += "]}"
                return .json(200, text)
            }
        } catch let error as ArborError {
            throw Self.refusal(for: error)
        } catch {
            return .failure("search failed: \(error)")
        }
    }

    /// `"ids":[…],"scores":[…]` (a non-finite score, which no built-in scorer gives, as null).
    private static func append(_ items: [ScoredItem], to text: inout String) {
        text += "\"ids\":["
        for (i, hit) in items.enumerated() {
            if i > 0 { text += "," }
            text += String(hit.item.rawValue)
        }
        text += "],\"scores\":["
        for (i, hit) in items.enumerated() {
            if i > 0 { text += "," }
            text += hit.score.isFinite ? hit.score.description : "null"
        }
        text += "]"
    }

    /// The request field an engine error is about.
    private static func refusal(for error: ArborError) -> RequestError {
        switch error {
        case let .dimensionMismatch(field, expected, found):
            return RequestError(field: field, "expected \(expected) values, found \(found)")
        case let .nonFiniteValue(field, row):
            return RequestError(field: field, "row \(row) holds NaN or an infinite value")
        case let .invalidArgument(name, reason):
            return RequestError(field: name == "hnsw" ? "retriever" : name, reason)
        case let .unknownItem(id):
            return RequestError(field: "history", "unknown item id \(id)")
        case .duplicateItem, .empty:
            return RequestError(field: "body", error.description)
        }
    }
}
