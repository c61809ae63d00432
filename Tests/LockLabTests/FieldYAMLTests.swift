// Issue 10, section 6: YAML 1.1 surprises in every field of the experiment format. Each value either
// means what a person reads or is refused with one line naming the file and the field.

import Foundation
import Testing
@testable import LockLab

/// The field reports' experiment files, copied into the repository (CI's clone has nothing beside it).
private let fieldFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path

/// What a field should make of a value: the value read (as text), or a refusal mentioning this.
private enum Meaning: CustomStringConvertible {
    case value(String)
    case refused(String)
    var description: String {
        switch self {
        case let .value(v): return "value \(v)"
        case let .refused(m): return "refused (\(m))"
        }
    }
}

/// The YAML 1.1 surprises the issue lists (and a few siblings), as written in a file.
private let surprises = ["010", "08", "0", "1:30", "yes", "no", "on", "off", "y", "~", "null", ".inf", "-.inf", ".nan",
                         "1e3", "0x10", "0o17", "0b11", "1_000", "2.5", "'010'", "\"yes\"", "!!int 010", "!!float 1"]

/// The meaning of each surprise for a field that takes a whole number in `range`.
private func integerMeaning(_ text: String, range: ClosedRange<Int>) -> Meaning {
    let number: Int
    switch text {
    case "010", "'010'": number = 10
    case "08": number = 8
    case "0": number = 0
    case "1e3", "1_000": number = 1000
    case "1:30": return .refused("base-60")
    case "yes", "no", "on", "off", "y", "null", "\"yes\"": return .refused("expected an integer")
    case "~": return .refused("no value")
    case ".inf", "-.inf", ".nan": return .refused("not a finite number")
    case "0x10": return .refused("hexadecimal")
    case "0o17", "0b11": return .refused("octal or binary")
    case "2.5": return .refused("not a whole number")
    case "!!int 010", "!!float 1": return .refused("tags")
    default: fatalError("no meaning for \(text)")
    }
    return range.contains(number) ? .value("\(number)") : .refused("out of range")
}

/// The meaning for a field that takes seconds in `range`.
private func secondsMeaning(_ text: String, range: ClosedRange<Double>) -> Meaning {
    let x: Double
    switch text {
    case "010", "'010'": x = 10
    case "08": x = 8
    case "0": x = 0
    case "1e3", "1_000": x = 1000
    case "2.5": x = 2.5
    case "1:30": return .refused("base-60")
    case "yes", "no", "on", "off", "y", "null", "\"yes\"": return .refused("expected a number")
    case "~": return .refused("no value")
    case ".inf", "-.inf", ".nan": return .refused("not a finite number")
    case "0x10": return .refused("hexadecimal")
    case "0o17", "0b11": return .refused("octal or binary")
    case "!!int 010", "!!float 1": return .refused("tags")
    default: fatalError("no meaning for \(text)")
    }
    return range.contains(x) ? .value("\(x)") : .refused("out of range")
}

private func booleanMeaning(_ text: String) -> Meaning {
    switch text {
    case "yes", "on", "y", "\"yes\"": return .value("true")
    case "no", "off": return .value("false")
    case "~": return .refused("no value")
    case "!!int 010", "!!float 1": return .refused("tags")
    default: return .refused("expected true or false")
    }
}

/// A string field keeps the text as written (quotes removed).
private func textMeaning(_ text: String) -> Meaning {
    switch text {
    case "~": return .refused("no value")
    case "!!int 010", "!!float 1": return .refused("tags")
    case "'010'": return .value("010")
    case "\"yes\"": return .value("yes")
    default: return .value(text)
    }
}

/// A field that takes a node number or a word.
private func memNodeMeaning(_ text: String) -> Meaning {
    switch text {
    case "010", "'010'": return .value("10")
    case "08": return .value("8")
    case "0": return .value("0")
    case "1e3", "1_000": return .value("1000")
    case "1:30": return .refused("base-60")
    case "~": return .refused("no value")
    case ".inf", "-.inf", ".nan": return .refused("not a finite number")
    case "0x10": return .refused("hexadecimal")
    case "0o17", "0b11": return .refused("octal or binary")
    case "2.5": return .refused("not a whole number")
    case "!!int 010", "!!float 1": return .refused("tags")
    default: return .refused("is not valid") // yes, no, on, null...: not a node, local or interleave
    }
}

