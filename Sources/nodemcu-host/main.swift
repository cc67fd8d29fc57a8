#if canImport(Glibc)
import Glibc
#endif
import NodeMCU

// A closed pipe on stdout must not kill the process mid-write.
signal(SIGPIPE, SIG_IGN)

// `nodemcu-host test …`: the porting-test runner (a script named "test" still runs as
// `nodemcu-host ./test`).
if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "test" {
    TestCommand.main(Array(CommandLine.arguments.dropFirst(2)))
}

do {
    // As lua.c: everything from the script on belongs to the script.
    let (hostArguments, scriptAndArguments) = HostCommand.split(Array(CommandLine.arguments.dropFirst()))
    var command = try HostCommand.parse(hostArguments)
    command.scriptAndArguments = scriptAndArguments
    try command.validate()
    try command.run()
} catch {
    let code = HostCommand.exitCode(for: error)
    let message = HostCommand.fullMessage(for: error)
    if code.isSuccess {
        print(message)
        exit(0)
    }
    var text = "nodemcu-host: " + message + "\n"
    if !message.contains("Usage:") { text += HostCommand.usageString() + "\n" }
    Console.err(text)
    exit(2)
}
