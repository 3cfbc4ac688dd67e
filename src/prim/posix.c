/* SPDX-License-Identifier: MIT */
/*
 * posix.c — the platform layer on Linux and other POSIX systems: mmap for
 * pages, calloc for records, pthread mutexes, a thread-local simulated IRQL
 * and per-thread block, stderr for output and abort() to stop, and on x86
 * Linux the access-fault trap of Force IRQL checking (SIGSEGV, single step
 * with the trap flag, SIGTRAP). Contracts are in prim.h.
 */
#define _GNU_SOURCE
#include "prim.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__) && (defined(__x86_64__) || defined(__i386__))
#include <ucontext.h>
#define POSIX_HAVE_TRAP 1 /* the fault context has the error code and the trap flag */
#else
#define POSIX_HAVE_TRAP 0
#endif

unsigned poolsim__prim_caps(void)
{
    return POOLSIM__CAP_PAGE_PROTECT | POOLSIM__CAP_ENVIRONMENT | POOLSIM__CAP_SIM_IRQL |
           (POSIX_HAVE_TRAP ? POOLSIM__CAP_FAULT_TRAP : 0u);
}

/* A mapping made no-access is not charged to the commit limit until a page of it becomes writable, and
 * such a page, once written, stays charged when it is closed again. Linux merges neighbouring mappings only when their
 * flags are the same, charge included, so a page of the special-pool region, once opened and closed,
 * stays a mapping of its own: opening it again changes one mapping's protection instead of splitting
 * the region's mapping in three and merging it back at the close (about half of the two mprotect calls
 * measured). A region mapped read-write and then closed is charged all over, and splits and merges at
 * every open and close. */
void *poolsim__prim_pages_map(size_t bytes, unsigned prot)
{
    void *p = mmap(NULL, bytes, prot == POOLSIM__PROT_NONE ? PROT_NONE : PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void poolsim__prim_pages_unmap(void *p, size_t bytes) { munmap(p, bytes); }

bool poolsim__prim_pages_protect(void *p, size_t bytes, unsigned prot)
{
    return mprotect(p, bytes, prot == POOLSIM__PROT_NONE ? PROT_NONE : PROT_READ | PROT_WRITE) == 0;
}

void *poolsim__prim_meta_alloc(size_t bytes) { return calloc(1, bytes ? bytes : 1); }

void poolsim__prim_meta_free(void *p, size_t bytes)
{
    (void)bytes;
    free(p);
}

/* A test-and-test-and-set spin lock: poolsim's critical sections are a few
 * dozen instructions, where a mutex's bookkeeping costs more than the wait.
 * A waiter that spins long gives the processor away (the holder may be
 * descheduled, or in a system call: a chunk being mapped). */
static int *posix_lock_word(poolsim__prim_lock *l) { return (int *)(void *)l; }

void poolsim__prim_lock_init(poolsim__prim_lock *l)
{
    __atomic_store_n(posix_lock_word(l), 0, __ATOMIC_RELEASE);
}
void poolsim__prim_lock_destroy(poolsim__prim_lock *l) { (void)l; }

static __thread uint32_t posix_tid;
static __thread uint32_t posix_locks; /* poolsim__prim_lock locks this thread holds */

/* The core's per-thread block (prim.h); its first byte is the simulated IRQL. */
__thread poolsim__thread_block poolsim__thread_tls __attribute__((aligned(16)));

/* The wait, out of line: the uncontended acquire is the exchange, a test and the count. */
static __attribute__((noinline)) void posix_lock_wait(int *w)
{
    unsigned spins = 0;
    do {
        while (__atomic_load_n(w, __ATOMIC_RELAXED) != 0) {
            if (++spins % 128u == 0)
                sched_yield();
#if defined(__x86_64__) || defined(__i386__)
            else
                __builtin_ia32_pause();
#endif
        }
    } while (__atomic_exchange_n(w, 1, __ATOMIC_ACQUIRE) != 0);
}

void poolsim__prim_lock_acquire(poolsim__prim_lock *l)
{
    int *w = posix_lock_word(l);
    if (__atomic_exchange_n(w, 1, __ATOMIC_ACQUIRE) != 0)
        posix_lock_wait(w);
    posix_locks++;
}

void poolsim__prim_lock_release(poolsim__prim_lock *l)
{
    posix_locks--;
    __atomic_store_n(posix_lock_word(l), 0, __ATOMIC_RELEASE);
}

uint32_t poolsim__prim_locks_held(void) { return posix_locks; }

void poolsim__prim_yield(void) { sched_yield(); }

uint32_t poolsim__prim_thread_id(void)
{
    if (!posix_tid) {
#ifdef SYS_gettid
        posix_tid = (uint32_t)syscall(SYS_gettid);
#else
        static uint32_t next;
        posix_tid = __atomic_add_fetch(&next, 1, __ATOMIC_RELAXED);
#endif
    }
    return posix_tid;
}

uint8_t poolsim__prim_irql_get(void) { return poolsim__thread_tls.head.irql; }
void poolsim__prim_irql_set(uint8_t irql) { poolsim__thread_tls.head.irql = irql; }

uint64_t poolsim__prim_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t poolsim__prim_entropy(void)
{
    uint64_t v = poolsim__prim_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&v;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        uint64_t r;
        if (fread(&r, sizeof r, 1, f) == 1)
            v ^= r;
        fclose(f);
    }
    return v;
}

void poolsim__prim_write(const char *text) { fputs(text, stderr); }

long poolsim__prim_getenv(const char *name, char *buf, size_t cap)
{
    const char *v = getenv(name);
    if (!v || !*v || !cap)
        return -1;
    size_t n = strlen(v);
    size_t k = n < cap ? n : cap - 1;
    memcpy(buf, v, k);
    buf[k] = '\0';
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
    /* Only when a debugger is attached would SIGTRAP be caught; checking
     * TracerPid keeps an unattached process from dying. */
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    bool traced = false;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "TracerPid:", 10) == 0)
            traced = atoi(line + 10) != 0;
    if (f)
        fclose(f);
    if (traced)
        raise(SIGTRAP);
}

