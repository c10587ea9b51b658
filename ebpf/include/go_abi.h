/* Go's register-based calling convention (ABIInternal: Go 1.17 on amd64,
 * 1.18 on arm64), as a uprobe sees it: integer arguments and results in
 * order in RAX, RBX, RCX, RDI, ... (amd64) or X0, X1, X2, ... (arm64), and
 * the running goroutine's g in R14 (amd64) or X28 (arm64) throughout Go code. */
#ifndef BEYLA_GO_ABI_H
#define BEYLA_GO_ABI_H

#include "kernel_types.h"

#if defined(__TARGET_ARCH_x86)
#define GO_ARG1(ctx) ((ctx)->rax)
#define GO_ARG2(ctx) ((ctx)->rbx)
#define GO_ARG3(ctx) ((ctx)->rcx)
#define GO_G(ctx) ((ctx)->r14)
#elif defined(__TARGET_ARCH_arm64)
#define GO_ARG1(ctx) ((ctx)->user_regs.regs[0])
#define GO_ARG2(ctx) ((ctx)->user_regs.regs[1])
#define GO_ARG3(ctx) ((ctx)->user_regs.regs[2])
#define GO_G(ctx) ((ctx)->user_regs.regs[28])
#endif

/* An interface value is two words, its type's and its data's; the data
 * word of a pointer type is the pointer itself. */
#define GO_IFACE_DATA 8

/* The first result is where the first argument was. */
#define GO_RET1(ctx) GO_ARG1(ctx)

/* A goroutine of a process: g pointers are per address space. */
struct go_key {
	u32 tgid;
	u32 pad;
	u64 g;
};

#endif /* BEYLA_GO_ABI_H */
