/* SPDX-License-Identifier: MIT */
/*
 * win32.c — the platform layer in Windows user mode (and under Wine):
 * VirtualAlloc for pages, HeapAlloc for records, SRW locks, a thread-local
 * simulated IRQL and per-thread block, stderr plus OutputDebugStringA for
 * output, and on x64 the access-fault trap of Force IRQL checking (a
 * vectored exception handler, single step with the trap flag). Contracts are
 * in prim.h.
 */
#define WIN32_LEAN_AND_MEAN
#include "prim.h"

#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define WIN_HAVE_TRAP 1 /* the trap flag, and RtlRestoreContext to resume after a report */
#else
#define WIN_HAVE_TRAP 0
#endif

typedef char win_lock_fits[sizeof(SRWLOCK) <= sizeof(poolsim__prim_lock) ? 1 : -1];

unsigned poolsim__prim_caps(void)
{
    return POOLSIM__CAP_PAGE_PROTECT | POOLSIM__CAP_ENVIRONMENT | POOLSIM__CAP_SIM_IRQL |
           (WIN_HAVE_TRAP ? POOLSIM__CAP_FAULT_TRAP : 0u);
}

void *poolsim__prim_pages_map(size_t bytes, unsigned prot)
{
    return VirtualAlloc(NULL, bytes, MEM_RESERVE | MEM_COMMIT,
                        prot == POOLSIM__PROT_NONE ? PAGE_NOACCESS : PAGE_READWRITE);
}

void poolsim__prim_pages_unmap(void *p, size_t bytes)
{
    (void)bytes;
    VirtualFree(p, 0, MEM_RELEASE);
}

bool poolsim__prim_pages_protect(void *p, size_t bytes, unsigned prot)
{
    DWORD old;
    return VirtualProtect(p, bytes, prot == POOLSIM__PROT_NONE ? PAGE_NOACCESS : PAGE_READWRITE, &old) != 0;
}

void *poolsim__prim_meta_alloc(size_t bytes)
{
    return HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, bytes ? bytes : 1);
}

void poolsim__prim_meta_free(void *p, size_t bytes)
{
    (void)bytes;
    if (p)
        HeapFree(GetProcessHeap(), 0, p);
}

void poolsim__prim_lock_init(poolsim__prim_lock *l) { InitializeSRWLock((PSRWLOCK)(void *)l); }
void poolsim__prim_lock_destroy(poolsim__prim_lock *l) { (void)l; }

static __thread uint32_t win_locks; /* poolsim__prim_lock locks this thread holds */

/* The core's per-thread block (prim.h); its first byte is the simulated IRQL. */
__thread poolsim__thread_block poolsim__thread_tls __attribute__((aligned(16)));

void poolsim__prim_lock_acquire(poolsim__prim_lock *l)
{
    AcquireSRWLockExclusive((PSRWLOCK)(void *)l);
    win_locks++;
}

void poolsim__prim_lock_release(poolsim__prim_lock *l)
{
    win_locks--;
    ReleaseSRWLockExclusive((PSRWLOCK)(void *)l);
}

uint32_t poolsim__prim_locks_held(void) { return win_locks; }

void poolsim__prim_yield(void) { SwitchToThread(); }


uint32_t poolsim__prim_thread_id(void) { return (uint32_t)GetCurrentThreadId(); }
uint8_t poolsim__prim_irql_get(void) { return poolsim__thread_tls.head.irql; }
void poolsim__prim_irql_set(uint8_t irql) { poolsim__thread_tls.head.irql = irql; }

uint64_t poolsim__prim_now_ns(void)
{
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (uint64_t)((double)c.QuadPart * 1e9 / (double)f.QuadPart);
}

uint64_t poolsim__prim_entropy(void)
{
    uint64_t v = poolsim__prim_now_ns() ^ ((uint64_t)GetCurrentProcessId() << 32) ^ (uint64_t)(uintptr_t)&v;
    return v ^ (uint64_t)GetTickCount64() * 0x9E3779B97F4A7C15ull;
}

void poolsim__prim_write(const char *text)
{
    fputs(text, stderr);
    OutputDebugStringA(text);
}

long poolsim__prim_getenv(const char *name, char *buf, size_t cap)
{
    DWORD n = GetEnvironmentVariableA(name, buf, (DWORD)cap);
    if (n == 0 || !cap)
        return -1;
    if (n >= cap) { /* too long: n is the size needed, with the NUL */
        buf[0] = '\0';
        return (long)n - 1;
    }
    return (long)n;
}

void poolsim__prim_stop(unsigned long code, const uintptr_t param[4])
{
    (void)code;
    (void)param;
    fflush(stderr);
    abort();
}

void poolsim__prim_debug_break(void)
{
    if (IsDebuggerPresent())
        DebugBreak();
}

/* ---- Access-fault trap ------------------------------------------------------ */

#if WIN_HAVE_TRAP

