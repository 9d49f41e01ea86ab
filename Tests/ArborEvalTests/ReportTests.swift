import Foundation
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

@testable import ArborEval

private func row(
    _ retriever: String, _ parameters: String, sweep: Int, k: Int = 10, threads: Int = 1,
    recall: Double?, exact: Double? = nil, p50: Double, qps: Double, evals: Double
) -> BenchmarkRow {
    var m = MetricSummary(queries: 100, truthQueries: 100)
    m.recall = recall
    m.precision = recall.map { $0 / 10 }
    m.ndcg = recall.map { $0 * 0.8 }
    m.recallVsExact = exact
    let latency = LatencySummary(
        queries: 100, meanMs: p50 * 1.1, p50Ms: p50, p95Ms: p50 * 2, p99Ms: p50 * 3, maxMs: p50 * 4,
        wallSeconds: 100 / qps, qps: qps)
    return BenchmarkRow(
        retriever: retriever, parameters: parameters, sweepIndex: sweep, k: k, searchK: k, threads: threads,
        metrics: m, latency: latency, evaluationsPerQuery: evals, stepsPerQuery: 17)
}

private func sampleReport() -> BenchmarkReport {
    let rows = [
        row("tree", "beam=100", sweep: 0, recall: 0.829, exact: 0.83, p50: 0.41, qps: 2400, evals: 2400),
        row("tree", "beam=200", sweep: 1, recall: 0.873, exact: 0.88, p50: 0.83, qps: 1200, evals: 4100),
        row("tree", "beam=400", sweep: 2, recall: 0.904, exact: 0.91, p50: 1.7, qps: 590, evals: 8000),
        row("flat, exact", "default", sweep: 0, recall: 0.95, exact: 1, p50: 9.7, qps: 103, evals: 200_000),
        row("hnsw <M=16>", "ef=64", sweep: 0, recall: nil, exact: 0.9, p50: 0.12, qps: 8467, evals: 900),
    ]
    let meta = RunMetadata(
        date: Date(timeIntervalSince1970: 1_795_000_000), machine: ["cpu": "x86_64 AVX-512", "cores": "2"],
        dataset: "synthetic 200k, d = 64", notes: ["seed 7"])
    return BenchmarkReport(metadata: meta, rows: rows)
}

/// Collects element names and polyline point counts.
private final class SVGCollector: NSObject, XMLParserDelegate {
    var elements: [String] = []
    var polylinePoints: [Int] = []
    var texts: [String] = []
    var currentText = ""
    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?,
        attributes attributeDict: [String: String] = [:]
    ) {
        elements.append(elementName)
        if elementName == "polyline" {
            polylinePoints.append(attributeDict["points", default: ""].split(separator: " ").count)
        }
        currentText = ""
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) { currentText += string }
    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        if elementName == "text" || elementName == "title" { texts.append(currentText) }
        currentText = ""
    }
}

private func parseSVG(_ svg: String) -> (ok: Bool, collector: SVGCollector, error: String?) {
    let parser = XMLParser(data: Data(svg.utf8))
    let collector = SVGCollector()
    parser.delegate = collector
    let ok = parser.parse()
    return (ok, collector, parser.parserError.map { "\($0)" })
}

@Suite struct ReportTests {
    @Test func markdownHasHeaderAndOneLinePerRow() {
        let report = sampleReport()
        let md = report.markdown(title: "Tree vs flat")
        #expect(md.hasPrefix("# Tree vs flat\n"))
        #expect(md.contains("- dataset: synthetic 200k, d = 64"))
        #expect(md.contains("- cores: 2"))
        let table = report.markdownTable().split(separator: "\n").map(String.init)
        #expect(table.count == 2 + report.rows.count)
        #expect(table[0].contains("retriever") && table[0].contains("p99 ms") && table[0].contains("Recall vs exact@k"))
        #expect(table[1].contains("---:"))
        // Aligned: every line has the same length and the same number of separators.
        #expect(Set(table.map(\.count)).count == 1)
        #expect(Set(table.map { $0.filter { $0 == "|" }.count }).count == 1)
        #expect(table[2].contains("0.8290") && table[2].contains("0.410") && table[2].contains("2400"))
        // Missing value and unmeasured metric columns.
        #expect(table[6].contains(" - "))
        #expect(!table[0].contains("Novelty"))
    }

    @Test func jsonRoundTrips() throws {
        let report = sampleReport()
        let data = try report.jsonData()
        let decoded = try BenchmarkReport.decode(json: data)
        #expect(decoded == report)
        let text = try report.jsonString()
        #expect(text.contains("\"recallVsExact\""))
        #expect(text.contains("2026-11-18T"))
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect((object?["rows"] as? [Any])?.count == 5)
    }

    @Test func csvHasHeaderAndQuotedFields() {
        let report = sampleReport()
        let lines = report.csv().components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(lines.count == 1 + report.rows.count)
        #expect(lines[0] == BenchmarkReport.csvHeader.joined(separator: ","))
        #expect(lines[4].hasPrefix("\"flat, exact\",default,0,10,"))
        // Same number of fields on every line (the quoted comma is not a separator).
        let headerCount = BenchmarkReport.csvHeader.count
        for line in lines.dropFirst() {
            let unquoted = line.replacingOccurrences(of: "\"flat, exact\"", with: "flat")
            #expect(unquoted.split(separator: ",", omittingEmptySubsequences: false).count == headerCount)
        }
        #expect(lines[5].contains(",,")) // hnsw: recall not measured
    }

