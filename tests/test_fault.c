/* SPDX-License-Identifier: MIT */
/*
 * test_fault.c — injected failures (Low Resources Simulation, fail-the-Nth,
 * per-site) and the systematic sweep, in both directions: what must fail
 * fails exactly as the routine fails, and nothing else does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <poolsim/wdm.h>
#include <poolsim/cmocka.h>

#include <stdio.h>
#include <string.h>

#define TAG_A 'A1aT' /* shows as "Ta1A" */
#define TAG_F 'derF' /* shows as "Fred" */
#define TAG_X 'gaTX'

static uint64_t live_blocks(void)
{
    poolsim_stats s;
    poolsim_get_stats(&s);
    return s.live_blocks;
}

/* Allocates and frees n blocks of `tag`; failed[i] tells whether allocation i
 * failed. Returns how many failed. */
static unsigned fail_pattern(ULONG tag, unsigned n, unsigned char *failed)
{
    unsigned count = 0;
    for (unsigned i = 0; i < n; i++) {
        PVOID p = ExAllocatePoolWithTag(NonPagedPoolNx, 32, tag);
        failed[i] = p == NULL;
        count += p == NULL;
        if (p)
            ExFreePoolWithTag(p, tag);
    }
    return count;
}

/* ---- Low Resources Simulation (§5.4) -------------------------------------------------- */

static void test_fault_probability_rate_and_replay(void **state)
{
    static unsigned char first[20000], second[20000];
    poolsim_fault_config cfg = {600, NULL, 0, 0, 42, 0, false, NULL, 0};
    (void)state;
    poolsim_fault_configure(&cfg);
    unsigned n1 = fail_pattern(TAG_A, 20000, first);
    /* 6% of 20000 = 1200; five standard deviations (sqrt(20000 * .06 * .94) = 33.6) either side. */
    assert_in_range(n1, 1200 - 168, 1200 + 168);
    assert_int_equal(poolsim_faults_injected(), n1);
    poolsim_fault_configure(&cfg); /* the same seed from the start: the same allocations fail */
    unsigned n2 = fail_pattern(TAG_A, 20000, second);
    assert_int_equal(n1, n2);
    assert_memory_equal(first, second, sizeof first);
    cfg.seed = 43; /* another seed: another pattern */
    poolsim_fault_configure(&cfg);
    fail_pattern(TAG_A, 20000, second);
    assert_memory_not_equal(first, second, sizeof first);
    poolsim_tag_usage_t u;
    assert_true(poolsim_tag_usage(TAG_A, &u));
    assert_int_equal(u.nonpaged.failed, poolsim_faults_injected());
}

static void test_fault_probability_off_fails_nothing(void **state)
{
    static unsigned char failed[5000];
    (void)state;
    assert_int_equal(fail_pattern(TAG_A, 5000, failed), 0); /* the default: off */
    poolsim_fault_config cfg = {10000, NULL, 0, 0, 1, 0, false, NULL, 0};
    poolsim_fault_configure(&cfg);
    assert_int_equal(fail_pattern(TAG_A, 100, failed), 100); /* certain */
    poolsim_fault_configure(NULL);
    assert_int_equal(fail_pattern(TAG_A, 5000, failed), 0);
    assert_int_equal(poolsim_faults_injected(), 100);
}

static void test_fault_tags_filter(void **state)
{
    static unsigned char failed[2000];
    poolsim_fault_config cfg = {10000, "Ta1? Zz*", 0, 0, 1, 0, false, NULL, 0};
    (void)state;
    poolsim_fault_configure(&cfg);
    assert_int_equal(fail_pattern(TAG_A, 50, failed), 50);   /* "Ta1A" matches "Ta1?" */
    assert_int_equal(fail_pattern(TAG_F, 2000, failed), 0); /* "Fred" matches neither */
    assert_int_equal(fail_pattern('xxzZ', 10, failed), 10); /* "Zzxx" matches Zz* */
}

/* poolsim keeps a copy of the tag list, 127 characters at most. A longer one is not cut (a cut pattern could
 * match more tags than asked: here "*Qz?" would become "*", every tag): injection is off, with a message;
 * 127 characters work. */
static char g_fault_out[512];
static void fault_capture(const char *text, void *ctx)
{
    (void)ctx;
    strncat(g_fault_out, text, sizeof g_fault_out - 1 - strlen(g_fault_out));
}

