import Foundation
import Testing

@testable import ArborData

@Suite struct RecBoleReaderTests {
    @Test func readsInteractionsByColumnName() throws {
        let dir = TempDir()
        // Columns in another order, an extra column, CRLF line ends, a blank line.
        let p = dir.write("x.inter", "timestamp:float\titem_id:token\textra:token\tuser_id:token\trating:float\r\n"
            + "100\t7\tz\t1\t4\r\n\r\n200.5\t8\tz\t1\t3\r\n50\t7\tz\t2\t5\r\n")
        let ds = try RecBoleReader.readInteractions(at: p)
        #expect(ds.interactions.count == 3)
        #expect(ds.interactions[0] == Interaction(user: 1, item: 7, timestamp: 100, rating: 4))
        #expect(ds.interactions[1] == Interaction(user: 1, item: 8, timestamp: 200.5, rating: 3))
        #expect(ds.userCount == 2)
        #expect(ds.itemCount == 2)
        #expect(ds.name == "x")
    }

    @Test func timestampAndRatingAreOptional() throws {
        let dir = TempDir()
        let p = dir.write("y.inter", "user_id:token\titem_id:token\n3\t4\n3\t5\n")
        let ds = try RecBoleReader.readInteractions(at: p)
        #expect(!ds.interactions.hasRatings)
        #expect(ds.interactions.timestamps == [0, 1])
    }

    @Test func readsItemsWithGenres() throws {
        let dir = TempDir()
        let p = dir.write("x.item", "item_id:token\tmovie_title:token_seq\tclass:token_seq\n"
            + "1\tToy Story\tAnimation Children's Comedy\n2\tGoldenEye\tAction Adventure\n3\tNone\t\n")
        let t = try RecBoleReader.readItems(at: p)
        #expect(t.items == [1, 2, 3])
        #expect(t.categoryNames == ["Animation", "Children's", "Comedy", "Action", "Adventure"])
        #expect(t.categories == [0, 3, InteractionLog.noCategory])
        #expect(Array(t.categories(ofRow: 0)) == [0, 1, 2])
        #expect(t.categoryByItem == [1: 0, 2: 3])
    }

    @Test func joinsInteractionsAndItems() throws {
        let dir = TempDir()
        let i = dir.write("z.inter", "user_id:token\titem_id:token\ttimestamp:float\n1\t2\t5\n1\t9\t6\n")
        let t = dir.write("z.item", "item_id:token\tclass:token_seq\n2\tDrama War\n")
        let ds = try RecBoleReader.read(interactions: i, items: t)
        #expect(ds.interactions[0].category == UInt32(0))
        #expect(ds.interactions[1].category == nil)
        #expect(ds.itemAllCategories[2] == [0, 1])
        #expect(ds.categoryNames == ["Drama", "War"])
    }

