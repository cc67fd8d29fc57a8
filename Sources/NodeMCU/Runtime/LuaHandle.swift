import Board
import LuaBridge
import NIOCore

/// The events of a handle type, one callback slot each (e.g. a timer's `alarm`, an
/// mqtt socket's `connect`, `message`, …).
public protocol LuaHandleEvent: CaseIterable, RawRepresentable where RawValue == Int, AllCases == [Self] {
    /// The name scripts pass to `:on(name, fn)`; by default the case's name.
    var eventName: String { get }
}

extension LuaHandleEvent {
    public var eventName: String { String(describing: self) }
}

/// Base class of every Lua-visible handle (a timer, an mqtt socket, later net sockets
/// and servers): what the firmware's userdata records and luv's handles have in common.
///
/// - Self reference: while active (an armed timer, a connecting or connected client) the
///   handle holds a registry reference to its own userdata (`hold`), as the firmware
///   does, so `tmr.create():alarm(…)` works without a variable; the runtime counts it as
///   keeping the process alive (bridge rule 4).
/// - Callback slots: one registry reference per event, the most recently supplied
///   function wins (spec §2.5, bridge rule 5).
/// - Boot-bound scheduling: work scheduled through the handle runs only if the boot it
///   was scheduled in is still current and the handle still exists.
/// - Teardown: a simulated reboot calls `abortForReboot()`; `__gc` calls `dispose(on:)`.
///
/// Use only on the runtime's event loop.
open class LuaHandle: RuntimeHandle {
    public unowned let runtime: Runtime
    /// The boot this handle was created in.
    public let generation: Int
    /// The handle's own userdata while it is held.
    @exclusivity(unchecked) public private(set) var selfRef: LuaRef?
    @exclusivity(unchecked) private var callbacks: [LuaRef?]

    public init(runtime: Runtime, callbackSlots: Int) {
        self.runtime = runtime
        self.generation = runtime.generation
        self.callbacks = Array(repeating: nil, count: callbackSlots)
    }

    // MARK: Lifetime

    /// Keeps the handle (and the process) alive; `index` is the handle's userdata.
    public func hold(userdataAt index: Int32, on lua: LuaState) {
        if selfRef == nil { selfRef = lua.ref(at: index) }
        runtime.retain(self)
    }

    /// Keeps the process alive without a self reference (2.2's static timers, which
    /// are never collected).
    public func holdWithoutReference() {
        runtime.retain(self)
    }

    /// Lets the handle be collected and the process end once nothing else is active.
    public func unhold(on lua: LuaState) {
        if let selfRef { lua.unref(selfRef) }
        selfRef = nil
        runtime.release(self)
    }

    /// A simulated reboot tears the handle down without any Lua callback; the Lua state
    /// is closed right after, so references need no release. Subclasses stop their
    /// work here and call `super`.
    open func abortForReboot() {
        selfRef = nil
    }

    /// `__gc` of the handle's userdata: nothing references it any more. Subclasses stop
    /// their work here and call `super`.
    open func dispose(on lua: LuaState) {
        releaseCallbacks(on: lua)
        runtime.release(self)
    }

    // MARK: Callback slots

    /// Puts the function at `index` into `event`'s slot (anything else leaves it as it is).
    public func setCallback<Event: LuaHandleEvent>(_ event: Event, from index: Int32, on lua: LuaState) {
        guard lua.isFunction(index) else { return }
        if let old = callbacks[event.rawValue] { lua.unref(old) }
        callbacks[event.rawValue] = lua.ref(at: index)
    }

    public func clearCallback<Event: LuaHandleEvent>(_ event: Event, on lua: LuaState) {
        if let old = callbacks[event.rawValue] { lua.unref(old) }
        callbacks[event.rawValue] = nil
    }

    public func callback<Event: LuaHandleEvent>(_ event: Event) -> LuaRef? { callbacks[event.rawValue] }

    public func releaseCallbacks(on lua: LuaState) {
        for index in callbacks.indices {
            if let ref = callbacks[index] { lua.unref(ref) }
            callbacks[index] = nil
        }
    }

    /// Pushes the event's function and the handle's userdata; pushes nothing and returns
    /// false when the slot is empty or the handle is not held.
    public func pushCallback<Event: LuaHandleEvent>(_ event: Event, on lua: LuaState) -> Bool {
        guard let callback = callbacks[event.rawValue], let selfRef else { return false }
        lua.push(callback)
        lua.push(selfRef)
        return true
    }

    // MARK: Boot-bound scheduling

    /// Runs `body` after `delay` of device time, unless the boot has changed by then.
    /// `body` should capture the handle weakly where it must not extend its life.
    @discardableResult
    public func schedule(in delay: TimeAmount, _ body: @escaping () -> Void) -> ClockTask {
        schedule(at: runtime.clock.now + delay, body)
    }

    /// Runs `body` once device time reaches `deadline`, unless the boot has changed.
    @discardableResult
    public func schedule(at deadline: NIODeadline, _ body: @escaping () -> Void) -> ClockTask {
        let generation = self.generation
        return runtime.clock.schedule(at: deadline) { [weak runtime] in
            guard let runtime, runtime.isCurrent(generation) else { return }
            body()
        }
    }
}
