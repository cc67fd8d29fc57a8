import Foundation

/// A CA and a server certificate signed by it, generated with the `openssl` command line.
///
/// The server certificate's subject alternative names are `IP:127.0.0.1` and `DNS:localhost`.
/// Generate two sets to get a "wrong CA" for negative tests.
public struct TestCertificates: Sendable {
    /// The CA certificate (PEM file).
    public var caFile: URL
    /// The server certificate (PEM file).
    public var serverCertificateFile: URL
    /// The server private key (PEM file).
    public var serverKeyFile: URL

    /// The CA certificate's PEM bytes.
    public func caPEM() throws -> [UInt8] { Array(try Data(contentsOf: caFile)) }

    /// Creates `directory` and generates a CA (EC P-256) and a server certificate in it.
    public static func generate(
        in directory: URL, commonName: String = "nodemcu-host test CA"
    ) throws -> TestCertificates {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        func openssl(_ arguments: [String]) throws {
            let result = try Mosquitto.runTool("openssl", arguments)
            guard result.status == 0 else {
                throw Mosquitto.LaunchError("openssl \(arguments.first ?? "") failed: \(result.stderr)")
            }
        }
        try openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path("ca.key")])
        try openssl([
            "req", "-x509", "-new", "-key", path("ca.key"), "-sha256", "-days", "30",
            "-subj", "/CN=\(commonName)", "-out", path("ca.crt"),
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
        try openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path("server.key")])
        try openssl([
            "req", "-new", "-key", path("server.key"), "-subj", "/CN=localhost", "-out", path("server.csr"),
        ])
        let ext = """
            basicConstraints=CA:FALSE
            keyUsage=critical,digitalSignature,keyEncipherment
            extendedKeyUsage=serverAuth
            subjectAltName=IP:127.0.0.1,DNS:localhost

            """
        try ext.write(toFile: path("server.ext"), atomically: true, encoding: .utf8)
        try openssl([
            "x509", "-req", "-in", path("server.csr"), "-CA", path("ca.crt"), "-CAkey", path("ca.key"),
            "-CAcreateserial", "-days", "30", "-sha256", "-extfile", path("server.ext"),
            "-out", path("server.crt"),
        ])
        return TestCertificates(
            caFile: directory.appendingPathComponent("ca.crt"),
            serverCertificateFile: directory.appendingPathComponent("server.crt"),
            serverKeyFile: directory.appendingPathComponent("server.key"))
    }
}

extension TestCertificates {
    /// Issues another certificate from this CA (key in the same folder): `san` e.g.
    /// `IP:127.0.0.1,DNS:localhost`; negative `days` gives an already expired one;
    /// `usage` `serverAuth` or `clientAuth`. Returns the certificate and key files.
    public func issue(
        name: String, commonName: String = "localhost", san: String = "IP:127.0.0.1,DNS:localhost",
        days: Int = 30, usage: String = "serverAuth"
    ) throws -> (certificate: URL, key: URL) {
        let directory = caFile.deletingLastPathComponent()
        func path(_ file: String) -> String { directory.appendingPathComponent(file).path }
        func openssl(_ arguments: [String]) throws {
            let result = try Mosquitto.runTool("openssl", arguments)
            guard result.status == 0 else {
                throw Mosquitto.LaunchError("openssl \(arguments.first ?? "") failed: \(result.stderr)")
            }
        }
        try openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path("\(name).key")])
        try openssl(["req", "-new", "-key", path("\(name).key"), "-subj", "/CN=\(commonName)", "-out", path("\(name).csr")])
        let ext = """
            basicConstraints=CA:FALSE
            keyUsage=critical,digitalSignature,keyEncipherment
            extendedKeyUsage=\(usage)
            subjectAltName=\(san)

            """
        try ext.write(toFile: path("\(name).ext"), atomically: true, encoding: .utf8)
        try openssl([
            "x509", "-req", "-in", path("\(name).csr"), "-CA", caFile.path, "-CAkey", path("ca.key"),
            "-CAcreateserial", "-days", String(days), "-sha256", "-extfile", path("\(name).ext"),
            "-out", path("\(name).crt"),
        ])
        return (directory.appendingPathComponent("\(name).crt"), directory.appendingPathComponent("\(name).key"))
    }
}
