#!/usr/bin/env python3
"""Runs inside a test VM (amd64 or arm64): for each sample app, start it, start the
agent selecting it by port (JSON trace printer), send the requests of every
scenario in vm-tests/lib/checks.py, stop the agent with SIGTERM, and check the
spans it printed.

    scenario.py --job JOB.json --out DIR

JOB.json: {"kernel": "<id>", "apps": ["python", ...], "agent": "<path>",
"capture_paths": [offered, in the agent's order], "refused_paths": [...],
"commands": {"<app>": [...]}} (commands replacing an app's own, as the
cross-compiled Go app in the arm64 guest), paths relative to the repository
root (the working directory). Each app runs on the capture path the agent
chooses, which must be the first offered; the first app runs again on each
other offered path (DIR/<app>@<path>/); each refused path must be refused at
start-up (DIR/refused@<path>.json). Leaves
DIR/<app>/ (app.log, agent.stdout, agent.stderr, agent.exit, client.log) and
DIR/<app>.json (the result). Timeouts only bound the waiting; nothing is
asserted about how fast anything happens.
"""

import argparse
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import checks  # noqa: E402
import databases  # noqa: E402

PORT = 18080
# Generous: under TCG (software emulation) a JVM takes tens of seconds to
# start, and the verifier is slow too.
LISTEN_TIMEOUT = 300
INSTRUMENT_TIMEOUT = 300
SPANS_TIMEOUT = 120
EXIT_TIMEOUT = 120

# app -> (command, the line it prints once listening). PORT is in the
# environment; {port} in an argument is replaced by it.
APPS = {
    "python": (["python3", "vm-tests/apps/python/server.py"], "listening on"),
    "node": (["node", "vm-tests/apps/node/server.js"], "listening on"),
    "go": (["target/apps/go-server"], "listening on"),
    "go-tls": (["target/apps/go-tls-server"], "listening on"),
    "java": (["java", "-cp", "target/apps/java:target/apps/java/lib/*", "App"], "listening on"),
    "ruby": (["ruby", "vm-tests/apps/ruby/server.rb"], "listening on"),
    "php": (["php", "-S", "127.0.0.1:{port}", "vm-tests/apps/php/app.php"], "started"),
    "php-fpm": (["vm-tests/apps/php/run-fpm.sh"], "listening on"),
    "rust": (["target/apps/rust-server"], "listening on"),
    "cpp": (["target/apps/cpp-server"], "listening on"),
}

# Apps served over TLS (a certificate made in the guest, trusted by the client).
TLS_APPS = {"go-tls"}


