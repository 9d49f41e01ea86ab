import Dispatch
import Foundation
import Synchronization

/// A mutable pointer that may cross into `concurrentPerform` workers, each writing its own range.
struct SharedPointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
}

/// A read-only pointer that may cross into `concurrentPerform` workers.
struct SharedConstPointer<T>: @unchecked Sendable {
    let base: UnsafePointer<T>
}

/// Settings of the synthetic catalogue: planted hierarchical interests.
///
/// Item embedding = super-category centre + category offset + item noise, each drawn from
/// `N(0, sigma² I_d)` with the sigma below, so an item lies near its category centre
/// (distance ≈ `itemSigma · √d`), closer than to its sibling categories (≈ `√(2 categorySigma² +
/// itemSigma²) · √d`), much closer than to other super-categories. Items are assigned to a category
/// uniformly at random.
public struct SyntheticCatalogConfig: Sendable, Equatable {
    /// Number of items `n` (ids `0 ..< n`).
    public var itemCount: Int
    /// Embedding width `d`.
    public var dimension: Int
    /// Number of super-categories.
    public var superCategoryCount: Int
    /// Categories inside each super-category (total = `superCategoryCount × categoriesPerSuperCategory`).
    public var categoriesPerSuperCategory: Int
    /// Per-coordinate standard deviation of super-category centres.
    public var superSigma: Float
    /// Per-coordinate standard deviation of a category's offset from its super-category centre.
    public var categorySigma: Float
    /// Per-coordinate standard deviation of an item's noise around its category centre.
    public var itemSigma: Float
    /// Seed of everything; the same seed gives bit-identical output whatever the thread count.
    public var seed: UInt64
    /// Items generated per parallel work unit (each seeded on its own).
    public var chunkSize: Int

    /// Defaults: d = 64, 32 × 32 = 1,024 categories (close to the peers' 1,000 clusters),
    /// sigmas 1 / 0.6 / 0.4.
    public init(
        itemCount: Int = 100_000, dimension: Int = 64, superCategoryCount: Int = 32, categoriesPerSuperCategory: Int = 32,
        superSigma: Float = 1.0, categorySigma: Float = 0.6, itemSigma: Float = 0.4, seed: UInt64 = 42,
        chunkSize: Int = 16_384
    ) {
        self.itemCount = itemCount
        self.dimension = dimension
        self.superCategoryCount = superCategoryCount
        self.categoriesPerSuperCategory = categoriesPerSuperCategory
        self.superSigma = superSigma
        self.categorySigma = categorySigma
        self.itemSigma = itemSigma
        self.seed = seed
        self.chunkSize = chunkSize
    }

    /// Total number of categories.
    public var categoryCount: Int { superCategoryCount * categoriesPerSuperCategory }

    /// The flat distribution of `../shared/peers/peers_bench.py` (1,000 centres `~ N(0, I_d)`,
    /// item = centre + 0.5 · `N(0, I_d)`, uniform assignment), as a one-level hierarchy: the same
    /// distribution, not the same numbers (another generator).
    public static func peersFlat(itemCount: Int, dimension: Int = 64, seed: UInt64 = 0) -> SyntheticCatalogConfig {
        SyntheticCatalogConfig(
            itemCount: itemCount, dimension: dimension, superCategoryCount: 1_000, categoriesPerSuperCategory: 1,
            superSigma: 1, categorySigma: 0, itemSigma: 0.5, seed: seed)
    }

    func validate() throws(DataError) {
        guard itemCount >= 1 else { throw .invalidArgument(name: "itemCount", reason: "must be >= 1, got \(itemCount)") }
        guard dimension >= 1 else { throw .invalidArgument(name: "dimension", reason: "must be >= 1, got \(dimension)") }
        guard superCategoryCount >= 1, categoriesPerSuperCategory >= 1 else {
            throw .invalidArgument(name: "categories", reason: "super-categories and categories per super-category must be >= 1")
        }
        guard categoryCount < Int(UInt32.max) else { throw .invalidArgument(name: "categories", reason: "too many categories") }
        guard itemCount < Int(Int32.max) else { throw .invalidArgument(name: "itemCount", reason: "must be < 2^31 - 1") }
        for (name, s) in [("superSigma", superSigma), ("categorySigma", categorySigma), ("itemSigma", itemSigma)] {
            guard s >= 0, s.isFinite else { throw .invalidArgument(name: name, reason: "must be finite and >= 0, got \(s)") }
        }
        guard chunkSize >= 1 else { throw .invalidArgument(name: "chunkSize", reason: "must be >= 1") }
    }
}

