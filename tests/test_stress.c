/* SPDX-License-Identifier: MIT */
/*
 * test_stress.c — several threads run a random workload against one poolsim
 * for a bounded time: they allocate through six routines, from both pools,
 * with shared and private tags and sizes from 1 byte to several pages, fill
 * each block with its own byte and check it before the free (three free
 * routines), raise to APC_LEVEL and DISPATCH_LEVEL and work there, take spin
 * locks, an in-stack queued spin lock and a fast mutex shared between the
 * threads (each guarding a plain counter), validate, query statistics and
 * sequence numbers, look blocks up and print !poolused. Each thread keeps its own tally; a thread's
 * private tag must match its tally exactly at any moment, the shared counters
 * must equal the sum of the acquisitions, and at the end poolsim's totals and
 * every tag's counters must equal the sums: first with the blocks the threads
 * left allocated, then after the main thread frees them (nothing live, no
 * leak, no bug check). Runs under ThreadSanitizer (scripts/test.sh).
 *
 * Each thread's random sequence comes from its own seed (the base seed plus
 * its index), so a thread makes the same choices in every run; only the
 * interleaving and the number of operations vary. Environment:
 * POOLSIM_STRESS_MS (default 2000), POOLSIM_STRESS_THREADS (default 3, at most
 * 16), POOLSIM_STRESS_SEED (default 1).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <poolsim/wdm.h>
#include <poolsim/cmocka.h>

#include "threads.h"

/* From the platform layer (src/prim/prim.h): monotonic nanoseconds. */
uint64_t poolsim__prim_now_ns(void);

#define MAX_THREADS 16
#define MAX_LIVE 48 /* blocks a thread holds at once */
#define NSHARED 4   /* tags every thread uses */
#define NTAGS (NSHARED + 1)
#define PRIVATE NSHARED /* the index of the thread's own tag */
#define NLOCKS 2

static const ULONG shared_tags[NSHARED] = {'1rtS', '2rtS', '3rtS', '4rtS'}; /* "Str1" ... */

static ULONG private_tag(unsigned idx) { return (ULONG)'0trP' + ((ULONG)idx << 24); } /* "Prt0" ... */

/* ---- What the threads share ------------------------------------------------------------------ */

typedef struct shared {
    KSPIN_LOCK lock[NLOCKS]; /* ordinary spin locks, lock[0] always taken before lock[1] */
    KSPIN_LOCK qlock;        /* used only as an in-stack queued lock */
    FAST_MUTEX mutex;
    long counter[NLOCKS]; /* each guarded by its lock */
    long qcounter;
    long mcounter;
    uint64_t deadline_ns;
} shared;

/* ---- One thread's tally ------------------------------------------------------------------------ */

typedef struct block {
    uint8_t *p;
    size_t size;
    unsigned tag;  /* index into the thread's tags */
    unsigned pool; /* 0 nonpaged, 1 paged */
    uint8_t fill;
} block;

typedef struct tally {
    uint64_t allocs, frees, bytes; /* bytes live */
} tally;

typedef struct worker {
    unsigned index;
    uint64_t rng;
    shared *sh;
    block live[MAX_LIVE];
    unsigned nlive;
    tally t[NTAGS][2]; /* per tag, per pool */
    long locked[NLOCKS], qlocked, mlocked;
    unsigned long ops, validations, reports, raises;
    uint64_t last_seq; /* the last poolsim_sequence() this thread saw */
    unsigned fails; /* checks that failed; the first is described in `why` */
    char why[160];
} worker;

static uint64_t next_rand(worker *w)
{
    /* xorshift64* */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 0x2545F4914F6CDD1Dull;
}

static unsigned pick(worker *w, unsigned n) { return (unsigned)(next_rand(w) % n); }

/* cmocka's asserts must stay on the main thread: workers record failures. */
#define CHECK(w, cond) check_((w), (cond), #cond, __LINE__)

static void check_(worker *w, int ok, const char *what, int line)
{
    if (ok)
        return;
    if (w->fails++ == 0)
        snprintf(w->why, sizeof w->why, "thread %u, line %d: %s", w->index, line, what);
}

static ULONG tag_of(const worker *w, unsigned i)
{
    return i == PRIVATE ? private_tag(w->index) : shared_tags[i];
}

/* ---- Allocation and free through the WDK routines ------------------------------------------------ */

