import NIOSSL

/// TLS settings for one outgoing connection: how the server is verified, and the client
/// certificate if the server asks for one. The `tls` module and mqtt's `secure` both
/// describe their connections with it.
public struct TLSSettings: Sendable, Equatable {
    /// How the server certificate is checked.
    public enum Verification: Sendable, Equatable {
        /// Against the system trust store (default), with host name / IP checks.
        case systemTrustStore
        /// Against these CA certificates (PEM bytes, one or more certificates each), with
        /// host name / IP checks.
        case certificates(pem: [UInt8])
        /// Not at all (`tls.cert.verify(false)`).
        case none
    }

    /// A client certificate chain and its private key, both PEM.
    public struct ClientCertificate: Sendable, Equatable {
        public var certificatePEM: [UInt8]
        public var privateKeyPEM: [UInt8]

        public init(certificatePEM: [UInt8], privateKeyPEM: [UInt8]) {
            self.certificatePEM = certificatePEM
            self.privateKeyPEM = privateKeyPEM
        }
    }

    public var verification: Verification
    /// SNI and the name the certificate is checked against. nil: the host connected to
    /// (after remapping); no SNI is sent for an IP address (its IP SAN is checked instead).
    public var serverName: String?
    public var clientCertificate: ClientCertificate?
    /// CA certificates (PEM) trusted in addition to what `verification` names (the host's
    /// `--cafile`, for brokers with a private CA); ignored when verification is off.
    public var additionalTrustRootsPEM: [UInt8]?

    public init(
        verification: Verification = .systemTrustStore, serverName: String? = nil,
        clientCertificate: ClientCertificate? = nil, additionalTrustRootsPEM: [UInt8]? = nil
    ) {
        self.additionalTrustRootsPEM = additionalTrustRootsPEM
        self.verification = verification
        self.serverName = serverName
        self.clientCertificate = clientCertificate
    }

    /// Several PEM strings (e.g. one `tls.cert.verify` call per CA) as one trust list.
    public static func trusting(pems: [[UInt8]], serverName: String? = nil) -> TLSSettings {
        TLSSettings(verification: .certificates(pem: Array(pems.joined(separator: [0x0A]))), serverName: serverName)
    }

    /// The swift-nio-ssl context for these settings.
    public func makeSSLContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch verification {
        case .systemTrustStore:
            if let extra = additionalTrustRootsPEM {
                configuration.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMBytes(extra))]
            }
        case .certificates(let pem):
            configuration.trustRoots = .certificates(
                try NIOSSLCertificate.fromPEMBytes(pem + [0x0A] + (additionalTrustRootsPEM ?? [])))
        case .none:
            configuration.certificateVerification = .none
        }
        if let clientCertificate {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(clientCertificate.certificatePEM)
                .map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: clientCertificate.privateKeyPEM, format: .pem))
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

extension TLSSettings {
    /// How many certificates the PEM bytes hold (0 if none, or if they do not parse).
    public static func certificateCount(pem: [UInt8]) -> Int {
        (try? NIOSSLCertificate.fromPEMBytes(pem).count) ?? 0
    }

    /// Whether the PEM bytes hold a usable private key.
    public static func isPrivateKey(pem: [UInt8]) -> Bool {
        (try? NIOSSLPrivateKey(bytes: pem, format: .pem)) != nil
    }

    /// Splits PEM text into its blocks (`-----BEGIN …-----` to `-----END …-----`),
    /// each with its label (`CERTIFICATE`, `PRIVATE KEY`, `EC PRIVATE KEY`, …).
    public static func pemBlocks(_ pem: [UInt8]) -> [(label: String, pem: [UInt8])] {
        let text = String(decoding: pem, as: UTF8.self)
        var blocks: [(String, [UInt8])] = []
        var rest = Substring(text)
        while let begin = rest.firstRange(of: "-----BEGIN ") {
            guard let labelEnd = rest[begin.upperBound...].firstRange(of: "-----") else { break }
            let label = String(rest[begin.upperBound..<labelEnd.lowerBound])
            let endMarker = "-----END \(label)-----"
            guard let end = rest[labelEnd.upperBound...].firstRange(of: endMarker) else { break }
            blocks.append((label, Array(rest[begin.lowerBound..<end.upperBound].utf8) + [0x0A]))
            rest = rest[end.upperBound...]
        }
        return blocks
    }
}
