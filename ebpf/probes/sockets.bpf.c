// SPDX-License-Identifier: GPL-2.0
/* TCP traffic of traced processes, seen at the socket syscalls. The same calls
 * can be seen three ways; the agent attaches one, the cheapest the kernel
 * offers (docs/benchmarks.md has the figures):
 *   syscalls  a tracepoint per syscall, at entry and exit (syscalls/sys_*_NAME):
 *             the kernel builds a trace record for each call before the program runs
 *   raw_tp    one raw tracepoint for every syscall (sys_enter, sys_exit),
 *             filtered by syscall number; arguments read from pt_regs
 *   tp_btf    the same with BTF-typed arguments: pt_regs read directly
 * Enter handlers remember a traced thread's call; exit handlers turn a
 * successful call into one ring-buffer event with a bounded prefix of the
 * bytes. For an untraced process a call costs one array look-up. */
#define BEYLA_MAPS_OWNER
#include "capture.h"

/* fds seen not to be TCP sockets, so files and pipes are resolved once. */
#define MAX_NOT_SOCKETS 16384

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

/* Remembers a traced thread's call until its exit. */
static __always_inline void remember_call(u32 fd, u64 ptr, u64 count, u8 kind, u8 direction)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct call_slot *slot = call_slot_of(tid);
	if (!slot)
		return;
	if (slot->tid != tid && slot->args.kind)
		count_drop(BEYLA_DROP_ARGS_MAP_FULL); /* the other thread's call is lost */
	slot->tid = tid;
	/* A read's time is taken at its return, when its bytes are there. */
	slot->args.start_ns = direction == BEYLA_DIR_EGRESS ? bpf_ktime_get_ns() : 0;
	slot->args.ptr = ptr;
	slot->args.count = count;
	slot->args.fd = fd;
	slot->args.kind = kind;
	slot->args.direction = direction;
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
static __always_inline void socket_data(struct call_args *args, long ret, u8 flags)
{
	u64 id = bpf_get_current_pid_tgid();
	struct conn_info *conn = conn_of(id >> 32, args->fd);
	if (!conn)
		return;
	/* Only a process with OpenSSL probes can be inside SSL_read/SSL_write. */
	struct tls_call *tls = (flags & BEYLA_PID_TLS) ? bpf_map_lookup_elem(&tls_calls, &id) : 0;
	if (tls && !tls->args.kind)
		tls = 0;
	if (tls) {
		tls->args.fd = args->fd;
		tls->fd_known = 1;
		conn->tls = 1;
	} else if (!conn->sniffed) {
		conn->sniffed = 1;
		if (starts_tls_record(args, ret))
			conn->tls = 1;
	}
	if (!conn->tls) {
		emit_data(conn, args, ret, 0);
		return;
	}
	/* Only a read outside SSL_read can feed a memory BIO. */
	if ((flags & BEYLA_PID_TLS) && !tls && args->direction == BEYLA_DIR_INGRESS)
		bpf_map_update_elem(&tls_reads, &id, &args->fd, BPF_ANY);
}

/* A traced thread's call returned `ret`. */
static __always_inline void call_returned(struct call_args *args, long ret, u8 flags)
{
	struct conn_key key = { .tgid = current_tgid() };
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
		socket_data(args, ret, flags);
	}
	args->kind = CALL_NONE;
}

/* A syscall returned: if the calling thread is traced and has a call in flight. */
static __always_inline void syscall_returned(long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u8 flags = pid_state(id >> 32);
	if (!capturing(flags))
		return;
	struct call_args *args = call_in_flight(id);
	if (args)
		call_returned(args, ret, flags);
}

/* A traced process closes fd: the connection's end, if it carried traffic. */
static __always_inline void close_fd(u32 fd)
{
	u64 id = bpf_get_current_pid_tgid();
	struct conn_key key = { .tgid = id >> 32, .fd = fd };
	bpf_map_delete_elem(&not_sockets, &key);
	struct conn_info *conn = bpf_map_lookup_elem(&connections, &key);
	if (!conn)
		return;
	if (conn->active) {
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
	}
	bpf_map_delete_elem(&connections, &key);
}

