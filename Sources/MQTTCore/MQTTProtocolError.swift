/// A violation of MQTT 3.1.1 found while decoding or in the packet flow.
///
/// A protocol error ends the connection; the owner sees it as
/// `MQTTCloseCause.protocolError(text)` where `text` is `description`.
public struct MQTTProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A human-readable reason, e.g. `"PUBLISH with QoS 3"`.
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
