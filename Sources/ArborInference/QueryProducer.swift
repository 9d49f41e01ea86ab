import ArborCore
import ArborTree

/// The queries a producer made for one user, with what it had to leave out.
public struct ProducedQueries: Sendable {
    /// One query for single-vector producers (mean pooling, two-tower, raw history); several for
    /// multi-interest producers, each retrieving on its own before the results are merged.
    public var queries: [Query]
    /// True when no known behaviour remained and the producer's fallback query was used.
    public var usedFallback: Bool

    /// Queries and whether the fallback was used.
    public init(queries: [Query], usedFallback: Bool) {
        self.queries = queries
        self.usedFallback = usedFallback
    }
}

/// What turns a user's behaviour list into the query (or queries) an index is searched with.
///
/// Each ``QueryProducerKind`` has one conforming type and one loader (``ServingModel``). A
/// producer is immutable and safe to share between threads.
public protocol QueryProducer: Sendable {
    /// The kind recorded in the index header.
    var kind: QueryProducerKind { get }
    /// The ids of `history` the producer has no representation for, in history order. O(history).
    /// - Throws: when the producer reads the index and the read fails.
    func unknownItems(in history: [ItemID]) throws -> [ItemID]
    /// The queries for `history` (item ids, oldest first). Unknown ids are skipped (the caller
    /// decides about rejecting them with ``unknownItems(in:)``); a history with no known id gives
    /// the producer's fallback, flagged in ``ProducedQueries/usedFallback``. `excluded` is carried
    /// by every query.
    /// - Throws: ``ArborError`` or the producer's typed error when the stored model cannot encode.
    func queries(history: [ItemID], excluded: Set<ItemID>) throws -> ProducedQueries
    /// The queries for `history` with one timestamp (seconds) per item, or `nil` when the caller has
    /// none. Producers that do not read time (every kind but ``QueryProducerKind/sdm``) check the
    /// count and ignore the values.
    /// - Throws: ``ArborError/dimensionMismatch(field:expected:found:)`` for a timestamp count other
    ///   than the history's; as ``queries(history:excluded:)``.
    func queries(history: [ItemID], timestamps: [Double]?, excluded: Set<ItemID>) throws -> ProducedQueries
}

extension QueryProducer {
    /// Checks the timestamps' count, then ``queries(history:excluded:)``.
    public func queries(history: [ItemID], timestamps: [Double]?, excluded: Set<ItemID>) throws -> ProducedQueries {
        if let timestamps { try SDMSessionRule.validate(timestamps: timestamps, count: history.count) }
        return try queries(history: history, excluded: excluded)
    }
}

extension SDMEncoder: QueryProducer {
    /// ``QueryProducerKind/sdm``.
    public var kind: QueryProducerKind { .sdm }

    /// The history's ids outside the catalogue. O(history).
    public func unknownItems(in history: [ItemID]) -> [ItemID] { history.filter { row(of: $0) == nil } }

    /// One query without timestamps: the whole history is one session (no long term).
    public func queries(history: [ItemID], excluded: Set<ItemID>) throws -> ProducedQueries {
        try queries(history: history, timestamps: nil, excluded: excluded)
    }

    /// One query: sessions cut by ``SDMSessionRule``, short and long term fused (see ``SDMEncoder``).
    public func queries(history: [ItemID], timestamps: [Double]?, excluded: Set<ItemID>) throws -> ProducedQueries {
        let encoded = try encode(history: history, timestamps: timestamps)
        return ProducedQueries(queries: [Query(vector: encoded.vector, history: history, excluded: excluded)],
                               usedFallback: encoded.usedFallback)
    }
}

extension MeanPoolingEncoder: QueryProducer {
    /// ``QueryProducerKind/behaviourMeanPooling``: the trained behaviour table of a TDM model.
    public var kind: QueryProducerKind { .behaviourMeanPooling }

    /// The history's unknown ids. O(history).
    public func unknownItems(in history: [ItemID]) -> [ItemID] { history.filter { !knows($0) } }

    /// One query: the mean of the last `maxHistory` known behaviours.
    public func queries(history: [ItemID], excluded: Set<ItemID>) throws -> ProducedQueries {
        let encoded = try encode(history: history, unknown: .ignore)
        return ProducedQueries(queries: [Query(vector: encoded.vector, history: history, excluded: excluded)],
                               usedFallback: encoded.usedFallback)
    }
}

extension TwoTowerEncoder: QueryProducer {
    /// ``QueryProducerKind/twoTower``.
    public var kind: QueryProducerKind { .twoTower }

    /// The history's ids outside the catalogue. O(history).
    public func unknownItems(in history: [ItemID]) -> [ItemID] { history.filter { row(of: $0) == nil } }

    /// One query: the user tower over the mean of the recent behaviours.
    public func queries(history: [ItemID], excluded: Set<ItemID>) throws -> ProducedQueries {
        let encoded = try encode(history: history, unknown: .ignore)
        return ProducedQueries(queries: [Query(vector: encoded.vector, history: history, excluded: excluded)],
                               usedFallback: encoded.usedFallback)
    }
}

/// The behaviour list itself as the query, for scorers that read the sequence (attention).
public struct RawHistoryProducer: QueryProducer {
    /// The scorer that reads the history (it knows which ids it has embeddings for).
    public let scorer: AttentionScorer

    /// A producer for `scorer`.
    public init(scorer: AttentionScorer) { self.scorer = scorer }

    /// ``QueryProducerKind/rawHistory``.
    public var kind: QueryProducerKind { .rawHistory }

    /// The ids the scorer has no behaviour embedding for. O(history).
    public func unknownItems(in history: [ItemID]) -> [ItemID] { history.filter { !scorer.knows($0) } }

    /// One query carrying the history; the scorer pools it per node (no known id: the node term
    /// alone ranks, the fallback).
    public func queries(history: [ItemID], excluded: Set<ItemID>) throws -> ProducedQueries {
        ProducedQueries(queries: [Query(history: history, excluded: excluded)],
                        usedFallback: !history.contains(where: scorer.knows))
    }
}
