/* The kernel/user contract: every record the probes put on the ring buffer.
 * The agent's Rust side is generated from this file by bindgen (agent/build.rs),
 * so a field changed here changes there, or the build fails. */
#ifndef BEYLA_EVENTS_H
#define BEYLA_EVENTS_H

#ifdef __BPF__
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
#else
#include <stdint.h>
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
#endif

/* Largest number of payload bytes one data event can carry; the configured
 * capture size is clamped to this, and a call that moved fewer bytes is
 * copied whole. A power of two so the probes can mask. */
#define BEYLA_MAX_CAPTURE 8192
/* Default capture size: large enough for the request line and typical headers. */
#define BEYLA_DEFAULT_CAPTURE 1024
/* iovec entries copied per readv/writev/recvmsg/sendmsg call: gRPC libraries
 * send a connection's first frames in 14 to 27 pieces, and answers to many
 * concurrent streams in one sendmsg of a hundred or more. */
#define BEYLA_MAX_IOV 128
/* Bytes of an exec'd filename forwarded to the agent. */
#define BEYLA_MAX_FILENAME 256
/* Processes per element of the traced-PID map: one byte each. */
#define BEYLA_PID_CHUNK 4096
/* Call slots at most (a power of two): one per thread id below this, else
 * shared by the ids equal modulo it, and a call whose slot another thread
 * took is counted lost (BEYLA_DROP_ARGS_MAP_FULL). */
#define BEYLA_MAX_CALL_SLOTS 65536

enum beyla_event_kind {
	BEYLA_EVENT_DATA = 1,  /* bytes read from or written to a TCP socket */
	BEYLA_EVENT_CLOSE = 2, /* a traced connection was closed */
	/* A traced process exec'd, or any process did while selecting by executable. */
	BEYLA_EVENT_EXEC = 3,
	/* A traced process forked: the child is traced from its first syscall. */
	BEYLA_EVENT_FORK = 4,
	/* A traced (or pending) process ended: its last thread exited. */
	BEYLA_EVENT_EXIT = 5,
	/* A process opened or closed a listening TCP socket (while selecting by port). */
	BEYLA_EVENT_LISTEN = 6,
	/* Context propagation: the trace context the kernel gave a request. */
	BEYLA_EVENT_CONTEXT = 7,
	/* A traced Go process served its first TLS request: the agent attaches
	 * its executable's goroutine probes (runtime.newproc1). A header alone. */
	BEYLA_EVENT_GO_SERVING = 8,
};

enum beyla_direction {
	BEYLA_DIR_INGRESS = 0, /* read by the traced process */
	BEYLA_DIR_EGRESS = 1,  /* written by the traced process */
};

/* How the kernel first saw the connection: it tells the agent which side is
 * the server, unless the connection predates the agent. */
enum beyla_origin {
	BEYLA_ORIGIN_UNKNOWN = 0,
	BEYLA_ORIGIN_ACCEPT = 1,
	BEYLA_ORIGIN_CONNECT = 2,
};

/* Values of the probes' wakeup_len setting (ebpf.wakeup_len); larger values
 * wake the reader once per that many records per CPU. */
enum beyla_wakeup {
	/* Never per record: the reader polls on its own, and the probes wake it
	 * only when the ring holds a backlog. The default: a wake-up is an
	 * inter-processor interrupt paid inside the traced service's syscall. */
	BEYLA_WAKEUP_ADAPTIVE = 0,
	BEYLA_WAKEUP_EVERY_RECORD = 1,
};

/* Bits of a process's byte in the traced-PID map; 0: not traced. */
enum beyla_pid_flag {
	BEYLA_PID_TRACED = 1,
	BEYLA_PID_PENDING = 2, /* exec'd while selecting by executable; the agent decides */
	/* OpenSSL uprobes are attached: a socket call may be inside SSL_read/SSL_write. */
	BEYLA_PID_TLS = 4,
};

/* Which request a context event names (enum beyla_context_role). */
enum beyla_context_role {
	/* A server request starts on conn_id: its span ids, carried to the calls it makes. */
	BEYLA_CONTEXT_SERVER = 1,
	/* A `traceparent` was written into the client request sent at start_ns on conn_id. */
	BEYLA_CONTEXT_CLIENT = 2,
};

/* What the context-propagation programs did, by index of the per-CPU array
 * `propagation_counts` (enum beyla_propagation_outcome). */
enum beyla_propagation_outcome {
	BEYLA_PROPAGATION_INJECTED = 0,
	/* The request carries a traceparent already: left alone. */
	BEYLA_PROPAGATION_HAD_CONTEXT = 1,
	/* The request head is not whole in the message (or too long to scan): left alone. */
	BEYLA_PROPAGATION_HEAD_INCOMPLETE = 2,
	/* The kernel refused to grow the message: sent as it was. */
	BEYLA_PROPAGATION_PUSH_FAILED = 3,
	BEYLA_PROPAGATION_OUTCOMES = 4,
};

