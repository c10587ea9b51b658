"""The kernel's run time and run count of one process's BPF programs
(`kernel.bpf_stats_enabled`), shared by bench.py and pathcost.py."""

import json
import os
import re
import subprocess


class StatsError(Exception):
    pass


def prog_ids(pid):
    """Ids of the BPF programs a process holds descriptors of: its own, never another agent's."""
    ids = set()
    fdinfo = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fdinfo):
        try:
            with open(os.path.join(fdinfo, fd)) as f:
                m = re.search(r"^prog_id:\s*(\d+)", f.read(), re.M)
        except OSError:
            continue
        if m:
            ids.add(int(m.group(1)))
    return ids


def bpf_stats(agent_pid):
    """{program name: (run_time_ns, run_cnt)} of the agent's programs."""
    r = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        raise StatsError(f"bpftool prog show: {r.stderr.strip()}")
    mine = prog_ids(agent_pid)
    out = {}
    for prog in json.loads(r.stdout):
        if prog.get("id") not in mine:
            continue
        name = prog.get("name", "")
        t, n = out.get(name, (0, 0))
        out[name] = (t + prog.get("run_time_ns", 0), n + prog.get("run_cnt", 0))
    return out
