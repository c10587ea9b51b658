#!/usr/bin/env python3
"""What the VM tests send and expect, and the check of the agent's output.

Used by the guest driver (vm-tests/guest/scenario.py, which runs in the VM)
and the host's report (vm-tests/lib/report.py). evaluate_dir reads
DIR/APP/{agent.stdout,agent.stderr,agent.exit,client.log} and writes
DIR/APP.json. client.log has one line per request sent: `METHOD PATH STATUS`
(STATUS as the client saw it, or `-` when the request failed).
evaluate_dir also checks the capture path the agent chose (its start-up log
line); refusal checks that an agent forced onto a path the kernel does not
offer refused to start and named it.

The checks are exact: every expected span (kind server, method, path, status,
route; for the db scenario also each CLIENT span of a statement, by
db.system.name, db.operation.name, db.query.text and the request it is a
child of) must be printed exactly once, and no other span may appear.
"""

import json
import os
import re
import sys


class Request:
    def __init__(self, method, path, status, route, body=None):
        self.method, self.path, self.status, self.route, self.body = method, path, status, route, body

    def key(self):
        return (self.method, self.path, self.status, self.route)


# name -> (connection use, requests). Each scenario's paths are its own, so
# every span is attributed to exactly one scenario by (method, path).
SCENARIOS = {
    # One new connection per request: the API's status codes and the route heuristic.
    "basic": ("new", [
        Request("GET", "/users/1", 200, "/users/*"),
        Request("GET", "/users/2", 200, "/users/*"),
        Request("GET", "/users/3", 200, "/users/*"),
        Request("GET", "/health", 200, "/health"),
        Request("GET", "/error", 500, "/error"),
        Request("POST", "/users", 201, "/users", body=b'{"name":"vm-test"}'),
        Request("GET", "/no-such-page", 404, "/no-such-page"),
    ]),
    # Several requests on one keep-alive connection: framing between messages.
    "keepalive": ("one", [
        Request("GET", "/users/101", 200, "/users/*"),
        Request("GET", "/users/102", 200, "/users/*"),
        Request("GET", "/users/103", 200, "/users/*"),
        Request("GET", "/keepalive-missing", 404, "/keepalive-missing"),
    ]),
    # A response without Content-Length, in chunks.
    "chunked": ("new", [
        Request("GET", "/chunked", 200, "/chunked"),
    ]),
    # Apps with /db endpoints only: one statement per request to each store,
    # over a new connection (the CLIENT spans expected are in DB_STATEMENTS).
    "db": ("new", [
        # Beyla's route heuristic stars segments that do not read like words.
        Request("GET", "/db/postgres", 200, "/*/postgres"),
        Request("GET", "/db/mysql", 200, "/*/*"),
        Request("GET", "/db/redis", 200, "/*/redis"),
    ]),
}

# What one request to /db/<store> makes, per app (shared with the host's test).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "apps",
                       "db-statements.json")) as _f:
    DB_STATEMENTS = json.load(_f)


def db_statements(app):
    """The statements of `app` (`APP` or `APP@PATH`, a run on a forced capture path)."""
    return DB_STATEMENTS["apps"].get(app.split("@")[0])


def has_db(app):
    return db_statements(app) is not None


def scenarios_for(app):
    return [name for name in SCENARIOS if name != "db" or has_db(app)]


def expected_db_spans(app, scenarios):
    """Sorted (db.system.name, db.operation.name, db.query.text, path of the parent request)."""
    if "db" not in scenarios:
        return []
    expected = []
    for req in SCENARIOS["db"][1]:
        store = req.path[len("/db/"):]
        system = DB_STATEMENTS["system"][store]
        expected += [(system, op, text, req.path) for op, text in db_statements(app)[store]]
    return sorted(expected)


def expected_span_count(app, scenarios):
    return sum(len(SCENARIOS[name][1]) for name in scenarios) + len(expected_db_spans(app, scenarios))


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def parse_spans(text):
    """JSON printer lines -> (spans, lines that are not JSON)."""
    spans, bad = [], []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            spans.append(json.loads(line))
        except ValueError:
            bad.append(line)
    return spans, bad


