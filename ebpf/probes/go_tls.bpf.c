// SPDX-License-Identifier: GPL-2.0
/* TLS plaintext from Go's crypto/tls, and the goroutine each request is
 * served by. Uprobes on crypto/tls.(*Conn).Read and Write, attached by the
 * agent to Go executables only. Write's plaintext is reported at its entry;
 * Read's entry remembers the call per goroutine and a probe on each of its
 * return instructions (not a uretprobe, whose rewritten return address Go's
 * stack moves break) reports the plaintext. Either is a data event on the
 * connection, found through the Conn's net.Conn down to the socket's
 * descriptor (offsets per Go version, written by the agent in go_procs). runtime.newproc1 hands a serving goroutine's
 * identity to the goroutines it starts, so the client calls they make are
 * linked to the right server request whatever thread runs them; its probes
 * are attached once a process of the executable served a TLS request. */
#include "capture.h"
#include "go_abi.h"
#include <bpf/bpf_tracing.h>

/* Traced Go processes at once. */
#define MAX_GO_PROCS 4096
/* Goroutines inside Read at once, and goroutines with a serving one. */
#define MAX_GO_CALLS 16384
#define MAX_GO_GOROUTINES 65536

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_GO_PROCS);
	__type(key, u32); /* tgid */
	__type(value, struct beyla_go_offsets);
} go_procs SEC(".maps");

/* A Read in flight: the buffer, and the descriptor read at entry. */
struct go_tls_call {
	struct call_args args;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_GO_CALLS);
	__type(key, struct go_key);
	__type(value, struct go_tls_call);
} go_tls_calls SEC(".maps");

/* A goroutine's serving goroutine: itself once it has read from a connection
 * it accepted, or its creator's when it was started by one that had. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_GO_GOROUTINES);
	__type(key, struct go_key);
	__type(value, u64);
} go_serving SEC(".maps");

/* runtime.newproc1 runs on the thread's system stack from entry to return,
 * so its creator is kept per thread. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_GO_CALLS);
	__type(key, u64); /* pid_tgid */
	__type(value, u64); /* the creator's g */
} go_newprocs SEC(".maps");

static __always_inline struct go_key go_key_of(u32 tgid, u64 g)
{
	struct go_key key = { .tgid = tgid, .g = g };
	return key;
}

/* What the agent links this goroutine's requests by. */
static __always_inline u32 go_task(struct go_key *key)
{
	u64 *serving = bpf_map_lookup_elem(&go_serving, key);
	u64 g = serving ? *serving : key->g;
	/* g structures are at least 8-byte aligned. */
	return BEYLA_GO_TASK_BIT | (u32)(g >> 3);
}

/* The socket descriptor under a *tls.Conn, or -1 (closed: Sysfd is -1 then). */
static __always_inline long go_conn_fd(u64 tls_conn, struct beyla_go_offsets *off)
{
	u64 tcp_conn = 0, netfd = 0;
	__s64 fd = -1;
	/* The interface's data word: the *net.TCPConn. */
	if (bpf_probe_read_user(&tcp_conn, sizeof(tcp_conn), (void *)(tls_conn + off->tls_conn_conn + GO_IFACE_DATA)) ||
	    bpf_probe_read_user(&netfd, sizeof(netfd), (void *)(tcp_conn + off->tcp_conn_fd)) ||
	    bpf_probe_read_user(&fd, sizeof(fd), (void *)(netfd + off->netfd_pfd + off->poll_fd_sysfd)))
		return -1;
	return fd;
}

/* The connection of descriptor fd: known by (tgid, fd) on the syscall
 * capture paths, by its socket on the TCP path. Only a connection whose
 * bytes were seen to be TLS is taken, so that a Conn over something else
 * than a TCP socket is never bound to an unrelated descriptor. */
static __always_inline struct conn_info *go_conn_of(u32 tgid, long fd)
{
	if (fd < 0)
		return 0;
	struct conn_key key = fd_key(tgid, fd);
	struct conn_info *conn = bpf_map_lookup_elem(&connections, &key);
	if (!conn) {
		struct sock *sk = tcp_sock_of(fd);
		if (!sk)
			return 0;
		key = sk_key((u64)sk);
		conn = bpf_map_lookup_elem(&connections, &key);
	}
	return conn && conn->tls ? conn : 0;
}

/* The descriptor of the Conn a probed call got (first argument), or -1;
 * read at entry, while the connection is surely open. */
static __always_inline long go_call_fd(struct pt_regs *ctx, u32 tgid)
{
	struct beyla_go_offsets *off = bpf_map_lookup_elem(&go_procs, &tgid);
	return off ? go_conn_fd(GO_ARG1(ctx), off) : -1;
}

/* The process's first serving mark: the agent is told once, and attaches
 * the runtime.newproc1 probes only then, since they trap at every goroutine
 * start (net/http starts one per request) and serve nothing before. */
