/* SPDX-License-Identifier: MIT */
/*
 * poolbench.c — prices poolsim's features against the plain allocator,
 * measured in the same run: named workloads (--list), modes that switch one
 * feature on at a time, fixed seeds, best of --runs (in rounds over the modes), a table and JSON / TSV,
 * and the targets issue #7 sets, each with PASS or MISS.
 *
 * The allocation workloads run these modes, each with one more feature than
 * the one before it:
 *   malloc      the C library's malloc/free (the baseline)
 *   tags        poolsim with per-tag counters only (guards, sites, quarantine off)
 *   +guards     and canary headers, footers and slack
 *   +sites      and file:line call-site capture
 *   +quarantine and the double-free quarantine (poolsim's defaults)
 *   +special    and special pool for 1 allocation in 1000 (special_pool_sample)
 *   +forceirql  and Force IRQL checking, with one paged block to protect
 * and pair64 and live10k also the floor model (floor.c), which is not poolsim
 * but what the +sites mode's rules cost written straight:
 *   floor
 * The lookup workload compares poolsim_find_block and poolsim_valid_access
 * with the loop that only picks the address; the IRQL workloads (irql,
 * spinlock) compare the simulated IRQL with an uncontended lock pair.
 *
 * On POSIX each run is a child process (fork), so every figure, the peak RSS
 * included, belongs to one mode alone. See bench/README.md for each figure.
 */
#define _POSIX_C_SOURCE 200809L
#include <poolsim/wdm.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifndef _WIN32
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#endif
#if defined(__SANITIZE_ADDRESS__)
#define BENCH_ASAN 1 /* gcc's -fsanitize=address */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BENCH_ASAN 1 /* clang's */
#endif
#endif
/* glibc's heap statistics; not under ASan, whose allocator glibc does not see. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33) && !defined(BENCH_ASAN)
#include <malloc.h>
#define HAVE_MALLINFO2 1
#endif

/* The tests' portable threads, with their two assertions mapped onto the bench's failure path. */
static void die(const char *what);
#define assert_non_null(p) ((p) ? (void)0 : die("CreateThread"))
#define assert_int_equal(a, b) ((a) == (b) ? (void)0 : die("pthread_create"))
#include "../tests/threads.h"
#include "floor.h"

#define TAG 'hcnB'

static void die(const char *what)
{
    fprintf(stderr, "poolbench: %s failed\n", what);
    exit(1);
}

/* ---- Modes ---------------------------------------------------------------- */

#define K_MALLOC 0  /* the C library */
#define K_POOL 1    /* poolsim */
#define K_BARE 2    /* a bare atomic-exchange spin lock */
#define K_OSMUTEX 3 /* pthread_mutex / SRW lock */
#define K_FLOOR 4   /* the floor model (floor.c) */

#define L_NONE 0  /* lookup: only pick the address and read it */
#define L_FIND 1  /* poolsim_find_block */
#define L_VALID 2 /* poolsim_valid_access */

typedef struct mode {
    const char *name;
    int kind;
    uint8_t guards, sites, quarantine, force_irql;
    uint8_t held;     /* another thread at DISPATCH_LEVEL for the whole run */
    uint8_t lookup;   /* L_*: what the lookup workload calls */
    uint32_t special; /* special_pool_sample: 1 in N allocations to special pool (0: off) */
} mode;

#define SPECIAL_SAMPLE 1000u

/* The mode with every feature on: what the ASan comparison uses. */
#define ALL_FEATURES "+forceirql"

/* clang-format off */
#define ALLOC_MODES                                                     \
    {"malloc", K_MALLOC, 0, 0, 0, 0, 0, L_NONE, 0},                     \
    {"tags", K_POOL, 0, 0, 0, 0, 0, L_NONE, 0},                         \
    {"+guards", K_POOL, 1, 0, 0, 0, 0, L_NONE, 0},                      \
    {"+sites", K_POOL, 1, 1, 0, 0, 0, L_NONE, 0},                       \
    {"+quarantine", K_POOL, 1, 1, 1, 0, 0, L_NONE, 0},                  \
    {"+special", K_POOL, 1, 1, 1, 0, 0, L_NONE, SPECIAL_SAMPLE},        \
    {ALL_FEATURES, K_POOL, 1, 1, 1, 1, 0, L_NONE, SPECIAL_SAMPLE}
/* clang-format on */

static const mode alloc_modes[] = {ALLOC_MODES};
/* pair64 and live10k also run the floor model: the +sites mode's work written straight (floor.c). */
static const mode floor_modes[] = {ALLOC_MODES, {"floor", K_FLOOR, 1, 1, 0, 0, 0, L_NONE, 0}};

static const mode lookup_modes[] = {
    {"no-lookup", K_POOL, 1, 1, 1, 0, 0, L_NONE, 0},
    {"find_block", K_POOL, 1, 1, 1, 0, 0, L_FIND, 0},
    {"valid_access", K_POOL, 1, 1, 1, 0, 0, L_VALID, 0},
};

