// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "LockLab",
    products: [
        .executable(name: "locklab", targets: ["locklab"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/yaslab/CSV.swift", from: "2.5.2"),
    ],
    targets: [
        // The thin C layer: atomics with explicit orders, pause, futex, pinning, cycle counter.
        .target(name: "CShims", path: "CShims"),
        // System libraries through pkg-config.
        .systemLibrary(name: "CHwloc", path: "Sources/CHwloc", pkgConfig: "hwloc",
                       providers: [.apt(["libhwloc-dev"])]),
        .systemLibrary(name: "CNuma", path: "Sources/CNuma", pkgConfig: "numa",
                       providers: [.apt(["libnuma-dev"])]),
        // No pkgConfig: ck.pc's Cflags carry -D__x86_64__, which SwiftPM refuses with a warning on
        // every build; the headers are in /usr/include and the module map links libck.
        .systemLibrary(name: "CCK", path: "Sources/CCK", providers: [.apt(["libck-dev"])]),
        // liburcu's four flavours (liburcu-memb, -qsbr, -mb, -bp) and its lock-free hash table
        // (liburcu-cds, cds_lfht: the urcu-lfht entry), linked by the module map; the shim
        // calls the shared library's exported functions (no _LGPL_SOURCE: nothing inlined).
        .systemLibrary(name: "CURCU", path: "Sources/CURCU", providers: [.apt(["liburcu-dev"])]),
        // The build identity (a hash of every file that makes the build, and the commit), taken at
        // build time into a generated source of the library: Plugins/BuildIdentityPlugin.
        .executableTarget(name: "locklab-build-identity", path: "Plugins/BuildIdentityTool"),
        .plugin(name: "BuildIdentityPlugin", capability: .buildTool(),
                dependencies: ["locklab-build-identity"], path: "Plugins/BuildIdentityPlugin"),
        // The library: locks, topology, harness, results. The hot loop and the locks live in this
        // one module so each (lock, workload) pair specialises (docs/performance.md, "Specialisation across modules").
        .target(
            name: "LockLab",
            dependencies: [
                "CShims", "CHwloc", "CNuma", "CCK", "CURCU",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "CSV", package: "CSV.swift"),
            ],
            plugins: ["BuildIdentityPlugin"]
        ),
        // The CLI: one file per subcommand.
        .executableTarget(
            name: "locklab",
            dependencies: [
                "LockLab",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "LockLabTests", dependencies: ["LockLab", "CShims", "CURCU"]),
    ],
    swiftLanguageModes: [.v5]
)
