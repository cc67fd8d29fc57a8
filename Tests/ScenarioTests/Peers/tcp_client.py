#!/usr/bin/env python3
"""An outside client for a server in a script: connects to 127.0.0.1:PORT, sends each
further argument and prints what comes back (one line per exchange)."""
import socket, sys

port = int(sys.argv[1])
with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
    for message in sys.argv[2:]:
        c.sendall(message.encode())
        print(c.recv(65536).decode(), flush=True)
