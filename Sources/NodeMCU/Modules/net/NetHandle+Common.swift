import LuaBridge

/// What the handle types of the `net` module (`net.tcpsocket`, `net.udpsocket`,
/// `tls.socket`; `net.tcpserver`) answer alike, after the firmware's app/modules/net.c.
extension LuaHandle {
    /// `:on(event, fn)`: a function fills the event's slot, nil empties it, anything else
    /// is the error `invalid callback function`; an unknown name raises `unknownEvent`.
    func setNetCallback<Event: LuaHandleEvent>(
        _ type: Event.Type, on lua: LuaState, unknownEvent: String
    ) throws(LuaError) -> Int32 {
        let name = try lua.checkString(2)
        guard let event = Event.allCases.first(where: { $0.eventName == name }) else {
            throw .message(unknownEvent)
        }
        if lua.isFunction(3) {
            setCallback(event, from: 3, on: lua)
        } else if lua.isNoneOrNil(3) {
            clearCallback(event, on: lua)
        } else {
            throw .message("invalid callback function")
        }
        return 0
    }
}

extension LuaState {
    /// `:listen([port][, ip] …)`'s leading arguments from stack index 2: the port (0 for
    /// any, number-like, 16 bits) and the IP as given (default `0.0.0.0`), and the index
    /// of the first argument after them.
    func netListenArguments() -> (port: Int, ip: String, next: Int32) {
        var index: Int32 = 2
        var port = 0
        if type(at: index) == .number || (type(at: index) == .string && number(at: index) != nil) {
            port = (integer(at: index) ?? 0) & 0xFFFF
            index += 1
        }
        var ip = "0.0.0.0"
        if isStringLike(index) {
            ip = string(at: index) ?? ip
            index += 1
        }
        return (port, ip, index)
    }

    /// `:getaddr()` and `:getpeer()`'s results: `port, ip`, or nil, nil when there is none.
    func pushNetAddress(port: Int?, ip: String?) -> Int32 {
        guard let port, let ip else {
            pushNil()
            pushNil()
            return 2
        }
        push(port)
        push(ip)
        return 2
    }
}
