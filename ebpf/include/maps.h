/* Maps shared by every probe file. Exactly one object defines them
 * (BEYLA_MAPS_OWNER); the others declare them extern and the BPF static
 * linker (bpftool gen object) joins them into one object. */
#ifndef BEYLA_MAPS_H
#define BEYLA_MAPS_H

#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include "events.h"

#ifdef BEYLA_MAPS_OWNER
#define BEYLA_SHARED
#else
#define BEYLA_SHARED extern
#endif

/* Ring buffer between the probes and the agent's reader. */
#define BEYLA_RINGBUF_BYTES (8 * 1024 * 1024)

/* The processes whose traffic is captured: one byte of enum beyla_pid_flag
 * bits per tgid, BEYLA_PID_CHUNK pids per element. Every probe looks here
 * first, for every process on the machine, so it is an array (the verifier
 * turns the look-up into an address computation) rather than a hash. The
 * agent sizes it to the kernel's pid_max and writes single bytes through
 * mmap; the probes write single bytes too, so no write undoes another. */
struct pid_chunk {
	u8 flags[BEYLA_PID_CHUNK];
};

BEYLA_SHARED struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* set by the agent before load */
	__type(key, u32);
	__type(value, struct pid_chunk);
} traced_pids SEC(".maps");

BEYLA_SHARED struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, BEYLA_RINGBUF_BYTES);
} events SEC(".maps");

/* Events the kernel could not hand over, by enum beyla_drop_reason. */
BEYLA_SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BEYLA_DROP_REASONS);
	__type(key, u32);
	__type(value, u64);
} drops SEC(".maps");

static __always_inline void count_drop(u32 reason)
{
	u64 *n = bpf_map_lookup_elem(&drops, &reason);
	if (n)
		*n += 1;
}

static __always_inline u32 current_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

/* The byte of `tgid` in the traced-PID map, or 0 past its end. */
static __always_inline u8 *pid_flags(u32 tgid)
{
	u32 chunk = tgid / BEYLA_PID_CHUNK;
	struct pid_chunk *c = bpf_map_lookup_elem(&traced_pids, &chunk);
	return c ? &c->flags[tgid & (BEYLA_PID_CHUNK - 1)] : 0;
}

static __always_inline u8 pid_state(u32 tgid)
{
	u8 *flags = pid_flags(tgid);
	return flags ? *flags : 0;
}

/* Whether a process's calls are captured: traced, or exec'd and awaiting the agent's decision. */
static __always_inline bool capturing(u8 flags)
{
	return flags & (BEYLA_PID_TRACED | BEYLA_PID_PENDING);
}

#endif /* BEYLA_MAPS_H */
