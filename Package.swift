// swift-tools-version:6.0
import PackageDescription

let nio: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
]

// Release builds skip the run-time exclusivity checks in our own modules: they were
// ~18 % of the instructions of an MQTT round trip (bench/NOTES.md §4). Debug builds,
// which the tests use, keep them.
let releaseSettings: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "nodemcu-host",
    products: [
        .executable(name: "nodemcu-host", targets: ["nodemcu-host"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
    ],
    targets: [
        // Lua 5.3 from Debian's liblua5.3-dev.
        .systemLibrary(name: "CLua", pkgConfig: "lua5.3", providers: [.apt(["liblua5.3-dev"])]),
        // libedit for line editing and history in the interactive REPL.
        .systemLibrary(name: "CEditLine", pkgConfig: "libedit", providers: [.apt(["libedit-dev"])]),
        // The only place a Lua error is raised (DESIGN.md, bridge rule 1).
        .target(name: "CLuaShim", dependencies: ["CLua"]),
        .target(name: "LuaBridge", dependencies: ["CLua", "CLuaShim"], swiftSettings: releaseSettings),
        // The simulated hardware and the runtime's one clock; no Lua, no network.
        .target(name: "Board", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        .target(
            name: "MQTT",
            dependencies: nio + [
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: releaseSettings
        ),
        // Lua sources that ship inside the binary (the 5.1 compatibility prelude, …).
        .target(
            name: "EmbeddedLua",
            path: "lua/runtime",
            resources: [.embedInCode("prelude.lua")]
        ),
        .target(
            name: "NodeMCU", dependencies: ["LuaBridge", "MQTT", "Board", "EmbeddedLua"] + nio,
            swiftSettings: releaseSettings
        ),
        .executableTarget(
            name: "nodemcu-host",
            dependencies: [
                "NodeMCU", "CEditLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ] + nio,
            swiftSettings: releaseSettings
        ),

        // Test support: a scripted fake MQTT broker, a mosquitto launcher, process helpers.
        .target(
            name: "TestSupport",
            dependencies: ["MQTT"] + nio,
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "LuaBridgeTests", dependencies: ["LuaBridge", "CLua"]),
        .testTarget(
            name: "MQTTTests",
            dependencies: ["MQTT", "TestSupport"] + nio
                + [.product(name: "NIOEmbedded", package: "swift-nio"),
                   .product(name: "NIOSSL", package: "swift-nio-ssl")]
        ),
        .testTarget(
            name: "NodeMCUTests",
            dependencies: ["NodeMCU", "LuaBridge", "TestSupport"] + nio
                + [.product(name: "NIOEmbedded", package: "swift-nio")]
        ),
        // Runs the real binary on scripts under lua/tests and examples/.
        .testTarget(name: "ScenarioTests", dependencies: ["TestSupport"]),

        // MQTT decoder fuzz target. A plain build makes a corpus replayer; `fuzz/run`
        // builds it with -sanitize=fuzzer,address -DFUZZING into .build-fuzz.
        .executableTarget(
            name: "MQTTDecoderFuzzer",
            dependencies: ["MQTT", .product(name: "NIOCore", package: "swift-nio")],
            path: "fuzz/Sources/MQTTDecoderFuzzer"
        ),
    ]
)
