"""An HTTP server whose every GET /redis/<key> reads that key from Redis with redis-py.

Usage: redis_http_server.py PORT REDIS_HOST:REDIS_PORT

Single-threaded (http.server.HTTPServer), so each request's Redis call is made on the thread
that serves it: the agent makes the call a child of the request's span. The Redis connection
is opened by the first request. Prints "listening on PORT" once it accepts connections.
"""

import http.server
import sys

import redis

# Every client selects this database, so spans carry db.namespace.
DATABASE = 1


def main():
    port = int(sys.argv[1])
    host, redis_port = sys.argv[2].rsplit(":", 1)
    client = redis.Redis(host=host, port=int(redis_port), db=DATABASE, protocol=2)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            key = self.path.rsplit("/", 1)[-1]
            value = client.get(key) or b""
            self.send_response(200)
            self.send_header("Content-Length", str(len(value)))
            self.end_headers()
            self.wfile.write(value)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
