import LuaBridge
import MQTT
import NIOCore

extension MQTTSocket {
    /// 2.2 autoreconnect (spec §2.15).
    /// Until the attempt starts the client is torn down (`idle`: publish returns false,
    /// close() returns false and turns autoreconnect off) but still held.
    func scheduleReconnect(after delay: TimeAmount) {
        guard let endpoint = lastEndpoint else { return }
        reconnectTask = schedule(in: delay) { [weak self] in
            guard let self else { return }
            reconnectTask = nil
            guard autoreconnectActive, link == .idle else { return }
            // The same IP and port as before, without a new DNS lookup; TLS still checks
            // the certificate against the name the script gave.
            guard let address = core.remoteAddress, let ip = address.ipAddress, let port = address.port else {
                return start(host: endpoint.host, port: endpoint.port, tls: endpoint.tls)
            }
            var tls = endpoint.tls
            if tls != nil, tls?.serverName == nil, (try? SocketAddress(ipAddress: endpoint.host, port: 0)) == nil {
                tls?.serverName = endpoint.host
            }
            start(host: ip, port: port, tls: tls)
        }
    }
}
