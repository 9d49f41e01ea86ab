// Test support shared by Arbor's test targets; not part of the library product.
import ArborCore

/// The contract of ``Retriever``, checked the same way for every retriever.
///
/// For every query of the case (each with its own exclusions) and every `k` in ``kValues(itemCount:)``,
/// a search with the case's exhaustive parameters (a beam, `efSearch` or block wider than the
/// catalogue) must:
/// 1. list results best first, equal scores in increasing item id, no item twice;
/// 2. return no excluded item;
/// 3. return `min(k, items not excluded)` items, so `k` above the item count returns every item that
///    is not excluded;
/// 4. equal the reference (the exact scan): the same ids in the same order, each score within
///    `tolerance · max(1, |reference score|)`.
///
/// Build the data so that ties really occur (duplicate vectors) and exclusions cut into the top
/// results; scores that are exact in `Float` (small integers) keep tie order independent of the
/// order in which BLAS sums.
public enum RetrieverContract {
    /// One check: the retriever, its exhaustive parameters (`k` is set per check), and the reference.
    public struct Case {
        public var subject: any Retriever
        public var reference: any Retriever
        public var exhaustive: SearchParameters
        public var itemIDs: [ItemID]
        public var queries: [Query]
        public var tolerance: Float

        /// - Parameters:
        ///   - subject: the retriever under test.
        ///   - reference: the exact answer (e.g. ``ExactReference``, or a brute-force scan of a deep scorer).
        ///   - exhaustive: knobs wide enough to make the subject exact (`beamWidth`, `efSearch` >= item count).
        ///   - itemIDs: every item the subject holds.
        ///   - queries: the queries, with their exclusions.
        ///   - tolerance: relative score tolerance against the reference (default 1e-5).
        public init(subject: any Retriever, reference: any Retriever, exhaustive: SearchParameters,
                    itemIDs: [ItemID], queries: [Query], tolerance: Float = 1e-5) {
            self.subject = subject
            self.reference = reference
            self.exhaustive = exhaustive
            self.itemIDs = itemIDs
            self.queries = queries
            self.tolerance = tolerance
        }
    }

    /// The cut-offs checked: 1, 2, a third, every item but one, every item, and more than every item.
    public static func kValues(itemCount n: Int) -> [Int] {
        Array(Set([1, 2, max(1, n / 3), max(1, n - 1), n, n + 7])).sorted()
    }

    /// Every breach of the contract by `check.subject`, one line each; empty when it holds.
    public static func violations(_ check: Case) -> [String] {
        var found: [String] = []
        let all = Set(check.itemIDs)
        for (qi, query) in check.queries.enumerated() {
            let available = all.subtracting(query.excluded).count
            for k in kValues(itemCount: check.itemIDs.count) {
                var p = check.exhaustive
                p.k = k
                let at = "\(check.subject.name), query \(qi), k \(k)"
                let got: [ScoredItem], want: [ScoredItem]
                do {
                    got = try check.subject.search(query, parameters: p).items
                    want = try check.reference.search(query, parameters: p).items
                } catch {
                    found.append("\(at): search threw \(error)")
                    continue
                }
                found += orderViolations(got, at: at)
                let excluded = got.filter { query.excluded.contains($0.item) }.map(\.item)
                if !excluded.isEmpty { found.append("\(at): returned excluded items \(excluded)") }
                let unknown = got.filter { !all.contains($0.item) }.map(\.item)
                if !unknown.isEmpty { found.append("\(at): returned unknown items \(unknown)") }
                if got.count != min(k, available) {
                    found.append("\(at): \(got.count) items, expected \(min(k, available))")
                }
                if got.map(\.item) != want.map(\.item) {
                    found.append("\(at): ids \(got.map(\.item.rawValue)), reference \(want.map(\.item.rawValue))")
                } else {
                    for (g, w) in zip(got, want) where abs(g.score - w.score) > check.tolerance * max(1, abs(w.score)) {
                        found.append("\(at): item \(g.item.rawValue) score \(g.score), reference \(w.score)")
                    }
                }
            }
        }
        return found
    }

    /// Breaches of "best first, ties by smaller id, no duplicates" in one result list.
    public static func orderViolations(_ items: [ScoredItem], at: String) -> [String] {
        var found: [String] = []
        if Set(items.map(\.item)).count != items.count { found.append("\(at): an item appears twice") }
        for (a, b) in zip(items, items.dropFirst()) {
            let ordered = a.score > b.score || (a.score == b.score && a.item < b.item)
            if !ordered {
                found.append("\(at): \(a.item.rawValue) (\(a.score)) listed before \(b.item.rawValue) (\(b.score))")
            }
        }
        return found
    }
}

/// The exact answer by definition: every item scored by `score` one at a time, sorted best first with
/// ties by smaller id, excluded items dropped. O(n log n) per query; for small test catalogues.
public struct ExactReference: Retriever {
    public let name: String
    public let itemIDs: [ItemID]
    /// The score of item `index` (a position in `itemIDs`) for a query.
    public let score: @Sendable (Query, Int) throws -> Float

    public init(name: String = "exact reference", itemIDs: [ItemID], score: @escaping @Sendable (Query, Int) throws -> Float) {
        self.name = name
        self.itemIDs = itemIDs
        self.score = score
    }

    public var itemCount: Int { itemIDs.count }

    public func search(_ query: Query, parameters: SearchParameters) throws -> SearchResult {
        var scored: [ScoredItem] = []
        for (i, id) in itemIDs.enumerated() where !query.excluded.contains(id) {
            scored.append(ScoredItem(item: id, score: try score(query, i)))
        }
        scored.sort { $0.score != $1.score ? $0.score > $1.score : $0.item < $1.item }
        return SearchResult(items: Array(scored.prefix(parameters.k)))
    }
}
