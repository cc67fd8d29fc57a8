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
