import ArborCore
import ArborRetrieval
import ArborTree
import ArgumentParser
import Foundation

/// `arbor inspect`: what an index holds, how its model was trained, its shape and balance, and
/// (optionally) a full check.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show an index's header, training provenance, tree shape and balance; --verify checks every checksum.",
        discussion: paragraphs("""
            Indexes written by `arbor tdm` and `arbor train --index` record how their model was
            trained (model, data set and split sizes, protocol, seed, epochs, tree rounds, validation
            metric, negatives, optimizer, time, date); `arbor build` indexes show "provenance: none".
            """))

    @Option(help: "The index file.")
    var index: String

    @Flag(help: "Read every stored value and check its checksum (reads the whole file).")
    var verify = false

    func run() throws {
        let start = ContinuousClock.now
        let reader = try IndexReader(path: index)
        let openMs = seconds(since: start) * 1000
        let h = reader.header
        print("index \(index) (\(formatBytes(fileSize(index)))), format v\(h.formatVersion), opened in \(String(format: "%.2f", openMs)) ms")
        print("items \(h.itemCount), dimension \(h.dimension), fan-out \(h.fanOut), depth \(h.depth), nodes \(h.nodeCount)")
        print("node scorer \(h.nodeScorer.rawValue), query producer \(h.queryProducer.rawValue), categories \(h.hasCategories ? "yes" : "no")")
        if !h.tensors.isEmpty {
            print("tensors:")
            for t in h.tensors { print("  \(t.name) \(t.shape) digest \(String(t.digest, radix: 16))") }
        }
        if !h.extraNames.isEmpty { print("extra values: \(h.extraNames.joined(separator: ", "))") }
        if HNSWPersistence.hasGraph(reader) {
            let g = try HNSWPersistence.info(from: reader)
            print("hnsw: \(g.count) nodes, M = \(g.configuration.m), efConstruction = \(g.configuration.efConstruction), \(g.configuration.metric.rawValue), kernel \(g.configuration.kernel.rawValue), built with \(g.buildKernel?.rawValue ?? "unknown")")
        }
        // A damaged provenance does not hide the rest of the report; it fails the command at the end.
        var provenanceError: IndexError?
        do {
            if let p = try reader.trainingProvenance() {
                for line in provenanceLines(p) { print(line) }
            } else {
                print("provenance: none (built, not trained)")
            }
        } catch {
            print("provenance: unreadable (see the error below)")
            provenanceError = error
        }
        if h.formatVersion >= IndexFormat.firstUpdatableVersion {
            let now = try reader.currentHeader()
            if now.generation > 0 { print("after updates: items \(now.itemCount), generation \(now.generation)") }
            print("leaf slots \(h.leafSlots) (slack \(h.leafSlack) per leaf parent)")
        } else {
            print("format v\(h.formatVersion): read-only (rebuild to update in place)")
        }
        if let balance = try reader.balance() { print(balanceLine(balance)) }
        let stats = try reader.withView { view in TreeStatistics(view: copy view, fanOut: h.fanOut) }
        print(stats)
        let beams = [100, 200, 400, 800]
        print("beam search cost, model evaluations per query at most: "
              + beams.map { "beam \($0): \(stats.beamEvaluationBound(beamWidth: $0))" }.joined(separator: ", "))
        if verify {
            let v = ContinuousClock.now
            try reader.verify()
            print(String(format: "verify: every checksum matches (%.2f s)", seconds(since: v)))
        }
        if let provenanceError { throw provenanceError }
    }
}

/// The readable block `arbor inspect` prints for a training provenance: a summary line
/// ("trained: attention-DNN d=24 hidden 128-64-24 on ml-100k (tdm hold-out, seed 0), ...") and
/// indented lines for the data and the optimisation.
func provenanceLines(_ p: TrainingProvenance) -> [String] {
    let model = NodeScorerKind(rawValue: p.modelKind)?.tdmName ?? p.modelKind
    var summary = "trained: \(model) d=\(p.dimension)"
    if !p.hidden.isEmpty { summary += " hidden " + p.hidden.map(String.init).joined(separator: "-") }
    summary += " on \(p.dataset.name.isEmpty ? "unnamed data" : p.dataset.name) (\(p.protocolName), seed \(p.seed))"
    if let rounds = p.treeRounds, let kept = p.keptRound {
        summary += ", \(p.epochsRun) epochs over \(rounds) tree round\(rounds == 1 ? "" : "s")"
        summary += " (kept round \(kept) of \(rounds), its best epoch \(p.bestEpoch))"
    } else {
        summary += ", \(p.epochsRun) epoch\(p.epochsRun == 1 ? "" : "s") (best \(p.bestEpoch))"
    }
    if let metric = p.validationMetric, let value = p.validationValue {
        summary += ", validation \(metric) " + String(format: "%.4f", value)
    }
    summary += String(format: p.trainingSeconds < 10 ? ", %.1f s, " : ", %.0f s, ", p.trainingSeconds) + p.createdAt
    let d = p.dataset
    var data = "  data: \(d.items) items; \(d.trainUsers) training users, \(d.trainInteractions) interactions, "
        + "\(d.trainSamples) samples; \(d.validationUsers) validation and \(d.testUsers) test users"
    if let path = d.path { data += " (\(path))" }
    var training = "  training: negatives \(p.negatives); \(p.optimizer), learning rate \(p.learningRate)"
    if let e = p.embeddingLearningRate, e != p.learningRate { training += " (embeddings \(e))" }
    training += "; history \(p.maxHistory)"
    if let version = p.arborVersion { training += "; arbor \(version)" }
    if let start = p.initialization { training += "; start: \(start)" }
    return [summary, data, training] + (p.modelDetails.map { ["  model: \($0)"] } ?? [])
}
