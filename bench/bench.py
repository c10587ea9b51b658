#!/usr/bin/env python3
"""Benchmark of the beyla agent: overhead on real servers, agent cost, capacity.

Run through bench/run.sh (installs what is missing, builds, then calls this as root).
For each server it runs the modes in rounds (none, agent[, agent:<path>...][, otel], none, ...),
each run with a fresh server (and agent), and in each run the phases:
  sat        wrk -t2 -c32 (keep-alive, closed loop: the server's throughput)
  sat_pinned the same with wrk and the agent on CPU 0 and the server on CPU 1, so the
             server's own CPU share is visible
  rate_<R>   bench/.build/loadgen at R req/s (open loop, 32 keep-alive connections)
  redis      Go server only, modes none and agent: wrk -t2 -c32 on GET /redis, one Redis
             INCR per request on a pooled connection to a redis-server started for the run
             (a database client)
agent runs the capture path the agent chooses; agent:<path> forces another one (sat,
sat_pinned and rate_5000 only), for the per-path figures; agent+ctx is agent with context
propagation by header on (ebpf.context_propagation=headers; the same phases as agent:<path>):
what a traced server pays for its requests' ids and the traceparent search. An agent run starts with an idle window
(no traffic) for the agent's idle CPU.
Around every phase it reads the agent's CPU time (/proc/PID/stat), memory (VmHWM, VmRSS),
eBPF run time (bpftool, kernel.bpf_stats_enabled=1) and counters (its Prometheus endpoint).
Then, per server, the capacity search steps the rate up with the agent on until drops
appear or the server saturates.
Writes bench/results/<stamp>.json and .md (quick: bench/results/quick/) and prints the
Markdown. Exit status 0 when every step ran, 1 with "bench: FAILED: <step>: <why>" otherwise.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

import bpfstats

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
BUILD = os.path.join(BENCH, ".build")
SERVERS_DIR = os.path.join(BENCH, "servers")

# Targets reported next to the figures (never asserted).
TARGET_SAT_RATIO = {"go": 0.95, "nginx": 0.95, "node": 0.95, "python": 0.97}  # saturated, agent / none
TARGET_BPF_US = {"go": 1.0, "nginx": 1.0, "node": 1.0, "python": 1.5}  # eBPF per request at 5k req/s
TARGET_CPU_US = 1.5          # agent CPU per request at 20k req/s
TARGET_CPU_RATE = 20000
TARGET_RSS_MB = 20.0         # agent steady RSS (after the 5k req/s phase; Beyla: 75 MB)
TARGET_IDLE_PCT = 0.2        # agent CPU with nothing to trace, % of one core

IDLE_SECONDS = 10            # the idle window at the start of each agent run
SETTLE_SECONDS = 5           # before it: start-up work (library look-ups after a process is found) ends
LOAD_CPU, SERVER_CPU = 0, 1  # sat_pinned: wrk and the agent, the server

# Servers with a database client endpoint (GET /redis), and the metric that counts the
# Redis operations the agent saw (its Prometheus endpoint).
REDIS_SERVERS = ("go",)
REDIS_OPS_METRIC = 'db_client_operation_duration_seconds_count{db_system_name="redis"'


class BenchError(Exception):
    pass


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"start {what}: exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"start {what}: nothing listening on 127.0.0.1:{port} after {timeout}s")


class Procs:
    """Processes started by the harness; each runs in its own session and is stopped by its group id."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.live = []

    def start(self, name, argv, env=None, cwd=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        out = open(os.path.join(self.workdir, f"{name}.out"), "w")
        err = open(os.path.join(self.workdir, f"{name}.err"), "w")
        try:
            p = subprocess.Popen(argv, env=full_env, cwd=cwd, stdout=out, stderr=err,
                                 start_new_session=True)
        except OSError as e:
            raise BenchError(f"start {name}: {e}")
        p.bench_name = name
        self.live.append(p)
        return p

    def stop(self, p, timeout=10):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        if p in self.live:
            self.live.remove(p)
        return p.returncode

    def output(self, p, stream="err"):
        with open(os.path.join(self.workdir, f"{p.bench_name}.{stream}")) as f:
            return f.read()

    def stop_all(self):
        for p in list(self.live):
            try:
                self.stop(p, timeout=5)
            except Exception:
                pass


# ---------------------------------------------------------------- servers

def start_redis(procs):
    """A redis-server on a free port with its own directory and no persistence; returns (process, port)."""
    port = free_port()
    d = os.path.join(procs.workdir, f"redis-{port}")
    os.makedirs(d, exist_ok=True)
    p = procs.start(f"redis-{port}", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                      "--dir", d, "--save", "", "--appendonly", "no", "--daemonize", "no"])
    wait_port(port, p, 20, "redis-server")
    return p, port