def span_key(span):
    a = span.get("attributes", {})
    return (a.get("http.request.method"), a.get("url.path"), a.get("http.response.status_code"),
            a.get("http.route"))


def agent_failure(stderr):
    """The agent's error (for a probe: its name and the verifier's output), else its last lines."""
    lines = [l for l in stderr.splitlines() if l.strip()]
    for i, line in enumerate(lines):
        if ("could not be loaded" in line or "probes failed" in line or " ERROR " in line
                or line.lower().startswith("error")):
            return "\n".join(lines[i:i + 60])
    return "\n".join(lines[-20:])


def probe_failure(stderr):
    """{probe, attach_point, verifier} from the agent's probe error, or None.

    The agent says: `probe NAME could not be loaded or attached to tracepoint
    CAT/NAME: <aya's error>. Verifier output: <the verifier's log>`.
    """
    # Only the agent's own error line counts: capture paths it refused on the
    # way to one it took are logged the same way, and are no failure.
    fatal = stderr[stderr.find("\nbeyla: ") + 1:] if "\nbeyla: " in stderr else (
        stderr if stderr.startswith("beyla: ") else "")
    m = re.search(r"probe (\S+) could not be loaded or attached to (\S+ \S+?): (.*)", fatal, re.S)
    if not m:
        return None
    rest = m.group(3)
    verifier = rest.split("Verifier output:", 1)[1] if "Verifier output:" in rest else rest
    # Without the time it took: it differs from run to run and says nothing.
    lines = [l.strip() for l in verifier.strip().splitlines()
             if l.strip() and not l.startswith("verification time")]
    # The verifier's reason is its last line before the statistics it ends with.
    stats = ("verification time", "stack depth", "processed ")
    reasons = [l for l in lines if not l.startswith(stats)]
    return {"probe": m.group(1), "attach_point": m.group(2), "error": rest.splitlines()[0].strip(),
            "verifier_message": reasons[-1] if reasons else "", "verifier_log": lines[-200:]}


def short_error(result):
    """One line saying why an app failed, for tables."""
    pf = result.get("probe_failure")
    if pf:
        return f"probe {pf['probe']}: {pf['verifier_message']}"
    return (result.get("error") or "").splitlines()[0] if result.get("error") else ""


def client_problems(scenarios, client_log):
    """Per scenario: requests the app did not answer as the API says."""
    seen = {}
    for line in client_log.splitlines():
        parts = line.split()
        if len(parts) == 3:
            seen.setdefault((parts[0], parts[1]), []).append(parts[2])
    problems = {}
    for name in scenarios:
        problems[name] = []
        for req in SCENARIOS[name][1]:
            got = seen.get((req.method, req.path), [])
            status = got.pop(0) if got else None
            if status is None:
                problems[name].append(f"{req.method} {req.path}: not sent")
            elif status != str(req.status):
                problems[name].append(f"{req.method} {req.path}: the app answered {status}, expected {req.status}")
    return problems


