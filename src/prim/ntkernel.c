/* SPDX-License-Identifier: MIT */
/*
 * ntkernel.c — the platform layer inside a Windows driver: the real
 * nonpaged pool for pages and records, a kernel spin lock, the real IRQL,
 * the performance counter, DbgPrintEx for output and KeBugCheckEx to stop.
 * Contracts are in prim.h; docs/driver.md explains the build.
 *
 * Everything poolsim takes from the kernel is nonpaged (NonPagedPoolNx, or
 * POOL_FLAG_NON_PAGED with ExAllocatePool2), because the core allocates
 * while it holds its spin locks, at DISPATCH_LEVEL, and because a driver may
 * call the pool routines at DISPATCH_LEVEL. The driver's paged blocks are
 * therefore backed by nonpaged memory; the core still applies the paged IRQL
 * rules to them.
 *
 * Tags: the core carves blocks of every tag out of shared chunks of pages, so
 * a backing allocation cannot carry the driver's tag. Chunks are tagged
 * "PsmA" (arena) and poolsim's own records "PsmM" (metadata): WinDbg's
 * !poolused on the target shows those two rows, and poolsim's own !poolused
 * (poolsim_report_poolused, printed through DbgPrintEx) shows the driver's
 * tags, sizes and call sites.
 */
#include "prim.h"

#include <ntddk.h>

/* Tags as the debugger shows them (memory order): "PsmA" and "PsmM". */
#define NT_TAG_ARENA 0x416D7350u
#define NT_TAG_META 0x4D6D7350u

/* ExAllocatePool2 when the headers have it (WDK 10.0.19041+ targeting
 * Windows 10 2004+); ExAllocatePoolWithTag(NonPagedPoolNx) otherwise, which
 * is what mingw-w64's DDK offers. Both are nonpaged and usable at
 * DISPATCH_LEVEL. */
#if defined(POOL_FLAG_NON_PAGED) && defined(NTDDI_WIN10_VB) && NTDDI_VERSION >= NTDDI_WIN10_VB
#define NT_HAVE_POOL2 1
#else
#define NT_HAVE_POOL2 0
#endif

/* Nonpaged, no-execute where the target has it (Windows 8 and later). */
#if defined(NTDDI_WIN8) && NTDDI_VERSION >= NTDDI_WIN8
#define NT_NONPAGED NonPagedPoolNx
#else
#define NT_NONPAGED NonPagedPool
#endif

/* DbgPrintEx sends at most 512 bytes per call; longer text goes in pieces. */
#define NT_PRINT_CHUNK 500

/* ---- Capabilities -------------------------------------------------------- */

/* No page protection (the core keeps canaries instead), no fault traps, no
 * environment (options are compile-time defaults), a real IRQL. */
unsigned poolsim__prim_caps(void) { return 0; }

/* ---- Pages and records ---------------------------------------------------- */

/* Zeroed nonpaged memory from the real pool. At DISPATCH_LEVEL or below. */
static void *nt_alloc(size_t bytes, ULONG tag)
{
    if (bytes == 0)
        bytes = 1;
#if NT_HAVE_POOL2
    return ExAllocatePool2(POOL_FLAG_NON_PAGED, bytes, tag); /* zeroed */
#else
    void *p = ExAllocatePoolWithTag(NT_NONPAGED, bytes, tag);
    if (p)
        RtlZeroMemory(p, bytes);
    return p;
#endif
}

void *poolsim__prim_pages_map(size_t bytes, unsigned prot)
{
    if (prot == POOLSIM__PROT_NONE) /* no POOLSIM__CAP_PAGE_PROTECT: pool pages are always accessible */
        return NULL;
    /* A pool allocation of PAGE_SIZE or more is page-aligned
     * (wdk-semantics.md §2.5); the check keeps the contract if it ever is not. */
    void *p = nt_alloc(bytes, NT_TAG_ARENA);
    if (p && ((uintptr_t)p & (POOLSIM__PAGE_SIZE - 1u)) != 0) {
        ExFreePoolWithTag(p, NT_TAG_ARENA);
        return NULL;
    }
    return p;
}

void poolsim__prim_pages_unmap(void *p, size_t bytes)
{
    (void)bytes;
    if (p)
        ExFreePoolWithTag(p, NT_TAG_ARENA);
}

void *poolsim__prim_meta_alloc(size_t bytes) { return nt_alloc(bytes, NT_TAG_META); }

void poolsim__prim_meta_free(void *p, size_t bytes)
{
    (void)bytes;
    if (p)
        ExFreePoolWithTag(p, NT_TAG_META);
}

/* ---- Locks ------------------------------------------------------------------ */

/* A spin lock and the IRQL its holder came from. Below DISPATCH_LEVEL the
 * acquire raises to DISPATCH_LEVEL (so the pool routines work at any IRQL up
 * to DISPATCH_LEVEL); at DISPATCH_LEVEL or above it takes the lock without
 * changing the IRQL. */
typedef struct nt_lock {
    KSPIN_LOCK lock;
    KIRQL old_irql;
} nt_lock;

typedef char nt_lock_fits[sizeof(nt_lock) <= sizeof(poolsim__prim_lock) ? 1 : -1];