def start_server(procs, server, mode, port, sink_port, redis_port=None):
    env = {"PORT": str(port)}
    if redis_port is not None:
        env["REDIS_ADDR"] = f"127.0.0.1:{redis_port}"
    name = f"{server}-{mode}"
    if server == "go":
        p = procs.start(name, [os.path.join(BUILD, "hello")], env)
    elif server == "node":
        p = procs.start(name, ["node", os.path.join(SERVERS_DIR, "node_server.js")], env)
    elif server == "python":
        if mode == "otel":
            env["BENCH_OTEL"] = "1"
            env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = f"http://127.0.0.1:{sink_port}/v1/traces"
        p = procs.start(name, [sys.executable, "-m", "gunicorn", "-c",
                               os.path.join(SERVERS_DIR, "gunicorn_conf.py"), "app:app"],
                        env, cwd=SERVERS_DIR)
    elif server == "nginx":
        d = os.path.join(procs.workdir, f"nginx-{port}")
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        os.chmod(d, 0o755)
        with open(os.path.join(SERVERS_DIR, "nginx.conf.in")) as f:
            conf = f.read().replace("@PORT@", str(port)).replace("@DIR@", d)
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(conf)
        p = procs.start(name, [shutil.which("nginx") or "/usr/sbin/nginx", "-p", d, "-c",
                               os.path.join(d, "nginx.conf"), "-e", os.path.join(d, "nginx-error.log")])
    else:
        raise BenchError(f"unknown server {server}")
    wait_port(port, p, 20, f"{server} server")
    # One request to check it answers 200.
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            if r.status != 200:
                raise BenchError(f"start {server} server: GET / answered {r.status}")
    except OSError as e:
        raise BenchError(f"start {server} server: GET / failed: {e}")
    return p


# ---------------------------------------------------------------- agent

def scrape(prom_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    vals = {}
    for line in text.splitlines():
        if not line.startswith(("beyla_", REDIS_OPS_METRIC)):
            continue
        try:
            key, v = line.rsplit(" ", 1)
            vals[key] = float(v)
        except ValueError:
            pass
    return vals


def drops_of(c):
    """Kernel drops and pipeline drops from a scrape (stage="untraced" is not a loss: released processes)."""
    kernel = sum(v for k, v in c.items() if k.startswith("beyla_kernel_drops_total"))
    pipeline = sum(v for k, v in c.items() if k.startswith("beyla_events_dropped_total")
                   and 'stage="untraced"' not in k)
    return kernel, pipeline


def redis_ops(c):
    """Redis operations the agent recorded (every command, every server port), from a scrape."""
    return sum(v for k, v in c.items() if k.startswith(REDIS_OPS_METRIC))


def start_agent(procs, agent_bin, port, prom_port, path=None, propagation=False):
    env = {"BEYLA_OPEN_PORT": str(port), "BEYLA_TRACE_PRINTER": "disabled",
           "BEYLA_PROMETHEUS_PORT": str(prom_port), "BEYLA_LOG_LEVEL": "INFO"}
    if path:
        env["BEYLA_BPF_CAPTURE_PATH"] = path
    if propagation:
        env["BEYLA_BPF_CONTEXT_PROPAGATION"] = "headers"
    p = procs.start(f"agent-{port}", [agent_bin], env)
    deadline = time.time() + 30
    while time.time() < deadline:
        if p.poll() is not None:
            raise BenchError(f"start agent: exited with status {p.returncode}: "
                             f"{procs.output(p).strip()[-500:]}")
        try:
            c = scrape(prom_port)
            if c.get("beyla_instrumented_processes", 0) >= 1:
                return p
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"start agent: no instrumented process on port {port} after 30s "
                     f"(Prometheus on {prom_port}): {procs.output(p).strip()[-500:]}")


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_mem_mb(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out


def bpf_stats(agent_pid):
    """{program name: (run_time_ns, run_cnt)} of the agent's programs."""
    try:
        return bpfstats.bpf_stats(agent_pid)
    except bpfstats.StatsError as e:
        raise BenchError(str(e))


def snapshot(agent, prom_port):
    if agent is None:
        return None
    return {"t": time.time(), "cpu": proc_cpu_s(agent.pid), "bpf": bpf_stats(agent.pid),
            "prom": scrape(prom_port)}


def agent_delta(a, b, requests, agent):
    """Agent figures between two snapshots, per request where it makes sense."""
    if a is None:
        return {}
    dt = b["t"] - a["t"]
    cpu = b["cpu"] - a["cpu"]
    bpf_ns = sum(b["bpf"].get(k, (0, 0))[0] - v[0] for k, v in a["bpf"].items())
    bpf_cnt = sum(b["bpf"].get(k, (0, 0))[1] - v[1] for k, v in a["bpf"].items())
    per_prog = {}
    for k, v in b["bpf"].items():
        t0, n0 = a["bpf"].get(k, (0, 0))
        if v[1] - n0 > 0:
            per_prog[k] = {"run_ns": v[0] - t0, "runs": v[1] - n0,
                           "ns_per_run": (v[0] - t0) / (v[1] - n0),
                           "ns_per_req": (v[0] - t0) / requests if requests else None}
    pa, pb = a["prom"], b["prom"]
    d = {k: pb.get(k, 0) - pa.get(k, 0) for k in set(pa) | set(pb) if "total" in k}
    ka, pla = drops_of(pa)
    kb, plb = drops_of(pb)
    mem = proc_mem_mb(agent.pid)
    return {
        "window_s": dt,
        "cpu_s": cpu,
        "cpu_us_per_req": cpu * 1e6 / requests if requests else None,
        "cpu_pct": cpu / dt * 100 if dt else None,
        "bpf_ns": bpf_ns,
        "bpf_runs": bpf_cnt,
        "bpf_us_per_req": bpf_ns / 1e3 / requests if requests else None,
        "bpf_per_prog": per_prog,
        "events_per_s": d.get("beyla_events_read_total", 0) / dt if dt else None,
        "redis_ops_per_s": (redis_ops(pb) - redis_ops(pa)) / dt if dt else None,
        "spans_per_s": d.get("beyla_spans_created_total", 0) / dt if dt else None,
        "events": d.get("beyla_events_read_total", 0),
        "spans": d.get("beyla_spans_created_total", 0),
        "redis_ops": redis_ops(pb) - redis_ops(pa),
        "kernel_drops": kb - ka,
        "pipeline_drops": plb - pla,
        "counters_delta": {k: v for k, v in d.items() if v},
        "rss_mb": mem.get("VmRSS"),
        "hwm_mb": mem.get("VmHWM"),
    }


# ---------------------------------------------------------------- load

def run_wrk(port, dur, cpu=None, path="/"):
    r = subprocess.run(["wrk", "-t2", "-c32", f"-d{dur:g}s", "-s", os.path.join(BENCH, "wrk_report.lua"),
                        f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                       preexec_fn=None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu})))
    line = next((l for l in r.stdout.splitlines() if l.startswith("{")), None)
    if r.returncode != 0 or line is None:
        raise BenchError(f"wrk on port {port}: status {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}")
    w = json.loads(line)
    secs = w["duration_us"] / 1e6
    return {"kind": "wrk", "requests": w["requests"], "total_requests": w["requests"],
            "throughput": w["requests"] / secs, "p50_us": w["p50_us"], "p90_us": w["p90_us"],
            "p99_us": w["p99_us"], "max_us": w["max_us"], "errors": w["errors"] + w["non2xx"]}