/* ---- Access-fault trap ------------------------------------------------------ */

#if POSIX_HAVE_TRAP

#if defined(__x86_64__)
#define POSIX_REG_IP REG_RIP
#else
#define POSIX_REG_IP REG_EIP
#endif
#define POSIX_EFLAGS_TF 0x100 /* the trap flag: one instruction, then SIGTRAP */
#define POSIX_PF_WRITE 0x2    /* page-fault error code: the access was a write */
#define POSIX_PF_FETCH 0x10   /* page-fault error code: an instruction fetch */

static poolsim__prim_fault_fn *volatile posix_on_fault;
static poolsim__prim_report_fn *volatile posix_on_report;
static poolsim__prim_step_fn *volatile posix_on_step;
static struct sigaction posix_prev_segv, posix_prev_bus, posix_prev_trap;
static pthread_mutex_t posix_trap_mutex = PTHREAD_MUTEX_INITIALIZER;
static __thread int posix_stepping; /* a single step of ours is pending on this thread */

/* Hands a signal poolsim does not claim to the handler that was there
 * before. With none, the default action: a fault returns and faults again
 * (the core dump shows the faulting instruction), anything else is raised
 * again. */
static void posix_chain(const struct sigaction *prev, int sig, siginfo_t *si, void *uc)
{
    if ((prev->sa_flags & SA_SIGINFO) && prev->sa_sigaction) {
        prev->sa_sigaction(sig, si, uc);
        return;
    }
    if (!(prev->sa_flags & SA_SIGINFO) && prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
        return;
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    if (sig == SIGTRAP || si->si_code <= 0)
        raise(sig);
}

static void posix_on_segv(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = (ucontext_t *)ucv;
    int saved_errno = errno;
    poolsim__prim_fault f;
    poolsim__prim_fault_fn *on_fault = posix_on_fault;
    unsigned act = POOLSIM__TRAP_PASS;
    f.addr = (uintptr_t)si->si_addr;
    f.ip = (uintptr_t)uc->uc_mcontext.gregs[POSIX_REG_IP];
    f.access = (uc->uc_mcontext.gregs[REG_ERR] & POSIX_PF_FETCH)   ? 8u
               : (uc->uc_mcontext.gregs[REG_ERR] & POSIX_PF_WRITE) ? 1u
                                                                   : 0u;
    if (sig == SIGSEGV && on_fault)
        act = on_fault(&f);
    if (act == POOLSIM__TRAP_REPORT) {
        /* A step pending for the same instruction ends here (the core closes its pages). */
        posix_stepping = 0;
        uc->uc_mcontext.gregs[REG_EFL] &= ~POSIX_EFLAGS_TF;
        posix_on_report(&f); /* may longjmp out: SA_NODEFER left nothing blocked */
        act = on_fault(&f);
    }
    if (act == POOLSIM__TRAP_STEP) {
        uc->uc_mcontext.gregs[REG_EFL] |= POSIX_EFLAGS_TF;
        posix_stepping = 1;
        errno = saved_errno;
        return;
    }
    errno = saved_errno;
    posix_chain(sig == SIGBUS ? &posix_prev_bus : &posix_prev_segv, sig, si, ucv);
}

static void posix_on_trap(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = (ucontext_t *)ucv;
    if (!posix_stepping) {
        posix_chain(&posix_prev_trap, sig, si, ucv);
        return;
    }
    int saved_errno = errno;
    posix_stepping = 0;
    uc->uc_mcontext.gregs[REG_EFL] &= ~POSIX_EFLAGS_TF;
    posix_on_step();
    errno = saved_errno;
}

/* Makes `handler` the handler of sig unless it already is; what it replaces
 * becomes the handler to chain to. */
static bool posix_claim(int sig, void (*handler)(int, siginfo_t *, void *), struct sigaction *prev)
{
    struct sigaction cur, sa;
    if (sigaction(sig, NULL, &cur) != 0)
        return false;
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == handler)
        return true;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
    sa.sa_sigaction = handler;
    if (sigaction(sig, &sa, &cur) != 0)
        return false;
    *prev = cur;
    return true;
}

/* Called before every protection change: a test framework (cmocka installs
 * its own SIGSEGV handler around each test and puts the old one back after)
 * may have replaced the handlers since the last call. */
bool poolsim__prim_trap_install(poolsim__prim_fault_fn *on_fault, poolsim__prim_report_fn *on_report,
                                poolsim__prim_step_fn *on_step)
{
    bool ok;
    struct sigaction cur;
    /* The common case, one system call: the SIGSEGV handler is still ours, so
     * nobody replaced the set (frameworks replace SIGSEGV with the others). */
    if (posix_on_fault == on_fault && sigaction(SIGSEGV, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
        cur.sa_sigaction == posix_on_segv)
        return true;
    pthread_mutex_lock(&posix_trap_mutex);
    posix_on_report = on_report;
    posix_on_step = on_step;
    posix_on_fault = on_fault;
    ok = posix_claim(SIGSEGV, posix_on_segv, &posix_prev_segv) &&
         posix_claim(SIGBUS, posix_on_segv, &posix_prev_bus) &&
         posix_claim(SIGTRAP, posix_on_trap, &posix_prev_trap);
    pthread_mutex_unlock(&posix_trap_mutex);
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
