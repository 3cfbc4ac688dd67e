/* SPDX-License-Identifier: MIT */
/*
 * prim.h — the one contract between the freestanding core and the platform.
 *
 * Everything that touches an operating system goes through these functions:
 * posix.c (Linux and other POSIX systems), win32.c (Windows user mode) and
 * ntkernel.c (inside a driver) implement them; exactly one is linked.
 *
 * Global rules:
 * - Every function may be called from any thread, concurrently, unless its
 *   comment says otherwise.
 * - No function calls back into the core, except the three trap callbacks
 *   the core registers with poolsim__prim_trap_install.
 * - Functions that can fail say so and never abort on failure.
 * - Page functions deal in multiples of POOLSIM__PAGE_SIZE.
 * - The core asks for capabilities (poolsim__prim_caps) instead of testing
 *   _WIN32 or __linux__.
 */
#ifndef POOLSIM_PRIM_H
#define POOLSIM_PRIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <poolsim/poolsim.h> /* poolsim__thread_tls */

#define POOLSIM__PAGE_SIZE 4096u

/* ---- Capabilities ----------------------------------------------------- */

#define POOLSIM__CAP_PAGE_PROTECT 0x1u /* poolsim__prim_pages_protect works */
#define POOLSIM__CAP_FAULT_TRAP 0x2u   /* poolsim__prim_trap_install works: faults can be trapped and stepped */
#define POOLSIM__CAP_ENVIRONMENT 0x4u  /* poolsim__prim_getenv can answer */
#define POOLSIM__CAP_SIM_IRQL 0x8u     /* the IRQL is simulated per thread */

unsigned poolsim__prim_caps(void);

/* ---- Pages ------------------------------------------------------------ */

/* Page protections for poolsim__prim_pages_map and poolsim__prim_pages_protect. */
#define POOLSIM__PROT_NONE 0u /* no access: any touch faults */
#define POOLSIM__PROT_RW 3u   /* read and write */

/* Maps `bytes` of zeroed memory aligned to a page, read-write or (only with
 * POOLSIM__CAP_PAGE_PROTECT) no-access: the special-pool region, whose pages
 * are then opened and closed one at a time. Returns NULL when the platform
 * has no more. */
void *poolsim__prim_pages_map(size_t bytes, unsigned prot);

/* Returns pages obtained from poolsim__prim_pages_map (the whole mapping). */
void poolsim__prim_pages_unmap(void *p, size_t bytes);

/* Changes the protection of `bytes` (a page multiple) at p (page aligned),
 * inside one mapping from poolsim__prim_pages_map. Returns false when it
 * cannot. May be called from a trap callback (it must be async-signal-safe:
 * mprotect, VirtualProtect). Only with POOLSIM__CAP_PAGE_PROTECT; the kernel
 * has no such capability and returns false (its pool pages stay resident). */
bool poolsim__prim_pages_protect(void *p, size_t bytes, unsigned prot);

/* ---- Out-of-band memory (the backing heap) ----------------------------- */

/* Memory for poolsim's own records, never handed to the caller. Aligned to
 * 16 bytes, zeroed. NULL on failure. poolsim__prim_meta_free(NULL, n) is a
 * no-op. */
void *poolsim__prim_meta_alloc(size_t bytes);
void poolsim__prim_meta_free(void *p, size_t bytes);

/* ---- Locks ------------------------------------------------------------ */

/* Opaque storage big enough for the platform's lock. Locks are not
 * recursive. Acquire may be called at any simulated IRQL. */
typedef struct poolsim__prim_lock {
    uintptr_t opaque[8];
} poolsim__prim_lock;

void poolsim__prim_lock_init(poolsim__prim_lock *l);
void poolsim__prim_lock_destroy(poolsim__prim_lock *l);
void poolsim__prim_lock_acquire(poolsim__prim_lock *l);
void poolsim__prim_lock_release(poolsim__prim_lock *l);

/* The number of poolsim__prim_lock locks the calling thread holds. Every
 * access poolsim makes to block memory happens under a shard lock, so a
 * non-zero count in a trap callback means the fault is poolsim's own access,
 * not the driver's (Force IRQL checking lets it proceed). User mode counts
 * in acquire/release; the kernel, which has no traps, may return 0. */
uint32_t poolsim__prim_locks_held(void);

/* Gives the processor to another thread (sched_yield, SwitchToThread; the
 * kernel: YieldProcessor, a pause). Spin-lock waits call it between spins. */
void poolsim__prim_yield(void);

/* ---- Threads, IRQL, time ------------------------------------------------ */

/* A number that identifies the calling thread (the OS thread id). */
uint32_t poolsim__prim_thread_id(void);

/* The calling thread's IRQL: simulated per thread in user mode
 * (POOLSIM__CAP_SIM_IRQL), KeGetCurrentIrql in the kernel. set is a no-op
 * where the IRQL is real. In user mode the simulated IRQL is the first byte
 * of the thread block below: get reads it, set writes it. */
