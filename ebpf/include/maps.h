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

/* Processes whose traffic is captured: tgid -> enum beyla_pid_state. Filled by
 * the agent's discovery; every probe looks here first. */
#define BEYLA_MAX_TRACED_PIDS 8192
/* Ring buffer between the probes and the agent's reader. */
#define BEYLA_RINGBUF_BYTES (8 * 1024 * 1024)

BEYLA_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BEYLA_MAX_TRACED_PIDS);
	__type(key, u32);
	__type(value, u32);
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

#endif /* BEYLA_MAPS_H */
