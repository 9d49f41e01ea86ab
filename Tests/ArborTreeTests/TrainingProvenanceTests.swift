import Foundation
import Testing
@testable import ArborTree

/// The training provenance stored as an index extra value: round trip, absence, and damaged values
/// that must be typed errors naming the field.
@Suite struct TrainingProvenanceIndexTests {
    static func sample() -> TrainingProvenance {
        TrainingProvenance(
            modelKind: "attention", dimension: 24, hidden: [128, 64, 24], maxHistory: 20,
            dataset: .init(name: "ml-100k", path: "/data/ml-100k.inter", items: 1349, trainUsers: 754,
                           trainInteractions: 44_000, trainSamples: 43_246, validationUsers: 94, testUsers: 94),
            protocolName: "tdm hold-out", seed: UInt64.max - 1, epochsRun: 9, bestEpoch: 4, treeRounds: 2, keptRound: 2,
            validationMetric: "recall@50", validationValue: 0.2345678901234, negatives: "growing, about 60 a sample",
            optimizer: "adam (dense) + lazy-adam (embeddings)", learningRate: 1e-3, embeddingLearningRate: 1e-2,
            trainingSeconds: 312.25, arborVersion: nil, createdAt: "2026-11-26T10:15:30Z")
    }

    /// Writes `Fixtures.smallLayout()` with `extra` and reopens it.
    static func index(extra: [String: [UInt8]], in dir: IndexTestDirectory) throws -> IndexReader {
        let path = dir.file("p.arbor")
        try IndexWriter().write(layout: Fixtures.smallLayout(), nodeScorer: .attention, extra: extra, to: path)
        return try IndexReader(path: path)
    }

    /// Written with the index, reopened, decoded equal (the 64-bit seed and the floats exactly).
    @Test func provenanceRoundTripsThroughAnIndex() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let p = Self.sample()
        let bytes = try p.encoded()
        let reader = try Self.index(extra: [TrainingProvenance.extraName: bytes], in: dir)
        #expect(reader.extraNames == [TrainingProvenance.extraName])
        #expect(try reader.trainingProvenance() == p)
        // JSON with sorted keys: readable by other tools, byte-stable for equal records.
        let json = String(decoding: bytes, as: UTF8.self)
        #expect(json.hasPrefix("{\"arborVersion\"") || json.hasPrefix("{\"bestEpoch\""))
        #expect(json.contains("\"learningRate\":0.001"))
        #expect(try p.encoded() == bytes)
        try reader.verify()
        // A fresh timestamp is ISO 8601 and valid.
        var now = p
        now.createdAt = TrainingProvenance.timestamp()
        try now.validate()
    }

    /// An index built without training has no provenance: `nil`, not an error.
    @Test func indexWithoutProvenanceReadsAsNil() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let reader = try Self.index(extra: ["note": Array("hello".utf8)], in: dir)
        #expect(try reader.trainingProvenance() == nil)
    }

    /// Damaged values (wrong type, missing key, broken invariant, not JSON, bad date) are
    /// ``IndexError/corruptProvenance(path:field:reason:)`` naming the field.
    @Test(arguments: [
        ("\"epochsRun\":9", "\"epochsRun\":\"nine\"", "epochsRun"),
        ("\"items\":1349,", "", "dataset.items"),
        ("\"bestEpoch\":4", "\"bestEpoch\":10", "bestEpoch"),
        ("\"hidden\":[128,64,24]", "\"hidden\":[128,0,24]", "hidden[1]"),
        ("\"keptRound\":2", "\"keptRound\":3", "keptRound"),
        ("\"createdAt\":\"2026-11-26T10:15:30Z\"", "\"createdAt\":\"yesterday\"", "createdAt"),
        ("{", "[", "(json)"),
    ])
    func malformedProvenanceIsATypedErrorNamingTheField(find: String, replace: String, field: String) throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let json = String(decoding: try Self.sample().encoded(), as: UTF8.self)
        #expect(json.contains(find))
        let damaged = json.replacingOccurrences(of: find, with: replace)
        let reader = try Self.index(extra: [TrainingProvenance.extraName: Array(damaged.utf8)], in: dir)
        do {
            _ = try reader.trainingProvenance()
            Issue.record("expected an error for \(field)")
        } catch {
            guard case let .corruptProvenance(path, f, _) = error else {
                Issue.record("unexpected \(error)"); return
            }
            #expect(path == reader.path)
            #expect(f == field, "\(error)")
            #expect(error.description.contains("field '\(field)'"))
        }
        // The rest of the index is still usable.
        #expect(try reader.loadLayout() == Fixtures.smallLayout())
    }

    /// A record that breaks an invariant is refused before anything is written.
    @Test func invalidProvenanceIsRefusedBeforeEncoding() {
        var p = Self.sample()
        p.trainingSeconds = .nan
        #expect(throws: ArborError.self) { try p.encoded() }
        do { _ = try p.encoded() } catch {
            #expect(error.description.contains("trainingSeconds"))
        }
        p = Self.sample()
        p.keptRound = nil
        #expect(throws: ArborError.invalidArgument(name: "training provenance field 'keptRound'",
                                                   reason: "is missing while treeRounds is set")) { try p.validate() }
    }
}
