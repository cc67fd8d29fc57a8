import NIOCore
import NIOPosix
import NIOSSL

/// Why an outgoing connection could not be made: the one error vocabulary of the connector.
public struct HostConnectError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Which step failed.
    public enum Kind: Sendable, Equatable {
        /// The name did not resolve.
        case dnsFailure
        /// TCP was refused, or the host or network is unreachable.
        case refused
        /// The TCP connect or the TLS handshake did not finish within the timeout.
        case timeout
        /// The TLS handshake or the certificate verification failed, or the TLS settings
        /// are unusable.
        case tls
    }

    public var kind: Kind
    /// A complete human-readable sentence, e.g. `TLS handshake failed: certificate verify failed`.
    public var reason: String

    public init(_ kind: Kind, reason: String) {
        self.kind = kind
        self.reason = reason
    }

    public var description: String { reason }

    /// A short text for a NIO, socket or TLS error (the TLS library's reason code in words,
    /// e.g. `certificate verify failed`).
    public static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return error.description }
        if let error = error as? NIOSSLError, case .handshakeFailed(let inner) = error {
            // "…:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at …" → "certificate verify failed"
            let text = String(describing: inner)
            if let range = text.firstRange(of: "OPENSSL_internal:") {
                let reason = text[range.upperBound...].prefix { $0 != " " && $0 != "]" }
                return String(reason.lowercased().map { $0 == "_" ? " " : $0 })
            }
            return text
        }
        if let error = error as? NIOConnectionError {
            return error.connectionErrors.map { "\($0.target): \(describe($0.error))" }.joined(separator: "; ")
        }
        if let error = error as? ChannelError, case .connectTimeout = error {
            return "timed out"
        }
        return String(describing: error)
    }
}
