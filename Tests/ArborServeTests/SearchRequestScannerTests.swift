@testable import ArborServe
import Testing

/// The one-pass request scanner must agree with `JSONDecoder` on every body it accepts, and leave
/// everything else (errors included) to the decoder.
@Suite struct SearchRequestScannerTests {
    private static let valid: [String] = [
        #"{"vector": [0.25, -1.5e-3, 3, 1E2, -0, 0.1, 123456.789, 2.5e+1], "k": 100, "beam": 400}"#,
        #"{"history":[100,101,102,999999],"k":5,"retriever":"exact"}"#,
        #" { "vectors" : [ [1,2] , [3.5, -4] ] , "k" : 4 , "exclude" : [ 7 , 18446744073709551615 ] } "#,
        #"{"history": [1, 2, 3], "timestamps": [881250949, 881251003.5, 881251010], "interestBeams": "shared", "retriever": "tree"}"#,
        #"{"vector": [1, 2], "ef": 64, "retriever": "hnsw", "k": -3}"#,
        "{\n\t\"vector\": [1,\r\n2],\n\"k\": 9223372036854775807}",
        #"{"k": -9223372036854775808, "vector": []}"#,
        #"{}"#,
        #"{"history": [], "vectors": []}"#,
    ]

    /// Bodies the scanner must hand to the decoder (which reads or refuses them, naming the field).
    private static let handedOver: [String] = [
        #"{"vector": [1, "NaN", 3]}"#, #"{"vector": [1e400]}"#, #"{"vector": null}"#, #"{"k": 5.0, "vector": [1]}"#,
        #"{"k": 1e2, "vector": [1]}"#, #"{"k": 99999999999999999999999}"#, #"{"history": [-4]}"#, #"{"history": [01]}"#,
        #"{"history": [18446744073709551616]}"#, #"{"kk": 10}"#, #"{"k": 1, "k": 2}"#, #"{"retriever": "ex\u0061ct"}"#,
        #"{"vector": [1, 2,]}"#, #"{"vector": [.5]}"#, #"{"vector": [1.]}"#, #"{"vector": [+1]}"#, #"{"vector": [1e]}"#,
        #"{"vector": [1] } x"#, #"[1, 2]"#, #"{not json"#, "", #"{"vector": [1, 2]"#, #"{"vectors": [[1], 2]}"#,
        #"{"retriever": "trée"}"#,
    ]

    @Test func acceptsTheUsualShapesExactlyAsTheDecoderReadsThem() throws {
        for body in Self.valid {
            let fast = try #require(SearchRequestScanner.parse(Array(body.utf8)), "\(body)")
            #expect(fast == (try SearchRequest.decodeWithFoundation(Array(body.utf8))), "\(body)")
        }
        let request = try #require(SearchRequestScanner.parse(Array(Self.valid[2].utf8)))
        #expect(request.vectors == [[1, 2], [3.5, -4]] && request.k == 4 && request.exclude == [7, UInt64.max])
        #expect(request.history == nil && request.vector == nil && request.retriever == nil)
    }

    @Test func leavesEverythingElseToTheDecoder() {
        for body in Self.handedOver {
            #expect(SearchRequestScanner.parse(Array(body.utf8)) == nil, "\(body)")
        }
    }

    /// Deterministic mutations of valid bodies (a byte replaced, inserted or removed): whenever
    /// the scanner accepts one, the decoder accepts it too and reads the same request.
    @Test func agreesWithTheDecoderOnDamagedBodies() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        let alphabet = Array(#"{}[],:"-+.eE0123456789 aknrtuv\"#.utf8)
        var accepted = 0
        for round in 0 ..< 4000 {
            var bytes = Array(Self.valid[round % Self.valid.count].utf8)
            for _ in 0 ... next(3) {
                let at = next(bytes.count + 1)
                switch next(3) {
                case 0 where at < bytes.count: bytes[at] = alphabet[next(alphabet.count)]
                case 1: bytes.insert(alphabet[next(alphabet.count)], at: at)
                default: if at < bytes.count { bytes.remove(at: at) }
                }
            }
            guard let fast = SearchRequestScanner.parse(bytes) else { continue }
            accepted += 1
            let slow = try? SearchRequest.decodeWithFoundation(bytes)
            #expect(slow == fast, "\(String(decoding: bytes, as: UTF8.self))")
        }
        #expect(accepted > 100)  // the comparison ran on many mutated bodies
    }
}
