// Tidy CSV out: plain ASCII, '.' decimals, a header once, rows appended and flushed (and fsynced)
// as each run finishes, so an interrupted sweep loses no finished row.
//
// Every CSV the lab writes (runs.csv, threads.csv, `list --csv`, `plan --csv`) goes through
// `CSVFormat`, which quotes and escapes with yaslab/CSV.swift: RFC 4180 (a field holding a comma,
// a double quote, CR or LF is quoted, its quotes doubled), lines ended by LF, which Python's csv
// module, pandas and spreadsheets all read. Reading back (resume, tests) uses the same package.

import CSV
import Foundation

/// The lab's one CSV writer and reader.
public enum CSVFormat {
    /// One record, without its line end. Non-ASCII characters become '?' so files stay plain ASCII.
    public static func line(_ fields: [String]) -> String {
        let stream = OutputStream(toMemory: ())
        stream.open()
        defer { stream.close() }
        // Writing to memory cannot fail: a failure here is a bug in the lab, not bad input.
        let writer = try! CSVWriter(stream: stream)
        try! writer.write(row: fields.map(asciiOnly))
        writer.stream.close()
        let data = stream.property(forKey: .dataWrittenToMemoryStreamKey) as? Data ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// A whole table: the header and the rows, each line ended by LF.
    public static func table(header: [String], rows: [[String]]) -> String {
        ([header] + rows).map { line($0) + "\n" }.joined()
    }

    /// Every record of `text` (quoted fields may hold commas, quotes and line ends).
    public static func records(_ text: String) throws -> [[String]] {
        let reader = try CSVReader(string: text)
        var result: [[String]] = []
        while let row = reader.next() { result.append(row) }
        if let error = reader.error { throw LabError.io("malformed CSV: \(error)") }
        // A file ending in a line end has no empty last record.
        if result.last == [""] { result.removeLast() }
        return result
    }

    static func asciiOnly(_ field: String) -> String {
        field.unicodeScalars.allSatisfy(\.isASCII)
            ? field : String(field.unicodeScalars.map { $0.isASCII ? Character($0) : "?" })
    }
}

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
        let line = CSVFormat.line(fields) + "\n"
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
        // The header is the first line (the lab's column names hold no quotes or line ends).
        guard let first = text.split(separator: "\n", omittingEmptySubsequences: false).first, !first.isEmpty else {
            return nil
        }
        return try CSVFormat.records(String(first)).first
    }
}

/// Reads a CSV written by `CSVAppender` (header + rows) into dictionaries. A record with another
/// field count than the header (a torn line) is skipped.
public func readCSV(path: String) throws -> (header: [String], rows: [[String: String]]) {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw LabError.io("cannot read \(path)") }
    let records = try CSVFormat.records(text)
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
