/* Context propagation (ebpf.context_propagation = headers or all): what the
 * capture paths and the propagation programs (propagation.bpf.c) share.
 * A traced server's request gets its trace and span ids here, when its first
 * bytes are read: the calls the serving thread makes carry them in the
 * `traceparent` the sk_msg program writes, and the agent gives the spans the
 * same ids (BEYLA_EVENT_CONTEXT). Included by capture.h, after its types. */
#ifndef BEYLA_PROPAGATION_H
#define BEYLA_PROPAGATION_H

/* Which way a connection's last bytes went: a request starts where the
 * direction turns (or with the first bytes). */
enum conn_phase {
	PHASE_IDLE = 0,
	PHASE_READ = 1,
	PHASE_WROTE = 2,
};

/* Bytes of a server request's head searched for an incoming `traceparent`. */
#define TP_SCAN_BYTES 1024
/* "\ntraceparent:" */
#define TP_NAME_LEN 12
/* Spaces allowed between the header's colon and its value. */
#define TP_MAX_SPACES 2
/* "00-" + 32 hex digits + "-" + 16 hex digits */
#define TP_VALUE_LEN 52
/* Bytes from a header line's '\n' to the end of the span id, at most. */
#define TP_TAIL (1 + TP_NAME_LEN + TP_MAX_SPACES + TP_VALUE_LEN)


/* A serving request is kept under two keys: its thread's and its process's. */
#define SERVING_KEYS 2

/* The request a thread or a process serves: its span, and its trace. */
struct serving_ctx {
	u8 trace_id[BEYLA_TRACE_ID_LEN];
	u8 span_id[BEYLA_SPAN_ID_LEN];
	u64 conn_id;
};

/* Keyed by pid_tgid (the thread that read the request) and by tgid << 32
 * (the process's latest: runtimes that move work between threads, like Go's,
 * call out from another thread). LRU: entries of threads that never answer age out. */
BEYLA_SHARED struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BEYLA_MAX_SERVING); /* the agent sets 1 when propagation is off */
	__type(key, u64);
	__type(value, struct serving_ctx);
} serving SEC(".maps");

struct tp_scan {
	u8 buf[TP_SCAN_BYTES];
};

/* A server request's first bytes, copied for the traceparent search. */
BEYLA_SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct tp_scan);
} tp_scan_buf SEC(".maps");

static __always_inline void random_bytes(u8 *dst, u32 words)
{
	for (u32 i = 0; i < words; i++) {
		u32 r = bpf_get_prandom_u32();
		__builtin_memcpy(dst + 4 * i, &r, 4);
	}
}

/* Random, non-zero ids (an all-zero id is invalid in W3C Trace Context). */
static __always_inline void new_span_id(u8 *id)
{
	random_bytes(id, BEYLA_SPAN_ID_LEN / 4);
	id[0] |= 1;
}

static __always_inline void new_trace_id(u8 *id)
{
	random_bytes(id, BEYLA_TRACE_ID_LEN / 4);
	id[0] |= 1;
}

/* The value of a hex digit, or 16 for anything else. */
static __always_inline u8 hex_value(u8 c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return 16;
}

/* Parses `len` bytes of ids from 2 * len hex digits; false if one is not hex. */
static __always_inline bool parse_hex(u8 *dst, const u8 *src, u32 len)
{
	for (u32 i = 0; i < len; i++) {
		u8 hi = hex_value(src[2 * i]);
		u8 lo = hex_value(src[2 * i + 1]);
		if (hi > 15 || lo > 15)
			return false;
		dst[i] = hi << 4 | lo;
	}
	return true;
}

/* Whether p (a line's first byte) names the traceparent header, any case. */
static __always_inline bool is_traceparent_name(const u8 *p)
{
	const char name[TP_NAME_LEN] = "traceparent:";
	for (u32 i = 0; i < TP_NAME_LEN; i++) {
		u8 c = p[i];
		if (c >= 'A' && c <= 'Z')
			c |= 0x20;
		if (c != (u8)name[i])
			return false;
	}
	return true;
}

/* Where the value of the `traceparent` header among the first `n` bytes of
 * the per-CPU search buffer starts, or 0. A global function: the verifier
 * walks its loop once per program, apart from the long syscall-exit code
 * that calls it (inlined there, it took every program past the verifier's
 * limit), and it needs no bpf_loop (kernel 5.17), whose callback would keep
 * every capture path from loading on older kernels. sockets.bpf.c defines
 * it; the BPF linker joins the others' calls to it. */
#ifdef BEYLA_MAPS_OWNER
__attribute__((noinline)) int find_traceparent(u32 n)
{
	u32 zero = 0;
	struct tp_scan *scan = bpf_map_lookup_elem(&tp_scan_buf, &zero);
	if (!scan)
		return 0;
	for (u32 i = 0; i < TP_SCAN_BYTES - TP_TAIL; i++) {
		if (i + TP_TAIL > n)
			return 0;
		if (scan->buf[i] == '\n' && is_traceparent_name(&scan->buf[i + 1]))
			return i + 1 + TP_NAME_LEN;
	}
	return 0;
}
#else
extern int find_traceparent(u32 n);
#endif

/* The trace id of the `traceparent` among the first bytes the call read, if
 * there is one within TP_SCAN_BYTES. The agent parses the same header from
 * the same bytes. Only a plain buffer is searched (every sample runtime
 * reads requests so); other reads start a trace. */