static const mode lock_modes[] = {
    {"bare-lock", K_BARE, 0, 0, 0, 0, 0, L_NONE, 0}, {"os-mutex", K_OSMUTEX, 0, 0, 0, 0, 0, L_NONE, 0},
    {"poolsim", K_POOL, 1, 1, 1, 0, 0, L_NONE, 0},   {"+forceirql", K_POOL, 1, 1, 1, 1, 0, L_NONE, 0},
    {"+fi-held", K_POOL, 1, 1, 1, 1, 1, L_NONE, 0},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_MODES 8 /* the most modes a workload has: the results table's width */
typedef char modes_fit[COUNT(floor_modes) <= MAX_MODES && COUNT(lock_modes) <= MAX_MODES ? 1 : -1];

/* False when this build of poolsim cannot run the mode. */
static bool mode_available(const mode *m)
{
#ifdef POOLSIM_HAS_SPECIAL_POOL
    (void)m;
    return true;
#else
    return m->special == 0 || m->force_irql; /* +forceirql runs, without the sampling */
#endif
}

static const mode *cur;

static void *bench_alloc(size_t n)
{
    void *p = cur->kind == K_POOL    ? ExAllocatePoolWithTag(NonPagedPoolNx, n, TAG)
              : cur->kind == K_FLOOR ? floor_alloc(NonPagedPoolNx, n, TAG, __FILE__, __LINE__)
                                     : malloc(n);
    if (!p)
        die("an allocation");
    return p;
}

static void bench_free(void *p)
{
    if (cur->kind == K_POOL) {
        ExFreePoolWithTag(p, TAG);
    } else if (cur->kind == K_FLOOR) {
        if (floor_free(p, TAG, __FILE__, __LINE__) != 0)
            die("a free in the floor model");
    } else {
        free(p);
    }
}

/* ---- Settings, clock, randomness ------------------------------------------ */

static size_t g_ops = 2000000;
static size_t g_shrink = 1;
static uint64_t g_seed = 0x9E3779B97F4A7C15ull;

#ifdef _WIN32
/* <windows.h> cannot be mixed with <wdm.h> (as in a driver): declare the calls. */
__declspec(dllimport) int __stdcall QueryPerformanceCounter(long long *count);
__declspec(dllimport) int __stdcall QueryPerformanceFrequency(long long *frequency);
__declspec(dllimport) void __stdcall AcquireSRWLockExclusive(void **lock);
__declspec(dllimport) void __stdcall ReleaseSRWLockExclusive(void **lock);
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

/* xorshift64: deterministic, one state per user. */
static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* ---- Results ---------------------------------------------------------------- */

#define NA (-1.0) /* a figure the mode or workload does not have */

typedef struct result {
    double value;   /* ns per op (ms per pass for validate1m) */
    double ns_1t;   /* threads2: ns per op with one thread */
    double inband;  /* bytes per live block held beyond the request */
    double meta;    /* out-of-band bytes per live block */
    double rss_kib; /* peak resident set of the run */
    double special; /* allocations placed in special pool */
} result;

static void result_init(result *r)
{
    r->value = r->ns_1t = r->inband = r->meta = r->rss_kib = r->special = NA;
}

/* Folds run r into best: the fastest time of each kind, the largest peak RSS. */
static void result_merge(result *best, const result *r, bool first)
{
    if (first) {
        *best = *r;
        return;
    }
    if (r->value < best->value)
        best->value = r->value;
    if (r->ns_1t != NA && r->ns_1t < best->ns_1t)
        best->ns_1t = r->ns_1t;
    if (r->rss_kib > best->rss_kib)
        best->rss_kib = r->rss_kib;
}

/* ---- Live sets ---------------------------------------------------------------- */

/* n live blocks of 16..max bytes, replaced at random. The arrays come from malloc in every mode. */
typedef struct liveset {
    char **slot;
    uint32_t *size;
    size_t n, max;
    uint64_t rng;
    uint64_t requested; /* bytes requested by the live blocks */
    double heap_before; /* malloc: bytes in use before the blocks (mallinfo2), or NA */
} liveset;

static double malloc_in_use(void)
{
#ifdef HAVE_MALLINFO2
    struct mallinfo2 mi = mallinfo2();
    return (double)(mi.uordblks + mi.hblkhd);
#else
    return NA;
#endif
}

static size_t random_size(liveset *ls) { return 16 + (size_t)(rng(&ls->rng) % (ls->max - 15)); }

static void ls_build(liveset *ls, size_t n, size_t max, uint64_t seed)
{
    ls->slot = malloc(n * sizeof *ls->slot);
    ls->size = malloc(n * sizeof *ls->size);
    if (!ls->slot || !ls->size)
        die("the live set's arrays");
    ls->n = n;
    ls->max = max;
    ls->rng = seed;
    ls->requested = 0;
    ls->heap_before = malloc_in_use();
    for (size_t i = 0; i < n; i++) {
        size_t sz = random_size(ls);
        ls->slot[i] = bench_alloc(sz);
        ls->slot[i][0] = 1;
        ls->size[i] = (uint32_t)sz;
        ls->requested += sz;
    }
}

/* What the live set costs beyond its requested bytes: poolsim's pages held and out-of-band records, or
 * the C library's heap in use (glibc's chunk headers and rounding). */
static void ls_measure(const liveset *ls, result *r)
{
    double n = (double)ls->n, req = (double)ls->requested / n;
    if (cur->kind == K_POOL) {
        poolsim_stats s;
        poolsim_get_stats(&s);
        r->inband = (double)s.arena_bytes / n - req;
        r->meta = (double)s.meta_bytes / n;
    } else if (cur->kind == K_MALLOC && ls->heap_before != NA) {
        r->inband = (malloc_in_use() - ls->heap_before) / n - req;
        r->meta = 0;
    }
}

/* A DPC's IRQL: poolsim's simulated raise, or a bare lock pair where malloc stands in for a kernel. */
static uintptr_t g_bare;

static inline void bare_acquire(void)
{
    while (__atomic_exchange_n(&g_bare, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&g_bare, __ATOMIC_RELAXED))
            ;
}
static inline void bare_release(void) { __atomic_store_n(&g_bare, 0, __ATOMIC_RELEASE); }

/* ops replacements of a random block by one of a random size; with raise_every, one op in raise_every
 * runs at DISPATCH_LEVEL. */
static void ls_churn(liveset *ls, size_t ops, size_t raise_every)
{
    for (size_t i = 0; i < ops; i++) {
        bool raise = raise_every && i % raise_every == 0;
        KIRQL old = PASSIVE_LEVEL;
        if (raise && cur->kind == K_POOL)
            KeRaiseIrql(DISPATCH_LEVEL, &old);
        else if (raise)
            bare_acquire();
        size_t k = (size_t)(rng(&ls->rng) % ls->n), sz = random_size(ls);
        bench_free(ls->slot[k]);
        ls->slot[k] = bench_alloc(sz);
        ls->slot[k][0] = 1;
        ls->requested += sz - ls->size[k];
        ls->size[k] = (uint32_t)sz;
        if (raise && cur->kind == K_POOL)
            KeLowerIrql(old);
        else if (raise)
            bare_release();
    }
}

static void ls_free(liveset *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        bench_free(ls->slot[i]);
    free(ls->slot);
    free(ls->size);
}

/* ---- Workloads ------------------------------------------------------------------ */

typedef struct workload workload;
struct workload {
    const char *name;
    const char *what;
    void (*run)(const workload *w, result *r);
    const mode *modes; /* the first is the baseline */
    size_t nmodes;
    size_t live, max;   /* live blocks (before --shrink) and the largest block */
    size_t ops_div;     /* runs --ops / ops_div operations (0: --ops) */
    size_t raise_every; /* one operation in raise_every runs at DISPATCH_LEVEL (0: none) */
    int max_runs;       /* at most this many runs, whatever --runs says (0: --runs) */
    const char *unit;   /* NULL: ns/op */
    const char *group;  /* a name that selects several workloads, or NULL */
};

static const char *unit_of(const workload *w) { return w->unit ? w->unit : "ns/op"; }

static size_t live_of(const workload *w)
{
    size_t n = w->live / g_shrink;
    return n < 2 ? 2 : n;
}

/* pair64: allocate 64 bytes and free them, over and over. */
static void wl_pair64(const workload *w, result *r)
{
    (void)w;
    double t0 = now_ns();
    for (size_t i = 0; i < g_ops; i++) {
        char *p = bench_alloc(64);
        *(volatile char *)p = 1;
        bench_free(p);
    }
    r->value = (now_ns() - t0) / (double)g_ops;
}

/* The live-set workloads: live10k, big, dpc, scale*. */
static void wl_live(const workload *w, result *r)
{
    liveset ls;
    size_t ops = w->ops_div ? g_ops / w->ops_div : g_ops;
    ops = ops ? ops : 1;
    ls_build(&ls, live_of(w), w->max, g_seed);
    ls_measure(&ls, r);
    double t0 = now_ns();
    ls_churn(&ls, ops, w->raise_every);
    r->value = (now_ns() - t0) / (double)ops;
    ls_free(&ls);
}

/* threads2: live10k in one thread, then in two threads at once (each with its own live set). */
typedef struct churn_job {
    liveset ls;
    size_t live, ops;
    uint64_t seed;
    int *ready, *go;
    double end;
} churn_job;

static void churn_thread(void *arg)
{
    churn_job *j = arg;
    ls_build(&j->ls, j->live, 4096, j->seed);
    __atomic_add_fetch(j->ready, 1, __ATOMIC_ACQ_REL);
    while (!load_int(j->go))
        ;
    ls_churn(&j->ls, j->ops, 0);
    j->end = now_ns();
    ls_free(&j->ls);
}

/* Wall-clock nanoseconds for nthreads threads to make ops replacements each. */
static double run_threads(int nthreads, size_t live, size_t ops)
{
    churn_job job[2];
    thread th[2];
    int ready = 0, go = 0;
    for (int i = 0; i < nthreads; i++) {
        churn_job j = {.live = live,
                       .ops = ops,
                       .seed = g_seed + 0x1234567ull * (uint64_t)i,
                       .ready = &ready,
                       .go = &go};
        job[i] = j;
        thread_start(&th[i], churn_thread, &job[i]);
    }
    while (load_int(&ready) != nthreads)
        sleep_ms(1);
    double t0 = now_ns(), end = t0;
    store_int(&go, 1);
    for (int i = 0; i < nthreads; i++) {
        thread_join(&th[i]);
        end = job[i].end > end ? job[i].end : end;
    }
    return end - t0;
}

static void wl_threads2(const workload *w, result *r)
{
    size_t ops = g_ops / 2 ? g_ops / 2 : 1;
    r->ns_1t = run_threads(1, live_of(w), ops) / (double)ops;
    r->value = run_threads(2, live_of(w), ops) / (double)(2 * ops);
}

/* validate1m: one full poolsim_validate pass over 1M live blocks, after a churn that fills the quarantine.
 * The baseline reads the first and last byte of every live block: touching each block once. */
static void wl_validate(const workload *w, result *r)
{
    liveset ls;
    ls_build(&ls, live_of(w), w->max, g_seed);
    ls_measure(&ls, r);
    size_t churn = ls.n / 10 < g_ops ? ls.n / 10 : g_ops;
    ls_churn(&ls, churn, 0);
    for (int pass = 0; pass < 3; pass++) {
        unsigned sink = 0;
        double t0 = now_ns();
        if (cur->kind == K_POOL) {
            if (poolsim_validate() != 0)
                die("poolsim_validate (bad blocks)");
        } else {
            for (size_t i = 0; i < ls.n; i++)
                sink += (unsigned)((volatile char *)ls.slot[i])[0] +
                        (unsigned)((volatile char *)ls.slot[i])[ls.size[i] - 1];
        }
        double ms = (now_ns() - t0) / 1e6;
        (void)sink;
        if (pass == 0 || ms < r->value)
            r->value = ms;
    }
    ls_free(&ls);
}

/* lookup1m: map a random interior address of one of 1M live blocks to its block. */
static void wl_lookup(const workload *w, result *r)
{
    liveset ls;
    size_t bad = 0;
    unsigned sink = 0;
    ls_build(&ls, live_of(w), w->max, g_seed);
    ls_measure(&ls, r);
    double t0 = now_ns();
    for (size_t i = 0; i < g_ops; i++) {
        size_t k = (size_t)(rng(&ls.rng) % ls.n);
        const char *p = ls.slot[k] + rng(&ls.rng) % ls.size[k];
        poolsim_block_info info;
        if (cur->lookup == L_FIND)
            bad += !poolsim_find_block(p, &info) || info.address != ls.slot[k];
        else if (cur->lookup == L_VALID)
            bad += !poolsim_valid_access(p, 1);
        else
            sink += (unsigned)*(volatile const char *)p;
    }
    r->value = (now_ns() - t0) / (double)g_ops;
    (void)sink;
    if (bad)
        die("a lookup (an interior address not mapped to its block)");
    ls_free(&ls);
}

/* ---- IRQL workloads: one op is a pair, on the mode's lock -------------------- */

#ifdef _WIN32
static void *g_srw;
#else
static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
#endif

/* The baselines the IRQL workloads compare against: an uncontended lock pair. */
static bool lock_baseline(result *r)
{
    double t0 = now_ns();
    if (cur->kind == K_BARE) {
        for (size_t i = 0; i < g_ops; i++) {
            bare_acquire();
            bare_release();
        }
    } else if (cur->kind == K_OSMUTEX) {
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
    r->value = (now_ns() - t0) / (double)g_ops;
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
static void wl_irql(const workload *w, result *r)
{
    (void)w;
    if (lock_baseline(r))
        return;
    size_t n = lock_ops();
    double t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        KIRQL old;
        KeRaiseIrql(DISPATCH_LEVEL, &old);
        KeLowerIrql(old);
    }
    r->value = (now_ns() - t0) / (double)n;
}

/* spinlock: KeAcquireSpinLock + KeReleaseSpinLock from PASSIVE_LEVEL, uncontended. */
static void wl_spinlock(const workload *w, result *r)
{
    (void)w;
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
    r->value = (now_ns() - t0) / (double)n;
}

/* +fi-held: a thread that sits at DISPATCH_LEVEL while the workload runs. */
static int g_held_state; /* 1: raised; 2: stop */

static void held_thread(void *arg)
{
    KIRQL old;
    (void)arg;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    store_int(&g_held_state, 1);
    while (load_int(&g_held_state) != 2)
        sleep_ms(1);
    KeLowerIrql(old);
}

#define ALLOC .modes = alloc_modes, .nmodes = COUNT(alloc_modes)
#define ALLOC_FLOOR .modes = floor_modes, .nmodes = COUNT(floor_modes)
#define LOCKS .modes = lock_modes, .nmodes = COUNT(lock_modes)
#define SCALE(n, blocks, text)                                                                               \
    {                                                                                                        \
        n, text, wl_live, ALLOC, .live = blocks, .max = 256, .group = "scale"                                \
    }
static const workload workloads[] = {
    {"pair64", "ExAllocatePoolWithTag(64) + ExFreePoolWithTag", wl_pair64, ALLOC_FLOOR},
    {"live10k", "10k live blocks of 16..4096 B, one replaced at random per op", wl_live, ALLOC_FLOOR,
     .live = 10000, .max = 4096},
    {"big", "1000 live blocks of 16 B..64 KiB, one replaced per op (runs --ops/20)", wl_live, ALLOC,
     .live = 1000, .max = 65536, .ops_div = 20},
    {"dpc", "live10k with one op in 64 at DISPATCH_LEVEL (KeRaiseIrql; malloc: a bare lock pair)", wl_live,
     ALLOC, .live = 10000, .max = 4096, .raise_every = 64},
    {"threads2", "live10k in 2 threads at once, each with its own live set (and in 1 thread, for the ratio)",
     wl_threads2, ALLOC, .live = 10000, .max = 4096},
    SCALE("scale10k", 10000, "10k live blocks of 16..256 B, one replaced at random per op"),
    SCALE("scale100k", 100000, "the same with 100k live blocks"),
    SCALE("scale1m", 1000000, "the same with 1M live blocks"),
    {"scale10m", "the same with 10M live blocks (one run: building 10M blocks takes seconds)", wl_live, ALLOC,
     .live = 10000000, .max = 256, .max_runs = 1, .group = "scale"},
    {"validate1m", "one poolsim_validate pass at 1M live blocks of 16..256 B (malloc: read 2 bytes of each)",
     wl_validate, ALLOC, .live = 1000000, .max = 256, .unit = "ms/pass"},
    {"lookup1m", "address -> block for a random interior address of 1M live blocks of 16..256 B", wl_lookup,
     .modes = lookup_modes, .nmodes = COUNT(lookup_modes), .live = 1000000, .max = 256},
    {"irql", "KeRaiseIrql(DISPATCH_LEVEL) + KeLowerIrql from PASSIVE_LEVEL", wl_irql, LOCKS},
    {"spinlock", "KeAcquireSpinLock + KeReleaseSpinLock from PASSIVE_LEVEL, uncontended", wl_spinlock, LOCKS},
};
#define NWORKLOADS COUNT(workloads)

/* ---- Running a mode ---------------------------------------------------------------- */

/* One run of workload w in mode m, in this process. */
static bool run_once(const workload *w, const mode *m, result *r)
{
    cur = m;
    result_init(r);
    if (m->kind == K_POOL) {
        poolsim_options o;
        poolsim_options_default(&o);
        o.guards = m->guards;
        o.track_sites = m->sites;
        o.fill_uninit = 0; /* malloc does not fill either */
        o.quarantine_bytes = m->quarantine ? o.quarantine_bytes : 0;
        o.nonpaged_limit = 0;
        o.force_irql = m->force_irql;
#ifdef POOLSIM_HAS_SPECIAL_POOL
        o.special_pool_sample = m->special;
#endif
        if (poolsim_init(&o) != POOLSIM_OK)
            return false;
    }
    if (m->kind == K_FLOOR && !floor_init())
        return false;
    /* One paged block in every poolsim mode: what Force IRQL checking protects when a thread raises. */
    void *paged = m->kind == K_POOL ? ExAllocatePoolWithTag(PagedPool, 64, TAG) : NULL;
    thread held;
    if (m->held) {
        store_int(&g_held_state, 0);
        thread_start(&held, held_thread, NULL);
        while (load_int(&g_held_state) != 1)
            ;
    }
    w->run(w, r);
    if (m->held) {
        store_int(&g_held_state, 2);
        thread_join(&held);
    }
    if (paged)
        ExFreePoolWithTag(paged, TAG);
    if (m->kind == K_POOL) {
        poolsim_stats s;
        poolsim_get_stats(&s);
#ifdef POOLSIM_HAS_SPECIAL_POOL
        r->special = m->special ? (double)s.special_allocs : NA;
#endif
        if (poolsim_shutdown() != 0)
            return false;
    }
    if (m->kind == K_FLOOR && floor_fini() != 0)
        return false;
    return true;
}

static bool g_fork = true;

/* One run, in a child process where there is fork: the peak RSS is then the run's own. */
static bool run_isolated(const workload *w, const mode *m, result *r)
{
#ifndef _WIN32
    if (g_fork) {
        int fd[2];
        if (pipe(fd) != 0)
            return false;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            close(fd[0]);
            close(fd[1]);
            return false;
        }
        if (pid == 0) {
            close(fd[0]);
            struct rusage ru;
            bool ok = run_once(w, m, r);
            getrusage(RUSAGE_SELF, &ru);
            r->rss_kib = (double)ru.ru_maxrss;
            _exit(ok && write(fd[1], r, sizeof *r) == (ssize_t)sizeof *r ? 0 : 1);
        }
        close(fd[1]);
        size_t got = 0;
        for (ssize_t n; got < sizeof *r && (n = read(fd[0], (char *)r + got, sizeof *r - got)) > 0;)
            got += (size_t)n;
        close(fd[0]);
        int status;
        return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
               got == sizeof *r;
    }
#endif
    return run_once(w, m, r);
}


/* ---- Output ---------------------------------------------------------------------- */

typedef struct cell {
    bool have;
    result r;
    double ratio;
} cell;

static cell g_cells[NWORKLOADS][MAX_MODES];

/* ASan's malloc+free on the same workloads and its peak RSS (--asan NAME=NS[:RSS_MIB], measured by
 * scripts/bench.sh). */
static double g_asan[NWORKLOADS], g_asan_rss_mib[NWORKLOADS];

static const workload *find_workload(const char *name)
{
    for (size_t k = 0; k < NWORKLOADS; k++)
        if (!strcmp(workloads[k].name, name))
            return &workloads[k];
    return NULL;
}

static const cell *find_cell(const char *wname, const char *mname)
{
    const workload *w = find_workload(wname);
    if (!w)
        return NULL;
    for (size_t m = 0; m < w->nmodes; m++)
        if (!strcmp(w->modes[m].name, mname))
            return g_cells[w - workloads][m].have ? &g_cells[w - workloads][m] : NULL;
    return NULL;
}

static void fmt_num(char *buf, size_t n, const char *fmt, double v)
{
    if (v == NA)
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, fmt, v);
}

