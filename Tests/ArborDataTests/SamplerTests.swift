import Foundation
import Testing

@testable import ArborData

@Suite struct SamplerTests {
    @Test func aliasMatchesWeights() throws {
        let s = try AliasSampler(weights: [1, 0, 3, 6])
        #expect(s.probabilities == [0.1, 0, 0.3, 0.6])
        var rng = Xoshiro256StarStar(seed: 2)
        var counts = [0, 0, 0, 0]
        for _ in 0 ..< 40_000 { counts[s.sample(using: &rng)] += 1 }
        #expect(counts[1] == 0)
        #expect(abs(Double(counts[0]) / 40_000 - 0.1) < 0.01)
        #expect(abs(Double(counts[2]) / 40_000 - 0.3) < 0.015)
        #expect(abs(Double(counts[3]) / 40_000 - 0.6) < 0.015)
        #expect(throws: DataError.self) { try AliasSampler(weights: [0, 0]) }
        #expect(throws: DataError.self) { try AliasSampler(weights: [1, .nan]) }
    }

    @Test func negativeSampler() throws {
        let uniform = try NegativeSampler(itemCount: 10)
        #expect(abs(uniform.logProbability(of: 3) - Float(log(0.1))) < 1e-6)
        let pop = try NegativeSampler(itemCount: 3, distribution: .popularity(exponent: 1, smoothing: 0), frequencies: [0, 1, 3])
        #expect(pop.probability(of: 0) == 0 && pop.probability(of: 2) == 0.75)
        var rng = Xoshiro256StarStar(seed: 1)
        let draws = uniform.sample(1_000, excluding: [0, 1, 2], using: &rng)
        #expect(draws.count == 1_000 && draws.allSatisfy { $0 >= 3 && $0 < 10 })
        #expect(throws: DataError.self) { try NegativeSampler(itemCount: 3, distribution: .popularity(), frequencies: [1]) }
    }
}
