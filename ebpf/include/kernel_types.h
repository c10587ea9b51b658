/* The few kernel types the probes read, with only the fields they use.
 * preserve_access_index makes clang emit CO-RE relocations, so libbpf/aya fix
 * the offsets against the running kernel's BTF: no generated vmlinux.h.
 * The layouts below are identical on x86_64 and arm64. */
#ifndef BEYLA_KERNEL_TYPES_H
#define BEYLA_KERNEL_TYPES_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef unsigned short umode_t;
typedef _Bool bool;
enum { false = 0, true = 1 };

/* UAPI values from linux/bpf.h, kept here so no system kernel headers are needed. */
enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};
#define BPF_ANY 0
#define BPF_NOEXIST 1
#define BPF_F_MMAPABLE (1U << 10)
#define BPF_RB_NO_WAKEUP 1
#define BPF_RB_AVAIL_DATA 0
#define BPF_RB_FORCE_WAKEUP 2

/* Stable tracepoint context layouts (the syscall tracepoints' format files). */
struct syscall_enter_ctx {
	__u64 common;
	long id;
	unsigned long args[6];
};

struct syscall_exit_ctx {
	__u64 common;
	long id;
	long ret;
};

/* A raw tracepoint's arguments, as the tracepoint's prototype lists them. */
struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

/* Registers at a uprobe, as bpf_tracing.h's PT_REGS_* macros read them. */
#if defined(__TARGET_ARCH_x86)
/* The kernel's layout, with the user-space names bpf_tracing.h expects here. */
struct pt_regs {
	unsigned long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
	unsigned long rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss;
};
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
struct pt_regs {
	struct user_pt_regs user_regs;
};
#endif

struct iovec {
	void *iov_base;
	unsigned long iov_len;
};

/* The user-space msghdr of recvmsg/sendmsg. */
struct user_msghdr {
	void *msg_name;
	int msg_namelen;
	struct iovec *msg_iov;
	unsigned long msg_iovlen;
	void *msg_control;
	unsigned long msg_controllen;
	unsigned int msg_flags;
};

struct in6_addr {
	union {
		__u8 u6_addr8[16];
	} in6_u;
} __attribute__((preserve_access_index));

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct socket {
	short type;
	struct sock *sk;
} __attribute__((preserve_access_index));

struct inode {
	umode_t i_mode;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

typedef struct {
	int counter;
} atomic_t;

struct signal_struct {
	atomic_t live; /* threads not yet exited */
} __attribute__((preserve_access_index));

/* flags on every architecture; status (TS_COMPAT) on x86 only. */
struct thread_info {
	unsigned long flags;
	__u32 status;
} __attribute__((preserve_access_index));

struct task_struct {
	struct thread_info thread_info;
	int pid;
	int tgid;
	struct files_struct *files;
	struct signal_struct *signal;
} __attribute__((preserve_access_index));

struct linux_binprm {
	const char *filename;
} __attribute__((preserve_access_index));

typedef unsigned long size_t;

/* A msghdr's iterator over the caller's buffers, as tcp_sendmsg and
 * tcp_recvmsg get it. Its fields moved between kernels; each is read only if
 * the running kernel has it (bpf_core_field_exists):
 *   type       5.10-5.13: ITER_* bit flags, bit 0 the direction
 *   iter_type  5.14+: an enum iter_type value
 *   iov        before 6.4; __iov from 6.4 (the same kernel copy of the iovecs)
 *   ubuf       6.0+: one user buffer (ITER_UBUF), what plain read/write use */
struct iov_iter {
	unsigned int type;
	__u8 iter_type;
	size_t iov_offset;
	const struct iovec *iov;
	const struct iovec *__iov;
	void *ubuf;
	unsigned long nr_segs;
} __attribute__((preserve_access_index));

/* Values relocated to the running kernel's (bpf_core_enum_value): they
 * changed between kernels, and ITER_UBUF exists from 6.0. */
enum iter_type {
	ITER_IOVEC = 0,
	ITER_UBUF = 1,
};

struct msghdr {
	struct iov_iter msg_iter;
} __attribute__((preserve_access_index));

/* The kernel's pt_regs under its own field names, for the syscall arguments
 * the sys_enter/sys_exit tracepoints hand over (CO-RE relocates the offsets;
 * the ___kernel suffix keeps it apart from the pt_regs above, which
 * bpf_tracing.h reads at uprobes). */
#if defined(__TARGET_ARCH_x86)
struct pt_regs___kernel {
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long orig_ax;
} __attribute__((preserve_access_index));
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs___kernel {
	__u64 regs[31];
	__s32 syscallno;
} __attribute__((preserve_access_index));
#endif

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
#define TCP_LISTEN 10

#endif /* BEYLA_KERNEL_TYPES_H */
