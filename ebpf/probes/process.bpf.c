// SPDX-License-Identifier: GPL-2.0
/* Process lifecycle, so that discovery follows processes as the kernel sees
 * them rather than by rescanning /proc: exec, fork, exit, and listening
 * sockets. Raw tracepoints: the kernel builds no trace record, and the
 * programs read what they need from the task and socket themselves.
 *   - A traced process's child is traced from its first syscall (a server
 *     that forks per connection serves each request from a new child).
 *   - An exec is reported for a traced process (it may now be another
 *     program), and for every process while selecting by executable, which
 *     is then captured from its first syscall until the agent decides.
 *   - An exit clears the process's byte, so a reused pid starts untraced. */
#include "capture.h"

/* Set by the agent before load: mark and report every exec (selecting by executable). */
const volatile u8 watch_execs = 0;

static __always_inline void *reserve_process_event(u32 size, u8 kind, u32 tgid)
{
	struct beyla_event_header *hdr = bpf_ringbuf_reserve(&events, size, 0);
	if (!hdr) {
		count_drop(BEYLA_DROP_RINGBUF_FULL);
		return 0;
	}
	hdr->kind = kind;
	hdr->pid = tgid;
	hdr->tid = (u32)bpf_get_current_pid_tgid();
	return hdr;
}

/* sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) */
SEC("raw_tracepoint/sched_process_exec")
int on_exec(struct bpf_raw_tracepoint_args *ctx)
{
	u32 tgid = current_tgid();
	u8 *flags = pid_flags(tgid);
	if (!flags || (!*flags && !watch_execs))
		return 0;
	/* Capture from the first syscall on; the agent confirms or clears. The
	 * new program's libraries are not probed yet. */
	*flags = *flags ? *flags & ~BEYLA_PID_TLS : BEYLA_PID_PENDING;
	struct beyla_exec_event *ev = reserve_process_event(sizeof(*ev), BEYLA_EVENT_EXEC, tgid);
	if (!ev)
		return 0;
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	const char *filename = BPF_CORE_READ(bprm, filename);
	bpf_probe_read_kernel_str(ev->filename, sizeof(ev->filename), filename);
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

/* sched_process_fork(struct task_struct *parent, struct task_struct *child),
 * run by the parent before the child can run. */
SEC("raw_tracepoint/sched_process_fork")
int on_fork(struct bpf_raw_tracepoint_args *ctx)
{
	u32 parent = current_tgid();
	u8 parent_flags = pid_state(parent);
	if (!capturing(parent_flags))
		return 0;
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	u32 pid = BPF_CORE_READ(child, pid);
	u32 tgid = BPF_CORE_READ(child, tgid);
	if (pid != tgid)
		return 0; /* a new thread, already covered by its process's byte */
	u8 *child_flags = pid_flags(tgid);
	if (!child_flags)
		return 0;
	/* Library uprobes are attached per file, for every process: they fire
	 * in the child as in its parent, TLS flag included. */
	*child_flags = parent_flags;
	struct beyla_fork_event *ev = reserve_process_event(sizeof(*ev), BEYLA_EVENT_FORK, parent);
	if (!ev)
		return 0;
	ev->child = tgid;
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

/* sched_process_exit(struct task_struct *p), once per exiting thread, after
 * the thread left its process's count of live threads. */
SEC("raw_tracepoint/sched_process_exit")
int on_exit(struct bpf_raw_tracepoint_args *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	/* A thread's call slot is emptied with the thread, traced or not (the
	 * process may have stopped being traced since its calls): a thread that
	 * gets its id later must not find a call there. */
	struct call_slot *slot = call_slot_of(id);
	if (slot && slot->tid == (u32)id)
		slot->args.kind = CALL_NONE;
	bpf_map_delete_elem(&tls_calls, &id);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	u32 tgid = id >> 32;
	u8 *flags = pid_flags(tgid);
	if (!flags || !*flags)
		return 0;
	*flags = 0;
	struct beyla_event_header *ev = reserve_process_event(sizeof(*ev), BEYLA_EVENT_EXIT, tgid);
	if (ev)
		bpf_ringbuf_submit(ev, 0);
	return 0;
}

/* inet_sock_set_state(const struct sock *sk, int oldstate, int newstate), run
 * in the process that calls listen() or closes the socket. Attached only
 * while selecting by port. */
SEC("raw_tracepoint/inet_sock_set_state")
int on_sock_state(struct bpf_raw_tracepoint_args *ctx)
{
	int oldstate = ctx->args[1];
	int newstate = ctx->args[2];
	if (newstate != TCP_LISTEN && oldstate != TCP_LISTEN)
		return 0;
	struct sock *sk = (struct sock *)ctx->args[0];
	struct beyla_listen_event *ev = reserve_process_event(sizeof(*ev), BEYLA_EVENT_LISTEN, current_tgid());
	if (!ev)
		return 0;
	ev->port = BPF_CORE_READ(sk, __sk_common.skc_num);
	ev->listening = newstate == TCP_LISTEN;
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