/// A synthetic catalogue with planted hierarchical structure (see ``SyntheticCatalogConfig``).
///
/// Memory: flat arrays only, about `4·n·d + 8·n` bytes (10^7 items × d 64: 2.6 GB).
/// Invariants: `embeddings` is `n × d`; `itemIDs[i] == ItemID(i)`; `categories[i] < categoryCount`;
/// category `c` holds items `categoryItems[categoryOffsets[c] ..< categoryOffsets[c + 1]]` in
/// increasing index order; `superCategoryOfCategory[c] == c / categoriesPerSuperCategory`.
public struct SyntheticCatalog: Sendable {
    /// The settings used.
    public let config: SyntheticCatalogConfig
    /// Item embeddings, `itemCount × dimension`, row `i` = item `i`.
    public let embeddings: Matrix
    /// Item ids, `ItemID(i)` for row `i`.
    public let itemIDs: [ItemID]
    /// Category of each item.
    public let categories: [UInt32]
    /// Super-category of each category.
    public let superCategoryOfCategory: [UInt32]
    /// Category centres (super-category centre + category offset), `categoryCount × dimension`.
    public let categoryCentres: Matrix
    /// Super-category centres, `superCategoryCount × dimension`.
    public let superCentres: Matrix
    /// Category boundaries into ``categoryItems`` (CSR).
    public let categoryOffsets: [Int]
    /// Item indices grouped by category.
    public let categoryItems: [Int32]

    /// Number of items.
    public var itemCount: Int { config.itemCount }
    /// Number of categories.
    public var categoryCount: Int { config.categoryCount }
    /// Items of category `c`, increasing. O(1), no copy.
    public func items(inCategory c: Int) -> ArraySlice<Int32> { categoryItems[categoryOffsets[c] ..< categoryOffsets[c + 1]] }
    /// Super-category of item `i`.
    public func superCategory(ofItem i: Int) -> UInt32 { superCategoryOfCategory[Int(categories[i])] }

    /// The item → category map as a dictionary (for ``Dataset``; O(n) memory, avoid at 10^7).
    public var categoryByItem: [ItemID: UInt32] {
        var m = [ItemID: UInt32](minimumCapacity: itemCount)
        for i in 0 ..< itemCount { m[itemIDs[i]] = categories[i] }
        return m
    }