def run_loadgen(port, rate, dur, warmup, conns=32):
    r = subprocess.run([os.path.join(BUILD, "loadgen"), "-addr", f"127.0.0.1:{port}", "-path", "/",
                        "-rate", str(rate), "-conns", str(conns), "-duration", f"{dur}s",
                        "-warmup", f"{warmup}s"], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip().startswith("{"):
        raise BenchError(f"loadgen at {rate}/s on port {port}: status {r.returncode}: "
                         f"{(r.stderr or r.stdout).strip()[-300:]}")
    g = json.loads(r.stdout)
    return {"kind": "loadgen", "target_rate": rate, "requests": g["requests"],
            "total_requests": g["completed_total"], "throughput": g["achieved_rate"],
            "p50_us": g["p50_us"], "p90_us": g["p90_us"], "p99_us": g["p99_us"], "max_us": g["max_us"],
            "errors": g["errors"]}


def session_pids(leader):
    """Every process of the session the harness started `leader` in (a server and its workers)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[3]) == leader:  # field 6: the session id
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def pin_threads(pids, cpus):
    for pid in pids:
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                try:
                    os.sched_setaffinity(int(tid), cpus)
                except OSError:
                    pass
        except OSError:
            pass


def run_pinned(srv, agent, port, dur):
    """wrk and the agent on LOAD_CPU, the server (all its processes) on SERVER_CPU;
    also the server's CPU time in the phase, as % of its CPU."""
    all_cpus = set(range(os.cpu_count()))
    server = session_pids(srv.pid)
    pin_threads(server, {SERVER_CPU})
    if agent is not None:
        pin_threads([agent.pid], {LOAD_CPU})
    try:
        t0 = time.time()
        c0 = sum(proc_cpu_s(p) for p in server if os.path.exists(f"/proc/{p}"))
        res = run_wrk(port, dur, cpu=LOAD_CPU)
        c1 = sum(proc_cpu_s(p) for p in server if os.path.exists(f"/proc/{p}"))
        res["server_cpu_pct"] = (c1 - c0) / (time.time() - t0) * 100
        # The server's own CPU per request, the probes' time in its syscalls
        # included: what it pays whichever side saturates first.
        res["server_cpu_us_per_req"] = (c1 - c0) * 1e6 / res["total_requests"] if res["total_requests"] else None
        return res
    finally:
        pin_threads(server, all_cpus)
        if agent is not None:
            pin_threads([agent.pid], all_cpus)


def phase(name, fn, agent, prom_port):
    a = snapshot(agent, prom_port)
    res = fn()
    b = snapshot(agent, prom_port)
    res["phase"] = name
    if res["errors"]:
        log(f"  {name}: {res['errors']} request errors")
    res.update(agent_delta(a, b, res["total_requests"], agent))
    return res


# ---------------------------------------------------------------- the benchmark

def is_agent(mode):
    return mode in ("agent", CTX_MODE) or mode.startswith("agent:")


# The agent with context propagation by header on.
CTX_MODE = "agent+ctx"


def reduced_phases(mode):
    """Modes beside the agent's own run only sat, sat_pinned and rate_5000."""
    return mode == CTX_MODE or mode.startswith("agent:")


def forced_path(mode):
    return mode.split(":", 1)[1] if mode.startswith("agent:") else None


def one_run(cfg, procs, server, mode, rnd, sat_ref):
    port = free_port()
    sink = None
    sink_port = None
    if mode == "otel":
        sink_port = free_port()
        sink = procs.start(f"sink-{sink_port}", [os.path.join(BUILD, "sink")], {"PORT": str(sink_port)})
        wait_port(sink_port, sink, 10, "OTLP sink")
    with_redis = cfg.redis and server in REDIS_SERVERS and mode in ("none", "agent")
    redis, redis_port = start_redis(procs) if with_redis else (None, None)
    srv = start_server(procs, server, mode, port, sink_port, redis_port)
    agent = None
    prom_port = None
    run = {"server": server, "mode": mode, "round": rnd}
    try:
        if is_agent(mode):
            prom_port = free_port()
            agent = start_agent(procs, cfg.agent_bin, port, prom_port, forced_path(mode),
                                propagation=mode == CTX_MODE)
            m = re.search(r"capture path (\w+)", procs.output(agent))
            run["capture_path"] = m.group(1) if m else None
            if mode == "agent":
                # Nothing to trace yet: the agent's own cost, discovery's safety net included.
                time.sleep(cfg.settle)
                c0, t0 = proc_cpu_s(agent.pid), time.time()
                time.sleep(cfg.idle)
                run["idle_cpu_pct"] = (proc_cpu_s(agent.pid) - c0) / (time.time() - t0) * 100
        # Warm-up, not measured: JITs, connection pools, the agent's tables.
        run_wrk(port, 1)
        phases = []
        sat = phase("sat", lambda: run_wrk(port, cfg.dur), agent, prom_port)
        phases.append(sat)
        if mode != "otel" and cfg.pinned:
            phases.append(phase("sat_pinned", lambda: run_pinned(srv, agent, port, cfg.dur), agent, prom_port))
        ref = sat_ref.get(server) or sat["throughput"]
        rates = [r for r in cfg.rates if r == 5000] if reduced_phases(mode) else cfg.rates
        for rate in rates:
            if rate > 0.9 * ref:
                log(f"  rate {rate}/s skipped: above 90% of {server}'s saturated throughput ({ref:.0f}/s)")
                continue
            phases.append(phase(f"rate_{rate}", lambda: run_loadgen(port, rate, cfg.dur, cfg.warmup),
                                agent, prom_port))
        if redis is not None:
            # Warm-up: the server's pool of Redis connections fills.
            run_wrk(port, 1, path="/redis")
            db = phase("redis", lambda: run_wrk(port, cfg.dur, path="/redis"), agent, prom_port)
            if db["errors"]:
                raise BenchError(f"{server}/{mode}: {db['errors']} failed GET /redis "
                                 f"({procs.output(srv)[-300:]})")
            if agent is not None and db["redis_ops"] == 0:
                raise BenchError(f"{server}/agent: the agent recorded no Redis operation "
                                 f"({procs.output(agent)[-300:]})")
            phases.append(db)
        run["phases"] = phases
        if agent is not None:
            run["agent_mem_mb"] = proc_mem_mb(agent.pid)
            spans = sum(p.get("spans", 0) for p in phases)
            if spans == 0:
                raise BenchError(f"{server}/{mode}: the agent created no spans ({procs.output(agent)[-300:]})")
            rc = procs.stop(agent)
            agent_log = procs.output(agent)
            m = re.search(r"stopped: (.*)", agent_log, re.S)
            run["agent_exit"] = {"status": rc, "stopped_line": " ".join(m.group(1).split()) if m else None}
            if rc != 0:
                raise BenchError(f"{server}/{mode}: the agent exited with status {rc}: {agent_log[-300:]}")
            if m is None:
                raise BenchError(f"{server}/{mode}: no 'stopped:' line in the agent's log")
        if mode == "otel":
            procs.stop(srv)
            srv = None
            procs.stop(sink)
            out = procs.output(sink, "out")
            m = re.search(r"sink: requests=(\d+) bytes=(\d+)", out)
            run["otlp_sink"] = {"requests": int(m.group(1)), "bytes": int(m.group(2))} if m else None
            if not m or int(m.group(1)) == 0:
                raise BenchError(f"{server}/otel: the OTLP sink received nothing: the SDK did not export")
        return run
    finally:
        if agent is not None and agent.poll() is None:
            procs.stop(agent)
        if srv is not None:
            procs.stop(srv)
        if sink is not None and sink.poll() is None:
            procs.stop(sink)
        if redis is not None:
            procs.stop(redis)


def capacity(cfg, procs, server):
    port = free_port()
    prom_port = free_port()
    srv = start_server(procs, server, "agent", port, None)
    agent = None
    steps = []
    try:
        agent = start_agent(procs, cfg.agent_bin, port, prom_port)
        run_wrk(port, 1)
        for rate in cfg.cap_rates:
            s = phase(f"cap_{rate}", lambda: run_loadgen(port, rate, cfg.cap_dur, 1, conns=64),
                      agent, prom_port)
            s["saturated"] = s["throughput"] < 0.95 * rate
            steps.append(s)
            log(f"  capacity {server} {rate}/s: achieved {s['throughput']:.0f}/s p99 {s['p99_us']:.0f}µs "
                f"drops kernel={s['kernel_drops']:.0f} pipeline={s['pipeline_drops']:.0f}")
            if s["kernel_drops"] or s["pipeline_drops"] or s["saturated"]:
                break
    finally:
        if agent is not None:
            procs.stop(agent)
        procs.stop(srv)
    clean = [s for s in steps if not s["kernel_drops"] and not s["pipeline_drops"] and not s["saturated"]]
    first_drop = next((s for s in steps if s["kernel_drops"] or s["pipeline_drops"]), None)
    sat = next((s for s in steps if s["saturated"]), None)
    return {"server": server, "steps": steps,
            "max_clean_rate": clean[-1]["target_rate"] if clean else None,
            "first_drop_rate": first_drop["target_rate"] if first_drop else None,
            "saturated_at": {"target": sat["target_rate"], "achieved": sat["throughput"]} if sat else None,
            "max_step_reached": steps[-1]["target_rate"] if steps and not first_drop and not sat else None}


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)

    def cmd(*a):
        try:
            return subprocess.run(a, capture_output=True, text=True, cwd=REPO).stdout.strip()
        except OSError:
            return "?"
    dirty = cmd("git", "status", "--porcelain", "--untracked-files=no")
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": os.uname().release,
            "mem_gib": round(mem / 1024 / 1024, 1), "commit": cmd("git", "rev-parse", "--short", "HEAD"),
            "tree_modified": bool(dirty),
            "versions": {"go": cmd("go", "version"), "node": cmd("node", "--version"),
                         "python": sys.version.split()[0], "nginx": cmd("nginx", "-v") or "",
                         "wrk": "wrk (Debian)"}}


