import ArborInference
import ArborMath

/// Untrained item vectors from who interacted with what: each user gets a fixed random Gaussian
/// vector (seeded by the user's index), and an item's vector is the sum of its users' vectors,
/// L2-normalised — a random projection of the item × user interaction matrix (Johnson–Lindenstrauss),
/// so items with overlapping audiences get nearby vectors. It lets `arbor build --dataset` make a
/// meaningful tree before any model is trained; trained embeddings (`arbor train`) replace it.
///
/// Complexity: O(pairs · d) time, O(items · d) memory plus one `d`-vector per user at a time.
public enum CooccurrenceSketch {
    /// - Parameters:
    ///   - users: dense user index of each interaction.
    ///   - items: dense item index of each interaction (same length as `users`), in `0 ..< itemCount`.
    /// - Returns: `itemCount × dimension`, row-major, unit rows (zero for items with no interaction).
    /// - Throws: ``ArborError`` on mismatched lengths, out-of-range indices, `dimension < 1`.
    public static func embed(users: [Int32], items: [Int32], itemCount: Int, dimension: Int, seed: UInt64 = 0) throws -> Matrix {
        guard users.count == items.count else {
            throw ArborError.dimensionMismatch(field: "interaction items", expected: users.count, found: items.count)
        }
        guard dimension >= 1 else { throw ArborError.invalidArgument(name: "dimension", reason: "must be at least 1") }
        var m = Matrix(rows: itemCount, cols: dimension)
        var userVector = [Float](repeating: 0, count: dimension)
        var lastUser: Int32 = -1
        for (u, i) in zip(users, items) {
            guard i >= 0, Int(i) < itemCount else {
                throw ArborError.invalidArgument(name: "item index", reason: "\(i) is outside 0..<\(itemCount)")
            }
            if u != lastUser {
                var rng = Xoshiro256StarStar(seed: SplitMix64.derive(seed, UInt64(bitPattern: Int64(u))))
                for c in 0..<dimension { userVector[c] = Float(rng.nextGaussian()) }
                lastUser = u
            }
            for c in 0..<dimension { m[Int(i), c] += userVector[c] }
        }
        Normalization.normalizeRows(&m)
        return m
    }
}