uint8_t poolsim__prim_irql_get(void);
void poolsim__prim_irql_set(uint8_t irql);

/* The calling thread's block of POOLSIM__THREAD_BYTES bytes (poolsim.h) for
 * the core's per-thread state (src/irql.c: IRQL history, held locks): zeroed
 * when the thread starts, aligned to 16 bytes, at the same address for the
 * thread's whole life, readable from a trap callback. It starts with a
 * poolsim__thread_head (poolsim.h). Returns NULL where the platform has no
 * per-thread storage for the core (the kernel, where the IRQL is real and
 * KeRaiseIrql is the kernel's): the core then keeps no history and tracks no
 * locks. */
#ifdef POOLSIM__THREAD_TLS
/* User mode: the block is the thread-local poolsim__thread_tls (posix.c,
 * win32.c), declared in poolsim.h for wdm.h's inline raise and lower; finding
 * it is inlined into the IRQL fast paths (a few instructions). */
static inline void *poolsim__prim_thread_state(void) { return &poolsim__thread_tls; }
#else
void *poolsim__prim_thread_state(void);
#endif

/* Monotonic nanoseconds, and bytes of entropy for canary secrets (not
 * cryptographic; never fails). */
uint64_t poolsim__prim_now_ns(void);
uint64_t poolsim__prim_entropy(void);

/* ---- Output, environment, stop ----------------------------------------- */

/* Writes text to the platform's diagnostic channel (stderr,
 * OutputDebugStringA, DbgPrintEx). */
void poolsim__prim_write(const char *text);

/* Copies environment variable `name` into buf (NUL-terminated, truncated to
 * cap - 1 characters). Returns its full length, or -1 when it is unset or
 * empty or the platform has no environment. */
long poolsim__prim_getenv(const char *name, char *buf, size_t cap);

/* Stops the process (abort) or the machine (KeBugCheckEx) with the code and
 * parameters; the core has printed the report. Does not return. */
void poolsim__prim_stop(unsigned long code, const uintptr_t param[4]);

/* Breaks into an attached debugger, if any; returns when there is none. */
void poolsim__prim_debug_break(void);

/* ---- Access-fault traps (Force IRQL checking; POOLSIM__CAP_FAULT_TRAP) ---- */

/* A trapped access fault. */
typedef struct poolsim__prim_fault {
    uintptr_t addr;  /* the address referenced */
    uintptr_t ip;    /* the instruction that referenced it */
    unsigned access; /* 0 read, 1 write, 8 execute (from the fault context) */
} poolsim__prim_fault;

/* What the core wants done with a fault. */
#define POOLSIM__TRAP_PASS 0u   /* not poolsim's: the previously installed handler gets it */
#define POOLSIM__TRAP_STEP 1u   /* the core made the page accessible: run the faulting
                                 * instruction once more, single-stepped, then call on_step */
#define POOLSIM__TRAP_REPORT 2u /* call on_report outside the fault context (a handler it calls
                                 * may longjmp), then ask on_fault again */

/* Called in the fault context (signal handler, vectored exception handler)
 * of the faulting thread: async-signal-safe work only. Returns POOLSIM__TRAP_*. */
typedef unsigned poolsim__prim_fault_fn(const poolsim__prim_fault *f);
/* Called on the faulting thread where it may longjmp out: directly from the
 * signal handler on POSIX (installed with SA_NODEFER, so a longjmp leaves
 * nothing blocked), from a trampoline on the thread's own stack on Windows
 * (the faulting context is restored with RtlRestoreContext when it returns). */
typedef void poolsim__prim_report_fn(const poolsim__prim_fault *f);
/* Called in the trap context after the single-stepped instruction ran. */
typedef void poolsim__prim_step_fn(void);

/*
 * Installs the process-wide trap: SIGSEGV/SIGBUS and SIGTRAP handlers with
 * SA_SIGINFO | SA_NODEFER (POSIX), a first vectored exception handler
 * (Windows). The core calls it each time it applies the protection: a call
 * puts the handlers back when someone replaced them meanwhile (cmocka
 * installs its own SIGSEGV handler around every test and restores the old
 * one after it), keeping the replacement as the handler to chain to; a
 * handler already in place is left alone. A fault the core
 * answers POOLSIM__TRAP_PASS, and a trap it did not cause (no step pending),
 * go to the handler installed before (its default action when there was none:
 * the process dies as it would have without poolsim). Single-stepping uses
 * the trap flag (x86/x86-64: EFLAGS.TF); where the platform cannot
 * single-step, it has no POOLSIM__CAP_FAULT_TRAP and returns false. The
 * kernel has no traps (ntkernel.c returns false).
 */
bool poolsim__prim_trap_install(poolsim__prim_fault_fn *on_fault, poolsim__prim_report_fn *on_report,
                                poolsim__prim_step_fn *on_step);

#endif /* POOLSIM_PRIM_H */
