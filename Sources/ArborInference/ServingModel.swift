import ArborCore
import ArborTree

/// The node scorer stored in an index, one case per ``NodeScorerKind``.
public enum StoredNodeScorer: Sendable {
    /// `u · n`.
    case innerProduct(InnerProductScorer)
    /// An MLP over `[u, n, u ⊙ n]`.
    case dnn(DNNScorer)
    /// DIN-style attention over the behaviour sequence.
    case attention(AttentionScorer)

    /// The kind recorded in the header.
    public var kind: NodeScorerKind {
        switch self {
        case .innerProduct: .innerProduct
        case .dnn: .dnn
        case .attention: .attention
        }
    }

    /// The scorer, for generic code (`TreeRetriever(source:scorer:…)` opens the existential).
    public var scorer: any NodeScorer {
        switch self {
        case .innerProduct(let s): s
        case .dnn(let s): s
        case .attention(let s): s
        }
    }

    /// Whether the scorer reads a query vector (`Query.vector`) rather than the history alone.
    public var readsVector: Bool { kind != .attention }
}

/// The model an index serves: its node scorer and its query producer, loaded by kind.
///
/// This is the one place that maps the header's kinds to types: each ``NodeScorerKind`` and each
/// ``QueryProducerKind`` is opened here and nowhere else. Immutable and thread-safe.
public struct ServingModel: Sendable {
    /// Scores the nodes of each level.
    public let scorer: StoredNodeScorer
    /// Turns a behaviour list into the query (or queries).
    public let producer: any QueryProducer

    /// A model from its parts (for models built in memory, e.g. right after training).
    /// - Throws: ``ModelLoadError/kindMismatch(field:expected:found:)`` when the producer cannot feed
    ///   the scorer (a sequence scorer needs the raw history; a vector scorer a vector producer).
    public init(scorer: StoredNodeScorer, producer: any QueryProducer) throws(ModelLoadError) {
        let needsHistory = !scorer.readsVector
        guard needsHistory == (producer.kind == .rawHistory) else {
            throw .kindMismatch(field: "queryProducer",
                                expected: needsHistory ? QueryProducerKind.rawHistory.rawValue : "a vector producer",
                                found: producer.kind.rawValue)
        }
        self.scorer = scorer
        self.producer = producer
    }

    /// Loads the scorer and producer that `reader`'s header names. Reads the model tensors
    /// (O(weights)), never the tree.
    /// - Throws: ``ModelLoadError`` naming the kind, tensor or field at fault.
    public static func load(from reader: IndexReader) throws(ModelLoadError) -> ServingModel {
        let scorer: StoredNodeScorer
        switch reader.nodeScorer {
        case .innerProduct: scorer = .innerProduct(InnerProductScorer(dimension: reader.dimension))
        case .dnn: scorer = .dnn(try DNNScorer(from: reader))
        case .attention: scorer = .attention(try AttentionScorer(from: reader, unknownItems: .ignore))
        }
        let producer: any QueryProducer
        switch reader.queryProducer {
        case .leafMeanPooling:
            do { producer = try LeafMeanPooling(reader: reader) } catch {
                throw .weightsDoNotMatch(kind: reader.queryProducer.rawValue, reason: error.description)
            }
        case .behaviourMeanPooling:
            producer = try MeanPoolingEncoder(from: reader)
        case .twoTower:
            do { producer = try TwoTowerEncoder(index: reader) } catch let error as IndexError {
                throw .index(error)
            } catch {
                throw .weightsDoNotMatch(kind: QueryProducerKind.twoTower.rawValue, reason: "\(error)")
            }
        case .mind:
            producer = try MINDEncoder(index: reader)
        case .sdm:
            producer = try SDMEncoder(from: reader)
        case .rawHistory:
            guard case .attention(let attention) = scorer else {
                throw .kindMismatch(field: "nodeScorer", expected: NodeScorerKind.attention.rawValue,
                                    found: reader.nodeScorer.rawValue)
            }
            producer = RawHistoryProducer(scorer: attention)
        }
        return try ServingModel(scorer: scorer, producer: producer)
    }
}
