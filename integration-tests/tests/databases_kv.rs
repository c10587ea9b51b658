//! Redis and Kafka: the real servers (redis-server, a KRaft Kafka broker) started by the suite,
//! driven by real clients in Go, Python, Node and Java. Run as root with `--test-threads=1`.

use std::collections::BTreeMap;

use integration_tests::databases::kafka::kafka_broker;
use integration_tests::databases::kv_clients::{run, ClientRun, KvClient};
use integration_tests::databases::redis::redis_server;

/// Operations of each kind every client makes.
const N: usize = 5;

/// How many of each command (and with which error code) a client's Redis scenario sends, by
/// the client's own account: N SET and GET, a pipeline of N INCR, N failing LPUSH and INCR,
/// N MULTI / SET / INCR / EXEC, one SUBSCRIBE and N PUBLISH.
fn expected_redis_commands(client: KvClient) -> BTreeMap<(String, Option<String>), usize> {
    // redis-py sends INCR as INCRBY key 1.
    let incr = if client == KvClient::Python {
        "INCRBY"
    } else {
        "INCR"
    };
    let mut counts = BTreeMap::new();
    let mut add = |name: &str, error: Option<&str>, n: usize| {
        *counts
            .entry((name.to_string(), error.map(str::to_string)))
            .or_insert(0) += n;
    };
    add("PING", None, 1);
    add("SET", None, 2 * N);
    add("GET", None, N);
    add(incr, None, 2 * N);
    add("LPUSH", Some("WRONGTYPE"), N);
    add(incr, Some("ERR"), N);
    add("MULTI", None, N);
    add("EXEC", None, N);
    add("SUBSCRIBE", None, 1);
    add("PUBLISH", None, N);
    if client == KvClient::Java {
        // Jedis selects the database with a command of its own on each connection, and
        // unsubscribes before it closes the subscriber.
        add("SELECT", None, 2);
        add("UNSUBSCRIBE", None, 1);
    }
    counts
}

fn counted(run: &ClientRun) -> BTreeMap<(String, Option<String>), usize> {
    let mut counts = BTreeMap::new();
    for sent in &run.sent {
        *counts
            .entry((sent.name.clone(), sent.error.clone()))
            .or_insert(0) += 1;
    }
    counts
}

#[test]
fn redis_clients_run_their_scenario_against_redis_server() {
    let server = redis_server();
    for client in KvClient::ALL {
        let run = run(client.redis(server.port, N));
        assert_eq!(
            counted(&run),
            expected_redis_commands(client),
            "{client:?}\n{}",
            run.stdout
        );
        assert_eq!(run.received.len(), N, "{client:?} messages\n{}", run.stdout);
    }
}

#[test]
fn kafka_clients_produce_and_fetch_against_a_kraft_broker() {
    let broker = kafka_broker();
    for client in KvClient::KAFKA {
        let topic =
            format!("beyla-kv-{client:?}-{}", integration_tests::random_hex(4)).to_lowercase();
        let run = run(client.kafka(broker.port, N, &topic));
        assert_eq!(run.sent.len(), N, "{client:?}\n{}", run.stdout);
        assert!(run
            .sent
            .iter()
            .all(|s| s.name == "produce" && s.error.is_none()));
        let offsets: Vec<String> = (0..N).map(|i| format!("received {topic} 0 {i}")).collect();
        assert_eq!(run.received, offsets, "{client:?}\n{}", run.stdout);
    }
}
