/// A user held out for evaluation: what the model sees and what it must retrieve.
public struct HeldOutUser: Sendable, Equatable {
    /// External user id.
    public var user: UInt64
    /// Input behaviours, oldest first.
    public var history: [ItemID]
    /// Items to retrieve (the truth), oldest first.
    public var truth: [ItemID]

    /// A held-out user.
    public init(user: UInt64, history: [ItemID], truth: [ItemID]) {
        self.user = user
        self.history = history
        self.truth = truth
    }
}

extension Array where Element == HeldOutUser {
    /// The users in a seeded random order, cut in two: the first half (rounded down) for
    /// validation, the rest for test. How the Amazon Books demo's single held-out file serves both
    /// early stopping and the report. O(count).
    public func splitValidationTest(seed: UInt64) -> (validation: [HeldOutUser], test: [HeldOutUser]) {
        var order = Array<Int>(indices)
        var rng = SplitMix64(seed: seed)
        order.shuffle(using: &rng)
        let shuffled = order.map { self[$0] }
        let half = shuffled.count / 2
        return (Array(shuffled[..<half]), Array(shuffled[half...]))
    }

    /// Every item the users' histories and truths name. O(total length).
    public var allItems: Set<ItemID> {
        var all = Set<ItemID>()
        for user in self {
            all.formUnion(user.history)
            all.formUnion(user.truth)
        }
        return all
    }
}

/// How many users to hold out.
public enum HoldOutSize: Sendable, Equatable {
    /// A fraction in `[0, 1]` of the eligible users (rounded to the nearest count).
    case fraction(Double)
    /// An absolute number of users (TDM: 1,000 on MovieLens, 10,000 on UserBehavior).
    case count(Int)

    func resolve(_ eligible: Int, _ name: String) throws(DataError) -> Int {
        switch self {
        case .fraction(let f):
            guard f >= 0, f <= 1 else { throw .invalidArgument(name: name, reason: "fraction \(f) is outside [0, 1]") }
            return Int((f * Double(eligible)).rounded())
        case .count(let n):
            guard n >= 0 else { throw .invalidArgument(name: name, reason: "count \(n) is negative") }
            return n
        }
    }
}

/// The TDM user hold-out protocol: some users are held out for test and validation; a held-out
/// user's time-ordered first half of behaviours is the input, the second half the truth; every
/// other user's events are training data.
///
/// Eligible for hold-out are users with at least `minEvents` events (2 by default, so that both
/// halves are non-empty); with `n` events the input is the first `n / 2` (rounded down), the truth
/// the remaining `n - n / 2`. Selection is a seeded shuffle of the users in increasing id order, so
/// the split depends only on the log's content and the seed. No user is in two parts.
public struct UserHoldOutSplit: Sendable, Equatable {
    /// Training events (users not held out), in log order.
    public let train: InteractionLog
    /// Validation users, in increasing id order.
    public let validation: [HeldOutUser]
    /// Test users, in increasing id order.
    public let test: [HeldOutUser]

    /// Splits `log`.
    /// - Throws: ``DataError/invalidArgument(name:reason:)`` for a bad size, or when the test and
    ///   validation users together outnumber the eligible users.
    /// - Complexity: O(count log count) for the per-user time sort.
    public static func make(
        from log: InteractionLog, test: HoldOutSize = .fraction(0.1), validation: HoldOutSize = .fraction(0.1),
        seed: UInt64 = 0, minEvents: Int = 2
    ) throws(DataError) -> UserHoldOutSplit {
        guard minEvents >= 2 else { throw .invalidArgument(name: "minEvents", reason: "must be at least 2, got \(minEvents)") }
        let groups = log.groupedByUser()
        var eligible = (0 ..< groups.count).filter { groups.offsets[$0 + 1] - groups.offsets[$0] >= minEvents }
        let nTest = try test.resolve(eligible.count, "test users")
        let nValid = try validation.resolve(eligible.count, "validation users")
        guard nTest + nValid <= eligible.count else {
            throw .invalidArgument(
                name: "hold-out size",
                reason: "\(nTest) test + \(nValid) validation users exceed the \(eligible.count) users with >= \(minEvents) events")
        }
        var rng = Xoshiro256StarStar(seed: seed)
        // Partial Fisher–Yates: only the first nTest + nValid positions are needed.
        for i in 0 ..< (nTest + nValid) {
            let j = i + Int(rng.next(below: UInt64(eligible.count - i)))
            eligible.swapAt(i, j)
        }
        let testUsers = eligible[0 ..< nTest].sorted()
        let validUsers = eligible[nTest ..< nTest + nValid].sorted()
        func heldOut(_ u: Int) -> HeldOutUser {
            let rows = groups.rows(ofUser: u)
            let half = rows.count / 2
            return HeldOutUser(
                user: groups.users[u],
                history: rows.prefix(half).map { log.items[$0] },
                truth: rows.dropFirst(half).map { log.items[$0] })
        }
        var out = Set<UInt64>()
        for u in testUsers { out.insert(groups.users[u]) }
        for u in validUsers { out.insert(groups.users[u]) }
        return UserHoldOutSplit(
            train: log.filtered { !out.contains(log.users[$0]) },
            validation: validUsers.map(heldOut), test: testUsers.map(heldOut))
    }
}
