// Property tests of the experiment-file parser: whatever bytes it is given, Experiment.parse either
// returns an experiment or throws ExperimentFileError (one line, naming the file), and planning a
// parsed experiment on this machine either works or throws ExperimentFileError too. Never another
// error, never a crash (a trap ends the test process), never a hang (the time limit).
//
// Inputs: every shipped Experiments/*.yaml cut at every byte offset, and seeded random mutations of
// them (bytes replaced, inserted, deleted, lines duplicated or swapped, numbers made extreme). The
// generator is SplitMix64 with a fixed seed: a failure names the seed and the mutant number, and
// the same run reproduces it. LOCKLAB_FUZZ_MUTANTS=200000 runs more mutants (about 3 minutes).
//
// Found so far: TOMLKit's toml++ aborted the process on `[` followed by a newline and on `x = [}]`
// (experiment files were TOML then; they are YAML read with Yams now, see ConfigValue.swift), and
// values quoted in errors could carry a newline into the one-line message (ExperimentFileError.oneLine).

import Foundation
import Testing
@testable import LockLab

private let experimentsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Experiments")

/// The shipped experiment files, name and bytes.
func shippedExperimentFiles() throws -> [(name: String, data: Data)] {
    let names = try FileManager.default.contentsOfDirectory(atPath: experimentsDirectory.path)
        .filter { $0.hasSuffix(".yaml") }.sorted()
    return try names.map { ($0, try Data(contentsOf: experimentsDirectory.appendingPathComponent($0))) }
}

/// What feeding `data` to the parser (and the planner) gave, or the unexpected error.
enum ParseOutcome {
    case parsed
    case rejected(ExperimentFileError)
    case unexpected(Error)
}

func feed(_ data: Data, file: String, topology: Topology) -> ParseOutcome {
    do {
        let experiment = try Experiment.parse(data: data, file: file)
        _ = try experiment.matrix(on: topology)
        return .parsed
    } catch let e as ExperimentFileError {
        return .rejected(e)
    } catch {
        return .unexpected(error)
    }
}

/// Checks one input; records an issue naming `what` (how to reproduce it) if the property fails.
func checkParserProperty(_ data: Data, file: String, topology: Topology, what: @autoclosure () -> String) -> ParseOutcome {
    let outcome = feed(data, file: file, topology: topology)
    switch outcome {
    case .parsed:
        break
    case let .rejected(e):
        if !e.description.hasPrefix(file + ": ") || e.description.contains("\n") {
            Issue.record("\(what()): error is not one line naming the file: \(e.description.debugDescription)")
        }
    case let .unexpected(error):
        Issue.record("\(what()): threw \(type(of: error)) instead of ExperimentFileError: \(error)")
    }
    return outcome
}

/// Seeded mutations of a file's bytes.
struct ExperimentMutator {
    var random: SplitMix64
    /// Bytes that mean something to YAML or to our fields.
    static let alphabet = Array("[]{}=,.#\n\r\t\"' 0123456789-+_:xeEinftrualsep\\&*!|>%@`?~".utf8)
    static let extremes = ["0", "-1", "9223372036854775807", "-9223372036854775808", "99999999999999999999",
                           "1e308", "-1e308", "nan", "inf", "-inf", "0.0000001", "\"\"", "[]", "\"all\"", "\"8192x\"",
                           "\"1..8192x\"", "\"1..all step 0\"", "true", "{}"]

