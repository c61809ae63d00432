// The lab's TOML parser (Sources/LockLab/Experiments/TOML.swift): the TOML 1.0 that experiment
// files can use parses to the right values; malformed input is a TOMLParseError with a position,
// including the inputs that made TOMLKit's toml++ abort.

import Testing
@testable import LockLab

@Suite("TOML")
struct TOMLTests {
    @Test func testValuesOfEveryKindParse() throws {
        let t = try TOMLParser.parse("""
            # comment
            name = "q\\"uote\\u00e9\\n"   # trailing comment
            literal = 'C:\\path'
            int = +1_000
            negative = -17
            hex = 0xFF
            octal = 0o17
            binary = 0b101
            float = 6.25e-1
            exponent = 1E3
            infinity = -inf
            notanumber = nan
            yes = true
            list = [1, "two", [3.5], ]
            multi = [
              1,  # one
              2,
            ]
            multiline = \"\"\"
            a\\
               b\"\"\"
            raw = '''
            x'y'''
            "quoted key" = 1
            dotted.key = 2
            inline = { a = 1, b.c = "d" }

            [workload]
            cs_ns = [0, 100]
            [report.sub]
            x = 1
            [[runs]]
            n = 1
            [[runs]]
            n = 2
            """)
        #expect(t["name"]?.string == "q\"uote\u{e9}\n")
        #expect(t["literal"]?.string == "C:\\path")
        #expect(t["int"]?.int == 1000)
        #expect(t["negative"]?.int == -17)
        #expect(t["hex"]?.int == 255 && t["octal"]?.int == 15 && t["binary"]?.int == 5)
        #expect(t["float"]?.double == 0.625 && t["exponent"]?.double == 1000)
        #expect(t["infinity"]?.double == -.infinity)
        #expect(t["notanumber"]?.double?.isNaN == true)
        #expect(t["yes"]?.bool == true)
        let list = try #require(t["list"]?.array)
        #expect(list.count == 3 && list[0].int == 1 && list[1].string == "two" && list[2].array?.first?.double == 3.5)
        #expect(t["multi"]?.array?.compactMap(\.int) == [1, 2])
        #expect(t["multiline"]?.string == "ab")
        #expect(t["raw"]?.string == "x'y")
        #expect(t["quoted key"]?.int == 1)
        #expect(t["dotted"]?.table?["key"]?.int == 2)
        #expect(t["inline"]?.table?["b"]?.table?["c"]?.string == "d")
        #expect(t["workload"]?.table?["cs_ns"]?.array?.compactMap(\.int) == [0, 100])
        #expect(t["report"]?.table?["sub"]?.table?["x"]?.int == 1)
        #expect(t["runs"]?.array?.compactMap { $0.table?["n"]?.int } == [1, 2])
        #expect(t.keys.first == "name")
    }

    @Test func testLimitsOfIntegersAndFloats() throws {
        #expect(try TOMLParser.parse("a = 9223372036854775807")["a"]?.int == Int.max)
        #expect(try TOMLParser.parse("a = -9223372036854775808")["a"]?.int == Int.min)
        #expect(try TOMLParser.parse("a = 0")["a"]?.int == 0)
        #expect(try TOMLParser.parse("a = -0.0")["a"]?.double == 0)
    }

    static let malformed: [(String, String)] = [
        ("[\n", "line 1, column 2"),                      // toml++ 3.4.0: abort in parse_key
        ("[[=\n", "expected a key"),                      // toml++ 3.4.0: abort in parse_key
        ("[[[a]]]\n", "expected a key"),                  // toml++ 3.4.0: abort in parse_key
        ("x = [}]\n", "expected a value, found '}'"),     // toml++ 3.4.0: abort in parse_value
        ("a = 9223372036854775808\n", "out of range"),
        ("a = 01\n", "is not a value"),
        ("a = 1__0\n", "is not a value"),
        ("a = 1.\n", "is not a value"),
        ("a = .5\n", "is not a value"),
        ("a = 1979-05-27\n", "dates and times"),
        ("a = \"x\n", "unterminated string"),
        ("a = \"\\q\"\n", "unknown escape"),
        ("a = \"\\uD800\"\n", "not a Unicode scalar value"),
        ("a = [1 2]\n", "expected ',' or ']'"),
        ("a = [1,\n", "unterminated list"),
        ("a = {x = 1\n", "expected ',' or '}'"),
        ("a = 1\na = 2\n", "key 'a' is defined twice"),
        ("[t]\n[t]\n", "table 't' is defined twice"),
        ("a = 1\n[a]\n", "defined twice"),
        ("a = 1\n[a.b]\n", "already a value"),
        ("a = 1 2\n", "expected the end of the line"),
        ("a\n", "expected '='"),
        ("= 1\n", "expected a key"),
        ("a = \n", "expected a value"),
        ("a = true1\n", "is not a value"),
        ("a = \"\u{1}\"\n", "control character"),
        ("a = " + String(repeating: "[", count: 200), "nested more than 64"),
    ]

    @Test("malformed TOML: an error with a position, never a trap", arguments: malformed.indices)
    func testMalformedTOMLThrowsWithAPosition(index: Int) {
        let (text, mention) = Self.malformed[index]
        do {
            _ = try TOMLParser.parse(text)
            Issue.record("accepted: \(text.debugDescription)")
        } catch let e as TOMLParseError {
            #expect(e.line >= 1 && e.column >= 1)
            #expect("line \(e.line), column \(e.column): \(e.message)".contains(mention), "\(text.debugDescription): \(e)")
        } catch {
            Issue.record("\(text.debugDescription): threw \(error)")
        }
    }

    @Test func testCRLFLineEndsParse() throws {
        let t = try TOMLParser.parse("a = 1\r\n[b]\r\nc = [\r\n 2,\r\n]\r\n")
        #expect(t["a"]?.int == 1 && t["b"]?.table?["c"]?.array?.first?.int == 2)
    }
}
