/* SPDX-License-Identifier: MIT */
/*
 * test_badinput.c — the bad-input contract of docs/bad-input.md, one test per
 * table row group: every public entry point of <poolsim/poolsim.h> and the
 * WDK routines poolsim implements in <poolsim/wdm.h> (pool, Mm, lookaside,
 * KeBugCheckEx, ExRaiseStatus and POOLSIM_TRY, Rtl*Memory, DbgPrint), fed
 * NULL, size 0, sizes near SIZE_MAX and the pool limit, invalid pool types
 * and flags, tag 0, foreign / interior / misaligned / freed / stack pointers,
 * and calls before poolsim_init, after poolsim_shutdown, twice. Each test
 * asserts the outcome the table defines (return value, bug-check code and
 * Arg1..Arg4, or a no-op and its diagnostic line) and, in the other
 * direction, that the nearby legal call succeeds silently. Integer overflow
 * in size arithmetic is shown impossible by looping sizes near SIZE_MAX,
 * SIZE_MAX / 2 and the pool limit through every allocation routine.
 *
 * Rows the table marks as BUG have a test that asserts the outcome poolsim
 * should have; it is skipped unless POOLSIM_BADINPUT_KNOWN_BUGS is defined
 * (some of these bugs crash). The IRQL and lock routines (§8) are here for
 * their bad input proper: levels out of range, NULL locks, handles and
 * mutexes, no instance; their misuse rules (a recursive acquire, a release
 * at the wrong IRQL...) are tested in test_irql.c and test_locks.c.
 *
 * Portable C: runs on Linux and under Wine (no POSIX calls).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <poolsim/wdm.h>
#include <poolsim/cmocka.h>

/* ---- Helpers ---------------------------------------------------------------- */

#define TAG ((ULONG)'gaTX')          /* "XTag" */
#define TAG_NONE ((ULONG)0x656E6F4E) /* "None": the untagged routines (§2.6) */
#define TAG_BIG ((ULONG)' GIB')      /* "BIG " */
#define TAG_MM_CONTIG ((ULONG)0x74436D4D)
#define TAG_MM_NONCACHED ((ULONG)0x634E6D4D)
#define GRAN (2 * sizeof(void *))
#define LIMIT_SMALL ((uint64_t)0x10000) /* the pool limit of the near-limit tests */

#ifdef POOLSIM_BADINPUT_KNOWN_BUGS
#define KNOWN_BUG(id) ((void)0)
#else
/* A row the table marks as a bug: the test states the outcome poolsim should
 * have, and runs once the bug is fixed (build with -DPOOLSIM_BADINPUT_KNOWN_BUGS). */
#define KNOWN_BUG(id)                                                                                        \
    do {                                                                                                     \
        print_message("[   SKIP   ] known bug %s (docs/bad-input.md); build with "                          \
                      "-DPOOLSIM_BADINPUT_KNOWN_BUGS to run it\n",                                           \
                      id);                                                                                   \
        skip();                                                                                              \
    } while (0)
#endif

/* Output capture (capture.h): the diagnostic lines poolsim prints for documented no-ops. */
#include "capture.h"

static void capture_clear(void)
{
    g_len = 0;
    g_text[0] = '\0';
}

#define assert_printed(needle)                                                                               \
    do {                                                                                                     \
        if (strstr(g_text, (needle)) == NULL) {                                                              \
            print_error("expected output containing \"%s\"; got:\n%s\n", (needle), g_text);                  \
            fail();                                                                                          \
        }                                                                                                    \
    } while (0)

#define assert_nothing_printed()                                                                             \
    do {                                                                                                     \
        if (g_len != 0) {                                                                                    \
            print_error("expected no output; got:\n%s\n", g_text);                                           \
            fail();                                                                                          \
        }                                                                                                    \
    } while (0)

/* The line every pool, Mm and query routine prints when poolsim is not initialised. */
#define NOT_INIT_TAIL "while poolsim is not initialised (poolsim_init); the call does nothing"

static int setup(void **state) { return poolsim_cmocka_setup(state); }

static int teardown(void **state)
{
    capture_stop();
    poolsim_wdm_try_reset();
    return poolsim_cmocka_teardown(state);
}

static void reinit_family(unsigned family)
{
    poolsim_options o = poolsim_cmocka_default_options();
    o.family = family;
    poolsim_cmocka_reinit(&o);
}

static const poolsim_bugcheck *last_bc(void)
{
    const poolsim_bugcheck *bc = poolsim_cmocka_last();
    assert_non_null(bc);
    return bc;
}

/* Asserts Arg2..Arg4 of the last bug check. */
static void assert_args(uintptr_t p2, uintptr_t p3, uintptr_t p4)
{
    const poolsim_bugcheck *bc = last_bc();
    assert_true(bc->param[1] == p2);
    assert_true(bc->param[2] == p3);
    assert_true(bc->param[3] == p4);
}

/* Counters that a refused or failed request must leave alone. */
static void assert_unchanged(const poolsim_stats *a, const poolsim_stats *b, uint64_t failed_delta)
{
    assert_true(b->allocs == a->allocs);
    assert_true(b->frees == a->frees);
    assert_true(b->live_blocks == a->live_blocks);
    assert_true(b->nonpaged_bytes == a->nonpaged_bytes);
    assert_true(b->paged_bytes == a->paged_bytes);
    assert_true(b->peak_nonpaged_bytes == a->peak_nonpaged_bytes);
    assert_true(b->peak_paged_bytes == a->peak_paged_bytes);
    assert_true(b->arena_bytes == a->arena_bytes);
    assert_true(b->failed == a->failed + failed_delta);
}

static poolsim_stats stats_now(void)
{
    poolsim_stats s;
    poolsim_get_stats(&s);
    return s;
}

/* ---- Every allocation routine ------------------------------------------------------ */

typedef enum art {
    A_POOL,
    A_WITH_TAG,
    A_WITH_QUOTA,
    A_WITH_QUOTA_TAG,
    A_WITH_TAG_PRIORITY,
    A_POOL2,
    A_POOL3,
    A_ZERO,
    A_QUOTA_ZERO,
    A_PRIORITY_ZERO,
    A_UNINIT,
    A_QUOTA_UNINIT,
    A_PRIORITY_UNINIT,
    A_MM_CONTIG,
    A_MM_CONTIG_CACHE,
    A_MM_NONCACHED,
    A_COUNT
} art;

enum { K_LEGACY, K_FLAGS, K_MM };

static const struct {
    const char *name;
    int kind;
    bool quota;  /* raises on failure unless POOL_QUOTA_FAIL_INSTEAD_OF_RAISE */
    bool tagged; /* takes the caller's tag */
} arts[A_COUNT] = {
    [A_POOL] = {"ExAllocatePool", K_LEGACY, false, false},
    [A_WITH_TAG] = {"ExAllocatePoolWithTag", K_LEGACY, false, true},
    [A_WITH_QUOTA] = {"ExAllocatePoolWithQuota", K_LEGACY, true, false},
    [A_WITH_QUOTA_TAG] = {"ExAllocatePoolWithQuotaTag", K_LEGACY, true, true},
    [A_WITH_TAG_PRIORITY] = {"ExAllocatePoolWithTagPriority", K_LEGACY, false, true},
    [A_POOL2] = {"ExAllocatePool2", K_FLAGS, false, true},
    [A_POOL3] = {"ExAllocatePool3", K_FLAGS, false, true},
    [A_ZERO] = {"ExAllocatePoolZero", K_LEGACY, false, true},
    [A_QUOTA_ZERO] = {"ExAllocatePoolQuotaZero", K_LEGACY, true, true},
    [A_PRIORITY_ZERO] = {"ExAllocatePoolPriorityZero", K_LEGACY, false, true},
    [A_UNINIT] = {"ExAllocatePoolUninitialized", K_LEGACY, false, true},
    [A_QUOTA_UNINIT] = {"ExAllocatePoolQuotaUninitialized", K_LEGACY, true, true},
    [A_PRIORITY_UNINIT] = {"ExAllocatePoolPriorityUninitialized", K_LEGACY, false, true},
    [A_MM_CONTIG] = {"MmAllocateContiguousMemory", K_MM, false, false},
    [A_MM_CONTIG_CACHE] = {"MmAllocateContiguousMemorySpecifyCache", K_MM, false, false},
    [A_MM_NONCACHED] = {"MmAllocateNonCachedMemory", K_MM, false, false},
};

/* The valid type (POOL_TYPE or POOL_FLAGS) of routine a for the paged or nonpaged pool. */
static ULONG64 type_of(art a, bool paged)
{
    if (arts[a].kind == K_FLAGS)
        return paged ? POOL_FLAG_PAGED : POOL_FLAG_NON_PAGED;
    return paged ? (ULONG64)PagedPool : (ULONG64)NonPagedPoolNx;
}

/* The tag the block or its failure is counted under. */
static ULONG tag_of(art a, ULONG tag)
{
    if (arts[a].kind == K_MM)
        return a == A_MM_NONCACHED ? TAG_MM_NONCACHED : TAG_MM_CONTIG;
    return arts[a].tagged ? tag : TAG_NONE;
}

/* Calls routine a with `type` passed as is (the Mm routines take no type or tag). */
static void *alloc_as(art a, ULONG64 type, SIZE_T n, ULONG tag)
{
    PHYSICAL_ADDRESS any;
    any.QuadPart = -1;
    switch (a) {
    case A_POOL:
        return ExAllocatePool((POOL_TYPE)type, n);
    case A_WITH_TAG:
        return ExAllocatePoolWithTag((POOL_TYPE)type, n, tag);
    case A_WITH_QUOTA:
        return ExAllocatePoolWithQuota((POOL_TYPE)type, n);
    case A_WITH_QUOTA_TAG:
        return ExAllocatePoolWithQuotaTag((POOL_TYPE)type, n, tag);
    case A_WITH_TAG_PRIORITY:
        return ExAllocatePoolWithTagPriority((POOL_TYPE)type, n, tag, NormalPoolPriority);
    case A_POOL2:
        return ExAllocatePool2(type, n, tag);
    case A_POOL3:
        return ExAllocatePool3(type, n, tag, NULL, 0);
    case A_ZERO:
        return ExAllocatePoolZero((POOL_TYPE)type, n, tag);
    case A_QUOTA_ZERO:
        return ExAllocatePoolQuotaZero((POOL_TYPE)type, n, tag);
    case A_PRIORITY_ZERO:
        return ExAllocatePoolPriorityZero((POOL_TYPE)type, n, tag, NormalPoolPriority);
    case A_UNINIT:
        return ExAllocatePoolUninitialized((POOL_TYPE)type, n, tag);
    case A_QUOTA_UNINIT:
        return ExAllocatePoolQuotaUninitialized((POOL_TYPE)type, n, tag);
    case A_PRIORITY_UNINIT:
        return ExAllocatePoolPriorityUninitialized((POOL_TYPE)type, n, tag, NormalPoolPriority);
    case A_MM_CONTIG:
        return MmAllocateContiguousMemory(n, any);
    case A_MM_CONTIG_CACHE: {
        PHYSICAL_ADDRESS zero;
        zero.QuadPart = 0;
        return MmAllocateContiguousMemorySpecifyCache(n, zero, any, zero, MmCached);
    }
    case A_MM_NONCACHED:
        return MmAllocateNonCachedMemory(n);
    default:
        return NULL;
    }
}

/* Frees a block of routine a with the matching routine. */
static void free_as(art a, void *p, SIZE_T n)
{
    if (a == A_MM_CONTIG || a == A_MM_CONTIG_CACHE)
        MmFreeContiguousMemory(p);
    else if (a == A_MM_NONCACHED)
        MmFreeNonCachedMemory(p, n);
    else
        ExFreePool(p);
}

/* Whether a failed request of routine a with `type` raises (§2.4). */
static bool raises(art a, ULONG64 type)
{
    if (arts[a].kind == K_MM)
        return false;
    if (arts[a].kind == K_FLAGS)
        return (type & POOL_FLAG_RAISE_ON_FAILURE) != 0;
    if (arts[a].quota)
        return (type & POOL_QUOTA_FAIL_INSTEAD_OF_RAISE) == 0;
    return (type & POOL_RAISE_IF_ALLOCATION_FAILURE) != 0;
}

typedef struct outcome {
    void *p;
    NTSTATUS raised; /* STATUS_SUCCESS: returned normally */
} outcome;

/* Calls routine a inside POOLSIM_TRY. Never use it in an expect_bugcheck
 * statement: a bug check that jumps out of the body leaves the frame behind. */
static outcome alloc_try(art a, ULONG64 type, SIZE_T n, ULONG tag)
{
    void *volatile p = NULL;
    NTSTATUS volatile st = STATUS_SUCCESS;
    outcome o;
    POOLSIM_TRY
    {
        p = alloc_as(a, type, n, tag);
    }
    POOLSIM_EXCEPT(st)
    {
        p = NULL;
    }
    POOLSIM_END_TRY;
    o.p = p;
    o.raised = st;
    return o;
}

/* Asserts that routine a refuses n bytes with `tag` cleanly: NULL, or
 * STATUS_INSUFFICIENT_RESOURCES raised where the routine raises; no bug check;
 * the counters unchanged but `failed` + 1 (also on the block's tag, unless
 * that is 0, which gets no row). */
static void assert_refused_tag(art a, ULONG64 type, SIZE_T n, ULONG tag)
{
    poolsim_stats before = stats_now(), after;
    poolsim_tag_usage_t tb, ta;
    ULONG counted = tag_of(a, tag);
    bool paged = arts[a].kind == K_FLAGS ? (type & POOL_FLAG_PAGED) != 0
                 : arts[a].kind == K_MM  ? false
                                         : (type & 1) != 0;
    outcome o;
    poolsim_tag_usage(counted, &tb);
    expect_no_bugcheck(o = alloc_try(a, type, n, tag));
    if (o.p != NULL || o.raised != (raises(a, type) ? STATUS_INSUFFICIENT_RESOURCES : STATUS_SUCCESS)) {
        print_error("%s(type 0x%llx, %llu bytes, tag 0x%lx): got %p, raised 0x%lx\n", arts[a].name,
                    (unsigned long long)type, (unsigned long long)n, (unsigned long)tag, o.p,
                    (unsigned long)o.raised);
        fail();
    }
    after = stats_now();
    assert_unchanged(&before, &after, 1);
    poolsim_tag_usage(counted, &ta);
    if ((counted & ~(ULONG)PROTECTED_POOL) != 0)
        assert_true((paged ? ta.paged.failed : ta.nonpaged.failed) ==
                    (paged ? tb.paged.failed : tb.nonpaged.failed) + 1);
    assert_true(ta.nonpaged.allocs == tb.nonpaged.allocs && ta.paged.allocs == tb.paged.allocs);
}