    /// Generates the catalogue. Chunks of items run in parallel (`DispatchQueue.concurrentPerform`),
    /// each with its own generator stream, so the output depends only on the config.
    /// - Parameters:
    ///   - progress: receives `task: "synthetic items"`, items done of `itemCount`.
    ///   - cancellation: checked between chunks.
    /// - Throws: ``DataError/invalidArgument(name:reason:)`` for a bad config, `CancellationError`.
    /// - Complexity: O(n·d) time; memory as stated on the type.
    public static func generate(
        _ config: SyntheticCatalogConfig, progress: any ProgressReporter = SilentProgress(),
        cancellation: CancellationFlag? = nil
    ) throws -> SyntheticCatalog {
        try config.validate()
        let d = config.dimension, n = config.itemCount, nc = config.categoryCount, ns = config.superCategoryCount
        // Centres: one stream (tiny).
        var crng = Xoshiro256StarStar(seed: config.seed, stream: .max)
        var superValues = [Float](repeating: 0, count: ns * d)
        for k in 0 ..< superValues.count { superValues[k] = Float(crng.nextGaussian()) * config.superSigma }
        var centreValues = [Float](repeating: 0, count: nc * d)
        var superOf = [UInt32](repeating: 0, count: nc)
        for c in 0 ..< nc {
            let s = c / config.categoriesPerSuperCategory
            superOf[c] = UInt32(s)
            for j in 0 ..< d {
                centreValues[c * d + j] = superValues[s * d + j] + Float(crng.nextGaussian()) * config.categorySigma
            }
        }
        let chunks = (n + config.chunkSize - 1) / config.chunkSize
        let done = Atomic<Int>(0)
        var categories = [UInt32](repeating: 0, count: n)
        let values = [Float](unsafeUninitializedCapacity: n * d) { buffer, initialized in
            let vp = SharedPointer(base: buffer.baseAddress!)
            categories.withUnsafeMutableBufferPointer { cbuf in
                let cp = SharedPointer(base: cbuf.baseAddress!)
                centreValues.withUnsafeBufferPointer { centresBuf in
                    let centres = SharedConstPointer(base: centresBuf.baseAddress!)
                    DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                        if cancellation?.isCancelled == true {
                            // Still initialise the memory so the array is valid; it is discarded.
                            let lo = chunk * config.chunkSize, hi = min(n, lo + config.chunkSize)
                            (vp.base + lo * d).initialize(repeating: 0, count: (hi - lo) * d)
                            return
                        }
                        var rng = Xoshiro256StarStar(seed: config.seed, stream: UInt64(chunk))
                        let lo = chunk * config.chunkSize, hi = min(n, lo + config.chunkSize)
                        for i in lo ..< hi {
                            let c = Int(rng.next(below: UInt64(nc)))
                            cp.base[i] = UInt32(c)
                            let row = vp.base + i * d
                            let centre = centres.base + c * d
                            for j in 0 ..< d {
                                (row + j).initialize(to: centre[j] + Float(rng.nextGaussian()) * config.itemSigma)
                            }
                        }
                        let total = done.add(hi - lo, ordering: .relaxed).newValue
                        progress.report(task: "synthetic items", done: total, total: n)
                    }
                }
            }
            initialized = n * d
        }
        progress.finish(task: "synthetic items")
        try cancellation?.check()
        // Category → items (counting sort, items increasing inside a category).
        var offsets = [Int](repeating: 0, count: nc + 1)
        for c in categories { offsets[Int(c) + 1] += 1 }
        for c in 0 ..< nc { offsets[c + 1] += offsets[c] }
        var cursor = offsets
        var members = [Int32](repeating: 0, count: n)
        for i in 0 ..< n {
            let c = Int(categories[i])
            members[cursor[c]] = Int32(i)
            cursor[c] += 1
        }
        return SyntheticCatalog(
            config: config,
            embeddings: try Matrix(rows: n, cols: d, values: values),
            itemIDs: (0 ..< n).map { ItemID(UInt64($0)) },
            categories: categories,
            superCategoryOfCategory: superOf,
            categoryCentres: try Matrix(rows: nc, cols: d, values: centreValues),
            superCentres: try Matrix(rows: ns, cols: d, values: superValues),
            categoryOffsets: offsets,
            categoryItems: members)
    }
}

/// Settings of synthetic users and their behaviour.
public struct SyntheticUsersConfig: Sendable, Equatable {
    /// Number of users (ids `0 ..< userCount`).
    public var userCount: Int
    /// Fewest interests (categories) per user.
    public var minInterests: Int
    /// Most interests per user.
    public var maxInterests: Int
    /// Probability that an extra interest is drawn inside the first interest's super-category
    /// (otherwise from all categories, usually another super-category).
    public var sameSuperCategoryProbability: Double
    /// Shortest behaviour sequence.
    public var minHistoryLength: Int
    /// Longest behaviour sequence.
    public var maxHistoryLength: Int
    /// Share of events on a uniformly random item (exploration noise outside the interests).
    public var explorationRate: Double
    /// Skew of item popularity inside a category: an event picks the item at rank
    /// `floor(size · u^popularityExponent)`, `u` uniform; 1 = uniform, larger = a few popular items.
    public var popularityExponent: Double
    /// Per-coordinate standard deviation of the noise added to a user's query vector.
    public var querySigma: Float
    /// First possible event time (Unix seconds); each user starts within a day after it.
    public var startTime: Double
    /// Mean gap between consecutive events inside a session (seconds, exponential).
    public var meanGap: Double
    /// Probability that a gap is a session break (an extra exponential gap of mean ``meanSessionBreak``).
    public var sessionBreakProbability: Double
    /// Mean length of a session break (seconds).
    public var meanSessionBreak: Double
    /// Seed; users are generated in parallel, each from its own stream.
    public var seed: UInt64

