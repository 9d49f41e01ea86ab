import ArgumentParser
import Foundation

/// `arbor`: prepare data, build a tree index, query it, inspect it, benchmark it.
@main
struct ArborCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "arbor",
        abstract: "Tree-based deep retrieval (TDM) on LMDB and OpenBLAS.",
        discussion: """
            Typical session:
              arbor generate --items 1000000 --out data/          # synthetic catalogue, users, queries
              arbor build --vectors data/items.npy --ids data/items.ids --out items.arbor
              arbor query --index items.arbor --vectors data/queries.npy --limit 3 --k 10
              arbor inspect --index items.arbor --verify
              arbor update --index items.arbor --add new.npy --ids new.ids --remove gone.ids
              arbor bench --index items.arbor --queries data/queries.npy --out bench/
              arbor train --inter ml-100k.inter --index ml.arbor  # two-tower on a behaviour log -> tree index
              arbor tdm --inter ml-100k.inter --items ml-100k.item --out tdm/   # TDM deep models with their trees
              arbor serve --index items.arbor --port 8080          # HTTP: POST /search, GET /health, GET /metrics
              arbor demo                                          # all of it on an embedded default
            """,
        subcommands: [Demo.self, Generate.self, Train.self, TDM.self, Build.self, Update.self, Query.self, Inspect.self, Bench.self,
                      Export.self, Import.self, Split.self, Serve.self])

    /// Runs the command; a command stopped by Ctrl-C (SIGINT/SIGTERM, see `Interrupts`) exits with
    /// status 130 and one line saying so, instead of the generic error report.
    static func main() {
        // A file-size limit (`ulimit -f`) then fails the write with EFBIG, reported like a full
        // disk, instead of killing the process with SIGXFSZ.
        signal(SIGXFSZ, SIG_IGN)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch is CancellationError {
            FileHandle.standardError.write(Data("arbor: stopped on interrupt; files being replaced were left as they were\n".utf8))
            Foundation.exit(130)
        } catch {
            exit(withError: error)
        }
    }
}
