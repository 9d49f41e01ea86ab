import Foundation
import Testing

/// `arbor export`, `arbor import` and `arbor split`: a model goes out and back in with the same
/// answers, bad files fail with a message naming the file or tensor and leave the index as it was.
@Suite(.serialized) struct CLIModelFileTests {
    static func run(_ arguments: [String]) throws -> ChildProcess.Outcome { try CLITests.run(arguments) }

    /// A two-tower index trained on the toy log.
    static func trainedIndex(in dir: URL) throws -> URL {
        let inter = try CLITests.writeToyInter(in: dir)
        let index = dir.appendingPathComponent("tt.arbor")
        let r = try run(["train", "--inter", inter.path, "--min-count", "1", "--dim", "8", "--epochs", "1", "--batch-size", "64",
                         "--quiet", "--out", dir.appendingPathComponent("tt").path, "--index", index.path])
        #expect(r.status == 0, "\(r.stderr)")
        return index
    }

    @Test func exportThenImportAnswersAsTheOriginal() throws {
        let dir = try CLITests.temporaryDirectory()
        let index = try Self.trainedIndex(in: dir)
        let weights = dir.appendingPathComponent("m.safetensors")
        let e = try Self.run(["export", "--index", index.path, "--out", weights.path])
        #expect(e.status == 0, "\(e.stderr)")
        #expect(e.stdout.contains("inner-product / two-tower, d = 8, with the tree"), "\(e.stdout)")
        let spec = dir.appendingPathComponent("m.spec.json")
        #expect(FileManager.default.fileExists(atPath: spec.path))
        let copy = dir.appendingPathComponent("copy.arbor")
        let i = try Self.run(["import", "--weights", weights.path, "--spec", spec.path, "--index", copy.path])
        #expect(i.status == 0, "\(i.stderr)")
        let history = "1,2,3"
        let a = try Self.run(["query", "--index", index.path, "--history", history, "--k", "5"])
        let b = try Self.run(["query", "--index", copy.path, "--history", history, "--k", "5"])
        #expect(a.status == 0 && a.stdout == b.stdout && a.stdout.split(separator: "\n").count == 6, "\(a.stdout)\(a.stderr)\n\(b.stdout)")
    }

