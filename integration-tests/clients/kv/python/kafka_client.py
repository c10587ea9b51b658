"""Produces N records with kafka-python, one Produce request each, then fetches them back.

Usage: kafka_client.py HOST:PORT N TOPIC

Lines: "sent produce ok TOPIC PARTITION" and "received TOPIC PARTITION OFFSET".
It starts once it reads a line on standard input: a test sends it when the agent traces
the process.
"""

import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

CLIENT_ID = "beyla-kv-python"


def main():
    sys.stdin.readline()
    bootstrap, count, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id=CLIENT_ID, acks="all", linger_ms=0)
    for i in range(count):
        sent = producer.send(topic, key=str(i).encode(), value=f"record {i}".encode(), partition=0).get(timeout=30)
        print(f"sent produce ok {sent.topic} {sent.partition}", flush=True)
    producer.close()

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=CLIENT_ID,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    received = 0
    for _ in range(150):
        for records in consumer.poll(timeout_ms=200).values():
            for record in records:
                print(f"received {record.topic} {record.partition} {record.offset}", flush=True)
                received += 1
        if received >= count:
            break
    consumer.close()
    if received < count:
        raise SystemExit(f"only {received} of {count} records arrived")


if __name__ == "__main__":
    main()
