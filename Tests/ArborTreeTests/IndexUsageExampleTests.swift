import Foundation
import Testing
import ArborTree

/// The example of the module's report, kept compiling and passing.
@Test func usageExample() throws {
    let dir = IndexTestDirectory(); defer { dir.cleanup() }
    let path = dir.file("movies.arbor")
    let layout = Fixtures.smallLayout()  // a TreeLayout from a builder

    let weights = NamedTensor(name: "dnn.0.weight", shape: [2, 4], values: [Float](repeating: 0.5, count: 8))
    try IndexWriter().write(layout: layout, tensors: [weights], nodeScorer: .dnn, to: path)

    let index = try IndexReader(path: path)          // maps the file, reads the header only
    try index.requireDimension(4)                     // the scorer's node width
    let top = try index.withView { tree in            // one short read txn per query
        var rows = Matrix(rows: 0, cols: tree.dimension)
        let children = tree.children(of: 0, level: 0)
        tree.gatherEmbeddings(level: 1, nodes: children.map(Int32.init), into: &rows)
        return (rows.rows, tree.item(atLeaf: 0))
    }
    #expect(top.0 == 3 && top.1 == 70)
    #expect(try index.tensor(named: "dnn.0.weight") == weights)
}
