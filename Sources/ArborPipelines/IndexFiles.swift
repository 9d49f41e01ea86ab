import ArborEval
import ArborCore
import ArborInference
import ArborModels
import ArborRetrieval
import ArborTree

/// Every index file Arbor writes is written here: a tree built from item vectors (with an
/// optional HNSW graph beside it), a two-tower model's tree and encoder, a TDM model's trained
/// tree and scorer. Each write replaces the file atomically: an interrupted, killed or failed
/// write leaves the old index as it was.
public enum IndexFiles {
    /// Writes a tree built from item vectors, served by inner product with leaf mean pooling for
    /// behaviour lists, and, when given, the HNSW graph over the same items.
    /// - Throws: ``ArborError`` for invalid input, `IndexError` when the file cannot be written,
    ///   `CancellationError` when cancelled; `path` is unchanged in every case.
    @discardableResult
    public static func writeVectorIndex(
        _ layout: TreeLayout, graph: HNSWIndex? = nil, to path: String, leafSlack: Int = 0,
        chunkBytes: Int = IndexFormat.defaultChunkBytes,
        progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil
    ) throws -> IndexHeader {
        let extra = try graph.map { try HNSWPersistence.extras(for: $0) } ?? [:]
        var writer = IndexWriter(chunkBytes: chunkBytes)
        writer.leafSlack = leafSlack
        return try writer.write(layout: layout, nodeScorer: .innerProduct, queryProducer: .leafMeanPooling,
                                extra: extra, to: path, progress: progress, cancellation: cancellation)
    }

    /// Writes the tree built on a two-tower model's item vectors with its user encoder (query
    /// producer ``QueryProducerKind/twoTower``) and, when given, the training provenance.
    /// - Throws: as ``writeVectorIndex(_:graph:to:progress:cancellation:)``; ``ArborError`` for a
    ///   provenance that breaks its invariants.
    @discardableResult
    public static func writeTwoTowerIndex(
        tree: TreeLayout, encoder: TwoTowerEncoder, provenance: TrainingProvenance? = nil, to path: String,
        progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil
    ) throws -> IndexHeader {
        let payload = encoder.indexPayload()
        return try writeEncoderIndex(tree: tree, tensors: payload.tensors, extra: payload.extra, producer: .twoTower,
                                     provenance: provenance, to: path, progress: progress, cancellation: cancellation)
    }

    /// Writes the tree built on a MIND model's item vectors with its multi-interest encoder (query
    /// producer ``QueryProducerKind/mind``, node scorer inner product) and, when given, the training
    /// provenance. The front door then serves `search(history:)` with one search per interest.
    /// - Throws: as ``writeTwoTowerIndex(tree:encoder:provenance:to:progress:cancellation:)``.
    @discardableResult
    public static func writeMINDIndex(
        tree: TreeLayout, encoder: MINDEncoder, provenance: TrainingProvenance? = nil, to path: String,
        progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil
    ) throws -> IndexHeader {
        let payload = encoder.indexPayload()
        return try writeEncoderIndex(tree: tree, tensors: payload.tensors, extra: payload.extra, producer: .mind,
                                     provenance: provenance, to: path, progress: progress, cancellation: cancellation)
    }

    /// Writes the tree built on an SDM model's item vectors with its session encoder (query producer
    /// ``QueryProducerKind/sdm``: the item ids in the extra ``SDMEncoder/itemIDsExtraName``, the
    /// weights as named tensors) and, when given, the training provenance.
    /// - Throws: as ``writeTwoTowerIndex(tree:encoder:provenance:to:progress:cancellation:)``.
    @discardableResult
    public static func writeSDMIndex(
        tree: TreeLayout, encoder: SDMEncoder, provenance: TrainingProvenance? = nil, to path: String,
        progress: some ProgressReporter = SilentProgress(), cancellation: CancellationFlag? = nil
    ) throws -> IndexHeader {
        try writeEncoderIndex(tree: tree, tensors: encoder.namedTensors(),
                              extra: [SDMEncoder.itemIDsExtraName: encoder.itemIDBytes], producer: .sdm,
                              provenance: provenance, to: path, progress: progress, cancellation: cancellation)
    }

    /// The index of a query encoder over an inner-product tree (two-tower, MIND, SDM): its tensors
    /// and extra values, the producer kind, and the provenance when given.
    private static func writeEncoderIndex(
        tree: TreeLayout, tensors: [NamedTensor], extra: [String: [UInt8]], producer: QueryProducerKind,
        provenance: TrainingProvenance?, to path: String, progress: some ProgressReporter, cancellation: CancellationFlag?
    ) throws -> IndexHeader {
        var extra = extra
        if let provenance { extra[TrainingProvenance.extraName] = try provenance.encoded() }
        return try IndexWriter().write(layout: tree, tensors: tensors, nodeScorer: .innerProduct, queryProducer: producer,
                                       extra: extra, to: path, progress: progress, cancellation: cancellation)
    }

    /// Writes a TDM model's trained tree (node embeddings from training), its serving weights and
    /// kinds, and, when given, the training provenance.
    /// - Throws: ``TDMError/invalid(_:)`` for invalid weights or provenance, ``TDMError/index(_:)``
    ///   for file errors; `path` is unchanged in every case.
    @discardableResult
    public static func writeTDMIndex(_ model: TDMModel, provenance: TrainingProvenance? = nil, to path: String,
                                     writer: IndexWriter = .init()) throws(TDMError) -> IndexHeader {
        do {
            var extra = [ModelTensorNames.behaviourIDs: ModelTensorNames.encode(ids: model.items)]
            if let provenance { extra[TrainingProvenance.extraName] = try provenance.encoded() }
            return try writer.write(layout: model.layout(), tensors: model.servingTensors(), nodeScorer: model.config.kind,
                                    queryProducer: model.queryProducerKind, extra: extra, to: path)
        } catch let e as ArborError { throw .invalid(e) } catch let e as IndexError { throw .index(e) } catch {
            throw .invalid(.invalidArgument(name: "index write", reason: "\(error)"))
        }
    }
}

extension TDMModel {
    /// Writes this model's index (``IndexFiles/writeTDMIndex(_:provenance:to:writer:)``).
    @discardableResult
    public func writeIndex(to path: String, writer: IndexWriter = .init(),
                           provenance: TrainingProvenance? = nil) throws(TDMError) -> IndexHeader {
        try IndexFiles.writeTDMIndex(self, provenance: provenance, to: path, writer: writer)
    }
}
