// SPDX-License-Identifier: GPL-2.0
/* TLS plaintext from OpenSSL (libssl 1.1 and 3.x): uprobes on SSL_read,
 * SSL_write and their _ex forms, attached by the agent per traced process.
 * Entry remembers the buffer; the socket call OpenSSL makes inside names the
 * connection (sockets.bpf.c, which then drops that ciphertext); the return
 * reports the plaintext as a data event on that connection, marked tls. */
#include "capture.h"
#include <bpf/bpf_tracing.h>

/* SSL objects whose fd is known, for calls OpenSSL answers from its buffers. */
#define MAX_SSL_OBJECTS 16384

struct ssl_key {
	u32 tgid;
	u32 pad;
	u64 ssl;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_SSL_OBJECTS);
	__type(key, struct ssl_key);
	__type(value, u32);
} ssl_fds SEC(".maps");

static __always_inline void ssl_enter(struct pt_regs *ctx, u8 direction, bool ex)
{
	if (!is_traced())
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
	if (bpf_map_update_elem(&tls_calls, &id, &call, BPF_ANY))
		count_drop(BEYLA_DROP_ARGS_MAP_FULL);
}

static __always_inline void ssl_return(struct pt_regs *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	struct tls_call *call = bpf_map_lookup_elem(&tls_calls, &id);
	if (!call)
		return;
	long ret = PT_REGS_RC(ctx);
	long bytes = ret;
	if (call->ex_len) {
		/* SSL_*_ex return 1 on success and write the count through a pointer. */
		u64 n = 0;
		bytes = (ret == 1 && !bpf_probe_read_user(&n, sizeof(n), (void *)call->ex_len)) ? (long)n : 0;
	}
	struct ssl_key key = { .tgid = id >> 32, .ssl = call->ssl };
	if (call->fd_known) {
		bpf_map_update_elem(&ssl_fds, &key, &call->args.fd, BPF_ANY);
	} else {
		u32 *fd = bpf_map_lookup_elem(&ssl_fds, &key);
		if (fd)
			call->args.fd = *fd;
	}
	if (bytes > 0) {
		struct conn_key ck = { .tgid = id >> 32, .fd = call->args.fd };
		struct conn_info *conn = 0;
		if (call->fd_known || bpf_map_lookup_elem(&ssl_fds, &key))
			conn = bpf_map_lookup_elem(&connections, &ck);
		if (conn)
			emit_data(conn, &call->args, bytes, 1);
		else
			count_drop(BEYLA_DROP_TLS_UNKNOWN_CONN);
	}
	bpf_map_delete_elem(&tls_calls, &id);
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
