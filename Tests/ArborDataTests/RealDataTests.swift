import Foundation
import Testing

@testable import ArborData

/// Readers and protocols on the real files of `../shared/data`; skipped when the folder is absent.
@Suite(.enabled(if: SharedData.available, "shared data folder ../shared/data is absent"))
struct RealDataTests {
    @Test func movieLens100K() throws {
        let ds = try RecBoleReader.read(
            interactions: SharedData.path("ml-100k/ml-100k.inter"), items: SharedData.path("ml-100k/ml-100k.item"))
        #expect(ds.interactionCount == 100_000)
        #expect(ds.userCount == 943)
        #expect(ds.itemCount == 1_682)
        #expect(ds.itemCategories.count == 1_682)
        #expect(ds.categoryNames.count == 19)
        #expect(ds.interactions[0] == Interaction(user: 196, item: 242, timestamp: 881250949, category: ds.itemCategories[242], rating: 3))
        #expect(ds.categoryNames[Int(ds.itemCategories[1]!)] == "Animation")  // Toy Story
        #expect(ds.itemAllCategories[1]?.count == 3)
        let stats = ds.statistics()
        #expect(stats.interactions == 100_000 && stats.users == 943 && stats.items == 1_682 && stats.categories <= 19)
        #expect(stats.firstTimestamp == 874_724_710 && stats.lastTimestamp == 893_286_638)
    }

    @Test func leaveLastOutReproducesTheAnchorSplit() throws {
        let ds = try RecBoleReader.readInteractions(at: SharedData.path("ml-100k/ml-100k.inter"))
        let split = try LeaveLastOutSplit.make(from: ds.interactions)
        // ANCHORS.md: 54,413 interactions, 938 users, 1,008 items.
        #expect(split.interactionCount == 54_413)
        #expect(split.userCount == 938)
        #expect(split.itemCount == 1_008)
        #expect(split.roles.filter { $0 == .test }.count == 938)
        #expect(split.roles.filter { $0 == .validation }.count == 938)

        let reference = try LeaveLastOutSplit.read(at: SharedData.path("ml-100k/ml-100k.leave-last-out.tsv"))
        #expect(reference.interactionCount == 54_413)
        #expect(reference.userCount == 938)
        func differing(_ a: [UInt64: ItemID], _ b: [UInt64: ItemID]) -> Int {
            a.count(where: { b[$0.key] != $0.value }) + b.count(where: { a[$0.key] == nil })
        }
        #expect(differing(split.targets(.test), reference.targets(.test)) == 0)
        #expect(differing(split.targets(.validation), reference.targets(.validation)) == 0)
        // Exact time order differs only where RecBole's Float32 rounding merges nearby times.
        let exact = try LeaveLastOutSplit.make(from: ds.interactions, timeOrder: .exact)
        let changed = differing(exact.targets(.test), reference.targets(.test))
        #expect(changed > 0 && changed < 938 / 10)
        // Same training multiset per user.
        func trainSets(_ s: LeaveLastOutSplit) -> [UInt64: [ItemID]] {
            var m = [UInt64: [ItemID]]()
            for i in 0 ..< s.log.count where s.roles[i] == .train { m[s.log.users[i], default: []].append(s.log.items[i]) }
            return m.mapValues { $0.sorted() }
        }
        let mine = trainSets(split), theirs = trainSets(reference)
        #expect(mine.count == theirs.count)
        #expect(mine.count(where: { theirs[$0.key] != $0.value }) == 0)
        // Test cases: history = train + validation, in time order.
        let cases = split.cases(.test)
        #expect(cases.count == 938)
        let refCases = Dictionary(uniqueKeysWithValues: reference.cases(.test).map { ($0.user, $0) })
        var sameHistory = 0
        for c in cases where refCases[c.user]?.history == c.history { sameHistory += 1 }
        #expect(sameHistory == 938)
    }

    @Test func tdmHoldOutOnMovieLens() throws {
        let ds = try RecBoleReader.readInteractions(at: SharedData.path("ml-100k/ml-100k.inter"))
        let positives = PositiveFilter(minRating: 4, minUserInteractions: 0, minItemInteractions: 0).apply(to: ds.interactions)
        let split = try UserHoldOutSplit.make(from: positives, seed: 2026)
        let offsets = positives.groupedByUser().offsets
        let eligible = zip(offsets, offsets.dropFirst()).count { $1 - $0 >= 2 }
        #expect(split.test.count == Int((0.1 * Double(eligible)).rounded()))
        #expect(split.validation.count == split.test.count)
        let held = Set(split.test.map(\.user) + split.validation.map(\.user))
        #expect(held.count == split.test.count * 2)
        #expect(Set(split.train.users).isDisjoint(with: held))
        let heldEvents = (split.test + split.validation).reduce(0) { $0 + $1.history.count + $1.truth.count }
        #expect(split.train.count + heldEvents == positives.count)
    }

