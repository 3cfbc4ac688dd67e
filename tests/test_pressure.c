/* SPDX-License-Identifier: MIT */
/*
 * test_pressure.c — reports under pressure. The reporting path allocates
 * nothing: the backing allocator (poolsim__prim_meta_alloc, wrapped at link
 * time with --wrap) counts its calls and can be made to fail, and every
 * report prints in full while it fails, with no call made. A slow output
 * callback still gets whole reports, one at a time, from two threads. The
 * default handler caps repeats (max_repeats, default 1): the same violation
 * at the same call site is printed once, then one line says further ones are
 * only counted, and poolsim_shutdown prints how many there were; another site
 * or another violation is printed as usual, and a handler of the test's own
 * sees every bug check.
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

#define TAG ((ULONG)'gaTX') /* "XTag" */

/* ---- The backing allocator, wrapped (CMakeLists.txt: -Wl,--wrap=poolsim__prim_meta_alloc) ------------- */

void *__real_poolsim__prim_meta_alloc(size_t bytes);
void *__wrap_poolsim__prim_meta_alloc(size_t bytes);

static int g_meta_fail;
static int g_meta_calls;
static int g_meta_budget = -1; /* >= 0: how many more calls succeed before every later one fails */

void *__wrap_poolsim__prim_meta_alloc(size_t bytes)
{
    __atomic_add_fetch(&g_meta_calls, 1, __ATOMIC_RELAXED);
    if (load_int(&g_meta_fail) ||
        (load_int(&g_meta_budget) >= 0 && __atomic_sub_fetch(&g_meta_budget, 1, __ATOMIC_RELAXED) < 0))
        return NULL;
    return __real_poolsim__prim_meta_alloc(bytes);
}

/* ---- Output capture (several threads may write) ---------------------------------------------------------
 */

static char g_text[1 << 20];
static size_t g_len;
static int g_slow; /* the writer sleeps this many ms per piece */

static void capture(const char *text, void *ctx)
{
    size_t n = strlen(text);
    size_t at = __atomic_fetch_add(&g_len, n, __ATOMIC_RELAXED);
    (void)ctx;
    if (at + n < sizeof g_text)
        memcpy(g_text + at, text, n);
    if (g_slow)
        sleep_ms((unsigned)g_slow);
}

static void capture_start(int slow_ms)
{
    memset(g_text, 0, sizeof g_text);
    g_len = 0;
    g_slow = slow_ms;
    poolsim_set_output(capture, NULL);
}

static void capture_stop(void) { poolsim_set_output(NULL, NULL); }

