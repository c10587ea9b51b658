// SPDX-License-Identifier: GPL-2.0
/* TCP traffic of traced processes, from syscall tracepoints only (no kprobes):
 * enter handlers remember the arguments of a traced thread's call, exit handlers
 * turn a successful call into one ring-buffer event with a bounded prefix of the
 * bytes. Untraced processes cost one hash lookup per call. */
#define BEYLA_MAPS_OWNER
#include "capture.h"

/* Threads of traced processes with a call slot. */
#define MAX_INFLIGHT_CALLS 16384
/* fds seen not to be TCP sockets, so files and pipes are resolved once. */
#define MAX_NOT_SOCKETS 16384

/* Each traced thread's call between enter and exit. A thread makes one
 * syscall at a time, so its slot is written in place and marked empty
 * (kind 0) at exit; it is created at the thread's first call and deleted when
 * the thread exits. Inserting and deleting an entry per call cost more than
 * the rest of a traced call's probes together. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_INFLIGHT_CALLS);
	__type(key, u64); /* pid_tgid */
	__type(value, struct call_args);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_NOT_SOCKETS);
	__type(key, struct conn_key);
	__type(value, u8);
} not_sockets SEC(".maps");

/* A connection id is the monotonic time its connection was first seen, with
 * the CPU number in the low bits: unique without a shared counter, whose
 * atomic fetch-and-add kernels before 5.12 reject (and a per-CPU counter is
 * not safe where programs can be preempted). The time wraps after 2^52 ns
 * (52 days); two ids then collide only if taken on the same CPU in the same
 * nanosecond modulo that. */
#define CONN_ID_CPU_BITS 12
#define CONN_ID_TIME_BITS (64 - CONN_ID_CPU_BITS)

static __always_inline void remember_call(u32 fd, u64 ptr, u64 count, u8 kind, u8 direction)
{
	if (!is_traced())
		return;
	struct call_args args = {
		.start_ns = bpf_ktime_get_ns(),
		.ptr = ptr,
		.count = count,
		.fd = fd,
		.kind = kind,
		.direction = direction,
	};
	u64 id = bpf_get_current_pid_tgid();
	struct call_args *slot = bpf_map_lookup_elem(&inflight, &id);
	if (slot)
		*slot = args;
	else if (bpf_map_update_elem(&inflight, &id, &args, BPF_NOEXIST))
		count_drop(BEYLA_DROP_ARGS_MAP_FULL);
}

/* The struct sock behind fd if it is an IPv4/IPv6 stream socket, else 0. */
static __always_inline struct sock *tcp_sock_of(u32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = 0;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	if (!file)
		return 0;
	umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	if (!sock || BPF_CORE_READ(sock, type) != SOCK_STREAM)
		return 0;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	return sk;
}

static __always_inline void map_v4(u8 *dst, u32 addr)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &addr, 4);
}