# ---------------------------------------------------------------- report

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=0, suffix=""):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}{suffix}"


def aggregate(runs):
    """{(server, mode, phase): {metric: median over rounds}} and per-round ratios to 'none'."""
    by = {}
    for r in runs:
        for p in r["phases"]:
            by.setdefault((r["server"], r["mode"], p["phase"]), []).append((r["round"], p, r))
    agg = {}
    for key, items in by.items():
        server, mode, ph = key
        a = {}
        for m in ("throughput", "p50_us", "p99_us", "cpu_us_per_req", "cpu_pct", "bpf_us_per_req",
                  "events_per_s", "spans_per_s", "redis_ops_per_s", "rss_mb", "hwm_mb", "server_cpu_pct",
                  "server_cpu_us_per_req"):
            a[m] = med([p.get(m) for _, p, _ in items])
        # ns per program run over all the agent's programs: the kernel's own bpf_stats.
        a["bpf_ns_per_run"] = med([p["bpf_ns"] / p["bpf_runs"] for _, p, _ in items if p.get("bpf_runs")])
        a["idle_cpu_pct"] = med([r.get("idle_cpu_pct") for _, _, r in items])
        a["capture_path"] = next((r.get("capture_path") for _, _, r in items if r.get("capture_path")), None)
        a["kernel_drops"] = sum(p.get("kernel_drops", 0) for _, p, _ in items)
        a["pipeline_drops"] = sum(p.get("pipeline_drops", 0) for _, p, _ in items)
        a["errors"] = sum(p.get("errors", 0) for _, p, _ in items)
        a["rounds"] = len(items)
        # Ratios to the no-agent run of the same round, then the median over rounds.
        for m in ("throughput", "p50_us", "p99_us", "server_cpu_us_per_req"):
            ratios = []
            for rnd, p, _ in items:
                base = next((q for q in by.get((server, "none", ph), []) if q[0] == rnd), None)
                if base and base[1].get(m):
                    ratios.append(p[m] / base[1][m])
            a[m + "_ratio"] = med(ratios)
        # Per-program eBPF cost (median ns per request over rounds).
        progs = {}
        for _, p, _ in items:
            for name, v in (p.get("bpf_per_prog") or {}).items():
                progs.setdefault(name, []).append((v["ns_per_req"], v["ns_per_run"], v["runs"] / max(p["total_requests"], 1)))
        a["bpf_per_prog"] = {k: {"ns_per_req": med([x[0] for x in v]), "ns_per_run": med([x[1] for x in v]),
                                 "runs_per_req": med([x[2] for x in v])} for k, v in progs.items()}
        agg[key] = a
    return agg