    /// Defaults: 1–4 interests (half within the first super-category), histories of 10–60 events,
    /// 5% exploration, popularity exponent 2, query noise 0.1, gaps of 2 minutes with 10% session
    /// breaks of about 6 hours.
    public init(
        userCount: Int = 10_000, minInterests: Int = 1, maxInterests: Int = 4, sameSuperCategoryProbability: Double = 0.5,
        minHistoryLength: Int = 10, maxHistoryLength: Int = 60, explorationRate: Double = 0.05,
        popularityExponent: Double = 2, querySigma: Float = 0.1, startTime: Double = 1_500_000_000,
        meanGap: Double = 120, sessionBreakProbability: Double = 0.1, meanSessionBreak: Double = 21_600, seed: UInt64 = 7
    ) {
        self.userCount = userCount
        self.minInterests = minInterests
        self.maxInterests = maxInterests
        self.sameSuperCategoryProbability = sameSuperCategoryProbability
        self.minHistoryLength = minHistoryLength
        self.maxHistoryLength = maxHistoryLength
        self.explorationRate = explorationRate
        self.popularityExponent = popularityExponent
        self.querySigma = querySigma
        self.startTime = startTime
        self.meanGap = meanGap
        self.sessionBreakProbability = sessionBreakProbability
        self.meanSessionBreak = meanSessionBreak
        self.seed = seed
    }

    func validate(_ catalog: SyntheticCatalog) throws(DataError) {
        guard userCount >= 0 else { throw .invalidArgument(name: "userCount", reason: "must be >= 0") }
        guard minInterests >= 1, maxInterests >= minInterests else {
            throw .invalidArgument(name: "interests", reason: "need 1 <= min (\(minInterests)) <= max (\(maxInterests))")
        }
        guard maxInterests <= catalog.categoryCount else {
            throw .invalidArgument(name: "maxInterests", reason: "\(maxInterests) exceeds the \(catalog.categoryCount) categories")
        }
        guard minHistoryLength >= 1, maxHistoryLength >= minHistoryLength else {
            throw .invalidArgument(name: "history length", reason: "need 1 <= min (\(minHistoryLength)) <= max (\(maxHistoryLength))")
        }
        for (name, p) in [("explorationRate", explorationRate), ("sameSuperCategoryProbability", sameSuperCategoryProbability),
                          ("sessionBreakProbability", sessionBreakProbability)] {
            guard p >= 0, p <= 1 else { throw .invalidArgument(name: name, reason: "must lie in [0, 1], got \(p)") }
        }
        guard popularityExponent > 0, querySigma >= 0, meanGap > 0, meanSessionBreak >= 0 else {
            throw .invalidArgument(name: "users config", reason: "popularityExponent and meanGap must be > 0, sigmas >= 0")
        }
    }
}

/// Synthetic users: true interests, behaviour sequences drawn from them over time, and query vectors.
///
/// Invariants (CSR): user `u` (id `UInt64(u)`) has events `historyOffsets[u] ..< historyOffsets[u + 1]`
/// into ``historyItems`` (item indices = item ids of the catalogue) and ``historyTimestamps``
/// (strictly increasing within a user), and interests `interestOffsets[u] ..< interestOffsets[u + 1]`
/// into ``interests`` (distinct categories) and ``interestWeights`` (summing to 1).
/// ``queries`` is `userCount × dimension`: the interest-weighted mean of the user's category
/// centres plus `N(0, querySigma²)` noise.
public struct SyntheticUsers: Sendable {
    /// The settings used.
    public let config: SyntheticUsersConfig
    /// History boundaries.
    public let historyOffsets: [Int]
    /// Items of all histories, concatenated (oldest first per user).
    public let historyItems: [Int32]
    /// Times of all histories' events.
    public let historyTimestamps: [Double]
    /// Interest boundaries.
    public let interestOffsets: [Int]
    /// Interest categories of all users.
    public let interests: [UInt32]
    /// Interest weights (the share of a user's non-exploration events drawn from each interest).
    public let interestWeights: [Float]
    /// One query vector per user.
    public let queries: Matrix

