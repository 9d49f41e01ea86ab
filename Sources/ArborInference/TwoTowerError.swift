import ArborCore

/// Why a two-tower model cannot be built, trained, saved or loaded. Every case names the field,
/// tensor, file or item at fault; `description` is the message the CLI prints.
public enum TwoTowerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A configuration or training option is out of range.
    case invalidConfiguration(field: String, reason: String)
    /// The catalogue is empty.
    case noItems
    /// The same item id appears twice in a catalogue.
    case duplicateItem(ItemID)
    /// An item id that the catalogue does not hold (with ``UnknownItemPolicy/reject``).
    case unknownItem(ItemID)
    /// Nothing to train on: no (history, target) sample survives (e.g. every user has one event).
    case noTrainingSamples(reason: String)
    /// An empty history with ``EmptyHistoryPolicy/reject``.
    case emptyHistory
    /// A tensor the model needs is absent.
    case missingTensor(name: String)
    /// A tensor the model does not know.
    case unexpectedTensor(name: String)
    /// A tensor's shape differs from the one the configuration implies.
    case shapeMismatch(name: String, expected: [Int], found: [Int])
    /// A tensor's values do not match the digest recorded with it (a corrupted weights file).
    case digestMismatch(name: String, expected: UInt64, found: UInt64)
    /// A weights file cannot be read or is malformed.
    case badWeightsFile(path: String, reason: String)
    /// A file cannot be written.
    case writeFailed(path: String, reason: String)
    /// The loss became NaN or infinite: training stopped; the model holds the weights of the last
    /// finished epoch (`lastGoodEpoch`, 0 = the initial weights) and `lastGoodCheckpoint` (when
    /// checkpointing) is the file that still holds them.
    case nonFiniteLoss(epoch: Int, batch: Int, lastGoodEpoch: Int, lastGoodCheckpoint: String?)
    /// A shape or argument check of a lower layer failed.
    case invalidInput(ArborError)

    /// A one-line message naming what is at fault (what the CLI prints).
    public var description: String {
        switch self {
        case let .invalidConfiguration(field, reason): return "two-tower: invalid \(field): \(reason)"
        case .noItems: return "two-tower: the catalogue holds no items"
        case let .duplicateItem(id): return "two-tower: item \(id) appears twice in the catalogue"
        case let .unknownItem(id): return "two-tower: item \(id) is not in the catalogue"
        case let .noTrainingSamples(reason): return "two-tower: no training samples: \(reason)"
        case .emptyHistory: return "two-tower: empty behaviour history (no known item) and the fallback is disabled"
        case let .missingTensor(name): return "two-tower weights: no tensor '\(name)'"
        case let .unexpectedTensor(name): return "two-tower weights: unexpected tensor '\(name)' (another model?)"
        case let .shapeMismatch(name, expected, found):
            return "two-tower weights: tensor '\(name)' has shape \(found), expected \(expected) (weights of another configuration?)"
        case let .digestMismatch(name, expected, found):
            return "two-tower weights: tensor '\(name)' digest \(hex(found)) does not match the recorded \(hex(expected)): the file is corrupted"
        case let .badWeightsFile(path, reason): return "\(path): not a readable two-tower weights file: \(reason)"
        case let .writeFailed(path, reason): return "\(path): cannot write: \(reason)"
        case let .nonFiniteLoss(epoch, batch, good, checkpoint):
            var s = "two-tower: the loss became NaN or infinite at epoch \(epoch), batch \(batch); training stopped, "
            s += "the model keeps the weights of epoch \(good)"
            if let checkpoint { s += " (checkpoint \(checkpoint))" }
            return s + ". Lower the learning rate or raise the temperature."
        case let .invalidInput(e): return "two-tower: \(e)"
        }
    }
}

private func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

/// What the user encoder does with an empty history (or one whose items are all unknown).
public enum EmptyHistoryPolicy: String, Sendable, CaseIterable, Codable {
    /// Use the stored fallback vector: the unit-normalised, popularity-weighted mean of the item
    /// vectors (a "most popular" query), flagged in ``EncodedQuery/usedFallback``.
    case fallback
    /// Throw ``TwoTowerError/emptyHistory``.
    case reject
}
