import ArborMath

/// How an inner node's embedding is derived from the items below it (until training learns it).
public enum InnerNodeEmbedding: String, Sendable, CaseIterable {
    /// The mean of the embeddings of all items below the node (TDM's initial node embedding).
    case mean
    /// That mean scaled to unit L2 norm.
    case normalizedMean = "normalized-mean"
}

/// Knobs of a tree build.
public struct TreeBuildOptions: Sendable {
    /// Children per inner node at most, 2 ... 64 (TDM: 2).
    public var fanOut: Int
    /// Lloyd iterations per node split.
    public var iterations: Int
    /// Points used to fit each split's centres (all points are then assigned).
    public var sampleLimit: Int
    /// Seed of every random choice of the build; the same seed gives the same tree.
    public var seed: UInt64
    /// Inner node embedding rule.
    public var innerNodes: InnerNodeEmbedding

    /// Build knobs; the defaults are TDM's binary tree with 10 Lloyd iterations per split.
    public init(fanOut: Int = 2, iterations: Int = 10, sampleLimit: Int = 32_768, seed: UInt64 = 0,
                innerNodes: InnerNodeEmbedding = .mean) {
        self.fanOut = fanOut
        self.iterations = iterations
        self.sampleLimit = sampleLimit
        self.seed = seed
        self.innerNodes = innerNodes
    }
}

/// Builds ``TreeLayout``s from item embeddings.
///
/// Both builders split ranges of items level by level, so every level is laid out in parent order:
/// a node with `n > 1` items gets `min(fanOut, n)` children of balanced sizes; a node with one item
/// gets one child, so that every leaf sits at depth `ceil(log_fanOut(N))`.
public enum TreeBuilder {
    /// TDM/JTM re-clustering: recursive balanced k-means (k = fan-out) on the item embeddings.
    ///
    /// - Parameters:
    ///   - embeddings: `N × d`, row-major, one row per item, finite. Consumed: its storage becomes
    ///     the tree's leaf level, so a caller that hands over its last copy (`consume`) adds no
    ///     second `N × d` matrix to the build's memory.
    ///   - items: the `N` item ids, unique.
    ///   - categories: empty, or the `N` item categories (kept as leaf metadata).
    /// - Complexity: O(depth · N · fanOut · d · iterations) flops, mostly GEMMs. Memory: the
    ///   `N × d` matrix (reordered in place into the leaf level), plus `N × fanOut` costs and O(N)
    ///   indices for the largest split, plus the inner levels (about `N / (fanOut - 1)` rows).
    /// - Throws: ``ArborError`` for mismatched counts, NaN rows, duplicate ids, bad fan-out, no items;
    ///   `CancellationError` when `cancellation` is set (between levels).
    public static func balancedKMeans(
        embeddings: consuming Matrix, items: [ItemID], categories: [UInt32] = [], options: TreeBuildOptions = .init(),
        progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil
    ) throws -> TreeLayout {
        try validateInputs(embeddings: embeddings, items: items, categories: categories, fanOut: options.fanOut)
        let kmeans = BalancedKMeans(k: options.fanOut, iterations: options.iterations,
                                    sampleLimit: options.sampleLimit, seed: options.seed)
        return try build(embeddings: consume embeddings, items: items, categories: categories, options: options,
                         progress: progress, cancellation: cancellation) { work, labels, ranges, level in
            // Node splits fan out over threads through `BLAS.concurrentPerform`: one BLAS thread each.
            let seeds = ranges.indices.map { SplitMix64.derive(options.seed, UInt64(level), UInt64($0)) }
            return kmeans.partitionConcurrently(&work, labels: &labels, ranges: ranges, seeds: seeds)
        }
    }

    /// TDM's initial tree: items sorted by category (then id), cut into balanced contiguous groups.
    ///
    /// - Parameters: as ``balancedKMeans(embeddings:items:categories:options:progress:cancellation:)``;
    ///   `categories` must hold one category per item.
    /// - Complexity: O(N log N + depth · N · d).
    public static func categoryOrder(
        embeddings: Matrix, items: [ItemID], categories: [UInt32], options: TreeBuildOptions = .init(),
        progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil
    ) throws -> TreeLayout {
        try validateInputs(embeddings: embeddings, items: items, categories: categories, fanOut: options.fanOut)
        guard categories.count == items.count else {
            throw ArborError.dimensionMismatch(field: "categories", expected: items.count, found: categories.count)
        }
        let order = items.indices.sorted {
            (categories[$0], items[$0]) < (categories[$1], items[$1])
        }
        var sorted = Matrix(rows: items.count, cols: embeddings.cols)
        for (to, from) in order.enumerated() { sorted.setRow(to, embeddings.row(from)) }
        let sortedItems = order.map { items[$0] }
        let sortedCategories = order.map { categories[$0] }
        let k = options.fanOut
        return try build(embeddings: consume sorted, items: sortedItems, categories: sortedCategories, options: options,
                         progress: progress, cancellation: cancellation) { _, _, ranges, _ in
            ranges.map { range in
                let sizes = BalancedKMeans.balancedSizes(count: range.count, groups: min(k, range.count))
                var start = range.lowerBound
                return sizes.map { size in defer { start += size }; return start ..< start + size }
            }
        }
    }

    /// Depth of a tree over `n` items with fan-out `k`: the least `D` with `k^D >= n`.
    public static func depth(itemCount n: Int, fanOut k: Int) -> Int {
        var depth = 0, capacity = 1
        while capacity < n { capacity *= k; depth += 1 }
        return depth
    }

    // MARK: - Shared level-by-level construction