    /// Number of users.
    public var count: Int { config.userCount }
    /// Total number of events.
    public var eventCount: Int { historyItems.count }
    /// Items of user `u`, oldest first. O(1), no copy.
    public func history(of u: Int) -> ArraySlice<Int32> { historyItems[historyOffsets[u] ..< historyOffsets[u + 1]] }
    /// Times of user `u`'s events. O(1), no copy.
    public func timestamps(of u: Int) -> ArraySlice<Double> { historyTimestamps[historyOffsets[u] ..< historyOffsets[u + 1]] }
    /// Interest categories of user `u`. O(1), no copy.
    public func interests(of u: Int) -> ArraySlice<UInt32> { interests[interestOffsets[u] ..< interestOffsets[u + 1]] }
    /// Interest weights of user `u`. O(1), no copy.
    public func interestWeights(of u: Int) -> ArraySlice<Float> { interestWeights[interestOffsets[u] ..< interestOffsets[u + 1]] }
    /// One vector per interest of user `u` (its category centre, noise-free), `k × d`: what a perfect
    /// multi-interest encoder (MIND) would output. O(k · d).
    public func interestVectors(of u: Int, catalog: SyntheticCatalog) -> Matrix {
        let d = catalog.config.dimension
        var m = Matrix(rows: 0, cols: d)
        m.reserveRows(interests(of: u).count)
        for c in interests(of: u) { m.appendRow(catalog.categoryCentres.row(Int(c))) }
        return m
    }

    /// Whether `category` is one of user `u`'s true interests. O(interests).
    public func isInterest(_ category: UInt32, ofUser u: Int) -> Bool { interests(of: u).contains(category) }

    /// All events as an interaction log (user ids `0 ..< count`, item categories from `catalog`),
    /// grouped by user, each user's events in time order.
    public func interactionLog(catalog: SyntheticCatalog) -> InteractionLog {
        var users = [UInt64](), items = [ItemID](), cats = [UInt32]()
        users.reserveCapacity(eventCount); items.reserveCapacity(eventCount); cats.reserveCapacity(eventCount)
        for u in 0 ..< count {
            for it in history(of: u) {
                users.append(UInt64(u))
                items.append(ItemID(UInt64(it)))
                cats.append(catalog.categories[Int(it)])
            }
        }
        // Column lengths agree by construction.
        return try! InteractionLog(users: users, items: items, timestamps: historyTimestamps, categories: cats)
    }

    /// A dataset of all events with the catalogue's item categories.
    public func dataset(catalog: SyntheticCatalog, name: String = "synthetic") -> Dataset {
        Dataset(name: name, interactions: interactionLog(catalog: catalog), itemCategories: catalog.categoryByItem)
    }

