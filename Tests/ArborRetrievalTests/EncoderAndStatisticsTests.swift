import Testing
import ArborMath
import ArborTree
import ArborInference
import ArborModels
import ArborRetrieval

@Suite struct MeanPoolingEncoderTests {
    let vectors = try! Matrix(rows: 3, cols: 2, values: [1, 0, 0, 1, 1, 1])
    let ids: [ItemID] = [10, 20, 30]

    @Test func meanOfTheKnownHistory() throws {
        let e = try MeanPoolingEncoder(itemVectors: vectors, ids: ids)
        let q = try e.encode(history: [10, 20])
        #expect(q.vector == [0.5, 0.5])
        #expect(q.unknownItems == 0 && !q.usedFallback)
    }

    @Test func onlyTheMostRecentBehavioursCount() throws {
        let e = try MeanPoolingEncoder(itemVectors: vectors, ids: ids, maxHistory: 1)
        #expect(try e.encode(history: [10, 20]).vector == [0, 1])
    }

    @Test func unknownItemsAreIgnoredAndCountedOrRejected() throws {
        let e = try MeanPoolingEncoder(itemVectors: vectors, ids: ids)
        let q = try e.encode(history: [10, 99, 98])
        #expect(q.vector == [1, 0])
        #expect(q.unknownItems == 2)
        #expect(throws: ArborError.unknownItem(99)) { try e.encode(history: [10, 99], unknown: .reject) }
    }

    @Test func emptyHistoryFallsBackToTheCatalogueMean() throws {
        let e = try MeanPoolingEncoder(itemVectors: vectors, ids: ids)
        let q = try e.encode(history: [])
        #expect(q.usedFallback)
        #expect(abs(q.vector[0] - 2.0 / 3) < 1e-6 && abs(q.vector[1] - 2.0 / 3) < 1e-6)
    }

    @Test func duplicateIdsAreRejected() {
        #expect(throws: ArborError.duplicateItem(10)) {
            try MeanPoolingEncoder(itemVectors: vectors, ids: [10, 10, 30])
        }
    }
}

@Suite struct TreeStatisticsTests {
    @Test func countsLevelsChildrenAndBalance() throws {
        let n = 10
        let tree = try TreeBuilder.balancedKMeans(embeddings: randomMatrix(rows: n, cols: 2, seed: 1),
                                                  items: (0..<n).map { ItemID(UInt64($0)) },
                                                  options: .init(fanOut: 3))
        let s = TreeStatistics(view: tree, fanOut: 3)
        #expect(s.depth == 3)
        #expect(s.itemCount == 10)
        #expect(s.nodeCount == tree.nodeCount)
        #expect(s.levels[0].minItems == 10 && s.levels[0].maxItems == 10)
        #expect(s.levels[1].nodes == 3 && s.levels[1].minItems == 3 && s.levels[1].maxItems == 4)
        #expect(abs(s.leafOccupancy - 10.0 / 27) < 1e-9)
        #expect(s.levels.allSatisfy { $0.maxChildren <= 3 })
        #expect(s.levels.dropLast().map { $0.childCounts.reduce(0, +) } == s.levels.dropLast().map(\.nodes))
    }

    /// The beam cost model: on a complete tree beam search makes exactly the bound's evaluations;
    /// on a ragged one never more, and a beam as wide as the widest level scores every node once.
    @Test func beamEvaluationBoundIsTheBeamSearchCost() throws {
        for (n, fanOut, exact) in [(4096, 4, true), (1000, 16, false), (777, 3, false)] {
            let tree = try TreeBuilder.balancedKMeans(embeddings: randomMatrix(rows: n, cols: 4, seed: 2),
                                                      items: (0..<n).map { ItemID(UInt64($0)) },
                                                      options: .init(fanOut: fanOut))
            let s = TreeStatistics(view: tree, fanOut: fanOut)
            let retriever = try TreeRetriever(source: tree, scorer: InnerProductScorer(dimension: 4),
                                              itemCount: n, dimension: 4)
            let queries = randomMatrix(rows: 5, cols: 4, seed: 3)
            let widest = s.levels.map(\.nodes).max()!
            for beam in [8, 50, widest] {
                let bound = s.beamEvaluationBound(beamWidth: beam)
                for q in 0..<queries.rows {
                    let r = try retriever.search(Query(vector: Array(queries.row(q))), parameters: .init(k: 8, beamWidth: beam))
                    if exact || beam == widest {
                        #expect(r.statistics.modelEvaluations == bound, "n \(n) fan-out \(fanOut) beam \(beam)")
                    } else {
                        #expect(r.statistics.modelEvaluations <= bound, "n \(n) fan-out \(fanOut) beam \(beam)")
                    }
                }
            }
            #expect(s.beamEvaluationBound(beamWidth: widest) == s.nodeCount - 1)
        }
        // Complete fan-out 4 tree, beam 8: 4 + 16 + 8·4 per level below.
        let complete = TreeStatistics(view: try TreeBuilder.balancedKMeans(
            embeddings: randomMatrix(rows: 4096, cols: 4, seed: 2), items: (0..<4096).map { ItemID(UInt64($0)) },
            options: .init(fanOut: 4)), fanOut: 4)
        #expect(complete.depth == 6 && complete.beamEvaluationBound(beamWidth: 8) == 4 + 16 + 4 * 32)
    }
}
