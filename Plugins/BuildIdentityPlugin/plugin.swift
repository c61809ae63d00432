// The build identity, taken at build time: before the library compiles, this plugin has
// `locklab-build-identity` hash every file that goes into the build (Sources/, CShims/, Plugins/,
// Package.swift and, when present, Package.resolved, which pins the dependencies) and read the git
// commit, into a generated BuildIdentity.swift. SwiftPM reruns the command when any of those files,
// or the checkout's HEAD, changes, so the identity always names the code that was compiled. Nothing
// is read or spawned at run time (a run under `ulimit -v` must not fork git through Foundation).

import Foundation
import PackagePlugin

@main
struct BuildIdentityPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let files = Self.identityFiles(root: root)
        let output = context.pluginWorkDirectoryURL.appendingPathComponent("BuildIdentity.swift")
        return [.buildCommand(
            displayName: "Build identity: hashing \(files.count) files",
            executable: try context.tool(named: "locklab-build-identity").url,
            arguments: [root.path, output.path] + files,
            inputFiles: files.map { root.appendingPathComponent($0) } + Self.gitHeadFiles(root: root),
            outputFiles: [output])]
    }

    /// The files whose bytes make the build, relative to the package root, sorted. The same rule is
    /// restated by the test that recomputes the digest (BuildIdentityTests).
    static func identityFiles(root: URL) -> [String] {
        var files: [String] = []
        let fm = FileManager.default
        for folder in ["Sources", "CShims", "Plugins"] {
            guard let walker = fm.enumerator(atPath: root.appendingPathComponent(folder).path) else { continue }
            while let item = walker.nextObject() as? String {
                if item.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
                var isDirectory: ObjCBool = false
                let path = folder + "/" + item
                if fm.fileExists(atPath: root.appendingPathComponent(path).path, isDirectory: &isDirectory),
                   !isDirectory.boolValue {
                    files.append(path)
                }
            }
        }
        for file in ["Package.swift", "Package.resolved"]
        where fm.fileExists(atPath: root.appendingPathComponent(file).path) {
            files.append(file)
        }
        return files.sorted()
    }

    /// HEAD and the ref it names (loose or packed), so that a commit reruns the command.
    static func gitHeadFiles(root: URL) -> [URL] {
        let dotGit = root.appendingPathComponent(".git")
        var gitDir = dotGit
        if let text = try? String(contentsOf: dotGit, encoding: .utf8), text.hasPrefix("gitdir:") {
            // A worktree: `.git` is a file naming its git folder.
            let path = text.dropFirst("gitdir:".count).trimmingCharacters(in: .whitespacesAndNewlines)
            gitDir = URL(fileURLWithPath: path, relativeTo: root).standardizedFileURL
        }
        var commonDir = gitDir
        if let text = try? String(contentsOf: gitDir.appendingPathComponent("commondir"), encoding: .utf8) {
            let path = text.trimmingCharacters(in: .whitespacesAndNewlines)
            commonDir = URL(fileURLWithPath: path, relativeTo: gitDir.appendingPathComponent("x")).standardizedFileURL
        }
        let head = gitDir.appendingPathComponent("HEAD")
        var files: [URL] = []
        guard let text = try? String(contentsOf: head, encoding: .utf8) else { return files }
        files.append(head)
        if text.hasPrefix("ref:") {
            let ref = text.dropFirst("ref:".count).trimmingCharacters(in: .whitespacesAndNewlines)
            for candidate in [commonDir.appendingPathComponent(ref), commonDir.appendingPathComponent("packed-refs")]
            where FileManager.default.fileExists(atPath: candidate.path) {
                files.append(candidate)
            }
        }
        return files
    }
}
