import ArborCore
import ArborInference

/// A retriever for behaviour-list queries served by a multi-interest producer (MIND): the
/// query's history becomes one query per interest, the base retriever answers them as one batch
/// (``Retriever/search(interests:parameters:)``: the tree runs them level-synchronously or in one
/// shared beam, per ``SearchParameters/interestBeams``; the flat scan in one GEMM) and the results are merged
/// by best score per item, de-duplicated and cut to k (``ResultMerge/bestScorePerItem(_:k:)``).
///
/// Lets the benchmark runner compare a multi-interest model with single-vector ones on the same
/// queries. The query's `vector` is ignored; its `excluded` set is carried by every interest.
/// Thread-safe when the base retriever is. Cost: the producer's encoding plus the base's batch.
public struct MultiInterestRetriever<Base: Retriever>: Retriever {
    /// Name in reports.
    public let name: String
    /// Turns a history into the interest queries.
    public let producer: any QueryProducer
    /// Answers each interest.
    public let base: Base

    /// A retriever over `base` fed by `producer`.
    public init(name: String, producer: any QueryProducer, base: Base) {
        self.name = name
        self.producer = producer
        self.base = base
    }

    /// Items of the base retriever.
    public var itemCount: Int { base.itemCount }

    /// The merged top `k` of the interests of `query.history`.
    public func search(_ query: Query, parameters: SearchParameters) throws -> SearchResult {
        let produced = try producer.queries(history: query.history, excluded: query.excluded)
        return try base.search(interests: produced.queries, parameters: parameters)
    }
}