static __always_inline void go_first_serving(u32 tgid)
{
	struct beyla_go_offsets *off = bpf_map_lookup_elem(&go_procs, &tgid);
	if (!off || off->serving)
		return;
	off->serving = 1;
	struct beyla_event_header *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_drop(BEYLA_DROP_RINGBUF_FULL);
		return;
	}
	ev->kind = BEYLA_EVENT_GO_SERVING;
	ev->pid = tgid;
	ev->tid = (u32)bpf_get_current_pid_tgid();
	bpf_ringbuf_submit(ev, 0);
}

/* Plaintext of `n` bytes on the call's connection: an event, marked tls,
 * with the goroutine's serving goroutine as its task. */
static __always_inline void go_tls_data(struct go_key *key, struct call_args *args, long n)
{
	struct conn_info *conn = go_conn_of(key->tgid, args->fd);
	if (!conn) {
		count_drop(BEYLA_DROP_TLS_UNKNOWN_CONN);
		return;
	}
	/* A goroutine reading what a client sent it serves that request, and
	 * the goroutines it starts from now on do too. */
	if (args->direction == BEYLA_DIR_INGRESS && conn->origin == BEYLA_ORIGIN_ACCEPT &&
	    !bpf_map_lookup_elem(&go_serving, key)) {
		bpf_map_update_elem(&go_serving, key, &key->g, BPF_ANY);
		go_first_serving(key->tgid);
	}
	conn->active = 1;
	emit_buf(conn, args, n, 1, go_task(key));
}

/* Read(b []byte) (int, error): the buffer is filled by the return. */
SEC("uprobe/go_tls_read")
int BPF_KPROBE(go_tls_read_enter)
{
	u32 tgid = current_tgid();
	if (!capturing(pid_state(tgid)))
		return 0;
	struct go_key key = go_key_of(tgid, GO_G(ctx));
	struct go_tls_call call = {
		.args = {
			.ptr = GO_ARG2(ctx),
			.fd = go_call_fd(ctx, tgid),
			.kind = CALL_BUF,
			.direction = BEYLA_DIR_INGRESS,
		},
	};
	if (bpf_map_update_elem(&go_tls_calls, &key, &call, BPF_ANY))
		count_drop(BEYLA_DROP_ARGS_MAP_FULL);
	return 0;
}

/* At each return instruction of Read: n is the first result. */
SEC("uprobe/go_tls_read_return")
int BPF_KPROBE(go_tls_read_return)
{
	struct go_key key = go_key_of(current_tgid(), GO_G(ctx));
	struct go_tls_call *call = bpf_map_lookup_elem(&go_tls_calls, &key);
	if (!call)
		return 0;
	struct call_args args = call->args;
	bpf_map_delete_elem(&go_tls_calls, &key);
	long n = (long)GO_RET1(ctx);
	if (n > 0)
		go_tls_data(&key, &args, n);
	return 0;
}

/* Write(b []byte) (int, error) writes all of b or fails: the plaintext is
 * reported at entry. At its return the peer may have answered already and
 * the answer been read, even the connection closed (an HTTP client without
 * keep-alive), by goroutines the scheduler ran first. */
SEC("uprobe/go_tls_write")
int BPF_KPROBE(go_tls_write_enter)
{
	u32 tgid = current_tgid();
	if (!capturing(pid_state(tgid)))
		return 0;
	long n = (long)GO_ARG3(ctx);
	if (n <= 0)
		return 0;
	struct go_key key = go_key_of(tgid, GO_G(ctx));
	struct call_args args = {
		.start_ns = bpf_ktime_get_ns(),
		.ptr = GO_ARG2(ctx),
		.fd = go_call_fd(ctx, tgid),
		.kind = CALL_BUF,
		.direction = BEYLA_DIR_EGRESS,
	};
	go_tls_data(&key, &args, n);
	return 0;
}

/* runtime.newproc1(fn, callergp, ...) *g: the creator is its second argument
 * (the probe runs on the system stack, whose g is not the caller's). */
SEC("uprobe/go_newproc1")
int BPF_KPROBE(go_newproc_enter)
{
	if (!capturing(pid_state(current_tgid())))
		return 0;
	u64 id = bpf_get_current_pid_tgid();
	u64 creator = GO_ARG2(ctx);
	bpf_map_update_elem(&go_newprocs, &id, &creator, BPF_ANY);
	return 0;
}

/* At each return of newproc1: the new goroutine, whose g may be a reused
 * one, takes its creator's serving goroutine, or none. */
SEC("uprobe/go_newproc1_return")
int BPF_KPROBE(go_newproc_return)
{
	u64 id = bpf_get_current_pid_tgid();
	u64 *creator = bpf_map_lookup_elem(&go_newprocs, &id);
	if (!creator)
		return 0;
	struct go_key parent = go_key_of(id >> 32, *creator);
	bpf_map_delete_elem(&go_newprocs, &id);
	struct go_key child = go_key_of(id >> 32, GO_RET1(ctx));
	u64 *serving = bpf_map_lookup_elem(&go_serving, &parent);
	if (serving) {
		u64 root = *serving;
		bpf_map_update_elem(&go_serving, &child, &root, BPF_ANY);
	} else {
		bpf_map_delete_elem(&go_serving, &child);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