static void assert_refused(art a, ULONG64 type, SIZE_T n) { assert_refused_tag(a, type, n, TAG); }

/* Asserts that routine a serves n bytes silently, then frees the block. */
static void assert_served(art a, ULONG64 type, SIZE_T n)
{
    outcome o;
    expect_no_bugcheck(o = alloc_try(a, type, n, TAG));
    if (o.p == NULL || o.raised != STATUS_SUCCESS) {
        print_error("%s(type 0x%llx, %llu bytes): refused\n", arts[a].name, (unsigned long long)type,
                    (unsigned long long)n);
        fail();
    }
    assert_true(poolsim_valid_access(o.p, n));
    expect_no_bugcheck(free_as(a, o.p, n));
}

/* ======================================================================================
 * 1. Lifetime: before poolsim_init, after poolsim_shutdown, twice
 * ====================================================================================== */

/* Everything that takes the default instance, with none: each pool, Mm and
 * query routine prints its line and does nothing; no bug check. */
static void check_uninitialised_surface(void)
{
    int local = 0;
    void *foreign = &local;
    void *volatile p = (void *)&local;
    NPAGED_LOOKASIDE_LIST nl;
    LOOKASIDE_LIST_EX lx;
    poolsim_block_info info;
    poolsim_tag_usage_t u;
    poolsim_stats s;
    poolsim_fault_record rec[2];
    poolsim_sweep_result r;
    BOOLEAN quota = TRUE;
    SIZE_T size = 1;
    NTSTATUS st = STATUS_SUCCESS;

    assert_false(poolsim_initialized());
    capture_start();
    for (int a = 0; a < A_COUNT; a++) {
        capture_clear();
        expect_no_bugcheck(p = alloc_as((art)a, type_of((art)a, false), 64, TAG));
        assert_null(p);
        assert_printed(arts[a].name);
        assert_printed(NOT_INIT_TAIL);
    }
    /* A quota routine returns NULL instead of raising. */
    capture_clear();
    {
        outcome o;
        expect_no_bugcheck(o = alloc_try(A_WITH_QUOTA_TAG, PagedPool, 64, TAG));
        assert_null(o.p);
        assert_int_equal(o.raised, STATUS_SUCCESS);
    }
    capture_clear();
    expect_no_bugcheck(ExFreePool(foreign));
    assert_printed("ExFreePool called at ");
    assert_printed(NOT_INIT_TAIL);
    capture_clear();
    expect_no_bugcheck(ExFreePoolWithTag(foreign, TAG));
    assert_printed("ExFreePoolWithTag called at ");
    capture_clear();
    expect_no_bugcheck(ExFreePool2(foreign, TAG, NULL, 0));
    assert_printed("ExFreePool2 called at ");
    capture_clear();
    expect_no_bugcheck(size = ExQueryPoolBlockSize(foreign, &quota));
    assert_int_equal(size, 0);
    assert_int_equal(quota, FALSE);
    assert_printed("ExQueryPoolBlockSize called at ");
    capture_clear();
    expect_no_bugcheck(MmFreeContiguousMemory(foreign));
    assert_printed("MmFreeContiguousMemory called at ");
    capture_clear();
    expect_no_bugcheck(MmFreeNonCachedMemory(foreign, 64));
    assert_printed("MmFreeNonCachedMemory called at ");

    /* Lookaside: the initialisers print and fail; the other routines print and do nothing. */
    memset(&nl, 0, sizeof nl);
    memset(&lx, 0, sizeof lx);
    capture_clear();
    expect_no_bugcheck(ExInitializeNPagedLookasideList(&nl, NULL, NULL, 0, 64, TAG, 0));
    assert_printed("lookaside list initialised while poolsim is not initialised");
    capture_clear();
    expect_no_bugcheck(st = ExInitializeLookasideListEx(&lx, NULL, NULL, NonPagedPoolNx, 0, 64, TAG, 0));
    assert_int_equal(st, STATUS_INVALID_PARAMETER);
    assert_printed("lookaside list initialised while poolsim is not initialised");
    capture_clear();
    expect_no_bugcheck(p = ExAllocateFromNPagedLookasideList(&nl));
    assert_null(p);
    assert_printed("ExAllocateFromNPagedLookasideList called at ");
    capture_clear();
    expect_no_bugcheck(p = ExAllocateFromLookasideListEx(&lx));
    assert_null(p);
    assert_printed("ExAllocateFromLookasideListEx called at ");
    capture_clear();
    expect_no_bugcheck(ExFreeToNPagedLookasideList(&nl, foreign));
    assert_printed("ExFreeToNPagedLookasideList called at ");
    capture_clear();
    expect_no_bugcheck(ExFlushLookasideListEx(&lx));
    assert_printed("ExFlushLookasideListEx called at ");
    capture_clear();
    expect_no_bugcheck(ExDeleteNPagedLookasideList(&nl));
    assert_printed("ExDeleteNPagedLookasideList called at ");
    capture_clear();
    expect_no_bugcheck(ExDeleteLookasideListEx(&lx));
    assert_printed("ExDeleteLookasideListEx called at ");
    capture_clear();

    /* Queries: neutral answers, silently. */
    expect_no_bugcheck(size = poolsim_validate());
    assert_int_equal(size, 0);
    assert_false(poolsim_valid_access(foreign, 1));
    memset(&info, 0xA5, sizeof info);
    assert_false(poolsim_find_block(foreign, &info));
    assert_null(info.address);
    assert_int_equal(info.state, 0);
    assert_false(poolsim_tag_usage(TAG, &u));
    assert_int_equal(u.nonpaged.allocs, 0);
    poolsim_get_stats(&s);
    assert_int_equal(s.allocs, 0);
    assert_int_equal(s.live_blocks, 0);
    assert_int_equal(s.arena_bytes, 0);
    assert_int_equal(poolsim_live_since(0, NULL, 0), 0);
    assert_int_equal(poolsim_sequence(), 0);
    assert_int_equal(poolsim_faults_injected(), 0);
    assert_int_equal(poolsim_fault_log(rec, 2), 0);
    memset(&r, 0xA5, sizeof r);
    assert_int_equal(poolsim_fault_sweep(NULL, NULL, &r), -1);
    assert_int_equal(r.runs, 0);
    assert_int_equal(poolsim_fault_sweep_nth(NULL, NULL, NULL), -1);
    assert_nothing_printed();
    poolsim_fault_configure(NULL); /* a setting with nowhere to go is said */
    assert_printed("poolsim_fault_configure called while poolsim is not initialised");
    capture_clear();

    /* Reports: one line each. */
    capture_clear();
    poolsim_report_poolused(POOLSIM_POOLUSED_VERBOSE, NULL);
    assert_printed("poolsim: !poolused: poolsim is not initialised\n");
    capture_clear();
    poolsim_report_poolused_json(NULL);
    assert_printed("{\"error\":\"not initialised\"}\n");
    capture_clear();
    poolsim_report_outstanding();
    assert_printed("poolsim: outstanding: poolsim is not initialised\n");
    capture_clear();
    poolsim_report_outstanding_json();
    assert_printed("{\"blocks\":[],\"count\":0,\"bytes\":0}\n");
    capture_clear();
    poolsim_report_stats();
    assert_printed("poolsim: statistics: poolsim is not initialised\n");
    capture_clear();
    poolsim_report_stats_json();
    assert_printed("{\"error\":\"not initialised\"}\n");
    capture_clear();
    poolsim_report_block(foreign);
    assert_printed(": not an address in poolsim's pool\n");

    /* What needs no instance still works: bug checks, raises, DbgPrint. */
    expect_bugcheck(0xE2, 1, KeBugCheckEx(0xE2, 1, 2, 3, 4));
    assert_args(2, 3, 4);
    assert_false(last_bc()->has_block);
    assert_int_equal(last_bc()->seq, 0);
    expect_bugcheck(KMODE_EXCEPTION_NOT_HANDLED, (uintptr_t)(intptr_t)STATUS_ACCESS_VIOLATION,
                    ExRaiseStatus(STATUS_ACCESS_VIOLATION));
    capture_clear();
    DbgPrint("%s %d\n", "still", 1);
    assert_printed("still 1\n");
    capture_stop();
}

/* Runs before any poolsim_init of the process (first in the list, no fixture). */
static void test_badinput_before_init(void **state)
{
    (void)state;
    poolsim_cmocka_install_handler();
    check_uninitialised_surface();
    poolsim_set_bugcheck_handler(NULL, NULL);
}

/* After poolsim_shutdown: the same, and pointers and lists of the dead
 * instance are not believed by it nor by the next one. */
static void test_badinput_after_shutdown(void **state)
{
    NPAGED_LOOKASIDE_LIST nl;
    volatile size_t left = 99;
    void *p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, TAG);
    (void)state;
    assert_non_null(p);
    memset(&nl, 0, sizeof nl);
    ExInitializeNPagedLookasideList(&nl, NULL, NULL, 0, 64, TAG, 0);

    /* Shutdown with p outstanding: the leak bug check, then the count. */
    capture_start();
    expect_bugcheck_continue(0xC4, 0x62, left = poolsim_shutdown());
    assert_int_equal(left, 1);
    assert_args(last_bc()->param[1], 0, 1);
    assert_printed("poolsim: LEAK: 1 block(s)");
    capture_stop();

    check_uninitialised_surface();

    /* A pointer of the dead instance: a line, no bug check, no crash. */
    capture_start();
    expect_no_bugcheck(ExFreePoolWithTag(p, TAG));
    assert_printed(NOT_INIT_TAIL);
    capture_stop();

    /* The next instance does not know it either. */
    poolsim_cmocka_reinit(NULL);
    expect_bugcheck(0xC4, 0x10, ExFreePoolWithTag(p, TAG));
    assert_args((uintptr_t)p, 0, 0);
    expect_bugcheck(0xC4, 0xCB, (void)ExAllocateFromNPagedLookasideList(&nl));
    assert_args((uintptr_t)&nl, 0, 0);
}

static void test_badinput_double_init(void **state)
{
    poolsim_options retail = poolsim_cmocka_default_options();
    void *p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, TAG);
    int rc;
    (void)state;
    assert_non_null(p);
    retail.family = POOLSIM_FAMILY_RETAIL;
    capture_start();
    expect_no_bugcheck(rc = poolsim_init(&retail));
    assert_int_equal(rc, POOLSIM_E_ALREADY);
    assert_printed("poolsim: poolsim_init called twice; the second call is ignored (call poolsim_shutdown first)\n");
    capture_clear();
    expect_no_bugcheck(rc = poolsim_init(NULL));
    assert_int_equal(rc, POOLSIM_E_ALREADY);
    assert_printed("poolsim_init called twice");
    capture_stop();
    /* The running instance is untouched: its block, its options (verifier codes). */
    assert_true(poolsim_initialized());
    assert_true(poolsim_valid_access(p, 64));
    ExFreePool(p);
    expect_bugcheck(0xC4, 0x13, ExFreePool(p));
}

static void test_badinput_double_shutdown(void **state)
{
    volatile size_t left = 99;
    (void)state;
    capture_start();
    expect_no_bugcheck(left = poolsim_shutdown());
    assert_int_equal(left, 0);
    assert_false(poolsim_initialized());
    capture_clear();
    expect_no_bugcheck(left = poolsim_shutdown());
    assert_int_equal(left, 0);
    assert_nothing_printed(); /* documented silent no-op */
    capture_stop();
}

static void test_badinput_init_bad_options(void **state)
{
    static const struct {
        const char *name;
        int which;
    } bad[] = {{"family", 0}, {"tag_check", 1}, {"leak_code", 2}, {"uninit_byte", 3}, {"driver_name", 4}};
    poolsim_options o;
    char line[128];
    (void)state;
    assert_int_equal(poolsim_shutdown(), 0);
    capture_start();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc;
        o = poolsim_cmocka_default_options();
        switch (bad[i].which) {
        case 0:
            o.family = 2;
            break;
        case 1:
            o.tag_check = 2;
            break;
        case 2:
            o.leak_code = 0x61;
            break;
        case 3:
            o.uninit_byte = 0x100;
            break;
        default:
            o.driver_name = NULL;
            break;
        }
        capture_clear();
        expect_no_bugcheck(rc = poolsim_init(&o));
        assert_int_equal(rc, POOLSIM_E_OPTION);
        assert_false(poolsim_initialized());
        strcpy(line, "poolsim: poolsim_init: option ");
        strcat(line, bad[i].name);
        strcat(line, " is out of range\n");
        assert_printed(line);
    }
    capture_stop();
    /* Both directions: the edge values are accepted. */
    o = poolsim_cmocka_default_options();
    o.family = POOLSIM_FAMILY_RETAIL;
    o.tag_check = POOLSIM_TAG_CHECK_PROTECTED;
    o.leak_code = 0x60;
    o.uninit_byte = 0xFF;
    o.fault_tags = NULL;
    poolsim_cmocka_reinit(&o);
    assert_true(poolsim_initialized());
    /* NULL option structs. */
    poolsim_options_default(NULL);
    assert_int_equal(poolsim_options_from_env(NULL), 0);
}

/* quarantine_blocks = UINT32_MAX: the ring's capacity (blocks + 1) wraps to 0
 * and the quarantine is silently off. */
static void test_badinput_options_quarantine_blocks_max(void **state)
{
    poolsim_options o = poolsim_cmocka_default_options();
    poolsim_block_info b;
    void *p;
    (void)state;
    /* Above 1M blocks per shard the option is out of range: poolsim_init refuses it. */
    poolsim_options bad = o;
    bad.quarantine_blocks = 0xFFFFFFFFu;
    assert_int_equal(poolsim_shutdown(), 0);
    assert_int_equal(poolsim_init(&bad), POOLSIM_E_OPTION);
    assert_false(poolsim_initialized());
    bad.quarantine_blocks = 0x100001u;
    assert_int_equal(poolsim_init(&bad), POOLSIM_E_OPTION);
    /* The largest accepted value works. */
    o.quarantine_blocks = 0x100000u;
    poolsim_cmocka_reinit(&o);
    p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, TAG);
    assert_non_null(p);
    ExFreePool(p);
    assert_true(poolsim_find_block(p, &b));
    assert_int_equal(b.state, POOLSIM_BLOCK_QUARANTINED);
}

