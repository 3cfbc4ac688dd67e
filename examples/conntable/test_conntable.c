/* SPDX-License-Identifier: MIT */
/*
 * test_conntable.c — the connection table (conntable.c) under poolsim, built
 * twice with it: test_conntable_buggy (CONNTABLE_PLANT_LEAK=1) and
 * test_conntable_fixed (0). Both builds pass the ordinary paths with every
 * tag balanced and no bug check, and keep the IRQL rules. The fault sweeps
 * tell them apart: on the buggy build, the per-site sweep reports exactly one
 * leak, in the run that fails the buffer's ExAllocatePool2, naming the
 * entry's ExAllocateFromNPagedLookasideList as the leaked block's site; the
 * Nth sweep reports the five allocations whose failure takes that error path.
 * On the fixed build both sweeps are clean. The sites come from
 * ConnTableSites (CONN_SITE in conntable.c), never from hard-coded lines.
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

#include "conntable.h"

#ifndef CONNTABLE_PLANT_LEAK
#error "build this test with CONNTABLE_PLANT_LEAK=0 or 1, as conntable.c"
#endif

static const CONN_TABLE_CONFIG test_config = {4, 256, "conntable-test"};

/* The sweeps' body: the life of a table with every path of Open and Close. In
 * a run without failures it makes ten allocations: 1 the configuration; 2-3,
 * 4-5, 6-7 the entries and buffers of connections 1, 2 and 3; 8-9 an entry and
 * a buffer for connection 2 again, given back on the collision; 10 the buffer
 * of connection 4, whose entry the lookaside list hands back from close(2). */
static void conntable_scenario(void *ctx)
{
    CONN_TABLE table;
    PCONN_ENTRY entry;
    (void)ctx;
    if (!NT_SUCCESS(ConnTableInitialize(&table, &test_config)))
        return;
    (void)ConnTableOpen(&table, 1, &entry);
    (void)ConnTableOpen(&table, 2, &entry);
    (void)ConnTableOpen(&table, 3, &entry);
    (void)ConnTableOpen(&table, 2, &entry);
    (void)ConnTableClose(&table, 2);
    (void)ConnTableOpen(&table, 4, &entry);
    (void)ConnTableClose(&table, 1);
    ConnTableUninitialize(&table); /* closes 3 and 4 */
}

/* Runs the scenario once without failures, which must leave nothing behind,
 * and so records conntable.c's allocation sites in ConnTableSites. */
static void learn_sites(void)
{
    poolsim_cmocka_snapshot s = poolsim_cmocka_snap();
    memset(&ConnTableSites, 0, sizeof ConnTableSites);
    conntable_scenario(NULL);
    assert_snapshot_balanced(s);
    assert_non_null(ConnTableSites.File);
    assert_true(ConnTableSites.ConfigLine > 0);
    assert_true(ConnTableSites.EntryLine > ConnTableSites.ConfigLine);
    assert_true(ConnTableSites.BufferLine > ConnTableSites.EntryLine);
}

/* ---- The sweep table, captured -------------------------------------------------------------------- */

static char captured[16384];

/* The sweep's output: kept for the assertions and shown in the test log. */
static void capture(const char *text, void *ctx)
{
    (void)ctx;
    strncat(captured, text, sizeof captured - 1 - strlen(captured));
    fputs(text, stdout);
}

/* Appends a line to an expected table. */
static void expect_line(char *buf, size_t size, const char *fmt, ...)
{
    size_t n = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, size - n, fmt, ap);
    va_end(ap);
    strncat(buf, "\n", size - 1 - strlen(buf));
}

/* Copies text with every run of spaces made one and no space at a line's
 * ends, so a table compares whatever its column widths. */
static void squeeze(const char *text, char *out, size_t size)
{
    size_t n = 0;
    for (const char *c = text; *c && n + 1 < size; c++) {
        if (*c == ' ' && (n == 0 || out[n - 1] == ' ' || out[n - 1] == '\n'))
            continue;
        if (*c == '\n' && n > 0 && out[n - 1] == ' ')
            n--;
        out[n++] = *c;
    }
    out[n] = '\0';
}

static void assert_table_equal(const char *expected, const char *actual)
{
    static char e[16384], a[16384];
    squeeze(expected, e, sizeof e);
    squeeze(actual, a, sizeof a);
    assert_string_equal(a, e);
}

