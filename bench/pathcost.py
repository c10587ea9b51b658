#!/usr/bin/env python3
"""The whole cost of each way to see socket I/O, on this kernel.

bench/pathcost/pathcost times a syscall loop (an HTTP/1 exchange over loopback
TCP, pipe I/O, getppid) on one CPU; this driver runs it in rounds with:
  none               nothing attached
  empty <set>        empty programs of bench/pathcost/empty.bpf.c: what the kernel
                     charges to run any program there (syscalls, raw_tp, tp_btf,
                     kprobe, fentry)
  agent <path>       the agent with ebpf.capture_path=<path>, the loop's process
                     not selected (what every other process on the machine pays)
  agent <path> traced  the same, the loop's process selected: the probes' real work
Each round runs every configuration once, in a rotated order. pathcost reports
the fastest of its timed runs (on a busy machine, the least disturbed); figures
are the median over rounds of (that ns per call - the same round's with nothing).
The kernel's own bpf_stats (ns per program run) are reported beside them: the
difference is what the kernel spends around the programs.

    python3 bench/pathcost.py [--rounds 5] [--agent bench/.build/beyla]
                              [--sets syscalls,raw_tp,tp_btf,kprobe,fentry]
                              [--paths tp_btf,raw_tp,syscalls] [--out FILE.json]

As root. Builds bench/.build/pathcost and empty.bpf.o (gcc, clang, libbpf-dev).
Prints a Markdown table; a set or path the kernel refuses is listed with the
reason. Exit status 1 if a run failed for another reason.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

import bpfstats

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
BUILD = os.path.join(BENCH, ".build")
SRC = os.path.join(BENCH, "pathcost")
TOOL = os.path.join(BUILD, "pathcost")
OBJECT = os.path.join(BUILD, "empty.bpf.o")

SETS = ["syscalls", "raw_tp", "tp_btf", "kprobe", "fentry"]
AGENT_PATHS = ["fentry", "tp_btf", "raw_tp", "syscalls"]
LOOPS = ["tcp", "pipe", "getppid"]
# Small timed runs with a pause after each, so that with the loop traced the
# agent empties its ring buffer between runs: the cost measured is the probes'
# with room in the ring, not the cheaper path of a full one.
ITERATIONS = 2000
REPEATS = 21
PAUSE_MS = 100
LOOP_CPU = 1
AGENT_CPU = 0
READY_TIMEOUT = 120


class Failed(Exception):
    pass


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def arch_define():
    return {"x86_64": "x86", "aarch64": "arm64"}[os.uname().machine]


def build():
    os.makedirs(BUILD, exist_ok=True)
    src_c = os.path.join(SRC, "pathcost.c")
    src_bpf = os.path.join(SRC, "empty.bpf.c")

    def stale(out, src):
        return not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src)
    if stale(OBJECT, src_bpf):
        subprocess.run(["clang", "-target", "bpf", "-O2", "-g", f"-D__TARGET_ARCH_{arch_define()}",
                        "-I", os.path.join(REPO, "ebpf", "include"), "-c", src_bpf, "-o", OBJECT], check=True)
    if stale(TOOL, src_c):
        subprocess.run(["gcc", "-O2", "-Wall", "-o", TOOL, src_c, "-lbpf", "-lelf", "-lz"], check=True)


def pin(cpu):
    return lambda: os.sched_setaffinity(0, {cpu})


def run_tool(args, cfg, stdin=None):
    argv = [TOOL, "--iterations", str(cfg.iterations), "--repeats", str(cfg.repeats),
            "--pause-ms", str(cfg.pause_ms), "--cpu", str(cfg.loop_cpu)] + args
    return subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, what):
    out, err = proc.communicate()
    line = next((l for l in out.splitlines() if l.startswith("{")), None)
    if line is None:
        raise Failed(f"{what}: pathcost printed no result (status {proc.returncode}): {err.strip()[-300:]}")
    result = json.loads(line)
    if proc.returncode == 2:
        return result  # refused: result["error"] says why
    if proc.returncode != 0:
        raise Failed(f"{what}: pathcost exited with {proc.returncode}: {err.strip()[-300:]}")
    return result


def empty_run(cfg, set_name):
    return finish(run_tool(["--attach", set_name, "--object", OBJECT], cfg), f"empty {set_name}")


def bpf_stats(agent_pid):
    """{program name: (run_time_ns, run_cnt)} of the agent's programs."""
    try:
        return bpfstats.bpf_stats(agent_pid)
    except bpfstats.StatsError as e:
        raise Failed(str(e))


