"""An HTTP service that asks PostgreSQL while serving: GET /users/<id> runs
`SELECT name FROM users WHERE id = $1` on one psycopg connection, on the thread
that serves the request, and answers the name.

Usage: http_server.py PORT POSTGRES_PORT
Prints "listening" once it accepts requests.
"""

import http.server
import sys

import psycopg


def main():
    port, pg_port = int(sys.argv[1]), int(sys.argv[2])
    conn = psycopg.connect(host="127.0.0.1", port=pg_port, user="beyla", dbname="beyla",
                           sslmode="disable", autocommit=True)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            user_id = int(self.path.rsplit("/", 1)[-1])
            row = conn.execute("SELECT name FROM users WHERE id = %s", (user_id,)).fetchone()
            body = (row[0] if row else "").encode()
            self.send_response(200 if row else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
