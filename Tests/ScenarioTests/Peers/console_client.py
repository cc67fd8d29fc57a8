#!/usr/bin/env python3
"""An outside client for a device's telnet console: connects to 127.0.0.1:PORT, reads
the banner (up to its first newline), then sends each further argument as a line and
reads until the interpreter's next prompt ("> " or ">> ") arrives. Prints the banner
and each answer, prompts included, as Python string literals, one per line."""
import socket, sys

port = int(sys.argv[1])
with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
    received = b""
    while b"\n" not in received:
        chunk = c.recv(4096)
        if not chunk:
            break
        received += chunk
    print(repr(received.decode()), flush=True)
    for line in sys.argv[2:]:
        c.sendall(line.encode() + b"\r\n")
        received = b""
        while not (received.endswith(b"> ")):
            chunk = c.recv(4096)
            if not chunk:
                break
            received += chunk
        print(repr(received.decode()), flush=True)
