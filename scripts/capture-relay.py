"""Records the bytes of TCP connections for the protocol test data.

Usage: capture-relay.py LISTEN_PORT UPSTREAM_PORT OUT_PREFIX
       capture-relay.py --compress-runs IN.cap OUT.cap

Accepts connections on 127.0.0.1:LISTEN_PORT, forwards each to
127.0.0.1:UPSTREAM_PORT and writes it to OUT_PREFIX-<n>.cap (n counts from 1)
until both sides close. Runs until interrupted.

A .cap file is the connection's bytes in the order the relay read them: one
record per read, a direction byte (C: client to server, S: server to client),
the length as 4 bytes big-endian, then the bytes unmodified.

--compress-runs rewrites a capture so that every run of one byte value longer
than 4096 becomes a run record: the direction in lower case (c or s), the run's
length as 4 bytes big-endian, then the byte once. The bytes it stands for are
unchanged; a test reader expands it.
"""

import selectors
import socket
import struct
import sys
import threading


def relay(client, upstream_port, path):
    server = socket.create_connection(("127.0.0.1", upstream_port))
    peers = {client: (server, b"C"), server: (client, b"S")}
    selector = selectors.DefaultSelector()
    for sock in peers:
        selector.register(sock, selectors.EVENT_READ)
    open_ends = 2
    with open(path, "wb") as out:
        while open_ends:
            for key, _ in selector.select():
                sock = key.fileobj
                peer, direction = peers[sock]
                data = sock.recv(65536)
                if not data:
                    selector.unregister(sock)
                    peer.shutdown(socket.SHUT_WR)
                    open_ends -= 1
                    continue
                out.write(direction + struct.pack(">I", len(data)) + data)
                out.flush()
                peer.sendall(data)
    client.close()
    server.close()


RUN_MIN = 4096


def compress_runs(src, dst):
    data = open(src, "rb").read()
    out = bytearray()
    i = 0
    while i < len(data):
        direction = data[i:i + 1]
        (n,) = struct.unpack(">I", data[i + 1:i + 5])
        chunk = data[i + 5:i + 5 + n]
        i += 5 + n
        start = 0
        j = 0
        while j < len(chunk):
            k = j
            while k < len(chunk) and chunk[k] == chunk[j]:
                k += 1
            if k - j > RUN_MIN:
                if j > start:
                    out += direction + struct.pack(">I", j - start) + chunk[start:j]
                out += direction.lower() + struct.pack(">I", k - j) + chunk[j:j + 1]
                start = k
            j = k
        if start < len(chunk):
            out += direction + struct.pack(">I", len(chunk) - start) + chunk[start:]
    open(dst, "wb").write(out)


def main():
    if sys.argv[1] == "--compress-runs":
        compress_runs(sys.argv[2], sys.argv[3])
        return
    listen_port, upstream_port, prefix = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    listener = socket.create_server(("127.0.0.1", listen_port))
    n = 0
    while True:
        client, _ = listener.accept()
        n += 1
        path = f"{prefix}-{n}.cap"
        threading.Thread(target=relay, args=(client, upstream_port, path), daemon=True).start()


if __name__ == "__main__":
    main()
