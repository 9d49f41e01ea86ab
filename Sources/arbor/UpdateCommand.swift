import ArborCore
import ArborData
import ArborEngine
import ArborTree
import ArgumentParser
import Foundation

/// `arbor update`: add, remove and replace items of an index in place.
struct Update: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add, remove or replace items of an index in place, without a rebuild.",
        discussion: paragraphs("""
            Removals apply first, then additions; an id both removed and added is replaced. Each
            batch is one transaction: a reader (another process, `arbor serve`) sees all of it or
            none of it, and a crash or kill leaves the index as it was before the batch or after it.
            A new item descends the tree by the inner product of its vector with the node embeddings
            to the best leaf parent with a free slot (`arbor build --slack`); `arbor inspect` says
            when the tree has drifted enough to rebuild. An HNSW graph in the index follows each batch.
            """))

    @Option(help: "The index file (format 3, written by this version's `arbor build`).")
    var index: String

    @Option(help: "Vectors of the items to add, a float32 .npy of shape N × d.")
    var add: String?

    @Option(help: "Ids of the items to add, one a line, in the rows' order (required with --add).")
    var ids: String?

    @Option(help: "Categories of the items to add, one a line (optional; for indexes that store categories).")
    var categories: String?

    @Option(help: "Ids of the items to remove, one a line.")
    var remove: String?

    @Option(help: "Apply the changes in batches of this many additions (removals go with the first batch); default: one batch.")
    var batchSize: Int?

    @Option(help: "Nodes kept per level by the descent of a new item, 1...4096.")
    var descentBeam: Int = 32

    @Flag(help: "Rewrite the index in the current format with --slack free slots per leaf parent (an older, read-only file becomes updatable), then apply any changes given.")
    var upgrade = false

    @Option(help: "With --upgrade: free leaf slots per leaf parent, 0...1024.")
    var slack: Int = 4

    func validate() throws {
        guard add != nil || remove != nil || upgrade else {
            throw ValidationError("give --add (with --ids) or --remove, or both (or --upgrade)")
        }
        guard (0...1024).contains(slack) else { throw ValidationError("--slack must be in 0...1024, got \(slack)") }
        if add != nil && ids == nil { throw ValidationError("--add needs --ids: the ids of the new items") }
        if add == nil && (ids != nil || categories != nil) { throw ValidationError("--ids and --categories go with --add") }
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        guard (1...4096).contains(descentBeam) else { throw ValidationError("--descent-beam must be in 1...4096") }
    }

    func run() throws {
        let cancellation = CancellationFlag()
        Interrupts.install(cancellation)
        var vectors = Matrix(rows: 0, cols: 0)
        var newIDs: [ItemID] = [], newCategories: [UInt32] = []
        if let add, let ids {
            vectors = try NPY.readMatrix(at: add)
            if let bad = vectors.firstRowWithOverflowingNorm() {
                throw CLIError("\(add): row \(bad) is too large: its products overflow Float32 (squared norm above 2.1e37); scale the vectors down")
            }
            newIDs = try IDList.read(at: ids)
            guard newIDs.count == vectors.rows else {
                throw CLIError("\(ids) has \(newIDs.count) ids but \(add) has \(vectors.rows) rows")
            }
            if let categories {
                let raw = try IDList.read(at: categories)
                guard raw.count == vectors.rows else {
                    throw CLIError("\(categories) has \(raw.count) lines but \(add) has \(vectors.rows) rows")
                }
                newCategories = try raw.enumerated().map { i, c in
                    guard c.rawValue <= UInt64(UInt32.max) else {
                        throw CLIError("\(categories): entry \(i + 1): category \(c) does not fit in 32 bits")
                    }
                    return UInt32(c.rawValue)
                }
            }
        }
        let removals = try remove.map { try IDList.read(at: $0) } ?? []
        if upgrade {
            let h = try IndexUpgrade.upgrade(index, leafSlack: slack)
            print("upgraded \(index) to format v\(h.formatVersion): \(h.itemCount) items, \(h.leafSlots) leaf slots (slack \(h.leafSlack))")
            if add == nil && remove == nil { return }
        }
        let updater = try Arbor.updater(index, descentBeam: descentBeam)
        guard vectors.rows == 0 || vectors.cols == updater.reader.dimension else {
            throw CLIError("\(add!): vectors have \(vectors.cols) columns, the index \(updater.reader.dimension)")
        }
        let sizeBefore = fileSize(index)
        let per = batchSize ?? max(1, newIDs.count)
        var start = 0, batches = 0, total = IndexUpdateSummary(added: 0, removed: 0, replaced: 0, placedByFallback: 0,
                                                               itemCount: 0, generation: 0)
        var times: [Double] = []
        repeat {
            try cancellation.check()
            let end = min(newIDs.count, start + per)
            var batch = IndexBatch(removals: batches == 0 ? removals : [])
            if end > start {
                let d = vectors.cols
                batch.additions = Array(newIDs[start ..< end])
                batch.vectors = try Matrix(rows: end - start, cols: d, values: Array(vectors.values[start * d ..< end * d]))
                if !newCategories.isEmpty { batch.categories = Array(newCategories[start ..< end]) }
            }
            let t = ContinuousClock.now
            let summary: IndexUpdateSummary
            do {
                summary = try updater.apply(batch)
            } catch let error as ArborError {
                throw explain(error)
            }
            times.append(seconds(since: t))
            total.added += summary.added; total.removed += summary.removed; total.replaced += summary.replaced
            total.placedByFallback += summary.placedByFallback
            total.itemCount = summary.itemCount; total.generation = summary.generation
            batches += 1
            start = end
        } while start < newIDs.count
        let sorted = times.sorted()
        print("updated \(index): +\(total.added) -\(total.removed) (\(total.replaced) replaced) in \(batches) batch\(batches == 1 ? "" : "es"); "
              + "\(total.itemCount) items, generation \(total.generation)")
        print(String(format: "batch time: median %.3f s, max %.3f s; file %@ -> %@", sorted[sorted.count / 2], sorted.last!,
                     formatBytes(sizeBefore), formatBytes(fileSize(index))))
        if total.placedByFallback > 0 {
            print("\(total.placedByFallback) additions found their leaf parents full and went to the best one with room")
        }
        if let balance = try updater.reader.balance() { print(balanceLine(balance)) }
    }

    /// Names the file an id came from.
    private func explain(_ error: ArborError) -> Error {
        switch error {
        case let .unknownItem(id): return CLIError("\(remove ?? "--remove"): item id \(id) is not in \(index)")
        case let .duplicateItem(id): return CLIError("\(ids ?? "--ids"): item id \(id) is already in \(index) or listed twice")
        default: return error
        }
    }
}

/// The balance line of `arbor update` and `arbor inspect`, with the rebuild advice.
func balanceLine(_ b: IndexBalance) -> String {
    var line = String(format: "balance: %d items (%d at build; %d added, %d removed in %d updates, churn %.1f%%); "
                      + "leaf parents %d, full %d, empty %d, largest %d (mean %.1f), free slots %d",
                      b.itemCount, b.builtItemCount, b.added, b.removed, b.generation, b.churn * 100,
                      b.leafParents, b.fullLeafParents, b.emptyLeafParents, b.largestLeafParent, b.meanLeafParent, b.freeSlots)
    let reasons = b.rebuildReasons
    line += reasons.isEmpty ? "\nrebuild: not due" : "\nrebuild: due (" + reasons.joined(separator: "; ") + ")"
    return line
}