static unsigned count_of(const char *hay, const char *needle)
{
    unsigned n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

#define assert_printed(needle) assert_non_null(strstr(g_text, (needle)))

/* A fresh instance whose default handler prints and returns. */
static void start_continue(uint32_t max_reports, uint32_t max_repeats)
{
    poolsim_options o = poolsim_cmocka_default_options();
    o.continue_on_bugcheck = 1;
    o.max_reports = max_reports;
    o.max_repeats = max_repeats;
    poolsim_cmocka_reinit(&o);
    poolsim_set_bugcheck_handler(NULL, NULL);
}

static int teardown(void **state)
{
    store_int(&g_meta_fail, 0);
    store_int(&g_meta_budget, -1);
    capture_stop();
    poolsim_cmocka_install_handler();
    return poolsim_cmocka_teardown(state);
}

/* ---- No allocation on the reporting path ------------------------------------------------------------------
 */

static void test_pressure_reports_allocate_nothing(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old;
    uint8_t *p, *q;
    poolsim_bugcheck bc_double, bc_irql, bc_overrun;
    (void)state;
    KeInitializeSpinLock(&lock);
    p = (uint8_t *)ExAllocatePoolWithTag(NonPagedPoolNx, 40, TAG);
    q = (uint8_t *)ExAllocatePoolWithTag(PagedPool, 24, TAG);
    assert_non_null(p);
    assert_non_null(q);
    ExFreePoolWithTag(p, TAG);
    expect_bugcheck(0xC4, 0x13, ExFreePoolWithTag(p, TAG));
    bc_double = *poolsim_cmocka_last();
    KeAcquireSpinLock(&lock, &old);
    expect_bugcheck(0xC4, 0x01, (void)ExAllocatePoolWithTag(PagedPool, 8, TAG));
    bc_irql = *poolsim_cmocka_last();
    KeReleaseSpinLock(&lock, old);
    q[24] ^= 0x5A;
    expect_bugcheck(0xC4, 0x51, (void)poolsim_validate());
    bc_overrun = *poolsim_cmocka_last();
    KeAcquireSpinLock(&lock, &old); /* something for poolsim_report_thread to show */

    /* Every report, with the backing allocator failing: complete, and not one call to it. */
    capture_start(0);
    store_int(&g_meta_fail, 1);
    store_int(&g_meta_calls, 0);
    poolsim_report_bugcheck(&bc_double);
    poolsim_report_bugcheck(&bc_irql);
    poolsim_report_bugcheck(&bc_overrun);
    poolsim_report_thread();
    poolsim_report_poolused(POOLSIM_POOLUSED_VERBOSE, NULL);
    poolsim_report_outstanding();
    poolsim_report_stats();
    poolsim_report_block(q);
    assert_int_equal(load_int(&g_meta_calls), 0);
    store_int(&g_meta_fail, 0);
    capture_stop();
    KeReleaseSpinLock(&lock, old);
    q[24] ^= 0x5A;
    ExFreePoolWithTag(q, TAG);

    assert_printed("DRIVER_VERIFIER_DETECTED_VIOLATION (c4) Arg1 0x13 double free");
    assert_printed("DRIVER_VERIFIER_DETECTED_VIOLATION (c4) Arg1 0x1 paged pool allocation");
    assert_printed("DRIVER_VERIFIER_DETECTED_VIOLATION (c4) Arg1 0x51 free of a block written");
    assert_int_equal(count_of(g_text, "\nRaised: "), 3);
    assert_printed("Damage: overrun at block+0x18");
    assert_int_equal(count_of(g_text, "IRQL history, oldest first ("),
                     2); /* the IRQL report and the thread */
    assert_printed("lock(s) held, 0 critical region(s)\n  holds ");
    assert_printed(" -> DISPATCH_LEVEL acquire KeAcquireSpinLock ");
    assert_printed(" TOTAL");
    assert_printed("allocation(s) outstanding");
    assert_printed("Pool Allocations Succeeded");
    assert_printed("(Allocated)");
}

/* The whole path, detection to the default handler's report and the leak table at shutdown, with the
 * backing allocator failing. */
static void test_pressure_reports_when_memory_is_exhausted(void **state)
{
    char stack_buf[16];
    uint8_t *p, *leak;
    KIRQL old;
    (void)state;
    start_continue(0, 1);
    p = (uint8_t *)ExAllocatePoolWithTag(NonPagedPoolNx, 40, TAG);
    leak = (uint8_t *)ExAllocatePoolWithTag(NonPagedPoolNx, 72, TAG);
    assert_non_null(p);
    assert_non_null(leak);
    ExFreePoolWithTag(p, TAG);
    capture_start(0);
    store_int(&g_meta_fail, 1);
    store_int(&g_meta_calls, 0);
    ExFreePoolWithTag(p, TAG);         /* double free */
    ExFreePoolWithTag(stack_buf, TAG); /* not pool */
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    KeRaiseIrql(APC_LEVEL, &old); /* a bad raise */
    KeLowerIrql(PASSIVE_LEVEL);
    assert_int_equal(poolsim_shutdown(), 1); /* the leak table and C4/0x62 */
    assert_int_equal(load_int(&g_meta_calls), 0);
    store_int(&g_meta_fail, 0);
    capture_stop();
    assert_int_equal(count_of(g_text, "*** Fatal System Error"), 4);
    assert_printed("Arg1 0x13 double free");
    assert_printed("Arg1 0x10 free of an address never returned");
    assert_printed("Arg1 0x30 KeRaiseIrql to a lower IRQL");
    assert_printed("IRQL history, oldest first (1):");
    assert_printed("poolsim: LEAK: 1 block(s), 72 bytes still allocated");
    assert_printed(" 1 allocation(s) outstanding, 72 bytes\n");
    assert_printed("Arg1 0x62 driver unloading");
    assert_int_equal(count_of(g_text, "\nRaised: "), 4);
}

/* ---- A chunk the page map cannot take ---------------------------------------------------------------- */

/* The first block of an instance maps a chunk and enters its pages in the page map, which needs a node of
 * the map: with no memory for it the allocation fails, and the chunk's descriptor (which map entries made
 * before the failure may point at) is kept until shutdown instead of being lost. The leak checks of the
 * asan and valgrind stages run this file. */
static void test_pressure_chunk_not_mapped(void **state)
{
    poolsim_stats s;
    (void)state;
    poolsim_cmocka_reinit(NULL);
    store_int(&g_meta_budget, 1); /* the chunk's descriptor, then nothing */
    assert_null(ExAllocatePoolWithTag(NonPagedPoolNx, 64, TAG));
    store_int(&g_meta_budget, -1);
    void *p = ExAllocatePoolWithTag(NonPagedPoolNx, 64, TAG);
    assert_non_null(p);
    poolsim_get_stats(&s);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.live_blocks, 1);
    ExFreePoolWithTag(p, TAG);
}

