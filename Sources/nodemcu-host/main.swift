#if canImport(Glibc)
import Glibc
#endif
import NodeMCU

// A closed pipe on stdout must not kill the process mid-write.
signal(SIGPIPE, SIG_IGN)

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
