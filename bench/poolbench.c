/* SPDX-License-Identifier: MIT */
/*
 * poolbench.c — prices poolsim's features against the plain allocator,
 * measured in the same run.
 *
 * Each workload runs once per mode, best of --runs; a mode switches one more
 * feature on than the one before it:
 *   malloc      the C library's malloc/free (the baseline)
 *   tags        poolsim with per-tag counters only (guards, sites, quarantine off)
 *   +guards     and canary headers, footers and slack
 *   +sites      and file:line call-site capture (the default configuration
 *               without quarantine)
 *   +quarantine and the double-free quarantine (poolsim's defaults)
 * The IRQL workloads (irql, spinlock) have modes of their own, baseline first:
 *   bare-lock   an uncontended atomic-exchange spin lock: acquire + release
 *   os-mutex    the platform's mutex: pthread_mutex (POSIX), SRW lock (Windows)
 *   poolsim     the simulated IRQL and spin locks (force_irql off)
 *   +forceirql  Force IRQL checking on, one paged chunk: every raise from
 *               PASSIVE_LEVEL protects it and every lower lifts the protection
 *   +fi-held    the same while another thread stays at DISPATCH_LEVEL, so the
 *               protection stays applied and a raise only counts itself
 * Output: a table (ns per operation, ratio to the first mode, poolsim bytes
 * per live block) and, with --json FILE, the same as JSON. See bench/README.md.
 */
#define _POSIX_C_SOURCE 200809L
#include <poolsim/wdm.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifndef _WIN32
#include <pthread.h>
#endif

#define TAG 'hcnB'

/* ---- Allocators --------------------------------------------------------- */

/* What a mode runs on. */
#define K_MALLOC 0 /* the C library */
#define K_POOL 1   /* poolsim */
#define K_BARE 2   /* a bare atomic-exchange spin lock */
#define K_OSMUTEX 3 /* pthread_mutex / SRW lock */

typedef struct mode {
    const char *name;
    bool pool;
    uint32_t guards, sites;
    uint64_t quarantine;
    int kind;
    uint32_t force_irql; /* K_POOL: Force IRQL checking, with one paged block allocated */
    bool held;           /* and another thread at DISPATCH_LEVEL for the whole run */
} mode;

static const mode modes[] = {
    {"malloc", false, 0, 0, 0, K_MALLOC, 0, false},  {"tags", true, 0, 0, 0, K_POOL, 0, false},
    {"+guards", true, 1, 0, 0, K_POOL, 0, false},    {"+sites", true, 1, 1, 0, K_POOL, 0, false},
    {"+quarantine", true, 1, 1, 1, K_POOL, 0, false},
};
#define NMODES (sizeof modes / sizeof modes[0])

static const mode lock_modes[] = {
    {"bare-lock", false, 0, 0, 0, K_BARE, 0, false}, {"os-mutex", false, 0, 0, 0, K_OSMUTEX, 0, false},
    {"poolsim", true, 1, 1, 1, K_POOL, 0, false},    {"+forceirql", true, 1, 1, 1, K_POOL, 1, false},
    {"+fi-held", true, 1, 1, 1, K_POOL, 1, true},
};
#define NLOCK_MODES (sizeof lock_modes / sizeof lock_modes[0])

static const mode *cur;

static void *bench_alloc(size_t n)
{
    return cur->pool ? ExAllocatePoolWithTag(NonPagedPoolNx, n, TAG) : malloc(n);
}

static void bench_free(void *p)
{
    if (cur->pool)
        ExFreePoolWithTag(p, TAG);
    else
        free(p);
}

/* ---- Deterministic randomness (xorshift) ------------------------------------ */

static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ---- Workloads ---------------------------------------------------------- */

typedef struct result {
    double ns_per_op;
    double meta_per_block, arena_per_block;
} result;

static size_t g_ops = 2000000;