static void json_num(FILE *f, const char *key, const char *fmt, double v)
{
    fprintf(f, ",\"%s\":", key);
    if (v == NA)
        fputs("null", f);
    else
        fprintf(f, fmt, v);
}

static void print_row(FILE *js, FILE *tsv, bool *first, const workload *w, const char *mname, const result *r,
                      double ratio)
{
    char inband[32], meta[32], rss[32], note[64] = "";
    fmt_num(inband, sizeof inband, "%.1f", r->inband);
    fmt_num(meta, sizeof meta, "%.1f", r->meta);
    fmt_num(rss, sizeof rss, "%.1f", r->rss_kib == NA ? NA : r->rss_kib / 1024);
    double scaling = r->ns_1t != NA ? r->ns_1t / r->value : NA;
    if (scaling != NA)
        snprintf(note, sizeof note, "1 thread %.1f ns/op; 2T/1T %.2fx", r->ns_1t, scaling);
    else if (r->special != NA)
        snprintf(note, sizeof note, "%.0f in special pool", r->special);
    printf(r->value < 10 ? "%-11s %-13s %11.3f %-7s %8.2fx %9s %9s %9s  %s\n"
                         : "%-11s %-13s %11.1f %-7s %8.2fx %9s %9s %9s  %s\n",
           w->name, mname, r->value, unit_of(w), ratio, inband, meta, rss, note);
    if (js) {
        fprintf(js, "%s\n  {\"workload\":\"%s\",\"mode\":\"%s\",\"unit\":\"%s\",\"live_blocks\":%zu",
                *first ? "" : ",", w->name, mname, unit_of(w), w->live ? live_of(w) : (size_t)0);
        json_num(js, "value", "%.3f", r->value);
        json_num(js, "ratio", "%.4f", ratio);
        json_num(js, "inband_bytes_per_block", "%.1f", r->inband);
        json_num(js, "meta_bytes_per_block", "%.1f", r->meta);
        json_num(js, "peak_rss_kib", "%.0f", r->rss_kib);
        json_num(js, "ns_per_op_1thread", "%.3f", r->ns_1t);
        json_num(js, "throughput_2t_over_1t", "%.3f", scaling);
        json_num(js, "special_allocs", "%.0f", r->special);
        fputs("}", js);
    }
    if (tsv)
        fprintf(tsv, "%s\t%s\t%zu\t%.3f\t%.4f\t%s\t%s\t%s\n", w->name, mname,
                w->live ? live_of(w) : (size_t)0, r->value, ratio, inband, meta, rss);
    *first = false;
}

