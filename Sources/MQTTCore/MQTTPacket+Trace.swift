import NIOCore

extension MQTTPacket {
    /// One line for `--trace`: type, id, flags, topic and payload length.
    public var traceDescription: String {
        switch self {
        case .connect(let p):
            var text = "CONNECT client=\(Self.quoted(p.clientID)) keepalive=\(p.keepAlive) clean=\(p.cleanSession ? 1 : 0)"
            if let will = p.will {
                text += " will=\(Self.quoted(will.topic)) will_qos=\(will.qos & 3) will_retain=\(will.retain ? 1 : 0) will_len=\(will.message.count)"
            }
            if let user = p.username { text += " user=\(Self.quoted(user))" }
            if p.password != nil { text += " password=<\(p.password!.count) bytes>" }
            return text
        case .connAck(let p):
            return "CONNACK session_present=\(p.sessionPresent ? 1 : 0) rc=\(p.returnCode)"
        case .publish(let p):
            return Self.publishLine(
                topic: p.topic, payloadLength: p.payload.readableBytes, qos: p.qos, retain: p.retain,
                dup: p.dup, id: p.packetID)
        case .subscribe(let p):
            let topics = p.subscriptions.map { "\(Self.quoted($0.topicFilter)):\($0.qos)" }.joined(separator: ",")
            return "SUBSCRIBE id=\(p.packetID) topics=\(topics)"
        case .subAck(let p):
            return "SUBACK id=\(p.packetID) rc=\(p.returnCodes.map { String($0) }.joined(separator: ","))"
        case .unsubscribe(let p):
            return "UNSUBSCRIBE id=\(p.packetID) topics=\(p.topicFilters.map { Self.quoted($0) }.joined(separator: ","))"
        default:
            if let id = packetID { return "\(type) id=\(id)" }
            return type.description
        }
    }

    static func publishLine(topic: ByteBuffer, payloadLength: Int, qos: UInt8, retain: Bool, dup: Bool, id: UInt16?) -> String {
        var text = "PUBLISH"
        if let id { text += " id=\(id)" }
        text += " qos=\(qos) retain=\(retain ? 1 : 0) dup=\(dup ? 1 : 0) topic=\(quoted(Array(topic.readableBytesView))) len=\(payloadLength)"
        return text
    }

    /// Bytes as a double-quoted string, non-printable bytes as `\xNN`.
    static func quoted(_ bytes: [UInt8]) -> String {
        var text = "\""
        for byte in bytes {
            switch byte {
            case 0x22: text += "\\\""
            case 0x5C: text += "\\\\"
            case 0x20..<0x7F: text.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16)
                text += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return text + "\""
    }
}

extension MQTTInbound {
    /// One line for `--trace`.
    public var traceDescription: String {
        switch self {
        case .packet(let packet): return packet.traceDescription
        case .oversizedPublish(let p):
            return MQTTPacket.publishLine(
                topic: p.topic, payloadLength: p.partialPayload.readableBytes, qos: p.qos, retain: p.retain,
                dup: p.dup, id: p.packetID) + " oversized=\(p.packetSize)"
        }
    }
}
