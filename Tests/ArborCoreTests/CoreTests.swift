import Testing
@testable import ArborCore

@Suite struct MatrixTests {
    @Test func rowsColumnsAndRowMajorLayout() throws {
        let m = try Matrix(rows: 2, cols: 3, values: [1, 2, 3, 4, 5, 6])
        #expect(m[1, 0] == 4)
        #expect(Array(m.row(1)) == [4, 5, 6])
        #expect(throws: ArborError.dimensionMismatch(field: "matrix values", expected: 6, found: 5)) {
            try Matrix(rows: 2, cols: 3, values: [1, 2, 3, 4, 5])
        }
        #expect(throws: ArborError.dimensionMismatch(field: "row 1", expected: 2, found: 3)) {
            try Matrix(cols: 2, rowArrays: [[1, 2], [3, 4, 5]])
        }
    }

    @Test func resizeKeepsRowsAndCapacity() throws {
        var m = try Matrix(rows: 2, cols: 2, values: [1, 2, 3, 4])
        m.reserveRows(100)
        m.resize(rows: 3)
        #expect(m.values == [1, 2, 3, 4, 0, 0])
        m.resize(rows: 1)
        #expect(m.values == [1, 2])
        m.appendRow([7, 8])
        #expect(m.rows == 2 && Array(m.row(1)) == [7, 8])
    }

    @Test func firstNonFiniteRowNamesTheRow() throws {
        #expect(try Matrix(rows: 3, cols: 2, values: [0, 1, 2, .infinity, 4, .nan]).firstNonFiniteRow() == 1)
        #expect(Matrix(rows: 3, cols: 2).firstNonFiniteRow() == nil)
    }
}

@Suite struct QueryValidationTests {
    @Test func vectorLengthAndValuesAreChecked() throws {
        try validateQueryVector([1, 2], dimension: 2)
        #expect(throws: ArborError.dimensionMismatch(field: "query vector", expected: 3, found: 2)) {
            try validateQueryVector([1, 2], dimension: 3)
        }
        #expect(throws: ArborError.nonFiniteValue(field: "query vector", row: 0)) {
            try validateQueryVector([1, .nan], dimension: 2)
        }
    }

    @Test func searchParametersRejectNonPositiveValues() throws {
        #expect(try SearchParameters(k: 5, beamWidth: 1, efSearch: 1).validated().k == 5)
        #expect(throws: ArborError.self) { try SearchParameters(k: 0).validated() }
        #expect(throws: ArborError.self) { try SearchParameters(k: 1, beamWidth: 0).validated() }
        #expect(throws: ArborError.self) { try SearchParameters(k: 1, efSearch: -1).validated() }
    }

    @Test func errorsDescribeTheField() {
        #expect(ArborError.dimensionMismatch(field: "query vector", expected: 64, found: 2).description
                == "query vector: expected 64 values, found 2")
        #expect(ArborError.unknownItem(7).description == "unknown item id 7")
    }

    @Test func cancellationFlagThrowsOnceSet() throws {
        let flag = CancellationFlag()
        try flag.check()
        flag.cancel()
        #expect(throws: CancellationError.self) { try flag.check() }
    }

    @Test func derivedSeedsAreStableAndDistinct() {
        #expect(SplitMix64.derive(1, 2, 3) == SplitMix64.derive(1, 2, 3))
        #expect(SplitMix64.derive(1, 2, 3) != SplitMix64.derive(1, 3, 2))
        var g = SplitMix64(seed: 9)
        for _ in 0..<1000 { let u = g.nextUnitFloat(); #expect(u >= 0 && u < 1) }
    }
}
