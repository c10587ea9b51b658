// SPDX-License-Identifier: GPL-2.0
/* Context propagation by header (ebpf.context_propagation = headers or all):
 * a `traceparent` written into the HTTP/1 requests traced clients send
 * without one, so that the server's agent, on another node, joins its span
 * to the client's trace.
 *   sock_ops  marks the TCP sockets a traced process connects (the connect
 *             callback runs in the process), and puts them in a sockhash
 *             once established (the first state a sockhash takes);
 *   sk_msg    runs on every message sent on those sockets, in the sending
 *             thread, inside its syscall: the call slot names the connection
 *             and the data event's start time, so the agent learns the ids
 *             of the request it will see (BEYLA_EVENT_CONTEXT).
 * A message is changed only when it starts an exchange (first bytes, or after
 * a read: never a body or a pipelined request written on its own), begins
 * with a request line ending in HTTP/1.x, holds the whole head within
 * HEAD_SCAN_MAX bytes and has no traceparent; the header goes right after
 * the request line, so bodies, lengths and later requests are untouched.
 * TLS sockets carry records, which never look like a request line. */
#include "capture.h"

/* UAPI values and context layouts (linux/bpf.h) of the two program types. */
#define BPF_MAP_TYPE_SOCKHASH 18
#define BPF_MAP_TYPE_SK_STORAGE 24
#define BPF_F_NO_PREALLOC 1
#define BPF_SK_STORAGE_GET_F_CREATE 1
#define BPF_SOCK_OPS_TCP_CONNECT_CB 3
#define BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB 4
#define SK_PASS 1

struct bpf_sock;

struct bpf_sock_ops {
	u32 op;
	u32 args[4];
	u32 family;
	u32 remote_ip4;
	u32 local_ip4;
	u32 remote_ip6[4];
	u32 local_ip6[4];
	u32 remote_port;
	u32 local_port;
	u32 is_fullsock;
	u32 snd_cwnd;
	u32 srtt_us;
	u32 bpf_sock_ops_cb_flags;
	u32 state;
	u32 rtt_min;
	u32 snd_ssthresh;
	u32 rcv_nxt;
	u32 snd_nxt;
	u32 snd_una;
	u32 mss_cache;
	u32 ecn_flags;
	u32 rate_delivered;
	u32 rate_interval_us;
	u32 packets_out;
	u32 retrans_out;
	u32 total_retrans;
	u32 segs_in;
	u32 data_segs_in;
	u32 segs_out;
	u32 data_segs_out;
	u32 lost_out;
	u32 sacked_out;
	u32 sk_txhash;
	u64 bytes_received;
	u64 bytes_acked;
	union {
		struct bpf_sock *sk;
		u64 sk_word;
	};
};
_Static_assert(__builtin_offsetof(struct bpf_sock_ops, sk) == 184, "bpf_sock_ops layout");

struct sk_msg_md {
	union {
		void *data;
		u64 data_word;
	};
	union {
		void *data_end;
		u64 data_end_word;
	};
	u32 family;
	u32 remote_ip4;
	u32 local_ip4;
	u32 remote_ip6[4];
	u32 local_ip6[4];
	u32 remote_port;
	u32 local_port;
	u32 size;
	union {
		struct bpf_sock *sk;
		u64 sk_word;
	};
};
_Static_assert(__builtin_offsetof(struct sk_msg_md, size) == 68, "sk_msg_md layout");

/* Bytes of a message searched for the end of a request head. */
#define HEAD_SCAN_MAX 2048
/* The shortest request: "GET / HTTP/1.1\r\n\r\n". */
#define MIN_REQUEST 18
/* " HTTP/1." before the request line's CRLF. */
#define VERSION_TAIL 8
/* "traceparent: 00-" + 32 + "-" + 16 + "-01\r\n" */
#define TP_HEADER_LEN 70
#define TP_PREFIX_LEN 16

/* A socket a traced process connected; what the sk_msg program last saw on it. */
struct sock_mark {
	/* start_ns of the call whose first message was looked at: a call's
	 * later messages (a large write is sent in pieces) are never changed. */
	u64 seen_call_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_mark);
} sock_marks SEC(".maps");

