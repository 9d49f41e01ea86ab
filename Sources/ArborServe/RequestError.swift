/// A request the service refuses: HTTP 400 with a JSON body `{"error": message, "field": field}`.
public struct RequestError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The request field at fault (`body` for the body as a whole, `k`, `vector[3]`, ...).
    public var field: String
    /// What was wrong, for the client.
    public var message: String

    /// A refusal naming `field`.
    public init(field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    /// `field: message`.
    public var description: String { "\(field): \(message)" }
}
