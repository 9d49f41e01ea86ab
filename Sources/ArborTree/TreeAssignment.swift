import ArborCore
import ArborMath
import Foundation

/// Why an item → path assignment cannot become a tree. Every case names the item, the node (its
/// path, `/`-separated child indices from the root) or the line at fault.
public enum AssignmentError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A line is not `item<TAB>path` with an unsigned id and whole child indices.
    case badLine(source: String, line: Int, reason: String)
    /// The item appears on two lines.
    case duplicateItem(ItemID, firstLine: Int, line: Int)
    /// The assignment names an item the catalogue does not have.
    case unknownItem(ItemID, line: Int)
    /// A catalogue item has no path.
    case missingItem(ItemID)
    /// Paths of different lengths: every leaf must sit at the same depth.
    case depthMismatch(ItemID, line: Int, expected: Int, found: Int)
    /// A child index outside `0 ..< fanOut`.
    case childOutOfRange(ItemID, line: Int, index: Int, fanOut: Int)
    /// Two items on one leaf.
    case sharedLeaf(path: String, items: [ItemID])
    /// A node's children skip an index: that child would be an empty node.
    case emptyNode(path: String)
    /// A node holds a number of items outside the tolerance around its level's mean.
    case unbalanced(path: String, items: Int, allowed: ClosedRange<Int>)
    /// The tree breaks an index invariant (shown as found).
    case invalid(ArborError)

    public var description: String {
        switch self {
        case let .badLine(source, line, reason): "\(source):\(line): \(reason)"
        case let .duplicateItem(item, first, line): "item \(item) is assigned twice (lines \(first) and \(line))"
        case let .unknownItem(item, line): "line \(line): item \(item) is not in the catalogue"
        case let .missingItem(item): "item \(item) has no path in the assignment"
        case let .depthMismatch(item, line, expected, found):
            "line \(line): item \(item) has a path of \(found) levels, the others \(expected) (leaves must share one depth)"
        case let .childOutOfRange(item, line, index, fanOut):
            "line \(line): item \(item): child index \(index) is outside 0 ..< \(fanOut) (the fan-out)"
        case let .sharedLeaf(path, items): "leaf \(path) holds several items: \(items.map(\.description).joined(separator: ", "))"
        case let .emptyNode(path): "node \(path) is empty: no item below it while a later sibling has some"
        case let .unbalanced(path, items, allowed):
            "node \(path) holds \(items) items, outside the balance tolerance \(allowed.lowerBound) ... \(allowed.upperBound)"
        case let .invalid(error): error.description
        }
    }
}

/// A tree given as one path per item, computed elsewhere (e.g. hierarchical k-means on a cluster):
/// each path lists the child index taken at every level from the root down to the item's leaf, so
/// all paths have the tree's depth, and the nodes of level `l` are the distinct path prefixes of
/// length `l`. Text form: one `item<TAB>path` a line, path `3/0/12/5`; `#` lines and a first line
/// `item<TAB>path` are skipped.
///
/// ``layout(embeddings:items:categories:fanOut:tolerance:nodeEmbeddings:)`` checks it against the
/// catalogue and builds the ``TreeLayout``: every catalogue item exactly once and no other, one
/// depth, child indices in `0 ..< fanOut` and without gaps (a gap is an empty node), one item a
/// leaf, and every node's item count within `tolerance` of its level's mean. A value type.
public struct TreeAssignment: Sendable, Equatable {
    /// One assigned item.
    public struct Entry: Sendable, Equatable {
        public var item: ItemID
        /// Child index per level, root first.
        public var path: [Int]
        /// The source line (1-based), for errors.
        public var line: Int
        public init(item: ItemID, path: [Int], line: Int) {
            self.item = item
            self.path = path
            self.line = line
        }
    }