/* A traced thread entered a captured syscall with these first three arguments. */
static __always_inline void syscall_entered(u8 kind, u8 direction, u64 arg0, u64 arg1, u64 arg2)
{
	switch (kind) {
	case CALL_CLOSE:
		close_fd(arg0);
		break;
	case CALL_BUF:
	case CALL_MSG:
		remember_call(arg0, arg1, 0, kind, direction);
		break;
	case CALL_IOV:
		remember_call(arg0, arg1, arg2, kind, direction);
		break;
	case CALL_ACCEPT:
	case CALL_CONNECT:
		remember_call(arg0, 0, 0, kind, 0);
		break;
	}
}

static __always_inline bool current_traced(u8 *flags)
{
	*flags = pid_state(current_tgid());
	return capturing(*flags);
}

/* ---------------------------------------------------------------- syscalls */

#define SYSCALL_PROBES(name, kind, direction)                                                    \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                              \
	int enter_##name(struct syscall_enter_ctx *ctx)                                          \
	{                                                                                        \
		u8 flags;                                                                        \
		if (current_traced(&flags))                                                      \
			syscall_entered(kind, direction, ctx->args[0], ctx->args[1], ctx->args[2]); \
		return 0;                                                                        \
	}                                                                                        \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                               \
	int exit_##name(struct syscall_exit_ctx *ctx)                                            \
	{                                                                                        \
		syscall_returned(ctx->ret);                                                      \
		return 0;                                                                        \
	}

SYSCALL_PROBES(read, CALL_BUF, BEYLA_DIR_INGRESS)
SYSCALL_PROBES(recvfrom, CALL_BUF, BEYLA_DIR_INGRESS)
SYSCALL_PROBES(readv, CALL_IOV, BEYLA_DIR_INGRESS)
SYSCALL_PROBES(recvmsg, CALL_MSG, BEYLA_DIR_INGRESS)
SYSCALL_PROBES(write, CALL_BUF, BEYLA_DIR_EGRESS)
SYSCALL_PROBES(sendto, CALL_BUF, BEYLA_DIR_EGRESS)
SYSCALL_PROBES(writev, CALL_IOV, BEYLA_DIR_EGRESS)
SYSCALL_PROBES(sendmsg, CALL_MSG, BEYLA_DIR_EGRESS)
SYSCALL_PROBES(accept, CALL_ACCEPT, 0)
SYSCALL_PROBES(accept4, CALL_ACCEPT, 0)
SYSCALL_PROBES(connect, CALL_CONNECT, 0)

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct syscall_enter_ctx *ctx)
{
	u8 flags;
	if (current_traced(&flags))
		close_fd(ctx->args[0]);
	return 0;
}

/* ---------------------------------------------------------- raw_tp, tp_btf */

/* Syscall numbers of the captured calls (native ABI only: see compat_task). */
#if defined(__TARGET_ARCH_x86)
#define NR_READ 0
#define NR_WRITE 1
#define NR_CLOSE 3
#define NR_READV 19
#define NR_WRITEV 20
#define NR_CONNECT 42
#define NR_ACCEPT 43
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47
#define NR_ACCEPT4 288
#elif defined(__TARGET_ARCH_arm64)
#define NR_CLOSE 57
#define NR_READ 63
#define NR_WRITE 64
#define NR_READV 65
#define NR_WRITEV 66
#define NR_ACCEPT 202
#define NR_CONNECT 203
#define NR_SENDTO 206
#define NR_RECVFROM 207
#define NR_SENDMSG 211
#define NR_RECVMSG 212
#define NR_ACCEPT4 242
#endif

/* The call kind of a syscall number (CALL_NONE: not captured) and its direction. */
static __always_inline u8 classify(long nr, u8 *direction)
{
	*direction = BEYLA_DIR_INGRESS;
	switch (nr) {
	case NR_READ:
	case NR_RECVFROM:
		return CALL_BUF;
	case NR_READV:
		return CALL_IOV;
	case NR_RECVMSG:
		return CALL_MSG;
	case NR_WRITE:
	case NR_SENDTO:
		*direction = BEYLA_DIR_EGRESS;
		return CALL_BUF;
	case NR_WRITEV:
		*direction = BEYLA_DIR_EGRESS;
		return CALL_IOV;
	case NR_SENDMSG:
		*direction = BEYLA_DIR_EGRESS;
		return CALL_MSG;
	case NR_ACCEPT:
	case NR_ACCEPT4:
		return CALL_ACCEPT;
	case NR_CONNECT:
		return CALL_CONNECT;
	case NR_CLOSE:
		return CALL_CLOSE;
	}
	return CALL_NONE;
}

