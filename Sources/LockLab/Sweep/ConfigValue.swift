// Experiment files are YAML, read with Yams (libyaml). This file turns Yams' node tree into the few
// value kinds an experiment file uses, so that ExperimentFile.swift checks fields without knowing
// YAML, and every malformed input becomes a ConfigParseError with a line and a column.
//
// Why YAML and not TOML: TOMLKit (the TOML library available) bundles toml++ 3.4.0, which aborts
// the process on some malformed input (`[` then a newline, `[[=`, `x = [}]`); the experiment-file
// property tests found it. libyaml reports every malformed input as an error.

import Foundation
import Yams

/// A value of an experiment file. Scalars keep their text: the field that reads one decides its
/// type (`ScalarText`), so that no YAML 1.1 rule changes a value behind the reader's back (issue 10,
/// section 6: `010` is octal 8, `1:30` is 90, `yes`/`on` are true, `0x10` is 16 to libyaml's users).
indirect enum ConfigValue {
    /// A scalar as written; `plain` when unquoted.
    case scalar(String, plain: Bool)
    case array([ConfigValue])
    case table(ConfigTable)
    /// An empty value, or a plain `~`.
    case null

    /// The text of a scalar, quoted or not.
    var text: String? { if case let .scalar(s, _) = self { return s } else { return nil } }
    var array: [ConfigValue]? { if case let .array(a) = self { return a } else { return nil } }
    var table: ConfigTable? { if case let .table(t) = self { return t } else { return nil } }

    /// The value as an error message shows it: "'three'", "a list", "no value".
    var typeName: String {
        switch self {
        case let .scalar(s, _): return "'\(s)'"
        case .array: return "a list"
        case .table: return "a mapping"
        case .null: return "no value"
        }
    }
}

/// What a field makes of a scalar's text. Numbers are read as a person reads them: decimal, leading
/// zeros allowed (`010` is ten, `08` is eight), `_` between digits, an exponent (`1e3`) where the
/// value is whole. Everything YAML 1.1 would turn into another number, and every word that is not
/// the field's kind, is refused with one line that says what it would have meant.
enum ScalarText {
    enum Reading<T> {
        case value(T)
        /// Not a number at all (a word): the field may take it as something else.
        case notANumber
        /// Looks like a number but one a person could misread: the message says why.
        case refused(String)
    }

    private static func matches(_ text: String, _ pattern: String) -> Bool {
        text.range(of: pattern, options: .regularExpression) != nil
    }

    /// A decimal number with `_` between digits and an optional fraction and exponent, or a
    /// refusal naming the YAML 1.1 form it is.
    static func number(_ raw: String) -> Reading<Double> {
        let text = raw.trimmingCharacters(in: .whitespaces)
        if matches(text, "^[-+]?[0-9]+(_[0-9]+)*(\\.[0-9]*)?([eE][-+]?[0-9]+)?$")
            || matches(text, "^[-+]?\\.[0-9]+([eE][-+]?[0-9]+)?$") {
            guard let x = Double(text.replacingOccurrences(of: "_", with: "")), x.isFinite else {
                return .refused("'\(raw)' is too large")
            }
            return .value(x)
        }
        if matches(text, "^[-+]?0[xX][0-9a-fA-F_]+$") {
            let digits = text.replacingOccurrences(of: "_", with: "").replacingOccurrences(of: "0x", with: "")
                .replacingOccurrences(of: "0X", with: "")
            let hint = Int(digits.trimmingCharacters(in: CharacterSet(charactersIn: "+-")), radix: 16).map { " (\($0))" } ?? ""
            return .refused("'\(raw)' is hexadecimal; write the number in decimal\(hint)")
        }
        if matches(text, "^[-+]?0[oObB][0-9_]+$") {
            return .refused("'\(raw)' is octal or binary; write the number in decimal")
        }
        if matches(text, "^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\\.[0-9_]*)?$") {
            return .refused("'\(raw)' is a base-60 number to YAML 1.1 (1:30 is 90); write one plain number")
        }
        if matches(text, "^[-+]?\\.?(inf|Inf|INF|nan|NaN|NAN)$") || matches(text, "^[-+]?(infinity|Infinity)$") {
            return .refused("'\(raw)' is not a finite number")
        }
        if matches(text, "^[-+]?[0-9][0-9_.eE+-]*$") {
            return .refused("'\(raw)' is not a number")
        }
        return .notANumber
    }

    /// A whole number (see `number`): `1e3` is 1000, `2.0` is 2, `1.5` is refused.
    static func integer(_ raw: String) -> Reading<Int> {
        let text = raw.trimmingCharacters(in: .whitespaces)
        if matches(text, "^[-+]?[0-9]+(_[0-9]+)*$") {
            guard let n = Int(text.replacingOccurrences(of: "_", with: "")) else {
                return .refused("'\(raw)' is too large")
            }
            return .value(n)
        }
        switch number(raw) {
        case let .value(x):
            guard x == x.rounded() else { return .refused("'\(raw)' is not a whole number") }
            guard abs(x) < 0x1p63 else { return .refused("'\(raw)' is too large") }
            return .value(Int(x))
        case .notANumber: return .notANumber
        case let .refused(why): return .refused(why)
        }
    }