static void test_fault_tags_too_long(void **state)
{
    static unsigned char failed[50];
    static char tags[160]; /* a string option is kept, not copied: it outlives the instance */
    poolsim_fault_config cfg = {10000, tags, 0, 0, 1, 0, false, NULL, 0};
    (void)state;
    tags[0] = '\0';
    for (int i = 0; i < 24; i++)
        strcat(tags, "Aaaa ");
    strcat(tags, "Ta1? "); /* 125 characters */
    strcat(tags, "Zz");    /* 127 */
    poolsim_fault_configure(&cfg);
    assert_int_equal(fail_pattern(TAG_A, 50, failed), 50); /* "Ta1A" matches "Ta1?" */
    assert_int_equal(fail_pattern(TAG_F, 50, failed), 0);
    tags[125] = '\0';
    strcat(tags, " *Qz?"); /* 130: cut at 127, "*Qz?" would be "*" */
    g_fault_out[0] = '\0';
    poolsim_set_output(fault_capture, NULL);
    poolsim_fault_configure(&cfg);
    poolsim_set_output(NULL, NULL);
    assert_string_equal(g_fault_out, "poolsim: poolsim_fault_configure: the tag list is longer than 127 "
                                     "characters; fault injection is off\n");
    assert_int_equal(fail_pattern(TAG_F, 50, failed), 0);
    assert_int_equal(fail_pattern(TAG_A, 50, failed), 0);
    /* The same list as an option: poolsim_init refuses it. */
    {
        poolsim_options o = poolsim_cmocka_default_options();
        assert_int_equal(poolsim_shutdown(), 0);
        o.fault_tags = tags;
        g_fault_out[0] = '\0';
        poolsim_set_output(fault_capture, NULL);
        assert_int_equal(poolsim_init(&o), POOLSIM_E_OPTION);
        poolsim_set_output(NULL, NULL);
        assert_string_equal(g_fault_out, "poolsim: poolsim_init: option fault_tags is out of range\n");
        tags[127] = '\0';
        poolsim_cmocka_reinit(&o); /* 127 characters: accepted */
    }
}

static void test_fault_delays(void **state)
{
    static unsigned char failed[300];
    poolsim_fault_config cfg = {10000, NULL, 100, 0, 1, 0, false, NULL, 0};
    (void)state;
    poolsim_fault_configure(&cfg);
    fail_pattern(TAG_A, 300, failed);
    for (unsigned i = 0; i < 300; i++)
        assert_int_equal(failed[i], i >= 100); /* the first 100 allocations are spared */
    cfg.delay_allocs = 0;
    cfg.delay_ms = 3600000; /* an hour: nothing fails during this test */
    poolsim_fault_configure(&cfg);
    assert_int_equal(fail_pattern(TAG_A, 300, failed), 0);
}

/* ---- What a failing call returns -------------------------------------------------------- */

static void test_fault_returns_what_the_routine_returns(void **state)
{
    poolsim_fault_config cfg = {10000, NULL, 0, 0, 1, 0, false, NULL, 0};
    NTSTATUS volatile caught = 0, st = 0;
    (void)state;
    poolsim_fault_configure(&cfg);
    assert_null(ExAllocatePoolWithTag(PagedPool, 16, TAG_X));
    assert_null(ExAllocatePool2(POOL_FLAG_NON_PAGED, 16, TAG_X));
    assert_null(ExAllocatePoolWithQuotaTag((POOL_TYPE)(PagedPool | POOL_QUOTA_FAIL_INSTEAD_OF_RAISE), 16, TAG_X));
    POOLSIM_TRY { ExAllocatePoolWithQuotaTag(PagedPool, 16, TAG_X); }
    POOLSIM_EXCEPT(st) { caught = st; }
    POOLSIM_END_TRY;
    assert_int_equal(caught, STATUS_INSUFFICIENT_RESOURCES);
    caught = 0;
    POOLSIM_TRY { ExAllocatePool2(POOL_FLAG_PAGED | POOL_FLAG_RAISE_ON_FAILURE, 16, TAG_X); }
    POOLSIM_EXCEPT(st) { caught = st; }
    POOLSIM_END_TRY;
    assert_int_equal(caught, STATUS_INSUFFICIENT_RESOURCES);
    assert_int_equal(poolsim_faults_injected(), 5);
}

/* ---- Fail-the-Nth (SQLite) and per-site ------------------------------------------------ */