/* ---- Targets (issue #7) ------------------------------------------------------------- */

#define T_RATIO 0         /* the mode's ratio to the workload's baseline */
#define T_VALUE 1         /* the mode's figure (in the workload's unit) */
#define T_INBAND 2        /* in-band bytes per block */
#define T_META 3          /* out-of-band bytes per block */
#define T_SCALING 4       /* threads2: throughput of 2 threads / 1 thread */
#define T_VS_ASAN 5       /* ASan's ns/op / the mode's */
#define T_VS_MODE 6       /* the mode's figure / other mode's, same workload */
#define T_VS_LOAD 7       /* the mode's figure / the same mode's in workload `other` */
#define T_ADDED_VS_LOAD 8 /* the same, of what the mode adds to the baseline's figure */

typedef struct target {
    const char *what;
    const char *workload, *mode;
    int kind;
    const char *other;
    double limit;
    bool at_least; /* the figure must be >= limit (else <=) */
} target;

static const target targets[] = {
    {"pair64, tags+guards+sites vs malloc", "pair64", "+sites", T_RATIO, NULL, 2.5, false},
    {"live10k, tags+guards+sites vs malloc", "live10k", "+sites", T_RATIO, NULL, 1.3, false},
    {"pair64, all features: times faster than ASan", "pair64", ALL_FEATURES, T_VS_ASAN, NULL, 4, true},
    {"live10k, all features: times faster than ASan", "live10k", ALL_FEATURES, T_VS_ASAN, NULL, 4, true},
    {"ns/op at 1M live / at 10k live (+sites)", "scale1m", "+sites", T_VS_LOAD, "scale10k", 1.5, false},
    {"ns/op at 1M live / at 10k live (all features)", "scale1m", ALL_FEATURES, T_VS_LOAD, "scale10k", 1.5,
     false},
    {"ns/op added to malloc's, 1M / 10k live (+sites)", "scale1m", "+sites", T_ADDED_VS_LOAD, "scale10k", 1.5,
     false},
    {"ns/op added to malloc's, 1M / 10k (all features)", "scale1m", ALL_FEATURES, T_ADDED_VS_LOAD, "scale10k",
     1.5, false},
    {"2 threads / 1 thread throughput (+sites)", "threads2", "+sites", T_SCALING, NULL, 1.7, true},
    {"2 threads / 1 thread throughput (all features)", "threads2", ALL_FEATURES, T_SCALING, NULL, 1.7, true},
    {"poolsim_validate, 1M live, all features (ms)", "validate1m", ALL_FEATURES, T_VALUE, NULL, 50, false},
    {"poolsim_find_block at 1M live (ns)", "lookup1m", "find_block", T_VALUE, NULL, 100, false},
    {"poolsim_valid_access at 1M live (ns)", "lookup1m", "valid_access", T_VALUE, NULL, 100, false},
    {"in-band bytes per block, live10k (+sites)", "live10k", "+sites", T_INBAND, NULL, 32, false},
    {"in-band bytes per block, scale1m (+sites)", "scale1m", "+sites", T_INBAND, NULL, 32, false},
    {"out-of-band bytes per block, scale1m (+sites)", "scale1m", "+sites", T_META, NULL, 48, false},
    {"pair64, special pool 1/1000 vs unsampled", "pair64", "+special", T_VS_MODE, "+quarantine", 1.1, false},
    {"live10k, special pool 1/1000 vs unsampled", "live10k", "+special", T_VS_MODE, "+quarantine", 1.1,
     false},
    {"raise+lower vs bare lock pair", "irql", "poolsim", T_VS_MODE, "bare-lock", 2, false},
    {"raise+lower vs OS mutex pair", "irql", "poolsim", T_VS_MODE, "os-mutex", 2, false},
};