    private static func validateInputs(embeddings: Matrix, items: [ItemID], categories: [UInt32],
                                       fanOut: Int) throws {
        guard (2...64).contains(fanOut) else {
            throw ArborError.invalidArgument(name: "fan-out", reason: "must be in 2...64, got \(fanOut)")
        }
        guard !items.isEmpty else { throw ArborError.empty(what: "items to build a tree from") }
        guard embeddings.rows == items.count else {
            throw ArborError.dimensionMismatch(field: "item embeddings (rows)", expected: items.count,
                                               found: embeddings.rows)
        }
        guard embeddings.cols > 0 else {
            throw ArborError.invalidArgument(name: "dimension", reason: "item embeddings have 0 columns")
        }
        guard categories.isEmpty || categories.count == items.count else {
            throw ArborError.dimensionMismatch(field: "categories", expected: items.count, found: categories.count)
        }
        if let bad = embeddings.firstNonFiniteRow() {
            throw ArborError.nonFiniteValue(field: "item embeddings", row: bad)
        }
        if let bad = embeddings.firstRowWithOverflowingNorm() {
            throw ArborError.invalidArgument(
                name: "item embeddings",
                reason: "row \(bad) is too large: its products overflow Float32 (squared norm above 2.1e37); scale the vectors down")
        }
        var seen = Set<ItemID>(minimumCapacity: items.count)
        for id in items where !seen.insert(id).inserted { throw ArborError.duplicateItem(id) }
    }

    /// Splits level by level with `split` (which reorders rows of `work` and `labels` inside each
    /// range and returns the child ranges), then derives inner embeddings bottom-up.
    private static func build(
        embeddings: consuming Matrix, items: [ItemID], categories: [UInt32], options: TreeBuildOptions,
        progress: some ProgressReporter, cancellation: CancellationFlag?,
        split: (inout Matrix, inout [Int32], [Range<Int>], Int) -> [[Range<Int>]]
    ) throws -> TreeLayout {
        let n = items.count, d = embeddings.cols
        let depth = depth(itemCount: n, fanOut: options.fanOut)
        var work = consume embeddings
        var labels = (0..<n).map { Int32($0) }
        var levelRanges: [[Range<Int>]] = [[0 ..< n]]
        var offsets: [[Int32]] = []
        let task = "build tree"
        for level in 0..<depth {
            try cancellation?.check()
            progress.report(task: task, done: level, total: depth)
            let ranges = levelRanges[level]
            let splitIndex = ranges.indices.filter { ranges[$0].count > 1 }
            let splitResults = split(&work, &labels, splitIndex.map { ranges[$0] }, level)
            var children = [[Range<Int>]](repeating: [], count: ranges.count)
            for (j, i) in splitIndex.enumerated() { children[i] = splitResults[j] }
            var next: [Range<Int>] = []
            next.reserveCapacity(min(n, ranges.count * options.fanOut))
            var levelOffsets: [Int32] = [0]
            levelOffsets.reserveCapacity(ranges.count + 1)
            for (i, range) in ranges.enumerated() {
                let kids = range.count == 1 ? [range] : children[i]
                precondition(!kids.isEmpty && kids.count <= options.fanOut, "split produced \(kids.count) groups")
                next.append(contentsOf: kids)
                levelOffsets.append(Int32(next.count))
            }
            offsets.append(levelOffsets)
            levelRanges.append(next)
        }
        progress.finish(task: task)
        // Leaves: one item each, in final row order, which is `work`'s order: leaf `j` is row `j`
        // (the ranges of a level partition `0 ..< n` in order), so `work` becomes the leaf level.
        let leafRanges = levelRanges[depth]
        precondition(leafRanges.count == n && leafRanges.enumerated().allSatisfy { $1 == $0 ..< $0 + 1 })
        let leafMatrix = consume work
        var leafItems = [ItemID](); leafItems.reserveCapacity(n)
        var leafCategories = [UInt32](); leafCategories.reserveCapacity(categories.isEmpty ? 0 : n)
        for row in 0 ..< n {
            let original = Int(labels[row])
            leafItems.append(items[original])
            if !categories.isEmpty { leafCategories.append(categories[original]) }
        }
        // Inner embeddings bottom-up: item-weighted means of the children.
        var levels = [TreeLevel](repeating: TreeLevel(embeddings: Matrix(rows: 0, cols: d), childOffsets: []),
                                 count: depth + 1)
        levels[depth] = TreeLevel(embeddings: leafMatrix, childOffsets: [])
        var childCounts = [Int](repeating: 1, count: n)
        for level in stride(from: depth - 1, through: 0, by: -1) {
            let off = offsets[level]
            let nodeCount = off.count - 1
            var m = Matrix(rows: nodeCount, cols: d)
            var counts = [Int](repeating: 0, count: nodeCount)
            let below = levels[level + 1].embeddings
            for i in 0..<nodeCount {
                var total = 0
                for c in Int(off[i]) ..< Int(off[i + 1]) {
                    let w = Float(childCounts[c])
                    total += childCounts[c]
                    for j in 0..<d { m[i, j] += w * below[c, j] }
                }
                counts[i] = total
                let inv = 1 / Float(total)
                for j in 0..<d { m[i, j] *= inv }
            }
            levels[level] = TreeLevel(embeddings: m, childOffsets: off)
            childCounts = counts
        }
        if options.innerNodes == .normalizedMean {
            for level in 0..<depth { Normalization.normalizeRows(&levels[level].embeddings) }
        }
        let layout = TreeLayout(dimension: d, fanOut: options.fanOut, levels: levels, leafItems: leafItems,
                                leafCategories: leafCategories)
        try layout.validate()
        return layout
    }
}