#define WIN_EFLAGS_TF 0x100 /* the trap flag: one instruction, then EXCEPTION_SINGLE_STEP */

typedef VOID(NTAPI *win_restore_fn)(PCONTEXT, PEXCEPTION_RECORD);

static poolsim__prim_fault_fn *volatile win_on_fault;
static poolsim__prim_report_fn *volatile win_on_report;
static poolsim__prim_step_fn *volatile win_on_step;
static win_restore_fn win_restore;
static PVOID win_veh_handle;
static SRWLOCK win_trap_lock = SRWLOCK_INIT;

/* A fault being reported, and the context to resume it in. */
static __thread struct {
    CONTEXT ctx;
    poolsim__prim_fault fault;
    int stepping; /* a single step of ours is pending on this thread */
} win_trap;

/* Runs on the faulting thread's own stack, as if the faulting instruction
 * had called it (its return address is that instruction, so an unwinder, and
 * a longjmp through it, see a normal call chain). When the report returns,
 * the faulting context is restored: the instruction runs again and the core
 * lets it through. */
__attribute__((force_align_arg_pointer, noinline, used)) static void win_trampoline(void)
{
    CONTEXT ctx = win_trap.ctx; /* a report that faults itself must not overwrite it */
    poolsim__prim_fault f = win_trap.fault;
    win_on_report(&f);
    win_restore(&ctx, NULL);
    abort(); /* RtlRestoreContext does not return */
}

static LONG CALLBACK win_veh(PEXCEPTION_POINTERS ep)
{
    PEXCEPTION_RECORD er = ep->ExceptionRecord;
    PCONTEXT c = ep->ContextRecord;
    poolsim__prim_fault_fn *on_fault = win_on_fault;
    if (er->ExceptionCode == EXCEPTION_ACCESS_VIOLATION && on_fault && er->NumberParameters >= 2) {
        poolsim__prim_fault f;
        ULONG_PTR kind = er->ExceptionInformation[0]; /* 0 read, 1 write, 8 execute (DEP) */
        f.addr = (uintptr_t)er->ExceptionInformation[1];
        f.ip = (uintptr_t)c->Rip;
        f.access = kind == 1 ? 1u : kind == 8 ? 8u : 0u;
        unsigned act = on_fault(&f);
        if (act == POOLSIM__TRAP_REPORT) {
            DWORD64 rsp = c->Rsp - sizeof(DWORD64);
            win_trap.stepping =
                0; /* a step pending for the same instruction ends (the core closes its pages) */
            c->EFlags &= ~(DWORD)WIN_EFLAGS_TF;
            win_trap.ctx = *c;
            win_trap.ctx.ContextFlags = CONTEXT_FULL; /* not the debug registers: Wine refuses those */
            win_trap.fault = f;
            *(DWORD64 *)(uintptr_t)rsp = c->Rip; /* the trampoline's return address */
            c->Rsp = rsp;
            c->Rip = (DWORD64)(uintptr_t)win_trampoline;
            return EXCEPTION_CONTINUE_EXECUTION;
        }
        if (act == POOLSIM__TRAP_STEP) {
            c->EFlags |= WIN_EFLAGS_TF;
            win_trap.stepping = 1;
            return EXCEPTION_CONTINUE_EXECUTION;
        }
        return EXCEPTION_CONTINUE_SEARCH;
    }
    if (er->ExceptionCode == EXCEPTION_SINGLE_STEP && win_trap.stepping) {
        win_trap.stepping = 0;
        c->EFlags &= ~(DWORD)WIN_EFLAGS_TF;
        win_on_step();
        return EXCEPTION_CONTINUE_EXECUTION;
    }
    return EXCEPTION_CONTINUE_SEARCH; /* the handlers installed before ours get it */
}

bool poolsim__prim_trap_install(poolsim__prim_fault_fn *on_fault, poolsim__prim_report_fn *on_report,
                                poolsim__prim_step_fn *on_step)
{
    bool ok;
    AcquireSRWLockExclusive(&win_trap_lock);
    if (!win_restore) {
        HMODULE ntdll = GetModuleHandleA("ntdll.dll");
        win_restore = ntdll ? (win_restore_fn)(void (*)(void))GetProcAddress(ntdll, "RtlRestoreContext") : NULL;
    }
    win_on_report = on_report;
    win_on_step = on_step;
    win_on_fault = on_fault;
    if (win_restore && !win_veh_handle)
        win_veh_handle = AddVectoredExceptionHandler(1, win_veh);
    ok = win_restore && win_veh_handle;
    ReleaseSRWLockExclusive(&win_trap_lock);
    return ok;
}

#else

bool poolsim__prim_trap_install(poolsim__prim_fault_fn *on_fault, poolsim__prim_report_fn *on_report,
                                poolsim__prim_step_fn *on_step)
{
    (void)on_fault;
    (void)on_report;
    (void)on_step;
    return false;
}

#endif