/* ---- A slow writer ------------------------------------------------------------------------------------- */

#define SLOW_REPORTS 8

static void slow_raiser(void *arg)
{
    uintptr_t base = *(const uintptr_t *)arg;
    for (uintptr_t i = 0; i < SLOW_REPORTS; i++)
        poolsim_bugcheck_raise(0xDEAD, base + i, 0, 0, 0, "drv/slow.c", (int)(base + i), "KeBugCheckEx");
}

/* A block allocated while poolsim has no memory for a new part of the site table is counted without its
 * call site; the next call from that site, with memory back, gets its row (the shard's cache of the last
 * site must not keep the miss). */
static const char g_sites_file[] = "drv/sites.c";

static void *alloc_line(int line)
{
    poolsim_alloc_req req;
    memset(&req, 0, sizeof req);
    req.routine = POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG;
    req.type = NonPagedPoolNx;
    req.size = 8;
    req.tag = TAG;
    return poolsim_pool_alloc(&req, NULL, g_sites_file, line);
}

static void test_pressure_site_table_without_memory(void **state)
{
    enum { FIRST_PART = 255 }; /* the table's first part: sites 1..255 (0 is "unknown") */
    void *b[FIRST_PART], *p, *q;
    poolsim_block_info info;
    poolsim_stats st;
    (void)state;
    for (int i = 0; i < FIRST_PART; i++)
        assert_non_null(b[i] = alloc_line(i + 1));
    poolsim_get_stats(&st);
    assert_int_equal(st.sites, FIRST_PART);
    store_int(&g_meta_fail, 1);
    p = alloc_line(1000); /* a free slot in a page poolsim has: only the site's row needs memory */
    store_int(&g_meta_fail, 0);
    assert_non_null(p);
    assert_true(poolsim_find_block(p, &info));
    assert_null(info.alloc_site.file);
    assert_int_equal(info.tag, TAG);
    q = alloc_line(1000);
    assert_non_null(q);
    assert_true(poolsim_find_block(q, &info));
    assert_ptr_equal(info.alloc_site.file, g_sites_file);
    assert_int_equal(info.alloc_site.line, 1000);
    ExFreePoolWithTag(p, TAG);
    ExFreePoolWithTag(q, TAG);
    for (int i = 0; i < FIRST_PART; i++)
        ExFreePoolWithTag(b[i], TAG);
    assert_int_equal(poolsim_validate(), 0);
}

