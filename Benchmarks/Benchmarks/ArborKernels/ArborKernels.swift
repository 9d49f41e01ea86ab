// Kernels on the retrieval hot path, each beside the baseline it must beat, measured in one run:
// - top-k selection over a block of scores vs a full sort;
// - exact flat scan (blocked GEMM + running top-k), single query and batch of 64;
// - beam search over a 100k-item tree (fan-out 2 and 16) at the same k.
import ArborCore
import ArborMath
import ArborModels
import ArborRetrieval
import ArborTree
import Benchmark

func randomMatrix(rows: Int, cols: Int, seed: UInt64) -> Matrix {
    var rng = SplitMix64(seed: seed)
    return try! Matrix(rows: rows, cols: cols, values: (0..<(rows * cols)).map { _ in rng.nextUnitFloat() * 2 - 1 })
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal, .throughput],
                                           maxDuration: .seconds(3))
    BLAS.threads = 1
    let scores = randomMatrix(rows: 1, cols: 100_000, seed: 1).values

    Benchmark("top-100 of 100k scores: TopKSelector") { benchmark in
        var selector = TopKSelector(k: 100)
        for _ in benchmark.scaledIterations {
            selector.reset(k: 100)
            for (i, s) in scores.enumerated() { selector.push(score: s, id: Int32(i)) }
            blackHole(selector.count)
        }
    }
    Benchmark("top-100 of 100k scores: full sort (baseline)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(Array(scores.enumerated().sorted { $0.element > $1.element }.prefix(100)))
        }
    }

    let n = 100_000, d = 64
    let items = randomMatrix(rows: n, cols: d, seed: 2)
    let ids = (0..<n).map { ItemID(UInt64($0)) }
    let queries = randomMatrix(rows: 64, cols: d, seed: 3)
    let flat = try! FlatRetriever(items: items, ids: ids)
    let single = Query(vector: Array(queries.row(0)))
    let batch = (0..<64).map { Query(vector: Array(queries.row($0))) }

    Benchmark("flat scan 100k x 64, top-100, 1 query") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try flat.search(single, parameters: .init(k: 100)))
        }
    }
    Benchmark("flat scan 100k x 64, top-100, batch of 64 (per batch)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try flat.search(batch: batch, parameters: .init(k: 100)))
        }
    }
    for fanOut in [2, 16] {
        let tree = try! TreeBuilder.balancedKMeans(embeddings: items, items: ids,
                                                   options: .init(fanOut: fanOut, innerNodes: .normalizedMean))
        let retriever = try! TreeRetriever(tree: tree)
        Benchmark("beam search 100k x 64, fan-out \(fanOut), beam 200, top-100") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try retriever.search(single, parameters: .init(k: 100, beamWidth: 200)))
            }
        }
    }
}