def targets(cfg, agg, caps):
    rows = []

    def row(name, goal, value, ok, miss):
        rows.append((name, goal, value, ok, None if ok is None else miss))
    for server in cfg.servers:
        g = agg.get((server, "agent", "sat"))
        v = g and g["throughput_ratio"]
        goal = TARGET_SAT_RATIO[server]
        row(f"{server}: saturated throughput, agent / none", f">= {goal:.0%}", fmt(v * 100, 1, "%") if v else "–",
            None if v is None else v >= goal, None if v is None else f"{(goal - v) * 100:.1f} points short")
    for server in cfg.servers:
        a = agg.get((server, "agent", "rate_5000"))
        b = a and a["bpf_us_per_req"]
        goal = TARGET_BPF_US[server]
        row(f"{server}: eBPF time per request at 5k/s", f"<= {goal:.1f} µs", fmt(b, 2, " µs"),
            None if b is None else b <= goal, None if b is None else f"{b / goal:.1f}× the target")
    for server in cfg.servers:
        a = agg.get((server, "agent", f"rate_{TARGET_CPU_RATE}"))
        c = a and a["cpu_us_per_req"]
        row(f"{server}: agent CPU per request at {TARGET_CPU_RATE // 1000}k/s", f"<= {TARGET_CPU_US:.1f} µs",
            fmt(c, 2, " µs") if a else "server below 20k/s", None if c is None else c <= TARGET_CPU_US,
            None if c is None else f"{c / TARGET_CPU_US:.1f}× the target")
    for server in cfg.servers:
        a = agg.get((server, "agent", "rate_5000"))
        rss = a and a["rss_mb"]
        row(f"{server}: agent steady RSS", f"<= {TARGET_RSS_MB:.0f} MB", fmt(rss, 1, " MB"),
            None if rss is None else rss <= TARGET_RSS_MB, None if rss is None else f"{rss - TARGET_RSS_MB:.1f} MB over")
    idle = med([a["idle_cpu_pct"] for (s, m, p), a in agg.items() if m == "agent" and p == "sat"])
    row("agent CPU while idle", f"<= {TARGET_IDLE_PCT}% of a core", fmt(idle, 2, "%"),
        None if idle is None else idle <= TARGET_IDLE_PCT, None if idle is None else f"{idle / TARGET_IDLE_PCT:.1f}× the target")
    for server in cfg.servers:
        reached = [(k[2], a) for k, a in agg.items() if k[0] == server and is_agent(k[1])]
        d = sum(a["kernel_drops"] + a["pipeline_drops"] for _, a in reached)
        cap = next((c for c in caps if c["server"] == server), None)
        if cap:
            d += sum(st["kernel_drops"] + st["pipeline_drops"] for st in cap["steps"])
        row(f"{server}: drops at every rate reached", "0", f"{d:.0f}", d == 0, f"{d:.0f} events lost")
    return rows


