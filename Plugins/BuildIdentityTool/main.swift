// locklab-build-identity ROOT OUTPUT FILE...: run by the BuildIdentity plugin at build time.
// Writes OUTPUT, a Swift file with
//  - sourceDigest: SHA-256 (hex) over the FILEs (paths relative to ROOT, in the order given): for
//    each, its path, a NUL, its size in decimal, a NUL, its bytes. Any byte of any file that goes
//    into the build changes it; a touch (mtime) or a file elsewhere (README, results) does not.
//  - gitCommit, gitDirty: HEAD and whether those files differ from it (git, run here at build time).
//  - compilerVersion: the exact version of the compiler that compiles OUTPUT (an #if ladder).
// Also `locklab-build-identity --digest ROOT FILE...` prints the digest alone (for tests).

import Foundation

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("locklab-build-identity: \(message)\n".utf8))
    exit(2)
}

var arguments = Array(CommandLine.arguments.dropFirst())
let digestOnly = arguments.first == "--digest"
if digestOnly { arguments.removeFirst() }
guard arguments.count >= (digestOnly ? 1 : 2) else {
    fail("usage: locklab-build-identity ROOT OUTPUT FILE... | --digest ROOT FILE...")
}
let root = URL(fileURLWithPath: arguments.removeFirst())
let output = digestOnly ? nil : arguments.removeFirst()
let files = arguments

var hasher = SHA256()
for file in files {
    guard let bytes = FileManager.default.contents(atPath: root.appendingPathComponent(file).path) else {
        fail("cannot read \(file)")
    }
    hasher.update(Array(file.utf8) + [0] + Array(String(bytes.count).utf8) + [0])
    hasher.update(Array(bytes))
}
let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
if digestOnly {
    print(digest)
    exit(0)
}

/// Runs git in ROOT (at build time only); nil when git or the repository is missing.
func git(_ args: [String]) -> String? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["git", "--no-optional-locks", "-C", root.path] + args
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return nil }
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

let commit = git(["rev-parse", "HEAD"]) ?? "unknown"
let dirty = commit != "unknown"
    && !(git(["status", "--porcelain", "--", "Sources", "CShims", "Plugins", "Package.swift"]) ?? "").isEmpty

var ladder: [String] = []
for major in stride(from: 7, through: 5, by: -1) {
    for minor in stride(from: 12, through: 0, by: -1) {
        for patch in stride(from: 9, through: 0, by: -1) {
            let version = "\(major).\(minor).\(patch)"
            ladder.append("\(ladder.isEmpty ? "#if" : "#elseif") compiler(>=\(version))")
            ladder.append("    static let compilerVersion = \"\(version)\"")
        }
    }
}
ladder += ["#else", "    static let compilerVersion = \"older than 5.0\"", "#endif"]

let source = """
    // Generated at build time by Plugins/BuildIdentityTool (the BuildIdentity plugin); do not edit.

    enum GeneratedBuildIdentity {
        /// SHA-256 over the \(files.count) files that make the build (see Plugins/BuildIdentityTool).
        static let sourceDigest = "\(digest)"
        static let sourceFiles = \(files.count)
        /// The checkout's HEAD when this was built, and whether the build's files differed from it.
        static let gitCommit = "\(commit)"
        static let gitDirty = \(dirty)
    \(ladder.map { "    " + $0 }.joined(separator: "\n"))
    }

    """
do {
    try Data(source.utf8).write(to: URL(fileURLWithPath: output!), options: .atomic)
} catch {
    fail("cannot write \(output!): \(error)")
}

/// SHA-256 (FIPS 180-4), enough for hashing a few hundred kilobytes of sources at build time.
struct SHA256 {
    private var state: [UInt32] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]
    private var buffer: [UInt8] = []
    private var length: UInt64 = 0
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    mutating func update(_ bytes: [UInt8]) {
        length &+= UInt64(bytes.count)
        buffer += bytes
        var start = 0
        while buffer.count - start >= 64 {
            compress(buffer[start..<start + 64])
            start += 64
        }
        buffer.removeFirst(start)
    }

    mutating func finalize() -> [UInt8] {
        let bits = length &* 8
        var tail: [UInt8] = [0x80]
        while (buffer.count + tail.count) % 64 != 56 { tail.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
        let saved = length
        update(tail)
        length = saved
        return state.flatMap { word in [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: word >> UInt32($0)) } }
    }

    private mutating func compress(_ block: ArraySlice<UInt8>) {
        var w = [UInt32](repeating: 0, count: 64)
        let base = block.startIndex
        for i in 0..<16 {
            w[i] = UInt32(block[base + 4 * i]) << 24 | UInt32(block[base + 4 * i + 1]) << 16
                | UInt32(block[base + 4 * i + 2]) << 8 | UInt32(block[base + 4 * i + 3])
        }
        func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { x >> n | x << (32 - n) }
        for i in 16..<64 {
            let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
            let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
            w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
        }
        var (a, b, c, d, e, f, g, h) = (state[0], state[1], state[2], state[3], state[4], state[5], state[6], state[7])
        for i in 0..<64 {
            let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
            let ch = (e & f) ^ (~e & g)
            let t1 = h &+ s1 &+ ch &+ SHA256.k[i] &+ w[i]
            let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
            let maj = (a & b) ^ (a & c) ^ (b & c)
            let t2 = s0 &+ maj
            (h, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
        }
        for (i, v) in [a, b, c, d, e, f, g, h].enumerated() { state[i] = state[i] &+ v }
    }
}
