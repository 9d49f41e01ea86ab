import Foundation
import Testing

/// `arbor generate`, `arbor train` and `arbor build --dataset`: the files a user relies on are written,
/// the indexes open with `arbor inspect`, and bad input fails with a non-zero exit and a message
/// that names the option or file at fault.
@Suite(.serialized) struct CLIDataCommandTests {
    static func run(_ arguments: [String]) throws -> ChildProcess.Outcome { try CLITests.run(arguments) }

    static func lines(_ url: URL) throws -> [Substring] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
    }

    @Test func generateWritesTheCatalogueDeterministically() throws {
        let dir = try CLITests.temporaryDirectory()
        let out = dir.appendingPathComponent("gen")
        let args = ["generate", "--items", "400", "--dim", "8", "--users", "30", "--seed", "3", "--out", out.path]
        let r = try Self.run(args)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("generated 400 items (d = 8,"), "\(r.stdout)")
        for name in ["items.npy", "items.ids", "items.categories", "queries.npy", "interactions.csv"] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(name).path), "\(name) missing")
        }
        #expect(try Self.lines(out.appendingPathComponent("items.ids")).count == 400)
        #expect(try Self.lines(out.appendingPathComponent("items.categories")).count == 400)
        // float32 .npy of 400 × 8 after its header.
        let npy = try Data(contentsOf: out.appendingPathComponent("items.npy"))
        #expect(npy.count > 400 * 8 * 4 && npy.count <= 400 * 8 * 4 + 256)
        // The same seed writes the same bytes; another seed other ones.
        let again = dir.appendingPathComponent("again")
        #expect(try Self.run(["generate", "--items", "400", "--dim", "8", "--users", "30", "--seed", "3", "--out", again.path]).status == 0)
        #expect(try Data(contentsOf: again.appendingPathComponent("items.npy")) == npy)
        let other = dir.appendingPathComponent("other")
        #expect(try Self.run(["generate", "--items", "400", "--dim", "8", "--users", "30", "--seed", "4", "--out", other.path]).status == 0)
        #expect(try Data(contentsOf: other.appendingPathComponent("items.npy")) != npy)
        // The generated files build an index that opens.
        let index = dir.appendingPathComponent("gen.arbor")
        let build = try Self.run(["build", "--vectors", out.appendingPathComponent("items.npy").path,
                                  "--ids", out.appendingPathComponent("items.ids").path,
                                  "--categories", out.appendingPathComponent("items.categories").path, "--out", index.path])
        #expect(build.status == 0, "\(build.stderr)")
        let inspect = try Self.run(["inspect", "--index", index.path, "--verify"])
        #expect(inspect.status == 0 && inspect.stdout.contains("items 400, dimension 8"), "\(inspect.stdout)\(inspect.stderr)")
    }

    @Test func generateRefusesBadSizes() throws {
        let dir = try CLITests.temporaryDirectory()
        let r = try Self.run(["generate", "--items", "0", "--dim", "8", "--out", dir.appendingPathComponent("g").path])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--items must be at least 1"), "\(r.stderr)")
    }

    @Test func trainWritesVectorsEncoderReportAndAnIndexThatOpens() throws {
        let dir = try CLITests.temporaryDirectory()
        let inter = try CLITests.writeToyInter(in: dir)
        let out = dir.appendingPathComponent("tt")
        let index = dir.appendingPathComponent("tt.arbor")
        let r = try Self.run(["train", "--inter", inter.path, "--min-count", "1", "--dim", "8", "--epochs", "2",
                              "--batch-size", "64", "--quiet", "--out", out.path, "--index", index.path])
        #expect(r.status == 0, "\(r.stderr)")
        for name in ["items.npy", "items.ids", "encoder.ttw", "report.md", "training.json"] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(name).path), "\(name) missing")
        }
        #expect(r.stdout.contains("# arbor train"))
        let report = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        #expect(report.hasPrefix("# arbor train") && r.stdout.contains(report.trimmingCharacters(in: .newlines)))
        let training = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("training.json")))
        #expect(training is [String: Any])
        let inspect = try Self.run(["inspect", "--index", index.path, "--verify"])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("items 80, dimension 8"), "\(inspect.stdout)")
        #expect(inspect.stdout.contains("query producer two-tower"), "\(inspect.stdout)")
        #expect(try Self.lines(out.appendingPathComponent("items.ids")).count == 80)
        #expect(inspect.stdout.contains("verify: every checksum matches"))
    }

    /// `--model mind --beside-two-tower` reports MIND (a beam per interest and one shared beam) and
    /// a two-tower trained on the same data in one table over the same test users; the flag is
    /// refused for other models.
    @Test func mindBesideTheTwoTowerInOneRun() throws {
        let dir = try CLITests.temporaryDirectory()
        let out = dir.appendingPathComponent("m")
        let r = try Self.run(["train", "--model", "mind", "--beside-two-tower", "--synthetic", "300", "--dim", "8",
                              "--interests", "2", "--max-history", "8", "--epochs", "1", "--batch-size", "64",
                              "--ks", "10", "--beams", "5", "--fan-out", "4", "--quiet", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        for row in ["| popularity |", "| mind flat | exact |", "| mind tree | beam=5 |", "| mind tree shared | shared beam=5 |",
                    "| two-tower flat | exact |", "| two-tower tree | beam=5 |"] {
            #expect(report.contains(row), "\(row) missing in \(report)")
        }
        let refused = try Self.run(["train", "--beside-two-tower", "--synthetic", "300", "--out", out.path])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("--beside-two-tower applies to --model mind"), "\(refused.stderr)")
    }

    @Test func trainFailuresNameTheFileOrOption() throws {
        let dir = try CLITests.temporaryDirectory()
        let missing = dir.appendingPathComponent("none.inter")
        let r1 = try Self.run(["train", "--inter", missing.path, "--out", dir.appendingPathComponent("o").path])
        #expect(r1.status != 0)
        #expect(r1.stderr.contains("none.inter: file not found"), "\(r1.stderr)")
        let inter = try CLITests.writeToyInter(in: dir)
        let r2 = try Self.run(["train", "--inter", inter.path, "--dim", "0", "--out", dir.appendingPathComponent("o").path])
        #expect(r2.status != 0)
        #expect(r2.stderr.contains("--dim must be at least 1"), "\(r2.stderr)")
        let bad = dir.appendingPathComponent("bad.inter")
        try Data("user_id:token\titem_id:token\n1\n".utf8).write(to: bad)
        let r3 = try Self.run(["train", "--inter", bad.path, "--out", dir.appendingPathComponent("o").path])
        #expect(r3.status != 0)
        #expect(r3.stderr.contains("bad.inter:2: expected 2 fields, found 1"), "\(r3.stderr)")
    }

    @Test func buildFromADatasetWritesAnIndexOfItsItems() throws {
        let dir = try CLITests.temporaryDirectory()
        let inter = try CLITests.writeToyInter(in: dir)
        let index = dir.appendingPathComponent("log.arbor")
        let r = try Self.run(["build", "--dataset", inter.path, "--dim", "8", "--out", index.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("built \(index.path): 80 items, d = 8"), "\(r.stdout)")
        let inspect = try Self.run(["inspect", "--index", index.path, "--verify"])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("items 80, dimension 8"), "\(inspect.stdout)")
        // Exactly one source.
        let two = try Self.run(["build", "--dataset", inter.path, "--synthetic", "10", "--out", index.path])
        #expect(two.status != 0 && two.stderr.contains("give exactly one of --vectors, --dataset and --synthetic"))
        // A missing or malformed log is named, and the index already there is untouched.
        let before = try Data(contentsOf: index)
        let missing = try Self.run(["build", "--dataset", dir.appendingPathComponent("gone.inter").path, "--out", index.path])
        #expect(missing.status != 0 && missing.stderr.contains("gone.inter: file not found"), "\(missing.stderr)")
        let bad = dir.appendingPathComponent("bad.csv")
        try Data("user,item,timestamp\n1,2,5\n3,x,6\n".utf8).write(to: bad)
        let malformed = try Self.run(["build", "--dataset", bad.path, "--out", index.path])
        #expect(malformed.status != 0 && malformed.stderr.contains("bad.csv:3: item id 'x'"), "\(malformed.stderr)")
        #expect(try Data(contentsOf: index) == before)
    }
}
