import ArborEngine
import Foundation
import Testing

// The README's first library block, compiled as it stands: the lines between `func` and its
// closing brace are the block's lines after `import ArborEngine`, verbatim (the test below checks
// that the README still says exactly this).
private func readmeLibraryBlock() throws {
let engine = try Arbor.open("ml.arbor")                  // maps the file, loads the stored model
let top = try engine.search(history: [50, 172, 181], k: 10)
for hit in top.items { print(hit.item, hit.score) }      // best first, ties by smaller id
print("ignored:", top.unknownHistoryItems)               // ids the model does not know
let exact = try engine.search(history: [50, 172, 181], k: 10, using: .exact)
let byVector = try engine.search(vectors: [[Float]](repeating: [0.1, 0.2], count: 2), k: 100,
                                 using: .tree(beam: 400))
_ = (exact, byVector)
}

@Suite struct ReadmeLibraryBlockTests {
    /// The first ```swift block of README.md is `import ArborEngine`, a blank line, and the body of
    /// `readmeLibraryBlock` above (without its last line, which only silences unused values), so
    /// the block the README shows is the block this file compiles. It has at most 10 lines.
    @Test func readmeBlockIsTheCompiledOne() throws {
        let here = URL(fileURLWithPath: #filePath)
        let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let block = try #require(Self.firstSwiftBlock(readme))
        let source = try String(contentsOf: here, encoding: .utf8)
        let start = try #require(source.range(of: "private func readmeLibraryBlock() throws {\n"))
        let end = try #require(source.range(of: "_ = (exact, byVector)\n}", range: start.upperBound..<source.endIndex))
        let body = String(source[start.upperBound..<end.lowerBound])
        #expect(block == "import ArborEngine\n\n" + body)
        #expect(block.split(separator: "\n", omittingEmptySubsequences: false).count - 1 <= 10)
    }

    static func firstSwiftBlock(_ text: String) -> String? {
        guard let open = text.range(of: "```swift\n"),
              let close = text.range(of: "```", range: open.upperBound..<text.endIndex) else { return nil }
        return String(text[open.upperBound..<close.lowerBound])
    }
}
