/* SPDX-License-Identifier: MIT */
/*
 * sweep.c — the systematic fault sweep (user mode only).
 *
 * Verifier's Systematic Low Resources Simulation fails the first occurrence of
 * each distinct call stack (wdk-semantics.md §5.5); usersim fails each unique
 * call site once; SQLite fails the Nth allocation for N = 1, 2, ... This file
 * runs a test body over and over with one such failure per run, and after
 * each run checks what the body left behind: blocks it allocated and did not
 * free, a bug check it raised, or a crash. The injection itself is the core's
 * (fault.c); what lives here needs an OS: setjmp, and fork on POSIX so a run
 * that crashes is isolated. The table goes through poolsim's output.
 */
#include "../core.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#ifndef _WIN32
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#define SWEEP_SITES 256u /* distinct sites a sweep follows */
#define SWEEP_LEAKS 4u   /* leaked blocks named per run */

enum { RUN_OK, RUN_LEAKED, RUN_BUGCHECK, RUN_CRASH, RUN_NOT_REACHED, RUN_COUNTERS, RUN_EXIT };

typedef struct run_out {
    int outcome;
    unsigned long code; /* bug check code, or the signal of a crash */
    uintptr_t p1;
    uint64_t injected;
    size_t nleaked;
    poolsim_block_info leaks[SWEEP_LEAKS];
    size_t nsites;
    poolsim_site sites[SWEEP_SITES];
} run_out;

/* ---- One run, in this process ------------------------------------------------------- */

static jmp_buf *g_jump;
static run_out *g_run;

static void sweep_handler(const poolsim_bugcheck *bc, void *ctx)
{
    (void)ctx;
    if (!g_run->code) {
        g_run->code = bc->code;
        g_run->p1 = bc->param[0];
    }
    longjmp(*g_jump, 1);
}

static void run_here(poolsim_sweep_body *body, void *ctx, const poolsim_fault_config *cfg, bool clean_up,
                     run_out *o)
{
    psim *ps = poolsim__g;
    poolsim_bugcheck_fn *old_fn;
    void *old_ctx;
    poolsim_stats before, after;
    jmp_buf jb;
    memset(o, 0, sizeof *o);
    poolsim_get_stats(&before);
    uint64_t since = poolsim_sequence();
    poolsim_get_bugcheck_handler(&old_fn, &old_ctx);
    poolsim_set_bugcheck_handler(sweep_handler, NULL);
    g_jump = &jb;
    g_run = o;
    poolsim__fault_trace(ps, true);
    poolsim_fault_configure(cfg);
    if (setjmp(jb) == 0)
        body(ctx);
    poolsim_fault_configure(NULL);
    o->nsites = poolsim__fault_traced(ps, o->sites, SWEEP_SITES);
    poolsim__fault_trace(ps, false);
    poolsim_set_bugcheck_handler(old_fn, old_ctx);
    poolsim_get_stats(&after);
    o->injected = after.faults_injected - before.faults_injected;
    o->nleaked = poolsim_live_since(since, o->leaks, SWEEP_LEAKS);
    uint64_t made = after.allocs - before.allocs, freed = after.frees - before.frees;
    bool consistent = made - freed == o->nleaked && after.live_blocks - before.live_blocks == o->nleaked;
    o->outcome = o->code                                        ? RUN_BUGCHECK
                 : !consistent                                  ? RUN_COUNTERS
                 : o->nleaked                                   ? RUN_LEAKED
                 : !o->injected && (cfg->site_file || cfg->nth) ? RUN_NOT_REACHED
                                                                : RUN_OK;
    /* In-process runs give back what they leaked, so the next run starts clean. */
    while (clean_up) {
        poolsim_block_info b;
        if (!poolsim_live_since(since, &b, 1))
            break;
        poolsim_pool_free(POOLSIM_RT_EX_FREE_POOL_WITH_TAG, (void *)(uintptr_t)b.address, b.tag, NULL, 0,
                          NULL, 0);
    }
}

