/// The model that scores tree nodes in an index, as recorded in its header.
///
/// Each kind has one loader (``ArborInference``'s `ServingModel.load(from:)`); retrieval never
/// compares names. The raw values are the header's JSON and the CLI's spelling.
public enum NodeScorerKind: String, Sendable, CaseIterable, Codable {
    /// `score = u · n` (TDM's product-DNN; also every index built from vectors).
    case innerProduct = "inner-product"
    /// An MLP over `[u, n, u ⊙ n]` (TDM's DNN).
    case dnn
    /// A DIN-style activation unit pools the behaviours per node, then an MLP (TDM's attention-DNN).
    case attention

    /// TDM's name for the model: "product-DNN", "DNN", "attention-DNN".
    public var tdmName: String {
        switch self {
        case .innerProduct: "product-DNN"
        case .dnn: "DNN"
        case .attention: "attention-DNN"
        }
    }
}

/// What turns a user's behaviour into the query (or queries) an index is searched with, as
/// recorded in its header.
///
/// Single-vector producers (mean pooling, the two-tower tower) give one query vector; the raw
/// history is read by sequence scorers (attention) directly. Multi-interest producers (MIND)
/// give several vectors, session producers (SDM) read timestamps: new cases here, one loader each.
public enum QueryProducerKind: String, Sendable, CaseIterable, Codable {
    /// The mean of the history's own leaf vectors (an index built from item vectors, no trained
    /// encoder). Format version 1 wrote this as `"none"`.
    case leafMeanPooling = "leaf-mean-pooling"
    /// The mean of trained behaviour embeddings (TDM's product-DNN and DNN scorers).
    case behaviourMeanPooling = "mean-pooling"
    /// The behaviour sequence itself, read by the scorer (attention).
    case rawHistory = "history"
    /// The user tower of a two-tower model (YouTube-DNN: mean of recent behaviours through an MLP).
    case twoTower = "two-tower"
    /// MIND's multi-interest extractor (dynamic routing over the behaviours, then an MLP): `K'`
    /// query vectors per user, each searched on its own and merged by best score per item.
    case mind = "mind"
    /// SDM (Lv et al., CIKM 2019): the latest session through an LSTM, self-attention and a user
    /// attention, the earlier sessions through attention, fused by a learned gate. Reads timestamps
    /// to cut sessions; without them the whole history is one session.
    case sdm = "sdm"

    /// Reads a kind as stored by format version 1 (`"none"` meant leaf mean pooling).
    static func fromVersion1(_ text: String) -> QueryProducerKind? {
        text == "none" ? .leafMeanPooling : QueryProducerKind(rawValue: text)
    }
}