static size_t pick_size(worker *w)
{
    unsigned r = pick(w, 16);
    if (r == 0)
        return 4096 + pick(w, 3 * 4096); /* a big block: page-aligned, page-rounded */
    if (r < 4)
        return 1 + pick(w, 16);
    return 1 + pick(w, 600);
}

/* Allocates one block; paged only below DISPATCH_LEVEL. */
static void do_alloc(worker *w, bool paged_ok)
{
    block *b;
    void *p = NULL;
    if (w->nlive == MAX_LIVE)
        return;
    b = &w->live[w->nlive];
    b->size = pick_size(w);
    b->tag = pick(w, NTAGS);
    b->pool = paged_ok ? pick(w, 2) : 0;
    b->fill = (uint8_t)(1 + pick(w, 254));
    {
        const ULONG tag = tag_of(w, b->tag);
        const POOL_TYPE type = b->pool ? PagedPool : NonPagedPoolNx;
        const ULONG64 flags = b->pool ? POOL_FLAG_PAGED : POOL_FLAG_NON_PAGED;
        bool zeroed = false;
        switch (pick(w, 6)) {
        case 0:
            p = ExAllocatePool2(flags, b->size, tag);
            zeroed = true;
            break;
        case 1:
            p = ExAllocatePoolWithTag(type, b->size, tag);
            break;
        case 2:
            p = ExAllocatePoolZero(type, b->size, tag);
            zeroed = true;
            break;
        case 3:
            p = ExAllocatePoolUninitialized(type, b->size, tag);
            break;
        case 4:
            p = ExAllocatePoolWithTagPriority(type, b->size, tag, NormalPoolPriority);
            break;
        default:
            p = ExAllocatePoolWithQuotaTag(type, b->size, tag);
            break;
        }
        CHECK(w, p != NULL);
        if (!p)
            return;
        CHECK(w, ((uintptr_t)p & (2 * sizeof(void *) - 1)) == 0);
        if (zeroed)
            CHECK(w, ((uint8_t *)p)[0] == 0 && ((uint8_t *)p)[b->size - 1] == 0);
    }
    b->p = (uint8_t *)p;
    memset(b->p, b->fill, b->size);
    w->t[b->tag][b->pool].allocs++;
    w->t[b->tag][b->pool].bytes += b->size;
    w->nlive++;
}

static bool intact(const block *b)
{
    for (size_t i = 0; i < b->size; i++)
        if (b->p[i] != b->fill)
            return false;
    return true;
}

/* Frees block i; the caller knows the IRQL allows it. */
static void do_free_at(worker *w, unsigned i)
{
    block b = w->live[i];
    const ULONG tag = tag_of(w, b.tag);
    CHECK(w, intact(&b));
    switch (pick(w, 3)) {
    case 0:
        ExFreePoolWithTag(b.p, tag);
        break;
    case 1:
        ExFreePool(b.p);
        break;
    default:
        ExFreePool2(b.p, tag, NULL, 0);
        break;
    }
    w->t[b.tag][b.pool].frees++;
    w->t[b.tag][b.pool].bytes -= b.size;
    w->live[i] = w->live[--w->nlive];
}

/* Frees a random block, a nonpaged one only when paged is not allowed. */
static void do_free(worker *w, bool paged_ok)
{
    unsigned i, start;
    if (w->nlive == 0)
        return;
    start = pick(w, w->nlive);
    for (unsigned k = 0; k < w->nlive; k++) {
        i = (start + k) % w->nlive;
        if (paged_ok || w->live[i].pool == 0) {
            do_free_at(w, i);
            return;
        }
    }
}

static void pool_op(worker *w, bool paged_ok)
{
    if (pick(w, 2) == 0)
        do_alloc(w, paged_ok);
    else
        do_free(w, paged_ok);
}

/* ---- Checks made while the others run -------------------------------------------------------------- */

/* Nobody else uses the private tag: its counters are this thread's tally, exactly. */
static void check_private(worker *w)
{
    poolsim_tag_usage_t u;
    const tally *np = &w->t[PRIVATE][0], *pg = &w->t[PRIVATE][1];
    bool used = poolsim_tag_usage(private_tag(w->index), &u);
    CHECK(w, used == (np->allocs + pg->allocs != 0));
    if (!used)
        return;
    CHECK(w, u.nonpaged.allocs == np->allocs && u.nonpaged.frees == np->frees);
    CHECK(w, u.nonpaged.bytes == np->bytes);
    CHECK(w, u.paged.allocs == pg->allocs && u.paged.frees == pg->frees && u.paged.bytes == pg->bytes);
    CHECK(w, u.nonpaged.failed == 0 && u.paged.failed == 0);
}

