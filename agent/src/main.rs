//! beyla: wires the stages together. Kernel events flow reader -> assembler
//! -> decorator -> exporters on one thread, in batches of what one read of the
//! ring buffer held; process events (exec, fork, exit, listen) are settled on
//! that thread as far as the next record needs, and forwarded to discovery.
//! Everything else (signals, discovery's task, the exporters' queues and the
//! metrics endpoint) runs as tasks of the control plane, which the reader
//! never waits for.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::StreamExt;

use beyla::config::{Config, Flags, LogFormat};
use beyla::discovery::{self, Discovery, ProcessTracker, Selector};
use beyla::ebpf::{
    self, DecodeError, EventSink, Loaded, PidMap, ProbeSettings, Probes, RingReader, StopSignal,
    Wakeup,
};
use beyla::kubernetes;
use beyla_pipeline::assemble::Assembler;
use beyla_pipeline::control::Control;
use beyla_pipeline::decorate::{Decorator, OwnTelemetry, Routes};
use beyla_pipeline::export::{self, FanOut};
use beyla_pipeline::model::{Host, KernelEvent, Registry};
use beyla_pipeline::sample::Sampler;
use beyla_pipeline::selfmetrics::{Counter, SelfMetrics, Summary};
use beyla_pipeline::trace;

/// Time on top of `shutdown_timeout` for the probes to detach and the ring
/// buffer to drain before the agent gives up on an orderly stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let flags = Flags::from_command_line(std::env::args());
    let config = match Config::from_sources(&flags, std::env::vars()) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let routes = match Routes::new(config.routes.clone()) {
        Ok(routes) => routes,
        Err(e) => return fail(&format_args!("routes: {e}")),
    };
    if flags.check_config {
        for warning in &config.warnings {
            eprintln!("beyla: warning: {warning}");
        }
        print!("{}", config.render_effective());
        return ExitCode::SUCCESS;
    }
    beyla_pipeline::protocols::sql::set_query_text(config.sql_query_text);
    let mut logger = env_logger::Builder::new();
    logger
        .filter_level(config.log_level)
        // The loader's own debug output is about relocations, not about the agent.
        .filter_module("aya", config.log_level.min(log::LevelFilter::Info))
        .filter_module("aya_obj", config.log_level.min(log::LevelFilter::Info))
        .format_target(false)
        .target(env_logger::Target::Stderr);
    if config.log_format == LogFormat::Json {
        logger.format(|out, record| {
            use std::io::Write;
            let line = serde_json::json!({
                "time": out.timestamp_millis().to_string(),
                "level": record.level().as_str(),
                "msg": record.args().to_string(),
            });
            writeln!(out, "{line}")
        });
    }
    logger.init();
    for warning in &config.warnings {
        log::warn!("{warning}");
    }
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
    #[error("cannot start the control thread: {0}")]
    Control(std::io::Error),
    #[error("cannot handle SIGINT and SIGTERM: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Kubernetes(#[from] kubernetes::StartError),
}

