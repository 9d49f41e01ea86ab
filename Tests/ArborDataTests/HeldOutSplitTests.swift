import Testing
@testable import ArborData

/// One held-out file cut into validation and test users (the Amazon Books demo's protocol).
@Suite struct HeldOutSplitTests {
    @Test func halvesAreDisjointCompleteAndSeeded() {
        let users = (0..<7).map { HeldOutUser(user: UInt64($0), history: [ItemID(UInt64($0))], truth: [ItemID(UInt64(100 + $0))]) }
        let (validation, test) = users.splitValidationTest(seed: 5)
        #expect(validation.count == 3 && test.count == 4)
        #expect(Set((validation + test).map(\.user)) == Set(users.map(\.user)))
        let again = users.splitValidationTest(seed: 5)
        #expect(again.validation == validation && again.test == test)
        #expect(users.splitValidationTest(seed: 6).validation.map(\.user) != validation.map(\.user)
                || users.splitValidationTest(seed: 7).validation.map(\.user) != validation.map(\.user))
        #expect(users.allItems == Set((0..<7).flatMap { [ItemID(UInt64($0)), ItemID(UInt64(100 + $0))] }))
        let none = [HeldOutUser]().splitValidationTest(seed: 1)
        #expect(none.validation.isEmpty && none.test.isEmpty)
    }
}
