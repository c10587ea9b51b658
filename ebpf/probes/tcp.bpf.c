// SPDX-License-Identifier: GPL-2.0
/* TCP traffic of traced processes, seen at the kernel's TCP functions rather
 * than at the syscalls, through BPF trampolines (fentry/fexit: a direct call,
 * typed arguments): they run only for TCP sockets, and nothing runs for any
 * other syscall of any process. Not through kprobes: a kretprobe takes an
 * instance from a bounded pool at entry and misses the return when the pool
 * is empty (threads asleep inside the function), which would lose events
 * silently; and every kernel with kprobes has raw tracepoints.
 * A connection is its struct sock here (sk_key), not a (tgid, fd). Entry
 * remembers the caller's buffers from the msghdr's iterator; the return turns
 * the bytes moved into one event, as the syscall paths do (capture.h). */
#include "capture.h"

/* Where a tcp_sendmsg/tcp_recvmsg call's bytes are: one user buffer, or the
 * kernel's copy of the caller's iovecs. False for anything else (pages of a
 * sendfile or splice: not the caller's memory). */
static __always_inline bool iter_buffers(struct msghdr *msg, struct call_args *args)
{
	struct iov_iter *it = __builtin_preserve_access_index(&msg->msg_iter);
	u32 type;
	if (bpf_core_field_exists(it->iter_type))
		type = BPF_CORE_READ(it, iter_type);
	else
		type = BPF_CORE_READ(it, type) & ~1U; /* bit 0: the direction */
	if (bpf_core_enum_value_exists(enum iter_type, ITER_UBUF) &&
	    type == bpf_core_enum_value(enum iter_type, ITER_UBUF)) {
		args->kind = CALL_BUF;
		args->ptr = (u64)BPF_CORE_READ(it, ubuf) + BPF_CORE_READ(it, iov_offset);
		return true;
	}
	if (type != bpf_core_enum_value(enum iter_type, ITER_IOVEC))
		return false;
	args->kind = CALL_KIOV;
	if (bpf_core_field_exists(it->__iov))
		args->ptr = (u64)BPF_CORE_READ(it, __iov);
	else
		args->ptr = (u64)BPF_CORE_READ(it, iov);
	args->count = BPF_CORE_READ(it, nr_segs);
	return true;
}

/* A traced thread enters tcp_sendmsg or tcp_recvmsg. */
static __always_inline void tcp_call_entered(struct sock *sk, struct msghdr *msg, u8 direction)
{
	if (!capturing(pid_state(current_tgid())))
		return;
	u32 tid = bpf_get_current_pid_tgid();
	struct call_slot *slot = call_slot_of(tid);
	if (!slot)
		return;
	if (slot->tid != tid && slot->args.kind)
		count_drop(BEYLA_DROP_ARGS_MAP_FULL); /* the other thread's call is lost */
	slot->tid = tid;
	struct call_args *args = &slot->args;
	if (!iter_buffers(msg, args)) {
		args->kind = CALL_NONE;
		return;
	}
	args->sk = (u64)sk;
	args->fd = 0;
	args->direction = direction;
	/* A read's time is taken at its return, when its bytes are there. */
	args->start_ns = direction == BEYLA_DIR_EGRESS ? bpf_ktime_get_ns() : 0;
}

/* The call returned `ret`. `sk`: the socket the returning function was given,
 * to match the call remembered at entry; 0 when it is the same function. */
static __always_inline void tcp_call_returned(long ret, u64 sk)
{
	u64 id = bpf_get_current_pid_tgid();
	u8 flags = pid_state(id >> 32);
	if (!capturing(flags))
		return;
	struct call_args *args = call_in_flight(id);
	if (!args || (args->kind != CALL_BUF && args->kind != CALL_KIOV))
		return;
	if (sk && args->sk != sk)
		return;
	if (ret > 0) {
		struct conn_key key = sk_key(args->sk);
		struct conn_info *conn = bpf_map_lookup_elem(&connections, &key);
		/* Not seen yet: it predates the agent, or the process's tracing. */
		if (!conn)
			conn = new_conn(&key, (struct sock *)args->sk, BEYLA_ORIGIN_UNKNOWN);
		if (conn)
			socket_data(conn, key, args, ret, flags);
	}
	args->kind = CALL_NONE;
}

/* A traced process's connection starts: accepted (newsock) or connecting (sk). */
static __always_inline void tcp_conn_started(struct sock *sk, u8 origin)
{
	if (!sk || !capturing(pid_state(current_tgid())))
		return;
	struct conn_key key = sk_key((u64)sk);
	new_conn(&key, sk, origin);
}

/* A socket closes, whoever closes it: only a connection of ours is in the table. */
static __always_inline void tcp_closing(struct sock *sk)
{
	struct conn_key key = sk_key((u64)sk);
	end_conn(&key, 0);
}

/* int tcp_sendmsg(struct sock *sk, struct msghdr *msg, size_t size) */
SEC("fentry/tcp_sendmsg")
int fe_tcp_send(u64 *ctx)
{
	tcp_call_entered((struct sock *)ctx[0], (struct msghdr *)ctx[1], BEYLA_DIR_EGRESS);
	return 0;
}

SEC("fexit/tcp_sendmsg")
int fx_tcp_send(u64 *ctx)
{
	tcp_call_returned((int)ctx[3], 0);
	return 0;
}

/* tcp_recvmsg(struct sock *sk, struct msghdr *msg, ...): its other arguments
 * changed in 5.19, and an fexit program finds the return value after them, so
 * the return is taken from its callers, whose arguments did not change:
 * int inet_recvmsg(struct socket *sock, struct msghdr *msg, size_t size, int flags)
 * and inet6_recvmsg, the same for IPv6 sockets. */
SEC("fentry/tcp_recvmsg")
int fe_tcp_recv(u64 *ctx)
{
	tcp_call_entered((struct sock *)ctx[0], (struct msghdr *)ctx[1], BEYLA_DIR_INGRESS);
	return 0;
}

static __always_inline void inet_recv_returned(u64 *ctx)
{
	struct socket *sock = (struct socket *)ctx[0];
	tcp_call_returned((int)ctx[4], (u64)BPF_CORE_READ(sock, sk));
}

SEC("fexit/inet_recvmsg")
int fx_inet_recv(u64 *ctx)
{
	inet_recv_returned(ctx);
	return 0;
}

SEC("fexit/inet6_recvmsg")
int fx_inet6_recv(u64 *ctx)
{
	inet_recv_returned(ctx);
	return 0;
}

/* inet_accept(struct socket *sock, struct socket *newsock, ...): newsock->sk
 * is set once it succeeded (its other arguments changed in 6.10). */
SEC("fexit/inet_accept")
int fx_inet_accept(u64 *ctx)
{
	struct socket *newsock = (struct socket *)ctx[1];
	tcp_conn_started(BPF_CORE_READ(newsock, sk), BEYLA_ORIGIN_ACCEPT);
	return 0;
}

/* int tcp_connect(struct sock *sk): the local address and port are set. */
SEC("fentry/tcp_connect")
int fe_tcp_connect(u64 *ctx)
{
	tcp_conn_started((struct sock *)ctx[0], BEYLA_ORIGIN_CONNECT);
	return 0;
}

/* void tcp_close(struct sock *sk, long timeout) */
SEC("fentry/tcp_close")
int fe_tcp_close(u64 *ctx)
{
	tcp_closing((struct sock *)ctx[0]);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