static void check_stats(worker *w)
{
    poolsim_stats s;
    poolsim_get_stats(&s);
    CHECK(w, s.failed == 0);
    CHECK(w, s.bugchecks == 0);
    CHECK(w, s.allocs >= s.frees);
    CHECK(w, s.live_blocks >= w->nlive);
}

static void check_find(worker *w)
{
    poolsim_block_info info;
    const block *b;
    if (w->nlive == 0)
        return;
    b = &w->live[pick(w, w->nlive)];
    CHECK(w, poolsim_find_block(b->p + b->size / 2, &info));
    CHECK(w, info.address == b->p && info.size == b->size && info.tag == tag_of(w, b->tag));
    CHECK(w, info.state == POOLSIM_BLOCK_LIVE);
    CHECK(w, poolsim_valid_access(b->p, b->size));
}

/* Whatever the other threads do, every block this thread allocated before poolsim_sequence() is
 * numbered at most what it returned, the next one above it, and the value never goes back (a design
 * with per-shard batches of numbers fails this unless the snapshot closes the batches it passed). */
static void check_sequence(worker *w)
{
    poolsim_block_info info;
    uint64_t snap = poolsim_sequence();
    unsigned n = w->nlive;
    CHECK(w, snap >= w->last_seq);
    w->last_seq = snap;
    for (unsigned i = 0; i < n; i++)
        CHECK(w, poolsim_find_block(w->live[i].p, &info) && info.alloc_seq <= snap);
    do_alloc(w, true);
    if (w->nlive > n)
        CHECK(w, poolsim_find_block(w->live[n].p, &info) && info.alloc_seq > snap);
}

/* ---- Locks and IRQL --------------------------------------------------------------------------------- */

static void lock_op(worker *w)
{
    shared *sh = w->sh;
    switch (pick(w, 5)) {
    case 0: {
        unsigned k = pick(w, NLOCKS);
        KIRQL old;
        KeAcquireSpinLock(&sh->lock[k], &old);
        CHECK(w, KeGetCurrentIrql() == DISPATCH_LEVEL);
        sh->counter[k]++;
        w->locked[k]++;
        if (pick(w, 4) == 0)
            pool_op(w, false); /* nonpaged pool under a spin lock: legal */
        KeReleaseSpinLock(&sh->lock[k], old);
        break;
    }
    case 1: {
        KIRQL old;
        KeAcquireSpinLock(&sh->lock[0], &old); /* always lock[0] first: no deadlock */
        KeAcquireSpinLockAtDpcLevel(&sh->lock[1]);
        sh->counter[0]++;
        sh->counter[1]++;
        w->locked[0]++;
        w->locked[1]++;
        KeReleaseSpinLockFromDpcLevel(&sh->lock[1]);
        KeReleaseSpinLock(&sh->lock[0], old);
        break;
    }
    case 2: {
        KLOCK_QUEUE_HANDLE h;
        KeAcquireInStackQueuedSpinLock(&sh->qlock, &h);
        sh->qcounter++;
        w->qlocked++;
        KeReleaseInStackQueuedSpinLock(&h);
        break;
    }
    case 3:
        ExAcquireFastMutex(&sh->mutex);
        CHECK(w, KeGetCurrentIrql() == APC_LEVEL);
        sh->mcounter++;
        w->mlocked++;
        if (pick(w, 2) == 0)
            pool_op(w, true); /* paged pool at APC_LEVEL: legal */
        ExReleaseFastMutex(&sh->mutex);
        break;
    default: {
        KIRQL old;
        KIRQL to = pick(w, 2) ? DISPATCH_LEVEL : APC_LEVEL;
        KeRaiseIrql(to, &old);
        w->raises++;
        for (unsigned n = 1 + pick(w, 3); n > 0; n--)
            pool_op(w, to < DISPATCH_LEVEL);
        KeLowerIrql(old);
        break;
    }
    }
    CHECK(w, poolsim_thread_passive_no_locks());
}

/* ---- The worker ------------------------------------------------------------------------------------- */

