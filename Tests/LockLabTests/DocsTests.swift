// The repository's docs and code comments point only at files in the repository (issue 15: code
// cited notes that a reader of the repository does not have).

import Foundation
import Testing

private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

@Suite("Docs")
struct DocsTests {
    @Test func testEveryMarkdownFileNamedInCodeAndDocsIsInTheRepository() throws {
        let fm = FileManager.default
        var present = Set<String>()
        var scanned: [String] = []
        let roots = ["Sources", "CShims", "Plugins", "Tests", "docs", "Experiments", "Models", "results/reference"]
        for top in roots {
            guard let walker = fm.enumerator(atPath: root.appendingPathComponent(top).path) else { continue }
            while let item = walker.nextObject() as? String {
                let path = top + "/" + item
                if path.hasSuffix(".md") { present.insert((path as NSString).lastPathComponent) }
                if [".swift", ".h", ".c", ".md", ".py", ".pml", ".yaml"].contains(where: path.hasSuffix),
                   !path.contains("/figures/") {
                    scanned.append(path)
                }
            }
        }
        present.insert("README.md")
        scanned += ["README.md", "Package.swift", "Makefile"]
        let pattern = try NSRegularExpression(pattern: "[A-Za-z0-9_-]+\\.md\\b")
        var missing: [String] = []
        for path in scanned {
            guard let text = try? String(contentsOf: root.appendingPathComponent(path), encoding: .utf8) else { continue }
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let name = String(text[Range(match.range, in: text)!])
                if !present.contains(name) { missing.append("\(path): \(name)") }
            }
        }
        #expect(missing.isEmpty, "names of files the repository does not have: \(Set(missing).sorted())")
        let outside = "../" + "shared"
        let pointing = scanned.filter { path in
            (try? String(contentsOf: root.appendingPathComponent(path), encoding: .utf8))?.contains(outside) == true
        }
        #expect(pointing.isEmpty, "point outside the repository: \(pointing)")
    }
}
