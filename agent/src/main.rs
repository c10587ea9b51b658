//! beyla: wires the stages together. Kernel events flow reader -> assembler
//! -> decorator -> exporters on one thread, in batches of what one read of the
//! ring buffer held; exporters with threads of their own get spans over
//! bounded channels.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use clap::Parser;

use beyla::assemble::Assembler;
use beyla::config::{Config, Flags};
use beyla::decorate::{Decorator, Routes};
use beyla::discovery::{self, Discovery, ProcessTracker, Registry, Selector};
use beyla::ebpf::{
    self, DecodeError, EventSink, Loaded, PidMap, ProbeSettings, Probes, RingReader, StopSignal,
    Wakeup,
};
use beyla::export::{self, FanOut};
use beyla::model::KernelEvent;
use beyla::sample::Sampler;
use beyla::selfmetrics::{SelfMetrics, Summary};
use beyla::trace;

fn main() -> ExitCode {
    let flags = Flags::parse();
    let config = match Config::from_sources(&flags, &|name| std::env::var(name).ok()) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let routes = match Routes::new(config.routes.clone()) {
        Ok(routes) => routes,
        Err(e) => return fail(&format_args!("routes: {e}")),
    };
    if flags.check_config {
        print!("{}", config.render_effective());
        return ExitCode::SUCCESS;
    }
    env_logger::Builder::new()
        .filter_level(config.log_level)
        // The loader's own debug output is about relocations, not about the agent.
        .filter_module("aya", config.log_level.min(log::LevelFilter::Info))
        .filter_module("aya_obj", config.log_level.min(log::LevelFilter::Info))
        .format_target(false)
        .target(env_logger::Target::Stderr)
        .init();
    if let Err(e) = ebpf::preflight::check() {
        return fail(&e);
    }
    match run(config, routes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("beyla: {error}");
    ExitCode::FAILURE
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Probes(#[from] ebpf::ProbeError),
    #[error(transparent)]
    Export(#[from] export::StartError),
    #[error("cannot create the stop signal: {0}")]
    Stop(std::io::Error),
}

fn run(config: Config, routes: Routes) -> Result<(), RunError> {
    let metrics = Arc::new(SelfMetrics::default());
    let wakeup = Wakeup::from_config(config.ebpf.wakeup_len);
    let selector = Arc::new(Selector::new(
        config.discovery.clone(),
        config.service_name.clone(),
        Arc::from(config.resource_attributes.clone()),
    ));
    let Loaded {
        probes,
        ring,
        pids,
        drops,
        libraries,
        capture_path,
        header_injection: _header_injection,
    } = Probes::load(ProbeSettings {
        capture_size: config.capture_size,
        watch_execs: selector.decides_at_exec(),
        watch_listens: selector.wants_ports(),
        wakeup,
        capture_path: config.ebpf.capture_path,
        propagate_headers: false,
    })?;
    let drops = Arc::new(drops);
    let registry = Registry::default();
    let mut discovery = Discovery::new(
        Arc::clone(&selector),
        registry.clone(),
        Arc::clone(&pids),
        libraries,
    );
    discovery.scan();
    let instrumented = discovery.instrumented();

    let (fan_out, exporters) = export::start(
        &config,
        Sampler::from(config.sampler),
        export::Sources {
            self_metrics: Arc::clone(&metrics),
            kernel_drops: {
                let drops = Arc::clone(&drops);
                move || drops.read()
            },
            instrumented: {
                let instrumented = Arc::clone(&instrumented);
                move || instrumented.load(Ordering::Relaxed)
            },
        },
    )?;
    log::info!(
        "agent ready: {} process(es) instrumented, capture size {} bytes, capture path {capture_path}",
        instrumented.load(Ordering::Relaxed),
        config.capture_size
    );

    let stop = Arc::new(StopSignal::new().map_err(RunError::Stop)?);
    spawn_signal_listener(Arc::clone(&stop));
    // Discovery ends when the pipeline, which holds the other end, is dropped.
    let (process_events, discovery_inbox) = discovery::process_event_queue();
    let discovery = std::thread::spawn(move || discovery.run(discovery_inbox));

    let mut pipeline = Pipeline {
        assembler: Assembler::new(registry.clone(), Arc::clone(&metrics)),
        decorator: Decorator::new(trace::WallClock::measure(), routes),
        fan_out,
        processes: ProcessTracker::new(
            selector,
            registry,
            pids,
            process_events,
            Arc::clone(&metrics),
        ),
        metrics: Arc::clone(&metrics),
    };
    let mut reader = RingReader::new(ring, wakeup.reader_polls());
    reader.read_until_stopped(&stop, &mut pipeline);
    // Detached first, so nothing new arrives while the ring is drained.
    probes.detach();
    reader.drain(&mut pipeline);
    pipeline.assembler.close_all();
    pipeline.drained();
    drop(pipeline);
    let _ = discovery.join();
    exporters.join();
    log::info!("stopped: {}", Summary(&metrics, drops.read()));
    Ok(())
}

/// The stages after the ring buffer, fed on the reader's thread.
struct Pipeline {
    assembler: Assembler,
    decorator: Decorator,
    fan_out: FanOut,
    processes: ProcessTracker<PidMap>,
    metrics: Arc<SelfMetrics>,
}

impl EventSink for Pipeline {
    fn event(&mut self, event: Result<KernelEvent<'_>, DecodeError>) {
        self.metrics.events_read.inc();
        match event {
            Ok(KernelEvent::Data(chunk)) => self.assembler.on_data(&chunk),
            Ok(KernelEvent::Close { conn, .. }) => self.assembler.on_close(conn),
            Ok(KernelEvent::Exec { pid, filename }) => self.processes.exec(pid, filename),
            Ok(KernelEvent::Fork { parent, child }) => self.processes.fork(parent, child),
            Ok(KernelEvent::Exit { pid }) => self.processes.exit(pid),
            Ok(KernelEvent::Listen {
                pid,
                port,
                listening,
            }) => self.processes.listen(pid, port, listening),
            Err(e) => {
                self.metrics.events_undecodable.inc();
                log::debug!("undecodable ring buffer record: {e:?}");
            }
        }
    }

    fn drained(&mut self) {
        for request in self.assembler.finished() {
            self.metrics.spans_created.inc();
            let decorated = self.decorator.decorate(request);
            self.fan_out
                .send(decorated.span, decorated.to_traces, decorated.to_metrics);
        }
        self.fan_out.flush();
    }
}

/// The first SIGINT/SIGTERM starts an orderly stop; a second one exits at once.
fn spawn_signal_listener(stop: Arc<StopSignal>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).expect("signal handlers");
    std::thread::spawn(move || {
        let mut forever = signals.forever();
        if forever.next().is_some() {
            log::info!("stopping: detaching probes and flushing");
            stop.raise();
        }
        if forever.next().is_some() {
            std::process::exit(1);
        }
    });
}
