// swift-tools-version:6.1
// Arbor: tree-based deep retrieval (TDM/JTM) on LMDB and OpenBLAS.
// Module layout and the direction of dependencies: README.md, "Layout".
import PackageDescription

let package = Package(
    name: "Arbor",
    platforms: [.macOS(.v15)],
    products: [
        // Serving: open an index and search it (no training code linked).
        .library(name: "ArborEngine", targets: ["ArborEngine"]),
        // Everything: serving, training, data readers, evaluation and the experiment pipelines.
        .library(name: "Arbor", targets: [
            "ArborCore", "ArborStore", "ArborMath", "ArborTree", "ArborInference", "ArborRetrieval", "ArborEngine",
            "ArborNN", "ArborModels", "ArborData", "ArborEval", "ArborPipelines", "ArborInterchange",
        ]),
        // The HTTP service over the front door (`arbor serve`).
        .library(name: "ArborServe", targets: ["ArborServe"]),
        .executable(name: "arbor", targets: ["arbor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // System libraries: module maps only.
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // Dot-product kernels (portable, AVX2 + FMA, AVX-512F) chosen once by CPU features:
        // per-function target attributes, no -m flags.
        .target(name: "CArborKernels"),
        // Upgrades OpenBLAS from a generic fallback core (a CPU newer than the OpenBLAS release) to
        // the AVX2 or AVX-512 kernels the CPU can run; symbols looked up at run time.
        .target(name: "CArborBLASCore"),

        // Serving, bottom to top: each target depends only on targets above it in this list.
        .target(name: "ArborCore"),
        .target(name: "ArborStore", dependencies: ["ArborCore", "CLMDB"]),
        .target(name: "ArborMath", dependencies: ["ArborCore", "COpenBLAS", "CArborKernels", "CArborBLASCore"]),
        .target(name: "ArborTree", dependencies: ["ArborCore", "ArborStore", "ArborMath"]),
        .target(name: "ArborInference", dependencies: ["ArborCore", "ArborMath", "ArborTree"]),
        .target(name: "ArborRetrieval", dependencies: [
            "ArborCore", "ArborStore", "ArborMath", "ArborTree", "ArborInference", "COpenBLAS",
            "CArborKernels",
        ]),
        .target(name: "ArborEngine", dependencies: ["ArborCore", "ArborMath", "ArborTree", "ArborInference", "ArborRetrieval"]),
        // Models from elsewhere: safetensors in and out of an index; Parquet tables (tree assignments) in.
        .target(name: "ArborInterchange", dependencies: ["ArborCore", "ArborStore", "ArborMath", "ArborTree", "ArborInference"]),

        // The HTTP service (`arbor serve`): JSON search, health, Prometheus metrics, hot reload.
        .target(name: "ArborServe", dependencies: [
            "ArborCore", "ArborEngine",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),

        // Training and evaluation.
        .target(name: "ArborNN", dependencies: ["ArborCore", "ArborMath"]),
        .target(name: "ArborModels", dependencies: ["ArborCore", "ArborMath", "ArborNN", "ArborTree", "ArborInference"]),
        .target(name: "ArborData", dependencies: ["ArborCore"]),
        // ArborMath: the runner's query threads fan out through BLAS.concurrentPerform.
        .target(name: "ArborEval", dependencies: ["ArborCore", "ArborMath"]),
        .target(name: "ArborPipelines", dependencies: [
            "ArborCore", "ArborMath", "ArborTree", "ArborInference", "ArborRetrieval", "ArborEngine", "ArborNN",
            "ArborModels", "ArborData", "ArborEval",
        ]),
        .executableTarget(name: "arbor", dependencies: [
            "ArborCore", "ArborMath", "ArborTree", "ArborInference", "ArborRetrieval", "ArborEngine", "ArborNN",
            "ArborModels", "ArborData", "ArborEval", "ArborPipelines", "ArborServe",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            "ArborInterchange",
        ]),

        // Contract checks shared by the test targets (not in the library product).
        .target(name: "ArborTestSupport", dependencies: ["ArborCore"], path: "Tests/ArborTestSupport"),

        .testTarget(name: "ArborCoreTests", dependencies: ["ArborCore"]),
        .testTarget(name: "ArborStoreTests", dependencies: ["ArborStore"]),
        .testTarget(name: "ArborMathTests", dependencies: ["ArborMath"]),
        .testTarget(name: "ArborNNTests", dependencies: ["ArborNN", "ArborCore"]),
        .testTarget(name: "ArborTreeTests", dependencies: ["ArborTree", "ArborMath", "ArborStore"]),
        .testTarget(name: "ArborModelsTests", dependencies: [
            "ArborCore", "ArborModels", "ArborInference", "ArborNN", "ArborTree", "ArborMath", "ArborRetrieval", "ArborData",
            "ArborEval", "ArborPipelines", "ArborEngine",
        ]),
        .testTarget(name: "ArborRetrievalTests", dependencies: [
            "ArborRetrieval", "ArborInference", "ArborTree", "ArborMath", "ArborStore", "ArborData", "CArborKernels",
            "ArborTestSupport",
        ]),
        .testTarget(name: "ArborEngineTests", dependencies: ["ArborEngine", "ArborRetrieval", "ArborInference", "ArborMath", "ArborTree"]),
        .testTarget(name: "ArborServeTests", dependencies: [
            "ArborServe", "ArborEngine", "ArborCore", "ArborMath", "ArborTree",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
        .testTarget(name: "ArborDataTests", dependencies: ["ArborData"]),
        .testTarget(name: "ArborEvalTests", dependencies: [
            "ArborEval", "ArborPipelines", "ArborRetrieval", "ArborInference", "ArborModels", "ArborData", "ArborTree",
            "ArborMath", "ArborNN",
        ]),
        .testTarget(name: "ArborCLITests", dependencies: ["arbor", "ArborCore"]),
        .testTarget(name: "ArborInterchangeTests", dependencies: [
            "ArborInterchange", "ArborInference", "ArborTree", "ArborMath", "ArborCore", "ArborRetrieval", "ArborEngine",
        ]),
    ]
)