def agent_run(cfg, path, traced):
    """Starts the agent on `path`, runs the loop, returns the loop's result plus the agent's figures."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEYLA_", "OTEL_"))}
    env.update({"BEYLA_BPF_CAPTURE_PATH": path, "BEYLA_TRACE_PRINTER": "disabled", "BEYLA_LOG_LEVEL": "info",
                "BEYLA_PROMETHEUS_PORT": str(cfg.prom_port)})
    if traced:
        env["BEYLA_EXECUTABLE_NAME"] = "/pathcost$"
    else:
        env["BEYLA_OPEN_PORT"] = "1"  # a port nothing listens on: the loop stays untraced
    err_path = os.path.join(BUILD, f"pathcost-agent-{path}.err")
    with open(err_path, "w") as err:
        agent = subprocess.Popen([cfg.agent], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=err, preexec_fn=pin(cfg.agent_cpu), start_new_session=True)

    def agent_log():
        with open(err_path) as f:
            return f.read()

    def wait_for(pattern):
        deadline = time.time() + READY_TIMEOUT
        while time.time() < deadline:
            text = agent_log()
            if re.search(pattern, text):
                return
            if agent.poll() is not None:
                return
            time.sleep(0.1)
        raise Failed(f"agent {path}: no {pattern!r} in its log after {READY_TIMEOUT}s")

    loop = None
    try:
        wait_for(r"agent ready")
        if agent.poll() is not None:
            text = agent_log()
            m = re.search(r"beyla: (capture path .* is not offered .*)", text)
            if m:
                return {"error": m.group(1)[:300]}
            raise Failed(f"agent {path}: exited with {agent.returncode}: {text.strip()[-300:]}")
        loop = run_tool(["--wait"], cfg, stdin=subprocess.PIPE)
        ready = loop.stdout.readline()
        m = re.match(r"ready (\d+)", ready)
        if not m:
            raise Failed(f"agent {path}: pathcost said {ready!r} instead of ready")
        if traced:
            wait_for(rf"instrumenting pid={m.group(1)}\b")
        before = bpf_stats(agent.pid)
        loop.stdin.write("go\n")
        loop.stdin.flush()
        result = finish(loop, f"agent {path}")
        after = bpf_stats(agent.pid)
        result["programs"] = {k: {"run_ns": v[0] - before.get(k, (0, 0))[0], "runs": v[1] - before.get(k, (0, 0))[1]}
                              for k, v in after.items() if v[1] > before.get(k, (0, 0))[1]}
        os.killpg(agent.pid, signal.SIGTERM)
        agent.wait(60)
        m = re.search(r"ringbuf_full=(\d+)", agent_log())
        result["ringbuf_full"] = int(m.group(1)) if m else None
        return result
    finally:
        for p in (loop, agent):
            if p is not None and p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL) if p is agent else p.kill()
                except ProcessLookupError:
                    pass
                p.wait()


def ns_per_run(programs):
    runs = sum(p["runs"] for p in programs.values())
    return sum(p["run_ns"] for p in programs.values()) / runs if runs else None


def fmt(x, digits=0):
    return "–" if x is None else f"{x:,.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=ITERATIONS)
    ap.add_argument("--repeats", type=int, default=REPEATS)
    ap.add_argument("--pause-ms", type=int, default=PAUSE_MS)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--paths", default=",".join(AGENT_PATHS), help="agent capture paths; empty: none")
    ap.add_argument("--agent", default=os.path.join(BUILD, "beyla"))
    ap.add_argument("--out", help="write every run as JSON here")
    ap.add_argument("--build-only", action="store_true", help="build the loop and the empty programs, then exit")
    cfg = ap.parse_args()
    if cfg.build_only:
        build()
        return 0
    cfg.loop_cpu, cfg.agent_cpu = (LOOP_CPU, AGENT_CPU) if os.cpu_count() > 1 else (0, 0)
    cfg.prom_port = 0
    if os.geteuid() != 0:
        print("pathcost: FAILED: needs root", file=sys.stderr)
        return 1
    build()
    sets = [s for s in cfg.sets.split(",") if s]
    paths = [p for p in cfg.paths.split(",") if p]
    if paths and not os.access(cfg.agent, os.X_OK):
        print(f"pathcost: FAILED: agent {cfg.agent} missing (bench/run.sh builds it)", file=sys.stderr)
        return 1
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        cfg.prom_port = s.getsockname()[1]

    configs = [("none", None)] + [("empty", s) for s in sets]
    configs += [(mode, p) for p in paths for mode in ("untraced", "traced")]
    refused = {}
    runs = {c: [] for c in configs}
    prev = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        for rnd in range(cfg.rounds):
            order = configs[rnd % len(configs):] + configs[:rnd % len(configs)]
            for c in order:
                if c in refused:
                    continue
                mode, name = c
                log(f"round {rnd + 1}/{cfg.rounds}: {mode} {name or ''}")
                if mode == "none":
                    r = finish(run_tool([], cfg), "none")
                elif mode == "empty":
                    r = empty_run(cfg, name)
                else:
                    r = agent_run(cfg, name, mode == "traced")
                if "error" in r:
                    refused[c] = r["error"]
                    log(f"  refused: {r['error']}")
                    continue
                runs[c].append(r)
    except Failed as e:
        print(f"pathcost: FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(prev)

    def deltas(c, loop):
        out = []
        for i, r in enumerate(runs[c]):
            base = runs[("none", None)][i] if i < len(runs[("none", None)]) else None
            if base:
                out.append(r["loops"][loop]["ns_per_call"] - base["loops"][loop]["ns_per_call"])
        return statistics.median(out) if out else None

    L = []
    kernel = os.uname().release
    base = runs[("none", None)]
    L.append(f"Kernel {kernel}, {os.cpu_count()} CPUs; {cfg.rounds} rounds; loop on CPU {cfg.loop_cpu}, agent on CPU {cfg.agent_cpu}.")
    L.append("")
    L.append("| configuration | tcp ns/call | pipe ns/call | getppid ns/call | bpf_stats ns/run | ring full |")
    L.append("|---|---:|---:|---:|---:|---:|")
    L.append("| nothing attached (absolute) | " + " | ".join(
        fmt(statistics.median([r["loops"][l]["ns_per_call"] for r in base])) for l in LOOPS) + " | – | – |")
    labels = {"empty": "empty programs, {}", "untraced": "agent {}, loop not traced", "traced": "agent {}, loop traced"}
    for c in configs[1:]:
        mode, name = c
        label = labels[mode].format(name)
        if c in refused:
            L.append(f"| {label} | refused: {refused[c]} | | | | |")
            continue
        if not runs[c]:
            continue
        per_run = statistics.median([x for x in (ns_per_run(r["programs"]) for r in runs[c]) if x is not None] or [0])
        full = sum(r.get("ringbuf_full") or 0 for r in runs[c]) if mode == "traced" else None
        L.append(f"| {label} | " + " | ".join(f"+{fmt(deltas(c, l))}" for l in LOOPS)
                 + f" | {fmt(per_run)} | {fmt(full) if full is not None else '–'} |")
    md = "\n".join(L)
    print(md)
    if cfg.out:
        with open(cfg.out, "w") as f:
            json.dump({"kernel": kernel, "config": vars(cfg), "refused": {f"{m} {n}": e for (m, n), e in refused.items()},
                       "runs": {f"{m} {n or ''}".strip(): v for (m, n), v in runs.items()}}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
