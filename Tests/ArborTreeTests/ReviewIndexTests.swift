import Foundation
import Testing
import ArborStore
@testable import ArborTree

@Suite struct ReviewIndexTests {
    /// A damaged `items` value (leaf index with the top bit set) must be an IndexError, not a trap
    /// in `Int(UInt64)`.
    @Test func itemMapValueAbove2To63IsAnErrorNotACrash() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("items.arbor")
        try IndexWriter().write(layout: Fixtures.smallLayout(), to: path)
        do {
            let env = try Environment(path: path, access: .readWrite, mapSize: 64 << 20)
            let items = try env.openTable("items")
            try env.write { txn in try txn.put(items, UInt64(70), [UInt64.max]) }
        }
        let reader = try IndexReader(path: path)
        #expect(throws: IndexError.self) { try reader.leaf(of: 70) }
    }
}

extension ReviewIndexTests {
    /// "Safe to call from many threads": every query holds one LMDB reader slot; LMDB's default
    /// maxreaders is 126, so the 127th concurrent query fails instead of waiting.
    @Test func manyConcurrentViews() throws {
        let dir = IndexTestDirectory(); defer { dir.cleanup() }
        let path = dir.file("r.arbor")
        try IndexWriter().write(layout: Fixtures.smallLayout(), to: path)
        let reader = try IndexReader(path: path)
        func nest(_ depth: Int) throws -> Int {
            if depth == 0 { return 0 }
            return try reader.withView { _ in try nest(depth - 1) + 1 }
        }
        do { _ = try nest(200) } catch { Issue.record("200 concurrent read views: \(error)") }
    }
}