/* A site as the table shows it: the last two components of the path, the line. */
static const char *site_text(int line)
{
    static char buf[4][256];
    static unsigned next;
    const char *f = ConnTableSites.File, *cut[2] = {f, f};
    char *out = buf[next++ % 4];
    for (const char *c = f; *c; c++) {
        if (*c == '/' || *c == '\\') {
            cut[0] = cut[1];
            cut[1] = c + 1;
        }
    }
    snprintf(out, sizeof buf[0], "%s:%d", cut[0], line);
    return out;
}

/* What a run that leaves the entry of a failed Open behind reports. */
static const char *entry_leak(void)
{
    static char buf[300];
    snprintf(buf, sizeof buf, "leaked 1 block(s), first: %s CEnt %lu bytes",
             site_text(ConnTableSites.EntryLine), (unsigned long)sizeof(CONN_ENTRY));
    return buf;
}

/* ---- Ordinary paths ---------------------------------------------------------------------------------- */

static uint64_t tag_allocs(ULONG tag, bool paged)
{
    poolsim_tag_usage_t u;
    assert_true(poolsim_tag_usage(tag, &u));
    return paged ? u.paged.allocs : u.nonpaged.allocs;
}

static void test_conntable_open_close(void **state)
{
    CONN_TABLE table;
    PCONN_ENTRY e1, e2, e3, e4, e5, dup;
    (void)state;
    assert_int_equal(ConnTableInitialize(&table, &test_config), STATUS_SUCCESS);
    assert_string_equal(table.Config->Name, "conntable-test");
    assert_int_equal(ConnTableOpen(&table, 1, &e1), STATUS_SUCCESS);
    assert_int_equal(ConnTableOpen(&table, 2, &e2), STATUS_SUCCESS);
    assert_int_equal(ConnTableOpen(&table, 3, &e3), STATUS_SUCCESS);
    assert_int_equal(e2->Key, 2);
    assert_int_equal(e2->BufferSize, 256);
    assert_true(poolsim_valid_access(e2->Buffer, 256));
    memset(e2->Buffer, 0x42, 256);

    /* The refusals give back what Open allocated before the lock. */
    assert_int_equal(ConnTableOpen(&table, 2, &dup), STATUS_OBJECT_NAME_COLLISION);
    assert_null(dup);
    assert_int_equal(ConnTableOpen(&table, 4, &e4), STATUS_SUCCESS);
    assert_int_equal(ConnTableOpen(&table, 5, &e5), STATUS_QUOTA_EXCEEDED); /* MaxConnections is 4 */
    assert_null(e5);
    assert_int_equal(ConnTableClose(&table, 9), STATUS_NOT_FOUND);
    assert_int_equal(ConnTableClose(&table, 2), STATUS_SUCCESS);
    assert_int_equal(ConnTableClose(&table, 2), STATUS_NOT_FOUND);
    assert_int_equal(ConnTableOpen(&table, 5, &e5), STATUS_SUCCESS);
    assert_ptr_equal(e5, e2); /* the lookaside list is LIFO: close(2) gave the entry back */
    assert_int_equal(table.Count, 4);
    ConnTableUninitialize(&table);

    /* Five entries came from the pool for seven opens that got an entry; all went back. */
    assert_int_equal(tag_allocs(CONN_ENTRY_TAG, false), 5);
    assert_int_equal(tag_allocs(CONN_BUFFER_TAG, false), 7);
    assert_int_equal(tag_allocs(CONN_CONFIG_TAG, true), 1);
    assert_int_equal(tag_allocs(CONN_CONFIG_TAG, false), 0);
    assert_pool_tag_balanced(CONN_ENTRY_TAG);
    assert_pool_tag_balanced(CONN_BUFFER_TAG);
    assert_pool_tag_balanced(CONN_CONFIG_TAG);
    assert_int_equal(poolsim_bugcheck_count(), 0);
}

static void test_conntable_bad_config(void **state)
{
    static const CONN_TABLE_CONFIG bad[] = {
        {0, 256, "none"}, {CONN_TABLE_SLOTS + 1, 256, "many"}, {4, 0, "empty"}};
    CONN_TABLE table;
    poolsim_stats before, after;
    (void)state;
    poolsim_get_stats(&before);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ConnTableInitialize(&table, &bad[i]), STATUS_INVALID_PARAMETER);
    poolsim_get_stats(&after);
    assert_int_equal(after.allocs, before.allocs);
    /* The limits themselves are legal. */
    CONN_TABLE_CONFIG edge = {CONN_TABLE_SLOTS, 1, "edge"};
    assert_int_equal(ConnTableInitialize(&table, &edge), STATUS_SUCCESS);
    ConnTableUninitialize(&table);
    assert_pool_tag_balanced(CONN_CONFIG_TAG);
}

