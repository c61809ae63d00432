// Experiment files are YAML, read with Yams (libyaml). This file turns Yams' node tree into the few
// value kinds an experiment file uses, so that ExperimentFile.swift checks fields without knowing
// YAML, and every malformed input becomes a ConfigParseError with a line and a column.
//
// Why YAML and not TOML: TOMLKit (the TOML library available) bundles toml++ 3.4.0, which aborts
// the process on some malformed input (`[` then a newline, `[[=`, `x = [}]`); the experiment-file
// property tests found it. libyaml reports every malformed input as an error.

import Yams

/// A value of an experiment file.
indirect enum ConfigValue {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case array([ConfigValue])
    case table(ConfigTable)
    case null

    var string: String? { if case let .string(s) = self { return s } else { return nil } }
    var int: Int? { if case let .integer(n) = self { return n } else { return nil } }
    var double: Double? { if case let .float(x) = self { return x } else { return nil } }
    var bool: Bool? { if case let .boolean(b) = self { return b } else { return nil } }
    var array: [ConfigValue]? { if case let .array(a) = self { return a } else { return nil } }
    var table: ConfigTable? { if case let .table(t) = self { return t } else { return nil } }

    /// The value's kind, for "expected an integer, found a string".
    var typeName: String {
        switch self {
        case .string: return "a string"
        case .integer: return "an integer"
        case .float: return "a float"
        case .boolean: return "a boolean"
        case .array: return "a list"
        case .table: return "a mapping"
        case .null: return "no value"
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
            node = try Yams.compose(yaml: text)
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
            // Quoted or block scalars are strings whatever they look like; plain ones are typed.
            if scalar.style != .plain && scalar.style != .any { return .string(scalar.string) }
            // Only an empty value is null: a lock name is a plain string, and no field takes YAML's null.
            if scalar.string.isEmpty { return .null }
            if let b = node.bool { return .boolean(b) }
            if let n = node.int { return .integer(n) }
            if let x = node.float { return .float(x) }
            return .string(scalar.string)
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
