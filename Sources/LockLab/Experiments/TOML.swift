// A small TOML parser for experiment files: TOML 1.0 without dates and times.
//
// Why not a library: TOMLKit 0.6.0 (its latest release) bundles toml++ 3.4.0, which aborts on some
// malformed input instead of reporting it: its internal preconditions are assert()s (abort, in
// debug and in SwiftPM release builds alike) or, under NDEBUG, assumptions the optimiser may exploit.
// `[` followed by a newline, `[[=`, `[[[a]]]` (parse_key: marzer/tomlplusplus#301, fixed upstream
// after 3.4.0) and `x = [}]` (parse_value: `!is_value_terminator(*cp)`) all ended `locklab sweep`
// with SIGABRT; the experiment-file property tests (Tests/LockLabTests/ExperimentFuzzTests.swift)
// found them in a few seconds. An experiment file is small and simple, so the lab parses it itself:
// every malformed input is a `TOMLParseError` with a line and a column, nothing traps.
//
// Supported: comments; bare, quoted and dotted keys; basic and literal strings, single- and
// multi-line, with TOML's escapes; integers (decimal, 0x, 0o, 0b, underscores); floats (fraction,
// exponent, inf, nan); booleans; arrays (multi-line, trailing comma); inline tables; [tables] and
// [[arrays of tables]], with TOML's rules against defining a key or a table twice. Dates and times
// are refused by name (no experiment field takes one). Nesting is limited to 64 levels.

/// A parsed TOML value.
indirect enum TOMLValue {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case array([TOMLValue])
    case table(TOMLTable)

    var string: String? { if case let .string(s) = self { return s } else { return nil } }
    var int: Int? { if case let .integer(n) = self { return n } else { return nil } }
    var double: Double? { if case let .float(x) = self { return x } else { return nil } }
    var bool: Bool? { if case let .boolean(b) = self { return b } else { return nil } }
    var array: [TOMLValue]? { if case let .array(a) = self { return a } else { return nil } }
    var table: TOMLTable? { if case let .table(t) = self { return t } else { return nil } }

    /// The value's kind, for "expected an integer, found a string".
    var typeName: String {
        switch self {
        case .string: return "a string"
        case .integer: return "an integer"
        case .float: return "a float"
        case .boolean: return "a boolean"
        case .array: return "a list"
        case .table: return "a table"
        }
    }
}

/// A TOML table: keys in the order they were defined. A class, so that headers and dotted keys
/// can extend a table after it was placed in its parent.
final class TOMLTable {
    private(set) var keys: [String] = []
    private var values: [String: TOMLValue] = [:]

    /// How the table came to be, for TOML's rule against defining a table twice.
    enum Origin { case implicit, header, dottedKey, inline }
    var origin: Origin
    /// Keys holding arrays made by [[headers]] (the only arrays a header may append to).
    var arraysOfTables: Set<String> = []

    init(origin: Origin) { self.origin = origin }

    subscript(key: String) -> TOMLValue? { values[key] }

    func set(_ key: String, _ value: TOMLValue) {
        if values[key] == nil { keys.append(key) }
        values[key] = value
    }
}

struct TOMLParseError: Error, CustomStringConvertible {
    let line: Int
    let column: Int
    let message: String
    var description: String { message }
}

struct TOMLParser {
    private let s: [Unicode.Scalar]
    private var i = 0
    private var line = 1
    private var lineStart = 0
    private var depth = 0
    static let maxDepth = 64

    /// Parses a whole document.
    static func parse(_ text: String) throws -> TOMLTable {
        var parser = TOMLParser(Array(text.unicodeScalars))
        return try parser.document()
    }

    private init(_ s: [Unicode.Scalar]) { self.s = s }

    // MARK: - Errors and positions

    private func fail(_ message: String) -> TOMLParseError {
        TOMLParseError(line: line, column: i - lineStart + 1, message: message)
    }

    private var atEnd: Bool { i >= s.count }
    private var c: Unicode.Scalar { s[i] }

    private func peek(_ offset: Int) -> Unicode.Scalar? {
        i + offset < s.count ? s[i + offset] : nil
    }

    private func describeCurrent() -> String {
        guard !atEnd else { return "the end of the file" }
        switch c {
        case "\n": return "the end of the line"
        case "\t": return "a tab"
        default: return c.value < 0x20 || c.value == 0x7F ? "control character U+\(String(c.value, radix: 16, uppercase: true))" : "'\(Character(c))'"
        }
    }

