import ArborCore
import ArborData
import ArborInterchange
import ArborRetrieval
import ArborTree
import Foundation

/// One libFuzzer binary, several targets: `ARBOR_FUZZ_TARGET` names the one to run (see
/// tools/fuzz.sh). Each target writes the input where the reader expects a file (in /dev/shm when
/// it exists) and calls the reader; a thrown error is the expected outcome for a bad file, a crash
/// or a sanitizer report is a bug.
enum FuzzTarget: String, CaseIterable {
    case index, npy, recbole, csv, taobao, amazon, sessions, hnsw, parquet
}

let target: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["ARBOR_FUZZ_TARGET"] ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("set ARBOR_FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue))\n".utf8))
        exit(2)
    }
    return t
}()

let scratch: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let dir = "\(base)/arbor-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}()

/// Writes `bytes` to a fresh file (a new inode each time) and returns its path.
func file(_ name: String, _ bytes: UnsafeRawBufferPointer) -> String {
    let path = "\(scratch)/\(name)"
    unlink(path)
    unlink(path + "-lock")
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if fd >= 0 {
        var off = 0
        while off < bytes.count {
            let n = write(fd, bytes.baseAddress! + off, bytes.count - off)
            if n <= 0 { break }
            off += n
        }
        close(fd)
    }
    return path
}

/// The two parts of an input cut at its first NUL byte (the second empty when there is none).
func halves(_ bytes: UnsafeRawBufferPointer) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
    guard let cut = bytes.firstIndex(of: 0) else { return (bytes, UnsafeRawBufferPointer(rebasing: bytes[bytes.count...])) }
    return (UnsafeRawBufferPointer(rebasing: bytes[..<cut]), UnsafeRawBufferPointer(rebasing: bytes[(cut + 1)...]))
}

func runIndex(_ bytes: UnsafeRawBufferPointer) {
    let path = file("index.arbor", bytes)
    defer { unlink(path); unlink(path + "-lock") }
    guard let reader = try? IndexReader(path: path) else { return }
    // The contract for a file of unknown origin: verify it first (queries trust the LMDB pages a
    // verified file has; see docs/RESULTS.md, fuzzing). Only a verified file goes further.
    guard (try? reader.verify()) != nil else { return }
    _ = try? reader.balance()
    _ = try? reader.withView { view -> Int in
        // Walk the first nodes of every level as beam search would.
        var out = Matrix(rows: 0, cols: view.dimension)
        var touched = 0
        for level in 0 ..< view.depth {
            let n = min(view.nodeCount(level: level), 8)
            for node in 0 ..< n { touched += view.children(of: node, level: level).count }
            view.gatherEmbeddings(level: level, nodes: (0 ..< Int32(n)).map { $0 }, into: &out)
        }
        if view.nodeCount(level: view.depth) > 0 { _ = view.item(atLeaf: 0) }
        return touched
    }
    _ = try? reader.loadLayout()
    _ = try? reader.loadLeafMatrix()
    if HNSWPersistence.hasGraph(reader), let graph = try? HNSWPersistence.load(from: reader) {
        _ = try? graph.search([Float](repeating: 0.5, count: graph.dimension), parameters: SearchParameters(k: 3, efSearch: 8))
    }
}

/// An HNSW graph from raw arrays: a 64-byte preamble of eight lengths (UInt16 each, in elements),
/// then the arrays in order, the rest as vectors.
func runHNSW(_ bytes: UnsafeRawBufferPointer) {
    guard bytes.count >= 24 else { return }
    var cursor = 24
    func lengths(_ i: Int) -> Int { Int(bytes[2 * i]) | Int(bytes[2 * i + 1]) << 8 }
    func take<T: FixedWidthInteger>(_ n: Int, _: T.Type) -> [T] {
        var out: [T] = []
        for _ in 0 ..< n where cursor + MemoryLayout<T>.size <= bytes.count {
            out.append(bytes.loadUnaligned(fromByteOffset: cursor, as: T.self))
            cursor += MemoryLayout<T>.size
        }
        return out
    }
    let dimension = max(1, Int(bytes[16]) % 9)
    let m = max(2, Int(bytes[17]) % 9)
    let metric: HNSWMetric = [.innerProduct, .cosine, .normAugmentedInnerProduct][Int(bytes[18]) % 3]
    let entry = Int32(Int8(bitPattern: bytes[19]))
    let levels = take(lengths(0), Int32.self)
    let layer0 = take(lengths(1), Int32.self)
    let layer0Counts = take(lengths(2), Int32.self)
    let upper = take(lengths(3), Int32.self)
    let upperCounts = take(lengths(4), Int32.self)
    let ids = take(lengths(5), UInt64.self).map { ItemID($0) }
    let deleted = take(lengths(6), UInt8.self).map { $0 & 1 == 1 }
    let vectors = take(lengths(7), UInt32.self).map { Float(bitPattern: $0) }
    let configuration = HNSWConfiguration(metric: metric, m: m, efConstruction: 16, buildThreads: 1)
    let graph = HNSWGraph(configuration: configuration, dimension: dimension, normBound: metric == .normAugmentedInnerProduct ? 1 : nil,
                          vectors: vectors, ids: ids, deleted: deleted, levels: levels, layer0Neighbours: layer0,
                          layer0Counts: layer0Counts, upperNeighbours: upper, upperCounts: upperCounts, entryPoint: entry)
    guard let index = try? HNSWIndex(graph: graph) else { return }
    _ = try? index.search([Float](repeating: 0.25, count: dimension), parameters: SearchParameters(k: 2, efSearch: 4))
}

/// A Parquet file: the footer, every column, and the assignment and node-embedding tables.
func runParquet(_ bytes: UnsafeRawBufferPointer) {
    guard let file = try? ParquetFile(bytes: [UInt8](bytes), source: "fuzz.parquet") else { return }
    for c in file.columns { _ = try? file.column(c.name) }
    _ = try? TreeAssignment(parquet: file)
    _ = try? TreeAssignment.nodeEmbeddings(parquet: file)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    switch target {
    case .index: runIndex(bytes)
    case .npy: _ = try? NPY.readMatrix(at: file("m.npy", bytes))
    case .recbole:
        let (inter, item) = halves(bytes)
        let a = file("d.inter", inter), b = file("d.item", item)
        _ = try? RecBoleReader.read(interactions: a, items: b)
        _ = try? RecBoleReader.readInteractions(at: a)
    case .csv: _ = try? CSVReader.read(at: file("log.csv", bytes))
    case .taobao: _ = try? TaobaoReader.read(at: file("UserBehavior.csv", bytes))
    case .amazon:
        let path = file("amazon.txt", bytes)
        _ = try? AmazonBooksDemo.readTrain(at: path)
        _ = try? AmazonBooksDemo.readValidation(at: path)
    case .sessions:
        let path = file("split.tsv", bytes)
        _ = try? SessionSplit.read(at: path)
        _ = try? DigineticaReader.read(at: path)
        _ = try? LeaveLastOutSplit.read(at: path)
    case .hnsw: runHNSW(bytes)
    case .parquet: runParquet(bytes)
    }
    return 0
}

// SwiftPM links an executable target with `main` aliased to `ArborFuzz_main`; with
// -parse-as-library there is no Swift `main`, so this one hands control to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("ArborFuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOne(data, size) }
}