/* The figure a target checks, or NA when this run did not measure it. */
static double target_figure(const target *t)
{
    const cell *c = find_cell(t->workload, t->mode);
    if (!c)
        return NA;
    switch (t->kind) {
    case T_RATIO:
        return c->ratio;
    case T_VALUE:
        return c->r.value;
    case T_INBAND:
        return c->r.inband;
    case T_META:
        return c->r.meta;
    case T_SCALING:
        return c->r.ns_1t == NA ? NA : c->r.ns_1t / c->r.value;
    case T_VS_ASAN: {
        double asan = g_asan[find_workload(t->workload) - workloads];
        return asan > 0 ? asan / c->r.value : NA;
    }
    case T_VS_MODE: {
        const cell *o = find_cell(t->workload, t->other);
        return o ? c->r.value / o->r.value : NA;
    }
    case T_VS_LOAD: {
        const cell *o = find_cell(t->other, t->mode);
        return o ? c->r.value / o->r.value : NA;
    }
    default: { /* T_ADDED_VS_LOAD */
        const cell *o = find_cell(t->other, t->mode), *cb = find_cell(t->workload, "malloc"),
                   *ob = find_cell(t->other, "malloc");
        return o && cb && ob ? (c->r.value - cb->r.value) / (o->r.value - ob->r.value) : NA;
    }
    }
}

