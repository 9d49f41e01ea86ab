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

/// Which dot-product kernel computes distances. Resolved once when the index is created; the kernel
/// actually used is ``HNSWIndex/resolvedKernel`` and is stored with the graph
/// (``HNSWIndex/buildKernel``).
///
/// Reproducibility: `.avx2` and `.avx512` sum in one order (64 fused multiply-add lanes, one fixed
/// reduction tree) and return bit-identical scores, so any x86-64 CPU with AVX2 and FMA builds the
/// same graph and returns the same scores under `.automatic`. `.portable` (no fused multiply-add)
/// and `.blas` (OpenBLAS picks its own code per CPU) can differ from them in the last bits; ids and
/// order agree except between near-ties.
public enum HNSWDistanceKernel: String, Sendable, Equatable, CaseIterable, Codable {
    /// The best kernel the CPU supports (AVX-512F, else AVX2 + FMA, else portable), decided by CPU
    /// features only, never by timing: the same on every run on a given CPU. The default.
    case automatic
    /// Plain C, vectorised for the baseline instruction set; runs on any CPU.
    case portable
    /// AVX2 + FMA intrinsics. Rejected (``ArborError/invalidArgument(name:reason:)`` named
    /// `"kernel"`) on a CPU without them.
    case avx2
    /// AVX-512F intrinsics. Rejected like ``avx2`` on a CPU without AVX-512F.
    case avx512
    /// OpenBLAS `cblas_sdot` (its code path depends on the CPU OpenBLAS detects).
    case blas
    /// Times every kernel the CPU supports once per process and dimension (a few thousand dot
    /// products) and takes the fastest. The choice depends on load and CPU, so two runs may pick
    /// different kernels and differ in the last bits: ask for it explicitly, never by default.
    case measured

    /// Reads a stored name. `"simd"` (the Swift SIMD loop of graphs stored before the C kernels) reads
    /// as ``portable``; a name this build does not know (written by a newer one) reads as ``automatic``.
    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        self = name == "simd" ? .portable : HNSWDistanceKernel(rawValue: name) ?? .automatic
    }
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
    /// build. Values below `M` are raised to `M`; values above the node count are lowered to it
    /// before anything is allocated (the graph is the same: a list that large already holds every
    /// reachable node), so `Int.max` is accepted.
    public var efConstruction: Int
    /// Neighbour selection rule. See ``HNSWNeighbourSelection``.
    public var neighbourSelection: HNSWNeighbourSelection
    /// Seed of the level generator. Builds with one thread are deterministic for a given seed,
    /// kernel and insertion order: two such builds, in one process or in two, give identical graphs.
    public var seed: UInt64
    /// Threads used by ``HNSWIndex/add(_:ids:progress:cancellation:)``. 1 = sequential and
    /// deterministic; more threads insert concurrently with per-node (striped) locks on neighbour lists
    /// and give a different but equally good graph, not deterministic: it depends on thread timing.
    /// The threads run through `BLAS.concurrentPerform`, so their BLAS calls are single-threaded
    /// whatever `BLAS.threads` is.
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
