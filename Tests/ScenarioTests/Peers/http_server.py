#!/usr/bin/env python3
"""The HTTP server of the http tests: http.server on a free 127.0.0.1 port (printed
first). Paths: /ok, /big?n=N, /chunked, /redirect (302 → /ok), /dir/rel (301 → "ok",
relative: /dir/ok), /dir/ok, /loop (302 → /loop), /missing (404), POST/PUT /echo."""
import http.server, sys

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body, headers=()):
        self.send_response(code)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path
        if path == "/ok" or path == "/dir/ok":
            agent = self.headers.get("User-Agent", "")
            self.reply(200, ("ok " + path + " " + agent + " " + self.headers.get("X-Mine", "")).encode(),
                       [("X-Dup", "first"), ("X-Dup", "second")])
        elif path.startswith("/big"):
            n = int(path.split("=")[1])
            self.reply(200, b"b" * n)
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/redirect":
            self.reply(302, b"", [("Location", "/ok")])
        elif path == "/dir/rel":
            self.reply(301, b"", [("Location", "ok")])
        elif path == "/loop":
            self.reply(302, b"", [("Location", "/loop")])
        else:
            self.reply(404, b"not found")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(length)
        self.reply(201, b"got " + data)

    do_PUT = do_POST

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