    init(seed: UInt64) { random = SplitMix64(seed: seed) }

    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(random.next() % UInt64(n)) }

    mutating func byte() -> UInt8 {
        random.next() % 4 == 0 ? UInt8(truncatingIfNeeded: random.next()) : Self.alphabet[below(Self.alphabet.count)]
    }

    mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0..<(1 + below(4)) {
            switch below(7) {
            case 0 where !bytes.isEmpty: // replace a byte
                bytes[below(bytes.count)] = byte()
            case 1: // insert a few bytes
                let at = below(bytes.count + 1)
                bytes.insert(contentsOf: (0..<(1 + below(8))).map { _ in byte() }, at: at)
            case 2 where !bytes.isEmpty: // delete a range
                let at = below(bytes.count)
                bytes.removeSubrange(at..<min(bytes.count, at + 1 + below(24)))
            case 3: // duplicate a line
                var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
                if !lines.isEmpty {
                    let i = below(lines.count)
                    lines.insert(lines[i], at: below(lines.count + 1))
                }
                bytes = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
            case 4: // swap two lines
                var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
                if lines.count > 1 { lines.swapAt(below(lines.count), below(lines.count)) }
                bytes = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
            default: // replace a value (after some '=') or a number with an extreme one
                let equals = bytes.indices.filter { bytes[$0] == UInt8(ascii: "=") }
                guard let eq = equals.isEmpty ? nil : equals[below(equals.count)] else { break }
                var end = eq + 1
                while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
                bytes.replaceSubrange((eq + 1)..<end, with: Array((" " + Self.extremes[below(Self.extremes.count)]).utf8))
            }
        }
        return bytes
    }
}

@Suite("Experiment file properties")
struct ExperimentFuzzTests {
    @Test("every shipped file cut at every byte offset: parsed or one-line ExperimentFileError",
          .timeLimit(.minutes(5)))
    func testTruncatedShippedFilesNeverCrashOrThrowAnythingElse() throws {
        let topology = try Topology.load()
        let files = try shippedExperimentFiles()
        #expect(files.count >= 4)
        // Under ThreadSanitizer every 3rd offset (plus the last few): the parser runs ~10x slower.
        let stride = ThreadSanitizer.isActive ? 3 : 1
        var parsed = 0
        var rejected = 0
        for (name, data) in files {
            let offsets = Set(Swift.stride(from: 0, through: data.count, by: stride)).union(max(0, data.count - 4)...data.count)
            for n in offsets.sorted() {
                switch checkParserProperty(data.prefix(n), file: name, topology: topology, what: "\(name) cut at byte \(n)") {
                case .parsed: parsed += 1
                case .rejected: rejected += 1
                case .unexpected: break
                }
            }
            // The whole file parses.
            if case .rejected(let e) = feed(data, file: name, topology: topology) { Issue.record("\(name): \(e)") }
        }
        // Both outcomes happen: a cut at a line end often leaves a complete file.
        #expect(parsed > 0 && rejected > 0, "parsed \(parsed), rejected \(rejected)")
    }

    /// LOCKLAB_FUZZ_SEED=N tries another stream (failures print the seed to reproduce with).
    static let seed: UInt64 = ProcessInfo.processInfo.environment["LOCKLAB_FUZZ_SEED"].flatMap { UInt64($0) } ?? 0x10C4_1AB5
    @Test("seeded random mutations of the shipped files: parsed or one-line ExperimentFileError",
          .timeLimit(.minutes(5)))
    func testMutatedShippedFilesNeverCrashOrThrowAnythingElse() throws {
        let topology = try Topology.load()
        let files = try shippedExperimentFiles()
        var mutator = ExperimentMutator(seed: Self.seed)
        let mutants = ThreadSanitizer.scaled(
            ProcessInfo.processInfo.environment["LOCKLAB_FUZZ_MUTANTS"].flatMap { Int($0) } ?? 4000, divisor: 8)
        var rejected = 0
        for i in 0..<mutants {
            let (name, data) = files[i % files.count]
            let bytes = mutator.mutate(Array(data))
            let outcome = checkParserProperty(
                Data(bytes), file: name, topology: topology,
                what: "seed \(Self.seed) mutant \(i) of \(name): \(String(decoding: bytes, as: UTF8.self).debugDescription)")
            if case .rejected = outcome { rejected += 1 }
        }
        #expect(rejected > mutants / 4, "only \(rejected) of \(mutants) mutants rejected: are the mutations biting?")
    }

    @Test func testNonUTF8BytesAreRejectedNamingTheFile() throws {
        let outcome = feed(Data([0x6E, 0x61, 0x6D, 0x65, 0x20, 0x3D, 0x20, 0xFF, 0xFE]), file: "bad.yaml",
                           topology: try Topology.load())
        guard case let .rejected(e) = outcome else {
            Issue.record("accepted or unexpected: \(outcome)")
            return
        }
        #expect(e.description == "bad.yaml: is not UTF-8 text")
    }
}
