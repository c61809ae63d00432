// Plain-text tables for the terminal.

/// Columns two spaces apart, header first; numeric columns right-aligned, text left-aligned.
func textTable(header: [String], rows: [[String]]) -> String {
    let widths = header.indices.map { column in
        ([header[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0
    }
    let numeric = header.indices.map { column in
        rows.allSatisfy { row in row[column].isEmpty || Double(row[column].trimmingCharacters(in: ["x", "%"])) != nil }
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