static void test_fault_nth_transient_and_persistent(void **state)
{
    unsigned char failed[10];
    poolsim_fault_config cfg = {0, NULL, 0, 0, 0, 4, false, NULL, 0};
    (void)state;
    poolsim_fault_configure(&cfg);
    fail_pattern(TAG_A, 10, failed);
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(failed[i], i == 3);
    cfg.persistent = true;
    poolsim_fault_configure(&cfg);
    fail_pattern(TAG_A, 10, failed);
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(failed[i], i >= 3);
}

static PVOID alloc_at_one_site(void) { return ExAllocatePoolWithTag(NonPagedPoolNx, 24, TAG_X); }

static void test_fault_site_fails_once_and_logs(void **state)
{
    poolsim_fault_record log[POOLSIM_FAULT_LOG + 1];
    PVOID other = ExAllocatePoolWithTag(NonPagedPoolNx, 8, TAG_F);
    (void)state;
    /* Find the site's line: allocate once and ask poolsim. */
    PVOID probe = alloc_at_one_site();
    poolsim_block_info info;
    assert_true(poolsim_find_block(probe, &info));
    ExFreePoolWithTag(probe, TAG_X);
    poolsim_fault_config cfg = {0, NULL, 0, 0, 0, 0, false, info.alloc_site.file, info.alloc_site.line};
    poolsim_fault_configure(&cfg);
    PVOID q = ExAllocatePoolWithTag(NonPagedPoolNx, 8, TAG_F); /* another site: not failed */
    assert_non_null(q);
    assert_null(alloc_at_one_site()); /* the first allocation at the site fails */
    PVOID p = alloc_at_one_site();    /* the second does not */
    assert_non_null(p);
    assert_int_equal(poolsim_fault_log(log, POOLSIM_FAULT_LOG + 1), 1);
    assert_string_equal(log[0].site.file, info.alloc_site.file);
    assert_int_equal(log[0].site.line, info.alloc_site.line);
    assert_string_equal(log[0].site.routine, "ExAllocatePoolWithTag");
    assert_int_equal(log[0].tag, TAG_X);
    assert_int_equal(log[0].size, 24);
    assert_int_equal(log[0].pool_type, NonPagedPoolNx);
    assert_int_equal(log[0].index, 2);
    poolsim_stats s;
    poolsim_get_stats(&s);
    assert_int_equal(s.faults_injected, 1);
    ExFreePoolWithTag(p, TAG_X);
    ExFreePoolWithTag(q, TAG_F);
    ExFreePoolWithTag(other, TAG_F);
}

static void test_fault_log_keeps_the_last_sixteen(void **state)
{
    poolsim_fault_record log[POOLSIM_FAULT_LOG];
    poolsim_fault_config cfg = {0, NULL, 0, 0, 0, 1, true, NULL, 0};
    (void)state;
    poolsim_fault_configure(&cfg);
    for (size_t size = 1; size <= 40; size++)
        assert_null(ExAllocatePoolWithTag(NonPagedPoolNx, size, TAG_X));
    assert_int_equal(poolsim_fault_log(log, POOLSIM_FAULT_LOG), POOLSIM_FAULT_LOG);
    for (size_t i = 0; i < POOLSIM_FAULT_LOG; i++)
        assert_int_equal(log[i].size, 40 - i); /* most recent first */
}

/* ---- The sweep -------------------------------------------------------------------------- */

/* A little "driver" with two allocations; `fixed` decides whether the error
 * path of the second frees the first. */
typedef struct conn {
    PVOID header, body;
} conn;

static int open_conn(conn *c, bool fixed)
{
    c->header = ExAllocatePoolWithTag(NonPagedPoolNx, 64, 'rdHC');
    if (!c->header)
        return -1;
    c->body = ExAllocatePool2(POOL_FLAG_PAGED, 256, 'ydBC');
    if (!c->body) {
        if (fixed)
            ExFreePoolWithTag(c->header, 'rdHC');
        return -1;
    }
    return 0;
}

static void close_conn(conn *c)
{
    ExFreePoolWithTag(c->body, 'ydBC');
    ExFreePoolWithTag(c->header, 'rdHC');
}

static void body(void *ctx)
{
    conn c;
    if (open_conn(&c, *(bool *)ctx) == 0)
        close_conn(&c);
}

static void quiet(const char *text, void *ctx)
{
    (void)ctx;
    strncat((char *)ctx, text, 4095 - strlen((char *)ctx));
}