/* Close is nonpaged code: legal at DISPATCH_LEVEL (a DPC). Open reads the
 * paged configuration: at DISPATCH_LEVEL, Force IRQL checking reports 0xD1 on
 * that read, naming the configuration block. */
static void test_conntable_irql(void **state)
{
    CONN_TABLE table;
    PCONN_ENTRY entry;
    KIRQL old;
    NTSTATUS volatile status = STATUS_UNSUCCESSFUL;
    (void)state;
    assert_int_equal(ConnTableInitialize(&table, &test_config), STATUS_SUCCESS);
    assert_int_equal(ConnTableOpen(&table, 7, &entry), STATUS_SUCCESS);
    uintptr_t buffer_size = (uintptr_t)&table.Config->BufferSize;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_no_bugcheck(status = ConnTableClose(&table, 7));
    assert_int_equal(status, STATUS_SUCCESS);
    if (poolsim_force_irql_active()) {
        expect_bugcheck(0xD1, buffer_size, (void)ConnTableOpen(&table, 8, &entry));
        assert_int_equal(poolsim_cmocka_last()->param[1], DISPATCH_LEVEL);
        assert_int_equal(poolsim_cmocka_last()->param[2], 0); /* a read */
        assert_true(poolsim_cmocka_last()->has_block);
        assert_int_equal(poolsim_cmocka_last()->block.tag, CONN_CONFIG_TAG);
    }
    KeLowerIrql(old);
    assert_passive_no_locks();
    ConnTableUninitialize(&table);
    assert_pool_tag_balanced(CONN_ENTRY_TAG);
    assert_pool_tag_balanced(CONN_BUFFER_TAG);
}

/* ---- Fault sweeps -------------------------------------------------------------------------------------- */

/* Sweeps the scenario (per site, or Nth) with the table captured; returns what the sweep returns. */
static int sweep_scenario(bool nth, poolsim_sweep_result *r)
{
    int rc;
    learn_sites();
    captured[0] = '\0';
    poolsim_set_output(capture, NULL);
    rc = nth ? poolsim_fault_sweep_nth(conntable_scenario, NULL, r)
             : poolsim_fault_sweep(conntable_scenario, NULL, r);
    poolsim_set_output(NULL, NULL);
    return rc;
}

/* Appends the table's last line and checks the result: `runs` runs over the
 * three sites, `leaked` of them leaked, every other one ok. */
static void assert_sweep(char *expected, size_t size, int rc, const poolsim_sweep_result *r, unsigned runs,
                         unsigned leaked)
{
    expect_line(expected, size,
                " 3 site(s), %u run(s): %u ok, %u leaked, 0 bug check(s), 0 crashed, 0 not reached", runs,
                runs - leaked, leaked);
    assert_table_equal(expected, captured);
    assert_int_equal(rc, leaked ? 1 : 0);
    assert_int_equal(r->sites, 3);
    assert_int_equal(r->runs, runs);
    assert_int_equal(r->ok, runs - leaked);
    assert_int_equal(r->leaked, leaked);
    assert_int_equal(r->bugchecks + r->crashes + r->not_reached, 0);
}

static void test_conntable_sweep_sites(void **state)
{
    static char expected[4096];
    poolsim_sweep_result r;
    (void)state;
    int rc = sweep_scenario(false, &r);

    /* One site per run, in the order the clean run reached them. The entry's
     * site is named by the routine that allocates from the pool: an empty
     * lookaside list calls ExAllocatePoolWithTag for its caller. */
    expected[0] = '\0';
    expect_line(expected, sizeof expected, "poolsim fault sweep: each allocation site fails once");
    expect_line(expected, sizeof expected, " run failed site or allocation outcome");
    expect_line(expected, sizeof expected, " 0 (none: the clean run) ok");
    expect_line(expected, sizeof expected, " 1 %s ExAllocatePool2 ok", site_text(ConnTableSites.ConfigLine));
    expect_line(expected, sizeof expected, " 2 %s ExAllocatePoolWithTag ok",
                site_text(ConnTableSites.EntryLine));
    expect_line(expected, sizeof expected, " 3 %s ExAllocatePool2 %s", site_text(ConnTableSites.BufferLine),
                CONNTABLE_PLANT_LEAK ? entry_leak() : "ok");
    assert_sweep(expected, sizeof expected, rc, &r, 4, CONNTABLE_PLANT_LEAK ? 1 : 0);
#if !CONNTABLE_PLANT_LEAK
    poolsim_set_output(capture, NULL);
    assert_fault_sweep_clean(conntable_scenario, NULL);
    poolsim_set_output(NULL, NULL);
#endif
}