static void print_targets(FILE *js)
{
    size_t measured = 0;
    for (size_t i = 0; i < COUNT(targets); i++)
        measured += target_figure(&targets[i]) != NA;
    bool table = measured > 0; /* none for a run of other workloads (the ASan run) */
    if (table)
        printf("\n%-50s %-11s %-12s %9s %10s  %s\n", "target (issue #7)", "workload", "mode", "measured",
               "target", "result");
    if (js)
        fputs("],\n\"targets\":[", js);
    for (size_t i = 0; i < COUNT(targets); i++) {
        const target *t = &targets[i];
        double v = target_figure(t);
        const char *verdict = v == NA                                         ? "not run"
                              : (t->at_least ? v >= t->limit : v <= t->limit) ? "PASS"
                                                                              : "MISS";
        char fig[32], lim[32];
        fmt_num(fig, sizeof fig, "%.2f", v);
        snprintf(lim, sizeof lim, "%s %g", t->at_least ? ">=" : "<=", t->limit);
        if (table)
            printf("%-50s %-11s %-12s %9s %10s  %s\n", t->what, t->workload, t->mode, fig, lim, verdict);
        if (js) {
            fprintf(js, "%s\n  {\"target\":\"%s\",\"workload\":\"%s\",\"mode\":\"%s\"", i ? "," : "", t->what,
                    t->workload, t->mode);
            json_num(js, "measured", "%.4f", v);
            fprintf(js, ",\"limit\":%g,\"at_least\":%s,\"result\":\"%s\"}", t->limit,
                    t->at_least ? "true" : "false", verdict);
        }
    }
}