    @Test func badFilesFailNamingTheFileOrTensorAndLeaveTheIndex() throws {
        let dir = try CLITests.temporaryDirectory()
        let index = try Self.trainedIndex(in: dir)
        let weights = dir.appendingPathComponent("m.safetensors")
        #expect(try Self.run(["export", "--index", index.path, "--out", weights.path]).status == 0)
        let before = try Data(contentsOf: index)
        // Truncated.
        let cut = dir.appendingPathComponent("cut.safetensors")
        try Data(try Data(contentsOf: weights).prefix(100)).write(to: cut)
        let t = try Self.run(["import", "--weights", cut.path, "--index", index.path])
        #expect(t.status != 0 && t.stderr.contains("\(cut.path): truncated safetensors file"), "\(t.stderr)")
        // A spec that wants another width for the tower's MLP.
        let specURL = dir.appendingPathComponent("m.spec.json")
        var spec = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: specURL)) as? [String: Any])
        var mlps = try #require(spec["mlps"] as? [String: Any])
        var tower = try #require(mlps["two-tower.mlp"] as? [String: Any])
        var widths = try #require(tower["widths"] as? [Int])
        widths.insert(5, at: 1)
        tower["widths"] = widths
        tower["activations"] = ["relu"] + (tower["activations"] as? [String] ?? [])
        mlps["two-tower.mlp"] = tower
        spec["mlps"] = mlps
        let badSpec = dir.appendingPathComponent("bad.spec.json")
        try JSONSerialization.data(withJSONObject: spec).write(to: badSpec)
        let s = try Self.run(["import", "--weights", weights.path, "--spec", badSpec.path, "--index", index.path])
        #expect(s.status != 0 && s.stderr.contains("tensor 'two-tower.mlp.0.weight' has shape [8, "), "\(s.stderr)")
        // No such spec file.
        let n = try Self.run(["import", "--weights", weights.path, "--spec", dir.appendingPathComponent("none.json").path, "--index", index.path])
        #expect(n.status != 0 && n.stderr.contains("none.json: cannot read the spec"), "\(n.stderr)")
        #expect(try Data(contentsOf: index) == before)
    }

    @Test func splitWritesTheHoldOutUsers() throws {
        let dir = try CLITests.temporaryDirectory()
        let inter = try CLITests.writeToyInter(in: dir)
        let out = dir.appendingPathComponent("split")
        let r = try Self.run(["split", "--inter", inter.path, "--min-rating", "0", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let test = try String(contentsOf: out.appendingPathComponent("test.tsv"), encoding: .utf8).split(separator: "\n")
        let train = try String(contentsOf: out.appendingPathComponent("train.txt"), encoding: .utf8).split(separator: "\n")
        #expect(!test.isEmpty && !train.isEmpty && test.allSatisfy { $0.split(separator: "\t").count == 2 })
        #expect(r.stdout.contains("\(train.count) training users") && r.stdout.contains("\(test.count) test users"), "\(r.stdout)")
    }

    /// `build --assignment`: a valid assignment (4 items, fan-out 2, paths 0/0, 0/1, 1/0, 1/1) builds
    /// the tree; a duplicate item, an unknown item, two items on one leaf, an empty node and a child
    /// past the fan-out fail naming them.
    @Test func buildFromAnAssignmentChecksIt() throws {
        let dir = try CLITests.temporaryDirectory()
        let vectors = dir.appendingPathComponent("v.npy")
        try CLITests.writeNPY([1, 0, 0, 1, -1, 0, 0, -1], rows: 4, cols: 2, to: vectors)
        let ids = dir.appendingPathComponent("v.ids")
        try Data("10\n11\n12\n13\n".utf8).write(to: ids)
        let index = dir.appendingPathComponent("a.arbor")
        func build(_ text: String, fanOut: Int = 2) throws -> ChildProcess.Outcome {
            let paths = dir.appendingPathComponent("paths.tsv")
            try Data(text.utf8).write(to: paths)
            return try Self.run(["build", "--vectors", vectors.path, "--ids", ids.path, "--assignment", paths.path,
                                 "--fan-out", "\(fanOut)", "--out", index.path])
        }
        let ok = try build("item\tpath\n10\t1/1\n11\t0/0\n12\t1/0\n13\t0/1\n")
        #expect(ok.status == 0 && ok.stdout.contains("4 items, d = 2, fan-out 2, depth 2, 7 nodes"), "\(ok.stdout)\(ok.stderr)")
        let q = try Self.run(["query", "--index", index.path, "--vector", "0,-1", "--k", "1", "--beam", "1"])
        #expect(q.stdout.contains("1\t13\t"), "\(q.stdout)")
        let before = try Data(contentsOf: index)
        let cases: [(String, Int, String)] = [
            ("10\t0/0\n11\t0/1\n12\t1/0\n13\t1/1\n10\t1/1\n", 2, "item 10 is assigned twice (lines 1 and 5)"),
            ("10\t0/0\n11\t0/1\n12\t1/0\n99\t1/1\n", 2, "line 4: item 99 is not in the catalogue"),
            ("10\t0/0\n11\t0/1\n12\t1/0\n13\t0/0\n", 2, "leaf 0/0 holds several items: 10, 13"),
            ("10\t0/0\n11\t0/1\n12\t0/2\n13\t1/1\n", 3, "node 1/0 is empty"),
            ("10\t0/0\n11\t0/1\n12\t1/0\n13\t1/2\n", 2, "line 4: item 13: child index 2 is outside 0 ..< 2"),
        ]
        for (text, fanOut, message) in cases {
            let r = try build(text, fanOut: fanOut)
            #expect(r.status != 0 && r.stderr.contains(message), "\(r.stderr)")
        }
        #expect(try Data(contentsOf: index) == before)
    }

    /// `build --assignment` with Spark's Parquet output (and Parquet node embeddings) builds the
    /// same index as with the job's text output: the same answers to the same queries. The reader
    /// is picked by the PAR1 magic, not the name; a bad Parquet file fails naming file, column
    /// and row, and leaves the index as it was.
    @Test func buildFromAParquetAssignmentEqualsTheText() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/parquet")
        func fixture(_ name: String) -> String { fixtures.appendingPathComponent(name).path }
        let dir = try CLITests.temporaryDirectory()
        func build(_ assignment: String, nodes: String, out: String) throws -> ChildProcess.Outcome {
            try Self.run(["build", "--vectors", fixture("spark-items.npy"), "--assignment", assignment, "--node-embeddings", nodes,
                          "--fan-out", "4", "--out", dir.appendingPathComponent(out).path])
        }
        // A Parquet file under a .tsv name is still read as Parquet.
        let disguised = dir.appendingPathComponent("paths.tsv")
        try FileManager.default.copyItem(atPath: fixture("spark-paths.parquet"), toPath: disguised.path)
        let a = try build(disguised.path, nodes: fixture("spark-nodes.parquet"), out: "p.arbor")
        let b = try build(fixture("spark-paths.tsv"), nodes: fixture("spark-nodes.tsv"), out: "t.arbor")
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\(b.stderr)")
        #expect(a.stdout.contains("64 items, d = 4, fan-out 4, depth 3"), "\(a.stdout)")
        for vector in ["1,0,0,0", "-0.5,2,0.25,1", "0,0,-1,0.5"] {
            let p = try Self.run(["query", "--index", dir.appendingPathComponent("p.arbor").path, "--vector=\(vector)", "--k", "10", "--beam", "4"])
            let t = try Self.run(["query", "--index", dir.appendingPathComponent("t.arbor").path, "--vector=\(vector)", "--k", "10", "--beam", "4"])
            #expect(p.status == 0 && p.stdout == t.stdout && p.stdout.split(separator: "\n").count == 11, "\(p.stdout)\(p.stderr)\n\(t.stdout)")
        }
        let before = try Data(contentsOf: dir.appendingPathComponent("p.arbor"))
        let cases: [(String, String)] = [
            (fixture("gzip.parquet"), "gzip.parquet: column 'item': row group 0 is compressed with GZIP; only UNCOMPRESSED and SNAPPY are read"),
            (fixture("nulls.parquet"), "nulls.parquet: column 'item', row 4: null"),
            (fixture("items-only.parquet"), "items-only.parquet: no column 'path' (columns: item)"),
        ]
        for (file, message) in cases {
            let r = try build(file, nodes: fixture("spark-nodes.parquet"), out: "p.arbor")
            #expect(r.status != 0 && r.stderr.contains(message), "\(r.stderr)")
        }
        let truncated = dir.appendingPathComponent("cut.parquet")
        try Data(try Data(contentsOf: URL(fileURLWithPath: fixture("spark-paths.parquet"))).prefix(600)).write(to: truncated)
        let r = try build(truncated.path, nodes: fixture("spark-nodes.parquet"), out: "p.arbor")
        #expect(r.status != 0 && r.stderr.contains("cut.parquet: truncated Parquet file: no PAR1 magic at the end"), "\(r.stderr)")
        #expect(try Data(contentsOf: dir.appendingPathComponent("p.arbor")) == before)
    }
}
