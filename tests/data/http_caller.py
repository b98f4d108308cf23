"""A target for test_proto_http: GET /call calls the http dependency
(PAY_URL) and answers with its status, Retry-After and body."""
import os
import sys
import requests
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAY = os.environ["PAY_URL"]
session = requests.Session()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/health":
            status, body, extra = 200, b"ok", {}
        else:
            try:
                r = session.post(PAY + "/v1/charge", json={"amount": 1},
                                 timeout=2)
                status, body = r.status_code, r.content
                extra = {"Retry-After": r.headers["Retry-After"]} \
                    if "Retry-After" in r.headers else {}
            except requests.RequestException as e:
                status, body, extra = 502, type(e).__name__.encode(), {}
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