/* ns/op of the scale workloads side by side, with the 1M / 10k ratios: of the whole figure, and of what
 * the mode adds to malloc's (malloc itself slows down as the live set outgrows the caches). */
static void print_scale(void)
{
    static const char *names[] = {"scale10k", "scale100k", "scale1m", "scale10m"};
    const cell *base[4];
    for (size_t i = 0; i < 4; i++)
        base[i] = find_cell(names[i], "malloc");
    if (!base[0] && !base[2])
        return;
    printf("\n%-13s %10s %10s %10s %10s %9s %9s   (ns/op by live blocks)\n", "mode", "10k", "100k", "1M",
           "10M", "1M/10k", "added");
    for (size_t m = 0; m < COUNT(alloc_modes); m++) {
        const cell *c[4];
        char col[6][32];
        for (size_t i = 0; i < 4; i++) {
            c[i] = find_cell(names[i], alloc_modes[m].name);
            fmt_num(col[i], sizeof col[i], "%.1f", c[i] ? c[i]->r.value : NA);
        }
        bool both = c[0] && c[2];
        fmt_num(col[4], sizeof col[4], "%.2fx", both ? c[2]->r.value / c[0]->r.value : NA);
        fmt_num(col[5], sizeof col[5], "%.2fx",
                both && m > 0 ? (c[2]->r.value - base[2]->r.value) / (c[0]->r.value - base[0]->r.value) : NA);
        printf("%-13s %10s %10s %10s %10s %9s %9s\n", alloc_modes[m].name, col[0], col[1], col[2], col[3],
               col[4], col[5]);
    }
}

/* The load average, so a reader can tell a busy machine from a quiet one (empty where unknown). */
static void loadavg(char *buf, size_t n)
{
    buf[0] = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fgets(buf, (int)n, f))
            buf[strcspn(buf, " ")] = 0;
        fclose(f);
    }
}

/* ---- Main ---------------------------------------------------------------------------- */

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--list] [--ops N] [--runs R] [--shrink S] [--max-live N] [--seed N] [--mode NAME]\n"
            "          [--json FILE] [--tsv FILE] [--asan WORKLOAD=NS[:RSS_MIB]]... [--no-fork] "
            "[workload|group...]\n",
            argv0);
}

static bool selected_by(const workload *w, const char *name)
{
    return !strcmp(name, w->name) || (w->group && !strcmp(name, w->group)) || !strcmp(name, "all");
}