/* ---- One run, isolated where the OS allows it -------------------------------------------- */

#ifndef _WIN32
static bool io_all(int fd, void *buf, size_t n, bool writing)
{
    char *p = (char *)buf;
    while (n) {
        ssize_t k = writing ? write(fd, p, n) : read(fd, p, n);
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}
#endif

static void run_one(poolsim_sweep_body *body, void *ctx, const poolsim_fault_config *cfg, run_out *o)
{
#ifdef _WIN32
    run_here(body, ctx, cfg, true, o);
#else
    int fd[2];
    fflush(NULL);
    if (pipe(fd) != 0) {
        run_here(body, ctx, cfg, true, o);
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        run_here(body, ctx, cfg, true, o);
        return;
    }
    if (pid == 0) {
        /* A crash must end the child, whatever handler the test framework installed. */
        static const int crashes[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
        for (size_t i = 0; i < sizeof crashes / sizeof crashes[0]; i++)
            signal(crashes[i], SIG_DFL);
        close(fd[0]);
        run_here(body, ctx, cfg, false, o);
        fflush(NULL);
        _exit(io_all(fd[1], o, sizeof *o, true) ? 0 : 3);
    }
    close(fd[1]);
    bool got = io_all(fd[0], o, sizeof *o, false);
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!got) {
        memset(o, 0, sizeof *o);
        o->outcome = RUN_CRASH;
        o->code = WIFSIGNALED(status) ? (unsigned long)WTERMSIG(status) : 0;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        /* The run reported, then its process failed: a checker around it (Valgrind's --error-exitcode)
         * found errors in the run, or a signal ended it after it wrote. */
        o->outcome = RUN_EXIT;
        o->code =
            WIFEXITED(status) ? (unsigned long)WEXITSTATUS(status) : 128ul + (unsigned long)WTERMSIG(status);
    }
#endif
}

/* ---- The table ------------------------------------------------------------------------ */

static void print_run(unsigned n, const poolsim_site *site, uint64_t nth, const run_out *o)
{
    char where[160], what[200];
    if (site)
        snprintf(where, sizeof where, "%s:%d %s", poolsim__short_path(site->file), site->line, site->routine);
    else if (nth)
        snprintf(where, sizeof where, "allocation #%llu", (unsigned long long)nth);
    else
        snprintf(where, sizeof where, "(none: the clean run)");
    switch (o->outcome) {
    case RUN_OK:
        snprintf(what, sizeof what, "ok");
        break;
    case RUN_NOT_REACHED:
        snprintf(what, sizeof what, "not reached");
        break;
    case RUN_BUGCHECK:
        snprintf(what, sizeof what, "bug check 0x%lx/0x%llx %s", o->code, (unsigned long long)o->p1,
                 poolsim_bugcheck_name(o->code) ? poolsim_bugcheck_name(o->code) : "");
        break;
    case RUN_CRASH:
        snprintf(what, sizeof what, "crash (signal %lu)", o->code);
        break;
    case RUN_EXIT:
        snprintf(what, sizeof what,
                 "its process exited with status %lu (a checker such as Valgrind found errors)", o->code);
        break;
    case RUN_COUNTERS:
        snprintf(what, sizeof what, "counters disagree with the live blocks (a poolsim bug: please report)");
        break;
    default: {
        char tag[5];
        poolsim__tag_text(o->leaks[0].tag, tag);
        snprintf(what, sizeof what, "leaked %zu block(s), first: %s:%d %s %zu bytes", o->nleaked,
                 poolsim__short_path(o->leaks[0].alloc_site.file), o->leaks[0].alloc_site.line, tag,
                 o->leaks[0].size);
        break;
    }
    }
    char line[400];
    snprintf(line, sizeof line, " %4u  %-52s %s\n", n, where, what);
    poolsim_write(line);
    for (size_t i = 1; o->outcome == RUN_LEAKED && i < o->nleaked && i < SWEEP_LEAKS; i++) {
        char tag[5];
        poolsim__tag_text(o->leaks[i].tag, tag);
        snprintf(line, sizeof line, " %4s  %-52s        and: %s:%d %s %zu bytes\n", "", "",
                 poolsim__short_path(o->leaks[i].alloc_site.file), o->leaks[i].alloc_site.line, tag,
                 o->leaks[i].size);
        poolsim_write(line);
    }
}

static void tally(poolsim_sweep_result *r, const run_out *o)
{
    r->runs++;
    r->ok += o->outcome == RUN_OK;
    r->leaked += o->outcome == RUN_LEAKED;
    r->bugchecks += o->outcome == RUN_BUGCHECK || o->outcome == RUN_COUNTERS;
    r->crashes += o->outcome == RUN_CRASH || o->outcome == RUN_EXIT;
    r->not_reached += o->outcome == RUN_NOT_REACHED;
}

static int finish(const poolsim_sweep_result *r)
{
    char line[200];
    snprintf(line, sizeof line,
             " %u site(s), %u run(s): %u ok, %u leaked, %u bug check(s), %u crashed, %u not reached\n",
             r->sites, r->runs, r->ok, r->leaked, r->bugchecks, r->crashes, r->not_reached);
    poolsim_write(line);
    return r->leaked || r->bugchecks || r->crashes ? 1 : 0;
}

/* Adds the sites a run reached to the queue; returns the queue's length. */
static size_t learn(poolsim_site *queue, size_t n, const run_out *o)
{
    for (size_t i = 0; i < o->nsites; i++) {
        size_t k = 0;
        while (k < n && !(queue[k].line == o->sites[i].line && strcmp(queue[k].file, o->sites[i].file) == 0))
            k++;
        if (k == n && n < SWEEP_SITES)
            queue[n++] = o->sites[i];
    }
    return n;
}

/* One sweep: by site (nth_mode false) or by allocation number. The queue and
 * the run record are large, so they are static: sweeps are not reentrant. */
static int sweep(poolsim_sweep_body *body, void *ctx, poolsim_sweep_result *result, bool nth_mode)
{
    static poolsim_site queue[SWEEP_SITES];
    static run_out o;
    poolsim_sweep_result r;
    poolsim_fault_config cfg;
    size_t n = 0;
    memset(&r, 0, sizeof r);
    if (result)
        *result = r;
    if (!poolsim__g || !body)
        return -1;
    poolsim_write(nth_mode ? "poolsim fault sweep: allocation N fails, for N = 1, 2, ...\n"
                           : "poolsim fault sweep: each allocation site fails once\n");
    poolsim_write("  run  failed site or allocation                             outcome\n");
    /* Run 0 is the clean run (site mode); run k fails site k or allocation k. */
    for (size_t k = nth_mode ? 1 : 0;; k++) {
        const poolsim_site *site = !nth_mode && k ? &queue[k - 1] : NULL;
        if (!nth_mode && k > n)
            break;
        memset(&cfg, 0, sizeof cfg);
        cfg.nth = nth_mode ? k : 0;
        cfg.site_file = site ? site->file : NULL;
        cfg.site_line = site ? site->line : 0;
        run_one(body, ctx, &cfg, &o);
        n = learn(queue, n, &o);             /* error paths bring new sites */
        bool done = nth_mode && !o.injected; /* the body made fewer than k allocations */
        if (!done || o.outcome != RUN_NOT_REACHED) {
            tally(&r, &o);
            print_run((unsigned)k, site, cfg.nth, &o);
        }
        if (done)
            break;
    }
    r.sites = (unsigned)n;
    if (result)
        *result = r;
    return finish(&r);
}

int poolsim_fault_sweep(poolsim_sweep_body *body, void *ctx, poolsim_sweep_result *result)
{
    return sweep(body, ctx, result, false);
}

int poolsim_fault_sweep_nth(poolsim_sweep_body *body, void *ctx, poolsim_sweep_result *result)
{
    return sweep(body, ctx, result, true);
}
