/* What every capture probe shares: the connection table, the event builder and
 * the settings. sockets.bpf.c owns the definitions (BEYLA_MAPS_OWNER); the
 * others (tls.bpf.c) see them extern, and the BPF linker joins them. */
#ifndef BEYLA_CAPTURE_H
#define BEYLA_CAPTURE_H

#include "maps.h"
#include <bpf/bpf_core_read.h>

#ifdef BEYLA_MAPS_OWNER
#define BEYLA_SETTING(type, name, value) const volatile type name = value
#else
#define BEYLA_SETTING(type, name, value) extern const volatile type name
#endif

/* Set by the agent before load: payload bytes copied per call (<= BEYLA_MAX_CAPTURE). */
BEYLA_SETTING(u32, capture_size, BEYLA_DEFAULT_CAPTURE);
/* Set by the agent before load: enum beyla_wakeup, or wake the reader once per
 * this many events per CPU. */
BEYLA_SETTING(u32, wakeup_len, BEYLA_WAKEUP_ADAPTIVE);
/* Set by the agent before load: call_slots' size minus one (a power of two minus one). */
BEYLA_SETTING(u32, call_slot_mask, 0);

/* Adaptive wake-ups: unread bytes in the ring past which the probes wake the
 * reader rather than wait for its next poll. */
#define WAKEUP_BACKLOG_BYTES (BEYLA_RINGBUF_BYTES / 8)

/* Connections known per (tgid, fd); LRU so that fds lost without close() age out. */
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
};

/* One call between its entry and its return. */
struct call_args {
	u64 start_ns; /* writes only: a read's bytes are there at its return */
	u64 ptr; /* buffer, iovec array or msghdr */
	u64 count; /* iovec count */
	u32 fd;
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

struct conn_key {
	u32 tgid;
	u32 fd;
};

struct conn_info {
	u64 id;
	struct beyla_conn_tuple tuple;
	u8 origin;
	/* Its socket bytes are ciphertext: seen under SSL_read/SSL_write, or its
	 * first bytes were a TLS record. */
	u8 tls;
	/* Its first payload has been looked at for a TLS record. */
	u8 sniffed;
	/* A data event was sent for it: only then is its close worth an event. */
	u8 active;
	u8 pad[4];
};

/* A thread inside SSL_read/SSL_write (args.kind set): the socket call it
 * makes names the fd. Like a call slot, written in place and emptied at return. */
struct tls_call {
	struct call_args args; /* ptr = the plaintext buffer, fd learned on the way */
	u64 ssl;
	u64 ex_len; /* SSL_*_ex: where the byte count is written; 0 otherwise */
	u8 fd_known;
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
	__type(value, u32); /* fd */
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

/* Copies up to `room` bytes from an iovec array; returns the bytes copied. */
static __always_inline u32 copy_iovecs(u8 *dst, struct iovec *iov, u64 iovcnt, u32 room)
{
	u32 off = 0;
	/* A bounded loop (kernel 5.3+), not unrolled: the bound is large. */
	for (int i = 0; i < BEYLA_MAX_IOV; i++) {
		if (i >= iovcnt || off >= room)
			break;
		struct iovec v = {};
		if (bpf_probe_read_user(&v, sizeof(v), &iov[i]))
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

static __always_inline void fill_head(struct beyla_data_head *head, struct conn_info *conn,
				      struct call_args *args, long ret, u8 tls)
{
	u64 id = bpf_get_current_pid_tgid();
	u64 now = bpf_ktime_get_ns();
	head->hdr.kind = BEYLA_EVENT_DATA;
	head->hdr.pid = id >> 32;
	head->hdr.tid = (u32)id;
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

/* Bytes of a call that moved `ret` to copy: the capture size at most. */
static __always_inline u32 capture_room(long ret)
{
	u32 room = capture_size;
	if (room > BEYLA_MAX_CAPTURE - 1)
		room = BEYLA_MAX_CAPTURE - 1;
	if ((u64)ret < room)
		room = ret;
	return room;
}

/* A plain buffer's event, read from the caller's memory straight into the
 * ring: a small record when the call moved little, else one of the capture size. */
static __always_inline void emit_buf(struct conn_info *conn, struct call_args *args, long ret, u8 tls)
{
	/* 64-bit throughout: a 32-bit value's copies lose the verifier's bounds. */
	u64 room = capture_room(ret);
	u64 size = SMALL_CAPTURE;
	if (room > SMALL_CAPTURE) {
		size = capture_size;
		if (size > BEYLA_MAX_CAPTURE - 1)
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
	fill_head(&ev->head, conn, args, ret, tls);
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
	if (args->kind == CALL_BUF) {
		emit_buf(conn, args, ret, tls);
		return;
	}
	u32 zero = 0;
	struct scratch_event *buf = bpf_map_lookup_elem(&scratch, &zero);
	if (!buf)
		return;
	struct beyla_data_event *ev = &buf->ev;
	fill_head(&ev->head, conn, args, ret, tls);
	u32 room = capture_room(ret);
	u32 captured = 0;
	if (args->kind == CALL_IOV) {
		captured = copy_iovecs(ev->data, (struct iovec *)args->ptr, args->count, room);
	} else if (args->kind == CALL_MSG) {
		struct user_msghdr msg = {};
		if (!bpf_probe_read_user(&msg, sizeof(msg), (void *)args->ptr))
			captured = copy_iovecs(ev->data, msg.msg_iov, msg.msg_iovlen, room);
	}
	captured &= BEYLA_MAX_CAPTURE - 1;
	ev->head.captured = captured;

	u64 size = sizeof(ev->head) + captured;
	if (size > sizeof(*ev))
		size = sizeof(*ev);
	if (bpf_ringbuf_output(&events, ev, size, wakeup_flags()))
		count_drop(BEYLA_DROP_RINGBUF_FULL);
}

#endif /* BEYLA_CAPTURE_H */
