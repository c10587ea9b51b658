/* What every capture probe shares: the connection table, the event builder and
 * the settings. sockets.bpf.c owns the definitions (BEYLA_MAPS_OWNER); the
 * others (tcp.bpf.c, tls.bpf.c, process.bpf.c) see them extern, and the BPF
 * linker joins them. */
#ifndef BEYLA_CAPTURE_H
#define BEYLA_CAPTURE_H

#include "maps.h"
#include <bpf/bpf_core_read.h>

#ifdef BEYLA_MAPS_OWNER
#define BEYLA_SETTING(type, name, value) const volatile type name = value
#else
#define BEYLA_SETTING(type, name, value) extern const volatile type name
#endif

/* Set by the agent before load: payload bytes copied of a call that moved
 * BEYLA_MAX_CAPTURE bytes or more (< BEYLA_MAX_CAPTURE); smaller calls are copied whole. */
BEYLA_SETTING(u32, capture_size, BEYLA_DEFAULT_CAPTURE);
/* Set by the agent before load: enum beyla_wakeup, or wake the reader once per
 * this many events per CPU. */
BEYLA_SETTING(u32, wakeup_len, BEYLA_WAKEUP_ADAPTIVE);
/* Set by the agent before load: call_slots' size minus one (a power of two minus one). */
BEYLA_SETTING(u32, call_slot_mask, 0);
/* Set by the agent before load: 1 when `traceparent` headers are injected
 * (ebpf.context_propagation), so servers' requests get their ids here. */
BEYLA_SETTING(u8, propagate_headers, 0);

/* Adaptive wake-ups: unread bytes in the ring past which the probes wake the
 * reader rather than wait for its next poll. */
#define WAKEUP_BACKLOG_BYTES (BEYLA_RINGBUF_BYTES / 8)

/* Connections known per (tgid, fd), or per socket (the TCP paths); LRU so
 * that connections lost without a close age out. */
#define MAX_CONNECTIONS 65536
/* Threads inside an SSL_read/SSL_write call at once. */
#define MAX_TLS_CALLS 16384
/* Payload bytes of the small ring-buffer record: a call that moved no more
 * takes this much ring space, not the whole capture size. */
#define SMALL_CAPTURE 256

enum call_kind {
	CALL_NONE = 0,   /* no call in flight: the slot is free */
	CALL_BUF = 1,    /* read/write/recvfrom/sendto/SSL_*: one plain buffer */
	CALL_IOV = 2,    /* readv/writev: an iovec array */
	CALL_MSG = 3,    /* recvmsg/sendmsg: a msghdr holding the iovec array */
	CALL_ACCEPT = 4,
	CALL_CONNECT = 5,
	CALL_CLOSE = 6, /* handled at entry, never in a slot */
	/* tcp_sendmsg/tcp_recvmsg: an iovec array in kernel memory (a msghdr's
	 * iov_iter), its buffers in user memory. */
	CALL_KIOV = 7,
};

/* One call between its entry and its return. */
struct call_args {
	u64 start_ns; /* writes only: a read's bytes are there at its return */
	u64 ptr; /* buffer, iovec array or msghdr */
	u64 count; /* iovec count */
	u64 sk; /* the TCP paths: the socket (struct sock *) */
	u32 fd; /* the syscall paths: the file descriptor */
	u8 kind;
	u8 direction;
	u8 pad[2];
};

/* A thread's call slot: the slot of thread id `tid & call_slot_mask`. */
struct call_slot {
	struct call_args args;
	u32 tid; /* whose call it holds */
	u32 pad;
};

/* A connection as the syscall paths know it, (tgid, fd), or as the TCP paths
 * do, its struct sock's address: its upper half is 0xffff.... on every
 * 64-bit kernel, never a tgid, so the two never collide. */
struct conn_key {
	u32 tgid;
	u32 fd;
};

static __always_inline struct conn_key fd_key(u32 tgid, u32 fd)
{
	struct conn_key key = { .tgid = tgid, .fd = fd };
	return key;
}

/* Copied, not shifted: at fentry the socket is a typed pointer, on which the
 * verifier allows no arithmetic (storing it is allowed). */
static __always_inline struct conn_key sk_key(u64 sk)
{
	struct conn_key key;
	__builtin_memcpy(&key, &sk, sizeof(key));
	return key;
}

struct conn_info {
	u64 id;
	struct beyla_conn_tuple tuple;
	u8 origin;
	/* Its socket bytes are ciphertext: seen under SSL_read/SSL_write, or its
	 * first bytes were a TLS record. */
	u8 tls;
	/* How many of its first payloads have been looked at for a TLS record. */
	u8 sniffed;
	/* A data event was sent for it: only then is its close worth an event. */
	u8 active;
	/* enum conn_phase: which way its last bytes went (context propagation only). */
	u8 phase;
	u8 pad[3];
	/* The thread that read the request it serves (context propagation only):
	 * that thread's serving entry goes when the answer does, from whichever
	 * thread writes it (Go moves a goroutine between threads). */
	u32 serving_tid;
	/* The OpenSSL SSL object bound to it (tls.bpf.c), 0 while none is: a
	 * memory BIO's first write may claim only a connection no other holds. */
	u64 ssl;
};