def mode_label(mode, a):
    """`agent (tp_btf)`: an agent mode with the capture path it ran on."""
    return f"{mode.split(':')[0]} ({a['capture_path']})" if is_agent(mode) and a.get("capture_path") else mode


def drops_cell(a):
    return f"{a['kernel_drops']:.0f}/{a['pipeline_drops']:.0f}"


def rss_cell(a):
    return f"{fmt(a['rss_mb'], 1)} ({fmt(a['hwm_mb'], 1)})"


def sat_cell(sat):
    return f"{sat['target']:,} ({sat['achieved']:,.0f})" if sat else "not reached"


def closed_loop_table(cfg, agg, phase, extra=None):
    """The Markdown lines of a wrk phase's table, one row per server and mode; `extra` is
    (column title, aggregate key) of one more agent figure."""
    titles = ["server", "mode", "req/s", "× none", "p50 µs", "p99 µs", "p99 × none", "agent CPU µs/req",
              "agent CPU %", "eBPF µs/req", "events/s", "spans/s"] + ([extra[0]] if extra else []) + ["drops k/p"]
    L = ["| " + " | ".join(titles) + " |", "|---|---|" + "---:|" * (len(titles) - 2)]
    for server in cfg.servers:
        for mode in cfg.modes_for(server):
            a = agg.get((server, mode, phase))
            if not a:
                continue
            agent_cells = [fmt(a["cpu_us_per_req"], 2), fmt(a["cpu_pct"], 0), fmt(a["bpf_us_per_req"], 2),
                           fmt(a["events_per_s"]), fmt(a["spans_per_s"])] + ([fmt(a[extra[1]])] if extra else [])
            cells = [server, mode_label(mode, a), fmt(a["throughput"]), fmt(a["throughput_ratio"], 3),
                     fmt(a["p50_us"]), fmt(a["p99_us"]), fmt(a["p99_us_ratio"], 2)]
            cells += agent_cells + [drops_cell(a)] if is_agent(mode) else ["–"] * (len(agent_cells) + 1)
            L.append("| " + " | ".join(cells) + " |")
    L.append("")
    return L


