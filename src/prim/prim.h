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
 * - No function calls back into the core.
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

#define POOLSIM__PAGE_SIZE 4096u

/* ---- Capabilities ----------------------------------------------------- */

#define POOLSIM__CAP_PAGE_PROTECT 0x1u /* poolsim__prim_pages_protect works */
#define POOLSIM__CAP_FAULT_TRAP 0x2u   /* access faults can be trapped */
#define POOLSIM__CAP_ENVIRONMENT 0x4u  /* poolsim__prim_getenv can answer */
#define POOLSIM__CAP_SIM_IRQL 0x8u     /* the IRQL is simulated per thread */

unsigned poolsim__prim_caps(void);

/* ---- Pages ------------------------------------------------------------ */

/* Maps `bytes` of zeroed read-write memory aligned to a page. Returns NULL
 * when the platform has no more. */
void *poolsim__prim_pages_map(size_t bytes);

/* Returns pages obtained from poolsim__prim_pages_map (the whole mapping). */
void poolsim__prim_pages_unmap(void *p, size_t bytes);

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

/* ---- Threads, IRQL, time ------------------------------------------------ */

/* A number that identifies the calling thread (the OS thread id). */
uint32_t poolsim__prim_thread_id(void);

/* The calling thread's IRQL: simulated per thread in user mode
 * (POOLSIM__CAP_SIM_IRQL), KeGetCurrentIrql in the kernel. set is a no-op
 * where the IRQL is real. */
uint8_t poolsim__prim_irql_get(void);
void poolsim__prim_irql_set(uint8_t irql);

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

#endif /* POOLSIM_PRIM_H */
