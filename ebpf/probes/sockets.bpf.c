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

/* Records a new connection on fd, replacing whatever an earlier one left there. */
static __always_inline struct conn_info *track_conn(struct conn_key *key, struct sock *sk, u8 origin)
{
	bpf_map_delete_elem(&not_sockets, key);
	return new_conn(key, sk, origin);
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
		key.fd = args->fd;
		struct conn_info *conn = conn_of(key.tgid, args->fd);
		if (conn)
			socket_data(conn, key, args, ret, flags);
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
	struct conn_key key = fd_key(current_tgid(), fd);
	bpf_map_delete_elem(&not_sockets, &key);
	end_conn(&key, fd);
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
