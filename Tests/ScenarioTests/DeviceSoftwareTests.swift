import Foundation
import TestSupport
import XCTest

/// Standard input and console interplay through the real binary (uart.on("data"),
/// node.output, node.input), and crypto results checked against the openssl command line.
final class DeviceSoftwareTests: XCTestCase {
    // MARK: uart.on("data") takes standard input

    func testUartDataWithRunInputGivesEachLineToTheCallbackThenTheInterpreter() throws {
        for profile in ["2.2", "3.0"] {
            let result = try HostProcess.run(
                ["--firmware", profile, "-e", #"uart.on("data", function(l) print("got[" .. l .. "]") end)"#],
                input: "x = 41\r\n\nprint(x + 1)\n")
            XCTAssertEqual(result.status, 0)
            // 2.2 skips empty lines; 3.0 calls fn("").
            let empty = profile == "3.0" ? "got[]\n" : ""
            XCTAssertEqual(result.stdout, "got[x = 41]\n\(empty)got[print(x + 1)]\n42\n", "firmware \(profile)")
        }
    }

    func testUartDataRawBySizeAndByCharacterKeepsTheProcessUntilEndOfInput() throws {
        let bySize = try HostProcess.run(
            ["-e", #"uart.on("data", 4, function(d) uart.write(0, "<" .. d .. ">") end, 0)"#], input: "abcdefghij")
        XCTAssertEqual(bySize.stdout, "<abcd><efgh>", "the last 2 bytes wait for more, as on the device")
        XCTAssertEqual(bySize.status, 0)
        let byCharacter = try HostProcess.run(
            ["--firmware", "3.0", "-e", #"uart.on("data", ";", function(d) uart.write(0, "<" .. d .. ">") end, 0)"#],
            input: "print(1);ab;c")
        XCTAssertEqual(byCharacter.stdout, "<print(1);><ab;>", "nothing reaches the interpreter")
    }

    func testUnregisteringTheDataCallbackLetsTheProcessEnd() throws {
        let process = try HostProcess.launch(
            ["-e", #"uart.on("data", function() end) tmr.create():alarm(100, 0, function() uart.on("data") print("off") end)"#])
        let result = process.wait(timeout: 10)
        XCTAssertFalse(result.timedOut)
        XCTAssertEqual(result.stdout, "off\n")
    }

    // MARK: node.output and node.input

    func testNodeOutputCapturesReplResultsAndErrorsWithoutTheSerialCopy() throws {
        let input = """
            buf = {} node.output(function(s) buf[#buf + 1] = s end, 0)
            =1+1
            error("boom")
            node.output(nil)
            print(#buf, buf[1], buf[2])
            print(buf[3]:match("^[^\\n]*"))

            """
        let result = try HostProcess.run(["-i"], input: input)
        XCTAssertEqual(result.stdout, "3\t2\t\n\nstdin:1: boom\n", "print in pieces (\"2\", \"\\n\"), then the error report")
    }

    func testNodeOutputPipeIn30AndErrorsRaisedIntoThePrinterIn22() throws {
        let script = #"""
            node.output(function(p) uart.write(0, "[" .. p:read(1400) .. "]") end, 1)
            print("hi")
            """#
        let v30 = try HostProcess.run(["--firmware", "3.0", "-e", script])
        XCTAssertEqual(v30.stdout, "hi\n[hi\n]")
        let v22 = try HostProcess.run(["-e", #"node.output(function(s) error("out") end, 0) print(pcall(print, "x"))"#])
        XCTAssertTrue(v22.stdout.contains("PANIC: unprotected error in call to Lua API ((command line):1: out)")
                      || v22.stdout.isEmpty, v22.stdout)
        let caught = try HostProcess.run(["-e", #"node.output(function(s) error("out") end, 0) local ok, e = pcall(print, "x") node.output(nil) print(ok, e)"#])
        XCTAssertEqual(caught.stdout, "false\t(command line):1: out\n")
    }

    func testNodeInputRunsLinesThroughTheInterpreter() throws {
        let v22 = try HostProcess.run(["-e", #"node.input("=6*7") node.input(("x"):rep(300)) print("first")"#])
        XCTAssertEqual(v22.stdout, "first\n42\n> ", "after the current code, then the prompt; 256 bytes or more ignored")
        let v30 = try HostProcess.run(["--firmware", "3.0", "-e", #"node.input("y = 5\n=y") node.input("+1\nfor i = 1, 2 do\nprint(i) end\n")"#])
        XCTAssertEqual(v30.stdout, "> 6\n> >> 1\n2\n> ", "one newline-terminated line per task; text waits for its newline")
    }

    /// Regressions found by examples/projects/telnet_console: a chunk typed over several
    /// node.input lines continues (2.2 dropped every line after the first while the
    /// chunk was incomplete), each line is followed by its prompt on the console (so a
    /// telnet client sees `> ` and `>> `), and an error in such a line is printed and the
    /// device goes on, even under `--on-error exit`.
    func testNodeInputContinuesChunksPromptsAndSurvivesErrors() throws {
        let script = #"""
            local lines = {"for i = 1, 2 do", "print(i) end", "error('typed')", "=1+1"}
            local n = 0
            local t = tmr.create()
            t:alarm(20, tmr.ALARM_AUTO, function()
              n = n + 1
              if lines[n] then node.input(lines[n] .. "\n") else t:unregister() print("still running") end
            end)
            """#
        for profile in ["2.2", "3.0"] {
            let result = try HostProcess.run(["--firmware", profile, "--on-error", "exit", "-e", script])
            XCTAssertEqual(result.status, 0, "firmware \(profile): \(result.stderr)")
            let prefix = profile == "3.0" ? "Lua error: " : ""
            XCTAssertEqual(result.stdout, """
                >> 1
                2
                > \(prefix)stdin:1: typed
                stack traceback:
                \t[C]: in function 'error'
                \tstdin:1: in main chunk
                > 2
                > still running

                """, "firmware \(profile)")
        }
    }

    /// 2.2: while a node.input line waits for its task, or while the interpreter runs a
    /// console line, further calls are ignored (the firmware's line_position check).
    func testNodeInputIn22IgnoresCallsWhileALineIsPending() throws {
        let result = try HostProcess.run(["-e", #"node.input("print('a')") node.input("print('b')")"#])
        XCTAssertEqual(result.stdout, "a\n> ")
        let fromConsole = try HostProcess.run(["-i"], input: "node.input(\"print('c')\") print('d')\n")
        XCTAssertEqual(fromConsole.stdout, "d\n", "a call made from the console itself does nothing")
    }

    // MARK: crypto against openssl

    private func openssl(_ arguments: [String], input: Data) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return output
    }

    private func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }

    func testAESAndHMACAreByteIdenticalToOpenSSL() throws {
        let key = "0123456789abcdef"
        let keyHex = hex(Data(key.utf8))
        let iv = "iv-short"
        let ivHex = hex(Data((iv + String(repeating: "\0", count: 16 - iv.count)).utf8))
        for plain in ["", "a", "exactly 16 bytes", "a longer message of 40 bytes, not 32...."] {
            var padded = Data(plain.utf8)
            if padded.count % 16 != 0 { padded += Data(count: 16 - padded.count % 16) }
            let ecb = plain.isEmpty ? "" : hex(try openssl(["enc", "-aes-128-ecb", "-K", keyHex, "-nopad"], input: padded))
            let cbc = plain.isEmpty ? "" : hex(try openssl(["enc", "-aes-128-cbc", "-K", keyHex, "-iv", ivHex, "-nopad"], input: padded))
            let script = """
                local p = "\(plain)"
                print(encoder.toHex(crypto.encrypt("AES-ECB", "\(key)", p)))
                print(encoder.toHex(crypto.encrypt("aes-cbc", "\(key)", p, "\(iv)")))
                print(crypto.decrypt("AES-CBC", "\(key)", crypto.encrypt("AES-CBC", "\(key)", p, "\(iv)"), "\(iv)") == p .. ("\\0"):rep(#\(padded.count == 0 ? "\"\"" : "p") % 16 == 0 and 0 or 16 - #p % 16))
                """
            for profile in ["2.2", "3.0"] {
                let result = try HostProcess.run(["--firmware", profile, "-e", script])
                XCTAssertEqual(result.stdout, "\(ecb)\n\(cbc)\ntrue\n", "plaintext \(plain.debugDescription)")
            }
        }
        let message = "The quick brown fox jumps over the lazy dog"
        for algorithm in ["md5", "sha1", "sha256", "sha384", "sha512"] {
            let digest = String(decoding: try openssl(["dgst", "-" + algorithm, "-hmac", "key", "-r"], input: Data(message.utf8)), as: UTF8.self)
                .split(separator: " ").first.map(String.init) ?? ""
            let plain = String(decoding: try openssl(["dgst", "-" + algorithm, "-r"], input: Data(message.utf8)), as: UTF8.self)
                .split(separator: " ").first.map(String.init) ?? ""
            let result = try HostProcess.run(["-e", """
                print(encoder.toHex(crypto.hmac("\(algorithm.uppercased())", "\(message)", "key")))
                print(encoder.toHex(crypto.hash("\(algorithm)", "\(message)")))
                """])
            XCTAssertEqual(result.stdout, "\(digest)\n\(plain)\n", algorithm)
        }
    }
}
