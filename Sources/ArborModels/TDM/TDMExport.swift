import ArborCore
import ArborInference
import ArborMath
import ArborNN
import ArborTree

/// Errors of TDM training and export.
public enum TDMError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The trained weights do not form the serving model (see ``ModelLoadError``).
    case load(ModelLoadError)
    /// No training sample remained (every target missing from the tree, or no data).
    case noTrainingSamples
    /// The loss became NaN or infinite.
    case diverged(epoch: Int, batch: Int)
    /// An argument or shape check failed.
    case invalid(ArborError)
    /// Reading or writing the index file failed.
    case index(IndexError)

    /// A one-line message naming what is wrong (what the CLI prints).
    public var description: String {
        switch self {
        case let .load(error):
            return error.description
        case .noTrainingSamples:
            return "no training samples (targets must be items of the tree)"
        case let .diverged(epoch, batch):
            return "training diverged (non-finite loss) in epoch \(epoch), batch \(batch)"
        case let .invalid(error):
            return error.description
        case let .index(error):
            return error.description
        }
    }
}

// MARK: - Export from a trained model

extension TDMModel {
    /// The behaviour table as a matrix (`items.count × d`).
    var behaviourMatrix: Matrix { behaviour.table.matrix }

    /// The query encoder of the inner-product and DNN scorers: mean of the behaviour embeddings
    /// of the last `maxHistory` known items (empty history → mean of all behaviour rows).
    /// - Throws: ``ArborError`` (cannot happen for a valid model).
    public func encoder() throws(ArborError) -> MeanPoolingEncoder {
        do { return try MeanPoolingEncoder(itemVectors: behaviourMatrix, ids: items, maxHistory: config.maxHistory) }
        catch let e as ArborError { throw e } catch { throw .invalidArgument(name: "encoder", reason: "\(error)") }
    }

    /// The product-DNN serving scorer (`u · n`).
    public func innerProductScorer() -> InnerProductScorer { InnerProductScorer(dimension: dimension) }

    private func inferenceMLP(_ mlp: MLP, name: String) throws(ArborError) -> InferenceMLP {
        var layers: [DenseLayer] = []
        for (i, layer) in mlp.layers.enumerated() {
            let act: InferenceActivation = i < mlp.slopes.count ? .prelu(slopes: mlp.slopes[i].value) : .identity
            do {
                layers.append(try DenseLayer(weight: layer.weight.matrix, bias: layer.bias!.value, activation: act, name: "\(name).\(i)"))
            } catch let e as ArborError { throw e } catch { throw .invalidArgument(name: name, reason: "\(error)") }
        }
        do { return try InferenceMLP(layers: layers) } catch let e as ArborError { throw e } catch {
            throw .invalidArgument(name: name, reason: "\(error)")
        }
    }

    /// JTM's hierarchical features for serving (``BehaviourHierarchy``): the hierarchy table and the
    /// per-level lookup built from the current tree; `nil` without ``TDMModelConfig/hierarchicalFeatures``.
    public func behaviourHierarchy() throws(ArborError) -> BehaviourHierarchy? {
        guard let hierarchy else { return nil }
        return try BehaviourHierarchy(embeddings: hierarchy.matrix, rows: hierarchyLookup(), behaviourCount: items.count)
    }

    /// The DNN serving scorer with the current weights.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` if the model is not a DNN model.
    public func dnnScorer() throws(ArborError) -> DNNScorer {
        guard let dnn else { throw .invalidArgument(name: "scorer", reason: "the model is '\(config.kind.rawValue)', not 'dnn'") }
        let hierarchy = try behaviourHierarchy()
        do {
            return try DNNScorer(dimension: dimension, mlp: inferenceMLP(dnn, name: "dnn"), hierarchy: hierarchy,
                                 behaviours: hierarchy == nil ? nil : encoder())
        }
        catch let e as ArborError { throw e } catch { throw .invalidArgument(name: "dnn", reason: "\(error)") }
    }

    /// The attention serving scorer with the current weights.
    /// - Throws: ``ArborError/invalidArgument(name:reason:)`` if the model is not an attention model.
    public func attentionScorer(unknownItems: UnknownItemPolicy = .ignore) throws(ArborError) -> AttentionScorer {
        guard let attentionUnit, let output else {
            throw .invalidArgument(name: "scorer", reason: "the model is '\(config.kind.rawValue)', not 'attention'")
        }
        do {
            return try AttentionScorer(dimension: dimension, behaviourEmbeddings: behaviourMatrix, behaviourIDs: items,
                                       attention: inferenceMLP(attentionUnit, name: "attention"),
                                       output: inferenceMLP(output, name: "output"), maxHistory: config.maxHistory,
                                       unknownItems: unknownItems, positions: positions?.matrix,
                                       hierarchy: behaviourHierarchy())
        } catch let e as ArborError { throw e } catch { throw .invalidArgument(name: "attention", reason: "\(error)") }
    }

    /// The serving model (scorer and query producer) with the current weights: what an index
    /// written from this model serves.
    public func servingModel(unknownItems: UnknownItemPolicy = .ignore) throws(ArborError) -> ServingModel {
        do {
            switch config.kind {
            case .innerProduct: return try ServingModel(scorer: .innerProduct(innerProductScorer()), producer: try encoder())
            case .dnn: return try ServingModel(scorer: .dnn(try dnnScorer()), producer: try encoder())
            case .attention:
                let scorer = try attentionScorer(unknownItems: unknownItems)
                return try ServingModel(scorer: .attention(scorer), producer: RawHistoryProducer(scorer: scorer))
            }
        } catch let e as ArborError { throw e } catch { throw .invalidArgument(name: "serving model", reason: "\(error)") }
    }

    /// The query producer kind recorded with this model's index.
    public var queryProducerKind: QueryProducerKind {
        config.kind == .attention ? .rawHistory : .behaviourMeanPooling
    }

    /// The serving weights as named tensors for the index (scorer weights, `behaviour.embeddings`,
    /// `encoder.maxHistory`); behaviour ids go in the extra value `behaviour.ids`.
    public func servingTensors() throws(ArborError) -> [ArborTree.NamedTensor] {
        let common: [ArborTree.NamedTensor] = [
            .init(name: ModelTensorNames.behaviourEmbeddings, shape: [items.count, dimension], values: behaviour.table.value),
            .init(name: ModelTensorNames.maxHistory, shape: [1], values: [Float(config.maxHistory)]),
        ]
        switch config.kind {
        case .innerProduct: return common
        case .dnn: return try dnnScorer().namedTensors() + common
        case .attention: return try attentionScorer().namedTensors()
        }
    }
}
