// swift-tools-version:6.1
// libFuzzer entry points for Arbor's readers; not part of the main build or `swift test`.
// Built and run by tools/fuzz.sh (swiftc -sanitize=fuzzer,address on Linux).
import PackageDescription

let package = Package(
    name: "ArborFuzz",
    dependencies: [.package(name: "Arbor", path: "..")],
    targets: [
        .executableTarget(name: "ArborFuzz", dependencies: [.product(name: "Arbor", package: "Arbor")]),
    ]
)
