import LuaBridge

/// A 3.0 pipe (`pipe.create`, and the object `node.output` hands its function): a
/// FIFO of byte chunks with an optional reader task, as the firmware's
/// app/modules/pipe.c and docs/modules/pipe.md describe it (more-modules §1.8).
///
/// Chunks hold up to `chunkSize` bytes (the firmware's LUAL_BUFFERSIZE; 1024 assumed);
/// `nrec()` counts them and `#p` is that plus one (the firmware's slot 1 holds the
/// reader). With a reader, the first write after a quiet spell posts one reader task;
/// the reader's return value decides whether it runs again (true: if not empty; false:
/// no; nil: if written to meanwhile). The host prints the pipe as `Pipe: 0x…` but it is
/// a userdata, not a table (`type(p)` says so).
final class LuaPipe: LuaHandle {
    enum Event: Int, LuaHandleEvent { case reader }

    static let chunkSize = 1024

    private(set) var chunks: [[UInt8]] = []
    let priority: TaskQueue.Priority
    /// The pipe's own userdata while it has a reader (the task passes it to the reader).
    var userdataRef: LuaRef?
    private var readerPending = false
    private var readerActive = false
    private var writtenMeanwhile = false

    init(runtime: Runtime, priority: TaskQueue.Priority) {
        self.priority = priority
        super.init(runtime: runtime, callbackSlots: 1)
    }

    var isEmpty: Bool { chunks.isEmpty }

    // MARK: Data

    func write(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        var rest = bytes[...]
        while !rest.isEmpty {
            if chunks.isEmpty || chunks[chunks.count - 1].count == Self.chunkSize { chunks.append([]) }
            let room = Self.chunkSize - chunks[chunks.count - 1].count
            chunks[chunks.count - 1] += rest.prefix(room)
            rest = rest.dropFirst(room)
        }
        wrote()
    }

    func unread(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        var rest = bytes[...]
        while !rest.isEmpty {
            if chunks.isEmpty || chunks[0].count == Self.chunkSize { chunks.insert([], at: 0) }
            let room = Self.chunkSize - chunks[0].count
            chunks[0] = Array(rest.suffix(room)) + chunks[0]
            rest = rest.dropLast(room)
        }
    }

    enum Delimiter {
        case count(Int)
        case character(UInt8, keep: Bool)
    }

    /// The next record, or nil when the pipe is empty.
    func read(_ delimiter: Delimiter) -> [UInt8]? {
        guard !chunks.isEmpty else { return nil }
        var result: [UInt8] = []
        switch delimiter {
        case .count(var wanted):
            while wanted > 0, !chunks.isEmpty {
                let part = chunks[0].prefix(wanted)
                result += part
                wanted -= part.count
                consume(part.count)
            }
        case .character(let character, let keep):
            while !chunks.isEmpty {
                if let index = chunks[0].firstIndex(of: character) {
                    result += chunks[0][...index].dropLast(keep ? 0 : 1)
                    consume(index + 1)
                    break
                }
                result += chunks[0]
                consume(chunks[0].count)
            }
        }
        return result
    }

    private func consume(_ count: Int) {
        chunks[0].removeFirst(count)
        if chunks[0].isEmpty { chunks.removeFirst() }
    }

    // MARK: Reader task

    private func wrote() {
        guard userdataRef != nil, callback(Event.reader) != nil else { return }
        writtenMeanwhile = true
        if !readerActive { postReader() }
    }

    private func postReader() {
        guard !readerPending else { return }
        readerPending = true
        runtime.tasks.post(priority) { [weak self] in self?.runReader() }
    }

    /// Calls the reader with the pipe; errors take the 3.0 traceback path.
    private func runReader() {
        readerPending = false
        guard let function = callback(Event.reader), let userdataRef else { return }
        let lua = runtime.lua
        readerActive = true
        writtenMeanwhile = false
        lua.push(function)
        lua.push(userdataRef)
        var repost = false
        switch lua.pcall(arguments: 1, results: 1) {
        case .ok:
            if lua.type(at: -1) == .boolean {
                repost = lua.boolean(at: -1) && !isEmpty
            } else {
                repost = writtenMeanwhile && !isEmpty
            }
            lua.pop()
        case .error(let error):
            runtime.reportCallbackError(error, kind: .task)
        }
        readerActive = false
        runtime.scheduleIdleCheck()
        if repost && !runtime.halted { postReader() }
    }

    override func dispose(on lua: LuaState) {
        if let userdataRef { lua.unref(userdataRef) }
        userdataRef = nil
        super.dispose(on: lua)
    }
}
