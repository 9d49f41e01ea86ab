// The raw HNSW graph as plain arrays: what the index file persists and reads back.

/// An HNSW graph as plain arrays, for persistence (``HNSWIndex/graph`` exports it,
/// ``HNSWIndex/init(graph:)`` reads it back after ``validate()``).
///
/// Shapes (`n` = ``count``, `M` = `configuration.m`, `M0 = 2M`, `s` = ``storedDimension``,
/// `B = levels[0] + … + levels[n − 1]` = number of upper-layer blocks):
/// - ``vectors``: `n × s` row-major, the vectors *as stored* (normalised for cosine; `[x, sqrt(B² − ‖x‖²)] / B`
///   for the norm-augmented inner product), not the vectors as given.
/// - ``ids``, ``deleted``, ``levels``, ``layer0Counts``: `n` each. Node `i` is item `ids[i]`; its top layer is
///   `levels[i]` (0 = layer 0 only).
/// - ``layer0Neighbours``: `n × M0`; node `i`'s layer-0 neighbours are
///   `layer0Neighbours[i·M0 ..< i·M0 + layer0Counts[i]]`; unused slots hold −1.
/// - ``upperNeighbours``: `B × M`, ``upperCounts``: `B`. Blocks are in node order, then layer order: node
///   `i`'s layer-`l` list (`1 ≤ l ≤ levels[i]`) is block `levels[0] + … + levels[i − 1] + l − 1`.
/// - ``entryPoint``: a node on the top layer, or −1 when `n == 0`.
public struct HNSWGraph: Sendable, Equatable {
    /// The build configuration (metric, `M`, …) the graph was made with.
    public var configuration: HNSWConfiguration
    /// Dimension of the vectors as given (queries have this length).
    public var dimension: Int
    /// The norm bound `B` of ``HNSWMetric/normAugmentedInnerProduct`` (`nil` for other metrics or an empty graph).
    public var normBound: Float?
    /// `count × storedDimension` stored vectors, row-major.
    public var vectors: [Float]
    /// External item id of each node.
    public var ids: [ItemID]
    /// Deletion mark of each node.
    public var deleted: [Bool]
    /// Top layer of each node.
    public var levels: [Int32]
    /// `count × 2M` layer-0 neighbour slots.
    public var layer0Neighbours: [Int32]
    /// Used layer-0 slots of each node.
    public var layer0Counts: [Int32]
    /// Upper-layer neighbour slots, `M` per (node, layer ≥ 1) block.
    public var upperNeighbours: [Int32]
    /// Used slots of each upper-layer block.
    public var upperCounts: [Int32]
    /// The entry point (a node of maximal level), −1 when empty.
    public var entryPoint: Int32
    /// The kernel whose distances chose the links (`.portable`, `.avx2`, `.avx512` or `.blas`);
    /// `nil` when unknown: a graph stored before Arbor recorded it, or one grown with several kernels.
    public var buildKernel: HNSWDistanceKernel?

    /// Creates a graph from its arrays without checking them; call ``validate()`` (or
    /// ``HNSWIndex/init(graph:)``, which does) before use.
    public init(
        configuration: HNSWConfiguration, dimension: Int, normBound: Float?, vectors: [Float], ids: [ItemID],
        deleted: [Bool], levels: [Int32], layer0Neighbours: [Int32], layer0Counts: [Int32],
        upperNeighbours: [Int32], upperCounts: [Int32], entryPoint: Int32, buildKernel: HNSWDistanceKernel? = nil
    ) {
        self.configuration = configuration
        self.dimension = dimension
        self.normBound = normBound
        self.vectors = vectors
        self.ids = ids
        self.deleted = deleted
        self.levels = levels
        self.layer0Neighbours = layer0Neighbours
        self.layer0Counts = layer0Counts
        self.upperNeighbours = upperNeighbours
        self.upperCounts = upperCounts
        self.entryPoint = entryPoint
        self.buildKernel = buildKernel
    }

    /// Number of nodes (deleted ones included).
    public var count: Int { levels.count }

    /// Width of a stored vector: `dimension + 1` for the norm-augmented inner product, else `dimension`.
    public var storedDimension: Int {
        configuration.metric == .normAugmentedInnerProduct ? dimension + 1 : dimension
    }

    /// The largest level a node may have (far above any level `floor(-ln U / ln M)` can draw).
    public static let maximumLevel: Int32 = 100