/* A thread inside SSL_read/SSL_write (args.kind set): the socket call it
 * makes names the connection. Like a call slot, written in place and emptied
 * at return. */
struct tls_call {
	struct call_args args; /* ptr = the plaintext buffer */
	u64 ssl;
	u64 ex_len; /* SSL_*_ex: where the byte count is written; 0 otherwise */
	struct conn_key conn; /* learned on the way, when conn_known */
	u8 conn_known;
	u8 pad[7];
};

/* Each traced thread's call between enter and exit, in the slot its thread
 * id indexes: an array, so the verifier turns the look-up into an address
 * computation (a hash look-up at entry and exit cost more than the rest of a
 * traced call's work). A thread makes one syscall at a time; its slot is
 * written in place and marked empty (kind 0) at exit and at thread exit
 * (process.bpf.c). Sized by the agent to the pids the kernel hands out, at
 * most BEYLA_MAX_CALL_SLOTS. */
BEYLA_SHARED struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* set by the agent before load */
	__type(key, u32);
	__type(value, struct call_slot);
} call_slots SEC(".maps");

static __always_inline struct call_slot *call_slot_of(u32 tid)
{
	u32 index = tid & call_slot_mask;
	return bpf_map_lookup_elem(&call_slots, &index);
}

/* The call `tid` has in flight, or 0. */
static __always_inline struct call_args *call_in_flight(u32 tid)
{
	struct call_slot *slot = call_slot_of(tid);
	return slot && slot->tid == tid && slot->args.kind ? &slot->args : 0;
}

BEYLA_SHARED struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_CONNECTIONS);
	__type(key, struct conn_key);
	__type(value, struct conn_info);
} connections SEC(".maps");

BEYLA_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TLS_CALLS);
	__type(key, u64); /* pid_tgid */
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

/* Per thread, the TLS connection it last read ciphertext from. With memory
 * BIOs (Node.js) no socket call happens inside SSL_read: the ciphertext was
 * read just before, by the same thread, and names the connection. */
BEYLA_SHARED struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_TLS_CALLS);
	__type(key, u64); /* pid_tgid */
	__type(value, struct conn_key);
} tls_reads SEC(".maps");

/* A data event of an iovec call is built here, then copied out sized: the
 * slack lets the verifier prove that a masked offset plus a masked length
 * stays inside the value while iovecs are copied one after another. */
struct scratch_event {
	struct beyla_data_event ev;
	u8 slack[BEYLA_MAX_CAPTURE];
};

BEYLA_SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct scratch_event);
} scratch SEC(".maps");

/* Events submitted on this CPU since the reader was last woken. */
BEYLA_SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} unsignalled SEC(".maps");

/* Ring-buffer flags that wake the reader as `wakeup_len` asks. */
static __always_inline u64 wakeup_flags(void)
{
	if (wakeup_len == BEYLA_WAKEUP_ADAPTIVE)
		return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > WAKEUP_BACKLOG_BYTES
			       ? BPF_RB_FORCE_WAKEUP
			       : BPF_RB_NO_WAKEUP;
	if (wakeup_len == BEYLA_WAKEUP_EVERY_RECORD)
		return 0;
	u32 zero = 0;
	u32 *pending = bpf_map_lookup_elem(&unsignalled, &zero);
	if (!pending)
		return 0;
	*pending += 1;
	if (*pending < wakeup_len)
		return BPF_RB_NO_WAKEUP;
	*pending = 0;
	return BPF_RB_FORCE_WAKEUP;
}

/* Copies up to `room` bytes from an iovec array (in user memory, or in
 * kernel memory when `kernel_array`); returns the bytes copied. */
static __always_inline u32 copy_iovecs(u8 *dst, struct iovec *iov, u64 iovcnt, u32 room, bool kernel_array)
{
	u32 off = 0;
	/* A bounded loop (kernel 5.3+), not unrolled: the bound is large. */
	for (int i = 0; i < BEYLA_MAX_IOV; i++) {
		if (i >= iovcnt || off >= room)
			break;
		struct iovec v = {};
		/* Two calls, not a chosen helper: BPF has no indirect call. */
		long err = kernel_array ? bpf_probe_read_kernel(&v, sizeof(v), &iov[i])
					: bpf_probe_read_user(&v, sizeof(v), &iov[i]);
		if (err)
			break;
		u32 n = v.iov_len < room - off ? v.iov_len : room - off;
		/* Masks keep the verifier's bounds: off and n are each below the maximum. */
		off &= BEYLA_MAX_CAPTURE - 1;
		n &= BEYLA_MAX_CAPTURE - 1;
		if (n == 0)
			continue;
		if (bpf_probe_read_user(dst + off, n, v.iov_base))
			break;
		off += n;
	}
	return off;
}