    @Test func errorsNameFileAndLine() throws {
        let dir = TempDir()
        let bad = dir.write("bad.inter", "user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n1\tabc\t4\n")
        #expect(dataError { try RecBoleReader.readInteractions(at: bad) }
            == .malformedLine(file: bad, line: 3, reason: "item id 'abc' is not a non-negative integer"))
        let short = dir.write("short.inter", "user_id:token\titem_id:token\ttimestamp:float\n1\t2\n")
        #expect(dataError { try RecBoleReader.readInteractions(at: short) }
            == .malformedLine(file: short, line: 2, reason: "expected 3 fields, found 2"))
        let time = dir.write("time.inter", "user_id:token\titem_id:token\ttimestamp:float\n1\t2\tyesterday\n")
        #expect(dataError { try RecBoleReader.readInteractions(at: time) }
            == .malformedLine(file: time, line: 2, reason: "timestamp 'yesterday' is not a number"))
        let missing = dir.write("m.inter", "user_id:token\tthing:token\n1\t2\n")
        #expect(dataError { try RecBoleReader.readInteractions(at: missing) } == .missingColumn(file: missing, column: "item_id"))
        let empty = dir.write("e.inter", "user_id:token\titem_id:token\n")
        #expect(dataError { try RecBoleReader.readInteractions(at: empty) } == .empty(file: empty))
        let nothing = dir.write("n.inter", "")
        #expect(dataError { try RecBoleReader.readInteractions(at: nothing) } == .empty(file: nothing))
        let absent = dir.file("absent.inter")
        #expect(dataError { try RecBoleReader.readInteractions(at: absent) } == .fileNotFound(file: absent))
        #expect(dataError { try RecBoleReader.readInteractions(at: dir.path) }
            == .unreadable(file: dir.path, reason: "is a directory"))
        let noClass = dir.write("n.item", "item_id:token\tgenre:token_seq\n1\tA\n")
        #expect(dataError { try RecBoleReader.readItems(at: noClass) } == .missingColumn(file: noClass, column: "class"))
        // The message names file and line.
        let e = DataError.malformedLine(file: "a.inter", line: 7, reason: "r")
        #expect(e.description == "a.inter:7: r")
    }

    @Test func vocabularyPolicyMapsTokens() throws {
        let dir = TempDir()
        let p = dir.write("v.inter", "user_id:token\titem_id:token\ttimestamp:float\nalice\tb1\t1\nbob\t42\t2\nalice\t42\t3\n")
        let ds = try RecBoleReader.readInteractions(at: p, users: .vocabulary, items: .vocabulary)
        #expect(ds.interactions.users == [0, 1, 0])
        #expect(ds.interactions.items == [0, 1, 1])
        #expect(ds.userVocabulary?.tokens == ["alice", "bob"])
        #expect(ds.itemVocabulary?.token(of: 1) == "42")
    }

    @Test func longLinesAndSmallChunksStream() throws {
        // Lines spanning chunk boundaries and a line longer than the chunk.
        let dir = TempDir()
        var text = "a,b\n"
        for i in 0 ..< 500 { text += "\(i),\(String(repeating: "x", count: i % 37))\n" }
        text += String(repeating: "y", count: 5000) + "\nlast"
        let p = dir.write("lines.txt", text)
        var count = 0, last = ""
        var numbers = [Int]()
        try LineScanner.forEachLine(p, chunkSize: 64) { (line) throws(DataError) in
            count += 1
            numbers.append(line.number)
            last = String(decoding: line.bytes, as: UTF8.self)
        }
        #expect(count == 503)
        #expect(numbers == Array(1 ... 503))
        #expect(last == "last")
    }
}

@Suite struct NumberParsingTests {
    func parse(_ s: String) -> Double? {
        Array(s.utf8).withUnsafeBufferPointer { NumberParser.double($0) }
    }

    @Test func doubles() {
        #expect(parse("881250949") == 881250949)
        #expect(parse("1411978673.195") == 1411978673.195)
        #expect(parse("-2.5e3") == -2500)
        #expect(parse("4") == 4)
        #expect(parse("nan") == nil)
        #expect(parse("1.5x") == nil)
        #expect(parse("") == nil)
        #expect(Array("18446744073709551615".utf8).withUnsafeBufferPointer { NumberParser.uint64($0) } == .max)
        #expect(Array("18446744073709551616".utf8).withUnsafeBufferPointer { NumberParser.uint64($0) } == nil)
    }
}

@Suite struct TaobaoReaderTests {
    let text = "1,100,7,pv,1511544070\n1,101,7,buy,1511544080\n2,100,7,cart,1505117799\n2,102,8,fav,1511600000\n"

    @Test func readsAllByDefault() throws {
        let dir = TempDir()
        let p = dir.write("ub.csv", text)
        let (ds, stats) = try TaobaoReader.read(at: p)
        #expect(ds.interactions.count == 4)
        #expect(stats.rowsRead == 4 && stats.rowsKept == 4)
        #expect(ds.interactions[3] == Interaction(user: 2, item: 102, timestamp: 1511600000, category: 8))
        #expect(ds.itemCategories == [100: 7, 101: 7, 102: 8])
    }