fn run(config: Config, routes: Routes) -> Result<(), RunError> {
    // Signals are handled from the start: a stop asked for while the probes
    // load is an orderly stop too.
    let control = Control::start().map_err(RunError::Control)?;
    let stop = Arc::new(StopSignal::new().map_err(RunError::Stop)?);
    let signals =
        async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int])
            .map_err(RunError::Signals)?;
    control
        .spawn(on_signals(
            signals,
            Arc::clone(&stop),
            config.shutdown_timeout,
        ))
        .detach();
    let metrics = Arc::new(SelfMetrics::default());
    let kubernetes = kubernetes::Metadata::start_for(
        &config.kubernetes,
        &config.discovery,
        Arc::clone(&metrics),
    )?;
    metrics.add(
        Counter::ConfigSettingsIgnored,
        config
            .warnings
            .iter()
            .filter(|w| w.is_unsupported())
            .count() as u64,
    );
    let wakeup = Wakeup::from_config(config.ebpf.wakeup_len);
    let selector = Arc::new(Selector::new(
        config.discovery.clone(),
        config.service_name.clone(),
        Arc::from(config.resource_attributes.clone()),
        kubernetes,
    ));
    let Loaded {
        probes,
        ring,
        pids,
        drops,
        libraries,
        capture_path,
        header_injection,
    } = Probes::load(ProbeSettings {
        capture_size: config.capture_size,
        watch_execs: selector.decides_at_exec(),
        watch_listens: selector.wants_ports(),
        wakeup,
        capture_path: config.ebpf.capture_path,
        propagate_headers: config.ebpf.context_propagation.headers(),
        metrics: Arc::clone(&metrics),
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

    let context = export::Context {
        control: control.clone(),
        self_metrics: Arc::clone(&metrics),
        kernel_drops: {
            let drops = Arc::clone(&drops);
            Arc::new(move || drops.read())
        },
        instrumented: {
            let instrumented = Arc::clone(&instrumented);
            Arc::new(move || instrumented.load(Ordering::Relaxed))
        },
        shutdown_timeout: config.shutdown_timeout,
        host: Arc::new(Host::detect()),
    };
    let fan_out = export::start(&config.export, Sampler::from(config.sampler), &context)?;
    log::info!(
        "agent ready: {} process(es) instrumented, capture size {} bytes, capture path {capture_path}",
        instrumented.load(Ordering::Relaxed),
        config.capture_size
    );

    // The reader's ProcessTracker forwards process events to discovery's
    // task, which ends once the pipeline, holding the other end, is dropped.
    let (process_events, discovery_inbox) = discovery::process_event_queue();
    let discovery = control.spawn(discovery.run(discovery_inbox));

    let mut pipeline = Pipeline {
        assembler: Assembler::new(
            registry.clone(),
            Arc::clone(&metrics),
            config.ebpf.track_request_headers,
        ),
        decorator: Decorator::new(trace::WallClock::measure(), routes)
            .with_filter(config.filter.clone())
            .with_own_telemetry(OwnTelemetry::new(config.exclude_otel_instrumented)),
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
    drop(header_injection);
    reader.drain(&mut pipeline);
    pipeline.assembler.close_all();
    pipeline.drained();
    pipeline.fan_out.finish();
    // Closes discovery's queue: its task handles what is queued, then ends.
    drop(pipeline.processes);
    smol::block_on(discovery);
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
        self.metrics.inc(Counter::EventsRead);
        match event {
            Ok(KernelEvent::Data(chunk)) => self.assembler.on_data(&chunk),
            Ok(KernelEvent::Context(context)) => self.assembler.on_context(&context),
            Ok(KernelEvent::Close { conn, .. }) => self.assembler.on_close(conn),
            Ok(KernelEvent::Exec { pid, filename }) => self.processes.exec(pid, filename),
            Ok(KernelEvent::Fork { parent, child }) => self.processes.fork(parent, child),
            Ok(KernelEvent::Exit { pid }) => self.processes.exit(pid),
            Ok(KernelEvent::GoServing { pid }) => self.processes.go_serving(pid),
            Ok(KernelEvent::Listen {
                pid,
                port,
                listening,
            }) => self.processes.listen(pid, port, listening),
            Err(e) => {
                self.metrics.inc(Counter::EventsUndecodable);
                log::debug!("undecodable ring buffer record: {e:?}");
            }
        }
    }

    fn drained(&mut self) {
        for request in self.assembler.finished() {
            self.metrics.inc(Counter::SpansCreated);
            let decorated = self.decorator.decorate(request);
            self.fan_out
                .send(&decorated.span, decorated.to_traces, decorated.to_metrics);
        }
        self.fan_out.flush();
    }
}

/// The first SIGINT/SIGTERM starts an orderly stop, which may take
/// `shutdown_timeout` (and a second for the probes to detach); a second signal,
/// or the time running out, exits at once.
async fn on_signals(
    mut signals: async_signal::Signals,
    stop: Arc<StopSignal>,
    shutdown_timeout: Duration,
) {
    if signals.next().await.is_some() {
        log::info!("stopping: detaching probes and flushing");
        stop.raise();
    }
    let second = async {
        signals.next().await;
        log::warn!("stopping at once: a second signal");
    };
    let late = async {
        smol::Timer::after(shutdown_timeout + SHUTDOWN_GRACE).await;
        log::warn!("stopping at once: the orderly stop took longer than {shutdown_timeout:?}");
    };
    futures_lite::future::or(second, late).await;
    std::process::exit(1);
}