/* The sockets the sk_msg program runs on, by socket cookie; a socket leaves
 * when it closes. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, MAX_CONNECTIONS);
	__type(key, u64);
	__type(value, u32);
} propagated_sockets SEC(".maps");

/* By enum beyla_propagation_outcome. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BEYLA_PROPAGATION_OUTCOMES);
	__type(key, u32);
	__type(value, u64);
} propagation_counts SEC(".maps");

static __always_inline void count_outcome(u32 outcome)
{
	u64 *n = bpf_map_lookup_elem(&propagation_counts, &outcome);
	if (n)
		*n += 1;
}

SEC("sockops")
int mark_traced_sockets(struct bpf_sock_ops *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	if (!sk)
		return 1;
	if (ctx->op == BPF_SOCK_OPS_TCP_CONNECT_CB) {
		if (pid_state(current_tgid()) & BEYLA_PID_TRACED)
			bpf_sk_storage_get(&sock_marks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	} else if (ctx->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB) {
		if (bpf_sk_storage_get(&sock_marks, sk, 0, 0)) {
			u64 cookie = bpf_get_socket_cookie(ctx);
			bpf_sock_hash_update(ctx, &propagated_sockets, &cookie, BPF_NOEXIST);
		}
	}
	return 1;
}

static __always_inline void put_hex(char *dst, const u8 *src, u32 len)
{
	const char digits[] = "0123456789abcdef";
	for (u32 i = 0; i < len; i++) {
		dst[2 * i] = digits[src[i] >> 4];
		dst[2 * i + 1] = digits[src[i] & 15];
	}
}

/* The connection and call this message belongs to, when it may start a
 * plaintext request a traced client sends. */
static __always_inline struct conn_info *client_call(struct sk_msg_md *msg, struct call_args **call)
{
	u64 id = bpf_get_current_pid_tgid();
	if (!(pid_state(id >> 32) & BEYLA_PID_TRACED))
		return 0;
	struct call_args *args = call_in_flight((u32)id);
	if (!args || args->direction != BEYLA_DIR_EGRESS ||
	    (args->kind != CALL_BUF && args->kind != CALL_IOV && args->kind != CALL_MSG))
		return 0;
	struct sock_mark *mark = bpf_sk_storage_get(&sock_marks, msg->sk, 0, 0);
	if (!mark || mark->seen_call_ns == args->start_ns)
		return 0;
	mark->seen_call_ns = args->start_ns;
	struct conn_key key = fd_key(id >> 32, args->fd);
	struct conn_info *conn = bpf_map_lookup_elem(&connections, &key);
	if (!conn || conn->origin != BEYLA_ORIGIN_CONNECT || conn->tls || conn->phase == PHASE_WROTE)
		return 0;
	*call = args;
	return conn;
}

struct head_search {
	struct sk_msg_md *msg;
	u32 line_end; /* offset of the request line's CRLF; 0: not seen yet */
	u32 at;       /* where the header goes: past the request line */
	u32 outcome;  /* why not, when counted (enum beyla_propagation_outcome) */
};

/* bpf_loop's step over byte i of the head: a callback is verified once,
 * where an inlined loop over the message would be verified per byte. */
static long head_step(u32 i, struct head_search *s)
{
	u8 *data = s->msg->data;
	u8 *end = s->msg->data_end;
	u64 k = i;
	barrier_var(k);
	if (k >= HEAD_SCAN_MAX)
		return 1;
	u8 *p = data + k;
	if (p + 4 > end) {
		s->outcome = BEYLA_PROPAGATION_HEAD_INCOMPLETE;
		return 1;
	}
	if (p[0] != '\r' || p[1] != '\n')
		return 0;
	if (!s->line_end)
		s->line_end = k;
	if (p[2] == '\r' && p[3] == '\n') {
		s->at = s->line_end + 2;
		return 1;
	}
	u8 *line = p + 2;
	barrier_var(line);
	if (line + TP_NAME_LEN <= end && is_traceparent_name(line)) {
		s->outcome = BEYLA_PROPAGATION_HAD_CONTEXT;
		return 1;
	}
	return 0;
}

