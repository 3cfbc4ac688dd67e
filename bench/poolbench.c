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
 * Output: a table (ns per operation, ratio to malloc, poolsim bytes per live
 * block) and, with --json FILE, the same as JSON. See bench/README.md.
 */
#define _POSIX_C_SOURCE 200809L
#include <poolsim/wdm.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TAG 'hcnB'

/* ---- Allocators --------------------------------------------------------- */

typedef struct mode {
    const char *name;
    bool pool;
    uint32_t guards, sites;
    uint64_t quarantine;
} mode;

static const mode modes[] = {
    {"malloc", false, 0, 0, 0}, {"tags", true, 0, 0, 0},        {"+guards", true, 1, 0, 0},
    {"+sites", true, 1, 1, 0},  {"+quarantine", true, 1, 1, 1},
};
#define NMODES (sizeof modes / sizeof modes[0])

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
/* <windows.h> cannot be mixed with <wdm.h> (as in a driver): declare the two calls. */
__declspec(dllimport) int __stdcall QueryPerformanceCounter(long long *count);
__declspec(dllimport) int __stdcall QueryPerformanceFrequency(long long *frequency);
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

typedef struct workload {
    const char *name;
    const char *what;
    void (*run)(result *r);
} workload;

static const workload workloads[] = {
    {"pair64", "ExAllocatePoolWithTag(64) + ExFreePoolWithTag", wl_pair64},
    {"live10k", "10k live blocks of 16..4096 B, one replaced at random per op", wl_live10k},
    {"big", "1000 live blocks of 16 B..64 KiB, one replaced per op", wl_big},
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
            if (poolsim_init(&o) != POOLSIM_OK)
                return false;
        }
        w->run(&r);
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
        for (size_t m = 0; m < NMODES; m++) {
            result r;
            if (m > 0 && only_mode && strcmp(only_mode, modes[m].name))
                continue; /* the malloc baseline always runs */
            if (!run_mode(&workloads[k], &modes[m], runs, &r)) {
                fprintf(stderr, "poolbench: %s/%s failed\n", workloads[k].name, modes[m].name);
                return 1;
            }
            if (m == 0)
                base = r.ns_per_op;
            printf("%-10s %-12s %10.1f %7.2fx %12.1f %12.1f\n", workloads[k].name, modes[m].name, r.ns_per_op,
                   r.ns_per_op / base, r.meta_per_block, r.arena_per_block);
            if (js)
                fprintf(js,
                        "%s{\"workload\":\"%s\",\"mode\":\"%s\",\"ns_per_op\":%.2f,\"ratio\":%.3f,"
                        "\"meta_bytes_per_block\":%.1f,\"page_bytes_per_block\":%.1f}",
                        first ? "" : ",", workloads[k].name, modes[m].name, r.ns_per_op, r.ns_per_op / base,
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