    /// Generates users for `catalog`. Users are produced in parallel blocks, each user from its
    /// own generator stream, so the output depends only on the configs.
    /// - Parameters:
    ///   - progress: receives `task: "synthetic users"`, users done of `userCount`.
    ///   - cancellation: checked between blocks.
    /// - Throws: ``DataError/invalidArgument(name:reason:)`` for a bad config, `CancellationError`.
    /// - Complexity: O(userCount · (maxHistoryLength + d)).
    public static func generate(
        catalog: SyntheticCatalog, config: SyntheticUsersConfig, progress: any ProgressReporter = SilentProgress(),
        cancellation: CancellationFlag? = nil
    ) throws -> SyntheticUsers {
        try config.validate(catalog)
        let nu = config.userCount, d = catalog.config.dimension
        if nu == 0 {
            return SyntheticUsers(
                config: config, historyOffsets: [0], historyItems: [], historyTimestamps: [], interestOffsets: [0],
                interests: [], interestWeights: [], queries: Matrix(rows: 0, cols: d))
        }
        // Pass 1: per-user lengths and interest counts (stream 2u), for the CSR offsets.
        var hOff = [Int](repeating: 0, count: nu + 1), iOff = [Int](repeating: 0, count: nu + 1)
        for u in 0 ..< nu {
            var rng = Xoshiro256StarStar(seed: config.seed, stream: 2 * UInt64(u))
            hOff[u + 1] = hOff[u] + config.minHistoryLength
                + Int(rng.next(below: UInt64(config.maxHistoryLength - config.minHistoryLength + 1)))
            iOff[u + 1] = iOff[u] + config.minInterests
                + Int(rng.next(below: UInt64(config.maxInterests - config.minInterests + 1)))
        }
        let events = hOff[nu], nint = iOff[nu]
        var items = [Int32](repeating: 0, count: events)
        var times = [Double](repeating: 0, count: events)
        var interests = [UInt32](repeating: 0, count: nint)
        var weights = [Float](repeating: 0, count: nint)
        var queryValues = [Float](repeating: 0, count: nu * d)
        let block = 1024
        let blocks = (nu + block - 1) / block
        let done = Atomic<Int>(0)
        let cfg = config
        let nc = catalog.categoryCount, perSuper = catalog.config.categoriesPerSuperCategory
        let itemCount = catalog.itemCount
        let hOffs = hOff, iOffs = iOff
        items.withUnsafeMutableBufferPointer { ib in
        times.withUnsafeMutableBufferPointer { tb in
        interests.withUnsafeMutableBufferPointer { nb in
        weights.withUnsafeMutableBufferPointer { wb in
        queryValues.withUnsafeMutableBufferPointer { qb in
        catalog.categoryCentres.withUnsafeBufferPointer { centresBuf in
            let centres = SharedConstPointer(base: centresBuf.baseAddress!)
            let ip = SharedPointer(base: ib.baseAddress!), tp = SharedPointer(base: tb.baseAddress!)
            let np = SharedPointer(base: nb.baseAddress!), wp = SharedPointer(base: wb.baseAddress!)
            let qp = SharedPointer(base: qb.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: blocks) { b in
                if cancellation?.isCancelled == true { return }
                for u in b * block ..< min(nu, (b + 1) * block) {
                    var rng = Xoshiro256StarStar(seed: cfg.seed, stream: 2 * UInt64(u) + 1)
                    let k = iOffs[u + 1] - iOffs[u]
                    // Interests: first uniform; others in its super-category with some probability.
                    var mine = [Int]()
                    mine.reserveCapacity(k)
                    var guardCount = 0
                    while mine.count < k {
                        var c: Int
                        if let first = mine.first, rng.nextUnit() < cfg.sameSuperCategoryProbability, perSuper > 1 {
                            c = (first / perSuper) * perSuper + Int(rng.next(below: UInt64(perSuper)))
                        } else {
                            c = Int(rng.next(below: UInt64(nc)))
                        }
                        guardCount += 1
                        if mine.contains(c) {
                            if guardCount > 64 * k { c = (0 ..< nc).first { !mine.contains($0) }! } else { continue }
                        }
                        mine.append(c)
                    }
                    var ws = (0 ..< k).map { _ in Float(0.2 + rng.nextUnit()) }
                    let sum = ws.reduce(0, +)
                    for j in 0 ..< k { ws[j] /= sum }
                    for j in 0 ..< k { np.base[iOffs[u] + j] = UInt32(mine[j]); wp.base[iOffs[u] + j] = ws[j] }
                    // Query: weighted mean of interest centres + noise.
                    let q = qp.base + u * d
                    for j in 0 ..< d {
                        var v: Float = 0
                        for m in 0 ..< k { v += ws[m] * centres.base[mine[m] * d + j] }
                        q[j] = v + Float(rng.nextGaussian()) * cfg.querySigma
                    }
                    // Behaviour sequence.
                    var t = cfg.startTime + rng.nextUnit() * 86_400
                    for e in hOffs[u] ..< hOffs[u + 1] {
                        let item: Int
                        if rng.nextUnit() < cfg.explorationRate {
                            item = Int(rng.next(below: UInt64(itemCount)))
                        } else {
                            var r = Float(rng.nextUnit())
                            var m = 0
                            while m < k - 1, r >= ws[m] { r -= ws[m]; m += 1 }
                            let members = catalog.items(inCategory: mine[m])
                            if members.isEmpty {
                                item = Int(rng.next(below: UInt64(itemCount)))
                            } else {
                                let rank = min(members.count - 1, Int(Double(members.count) * pow(rng.nextUnit(), cfg.popularityExponent)))
                                item = Int(members[members.startIndex + rank])
                            }
                        }
                        if e > hOffs[u] {
                            t += rng.nextExponential(mean: cfg.meanGap)
                            if rng.nextUnit() < cfg.sessionBreakProbability { t += rng.nextExponential(mean: cfg.meanSessionBreak) }
                            if t <= tp.base[e - 1] { t = tp.base[e - 1].nextUp }
                        }
                        ip.base[e] = Int32(item)
                        tp.base[e] = t
                    }
                }
                let total = done.add(min(nu, (b + 1) * block) - b * block, ordering: .relaxed).newValue
                progress.report(task: "synthetic users", done: total, total: nu)
            }
        }}}}}}
        progress.finish(task: "synthetic users")
        try cancellation?.check()
        return SyntheticUsers(
            config: config, historyOffsets: hOff, historyItems: items, historyTimestamps: times,
            interestOffsets: iOff, interests: interests, interestWeights: weights,
            queries: try Matrix(rows: nu, cols: d, values: queryValues))
    }
}
