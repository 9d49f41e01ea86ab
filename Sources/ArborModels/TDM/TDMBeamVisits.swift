import ArborNN
import ArborTree

/// The nodes TDM's beam search scores for each user, with a model's current weights: what OTM's
/// beam-aware training trains on.
///
/// From the root, the children of the beam are scored and the best `beamWidth` of them (ties: the
/// smaller node index) form the next beam, as the serving ``BeamSearch`` does; the visited nodes
/// of a level are all the children scored there. Several users run level by level together: one
/// forward pass (``TDMModel/logits(_:on:)``, no gradient) per level for all of them, on a tape of
/// the caller's thread. Reads the model's weights only, so shards may call it concurrently.
public enum TDMBeamVisits {
    /// For each user (behaviour rows, as ``TDMModel/behaviourRows(of:)`` gives them), the local
    /// indices of the nodes scored on each level `0 ... depth` (entry 0, the root, is empty).
    /// With `beamWidth` at least the widest level, every node of every level below the root.
    /// - Complexity: O(depth · users · beamWidth · fanOut) model evaluations, one forward pass per level.
    /// - Throws: ``ArborError`` for a beam width below 1 or rows outside the behaviour table.
    public static func visits(model: TDMModel, histories: [[Int]], beamWidth: Int) throws(ArborError) -> [[[Int]]] {
        guard beamWidth >= 1 else {
            throw .invalidArgument(name: "beamWidth", reason: "must be at least 1, got \(beamWidth)")
        }
        let tree = model.tree
        let depth = tree.depth
        var out = [[[Int]]](repeating: [[Int]](repeating: [], count: depth + 1), count: histories.count)
        guard depth >= 1, !histories.isEmpty else { return out }
        var beams = [[Int]](repeating: [0], count: histories.count)
        let length = max(1, histories.map(\.count).max() ?? 1)
        for level in 1...depth {
            let offsets = tree.levels[level - 1].childOffsets
            var batch = TDMBatch(length: length)
            for (s, rows) in histories.enumerated() {
                let sample = batch.appendSample(rows: model.levelRows(rows, level: level))
                var candidates: [Int] = []
                for node in beams[s] {
                    for child in Int(offsets[node]) ..< Int(offsets[node + 1]) {
                        candidates.append(child)
                        batch.appendRow(sample: sample, node: model.globalIndex(level: level, node: child), label: 0)
                    }
                }
                out[s][level] = candidates
            }
            guard level < depth else { break }
            let scores = try model.logits(batch, on: Tape()).values
            var row = 0
            for s in histories.indices {
                let candidates = out[s][level]
                let ranked = candidates.indices.sorted {
                    let a = scores[row + $0], b = scores[row + $1]
                    return a > b || (a == b && candidates[$0] < candidates[$1])
                }
                beams[s] = ranked.prefix(beamWidth).map { candidates[$0] }
                row += candidates.count
            }
        }
        return out
    }
}

/// OTM's bottom-up pseudo-targets: a node's target is the largest target among the leaves below
/// it (so with 0/1 targets, 1 when any target leaf is below it, else 0).
public enum TDMPseudoTargets {
    /// For each level `0 ... depth`, the nodes with a non-zero pseudo-target and its value; every
    /// other node's is 0. `leafTargets` maps leaf indices to targets in `[0, 1]` (absent = 0).
    /// O(targets · depth).
    public static func targets(model: TDMModel, leafTargets: [Int: Float]) -> [[Int: Float]] {
        let depth = model.tree.depth
        var out = [[Int: Float]](repeating: [:], count: depth + 1)
        for (leaf, value) in leafTargets where value > 0 {
            var node = leaf
            for l in stride(from: depth, through: 0, by: -1) {
                out[l][node] = max(out[l][node] ?? 0, value)
                if l > 0 { node = Int(model.parents[l][node]) }
            }
        }
        return out
    }
}