static void test_fault_sweep_finds_the_leak_and_passes_the_fix(void **state)
{
    static char out[4096];
    poolsim_sweep_result r;
    bool fixed = false;
    (void)state;
    out[0] = '\0';
    poolsim_set_output(quiet, out);
    assert_int_equal(poolsim_fault_sweep(body, &fixed, &r), 1);
    assert_int_equal(r.sites, 2);
    assert_int_equal(r.runs, 3); /* the clean run, then each site once */
    assert_int_equal(r.ok, 2);
    assert_int_equal(r.leaked, 1);
    assert_int_equal(r.bugchecks + r.crashes + r.not_reached, 0);
    assert_non_null(strstr(out, "ExAllocatePool2"));
    assert_non_null(strstr(out, "leaked 1 block(s), first: tests/test_fault.c:"));
    assert_non_null(strstr(out, "CHdr 64 bytes"));
    assert_int_equal(live_blocks(), 0);

    fixed = true;
    out[0] = '\0';
    assert_int_equal(poolsim_fault_sweep(body, &fixed, &r), 0);
    assert_int_equal(r.runs, 3);
    assert_int_equal(r.ok, 3);
    assert_int_equal(r.leaked, 0);
    assert_int_equal(poolsim_fault_sweep_nth(body, &fixed, &r), 0);
    assert_int_equal(r.runs, 2); /* allocation 1 and allocation 2; allocation 3 is never made */
    assert_int_equal(r.ok, 2);
    fixed = false;
    assert_int_equal(poolsim_fault_sweep_nth(body, &fixed, &r), 1);
    assert_int_equal(r.leaked, 1);
    poolsim_set_output(NULL, NULL);
}

/* A site only an error path reaches is found and failed too. */
static void error_path_body(void *ctx)
{
    (void)ctx;
    PVOID p = ExAllocatePoolWithTag(NonPagedPoolNx, 16, 'tsrF');
    if (!p) {
        PVOID note = ExAllocatePoolWithTag(NonPagedPoolNx, 8, 'etoN'); /* only on the error path */
        if (note)
            ExFreePoolWithTag(note, 'etoN');
        return;
    }
    ExFreePoolWithTag(p, 'tsrF');
}

static void test_fault_sweep_follows_error_paths(void **state)
{
    static char out[4096];
    poolsim_sweep_result r;
    (void)state;
    out[0] = '\0';
    poolsim_set_output(quiet, out);
    assert_int_equal(poolsim_fault_sweep(error_path_body, NULL, &r), 0);
    poolsim_set_output(NULL, NULL);
    assert_int_equal(r.sites, 2);
    assert_int_equal(r.runs, 3);
    /* The error-path site is failed in a run that never reaches it (its own run
     * succeeds at the first site), so it is listed as not reached. */
    assert_int_equal(r.ok, 2);
    assert_int_equal(r.not_reached, 1);
    assert_non_null(strstr(out, "not reached"));
}

/* A body whose error path raises a bug check (double free) is reported as such. */
static void double_free_body(void *ctx)
{
    (void)ctx;
    PVOID a = ExAllocatePoolWithTag(NonPagedPoolNx, 16, 'aaaA');
    PVOID b = ExAllocatePoolWithTag(NonPagedPoolNx, 16, 'bbbB');
    if (!b) {
        ExFreePoolWithTag(a, 'aaaA');
        ExFreePoolWithTag(a, 'aaaA'); /* the bug */
        return;
    }
    ExFreePoolWithTag(b, 'bbbB');
    if (a)
        ExFreePoolWithTag(a, 'aaaA');
}

static void test_fault_sweep_reports_bug_checks(void **state)
{
    static char out[4096];
    poolsim_sweep_result r;
    (void)state;
    out[0] = '\0';
    poolsim_set_output(quiet, out);
    assert_int_equal(poolsim_fault_sweep(double_free_body, NULL, &r), 1);
    poolsim_set_output(NULL, NULL);
    assert_int_equal(r.bugchecks, 1);
    assert_non_null(strstr(out, "bug check 0xc4/0x13 DRIVER_VERIFIER_DETECTED_VIOLATION"));
    assert_int_equal(live_blocks(), 0);
}

#ifndef _WIN32
/* A body that dereferences a failed allocation: the run's child process dies
 * and the sweep goes on (POSIX only; on Windows the runs share the process). */
static void crashing_body(void *ctx)
{
    (void)ctx;
    volatile char *p = (volatile char *)ExAllocatePoolWithTag(NonPagedPoolNx, 16, 'hsrC');
    p[0] = 1; /* no NULL check: the bug */
    ExFreePoolWithTag((PVOID)p, 'hsrC');
}

