#!/usr/bin/env python3
"""Sample HTTP/1.1 service for the VM tests: Flask, served by waitress.

Same API as the other apps next to it; see ../README.md. Needs the packages of
requirements.txt, which ../build.sh installs into <repo>/target/apps/venv.
Run: PORT=8080 [DOWNSTREAM_URL=http://127.0.0.1:9000/health] target/apps/venv/bin/python app.py

waitress and not werkzeug's development server: werkzeug 3 sends
`Connection: close` on every response, and these apps must keep HTTP/1.1
connections open. waitress is one process (gunicorn would fork a worker, so
the pid a test starts would not be the pid that serves), reads and writes the
sockets on its main thread and runs the app on a pool of worker threads.
"""
import http.client
import json
import logging
import os
import sys
import urllib.parse

from flask import Flask, Response, request
from waitress import create_server

app = Flask(__name__)


def text(status, body):
    return Response(body, status=status, content_type="text/plain")


def json_reply(status, obj):
    body = json.dumps(obj, separators=(",", ":"))
    return Response(body, status=status, content_type="application/json")


@app.before_request
def only_listed_methods():
    # Flask answers HEAD for every GET route and OPTIONS for every route by
    # itself; the other apps answer 404 to both, so this one does too.
    if request.method in ("HEAD", "OPTIONS"):
        return not_found(None)
    return None


@app.get("/health")
def health():
    return text(200, "ok")


@app.get("/users/<user_id>")
def user(user_id):
    # The raw path segment, as the other apps answer: Flask's user_id is
    # percent-decoded, REQUEST_URI (set by waitress) is not.
    raw = request.environ.get("REQUEST_URI", request.path).split("?", 1)[0]
    return json_reply(200, {"id": raw[len("/users/"):]})


@app.post("/users")
def create_user():
    # waitress has read the whole body (Content-Length or chunked) before the app runs.
    return json_reply(201, {"received": len(request.get_data())})


@app.get("/error")
def error():
    return text(500, "error")


@app.get("/chunked")
def chunked():
    # No Content-Length on an HTTP/1.1 response: waitress sends each item of
    # the iterable as one chunk.
    def parts():
        yield b"part1;"
        yield b"part2;"
        yield b"part3"

    return Response(parts(), status=200, content_type="text/plain")


@app.get("/downstream")
def downstream():
    url = os.environ.get("DOWNSTREAM_URL")
    if not url:
        return text(500, "DOWNSTREAM_URL not set")
    # http.client (not urllib) so no proxy is involved; a new connection per
    # call, made on the worker thread that runs this view.
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
    try:
        conn.request("GET", (u.path or "/") + ("?" + u.query if u.query else ""))
        resp = conn.getresponse()
        resp.read()
        status = resp.status
    except (OSError, http.client.HTTPException):
        return text(502, "downstream error")
    finally:
        conn.close()
    return text(200, "downstream %d" % status)


# Unknown paths (404) and known paths with another method (405, e.g. POST
# /health) both get the same plain 404, as in the other apps.
@app.errorhandler(404)
@app.errorhandler(405)
def not_found(_error):
    return text(404, "not found")


def main():
    port = os.environ.get("PORT")
    if not port:
        sys.exit("PORT environment variable is required")
    # waitress warns "Task queue depth is N" when more requests wait than it
    # has threads (50 concurrent connections do that); that is not an error here.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = create_server(
        app,
        host="127.0.0.1",
        port=int(port),
        threads=8,
        backlog=128,
    )
    # create_server has bound and is listening; run() only starts the loop.
    print(f"listening on {server.effective_port}", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