/* `task`: what the agent links requests by, the thread (or, for Go, the
 * goroutine tree: BEYLA_GO_TASK_BIT). */
static __always_inline void fill_head(struct beyla_data_head *head, struct conn_info *conn,
				      struct call_args *args, long ret, u8 tls, u32 task)
{
	u64 id = bpf_get_current_pid_tgid();
	u64 now = bpf_ktime_get_ns();
	head->hdr.kind = BEYLA_EVENT_DATA;
	head->hdr.pid = id >> 32;
	head->hdr.tid = task;
	head->conn_id = conn->id;
	head->start_ns = args->direction == BEYLA_DIR_INGRESS ? now : args->start_ns;
	head->end_ns = now;
	head->bytes = ret;
	head->fd = args->fd;
	head->direction = args->direction;
	head->origin = conn->origin;
	head->tls = tls;
	head->tuple = conn->tuple;
}

/* Bytes of a call that moved `ret` to copy. A call that moved less than the
 * largest capture is copied whole: requests pipelined in one write, frames of
 * many streams, are each a message to follow. A larger call (a body, a
 * download) gives its first capture_size bytes. */
static __always_inline u32 capture_room(long ret)
{
	u32 room = capture_size;
	if (room > BEYLA_MAX_CAPTURE - 1)
		room = BEYLA_MAX_CAPTURE - 1;
	if ((u64)ret < BEYLA_MAX_CAPTURE)
		room = ret;
	return room;
}

/* A plain buffer's event, read from the caller's memory straight into the
 * ring: a small record when the call moved little, one of the capture size
 * when that holds it, else one of the largest capture. */
static __always_inline void emit_buf(struct conn_info *conn, struct call_args *args, long ret, u8 tls, u32 task)
{
	/* 64-bit throughout: a 32-bit value's copies lose the verifier's bounds. */
	u64 room = capture_room(ret);
	u64 size = SMALL_CAPTURE;
	if (room > SMALL_CAPTURE) {
		size = capture_size;
		if (size > BEYLA_MAX_CAPTURE - 1 || room > size)
			size = BEYLA_MAX_CAPTURE - 1;
	}
	struct beyla_data_event *ev = bpf_ringbuf_reserve(&events, sizeof(struct beyla_data_head) + size, 0);
	if (!ev) {
		count_drop(BEYLA_DROP_RINGBUF_FULL);
		return;
	}
	/* Bounded again where the verifier sees it: the compiler knows room <=
	 * size already and would drop a plain clamp. */
	barrier_var(room);
	if (room > size)
		room = size;
	fill_head(&ev->head, conn, args, ret, tls, task);
	if (room && bpf_probe_read_user(ev->data, room, (void *)args->ptr))
		room = 0;
	ev->head.captured = room;
	bpf_ringbuf_submit(ev, wakeup_flags());
}

/* One data event: `ret` bytes moved by the call in `args` on `conn`, with a
 * bounded prefix copied from the caller's memory. */
