// Temporary until the MQTT core lands.
public struct AddressRemap: Sendable {
    public struct Rule: Sendable {
        public init(parsing: String) throws {}
    }
    public init() {}
    public init(parsing: [String]) throws {}
}