int main(int argc, char **argv)
{
    const char *json = NULL, *tsvname = NULL, *only_mode = NULL;
    int runs = 3;
    size_t max_live = 0;
    bool selected[NWORKLOADS] = {false}, any = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--list")) {
            for (size_t k = 0; k < NWORKLOADS; k++)
                printf("%-11s %s\n", workloads[k].name, workloads[k].what);
            printf("groups: scale (scale10k scale100k scale1m scale10m), all\n");
            return 0;
        } else if (!strcmp(a, "--no-fork")) {
            g_fork = false;
        } else if (v && !strcmp(a, "--json")) {
            json = argv[++i];
        } else if (v && !strcmp(a, "--tsv")) {
            tsvname = argv[++i];
        } else if (v && !strcmp(a, "--ops")) {
            g_ops = strtoull(argv[++i], NULL, 10);
        } else if (v && !strcmp(a, "--shrink")) {
            g_shrink = strtoull(argv[++i], NULL, 10);
        } else if (v && !strcmp(a, "--max-live")) {
            max_live = strtoull(argv[++i], NULL, 10);
        } else if (v && !strcmp(a, "--seed")) {
            g_seed = strtoull(argv[++i], NULL, 0);
        } else if (v && !strcmp(a, "--mode")) {
            only_mode = argv[++i];
        } else if (v && !strcmp(a, "--runs")) {
            runs = atoi(argv[++i]);
        } else if (v && !strcmp(a, "--asan")) {
            const char *eq = strchr(argv[++i], '=');
            size_t k = 0;
            while (eq && k < NWORKLOADS && strncmp(argv[i], workloads[k].name, (size_t)(eq - argv[i])))
                k++;
            char *end = NULL;
            if (eq && k < NWORKLOADS && (g_asan[k] = strtod(eq + 1, &end)) > 0 && *end == ':')
                g_asan_rss_mib[k] = strtod(end + 1, &end);
            if (!eq || k == NWORKLOADS || g_asan[k] <= 0 || *end) {
                usage(argv[0]);
                return 2;
            }
        } else {
            bool hit = false;
            for (size_t k = 0; k < NWORKLOADS; k++)
                if (selected_by(&workloads[k], a))
                    selected[k] = any = hit = true;
            if (!hit) {
                usage(argv[0]);
                return 2;
            }
        }
    }
    if (g_ops == 0 || runs < 1 || g_shrink == 0 || g_seed == 0) {
        fprintf(stderr, "poolbench: --ops, --runs, --shrink and --seed must be positive\n");
        return 2;
    }
    FILE *js = json ? fopen(json, "w") : NULL, *tsv = tsvname ? fopen(tsvname, "w") : NULL;
    if ((json && !js) || (tsvname && !tsv)) {
        perror(json && !js ? json : tsvname);
        return 1;
    }
    char load0[32], load1[32];
    loadavg(load0, sizeof load0);
    printf("poolbench: --ops %zu --runs %d (best of) --shrink %zu --seed %#llx; load average %s%s\n", g_ops,
           runs, g_shrink, (unsigned long long)g_seed, load0[0] ? load0 : "unknown",
#ifdef POOLSIM_HAS_SPECIAL_POOL
           ""
#else
           "; this poolsim has no special pool: +special is skipped and +forceirql runs without sampling"
#endif
    );
    if (js)
        fprintf(js, "{\"ops\":%zu,\"runs\":%d,\"shrink\":%zu,\"seed\":%llu,\"results\":[", g_ops, runs,
                g_shrink, (unsigned long long)g_seed);
    if (tsv)
        fputs("workload\tmode\tlive\tvalue\tratio\tinband\tmeta\trss_mib\n", tsv);
    printf("%-11s %-13s %11s %-7s %9s %9s %9s %9s  %s\n", "workload", "mode", "value", "unit", "ratio",
           "in-band", "meta", "RSS MiB", "note");
    bool first = true;
    for (size_t k = 0; k < NWORKLOADS; k++) {
        const workload *w = &workloads[k];
        if ((any && !selected[k]) || (max_live && live_of(w) > max_live && w->live))
            continue;
        /* Rounds: every mode once per round, so a drift of the machine's speed during the workload
         * reaches every mode alike, and each mode keeps its best round. */
        int rounds = w->max_runs && w->max_runs < runs ? w->max_runs : runs;
        for (int i = 0; i < rounds; i++) {
            for (size_t m = 0; m < w->nmodes; m++) {
                const mode *md = &w->modes[m];
                cell *c = &g_cells[k][m];
                result r;
                if ((m > 0 && only_mode && strcmp(only_mode, md->name)) || !mode_available(md))
                    continue; /* the baseline (the first mode) always runs */
                if (!run_isolated(w, md, &r)) {
                    fprintf(stderr, "poolbench: %s/%s failed\n", w->name, md->name);
                    return 1;
                }
                result_merge(&c->r, &r, i == 0);
                c->have = true;
            }
        }
        double base = g_cells[k][0].r.value;
        for (size_t m = 0; m < w->nmodes; m++) {
            cell *c = &g_cells[k][m];
            if (!c->have)
                continue;
            c->ratio = c->r.value / base;
            print_row(js, tsv, &first, w, w->modes[m].name, &c->r, c->ratio);
        }
        if (g_asan[k] > 0) {
            result a;
            result_init(&a);
            a.value = g_asan[k];
            a.rss_kib = g_asan_rss_mib[k] > 0 ? g_asan_rss_mib[k] * 1024 : NA;
            print_row(js, tsv, &first, w, "asan", &a, a.value / base);
        }
    }
    print_scale();
    print_targets(js);
    loadavg(load1, sizeof load1);
    printf("\nload average at the end: %s (2 cores: above 1 means other work shared the machine)\n",
           load1[0] ? load1 : "unknown");
    if (js) {
        fprintf(js, "],\n\"loadavg_start\":\"%s\",\"loadavg_end\":\"%s\"}\n", load0, load1);
        fclose(js);
    }
    if (tsv)
        fclose(tsv);
    return 0;
}