/* ======================================================================================
 * 2. Allocation routines
 * ====================================================================================== */

/* Size 0: C4/0x00 (IRQL, pool type, 0) from every pool routine, C2/0x00 (0,
 * pool type, tag) in the retail family; the Mm routines return NULL. */
static void test_badinput_alloc_size_zero(void **state)
{
    (void)state;
    for (unsigned family = 0; family < 2; family++) {
        reinit_family(family);
        for (int a = 0; a < A_COUNT; a++) {
            for (int paged = 0; paged < 2; paged++) {
                poolsim_stats before = stats_now(), after;
                ULONG64 type = type_of((art)a, paged != 0);
                uintptr_t pool_type = paged ? 1u : 0x200u; /* PagedPool, NonPagedPoolNx */
                void *volatile p = (void *)1;
                if (arts[a].kind == K_MM) {
                    if (paged)
                        continue;
                    expect_no_bugcheck(p = alloc_as((art)a, type, 0, TAG));
                    assert_null(p);
                } else if (family == POOLSIM_FAMILY_VERIFIER) {
                    expect_bugcheck(0xC4, 0x00, p = alloc_as((art)a, type, 0, TAG));
                    assert_args(0, pool_type, 0);
                } else {
                    expect_bugcheck(0xC2, 0x00, p = alloc_as((art)a, type, 0, TAG));
                    assert_args(0, pool_type, tag_of((art)a, TAG));
                }
                after = stats_now();
                assert_unchanged(&before, &after, 1);
                /* Both directions: one byte is served silently. */
                assert_served((art)a, type, 1);
            }
        }
    }
    /* zero_size_check = 0: a minimum block (one granule) instead. */
    {
        poolsim_options o = poolsim_cmocka_default_options();
        void *p;
        o.zero_size_check = 0;
        poolsim_cmocka_reinit(&o);
        expect_no_bugcheck(p = ExAllocatePoolWithTag(NonPagedPoolNx, 0, TAG));
        assert_non_null(p);
        assert_int_equal(ExQueryPoolBlockSize(p, NULL), GRAN);
        assert_true(poolsim_valid_access(p, 0));
        ExFreePoolWithTag(p, TAG);
    }
}

/* Integer overflow in size arithmetic is impossible by construction: sizes
 * near SIZE_MAX, SIZE_MAX / 2 and the pool limit fail cleanly through every
 * allocation routine, in both pools, for every failure rule (NULL, raise,
 * quota-fail), with no bug check and no counter moved but `failed`; no page
 * is mapped for them. */
static void test_badinput_alloc_sizes_near_size_max(void **state)
{
    const size_t page = PAGE_SIZE;
    const size_t sizes[] = {SIZE_MAX,
                            SIZE_MAX - 1,
                            SIZE_MAX - 15,
                            SIZE_MAX - 16,
                            SIZE_MAX - 2 * GRAN,
                            SIZE_MAX - page + 1,
                            SIZE_MAX - page,
                            SIZE_MAX - page - 16,
                            SIZE_MAX - 64 - page, /* cache-aligned slot rounding */
                            SIZE_MAX / 2 + 1,
                            SIZE_MAX / 2,
                            SIZE_MAX / 2 - 15,
                            SIZE_MAX / 2 - page,
                            SIZE_MAX / 4 + 1,
                            (size_t)POOLSIM_DEFAULT_NONPAGED_LIMIT + 1,
                            (size_t)POOLSIM_DEFAULT_NONPAGED_LIMIT + GRAN,
                            (size_t)POOLSIM_DEFAULT_NONPAGED_LIMIT + page};
    const ULONG64 legacy_bits[] = {0, POOL_RAISE_IF_ALLOCATION_FAILURE, POOL_QUOTA_FAIL_INSTEAD_OF_RAISE,
                                   POOL_ZERO_ALLOCATION, 4 /* CacheAligned */};
    const ULONG64 flag_bits[] = {0, POOL_FLAG_RAISE_ON_FAILURE, POOL_FLAG_UNINITIALIZED, POOL_FLAG_CACHE_ALIGNED,
                                 POOL_FLAG_USE_QUOTA};
    poolsim_stats start = stats_now(), end;
    uint64_t calls = 0;
    (void)state;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if ((uint64_t)sizes[i] <= POOLSIM_DEFAULT_NONPAGED_LIMIT)
            continue; /* 32-bit hosts: SIZE_MAX / 4 is below the limit */
        for (int a = 0; a < A_COUNT; a++) {
            for (int paged = 0; paged < 2; paged++) {
                if (arts[a].kind == K_MM && paged)
                    continue;
                for (size_t b = 0; b < 5; b++) {
                    ULONG64 bits = arts[a].kind == K_FLAGS ? flag_bits[b] : legacy_bits[b];
                    if (arts[a].kind == K_MM && b)
                        continue;
                    assert_refused((art)a, type_of((art)a, paged != 0) | bits, sizes[i]);
                    calls++;
                }
            }
        }
    }
    end = stats_now();
    assert_unchanged(&start, &end, calls);
    /* Both directions: the same routines serve a small block silently. */
    for (int a = 0; a < A_COUNT; a++)
        assert_served((art)a, type_of((art)a, false), 64);
}

/* With both limits off (0), nothing but the sizes themselves stops a request:
 * the SIZE_MAX / 2 rule and the page-count bound still refuse them cleanly,
 * without mapping anything. */
static void test_badinput_alloc_sizes_no_limit(void **state)
{
    poolsim_options o = poolsim_cmocka_default_options();
    const size_t page = PAGE_SIZE;
    size_t sizes[14];
    size_t n = 0;
    poolsim_stats start, end;
    uint64_t calls = 0;
    (void)state;
    o.paged_limit = 0;
    o.nonpaged_limit = 0;
    poolsim_cmocka_reinit(&o);
    sizes[n++] = SIZE_MAX;
    sizes[n++] = SIZE_MAX - 15;
    sizes[n++] = SIZE_MAX - page - 16;
    sizes[n++] = SIZE_MAX / 2 + 1;
    sizes[n++] = SIZE_MAX / 2;
    sizes[n++] = SIZE_MAX / 2 - 15;
    sizes[n++] = SIZE_MAX / 2 - page;
    if (sizeof(size_t) == 8) {
        /* More than 0x7FFFFFFF pages: refused before any mapping is tried. */
        sizes[n++] = (size_t)((uint64_t)0x7FFFFFFF * PAGE_SIZE);
        sizes[n++] = (size_t)((uint64_t)1 << 50);
        /* Sizes from 2^47 fail before anything else is computed (the record keeps 48 bits of size; the page
         * count bound would refuse these too, so this holds the contract, not one line of code). */
        sizes[n++] = (size_t)(((uint64_t)1 << 48) + 64);
        sizes[n++] = (size_t)((uint64_t)1 << 47);
        sizes[n++] = SIZE_MAX / 4 + 1;
    }
    start = stats_now();
    for (size_t i = 0; i < n; i++) {
        for (int a = 0; a < A_COUNT; a++) {
            assert_refused((art)a, type_of((art)a, false), sizes[i]);
            calls++;
            if (arts[a].kind != K_MM) {
                assert_refused((art)a, type_of((art)a, true), sizes[i]);
                calls++;
            }
        }
    }
    end = stats_now();
    assert_unchanged(&start, &end, calls);
    for (int a = 0; a < A_COUNT; a++)
        assert_served((art)a, type_of((art)a, true), PAGE_SIZE + 1);
}

/* Near the pool limit (64 KiB per pool here): exactly the limit is served,
 * one byte more is refused, and what is in use counts. */
static void test_badinput_alloc_near_limit(void **state)
{
    poolsim_options o = poolsim_cmocka_default_options();
    (void)state;
    o.paged_limit = LIMIT_SMALL;
    o.nonpaged_limit = LIMIT_SMALL;
    poolsim_cmocka_reinit(&o);
    for (int a = 0; a < A_COUNT; a++) {
        for (int paged = 0; paged < 2; paged++) {
            ULONG64 type = type_of((art)a, paged != 0);
            void *held;
            if (arts[a].kind == K_MM && paged)
                continue;
            assert_refused((art)a, type, (size_t)LIMIT_SMALL + 1);
            assert_refused((art)a, type, (size_t)LIMIT_SMALL + GRAN);
            assert_refused((art)a, type, (size_t)LIMIT_SMALL * 2);
            assert_served((art)a, type, (size_t)LIMIT_SMALL);
            /* With 100 bytes in use, limit - 100 fits and limit - 99 does not. */
            held = ExAllocatePoolWithTag(paged ? PagedPool : NonPagedPoolNx, 100, TAG);
            assert_non_null(held);
            assert_refused((art)a, type, (size_t)LIMIT_SMALL - 99);
            assert_served((art)a, type, (size_t)LIMIT_SMALL - 100);
            ExFreePoolWithTag(held, TAG);
        }
    }
}

/* Invalid POOL_TYPE values for the legacy routines: C2/0x9A (type as passed,
 * bytes, tag) in both families; report-and-continue returns NULL. */
static void test_badinput_alloc_invalid_pool_type(void **state)
{
    const ULONG64 bad[] = {NonPagedPoolMustSucceed,
                           DontUseThisType,
                           NonPagedPoolCacheAlignedMustS,
                           MaxPoolType,
                           NonPagedPoolMustSucceedSession,
                           DontUseThisTypeSession,
                           NonPagedPoolCacheAlignedMustSSession,
                           0x40,
                           0x800,
                           0x10000,
                           0xFFFFFFFFull};
    const ULONG64 good[] = {NonPagedPool,
                            PagedPool,
                            NonPagedPoolCacheAligned,
                            PagedPoolCacheAligned,
                            NonPagedPoolNx,
                            NonPagedPoolNxCacheAligned,
                            NonPagedPoolSession,
                            PagedPoolSession,
                            NonPagedPoolSessionNx,
                            PagedPool | POOL_COLD_ALLOCATION,
                            NonPagedPoolNx | POOL_RAISE_IF_ALLOCATION_FAILURE | POOL_ZERO_ALLOCATION,
                            PagedPool | POOL_QUOTA_FAIL_INSTEAD_OF_RAISE};
    (void)state;
    for (unsigned family = 0; family < 2; family++) {
        reinit_family(family);
        for (int a = 0; a < A_COUNT; a++) {
            if (arts[a].kind != K_LEGACY)
                continue;
            for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                poolsim_stats before = stats_now(), after;
                expect_bugcheck(0xC2, 0x9A, (void)alloc_as((art)a, bad[i], 48, TAG));
                /* Arg2 is the type as the routine got it: POOL_TYPE is an enum (int on Windows). */
                assert_args((uintptr_t)(ULONG64)(POOL_TYPE)bad[i], 48, tag_of((art)a, TAG));
                after = stats_now();
                assert_unchanged(&before, &after, 1);
                /* Report and continue: NULL, and no raise even where the routine raises. */
                {
                    outcome o;
                    expect_bugcheck_continue(0xC2, 0x9A,
                                             o = alloc_try((art)a, bad[i] | POOL_RAISE_IF_ALLOCATION_FAILURE, 48, TAG));
                    assert_null(o.p);
                    assert_int_equal(o.raised, STATUS_SUCCESS);
                }
            }
            for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
                assert_served((art)a, good[i], 48);
        }
    }
}

/* Invalid POOL_FLAGS for ExAllocatePool2/3: NULL (or the raise with
 * POOL_FLAG_RAISE_ON_FAILURE), no bug check; unknown optional bits are ignored. */
static void test_badinput_alloc_invalid_flags(void **state)
{
    const ULONG64 bad[] = {0,
                           POOL_FLAG_USE_QUOTA, /* no pool kind */
                           POOL_FLAG_RESERVED1 | POOL_FLAG_NON_PAGED,
                           POOL_FLAG_RESERVED2 | POOL_FLAG_NON_PAGED,
                           POOL_FLAG_RESERVED3 | POOL_FLAG_NON_PAGED,
                           0x800 | POOL_FLAG_NON_PAGED,
                           POOL_FLAG_REQUIRED_END | POOL_FLAG_PAGED,
                           POOL_FLAG_SESSION | POOL_FLAG_NON_PAGED,
                           POOL_FLAG_NON_PAGED | POOL_FLAG_PAGED,
                           POOL_FLAG_NON_PAGED | POOL_FLAG_NON_PAGED_EXECUTE,
                           POOL_FLAG_NON_PAGED | POOL_FLAG_NON_PAGED_EXECUTE | POOL_FLAG_PAGED,
                           (ULONG64)NonPagedPoolNx, /* a POOL_TYPE passed as flags: 0x200 is reserved */
                           (ULONG64)PagedPool,      /* 1 is USE_QUOTA alone */
                           ~(ULONG64)0 & ~POOL_FLAG_RAISE_ON_FAILURE};
    const ULONG64 good[] = {POOL_FLAG_NON_PAGED,
                            POOL_FLAG_PAGED,
                            POOL_FLAG_NON_PAGED_EXECUTE,
                            POOL_FLAG_NON_PAGED | POOL_FLAG_SPECIAL_POOL,
                            POOL_FLAG_PAGED | POOL_FLAG_OPTIONAL_END,
                            POOL_FLAG_NON_PAGED | 0xFFFFFFFF00000000ull,
                            POOL_FLAG_NON_PAGED | POOL_FLAG_USE_QUOTA | POOL_FLAG_UNINITIALIZED |
                                POOL_FLAG_CACHE_ALIGNED | POOL_FLAG_RAISE_ON_FAILURE};
    (void)state;
    for (int a = A_POOL2; a <= A_POOL3; a++) {
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            assert_refused((art)a, bad[i], 48);
            assert_refused((art)a, bad[i] | POOL_FLAG_RAISE_ON_FAILURE, 48);
            /* The flags are checked before the size: no C4/0x00 for size 0. */
            assert_refused((art)a, bad[i], 0);
        }
        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
            assert_served((art)a, good[i], 48);
    }
}

