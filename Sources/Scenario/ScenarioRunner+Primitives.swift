import Board
import HostNet
import LuaBridge
import MQTT
import NIOCore

extension ScenarioRunner {
    /// Pushes the table of primitives the prelude builds the scenario API on.
    func pushPrimitives(on lua: LuaState) {
        lua.newTable()
        lua.setFunction("now") { [unowned self] lua throws(LuaError) in
            lua.push(nowMilliseconds)
            return 1
        }
        lua.setFunction("time_text") { [unowned self] lua throws(LuaError) in
            lua.push(timeText(lua.number(at: 1)))
            return 1
        }
        /// host.timer(delay_ms) → id: dispatches ("timer", id) after that much device time.
        lua.setFunction("timer") { [unowned self] lua throws(LuaError) in
            let delay = max(0, lua.number(at: 1) ?? 0)
            let id = nextTimer
            nextTimer += 1
            timers[id] = runtime.board.schedule(in: .nanoseconds(Int64(delay * 1e6))) { [unowned self] in
                timers[id] = nil
                dispatch("timer") { lua in
                    lua.push(id)
                    return 1
                }
            }
            lua.push(id)
            return 1
        }
        lua.setFunction("cancel") { [unowned self] lua throws(LuaError) in
            if let id = lua.integer(at: 1), let task = timers.removeValue(forKey: id) { task.cancel() }
            return 0
        }
        lua.setFunction("log") { [unowned self] lua throws(LuaError) in
            log(lua.string(at: 1) ?? "")
            return 0
        }
        lua.setFunction("finish") { [unowned self] lua throws(LuaError) in
            let status = Int32(lua.integer(at: 1) ?? 0)
            end(status: status == 0 ? 0 : Self.failureStatus, message: lua.string(at: 2))
            return 0
        }

        // Board inputs.
        lua.setFunction("gpio") { [unowned self] lua throws(LuaError) in
            let pin = try lua.checkInteger(1)
            guard GPIOBank.exists(pin) else { throw .argument(1, "gpio \(pin) does not exist (0…12)") }
            let level: Int? = lua.isNoneOrNil(2) ? nil : (lua.type(at: 2) == .boolean ? (lua.boolean(at: 2) ? 1 : 0) : try lua.checkInteger(2))
            runtime.board.gpio.drive(pin, level)
            return 0
        }
        lua.setFunction("adc") { [unowned self] lua throws(LuaError) in
            runtime.board.adc.input = try lua.checkInteger(1)
            return 0
        }
        lua.setFunction("dht") { [unowned self] lua throws(LuaError) in
            let pin = try lua.checkInteger(1)
            if lua.isNoneOrNil(2) {
                runtime.board.dht[pin] = nil
                return 0
            }
            guard let temperature = lua.number(at: 2) else { throw .argument(2, "temperature expected") }
            guard let humidity = lua.number(at: 3) else { throw .argument(3, "humidity expected") }
            let modelName = (lua.string(at: 4) ?? "DHT22").uppercased()
            guard let model = DHTSensors.Model(rawValue: modelName) else {
                throw .argument(4, "unknown sensor model \(modelName) (DHT11 DHT12 DHT21 DHT22 DHT33 DHT44)")
            }
            runtime.board.dht[pin] = .model(model, temperature: temperature, humidity: humidity)
            return 0
        }
        lua.setFunction("uart") { [unowned self] lua throws(LuaError) in
            let bytes = try lua.checkBytes(1)
            runtime.console.receive(bytes)
            return 0
        }
        lua.setFunction("wifi_drop") { [unowned self] lua throws(LuaError) in
            let reason = lua.isNoneOrNil(1) ? WiFiRadio.Reason.beaconTimeout : try lua.checkInteger(1)
            // The access point is gone: the station's retries fail until it comes back,
            // nothing passes on open connections, new ones cannot be made.
            runtime.board.wifi.outcome = .noAccessPoint
            runtime.board.wifi.dropLink(reason: reason)
            faults.halfOpen(.all)
            faults.refuse(.all)
            return 0
        }
        lua.setFunction("wifi_restore") { [unowned self] lua throws(LuaError) in
            runtime.board.wifi.outcome = .success
            faults.allow(.all)
            let status = runtime.board.wifi.status
            if status != .gotIP && status != .connecting { runtime.board.wifi.connect() }
            return 0
        }
        lua.setFunction("gpio_writes") { [unowned self] lua throws(LuaError) in
            let outputs = runtime.board.gpio.outputs
            lua.newTable(arrayCapacity: Int32(outputs.count))
            for (index, output) in outputs.enumerated() {
                lua.newTable(fieldCapacity: 3)
                lua.push(output.pin)
                lua.setField("pin", in: -2)
                lua.push(output.level)
                lua.setField("level", in: -2)
                lua.push(Double((output.at - origin).nanoseconds) / 1e6)
                lua.setField("t", in: -2)
                lua.rawSet(index + 1, in: -2)
            }
            return 1
        }

        lua.setFunction("connections") { [unowned self] lua throws(LuaError) in
            let all = faults.connectionStatistics
            lua.newTable(arrayCapacity: Int32(all.count))
            for (index, entry) in all.enumerated() {
                lua.newTable(fieldCapacity: 7)
                lua.push(entry.endpoint.host)
                lua.setField("host", in: -2)
                lua.push(entry.endpoint.port)
                lua.setField("port", in: -2)
                lua.push("\(entry.endpoint.targetHost):\(entry.endpoint.targetPort)")
                lua.setField("target", in: -2)
                lua.push(entry.endpoint.accepted)
                lua.setField("accepted", in: -2)
                lua.push(entry.bytesIn)
                lua.setField("bytes_in", in: -2)
                lua.push(entry.bytesOut)
                lua.setField("bytes_out", in: -2)
                lua.rawSet(index + 1, in: -2)
            }
            return 1
        }

        // Network faults.
        /// host.fault(kind, selector[, argument]) → connections affected (drop, half_open).
        lua.setFunction("fault") { [unowned self] lua throws(LuaError) in
            let kind = try lua.checkString(1)
            let selector = lua.string(at: 2) ?? "*"
            if kind == "dns_fail" || kind == "dns_ok" {
                if kind == "dns_fail" { faults.failDNS(selector) } else { faults.resolveDNS(selector) }
                return 0
            }
            let target: FaultInjector.FaultTarget
            do {
                target = try FaultInjector.FaultTarget(parsing: selector)
            } catch {
                throw .argument(2, "\(error)")
            }
            var count = 0
            switch kind {
            case "drop": count = faults.drop(target)
            case "half_open": count = faults.halfOpen(target)
            case "delay":
                let ms = lua.number(at: 3) ?? 0
                faults.delay(target, by: .nanoseconds(Int64(max(0, ms) * 1e6)))
            case "fragment": faults.fragment(target, lua.isNoneOrNil(3) || lua.boolean(at: 3))
            case "cut_after":
                faults.cutAfter(target, bytes: lua.isNoneOrNil(3) ? nil : max(0, try lua.checkInteger(3)))
            case "refuse": faults.refuse(target)
            case "allow": faults.allow(target)
            case "clear": faults.clearRules()
            default: throw .message("unknown fault \(kind)")
            }
            lua.push(count)
            return 1
        }

        // The scenario's MQTT client.
        lua.setFunction("broker") { [unowned self] lua throws(LuaError) in
            let text = try lua.checkString(1)
            guard !loaded else { throw .message("broker(...) must be called at the scenario's top level") }
            var host = text
            var port = 1883
            if let colon = text.lastIndex(of: ":"), !text.hasSuffix("]"), text.firstIndex(of: ":") == colon {
                guard let value = Int(text[text.index(after: colon)...]), (1...65535).contains(value) else {
                    throw .argument(1, "bad port in \(text)")
                }
                host = String(text[..<colon])
                port = value
            }
            broker = (host, port)
            brokerTLS = lua.boolean(at: 2)
            brokerUser = lua.bytes(at: 3)
            brokerPassword = lua.bytes(at: 4)
            brokerClientID = lua.bytes(at: 5)
            return 0
        }
        lua.setFunction("need_broker") { [unowned self] lua throws(LuaError) in
            let function = lua.string(at: 1) ?? "?"
            if loaded && broker == nil {
                throw .message("\(function) needs the broker: call broker(\"host:port\") at the scenario's top level")
            }
            if needsBroker == nil { needsBroker = function }
            return 0
        }
        lua.setFunction("publish") { [unowned self] lua throws(LuaError) in
            let topic = try lua.checkBytes(1)
            let payload = try lua.checkBytes(2)
            let qos = UInt8(truncatingIfNeeded: lua.integer(at: 3) ?? 0)
            let retain = lua.boolean(at: 4) || lua.integer(at: 4) == 1
            guard let client, clientReady else {
                throw .message("publish: the scenario's MQTT client is not connected to the broker")
            }
            do {
                try client.publish(topic: topic, payload: payload, qos: qos & 3, retain: retain)
            } catch {
                throw .message("publish: \(error)")
            }
            beginSync()  // virtual time: until the device has had it
            return 0
        }
    }
}