static void worker_main(void *arg)
{
    worker *w = (worker *)arg;
    for (;;) {
        if ((w->ops & 63) == 0 && poolsim__prim_now_ns() >= w->sh->deadline_ns)
            break;
        w->ops++;
        unsigned r = pick(w, 1000);
        if (r < 550) {
            pool_op(w, true);
        } else if (r < 900) {
            lock_op(w);
        } else if (r < 960) {
            check_private(w);
        } else if (r < 975) {
            check_find(w);
        } else if (r < 985) {
            check_sequence(w);
        } else if (r < 995) {
            check_stats(w);
        } else if (r < 998) {
            CHECK(w, poolsim_validate() == 0);
            w->validations++;
        } else {
            poolsim_report_poolused(0, "Str?");
            w->reports++;
        }
    }
    check_private(w);
}

/* ---- The test --------------------------------------------------------------------------------------- */

static unsigned long env_number(const char *name, unsigned long def, unsigned long max)
{
    const char *v = getenv(name);
    char *end;
    unsigned long n;
    if (!v || !*v)
        return def;
    n = strtoul(v, &end, 10);
    return *end || n == 0 ? def : n > max ? max : n;
}

static uint64_t g_out_bytes; /* what the !poolused reports wrote */

static void count_output(const char *text, void *ctx)
{
    (void)ctx;
    __atomic_add_fetch(&g_out_bytes, (uint64_t)strlen(text), __ATOMIC_RELAXED);
}

static void sum_tags(worker *ws, unsigned n, ULONG tag, tally out[2])
{
    memset(out, 0, 2 * sizeof *out);
    for (unsigned i = 0; i < n; i++)
        for (unsigned k = 0; k < NTAGS; k++)
            if (tag_of(&ws[i], k) == tag)
                for (unsigned pool = 0; pool < 2; pool++) {
                    out[pool].allocs += ws[i].t[k][pool].allocs;
                    out[pool].frees += ws[i].t[k][pool].frees;
                    out[pool].bytes += ws[i].t[k][pool].bytes;
                }
}

/* Every tag's counters are the sum of the threads' tallies. */
static void assert_tags(worker *ws, unsigned n)
{
    for (unsigned i = 0; i < NSHARED + n; i++) {
        ULONG tag = i < NSHARED ? shared_tags[i] : private_tag(i - NSHARED);
        tally want[2];
        poolsim_tag_usage_t u;
        sum_tags(ws, n, tag, want);
        if (!poolsim_tag_usage(tag, &u)) {
            assert_int_equal(want[0].allocs + want[1].allocs, 0);
            continue;
        }
        assert_int_equal(u.nonpaged.allocs, want[0].allocs);
        assert_int_equal(u.nonpaged.frees, want[0].frees);
        assert_int_equal(u.nonpaged.bytes, want[0].bytes);
        assert_int_equal(u.paged.allocs, want[1].allocs);
        assert_int_equal(u.paged.frees, want[1].frees);
        assert_int_equal(u.paged.bytes, want[1].bytes);
        assert_int_equal(u.nonpaged.failed + u.paged.failed, 0);
    }
}

/* poolsim's totals are the sum of the tallies. */
static void assert_totals(worker *ws, unsigned n)
{
    poolsim_stats s;
    uint64_t allocs = 0, frees = 0, live = 0, bytes[2] = {0, 0};
    for (unsigned i = 0; i < n; i++) {
        live += ws[i].nlive;
        for (unsigned k = 0; k < NTAGS; k++)
            for (unsigned pool = 0; pool < 2; pool++) {
                allocs += ws[i].t[k][pool].allocs;
                frees += ws[i].t[k][pool].frees;
                bytes[pool] += ws[i].t[k][pool].bytes;
            }
    }
    poolsim_get_stats(&s);
    assert_int_equal(s.allocs, allocs);
    assert_int_equal(s.frees, frees);
    assert_int_equal(s.live_blocks, live);
    assert_int_equal(s.allocs - s.frees, live);
    assert_int_equal(s.nonpaged_bytes, bytes[0]);
    assert_int_equal(s.paged_bytes, bytes[1]);
    assert_int_equal(s.failed, 0);
    assert_int_equal(s.bugchecks, 0);
    assert_int_equal(poolsim_live_since(0, NULL, 0), live);
}