    @Test func svgRecallPlotParsesWithOnePolylinePerSeries() throws {
        let report = sampleReport()
        let plot = try report.recallPlot(k: 10, x: .p50, logX: true, title: "Recall & latency <k=10>")
        #expect(plot.series.map(\.name) == ["tree", "flat, exact", "hnsw <M=16>"])
        #expect(plot.series[0].points.map(\.label) == ["beam=100", "beam=200", "beam=400"])
        #expect(plot.yAxis.title == "Recall vs exact@10")
        let svg = try plot.render()
        let (ok, collector, error) = parseSVG(svg)
        #expect(ok, "XML error: \(error ?? "")")
        #expect(collector.elements.first == "svg")
        #expect(collector.elements.filter { $0 == "polyline" }.count == 3)
        #expect(collector.polylinePoints == [3, 1, 1])
        #expect(collector.texts.contains("Recall & latency <k=10>"))
        #expect(collector.texts.contains("beam=200"))
        #expect(collector.texts.contains("hnsw <M=16>"))
        #expect(svg.contains("&lt;M=16&gt;"))

        // QPS on a linear axis, recall metric: hnsw has no recall and drops out.
        let qps = try report.recallPlot(k: 10, metric: .recall, x: .qps, logX: false)
        #expect(qps.series.count == 2)
        let parsed = parseSVG(try qps.render())
        #expect(parsed.ok)
        #expect(parsed.collector.elements.filter { $0 == "polyline" }.count == 2)
    }

    @Test func svgCostVersusN() throws {
        let plot = SVGPlot.costVersusN(
            title: "Model evaluations per query", yTitle: "evaluations",
            series: [
                (name: "tree beam=200", points: [(n: 10_000, value: 3000), (n: 100_000, value: 4100), (n: 1_000_000, value: 5200), (n: 10_000_000, value: 6300)]),
                (name: "flat", points: [(n: 10_000, value: 10_000), (n: 100_000, value: 100_000), (n: 1_000_000, value: 1e6), (n: 10_000_000, value: 1e7)]),
            ], logY: true)
        let svg = try plot.render()
        let (ok, collector, error) = parseSVG(svg)
        #expect(ok, "XML error: \(error ?? "")")
        #expect(collector.elements.filter { $0 == "polyline" }.count == 2)
        #expect(collector.texts.contains("10k"))
        #expect(collector.texts.contains("10M"))
        #expect(collector.texts.contains("items (N) (log scale)"))
    }

    @Test func svgRejectsBadInput() {
        let axis = PlotAxis(title: "x", logScale: true)
        let zero = SVGPlot(title: "t", xAxis: axis, yAxis: PlotAxis(title: "y"), series: [PlotSeries(name: "s", points: [PlotPoint(x: 0, y: 1)])])
        #expect(throws: ArborError.self) { try zero.render() }
        let nan = SVGPlot(title: "t", xAxis: PlotAxis(title: "x"), yAxis: PlotAxis(title: "y"), series: [PlotSeries(name: "s", points: [PlotPoint(x: .nan, y: 1)])])
        #expect(throws: ArborError.nonFiniteValue(field: "series s", row: 0)) { try nan.render() }
        let none = SVGPlot(title: "t", xAxis: PlotAxis(title: "x"), yAxis: PlotAxis(title: "y"), series: [])
        #expect(throws: ArborError.empty(what: "plot series")) { try none.render() }
        #expect(throws: ArborError.self) { try sampleReport().recallPlot(k: 7) }
    }

    @Test func singlePointAndFixedRange() throws {
        let plot = SVGPlot(
            title: "one", xAxis: PlotAxis(title: "x"), yAxis: PlotAxis(title: "recall", range: 0 ... 1),
            series: [PlotSeries(name: "a\u{1}b", points: [PlotPoint(x: 3, y: 0.5, label: "p")])])
        let (ok, collector, _) = parseSVG(try plot.render())
        #expect(ok)
        #expect(collector.elements.filter { $0 == "polyline" }.count == 1)
        #expect(collector.texts.contains("ab"))
        #expect(collector.texts.contains("0.2") && collector.texts.contains("1.0"))
    }

    @Test func scaleTicks() throws {
        let lin = try Scale(axis: PlotAxis(title: ""), values: [0.03, 0.91], name: "y")
        #expect(lin.ticks.map(\.label) == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        let log = try Scale(axis: PlotAxis(title: "", logScale: true), values: [0.12, 9.7], name: "x")
        #expect(log.ticks.map(\.label) == ["0.1", "0.2", "0.5", "1", "2", "5", "10"])
        #expect(abs(log.fraction(1) - 0.5) < 1e-12)
        #expect(tickLabel(2_500_000) == "2.5M")
        #expect(xmlEscape("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;")
    }

    @Test func writesFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("arbor-eval-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let urls = try sampleReport().write(to: dir, baseName: "bench")
        #expect(urls.map(\.lastPathComponent) == ["bench.md", "bench.json", "bench.csv"])
        let back = try BenchmarkReport.decode(json: Data(contentsOf: urls[1]))
        #expect(back == sampleReport())
        let svgURL = dir.appendingPathComponent("recall.svg")
        try sampleReport().recallPlot(k: 10).write(to: svgURL)
        #expect(parseSVG(try String(contentsOf: svgURL, encoding: .utf8)).ok)
    }
}

@Test func basicMachineInfoHasCores() {
    let info = RunMetadata.basicMachineInfo()
    #expect(Int(info["cores"] ?? "") ?? 0 >= 1)
    #expect(info["os"] != nil)
}