static void test_pressure_slow_writer_gets_whole_reports(void **state)
{
    static const uintptr_t base[2] = {100, 200};
    thread a, b;
    const char *at;
    unsigned reports = 0;
    (void)state;
    start_continue(0, 1);
    capture_start(1); /* 1 ms per piece: a report takes about 15 ms */
    thread_start(&a, slow_raiser, (void *)&base[0]);
    thread_start(&b, slow_raiser, (void *)&base[1]);
    thread_join(&a);
    thread_join(&b);
    capture_stop();
    assert_int_equal(poolsim_bugcheck_count(), 2 * SLOW_REPORTS);
    /* Each report, from its first line to its "Raised:" line, is whole: no line of another report inside. */
    for (at = strstr(g_text, "\npoolsim: UNKNOWN_BUGCHECK (dead) Arg1 0x"); at;
         at = strstr(at + 1, "\npoolsim: UNKNOWN_BUGCHECK (dead) Arg1 0x")) {
        unsigned long arg1 = strtoul(at + strlen("\npoolsim: UNKNOWN_BUGCHECK (dead) Arg1 0x"), NULL, 16);
        const char *raised = strstr(at, "\nRaised: ");
        const char *next = strstr(at + 1, "\npoolsim: ");
        char want[64];
        assert_non_null(raised);
        assert_true(next == NULL || next > raised);
        snprintf(want, sizeof want, "\nRaised: at drv/slow.c:%lu by KeBugCheckEx", arg1);
        assert_true(strncmp(raised, want, strlen(want)) == 0);
        assert_int_equal(count_of(at, "\nArguments:\n") - (next ? count_of(next, "\nArguments:\n") : 0), 1);
        reports++;
    }
    assert_int_equal(reports, 2 * SLOW_REPORTS);
}

/* ---- Repeats --------------------------------------------------------------------------------------------
 */

static unsigned g_seen;

static void counting_handler(const poolsim_bugcheck *bc, void *ctx)
{
    (void)bc;
    (void)ctx;
    g_seen++;
}

static void test_pressure_repeats_capped(void **state)
{
    char a[8], b[8];
    char want[200];
    int line_loop = 0, line_other = 0;
    (void)state;
    start_continue(100, 1);
    capture_start(0);
    for (int i = 0; i < 1000; i++)
        ExFreePoolWithTag(a, TAG), line_loop = __LINE__;
    /* The legal neighbours of a repeat: the same violation at another site, another violation at one site. */
    ExFreePoolWithTag(a, TAG), line_other = __LINE__;
    capture_stop();
    assert_int_equal(poolsim_bugcheck_count(), 1001);
    assert_int_equal(count_of(g_text, "*** Fatal System Error"), 2);
    snprintf(
        want, sizeof want,
        "poolsim: bug check 0xc4/0x10 at tests/test_pressure.c:%d (ExFreePoolWithTag) again: further reports "
        "of it are counted, not printed (max_repeats)\n",
        line_loop);
    assert_int_equal(count_of(g_text, want), 1);
    assert_int_equal(count_of(g_text, "further reports of it are counted"), 1);
    snprintf(want, sizeof want, "Raised: at tests/test_pressure.c:%d by ExFreePoolWithTag", line_other);
    assert_printed(want);
    /* With the site unknown (a real-named function), the same code and parameters are the same violation. */
    capture_start(0);
    for (int i = 0; i < 5; i++)
        (ExFreePoolWithTag)(a, TAG);
    (ExFreePoolWithTag)(b, TAG); /* another address: another violation */
    assert_int_equal(count_of(g_text, "*** Fatal System Error"), 2);
    snprintf(want, sizeof want, "poolsim: bug check 0xc4 (0x10, 0x%llx, 0x0, 0x0) by ExFreePoolWithTag again",
             (unsigned long long)(uintptr_t)a);
    assert_int_equal(count_of(g_text, want), 1);
    /* poolsim_shutdown says how many were not printed. */
    capture_start(0);
    assert_int_equal(poolsim_shutdown(), 0);
    capture_stop();
    snprintf(want, sizeof want,
             "poolsim: bug check 0xc4/0x10 at tests/test_pressure.c:%d (ExFreePoolWithTag): raised 1000 "
             "times, 999 "
             "not printed (max_repeats)\n",
             line_loop);
    assert_int_equal(count_of(g_text, want), 1);
    snprintf(want, sizeof want,
             "poolsim: bug check 0xc4 (0x10, 0x%llx, 0x0, 0x0) by ExFreePoolWithTag: raised 5 times, 4 not "
             "printed "
             "(max_repeats)\n",
             (unsigned long long)(uintptr_t)a);
    assert_int_equal(count_of(g_text, want), 1);
    assert_int_equal(count_of(g_text, "poolsim: bug check "),
                     2); /* the violations printed once are not listed */
    assert_null(strstr(g_text, "(max_reports)"));
}