/* ExAllocatePool3's extended parameters: NULL with a count, required
 * unsupported ones: NULL, no bug check; optional ones are ignored. */
static void test_badinput_alloc_pool3_ext_params(void **state)
{
    POOL_EXTENDED_PARAMETER e[20];
    poolsim_stats before, after;
    void *volatile p = (void *)1;
    (void)state;
    memset(e, 0, sizeof e);
    before = stats_now();
    expect_no_bugcheck(p = ExAllocatePool3(POOL_FLAG_NON_PAGED, 48, TAG, NULL, 1));
    assert_null(p);
    e[0].Type = PoolExtendedParameterSecurePool; /* not emulated */
    expect_no_bugcheck(p = ExAllocatePool3(POOL_FLAG_NON_PAGED, 48, TAG, e, 1));
    assert_null(p);
    e[0].Type = PoolExtendedParameterInvalidType;
    expect_no_bugcheck(p = ExAllocatePool3(POOL_FLAG_NON_PAGED, 48, TAG, e, 1));
    assert_null(p);
    e[0].Type = 0xFF;
    expect_no_bugcheck(p = ExAllocatePool3(POOL_FLAG_NON_PAGED, 48, TAG, e, 1));
    assert_null(p);
    e[0].Type = PoolExtendedParameterNumaNode; /* nonpaged only */
    expect_no_bugcheck(p = ExAllocatePool3(POOL_FLAG_PAGED, 48, TAG, e, 1));
    assert_null(p);
    after = stats_now();
    assert_unchanged(&before, &after, 5);
    /* Both directions. */
    expect_no_bugcheck(p = ExAllocatePool3(POOL_FLAG_NON_PAGED, 48, TAG, e, 1));
    assert_non_null(p);
    ExFreePool(p);
    e[0].Type = 0xFF;
    e[0].Optional = 1;
    expect_no_bugcheck(p = ExAllocatePool3(POOL_FLAG_NON_PAGED, 48, TAG, e, 1));
    assert_non_null(p);
    ExFreePool(p);
    expect_no_bugcheck(p = ExAllocatePool3(POOL_FLAG_NON_PAGED, 48, TAG, e, 0)); /* count 0: e unread */
    assert_non_null(p);
    ExFreePool(p);
    for (int i = 0; i < 20; i++) {
        e[i].Type = PoolExtendedParameterPriority;
        e[i].Optional = 0;
        e[i].Priority = HighPoolPriority;
    }
    expect_no_bugcheck(p = ExAllocatePool3(POOL_FLAG_PAGED, 48, TAG, e, 20)); /* more than poolsim copies */
    assert_non_null(p);
    ExFreePool(p);
}

/* Tag 0: C2/0x9B (pool type, bytes, 0) from the tagged legacy routines (a
 * PROTECTED_POOL bit alone is tag 0); ExAllocatePool2/3 return NULL; the
 * untagged and Mm routines take no tag. */
static void test_badinput_alloc_tag_zero(void **state)
{
    (void)state;
    for (unsigned family = 0; family < 2; family++) {
        reinit_family(family);
        for (int a = 0; a < A_COUNT; a++) {
            for (int paged = 0; paged < 2; paged++) {
                ULONG64 type = type_of((art)a, paged != 0);
                uintptr_t pool_type = paged ? 1u : 0x200u;
                static const ULONG zero_tags[] = {0, PROTECTED_POOL};
                for (int z = 0; z < 2; z++) {
                    void *volatile p = (void *)1;
                    poolsim_stats before = stats_now(), after;
                    if (arts[a].kind == K_MM && paged)
                        continue;
                    if (arts[a].kind == K_LEGACY && arts[a].tagged) {
                        expect_bugcheck(0xC2, 0x9B, p = alloc_as((art)a, type, 48, zero_tags[z]));
                        assert_args(pool_type, 48, 0);
                        after = stats_now();
                        assert_unchanged(&before, &after, 1);
                        /* Report and continue: NULL. */
                        expect_bugcheck_continue(0xC2, 0x9B, p = alloc_as((art)a, type, 48, zero_tags[z]));
                        assert_null(p);
                    } else if (arts[a].kind == K_FLAGS) {
                        assert_refused_tag((art)a, type, 48, zero_tags[z]);
                        (void)before;
                    } else {
                        /* Untagged ("None") and Mm: the tag is not an input. */
                        expect_no_bugcheck(p = alloc_as((art)a, type, 48, zero_tags[z]));
                        assert_non_null(p);
                        free_as((art)a, p, 48);
                    }
                }
            }
        }
    }
    /* ExAllocatePool2 with tag 0 and POOL_FLAG_RAISE_ON_FAILURE raises. */
    {
        outcome o;
        expect_no_bugcheck(o = alloc_try(A_POOL2, POOL_FLAG_NON_PAGED | POOL_FLAG_RAISE_ON_FAILURE, 48, 0));
        assert_null(o.p);
        assert_int_equal(o.raised, STATUS_INSUFFICIENT_RESOURCES);
    }
    /* Both directions: one-character tags are tags. */
    {
        void *p;
        expect_no_bugcheck(p = ExAllocatePoolWithTag(NonPagedPoolNx, 48, 'A'));
        assert_non_null(p);
        ExFreePoolWithTag(p, 'A');
    }
}

/* Checks are ordered: pool type or flags, tag, size 0, (IRQL), pool limit. */
static void test_badinput_alloc_check_order(void **state)
{
    void *volatile p = (void *)1;
    (void)state;
    expect_bugcheck(0xC2, 0x9A, p = ExAllocatePoolWithTag((POOL_TYPE)7, 0, 0));
    expect_bugcheck(0xC2, 0x9A, p = ExAllocatePoolWithTag((POOL_TYPE)7, SIZE_MAX, TAG));
    expect_bugcheck(0xC2, 0x9B, p = ExAllocatePoolWithTag(NonPagedPoolNx, 0, 0));
    expect_bugcheck(0xC2, 0x9B, p = ExAllocatePoolWithTag(NonPagedPoolNx, SIZE_MAX, 0));
    expect_bugcheck(0xC2, 0x9C, p = ExAllocatePoolWithTag(NonPagedPoolNx, 0, TAG_BIG));
    expect_bugcheck(0xC2, 0x9D, p = ExAllocatePoolWithTag(NonPagedPoolNx, SIZE_MAX, 0xFFFFFFFFu));
    expect_bugcheck(0xC4, 0x00, p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 0, TAG));
    expect_bugcheck(0xC2, 0x9C, p = ExAllocatePool2(POOL_FLAG_NON_PAGED, SIZE_MAX, TAG_BIG));
    assert_args(0x200, SIZE_MAX, 0);
    expect_bugcheck(0xC2, 0x9D, p = ExAllocatePool2(POOL_FLAG_PAGED, 16, 0x01020304u));
    assert_args(0x01020304u, 1, 0);
    reinit_family(POOLSIM_FAMILY_RETAIL); /* 0x9D is Verifier's check only */
    expect_no_bugcheck(p = ExAllocatePool2(POOL_FLAG_PAGED, 16, 0x01020304u));
    assert_non_null(p);
    ExFreePool(p);
    expect_no_bugcheck(p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 0, 0));
    assert_null(p);
    expect_no_bugcheck(p = ExAllocatePool2(0, 0, TAG));
    assert_null(p);
}

/* ======================================================================================
 * 3. Free and query routines
 * ====================================================================================== */

static int g_static_word;

/* NULL: C4/0x10 (0, 0, 0) from the pool frees, C2/0x60 from
 * MmFreeContiguousMemory, C4/0x16 (0, 0, 0) from ExQueryPoolBlockSize; the
 * retail family C2/0x46 and C2/0x99. Report and continue: nothing happens. */
static void test_badinput_free_null(void **state)
{
    SIZE_T volatile size = 99;
    (void)state;
    for (unsigned family = 0; family < 2; family++) {
        bool v = family == POOLSIM_FAMILY_VERIFIER;
        reinit_family(family);
        expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x10 : 0x46, ExFreePool(NULL));
        assert_args(0, 0, 0);
        expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x10 : 0x46, ExFreePoolWithTag(NULL, TAG));
        assert_args(0, 0, 0);
        expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x10 : 0x46, ExFreePool2(NULL, TAG, NULL, 0));
        assert_args(0, 0, 0);
        expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x10 : 0x46, MmFreeNonCachedMemory(NULL, PAGE_SIZE));
        assert_args(0, 0, 0);
        expect_bugcheck(0xC2, 0x60, MmFreeContiguousMemory(NULL));
        assert_args(0, 0, 0);
        expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x16 : 0x99, size = ExQueryPoolBlockSize(NULL, NULL));
        assert_args(0, 0, 0);
        expect_bugcheck_continue(v ? 0xC4 : 0xC2, v ? 0x16 : 0x99, size = ExQueryPoolBlockSize(NULL, NULL));
        assert_int_equal(size, 0);
        expect_bugcheck_continue(v ? 0xC4 : 0xC2, v ? 0x10 : 0x46, ExFreePool(NULL));
        /* The real function (a callback, or POOLSIM_NO_SITE_MACROS): the same, site unknown. */
        expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x10 : 0x46, (ExFreePool)(NULL));
        assert_null(last_bc()->site.file);
    }
}

/* Foreign (C library heap), stack and static addresses: never handed out. */
static void test_badinput_free_foreign_stack_static(void **state)
{
    int local = 0;
    void *heap = malloc(64);
    void *bad[3];
    (void)state;
    assert_non_null(heap);
    bad[0] = heap;
    bad[1] = &local;
    bad[2] = &g_static_word;
    for (unsigned family = 0; family < 2; family++) {
        bool v = family == POOLSIM_FAMILY_VERIFIER;
        void *keep;
        reinit_family(family);
        keep = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, TAG); /* poolsim has pages mapped */
        assert_non_null(keep);
        for (int i = 0; i < 3; i++) {
            uintptr_t a = (uintptr_t)bad[i];
            expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x10 : 0x46, ExFreePool(bad[i]));
            assert_true(last_bc()->param[0] == (v ? 0x10u : 0x46u) && last_bc()->param[1] == a);
            assert_false(last_bc()->has_block);
            expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x10 : 0x46, ExFreePoolWithTag(bad[i], TAG));
            expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x10 : 0x46, ExFreePool2(bad[i], TAG, NULL, 0));
            expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x10 : 0x46, MmFreeNonCachedMemory(bad[i], 64));
            expect_bugcheck(0xC2, 0x60, MmFreeContiguousMemory(bad[i]));
            assert_args(a, 0, 0);
            expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x16 : 0x99, (void)ExQueryPoolBlockSize(bad[i], NULL));
            if (v)
                assert_args(0, a, 0);
            else
                assert_args(a, 0, 0);
            /* Queries: false, and !pool says so. */
            assert_false(poolsim_valid_access(bad[i], 1));
            assert_false(poolsim_find_block(bad[i], NULL));
            capture_start();
            poolsim_report_block(bad[i]);
            assert_printed(": not an address in poolsim's pool\n");
            capture_stop();
        }
        /* Both directions: the live block is still fine. */
        assert_true(poolsim_valid_access(keep, 64));
        expect_no_bugcheck(ExFreePoolWithTag(keep, TAG));
    }
    free(heap);
}

/* Interior, misaligned and header addresses of a live block: C4/0x13E
 * (address, block, 0), retail C2/0x99 (address, 0, 0); the block stays live. */
static void test_badinput_free_interior_misaligned(void **state)
{
    (void)state;
    for (unsigned family = 0; family < 2; family++) {
        bool v = family == POOLSIM_FAMILY_VERIFIER;
        reinit_family(family);
        for (int big = 0; big < 2; big++) {
            size_t n = big ? 3 * PAGE_SIZE : 100;
            char *p = (char *)ExAllocatePool2(POOL_FLAG_NON_PAGED, n, TAG);
            const intptr_t offs[] = {1, 8, (intptr_t)GRAN, 99, -1, -(intptr_t)GRAN,
                                     big ? (intptr_t)PAGE_SIZE : 50, big ? -8 : 3};
            assert_non_null(p);
            for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
                uintptr_t a = (uintptr_t)(p + offs[i]);
                expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x13E : 0x99, ExFreePool(p + offs[i]));
                if (v)
                    assert_args(a, (uintptr_t)p, 0);
                else
                    assert_args(a, 0, 0);
                assert_true(last_bc()->has_block);
                assert_ptr_equal(last_bc()->block.address, p);
                expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x13E : 0x99, ExFreePoolWithTag(p + offs[i], TAG));
                expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x13E : 0x99, ExFreePool2(p + offs[i], TAG, NULL, 0));
                /* Queries: not a valid access outside the caller's bytes. */
                if (offs[i] < 0)
                    assert_false(poolsim_valid_access(p + offs[i], 1));
            }
            /* Report and continue: the refused free does nothing. */
            expect_bugcheck_continue(v ? 0xC4 : 0xC2, v ? 0x13E : 0x99, ExFreePool(p + 1));
            /* Both directions: the block is intact and frees normally. */
            assert_true(poolsim_valid_access(p, n));
            assert_int_equal(poolsim_validate(), 0);
            expect_no_bugcheck(ExFreePoolWithTag(p, TAG));
        }
    }
}

/* ExQueryPoolBlockSize of an interior or misaligned address should be
 * C4/0x16 (0, address, 0) like every other bad address it is given
 * (docs/semantics.md); it raises the free code C4/0x13E instead. */
static void test_badinput_query_interior(void **state)
{
    char *p;
    (void)state;
    p = (char *)ExAllocatePool2(POOL_FLAG_NON_PAGED, 100, TAG);
    assert_non_null(p);
    expect_bugcheck(0xC4, 0x16, (void)ExQueryPoolBlockSize(p + 1, NULL));
    assert_args(0, (uintptr_t)(p + 1), 0);
    expect_bugcheck(0xC4, 0x16, (void)ExQueryPoolBlockSize(p + 16, NULL));
    expect_bugcheck(0xC4, 0x16, (void)ExQueryPoolBlockSize(p - 16, NULL));
    ExFreePool(p);
}

