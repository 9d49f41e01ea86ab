import ArborCore
import ArborData
import ArborInference
import ArborMath
import Foundation

/// What a MIND run on generated users knows about each test user, for diagnosing where MIND's gap
/// to the oracle goes: the encoder's interest vectors next to the planted interests, the learned
/// item vectors' categories. Written as JSON by `arbor train --model mind --synthetic N
/// --diagnosis FILE`; read by `tools/mind-diagnosis.py`.
public struct MINDDiagnosisDump: Codable, Sendable {
    /// One test user.
    public struct User: Codable, Sendable {
        /// Generator user id.
        public var user: UInt64
        /// Input history (item ids, oldest first).
        public var history: [UInt64]
        /// Truth (the second half of the user's events).
        public var truth: [UInt64]
        /// Planted interest categories.
        public var planted: [UInt32]
        /// Planted interest weights (same order).
        public var weights: [Float]
        /// The encoder's `K' × d` interest vectors, one array per interest.
        public var interests: [[Float]]
    }

    /// Served item ids, row order of the item vectors (`items.npy`).
    public var items: [UInt64]
    /// Category of every served item (same order).
    public var itemCategories: [UInt32]
    /// The test users.
    public var users: [User]

    /// Collects the dump from a finished run. O(test users · encoder + items).
    public init(result: MINDExperimentResult, test: [TwoTowerEvalCase], catalog: SyntheticCatalog, users: SyntheticUsers) {
        items = result.ids.map(\.rawValue)
        itemCategories = result.ids.map { catalog.categories[Int($0.rawValue)] }
        self.users = test.map { c in
            let u = Int(c.user)
            let v = result.encoder.interests(history: c.history).vectors
            return User(user: c.user, history: c.history.map(\.rawValue), truth: c.truth.map(\.rawValue).sorted(),
                        planted: Array(users.interests(of: u)), weights: Array(users.interestWeights(of: u)),
                        interests: (0 ..< v.rows).map { Array(v.row($0)) })
        }
    }

    /// Writes the dump as JSON at `path`.
    /// - Throws: encoding or file errors.
    public func write(to path: String) throws {
        try JSONEncoder().encode(self).write(to: URL(fileURLWithPath: path))
    }
}
