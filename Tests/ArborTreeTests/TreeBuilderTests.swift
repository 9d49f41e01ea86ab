import Testing
import ArborMath
@testable import ArborTree

func randomMatrix(rows: Int, cols: Int, seed: UInt64) -> Matrix {
    var rng = SplitMix64(seed: seed)
    return try! Matrix(rows: rows, cols: cols, values: (0..<(rows * cols)).map { _ in rng.nextUnitFloat() * 2 - 1 })
}

@Suite struct TreeBuilderTests {
    @Test(arguments: [(2, 1), (2, 2), (2, 37), (3, 100), (4, 64), (16, 1000), (64, 130)])
    func kMeansTreeHasEveryItemOnceAtTheLeafLevel(fanOut: Int, n: Int) throws {
        let items = (0..<n).map { ItemID(UInt64($0 * 7 + 1)) }
        let tree = try TreeBuilder.balancedKMeans(
            embeddings: randomMatrix(rows: n, cols: 5, seed: 1), items: items,
            options: TreeBuildOptions(fanOut: fanOut))
        try tree.validate()
        #expect(tree.depth == TreeBuilder.depth(itemCount: n, fanOut: fanOut))
        #expect(Set(tree.leafItems) == Set(items))
        #expect(tree.levels[0].nodeCount == 1)
    }

    @Test func leafEmbeddingsFollowTheirItems() throws {
        let n = 50
        let e = randomMatrix(rows: n, cols: 3, seed: 2)
        let items = (0..<n).map { ItemID(UInt64($0)) }
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: items)
        for leaf in 0..<n {
            #expect(Array(tree.levels[tree.depth].embeddings.row(leaf)) == Array(e.row(Int(tree.leafItems[leaf].rawValue))))
        }
    }

    @Test func innerNodeIsTheMeanOfItsItems() throws {
        let n = 9
        let e = randomMatrix(rows: n, cols: 2, seed: 3)
        let tree = try TreeBuilder.balancedKMeans(embeddings: e, items: (0..<n).map { ItemID(UInt64($0)) },
                                                  options: TreeBuildOptions(fanOut: 3))
        // The root is the mean of all items.
        for c in 0..<2 {
            let mean = (0..<n).map { e[$0, c] }.reduce(0, +) / Float(n)
            #expect(abs(tree.levels[0].embeddings[0, c] - mean) < 1e-5)
        }
    }

    @Test func balancedSplitsKeepSiblingSizesWithinOne() throws {
        let n = 1000
        let tree = try TreeBuilder.balancedKMeans(embeddings: randomMatrix(rows: n, cols: 4, seed: 4),
                                                  items: (0..<n).map { ItemID(UInt64($0)) },
                                                  options: TreeBuildOptions(fanOut: 4))
        // Items below each child of the root: 250 each.
        var sizes = [Int](repeating: 1, count: tree.levels[tree.depth].nodeCount)
        for level in stride(from: tree.depth - 1, through: 1, by: -1) {
            let off = tree.levels[level].childOffsets
            sizes = (0..<(off.count - 1)).map { i in (Int(off[i])..<Int(off[i + 1])).reduce(0) { $0 + sizes[$1] } }
        }
        #expect(sizes == [250, 250, 250, 250])
    }

    @Test func categoryOrderGroupsCategoriesContiguously() throws {
        let n = 40
        let categories: [UInt32] = (0..<n).map { UInt32($0 % 4) }
        let tree = try TreeBuilder.categoryOrder(embeddings: randomMatrix(rows: n, cols: 3, seed: 5),
                                                 items: (0..<n).map { ItemID(UInt64($0)) },
                                                 categories: categories)
        #expect(tree.leafCategories == categories.sorted())
        try tree.validate()
    }

    @Test func sameSeedSameTree() throws {
        let e = randomMatrix(rows: 300, cols: 4, seed: 6)
        let items = (0..<300).map { ItemID(UInt64($0)) }
        let a = try TreeBuilder.balancedKMeans(embeddings: e, items: items, options: .init(seed: 9))
        let b = try TreeBuilder.balancedKMeans(embeddings: e, items: items, options: .init(seed: 9))
        #expect(a == b)
    }

    @Test func badInputIsRejectedWithTheField() throws {
        let e = randomMatrix(rows: 3, cols: 2, seed: 7)
        #expect(throws: ArborError.duplicateItem(1)) {
            try TreeBuilder.balancedKMeans(embeddings: e, items: [1, 2, 1])
        }
        #expect(throws: ArborError.dimensionMismatch(field: "item embeddings (rows)", expected: 2, found: 3)) {
            try TreeBuilder.balancedKMeans(embeddings: e, items: [1, 2])
        }
        var nan = e
        nan[1, 1] = .nan
        #expect(throws: ArborError.nonFiniteValue(field: "item embeddings", row: 1)) {
            try TreeBuilder.balancedKMeans(embeddings: nan, items: [1, 2, 3])
        }
        // Finite but too large: 2.6e38 squared overflows Float32 (it used to trap in the builder).
        var huge = e
        huge[2, 0] = 2.6e38
        #expect(throws: ArborError.self) {
            try TreeBuilder.balancedKMeans(embeddings: huge, items: [1, 2, 3])
        }
        do {
            _ = try TreeBuilder.categoryOrder(embeddings: huge, items: [1, 2, 3], categories: [0, 0, 1])
            Issue.record("a row with 2.6e38 was accepted")
        } catch let error as ArborError {
            #expect(error.description.contains("row 2"))
        }
        #expect(huge.firstRowWithOverflowingNorm() == 2)
        #expect(e.firstRowWithOverflowingNorm() == nil)
        #expect(throws: ArborError.empty(what: "items to build a tree from")) {
            try TreeBuilder.balancedKMeans(embeddings: Matrix(rows: 0, cols: 2), items: [])
        }
        #expect(throws: ArborError.self) {
            try TreeBuilder.balancedKMeans(embeddings: e, items: [1, 2, 3], options: .init(fanOut: 65))
        }
    }
}