#ifdef _WIN32
/* <windows.h> cannot be mixed with <wdm.h> (as in a driver): declare the calls. */
__declspec(dllimport) int __stdcall QueryPerformanceCounter(long long *count);
__declspec(dllimport) int __stdcall QueryPerformanceFrequency(long long *frequency);
__declspec(dllimport) void __stdcall AcquireSRWLockExclusive(void **lock);
__declspec(dllimport) void __stdcall ReleaseSRWLockExclusive(void **lock);
__declspec(dllimport) void *__stdcall CreateThread(void *, size_t, unsigned long(__stdcall *)(void *), void *,
                                                   unsigned long, unsigned long *);
__declspec(dllimport) unsigned long __stdcall WaitForSingleObject(void *, unsigned long);
__declspec(dllimport) int __stdcall CloseHandle(void *);
__declspec(dllimport) void __stdcall Sleep(unsigned long);
#endif

static double now_ns(void)
{
#ifdef _WIN32
    long long f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c * 1e9 / (double)f;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
#endif
}

static void measure_live(result *r, size_t live)
{
    poolsim_stats s;
    poolsim_get_stats(&s);
    if (cur->pool && live) {
        r->meta_per_block = (double)s.meta_bytes / (double)live;
        r->arena_per_block = (double)s.arena_bytes / (double)live;
    }
}

/* pair64: allocate 64 bytes and free them, over and over. */
static void wl_pair64(result *r)
{
    double t0 = now_ns();
    for (size_t i = 0; i < g_ops; i++) {
        void *p = bench_alloc(64);
        *(volatile char *)p = 1;
        bench_free(p);
    }
    r->ns_per_op = (now_ns() - t0) / (double)g_ops;
}

/* live10k and friends: `live` blocks of 16..4096 bytes, one replaced at random per op. */
static void wl_live(result *r, size_t live, size_t max)
{
    void **slots = calloc(live, sizeof *slots);
    rng_state = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < live; i++)
        slots[i] = bench_alloc(16 + rng() % (max - 15));
    measure_live(r, live);
    double t0 = now_ns();
    for (size_t i = 0; i < g_ops; i++) {
        size_t k = rng() % live;
        bench_free(slots[k]);
        slots[k] = bench_alloc(16 + rng() % (max - 15));
        *(volatile char *)slots[k] = 1;
    }
    r->ns_per_op = (now_ns() - t0) / (double)g_ops;
    for (size_t i = 0; i < live; i++)
        bench_free(slots[i]);
    free(slots);
}

static void wl_live10k(result *r) { wl_live(r, 10000, 4096); }

/* big: page-sized and larger blocks (4 KiB .. 64 KiB), 1000 live. */
static void wl_big(result *r)
{
    size_t ops = g_ops;
    g_ops /= 20;
    wl_live(r, 1000, 65536);
    g_ops = ops;
}

/* ---- IRQL workloads: one op is a pair, on the mode's lock -------------------- */

static uintptr_t g_bare; /* the bare lock's word */
#ifdef _WIN32
static void *g_srw;
#else
static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
#endif

static inline void bare_acquire(void)
{
    while (__atomic_exchange_n(&g_bare, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&g_bare, __ATOMIC_RELAXED))
            ;
}
static inline void bare_release(void) { __atomic_store_n(&g_bare, 0, __ATOMIC_RELEASE); }

/* The baselines the IRQL workloads compare against: an uncontended lock pair. */
static bool lock_baseline(result *r)
{
    double t0;
    if (cur->kind == K_BARE) {
        t0 = now_ns();
        for (size_t i = 0; i < g_ops; i++) {
            bare_acquire();
            bare_release();
        }
    } else if (cur->kind == K_OSMUTEX) {
        t0 = now_ns();
        for (size_t i = 0; i < g_ops; i++) {
#ifdef _WIN32
            AcquireSRWLockExclusive(&g_srw);
            ReleaseSRWLockExclusive(&g_srw);
#else
            pthread_mutex_lock(&g_mutex);
            pthread_mutex_unlock(&g_mutex);
#endif
        }
    } else {
        return false;
    }
    r->ns_per_op = (now_ns() - t0) / (double)g_ops;
    return true;
}