/* Freed pointers: a second free is C4/0x13 (0, header, header word), retail
 * C2/0x07 (tag, header's first ULONG, address), quarantined or released; an interior
 * address of a freed block is C4/0x10; a query is C4/0x16 (0, address, 0). */
static void test_badinput_free_freed(void **state)
{
    (void)state;
    for (int q = 0; q < 2; q++) {
        for (unsigned family = 0; family < 2; family++) {
            bool v = family == POOLSIM_FAMILY_VERIFIER;
            poolsim_options o = poolsim_cmocka_default_options();
            poolsim_block_info b;
            char *p;
            o.family = family;
            if (q)
                o.quarantine_bytes = 0; /* released at once */
            poolsim_cmocka_reinit(&o);
            p = (char *)ExAllocatePool2(POOL_FLAG_NON_PAGED, 100, TAG);
            assert_non_null(p);
            ExFreePoolWithTag(p, TAG);
            assert_true(poolsim_find_block(p, &b));
            assert_int_equal(b.state, q ? POOLSIM_BLOCK_RELEASED : POOLSIM_BLOCK_QUARANTINED);
            expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x13 : 0x07, ExFreePool(p));
            if (v)
                assert_true(last_bc()->param[1] == 0 && last_bc()->param[2] == (uintptr_t)(p - GRAN));
            else {
                uint32_t ulong1; /* C2/0x07's Arg3: the header's first ULONG, as a real dump had it (§1.0) */
                memcpy(&ulong1, p - GRAN, sizeof ulong1);
                assert_true(last_bc()->param[1] == TAG && last_bc()->param[2] == ulong1 &&
                            last_bc()->param[3] == (uintptr_t)p);
            }
            expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x13 : 0x07, ExFreePoolWithTag(p, TAG));
            expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x13 : 0x07, ExFreePool2(p, TAG, NULL, 0));
            expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x10 : 0x46, ExFreePool(p + 16));
            assert_true(last_bc()->param[1] == (uintptr_t)(p + 16));
            expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x16 : 0x99, (void)ExQueryPoolBlockSize(p, NULL));
            if (v)
                assert_args(0, (uintptr_t)p, 0);
            else
                assert_args((uintptr_t)p, 0, 0);
            assert_false(poolsim_valid_access(p, 0));
            assert_int_equal(poolsim_validate(), 0);
        }
    }
    /* Mm blocks: the same double free. */
    {
        void *c, *n;
        PHYSICAL_ADDRESS any;
        any.QuadPart = -1;
        reinit_family(POOLSIM_FAMILY_VERIFIER);
        c = MmAllocateContiguousMemory(100, any);
        n = MmAllocateNonCachedMemory(100);
        assert_non_null(c);
        assert_non_null(n);
        MmFreeContiguousMemory(c);
        MmFreeNonCachedMemory(n, 100);
        expect_bugcheck(0xC4, 0x13, MmFreeContiguousMemory(c));
        expect_bugcheck(0xC4, 0x13, MmFreeNonCachedMemory(n, 100));
    }
}

/* Tag 0 on free is no check (ExFreePool == ExFreePoolWithTag(P, 0)); a wrong
 * non-zero tag is C2/0x0A (address, allocation tag, tag passed), the
 * PROTECTED_POOL bit alone included (§2.6: only 0 skips the check; the
 * comparison masks the bit); a PROTECTED_POOL block needs its tag, 0 included. */
static void test_badinput_free_tag_zero(void **state)
{
    void *p;
    (void)state;
    p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, TAG);
    expect_no_bugcheck(ExFreePoolWithTag(p, 0));
    p = ExAllocatePool2(POOL_FLAG_PAGED, 64, TAG);
    expect_no_bugcheck(ExFreePool2(p, 0, NULL, 0));
    p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, TAG);
    expect_bugcheck(0xC2, 0x0A, ExFreePoolWithTag(p, 'xxxx'));
    assert_args((uintptr_t)p, TAG, 'xxxx');
    expect_no_bugcheck(ExFreePoolWithTag(p, TAG | PROTECTED_POOL)); /* the bit is masked */
    p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, TAG);
    expect_bugcheck(0xC2, 0x0A, ExFreePoolWithTag(p, PROTECTED_POOL));
    assert_args((uintptr_t)p, TAG, PROTECTED_POOL);
    expect_bugcheck(0xC2, 0x0A, ExFreePool2(p, PROTECTED_POOL, NULL, 0));
    expect_no_bugcheck(ExFreePool2(p, TAG, NULL, 0));
    p = ExAllocatePoolWithTag(NonPagedPoolNx, 64, TAG | PROTECTED_POOL);
    expect_bugcheck(0xC2, 0x0A, ExFreePoolWithTag(p, 0));
    expect_bugcheck(0xC2, 0x0A, ExFreePool(p));
    expect_no_bugcheck(ExFreePoolWithTag(p, TAG | PROTECTED_POOL));
}

/* ExFreePool2 with extended parameters: C4/0x16 (0, address, 0), retail
 * C2/0x99 (address, 0, 0); the block is not freed. */
static void test_badinput_free2_ext_params(void **state)
{
    POOL_EXTENDED_PARAMETER e;
    (void)state;
    memset(&e, 0, sizeof e);
    for (unsigned family = 0; family < 2; family++) {
        bool v = family == POOLSIM_FAMILY_VERIFIER;
        void *p;
        reinit_family(family);
        p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, TAG);
        e.Type = PoolExtendedParameterSecurePool;
        expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x16 : 0x99, ExFreePool2(p, TAG, &e, 1));
        if (v)
            assert_args(0, (uintptr_t)p, 0);
        else
            assert_args((uintptr_t)p, 0, 0);
        expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x16 : 0x99, ExFreePool2(p, TAG, NULL, 1));
        /* With a count of 0 the parameter pointer is not read: an ordinary free. */
        assert_true(poolsim_valid_access(p, 64));
        expect_no_bugcheck(ExFreePool2(p, TAG, &e, 0));
        assert_false(poolsim_valid_access(p, 64));
    }
}

/* The Mm frees given the wrong thing: another allocator's block, a wrong
 * size, an interior or stack address. */
static void test_badinput_mm_free_bad(void **state)
{
    PHYSICAL_ADDRESS any;
    char *c, *n, *pool;
    int local;
    (void)state;
    any.QuadPart = -1;
    c = (char *)MmAllocateContiguousMemory(100, any);
    n = (char *)MmAllocateNonCachedMemory(100);
    pool = (char *)ExAllocatePool2(POOL_FLAG_NON_PAGED, 100, TAG);
    assert_non_null(c);
    assert_non_null(n);
    assert_non_null(pool);
    expect_bugcheck(0xC2, 0x60, MmFreeContiguousMemory(pool));
    assert_args((uintptr_t)pool, 0, 0);
    expect_bugcheck(0xC2, 0x60, MmFreeContiguousMemory(n));
    expect_bugcheck(0xC2, 0x60, MmFreeContiguousMemory(c + 16));
    assert_args((uintptr_t)(c + 16), 0, 0);
    expect_bugcheck(0xC2, 0x60, MmFreeContiguousMemory(&local));
    expect_bugcheck(0xC4, 0x16, MmFreeNonCachedMemory(pool, 100));
    assert_args(0, (uintptr_t)pool, 0);
    expect_bugcheck(0xC4, 0x16, MmFreeNonCachedMemory(c, 100));
    expect_bugcheck(0xC4, 0x13E, MmFreeNonCachedMemory(n + 16, 100));
    expect_bugcheck(0xC4, 0x10, MmFreeNonCachedMemory(&local, sizeof local));
    expect_bugcheck(0xC4, 0x13F, MmFreeNonCachedMemory(n, SIZE_MAX));
    assert_args((uintptr_t)n, SIZE_MAX, 0);
    expect_bugcheck(0xC4, 0x13F, MmFreeNonCachedMemory(n, 0));
    expect_bugcheck(0xC4, 0x13F, MmFreeNonCachedMemory(n, PAGE_SIZE)); /* the pages, not the size */
    expect_bugcheck(0xC4, 0x16, ExFreePool(c));
    expect_bugcheck(0xC4, 0x16, ExFreePoolWithTag(n, 0));
    /* ExQueryPoolBlockSize of Mm memory: not pool, like the frees say. */
    expect_bugcheck(0xC4, 0x16, ExQueryPoolBlockSize(c, NULL));
    assert_args(0, (uintptr_t)c, 0);
    expect_bugcheck(0xC4, 0x16, ExQueryPoolBlockSize(n, NULL));
    /* Both directions. */
    expect_no_bugcheck(MmFreeContiguousMemory(c));
    expect_no_bugcheck(MmFreeNonCachedMemory(n, 100));
    expect_no_bugcheck(ExFreePool(pool));
}

/* An address with bits above the 48 the page map uses aliases a pool
 * address: poolsim_find_block claims it and a free of it blames the block. */
static void test_badinput_high_address_alias(void **state)
{
    char *p;
    uintptr_t alias;
    (void)state;
    if (sizeof(void *) != 8)
        skip();
    p = (char *)ExAllocatePool2(POOL_FLAG_NON_PAGED, 3 * PAGE_SIZE, TAG);
    assert_non_null(p);
    alias = (uintptr_t)p | ((uintptr_t)1 << 63);
    assert_false(poolsim_find_block((void *)alias, NULL));
    expect_bugcheck(0xC4, 0x10, ExFreePool((void *)alias));
    assert_false(last_bc()->has_block);
    expect_bugcheck(0xC4, 0x16, (void)ExQueryPoolBlockSize((void *)alias, NULL));
    ExFreePool(p);
}

/* ======================================================================================
 * 4. Lookaside lists
 * ====================================================================================== */

static PVOID NTAPI my_allocate(POOL_TYPE type, SIZE_T n, ULONG tag) { return ExAllocatePoolWithTag(type, n, tag); }

/* NULL list: the initialiser prints and fails; every other routine is
 * C4/0xCB (0, 0, 0). Called through the core (&NULL->Handle is undefined C). */
static void test_badinput_lookaside_null_list(void **state)
{
    poolsim_lookaside_params prm;
    poolsim_lookaside l;
    int32_t st = 0;
    void *volatile p = (void *)1;
    int local;
    (void)state;
    memset(&prm, 0, sizeof prm);
    prm.kind = POOLSIM_LOOKASIDE_EX;
    prm.size = 64;
    prm.tag = TAG;
    prm.pool_type = NonPagedPoolNx;
    capture_start();
    expect_no_bugcheck(st = poolsim_lookaside_init(NULL, &prm, __FILE__, __LINE__));
    assert_int_equal(st, STATUS_INVALID_PARAMETER);
    assert_printed("lookaside list initialised without a list or parameters\n");
    capture_clear();
    memset(&l, 0, sizeof l);
    expect_no_bugcheck(st = poolsim_lookaside_init(&l, NULL, __FILE__, __LINE__));
    assert_int_equal(st, STATUS_INVALID_PARAMETER);
    assert_printed("lookaside list initialised without a list or parameters\n");
    capture_clear();
    prm.kind = 3; /* no such kind */
    expect_no_bugcheck(st = poolsim_lookaside_init(&l, &prm, __FILE__, __LINE__));
    assert_int_equal(st, STATUS_INVALID_PARAMETER);
    assert_printed("lookaside list initialised without a list or parameters\n");
    capture_stop();
    for (unsigned kind = 0; kind < 3; kind++) {
        expect_bugcheck(0xC4, 0xCB, p = poolsim_wdm_lookaside_alloc(NULL, kind, __FILE__, __LINE__));
        assert_args(0, 0, 0);
        expect_bugcheck_continue(0xC4, 0xCB, p = poolsim_wdm_lookaside_alloc(NULL, kind, __FILE__, __LINE__));
        assert_null(p);
        expect_bugcheck(0xC4, 0xCB, poolsim_lookaside_free(NULL, kind, &local, __FILE__, __LINE__));
        expect_bugcheck(0xC4, 0xCB, poolsim_lookaside_flush(NULL, kind, __FILE__, __LINE__));
        expect_bugcheck(0xC4, 0xCB, poolsim_lookaside_delete(NULL, kind, __FILE__, __LINE__));
    }
}

/* Never initialised (zeroed or garbage), deleted, or initialised twice. */
static void test_badinput_lookaside_uninitialised_deleted_twice(void **state)
{
    NPAGED_LOOKASIDE_LIST nl;
    PAGED_LOOKASIDE_LIST pl;
    LOOKASIDE_LIST_EX lx;
    void *volatile p;
    (void)state;
    for (int fill = 0; fill < 2; fill++) {
        memset(&nl, fill ? 0xA5 : 0, sizeof nl);
        memset(&pl, fill ? 0xFF : 0, sizeof pl);
        memset(&lx, fill ? 0x5A : 0, sizeof lx);
        expect_bugcheck(0xC4, 0xCB, p = ExAllocateFromNPagedLookasideList(&nl));
        assert_args((uintptr_t)&nl, 0, 0);
        expect_bugcheck(0xC4, 0xCB, p = ExAllocateFromPagedLookasideList(&pl));
        expect_bugcheck(0xC4, 0xCB, p = ExAllocateFromLookasideListEx(&lx));
        expect_bugcheck(0xC4, 0xCB, ExFreeToNPagedLookasideList(&nl, NULL));
        expect_bugcheck(0xC4, 0xCB, ExFreeToPagedLookasideList(&pl, NULL));
        expect_bugcheck(0xC4, 0xCB, ExFreeToLookasideListEx(&lx, NULL));
        expect_bugcheck(0xC4, 0xCB, ExDeleteNPagedLookasideList(&nl));
        expect_bugcheck(0xC4, 0xCB, ExDeletePagedLookasideList(&pl));
        expect_bugcheck(0xC4, 0xCB, ExDeleteLookasideListEx(&lx));
        expect_bugcheck(0xC4, 0xCB, ExFlushLookasideListEx(&lx));
        /* Both directions: a garbage-filled struct initialises and works. */
        expect_no_bugcheck(ExInitializeNPagedLookasideList(&nl, NULL, NULL, 0, 64, TAG, 0));
        expect_no_bugcheck(p = ExAllocateFromNPagedLookasideList(&nl));
        assert_non_null(p);
        /* Initialised again while live: C4/0xCA (list, 0, 0), the list stays as it was. */
        expect_bugcheck(0xC4, 0xCA, ExInitializeNPagedLookasideList(&nl, NULL, NULL, 0, 128, 'xxxx', 0));
        assert_args((uintptr_t)&nl, 0, 0);
        {
            /* The list is as it was: a new entry has its size and tag. */
            poolsim_block_info b;
            void *q;
            expect_no_bugcheck(q = ExAllocateFromNPagedLookasideList(&nl));
            assert_true(poolsim_valid_access(q, 64) && !poolsim_valid_access(q, 65));
            assert_true(poolsim_find_block(q, &b) && b.tag == TAG);
            ExFreeToNPagedLookasideList(&nl, q);
        }
        expect_no_bugcheck(ExFreeToNPagedLookasideList(&nl, p));
        expect_no_bugcheck(ExDeleteNPagedLookasideList(&nl));
        /* Deleted: C4/0xCB for every use, a second delete included. */
        expect_bugcheck(0xC4, 0xCB, ExDeleteNPagedLookasideList(&nl));
        expect_bugcheck(0xC4, 0xCB, p = ExAllocateFromNPagedLookasideList(&nl));
    }
}