static void test_conntable_sweep_nth(void **state)
{
    static char expected[4096];
    poolsim_sweep_result r;
    unsigned leaks = 0;
    (void)state;
    int rc = sweep_scenario(true, &r);

    /* Failing a buffer leaks its entry: allocations 3, 5, 7 and 9 (entries
     * fresh from the pool) and 10 (an entry the lookaside list handed back).
     * Failing the configuration or an entry is handled. */
    expected[0] = '\0';
    expect_line(expected, sizeof expected, "poolsim fault sweep: allocation N fails, for N = 1, 2, ...");
    expect_line(expected, sizeof expected, " run failed site or allocation outcome");
    for (unsigned n = 1; n <= 10; n++) {
        bool leak = CONNTABLE_PLANT_LEAK && (n == 3 || n == 5 || n == 7 || n == 9 || n == 10);
        leaks += leak;
        expect_line(expected, sizeof expected, " %u allocation #%u %s", n, n, leak ? entry_leak() : "ok");
    }
    assert_int_equal(leaks, CONNTABLE_PLANT_LEAK ? 5 : 0);
    assert_sweep(expected, sizeof expected, rc, &r, 10, leaks);
}

/* The sweep's finding, checked without its table: fail the buffer site once,
 * in this process, and list what the table left allocated. */
static void test_conntable_failed_buffer(void **state)
{
    CONN_TABLE table;
    PCONN_ENTRY entry;
    poolsim_fault_config cfg;
    poolsim_fault_record rec;
    poolsim_block_info left[2];
    (void)state;
    learn_sites();
    poolsim_cmocka_snapshot s = poolsim_cmocka_snap();
    memset(&cfg, 0, sizeof cfg);
    cfg.site_file = ConnTableSites.File;
    cfg.site_line = ConnTableSites.BufferLine;
    poolsim_fault_configure(&cfg);
    assert_int_equal(ConnTableInitialize(&table, &test_config), STATUS_SUCCESS);
    assert_int_equal(ConnTableOpen(&table, 1, &entry), STATUS_INSUFFICIENT_RESOURCES);
    assert_null(entry);
    assert_int_equal(ConnTableOpen(&table, 2, &entry), STATUS_SUCCESS); /* the site fails once */
    ConnTableUninitialize(&table);
    poolsim_fault_configure(NULL);

    assert_int_equal(poolsim_fault_log(&rec, 1), 1);
    assert_string_equal(rec.site.file, ConnTableSites.File);
    assert_int_equal(rec.site.line, ConnTableSites.BufferLine);
    assert_int_equal(rec.tag, CONN_BUFFER_TAG);
    size_t n = poolsim_live_since(s.seq, left, 2);
#if CONNTABLE_PLANT_LEAK
    assert_int_equal(n, 1);
    assert_int_equal(left[0].tag, CONN_ENTRY_TAG);
    assert_int_equal(left[0].size, sizeof(CONN_ENTRY));
    assert_string_equal(left[0].alloc_site.file, ConnTableSites.File);
    assert_int_equal(left[0].alloc_site.line, ConnTableSites.EntryLine);
    assert_string_equal(left[0].alloc_site.routine, "ExAllocatePoolWithTag");
    ExFreePoolWithTag((PVOID)left[0].address, CONN_ENTRY_TAG); /* so the fixture sees no leak */
#else
    assert_int_equal(n, 0);
#endif
    assert_pool_tag_balanced(CONN_ENTRY_TAG);
    assert_pool_tag_balanced(CONN_BUFFER_TAG);
    assert_pool_tag_balanced(CONN_CONFIG_TAG);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, poolsim_cmocka_setup, poolsim_cmocka_teardown)
    const struct CMUnitTest tests[] = {
        T(test_conntable_open_close),  T(test_conntable_bad_config), T(test_conntable_irql),
        T(test_conntable_sweep_sites), T(test_conntable_sweep_nth),  T(test_conntable_failed_buffer),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