    /// The entries in file order.
    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// Parses the text form; `source` names it in errors. O(text).
    /// - Throws: ``AssignmentError/badLine(source:line:reason:)``.
    public static func parse(_ text: String, source: String) throws(AssignmentError) -> TreeAssignment {
        var entries: [Entry] = []
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.isEmpty || line.hasPrefix("#") || (number == 1 && line.lowercased().hasPrefix("item\t")) { continue }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 2 else { throw .badLine(source: source, line: number, reason: "expected item<TAB>path, found \(fields.count) fields") }
            guard let id = UInt64(fields[0]) else { throw .badLine(source: source, line: number, reason: "'\(fields[0])' is not an item id") }
            var path: [Int] = []
            for part in fields[1].split(separator: "/", omittingEmptySubsequences: false) {
                guard let c = Int(part), c >= 0, c < 1 << 20 else {
                    throw .badLine(source: source, line: number, reason: "path '\(fields[1])': '\(part)' is not a child index")
                }
                path.append(c)
            }
            entries.append(Entry(item: ItemID(id), path: path, line: number))
        }
        return TreeAssignment(entries: entries)
    }

    /// The tree of this assignment over the catalogue `items` (rows of `embeddings`, the leaf
    /// vectors). Inner nodes get `nodeEmbeddings[path]` when given, else the mean of the items below
    /// them, unit-normalised when `innerNodes` is ``InnerNodeEmbedding/normalizedMean`` (as
    /// ``TreeBuilder`` computes them).
    /// - Parameters:
    ///   - tolerance: allowed relative deviation of a node's item count from its level's mean
    ///     (plus one item for rounding); e.g. 0.1.
    ///   - nodeEmbeddings: optional inner-node vectors by path (`"3/0"`; the root is `""`).
    /// - Throws: ``AssignmentError`` naming the item or node at fault.
    /// - Complexity: O(N log N · depth + nodes · d).
    public func layout(embeddings: Matrix, items: [ItemID], categories: [UInt32] = [], fanOut: Int,
                       tolerance: Double, innerNodes: InnerNodeEmbedding = .mean,
                       nodeEmbeddings: [String: [Float]] = [:]) throws(AssignmentError) -> TreeLayout {
        guard (2 ... 64).contains(fanOut) else { throw .invalid(.invalidArgument(name: "fan-out", reason: "must be in 2...64, got \(fanOut)")) }
        guard tolerance >= 0, tolerance.isFinite else {
            throw .invalid(.invalidArgument(name: "balance tolerance", reason: "must be >= 0, got \(tolerance)"))
        }
        guard embeddings.rows == items.count, categories.isEmpty || categories.count == items.count else {
            throw .invalid(.dimensionMismatch(field: "item embeddings (rows)", expected: items.count, found: embeddings.rows))
        }
        var rowOf = [ItemID: Int](minimumCapacity: items.count)
        for (r, id) in items.enumerated() where rowOf.updateValue(r, forKey: id) != nil { throw .invalid(.duplicateItem(id)) }
        guard let depth = entries.first?.path.count else { throw .invalid(.empty(what: "assignment")) }
        var lineOf = [ItemID: Int](minimumCapacity: entries.count)
        for e in entries {
            if let first = lineOf.updateValue(e.line, forKey: e.item) { throw .duplicateItem(e.item, firstLine: first, line: e.line) }
            guard rowOf[e.item] != nil else { throw .unknownItem(e.item, line: e.line) }
            guard e.path.count == depth else { throw .depthMismatch(e.item, line: e.line, expected: depth, found: e.path.count) }
            if let bad = e.path.first(where: { $0 >= fanOut }) { throw .childOutOfRange(e.item, line: e.line, index: bad, fanOut: fanOut) }
        }
        if let missing = items.first(where: { lineOf[$0] == nil }) { throw .missingItem(missing) }
        let sorted = entries.sorted { $0.path.lexicographicallyPrecedes($1.path) }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.path == b.path {
            throw .sharedLeaf(path: Self.name(a.path[...]), items: sorted.filter { $0.path == a.path }.map(\.item))
        }
        // Level by level: nodes are distinct prefixes; children of a node must be 0, 1, 2, ... in order.
        var levelStarts: [[Int]] = [[0]]          // per level, index in `sorted` where each node begins
        var offsets: [[Int32]] = []
        for level in 0 ..< depth {
            var next: [Int] = []
            var levelOffsets: [Int32] = [0]
            let starts = levelStarts[level]
            for (i, start) in starts.enumerated() {
                let end = i + 1 < starts.count ? starts[i + 1] : sorted.count
                var expected = 0
                var j = start
                while j < end {
                    let child = sorted[j].path[level]
                    guard child == expected else {
                        throw .emptyNode(path: Self.name(sorted[j].path[..<level] + [expected]))
                    }
                    next.append(j)
                    while j < end && sorted[j].path[level] == child { j += 1 }
                    expected += 1
                }
                levelOffsets.append(Int32(next.count))
            }
            offsets.append(levelOffsets)
            levelStarts.append(next)
        }
        // Balance: a node's item count within tolerance of its level's mean (± 1).
        for level in 1 ..< depth + 1 where level < depth {
            let starts = levelStarts[level]
            let mean = Double(sorted.count) / Double(starts.count)
            let allowed = Int(((1 - tolerance) * mean).rounded(.down)) - 1 ... Int(((1 + tolerance) * mean).rounded(.up)) + 1
            for (i, start) in starts.enumerated() {
                let count = (i + 1 < starts.count ? starts[i + 1] : sorted.count) - start
                guard allowed.contains(count) else {
                    throw .unbalanced(path: Self.name(sorted[start].path[..<level]), items: count, allowed: max(0, allowed.lowerBound) ... allowed.upperBound)
                }
            }
        }
        let d = embeddings.cols
        var leaf = Matrix(rows: sorted.count, cols: d)
        for (j, e) in sorted.enumerated() { leaf.setRow(j, embeddings.row(rowOf[e.item]!)) }
        var levels = [TreeLevel](repeating: TreeLevel(embeddings: Matrix(rows: 0, cols: d), childOffsets: []), count: depth + 1)
        levels[depth] = TreeLevel(embeddings: leaf, childOffsets: [])
        var childCounts = [Int](repeating: 1, count: sorted.count)
        for level in stride(from: depth - 1, through: 0, by: -1) {
            let off = offsets[level], nodeCount = off.count - 1
            var m = Matrix(rows: nodeCount, cols: d)
            var counts = [Int](repeating: 0, count: nodeCount)
            let below = levels[level + 1].embeddings
            for i in 0 ..< nodeCount {
                for c in Int(off[i]) ..< Int(off[i + 1]) {
                    let w = Float(childCounts[c])
                    counts[i] += childCounts[c]
                    for j in 0 ..< d { m[i, j] += w * below[c, j] }
                }
                for j in 0 ..< d { m[i, j] /= Float(counts[i]) }
            }
            levels[level] = TreeLevel(embeddings: m, childOffsets: off)
            childCounts = counts
        }
        // Means first (from the raw means below), then unit rows if asked, then the given embeddings.
        for level in 0 ..< depth {
            var m = levels[level].embeddings
            if innerNodes == .normalizedMean { Normalization.normalizeRows(&m) }
            for i in 0 ..< m.rows {
                let path = Self.name(sorted[levelStarts[level][i]].path[..<level])
                if let given = nodeEmbeddings[path] {
                    guard given.count == d else {
                        throw .invalid(.dimensionMismatch(field: "node \(path) embedding", expected: d, found: given.count))
                    }
                    m.setRow(i, given[...])
                }
            }
            levels[level].embeddings = m
        }
        let leafCategories = categories.isEmpty ? [] : sorted.map { categories[rowOf[$0.item]!] }
        let layout = TreeLayout(dimension: d, fanOut: fanOut, levels: levels, leafItems: sorted.map(\.item),
                                leafCategories: leafCategories)
        do { try layout.validate() } catch { throw .invalid(error) }
        return layout
    }

    /// `3/0/12` for a path prefix; `""` for the root.
    static func name(_ path: ArraySlice<Int>) -> String { path.map(String.init).joined(separator: "/") }
    static func name(_ path: [Int]) -> String { name(path[...]) }
}

extension TreeAssignment {
    /// Parses inner-node embeddings: one `path<TAB>v1,v2,…` a line (the root's path is empty);
    /// `#` lines are skipped. O(text).
    /// - Throws: ``AssignmentError/badLine(source:line:reason:)`` for a malformed line, a non-finite
    ///   value or a path given twice.
    public static func parseNodeEmbeddings(_ text: String, source: String) throws(AssignmentError) -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 2 else { throw .badLine(source: source, line: number, reason: "expected path<TAB>values") }
            var values: [Float] = []
            for v in fields[1].split(separator: ",") {
                guard let x = Float(v.trimmingCharacters(in: .whitespaces)), x.isFinite else {
                    throw .badLine(source: source, line: number, reason: "'\(v)' is not a finite number")
                }
                values.append(x)
            }
            guard out.updateValue(values, forKey: String(fields[0])) == nil else {
                throw .badLine(source: source, line: number, reason: "node '\(fields[0])' is given twice")
            }
        }
        return out
    }
}
