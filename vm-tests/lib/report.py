#!/usr/bin/env python3
"""Collects the VM tests' results (called by vm-tests/run).

    report.py vm DIR KERNEL ARCH APP[,APP]      after one VM: make sure every app
                                                has DIR/<app>.json, print one line each
    report.py summary OUT ACCEL SECONDS ID...   after all: OUT/results.{json,md},
                                                the table on stdout; exit 1 on a failure
"""

import datetime
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402


def tail(path, n=30):
    return "\n".join(checks.read(path).splitlines()[-n:])


def vm(d, kernel, arch, apps):
    vm_error = checks.read(os.path.join(d, "vm-error")).strip()
    for app in apps.split(","):
        path = os.path.join(d, f"{app}.json")
        if not os.path.exists(path):
            why = vm_error or "the VM powered off without a result for this app"
            checks.write(d, checks.failed(app, f"{why}\nlast console lines:\n{tail(os.path.join(d, 'console.log'))}"))
        with open(path) as f:
            result = json.load(f)
        result["kernel"], result["arch"] = kernel, arch
        result["vm_seconds"] = int(checks.read(os.path.join(d, "seconds")).strip() or 0)
        if vm_error and result["pass"]:
            # Every check passed but the VM did not stop cleanly: say so.
            result["pass"], result["error"] = False, vm_error
        checks.write(d, result)
        print(f"vm-tests: {kernel}: {checks.summary(result)}")


def git(*args):
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cell(result):
    if result.get("refusal"):
        return "refused" if result["pass"] else "FAIL: not refused"
    if not result["scenarios"]:
        pf = result.get("probe_failure")
        return f"FAIL: probe `{pf['probe']}`" if pf else "FAIL"
    seen = sum(s["seen"] for s in result["scenarios"])
    expected = sum(s["expected"] for s in result["scenarios"])
    return f"{'pass' if result['pass'] else 'FAIL'} {seen}/{expected}"


def summary(out, accel, seconds, ids):
    results = []
    for kernel in ids:
        d = os.path.join(out, "runs", kernel)
        for name in sorted(os.listdir(d)):
            if name.endswith(".json") and name != "job.json":
                with open(os.path.join(d, name)) as f:
                    results.append(json.load(f))
    doc = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "accel": accel,
        "seconds": int(seconds),
        "kernels": ids,
        "pass": all(r["pass"] for r in results) and bool(results),
        "results": results,
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)

    apps = []
    for r in results:
        if r["app"] not in apps:
            apps.append(r["app"])
    by = {(r["kernel"], r["app"]): r for r in results}
    lines = [
        f"VM tests: {doc['date']}, commit {doc['commit']}{' (with local changes)' if doc['dirty'] else ''}, "
        f"{accel.upper()}, {len(ids)} kernel(s), {int(seconds) // 60} min {int(seconds) % 60} s in all.",
        "",
        "Spans seen / expected, all scenarios of an app:",
        "",
        "| kernel | uname -r | " + " | ".join(apps) + " |",
        "| --- | --- | " + " | ".join("---" for _ in apps) + " |",
    ]
    for kernel in ids:
        uname = next((r.get("uname") for r in results if r["kernel"] == kernel and r.get("uname")), "")
        row = [cell(by[(kernel, a)]) if (kernel, a) in by else "" for a in apps]
        lines.append(f"| {kernel} | {uname} | " + " | ".join(row) + " |")
    lines += ["", "| kernel | app | scenario | result | spans expected | spans seen |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        if r.get("refusal"):
            lines.append(f"| {r['kernel']} | {r['app']} | refused at start-up | {'pass' if r['pass'] else 'FAIL'} | | |")
        elif not r["scenarios"]:
            lines.append(f"| {r['kernel']} | {r['app']} | (did not run) | FAIL | | |")
        for s in r["scenarios"]:
            lines.append(f"| {r['kernel']} | {r['app']} | {s['scenario']} | {'pass' if s['pass'] else 'FAIL'} "
                         f"| {s['expected']} | {s['seen']} |")
    # Each distinct failure once, with the apps and kernels it hit.
    groups = {}
    for r in results:
        if not r["pass"]:
            detail = []
            pf = r.get("probe_failure")
            if pf:
                detail += [f"probe {pf['probe']} ({pf['attach_point']}): {pf['error']}", "verifier log (end):"]
                detail += pf["verifier_log"][-30:]
            else:
                detail += (r.get("error") or "").splitlines()[:40]
            for sc in r["scenarios"]:
                for k in ("missing", "extra", "client_problems"):
                    if sc.get(k):
                        detail.append(f"{sc['scenario']}: {k}: {sc[k]}")
            groups.setdefault("\n".join(detail), []).append(f"{r['kernel']}/{r['app']}")
    if groups:
        lines += ["", "Failures:"]
        for detail, where in groups.items():
            lines += ["", f"{', '.join(where)}:", "", "```", detail, "```"]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(text)
    print(text)
    passed = sum(r["pass"] for r in results)
    # The plain closing line CI reads.
    print(f"vm-tests: {passed} passed, {len(results) - passed} failed")
    return 0 if doc["pass"] else 1


def main():
    if len(sys.argv) >= 6 and sys.argv[1] == "vm":
        vm(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
        return 0
    if len(sys.argv) >= 5 and sys.argv[1] == "summary":
        return summary(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
