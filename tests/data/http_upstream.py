"""An HTTP/1.1 upstream for test_proto_http: keep-alive, Content-Length
and chunked bodies. Usage: http_upstream.py PORT"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, body, ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_any(self):
        got = self.body()
        if self.path == "/big":
            return self.reply(200, b"x" * 100000)
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Sum")
            self.end_headers()
            for part in (b"alpha-", b"beta-" * 1000, b"gamma"):
                self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nX-Sum: 3\r\n\r\n")
            return
        if self.path == "/json":
            return self.reply(200, b'{"ok": true}', "application/json")
        if self.path == "/nocontent":
            self.send_response(204)
            self.end_headers()
            return
        self.reply(200, b"%s %s %d" % (self.command.encode(),
                                       self.path.encode(), len(got)))

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_any


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
