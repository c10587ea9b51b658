"""Makes N GET requests to URL over one keep-alive http.client connection.

Usage: python_client.py URL N

Prints one line per request, "<status> <start_ns> <end_ns>": wall-clock
nanoseconds from before the request is sent to after its body is read, so the
test can check each span's times against its own request.
"""

import http.client
import sys
import time
import urllib.parse


def main():
    url = urllib.parse.urlsplit(sys.argv[1])
    count = int(sys.argv[2])
    target = url.path + ("?" + url.query if url.query else "")
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    for _ in range(count):
        start = time.time_ns()
        connection.request("GET", target)
        response = connection.getresponse()
        response.read()
        end = time.time_ns()
        print(response.status, start, end, flush=True)
    connection.close()


if __name__ == "__main__":
    main()