/* Indexes of the kernel drop counters (per-CPU array `drops`). */
enum beyla_drop_reason {
	BEYLA_DROP_RINGBUF_FULL = 0,
	/* A call whose slot another thread took (thread ids equal modulo the slots). */
	BEYLA_DROP_ARGS_MAP_FULL = 1,
	BEYLA_DROP_CONN_MAP_FULL = 2,
	/* TLS plaintext whose connection no socket call named (memory BIOs, as in Node.js). */
	BEYLA_DROP_TLS_UNKNOWN_CONN = 3,
	BEYLA_DROP_REASONS = 4,
};

/* Both ends of a TCP connection as the traced process sees them.
 * IPv4 addresses are stored as IPv4-mapped IPv6 (::ffff:a.b.c.d). */
struct beyla_conn_tuple {
	u8 local_addr[16];
	u8 remote_addr[16];
	u16 local_port; /* host byte order */
	u16 remote_port;
	u16 family; /* AF_INET or AF_INET6 */
	u16 pad;
};

/* First fields of every event, so the reader can dispatch on `kind`. */
struct beyla_event_header {
	u8 kind;
	u8 pad[3];
	u32 pid; /* tgid */
	u32 tid;
	u32 pad2;
};

/* The fixed part of a data event; the ring record is this plus `captured` bytes. */
struct beyla_data_head {
	struct beyla_event_header hdr;
	u64 conn_id; /* unique for the life of the agent */
	u64 start_ns; /* syscall entry, CLOCK_MONOTONIC; for reads the exit (bytes arrive then) */
	u64 end_ns;   /* syscall exit */
	u64 bytes;    /* what the syscall moved; may exceed `captured` */
	u32 fd;
	u32 captured; /* bytes present in data[] */
	u8 direction;
	u8 origin;
	u8 tls; /* 1: plaintext from SSL_read/SSL_write, not the socket's bytes */
	u8 pad[5];
	struct beyla_conn_tuple tuple;
};

struct beyla_data_event {
	struct beyla_data_head head;
	u8 data[BEYLA_MAX_CAPTURE];
};

struct beyla_close_event {
	struct beyla_event_header hdr;
	u64 conn_id;
	u64 time_ns;
	u32 fd;
	u32 pad;
};

struct beyla_exec_event {
	struct beyla_event_header hdr;
	char filename[BEYLA_MAX_FILENAME];
};

/* hdr.pid is the parent. */
struct beyla_fork_event {
	struct beyla_event_header hdr;
	u32 child;
	u32 pad;
};

/* An exit event is a header alone. */

/* Context propagation: threads and processes serving a request at once (two
 * entries each). */
#define BEYLA_MAX_SERVING 16384
/* Bytes of W3C trace and span ids. */
#define BEYLA_TRACE_ID_LEN 16
#define BEYLA_SPAN_ID_LEN 8

struct beyla_context_event {
	struct beyla_event_header hdr;
	u64 conn_id;
	u64 start_ns; /* client: the data event's start_ns of the request's first write */
	u8 trace_id[BEYLA_TRACE_ID_LEN];
	u8 span_id[BEYLA_SPAN_ID_LEN];
	u8 parent_id[BEYLA_SPAN_ID_LEN]; /* client: the serving request's span; zero: none */
	u8 role;
	u8 pad[7];
};

struct beyla_listen_event {
	struct beyla_event_header hdr;
	u16 port;
	u8 listening; /* 1: now listening; 0: stopped */
	u8 pad[5];
};

/* Written by the agent per traced Go process (map go_procs, keyed by tgid):
 * the field offsets, for the binary's Go version, from a *tls.Conn to its
 * socket's descriptor (agent/src/golang/offsets.toml). */
struct beyla_go_offsets {
	u32 tls_conn_conn; /* crypto/tls.Conn.conn: a net.Conn interface */
	u32 tcp_conn_fd;   /* net.TCPConn.conn.fd: the *net.netFD */
	u32 netfd_pfd;     /* net.netFD.pfd: an internal/poll.FD */
	u32 poll_fd_sysfd; /* internal/poll.FD.Sysfd */
	/* 0 from the agent; set by the probes with the process's first serving
	 * goroutine, when they report BEYLA_EVENT_GO_SERVING. */
	u32 serving;
};

/* A data event from Go's crypto/tls has in hdr.tid, instead of the thread,
 * the goroutine that serves the request it belongs to (the goroutine itself,
 * or the serving one that started it, through runtime.newproc1), with this
 * bit set: goroutines move between threads, and thread ids stay below it. */
#define BEYLA_GO_TASK_BIT 0x80000000u

#endif /* BEYLA_EVENTS_H */
