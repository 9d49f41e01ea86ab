import Foundation
import Testing

/// `arbor train --model sdm` and `arbor query --history id@seconds`: the index opens, says whether
/// the model has a long term, and serves timed and untimed histories; bad timed input names the option.
@Suite(.serialized) struct CLISDMTests {
    static func run(_ arguments: [String]) throws -> ChildProcess.Outcome { try CLITests.run(arguments) }

    @Test func sdmTrainsOnALeaveLastOutLogAndServesTimedHistories() throws {
        let dir = try CLITests.temporaryDirectory()
        let inter = try CLITests.writeToyInter(in: dir)
        let out = dir.appendingPathComponent("sdm")
        let index = dir.appendingPathComponent("sdm.arbor")
        let r = try Self.run(["train", "--model", "sdm", "--inter", inter.path, "--min-count", "1", "--dim", "8", "--heads", "2",
                              "--epochs", "2", "--batch-size", "64", "--negatives", "20", "--ks", "10", "--beams", "20",
                              "--quiet", "--out", out.path, "--index", index.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("# arbor train --model sdm") && r.stdout.contains("sdm flat"), "\(r.stdout)")
        #expect(r.stdout.contains("Encoding:"))
        let inspect = try Self.run(["inspect", "--index", index.path, "--verify"])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("query producer sdm"), "\(inspect.stdout)")
        #expect(inspect.stdout.contains("long term: gated"), "\(inspect.stdout)")
        let timed = try Self.run(["query", "--index", index.path, "--history", "1@1000,2@1001,3@5000", "--k", "3"])
        #expect(timed.status == 0, "\(timed.stderr)")
        let plain = try Self.run(["query", "--index", index.path, "--history", "1,2,3", "--k", "3"])
        #expect(plain.status == 0, "\(plain.stderr)")
        let mixed = try Self.run(["query", "--index", index.path, "--history", "1@1000,2", "--k", "3"])
        #expect(mixed.status != 0 && mixed.stderr.contains("--history"), "\(mixed.stderr)")
        let badTime = try Self.run(["query", "--index", index.path, "--history", "1@soon", "--k", "3"])
        #expect(badTime.status != 0 && badTime.stderr.contains("not a timestamp"), "\(badTime.stderr)")
    }

    @Test func sessionDataHasNoLongTermAndSaysSo() throws {
        let dir = try CLITests.temporaryDirectory()
        let split = dir.appendingPathComponent("toy.split.tsv")
        var text = "session_id\titem_id\tposition\tsplit\n"
        for s in 0 ..< 200 {
            let role = s < 160 ? "train" : (s < 180 ? "valid" : "test")
            for p in 0 ..< 5 { text += "\(s)\t\((s % 4) * 10 + (s + p * 3) % 10)\t\(p)\t\(role)\n" }
        }
        try Data(text.utf8).write(to: split)
        let index = dir.appendingPathComponent("s.arbor")
        let r = try Self.run(["train", "--model", "sdm", "--session-split", split.path, "--dim", "8", "--heads", "2", "--epochs", "1",
                              "--batch-size", "64", "--negatives", "10", "--ks", "20", "--beams", "20", "--quiet",
                              "--out", dir.appendingPathComponent("o").path, "--index", index.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("short term only"), "\(r.stderr)")
        let inspect = try Self.run(["inspect", "--index", index.path])
        #expect(inspect.stdout.contains("long term: none (data without users"), "\(inspect.stdout)")
        let both = try Self.run(["train", "--model", "sdm", "--session-split", split.path, "--inter", split.path])
        #expect(both.status != 0 && both.stderr.contains("--session-split"), "\(both.stderr)")
    }
}