    private mutating func newline() {
        i += 1
        line += 1
        lineStart = i
    }

    // MARK: - Document structure

    private mutating func document() throws -> TOMLTable {
        let root = TOMLTable(origin: .header)
        var current = root
        while true {
            skipBlank()
            if atEnd { return root }
            switch c {
            case "#":
                try skipComment()
            case "\n":
                newline()
            case "\r":
                try lineEnd()
            case "[":
                current = try header(root)
                try lineEnd()
            default:
                try keyValue(into: current)
                try lineEnd()
            }
        }
    }

    /// Spaces and tabs.
    private mutating func skipBlank() {
        while !atEnd && (c == " " || c == "\t") { i += 1 }
    }

    private mutating func skipComment() throws {
        i += 1
        while !atEnd && c != "\n" {
            if c == "\r" && peek(1) == "\n" { break }
            if (c.value < 0x20 && c != "\t") || c.value == 0x7F {
                throw fail("control character U+\(String(c.value, radix: 16, uppercase: true)) in a comment")
            }
            i += 1
        }
    }

    /// After a statement: blanks, an optional comment, then a newline or the end.
    private mutating func lineEnd() throws {
        skipBlank()
        if !atEnd && c == "#" { try skipComment() }
        if atEnd { return }
        if c == "\n" { newline(); return }
        if c == "\r" && peek(1) == "\n" { i += 1; newline(); return }
        throw fail("expected the end of the line, found \(describeCurrent())")
    }

    /// `[a.b]` or `[[a.b]]`; returns the table that the following keys go into.
    private mutating func header(_ root: TOMLTable) throws -> TOMLTable {
        i += 1
        let isArray = !atEnd && c == "["
        if isArray { i += 1 }
        skipBlank()
        let path = try key()
        skipBlank()
        guard !atEnd && c == "]" else { throw fail("expected ']' to close the table header, found \(describeCurrent())") }
        i += 1
        if isArray {
            guard !atEnd && c == "]" else { throw fail("expected ']]' to close the array-of-tables header, found \(describeCurrent())") }
            i += 1
        }
        var table = root
        for (n, part) in path.dropLast().enumerated() {
            table = try descend(table, part, path: path.prefix(n + 1), forHeader: true)
        }
        let last = path.last!
        let name = path.joined(separator: ".")
        if isArray {
            let element = TOMLTable(origin: .header)
            switch table[last] {
            case nil:
                table.set(last, .array([.table(element)]))
                table.arraysOfTables.insert(last)
            case let .array(elements)? where table.arraysOfTables.contains(last):
                table.set(last, .array(elements + [.table(element)]))
            default:
                throw fail("'\(name)' is already defined and is not an array of tables")
            }
            return element
        }
        switch table[last] {
        case nil:
            let created = TOMLTable(origin: .header)
            table.set(last, .table(created))
            return created
        case let .table(existing)? where existing.origin == .implicit:
            existing.origin = .header
            return existing
        default:
            throw fail("table '\(name)' is defined twice")
        }
    }

    /// The table under `part` of `table`, made (implicitly) if missing. For a header, an array of
    /// tables means its last element.
    private mutating func descend(_ table: TOMLTable, _ part: String, path: ArraySlice<String>, forHeader: Bool) throws -> TOMLTable {
        let name = path.joined(separator: ".")
        switch table[part] {
        case nil:
            let created = TOMLTable(origin: forHeader ? .implicit : .dottedKey)
            table.set(part, .table(created))
            return created
        case let .table(existing)?:
            if existing.origin == .inline { throw fail("'\(name)' is an inline table and cannot be extended") }
            if !forHeader && existing.origin == .header { throw fail("'\(name)' is a table defined by a header; dotted keys cannot extend it here") }
            return existing
        case let .array(elements)? where forHeader && table.arraysOfTables.contains(part):
            guard case let .table(last)? = elements.last else { throw fail("'\(name)' is not a table") }
            return last
        default:
            throw fail("'\(name)' is already a value, not a table")
        }
    }

    /// `key = value`, the key possibly dotted, into `table`.
    private mutating func keyValue(into table: TOMLTable) throws {
        let path = try key()
        skipBlank()
        guard !atEnd && c == "=" else { throw fail("expected '=' after the key '\(path.joined(separator: "."))', found \(describeCurrent())") }
        i += 1
        skipBlank()
        let v = try value()
        var target = table
        for (n, part) in path.dropLast().enumerated() {
            target = try descend(target, part, path: path.prefix(n + 1), forHeader: false)
        }
        let last = path.last!
        if target[last] != nil { throw fail("key '\(path.joined(separator: "."))' is defined twice") }
        target.set(last, v)
    }

