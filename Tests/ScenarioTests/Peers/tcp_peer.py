#!/usr/bin/env python3
"""A real TCP/UDP peer for the net tests: listens on a free 127.0.0.1 port, prints
the port on the first line, then behaves as MODE says:
echo (TCP echo), close (close each connection at once), reset (RST once data arrives),
noaccept (listen, never accept), blast N (send N bytes, then close), udpecho."""
import socket, struct, sys

mode = sys.argv[1]
if mode == "udpecho":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1], flush=True)
    while True:
        data, addr = s.recvfrom(65536)
        s.sendto(b"echo:" + data, addr)
        if data == b"quit":
            break
    sys.exit(0)

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(8)
print(s.getsockname()[1], flush=True)
if mode == "noaccept":
    sys.stdin.read()  # until the test closes stdin
    sys.exit(0)
while True:
    c, _ = s.accept()
    if mode == "echo":
        while True:
            data = c.recv(65536)
            if not data:
                break
            c.sendall(data)
        c.close()
        break
    if mode == "close":
        c.close()
        break
    if mode == "reset":
        c.recv(1)  # after the client has sent something: it has seen the connection
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        break
    if mode == "blast":
        c.sendall(b"x" * int(sys.argv[2]))
        c.close()
        break