/* Operations of an IRQL workload: +forceirql changes page protections on every op (microseconds), so it
 * runs a thousandth of them. */
static size_t lock_ops(void)
{
    size_t n = cur->force_irql && !cur->held ? g_ops / 1000 : g_ops;
    return n ? n : 1;
}

/* irql: KeRaiseIrql(DISPATCH_LEVEL) + KeLowerIrql from PASSIVE_LEVEL. */
static void wl_irql(result *r)
{
    if (lock_baseline(r))
        return;
    size_t n = lock_ops();
    double t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        KIRQL old;
        KeRaiseIrql(DISPATCH_LEVEL, &old);
        KeLowerIrql(old);
    }
    r->ns_per_op = (now_ns() - t0) / (double)n;
}

/* spinlock: KeAcquireSpinLock + KeReleaseSpinLock from PASSIVE_LEVEL, uncontended. */
static void wl_spinlock(result *r)
{
    if (lock_baseline(r))
        return;
    size_t n = lock_ops();
    KSPIN_LOCK lock;
    KeInitializeSpinLock(&lock);
    double t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        KIRQL old;
        KeAcquireSpinLock(&lock, &old);
        KeReleaseSpinLock(&lock, old);
    }
    r->ns_per_op = (now_ns() - t0) / (double)n;
}

/* +fi-held: a thread that sits at DISPATCH_LEVEL while the workload runs. */
static int g_held_state; /* 1: raised; 2: stop */

#ifdef _WIN32
static unsigned long __stdcall held_thread(void *arg)
#else
static void *held_thread(void *arg)
#endif
{
    KIRQL old;
    (void)arg;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    __atomic_store_n(&g_held_state, 1, __ATOMIC_RELEASE);
    while (__atomic_load_n(&g_held_state, __ATOMIC_ACQUIRE) != 2) {
#ifdef _WIN32
        Sleep(1);
#else
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
#endif
    }
    KeLowerIrql(old);
    return 0;
}

typedef struct workload {
    const char *name;
    const char *what;
    void (*run)(result *r);
    const mode *modes; /* the first is the baseline */
    size_t nmodes;
} workload;

static const workload workloads[] = {
    {"pair64", "ExAllocatePoolWithTag(64) + ExFreePoolWithTag", wl_pair64, modes, NMODES},
    {"live10k", "10k live blocks of 16..4096 B, one replaced at random per op", wl_live10k, modes, NMODES},
    {"big", "1000 live blocks of 16 B..64 KiB, one replaced per op", wl_big, modes, NMODES},
    {"irql", "KeRaiseIrql(DISPATCH_LEVEL) + KeLowerIrql from PASSIVE_LEVEL", wl_irql, lock_modes, NLOCK_MODES},
    {"spinlock", "KeAcquireSpinLock + KeReleaseSpinLock from PASSIVE_LEVEL, uncontended", wl_spinlock, lock_modes,
     NLOCK_MODES},
};
#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

/* ---- Driver -------------------------------------------------------------- */