    // MARK: - Keys

    private static func isBareKeyCharacter(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "_" || c == "-"
    }

    /// A key: parts separated by '.', each bare or quoted.
    private mutating func key() throws -> [String] {
        var parts: [String] = []
        while true {
            skipBlank()
            guard !atEnd else { throw fail("expected a key, found the end of the file") }
            if c == "\"" {
                if peek(1) == "\"" && peek(2) == "\"" { throw fail("a key cannot be a multi-line string") }
                parts.append(try basicString())
            } else if c == "'" {
                if peek(1) == "'" && peek(2) == "'" { throw fail("a key cannot be a multi-line string") }
                parts.append(try literalString())
            } else if Self.isBareKeyCharacter(c) {
                var text = String.UnicodeScalarView()
                while !atEnd && Self.isBareKeyCharacter(c) {
                    text.append(c)
                    i += 1
                }
                parts.append(String(text))
            } else {
                throw fail("expected a key, found \(describeCurrent())")
            }
            skipBlank()
            if !atEnd && c == "." { i += 1 } else { return parts }
        }
    }

    // MARK: - Values

    private mutating func value() throws -> TOMLValue {
        guard !atEnd else { throw fail("expected a value, found the end of the file") }
        switch c {
        case "\"":
            return .string(peek(1) == "\"" && peek(2) == "\"" ? try multiLineBasicString() : try basicString())
        case "'":
            return .string(peek(1) == "'" && peek(2) == "'" ? try multiLineLiteralString() : try literalString())
        case "[":
            return try nested { try $0.array() }
        case "{":
            return try nested { try $0.inlineTable() }
        default:
            return try scalar()
        }
    }

    private mutating func nested(_ body: (inout TOMLParser) throws -> TOMLValue) throws -> TOMLValue {
        guard depth < Self.maxDepth else { throw fail("values nested more than \(Self.maxDepth) deep") }
        depth += 1
        defer { depth -= 1 }
        return try body(&self)
    }

    /// Blanks, newlines and comments, as allowed between array elements.
    private mutating func skipBlankLinesAndComments() throws {
        while !atEnd {
            if c == " " || c == "\t" {
                i += 1
            } else if c == "\n" {
                newline()
            } else if c == "\r" && peek(1) == "\n" {
                i += 1
                newline()
            } else if c == "#" {
                try skipComment()
            } else {
                return
            }
        }
    }

    private mutating func array() throws -> TOMLValue {
        i += 1
        var elements: [TOMLValue] = []
        while true {
            try skipBlankLinesAndComments()
            guard !atEnd else { throw fail("unterminated list: expected ']'") }
            if c == "]" {
                i += 1
                return .array(elements)
            }
            elements.append(try value())
            try skipBlankLinesAndComments()
            guard !atEnd else { throw fail("unterminated list: expected ']'") }
            if c == "," {
                i += 1
            } else if c != "]" {
                throw fail("expected ',' or ']' in the list, found \(describeCurrent())")
            }
        }
    }

    private mutating func inlineTable() throws -> TOMLValue {
        i += 1
        let table = TOMLTable(origin: .inline)
        skipBlank()
        if !atEnd && c == "}" {
            i += 1
            return .table(table)
        }
        while true {
            try keyValue(into: table)
            skipBlank()
            guard !atEnd else { throw fail("unterminated inline table: expected '}'") }
            if c == "}" {
                i += 1
                return .table(table)
            }
            guard c == "," else { throw fail("expected ',' or '}' in the inline table, found \(describeCurrent())") }
            i += 1
            skipBlank()
        }
    }

    /// Integers, floats, booleans; dates and times refused.
    private mutating func scalar() throws -> TOMLValue {
        let start = i
        var token = String.UnicodeScalarView()
        while !atEnd, Self.isTokenCharacter(c) {
            token.append(c)
            i += 1
        }
        let text = String(token)
        if text.isEmpty { throw fail("expected a value, found \(describeCurrent())") }
        if text == "true" { return .boolean(true) }
        if text == "false" { return .boolean(false) }
        if let n = Self.integer(text) { return .integer(n) }
        if let x = Self.float(text) { return .float(x) }
        let column = start - lineStart + 1
        if text.contains(":") || Self.looksLikeDate(text) {
            throw TOMLParseError(line: line, column: column, message: "dates and times are not used in experiment files: '\(text)'")
        }
        if Self.looksLikeInteger(text) {
            throw TOMLParseError(line: line, column: column, message: "integer '\(text)' is out of range")
        }
        throw TOMLParseError(line: line, column: column, message: "'\(text)' is not a value (strings need quotes)")
    }