static void test_pressure_repeats_options(void **state)
{
    char a[8];
    (void)state;
    /* max_repeats = 3: three full reports, then the line. */
    start_continue(0, 3);
    capture_start(0);
    for (int i = 0; i < 10; i++)
        ExFreePoolWithTag(a, TAG);
    capture_stop();
    assert_int_equal(count_of(g_text, "*** Fatal System Error"), 3);
    assert_int_equal(count_of(g_text, "further reports of it are counted"), 1);
    /* max_repeats = 0: no cap. */
    start_continue(0, 0);
    capture_start(0);
    for (int i = 0; i < 10; i++)
        ExFreePoolWithTag(a, TAG);
    capture_stop();
    assert_int_equal(count_of(g_text, "*** Fatal System Error"), 10);
    assert_null(strstr(g_text, "max_repeats"));
    /* A handler of the test's own sees every bug check: the cap is the default handler's printing only. */
    start_continue(0, 1);
    g_seen = 0;
    poolsim_set_bugcheck_handler(counting_handler, NULL);
    capture_start(0);
    for (int i = 0; i < 10; i++)
        ExFreePoolWithTag(a, TAG);
    capture_stop();
    assert_int_equal(g_seen, 10);
    assert_int_equal(g_len, 0);
    /* Repeats do not count against max_reports: 1 printed of 10 repeats, then 2 more distinct ones fit in 3.
     */
    start_continue(3, 1);
    capture_start(0);
    for (int i = 0; i < 10; i++)
        ExFreePoolWithTag(a, TAG);
    ExFreePoolWithTag(a, TAG);
    ExFreePoolWithTag(a, TAG);
    ExFreePoolWithTag(a, TAG);
    capture_stop();
    assert_int_equal(count_of(g_text, "*** Fatal System Error"), 3);
    assert_int_equal(count_of(g_text, "further reports are counted, not printed (max_reports)"), 1);
    capture_start(0);
    assert_int_equal(poolsim_shutdown(), 0);
    capture_stop();
    assert_printed("poolsim: 1 more report(s) not printed (max_reports)\n");
}

/* ---- Special pool without memory for its region -------------------------------------------------------- */

unsigned poolsim__shard_of_thread(uint32_t thread); /* src/tracker.c */
uint32_t poolsim__prim_thread_id(void);             /* src/prim/prim.h */

/* A block of shard 0, the shard whose lock special pool takes: allocated by one of 64 threads alive at once
 * (so their ids differ; Windows reuses the id of a thread that ended) that lands there. */