/* A 32-bit process's syscall numbers and argument registers are another ABI's
 * (the per-syscall tracepoints ignore them too). */
#if defined(__TARGET_ARCH_x86)
#define TS_COMPAT 0x0002
static __always_inline bool compat_task(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(task, thread_info.status) & TS_COMPAT;
}
static __always_inline bool compat_task_btf(void)
{
	return bpf_get_current_task_btf()->thread_info.status & TS_COMPAT;
}
#elif defined(__TARGET_ARCH_arm64)
#define TIF_32BIT 22
static __always_inline bool compat_task(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(task, thread_info.flags) & (1UL << TIF_32BIT);
}
static __always_inline bool compat_task_btf(void)
{
	return bpf_get_current_task_btf()->thread_info.flags & (1UL << TIF_32BIT);
}
#endif

/* The first three syscall arguments, in order, as a copy of the registers. */
struct syscall_args3 {
	u64 arg[3];
};

#if defined(__TARGET_ARCH_x86)
/* dx, si, di lie in that order: one read for all three. */
static __always_inline void read_args3(struct pt_regs___kernel *regs, struct syscall_args3 *out)
{
	u64 regs3[3] = {};
	bpf_probe_read_kernel(regs3, sizeof(regs3), __builtin_preserve_access_index(&regs->dx));
	out->arg[0] = regs3[2];
	out->arg[1] = regs3[1];
	out->arg[2] = regs3[0];
}
#define BTF_ARG0(regs) ((regs)->di)
#define BTF_ARG1(regs) ((regs)->si)
#define BTF_ARG2(regs) ((regs)->dx)
#define BTF_NR(regs) ((regs)->orig_ax)
#elif defined(__TARGET_ARCH_arm64)
static __always_inline void read_args3(struct pt_regs___kernel *regs, struct syscall_args3 *out)
{
	bpf_probe_read_kernel(out, sizeof(*out), __builtin_preserve_access_index(&regs->regs[0]));
}
#define BTF_ARG0(regs) ((regs)->regs[0])
#define BTF_ARG1(regs) ((regs)->regs[1])
#define BTF_ARG2(regs) ((regs)->regs[2])
#define BTF_NR(regs) ((regs)->syscallno)
#endif

/* raw_tracepoint/sys_enter: args[0] is the pt_regs, args[1] the syscall number. */
SEC("raw_tracepoint/sys_enter")
int raw_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	u8 direction, flags;
	u8 kind = classify(ctx->args[1], &direction);
	if (kind == CALL_NONE || !current_traced(&flags) || compat_task())
		return 0;
	struct syscall_args3 a;
	read_args3((struct pt_regs___kernel *)ctx->args[0], &a);
	syscall_entered(kind, direction, a.arg[0], a.arg[1], a.arg[2]);
	return 0;
}

/* raw_tracepoint/sys_exit: args[1] is the return value. */
SEC("raw_tracepoint/sys_exit")
int raw_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	syscall_returned(ctx->args[1]);
	return 0;
}

/* tp_btf: the same arguments, the pt_regs pointer typed, so read without a
 * helper; the task too (bpf_get_current_task_btf, kernel 5.11). */
SEC("tp_btf/sys_enter")
int btf_sys_enter(u64 *ctx)
{
	u8 direction, flags;
	u8 kind = classify(ctx[1], &direction);
	if (kind == CALL_NONE || !current_traced(&flags) || compat_task_btf())
		return 0;
	struct pt_regs___kernel *regs = (struct pt_regs___kernel *)ctx[0];
	syscall_entered(kind, direction, BTF_ARG0(regs), BTF_ARG1(regs), BTF_ARG2(regs));
	return 0;
}

SEC("tp_btf/sys_exit")
int btf_sys_exit(u64 *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u8 flags = pid_state(id >> 32);
	if (!capturing(flags))
		return 0;
	/* The number is at hand here: a traced thread's other syscalls skip the slot look-up. */
	u8 direction;
	struct pt_regs___kernel *regs = (struct pt_regs___kernel *)ctx[0];
	u8 kind = classify(BTF_NR(regs), &direction);
	if (kind == CALL_NONE || kind == CALL_CLOSE)
		return 0;
	struct call_args *args = call_in_flight(id);
	if (args)
		call_returned(args, ctx[1], flags);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
