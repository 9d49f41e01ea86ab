#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checks, before LMDB maps a file, the pages LMDB reads to open its named tables: the two meta
/// pages and the B-tree of the main table (a few pages). LMDB trusts page contents: a damaged node
/// offset there made `mdb_dbi_open` read past the end of the file (SIGBUS; found by the index
/// fuzzer). Pages of the tables themselves are checked by the checksums of their values, not here.
/// Reads with `pread`, never through the map. O(pages of the main table) = O(1) for an index.
enum PageCheck {
    static let headerBytes = 16, nodeBytes = 8
    static let invalidPage = UInt64.max

    /// - Throws: ``StoreError/notAnEnvironment(path:reason:)`` naming what is damaged.
    static func checkMainTable(path: String) throws(StoreError) {
        try check(path: path, tables: [])
    }

    /// Like ``checkMainTable(path:)``, then every page of every named table (branch and leaf
    /// pages, and the overflow pages of large values): what a full read will touch. O(file pages).
    static func checkAllTables(path: String) throws(StoreError) {
        try check(path: path, tables: nil)
    }

    /// Like ``checkMainTable(path:)``, then every page of the named tables `names` (absent
    /// names are skipped). O(pages of the main table and of those tables).
    static func checkTables(path: String, names: Set<String>) throws(StoreError) {
        try check(path: path, tables: names)
    }