static bool run_mode(const workload *w, const mode *m, int runs, result *best)
{
    cur = m;
    memset(best, 0, sizeof *best);
    for (int i = 0; i < runs; i++) {
        result r = {0};
        if (m->pool) {
            poolsim_options o;
            poolsim_options_default(&o);
            o.guards = m->guards;
            o.track_sites = m->sites;
            o.fill_uninit = 0; /* malloc does not fill either */
            o.quarantine_bytes = m->quarantine ? o.quarantine_bytes : 0;
            o.nonpaged_limit = 0;
            o.force_irql = m->force_irql;
            if (poolsim_init(&o) != POOLSIM_OK)
                return false;
        }
        /* Force IRQL checking protects paged pool: give it one chunk to protect. */
        void *paged = m->force_irql ? ExAllocatePoolWithTag(PagedPool, 64, TAG) : NULL;
#ifdef _WIN32
        void *held = NULL;
#else
        pthread_t held;
#endif
        if (m->held) {
            __atomic_store_n(&g_held_state, 0, __ATOMIC_RELEASE);
#ifdef _WIN32
            held = CreateThread(NULL, 0, held_thread, NULL, 0, NULL);
#else
            pthread_create(&held, NULL, held_thread, NULL);
#endif
            while (__atomic_load_n(&g_held_state, __ATOMIC_ACQUIRE) != 1)
                ;
        }
        w->run(&r);
        if (m->held) {
            __atomic_store_n(&g_held_state, 2, __ATOMIC_RELEASE);
#ifdef _WIN32
            WaitForSingleObject(held, 0xFFFFFFFFu);
            CloseHandle(held);
#else
            pthread_join(held, NULL);
#endif
        }
        if (paged)
            ExFreePoolWithTag(paged, TAG);
        if (m->pool && poolsim_shutdown() != 0)
            return false;
        if (i == 0 || r.ns_per_op < best->ns_per_op)
            *best = r;
    }
    return true;
}

int main(int argc, char **argv)
{
    const char *json = NULL, *only_mode = NULL;
    int runs = 3;
    bool selected[NWORKLOADS] = {false}, any = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--list")) {
            for (size_t k = 0; k < NWORKLOADS; k++)
                printf("%-10s %s\n", workloads[k].name, workloads[k].what);
            return 0;
        } else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
            json = argv[++i];
        } else if (!strcmp(argv[i], "--ops") && i + 1 < argc) {
            g_ops = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
            only_mode = argv[++i];
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else {
            size_t k = 0;
            while (k < NWORKLOADS && strcmp(argv[i], workloads[k].name))
                k++;
            if (k == NWORKLOADS) {
                fprintf(stderr, "usage: %s [--list] [--ops N] [--runs R] [--mode NAME] [--json FILE] [workload...]\n",
                        argv[0]);
                return 2;
            }
            selected[k] = any = true;
        }
    }
    if (g_ops == 0 || runs < 1) {
        fprintf(stderr, "poolbench: --ops and --runs must be positive\n");
        return 2;
    }
    FILE *js = json ? fopen(json, "w") : NULL;
    if (json && !js) {
        perror(json);
        return 1;
    }
    if (js)
        fprintf(js, "{\"ops\":%zu,\"runs\":%d,\"results\":[", g_ops, runs);
    printf("%-10s %-12s %10s %8s %12s %12s\n", "workload", "mode", "ns/op", "ratio", "meta B/blk",
           "pages B/blk");
    bool first = true;
    for (size_t k = 0; k < NWORKLOADS; k++) {
        if (any && !selected[k])
            continue;
        double base = 0;
        for (size_t m = 0; m < workloads[k].nmodes; m++) {
            const mode *md = &workloads[k].modes[m];
            result r;
            if (m > 0 && only_mode && strcmp(only_mode, md->name))
                continue; /* the baseline (the first mode) always runs */
            if (!run_mode(&workloads[k], md, runs, &r)) {
                fprintf(stderr, "poolbench: %s/%s failed\n", workloads[k].name, md->name);
                return 1;
            }
            if (m == 0)
                base = r.ns_per_op;
            printf("%-10s %-12s %10.1f %7.2fx %12.1f %12.1f\n", workloads[k].name, md->name, r.ns_per_op,
                   r.ns_per_op / base, r.meta_per_block, r.arena_per_block);
            if (js)
                fprintf(js,
                        "%s{\"workload\":\"%s\",\"mode\":\"%s\",\"ns_per_op\":%.2f,\"ratio\":%.3f,"
                        "\"meta_bytes_per_block\":%.1f,\"page_bytes_per_block\":%.1f}",
                        first ? "" : ",", workloads[k].name, md->name, r.ns_per_op, r.ns_per_op / base,
                        r.meta_per_block, r.arena_per_block);
            first = false;
        }
    }
    if (js) {
        fprintf(js, "]}\n");
        fclose(js);
    }
    return 0;
}