    @Test func taobaoHead() throws {
        let path = SharedData.path("taobao-userbehavior-head/UserBehavior_head.csv")
        let (all, stats) = try TaobaoReader.read(at: path)
        #expect(all.interactionCount == 4_321)
        #expect(stats.rowsRead == 4_321)
        #expect(all.userCount == 43)
        #expect(all.itemCount == 3_276)
        #expect(Set(all.interactions.categories).count == 567)
        let (inRange, s2) = try TaobaoReader.read(at: path, options: .init(dropOutOfRangeTimestamps: true))
        #expect(inRange.interactionCount == 4_320)
        #expect(s2.droppedOutOfRange == 1)
        let (pv, s3) = try TaobaoReader.read(at: path, options: .pageViewsInRange)
        #expect(s3.droppedByBehavior == 77 + 190 + 128)
        #expect(pv.interactionCount == 3_926 - s3.droppedOutOfRange)
    }

    @Test func amazonBooksDemo() throws {
        let train = try AmazonBooksDemo.readTrain(at: SharedData.path("amazon-books-demo/train_demo.txt"))
        #expect(train.interactionCount == 20_000)
        #expect(train.userCount == 1_467)
        let valid = try AmazonBooksDemo.readValidation(at: SharedData.path("amazon-books-demo/valid_part-0.txt"))
        #expect(valid.count == 499)
        #expect(valid[0].user == 482936)
        #expect(valid[0].history.count == 13)
        #expect(valid[0].truth == [57177, 22266, 61335, 126551])
    }

    @Test func sessionSplitFiles() throws {
        let y = try SessionSplit.read(at: SharedData.path("yoochoose-rsc15-test/yoochoose.split.tsv"))
        #expect(y.sessions.reduce(0) { $0 + $1.items.count } == 61_043)
        #expect(y.pairCount(.test) == 4_643)  // ANCHORS.md: 4,643 YooChoose test pairs
        let d = try SessionSplit.read(at: SharedData.path("diginetica-sample/diginetica.split.tsv"))
        #expect(d.sessions.count == 418)  // ANCHORS.md: 418 sessions after filtering
        #expect(d.pairCount(.test) == 107)
        var pairs = 0
        d.forEachPair(.test) { prefix, _ in pairs += 1; #expect(!prefix.isEmpty) }
        #expect(pairs == 107)
    }

    @Test func yoochooseRawWithTheGenericReader() throws {
        let ds = try CSVReader.read(
            at: SharedData.path("yoochoose-rsc15-test/rsc15_test.txt"), options: .init(separator: UInt8(ascii: "\t")))
        #expect(ds.interactionCount == 71_222)
        #expect(ds.userCount == 15_324)  // sessions
        #expect(ds.itemCount == 6_751)
    }

    /// The session protocol rebuilt from the raw files equals the reference splits session for session.
    func sameSplit(_ mine: SessionSplit, _ reference: SessionSplit) -> Bool {
        let r = Dictionary(uniqueKeysWithValues: reference.sessions.map { ($0.id, $0) })
        return mine.sessions.count == reference.sessions.count
            && mine.sessions.allSatisfy { r[$0.id]?.items == $0.items && r[$0.id]?.role == $0.role }
    }

    @Test func yoochooseSessionSplitReproduced() throws {
        let raw = try CSVReader.read(
            at: SharedData.path("yoochoose-rsc15-test/rsc15_test.txt"), options: .init(separator: UInt8(ascii: "\t")))
        let mine = try SessionSplit.make(from: raw.interactions)
        let reference = try SessionSplit.read(at: SharedData.path("yoochoose-rsc15-test/yoochoose.split.tsv"))
        #expect(mine.pairCount(.test) == 4_643)
        #expect(sameSplit(mine, reference))
    }

    @Test func digineticaSessionSplitReproduced() throws {
        let raw = try DigineticaReader.read(at: SharedData.path("diginetica-sample/sample_train-item-views.csv"))
        #expect(raw.interactionCount == 12_391)
        #expect(raw.userCount == 2_986)  // sessions
        let mine = try SessionSplit.make(from: raw.interactions, startGranularity: 86_400)
        let reference = try SessionSplit.read(at: SharedData.path("diginetica-sample/diginetica.split.tsv"))
        #expect(mine.sessions.count == 418)
        #expect(sameSplit(mine, reference))
    }
}
