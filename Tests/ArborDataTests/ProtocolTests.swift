import Foundation
import Testing

@testable import ArborData

@Suite struct LeaveLastOutTests {
    /// Rows: (user, item, time, rating).
    func log(_ rows: [(UInt64, UInt64, Double, Float)]) -> InteractionLog {
        InteractionLog(rows.map { Interaction(user: $0.0, item: ItemID($0.1), timestamp: $0.2, rating: $0.3) })
    }

    @Test func rolesByTimeWithFileOrderTies() throws {
        // User 1: times 5, 1, 3, 3 (tie: file order keeps item 12 before 13).
        let l = log([(1, 10, 5, 5), (1, 11, 1, 5), (1, 12, 3, 5), (1, 13, 3, 5), (2, 20, 1, 5), (2, 21, 2, 5), (3, 30, 1, 5)])
        for order in [TimeOrder.exact, .recBoleFloat32] {
            let s = try LeaveLastOutSplit.make(from: l, filter: .none, timeOrder: order)
            #expect(s.users == [1, 2, 3])
            #expect(s.log.items == [11, 12, 13, 10, 20, 21, 30])
            #expect(s.roles == [.train, .train, .validation, .test, .train, .test, .train])
            #expect(s.cases(.test) == [
                LeaveLastOutCase(user: 1, history: [11, 12, 13], target: 10),
                LeaveLastOutCase(user: 2, history: [20], target: 21),
            ])
            #expect(s.cases(.validation) == [LeaveLastOutCase(user: 1, history: [11, 12], target: 13)])
            #expect(s.trainLog.items == [11, 12, 20, 30])
            #expect(s.targets(.test) == [1: 10, 2: 21])
        }
    }

    @Test func filterDropsLowRatingsThenIteratesToTheCore() {
        // k = 2. Item 9 has two events but one has rating 3 -> dropped; then user 3 has one event
        // left -> dropped; that leaves item 8 with one event -> dropped; user 4 falls too.
        let l = log([
            (1, 7, 1, 5), (1, 8, 2, 4), (2, 7, 1, 4), (2, 8, 2, 5),
            (3, 9, 1, 5), (3, 6, 2, 5), (4, 9, 1, 3), (4, 6, 2, 4), (5, 6, 1, 5),
        ])
        let f = PositiveFilter(minRating: 4, minUserInteractions: 2, minItemInteractions: 2)
        let kept = f.apply(to: l)
        #expect(kept.users == [1, 1, 2, 2])
        #expect(kept.items == [7, 8, 7, 8])
        let none = PositiveFilter.none.apply(to: l)
        #expect(none.count == l.count)
    }

    @Test func emptyAfterFilterIsAnError() {
        let l = log([(1, 1, 1, 1)])
        #expect(throws: DataError.invalidArgument(name: "filter", reason: "no interaction survives it")) {
            try LeaveLastOutSplit.make(from: l)
        }
    }

    @Test func splitFileErrors() {
        let dir = TempDir()
        let bad = dir.write("s.tsv", "user_id\titem_id\ttimestamp\tsplit\n1\t2\t3\ttrain\n1\t3\t4\tholdout\n")
        #expect(dataError { try LeaveLastOutSplit.read(at: bad) }
            == .malformedLine(file: bad, line: 3, reason: "split 'holdout' is not train, valid or test"))
        let missing = dir.write("m.tsv", "user_id\titem_id\ttimestamp\n1\t2\t3\n")
        #expect(dataError { try LeaveLastOutSplit.read(at: missing) } == .missingColumn(file: missing, column: "split"))
        let sess = dir.write("x.split.tsv", "session_id\titem_id\tposition\tsplit\n1\t5\t0\ttrain\n1\t6\t2\ttrain\n")
        #expect(dataError { try SessionSplit.read(at: sess) }
            == .malformedLine(file: sess, line: 3, reason: "position 2 of session 1 is out of order"))
        let role = dir.write("r.split.tsv", "session_id\titem_id\tposition\tsplit\n1\t5\t0\ttrain\n1\t6\t1\ttest\n")
        #expect(dataError { try SessionSplit.read(at: role) }
            == .malformedLine(file: role, line: 3, reason: "session 1 changes split inside"))
    }
}