private func threadsMeaning(_ text: String) -> Meaning {
    switch integerMeaning(text, range: 1...Limits.maxThreads) {
    case let .value(v): return .value("[\(v)]")
    case .refused where ["yes", "no", "on", "off", "y", "null", "\"yes\""].contains(text): return .refused("is not valid")
    case .refused where text == "0": return .refused("is not valid")
    case let other: return other
    }
}

/// Every field of the format: the YAML key, where it goes in a document, and what it reads back.
private struct FieldCase: Sendable {
    let field: String
    /// A document with the field set to VALUE (every other field valid).
    let document: @Sendable (String) -> String
    let read: @Sendable (Experiment) -> String
    let meaning: @Sendable (String) -> Meaning
}

private func top(_ key: String, _ value: String) -> String {
    var fields = ["locks": "[tas]", "threads": "[1]"]
    fields[key] = value
    return fields.keys.sorted().map { "\($0): \(fields[$0]!)" }.joined(separator: "\n") + "\n"
}

private let fieldCases: [FieldCase] = [
    FieldCase(field: "name", document: { top("name", $0) }, read: { $0.name }, meaning: { textMeaning($0) }),
    FieldCase(field: "description", document: { top("description", $0) }, read: { $0.description }, meaning: { textMeaning($0) }),
    FieldCase(field: "locks", document: { top("locks", "[\($0)]") }, read: { $0.locks.map(\.label).joined(separator: ",") },
              meaning: { $0 == "null" ? .refused("did you mean 'no-lock'") : ($0 == "~" ? .refused("no value") : ($0.hasPrefix("!!") ? .refused("tags") : .refused("unknown lock"))) }),
    FieldCase(field: "threads", document: { top("threads", "[\($0)]") }, read: { "\($0.threads)" }, meaning: { threadsMeaning($0) }),
    FieldCase(field: "placements", document: { top("placements", "[\($0)]") }, read: { "\($0.placements)" },
              meaning: { $0 == "~" ? .refused("no value") : ($0.hasPrefix("!!") ? .refused("tags") : .refused("is not valid")) }),
    FieldCase(field: "repeats", document: { top("repeats", $0) }, read: { "\($0.repeats)" },
              meaning: { integerMeaning($0, range: 1...10_000) }),
    FieldCase(field: "duration_s", document: { top("duration_s", $0) }, read: { "\($0.durationSeconds)" },
              meaning: { secondsMeaning($0, range: 0.001...86_400) }),
    FieldCase(field: "warmup_s", document: { top("warmup_s", $0) }, read: { "\($0.warmupSeconds)" },
              meaning: { secondsMeaning($0, range: 0...86_400) }),
    FieldCase(field: "stall_timeout_s", document: { top("stall_timeout_s", $0) }, read: { "\($0.stallTimeoutSeconds)" },
              meaning: { secondsMeaning($0, range: 0.1...86_400) }),
    FieldCase(field: "seed", document: { top("seed", $0) }, read: { "\($0.seed)" },
              meaning: { integerMeaning($0, range: 0...Int.max) }),
    FieldCase(field: "virtual_nodes", document: { top("virtual_nodes", $0) }, read: { "\($0.virtualNodes!)" },
              meaning: { integerMeaning($0, range: 1...4096) }),
    FieldCase(field: "min_nodes", document: { top("min_nodes", $0) }, read: { "\($0.minNodes!)" },
              meaning: { integerMeaning($0, range: 1...4096) }),
    FieldCase(field: "sample_every", document: { top("sample_every", $0) }, read: { "\($0.sampleEvery)" },
              meaning: { integerMeaning($0, range: 0...Int.max) }),
    FieldCase(field: "mem_node", document: { top("mem_node", $0) }, read: { "\($0.memory)" }, meaning: { memNodeMeaning($0) }),
    FieldCase(field: "workload.cs_lines", document: { top("workload", "\n  cs_lines: \($0)") },
              read: { $0.workloads[0].csLines.map(String.init) ?? "none" }, meaning: { integerMeaning($0, range: 0...65_536) }),
    FieldCase(field: "workload.cs_ns", document: { top("workload", "\n  cs_ns: [\($0)]") },
              read: { $0.workloads[0].csNanoseconds.map(String.init) ?? "none" }, meaning: { integerMeaning($0, range: 0...1_000_000_000) }),
    FieldCase(field: "workload.ncs_ns", document: { top("workload", "\n  ncs_ns: \($0)") },
              read: { "\($0.workloads[0].ncsNanoseconds)" }, meaning: { integerMeaning($0, range: 0...1_000_000_000) }),
    FieldCase(field: "workload.ncs_random", document: { top("workload", "\n  ncs_random: \($0)") },
              read: { "\($0.workloads[0].ncsRandom)" }, meaning: { booleanMeaning($0) }),
    FieldCase(field: "report.figures", document: { top("report", "\n  figures: [\($0)]") }, read: { "\($0.figures)" },
              meaning: { $0 == "~" ? .refused("no value") : ($0.hasPrefix("!!") ? .refused("tags") : .refused("unknown figure")) }),
]

