//! Makes N GET requests to URL with one reqwest client (one keep-alive
//! connection), for the client-span tests.
//!
//! Usage: rust-client [--rustls] URL N
//!
//! It starts once it has read a line on stdin, so a test can first see it
//! traced. HTTPS goes through native-tls (OpenSSL on Linux), or rustls with
//! `--rustls`; the test's self-signed certificate is accepted. Prints one
//! line per request, "<status> <start_ns> <end_ns>": wall-clock nanoseconds
//! from before the request is sent to after its body is read.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TIMEOUT: Duration = Duration::from_secs(30);

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let rustls = args.first().is_some_and(|a| a == "--rustls");
    if rustls {
        args.remove(0);
    }
    let [url, count] = &args[..] else {
        eprintln!("usage: rust-client [--rustls] URL N");
        std::process::exit(2);
    };
    let count: usize = count.parse().unwrap_or_else(|_| {
        eprintln!("N must be a number, not {count}");
        std::process::exit(2);
    });
    let builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .danger_accept_invalid_certs(true);
    let builder = if rustls {
        builder.use_rustls_tls()
    } else {
        builder.use_native_tls()
    };
    let client = builder.build().expect("a reqwest client");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).expect("read stdin");
    for _ in 0..count {
        let start = now_ns();
        let answer = client.get(url).send().await.expect("the request");
        let status = answer.status().as_u16();
        answer.bytes().await.expect("the body");
        println!("{status} {start} {}", now_ns());
    }
}
