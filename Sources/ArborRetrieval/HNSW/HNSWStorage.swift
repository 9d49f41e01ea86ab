// The flat storage of an HNSW graph: no per-node objects, only arrays indexed by node number.
//
//   vectors       count × stride Float, row-major (the stored, possibly transformed, vectors)
//   levels        count Int32: a node's top layer (0 = layer 0 only)
//   upperStart    count Int32: index of the node's layer-1 block; its layer-l block is upperStart + l − 1
//                 (blocks are appended in node order, so upperStart[i] = levels[0] + … + levels[i − 1])
//   layer0        count × M0 Int32 neighbour slots, layer0Counts: count Int32 (used slots)
//   upper         blocks × M Int32 neighbour slots, upperCounts: blocks Int32
//   deleted       count Bool (deletion marks), ids: count ItemID (external ids)

/// Owner of the raw buffers. Copied explicitly by ``HNSWIndex`` before a mutation when shared
/// (copy-on-write at the index level). Mutated only by one thread, or by build workers under
/// ``HNSWStripedLocks`` through ``HNSWGraphPointers``.
final class HNSWStorage: @unchecked Sendable {
    let stride: Int
    let m: Int
    let m0: Int
    var vectors = HNSWRawBuffer<Float>()
    var levels = HNSWRawBuffer<Int32>()
    var upperStart = HNSWRawBuffer<Int32>()
    var layer0 = HNSWRawBuffer<Int32>()
    var layer0Counts = HNSWRawBuffer<Int32>()
    var upper = HNSWRawBuffer<Int32>()
    var upperCounts = HNSWRawBuffer<Int32>()
    var deleted = HNSWRawBuffer<Bool>()
    var ids = HNSWRawBuffer<UInt64>()
    var entryPoint: Int32 = -1
    var maxLevel: Int32 = -1

    init(stride: Int, m: Int, m0: Int) {
        self.stride = stride
        self.m = m
        self.m0 = m0
    }

    deinit {
        vectors.free(); levels.free(); upperStart.free(); layer0.free(); layer0Counts.free()
        upper.free(); upperCounts.free(); deleted.free(); ids.free()
    }

    var count: Int { levels.count }
    var blockCount: Int { upperCounts.count }

    func copy() -> HNSWStorage {
        let c = HNSWStorage(stride: stride, m: m, m0: m0)
        c.vectors.free(); c.vectors = vectors.copy()
        c.levels.free(); c.levels = levels.copy()
        c.upperStart.free(); c.upperStart = upperStart.copy()
        c.layer0.free(); c.layer0 = layer0.copy()
        c.layer0Counts.free(); c.layer0Counts = layer0Counts.copy()
        c.upper.free(); c.upper = upper.copy()
        c.upperCounts.free(); c.upperCounts = upperCounts.copy()
        c.deleted.free(); c.deleted = deleted.copy()
        c.ids.free(); c.ids = ids.copy()
        c.entryPoint = entryPoint
        c.maxLevel = maxLevel
        return c
    }

    /// Appends one unconnected node (empty neighbour lists on all its layers).
    func appendNode(vector: UnsafeBufferPointer<Float>, level: Int32, id: ItemID) {
        precondition(vector.count == stride)
        vectors.append(contentsOf: vector)
        upperStart.append(repeating: Int32(blockCount), count: 1)
        levels.append(repeating: level, count: 1)
        layer0.append(repeating: -1, count: m0)
        layer0Counts.append(repeating: 0, count: 1)
        upper.append(repeating: -1, count: Int(level) * m)
        upperCounts.append(repeating: 0, count: Int(level))
        deleted.append(repeating: false, count: 1)
        ids.append(repeating: id.rawValue, count: 1)
    }

    /// Drops nodes `n...` (used when a build is cancelled: those nodes were never linked).
    func truncate(nodes n: Int) {
        guard n < count else { return }
        let blocks = Int(upperStart[n])
        vectors.truncate(to: n * stride)
        levels.truncate(to: n)
        upperStart.truncate(to: n)
        layer0.truncate(to: n * m0)
        layer0Counts.truncate(to: n)
        upper.truncate(to: blocks * m)
        upperCounts.truncate(to: blocks)
        deleted.truncate(to: n)
        ids.truncate(to: n)
    }

    /// Raw views of the buffers, valid until the next append/reserve/truncate.
    func pointers(kernel: HNSWDotKernel) -> HNSWGraphPointers {
        HNSWGraphPointers(
            vectors: vectors.base, stride: stride, levels: levels.base, upperStart: upperStart.base,
            layer0: layer0.base, layer0Counts: layer0Counts.base, upper: upper.base,
            upperCounts: upperCounts.base, deleted: deleted.base, ids: ids.base, m: m, m0: m0,
            dot: kernel.function)
    }
}

/// Plain pointers into an ``HNSWStorage`` for the hot loops (no class or array access per step).
/// Sendable so build workers can share it; every write through it happens under ``HNSWStripedLocks``.
struct HNSWGraphPointers: @unchecked Sendable {
    let vectors: UnsafeMutablePointer<Float>
    let stride: Int
    let levels: UnsafeMutablePointer<Int32>
    let upperStart: UnsafeMutablePointer<Int32>
    let layer0: UnsafeMutablePointer<Int32>
    let layer0Counts: UnsafeMutablePointer<Int32>
    let upper: UnsafeMutablePointer<Int32>
    let upperCounts: UnsafeMutablePointer<Int32>
    let deleted: UnsafeMutablePointer<Bool>
    let ids: UnsafeMutablePointer<UInt64>
    let m: Int
    let m0: Int
    /// The resolved kernel's function (one indirect call per distance).
    let dot: HNSWDotFunction

    @inline(__always) func vector(_ node: Int32) -> UnsafePointer<Float> {
        UnsafePointer(vectors + Int(node) &* stride)
    }

    /// Graph distance between the prepared query and a node: `-(q · x)`.
    @inline(__always) func distance(_ query: UnsafePointer<Float>, _ node: Int32) -> Float {
        -dot(query, vector(node), stride)
    }

    /// Neighbour slots and the count cell of `node` on `layer` (the node's level must be ≥ `layer`).
    @inline(__always) func list(_ node: Int32, layer: Int) -> (slots: UnsafeMutablePointer<Int32>, count: UnsafeMutablePointer<Int32>) {
        if layer == 0 { return (layer0 + Int(node) &* m0, layer0Counts + Int(node)) }
        let block = Int(upperStart[Int(node)]) &+ layer &- 1
        return (upper + block &* m, upperCounts + block)
    }

    @inline(__always) func capacity(layer: Int) -> Int { layer == 0 ? m0 : m }
}