@Suite("Field: YAML 1.1 surprises")
struct YAMLSurpriseTests {
    @Test("every field x every YAML 1.1 surprise: the obvious value or one line", arguments: fieldCases.indices)
    func testEverySurpriseInEveryField(index: Int) throws {
        let fieldCase = fieldCases[index]
        for surprise in surprises {
            let text = fieldCase.document(surprise)
            let meaning = fieldCase.meaning(surprise)
            do {
                let experiment = try Experiment.parse(text, file: "s.yaml")
                let got = fieldCase.read(experiment)
                switch meaning {
                case let .value(expected):
                    #expect(got == expected, "\(fieldCase.field): \(surprise) read as \(got), expected \(expected)")
                case .refused:
                    Issue.record("\(fieldCase.field): \(surprise) accepted as \(got), expected \(meaning)")
                }
            } catch let e as ExperimentFileError {
                switch meaning {
                case .value:
                    Issue.record("\(fieldCase.field): \(surprise) refused (\(e)), expected \(meaning)")
                case let .refused(mention):
                    #expect(!e.description.contains("\n"))
                    #expect(e.description.hasPrefix("s.yaml: "))
                    // Tags are refused by the reader before any field is known; every other
                    // refusal names the field.
                    if mention != "tags" {
                        #expect(e.description.contains("field '\(fieldCase.field)'"), "\(surprise): \(e)")
                    }
                    #expect(e.description.contains(mention), "\(fieldCase.field): \(surprise): \(e)")
                }
            }
        }
    }

    @Test func testTheFieldCasesReadAsAPersonReadsThem() throws {
        let seed = try Experiment.load(path: fieldFolder + "/seed-leading-zero.yaml")
        #expect(seed.seed == 10)
        let memNode = try Experiment.load(path: fieldFolder + "/mem-node-integer.yaml")
        #expect(memNode.memory == .node(0))
        let repeats = try Experiment.parse("locks: [tas]\nthreads: [1]\nrepeats: 08\n", file: "r.yaml")
        #expect(repeats.repeats == 8)
    }

    @Test func testEveryShippedExperimentReadsTheSameAsBefore() throws {
        // The shipped files use plain decimal numbers and words: the new reader must give them the
        // values they always had (a regression guard on the change of resolver).
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Experiments").path
        let quick = try Experiment.load(path: folder + "/quick.yaml")
        #expect(quick.name == "quick")
        #expect(quick.repeats >= 1 && quick.durationSeconds > 0)
        for file in try FileManager.default.contentsOfDirectory(atPath: folder) where file.hasSuffix(".yaml") {
            _ = try Experiment.load(path: folder + "/" + file)
        }
    }

    @Test func testNumbersBeyondIntAreOneLine() throws {
        for text in ["seed: 99999999999999999999", "repeats: 1e30", "duration_s: 1e400", "workload:\n  cs_ns: [-1e19]"] {
            do {
                _ = try Experiment.parse("locks: [tas]\nthreads: [1]\n\(text)\n", file: "big.yaml")
                Issue.record("accepted \(text)")
            } catch let e as ExperimentFileError {
                #expect(!e.description.contains("\n"))
                #expect(e.description.contains("field '"), "\(e)")
            }
        }
    }
}