def markdown(cfg, info, runs, caps, agg, elapsed):
    L = []
    L.append(f"Benchmark {info['date']} · commit `{info['commit']}`"
             f"{' (working tree modified)' if info['tree_modified'] else ''} · "
             f"{info['nproc']} CPUs ({info['cpu']}) · kernel {info['kernel']} · {info['mem_gib']} GiB · "
             f"{'quick' if cfg.quick else 'full'} run, {cfg.rounds} round(s) × {cfg.dur}s phases, {elapsed / 60:.1f} min")
    L.append("")
    L.append("Figures are medians over the rounds; ratios are to the no-agent run of the same round "
             "(then the median). CPU and eBPF time are per request served in the phase. "
             "`–`: not applicable or not measured.")
    L.append("")
    L.append("### Saturated (wrk -t2 -c32, keep-alive)")
    L.append("")
    L.extend(closed_loop_table(cfg, agg, "sat"))
    if any((server, "none", "redis") in agg for server in cfg.servers):
        L.append("### Database client (GET /redis: one Redis INCR per request on a pooled connection; "
                 "wrk -t2 -c32)")
        L.append("")
        L.extend(closed_loop_table(cfg, agg, "redis", ("Redis ops/s seen", "redis_ops_per_s")))
    if cfg.pinned:
        L.append(f"### Saturated, pinned (wrk and the agent on CPU {LOAD_CPU}, the server on CPU {SERVER_CPU})")
        L.append("")
        L.append("The server's CPU is its own: the probes' time in its syscalls shows in its CPU per "
                 "request, whichever side saturates first.")
        L.append("")
        L.append("| server | mode | req/s | × none | server CPU % | server CPU µs/req | × none | eBPF µs/req |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|")
        for server in cfg.servers:
            for mode in cfg.modes_for(server):
                a = agg.get((server, mode, "sat_pinned"))
                if a:
                    L.append(f"| {server} | {mode_label(mode, a)} | {fmt(a['throughput'])} | "
                             f"{fmt(a['throughput_ratio'], 3)} | {fmt(a['server_cpu_pct'], 0)} | "
                             f"{fmt(a['server_cpu_us_per_req'], 2)} | {fmt(a['server_cpu_us_per_req_ratio'], 3)} | "
                             f"{fmt(a['bpf_us_per_req'], 2) if mode != 'none' else '–'} |")
        L.append("")
    if cfg.paths:
        L.append("### Per capture path (bpf_stats: the kernel's count of the probes' own run time)")
        L.append("")
        L.append("| server | capture path | saturated × none | server CPU per request, pinned, × none | "
                 "eBPF µs/req at 5k/s | runs/req | ns/run |")
        L.append("|---|---|---:|---:|---:|---:|---:|")
        for server in cfg.servers:
            for mode in cfg.modes_for(server):
                if not is_agent(mode):
                    continue
                sat, r5 = agg.get((server, mode, "sat")), agg.get((server, mode, "rate_5000"))
                pinned = agg.get((server, mode, "sat_pinned"))
                if not sat:
                    continue
                runs_per_req = sum(v["runs_per_req"] or 0 for v in (r5 or {}).get("bpf_per_prog", {}).values())
                L.append(f"| {server} | {mode_label(mode, sat)} | {fmt(sat['throughput_ratio'], 3)} | "
                         f"{fmt(pinned and pinned['server_cpu_us_per_req_ratio'], 3)} | "
                         f"{fmt(r5 and r5['bpf_us_per_req'], 2)} | {fmt(runs_per_req if r5 else None, 1)} | "
                         f"{fmt(r5 and r5['bpf_ns_per_run'])} |")
        L.append("")
    idle = med([a["idle_cpu_pct"] for (srv, m, p), a in agg.items() if m == "agent" and p == "sat"])
    if idle is not None:
        L.append(f"Agent CPU while idle (a {cfg.idle:.0f} s window, {cfg.settle} s after start-up, before each "
                 f"agent run's traffic): "
                 f"{idle:.2f}% of a core (median).")
        L.append("")
    L.append("### Fixed rates (bench loadgen, 32 keep-alive connections, latency from the scheduled send time)")
    L.append("")
    L.append("| server | rate | mode | achieved/s | p50 µs | p99 µs | p99 × none | agent CPU µs/req | eBPF µs/req | events/s | spans/s | drops k/p | RSS MB (peak) |")
    L.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for server in cfg.servers:
        for rate in cfg.rates:
            for mode in cfg.modes_for(server):
                a = agg.get((server, mode, f"rate_{rate}"))
                if not a:
                    continue
                ag = is_agent(mode)
                L.append(f"| {server} | {rate} | {mode_label(mode, a)} | {fmt(a['throughput'])} | {fmt(a['p50_us'])} | "
                         f"{fmt(a['p99_us'])} | {fmt(a['p99_us_ratio'], 2)} | "
                         f"{fmt(a['cpu_us_per_req'], 2) if ag else '–'} | {fmt(a['bpf_us_per_req'], 2) if ag else '–'} | "
                         f"{fmt(a['events_per_s']) if ag else '–'} | {fmt(a['spans_per_s']) if ag else '–'} | "
                         f"{drops_cell(a) if ag else '–'} | "
                         f"{rss_cell(a) if ag else '–'} |")
    L.append("")
    if caps:
        L.append("### Capacity with the agent (rate stepped up, 64 connections, until drops or saturation)")
        L.append("")
        L.append("| server | highest rate with 0 drops | first rate with drops | server saturated at (achieved) | steps |")
        L.append("|---|---:|---:|---:|---|")
        for c in caps:
            steps = ", ".join(f"{s['target_rate'] // 1000}k→{s['throughput'] / 1000:.1f}k"
                              f"{' d=' + format(s['kernel_drops'] + s['pipeline_drops'], '.0f') if s['kernel_drops'] or s['pipeline_drops'] else ''}"
                              for s in c["steps"])
            sat = c["saturated_at"]
            L.append(f"| {c['server']} | {fmt(c['max_clean_rate'])}{' (last step)' if c['max_step_reached'] else ''} | "
                     f"{fmt(c['first_drop_rate']) if c['first_drop_rate'] else 'none'} | "
                     f"{sat_cell(sat)} | {steps} |")
        L.append("")
    # eBPF per program at 5k/s (or the highest rate measured) for the first server.
    for server in cfg.servers:
        key = next((k for k in [(server, "agent", "rate_5000"), (server, "agent", f"rate_{cfg.rates[0]}")] if k in agg), None)
        if key and agg[key]["bpf_per_prog"]:
            progs = sorted(agg[key]["bpf_per_prog"].items(), key=lambda kv: -(kv[1]["ns_per_req"] or 0))
            L.append(f"<details><summary>eBPF programs, {server} at {key[2][5:]}/s (ns per request, runs per request, ns per run)</summary>")
            L.append("")
            L.append("| program | ns/req | runs/req | ns/run |")
            L.append("|---|---:|---:|---:|")
            for name, v in progs:
                L.append(f"| {name} | {fmt(v['ns_per_req'])} | {fmt(v['runs_per_req'], 2)} | {fmt(v['ns_per_run'])} |")
            L.append("")
            L.append("</details>")
            L.append("")
    if not cfg.quick:
        L.append("### Targets (reported, not asserted)")
        L.append("")
        L.append("| target | goal | measured | met | by how much |")
        L.append("|---|---|---:|---|---|")
        for name, goal, val, ok, miss in targets(cfg, agg, caps):
            L.append(f"| {name} | {goal} | {val} | {'–' if ok is None else ('yes' if ok else '**no**')} | "
                     f"{'' if ok or ok is None else miss} |")
        L.append("")
    return "\n".join(L)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke mode: Go server only, seconds, no targets")
    ap.add_argument("--agent", default=os.path.join(BUILD, "beyla"), help="the agent binary")
    ap.add_argument("--servers", help="comma-separated subset of go,nginx,python,node")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=float, help="seconds per measured phase")
    ap.add_argument("--no-capacity", action="store_true")
    ap.add_argument("--paths", help="capture paths to run besides the agent's own choice, comma-separated "
                                    "(full default: raw_tp,syscalls; quick: none)")
    ap.add_argument("--no-pinned", action="store_true", help="skip the sat_pinned phase")
    ap.add_argument("--no-redis", action="store_true",
                    help="skip the Redis client phase (an agent without the Redis protocol, for an A/B run)")
    ap.add_argument("--no-ctx", action="store_true", help=f"skip the {CTX_MODE} mode (context propagation on)")
    ap.add_argument("--idle", type=float, help=f"seconds of the idle window (default {IDLE_SECONDS}; quick 2)")
    ap.add_argument("--out", help="results directory (default bench/results, quick: bench/results/quick)")
    args = ap.parse_args()

    class Cfg:
        pass
    cfg = Cfg()
    cfg.quick = args.quick
    cfg.agent_bin = args.agent
    cfg.servers = args.servers.split(",") if args.servers else (["go"] if args.quick else ["go", "nginx", "python", "node"])
    cfg.rounds = args.rounds or (1 if args.quick else 2)
    cfg.dur = args.duration or (3 if args.quick else 8)
    cfg.warmup = 1 if args.quick else 2
    cfg.rates = [1000] if args.quick else [1000, 5000, 20000]
    cfg.cap_rates = [2000, 4000] if args.quick else [5000, 10000, 15000, 20000, 25000, 30000, 40000, 50000, 60000]
    cfg.cap_dur = 2 if args.quick else 5
    cfg.paths = [p for p in (args.paths if args.paths is not None else ("" if args.quick else "raw_tp,syscalls")).split(",") if p]
    cfg.pinned = not args.no_pinned and (os.cpu_count() or 1) > 1
    cfg.idle = args.idle if args.idle is not None else (2 if args.quick else IDLE_SECONDS)
    cfg.settle = 1 if args.quick else SETTLE_SECONDS
    cfg.ctx = not args.no_ctx
    cfg.redis = not args.no_redis
    cfg.modes_for = lambda s: (["none", "agent"] + [f"agent:{p}" for p in cfg.paths]
                               + ([CTX_MODE] if cfg.ctx else [])
                               + (["otel"] if s == "python" and not cfg.quick else []))
    out_dir = args.out or os.path.join(BENCH, "results", "quick" if cfg.quick else "")
    os.makedirs(out_dir, exist_ok=True)

    if os.geteuid() != 0:
        print("bench: FAILED: needs root (eBPF, bpf stats); run bash bench/run.sh as root", file=sys.stderr)
        return 1
    for tool in ("wrk", "bpftool"):
        if not shutil.which(tool):
            print(f"bench: FAILED: {tool} not found (bench/run.sh installs it)", file=sys.stderr)
            return 1
    for f in (cfg.agent_bin, os.path.join(BUILD, "loadgen"), os.path.join(BUILD, "hello"), os.path.join(BUILD, "sink")):
        if not os.access(f, os.X_OK):
            print(f"bench: FAILED: {f} missing (bench/run.sh builds it)", file=sys.stderr)
            return 1

    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    workdir = os.path.join(BUILD, "work", stamp)
    os.makedirs(workdir, exist_ok=True)
    procs = Procs(workdir)
    prev_stats = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    info = machine()
    info["date"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    runs, caps = [], []
    t0 = time.time()
    status = 0
    failure = None
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        for server in cfg.servers:
            sat_ref = {}
            for rnd in range(cfg.rounds):
                for mode in cfg.modes_for(server):
                    log(f"{server} round {rnd + 1}/{cfg.rounds} mode {mode}")
                    r = one_run(cfg, procs, server, mode, rnd, sat_ref)
                    if mode == "none" and server not in sat_ref:
                        sat_ref[server] = r["phases"][0]["throughput"]
                    s = r["phases"][0]
                    log(f"  sat {s['throughput']:.0f} req/s p99 {s['p99_us']:.0f}µs"
                        + (f" agent cpu {s['cpu_us_per_req']:.2f}µs/req bpf {s['bpf_us_per_req']:.2f}µs/req"
                           if is_agent(mode) else ""))
                    runs.append(r)
            if not args.no_capacity:
                log(f"{server} capacity search")
                caps.append(capacity(cfg, procs, server))
    except BenchError as e:
        failure = str(e)
        status = 1
    except Exception as e:  # a bug or an unexpected environment: still say which step
        failure = f"unexpected {type(e).__name__}: {e}"
        status = 1
    finally:
        procs.stop_all()
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(prev_stats)
    elapsed = time.time() - t0
    agg = aggregate(runs)
    md = markdown(cfg, info, runs, caps, agg, elapsed)
    doc = {"machine": info, "config": {"quick": cfg.quick, "servers": cfg.servers, "rounds": cfg.rounds,
                                       "phase_seconds": cfg.dur, "rates": cfg.rates, "cap_rates": cfg.cap_rates,
                                       "paths": cfg.paths, "pinned": cfg.pinned, "idle_seconds": cfg.idle},
           "elapsed_s": elapsed, "failure": failure, "runs": runs, "capacity": caps,
           "aggregate": [{"server": k[0], "mode": k[1], "phase": k[2], **v} for k, v in agg.items()],
           "targets": [dict(zip(("target", "goal", "measured", "met", "miss"), t)) for t in targets(cfg, agg, caps)]}
    base = os.path.join(out_dir, stamp + ("-FAILED" if failure else ""))
    with open(base + ".json", "w") as f:
        json.dump(doc, f, indent=1, default=str)
    with open(base + ".md", "w") as f:
        f.write(md + "\n")
    print(md)
    print(f"\nwrote {base}.json and {base}.md ({elapsed:.0f}s); process logs in {workdir}", file=sys.stderr)
    if failure:
        print(f"bench: FAILED: {failure}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
