// HNSW build knobs (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search
// using Hierarchical Navigable Small World graphs", 2016/2018). Query-time knobs live in
// `SearchParameters` (ArborCore), as in faiss.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The similarity an ``HNSWIndex`` ranks by. Higher similarity = better; the graph's internal
/// distance is always `-(stored item · stored query)`, so every metric runs on one dot-product kernel.
public enum HNSWMetric: String, Sendable, Equatable, CaseIterable, Codable {
    /// Raw inner product `q · x` on the vectors as given: the graph is built and searched with
    /// `-(x · y)` as its "distance" (hnswlib's `"ip"` space). Fast, but inner product is not a metric
    /// (an item need not be its own nearest neighbour), so on clustered data with uneven norms recall
    /// can level off below the exact scan's; measure it against ``normAugmentedInnerProduct``.
    case innerProduct
    /// Inner product reduced to cosine (maximum inner product search → nearest neighbour search,
    /// Bachrach et al., RecSys 2014): every item `x` is stored as `[x, sqrt(B² − ‖x‖²)] / B`, a unit
    /// vector of dimension `d + 1`, where `B` is the norm bound (the largest item norm of the first
    /// batch, or ``HNSWConfiguration/normBound``); a query `q` is searched as `[q, 0]`. Then
    /// `q_aug · x_aug = (q · x) / B`, so the graph (built over unit vectors, a proper metric space) ranks
    /// by the raw inner product. Returned scores are `q · x` (recovered by multiplying by `B`).
    /// Items added later with a norm above `B` are rejected.
    case normAugmentedInnerProduct
    /// Cosine similarity: items and queries are L2-normalised; scores are cosines in `[-1, 1]`.
    /// Zero vectors are rejected (their cosine is undefined).
    case cosine
}

/// How a node's neighbour list is chosen from its candidates (at insertion and when a full list is
/// pruned).
public enum HNSWNeighbourSelection: String, Sendable, Equatable, CaseIterable, Codable {
    /// The `M` closest candidates (the paper's Algorithm 3).
    case simple
    /// The paper's Algorithm 4 (hnswlib's `getNeighborsByHeuristic2`): walk candidates closest first and
    /// keep one only if it is closer to the base element than to every neighbour already kept. Keeps
    /// diverse neighbours, so the graph stays connected across clusters. The default.
    case heuristic
    /// Algorithm 4 with `keepPrunedConnections`: fill the list up to capacity with the closest
    /// discarded candidates.
    case heuristicKeepingPruned
}

/// Which dot-product kernel computes distances. Chosen once when the index is created.
public enum HNSWDistanceKernel: String, Sendable, Equatable, CaseIterable, Codable {
    /// Measure both kernels once per process for the index's stored dimension (a few thousand dot
    /// products, well under a millisecond in release builds) and take the faster. The result is cached
    /// per dimension, so all indexes of one process and dimension use the same kernel.
    case automatic
    /// Hand-written unrolled `SIMD8<Float>` loop with four accumulators (32 floats per iteration).
    case simd
    /// OpenBLAS `cblas_sdot`.
    case blas
}

/// Build-time knobs of an ``HNSWIndex`` (faiss keeps them apart from search-time knobs the same way).
///
/// Defaults follow hnswlib: `M = 16`, `efConstruction = 200`, the diversity heuristic, seed 100.
public struct HNSWConfiguration: Sendable, Equatable, Codable {
    /// What "similar" means. See ``HNSWMetric``.
    public var metric: HNSWMetric
    /// Neighbours kept per node on layers ≥ 1 (`M`); layer 0 keeps ``maxNeighboursLayer0`` = `2M`.
    /// As in hnswlib, a new node chooses `M` neighbours on every layer; its layer-0 list then fills up
    /// to `2M` through links from later nodes, and any full list is pruned with ``neighbourSelection``.
    /// Must be in `2 ... 4096`. Memory per node ≈ `4 · 2M` bytes plus `4 · M` per upper layer.
    public var m: Int
    /// Size of the candidate list while inserting (`efConstruction`). Larger = better graph, slower
    /// build. Values below `M` are raised to `M`.
    public var efConstruction: Int
    /// Neighbour selection rule. See ``HNSWNeighbourSelection``.
    public var neighbourSelection: HNSWNeighbourSelection
    /// Seed of the level generator. Builds with one thread are deterministic for a given seed,
    /// kernel and insertion order.
    public var seed: UInt64
    /// Threads used by ``HNSWIndex/add(_:ids:progress:cancellation:)``. 1 = sequential and
    /// deterministic; more threads insert concurrently with per-node (striped) locks on neighbour lists
    /// and give a different but equally good graph. The threads run through `BLAS.concurrentPerform`,
    /// so their BLAS calls are single-threaded whatever `BLAS.threads` is.
    public var buildThreads: Int
    /// For ``HNSWMetric/normAugmentedInnerProduct`` only: the norm bound `B`. `nil` = the largest norm
    /// of the first non-empty batch added. Items with a larger norm are rejected later, so set it when
    /// items will be added incrementally.
    public var normBound: Float?
    /// The dot-product kernel. See ``HNSWDistanceKernel``.
    public var kernel: HNSWDistanceKernel

    /// Creates a configuration; every argument has hnswlib's default.
    public init(
        metric: HNSWMetric = .innerProduct, m: Int = 16, efConstruction: Int = 200,
        neighbourSelection: HNSWNeighbourSelection = .heuristic, seed: UInt64 = 100,
        buildThreads: Int = 1, normBound: Float? = nil, kernel: HNSWDistanceKernel = .automatic
    ) {
        self.metric = metric
        self.m = m
        self.efConstruction = efConstruction
        self.neighbourSelection = neighbourSelection
        self.seed = seed
        self.buildThreads = buildThreads
        self.normBound = normBound
        self.kernel = kernel
    }

    /// Neighbour capacity on layer 0: `2M` (the paper's `M_max0`).
    public var maxNeighboursLayer0: Int { 2 * m }

    /// The level multiplier `mL = 1 / ln(M)`: a node's top level is `floor(-ln(U) · mL)`, `U ~ U(0, 1]`.
    public var levelMultiplier: Double { 1.0 / log(Double(m)) }

    /// Checks the ranges documented on each field.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` naming the first field out of range.
    public func validated() throws(ArborError) -> HNSWConfiguration {
        guard (2...4096).contains(m) else {
            throw .invalidArgument(name: "M", reason: "must be in 2...4096, got \(m)")
        }
        guard efConstruction >= 1 else {
            throw .invalidArgument(name: "efConstruction", reason: "must be at least 1, got \(efConstruction)")
        }
        guard buildThreads >= 1 else {
            throw .invalidArgument(name: "buildThreads", reason: "must be at least 1, got \(buildThreads)")
        }
        if let normBound {
            guard normBound.isFinite, normBound > 0 else {
                throw .invalidArgument(name: "normBound", reason: "must be finite and positive, got \(normBound)")
            }
        }
        return self
    }
}
