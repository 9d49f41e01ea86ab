import ArborCore

/// Which retriever answers a call, with its knob. Knobs are clamped before any work: the beam to
/// the widest tree level, `efSearch` to the graph's node count, `k` to the item count.
public enum RetrieverChoice: Sendable, Equatable, CustomStringConvertible {
    /// Beam search down the tree, keeping `beam` nodes a level (raised to `k` when smaller). A
    /// multi-interest user runs a beam per interest (``InterestBeams/separate``) or one beam shared
    /// by all interests (``InterestBeams/shared``); single-vector queries ignore `interests`.
    case tree(beam: Int = 100, interests: InterestBeams = .separate)
    /// Every item scored with the index's own model: the exact inner-product scan (blocked GEMM)
    /// for inner-product indexes, brute force with the deep scorer otherwise.
    case exact
    /// The HNSW graph stored beside the tree (`arbor build --hnsw`), candidate list `efSearch`;
    /// inner-product indexes only.
    case hnsw(efSearch: Int = 200)

    /// `tree (beam 100)`, `tree (shared beam 100)`, `exact`, `hnsw (ef 200)`.
    public var description: String {
        switch self {
        case .tree(let beam, .separate): "tree (beam \(beam))"
        case .tree(let beam, .shared): "tree (shared beam \(beam))"
        case .exact: "exact"
        case .hnsw(let ef): "hnsw (ef \(ef))"
        }
    }

    /// The search knobs of this choice for `k` items.
    func parameters(k: Int) -> SearchParameters {
        switch self {
        case .tree(let beam, let interests): SearchParameters(k: k, beamWidth: beam, interestBeams: interests)
        case .exact: SearchParameters(k: k)
        case .hnsw(let ef): SearchParameters(k: k, efSearch: ef)
        }
    }
}

/// What a search for one user returns: the ranked items and what the query producer left out.
public struct EngineResult: Sendable, Equatable {
    /// At most `k` items, best first, ties broken by smaller item id.
    public var items: [ScoredItem]
    /// The history ids the stored model does not know (ignored), in history order.
    public var unknownHistoryItems: [ItemID]
    /// True when no history id was known and the producer's fallback query was used.
    public var usedFallbackQuery: Bool
    /// What the search cost (summed over the queries of a multi-interest producer).
    public var statistics: SearchStatistics
    /// With `perInterest: true`, each query's own list before the merge (one per interest of a
    /// multi-interest producer, in interest order; one for single-vector producers), to explain
    /// which interest brought an item. Empty otherwise.
    public var interests: [SearchResult] = []
}