static __always_inline void read_tuple(struct sock *sk, struct beyla_conn_tuple *t)
{
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	t->family = family;
	t->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->remote_port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		map_v4(t->local_addr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
		map_v4(t->remote_addr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
	} else {
		BPF_CORE_READ_INTO(&t->local_addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&t->remote_addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

static __always_inline u64 next_conn_id(void)
{
	u64 time = bpf_ktime_get_ns() & ((1ULL << CONN_ID_TIME_BITS) - 1);
	u64 cpu = bpf_get_smp_processor_id() & ((1 << CONN_ID_CPU_BITS) - 1);
	return (time << CONN_ID_CPU_BITS) | cpu;
}

/* Records a new connection on fd, replacing whatever an earlier one left there. */
static __always_inline struct conn_info *track_conn(struct conn_key *key, struct sock *sk, u8 origin)
{
	struct conn_info info = { .id = next_conn_id(), .origin = origin };
	read_tuple(sk, &info.tuple);
	if (bpf_map_update_elem(&connections, key, &info, BPF_ANY)) {
		count_drop(BEYLA_DROP_CONN_MAP_FULL);
		return 0;
	}
	bpf_map_delete_elem(&not_sockets, key);
	return bpf_map_lookup_elem(&connections, key);
}

/* The connection behind fd: known already, or resolved now (it predates the
 * agent, or was accepted before the process was traced). */
static __always_inline struct conn_info *conn_of(u32 tgid, u32 fd)
{
	struct conn_key key = { .tgid = tgid, .fd = fd };
	struct conn_info *info = bpf_map_lookup_elem(&connections, &key);
	if (info)
		return info;
	if (bpf_map_lookup_elem(&not_sockets, &key))
		return 0;
	struct sock *sk = tcp_sock_of(fd);
	if (!sk) {
		u8 one = 1;
		bpf_map_update_elem(&not_sockets, &key, &one, BPF_ANY);
		return 0;
	}
	return track_conn(&key, sk, BEYLA_ORIGIN_UNKNOWN);
}

/* TLS record header: content type, protocol version (major 3), length. */
#define TLS_RECORD_HEADER 5
/* Payloads looked at for a TLS record: protocols that switch to TLS after a
 * plaintext exchange (PostgreSQL's SSLRequest and its one-byte answer, MySQL's
 * greeting and SSL request) send the ClientHello third or fourth. */
#define TLS_SNIFF_PAYLOADS 4
#define TLS_HANDSHAKE 22
#define TLS_APPLICATION_DATA 23

/* Whether the call's bytes begin with a TLS handshake or application-data
 * record, which no HTTP/1 or HTTP/2 stream can begin with. */
static __always_inline bool starts_tls_record(struct call_args *args, long ret)
{
	if (ret < TLS_RECORD_HEADER)
		return false;
	void *src = (void *)args->ptr;
	struct iovec v = {};
	if (args->kind == CALL_MSG) {
		struct user_msghdr msg = {};
		if (bpf_probe_read_user(&msg, sizeof(msg), src))
			return false;
		src = msg.msg_iov;
	}
	if (args->kind != CALL_BUF) {
		if (bpf_probe_read_user(&v, sizeof(v), src) || v.iov_len < TLS_RECORD_HEADER)
			return false;
		src = v.iov_base;
	}
	u8 head[3] = {};
	if (bpf_probe_read_user(head, sizeof(head), src))
		return false;
	return (head[0] == TLS_HANDSHAKE || head[0] == TLS_APPLICATION_DATA) && head[1] == 3 && head[2] <= 4;
}

/* A socket call returned `ret` bytes. On a TLS connection they are ciphertext
 * and give no event: the TLS probe reports the plaintext. A call inside
 * SSL_read/SSL_write names the connection for it; with memory BIOs, the
 * thread's last ciphertext read does (tls_reads). */
static __always_inline void socket_data(struct call_args *args, long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	struct conn_info *conn = conn_of(id >> 32, args->fd);
	if (!conn)
		return;
	struct tls_call *tls = bpf_map_lookup_elem(&tls_calls, &id);
	if (tls) {
		tls->args.fd = args->fd;
		tls->fd_known = 1;
		conn->tls = 1;
	} else if (conn->sniffed < TLS_SNIFF_PAYLOADS) {
		conn->sniffed++;
		if (starts_tls_record(args, ret))
			conn->tls = 1;
	}
	if (!conn->tls) {
		emit_data(conn, args, ret, 0);
		return;
	}
	/* Only a read outside SSL_read can feed a memory BIO. */
	if (!tls && args->direction == BEYLA_DIR_INGRESS)
		bpf_map_update_elem(&tls_reads, &id, &args->fd, BPF_ANY);
}

static __always_inline void on_exit(struct syscall_exit_ctx *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	struct call_args *args = bpf_map_lookup_elem(&inflight, &id);
	if (!args || !args->kind)
		return;
	long ret = ctx->ret;
	struct conn_key key = { .tgid = id >> 32 };
	if (args->kind == CALL_ACCEPT) {
		key.fd = ret;
		struct sock *sk = ret >= 0 ? tcp_sock_of(ret) : 0;
		if (sk)
			track_conn(&key, sk, BEYLA_ORIGIN_ACCEPT);
	} else if (args->kind == CALL_CONNECT) {
		key.fd = args->fd;
		struct sock *sk = (ret == 0 || ret == -EINPROGRESS) ? tcp_sock_of(args->fd) : 0;
		if (sk)
			track_conn(&key, sk, BEYLA_ORIGIN_CONNECT);
	} else if (ret > 0) {
		socket_data(args, ret);
	}
	args->kind = CALL_NONE;
}

/* Enter handlers: argument positions follow each syscall's signature. */
#define ENTER_BUF(name, dir)                                                              \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                       \
	int enter_##name(struct syscall_enter_ctx *ctx)                                   \
	{                                                                                 \
		remember_call(ctx->args[0], ctx->args[1], 0, CALL_BUF, dir);              \
		return 0;                                                                 \
	}
#define ENTER_IOV(name, dir)                                                              \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                       \
	int enter_##name(struct syscall_enter_ctx *ctx)                                   \
	{                                                                                 \
		remember_call(ctx->args[0], ctx->args[1], ctx->args[2], CALL_IOV, dir);   \
		return 0;                                                                 \
	}
#define ENTER_MSG(name, dir)                                                              \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                       \
	int enter_##name(struct syscall_enter_ctx *ctx)                                   \
	{                                                                                 \
		remember_call(ctx->args[0], ctx->args[1], 0, CALL_MSG, dir);              \
		return 0;                                                                 \
	}
#define EXIT(name)                                                                        \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                        \
	int exit_##name(struct syscall_exit_ctx *ctx)                                     \
	{                                                                                 \
		on_exit(ctx);                                                             \
		return 0;                                                                 \
	}

ENTER_BUF(read, BEYLA_DIR_INGRESS)
ENTER_BUF(recvfrom, BEYLA_DIR_INGRESS)
ENTER_IOV(readv, BEYLA_DIR_INGRESS)
ENTER_MSG(recvmsg, BEYLA_DIR_INGRESS)
ENTER_BUF(write, BEYLA_DIR_EGRESS)
ENTER_BUF(sendto, BEYLA_DIR_EGRESS)
ENTER_IOV(writev, BEYLA_DIR_EGRESS)
ENTER_MSG(sendmsg, BEYLA_DIR_EGRESS)
EXIT(read)
EXIT(recvfrom)
EXIT(readv)
EXIT(recvmsg)
EXIT(write)
EXIT(sendto)
EXIT(writev)
EXIT(sendmsg)

SEC("tracepoint/syscalls/sys_enter_accept")
int enter_accept(struct syscall_enter_ctx *ctx)
{
	remember_call(ctx->args[0], 0, 0, CALL_ACCEPT, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_accept4")
int enter_accept4(struct syscall_enter_ctx *ctx)
{
	remember_call(ctx->args[0], 0, 0, CALL_ACCEPT, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct syscall_enter_ctx *ctx)
{
	remember_call(ctx->args[0], 0, 0, CALL_CONNECT, 0);
	return 0;
}

EXIT(accept)
EXIT(accept4)
EXIT(connect)

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct syscall_enter_ctx *ctx)
{
	if (!is_traced())
		return 0;
	u64 id = bpf_get_current_pid_tgid();
	struct conn_key key = { .tgid = id >> 32, .fd = ctx->args[0] };
	bpf_map_delete_elem(&not_sockets, &key);
	struct conn_info *conn = bpf_map_lookup_elem(&connections, &key);
	if (!conn)
		return 0;
	struct beyla_close_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (ev) {
		ev->hdr.kind = BEYLA_EVENT_CLOSE;
		ev->hdr.pid = key.tgid;
		ev->hdr.tid = (u32)id;
		ev->conn_id = conn->id;
		ev->time_ns = bpf_ktime_get_ns();
		ev->fd = key.fd;
		bpf_ringbuf_submit(ev, wakeup_flags());
	} else {
		count_drop(BEYLA_DROP_RINGBUF_FULL);
	}
	bpf_map_delete_elem(&connections, &key);
	return 0;
}

/* A thread's call slot goes with the thread. Not filtered by traced_pids: a
 * process may have stopped being traced since its threads' calls (threads
 * exit far less often than they make calls). */
SEC("tracepoint/sched/sched_process_exit")
int on_thread_exit(void *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	bpf_map_delete_elem(&inflight, &id);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
