// SPDX-License-Identifier: GPL-2.0
/* TLS plaintext from OpenSSL (libssl 1.1 and 3.x, or linked into the
 * executable as in Node.js): uprobes on SSL_read, SSL_write and their _ex
 * forms, attached by the agent per traced process. Entry remembers the
 * buffer; the return reports the plaintext as a data event on its connection,
 * marked tls. The connection is named by the socket call OpenSSL makes inside
 * (socket BIO), by an earlier call on the same SSL object, or, for memory
 * BIOs, by the thread's last ciphertext read (capture.h's socket_data, on
 * every capture path), for a read or for an object's first write. */
#include "capture.h"
#include <bpf/bpf_tracing.h>

/* SSL objects whose connection is known, for calls that make no socket call
 * (answered from OpenSSL's buffers, or memory BIOs). */
#define MAX_SSL_OBJECTS 16384

struct ssl_key {
	u32 tgid;
	u32 pad;
	u64 ssl;
};

/* The connection id tells a live binding from one left by a freed SSL object
 * whose address was reused. */
struct ssl_conn {
	u64 conn_id;
	struct conn_key conn;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_SSL_OBJECTS);
	__type(key, struct ssl_key);
	__type(value, struct ssl_conn);
} ssl_conns SEC(".maps");

static __always_inline void ssl_enter(struct pt_regs *ctx, u8 direction, bool ex)
{
	if (!capturing(pid_state(current_tgid())))
		return;
	struct tls_call call = {
		.args = {
			.start_ns = bpf_ktime_get_ns(),
			.ptr = PT_REGS_PARM2(ctx),
			.kind = CALL_BUF,
			.direction = direction,
		},
		.ssl = PT_REGS_PARM1(ctx),
		.ex_len = ex ? PT_REGS_PARM4(ctx) : 0,
	};
	u64 id = bpf_get_current_pid_tgid();
	struct tls_call *slot = bpf_map_lookup_elem(&tls_calls, &id);
	if (slot)
		*slot = call;
	else if (bpf_map_update_elem(&tls_calls, &id, &call, BPF_NOEXIST))
		count_drop(BEYLA_DROP_ARGS_MAP_FULL);
}

static __always_inline struct conn_info *conn_at(struct conn_key *key)
{
	return bpf_map_lookup_elem(&connections, key);
}

/* Remembers that `key`'s SSL object speaks over `conn` (known as `at`); returns conn. */
static __always_inline struct conn_info *bind_ssl(struct ssl_key *key, struct conn_key at, struct conn_info *conn)
{
	if (!conn)
		return 0;
	struct ssl_conn binding = { .conn_id = conn->id, .conn = at };
	bpf_map_update_elem(&ssl_conns, key, &binding, BPF_ANY);
	conn->ssl = key->ssl;
	return conn;
}

/* The connection an SSL call's plaintext belongs to, or 0; binds the SSL
 * object to it when that is news. */
static __always_inline struct conn_info *ssl_conn_of(u64 id, struct tls_call *call, struct ssl_key *key)
{
	struct ssl_conn *known = bpf_map_lookup_elem(&ssl_conns, key);
	/* Socket BIO: the socket call made inside named the connection. */
	if (call->conn_known) {
		struct conn_info *conn = conn_at(&call->conn);
		if (conn && known && known->conn_id == conn->id)
			return conn;
		return bind_ssl(key, call->conn, conn);
	}
	if (known) {
		struct conn_info *conn = conn_at(&known->conn);
		if (conn && conn->id == known->conn_id)
			return conn;
	}
	/* Memory BIO: plaintext read now came from the ciphertext this thread
	 * read last. A first write does too when its object holds no connection
	 * yet: a client's request, queued during the handshake, is written right
	 * after the handshake's last record was read (Node's https). It claims
	 * that connection only if no other SSL object holds it. */
	struct conn_key *last = bpf_map_lookup_elem(&tls_reads, &id);
	if (!last)
		return 0;
	struct conn_key at = *last;
	struct conn_info *conn = conn_at(&at);
	if (!conn || !conn->tls)
		return 0;
	if (call->args.direction != BEYLA_DIR_INGRESS && conn->ssl && conn->ssl != key->ssl)
		return 0;
	return bind_ssl(key, at, conn);
}

static __always_inline void ssl_return(struct pt_regs *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	struct tls_call *call = bpf_map_lookup_elem(&tls_calls, &id);
	if (!call || !call->args.kind)
		return;
	/* All four return int: the upper half of the register is not theirs. */
	long ret = (int)PT_REGS_RC(ctx);
	long bytes = ret;
	if (call->ex_len) {
		/* SSL_*_ex return 1 on success and write the count through a pointer. */
		u64 n = 0;
		bytes = (ret == 1 && !bpf_probe_read_user(&n, sizeof(n), (void *)call->ex_len)) ? (long)n : 0;
	}
	struct ssl_key key = { .tgid = id >> 32, .ssl = call->ssl };
	if (bytes > 0) {
		struct conn_info *conn = ssl_conn_of(id, call, &key);
		if (conn)
			emit_data(conn, &call->args, bytes, 1);
		else
			count_drop(BEYLA_DROP_TLS_UNKNOWN_CONN);
	} else if (call->conn_known) {
		ssl_conn_of(id, call, &key);
	}
	call->args.kind = CALL_NONE;
}

SEC("uprobe/SSL_write")
int BPF_KPROBE(ssl_write_enter)
{
	ssl_enter(ctx, BEYLA_DIR_EGRESS, false);
	return 0;
}

SEC("uprobe/SSL_write_ex")
int BPF_KPROBE(ssl_write_ex_enter)
{
	ssl_enter(ctx, BEYLA_DIR_EGRESS, true);
	return 0;
}

SEC("uprobe/SSL_read")
int BPF_KPROBE(ssl_read_enter)
{
	ssl_enter(ctx, BEYLA_DIR_INGRESS, false);
	return 0;
}

SEC("uprobe/SSL_read_ex")
int BPF_KPROBE(ssl_read_ex_enter)
{
	ssl_enter(ctx, BEYLA_DIR_INGRESS, true);
	return 0;
}

/* One return probe serves all four: the entry recorded what the call was. */
SEC("uretprobe/SSL_rw")
int BPF_KRETPROBE(ssl_return_probe)
{
	ssl_return(ctx);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