static __always_inline void emit_data(struct conn_info *conn, struct call_args *args, long ret, u8 tls)
{
	conn->active = 1;
	u32 task = (u32)bpf_get_current_pid_tgid();
	if (args->kind == CALL_BUF) {
		emit_buf(conn, args, ret, tls, task);
		return;
	}
	u32 zero = 0;
	struct scratch_event *buf = bpf_map_lookup_elem(&scratch, &zero);
	if (!buf)
		return;
	struct beyla_data_event *ev = &buf->ev;
	fill_head(&ev->head, conn, args, ret, tls, task);
	u32 room = capture_room(ret);
	u32 captured = 0;
	if (args->kind == CALL_IOV || args->kind == CALL_KIOV) {
		captured = copy_iovecs(ev->data, (struct iovec *)args->ptr, args->count, room,
				       args->kind == CALL_KIOV);
	} else if (args->kind == CALL_MSG) {
		struct user_msghdr msg = {};
		if (!bpf_probe_read_user(&msg, sizeof(msg), (void *)args->ptr))
			captured = copy_iovecs(ev->data, msg.msg_iov, msg.msg_iovlen, room, false);
	}
	captured &= BEYLA_MAX_CAPTURE - 1;
	ev->head.captured = captured;

	u64 size = sizeof(ev->head) + captured;
	if (size > sizeof(*ev))
		size = sizeof(*ev);
	if (bpf_ringbuf_output(&events, ev, size, wakeup_flags()))
		count_drop(BEYLA_DROP_RINGBUF_FULL);
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

/* A connection id is the monotonic time its connection was first seen, with
 * the CPU number in the low bits: unique without a shared counter, whose
 * atomic fetch-and-add kernels before 5.12 reject (and a per-CPU counter is
 * not safe where programs can be preempted). The time wraps after 2^52 ns
 * (52 days); two ids then collide only if taken on the same CPU in the same
 * nanosecond modulo that. */
#define CONN_ID_CPU_BITS 12
#define CONN_ID_TIME_BITS (64 - CONN_ID_CPU_BITS)

static __always_inline u64 next_conn_id(void)
{
	u64 time = bpf_ktime_get_ns() & ((1ULL << CONN_ID_TIME_BITS) - 1);
	u64 cpu = bpf_get_smp_processor_id() & ((1 << CONN_ID_CPU_BITS) - 1);
	return (time << CONN_ID_CPU_BITS) | cpu;
}

/* Records a new connection under `key`, replacing whatever an earlier one left there. */
static __always_inline struct conn_info *new_conn(struct conn_key *key, struct sock *sk, u8 origin)
{
	struct conn_info info = { .id = next_conn_id(), .origin = origin };
	read_tuple(sk, &info.tuple);
	if (bpf_map_update_elem(&connections, key, &info, BPF_ANY)) {
		count_drop(BEYLA_DROP_CONN_MAP_FULL);
		return 0;
	}
	return bpf_map_lookup_elem(&connections, key);
}

/* A connection's end: an event if it carried traffic, and its entry goes. */
static __always_inline void end_conn(struct conn_key *key, u32 fd)
{
	struct conn_info *conn = bpf_map_lookup_elem(&connections, key);
	if (!conn)
		return;
	if (conn->active) {
		u64 id = bpf_get_current_pid_tgid();
		struct beyla_close_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
		if (ev) {
			ev->hdr.kind = BEYLA_EVENT_CLOSE;
			ev->hdr.pid = id >> 32;
			ev->hdr.tid = (u32)id;
			ev->conn_id = conn->id;
			ev->time_ns = bpf_ktime_get_ns();
			ev->fd = fd;
			bpf_ringbuf_submit(ev, wakeup_flags());
		} else {
			count_drop(BEYLA_DROP_RINGBUF_FULL);
		}
	}
	bpf_map_delete_elem(&connections, key);
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
	if (args->kind == CALL_KIOV) {
		if (bpf_probe_read_kernel(&v, sizeof(v), src) || v.iov_len < TLS_RECORD_HEADER)
			return false;
		src = v.iov_base;
	} else if (args->kind != CALL_BUF) {
		if (bpf_probe_read_user(&v, sizeof(v), src) || v.iov_len < TLS_RECORD_HEADER)
			return false;
		src = v.iov_base;
	}
	u8 head[3] = {};
	if (bpf_probe_read_user(head, sizeof(head), src))
		return false;
	return (head[0] == TLS_HANDSHAKE || head[0] == TLS_APPLICATION_DATA) && head[1] == 3 && head[2] <= 4;
}

#include "propagation.h"

/* A socket call on `conn` (known as `key`) moved `ret` bytes. On a TLS
 * connection they are ciphertext and give no event: the TLS probe reports
 * the plaintext. A call inside SSL_read/SSL_write names the connection for
 * it; with memory BIOs, the thread's last ciphertext read does (tls_reads). */
static __always_inline void socket_data(struct conn_info *conn, struct conn_key key,
					struct call_args *args, long ret, u8 flags)
{
	u64 id = bpf_get_current_pid_tgid();
	/* Only a process with OpenSSL probes can be inside SSL_read/SSL_write. */
	struct tls_call *tls = (flags & BEYLA_PID_TLS) ? bpf_map_lookup_elem(&tls_calls, &id) : 0;
	if (tls && !tls->args.kind)
		tls = 0;
	if (tls) {
		tls->conn = key;
		tls->conn_known = 1;
		conn->tls = 1;
	} else if (conn->sniffed < TLS_SNIFF_PAYLOADS) {
		conn->sniffed++;
		if (starts_tls_record(args, ret))
			conn->tls = 1;
	}
	if (!conn->tls) {
		if (propagate_headers)
			exchange_moved(conn, args, ret);
		emit_data(conn, args, ret, 0);
		return;
	}
	/* Only a read outside SSL_read can feed a memory BIO. */
	if ((flags & BEYLA_PID_TLS) && !tls && args->direction == BEYLA_DIR_INGRESS)
		bpf_map_update_elem(&tls_reads, &id, &key, BPF_ANY);
}

#endif /* BEYLA_CAPTURE_H */
