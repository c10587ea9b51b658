"""A client whose requests test what context propagation may change: over one
connection to echo_server.py, each case's writes, then the bytes the server
received for each of its requests (the echo). Waits for a line on stdin
before connecting, so that the agent traces it first.

Run: python3 propagation_client.py ADDRESS PORT
Prints one JSON object per case: {"case", "writes": [hex], "echoed": [hex]}.
"""

import json
import socket
import sys

OWN_TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
BODY = b'{"name":"a body","bytes":[1,2,3],"end":true}'
# A body that looks like a request line: never to be touched.
REQUEST_LIKE_BODY = b"GET /inside-a-body HTTP/1.1\r\nHost: nowhere\r\n\r\n"

CASES = [
    # (name, writes, requests the server receives)
    ("plain", [b"GET /plain HTTP/1.1\r\nHost: back\r\n\r\n"], 1),
    (
        "own_traceparent",
        [b"GET /own HTTP/1.1\r\nHost: back\r\nTraceParent: " + OWN_TRACEPARENT + b"\r\n\r\n"],
        1,
    ),
    (
        "body",
        [b"POST /body HTTP/1.1\r\nHost: back\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY],
        1,
    ),
    (
        "pipelined",
        [b"GET /first HTTP/1.1\r\nHost: back\r\n\r\nGET /second HTTP/1.1\r\nHost: back\r\n\r\n"],
        2,
    ),
    (
        "body_written_apart",
        [
            b"POST /apart HTTP/1.1\r\nHost: back\r\nContent-Length: %d\r\n\r\n"
            % len(REQUEST_LIKE_BODY),
            REQUEST_LIKE_BODY,
        ],
        1,
    ),
]


def read_response(conn, pending):
    while b"\r\n\r\n" not in pending:
        pending += conn.recv(65536)
    head, rest = pending.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        rest += conn.recv(65536)
    return rest[:length], rest[length:]


def main():
    address, port = sys.argv[1], int(sys.argv[2])
    sys.stdin.readline()
    conn = socket.create_connection((address, port))
    pending = b""
    for name, writes, requests in CASES:
        for data in writes:
            conn.sendall(data)
        echoed = []
        for _ in range(requests):
            body, pending = read_response(conn, pending)
            echoed.append(body.hex())
        print(json.dumps({"case": name, "writes": [w.hex() for w in writes], "echoed": echoed}), flush=True)
    conn.close()


if __name__ == "__main__":
    main()