    /// true/false, and the YAML 1.1 words that mean them (yes/no, on/off, y/n), any case.
    static func boolean(_ raw: String) -> Bool? {
        switch raw.trimmingCharacters(in: .whitespaces).lowercased() {
        case "true", "yes", "on", "y": return true
        case "false", "no", "off", "n": return false
        default: return nil
        }
    }
}

/// A mapping: keys in file order.
struct ConfigTable {
    private(set) var keys: [String] = []
    private var values: [String: ConfigValue] = [:]

    subscript(key: String) -> ConfigValue? { values[key] }

    mutating func set(_ key: String, _ value: ConfigValue) {
        if values[key] == nil { keys.append(key) }
        values[key] = value
    }
}

struct ConfigParseError: Error, CustomStringConvertible {
    let line: Int
    let column: Int
    let message: String
    var description: String { message }
}

enum ConfigParser {
    /// Nesting deeper than this is refused (an experiment file needs two levels).
    static let maxDepth = 64

    /// Parses a YAML document whose top level is a mapping.
    static func parse(_ text: String) throws -> ConfigTable {
        let node: Node?
        do {
            // The basic resolver types nothing: every scalar stays text (see ConfigValue).
            node = try Yams.compose(yaml: text, .basic)
        } catch let e as YamlError {
            throw error(e)
        }
        guard let node else { throw ConfigParseError(line: 1, column: 1, message: "the file is empty") }
        guard case let .table(table) = try convert(node, depth: 0) else {
            throw ConfigParseError(line: node.mark?.line ?? 1, column: node.mark?.column ?? 1,
                                   message: "expected a mapping of fields (name: value) at the top level")
        }
        return table
    }

    static func convert(_ node: Node, depth: Int) throws -> ConfigValue {
        guard depth < maxDepth else {
            throw ConfigParseError(line: node.mark?.line ?? 0, column: node.mark?.column ?? 0, message: "nested too deeply")
        }
        switch node {
        case let .scalar(scalar):
            // An explicit tag (`!!int 010`, `!!float 1`) asks for YAML's typing: refused, not half-honoured.
            let tag = scalar.tag.description
            // Untagged scalars carry the implicit ("") or non-specific ("!") tag, or str once resolved.
            if ![Tag.Name.implicit.rawValue, Tag.Name.nonSpecific.rawValue, Tag.Name.str.rawValue].contains(tag) {
                throw ConfigParseError(line: node.mark?.line ?? 0, column: node.mark?.column ?? 0,
                                       message: "tags such as '!!\(tag.split(separator: ":").last ?? "")' are not supported: write the value plainly")
            }
            let plain = scalar.style == .plain || scalar.style == .any
            // Null is an empty value or a plain `~`; the word `null` stays text (a field that takes a name gets it as written).
            if plain && (scalar.string.isEmpty || scalar.string == "~") { return .null }
            return .scalar(scalar.string, plain: plain)
        case let .sequence(sequence):
            return .array(try sequence.map { try convert($0, depth: depth + 1) })
        case let .mapping(mapping):
            var table = ConfigTable()
            for (key, value) in mapping {
                guard case let .scalar(k) = key else {
                    throw ConfigParseError(line: key.mark?.line ?? 0, column: key.mark?.column ?? 0,
                                           message: "a key must be a plain name")
                }
                if table[k.string] != nil {
                    throw ConfigParseError(line: key.mark?.line ?? 0, column: key.mark?.column ?? 0,
                                           message: "'\(k.string)' is given twice")
                }
                table.set(k.string, try convert(value, depth: depth + 1))
            }
            return .table(table)
        case .alias:
            throw ConfigParseError(line: node.mark?.line ?? 0, column: node.mark?.column ?? 0,
                                   message: "aliases are not supported")
        }
    }

    /// libyaml's message, first line only, with its position.
    static func error(_ e: YamlError) -> ConfigParseError {
        let text = "\(e)"
        var line = 0
        var column = 0
        // YamlError describes itself as "LINE:COLUMN: error: ...".
        let head = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        if head.count == 3, let l = Int(head[0]), let c = Int(head[1]) {
            line = l
            column = c
        }
        var message = text.split(separator: "\n").first.map(String.init) ?? text
        if head.count == 3, line > 0 { message = head[2].split(separator: "\n").first.map(String.init) ?? message }
        message = message.replacingOccurrences(of: " error: ", with: "").trimmingCharacters(in: .whitespaces)
        return ConfigParseError(line: line, column: column, message: message)
    }
}
