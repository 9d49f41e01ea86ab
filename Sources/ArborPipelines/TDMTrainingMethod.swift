import ArborModels

/// How a tree model of the TDM comparison is trained: TDM, JTM or OTM.
public enum TDMTrainingMethod: String, Sendable, CaseIterable, Hashable {
    /// TDM: the target's ancestors against random same-level negatives; trees re-clustered
    /// (balanced k-means on the learnt leaves) between rounds.
    case tdm
    /// JTM: TDM's loss, hierarchical user features (DNN and attention: behaviours replaced by their
    /// ancestors at the scored level) and greedy layer-wise re-assignment of items between rounds.
    case jtm
    /// OTM: beam-aware training (the nodes a beam search with the current model visits, with
    /// bottom-up pseudo-targets; random negatives beside them by option); trees re-clustered as TDM's.
    case otm

    /// The prefix of the method's rows in reports ("" for TDM, whose rows keep their names).
    public var rowPrefix: String {
        switch self {
        case .tdm: ""
        case .jtm: "JTM "
        case .otm: "OTM "
        }
    }

    /// Whether a model of `kind` trained this way uses hierarchical user features.
    public func hierarchical(_ kind: TDMScorerKind) -> Bool { self == .jtm && kind != .innerProduct }
}