@Suite struct UserHoldOutTests {
    /// 50 users with 1 + (u % 9) events each, at shuffled times.
    static let log: InteractionLog = {
        var l = InteractionLog()
        var rng = Xoshiro256StarStar(seed: 1)
        for u in 0 ..< 50 {
            let n = 1 + u % 9
            let times = (0 ..< n).map { Double($0) * 10 }.shuffled(using: &rng)
            for t in times { l.append(user: UInt64(u), item: ItemID(UInt64(1_000 * u) + UInt64(t)), timestamp: t) }
        }
        return l
    }()

    @Test func disjointHalvesInTimeOrder() throws {
        let s = try UserHoldOutSplit.make(from: Self.log, test: .fraction(0.2), validation: .count(5), seed: 3)
        let eligible = Set(Self.log.users).filter { $0 % 9 != 0 }.count  // users with >= 2 events
        #expect(s.test.count == Int((0.2 * Double(eligible)).rounded()))
        #expect(s.validation.count == 5)
        let testUsers = Set(s.test.map(\.user)), validUsers = Set(s.validation.map(\.user))
        let trainUsers = Set(s.train.users)
        #expect(testUsers.isDisjoint(with: validUsers))
        #expect(trainUsers.isDisjoint(with: testUsers) && trainUsers.isDisjoint(with: validUsers))
        #expect(trainUsers.count + testUsers.count + validUsers.count == 50)
        for h in s.test + s.validation {
            let n = 1 + Int(h.user) % 9
            #expect(h.history.count == n / 2)
            #expect(h.truth.count == n - n / 2)
            // Items encode their time: input strictly before truth, both increasing.
            let all = (h.history + h.truth).map(\.rawValue)
            #expect(all == all.sorted())
        }
        #expect(s.test.map(\.user) == s.test.map(\.user).sorted())
    }

    @Test func seededAndValidated() throws {
        let a = try UserHoldOutSplit.make(from: Self.log, seed: 3)
        let b = try UserHoldOutSplit.make(from: Self.log, seed: 3)
        let c = try UserHoldOutSplit.make(from: Self.log, seed: 4)
        #expect(a == b)
        #expect(a.test.map(\.user) != c.test.map(\.user))
        #expect(throws: DataError.self) { try UserHoldOutSplit.make(from: Self.log, test: .fraction(1.5)) }
        #expect(throws: DataError.self) { try UserHoldOutSplit.make(from: Self.log, test: .count(40), validation: .count(10)) }
    }
}

@Suite struct SessionTests {
    @Test func gapAndLengthRules() throws {
        var l = InteractionLog()
        // User 1: gaps 600 (same session), 601 (new session).
        for (k, t) in [0.0, 600, 1_201, 1_202].enumerated() { l.append(user: 1, item: ItemID(UInt64(k)), timestamp: t) }
        // User 2: 120 events one second apart -> 50 + 50 + 20; given out of order.
        for k in (0 ..< 120).reversed() { l.append(user: 2, item: ItemID(UInt64(100 + k)), timestamp: Double(k)) }
        let s = try Sessions.split(l)
        #expect(s.owners == [1, 1, 2, 2, 2])
        #expect(Array(s.items(of: 0)) == [0, 1])
        #expect(Array(s.items(of: 1)) == [2, 3])
        #expect((2 ..< 5).map { s.length(of: $0) } == [50, 50, 20])
        #expect(s.items(of: 2).first == 100)
        #expect(throws: DataError.self) { try Sessions.split(l, maxLength: 0) }
    }

    @Test func sessionSplitProtocol() throws {
        var l = InteractionLog()
        // 10 sessions (ids 0..<10, start = id), items 1...3 common, item 99 rare (dropped), session 9
        // has only rare items besides one -> dropped.
        for s in 0 ..< 9 {
            for (k, it) in [1, 2, 3].enumerated() { l.append(user: UInt64(s), item: ItemID(UInt64(it)), timestamp: Double(s * 10 + k)) }
        }
        l.append(user: 3, item: 99, timestamp: 33)
        l.append(user: 9, item: 99, timestamp: 90)
        l.append(user: 9, item: 1, timestamp: 91)
        let split = try SessionSplit.make(from: l, minSessionLength: 2, minItemCount: 5, testFraction: 0.25, validationFraction: 0.12)
        #expect(split.sessions.map(\.id) == Array(0 ..< 9))
        #expect(split.sessions.allSatisfy { $0.items == [1, 2, 3] })
        #expect(split.sessions.map(\.role) == [.train, .train, .train, .train, .train, .train, .validation, .test, .test])
        #expect(split.pairCount(.test) == 4)
    }
}
