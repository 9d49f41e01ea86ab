import Foundation

/// One point of a plotted series, with an optional label drawn next to its marker ("beam=200").
public struct PlotPoint: Sendable, Equatable {
    /// Horizontal value.
    public var x: Double
    /// Vertical value.
    public var y: Double
    /// Text drawn beside the marker, or `nil`.
    public var label: String?
    /// A point.
    public init(x: Double, y: Double, label: String? = nil) {
        self.x = x
        self.y = y
        self.label = label
    }
}

/// A named line of points, drawn as one polyline with a marker per point, in the given order.
public struct PlotSeries: Sendable, Equatable {
    /// Legend entry.
    public var name: String
    /// The points, joined in this order.
    public var points: [PlotPoint]
    /// A series.
    public init(name: String, points: [PlotPoint]) {
        self.name = name
        self.points = points
    }
}

/// One axis: title, scale and optional fixed range.
public struct PlotAxis: Sendable, Equatable {
    /// Axis title ("p50 latency (ms)").
    public var title: String
    /// Log10 scale (values must be > 0).
    public var logScale: Bool
    /// Fixed range; `nil` fits the data (rounded out to ticks).
    public var range: ClosedRange<Double>?
    /// An axis.
    public init(title: String, logScale: Bool = false, range: ClosedRange<Double>? = nil) {
        self.title = title
        self.logScale = logScale
        self.range = range
    }
}

/// A line plot rendered to standalone SVG by hand (no dependencies): title, two axes with ticks,
/// grid lines and titles, one polyline with markers per series (markers differ in colour and
/// shape), optional point labels, and a legend at the right. Text is XML-escaped.
public struct SVGPlot: Sendable, Equatable {
    /// Title above the plot.
    public var title: String
    /// Horizontal axis.
    public var xAxis: PlotAxis
    /// Vertical axis.
    public var yAxis: PlotAxis
    /// The series, one polyline each.
    public var series: [PlotSeries]
    /// Width of the image in pixels.
    public var width: Double
    /// Height of the image in pixels.
    public var height: Double
    /// Whether point labels are drawn.
    public var showPointLabels: Bool

    /// A plot; see the properties.
    public init(
        title: String, xAxis: PlotAxis, yAxis: PlotAxis, series: [PlotSeries], width: Double = 860,
        height: Double = 520, showPointLabels: Bool = true
    ) {
        self.title = title
        self.xAxis = xAxis
        self.yAxis = yAxis
        self.series = series
        self.width = width
        self.height = height
        self.showPointLabels = showPointLabels
    }

    /// A "cost against catalogue size" plot: x = item count on a log scale, one series per method.
    /// - Parameters:
    ///   - series: per method, `(itemCount, value)` pairs.
    ///   - yTitle: what the values are ("model evaluations per query", "p50 ms").
    ///   - logY: log scale for the values too.
    public static func costVersusN(
        title: String, yTitle: String, series: [(name: String, points: [(n: Int, value: Double)])], logY: Bool = false
    ) -> SVGPlot {
        SVGPlot(
            title: title, xAxis: PlotAxis(title: "items (N)", logScale: true),
            yAxis: PlotAxis(title: yTitle, logScale: logY),
            series: series.map { s in
                PlotSeries(name: s.name, points: s.points.map { PlotPoint(x: Double($0.n), y: $0.value) })
            }, showPointLabels: false)
    }

