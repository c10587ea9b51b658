//! Which spans an exporter takes, by the kind of operation (Beyla's
//! `instrumentations` of each exporter, and `features` without
//! `application` for metric exporters): a wrapper in front of any exporter,
//! so that the exporters themselves need not know.

use crate::model::{Operation, Span};

use super::{Exporter, Outgoing, Signal};

/// Beyla's instrumentation names this agent produces spans for; the others
/// it knows of produce none here yet.
pub const PRODUCED: &[&str] = &["http", "grpc", "sql", "redis", "kafka"];

/// Every instrumentation name of Beyla's reference, `*` for all.
pub const KNOWN: &[&str] = &[
    "*",
    "http",
    "grpc",
    "sql",
    "redis",
    "kafka",
    "mqtt",
    "nats",
    "amqp",
    "gpu",
    "mongo",
    "dns",
    "couchbase",
    "genai",
    "memcached",
    "sunrpc",
    "aerospike",
];

/// The operations whose spans an exporter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instrumentations {
    /// Plain HTTP requests (`http`).
    pub http: bool,
    /// gRPC calls (`grpc`).
    pub grpc: bool,
    /// SQL statements (`sql`).
    pub sql: bool,
    /// Redis commands (`redis`).
    pub redis: bool,
    /// Kafka produce and fetch (`kafka`).
    pub kafka: bool,
}

impl Instrumentations {
    pub const ALL: Self = Self {
        http: true,
        grpc: true,
        sql: true,
        redis: true,
        kafka: true,
    };
    pub const NONE: Self = Self {
        http: false,
        grpc: false,
        sql: false,
        redis: false,
        kafka: false,
    };

    /// From Beyla's names (each one of [`KNOWN`]).
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut out = Self::NONE;
        for name in names {
            match name {
                "*" => return Self::ALL,
                "http" => out.http = true,
                "grpc" => out.grpc = true,
                "sql" => out.sql = true,
                "redis" => out.redis = true,
                "kafka" => out.kafka = true,
                _ => {}
            }
        }
        out
    }

    pub fn takes(&self, span: &Span) -> bool {
        match span.request.operation {
            Operation::Http(_) => self.http,
            Operation::Rpc(_) => self.grpc,
            Operation::Sql(_) => self.sql,
            Operation::Redis(_) => self.redis,
            Operation::Kafka(_) => self.kafka,
        }
    }

    /// Beyla's names for what is taken, `*` for all.
    pub fn names(&self) -> Vec<&'static str> {
        if *self == Self::ALL {
            return vec!["*"];
        }
        [
            ("http", self.http),
            ("grpc", self.grpc),
            ("sql", self.sql),
            ("redis", self.redis),
            ("kafka", self.kafka),
        ]
        .into_iter()
        .filter_map(|(name, taken)| taken.then_some(name))
        .collect()
    }
}

/// An exporter that is handed only the spans of some operations.
struct Selective {
    inner: Box<dyn Exporter>,
    takes: Instrumentations,
}

impl Exporter for Selective {
    fn signal(&self) -> Signal {
        self.inner.signal()
    }

    fn send(&mut self, span: &mut Outgoing<'_>) -> bool {
        // A span not taken is not lost: it was not this exporter's.
        !self.takes.takes(span.span()) || self.inner.send(span)
    }

    fn flush(&mut self) {
        self.inner.flush();
    }

    fn close(&mut self) {
        self.inner.close();
    }

    fn finish(self: Box<Self>) {
        self.inner.finish();
    }
}

/// `exporter`, handed only the spans `takes` selects.
pub fn only(exporter: Box<dyn Exporter>, takes: Instrumentations) -> Box<dyn Exporter> {
    if takes == Instrumentations::ALL {
        exporter
    } else {
        Box::new(Selective {
            inner: exporter,
            takes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    /// Counts what it is handed.
    struct Counting(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl Exporter for Counting {
        fn signal(&self) -> Signal {
            Signal::Metrics
        }
        fn send(&mut self, _: &mut Outgoing<'_>) -> bool {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            true
        }
        fn finish(self: Box<Self>) {}
    }

    #[test]
    fn only_the_operations_taken_reach_the_exporter() {
        let http = fixtures::span();
        for (takes, handed) in [
            (Instrumentations::ALL, 1),
            (Instrumentations::from_names(["http"]), 1),
            (Instrumentations::from_names(["grpc", "sql"]), 0),
            (Instrumentations::NONE, 0),
        ] {
            let count = std::sync::Arc::default();
            let mut exporter = only(Box::new(Counting(std::sync::Arc::clone(&count))), takes);
            let mut out = Outgoing {
                span: &http,
                shared: None,
            };
            assert!(exporter.send(&mut out), "never a drop");
            assert_eq!(
                count.load(std::sync::atomic::Ordering::Relaxed),
                handed,
                "{takes:?}"
            );
        }
        assert_eq!(Instrumentations::from_names(["*"]).names(), ["*"]);
        assert_eq!(Instrumentations::from_names(["grpc"]).names(), ["grpc"]);
    }
}
