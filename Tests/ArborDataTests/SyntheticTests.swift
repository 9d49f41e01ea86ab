import Foundation
import Testing

@testable import ArborData

@Suite struct RandomTests {
    @Test func referenceValues() {
        var sm = SplitMix64(seed: 0)
        #expect(sm.next() == 0xE220_A839_7B1D_CDAF)
        var x = Xoshiro256StarStar(state: (1, 2, 3, 4))
        #expect(x.next() == 11520)
        #expect(x.next() == 0)
        #expect(x.next() == 1_509_978_240)
        #expect(x.next() == 1_215_971_899_390_074_240)
    }

    @Test func streamsAndDistributions() {
        var a = Xoshiro256StarStar(seed: 1, stream: 0), b = Xoshiro256StarStar(seed: 1, stream: 1)
        var c = Xoshiro256StarStar(seed: 1, stream: 0)
        let va = (0 ..< 4).map { _ in a.next() }, vb = (0 ..< 4).map { _ in b.next() }, vc = (0 ..< 4).map { _ in c.next() }
        #expect(va == vc)
        #expect(va != vb)
        var r = Xoshiro256StarStar(seed: 9)
        var sum = 0.0, sq = 0.0
        let n = 20_000
        for _ in 0 ..< n { let g = r.nextGaussian(); sum += g; sq += g * g }
        #expect(abs(sum / Double(n)) < 0.05)
        #expect(abs(sq / Double(n) - 1) < 0.05)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0 ..< 7_000 { counts[Int(r.next(below: 7))] += 1 }
        #expect(counts.allSatisfy { $0 > 850 && $0 < 1150 })
    }
}

@Suite struct SyntheticCatalogTests {
    static let small = SyntheticCatalogConfig(
        itemCount: 6_000, dimension: 32, superCategoryCount: 4, categoriesPerSuperCategory: 5, seed: 3, chunkSize: 1_000)

    @Test func deterministic() throws {
        let a = try SyntheticCatalog.generate(Self.small)
        let b = try SyntheticCatalog.generate(Self.small)
        #expect(a.embeddings == b.embeddings)
        #expect(a.categories == b.categories)
        #expect(a.categoryCentres == b.categoryCentres)
        var other = Self.small
        other.seed = 4
        let c = try SyntheticCatalog.generate(other)
        #expect(c.embeddings != a.embeddings)
        #expect(c.categories != a.categories)
    }

    @Test func shapesAndInvariants() throws {
        let cat = try SyntheticCatalog.generate(Self.small)
        #expect(cat.embeddings.rows == 6_000 && cat.embeddings.cols == 32)
        #expect(cat.itemIDs.first == 0 && cat.itemIDs.last == 5_999)
        #expect(cat.categoryCentres.rows == 20 && cat.superCentres.rows == 4)
        #expect(cat.categoryOffsets.count == 21 && cat.categoryOffsets.last == 6_000)
        #expect(cat.embeddings.firstNonFiniteRow() == nil)
        for c in 0 ..< 20 {
            let members = cat.items(inCategory: c)
            #expect(!members.isEmpty)
            #expect(members.allSatisfy { cat.categories[Int($0)] == UInt32(c) })
            #expect(zip(members, members.dropFirst()).allSatisfy { $0 < $1 })
            #expect(cat.superCategoryOfCategory[c] == UInt32(c / 5))
        }
    }

    func distance(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Float {
        zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
    }

    @Test func plantedHierarchy() throws {
        let cat = try SyntheticCatalog.generate(Self.small)
        var nearestIsOwn = 0
        var ownSum: Float = 0, siblingSum: Float = 0, otherSum: Float = 0
        for i in 0 ..< cat.itemCount {
            let x = cat.embeddings.row(i)
            var best = 0
            var bestD = Float.infinity
            for c in 0 ..< cat.categoryCount {
                let d = distance(x, cat.categoryCentres.row(c))
                if d < bestD { bestD = d; best = c }
            }
            if best == Int(cat.categories[i]) { nearestIsOwn += 1 }
            let own = Int(cat.categories[i])
            let sibling = (own / 5) * 5 + (own % 5 + 1) % 5
            let other = (own + 5) % 20
            ownSum += distance(x, cat.categoryCentres.row(own))
            siblingSum += distance(x, cat.categoryCentres.row(sibling))
            otherSum += distance(x, cat.categoryCentres.row(other))
        }
        // Every item is nearest to its own category centre; siblings are nearer than other trees.
        #expect(nearestIsOwn >= cat.itemCount * 99 / 100)
        #expect(ownSum < siblingSum)
        #expect(siblingSum < otherSum)
    }

    @Test func leanAtTwoHundredThousandItems() throws {
        let config = SyntheticCatalogConfig(itemCount: 200_000, dimension: 64, seed: 11)
        let before = peakResidentBytes()
        let progress = CountingProgress()
        let cat = try SyntheticCatalog.generate(config, progress: progress)
        let grown = peakResidentBytes() - before
        let matrixBytes = 200_000 * 64 * 4
        #expect(cat.embeddings.rows == 200_000)
        #expect(cat.categories.count == 200_000)
        #expect(cat.categoryItems.count == 200_000)
        // Flat arrays only: the peak grows by about the matrix (51 MB), far below per-item objects.
        #expect(grown < 3 * matrixBytes + (64 << 20))
        #expect(progress.lastDone.withLock { $0 } == 200_000)
        #expect(progress.finished.withLock { $0 })
    }

    @Test func peersFlatPreset() throws {
        let cat = try SyntheticCatalog.generate(.peersFlat(itemCount: 3_000, dimension: 8))
        #expect(cat.categoryCount == 1_000)
        #expect(cat.categoryCentres == cat.superCentres)  // no category offset
        let x = cat.embeddings.row(0), c = cat.categoryCentres.row(Int(cat.categories[0]))
        #expect(x.count == c.count)
        #expect(zip(x, c).allSatisfy { abs($0 - $1) < 3 })
    }

    @Test func badConfigAndCancellation() {
        var bad = Self.small
        bad.itemCount = 0
        #expect(throws: DataError.invalidArgument(name: "itemCount", reason: "must be >= 1, got 0")) {
            try SyntheticCatalog.generate(bad)
        }
        let flag = CancellationFlag()
        flag.cancel()
        #expect(throws: CancellationError.self) { try SyntheticCatalog.generate(Self.small, cancellation: flag) }
    }
}