    /// `tables`: the named tables whose pages are walked too (`nil`: all of them).
    private static func check(path: String, tables selected: Set<String>?) throws(StoreError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return }  // LMDB reports it
        defer { close(fd) }
        let fileSize = StoreFiles.size(of: path) ?? 0
        func read(_ offset: Int, _ count: Int) -> [UInt8]? {
            guard offset >= 0, count > 0, offset + count <= fileSize else { return nil }
            var buffer = [UInt8](repeating: 0, count: count)
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            return n == count ? buffer : nil
        }
        func bad(_ reason: String) -> StoreError { .notAnEnvironment(path: path, reason: reason) }
        func u16(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        func u32(_ b: [UInt8], _ o: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[o + $1]) << (8 * $1) } }
        func u64(_ b: [UInt8], _ o: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[o + $1]) << (8 * $1) } }
        // Meta page: page header, then magic, version, address, mapsize, two 48-byte MDB_db
        // (free, main), last page, txn id. The free table's md_pad holds the page size.
        struct Meta { var psize: Int, mainRoot: UInt64, mainDepth: Int, lastPage: UInt64, txn: UInt64 }
        func meta(at offset: Int) -> Meta? {
            guard let b = read(offset, headerBytes + 136), u32(b, 16) == 0xBEEF_C0DE else { return nil }
            let m = headerBytes
            let psize = Int(u32(b, m + 24))
            return Meta(psize: psize, mainRoot: u64(b, m + 24 + 48 + 40), mainDepth: u16(b, m + 24 + 48 + 6),
                        lastPage: u64(b, m + 120), txn: u64(b, m + 128))
        }
        guard let first = meta(at: 0) else { return }  // not LMDB: mdb_env_open says so
        guard [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536].contains(first.psize) else {
            throw bad("meta page: page size \(first.psize)")
        }
        var chosen = first, chosenIndex: UInt64 = 0
        if let second = meta(at: first.psize), second.txn > first.txn { (chosen, chosenIndex) = (second, 1) }
        // LMDB writes transaction t's meta into page t & 1, and its readers look there for the
        // newest one (`me_metas[txnid & 1]`), not at the page it picked by the larger id: a file
        // where they differ would be read through a meta page this check never saw.
        guard chosen.txn & 1 == chosenIndex else {
            throw bad("meta page \(chosenIndex) holds transaction \(chosen.txn), which belongs in meta page \(chosen.txn & 1)")
        }
        let psize = chosen.psize
        guard psize == first.psize else { throw bad("meta pages disagree on the page size") }
        // A last page beyond any file size would overflow LMDB's own map-size arithmetic (it
        // computes `(last + 1) * psize` modulo 2^64 and maps too little): refuse it here.
        guard chosen.lastPage < UInt64(Int.max / psize) else {
            throw bad("meta page: last page \(chosen.lastPage) is beyond any file size")
        }
        guard chosen.lastPage < UInt64(fileSize / psize) else { return }  // the size check reports it
        guard chosen.mainRoot != invalidPage else { return }
        guard chosen.mainDepth >= 1, chosen.mainDepth <= 8 else { throw bad("main table: depth \(chosen.mainDepth)") }
        var visited = 0
        var tables: [(name: String, root: UInt64, depth: Int)] = []
        func check(page pgno: UInt64, depth: Int, table: String) throws(StoreError) {
            visited += 1
            guard visited <= Int(chosen.lastPage) + 1 else { throw bad("\(table): too many pages") }
            guard pgno >= 2, pgno <= chosen.lastPage, let p = read(Int(pgno) * psize, psize) else {
                throw bad("\(table): page \(pgno) outside the file")
            }
            let flags = u16(p, 10), lower = u16(p, 12), upper = u16(p, 14)
            let isLeaf = flags & 0x02 != 0, isBranch = flags & 0x01 != 0
            guard isLeaf != isBranch, isLeaf == (depth == 1) else { throw bad("\(table): page \(pgno) has flags \(flags)") }
            guard lower >= headerBytes, lower <= upper, upper <= psize, (lower - headerBytes) % 2 == 0 else {
                throw bad("\(table): page \(pgno) bounds \(lower)...\(upper)")
            }
            for i in 0 ..< (lower - headerBytes) / 2 {
                let at = u16(p, headerBytes + 2 * i)
                guard at >= upper, at + nodeBytes <= psize else { throw bad("\(table): page \(pgno) node \(i) at \(at)") }
                let keySize = u16(p, at + 6)
                guard at + nodeBytes + keySize <= psize else { throw bad("\(table): page \(pgno) node \(i) key") }
                if isBranch {
                    let child = UInt64(u16(p, at)) | UInt64(u16(p, at + 2)) << 16 | UInt64(u16(p, at + 4)) << 32
                    try check(page: child, depth: depth - 1, table: table)
                } else {
                    let dataSize = u16(p, at) | u16(p, at + 2) << 16, nodeFlags = u16(p, at + 4)
                    let inline = nodeFlags & 0x01 == 0
                    // F_DUPDATA (0x04) never occurs (no table is MDB_DUPSORT): LMDB would follow it
                    // into a sub-database cursor the table does not have. F_SUBDATA (0x02) only
                    // marks a named table's record in the main table.
                    guard nodeFlags & 0x04 == 0, nodeFlags & 0x02 == 0 || table == "main table" else {
                        throw bad("\(table): page \(pgno) node \(i) has flags \(nodeFlags)")
                    }
                    guard !inline || at + nodeBytes + keySize + dataSize <= psize else {
                        throw bad("\(table): page \(pgno) node \(i) data")
                    }
                    if !inline {
                        // A large value: 8 bytes naming its first overflow page.
                        guard at + nodeBytes + keySize + 8 <= psize else { throw bad("page \(pgno) node \(i) overflow link") }
                        let first = u64(p, at + nodeBytes + keySize)
                        guard first >= 2, first <= chosen.lastPage, let o = read(Int(first) * psize, headerBytes) else {
                            throw bad("page \(pgno): overflow page \(first) outside the file")
                        }
                        let pages = UInt64(u32(o, 12))
                        guard u16(o, 10) & 0x04 != 0, pages >= 1, first + pages - 1 <= chosen.lastPage,
                              dataSize <= Int(pages) * psize - headerBytes else {
                            throw bad("page \(pgno): overflow page \(first) does not hold \(dataSize) bytes")
                        }
                    }
                    if nodeFlags & 0x02 != 0 {
                        // A named table: its MDB_db record; its root must be in the file.
                        guard inline, dataSize == 48 else { throw bad("\(table): page \(pgno) node \(i) table record") }
                        let root = u64(p, at + nodeBytes + keySize + 40)
                        guard root == invalidPage || (root >= 2 && root <= chosen.lastPage) else {
                            throw bad("\(table): a table's root page \(root) is outside the file")
                        }
                        let name = String(decoding: p[(at + nodeBytes) ..< (at + nodeBytes + keySize)], as: UTF8.self)
                        if root != invalidPage { tables.append((name, root, u16(p, at + nodeBytes + keySize + 6))) }
                    }
                }
            }
        }
        try check(page: chosen.mainRoot, depth: chosen.mainDepth, table: "main table")
        let named = tables.filter { selected?.contains($0.name) ?? true }
        for table in named {
            guard table.depth >= 1, table.depth <= 16 else { throw bad("a table has depth \(table.depth)") }
            try check(page: table.root, depth: table.depth, table: "table \(table.name)")
        }
    }
}