    private static func isTokenCharacter(_ c: Unicode.Scalar) -> Bool {
        isBareKeyCharacter(c) || c == "+" || c == "." || c == ":"
    }

    private static func looksLikeDate(_ text: String) -> Bool {
        let u = Array(text.unicodeScalars)
        return u.count >= 10 && u[4] == "-" && u[7] == "-" && u[0..<4].allSatisfy { ("0"..."9").contains($0) }
    }

    /// A well-formed decimal integer (sign, digits, single underscores, no leading zero), whatever
    /// its size: if `integer` refused it, it is out of range.
    private static func looksLikeInteger(_ text: String) -> Bool {
        var u = Substring(text)
        if u.first == "+" || u.first == "-" { u = u.dropFirst() }
        guard let d = digits(u, isDigit: isDecimal) else { return false }
        return d.count == 1 || d.first != "0"
    }

    /// `digits` with single underscores between digits only; nil if malformed.
    private static func digits(_ text: Substring, isDigit: (Character) -> Bool) -> String? {
        guard let first = text.first, let last = text.last, isDigit(first), isDigit(last) else { return nil }
        var out = ""
        var previousUnderscore = false
        for ch in text {
            if ch == "_" {
                if previousUnderscore { return nil }
                previousUnderscore = true
            } else if isDigit(ch) {
                out.append(ch)
                previousUnderscore = false
            } else {
                return nil
            }
        }
        return out
    }

    private static func isDecimal(_ c: Character) -> Bool { c.isASCII && c.isNumber }

    static func integer(_ text: String) -> Int? {
        var body = Substring(text)
        for (prefix, radix, isDigit) in [("0x", 16, { (c: Character) in c.isASCII && c.isHexDigit }),
                                         ("0o", 8, { (c: Character) in ("0"..."7").contains(c) }),
                                         ("0b", 2, { (c: Character) in c == "0" || c == "1" })] as [(String, Int, (Character) -> Bool)]
            where body.hasPrefix(prefix) {
            guard let d = digits(body.dropFirst(2), isDigit: isDigit) else { return nil }
            return Int(d, radix: radix)
        }
        var sign = ""
        if body.first == "+" || body.first == "-" {
            sign = body.first == "-" ? "-" : ""
            body = body.dropFirst()
        }
        guard let d = digits(body, isDigit: isDecimal) else { return nil }
        if d.count > 1 && d.first == "0" { return nil } // no leading zeros
        return Int(sign + d)
    }

    static func float(_ text: String) -> Double? {
        var body = Substring(text)
        var sign = ""
        if body.first == "+" || body.first == "-" {
            sign = body.first == "-" ? "-" : ""
            body = body.dropFirst()
        }
        if body == "inf" { return sign == "-" ? -.infinity : .infinity }
        if body == "nan" { return .nan }
        // integer part, then '.' fraction and/or exponent
        let exponentIndex = body.firstIndex { $0 == "e" || $0 == "E" }
        let mantissa = exponentIndex.map { body[..<$0] } ?? body
        let dot = mantissa.firstIndex(of: ".")
        guard let integerPart = digits(dot.map { mantissa[..<$0] } ?? mantissa, isDigit: isDecimal) else { return nil }
        if integerPart.count > 1 && integerPart.first == "0" { return nil }
        var normal = sign + integerPart
        if let dot {
            guard let fraction = digits(mantissa[mantissa.index(after: dot)...], isDigit: isDecimal) else { return nil }
            normal += "." + fraction
        }
        if let e = exponentIndex {
            var exponent = body[body.index(after: e)...]
            var exponentSign = ""
            if exponent.first == "+" || exponent.first == "-" {
                exponentSign = String(exponent.first!)
                exponent = exponent.dropFirst()
            }
            guard let d = digits(exponent, isDigit: isDecimal) else { return nil }
            normal += "e" + exponentSign + d
        }
        guard dot != nil || exponentIndex != nil else { return nil } // an integer, not a float
        return Double(normal)
    }

    // MARK: - Strings