def evaluate(app, scenarios, stdout, stderr, agent_exit, problems):
    """The result of one app: a dict with pass, error, scenarios[] (expected/seen)."""
    result = {"app": app, "pass": False, "error": None, "scenarios": [], "unexpected_spans": [],
              "agent_exit": agent_exit, "agent_stopped_line": None}
    for line in stderr.splitlines():
        if "stopped:" in line:
            result["agent_stopped_line"] = line[line.index("stopped:"):]
    spans, garbage = parse_spans(stdout)
    owner = {(r.method, r.path): name for name in scenarios for r in SCENARIOS[name][1]}
    by_scenario = {name: [] for name in scenarios}
    db_spans = []
    for span in spans:
        name = owner.get(span_key(span)[:2])
        if span.get("kind") == "client" and "db.system.name" in span.get("attributes", {}):
            db_spans.append(span)
        elif name is None or span.get("kind") != "server":
            result["unexpected_spans"].append(span)
        else:
            by_scenario[name].append(span)
    result["unexpected_spans"] += [{"unparsable": line} for line in garbage]

    if "db" not in scenarios:
        result["unexpected_spans"] += db_spans
    # A database span is keyed by the request it is a child of.
    parents = {s.get("spanId"): span_key(s)[1] for s in spans if s.get("kind") == "server"}

    def db_key(span):
        a = span["attributes"]
        return (a.get("db.system.name"), a.get("db.operation.name"), a.get("db.query.text"),
                parents.get(span.get("parentSpanId"), "(no parent request)"))

    all_pass = True
    for name in scenarios:
        expected = sorted(r.key() for r in SCENARIOS[name][1])
        seen = sorted(span_key(s) for s in by_scenario[name])
        if name == "db":
            expected = sorted(expected + expected_db_spans(app, scenarios), key=str)
            seen = sorted(seen + [db_key(s) for s in db_spans], key=str)
        missing = sorted({k for k in expected if expected.count(k) > seen.count(k)}, key=str)
        extra = sorted({k for k in seen if seen.count(k) > expected.count(k)}, key=str)
        ok = expected == seen and not problems.get(name)
        all_pass &= ok
        result["scenarios"].append({
            "scenario": name, "pass": ok, "expected": len(expected), "seen": len(seen),
            "missing": missing, "extra": extra, "client_problems": problems.get(name, []),
        })
    if agent_exit != 0:
        result["error"] = f"the agent exited with {agent_exit}:\n{agent_failure(stderr)}"
    elif result["unexpected_spans"]:
        result["error"] = f"{len(result['unexpected_spans'])} span(s) that no request explains"
    result["pass"] = all_pass and result["error"] is None
    return result


def refusal(app, path, stderr, agent_exit):
    """The result of forcing a capture path the kernel does not offer: the
    agent must refuse to start and say so."""
    said = f"capture path {path} is not offered by this kernel" in stderr
    ok = agent_exit not in (None, 0) and said
    return {"app": app, "pass": ok, "refusal": True, "scenarios": [], "agent_exit": agent_exit,
            "error": None if ok else f"expected the agent to refuse capture path {path} at start-up; "
                                     f"exit {agent_exit}:\n{agent_failure(stderr)}"}


def failed(app, error):
    """The result of an app that never got as far as sending requests."""
    return {"app": app, "pass": False, "error": error, "scenarios": []}


def chosen_path(stderr):
    """The capture path the agent's log says it took, or None."""
    m = re.search(r"eBPF: capture path (\w+);", stderr)
    return m.group(1) if m else None


def evaluate_dir(out, app, kernel, scenarios, expect_path=None):
    """`app` may be `APP@PATH`, a run on a forced capture path (DIR/APP@PATH/).
    `expect_path`: the capture path the agent must have taken."""
    d = os.path.join(out, app)
    exit_text = read(os.path.join(d, "agent.exit")).strip()
    stderr = read(os.path.join(d, "agent.stderr"))
    if os.path.exists(os.path.join(d, "error")):
        # The guest gave up before the requests (app or agent did not start).
        result = failed(app, read(os.path.join(d, "error")).strip() + "\n" + agent_failure(stderr))
        result["agent_exit"] = int(exit_text) if exit_text.lstrip("-").isdigit() else None
    elif not exit_text:
        result = failed(app, "the guest left no agent exit status (VM stopped early?)")
    else:
        problems = client_problems(scenarios, read(os.path.join(d, "client.log")))
        result = evaluate(app, scenarios, read(os.path.join(d, "agent.stdout")), stderr, int(exit_text), problems)
    result["probe_failure"] = probe_failure(stderr)
    result["capture_path"] = chosen_path(stderr)
    if expect_path and result["pass"] and result["capture_path"] != expect_path:
        result["pass"] = False
        result["error"] = (f"the agent took capture path {result['capture_path']}, not {expect_path}, "
                           f"the first this kernel offers (kernels/matrix.toml capture_paths)")
    result["kernel"] = kernel
    result["uname"] = read(os.path.join(out, "uname")).strip()  # written by the guest at boot
    write(out, result)
    return result


def write(out, result):
    with open(os.path.join(out, f"{result['app']}.json"), "w") as f:
        json.dump(result, f, indent=1)


def summary(result):
    status = "PASS" if result["pass"] else "FAIL"
    detail = " ".join(f"{s['scenario']}={s['seen']}/{s['expected']}" for s in result["scenarios"])
    error = short_error(result)
    return f"{result['app']}: {status} {detail}" + (f" ({error})" if error else "")
