import Foundation

/// Where and on what a benchmark ran.
public struct RunMetadata: Sendable, Equatable, Codable {
    /// When the run happened.
    public var date: Date
    /// Machine description, as the caller gathers it ("cpu", "cores", "openblas core", "swift").
    public var machine: [String: String]
    /// The data set and protocol ("ML-100K leave-last-out, 938 users").
    public var dataset: String
    /// Free-form notes (build flags, seeds).
    public var notes: [String]

    /// Metadata; `date` defaults to now.
    public init(date: Date = Date(), machine: [String: String] = [:], dataset: String, notes: [String] = []) {
        self.date = date
        self.machine = machine
        self.dataset = dataset
        self.notes = notes
    }
}

extension RunMetadata {
    /// What Foundation knows about this machine: "os", "cores" (active processors) and "memory GB".
    /// Callers add the CPU model, BLAS core (`openblas_get_corename()`) and Swift version.
    public static func basicMachineInfo() -> [String: String] {
        let info = ProcessInfo.processInfo
        return [
            "os": info.operatingSystemVersionString,
            "cores": String(info.activeProcessorCount),
            "memory GB": String(format: "%.1f", Double(info.physicalMemory) / 1_073_741_824),
        ]
    }
}

/// A benchmark's rows with their metadata, renderable as Markdown, JSON and CSV (and plots, see
/// ``recallPlot(k:metric:x:logX:threads:title:)``).
public struct BenchmarkReport: Sendable, Equatable, Codable {
    /// Run metadata.
    public var metadata: RunMetadata
    /// The rows, in runner order.
    public var rows: [BenchmarkRow]

    /// A report.
    public init(metadata: RunMetadata, rows: [BenchmarkRow]) {
        self.metadata = metadata
        self.rows = rows
    }

    // MARK: Markdown

    /// The metrics that at least one row holds, in ``Metric`` order.
    public var measuredMetrics: [Metric] {
        Metric.allCases.filter { m in rows.contains { $0.metrics[m] != nil } }
    }

    /// A Markdown document: a title, the metadata as a list, and one table with a header row, an
    /// alignment row and one row per result. Columns are padded to equal width; metric columns
    /// appear only when some row holds the metric; missing values print as "-". Numbers: metrics
    /// with 4 decimals, milliseconds with 3 significant digits, QPS and evaluations rounded.
    public func markdown(title: String = "Benchmark") -> String {
        var out = "# \(title)\n\n"
        out += "- date: \(Self.isoString(metadata.date))\n"
        out += "- dataset: \(metadata.dataset)\n"
        for key in metadata.machine.keys.sorted() { out += "- \(key): \(metadata.machine[key]!)\n" }
        for note in metadata.notes { out += "- \(note)\n" }
        out += "\n"
        out += markdownTable()
        return out
    }

    /// The results table alone (see ``markdown(title:)``).
    public func markdownTable() -> String {
        let metrics = measuredMetrics
        let showBatch = rows.contains { $0.batchSize > 1 }
        var header = ["retriever", "parameters", "k", "threads"] + (showBatch ? ["batch"] : [])
        header += metrics.map { "\($0.shortName)@k" }
        header += ["p50 ms", "p95 ms", "p99 ms", "QPS", "evals/query"]
        let rightAligned = [false, false] + Array(repeating: true, count: header.count - 2)
        var table: [[String]] = [header]
        for row in rows {
            var cells = [Self.markdownEscape(row.retriever), Self.markdownEscape(row.parameters), "\(row.k)", "\(row.threads)"]
            if showBatch { cells.append("\(row.batchSize)") }
            cells += metrics.map { row.metrics[$0].map(Self.formatMetric) ?? "-" }
            cells += [
                Self.formatMilliseconds(row.latency.p50Ms), Self.formatMilliseconds(row.latency.p95Ms),
                Self.formatMilliseconds(row.latency.p99Ms), Self.formatCount(row.latency.qps),
                Self.formatCount(row.evaluationsPerQuery),
            ]
            table.append(cells)
        }
        var widths = [Int](repeating: 3, count: header.count)
        for cells in table { for (i, c) in cells.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            let padded = cells.enumerated().map { i, c -> String in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return rightAligned[i] ? pad + c : c + pad
            }
            return "| " + padded.joined(separator: " | ") + " |\n"
        }
        var out = line(header)
        out += "|" + widths.indices.map { i in
            rightAligned[i] ? " " + String(repeating: "-", count: widths[i] - 1) + ": " : " " + String(repeating: "-", count: widths[i]) + " "
        }.joined(separator: "|") + "|\n"
        for cells in table.dropFirst() { out += line(cells) }
        return out
    }

