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

/* Set by the agent before load: payload bytes copied of a call that moved
 * BEYLA_MAX_CAPTURE bytes or more (< BEYLA_MAX_CAPTURE); smaller calls are copied whole. */
BEYLA_SETTING(u32, capture_size, BEYLA_DEFAULT_CAPTURE);
/* Set by the agent before load: enum beyla_wakeup, or wake the reader once per
 * this many events per CPU. */
BEYLA_SETTING(u32, wakeup_len, BEYLA_WAKEUP_ADAPTIVE);

/* Adaptive wake-ups: unread bytes in the ring past which the probes wake the
 * reader rather than wait for its next poll. */
#define WAKEUP_BACKLOG_BYTES (BEYLA_RINGBUF_BYTES / 8)

/* Connections known per (tgid, fd); LRU so that fds lost without close() age out. */
#define MAX_CONNECTIONS 65536
/* Threads inside an SSL_read/SSL_write call at once. */
#define MAX_TLS_CALLS 16384

enum call_kind {
	CALL_NONE = 0,   /* no call in flight: the slot is free */
	CALL_BUF = 1,    /* read/write/recvfrom/sendto/SSL_*: one plain buffer */
	CALL_IOV = 2,    /* readv/writev: an iovec array */
	CALL_MSG = 3,    /* recvmsg/sendmsg: a msghdr holding the iovec array */
	CALL_ACCEPT = 4,
	CALL_CONNECT = 5,
};

/* One call between its entry and its return. */
struct call_args {
	u64 start_ns;
	u64 ptr; /* buffer, iovec array or msghdr */
	u64 count; /* iovec count */
	u32 fd;
	u8 kind;
	u8 direction;
	u8 pad[2];
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
	/* How many of its first payloads have been looked at for a TLS record. */
	u8 sniffed;
	u8 pad[5];
};

/* A thread inside SSL_read/SSL_write: the socket call it makes names the fd. */
struct tls_call {
	struct call_args args; /* ptr = the plaintext buffer, fd learned on the way */
	u64 ssl;
	u64 ex_len; /* SSL_*_ex: where the byte count is written; 0 otherwise */
	u8 fd_known;
	u8 pad[7];
};

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

/* The data event is too large for the stack: built here, then copied out sized.
 * The slack lets the verifier prove that a masked offset plus a masked length
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

static __always_inline bool is_traced(void)
{
	u32 tgid = current_tgid();
	return bpf_map_lookup_elem(&traced_pids, &tgid) != 0;
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

/* One data event: `ret` bytes moved by the call in `args` on `conn`, with a
 * bounded prefix copied from the caller's memory. */
static __always_inline void emit_data(struct conn_info *conn, struct call_args *args, long ret, u8 tls)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 zero = 0;
	struct scratch_event *buf = bpf_map_lookup_elem(&scratch, &zero);
	if (!buf)
		return;
	struct beyla_data_event *ev = &buf->ev;
	ev->head.hdr.kind = BEYLA_EVENT_DATA;
	ev->head.hdr.pid = id >> 32;
	ev->head.hdr.tid = (u32)id;
	ev->head.conn_id = conn->id;
	ev->head.start_ns = args->start_ns;
	ev->head.end_ns = bpf_ktime_get_ns();
	ev->head.bytes = ret;
	ev->head.fd = args->fd;
	ev->head.direction = args->direction;
	ev->head.origin = conn->origin;
	ev->head.tls = tls;
	ev->head.tuple = conn->tuple;

	/* A call that moved less than the largest capture is copied whole:
	 * requests pipelined in one write, frames of many streams, are each a
	 * message to follow. A larger call (a body, a download) gives its
	 * first capture_size bytes. */
	u32 room = capture_size;
	if (room > BEYLA_MAX_CAPTURE - 1)
		room = BEYLA_MAX_CAPTURE - 1;
	if ((u64)ret < BEYLA_MAX_CAPTURE)
		room = ret;
	u32 captured = 0;
	if (args->kind == CALL_BUF) {
		captured = room & (BEYLA_MAX_CAPTURE - 1);
		if (captured && bpf_probe_read_user(ev->data, captured, (void *)args->ptr))
			captured = 0;
	} else if (args->kind == CALL_IOV) {
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
