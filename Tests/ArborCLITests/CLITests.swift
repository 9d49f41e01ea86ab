import Foundation
import Testing

/// End-to-end checks of the `arbor` executable: exit codes, error messages that name the file or
/// field at fault, and an existing index that survives every failed or interrupted build.
@Suite(.serialized) struct CLITests {
    /// The built `arbor` next to the test bundle.
    static var executable: URL {
        let bundle = Bundle.main.bundleURL
        for dir in [bundle.deletingLastPathComponent(), bundle] {
            let candidate = dir.appendingPathComponent("arbor")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        // swift test puts the bundle in .build/<config>/; fall back to the debug product.
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/arbor")
    }

    /// Runs `arbor` to its end (both pipes drained at once, see ``ChildProcess``).
    @discardableResult
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> ChildProcess.Outcome {
        try ChildProcess(executable, arguments, environment: environment).wait()
    }

    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("arbor-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A little-endian float32 .npy written by hand (the CLI reads what numpy writes).
    static func writeNPY(_ values: [Float], rows: Int, cols: Int, to url: URL) throws {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(cols)), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        try data.write(to: url)
    }

    static func buildGoodIndex(in dir: URL) throws -> URL {
        let index = dir.appendingPathComponent("items.arbor")
        let r = try run(["build", "--synthetic", "2000", "--dim", "8", "--out", index.path])
        #expect(r.status == 0, "\(r.stderr)")
        return index
    }

    @Test func buildQueryInspectRoundTrip() throws {
        let dir = try Self.temporaryDirectory()
        let index = try Self.buildGoodIndex(in: dir)
        let inspect = try Self.run(["inspect", "--index", index.path, "--verify"])
        #expect(inspect.status == 0)
        #expect(inspect.stdout.contains("items 2000, dimension 8"))
        #expect(inspect.stdout.contains("verify: every checksum matches"))
        #expect(inspect.stdout.contains("provenance: none (built, not trained)"))
        let query = try Self.run(["query", "--index", index.path, "--vector", "1,0,0,0,0,0,0,0", "--k", "5", "--beam", "4096"])
        #expect(query.status == 0, "\(query.stderr)")
        let exact = try Self.run(["query", "--index", index.path, "--vector", "1,0,0,0,0,0,0,0", "--k", "5", "--exact"])
        // A beam wider than every level equals the exact scan: ids exactly, scores within 1e-5 relative.
        #expect(Self.sameRanking(query.stdout, exact.stdout, count: 5))
        let history = try Self.run(["query", "--index", index.path, "--history", "1,2,999999999", "--k", "3"])
        #expect(history.status == 0)
        #expect(history.stderr.contains("ignored 1 history ids"))
        // The history's own leaf rows are pooled: beam search wider than every level equals the exact scan.
        let wide = try Self.run(["query", "--index", index.path, "--history", "1,2,1,5", "--k", "5", "--beam", "4096"])
        let exactHistory = try Self.run(["query", "--index", index.path, "--history", "1,2,1,5", "--k", "5", "--exact"])
        #expect(wide.status == 0 && Self.sameRanking(wide.stdout, exactHistory.stdout, count: 5))
        let unknownOnly = try Self.run(["query", "--index", index.path, "--history", "999999999", "--k", "3"])
        #expect(unknownOnly.status == 0 && unknownOnly.stderr.contains("fallback"), "\(unknownOnly.stderr)")
        let strict = try Self.run(["query", "--index", index.path, "--history", "1,999999999", "--reject-unknown"])
        #expect(strict.status != 0)
        #expect(strict.stderr.contains("unknown item id 999999999"))
    }

    /// The rows of `arbor query`'s table as (item, score).
    /// Two printed rankings of `count` items: the same ids in the same order, scores within 1e-5
    /// relative (the tree and the exact scan may sum in different orders).
    static func sameRanking(_ a: String, _ b: String, count: Int) -> Bool {
        let x = ranking(a), y = ranking(b)
        return x.count == count && y.count == count && x.map(\.item) == y.map(\.item)
            && zip(x, y).allSatisfy { abs($0.score - $1.score) <= 1e-5 * max(1, abs($1.score)) }
    }

    static func ranking(_ stdout: String) -> [(item: String, score: Double)] {
        stdout.split(separator: "\n").dropFirst().compactMap { line in
            let f = line.split(separator: "\t")
            guard f.count == 3, let score = Double(f[2]) else { return nil }
            return (String(f[1]), score)
        }
    }

    /// Relative tolerance between scores computed by different kernels (HNSW's dot kernel against
    /// the exact scan's BLAS): float32 sums of 8 products differ by a few units in the last place.
    static let scoreTolerance = 1e-5

    @Test func hnswGraphIsStoredBesideTheTreeAndServesQueries() throws {
        let dir = try Self.temporaryDirectory()
        let index = dir.appendingPathComponent("graph.arbor")
        let build = try Self.run(["build", "--synthetic", "1500", "--dim", "8", "--hnsw", "--hnsw-m", "8", "--out", index.path])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(build.stdout.contains("hnsw graph (M = 8"))
        let vector = "0.5,1,0,0,-1,0,0,2"
        let graph = try Self.run(["query", "--index", index.path, "--vector", vector, "--k", "5", "--hnsw", "--ef-search", "2000"])
        let exact = try Self.run(["query", "--index", index.path, "--vector", vector, "--k", "5", "--exact"])
        #expect(graph.status == 0, "\(graph.stderr)")
        // efSearch beyond the item count scans exactly: the same ids in the same order; scores agree
        // within the tolerance (the graph's dot kernel and BLAS may differ in the last bits).
        let (g, e) = (Self.ranking(graph.stdout), Self.ranking(exact.stdout))
        #expect(g.count == 5 && g.map(\.item) == e.map(\.item))
        for (a, b) in zip(g, e) {
            #expect(abs(a.score - b.score) <= Self.scoreTolerance * max(1, abs(b.score)), "\(a.score) vs \(b.score)")
        }
        let inspect = try Self.run(["inspect", "--index", index.path, "--verify"])
        #expect(inspect.stdout.contains("hnsw.meta"))
        #expect(inspect.stdout.contains("hnsw: 1500 nodes, M = 8"), "\(inspect.stdout)")
        #expect(!inspect.stdout.contains("built with unknown"))
        let plain = try Self.buildGoodIndex(in: dir)
        let none = try Self.run(["query", "--index", plain.path, "--vector", vector, "--hnsw"])
        #expect(none.status != 0)
        #expect(none.stderr.contains("has no HNSW graph"))
    }

    @Test func hnswQueryClampsHugeEfSearchAndK() throws {
        let dir = try Self.temporaryDirectory()
        let index = dir.appendingPathComponent("graph.arbor")
        let build = try Self.run(["build", "--synthetic", "300", "--dim", "8", "--hnsw", "--hnsw-m", "8", "--out", index.path])
        #expect(build.status == 0, "\(build.stderr)")
        let vector = "0.5,1,0,0,-1,0,0,2"
        let huge = try Self.run(["query", "--index", index.path, "--vector", vector, "--hnsw", "--ef-search", "\(Int.max)"])
        #expect(huge.status == 0, "\(huge.stderr)")
        #expect(Self.ranking(huge.stdout).count == 10)
        let all = try Self.run(["query", "--index", index.path, "--vector", vector, "--hnsw", "--k", "\(Int.max)", "--ef-search", "\(Int.max)"])
        #expect(all.status == 0, "\(all.stderr)")
        #expect(Self.ranking(all.stdout).count == 300)  // k above the item count returns every item
    }

    /// The tree's knobs at `Int.max` give a result, never a trap: the beam is clamped to the widest
    /// level (then equals the exact scan), `k` to the item count; `--exclude` and `--history` too.
    @Test func treeQueryClampsHugeBeamAndK() throws {
        let dir = try Self.temporaryDirectory()
        let index = dir.appendingPathComponent("tree.arbor")
        let build = try Self.run(["build", "--synthetic", "300", "--dim", "8", "--fan-out", "4", "--out", index.path])
        #expect(build.status == 0, "\(build.stderr)")
        let vector = "0.5,1,0,0,-1,0,0,2"
        let huge = try Self.run(["query", "--index", index.path, "--vector", vector, "--beam", "\(Int.max)", "--exclude", "1"])
        #expect(huge.status == 0, "\(huge.stderr)")
        let exact = try Self.run(["query", "--index", index.path, "--vector", vector, "--exact", "--exclude", "1"])
        #expect(Self.ranking(huge.stdout).map(\.item) == Self.ranking(exact.stdout).map(\.item))
        let all = try Self.run(["query", "--index", index.path, "--vector", vector, "--k", "\(Int.max)",
                                "--beam", "\(Int.max)", "--exclude", "1"])
        #expect(all.status == 0, "\(all.stderr)")
        #expect(Self.ranking(all.stdout).count == 299)
        let history = try Self.run(["query", "--index", index.path, "--history", "1,2", "--k", "\(Int.max)", "--beam", "\(Int.max)"])
        #expect(history.status == 0, "\(history.stderr)")
        #expect(Self.ranking(history.stdout).count == 298)
        let zero = try Self.run(["query", "--index", index.path, "--vector", vector, "--k", "0"])
        #expect(zero.status != 0 && zero.stderr.contains("--k must be at least 1"))
    }

    @Test func oneThreadHNSWBuildsInTwoProcessesGiveTheSameGraph() throws {
        let dir = try Self.temporaryDirectory()
        var outputs = [[String]]()
        for name in ["a", "b"] {
            let index = dir.appendingPathComponent("\(name).arbor")
            let build = try Self.run(["build", "--synthetic", "1200", "--dim", "8", "--hnsw", "--hnsw-m", "6",
                                      "--hnsw-ef-construction", "40", "--hnsw-threads", "1", "--out", index.path])
            #expect(build.status == 0, "\(build.stderr)")
            // Small efSearch: the answers (and their cost) follow the graph's links.
            var answers = [String]()
            for vector in ["0.5,1,0,0,-1,0,0,2", "1,0,0,0,0,0,0,0", "-1,2,0.5,0,3,0,-2,1", "0,0,0,1,1,1,0,0"] {
                let q = try Self.run(["query", "--index", index.path, "--vector=\(vector)", "--k", "10", "--hnsw", "--ef-search", "10"])
                #expect(q.status == 0, "\(q.stderr)")
                answers.append(q.stdout + q.stderr)
            }
            outputs.append(answers)
        }
        #expect(outputs[0] == outputs[1])  // same process kind, same seed, same kernel: identical bits
    }

    /// A small RecBole log (120 users of 4 interest groups, 16 events each over 80 items) for
    /// `arbor tdm`, written as `toy.inter` in `dir`.
    static func writeToyInter(in dir: URL) throws -> URL {
        let inter = dir.appendingPathComponent("toy.inter")
        var text = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        for u in 0..<120 {
            for t in 0..<16 { text += "\(u)\t\((u % 4) * 20 + (u * 7 + t * 3) % 20)\t5\t\(1000 + t)\n" }
        }
        try Data(text.utf8).write(to: inter)
        return inter
    }

    /// A TDM index records how it was trained (`arbor inspect` prints it), and `arbor query
    /// --history` on it counts unknown ids as the two-tower path does, or rejects them.
    @Test func tdmIndexShowsItsProvenanceAndCountsUnknownHistoryIDs() throws {
        let dir = try Self.temporaryDirectory()
        let inter = try Self.writeToyInter(in: dir)
        let out = dir.appendingPathComponent("tdm")
        let train = try Self.run(["tdm", "--inter", inter.path, "--kinds", "dnn", "--epochs", "1", "--rounds", "2",
                                  "--samples-per-epoch", "200", "--beam", "20", "--seed", "7", "--no-two-tower", "--out", out.path])
        #expect(train.status == 0, "\(train.stderr)")
        let index = out.appendingPathComponent("dnn.arbor").path
        let inspect = try Self.run(["inspect", "--index", index])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("extra values: behaviour.ids, training.provenance"))
        #expect(inspect.stdout.contains("trained: DNN d=24 hidden 128-64-24 on toy (tdm hold-out, seed 7), 2 epochs over 2 tree rounds"))
        #expect(inspect.stdout.contains("validation recall@50 "))
        #expect(inspect.stdout.contains("data: 80 items; 96 training users, 1536 interactions, 1440 samples; 12 validation and 12 test users (\(inter.path))"))
        #expect(inspect.stdout.contains("training: negatives growing, about 60 a sample; adam (dense) + lazy-adam (embeddings)"))
        #expect(inspect.stdout.contains("start: initial tree (category order), random embeddings"))
        #expect(!inspect.stdout.contains("provenance: none"))
        // A damaged provenance fails inspect with the value named, after the rest of the report.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: index))
        let field = Data("\"modelKind\":\"dnn\"".utf8)
        let at = try #require(bytes.range(of: field))
        bytes[at.upperBound - 2] = UInt8(ascii: "X")
        let damaged = dir.appendingPathComponent("damaged.arbor")
        try bytes.write(to: damaged)
        let bad = try Self.run(["inspect", "--index", damaged.path])
        #expect(bad.status != 0)
        #expect(bad.stdout.contains("provenance: unreadable") && bad.stdout.contains("leaf occupancy"))
        #expect(bad.stderr.contains("damaged.arbor") && bad.stderr.contains("training.provenance"), "\(bad.stderr)")

        let lenient = try Self.run(["query", "--index", index, "--history", "1,99999,2,88888", "--k", "3"])
        #expect(lenient.status == 0, "\(lenient.stderr)")
        #expect(lenient.stderr.contains("arbor: ignored 2 history ids not in the index"))
        #expect(lenient.stdout.split(separator: "\n").count == 4)
        let known = try Self.run(["query", "--index", index, "--history", "1,2", "--k", "3"])
        #expect(known.status == 0 && !known.stderr.contains("ignored"))
        let strict = try Self.run(["query", "--index", index, "--history", "1,2,88888", "--reject-unknown"])
        #expect(strict.status != 0)
        #expect(strict.stderr.contains("unknown item id 88888"))
    }