    @Test func filtersBehaviourAndTime() throws {
        let dir = TempDir()
        let p = dir.write("ub.csv", text)
        let (pv, s1) = try TaobaoReader.read(at: p, options: .init(behaviors: [.pv]))
        #expect(pv.interactions.items == [100])
        #expect(s1.droppedByBehavior == 3)
        let (inRange, s2) = try TaobaoReader.read(at: p, options: .init(dropOutOfRangeTimestamps: true))
        #expect(inRange.interactions.count == 3)
        #expect(s2.droppedOutOfRange == 1)
    }

    @Test func errors() {
        let dir = TempDir()
        let b = dir.write("b.csv", "1,100,7,pv,1511544070\n1,100,7,click,1511544070\n")
        #expect(dataError { try TaobaoReader.read(at: b) }
            == .malformedLine(file: b, line: 2, reason: "unknown behavior 'click' (pv, buy, cart or fav)"))
        let f = dir.write("f.csv", "1,100,7,pv\n")
        #expect(dataError { try TaobaoReader.read(at: f) } == .malformedLine(file: f, line: 1, reason: "expected 5 fields, found 4"))
        let c = dir.write("c.csv", "1,100,x,pv,1\n")
        #expect(dataError { try TaobaoReader.read(at: c) }
            == .malformedLine(file: c, line: 1, reason: "category id 'x' is not an integer below 2^32 - 1"))
        let e = dir.write("e.csv", "\n\n")
        #expect(dataError { try TaobaoReader.read(at: e) } == .empty(file: e))
    }
}

@Suite struct CSVReaderTests {
    @Test func byteOrderMarkIsIgnored() throws {
        let dir = TempDir()
        let p = dir.write("bom.csv", "\u{FEFF}user,item,timestamp\n1,2,3\n")
        #expect(try CSVReader.read(at: p).interactions[0] == Interaction(user: 1, item: 2, timestamp: 3))
    }

    @Test func headerlessWithCategory() throws {
        let dir = TempDir()
        let p = dir.write("g.csv", "1,10,100,3\n2,11,101,4\n")
        let ds = try CSVReader.read(at: p)
        #expect(ds.interactions.count == 2)
        #expect(ds.interactions[1] == Interaction(user: 2, item: 11, timestamp: 101, category: 4))
    }

    @Test func headerDetectedAndColumnsByName() throws {
        let dir = TempDir()
        let p = dir.write("h.csv", "timestamp,item_id,user_id\n5,10,1\n6,11,1\n")
        let ds = try CSVReader.read(at: p)
        #expect(ds.interactions.users == [1, 1])
        #expect(ds.interactions.items == [10, 11])
        #expect(ds.interactions.timestamps == [5, 6])
        #expect(!ds.interactions.hasCategories)
        // YooChoose-style header, tab-separated, float time.
        let y = dir.write("y.txt", "SessionId\tItemId\tTime\n9\t214586805\t1411978673.195\n")
        let yd = try CSVReader.read(at: y, options: .init(separator: UInt8(ascii: "\t")))
        #expect(yd.interactions[0] == Interaction(user: 9, item: 214586805, timestamp: 1411978673.195))
    }

    @Test func errors() {
        let dir = TempDir()
        let m = dir.write("m.csv", "user,thing,timestamp\n1,2,3\n")
        #expect(dataError { try CSVReader.read(at: m) } == .missingColumn(file: m, column: "item"))
        let s = dir.write("s.csv", "1,2,3\n4,5\n")
        #expect(dataError { try CSVReader.read(at: s) } == .malformedLine(file: s, line: 2, reason: "expected 3 fields, found 2"))
        let n = dir.write("n.csv", "1,2,3\nu7,5,6\n")
        #expect(dataError { try CSVReader.read(at: n) }
            == .malformedLine(file: n, line: 2, reason: "user id 'u7' is not a non-negative integer"))
        let h = dir.write("h.csv", "user,item,timestamp\n")
        #expect(dataError { try CSVReader.read(at: h) } == .empty(file: h))
    }
}