    /// Checks every invariant the search relies on, in O(size of the arrays):
    /// - the configuration is valid and `dimension ≥ 1`;
    /// - array lengths match the shapes above; every stored vector value is finite; ids are unique;
    /// - `0 ≤ levels[i] ≤` ``maximumLevel``;
    /// - every count is in `0 ... capacity` (`2M` on layer 0, `M` above);
    /// - every used neighbour slot holds a node in `0 ..< count`, not the node itself, whose level is at
    ///   least the layer of the list;
    /// - the entry point is −1 iff the graph is empty, else a node whose level is the maximum level;
    /// - the norm-augmented metric has a finite positive ``normBound`` (when not empty).
    /// - Throws: ``ArborError`` — `.dimensionMismatch` for a length, `.nonFiniteValue` for a vector,
    ///   `.duplicateItem` for an id, `.invalidArgument(name: "graph.…")` for any other broken invariant.
    public func validate() throws(ArborError) {
        _ = try configuration.validated()
        guard dimension >= 1 else {
            throw .invalidArgument(name: "graph.dimension", reason: "must be at least 1, got \(dimension)")
        }
        let n = count, m = configuration.m, m0 = configuration.maxNeighboursLayer0, s = storedDimension
        guard n < Int(Int32.max) else { throw .invalidArgument(name: "graph.levels", reason: "too many nodes (\(n))") }
        guard ids.count == n else { throw .dimensionMismatch(field: "graph.ids", expected: n, found: ids.count) }
        guard deleted.count == n else {
            throw .dimensionMismatch(field: "graph.deleted", expected: n, found: deleted.count)
        }
        guard vectors.count == n * s else {
            throw .dimensionMismatch(field: "graph.vectors", expected: n * s, found: vectors.count)
        }
        for (i, v) in vectors.enumerated() where !v.isFinite { throw .nonFiniteValue(field: "graph.vectors", row: i / s) }
        var seen = Set<ItemID>(minimumCapacity: n)
        for id in ids where !seen.insert(id).inserted { throw .duplicateItem(id) }
        var blocks = 0
        var top: Int32 = -1
        for (i, level) in levels.enumerated() {
            guard (0...Self.maximumLevel).contains(level) else {
                throw .invalidArgument(name: "graph.levels", reason: "node \(i) has level \(level), outside 0...\(Self.maximumLevel)")
            }
            blocks += Int(level)
            top = max(top, level)
        }
        guard layer0Counts.count == n else {
            throw .dimensionMismatch(field: "graph.layer0Counts", expected: n, found: layer0Counts.count)
        }
        guard layer0Neighbours.count == n * m0 else {
            throw .dimensionMismatch(field: "graph.layer0Neighbours", expected: n * m0, found: layer0Neighbours.count)
        }
        guard upperCounts.count == blocks else {
            throw .dimensionMismatch(field: "graph.upperCounts", expected: blocks, found: upperCounts.count)
        }
        guard upperNeighbours.count == blocks * m else {
            throw .dimensionMismatch(field: "graph.upperNeighbours", expected: blocks * m, found: upperNeighbours.count)
        }
        // Neighbour lists, node by node.
        func checkList(node: Int, layer: Int, slots: ArraySlice<Int32>, count: Int32, capacity: Int) throws(ArborError) {
            guard count >= 0, Int(count) <= capacity else {
                throw .invalidArgument(
                    name: "graph.counts", reason: "node \(node) layer \(layer): count \(count) outside 0...\(capacity)")
            }
            for j in slots.startIndex ..< slots.startIndex + Int(count) {
                let nb = slots[j]
                guard nb >= 0, Int(nb) < n else {
                    throw .invalidArgument(
                        name: "graph.neighbours", reason: "node \(node) layer \(layer): neighbour \(nb) outside 0..<\(n)")
                }
                guard Int(nb) != node else {
                    throw .invalidArgument(name: "graph.neighbours", reason: "node \(node) layer \(layer) links to itself")
                }
                guard Int(levels[Int(nb)]) >= layer else {
                    throw .invalidArgument(
                        name: "graph.neighbours",
                        reason: "node \(node) layer \(layer): neighbour \(nb) has level \(levels[Int(nb)]) only")
                }
            }
        }
        var block = 0
        for i in 0..<n {
            try checkList(node: i, layer: 0, slots: layer0Neighbours[i * m0 ..< (i + 1) * m0],
                          count: layer0Counts[i], capacity: m0)
            for layer in stride(from: 1, through: Int(levels[i]), by: 1) {
                try checkList(node: i, layer: layer, slots: upperNeighbours[block * m ..< (block + 1) * m],
                              count: upperCounts[block], capacity: m)
                block += 1
            }
        }
        if n == 0 {
            guard entryPoint == -1 else {
                throw .invalidArgument(name: "graph.entryPoint", reason: "must be -1 in an empty graph, got \(entryPoint)")
            }
        } else {
            guard entryPoint >= 0, Int(entryPoint) < n else {
                throw .invalidArgument(name: "graph.entryPoint", reason: "\(entryPoint) outside 0..<\(n)")
            }
            guard levels[Int(entryPoint)] == top else {
                throw .invalidArgument(
                    name: "graph.entryPoint",
                    reason: "node \(entryPoint) has level \(levels[Int(entryPoint)]), the maximum level is \(top)")
            }
            if configuration.metric == .normAugmentedInnerProduct {
                guard let b = normBound, b.isFinite, b > 0 else {
                    throw .invalidArgument(name: "graph.normBound", reason: "the norm-augmented metric needs a finite positive bound")
                }
            }
        }
    }
}