/* Whether the request line ends in " HTTP/1." and its CRLF. */
static __always_inline bool http1_request_line(struct sk_msg_md *msg, u32 line_end)
{
	if (line_end < VERSION_TAIL + 1)
		return false;
	/* Kept apart from the pointer: the compiler would fold the subtraction
	 * into a negative packet offset, which the verifier refuses. */
	u64 start = line_end - VERSION_TAIL - 1;
	barrier_var(start);
	if (start > HEAD_SCAN_MAX)
		return false;
	u8 *v = (u8 *)msg->data + start;
	if (v + VERSION_TAIL + 1 > (u8 *)msg->data_end)
		return false;
	return v[0] == ' ' && v[1] == 'H' && v[2] == 'T' && v[3] == 'T' && v[4] == 'P' && v[5] == '/' &&
	       v[6] == '1' && v[7] == '.';
}

/* Where the header goes (just past the request line), or 0 when the message
 * must stay as it is. */
static __always_inline u32 insertion_point(struct sk_msg_md *msg)
{
	u32 want = msg->size < HEAD_SCAN_MAX ? msg->size : HEAD_SCAN_MAX;
	if (want < MIN_REQUEST || bpf_msg_pull_data(msg, 0, want, 0))
		return 0;
	u8 *data = msg->data;
	u8 *end = msg->data_end;
	if (data + MIN_REQUEST > end || data[0] < 'A' || data[0] > 'Z')
		return 0; /* not a request line: a body, or another protocol */
	struct head_search search = { .msg = msg, .outcome = BEYLA_PROPAGATION_OUTCOMES };
	bpf_loop(HEAD_SCAN_MAX, head_step, &search, 0);
	if (!search.line_end || !http1_request_line(msg, search.line_end))
		return 0;
	if (!search.at) {
		count_outcome(search.outcome < BEYLA_PROPAGATION_OUTCOMES ? search.outcome
									     : BEYLA_PROPAGATION_HEAD_INCOMPLETE);
		return 0;
	}
	return search.at;
}

SEC("sk_msg")
int inject_traceparent(struct sk_msg_md *msg)
{
	struct call_args *args = 0;
	struct conn_info *conn = client_call(msg, &args);
	if (!conn || !args)
		return SK_PASS;
	u32 at = insertion_point(msg);
	if (!at)
		return SK_PASS;

	u8 trace_id[BEYLA_TRACE_ID_LEN];
	u8 span_id[BEYLA_SPAN_ID_LEN];
	u64 id = bpf_get_current_pid_tgid();
	u64 process = process_serving_key(id);
	struct serving_ctx *parent = bpf_map_lookup_elem(&serving, &id);
	if (!parent)
		parent = bpf_map_lookup_elem(&serving, &process);
	if (parent)
		__builtin_memcpy(trace_id, parent->trace_id, BEYLA_TRACE_ID_LEN);
	else
		new_trace_id(trace_id);
	new_span_id(span_id);

	char header[TP_HEADER_LEN];
	__builtin_memcpy(header, "traceparent: 00-", TP_PREFIX_LEN);
	put_hex(header + TP_PREFIX_LEN, trace_id, BEYLA_TRACE_ID_LEN);
	header[TP_PREFIX_LEN + 32] = '-';
	put_hex(header + TP_PREFIX_LEN + 33, span_id, BEYLA_SPAN_ID_LEN);
	__builtin_memcpy(header + TP_PREFIX_LEN + 49, "-01\r\n", 5);

	if (bpf_msg_push_data(msg, at, TP_HEADER_LEN, 0)) {
		count_outcome(BEYLA_PROPAGATION_PUSH_FAILED);
		return SK_PASS;
	}
	/* The room is there; if it cannot be written, it goes again, so the
	 * request leaves as the client wrote it. */
	u8 *data = 0;
	if (!bpf_msg_pull_data(msg, at, at + TP_HEADER_LEN, 0))
		data = msg->data;
	if (!data || data + TP_HEADER_LEN > (u8 *)msg->data_end) {
		bpf_msg_pop_data(msg, at, TP_HEADER_LEN, 0);
		count_outcome(BEYLA_PROPAGATION_PUSH_FAILED);
		return SK_PASS;
	}
	__builtin_memcpy(data, header, TP_HEADER_LEN);
	count_outcome(BEYLA_PROPAGATION_INJECTED);
	send_context(conn->id, args->start_ns, BEYLA_CONTEXT_CLIENT, trace_id, span_id,
		     parent ? parent->span_id : 0);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
