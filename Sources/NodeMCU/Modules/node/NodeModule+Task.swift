import LuaBridge

/// One `node.task.post` task: the function in its callback slot until the task runs
/// (a pending-work record that keeps the process alive through the task queue).
final class NodeTask: LuaHandle {
    enum Event: Int, LuaHandleEvent { case task }

    init(runtime: Runtime) {
        super.init(runtime: runtime, callbackSlots: 1)
    }
}

extension NodeModule {
    /// At most this many Lua tasks wait per priority (more-modules §1.2: 8 per queue on
    /// the device, shared with firmware tasks; the host counts only Lua tasks).
    static let tasksPerPriority = 8

    func registerTask(in table: inout LuaModuleTable) {
        table.table("task") { task in
            task.function("post") { [unowned self] lua throws(LuaError) in try post(lua) }
            task.integer("LOW_PRIORITY", 0)
            task.integer("MEDIUM_PRIORITY", 1)
            task.integer("HIGH_PRIORITY", 2)
        }
    }

    /// Lua: node.task.post([prio,] fn) — runs `fn(prio)` later as its own event, highest
    /// priority first, FIFO within one. Errors in `fn`: 2.2 PANIC, 3.0 traceback path.
    private func post(_ lua: LuaState) throws(LuaError) -> Int32 {
        var priority = TaskQueue.Priority.medium
        var slot: Int32 = 1
        if lua.type(at: 1) == .number {
            guard let value = lua.integer(at: 1), let given = TaskQueue.Priority(rawValue: value) else {
                throw .argument(1, "invalid  priority")
            }
            priority = given
            slot = 2
        }
        guard lua.isFunction(slot) else {
            throw profile == .v2_2 ? .argument(slot, "invalid function") : lua.typeError(slot, expected: "function")
        }
        guard pendingLuaTasks[priority.rawValue] < Self.tasksPerPriority else {
            throw .message("Task queue overflow. Task not posted")
        }
        let task = NodeTask(runtime: runtime)
        task.setCallback(NodeTask.Event.task, from: slot, on: lua)
        pendingLuaTasks[priority.rawValue] += 1
        runtime.tasks.post(priority) { [unowned self] in
            pendingLuaTasks[priority.rawValue] -= 1
            run(task, priority: priority)
        }
        return 0
    }

    private func run(_ task: NodeTask, priority: TaskQueue.Priority) {
        let lua = runtime.lua
        guard let function = task.callback(NodeTask.Event.task) else { return }
        lua.push(function)
        task.releaseCallbacks(on: lua)
        lua.push(priority.rawValue)
        runtime.callback(.task, arguments: 1)
    }
}