/* Sizes: below a pointer is C4/0xCD (list, size, minimum) and the list uses
 * the minimum; SIZE_MAX and sizes that overflow are accepted at
 * initialisation and every allocation fails (NULL, or the raise the list asks
 * for) with no counter moved but `failed`. */
static void test_badinput_lookaside_sizes(void **state)
{
    const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 15, SIZE_MAX / 2 + 1, SIZE_MAX / 2,
                            (size_t)POOLSIM_DEFAULT_NONPAGED_LIMIT + 1};
    NPAGED_LOOKASIDE_LIST nl;
    PAGED_LOOKASIDE_LIST pl;
    LOOKASIDE_LIST_EX lx;
    void *volatile p;
    NTSTATUS st = 1;
    (void)state;
    for (size_t small = 0; small < sizeof(void *); small++) {
        memset(&nl, 0, sizeof nl);
        expect_bugcheck_continue(0xC4, 0xCD, ExInitializeNPagedLookasideList(&nl, NULL, NULL, 0, small, TAG, 0));
        assert_args((uintptr_t)&nl, (uintptr_t)small, sizeof(void *));
        expect_no_bugcheck(p = ExAllocateFromNPagedLookasideList(&nl));
        assert_true(poolsim_valid_access(p, sizeof(void *)));
        ExFreeToNPagedLookasideList(&nl, p);
        ExDeleteNPagedLookasideList(&nl);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        poolsim_stats before = stats_now(), after;
        memset(&nl, 0, sizeof nl);
        memset(&pl, 0, sizeof pl);
        memset(&lx, 0, sizeof lx);
        expect_no_bugcheck(ExInitializeNPagedLookasideList(&nl, NULL, NULL, 0, sizes[i], TAG, 0));
        expect_no_bugcheck(ExInitializePagedLookasideList(&pl, NULL, NULL, 0, sizes[i], TAG, 0));
        expect_no_bugcheck(st = ExInitializeLookasideListEx(&lx, NULL, NULL, NonPagedPoolNx, 0, sizes[i], TAG, 0));
        assert_int_equal(st, STATUS_SUCCESS);
        expect_no_bugcheck(p = ExAllocateFromNPagedLookasideList(&nl));
        assert_null(p);
        expect_no_bugcheck(p = ExAllocateFromPagedLookasideList(&pl));
        assert_null(p);
        expect_no_bugcheck(p = ExAllocateFromLookasideListEx(&lx));
        assert_null(p);
        after = stats_now();
        assert_unchanged(&before, &after, 3);
        ExDeleteNPagedLookasideList(&nl);
        ExDeletePagedLookasideList(&pl);
        ExDeleteLookasideListEx(&lx);
        /* Lists that raise on failure raise. */
        {
            NTSTATUS volatile raised = STATUS_SUCCESS;
            memset(&nl, 0, sizeof nl);
            memset(&lx, 0, sizeof lx);
            ExInitializeNPagedLookasideList(&nl, NULL, NULL, POOL_RAISE_IF_ALLOCATION_FAILURE, sizes[i], TAG, 0);
            ExInitializeLookasideListEx(&lx, NULL, NULL, PagedPool, EX_LOOKASIDE_LIST_EX_FLAGS_RAISE_ON_FAIL,
                                        sizes[i], TAG, 0);
            POOLSIM_TRY
            {
                p = ExAllocateFromNPagedLookasideList(&nl);
            }
            POOLSIM_EXCEPT(raised) {}
            POOLSIM_END_TRY;
            assert_int_equal(raised, STATUS_INSUFFICIENT_RESOURCES);
            raised = STATUS_SUCCESS;
            POOLSIM_TRY
            {
                p = ExAllocateFromLookasideListEx(&lx);
            }
            POOLSIM_EXCEPT(raised) {}
            POOLSIM_END_TRY;
            assert_int_equal(raised, STATUS_INSUFFICIENT_RESOURCES);
            ExDeleteNPagedLookasideList(&nl);
            ExDeleteLookasideListEx(&lx);
        }
    }
}

/* Tag 0 is accepted at initialisation; the first allocation from the pool
 * is C2/0x9B. Invalid pool type / flags of the Ex list: STATUS_INVALID_PARAMETER_4
 * / _5 and the list is not initialised; the NPaged/Paged lists ignore unknown flags. */
static void test_badinput_lookaside_tag_type_flags(void **state)
{
    NPAGED_LOOKASIDE_LIST nl;
    LOOKASIDE_LIST_EX lx;
    const ULONG64 bad_types[] = {NonPagedPoolMustSucceed, DontUseThisType, MaxPoolType, 0x10000, 0xFFFFFFFFu};
    const ULONG bad_flags[] = {EX_LOOKASIDE_LIST_EX_FLAGS_RAISE_ON_FAIL | EX_LOOKASIDE_LIST_EX_FLAGS_FAIL_NO_RAISE,
                               4, 0x80000000u, 0xFFFFFFFFu};
    NTSTATUS st = 0;
    void *volatile p;
    (void)state;
    memset(&nl, 0, sizeof nl);
    expect_no_bugcheck(ExInitializeNPagedLookasideList(&nl, NULL, NULL, 0, 64, 0, 0));
    expect_bugcheck(0xC2, 0x9B, p = ExAllocateFromNPagedLookasideList(&nl));
    assert_args(0, 64, 0);
    ExDeleteNPagedLookasideList(&nl);
    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
        memset(&lx, 0, sizeof lx);
        expect_no_bugcheck(st = ExInitializeLookasideListEx(&lx, NULL, NULL, (POOL_TYPE)bad_types[i], 0, 64, TAG, 0));
        assert_int_equal(st, STATUS_INVALID_PARAMETER_4);
        expect_bugcheck(0xC4, 0xCB, p = ExAllocateFromLookasideListEx(&lx));
    }
    for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
        memset(&lx, 0, sizeof lx);
        expect_no_bugcheck(st = ExInitializeLookasideListEx(&lx, NULL, NULL, NonPagedPoolNx, bad_flags[i], 64, TAG, 0));
        assert_int_equal(st, STATUS_INVALID_PARAMETER_5);
        expect_bugcheck(0xC4, 0xCB, ExDeleteLookasideListEx(&lx));
    }
    /* Both directions. */
    memset(&lx, 0, sizeof lx);
    expect_no_bugcheck(st = ExInitializeLookasideListEx(&lx, NULL, NULL, PagedPool,
                                                        EX_LOOKASIDE_LIST_EX_FLAGS_FAIL_NO_RAISE, 64, TAG, 0));
    assert_int_equal(st, STATUS_SUCCESS);
    ExDeleteLookasideListEx(&lx);
    memset(&nl, 0, sizeof nl);
    expect_no_bugcheck(ExInitializeNPagedLookasideList(&nl, NULL, NULL, 0xFFFF0000u, 64, TAG, 0)); /* ignored */
    expect_no_bugcheck(p = ExAllocateFromNPagedLookasideList(&nl));
    assert_non_null(p);
    ExFreeToNPagedLookasideList(&nl, p);
    ExDeleteNPagedLookasideList(&nl);
}

/* Bad entries freed to a pool-backed list: the pool's codes for a bad free. */
static void test_badinput_lookaside_bad_entries(void **state)
{
    int local;
    void *heap = malloc(64);
    (void)state;
    assert_non_null(heap);
    for (unsigned family = 0; family < 2; family++) {
        bool v = family == POOLSIM_FAMILY_VERIFIER;
        NPAGED_LOOKASIDE_LIST nl;
        char *e, *other;
        reinit_family(family);
        memset(&nl, 0, sizeof nl);
        ExInitializeNPagedLookasideList(&nl, NULL, NULL, 0, 64, TAG, 0);
        e = (char *)ExAllocateFromNPagedLookasideList(&nl);
        other = (char *)ExAllocateFromNPagedLookasideList(&nl);
        assert_non_null(e);
        expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x10 : 0x46, ExFreeToNPagedLookasideList(&nl, NULL));
        assert_args(0, 0, 0);
        expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x10 : 0x46, ExFreeToNPagedLookasideList(&nl, &local));
        expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x10 : 0x46, ExFreeToNPagedLookasideList(&nl, heap));
        expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x13E : 0x99, ExFreeToNPagedLookasideList(&nl, e + 8));
        /* Already in the list: a double free (C4/0x13 (0, entry - 16, 0), retail C2/0x07 (tag, 0, entry)). */
        ExFreeToNPagedLookasideList(&nl, e);
        expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x13 : 0x07, ExFreeToNPagedLookasideList(&nl, e));
        if (v)
            assert_args(0, (uintptr_t)(e - GRAN), 0);
        else
            assert_args(TAG, 0, (uintptr_t)e);
        /* Freed to the pool already: the pool's double free. */
        ExFreePool(other);
        expect_bugcheck(v ? 0xC4 : 0xC2, v ? 0x13 : 0x07, ExFreeToNPagedLookasideList(&nl, other));
        /* Both directions: the list still works. */
        expect_no_bugcheck(e = (char *)ExAllocateFromNPagedLookasideList(&nl));
        expect_no_bugcheck(ExFreeToNPagedLookasideList(&nl, e));
        expect_no_bugcheck(ExDeleteNPagedLookasideList(&nl));
    }
    free(heap);
}

/* A list with the driver's own Allocate routine cannot check its entries,
 * but NULL is never one: it is taken silently and uses up a cache slot. */
static void test_badinput_lookaside_custom_null_entry(void **state)
{
    NPAGED_LOOKASIDE_LIST nl;
    void *p;
    (void)state;
    memset(&nl, 0, sizeof nl);
    ExInitializeNPagedLookasideList(&nl, my_allocate, NULL, 0, 64, TAG, 0);
    expect_bugcheck(0xC4, 0x10, ExFreeToNPagedLookasideList(&nl, NULL));
    p = ExAllocateFromNPagedLookasideList(&nl);
    assert_non_null(p);
    ExFreePool(p);
    ExDeleteNPagedLookasideList(&nl);
}

/* After poolsim_shutdown the lookaside routines should say so, like the pool
 * routines do; they return silently. */
static void test_badinput_lookaside_after_shutdown_line(void **state)
{
    NPAGED_LOOKASIDE_LIST nl;
    void *p;
    (void)state;
    memset(&nl, 0, sizeof nl);
    ExInitializeNPagedLookasideList(&nl, NULL, NULL, 0, 64, TAG, 0);
    assert_int_equal(poolsim_shutdown(), 0);
    capture_start();
    p = ExAllocateFromNPagedLookasideList(&nl);
    assert_null(p);
    assert_printed(NOT_INIT_TAIL);
    capture_clear();
    ExDeleteNPagedLookasideList(&nl);
    assert_printed(NOT_INIT_TAIL);
    capture_stop();
}

/* ======================================================================================
 * 5. Queries, reports, fault injection, the engine
 * ====================================================================================== */

static void test_badinput_queries(void **state)
{
    char *p = (char *)ExAllocatePool2(POOL_FLAG_NON_PAGED, 100, TAG);
    poolsim_block_info b;
    poolsim_tag_usage_t u;
    poolsim_fault_record rec[POOLSIM_FAULT_LOG];
    BOOLEAN quota = TRUE;
    (void)state;
    assert_non_null(p);
    /* poolsim_valid_access: NULL, overflowing n, just outside. */
    assert_false(poolsim_valid_access(NULL, 0));
    assert_false(poolsim_valid_access(NULL, SIZE_MAX));
    assert_false(poolsim_valid_access(p, SIZE_MAX));
    assert_false(poolsim_valid_access(p + 1, SIZE_MAX));
    assert_false(poolsim_valid_access(p + 50, SIZE_MAX - 40));
    assert_false(poolsim_valid_access(p, 101));
    assert_false(poolsim_valid_access(p - 1, 1));
    assert_false(poolsim_valid_access(p + 101, 0));
    assert_true(poolsim_valid_access(p, 100));
    assert_true(poolsim_valid_access(p + 100, 0)); /* one past the end, empty */
    assert_true(poolsim_valid_access(p + 99, 1));
    /* poolsim_find_block: NULL out is allowed; NULL p is not a block. */
    assert_true(poolsim_find_block(p + 50, NULL));
    memset(&b, 0xA5, sizeof b);
    assert_false(poolsim_find_block(NULL, &b));
    assert_null(b.address);
    assert_true(poolsim_find_block(p + 1, &b));
    assert_ptr_equal(b.address, p);
    /* ExQueryPoolBlockSize: QuotaCharged may be NULL. */
    assert_int_equal(ExQueryPoolBlockSize(p, NULL), (100 + GRAN - 1) / GRAN * GRAN);
    assert_int_equal(ExQueryPoolBlockSize(p, &quota), (100 + GRAN - 1) / GRAN * GRAN);
    assert_int_equal(quota, FALSE);
    /* poolsim_tag_usage: NULL out, tag 0, an unused tag. */
    assert_false(poolsim_tag_usage(TAG, NULL));
    memset(&u, 0xA5, sizeof u);
    assert_false(poolsim_tag_usage(0, &u));
    assert_int_equal(u.tag, 0);
    assert_int_equal(u.nonpaged.allocs, 0);
    assert_false(poolsim_tag_usage('xxxx', &u));
    assert_true(poolsim_tag_usage(TAG | PROTECTED_POOL, &u)); /* the bit is masked */
    assert_int_equal(u.nonpaged.allocs, 1);
    /* NULL outs elsewhere. */
    poolsim_get_stats(NULL);
    assert_int_equal(poolsim_live_since(0, NULL, 100), 1);
    assert_int_equal(poolsim_live_since(0, &b, 0), 1);
    assert_int_equal(poolsim_live_since(UINT64_MAX, &b, 1), 0);
    assert_int_equal(poolsim_fault_log(NULL, 100), 0);
    assert_int_equal(poolsim_fault_log(rec, 0), 0);
    poolsim_get_bugcheck_handler(NULL, NULL);
    /* !pool of NULL. */
    capture_start();
    poolsim_report_block(NULL);
    assert_printed("poolsim: !pool ");
    assert_printed(": not an address in poolsim's pool\n");
    capture_stop();
    ExFreePool(p);
}