def wait_for(predicate, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def send(requests, connection_use, log, tls=False):
    """Sends the requests; logs `METHOD PATH STATUS` per request."""
    conn = None
    for req in requests:
        if conn is None or connection_use == "new":
            if conn is not None:
                conn.close()
            if tls:
                conn = http.client.HTTPSConnection("127.0.0.1", PORT, timeout=60,
                                                   context=ssl._create_unverified_context())
            else:
                conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        try:
            headers = {"Content-Type": "application/json"} if req.body else {}
            conn.request(req.method, req.path, body=req.body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            log.write(f"{req.method} {req.path} {resp.status}\n")
        except OSError as e:
            log.write(f"{req.method} {req.path} -\n# {e}\n")
            conn.close()
            conn = None
    if conn is not None:
        conn.close()


def drive(app, command, agent, d, db_env, capture_path=None):
    """Runs one app and the agent, on capture_path when given; leaves their
    output in d. db_env names the database servers, for the apps that have
    /db endpoints."""
    def path(name):
        return os.path.join(d, name)

    def give_up(message):
        with open(path("error"), "w") as f:
            f.write(message)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEYLA_", "OTEL_"))}
    env["PORT"] = str(PORT)
    if app in TLS_APPS:
        env["TLS_CERT"], env["TLS_KEY"] = path("cert.pem"), path("key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", env["TLS_KEY"], "-out", env["TLS_CERT"]],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env.update(db_env)
    ready = APPS[app][1]
    command = [arg.replace("{port}", str(PORT)) for arg in command]
    server = agent_proc = None
    try:
        with open(path("app.log"), "w") as app_log:
            server = subprocess.Popen(command, env=env, stdout=app_log, stderr=subprocess.STDOUT)
        if not wait_for(lambda: ready in checks.read(path("app.log")) or server.poll() is not None,
                        LISTEN_TIMEOUT) or server.poll() is not None:
            return give_up(f"the {app} app did not start listening on {PORT}:\n{checks.read(path('app.log'))[-2000:]}")

        agent_env = dict(env, BEYLA_OPEN_PORT=str(PORT), BEYLA_TRACE_PRINTER="json", BEYLA_LOG_LEVEL="info")
        if capture_path:
            agent_env["BEYLA_BPF_CAPTURE_PATH"] = capture_path
        with open(path("agent.stdout"), "w") as out, open(path("agent.stderr"), "w") as err:
            agent_proc = subprocess.Popen([agent], env=agent_env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        marker = f"instrumenting pid={server.pid}"
        if not wait_for(lambda: marker in checks.read(path("agent.stderr")) or agent_proc.poll() is not None,
                        INSTRUMENT_TIMEOUT) or agent_proc.poll() is not None:
            if agent_proc.poll() is None:
                return give_up(f"the agent did not log {marker!r} within {INSTRUMENT_TIMEOUT}s")
            with open(path("agent.exit"), "w") as f:
                f.write(str(agent_proc.returncode))
            return give_up(f"the agent exited with {agent_proc.returncode} at start-up")

        scenarios = checks.scenarios_for(app)
        with open(path("client.log"), "w") as log:
            for name in scenarios:
                use, requests = checks.SCENARIOS[name]
                send(requests, use, log, tls=app in TLS_APPS)

        # Wait until the printer has written as many spans as the requests
        # make (or give up waiting and check what came); SIGTERM flushes the rest.
        total = checks.expected_span_count(app, scenarios)
        wait_for(lambda: len(checks.parse_spans(checks.read(path("agent.stdout")))[0]) >= total
                 or agent_proc.poll() is not None, SPANS_TIMEOUT)
        agent_proc.send_signal(signal.SIGTERM)
        try:
            agent_proc.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            agent_proc.kill()
            agent_proc.wait()
        with open(path("agent.exit"), "w") as f:
            f.write(str(agent_proc.returncode))
    finally:
        for proc in (agent_proc, server):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def refuse(agent, path, out):
    """Forces a capture path the kernel does not offer: the agent must refuse to start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEYLA_", "OTEL_"))}
    env.update(BEYLA_OPEN_PORT=str(PORT), BEYLA_BPF_CAPTURE_PATH=path, BEYLA_TRACE_PRINTER="json")
    try:
        p = subprocess.run([agent], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=INSTRUMENT_TIMEOUT)
        code, stderr = p.returncode, p.stderr
    except subprocess.TimeoutExpired as e:
        code, stderr = None, (e.stderr or b"").decode(errors="replace")
    return checks.refusal(f"refused@{path}", path, stderr, code)


def pathcost(job, out):
    """Measures the capture paths this kernel offers (bench/pathcost.py)."""
    with open(os.path.join(out, "pathcost.md"), "w") as md, open(os.path.join(out, "pathcost.err"), "w") as err:
        return subprocess.run([sys.executable, "bench/pathcost.py", "--rounds", "3", "--agent", job["agent"],
                               "--out", os.path.join(out, "pathcost.json")], stdout=md, stderr=err).returncode


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--job", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    with open(args.job) as f:
        job = json.load(f)
    if job.get("pathcost"):
        return pathcost(job, args.out)
    failures = 0
    # The database servers, once, if an app of this VM has /db endpoints.
    db_env, db_procs, db_error = {}, [], None
    if any(checks.has_db(app) for app in job["apps"]):
        print("scenario: starting the database servers", flush=True)
        try:
            db_env, db_procs = databases.start(args.out)
        except Exception as e:  # reported with each app's db scenario
            db_error = f"the database servers did not start: {e}"
            print(f"scenario: {db_error}", flush=True)
    offered = job.get("capture_paths", [])
    runs = [(app, None) for app in job["apps"]]
    runs += [(job["apps"][0], path) for path in offered[1:]]
    for app, path in runs:
        name = f"{app}@{path}" if path else app
        print(f"scenario: {name}: start", flush=True)
        d = os.path.join(args.out, name)
        os.makedirs(d, exist_ok=True)
        if app not in APPS:
            result = checks.failed(name, f"unknown app {app} (known: {', '.join(APPS)})")
            result["kernel"], result["uname"] = job["kernel"], os.uname().release
            checks.write(args.out, result)
        else:
            try:
                if db_error and checks.has_db(app):
                    raise RuntimeError(db_error)
                command = job.get("commands", {}).get(app, APPS[app][0])
                drive(app, command, job["agent"], d, db_env, path)
            except Exception as e:  # a bug here must still leave a result behind
                with open(os.path.join(d, "error"), "w") as f:
                    f.write(f"scenario.py: {type(e).__name__}: {e}")
            result = checks.evaluate_dir(args.out, name, job["kernel"], checks.scenarios_for(app),
                                         None if path else (offered[0] if offered else None))
        print(f"scenario: {checks.summary(result)}", flush=True)
        failures += not result["pass"]
    for path in job.get("refused_paths", []):
        result = refuse(job["agent"], path, args.out)
        result["kernel"], result["uname"] = job["kernel"], os.uname().release
        checks.write(args.out, result)
        print(f"scenario: {checks.summary(result)}", flush=True)
        failures += not result["pass"]
    databases.stop(db_procs)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
