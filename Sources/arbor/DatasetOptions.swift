import ArborCore
import ArborData
import ArgumentParser
import Foundation

/// Formats `--dataset` reads.
enum DatasetFormat: String, ExpressibleByArgument, CaseIterable {
    /// RecBole atomic files: `name.inter` (and `name.item` beside it, for categories).
    case recbole
    /// Taobao UserBehavior CSV: user,item,category,behavior,timestamp.
    case taobao
    /// Generic CSV: user,item,timestamp[,category], header optional.
    case csv
    /// The Amazon Books demo's train_demo.txt (user,item,order).
    case amazon
}

/// Options that name a behaviour log on disk.
struct DatasetOptions: ParsableArguments {
    @Option(help: "A behaviour log: a RecBole .inter file, a Taobao UserBehavior CSV, a generic CSV, or train_demo.txt.")
    var dataset: String?

    @Option(help: "Format of --dataset: recbole, taobao, csv, amazon (default: from the file name).")
    var format: DatasetFormat?

    /// The format given, or guessed from the file name.
    func resolvedFormat(_ path: String) -> DatasetFormat {
        if let format { return format }
        if path.hasSuffix(".inter") { return .recbole }
        if path.lowercased().contains("userbehavior") { return .taobao }
        if path.hasSuffix("train_demo.txt") { return .amazon }
        return .csv
    }

    /// Reads the log (errors name file and line).
    func load(progress: ProgressPrinter) throws -> Dataset {
        guard let dataset else { throw CLIError("--dataset is required") }
        switch resolvedFormat(dataset) {
        case .recbole:
            let itemFile = (dataset as NSString).deletingPathExtension + ".item"
            if FileManager.default.fileExists(atPath: itemFile) {
                return try RecBoleReader.read(interactions: dataset, items: itemFile)
            }
            return try RecBoleReader.readInteractions(at: dataset)
        case .taobao:
            return try TaobaoReader.read(at: dataset, progress: progress).dataset
        case .csv:
            return try CSVReader.read(at: dataset)
        case .amazon:
            return try AmazonBooksDemo.readTrain(at: dataset)
        }
    }
}