#define SHARD0_THREADS 64
static void *g_shard0_block;
static int g_shard0_checked, g_shard0_go;
static void alloc_in_shard0(void *arg)
{
    void *expected = NULL, *p;
    (void)arg;
    if (poolsim__shard_of_thread(poolsim__prim_thread_id()) == 0 &&
        (p = ExAllocatePoolWithTag(NonPagedPoolNx, 32, TAG)) != NULL &&
        !__atomic_compare_exchange_n(&g_shard0_block, &expected, p, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        ExFreePoolWithTag(p, TAG); /* another thread of shard 0 was first */
    __atomic_add_fetch(&g_shard0_checked, 1, __ATOMIC_ACQ_REL);
    while (!load_int(&g_shard0_go))
        sleep_ms(1);
}

/* The output callback a driver's test may install: it uses the pool, here by freeing a block of shard 0. */
static void capture_and_free(const char *text, void *ctx)
{
    capture(text, ctx);
    if (strstr(text, "special pool could not be set up") && g_shard0_block) {
        ExFreePoolWithTag(g_shard0_block, TAG);
        g_shard0_block = NULL;
    }
}

/* Special pool's region is made at the first request for it; when the platform has no memory for its
 * records, the request is served by normal pool, special pool is off for the instance (no later request is
 * selected or tries again) and one line says so, printed with no lock held: an output callback that frees a
 * block of shard 0 returns (it waited for itself when the line was printed under that shard's lock). */
static void test_pressure_special_pool_without_memory(void **state)
{
    poolsim_options o = poolsim_cmocka_default_options();
    poolsim_stats s;
    void *warm, *p, *q;
    (void)state;
    o.special_pool_slots = 4;
    poolsim_cmocka_reinit(&o);
    warm = ExAllocatePoolWithTag(NonPagedPoolNx, 64, TAG); /* its page serves p with no new records */
    assert_non_null(warm);
    {
        static thread t[SHARD0_THREADS];
        g_shard0_block = NULL;
        g_shard0_checked = g_shard0_go = 0;
        for (int i = 0; i < SHARD0_THREADS; i++)
            thread_start(&t[i], alloc_in_shard0, NULL);
        while (load_int(&g_shard0_checked) < SHARD0_THREADS)
            sleep_ms(1);
        store_int(&g_shard0_go, 1);
        for (int i = 0; i < SHARD0_THREADS; i++)
            thread_join(&t[i]);
    }
    assert_non_null(g_shard0_block); /* 64 distinct ids miss shard 0 with a chance of (7/8)^64, 2e-4 */
    memset(g_text, 0, sizeof g_text);
    g_len = 0;
    g_slow = 0;
    poolsim_set_output(capture_and_free, NULL);
    store_int(&g_meta_budget, 0);
    p = ExAllocatePool2(POOL_FLAG_NON_PAGED | POOL_FLAG_SPECIAL_POOL, 64, TAG);
    store_int(&g_meta_budget, -1);
    q = ExAllocatePool2(POOL_FLAG_NON_PAGED | POOL_FLAG_SPECIAL_POOL, 64, TAG);
    capture_stop();
    assert_non_null(p);
    assert_non_null(q);
    poolsim_get_stats(&s);
    assert_int_equal(count_of(g_text,
                              "poolsim: special pool could not be set up: every allocation comes from "
                              "normal pool\n"),
                     1);
    assert_null(g_shard0_block);             /* freed by the callback, which returned */
    assert_int_equal(s.special_fallback, 1); /* q was not selected at all */
    assert_int_equal(s.special_allocs, 0);
    assert_int_not_equal(((uintptr_t)p + 64) % PAGE_SIZE, 0); /* not at a special-pool page's end */
    ExFreePoolWithTag(p, TAG);
    ExFreePoolWithTag(q, TAG);
    ExFreePoolWithTag(warm, TAG);
    assert_int_equal(poolsim_validate(), 0);
    assert_int_equal(poolsim_bugcheck_count(), 0);
}

/* poolsim_init when the platform has no memory for the instance, then none for its first table: it returns
 * POOLSIM_E_NOMEM, says so in one line each time, and leaves nothing behind (a leak here fails the ASan and
 * Valgrind runs); with memory back, init succeeds and the instance works. */
static void test_pressure_init_without_memory(void **state)
{
    poolsim_options o = poolsim_cmocka_default_options();
    static const char line[] = "poolsim: poolsim_init: the platform gave no memory for poolsim's own tables; "
                               "poolsim is not initialised\n";
    void *p;
    (void)state;
    assert_int_equal(poolsim_shutdown(), 0);
    capture_start(0);
    store_int(&g_meta_fail, 1);
    assert_int_equal(poolsim_init(&o), POOLSIM_E_NOMEM);
    store_int(&g_meta_fail, 0);
    assert_false(poolsim_initialized());
    store_int(&g_meta_budget, 1); /* the instance itself, then nothing */
    assert_int_equal(poolsim_init(&o), POOLSIM_E_NOMEM);
    store_int(&g_meta_budget, -1);
    assert_false(poolsim_initialized());
    assert_int_equal(count_of(g_text, line), 2);
    assert_int_equal(poolsim_init(&o), POOLSIM_OK);
    capture_stop();
    assert_int_equal(count_of(g_text, line), 2);
    p = ExAllocatePoolWithTag(NonPagedPoolNx, 40, TAG);
    assert_non_null(p);
    ExFreePoolWithTag(p, TAG);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, poolsim_cmocka_setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_pressure_reports_allocate_nothing),
        T(test_pressure_reports_when_memory_is_exhausted),
        T(test_pressure_slow_writer_gets_whole_reports),
        T(test_pressure_repeats_capped),
        T(test_pressure_repeats_options),
        T(test_pressure_chunk_not_mapped),
        T(test_pressure_site_table_without_memory),
        T(test_pressure_special_pool_without_memory),
        T(test_pressure_init_without_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