@Suite struct AmazonDemoTests {
    @Test func trainAndValidation() throws {
        let dir = TempDir()
        let t = dir.write("train.txt", "0,17978,0\n0,901,1\n1,5,0\n")
        let ds = try AmazonBooksDemo.readTrain(at: t)
        #expect(ds.interactions.count == 3)
        #expect(ds.interactions[1] == Interaction(user: 0, item: 901, timestamp: 1))
        let v = dir.write("valid.txt", "user_id:4 target_item:0 hist_item:5 hist_item:6 eval_item:7 eval_item:8\nuser_id:5 target_item:0 eval_item:1")
        let users = try AmazonBooksDemo.readValidation(at: v)
        #expect(users == [HeldOutUser(user: 4, history: [5, 6], truth: [7, 8]), HeldOutUser(user: 5, history: [], truth: [1])])
    }

    @Test func validationErrors() {
        let dir = TempDir()
        let a = dir.write("a.txt", "user_id:4 hist_item:5 eval_item:7\nuser_id:5 hist_item eval_item:7\n")
        #expect(dataError { try AmazonBooksDemo.readValidation(at: a) }
            == .malformedLine(file: a, line: 2, reason: "token 'hist_item' is not key:value"))
        let b = dir.write("b.txt", "user_id:4 hist_item:5\n")
        #expect(dataError { try AmazonBooksDemo.readValidation(at: b) } == .malformedLine(file: b, line: 1, reason: "no eval_item"))
        let c = dir.write("c.txt", "user_id:4 foo:5 eval_item:1\n")
        #expect(dataError { try AmazonBooksDemo.readValidation(at: c) } == .malformedLine(file: c, line: 1, reason: "unknown key 'foo'"))
    }
}

@Suite struct DigineticaReaderTests {
    @Test func readsDatesAndTimeframes() throws {
        let dir = TempDir()
        let p = dir.write("d.csv", "session_id;user_id;item_id;timeframe;eventdate\n1;NA;81766;526309;2016-05-09\n2;7;5;1000;1970-01-02\n")
        let ds = try DigineticaReader.read(at: p)
        #expect(ds.interactions[0] == Interaction(user: 1, item: 81766, timestamp: 1_462_752_000 + 526.309))
        #expect(ds.interactions[1].timestamp == 86_401)
        let bad = dir.write("b.csv", "session_id;user_id;item_id;timeframe;eventdate\n1;NA;81766;526309;09/05/2016\n")
        #expect(dataError { try DigineticaReader.read(at: bad) }
            == .malformedLine(file: bad, line: 2, reason: "eventdate '09/05/2016' is not YYYY-MM-DD"))
    }
}

@Suite struct CSVWriterTests {
    @Test func roundTrip() throws {
        let dir = TempDir()
        var log = InteractionLog()
        log.append(user: 1, item: 2, timestamp: 1_500_000_000, category: 3)
        log.append(user: 18_446_744_073_709_551_615, item: 5, timestamp: 1411978673.195)
        log.append(user: 2, item: 0, timestamp: -0.5, category: 0)
        let p = dir.file("out.csv")
        try CSVWriter.write(log, to: p)
        #expect(try String(contentsOfFile: p, encoding: .utf8).hasPrefix("user,item,timestamp,category\n1,2,1500000000,3\n"))
        #expect(try CSVReader.read(at: p).interactions == log)
        let plain = try InteractionLog(users: [7], items: [8], timestamps: [9])
        try CSVWriter.write(plain, to: p)
        #expect(try CSVReader.read(at: p).interactions == plain)
    }

    @Test func syntheticExportReadsBack() throws {
        let cat = try SyntheticCatalog.generate(.init(itemCount: 500, dimension: 4, superCategoryCount: 2, categoriesPerSuperCategory: 3))
        let users = try SyntheticUsers.generate(catalog: cat, config: .init(userCount: 50))
        let log = users.interactionLog(catalog: cat)
        let dir = TempDir()
        try CSVWriter.write(log, to: dir.file("s.csv"))
        let back = try CSVReader.read(at: dir.file("s.csv"))
        #expect(back.interactions == log)
        let stats = back.statistics()
        #expect(stats.interactions == users.eventCount && stats.users == 50 && stats.categories <= 6)
    }
}
