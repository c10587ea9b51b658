// SPDX-License-Identifier: GPL-2.0
/* Process lifecycle: tells the agent about execs while it selects processes by
 * executable, so that a short-lived client (curl) is traced from its first
 * syscall instead of after the next /proc scan. */
#include "maps.h"
#include <bpf/bpf_core_read.h>

/* Set by the agent before load: emit exec events (only when selecting by executable). */
const volatile u8 watch_execs = 0;

SEC("tracepoint/sched/sched_process_exec")
int on_exec(struct sched_process_exec_ctx *ctx)
{
	if (!watch_execs)
		return 0;
	u32 tgid = current_tgid();
	/* Capture from the first syscall on; the agent confirms or removes the entry. */
	u32 pending = BEYLA_PID_PENDING;
	bpf_map_update_elem(&traced_pids, &tgid, &pending, BPF_NOEXIST);

	struct beyla_exec_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_drop(BEYLA_DROP_RINGBUF_FULL);
		return 0;
	}
	ev->hdr.kind = BEYLA_EVENT_EXEC;
	ev->hdr.pid = tgid;
	ev->hdr.tid = (u32)bpf_get_current_pid_tgid();
	u32 off = ctx->filename_loc & 0xFFFF;
	bpf_probe_read_kernel_str(ev->filename, sizeof(ev->filename), (void *)ctx + off);
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