static void test_badinput_reports(void **state)
{
    void *p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 100, TAG);
    char long_pattern[300];
    (void)state;
    memset(long_pattern, '?', sizeof long_pattern - 1);
    long_pattern[sizeof long_pattern - 1] = '\0';
    capture_start();
    /* Unknown flag bits are ignored; NULL and "" mean every tag. */
    poolsim_report_poolused(0xFFFFFFF8u, NULL);
    assert_printed(" XTag");
    capture_clear();
    poolsim_report_poolused(0xFFFFFFFFu, "");
    assert_printed(" XTag");
    assert_printed("Sorting by  NonPaged Used");
    /* Patterns that match nothing: the header and a zero TOTAL. */
    capture_clear();
    poolsim_report_poolused(POOLSIM_POOLUSED_VERBOSE, long_pattern);
    assert_null(strstr(g_text, "XTag"));
    assert_printed(" TOTAL");
    capture_clear();
    poolsim_report_poolused(0, "\xff\xfe\x01");
    assert_null(strstr(g_text, "XTag"));
    capture_clear();
    poolsim_report_poolused_json(long_pattern);
    assert_printed("{\"tags\":[]}\n");
    capture_clear();
    poolsim_report_poolused_json(NULL);
    assert_printed("\"tag\":\"XTag\"");
    /* poolsim_write(NULL) prints nothing. */
    capture_clear();
    poolsim_write(NULL);
    assert_nothing_printed();
    capture_stop();
    /* Names of things that do not exist. */
    assert_string_equal(poolsim_routine_name((poolsim_routine)POOLSIM_RT_COUNT), "(unknown routine)");
    assert_string_equal(poolsim_routine_name((poolsim_routine)-1), "(unknown routine)");
    assert_null(poolsim_bugcheck_name(0));
    assert_null(poolsim_bugcheck_name(0xFFFFFFFFul));
    assert_string_equal(poolsim_bugcheck_name(0xC4), "DRIVER_VERIFIER_DETECTED_VIOLATION");
    ExFreePool(p);
}

/* poolsim_report_bugcheck(NULL) should be a no-op; it dereferences NULL. */
static void test_badinput_report_bugcheck_null(void **state)
{
    (void)state;
    capture_start();
    poolsim_report_bugcheck(NULL);
    capture_stop();
}

static void body_allocates(void *ctx)
{
    void *p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 16, TAG);
    (void)ctx;
    if (p)
        ExFreePool(p);
}

static void test_badinput_fault_config(void **state)
{
    poolsim_fault_config c;
    poolsim_sweep_result r;
    void *volatile p;
    (void)state;
    /* NULL: injection off. */
    poolsim_fault_configure(NULL);
    expect_no_bugcheck(p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 16, TAG));
    assert_non_null(p);
    ExFreePool(p);
    /* A probability above 10000 is 10000 (always); tags NULL is every tag. */
    memset(&c, 0, sizeof c);
    c.probability = 0xFFFFFFFFu;
    c.tags = NULL;
    poolsim_fault_configure(&c);
    expect_no_bugcheck(p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 16, TAG));
    assert_null(p);
    assert_int_equal(poolsim_faults_injected(), 1);
    /* nth = UINT64_MAX: never reached. */
    memset(&c, 0, sizeof c);
    c.nth = UINT64_MAX;
    c.site_file = "";
    c.site_line = -1;
    poolsim_fault_configure(&c);
    expect_no_bugcheck(p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 16, TAG));
    assert_non_null(p);
    ExFreePool(p);
    poolsim_fault_configure(NULL);
    /* A sweep with no body: -1, the result zeroed. */
    memset(&r, 0xA5, sizeof r);
    assert_int_equal(poolsim_fault_sweep(NULL, NULL, &r), -1);
    assert_int_equal(r.runs + r.sites + r.ok + r.leaked + r.bugchecks + r.crashes + r.not_reached, 0);
    assert_int_equal(poolsim_fault_sweep_nth(NULL, NULL, NULL), -1);
    /* Both directions: a real body, a NULL result pointer. */
    capture_start();
    assert_int_equal(poolsim_fault_sweep(body_allocates, NULL, NULL), 0);
    capture_stop();
}

/* A huge delay_ms (584 years and more) overflows delay_ms * 1000000 and
 * wraps to a fraction of a millisecond: failures start at once. */
static void test_badinput_fault_delay_overflow(void **state)
{
    poolsim_fault_config c;
    void *volatile p;
    (void)state;
    memset(&c, 0, sizeof c);
    c.probability = 10000;
    c.delay_ms = 18446744073710ull; /* * 1000000 wraps to ~448 microseconds */
    poolsim_fault_configure(&c);
    {
        /* Wait well past the wrapped delay (portable busy wait on the clock poolsim uses). */
        poolsim_stats s0 = stats_now();
        volatile unsigned long spin;
        for (spin = 0; spin < 50000000ul; spin++) {
        }
        (void)s0;
    }
    expect_no_bugcheck(p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 16, TAG));
    assert_non_null(p);
    ExFreePool(p);
    poolsim_fault_configure(NULL);
}

/* The engine behind wdm.h, given requests no WDK macro makes. */
static void test_badinput_engine(void **state)
{
    poolsim_alloc_req req;
    int32_t st = 1;
    void *volatile p = (void *)1;
    void *q;
    bool qc = true;
    (void)state;
    capture_start();
    expect_no_bugcheck(p = poolsim_pool_alloc(NULL, &st, __FILE__, __LINE__));
    assert_null(p);
    assert_int_equal(st, 0);
    assert_printed("poolsim: poolsim_pool_alloc called at ");
    assert_printed(" without a valid allocation request\n");
    memset(&req, 0, sizeof req);
    req.routine = POOLSIM_RT_COUNT;
    req.size = 16;
    req.tag = TAG;
    capture_clear();
    expect_no_bugcheck(p = poolsim_pool_alloc(&req, NULL, NULL, 0));
    assert_null(p);
    assert_printed("poolsim: poolsim_pool_alloc called at ?:0 without a valid allocation request\n");
    req.routine = POOLSIM_RT_EX_FREE_POOL; /* not an allocation routine */
    capture_clear();
    expect_no_bugcheck(p = poolsim_pool_alloc(&req, NULL, NULL, 0));
    assert_null(p);
    assert_printed("without a valid allocation request");
    capture_stop();
    /* raise_status NULL: the raise is dropped, NULL is returned. */
    req.routine = POOLSIM_RT_EX_ALLOCATE_POOL_WITH_QUOTA_TAG;
    req.type = PagedPool;
    req.size = SIZE_MAX;
    expect_no_bugcheck(p = poolsim_pool_alloc(&req, NULL, NULL, 0));
    assert_null(p);
    req.size = 16;
    expect_no_bugcheck(p = poolsim_pool_alloc(&req, &st, NULL, 0));
    assert_non_null(p);
    assert_int_equal(st, 0);
    /* poolsim_pool_block_size with a NULL quota_charged. */
    assert_int_equal(poolsim_pool_block_size(p, NULL, NULL, 0), 16);
    assert_int_equal(poolsim_pool_block_size(p, &qc, NULL, 0), 16);
    assert_true(qc);
    /* An invalid free routine is taken as ExFreePool (documented). */
    expect_no_bugcheck(poolsim_pool_free((poolsim_routine)POOLSIM_RT_COUNT, p, 'xxxx', NULL, 0, NULL, 0));
    assert_false(poolsim_valid_access(p, 1));
    /* An invalid Mm free routine is taken as MmFreeContiguousMemory. */
    q = ExAllocatePool2(POOL_FLAG_NON_PAGED, 16, TAG);
    expect_bugcheck(0xC2, 0x60, poolsim_mm_free((poolsim_routine)POOLSIM_RT_COUNT, q, 0, NULL, 0));
    ExFreePool(q);
}

/* ======================================================================================
 * 6. KeBugCheckEx, ExRaiseStatus and POOLSIM_TRY, Rtl*Memory, DbgPrint
 * ====================================================================================== */

static void test_badinput_kebugcheck_any_code(void **state)
{
    (void)state;
    expect_bugcheck(0, 0, KeBugCheck(0));
    assert_args(0, 0, 0);
    assert_string_equal(last_bc()->name, "UNKNOWN_BUGCHECK");
    expect_bugcheck(0xFFFFFFFFul, UINTPTR_MAX, KeBugCheckEx(0xFFFFFFFFul, UINTPTR_MAX, UINTPTR_MAX, 0, UINTPTR_MAX));
    assert_args(UINTPTR_MAX, 0, UINTPTR_MAX);
    assert_false(last_bc()->has_block);
    expect_bugcheck(0xC4, 0x62, KeBugCheckEx(0xC4, 0x62, 0, 0, 0)); /* a driver may raise poolsim's codes */
    assert_string_equal(last_bc()->name, "DRIVER_VERIFIER_DETECTED_VIOLATION");
    assert_string_equal(last_bc()->site.routine, "KeBugCheckEx");
    /* Through the real functions (no site). */
    expect_bugcheck(0xE2, 0, (KeBugCheck)(0xE2));
    assert_null(last_bc()->site.file);
}

static void test_badinput_raise_status(void **state)
{
    NTSTATUS volatile st = 12345;
    (void)state;
    /* No frame: 0x1E (status sign-extended, address, 0, 0), any status. */
    expect_bugcheck(0x1E, 0, ExRaiseStatus(STATUS_SUCCESS));
    assert_true(last_bc()->param[1] != 0);
    assert_true(last_bc()->param[2] == 0 && last_bc()->param[3] == 0);
    expect_bugcheck(0x1E, (uintptr_t)(intptr_t)(NTSTATUS)0x80000000, ExRaiseStatus((NTSTATUS)0x80000000));
    expect_bugcheck(0x1E, (uintptr_t)(intptr_t)STATUS_INSUFFICIENT_RESOURCES, (ExRaiseStatus)(STATUS_INSUFFICIENT_RESOURCES));
    /* In a frame: caught, STATUS_SUCCESS included. */
    POOLSIM_TRY
    {
        ExRaiseStatus(STATUS_SUCCESS);
    }
    POOLSIM_EXCEPT(st) {}
    POOLSIM_END_TRY;
    assert_int_equal(st, STATUS_SUCCESS);
    assert_int_equal(poolsim_wdm_try_depth(), 0);
    /* A frame that is not on the chain is ignored by try_leave. */
    {
        poolsim_wdm_try_frame f;
        memset(&f, 0xA5, sizeof f);
        poolsim_wdm_try_leave(&f);
        assert_int_equal(poolsim_wdm_try_depth(), 0);
    }
}

/* POOLSIM_TRY's helpers dereference a NULL frame. */
static void test_badinput_try_frame_null(void **state)
{
    (void)state;
    poolsim_wdm_try_leave(NULL);
    poolsim_wdm_try_enter(NULL);
    assert_int_equal(poolsim_wdm_try_depth(), 0);
}

static int fmt(char *buf, size_t size, const char *format, ...)
{
    va_list ap;
    int n;
    va_start(ap, format);
    n = poolsim_wdm_vsnprintf(buf, size, format, ap);
    va_end(ap);
    return n;
}

static void test_badinput_rtl_dbgprint(void **state)
{
    char buf[8];
    char big[700];
    (void)state;
    assert_int_equal(RtlCompareMemory(NULL, NULL, 0), 0);
    assert_null(RtlSecureZeroMemory(NULL, 0));
    assert_int_equal(RtlCompareMemory("abc", "abd", 3), 2);
    capture_start();
    expect_no_bugcheck(DbgPrint(NULL));
    assert_int_equal(g_len, 0);
    expect_no_bugcheck(DbgPrintEx(DPFLTR_IHVDRIVER_ID, 0xFFFFFFFFu, NULL));
    assert_int_equal(g_len, 0);
    expect_no_bugcheck(DbgPrint("%s|%Z|%wZ|%ws|%S\n", (char *)NULL, (void *)NULL, (void *)NULL, (void *)NULL,
                                (void *)NULL));
    assert_string_equal(g_text, "(null)|(null)|(null)|(null)|(null)\n");
    /* The kernel's 512-byte limit: at most 511 characters. */
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    capture_clear();
    DbgPrint("%s", big);
    assert_int_equal(g_len, 511);
    /* Unknown directives are printed as written. */
    capture_clear();
    DbgPrint("%q%");
    assert_string_equal(g_text, "%q%");
    capture_stop();
    /* The formatter with no buffer returns the length it needs. */
    assert_int_equal(fmt(NULL, 0, "abc"), 3);
    assert_int_equal(fmt(NULL, 5, "abc"), 3); /* NULL buffer: size ignored */
    assert_int_equal(fmt(buf, sizeof buf, NULL), 0);
    assert_string_equal(buf, "");
    assert_int_equal(fmt(buf, 1, "abc"), 3);
    assert_string_equal(buf, "");
}

/* ---- IRQL and locks (docs/bad-input.md §8) ---------------------------------------------- */

#define STATUS_ACCESS_VIOLATION_ 0xC0000005u

/* The NULL-object bug check: 0xD1 (0, IRQL, 1, 0) at DISPATCH_LEVEL or above, else 0x1E (access violation).
 */