static void test_stress_random_workload(void **state)
{
    static shared sh;
    static worker ws[MAX_THREADS];
    thread th[MAX_THREADS];
    poolsim_options o = poolsim_cmocka_default_options();
    const unsigned long ms = env_number("POOLSIM_STRESS_MS", 2000, 600000);
    const unsigned n = (unsigned)env_number("POOLSIM_STRESS_THREADS", 3, MAX_THREADS);
    const unsigned long seed = env_number("POOLSIM_STRESS_SEED", 1, 0xFFFFFFFFul);
    unsigned long ops = 0, reports = 0;
    (void)state;
    /* No Force IRQL checking: its page faults are not what is stressed here, and ThreadSanitizer cannot
     * follow them. Every access this workload makes is legal anyway. */
    o.force_irql = 0;
    poolsim_cmocka_reinit(&o);
    memset(&sh, 0, sizeof sh);
    for (unsigned k = 0; k < NLOCKS; k++)
        KeInitializeSpinLock(&sh.lock[k]);
    KeInitializeSpinLock(&sh.qlock);
    ExInitializeFastMutex(&sh.mutex);
    sh.deadline_ns = poolsim__prim_now_ns() + (uint64_t)ms * 1000000u;
    g_out_bytes = 0;
    poolsim_set_output(count_output, NULL);
    for (unsigned i = 0; i < n; i++) {
        memset(&ws[i], 0, sizeof ws[i]);
        ws[i].index = i;
        ws[i].sh = &sh;
        ws[i].rng = ((uint64_t)seed << 8 | i) * 0x9E3779B97F4A7C15ull | 1u;
        thread_start(&th[i], worker_main, &ws[i]);
    }
    for (unsigned i = 0; i < n; i++)
        thread_join(&th[i]);
    poolsim_set_output(NULL, NULL);

    for (unsigned i = 0; i < n; i++) {
        if (ws[i].fails)
            print_error("%u failed check(s); the first: %s\n", ws[i].fails, ws[i].why);
        assert_int_equal(ws[i].fails, 0);
        ops += ws[i].ops;
        reports += ws[i].reports;
        print_message(
            "stress: thread %u (seed %lu): %lu operations, %u blocks left, %lu validations, %lu raises\n", i,
            seed, ws[i].ops, ws[i].nlive, ws[i].validations, ws[i].raises);
    }
    assert_true(ops > 0);
    assert_true(reports == 0 || g_out_bytes > 0);
    /* The locks kept their counters exact. */
    {
        long locked[NLOCKS] = {0, 0}, q = 0, m = 0;
        for (unsigned i = 0; i < n; i++) {
            for (unsigned k = 0; k < NLOCKS; k++)
                locked[k] += ws[i].locked[k];
            q += ws[i].qlocked;
            m += ws[i].mlocked;
        }
        for (unsigned k = 0; k < NLOCKS; k++)
            assert_int_equal(sh.counter[k], locked[k]);
        assert_int_equal(sh.qcounter, q);
        assert_int_equal(sh.mcounter, m);
        assert_int_equal(sh.lock[0], 4); /* free; last used as an ordinary lock */
        assert_int_equal(sh.qlock, 2);   /* free; last used queued */
        assert_null(sh.mutex.Owner);
    }
    /* With the blocks the threads left, then after the main thread frees them all. */
    assert_totals(ws, n);
    assert_tags(ws, n);
    assert_int_equal(poolsim_validate(), 0);
    for (unsigned i = 0; i < n; i++)
        while (ws[i].nlive)
            do_free_at(&ws[i], ws[i].nlive - 1);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(ws[i].fails, 0);
    assert_totals(ws, n);
    assert_tags(ws, n);
    assert_int_equal(poolsim_live_since(0, NULL, 0), 0);
    assert_int_equal(poolsim_validate(), 0);
    assert_int_equal(poolsim_bugcheck_count(), 0);
}

/* ---- Queries of one special-pool page while another thread reuses it ------------------------------------
 */

/* A special-pool page takes the pool and the placement of every block it holds. One thread allocates and
 * frees special-pool blocks in one slot, paged and nonpaged, at the page's end (Verify End) or start (Verify
 * Start); the main thread describes the page (!pool) and touches it at DISPATCH_LEVEL meanwhile. Both read
 * the page's descriptor under its lock (ThreadSanitizer finds the race otherwise), and a touch is reported
 * (0xD1) only when it meets a live paged block. Where the platform has no special pool, every request is
 * served by normal pool and the queries have nothing to race with. */