    // MARK: JSON

    /// The report as JSON (`{"metadata": …, "rows": […]}`), keys sorted, dates in ISO 8601, pretty
    /// printed. Rows carry every field; `nil` metrics are omitted.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(self)
    }

    /// ``jsonData()`` as a UTF-8 string.
    public func jsonString() throws -> String {
        String(decoding: try jsonData(), as: UTF8.self)
    }

    /// Reads a report written by ``jsonData()``.
    public static func decode(json: Data) throws -> BenchmarkReport {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(BenchmarkReport.self, from: json)
    }

    // MARK: CSV

    /// The CSV column names, in order.
    public static var csvHeader: [String] {
        ["retriever", "parameters", "sweep_index", "k", "search_k", "threads", "batch_size", "queries", "truth_queries"]
            + Metric.allCases.map(\.rawValue)
            + ["mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms", "wall_s", "qps", "evals_per_query", "steps_per_query"]
    }

    /// The rows as CSV (RFC 4180: comma separated, CRLF line ends, fields with commas, quotes or
    /// line breaks quoted). One header row (``csvHeader``), then one line per row; every metric has
    /// a column, empty when not measured; numbers at full precision.
    public func csv() -> String {
        var out = Self.csvHeader.joined(separator: ",") + "\r\n"
        for row in rows {
            var fields = [
                Self.csvField(row.retriever), Self.csvField(row.parameters), "\(row.sweepIndex)", "\(row.k)",
                "\(row.searchK)", "\(row.threads)", "\(row.batchSize)", "\(row.metrics.queries)", "\(row.metrics.truthQueries)",
            ]
            fields += Metric.allCases.map { row.metrics[$0].map { "\($0)" } ?? "" }
            let l = row.latency
            fields += [l.meanMs, l.p50Ms, l.p95Ms, l.p99Ms, l.maxMs, l.wallSeconds, l.qps, row.evaluationsPerQuery, row.stepsPerQuery]
                .map { "\($0)" }
            out += fields.joined(separator: ",") + "\r\n"
        }
        return out
    }

    // MARK: Files

    /// Writes `<baseName>.md`, `<baseName>.json` and `<baseName>.csv` into `directory` (created if
    /// missing) and returns their URLs.
    public func write(to directory: URL, baseName: String, title: String = "Benchmark") throws -> [URL] {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let md = directory.appendingPathComponent("\(baseName).md")
        let json = directory.appendingPathComponent("\(baseName).json")
        let csvURL = directory.appendingPathComponent("\(baseName).csv")
        try Data(markdown(title: title).utf8).write(to: md, options: .atomic)
        try jsonData().write(to: json, options: .atomic)
        try Data(csv().utf8).write(to: csvURL, options: .atomic)
        return [md, json, csvURL]
    }

    // MARK: Formatting

    static func isoString(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }

    /// 4 decimals ("0.8290").
    static func formatMetric(_ v: Double) -> String { String(format: "%.4f", v) }

    /// About 3 significant digits: "0.123", "1.23", "12.3", "123", "1234".
    static func formatMilliseconds(_ v: Double) -> String {
        guard v.isFinite else { return "\(v)" }
        let a = abs(v)
        if a == 0 { return "0" }
        if a < 0.001 { return String(format: "%.2e", v) }
        if a < 1 { return String(format: "%.3f", v) }
        if a < 10 { return String(format: "%.2f", v) }
        if a < 100 { return String(format: "%.1f", v) }
        return String(format: "%.0f", v)
    }

    /// Whole numbers from 100 up ("8467"), 1 decimal below ("12.5"), 2 below 1 ("0.25").
    static func formatCount(_ v: Double) -> String {
        guard v.isFinite else { return "\(v)" }
        let a = abs(v)
        if a >= 100 { return String(format: "%.0f", v) }
        if a >= 1 { return String(format: "%.1f", v) }
        return String(format: "%.2f", v)
    }

    /// Escapes `|` (cell separator) and line breaks in a Markdown table cell.
    static func markdownEscape(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    /// Quotes a CSV field when it holds a comma, quote or line break (quotes doubled).
    static func csvField(_ s: String) -> String {
        if s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return s
    }
}
