"""An HTTP server that forks a child for every connection (socketserver's
ForkingMixIn, as classic fork-on-accept daemons do): the child answers the
connection's requests and exits. Each response names the child in `X-Pid`.

    PORT=8080 python3 forking_server.py
"""
import http.server
import os
import socketserver


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = f"{self.path} from {os.getpid()}\n".encode()
        self.send_response(404 if self.path.startswith("/missing") else 200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Pid", str(os.getpid()))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(socketserver.ForkingMixIn, http.server.HTTPServer):
    pass


port = int(os.environ["PORT"])
server = Server(("127.0.0.1", port), Handler)
print(f"listening on {port}", flush=True)
server.serve_forever()