static __always_inline bool incoming_trace_id(struct call_args *args, long ret, u8 *trace_id)
{
	if (args->kind != CALL_BUF || ret <= TP_TAIL)
		return false;
	u32 zero = 0;
	struct tp_scan *scan = bpf_map_lookup_elem(&tp_scan_buf, &zero);
	if (!scan)
		return false;
	u64 n = ret;
	if (n > TP_SCAN_BYTES)
		n = TP_SCAN_BYTES;
	barrier_var(n);
	if (n > TP_SCAN_BYTES)
		n = TP_SCAN_BYTES;
	if (bpf_probe_read_user(scan->buf, n, (void *)args->ptr))
		return false;
	u64 at = find_traceparent(n);
	for (u32 i = 0; i < TP_MAX_SPACES; i++) {
		barrier_var(at);
		if (!at || at > TP_SCAN_BYTES - TP_VALUE_LEN)
			return false;
		if (scan->buf[at] == ' ')
			at++;
	}
	barrier_var(at);
	if (!at || at > TP_SCAN_BYTES - TP_VALUE_LEN)
		return false;
	u8 *v = &scan->buf[at];
	/* Version 00 (the agent takes later versions as 00 too; ff is invalid). */
	if (v[2] != '-' || v[35] != '-' || (v[0] == 'f' && v[1] == 'f'))
		return false;
	if (!parse_hex(trace_id, v + 3, BEYLA_TRACE_ID_LEN))
		return false;
	u8 span[BEYLA_SPAN_ID_LEN];
	return parse_hex(span, v + 36, BEYLA_SPAN_ID_LEN);
}

static __always_inline void send_context(u64 conn_id, u64 start_ns, u8 role, const u8 *trace_id,
					 const u8 *span_id, const u8 *parent_id)
{
	u64 id = bpf_get_current_pid_tgid();
	struct beyla_context_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_drop(BEYLA_DROP_RINGBUF_FULL);
		return;
	}
	ev->hdr.kind = BEYLA_EVENT_CONTEXT;
	ev->hdr.pid = id >> 32;
	ev->hdr.tid = (u32)id;
	ev->conn_id = conn_id;
	ev->start_ns = start_ns;
	__builtin_memcpy(ev->trace_id, trace_id, BEYLA_TRACE_ID_LEN);
	__builtin_memcpy(ev->span_id, span_id, BEYLA_SPAN_ID_LEN);
	if (parent_id)
		__builtin_memcpy(ev->parent_id, parent_id, BEYLA_SPAN_ID_LEN);
	else
		__builtin_memset(ev->parent_id, 0, BEYLA_SPAN_ID_LEN);
	ev->role = role;
	__builtin_memset(ev->pad, 0, sizeof(ev->pad));
	bpf_ringbuf_submit(ev, wakeup_flags());
}

/* The keys of the request the current thread serves, and its process's latest. */
static __always_inline u64 process_serving_key(u64 pid_tgid)
{
	return pid_tgid & ~0xffffffffULL;
}

/* A traced server's request starts on `conn`: new ids (the trace of its
 * incoming `traceparent`, if any), kept for the calls it makes and sent to
 * the agent before the data event. */
static __always_inline void server_request_started(struct conn_info *conn, struct call_args *args, long ret)
{
	struct serving_ctx ctx = { .conn_id = conn->id };
	if (!incoming_trace_id(args, ret, ctx.trace_id))
		new_trace_id(ctx.trace_id);
	new_span_id(ctx.span_id);
	u64 id = bpf_get_current_pid_tgid();
	u64 process = process_serving_key(id);
	conn->serving_tid = (u32)id;
	bpf_map_update_elem(&serving, &id, &ctx, BPF_ANY);
	bpf_map_update_elem(&serving, &process, &ctx, BPF_ANY);
	send_context(conn->id, 0, BEYLA_CONTEXT_SERVER, ctx.trace_id, ctx.span_id, 0);
}

/* A traced server answered on `conn`: the request it served is over, under
 * the key of the thread that read it (left behind, a stale entry would be
 * the parent of that thread's later calls) and its process's. */
static __always_inline void server_request_answered(struct conn_info *conn)
{
	u64 process = process_serving_key(bpf_get_current_pid_tgid());
	u64 keys[SERVING_KEYS] = { process | conn->serving_tid, process };
	for (u32 i = 0; i < SERVING_KEYS; i++) {
		struct serving_ctx *ctx = bpf_map_lookup_elem(&serving, &keys[i]);
		if (ctx && ctx->conn_id == conn->id)
			bpf_map_delete_elem(&serving, &keys[i]);
	}
}

/* A traced process's socket call moved `ret` bytes on `conn` (plaintext TCP):
 * a server request starting or answered, and the direction for the sk_msg
 * program, which injects only into a request that starts an exchange. */
static __always_inline void exchange_moved(struct conn_info *conn, struct call_args *args, long ret)
{
	u8 phase = args->direction == BEYLA_DIR_INGRESS ? PHASE_READ : PHASE_WROTE;
	if (conn->origin == BEYLA_ORIGIN_ACCEPT && phase != conn->phase) {
		if (phase == PHASE_READ)
			server_request_started(conn, args, ret);
		else
			server_request_answered(conn);
	}
	conn->phase = phase;
}

#endif /* BEYLA_PROPAGATION_H */
