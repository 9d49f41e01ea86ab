import Foundation
import Testing
@testable import ArborTree

/// A fresh directory for one test's files.
struct IndexTestDirectory {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "arbor-index-tests-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { path + "/" + name }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
    var contents: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }
}

enum Fixtures {
    /// The hand-built tree of the tests: depth 2, fan-out 3, 7 items with categories.
    ///
    ///     level 0:            r
    ///     level 1:     a      b       c        (r has 3 children)
    ///     level 2:   0  1   2 3 4    5  6      (2, 3 and 2 children)
    static func smallLayout() -> TreeLayout {
        func matrix(_ rows: Int, _ base: Float) -> Matrix {
            try! Matrix(rows: rows, cols: 4, values: (0..<(rows * 4)).map { base + Float($0) * 0.25 + 0.125 })
        }
        return TreeLayout(
            dimension: 4, fanOut: 3,
            levels: [
                TreeLevel(embeddings: matrix(1, 100), childOffsets: [0, 3]),
                TreeLevel(embeddings: matrix(3, 200), childOffsets: [0, 2, 5, 7]),
                TreeLevel(embeddings: matrix(7, 300), childOffsets: []),
            ],
            leafItems: [70, 11, 52, 9_000_000_000, 3, 18, 44],
            leafCategories: [1, 1, 2, 2, 2, 7, 7])
    }

    /// A complete tree over `items` leaves built bottom-up by grouping `fanOut` consecutive nodes;
    /// item ids are a scrambled permutation, embeddings deterministic.
    static func generatedLayout(items: Int, fanOut: Int, dimension: Int, categories: Bool = false) -> TreeLayout {
        var counts = [items]
        while counts.last! > 1 { counts.append((counts.last! + fanOut - 1) / fanOut) }
        counts.reverse()
        var levels: [TreeLevel] = []
        for (l, n) in counts.enumerated() {
            var values = [Float](repeating: 0, count: n * dimension)
            for i in values.indices { values[i] = Float((i &* 2_654_435_761 &+ l) % 10_007) / 1000 - 5 }
            var offsets: [Int32] = []
            if l + 1 < counts.count {
                let next = counts[l + 1]
                offsets = (0...n).map { Int32(min(next, $0 * fanOut)) }
            }
            levels.append(TreeLevel(embeddings: try! Matrix(rows: n, cols: dimension, values: values), childOffsets: offsets))
        }
        let ids = (0..<items).map { ItemID(UInt64(($0 &* 7919) % items) * 3 + 1) }
        return TreeLayout(dimension: dimension, fanOut: fanOut, levels: levels, leafItems: ids,
                          leafCategories: categories ? (0..<items).map { UInt32($0 % 5) } : [])
    }

    static func tensors() -> [NamedTensor] {
        [
            NamedTensor(name: "mlp.0.weight", shape: [3, 5], values: (0..<15).map { Float($0) - 7.5 }),
            NamedTensor(name: "mlp.0.bias", shape: [5], values: [0.1, 0.2, 0.3, 0.4, 0.5]),
            NamedTensor(name: "scale", shape: [], values: [2]),
            NamedTensor(name: "big", shape: [100, 7], values: (0..<700).map { Float($0) * 0.001 }),
        ]
    }
}

/// A progress reporter that cancels `flag` after `after` reports.
final class CancelAfter: ProgressReporter, @unchecked Sendable {
    let flag: CancellationFlag
    let after: Int
    private let lock = NSLock()
    private var reports = 0
    init(_ flag: CancellationFlag, after: Int) { self.flag = flag; self.after = after }
    func report(task: String, done: Int, total: Int) {
        lock.lock(); defer { lock.unlock() }
        reports += 1
        if reports >= after { flag.cancel() }
    }
    func finish(task: String) {}
}

/// Checks that `view` answers like the in-memory `layout` for every node.
func expectSameAnswers(_ view: borrowing some TreeView, _ layout: TreeLayout) {
    #expect(view.depth == layout.depth)
    #expect(view.dimension == layout.dimension)
    var fromView = Matrix(rows: 0, cols: layout.dimension)
    var fromLayout = Matrix(rows: 0, cols: layout.dimension)
    for l in 0...layout.depth {
        let n = layout.nodeCount(level: l)
        #expect(view.nodeCount(level: l) == n)
        if l < layout.depth {
            for node in 0..<n {
                #expect(view.children(of: node, level: l) == layout.children(of: node, level: l), "level \(l) node \(node)")
            }
        }
        // All nodes, in a scrambled order with repeats.
        let nodes = (0..<(n + 3)).map { Int32(($0 * 5 + 1) % n) }
        view.gatherEmbeddings(level: l, nodes: nodes, into: &fromView)
        layout.gatherEmbeddings(level: l, nodes: nodes, into: &fromLayout)
        #expect(fromView == fromLayout, "level \(l)")
        // All nodes in order: one long run across chunks.
        let all = (0..<n).map(Int32.init)
        view.gatherEmbeddings(level: l, nodes: all, into: &fromView)
        #expect(fromView == layout.levels[l].embeddings, "level \(l) in order")
        // Children runs, as beam search asks for them.
        if l > 0 {
            // Parents in reverse order, each one's children ascending (a run per parent).
            let runs = (0..<layout.nodeCount(level: l - 1)).reversed().flatMap { layout.children(of: $0, level: l - 1) }.map(Int32.init)
            view.gatherEmbeddings(level: l, nodes: Array(runs), into: &fromView)
            layout.gatherEmbeddings(level: l, nodes: Array(runs), into: &fromLayout)
            #expect(fromView == fromLayout, "level \(l) runs")
        }
    }
    for leaf in 0..<layout.itemCount {
        #expect(view.item(atLeaf: leaf) == layout.item(atLeaf: leaf))
    }
}

/// The bytes of a file.
func fileBytes(_ path: String) -> Data { FileManager.default.contents(atPath: path) ?? Data() }