@Suite struct SyntheticUsersTests {
    static let catalog = try! SyntheticCatalog.generate(SyntheticCatalogTests.small)
    static let config = SyntheticUsersConfig(userCount: 1_500, seed: 5)

    @Test func deterministic() throws {
        let a = try SyntheticUsers.generate(catalog: Self.catalog, config: Self.config)
        let b = try SyntheticUsers.generate(catalog: Self.catalog, config: Self.config)
        #expect(a.historyItems == b.historyItems)
        #expect(a.historyTimestamps == b.historyTimestamps)
        #expect(a.interests == b.interests)
        #expect(a.queries == b.queries)
        var other = Self.config
        other.seed = 6
        let c = try SyntheticUsers.generate(catalog: Self.catalog, config: other)
        #expect(c.historyItems != a.historyItems)
    }

    @Test func behaviourFollowsInterests() throws {
        let users = try SyntheticUsers.generate(catalog: Self.catalog, config: Self.config)
        var inside = 0
        var singleNearest = 0, singles = 0
        for u in 0 ..< users.count {
            let interests = users.interests(of: u)
            #expect((1 ... 4).contains(interests.count))
            #expect(Set(interests).count == interests.count)
            #expect(abs(users.interestWeights(of: u).reduce(0, +) - 1) < 1e-4)
            let h = users.history(of: u)
            #expect((10 ... 60).contains(h.count))
            let ts = users.timestamps(of: u)
            #expect(zip(ts, ts.dropFirst()).allSatisfy { $0 < $1 })
            for it in h where interests.contains(Self.catalog.categories[Int(it)]) { inside += 1 }
            if interests.count == 1 {
                singles += 1
                // A one-interest user's query is nearest to that interest's centre.
                let q = users.queries.row(u)
                var best = 0
                var bestD = Float.infinity
                for c in 0 ..< Self.catalog.categoryCount {
                    let d = zip(q, Self.catalog.categoryCentres.row(c)).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                    if d < bestD { bestD = d; best = c }
                }
                if UInt32(best) == interests.first! { singleNearest += 1 }
            }
        }
        // 5% exploration: about 95% of events fall inside the user's interests.
        #expect(Double(inside) / Double(users.eventCount) > 0.92)
        #expect(Double(inside) / Double(users.eventCount) < 0.99)
        #expect(singles > 100 && singleNearest == singles)
        let iv = users.interestVectors(of: 0, catalog: Self.catalog)
        #expect(iv.rows == users.interests(of: 0).count && iv.cols == 32)
        #expect(iv.row(0) == Self.catalog.categoryCentres.row(Int(users.interests(of: 0).first!)))
        // Users spread over interests across and within super-categories.
        let multi = (0 ..< users.count).filter { users.interests(of: $0).count >= 2 }
        let sameSuper = multi.filter { u in
            let i = users.interests(of: u)
            return Self.catalog.superCategoryOfCategory[Int(i.first!)] == Self.catalog.superCategoryOfCategory[Int(i.last!)]
        }
        #expect(sameSuper.count > multi.count / 4 && sameSuper.count < multi.count)
    }

    @Test func logAndDataset() throws {
        let users = try SyntheticUsers.generate(catalog: Self.catalog, config: Self.config)
        let ds = users.dataset(catalog: Self.catalog)
        #expect(ds.interactionCount == users.eventCount)
        #expect(ds.userCount == 1_500)
        #expect(ds.interactions[0].category == Self.catalog.categories[Int(users.history(of: 0).first!)])
        let sessions = try Sessions.split(ds.interactions)
        #expect(sessions.count > users.count)  // session breaks happen
        #expect((0 ..< sessions.count).allSatisfy { sessions.length(of: $0) <= 50 })
    }

    @Test func noUsers() throws {
        var c = Self.config
        c.userCount = 0
        let users = try SyntheticUsers.generate(catalog: Self.catalog, config: c)
        #expect(users.count == 0 && users.eventCount == 0 && users.queries.rows == 0)
    }

    @Test func badConfig() {
        var c = Self.config
        c.maxInterests = 0
        #expect(throws: DataError.self) { try SyntheticUsers.generate(catalog: Self.catalog, config: c) }
        c = Self.config
        c.explorationRate = 2
        #expect(throws: DataError.invalidArgument(name: "explorationRate", reason: "must lie in [0, 1], got 2.0")) {
            try SyntheticUsers.generate(catalog: Self.catalog, config: c)
        }
    }
}

/// Records progress reports (thread-safe).
final class CountingProgress: ProgressReporter {
    let lastDone = PosixMutex(0)
    let finished = PosixMutex(false)
    func report(task: String, done: Int, total: Int) { lastDone.withLock { $0 = max($0, done) } }
    func finish(task: String) { finished.withLock { $0 = true } }
}



/// Peak resident set size of the process, in bytes.
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024
}
