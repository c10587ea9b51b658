"""Drives a Redis server with redis-py over RESP2 and prints one line per command.

Usage: redis_client.py HOST:PORT N

The same operations as the other Redis clients: N SET and GET, a pipeline of N
INCR, N failing LPUSH (WRONGTYPE) and INCR (ERR; redis-py sends INCRBY), N MULTI/EXEC transactions,
then pub/sub: SUBSCRIBE on a second connection, N PUBLISH, N messages read.
Lines: "sent COMMAND ok", "sent COMMAND error PREFIX", "received message CHANNEL".
It starts once it reads a line on standard input: a test sends it when the agent traces
the process.
"""

import sys

import redis

# Every client selects this database, so spans carry db.namespace.
DATABASE = 1


def sent(name, error=None):
    if error is None:
        print(f"sent {name} ok", flush=True)
        return
    # redis-py drops the "ERR " of generic errors and keeps other codes (WRONGTYPE ...).
    first = str(error).split(" ")[0]
    code = first if first.isupper() else "ERR"
    print(f"sent {name} error {code}", flush=True)


def call(name, fn, *args):
    try:
        fn(*args)
    except redis.ResponseError as error:
        sent(name, error)
    else:
        sent(name)


def main():
    sys.stdin.readline()
    host, port = sys.argv[1].rsplit(":", 1)
    count = int(sys.argv[2])
    client = redis.Redis(host=host, port=int(port), db=DATABASE, protocol=2)
    client.ping()
    sent("PING")

    for i in range(count):
        call("SET", client.set, f"kv:{i}", f"v{i}")
        call("GET", client.get, f"kv:{i}")

    pipe = client.pipeline(transaction=False)
    for _ in range(count):
        pipe.incr("kv:counter")
    # redis-py sends INCR as INCRBY key 1.
    for _ in pipe.execute():
        sent("INCRBY")

    for _ in range(count):
        call("LPUSH", client.lpush, "kv:0", "x")
        call("INCRBY", client.incr, "kv:0")

    for _ in range(count):
        tx = client.pipeline(transaction=True)
        tx.set("kv:tx", "1")
        tx.incr("kv:tx")
        tx.execute()
        for name in ("MULTI", "SET", "INCRBY", "EXEC"):
            sent(name)

    subscriber = redis.Redis(host=host, port=int(port), db=DATABASE, protocol=2)
    pubsub = subscriber.pubsub()
    pubsub.subscribe("kv:events")
    confirmation = pubsub.get_message(timeout=10)
    assert confirmation and confirmation["type"] == "subscribe", confirmation
    sent("SUBSCRIBE")
    for i in range(count):
        call("PUBLISH", client.publish, "kv:events", f"event {i}")
    received = 0
    while received < count:
        message = pubsub.get_message(timeout=10)
        if message is None:
            raise SystemExit(f"only {received} of {count} messages arrived")
        if message["type"] == "message":
            print(f"received message {message['channel'].decode()}", flush=True)
            received += 1
    pubsub.close()
    subscriber.close()
    client.close()


if __name__ == "__main__":
    main()
