#!/usr/bin/env python3
"""Sample HTTP/1.1 service for the VM tests (standard library only, but for
the database clients of the /db endpoints: psycopg, PyMySQL and redis-py,
installed by ../build-frameworks.sh into target/apps/python-db and imported
when first used).

Same API as the Node, Go and Java apps next to it; see ../README.md.
Run: PORT=8080 [DOWNSTREAM_URL=http://127.0.0.1:9000/health] python3 server.py
"""
import http.client
import json
import os
import ssl
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The database clients' directory (pip install --target), relative to the repository.
DB_CLIENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                          "target", "apps", "python-db")
# What each /db endpoint runs: the statement, and the Redis key it increments.
SQL_STATEMENT = "SELECT 42 AS answer"
REDIS_KEY = "beyla:hits"
DB_NAME = "beyla"  # the user, password and database of both SQL servers
DB_TIMEOUT = 10


def query_postgres(host, port):
    import psycopg
    # autocommit: no BEGIN before the statement.
    with psycopg.connect(host=host, port=port, user=DB_NAME, dbname=DB_NAME, autocommit=True,
                         connect_timeout=DB_TIMEOUT) as conn:
        return conn.execute(SQL_STATEMENT).fetchone()[0]


def query_mysql(host, port):
    import pymysql
    # autocommit=None: no SET AUTOCOMMIT at connect.
    conn = pymysql.connect(host=host, port=port, user=DB_NAME, password=DB_NAME, database=DB_NAME,
                           autocommit=None, connect_timeout=DB_TIMEOUT)
    try:
        with conn.cursor() as cursor:
            cursor.execute(SQL_STATEMENT)
            return cursor.fetchone()[0]
    finally:
        conn.close()


def query_redis(host, port):
    import redis
    # No CLIENT SETINFO at connect: the connection carries our command only.
    client = redis.Redis(host=host, port=port, socket_timeout=DB_TIMEOUT, lib_name=None, lib_version=None)
    try:
        return client.incr(REDIS_KEY)
    finally:
        client.close()


DATABASES = {
    "postgres": ("POSTGRES_ADDR", query_postgres),
    "mysql": ("MYSQL_ADDR", query_mysql),
    "redis": ("REDIS_ADDR", query_redis),
}


class Server(ThreadingHTTPServer):
    daemon_threads = True  # don't let open keep-alive connections block exit
    request_queue_size = 128  # the default backlog of 5 drops SYNs under 50 concurrent clients


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep connections open between requests
    # No socket timeout, as http.server has by default: handler threads block in
    # read() on idle keep-alive connections, which the agent must time correctly.
    timeout = None

    def log_message(self, format, *args):
        pass  # quiet: no access log line per request

    # Every method goes through one router; unknown routes get 404.
    def do_GET(self):
        self.route()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def route(self):
        # Always consume the body, so the next request on this connection starts in the right place.
        body = self.read_body()
        path = self.path.split("?", 1)[0]
        get = self.command == "GET"
        user_id = path[len("/users/"):] if path.startswith("/users/") else ""
        if get and path == "/health":
            self.reply(200, b"ok")
        elif get and user_id and "/" not in user_id:
            self.reply_json(200, {"id": user_id})
        elif self.command == "POST" and path == "/users":
            self.reply_json(201, {"received": len(body)})
        elif get and path == "/error":
            self.reply(500, b"error")
        elif get and path == "/chunked":
            self.chunked()
        elif get and path == "/downstream":
            self.downstream()
        elif get and path.startswith("/db/") and path[len("/db/"):] in DATABASES:
            self.database(path[len("/db/"):])
        else:
            self.reply(404, b"not found")

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:  # <hex size>[;ext]\r\n<data>\r\n ... 0\r\n[trailers]\r\n
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status, body, content_type="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":  # a HEAD response has headers only
            self.wfile.write(body)

    def reply_json(self, status, obj):
        self.reply(status, json.dumps(obj, separators=(",", ":")).encode(), "application/json")

    def chunked(self):
        # http.server has no chunked encoder, so write the framing by hand.
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for part in (b"part1;", b"part2;", b"part3"):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.flush()  # one write per chunk
        self.wfile.write(b"0\r\n\r\n")

    def downstream(self):
        url = os.environ.get("DOWNSTREAM_URL")
        if not url:
            return self.reply(500, b"DOWNSTREAM_URL not set")
        # http.client (not urllib) so no proxy is involved; a new connection per call, on this thread.
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
        try:
            conn.request("GET", (u.path or "/") + ("?" + u.query if u.query else ""))
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException):
            return self.reply(502, b"downstream error")
        finally:
            conn.close()
        self.reply(200, b"downstream %d" % status)


    def database(self, store):
        variable, query = DATABASES[store]
        addr = os.environ.get(variable)
        if not addr:
            return self.reply(500, f"{variable} not set".encode())
        if DB_CLIENTS not in sys.path:
            sys.path.append(DB_CLIENTS)
        host, port = addr.rsplit(":", 1)
        try:
            n = query(host, int(port))
        except Exception:  # the client's own errors: any of them is a failed call
            return self.reply(502, f"{store} error".encode())
        self.reply(200, f"{store} {n}".encode())


def main():
    port = os.environ.get("PORT")
    if not port:
        sys.exit("PORT environment variable is required")
    server = Server(("127.0.0.1", int(port)), Handler)
    # HTTPS when given a certificate: the same API over TLS (libssl).
    if os.environ.get("TLS_CERT"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.environ["TLS_CERT"], os.environ["TLS_KEY"])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
