import ArborCore
import ArborData
import ArborInference
import ArborModels
import ArborPipelines
import Testing

@Suite("SDM data: leave-last-out with timestamps, session splits without a long term")
struct SDMDataTests {
    @Test func leaveLastOutCarriesTimestampsAndExcludesTheHistory() throws {
        var log = InteractionLog()
        for u in 0 ..< 3 {
            for t in 0 ..< 6 { log.append(user: UInt64(u), item: ItemID(UInt64(10 + (u + t) % 8)), timestamp: Double(1000 * t)) }
        }
        let split = try LeaveLastOutSplit.make(from: log, filter: .none)
        let data = try SDMData.leaveLastOut(split: split)
        #expect(data.hasLongTerm)
        #expect(data.test.count == 3 && data.validation.count == 3)
        for c in data.test {
            #expect(c.history.count == 5 && c.timestamps == [0, 1000, 2000, 3000, 4000])
            #expect(c.excluded == Set(c.history))
        }
        #expect(data.timestamps?.allSatisfy { $0.count == 4 } == true)
    }

    @Test func sessionSplitsHaveNoLongTermAndKeepSeenItems() throws {
        let split = SessionSplit(sessions: [
            SplitSession(id: 1, items: [1, 2, 3], role: .train),
            SplitSession(id: 2, items: [2, 2, 4], role: .test),
            SplitSession(id: 3, items: [4], role: .validation),  // no target: no query
        ])
        let data = try SDMData.sessions(split: split)
        #expect(!data.hasLongTerm && data.timestamps == nil)
        #expect(data.test.map(\.target) == [2, 4])
        #expect(data.test.allSatisfy { $0.excluded.isEmpty && $0.timestamps == nil })
        #expect(data.validation.isEmpty)
        var options = SDMExperimentOptions()
        options.fusion = .gated
        #expect(SDMExperiment.config(data: data, options: options).fusion == .shortOnly)
    }
}
