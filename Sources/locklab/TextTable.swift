// Plain-text tables for the terminal.

/// Columns two spaces apart, header first; numeric columns right-aligned, text left-aligned.
func textTable(header: [String], rows: [[String]]) -> String {
    let widths = header.indices.map { column in
        ([header[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0
    }
    let numeric = header.indices.map { column in
        rows.allSatisfy { row in
            // A number, possibly with a unit after a space ("8.04 M", "850 ns") or an x or %.
            let first = row[column].split(separator: " ").first.map(String.init) ?? ""
            return row[column].isEmpty || row[column] == "-" || Double(first.trimmingCharacters(in: ["x", "%"])) != nil
        }
    }
    func line(_ cells: [String]) -> String {
        let padded = cells.indices.map { i -> String in
            let pad = String(repeating: " ", count: widths[i] - cells[i].count)
            return numeric[i] ? pad + cells[i] : cells[i] + pad
        }
        var text = padded.joined(separator: "  ")
        while text.hasSuffix(" ") { text.removeLast() }
        return text
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}

func plural(_ count: Int, _ noun: String) -> String {
    "\(count) \(noun)\(count == 1 ? "" : "s")"
}

/// A rate with a unit prefix that fits it, three significant digits: 8041234 -> "8.04 M",
/// 152000 -> "152 k", 35.2 -> "35.2". Collapsed runs (a few hundred ops/s) stay readable.
func siRate(_ value: Double) -> String {
    guard value.isFinite else { return "-" }
    for (prefix, scale) in [("G", 1e9), ("M", 1e6), ("k", 1e3)] where abs(value) >= scale * 0.9995 {
        return threeDigits(value / scale) + " " + prefix
    }
    return threeDigits(value)
}

/// A duration in ns with the unit that fits it: "850 ns", "12.3 us", "4.56 ms", "1.20 s".
func siNanoseconds(_ ns: Double) -> String {
    guard ns.isFinite else { return "-" }
    for (unit, scale) in [("s", 1e9), ("ms", 1e6), ("us", 1e3)] where abs(ns) >= scale * 0.9995 {
        return threeDigits(ns / scale) + " " + unit
    }
    return threeDigits(ns) + " ns"
}

private func threeDigits(_ x: Double) -> String {
    let a = abs(x)
    return String(format: a >= 99.95 ? "%.0f" : a >= 9.995 ? "%.1f" : "%.2f", x)
}

/// A table printed row by row as runs finish: the column widths are fixed before the first row,
/// from the header and `widest` (the widest cell each column will hold, e.g. the longest lock
/// label of the run), so every row lines up whatever the labels. Numeric columns right-aligned.
struct StreamedTable {
    let widths: [Int]
    let numeric: [Bool]

    init(header: [String], widest: [String], numeric: [Bool]) {
        widths = header.indices.map { max(header[$0].count, widest[$0].count) }
        self.numeric = numeric
    }

    func line(_ cells: [String]) -> String {
        var text = cells.indices.map { i -> String in
            let pad = String(repeating: " ", count: max(0, widths[i] - cells[i].count))
            return numeric[i] ? pad + cells[i] : cells[i] + pad
        }.joined(separator: "  ")
        while text.hasSuffix(" ") { text.removeLast() }
        return text
    }
}
