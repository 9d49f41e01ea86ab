// swift-tools-version:6.1
// Micro-benchmarks of Arbor's kernels (ordo-one/benchmark). A package of its own so that the main
// package's `swift test` never builds them. Run: `cd Benchmarks && swift package benchmark`.
import PackageDescription

let package = Package(
    name: "ArborBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named explicitly: a path dependency is otherwise known by its folder name, which is the
        // checkout's (any name), not "Arbor".
        .package(name: "Arbor", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "ArborKernels",
            dependencies: [
                .product(name: "Arbor", package: "Arbor"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/ArborKernels",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
