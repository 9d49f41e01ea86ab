import ArborCore

/// What `arbor serve` listens on, which index it serves, and the limits every request is held to.
///
/// Limits are checked before any search work or allocation sized by the request: a body longer
/// than ``maxBodyBytes`` is refused while it is read, `k`, the beam, `ef`, the batch and the history
/// length are rejected (HTTP 400, the field named) when above their limit.
public struct ServeConfiguration: Sendable, Equatable {
    /// The index file; replaced files (atomic rename) and SIGHUP reload it.
    public var indexPath: String
    /// The address to bind (`127.0.0.1` by default; `0.0.0.0` for every interface).
    public var host: String = "127.0.0.1"
    /// The TCP port (0 asks the system for a free one).
    public var port: Int = 8080
    /// Largest request body accepted, in bytes.
    public var maxBodyBytes: Int = 1 << 20
    /// Largest `k` a request may ask for.
    public var maxK: Int = 1000
    /// Largest tree beam a request may ask for (the engine also clamps it to the widest level).
    public var maxBeam: Int = 100_000
    /// Largest HNSW `ef` a request may ask for (the engine also clamps it to the item count).
    public var maxEf: Int = 100_000
    /// Most query vectors in one `vectors` request.
    public var maxBatch: Int = 256
    /// Most items in one `history`.
    public var maxHistory: Int = 10_000
    /// How often the index file is checked for replacement, in milliseconds (0: only on SIGHUP).
    public var reloadPollMilliseconds: Int = 1000

    /// A configuration serving `indexPath` with the default limits.
    public init(indexPath: String) { self.indexPath = indexPath }

    /// Checks every field's range.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` naming the first bad field.
    public func validated() throws(ArborError) -> ServeConfiguration {
        func positive(_ value: Int, _ name: String) throws(ArborError) {
            guard value >= 1 else { throw .invalidArgument(name: name, reason: "must be at least 1, got \(value)") }
        }
        guard (0...65_535).contains(port) else {
            throw .invalidArgument(name: "port", reason: "must be in 0...65535, got \(port)")
        }
        guard !host.isEmpty else { throw .invalidArgument(name: "host", reason: "must not be empty") }
        try positive(maxBodyBytes, "max-body-bytes")
        try positive(maxK, "max-k")
        try positive(maxBeam, "max-beam")
        try positive(maxEf, "max-ef")
        try positive(maxBatch, "max-batch")
        try positive(maxHistory, "max-history")
        guard reloadPollMilliseconds >= 0 else {
            throw .invalidArgument(name: "reload-poll-ms", reason: "must be 0 (off) or more, got \(reloadPollMilliseconds)")
        }
        return self
    }
}
