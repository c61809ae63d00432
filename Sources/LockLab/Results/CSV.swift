// Tidy CSV out: plain ASCII, '.' decimals, a header once, rows appended and flushed (and fsynced)
// as each run finishes, so an interrupted sweep loses no finished row.

import Foundation

/// A CSV file opened for appending. Creates it with `header` if absent; if present, its header
/// must match exactly (a different lab version's file is not silently extended).
public final class CSVAppender {
    public let path: String
    public let header: [String]
    private let fd: Int32

    public init(path: String, header: [String]) throws {
        self.path = path
        self.header = header
        let exists = FileManager.default.fileExists(atPath: path)
        if exists {
            let existing = try CSVAppender.readHeader(path: path)
            if let existing, existing != header {
                throw LabError.io("\(path) has a different header than this lab writes; use a new output folder")
            }
        }
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LabError.io("cannot open \(path): \(String(cString: strerror(errno)))") }
        let empty = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 == 0
        if !exists || empty {
            try append(header)
        } else {
            try repairTruncatedTail()
        }
    }

    deinit { close(fd) }

    /// Appends one row, flushed to the disk before returning.
    public func append(_ fields: [String]) throws {
        precondition(fields.count == header.count, "row has \(fields.count) fields, header \(header.count)")
        let line = fields.map(CSVAppender.escape).joined(separator: ",") + "\n"
        let bytes = Array(line.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LabError.io("cannot write \(path): \(String(cString: strerror(errno)))")
            }
            written += n
        }
        fsync(fd)
    }

    /// A crash mid-write can leave a last line without its newline: cut it off, keeping every
    /// complete row (the run it belonged to is simply not recorded, and runs again on resume).
    private func repairTruncatedTail() throws {
        guard let data = FileManager.default.contents(atPath: path), let last = data.last, last != UInt8(ascii: "\n") else {
            return
        }
        let keep = (data.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 }) ?? 0
        guard ftruncate(fd, off_t(keep)) == 0 else {
            throw LabError.io("cannot repair truncated \(path): \(String(cString: strerror(errno)))")
        }
    }

    static func readHeader(path: String) throws -> [String]? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw LabError.io("cannot read \(path)")
        }
        guard let first = text.split(separator: "\n", omittingEmptySubsequences: false).first, !first.isEmpty else {
            return nil
        }
        return first.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    }

    /// RFC 4180 quoting where needed; non-ASCII replaced so the file stays plain ASCII.
    static func escape(_ field: String) -> String {
        let ascii = String(field.unicodeScalars.map { $0.isASCII ? Character($0) : "?" })
        if ascii.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + ascii.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return ascii
    }
}

/// Reads a CSV written by `CSVAppender` (header + rows) into dictionaries. Tolerates quoted fields.
public func readCSV(path: String) throws -> (header: [String], rows: [[String: String]]) {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw LabError.io("cannot read \(path)") }
    var records: [[String]] = []
    var field = ""
    var record: [String] = []
    var quoted = false
    var iterator = text.makeIterator()
    var pending: Character? = nil
    while let c = pending ?? iterator.next() {
        pending = nil
        if quoted {
            if c == "\"" {
                if let n = iterator.next() {
                    if n == "\"" { field.append("\"") } else { quoted = false; pending = n }
                } else { quoted = false }
            } else { field.append(c) }
        } else if c == "\"" {
            quoted = true
        } else if c == "," {
            record.append(field); field = ""
        } else if c == "\n" {
            record.append(field); field = ""
            records.append(record); record = []
        } else if c != "\r" {
            field.append(c)
        }
    }
    if !field.isEmpty || !record.isEmpty { record.append(field); records.append(record) }
    guard let header = records.first else { return ([], []) }
    let rows = records.dropFirst().filter { $0.count == header.count }.map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
    return (header, rows)
}

/// Numbers as the CSV writes them: '.' decimals, no grouping, no exponent, at most `decimals`
/// decimals with trailing zeros trimmed. Non-finite values are written as an empty field.
public func csvNumber(_ x: Double, decimals: Int = 6) -> String {
    guard x.isFinite else { return "" }
    if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
    var s = String(format: "%.\(decimals)f", locale: Locale(identifier: "en_US_POSIX"), x)
    if s.contains(".") {
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
    }
    return s == "-0" ? "0" : s
}