typedef struct special_churn {
    int stop;
    unsigned long rounds, failed;
} special_churn;

static void special_churn_main(void *arg)
{
    special_churn *c = (special_churn *)arg;
    static const ULONG prio[2] = {HighPoolPrioritySpecialPoolOverrun, HighPoolPrioritySpecialPoolUnderrun};
    for (unsigned long i = 0; !load_int(&c->stop) || i < 200; i++) {
        POOL_TYPE type = (i & 1) ? PagedPool : NonPagedPoolNx;
        void *p = ExAllocatePoolWithTagPriority(type, 16 + (i % 7) * 100, 'ceSp',
                                                (EX_POOL_PRIORITY)prio[(i / 2) & 1]);
        if (p)
            ExFreePoolWithTag(p, 'ceSp');
        else
            c->failed++; /* checked by the main thread: cmocka's asserts belong to it */
        c->rounds = i + 1;
    }
}

static unsigned g_special_reports;
static void count_special_report(const poolsim_bugcheck *bc, void *ctx)
{
    (void)ctx;
    if (bc->code == 0xD1)
        __atomic_add_fetch(&g_special_reports, 1, __ATOMIC_RELAXED);
}

static void test_stress_special_page_queries(void **state)
{
    poolsim_options o = poolsim_cmocka_default_options();
    special_churn c = {0, 0, 0};
    unsigned loud = 0;
    thread th;
    (void)state;
    o.force_irql = 0; /* poolsim_touch checks by itself; no protection, no faults (ThreadSanitizer) */
    o.special_pool_slots = 1;
    o.special_pool_priority = 1;
    poolsim_cmocka_reinit(&o);
    void *first =
        ExAllocatePoolWithTagPriority(NonPagedPoolNx, 16, 'ceSp', HighPoolPrioritySpecialPoolOverrun);
    assert_non_null(first);
    uintptr_t page = (uintptr_t)first & ~(uintptr_t)(PAGE_SIZE - 1);
    ExFreePoolWithTag(first, 'ceSp');
    g_out_bytes = 0;
    g_special_reports = 0;
    poolsim_set_output(count_output, NULL);
    poolsim_set_bugcheck_handler(count_special_report, NULL);
    thread_start(&th, special_churn_main, &c);
    for (int i = 0; i < 2000; i++) {
        KIRQL old;
        poolsim_report_block((const void *)(page + PAGE_SIZE - 96));
        KeRaiseIrql(DISPATCH_LEVEL, &old);
        loud += !poolsim_touch((const void *)(page + PAGE_SIZE - 96), 1);
        KeLowerIrql(old);
    }
    store_int(&c.stop, 1);
    thread_join(&th);
    poolsim_set_output(NULL, NULL);
    poolsim_cmocka_install_handler();
    assert_true(g_out_bytes > 0);
    assert_true(c.rounds >= 200);
    assert_int_equal(c.failed, 0);
    assert_int_equal(g_special_reports, loud); /* each touch that met a live paged block was reported once */
    /* The slot's last block was paged: while it lives a touch is reported, once it is freed none is. */
    {
        KIRQL old;
        void *p = ExAllocatePoolWithTagPriority(PagedPool, 100, 'ceSp', HighPoolPrioritySpecialPoolOverrun);
        assert_non_null(p);
        poolsim_set_bugcheck_handler(count_special_report, NULL);
        g_special_reports = 0;
        KeRaiseIrql(DISPATCH_LEVEL, &old);
        bool live_touch = poolsim_touch((const void *)(page + PAGE_SIZE - 96), 1);
        KeLowerIrql(old);
        ExFreePoolWithTag(p, 'ceSp');
        KeRaiseIrql(DISPATCH_LEVEL, &old);
        bool freed_touch = poolsim_touch((const void *)(page + PAGE_SIZE - 96), 1);
        KeLowerIrql(old);
        poolsim_cmocka_install_handler();
        assert_true(freed_touch);
        if (((uintptr_t)p & ~(uintptr_t)(PAGE_SIZE - 1)) == page) { /* in the special-pool slot */
            assert_false(live_touch);
            assert_int_equal(g_special_reports, 1);
        }
    }
    assert_int_equal(poolsim_validate(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stress_random_workload, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_stress_special_page_queries, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
