// SPDX-License-Identifier: GPL-2.0
/* Empty programs, one set per way of seeing socket I/O, so that
 * bench/pathcost measures what the kernel itself charges for running a program
 * there (the program does nothing). pathcost loads only the set it is asked for;
 * program names start with the set's name. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>

/* Per-syscall tracepoints: the syscalls the agent's syscalls path attaches to. */
#define SYSCALL_PAIR(name)                                         \
	SEC("tracepoint/syscalls/sys_enter_" #name)                \
	int syscalls_enter_##name(void *ctx) { return 0; }         \
	SEC("tracepoint/syscalls/sys_exit_" #name)                 \
	int syscalls_exit_##name(void *ctx) { return 0; }

SYSCALL_PAIR(read)
SYSCALL_PAIR(write)
SYSCALL_PAIR(readv)
SYSCALL_PAIR(writev)
SYSCALL_PAIR(recvfrom)
SYSCALL_PAIR(sendto)
SYSCALL_PAIR(recvmsg)
SYSCALL_PAIR(sendmsg)
SYSCALL_PAIR(accept)
SYSCALL_PAIR(accept4)
SYSCALL_PAIR(connect)

/* One program for every syscall, raw arguments. */
SEC("raw_tracepoint/sys_enter")
int raw_tp_enter(void *ctx) { return 0; }
SEC("raw_tracepoint/sys_exit")
int raw_tp_exit(void *ctx) { return 0; }

/* The same with BTF-typed arguments. */
SEC("tp_btf/sys_enter")
int tp_btf_enter(void *ctx) { return 0; }
SEC("tp_btf/sys_exit")
int tp_btf_exit(void *ctx) { return 0; }

/* The kernel's TCP functions, entry and return, as kprobes... */
SEC("kprobe/tcp_sendmsg")
int kprobe_send(void *ctx) { return 0; }
SEC("kretprobe/tcp_sendmsg")
int kprobe_send_ret(void *ctx) { return 0; }
SEC("kprobe/tcp_recvmsg")
int kprobe_recv(void *ctx) { return 0; }
SEC("kretprobe/tcp_recvmsg")
int kprobe_recv_ret(void *ctx) { return 0; }

/* ...and as BPF trampolines. */
SEC("fentry/tcp_sendmsg")
int fentry_send(void *ctx) { return 0; }
SEC("fexit/tcp_sendmsg")
int fentry_send_ret(void *ctx) { return 0; }
SEC("fentry/tcp_recvmsg")
int fentry_recv(void *ctx) { return 0; }
SEC("fexit/tcp_recvmsg")
int fentry_recv_ret(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