    /// `arbor tdm` trains deep scorers with their trees and writes indexes that `arbor query`
    /// serves from a behaviour list, beam search agreeing with brute force at a full beam.
    /// Several seeds in one run: one index per model and seed, and a report with mean ± spread;
    /// bad seed lists and mixed data options are refused before any work.
    @Test func tdmRunsSeveralSeedsAndTheAmazonDemo() throws {
        let dir = try Self.temporaryDirectory()
        let inter = try Self.writeToyInter(in: dir)
        let out = dir.appendingPathComponent("seeds")
        let run = try Self.run(["tdm", "--inter", inter.path, "--kinds", "inner-product", "--epochs", "1", "--rounds", "1",
                                "--samples-per-epoch", "200", "--beam", "20", "--seeds", "0,3", "--no-two-tower", "--out", out.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("2 seed(s) (0, 3)") && run.stdout.contains(" ± "))
        #expect(run.stdout.contains("hit rate@50"))
        for seed in [0, 3] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("inner-product-seed\(seed).arbor").path))
        }
        let twice = try Self.run(["tdm", "--inter", inter.path, "--seeds", "1,1", "--out", out.path])
        #expect(twice.status != 0 && twice.stderr.contains("--seeds names a seed twice"))
        let negative = try Self.run(["tdm", "--inter", inter.path, "--seeds", "-1", "--out", out.path])
        #expect(negative.status != 0 && negative.stderr.contains("--seeds"))
        // The Amazon Books demo format: training rows user,item,order and held-out users.
        let train = dir.appendingPathComponent("train_demo.txt"), valid = dir.appendingPathComponent("valid.txt")
        var rows = "", held = ""
        for u in 0..<60 {
            for t in 0..<8 { rows += "\(u),\(1 + (u % 3) * 10 + (u + t) % 10),\(t)\n" }
        }
        for u in 0..<8 {
            held += "user_id:\(1000 + u) target_item:0 hist_item:\(1 + u % 3) hist_item:\(2 + u % 3) eval_item:\(5 + u % 3) eval_item:99999\n"
        }
        try rows.write(to: train, atomically: true, encoding: .utf8)
        try held.write(to: valid, atomically: true, encoding: .utf8)
        let amazonOut = dir.appendingPathComponent("amazon")
        let amazon = try Self.run(["tdm", "--amazon-train", train.path, "--amazon-valid", valid.path, "--kinds", "inner-product",
                                   "--epochs", "1", "--rounds", "1", "--beam", "20", "--out", amazonOut.path])
        #expect(amazon.status == 0, "\(amazon.stderr)")
        #expect(amazon.stdout.contains("### amazon-books-demo") && amazon.stdout.contains("popularity"))
        // The flat product-DNN baseline (two-tower) is trained beside the TDM models unless --no-two-tower.
        #expect(amazon.stdout.contains("| flat product-DNN: two-tower (exact IP) |"), "\(amazon.stdout)")
        #expect(!run.stdout.contains("two-tower"))
        let inspect = try Self.run(["inspect", "--index", amazonOut.appendingPathComponent("inner-product.arbor").path])
        #expect(inspect.stdout.contains("Amazon Books demo"), "\(inspect.stdout)")
        let both = try Self.run(["tdm", "--inter", inter.path, "--amazon-train", train.path, "--amazon-valid", valid.path,
                                 "--out", amazonOut.path])
        #expect(both.status != 0 && both.stderr.contains("give exactly one of --inter, --amazon-train and --synthetic"))
        // Planted multi-interest users: the report carries the oracle.
        let synthetic = try Self.run(["tdm", "--synthetic", "200", "--kinds", "inner-product", "--epochs", "1", "--rounds", "1",
                                      "--samples-per-epoch", "300", "--beam", "20", "--no-two-tower",
                                      "--out", dir.appendingPathComponent("syn").path])
        #expect(synthetic.status == 0, "\(synthetic.stderr)")
        #expect(synthetic.stdout.contains("### synthetic") && synthetic.stdout.contains("| oracle (true interests) |"))
    }

    @Test func tdmModelsAreServedFromTheIndex() throws {
        let dir = try Self.temporaryDirectory()
        let inter = try Self.writeToyInter(in: dir)
        let out = dir.appendingPathComponent("tdm")
        let train = try Self.run(["tdm", "--inter", inter.path, "--kinds", "dnn,attention", "--epochs", "1", "--rounds", "1",
                                  "--samples-per-epoch", "400", "--beam", "20", "--no-two-tower", "--out", out.path])
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stdout.contains("tree + attention-DNN"))
        for kind in ["dnn", "attention"] {
            let index = out.appendingPathComponent("\(kind).arbor").path
            let beam = try Self.run(["query", "--index", index, "--history", "1,2,3", "--k", "5", "--beam", "200"])
            let brute = try Self.run(["query", "--index", index, "--history", "1,2,3", "--k", "5", "--exact"])
            #expect(beam.status == 0, "\(beam.stderr)")
            #expect(beam.stdout.split(separator: "\n").count == 6)
            #expect(beam.stdout.split(separator: "\n").map { $0.split(separator: "\t").prefix(2) }
                    == brute.stdout.split(separator: "\n").map { $0.split(separator: "\t").prefix(2) })
            let strict = try Self.run(["query", "--index", index, "--history", "1,99999", "--reject-unknown"])
            #expect(strict.status != 0)
            #expect(strict.stderr.contains("99999"))
            // The DNN reads a user vector (of the index's width); attention reads the behaviour list only.
            let vector = try Self.run(["query", "--index", index, "--vector", "1,2"])
            #expect(vector.status != 0)
            #expect(vector.stderr.contains(kind == "dnn" ? "expected 24 values, found 2" : "give --history"))
        }
    }

    /// The deep-scorer cost benchmark: with a beam wider than every level the tree finds exactly
    /// what brute force with the same model finds.
    @Test(arguments: ["dnn", "attention"])
    func benchWithADeepScorerComparesAgainstBruteForce(scorer: String) throws {
        let dir = try Self.temporaryDirectory()
        let r = try Self.run(["bench", "--synthetic", "600", "--dim", "8", "--users", "4", "--scorer", scorer, "--k", "10",
                              "--beams", "10,1000", "--out", dir.appendingPathComponent("b").path])
        #expect(r.status == 0, "\(r.stderr)")
        let wide = r.stdout.split(separator: "\n").first { $0.hasPrefix("| tree") && $0.contains("beam=1000") }
        #expect(wide?.contains("1.0000") == true)
        #expect(r.stdout.contains("brute-force"))
        // The model's arithmetic rate is reported per row.
        #expect(r.stdout.contains("FLOP per candidate") && r.stdout.contains("GFLOP/s over the whole query"))
        #expect(r.stdout.contains("scorer alone, one call on"))
    }

    /// `--interests K` times K-vector users through the tree against one vector, and is range-checked.
    @Test func benchTimesMultiInterestUsers() throws {
        let dir = try Self.temporaryDirectory()
        let r = try Self.run(["bench", "--synthetic", "600", "--dim", "8", "--users", "8", "--k", "10", "--beams", "10,1000",
                              "--interests", "4", "--interest-beams", "separate,shared", "--flat-batch", "0",
                              "--out", dir.appendingPathComponent("b").path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("4 interests through the tree, per-interest beam 10"))
        #expect(r.stdout.contains("4 interests through the tree, one shared beam 10"))
        // A beam wider than any level finds the exact merged top k, in both modes.
        #expect(r.stdout.contains("per-interest beam 1000, 1 thread:") && r.stdout.contains("one shared beam 1000, 1 thread:"))
        for line in r.stdout.split(separator: "\n") where line.contains("beam 1000, 1 thread:") {
            #expect(line.contains("merged recall@10 1.0000") && line.contains("recall 1.0000"), "\(line)")
        }
        for bad in ["65", "-1", "\(Int.max)"] {
            let refused = try Self.run(["bench", "--synthetic", "600", "--interests", bad])
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("interests"))
        }
        for bad in ["both", "shared,shared", ""] {
            let refused = try Self.run(["bench", "--synthetic", "600", "--interests", "2", "--interest-beams", bad])
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("--interest-beams"), "\(refused.stderr)")
        }
    }

    @Test func badQueriesFailWithTheField() throws {
        let dir = try Self.temporaryDirectory()
        let index = try Self.buildGoodIndex(in: dir)
        let short = try Self.run(["query", "--index", index.path, "--vector", "1,2"])
        #expect(short.status != 0)
        #expect(short.stderr.contains("query vector: expected 8 values, found 2"))
        let nan = try Self.run(["query", "--index", index.path, "--vector", "1,nan,0,0,0,0,0,0"])
        #expect(nan.status != 0)
        #expect(nan.stderr.contains("NaN"))
        let word = try Self.run(["query", "--index", index.path, "--vector", "1,x,0"])
        #expect(word.status != 0)
        #expect(word.stderr.contains("'x' is not a number"))
    }

    @Test func missingForeignAndTruncatedIndexesAreClearErrors() throws {
        let dir = try Self.temporaryDirectory()
        let missing = try Self.run(["inspect", "--index", dir.appendingPathComponent("none.arbor").path])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("none.arbor"))
        let text = dir.appendingPathComponent("text.arbor")
        try Data("hello, this is not an index\n".utf8).write(to: text)
        let foreign = try Self.run(["inspect", "--index", text.path])
        #expect(foreign.status != 0)
        #expect(foreign.stderr.contains("text.arbor"))
        let index = try Self.buildGoodIndex(in: dir)
        let bytes = try Data(contentsOf: index)
        let cut = dir.appendingPathComponent("cut.arbor")
        try bytes.prefix(bytes.count / 2).write(to: cut)
        let truncated = try Self.run(["inspect", "--index", cut.path])
        #expect(truncated.status != 0)
        #expect(truncated.stderr.contains("cut.arbor"))
    }

    @Test func badVectorFilesLeaveTheExistingIndexIntact() throws {
        let dir = try Self.temporaryDirectory()
        let index = try Self.buildGoodIndex(in: dir)
        let before = try Data(contentsOf: index)
        // NaN in the vectors.
        let nan = dir.appendingPathComponent("nan.npy")
        try Self.writeNPY([1, 2, .nan, 4, 5, 6], rows: 3, cols: 2, to: nan)
        let r1 = try Self.run(["build", "--vectors", nan.path, "--out", index.path])
        #expect(r1.status != 0)
        #expect(r1.stderr.contains("nan.npy") && r1.stderr.contains("row 1"))
        // Finite values whose products overflow Float32 (2.6e38): rejected with the row, no trap.
        let huge = dir.appendingPathComponent("huge.npy")
        try Self.writeNPY([1, 2, 3, 4, 2.6e38, 6, 7, 8], rows: 4, cols: 2, to: huge)
        let r0 = try Self.run(["build", "--vectors", huge.path, "--out", index.path])
        #expect(r0.status != 0)
        #expect(r0.stderr.contains("huge.npy") && r0.stderr.contains("row 2") && r0.stderr.contains("overflow"))
        // Ids that do not match the rows, and duplicate ids.
        let good = dir.appendingPathComponent("good.npy")
        try Self.writeNPY([1, 2, 3, 4, 5, 6], rows: 3, cols: 2, to: good)
        let ids = dir.appendingPathComponent("ids.txt")
        try Data("1\n2\n".utf8).write(to: ids)
        let r2 = try Self.run(["build", "--vectors", good.path, "--ids", ids.path, "--out", index.path])
        #expect(r2.status != 0)
        #expect(r2.stderr.contains("ids.txt has 2 ids"))
        try Data("1\n2\n1\n".utf8).write(to: ids)
        let r3 = try Self.run(["build", "--vectors", good.path, "--ids", ids.path, "--out", index.path])
        #expect(r3.status != 0)
        #expect(r3.stderr.contains("duplicate item id 1"))
        // A malformed id line is named by file and line.
        try Data("1\nx2\n3\n".utf8).write(to: ids)
        let r4 = try Self.run(["build", "--vectors", good.path, "--ids", ids.path, "--out", index.path])
        #expect(r4.status != 0)
        #expect(r4.stderr.contains("ids.txt:2"))
        // A truncated .npy.
        let cut = dir.appendingPathComponent("cut.npy")
        try Data(try Data(contentsOf: good).dropLast(5)).write(to: cut)
        let r5 = try Self.run(["build", "--vectors", cut.path, "--out", index.path])
        #expect(r5.status != 0)
        #expect(r5.stderr.contains("cut.npy"))
        // An empty data set.
        let empty = dir.appendingPathComponent("empty.npy")
        try Self.writeNPY([], rows: 0, cols: 2, to: empty)
        let r6 = try Self.run(["build", "--vectors", empty.path, "--out", index.path])
        #expect(r6.status != 0)
        #expect(try Data(contentsOf: index) == before)
        #expect(try Self.run(["inspect", "--index", index.path, "--verify"]).status == 0)
    }

    /// The writer is paused by its test hook once the new index is complete in its temporary file,
    /// then interrupted (SIGINT: a clean stop) or killed (SIGKILL: the temporary file stays behind,
    /// and the next build removes it). Either way the old index is intact and opens.
    @Test(arguments: [SIGINT, SIGKILL])
    func interruptedBuildLeavesTheOldIndexReadable(signal: Int32) throws {
        let dir = try Self.temporaryDirectory()
        let index = try Self.buildGoodIndex(in: dir)
        let before = try Data(contentsOf: index)
        let marker = dir.appendingPathComponent("writer-paused")
        let child = try ChildProcess(Self.executable, ["build", "--synthetic", "3000", "--dim", "8", "--out", index.path],
                                     environment: ["ARBOR_TEST_PAUSE_BEFORE_RENAME": marker.path])
        let paused = ChildProcess.waitUntil(timeout: 120) { FileManager.default.fileExists(atPath: marker.path) }
        #expect(paused, "the writer never reached its pause point: \(child.stderrSoFar)")
        let temporaries = { try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("items.arbor.tmp-") } }
        #expect(try !temporaries().isEmpty)
        kill(child.processIdentifier, signal)
        if signal == SIGINT {
            // Resume the writer only once the interrupt was seen, so it stops at its next check.
            #expect(ChildProcess.waitUntil(timeout: 60) { child.stderrSoFar.contains("stopping cleanly") })
            try FileManager.default.removeItem(at: marker)
        }
        let r = child.wait()
        if signal == SIGINT {
            #expect(r.reason == .exit && r.status == 130 && r.stderr.contains("stopped on interrupt"), "\(r.status): \(r.stderr)")
            #expect(try temporaries().isEmpty)
        } else {
            #expect(r.reason == .uncaughtSignal && r.status == SIGKILL)
            #expect(try !temporaries().isEmpty)
        }
        #expect(try Data(contentsOf: index) == before)
        let inspect = try Self.run(["inspect", "--index", index.path, "--verify"])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("items 2000"))
        // The next build of the path removes what the killed writer left.
        _ = try Self.buildGoodIndex(in: dir)
        #expect(try temporaries().isEmpty)
    }

    /// A tiny `arbor demo --deep`: the scale part, both models trained and served from their
    /// indexes, summary lines whose numbers parse, and the reports written. No timing is checked.
    @Test func demoPrintsASummaryAndWritesReports() throws {
        let dir = try Self.temporaryDirectory()
        let out = dir.appendingPathComponent("demo").path
        let r = try Self.run(["demo", "--items", "400", "--users", "200", "--test-users", "30", "--validation-users", "30",
                              "--epochs", "1", "--samples-per-epoch", "500", "--two-tower-epochs", "1", "--beam", "20",
                              "--scale-items", "3000", "--scale-queries", "20", "--scale-beam", "3000",
                              "--deep", "--seed", "3", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        func numbers(_ line: String) -> [Double] {
            line.split(whereSeparator: { " (),;:=".contains($0) }).compactMap { token -> Double? in
                Double(token.hasSuffix("x") ? String(token.dropLast()) : String(token))
            }
        }
        // "tree vs exact scan: at N items the tree (beam=B) finds R of the exact scan's top K at Sx its QPS (...)":
        // a beam as wide as the catalogue finds the whole exact top 100.
        let scale = try #require(lines.last { $0.hasPrefix("tree vs exact scan: at 3000 items") }, "\(r.stdout)")
        let s = numbers(scale)
        #expect(s.count >= 8 && s[2] == 1.0 && s[3] == 100, "\(scale)")
        let twoTower = try #require(lines.last { $0.hasPrefix("two-tower on held-out users: recall@50 ") }, "\(r.stdout)")
        let t = numbers(twoTower)
        #expect(t.count >= 6 && (0...1).contains(t[0]) && (0...1).contains(t[3]), "\(twoTower)")
        let summary = try #require(lines.last { $0.hasPrefix("tree + attention-DNN: recall@50 ") }, "\(r.stdout)")
        // "tree + attention-DNN: recall@50 A vs two-tower B (Cx); same model by brute force D (tree/brute Ex, beam finds F of
        // its top 50) at Gx its QPS (H vs I QPS, J vs K model evaluations per query)"
        let n = numbers(summary)
        #expect(n.count >= 12, "\(summary)")
        #expect(n.allSatisfy { !($0 < 0) }, "\(summary)")
        // Recalls (tree, two-tower, brute force, beam against brute force) are shares; "top 50" is the k.
        for i in [0, 1, 3, 5] { #expect((0...1).contains(n[i]), "\(summary)") }
        #expect(n[6] == 50, "\(summary)")
        for file in ["demo.md", "demo.json", "demo.csv", "demo-recall-qps.svg", "demo-recall-latency.svg", "two-tower.arbor",
                     "attention.arbor", "catalog.arbor"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + file), "\(file)")
        }
        // The written attention index is served by the query command.
        let query = try Self.run(["query", "--index", out + "/attention.arbor", "--history", "1,2,3", "--k", "5"])
        #expect(query.status == 0, "\(query.stderr)")
    }
}