static void assert_null_touch(KIRQL irql, const char *routine)
{
    const poolsim_bugcheck *bc = last_bc();
    if (irql >= DISPATCH_LEVEL) {
        assert_int_equal(bc->code, 0xD1);
        assert_true(bc->param[0] == 0);
        assert_args(irql, 1, 0);
    } else {
        assert_int_equal(bc->code, 0x1E);
        assert_true(bc->param[0] == STATUS_ACCESS_VIOLATION_);
        assert_args(0, 1, 0);
    }
    assert_string_equal(bc->site.routine, routine);
    assert_false(bc->has_block);
    {
        poolsim_irql_event ev; /* both carry the thread's IRQL history, when it has one (semantics.md) */
        assert_true(bc->irql_history_count > 0 || poolsim_thread_history(&ev, 1) == 0);
    }
}

static void test_badinput_irql_levels_out_of_range(void **state)
{
    static const unsigned bad[] = {HIGH_LEVEL + 1, 31, 64, 128, 255};
    KIRQL old = 0xEE;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* C4/0x30 and 0x31 (current, requested, 0); nothing changes. */
        expect_bugcheck_continue(0xC4, 0x30, KeRaiseIrql((KIRQL)bad[i], &old));
        assert_args(PASSIVE_LEVEL, bad[i], 0);
        assert_int_equal(old, PASSIVE_LEVEL);
        expect_bugcheck_continue(0xC4, 0x31, KeLowerIrql((KIRQL)bad[i]));
        assert_args(PASSIVE_LEVEL, bad[i], 0);
        assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    }
    /* The legal neighbour: HIGH_LEVEL itself. */
    expect_no_bugcheck(KeRaiseIrql(HIGH_LEVEL, &old); KeLowerIrql(old));
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    /* poolsim_set_irql is a test helper: no check, the level is kept as given. From there every raise is a
     * bad one (the target is lower, or above HIGH_LEVEL) and a lower to a real level is legal. */
    poolsim_set_irql(200);
    assert_int_equal(KeGetCurrentIrql(), 200);
    expect_bugcheck_continue(0xC4, 0x30, KeRaiseIrql(HIGH_LEVEL, &old));
    assert_args(200, HIGH_LEVEL, 0);
    expect_no_bugcheck(KeLowerIrql(PASSIVE_LEVEL));
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    /* Retail: 0x9 and 0xA (current, requested, 0, 0). */
    reinit_family(POOLSIM_FAMILY_RETAIL);
    expect_bugcheck(0x09, PASSIVE_LEVEL, KeRaiseIrql(255, &old));
    assert_args(255, 0, 0);
    expect_bugcheck(0x0A, PASSIVE_LEVEL, KeLowerIrql(255));
    assert_args(255, 0, 0);
}

static void test_badinput_spin_lock_null(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old = 0xEE, o2;
    (void)state;
    KeInitializeSpinLock(&lock);
    /* The acquire raises first, then touches the lock: 0xD1 at DISPATCH_LEVEL. Report and continue: nothing
     * changes, *OldIrql is the current IRQL. */
    expect_bugcheck_continue(0xD1, 0, KeAcquireSpinLock(NULL, &old));
    assert_null_touch(DISPATCH_LEVEL, "KeAcquireSpinLock");
    assert_int_equal(old, PASSIVE_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(poolsim_thread_locks(NULL, 0), 0);
    expect_bugcheck_continue(0xD1, 0, old = KeAcquireSpinLockRaiseToDpc(NULL));
    assert_null_touch(DISPATCH_LEVEL, "KeAcquireSpinLockRaiseToDpc");
    /* The AtDpcLevel acquire and the releases touch it at the current IRQL: below DISPATCH_LEVEL an access
     * violation (checked before the IRQL rules 0x40, 0x32 and 0x41). */
    expect_bugcheck(0x1E, STATUS_ACCESS_VIOLATION_, KeAcquireSpinLockAtDpcLevel(NULL));
    assert_null_touch(PASSIVE_LEVEL, "KeAcquireSpinLockAtDpcLevel");
    expect_bugcheck(0x1E, STATUS_ACCESS_VIOLATION_, KeReleaseSpinLock(NULL, PASSIVE_LEVEL));
    assert_null_touch(PASSIVE_LEVEL, "KeReleaseSpinLock");
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck(0xD1, 0, KeAcquireSpinLockAtDpcLevel(NULL));
    assert_null_touch(DISPATCH_LEVEL, "KeAcquireSpinLockAtDpcLevel");
    expect_bugcheck(0xD1, 0, KeReleaseSpinLockFromDpcLevel(NULL));
    assert_null_touch(DISPATCH_LEVEL, "KeReleaseSpinLockFromDpcLevel");
    expect_bugcheck_continue(0xD1, 0, KeReleaseSpinLock(NULL, PASSIVE_LEVEL));
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL); /* not lowered */
    KeLowerIrql(old);
    /* Above DISPATCH_LEVEL: 0xD1 at that IRQL, not C4/0x42. */
    KeRaiseIrql(HIGH_LEVEL, &old);
    expect_bugcheck(0xD1, 0, KeAcquireSpinLock(NULL, &o2));
    assert_null_touch(HIGH_LEVEL, "KeAcquireSpinLock");
    KeLowerIrql(old);
    /* The real-named functions: the same, with no site; the initialiser touches it at the current IRQL. */
    expect_bugcheck(0xD1, 0, (KeAcquireSpinLock)(NULL, &o2));
    assert_null(last_bc()->site.file);
    expect_bugcheck(0x1E, STATUS_ACCESS_VIOLATION_, KeInitializeSpinLock(NULL));
    assert_null_touch(PASSIVE_LEVEL, "KeInitializeSpinLock");
    /* The legal neighbour. */
    expect_no_bugcheck(KeAcquireSpinLock(&lock, &old); KeReleaseSpinLock(&lock, old));
    assert_int_equal(lock, 4);
}

static void test_badinput_queued_handle_null(void **state)
{
    KSPIN_LOCK lock;
    KLOCK_QUEUE_HANDLE h;
    KIRQL old;
    (void)state;
    KeInitializeSpinLock(&lock);
    /* A NULL handle is written before the raise: at the current IRQL. The lock is not taken. */
    expect_bugcheck_continue(0x1E, STATUS_ACCESS_VIOLATION_, KeAcquireInStackQueuedSpinLock(&lock, NULL));
    assert_null_touch(PASSIVE_LEVEL, "KeAcquireInStackQueuedSpinLock");
    assert_int_equal(lock, 0);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    expect_bugcheck(0x1E, STATUS_ACCESS_VIOLATION_, KeReleaseInStackQueuedSpinLock(NULL));
    assert_null_touch(PASSIVE_LEVEL, "KeReleaseInStackQueuedSpinLock");
    /* A NULL lock is touched after the raise: 0xD1. */
    expect_bugcheck_continue(0xD1, 0, KeAcquireInStackQueuedSpinLock(NULL, &h));
    assert_null_touch(DISPATCH_LEVEL, "KeAcquireInStackQueuedSpinLock");
    assert_int_equal(h.OldIrql, PASSIVE_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck(0xD1, 0, KeAcquireInStackQueuedSpinLockAtDpcLevel(&lock, NULL));
    assert_null_touch(DISPATCH_LEVEL, "KeAcquireInStackQueuedSpinLockAtDpcLevel");
    expect_bugcheck(0xD1, 0, KeReleaseInStackQueuedSpinLockFromDpcLevel(NULL));
    assert_null_touch(DISPATCH_LEVEL, "KeReleaseInStackQueuedSpinLockFromDpcLevel");
    /* A zeroed handle (never acquired): its lock is NULL. */
    memset(&h, 0, sizeof h);
    expect_bugcheck(0xD1, 0, KeReleaseInStackQueuedSpinLock(&h));
    assert_null_touch(DISPATCH_LEVEL, "KeReleaseInStackQueuedSpinLock");
    KeLowerIrql(old);
    /* The legal neighbour. */
    expect_no_bugcheck(KeAcquireInStackQueuedSpinLock(&lock, &h); KeReleaseInStackQueuedSpinLock(&h));
    assert_int_equal(lock, 2);
}

static void test_badinput_fast_mutex_null(void **state)
{
    FAST_MUTEX m;
    KIRQL old;
    (void)state;
    ExInitializeFastMutex(&m);
    /* The acquire touches the mutex after its raise to APC_LEVEL: an access violation; nothing changes. */
    expect_bugcheck_continue(0x1E, STATUS_ACCESS_VIOLATION_, ExAcquireFastMutex(NULL));
    assert_null_touch(APC_LEVEL, "ExAcquireFastMutex");
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(poolsim_thread_locks(NULL, 0), 0);
    expect_bugcheck(0x1E, STATUS_ACCESS_VIOLATION_, ExInitializeFastMutex(NULL));
    assert_null_touch(PASSIVE_LEVEL, "ExInitializeFastMutex");
    KeRaiseIrql(APC_LEVEL, &old);
    expect_bugcheck(0x1E, STATUS_ACCESS_VIOLATION_, ExReleaseFastMutex(NULL));
    assert_null_touch(APC_LEVEL, "ExReleaseFastMutex");
    KeLowerIrql(old);
    /* At DISPATCH_LEVEL: 0xD1, before the IRQL rule (C4/0x33). */
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck(0xD1, 0, ExAcquireFastMutex(NULL));
    assert_null_touch(DISPATCH_LEVEL, "ExAcquireFastMutex");
    expect_bugcheck(0xD1, 0, (ExReleaseFastMutex)(NULL));
    assert_null(last_bc()->site.file);
    KeLowerIrql(old);
    /* The engine's own entry points: a NULL owner word is the same. */
    expect_bugcheck_continue(0x1E, STATUS_ACCESS_VIOLATION_,
                             old = poolsim_fast_mutex_acquire(&m, NULL, NULL, 0));
    assert_int_equal(old, POOLSIM_NOT_ACQUIRED);
    /* The legal neighbour. */
    expect_no_bugcheck(ExAcquireFastMutex(&m); ExReleaseFastMutex(&m));
    assert_null(m.Owner);
}

/* KeLeaveCriticalRegion without a KeEnterCriticalRegion: no check (Verifier has none below APC_LEVEL). */
static void test_badinput_critical_region_unbalanced(void **state)
{
    (void)state;
    expect_no_bugcheck(KeLeaveCriticalRegion(); KeLeaveCriticalRegion());
    assert_int_equal(poolsim_thread_critical_regions(), 0);
    expect_no_bugcheck(KeEnterCriticalRegion());
    assert_int_equal(poolsim_thread_critical_regions(), 1);
    expect_no_bugcheck(KeLeaveCriticalRegion());
    assert_int_equal(poolsim_thread_critical_regions(), 0);
}

/* The IRQL and the locks belong to the thread: they work with no instance, with the default options. */
static void test_badinput_irql_without_instance(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old, inner;
    (void)state;
    assert_int_equal(poolsim_shutdown(), 0);
    assert_false(poolsim_initialized());
    KeInitializeSpinLock(&lock);
    expect_no_bugcheck(KeAcquireSpinLock(&lock, &old));
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    /* The default family (verifier) and history: the acquire is the last transition; no sequence number. */
    expect_bugcheck(0xC4, 0x40009, KeAcquireSpinLock(&lock, &inner));
    assert_int_equal(last_bc()->param[2], (uintptr_t)&lock);
    assert_true(last_bc()->seq == 0);
    assert_int_equal(last_bc()->irql_history_count, 1);
    assert_int_equal(last_bc()->irql_history[0].kind, POOLSIM_IRQL_EV_ACQUIRE);
    expect_bugcheck(0xC4, 0x30, KeRaiseIrql(APC_LEVEL, &inner));
    assert_args(DISPATCH_LEVEL, APC_LEVEL, 0);
    expect_bugcheck(0xD1, 0, KeAcquireSpinLockAtDpcLevel(NULL));
    expect_no_bugcheck(KeReleaseSpinLock(&lock, old));
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(poolsim_synch_level(), POOLSIM_DEFAULT_SYNCH_LEVEL);
}

/* ---- main ------------------------------------------------------------------------- */

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_badinput_before_init), /* first: nothing initialised yet */
        T(test_badinput_after_shutdown),
        T(test_badinput_double_init),
        T(test_badinput_double_shutdown),
        T(test_badinput_init_bad_options),
        T(test_badinput_options_quarantine_blocks_max),
        T(test_badinput_alloc_size_zero),
        T(test_badinput_alloc_sizes_near_size_max),
        T(test_badinput_alloc_sizes_no_limit),
        T(test_badinput_alloc_near_limit),
        T(test_badinput_alloc_invalid_pool_type),
        T(test_badinput_alloc_invalid_flags),
        T(test_badinput_alloc_pool3_ext_params),
        T(test_badinput_alloc_tag_zero),
        T(test_badinput_alloc_check_order),
        T(test_badinput_free_null),
        T(test_badinput_free_foreign_stack_static),
        T(test_badinput_free_interior_misaligned),
        T(test_badinput_query_interior),
        T(test_badinput_free_freed),
        T(test_badinput_free_tag_zero),
        T(test_badinput_free2_ext_params),
        T(test_badinput_mm_free_bad),
        T(test_badinput_high_address_alias),
        T(test_badinput_lookaside_null_list),
        T(test_badinput_lookaside_uninitialised_deleted_twice),
        T(test_badinput_lookaside_sizes),
        T(test_badinput_lookaside_tag_type_flags),
        T(test_badinput_lookaside_bad_entries),
        T(test_badinput_lookaside_custom_null_entry),
        T(test_badinput_lookaside_after_shutdown_line),
        T(test_badinput_queries),
        T(test_badinput_reports),
        T(test_badinput_report_bugcheck_null),
        T(test_badinput_fault_config),
        T(test_badinput_fault_delay_overflow),
        T(test_badinput_engine),
        T(test_badinput_kebugcheck_any_code),
        T(test_badinput_raise_status),
        T(test_badinput_try_frame_null),
        T(test_badinput_rtl_dbgprint),
        T(test_badinput_irql_levels_out_of_range),
        T(test_badinput_spin_lock_null),
        T(test_badinput_queued_handle_null),
        T(test_badinput_fast_mutex_null),
        T(test_badinput_critical_region_unbalanced),
        T(test_badinput_irql_without_instance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