static void test_fault_sweep_isolates_crashes(void **state)
{
    static char out[4096];
    poolsim_sweep_result r;
    (void)state;
    out[0] = '\0';
    poolsim_set_output(quiet, out);
    assert_int_equal(poolsim_fault_sweep(crashing_body, NULL, &r), 1);
    poolsim_set_output(NULL, NULL);
    assert_int_equal(r.crashes, 1);
    assert_int_equal(r.ok, 1);
    assert_non_null(strstr(out, "crash (signal ")); /* SIGSEGV, or SIGABRT under ASan */
}
#endif

/* ---- The CMocka helpers ------------------------------------------------------------------ */

static void test_fault_cmocka_helpers(void **state)
{
    bool fixed = true;
    (void)state;
    poolsim_cmocka_snapshot snap = poolsim_cmocka_snap();
    PVOID p = ExAllocatePoolWithTag(NonPagedPoolNx, 10, TAG_X);
    assert_int_equal(poolsim_live_since(snap.seq, NULL, 0), 1);
    ExFreePoolWithTag(p, TAG_X);
    assert_snapshot_balanced(snap);
    assert_pool_tag_balanced(TAG_X);
    poolsim_set_output(quiet, (char[4096]){0});
    assert_fault_sweep_clean(body, &fixed);
    poolsim_set_output(NULL, NULL);
}

/* assert_pool_tag_balanced counts what is live for a tag with no row of its own too: one that came after
 * the table's 768 (the overflow row counts it), or 0xFFFFFFFF (PROTECTED_POOL | 0x7FFFFFFF). */
static ULONG numbered_tag(unsigned i) /* "000T", "100T", ... "997T": i in memory order, then 'T' */
{
    return (ULONG)('0' + i % 10) | (ULONG)('0' + i / 10 % 10) << 8 | (ULONG)('0' + i / 100 % 10) << 16 |
           (ULONG)'T' << 24;
}

static void test_fault_cmocka_tag_beyond_the_table(void **state)
{
    static PVOID p[800];
    uint64_t blocks[2], bytes[2];
    const ULONG last = numbered_tag(799);
    (void)state;
    for (unsigned i = 0; i < 800; i++)
        assert_non_null(p[i] =
                            ExAllocatePoolWithTag(i & 1 ? PagedPool : NonPagedPoolNx, 24, numbered_tag(i)));
    for (unsigned i = 0; i < 799; i++)
        ExFreePoolWithTag(p[i], numbered_tag(i));
    assert_true(poolsim_cmocka_tag_live_(last, blocks, bytes));
    assert_true(blocks[0] == 0 && blocks[1] == 1 && bytes[1] == 24); /* 799 is odd: paged */
    ExFreePoolWithTag(p[799], last);
    assert_true(poolsim_cmocka_tag_live_(last, blocks, bytes));
    assert_true(blocks[0] == 0 && blocks[1] == 0);
    assert_pool_tag_balanced(last);
    {
        poolsim_options o = poolsim_cmocka_default_options();
        o.family = POOLSIM_FAMILY_RETAIL; /* Verifier's 0x9D refuses the tag: its bytes are not characters */
        poolsim_cmocka_reinit(&o);
    }
    p[0] = ExAllocatePoolWithTag(NonPagedPoolNx, 16, 0xFFFFFFFFu);
    assert_non_null(p[0]);
    assert_true(poolsim_cmocka_tag_live_(0xFFFFFFFFu, blocks, bytes));
    assert_true(blocks[0] == 1 && bytes[0] == 16);
    ExFreePoolWithTag(p[0], 0xFFFFFFFFu);
    assert_pool_tag_balanced(0xFFFFFFFFu);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, poolsim_cmocka_setup, poolsim_cmocka_teardown)
    const struct CMUnitTest tests[] = {
        T(test_fault_probability_rate_and_replay),
        T(test_fault_probability_off_fails_nothing),
        T(test_fault_tags_filter),
        T(test_fault_tags_too_long),
        T(test_fault_delays),
        T(test_fault_returns_what_the_routine_returns),
        T(test_fault_nth_transient_and_persistent),
        T(test_fault_site_fails_once_and_logs),
        T(test_fault_log_keeps_the_last_sixteen),
        T(test_fault_sweep_finds_the_leak_and_passes_the_fix),
        T(test_fault_sweep_follows_error_paths),
        T(test_fault_sweep_reports_bug_checks),
        T(test_fault_cmocka_helpers),
        T(test_fault_cmocka_tag_beyond_the_table),
#ifndef _WIN32
        T(test_fault_sweep_isolates_crashes),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
