// swift-tools-version:6.0
import PackageDescription

let nio: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
]

// No unsafe flags (they bar the package from being a dependency, e.g. of MQTTCore): the
// run-time exclusivity checks stay on in release builds too (cost: bench/NOTES.md §4).
let package = Package(
    name: "nodemcu-host",
    products: [
        .executable(name: "nodemcu-host", targets: ["nodemcu-host"]),
        // MQTT 3.1.1 packets, decoder and session state machine; NIOCore only.
        .library(name: "MQTTCore", targets: ["MQTTCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.0"),
    ],
    targets: [
        // Lua 5.3 from Debian's liblua5.3-dev.
        .systemLibrary(name: "CLua", pkgConfig: "lua5.3", providers: [.apt(["liblua5.3-dev"])]),
        // libedit for line editing and history in the interactive REPL.
        .systemLibrary(name: "CEditLine", pkgConfig: "libedit", providers: [.apt(["libedit-dev"])]),
        // OpenSSL 3's libcrypto for the crypto module (EVP digests, HMAC, AES), loaded at the
        // first crypto call (headers from libssl-dev); no Foundation.
        .target(name: "CLibCrypto"),
        // The only place a Lua error is raised (DESIGN.md, bridge rule 1).
        .target(name: "CLuaShim", dependencies: ["CLua"]),
        .target(name: "LuaBridge", dependencies: ["CLua", "CLuaShim"]),
        // The simulated hardware and the runtime's one clock; no Lua, no network.
        .target(name: "Board", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        // Every socket the host opens: remapping, connector, TLS, coalescing writer,
        // listeners, UDP, packet capture. NIO only: no Lua, no MQTT.
        .target(
            name: "HostNet",
            dependencies: ["Board"] + nio + [
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // MQTT 3.1.1 codec and session: no I/O, no clock.
        .target(name: "MQTTCore", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        // The MQTT client on a HostNet connection.
        .target(name: "MQTT", dependencies: ["MQTTCore", "HostNet", "Board"] + nio),
        // Lua sources that ship inside the binary (the 5.1 compatibility prelude, …).
        .target(
            name: "EmbeddedLua",
            path: "lua/runtime",
            resources: [.embedInCode("prelude.lua")]
        ),
        .target(
            name: "NodeMCU",
            dependencies: ["LuaBridge", "MQTT", "HostNet", "Board", "EmbeddedLua", "CLibCrypto"] + nio + [
                // http: the HTTP/1 request encoder and response decoder (chunked bodies included).
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // --scenario: a host-side Lua script that drives the board, the network and the
        // broker around one device run, in its own Lua state.
        .target(
            name: "Scenario",
            dependencies: ["NodeMCU", "LuaBridge", "MQTT", "HostNet", "Board"] + nio
        ),
        .executableTarget(
            name: "nodemcu-host",
            dependencies: [
                "NodeMCU", "LuaBridge", "HostNet", "Board", "CEditLine", "Scenario",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ] + nio
        ),

        // Test support: a scripted fake MQTT broker, a mosquitto launcher, process helpers.
        .target(
            name: "TestSupport",
            dependencies: ["MQTT", "MQTTCore", "HostNet"] + nio,
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "LuaBridgeTests", dependencies: ["LuaBridge", "CLua"]),
        // The simulated board's state model, driven through its Swift API.
        .testTarget(
            name: "BoardTests",
            dependencies: ["Board"] + nio + [.product(name: "NIOEmbedded", package: "swift-nio")]
        ),
        .testTarget(
            name: "MQTTTests",
            dependencies: ["MQTT", "MQTTCore", "HostNet", "TestSupport"] + nio
                + [.product(name: "NIOEmbedded", package: "swift-nio"),
                   .product(name: "NIOSSL", package: "swift-nio-ssl")]
        ),
        .testTarget(
            name: "HostNetTests",
            dependencies: ["HostNet", "Board", "TestSupport"] + nio
                + [.product(name: "NIOSSL", package: "swift-nio-ssl")]
        ),
        .testTarget(
            name: "NodeMCUTests",
            dependencies: ["NodeMCU", "LuaBridge", "Board", "TestSupport"] + nio
                + [.product(name: "NIOEmbedded", package: "swift-nio")]
        ),
        // Runs the real binary on scripts under lua/tests and examples/.
        .testTarget(name: "ScenarioTests", dependencies: ["TestSupport", "MQTT", "MQTTCore"] + nio, exclude: ["Peers"]),

        // MQTT decoder fuzz target. A plain build makes a corpus replayer; `fuzz/run`
        // builds it with -sanitize=fuzzer,address -DFUZZING into .build-fuzz.
        .executableTarget(
            name: "MQTTDecoderFuzzer",
            dependencies: ["MQTTCore", .product(name: "NIOCore", package: "swift-nio")],
            path: "fuzz/Sources/MQTTDecoderFuzzer"
        ),
        // The Lua-side fuzz targets (same dual build): a runtime per profile on an
        // EmbeddedEventLoop, a Lua harness, the libFuzzer driver and the corpus replayer.
        .target(
            name: "FuzzSupport",
            dependencies: ["NodeMCU", "LuaBridge"] + nio + [.product(name: "NIOEmbedded", package: "swift-nio")],
            path: "fuzz/Sources/FuzzSupport"
        ),
        // sjson.decode / decoder():write: one piece vs chunks, re-encoding, nesting limits.
        .executableTarget(
            name: "SJSONFuzzer",
            dependencies: ["FuzzSupport", "NodeMCU"],
            path: "fuzz/Sources/SJSONFuzzer"
        ),
        // The http module's response pipeline on EmbeddedChannels (no sockets).
        .executableTarget(
            name: "HTTPResponseFuzzer",
            dependencies: ["FuzzSupport", "NodeMCU", "LuaBridge"] + nio + [.product(name: "NIOEmbedded", package: "swift-nio")],
            path: "fuzz/Sources/HTTPResponseFuzzer"
        ),
        // Random Lua values into every installed module function, through protected calls.
        .executableTarget(
            name: "LuaBridgeFuzzer",
            dependencies: ["FuzzSupport", "NodeMCU"],
            path: "fuzz/Sources/LuaBridgeFuzzer"
        ),
    ]
)