    /// Colours of the series (cycled), chosen to stay apart for common colour-vision deficiencies.
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    /// The SVG document (UTF-8 XML with an XML declaration).
    /// - Throws: ``ArborError/empty(what:)`` with no series or no points;
    ///   ``ArborError/nonFiniteValue(field:row:)`` for a NaN or infinite coordinate (row = point index);
    ///   ``ArborError/invalidArgument(name:reason:)`` for a value <= 0 on a log axis or an empty range.
    public func render() throws(ArborError) -> String {
        guard !series.isEmpty else { throw .empty(what: "plot series") }
        var xs: [Double] = [], ys: [Double] = []
        for s in series {
            for (i, p) in s.points.enumerated() {
                guard p.x.isFinite, p.y.isFinite else { throw .nonFiniteValue(field: "series \(s.name)", row: i) }
                if xAxis.logScale && p.x <= 0 {
                    throw .invalidArgument(name: "x", reason: "log scale needs values > 0, got \(p.x) in series \(s.name)")
                }
                if yAxis.logScale && p.y <= 0 {
                    throw .invalidArgument(name: "y", reason: "log scale needs values > 0, got \(p.y) in series \(s.name)")
                }
                xs.append(p.x)
                ys.append(p.y)
            }
        }
        guard !xs.isEmpty else { throw .empty(what: "plot points") }
        let xScale = try Scale(axis: xAxis, values: xs, name: "x")
        let yScale = try Scale(axis: yAxis, values: ys, name: "y")

        let left = 78.0, right = 190.0, top = 48.0, bottom = 62.0
        let plotW = width - left - right, plotH = height - top - bottom
        func px(_ x: Double) -> Double { left + xScale.fraction(x) * plotW }
        func py(_ y: Double) -> Double { top + (1 - yScale.fraction(y)) * plotH }

        var svg = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" \
            viewBox="0 0 \(f(width)) \(f(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">

            """
        svg += "<title>\(xmlEscape(title))</title>\n"
        svg += "<defs><clipPath id=\"plot-area\"><rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\"/></clipPath></defs>\n"
        svg += "<rect x=\"0\" y=\"0\" width=\"\(f(width))\" height=\"\(f(height))\" fill=\"white\"/>\n"
        svg += "<text x=\"\(f(left + plotW / 2))\" y=\"28\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">\(xmlEscape(title))</text>\n"

        // Grid and ticks.
        svg += "<g class=\"grid\" stroke=\"#e0e0e0\" stroke-width=\"1\">\n"
        for t in xScale.ticks { svg += "<line x1=\"\(f(px(t.value)))\" y1=\"\(f(top))\" x2=\"\(f(px(t.value)))\" y2=\"\(f(top + plotH))\"/>\n" }
        for t in yScale.ticks { svg += "<line x1=\"\(f(left))\" y1=\"\(f(py(t.value)))\" x2=\"\(f(left + plotW))\" y2=\"\(f(py(t.value)))\"/>\n" }
        svg += "</g>\n"
        svg += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#333\" stroke-width=\"1\"/>\n"
        svg += "<g class=\"x-ticks\" font-size=\"11\" text-anchor=\"middle\">\n"
        for t in xScale.ticks {
            let x = px(t.value)
            svg += "<line x1=\"\(f(x))\" y1=\"\(f(top + plotH))\" x2=\"\(f(x))\" y2=\"\(f(top + plotH + 5))\" stroke=\"#333\"/>"
            svg += "<text x=\"\(f(x))\" y=\"\(f(top + plotH + 18))\">\(xmlEscape(t.label))</text>\n"
        }
        svg += "</g>\n<g class=\"y-ticks\" font-size=\"11\" text-anchor=\"end\">\n"
        for t in yScale.ticks {
            let y = py(t.value)
            svg += "<line x1=\"\(f(left - 5))\" y1=\"\(f(y))\" x2=\"\(f(left))\" y2=\"\(f(y))\" stroke=\"#333\"/>"
            svg += "<text x=\"\(f(left - 8))\" y=\"\(f(y + 4))\">\(xmlEscape(t.label))</text>\n"
        }
        svg += "</g>\n"
        let xTitle = xAxis.title + (xAxis.logScale ? " (log scale)" : "")
        let yTitle = yAxis.title + (yAxis.logScale ? " (log scale)" : "")
        svg += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 16))\" text-anchor=\"middle\" font-size=\"13\">\(xmlEscape(xTitle))</text>\n"
        svg += "<text x=\"18\" y=\"\(f(top + plotH / 2))\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 18 \(f(top + plotH / 2)))\">\(xmlEscape(yTitle))</text>\n"

        // Series.
        for (si, s) in series.enumerated() {
            let color = Self.palette[si % Self.palette.count]
            svg += "<g class=\"series\" clip-path=\"url(#plot-area)\">\n"
            let coords = s.points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(coords)\"><title>\(xmlEscape(s.name))</title></polyline>\n"
            for p in s.points {
                svg += marker(shape: si, x: px(p.x), y: py(p.y), color: color, tooltip: "\(s.name) \(p.label ?? "") (\(tickLabel(p.x)), \(tickLabel(p.y)))")
            }
            svg += "</g>\n"
            if showPointLabels {
                svg += "<g class=\"point-labels\" font-size=\"10\" fill=\"\(color)\" stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\" stroke-linejoin=\"round\">\n"
                for p in s.points {
                    guard let label = p.label, !label.isEmpty else { continue }
                    svg += "<text x=\"\(f(px(p.x) + 6))\" y=\"\(f(py(p.y) - 6))\">\(xmlEscape(label))</text>\n"
                }
                svg += "</g>\n"
            }
        }

        // Legend.
        let lx = left + plotW + 16
        svg += "<g class=\"legend\" font-size=\"12\">\n"
        for (si, s) in series.enumerated() {
            let color = Self.palette[si % Self.palette.count]
            let y = top + 10 + Double(si) * 20
            svg += "<line x1=\"\(f(lx))\" y1=\"\(f(y))\" x2=\"\(f(lx + 24))\" y2=\"\(f(y))\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            svg += marker(shape: si, x: lx + 12, y: y, color: color, tooltip: nil)
            svg += "<text x=\"\(f(lx + 30))\" y=\"\(f(y + 4))\">\(xmlEscape(s.name))</text>\n"
        }
        svg += "</g>\n</svg>\n"
        return svg
    }

    /// Writes ``render()`` to `url` (UTF-8).
    public func write(to url: URL) throws {
        try Data(render().utf8).write(to: url, options: .atomic)
    }

    /// A marker: circle, square, triangle, diamond (cycled by series index).
    private func marker(shape: Int, x: Double, y: Double, color: String, tooltip: String?) -> String {
        let r = 4.0
        let tip = tooltip.map { "<title>\(xmlEscape($0))</title>" } ?? ""
        let close = tip.isEmpty ? "/>" : ">\(tip)"
        switch shape % 4 {
        case 0:
            return "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"\(f(r))\" fill=\"\(color)\"\(close)\(tip.isEmpty ? "" : "</circle>")\n"
        case 1:
            return "<rect x=\"\(f(x - r))\" y=\"\(f(y - r))\" width=\"\(f(2 * r))\" height=\"\(f(2 * r))\" fill=\"\(color)\"\(close)\(tip.isEmpty ? "" : "</rect>")\n"
        case 2:
            let pts = "\(f(x)),\(f(y - r - 1)) \(f(x - r - 1)),\(f(y + r)) \(f(x + r + 1)),\(f(y + r))"
            return "<polygon points=\"\(pts)\" fill=\"\(color)\"\(close)\(tip.isEmpty ? "" : "</polygon>")\n"
        default:
            let pts = "\(f(x)),\(f(y - r - 1)) \(f(x + r + 1)),\(f(y)) \(f(x)),\(f(y + r + 1)) \(f(x - r - 1)),\(f(y))"
            return "<polygon points=\"\(pts)\" fill=\"\(color)\"\(close)\(tip.isEmpty ? "" : "</polygon>")\n"
        }
    }
}

/// A coordinate with 2 decimals.
private func f(_ v: Double) -> String { String(format: "%.2f", v) }

/// Escapes text for XML content and attribute values (`& < > " '`) and drops characters XML 1.0
/// forbids (control characters other than tab, line feed and carriage return).
public func xmlEscape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for scalar in s.unicodeScalars {
        switch scalar {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
        default:
            let v = scalar.value
            if v < 0x20 || v == 0xFFFE || v == 0xFFFF { continue }
            out.unicodeScalars.append(scalar)
        }
    }
    return out
}

/// A compact tick label: "0.25", "3", "10k", "2.5M".
func tickLabel(_ v: Double) -> String {
    let a = abs(v)
    if a == 0 { return "0" }
    let units: [(Double, String)] = [(1e9, "G"), (1e6, "M"), (1e3, "k")]
    for (scale, suffix) in units where a >= scale {
        return trimmed(String(format: "%.3g", v / scale)) + suffix
    }
    if a < 1e-3 { return String(format: "%.1e", v) }
    return trimmed(String(format: "%.4g", v))
}

/// "2.500" → "2.5", "3.000" → "3" (only when there is a decimal point and no exponent).
private func trimmed(_ s: String) -> String {
    guard s.contains("."), !s.contains("e") else { return s }
    var t = s
    while t.hasSuffix("0") { t.removeLast() }
    if t.hasSuffix(".") { t.removeLast() }
    return t
}

/// Maps data values to [0, 1] on a linear or log10 axis and chooses the ticks.
struct Scale {
    struct Tick { var value: Double; var label: String }
    let lo: Double, hi: Double, log: Bool
    let ticks: [Tick]

    init(axis: PlotAxis, values: [Double], name: String) throws(ArborError) {
        log = axis.logScale
        var minV = values.min()!, maxV = values.max()!
        if let r = axis.range {
            guard r.lowerBound < r.upperBound, r.lowerBound.isFinite, r.upperBound.isFinite else {
                throw .invalidArgument(name: "\(name) range", reason: "must be a finite non-empty interval")
            }
            guard !log || r.lowerBound > 0 else {
                throw .invalidArgument(name: "\(name) range", reason: "log scale needs a range above 0")
            }
            minV = r.lowerBound
            maxV = r.upperBound
        }
        if log {
            var a = log10(minV), b = log10(maxV)
            if axis.range == nil { a = a.rounded(.down); b = b.rounded(.up) }
            if b - a < 1e-12 { a -= 0.5; b += 0.5 }
            (lo, hi) = Scale.padded(a, b, fixed: axis.range != nil)
            var ticks: [Tick] = []
            let decades = b - a
            let mantissas: [Double] = decades <= 2.05 ? [1, 2, 5] : [1]
            var e = a.rounded(.down)
            while e <= b + 1e-9 {
                for m in mantissas {
                    let v = m * pow(10, e)
                    let lv = log10(v)
                    if lv >= a - 1e-9 && lv <= b + 1e-9 { ticks.append(Tick(value: v, label: tickLabel(v))) }
                }
                e += 1
            }
            self.ticks = ticks
        } else {
            var a = minV, b = maxV
            if b - a < 1e-12 * max(1, abs(a)) {
                let pad = a == 0 ? 1 : abs(a) * 0.1
                a -= pad
                b += pad
            }
            let step = Scale.niceStep((b - a) / 5)
            if axis.range == nil {
                a = (a / step).rounded(.down) * step
                b = (b / step).rounded(.up) * step
            }
            (lo, hi) = Scale.padded(a, b, fixed: axis.range != nil)
            let decimals = max(0, Int(-log10(step).rounded(.down)))
            var ticks: [Tick] = []
            var i = (a / step - 1e-9).rounded(.up)
            while i * step <= b + step * 1e-9 {
                let v = i * step
                let label = abs(v) >= 1000 ? tickLabel(v) : String(format: "%.\(decimals)f", v == 0 ? 0 : v)
                ticks.append(Tick(value: v, label: label))
                i += 1
            }
            self.ticks = ticks
        }
    }

    /// Widens a fitted range by 3% on each side so that markers on the outermost ticks stay whole;
    /// a fixed range stays as given.
    static func padded(_ a: Double, _ b: Double, fixed: Bool) -> (Double, Double) {
        guard !fixed else { return (a, b) }
        let pad = (b - a) * 0.03
        return (a - pad, b + pad)
    }

    /// 1, 2 or 5 × 10^n, the smallest at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        let e = log10(raw).rounded(.down)
        let base = pow(10, e)
        for m in [1.0, 2, 5, 10] where m * base >= raw * (1 - 1e-9) { return m * base }
        return 10 * base
    }

    /// Position of `v` in `[0, 1]` (outside for values off the range; the clip path hides them).
    func fraction(_ v: Double) -> Double {
        let x = log ? log10(v) : v
        return (x - lo) / (hi - lo)
    }
}

extension BenchmarkReport {
    /// What the x axis of ``recallPlot(k:metric:x:logX:threads:title:)`` shows.
    public enum PlotX: String, Sendable, CaseIterable {
        /// Median latency (ms).
        case p50
        /// 95th-percentile latency (ms).
        case p95
        /// 99th-percentile latency (ms).
        case p99
        /// Mean latency (ms).
        case mean
        /// Queries per second.
        case qps
        /// Model evaluations per query.
        case evaluations

        var title: String {
            switch self {
            case .p50: "p50 latency (ms)"
            case .p95: "p95 latency (ms)"
            case .p99: "p99 latency (ms)"
            case .mean: "mean latency (ms)"
            case .qps: "queries per second"
            case .evaluations: "model evaluations per query"
            }
        }

        func value(_ row: BenchmarkRow) -> Double {
            switch self {
            case .p50: row.latency.p50Ms
            case .p95: row.latency.p95Ms
            case .p99: row.latency.p99Ms
            case .mean: row.latency.meanMs
            case .qps: row.latency.qps
            case .evaluations: row.evaluationsPerQuery
            }
        }
    }

    /// A quality-against-cost plot from the rows at cut-off `k`: one series per retriever (and per
    /// thread count when several are present), its points the sweep points in sweep order, each
    /// labelled with its parameter label.
    /// - Parameters:
    ///   - metric: the y value; `nil` picks recall vs exact when measured, else recall.
    ///   - x: latency percentile, QPS or evaluations per query.
    ///   - logX: log scale on x (default true).
    ///   - threads: keep only rows with this thread count; `nil` keeps all.
    /// - Throws: ``ArborError/empty(what:)`` when no row matches or the metric was not measured.
    public func recallPlot(
        k: Int, metric: Metric? = nil, x: PlotX = .p50, logX: Bool = true, threads: Int? = nil, title: String? = nil
    ) throws(ArborError) -> SVGPlot {
        let selected = rows.filter { $0.k == k && (threads == nil || $0.threads == threads) }
        guard !selected.isEmpty else { throw .empty(what: "rows at k = \(k)") }
        let chosen = metric ?? (selected.contains { $0.metrics.recallVsExact != nil } ? .recallVsExact : .recall)
        let splitThreads = Set(selected.map(\.threads)).count > 1
        var order: [String] = []
        var groups: [String: [BenchmarkRow]] = [:]
        for row in selected {
            let name = splitThreads ? "\(row.retriever) (\(row.threads) thr.)" : row.retriever
            if groups[name] == nil { order.append(name) }
            groups[name, default: []].append(row)
        }
        var series: [PlotSeries] = []
        for name in order {
            let points = groups[name]!.sorted { $0.sweepIndex < $1.sweepIndex }.compactMap { row -> PlotPoint? in
                guard let y = row.metrics[chosen] else { return nil }
                return PlotPoint(x: x.value(row), y: y, label: row.parameters)
            }
            if !points.isEmpty { series.append(PlotSeries(name: name, points: points)) }
        }
        guard !series.isEmpty else { throw .empty(what: "\(chosen.rawValue) values at k = \(k)") }
        return SVGPlot(
            title: title ?? "\(chosen.shortName)@\(k) by \(x.title)",
            xAxis: PlotAxis(title: x.title, logScale: logX),
            yAxis: PlotAxis(title: "\(chosen.shortName)@\(k)"),
            series: series)
    }
}
