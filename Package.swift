// swift-tools-version:6.1
// Arbor: tree-based deep retrieval (TDM/JTM) on LMDB and OpenBLAS.
// Module layout and the direction of dependencies: see DESIGN notes in README.md.
import PackageDescription

let package = Package(
    name: "Arbor",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Arbor", targets: [
            "ArborCore", "ArborStore", "ArborMath", "ArborNN", "ArborTree", "ArborModels",
            "ArborRetrieval", "ArborData", "ArborEval",
        ]),
        .executable(name: "arbor", targets: ["arbor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // System libraries: module maps only.
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),

        .target(name: "ArborCore"),
        .target(name: "ArborStore", dependencies: ["ArborCore", "CLMDB"]),
        .target(name: "ArborMath", dependencies: ["ArborCore", "COpenBLAS"]),
        .target(name: "ArborNN", dependencies: ["ArborCore", "ArborMath"]),
        .target(name: "ArborTree", dependencies: ["ArborCore", "ArborStore", "ArborMath"]),
        .target(name: "ArborModels", dependencies: ["ArborCore", "ArborMath", "ArborNN", "ArborTree"]),
        .target(name: "ArborRetrieval", dependencies: ["ArborCore", "ArborMath", "ArborTree", "ArborModels"]),
        .target(name: "ArborData", dependencies: ["ArborCore"]),
        .target(name: "ArborEval", dependencies: [
            "ArborCore", "ArborMath", "ArborNN", "ArborTree", "ArborModels", "ArborRetrieval", "ArborData",
        ]),
        .executableTarget(name: "arbor", dependencies: [
            "ArborCore", "ArborStore", "ArborMath", "ArborTree", "ArborModels", "ArborRetrieval",
            "ArborData", "ArborEval", "ArborNN",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Contract checks shared by the test targets (not in the library product).
        .target(name: "ArborTestSupport", dependencies: ["ArborCore"], path: "Tests/ArborTestSupport"),

        .testTarget(name: "ArborCoreTests", dependencies: ["ArborCore"]),
        .testTarget(name: "ArborStoreTests", dependencies: ["ArborStore"]),
        .testTarget(name: "ArborMathTests", dependencies: ["ArborMath"]),
        .testTarget(name: "ArborNNTests", dependencies: ["ArborNN"]),
        .testTarget(name: "ArborTreeTests", dependencies: ["ArborTree", "ArborMath"]),
        .testTarget(name: "ArborModelsTests", dependencies: [
            "ArborModels", "ArborNN", "ArborTree", "ArborMath", "ArborRetrieval", "ArborData", "ArborEval",
        ]),
        .testTarget(name: "ArborRetrievalTests", dependencies: [
            "ArborRetrieval", "ArborTree", "ArborModels", "ArborMath", "ArborTestSupport",
        ]),
        .testTarget(name: "ArborDataTests", dependencies: ["ArborData"]),
        .testTarget(name: "ArborEvalTests", dependencies: ["ArborEval", "ArborRetrieval", "ArborData"]),
        .testTarget(name: "ArborCLITests", dependencies: ["arbor"]),
    ]
)