static nt_lock *nt_lock_of(poolsim__prim_lock *l) { return (nt_lock *)(void *)l; }

void poolsim__prim_lock_init(poolsim__prim_lock *l)
{
    nt_lock *k = nt_lock_of(l);
    KeInitializeSpinLock(&k->lock);
    k->old_irql = PASSIVE_LEVEL;
}

void poolsim__prim_lock_destroy(poolsim__prim_lock *l) { (void)l; }

void poolsim__prim_lock_acquire(poolsim__prim_lock *l)
{
    nt_lock *k = nt_lock_of(l);
    KIRQL irql = KeGetCurrentIrql();
    if (irql >= DISPATCH_LEVEL) {
        KeAcquireSpinLockAtDpcLevel(&k->lock);
    } else {
        KeAcquireSpinLock(&k->lock, &irql);
    }
    k->old_irql = irql;
}

void poolsim__prim_lock_release(poolsim__prim_lock *l)
{
    nt_lock *k = nt_lock_of(l);
    KIRQL irql = k->old_irql;
    if (irql >= DISPATCH_LEVEL)
        KeReleaseSpinLockFromDpcLevel(&k->lock);
    else
        KeReleaseSpinLock(&k->lock, irql);
}

/* ---- Threads, IRQL, time ---------------------------------------------------- */

uint32_t poolsim__prim_thread_id(void) { return (uint32_t)(uintptr_t)PsGetCurrentThreadId(); }

uint8_t poolsim__prim_irql_get(void) { return (uint8_t)KeGetCurrentIrql(); }

/* The IRQL is the processor's: the driver changes it with KeRaiseIrql. */
void poolsim__prim_irql_set(uint8_t irql) { (void)irql; }

uint64_t poolsim__prim_now_ns(void)
{
    LARGE_INTEGER freq;
    uint64_t ticks = (uint64_t)KeQueryPerformanceCounter(&freq).QuadPart;
    uint64_t hz = freq.QuadPart > 0 ? (uint64_t)freq.QuadPart : 1u;
    /* No floating point in the kernel; the remainder term cannot overflow for
     * any frequency below 18 GHz. */
    return ticks / hz * 1000000000u + ticks % hz * 1000000000u / hz;
}

uint64_t poolsim__prim_entropy(void)
{
    LARGE_INTEGER freq;
    uint64_t v = (uint64_t)KeQueryPerformanceCounter(&freq).QuadPart;
    v ^= (uint64_t)(uintptr_t)&freq << 16;
    v ^= (uint64_t)(uintptr_t)PsGetCurrentThreadId() << 40;
    v ^= (uint64_t)(uintptr_t)&poolsim__prim_entropy;
    /* splitmix64's finaliser spreads the bits. */
    v = (v ^ (v >> 30)) * 0xBF58476D1CE4E5B9ull;
    v = (v ^ (v >> 27)) * 0x94D049BB133111EBull;
    return v ^ (v >> 31);
}

/* ---- Output, environment, stop ------------------------------------------------ */

void poolsim__prim_write(const char *text)
{
    char piece[NT_PRINT_CHUNK + 1];
    while (*text) {
        size_t k = 0;
        while (k < NT_PRINT_CHUNK && text[k])
            k++;
        RtlCopyMemory(piece, text, k);
        piece[k] = '\0';
        DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_ERROR_LEVEL, "%s", piece);
        text += k;
    }
}

long poolsim__prim_getenv(const char *name, char *buf, size_t cap)
{
    (void)name;
    (void)buf;
    (void)cap;
    return -1;
}

void poolsim__prim_stop(unsigned long code, const uintptr_t param[4])
{
    KeBugCheckEx((ULONG)code, (ULONG_PTR)param[0], (ULONG_PTR)param[1], (ULONG_PTR)param[2],
                 (ULONG_PTR)param[3]);
}

void poolsim__prim_debug_break(void)
{
    /* DbgBreakPoint with no kernel debugger attached is itself a bug check. */
    if (!KdRefreshDebuggerNotPresent())
        DbgBreakPoint();
}

/* ---- Force IRQL checking's primitives: the kernel's answers ------------------------------- */

/* The kernel's pool pages stay resident (POOLSIM__CAP_PAGE_PROTECT is not
 * claimed); the real Driver Verifier's Force IRQL Checking does the trimming. */
bool poolsim__prim_pages_protect(void *p, size_t bytes, unsigned prot)
{
    (void)p;
    (void)bytes;
    (void)prot;
    return false;
}

/* No traps in the kernel (POOLSIM__CAP_FAULT_TRAP is not claimed), so nothing
 * asks which fault is poolsim's own. */
uint32_t poolsim__prim_locks_held(void) { return 0; }

void poolsim__prim_yield(void) { YieldProcessor(); }

/* The IRQL is real and KeRaiseIrql, the spin locks and fast mutexes are the
 * kernel's: the core keeps no per-thread IRQL history or lock list here. */
void *poolsim__prim_thread_state(void) { return NULL; }

bool poolsim__prim_trap_install(poolsim__prim_fault_fn *on_fault, poolsim__prim_report_fn *on_report,
                                poolsim__prim_step_fn *on_step)
{
    (void)on_fault;
    (void)on_report;
    (void)on_step;
    return false;
}
