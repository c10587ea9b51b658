"""An HTTP server that, after answering `GET /exec`, replaces itself (exec)
with the program given as its arguments, handing it the listening socket as
the file descriptor named in LISTEN_FD: the same process, another program.
Each response names the process in `X-Pid`.

    PORT=8080 python3 exec_handoff.py node listen_fd.js
"""
import http.server
import os
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = f"{self.path} from {os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Pid", str(os.getpid()))
        if self.path == "/exec":
            self.send_header("Connection", "close")
            self.close_connection = True
            self.server.exec_next = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


port = int(os.environ["PORT"])
server = http.server.HTTPServer(("127.0.0.1", port), Handler)
server.exec_next = False
print(f"listening on {port}", flush=True)
while not server.exec_next:
    server.handle_request()
fd = server.socket.fileno()
os.set_inheritable(fd, True)
os.execvpe(sys.argv[1], sys.argv[1:], dict(os.environ, LISTEN_FD=str(fd)))