    private mutating func controlCheck() throws {
        if (c.value < 0x20 && c != "\t") || c.value == 0x7F {
            throw fail("control character U+\(String(c.value, radix: 16, uppercase: true)) in a string (escape it)")
        }
    }

    private mutating func basicString() throws -> String {
        i += 1
        var out = String.UnicodeScalarView()
        while true {
            guard !atEnd, c != "\n" else { throw fail("unterminated string: expected '\"'") }
            if c == "\"" {
                i += 1
                return String(out)
            }
            if c == "\\" {
                out.append(try escape())
            } else {
                try controlCheck()
                out.append(c)
                i += 1
            }
        }
    }

    private mutating func literalString() throws -> String {
        i += 1
        var out = String.UnicodeScalarView()
        while true {
            guard !atEnd, c != "\n" else { throw fail("unterminated string: expected \"'\"") }
            if c == "'" {
                i += 1
                return String(out)
            }
            try controlCheck()
            out.append(c)
            i += 1
        }
    }

    /// At a backslash in a basic string: the escaped scalar.
    private mutating func escape() throws -> Unicode.Scalar {
        i += 1
        guard !atEnd else { throw fail("unterminated string: expected '\"'") }
        let e = c
        i += 1
        switch e {
        case "b": return "\u{8}"
        case "t": return "\t"
        case "n": return "\n"
        case "f": return "\u{C}"
        case "r": return "\r"
        case "\"": return "\""
        case "\\": return "\\"
        case "u", "U":
            let count = e == "u" ? 4 : 8
            var hex = ""
            for _ in 0..<count {
                guard !atEnd, Character(c).isHexDigit, c.isASCII else { throw fail("\\\(e) needs \(count) hex digits") }
                hex.unicodeScalars.append(c)
                i += 1
            }
            guard let v = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(v) else {
                throw fail("\\\(e)\(hex) is not a Unicode scalar value")
            }
            return scalar
        default:
            i -= 1
            throw fail(e == "\n" || e == "\r" ? "a backslash at the end of a line continues only multi-line strings (\"\"\")"
                                             : "unknown escape '\\\(Character(e))'")
        }
    }

    private mutating func multiLineBasicString() throws -> String {
        i += 3
        try skipFirstNewline()
        var out = String.UnicodeScalarView()
        while true {
            guard !atEnd else { throw fail("unterminated multi-line string: expected '\"\"\"'") }
            if c == "\"" && peek(1) == "\"" && peek(2) == "\"" {
                i += 3
                // Up to two more quotes belong to the string: """a""""" is a"".
                var extra = 0
                while extra < 2 && !atEnd && c == "\"" { out.append("\""); i += 1; extra += 1 }
                return String(out)
            }
            if c == "\\" {
                // A backslash at the end of a line trims the newline and the blanks after it.
                var j = i + 1
                while j < s.count && (s[j] == " " || s[j] == "\t") { j += 1 }
                if j < s.count && (s[j] == "\n" || (s[j] == "\r" && j + 1 < s.count && s[j + 1] == "\n")) {
                    i = j
                    while !atEnd && (c == " " || c == "\t" || c == "\n" || c == "\r") {
                        if c == "\n" { newline() } else { i += 1 }
                    }
                    continue
                }
                out.append(try escape())
            } else if c == "\n" {
                out.append("\n")
                newline()
            } else if c == "\r" && peek(1) == "\n" {
                out.append("\n")
                i += 1
                newline()
            } else {
                try controlCheck()
                out.append(c)
                i += 1
            }
        }
    }

    private mutating func multiLineLiteralString() throws -> String {
        i += 3
        try skipFirstNewline()
        var out = String.UnicodeScalarView()
        while true {
            guard !atEnd else { throw fail("unterminated multi-line string: expected \"'''\"") }
            if c == "'" && peek(1) == "'" && peek(2) == "'" {
                i += 3
                var extra = 0
                while extra < 2 && !atEnd && c == "'" { out.append("'"); i += 1; extra += 1 }
                return String(out)
            }
            if c == "\n" {
                out.append("\n")
                newline()
            } else if c == "\r" && peek(1) == "\n" {
                out.append("\n")
                i += 1
                newline()
            } else {
                try controlCheck()
                out.append(c)
                i += 1
            }
        }
    }

    /// A newline right after the opening delimiter of a multi-line string is not part of it.
    private mutating func skipFirstNewline() throws {
        if !atEnd && c == "\n" { newline() } else if !atEnd && c == "\r" && peek(1) == "\n" { i += 1; newline() }
    }
}
