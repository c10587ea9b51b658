//! The user-space cost of one HTTP/1 request, as the agent runs with
//! Prometheus as its exporter: the request's and the response's kernel chunks
//! (captured Go bytes) through the assembler, the decorator and the
//! Prometheus metrics, on one keep-alive connection.
//!
//! cargo bench -p beyla-pipeline --bench pipeline
//!
//! Prints the heap allocations per request first (a counting global
//! allocator; the goal is 0 once the connection and the series exist), then
//! Criterion's time per request.
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use beyla_pipeline::assemble::Assembler;
use beyla_pipeline::decorate::{Decorator, Routes, RoutesSettings};
use beyla_pipeline::export::prometheus::{Metrics, MAX_SERIES};
use beyla_pipeline::model::Registry;
use beyla_pipeline::model::{
    ConnId, ConnTuple, DataChunk, Direction, Host, Origin, Pid, Resource, Span, Tid,
};
use beyla_pipeline::selfmetrics::SelfMetrics;
use beyla_pipeline::trace::WallClock;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// The system allocator, counting every allocation and reallocation.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const REQUEST: &[u8] = include_bytes!("../src/protocols/http1/testdata/go_get.bin");
const RESPONSE: &[u8] = include_bytes!("../src/protocols/http1/testdata/go_response.bin");
const PID: Pid = Pid(10);

/// The stages after the ring buffer, as the agent's pipeline thread runs them.
struct Pipeline {
    assembler: Assembler,
    decorator: Decorator,
    metrics: Metrics,
    spans: Vec<Span>,
    clock_ns: u64,
}

impl Pipeline {
    fn new() -> Self {
        let registry = Registry::default();
        registry.insert(Resource {
            service_name: "hello".into(),
            service_namespace: String::new(),
            pid: PID,
            attributes: Arc::from([]),
            kubernetes: None,
            language: Default::default(),
        });
        Self {
            assembler: Assembler::new(registry, Arc::new(SelfMetrics::default()), true),
            decorator: Decorator::new(
                WallClock::measure(),
                Routes::new(RoutesSettings::default()).expect("default routes"),
            ),
            metrics: Metrics::new(
                Arc::new(Host {
                    name: "bench".into(),
                    id: "bench".into(),
                }),
                Duration::from_secs(300),
                MAX_SERIES,
                Arc::default(),
            ),
            spans: Vec::new(),
            clock_ns: 1_000_000,
        }
    }

    fn chunk(&mut self, direction: Direction, data: &[u8]) {
        self.clock_ns += 20_000;
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        self.assembler.on_data(&DataChunk {
            pid: PID,
            tid: Tid(11),
            conn: ConnId(1),
            direction,
            origin: Origin::Accept,
            tuple: ConnTuple {
                local,
                local_port: 8080,
                remote: local,
                remote_port: 40_000,
            },
            start_mono_ns: self.clock_ns,
            end_mono_ns: self.clock_ns + 2_000,
            bytes: data.len() as u64,
            tls: false,
            data,
        });
    }

    /// One request and its response, up to the recorded histogram.
    fn request(&mut self) {
        self.chunk(Direction::Ingress, REQUEST);
        self.chunk(Direction::Egress, RESPONSE);
        for request in self.assembler.finished() {
            let decorated = self.decorator.decorate(request);
            self.spans.push(decorated.span);
        }
        let now = Instant::now();
        for span in self.spans.drain(..) {
            self.metrics.record(black_box(&span), now);
        }
    }
}

fn allocations_per_request() {
    const REQUESTS: u64 = 100_000;
    let mut pipeline = Pipeline::new();
    // The connection, its stitcher and the series are made once.
    for _ in 0..1_000 {
        pipeline.request();
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..REQUESTS {
        pipeline.request();
    }
    let made = ALLOCATIONS.load(Ordering::Relaxed) - before;
    println!(
        "pipeline: {:.3} heap allocations per request ({made} in {REQUESTS} requests)",
        made as f64 / REQUESTS as f64
    );
}

fn bench(c: &mut Criterion) {
    allocations_per_request();
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(1));
    let mut pipeline = Pipeline::new();
    group.bench_function("go request and response", |b| b.iter(|| pipeline.request()));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
