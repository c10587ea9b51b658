"""An HTTP/1.1 server that answers each request with the exact bytes it
received for it (head and Content-Length body) as the response body: what
arrived on the wire, for tests that check what a client's request became.

Run: python3 echo_server.py ADDRESS PORT  (prints "listening on PORT")
"""

import socket
import sys
import threading

HEAD_END = b"\r\n\r\n"


def content_length(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def serve(conn):
    pending = b""
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            pending += data
            while HEAD_END in pending:
                head, rest = pending.split(HEAD_END, 1)
                length = content_length(head)
                if len(rest) < length:
                    break
                request = head + HEAD_END + rest[:length]
                pending = rest[length:]
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(request) + request
                )


def main():
    address, port = sys.argv[1], int(sys.argv[2])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(16)
    print(f"listening on {port}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
