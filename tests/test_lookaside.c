/* SPDX-License-Identifier: MIT */
/*
 * test_lookaside.c — the lookaside lists (wdk-semantics.md §3): LIFO reuse,
 * depth, the list's tag on every pool allocation, custom callbacks, raise
 * rules, IRQL, and Verifier's 0xCA/0xCB/0xCC/0xCD checks. Both directions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <poolsim/wdm.h>
#include <poolsim/cmocka.h>

#include <string.h>

#define LTAG 'tsiL' /* "List" */

static poolsim_tag_usage_t usage(ULONG tag)
{
    poolsim_tag_usage_t u;
    poolsim_tag_usage(tag, &u);
    return u;
}

static void test_lookaside_lifo_and_tag(void **state)
{
    NPAGED_LOOKASIDE_LIST l;
    poolsim_block_info info;
    (void)state;
    expect_no_bugcheck(ExInitializeNPagedLookasideList(&l, NULL, NULL, POOL_NX_ALLOCATION, 100, LTAG, 0));
    PVOID a = ExAllocateFromNPagedLookasideList(&l);
    PVOID b = ExAllocateFromNPagedLookasideList(&l);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(poolsim_find_block(a, &info));
    assert_int_equal(info.size, 100);
    assert_int_equal(info.tag, LTAG);
    assert_int_equal(info.pool_type, NonPagedPoolNx);
    ExFreeToNPagedLookasideList(&l, a);
    ExFreeToNPagedLookasideList(&l, b);
    assert_int_equal(usage(LTAG).nonpaged.allocs, 2); /* cached entries stay allocated pool */
    assert_int_equal(usage(LTAG).nonpaged.frees, 0);
    assert_ptr_equal(ExAllocateFromNPagedLookasideList(&l), b); /* last in, first out */
    assert_ptr_equal(ExAllocateFromNPagedLookasideList(&l), a);
    assert_int_equal(usage(LTAG).nonpaged.allocs, 2); /* no new pool allocation */
    ExFreeToNPagedLookasideList(&l, a);
    ExFreeToNPagedLookasideList(&l, b);
    expect_no_bugcheck(ExDeleteNPagedLookasideList(&l));
    assert_pool_tag_balanced(LTAG); /* delete freed the cached entries */
}

static void test_lookaside_depth(void **state)
{
    PAGED_LOOKASIDE_LIST l;
    PVOID e[3];
    (void)state;
    ExInitializePagedLookasideList(&l, NULL, NULL, 0, 64, LTAG, 2);
    for (int i = 0; i < 3; i++)
        e[i] = ExAllocateFromPagedLookasideList(&l);
    assert_int_equal(usage(LTAG).paged.allocs, 3); /* a paged list allocates paged pool */
    for (int i = 0; i < 3; i++)
        ExFreeToPagedLookasideList(&l, e[i]);
    assert_int_equal(usage(LTAG).paged.frees, 1); /* depth 2: the third free went to the pool */
    ExDeletePagedLookasideList(&l);
    assert_pool_tag_balanced(LTAG);
}

/* ---- Custom callbacks ---------------------------------------------------------------- */

static struct {
    int allocs, frees;
    POOL_TYPE type;
    SIZE_T size;
    ULONG tag;
    PLOOKASIDE_LIST_EX list;
} g_cb;

static PVOID NTAPI my_alloc(POOL_TYPE type, SIZE_T size, ULONG tag)
{
    g_cb.allocs++;
    g_cb.type = type;
    g_cb.size = size;
    g_cb.tag = tag;
    return ExAllocatePoolWithTag(type, size, tag);
}

static VOID NTAPI my_free(PVOID p)
{
    g_cb.frees++;
    ExFreePool(p);
}

static PVOID NTAPI my_alloc_ex(POOL_TYPE type, SIZE_T size, ULONG tag, PLOOKASIDE_LIST_EX list)
{
    g_cb.list = list;
    return my_alloc(type, size, tag);
}

static VOID NTAPI my_free_ex(PVOID p, PLOOKASIDE_LIST_EX list)
{
    g_cb.list = list;
    my_free(p);
}

static void test_lookaside_callbacks(void **state)
{
    NPAGED_LOOKASIDE_LIST n;
    LOOKASIDE_LIST_EX x;
    (void)state;
    memset(&g_cb, 0, sizeof g_cb);
    ExInitializeNPagedLookasideList(&n, my_alloc, my_free, 0, 48, LTAG, 1);
    PVOID a = ExAllocateFromNPagedLookasideList(&n), b = ExAllocateFromNPagedLookasideList(&n);
    assert_int_equal(g_cb.allocs, 2);
    assert_int_equal(g_cb.type, NonPagedPool);
    assert_int_equal(g_cb.size, 48);
    assert_int_equal(g_cb.tag, LTAG);
    ExFreeToNPagedLookasideList(&n, a);
    ExFreeToNPagedLookasideList(&n, b); /* depth 1: Free is called */
    assert_int_equal(g_cb.frees, 1);
    ExDeleteNPagedLookasideList(&n);
    assert_int_equal(g_cb.frees, 2);

    memset(&g_cb, 0, sizeof g_cb);
    assert_int_equal(ExInitializeLookasideListEx(&x, my_alloc_ex, my_free_ex, PagedPool, 0, 32, LTAG, 0),
                     STATUS_SUCCESS);
    a = ExAllocateFromLookasideListEx(&x);
    assert_ptr_equal(g_cb.list, &x); /* AllocateEx receives the list */
    assert_int_equal(g_cb.type, PagedPool);
    ExFreeToLookasideListEx(&x, a);
    ExFlushLookasideListEx(&x); /* flush frees the cached entry through FreeEx */
    assert_int_equal(g_cb.frees, 1);
    assert_ptr_equal(g_cb.list, &x);
    ExDeleteLookasideListEx(&x);
    assert_pool_tag_balanced(LTAG);
}

/* ---- Ex arguments and raising ---------------------------------------------------------- */

static void test_lookaside_ex_arguments(void **state)
{
    LOOKASIDE_LIST_EX x;
    (void)state;
    memset(&x, 0, sizeof x);
    assert_int_equal(ExInitializeLookasideListEx(&x, NULL, NULL, (POOL_TYPE)2, 0, 32, LTAG, 0),
                     STATUS_INVALID_PARAMETER_4);
    assert_int_equal(ExInitializeLookasideListEx(&x, NULL, NULL, NonPagedPoolNx,
                                                 EX_LOOKASIDE_LIST_EX_FLAGS_RAISE_ON_FAIL |
                                                     EX_LOOKASIDE_LIST_EX_FLAGS_FAIL_NO_RAISE,
                                                 32, LTAG, 0),
                     STATUS_INVALID_PARAMETER_5);
    assert_int_equal(ExInitializeLookasideListEx(&x, NULL, NULL, NonPagedPoolNx, 0x4, 32, LTAG, 0),
                     STATUS_INVALID_PARAMETER_5);
    /* A refused initialisation leaves no list behind. */
    expect_bugcheck(0xC4, 0xCB, ExDeleteLookasideListEx(&x));
}

static void test_lookaside_raise_rules(void **state)
{
    NPAGED_LOOKASIDE_LIST n;
    LOOKASIDE_LIST_EX x;
    NTSTATUS volatile caught = 0, st = 0;
    poolsim_fault_config fail_all = {10000, NULL, 0, 0, 1, 0, false, NULL, 0};
    (void)state;
    ExInitializeNPagedLookasideList(&n, NULL, NULL, 0, 32, LTAG, 0);
    assert_int_equal(ExInitializeLookasideListEx(&x, NULL, NULL, NonPagedPoolNx,
                                                 EX_LOOKASIDE_LIST_EX_FLAGS_RAISE_ON_FAIL, 32, LTAG, 0),
                     STATUS_SUCCESS);
    poolsim_fault_configure(&fail_all);
    assert_null(ExAllocateFromNPagedLookasideList(&n)); /* no raise flag: NULL */
    POOLSIM_TRY { ExAllocateFromLookasideListEx(&x); }
    POOLSIM_EXCEPT(st) { caught = st; }
    POOLSIM_END_TRY;
    assert_int_equal(caught, STATUS_INSUFFICIENT_RESOURCES);
    poolsim_fault_configure(NULL);
    ExDeleteNPagedLookasideList(&n);
    ExDeleteLookasideListEx(&x);
}

/* ---- Verifier's checks ------------------------------------------------------------------ */

static void test_lookaside_reinit_and_uninitialised(void **state)
{
    NPAGED_LOOKASIDE_LIST l, never;
    (void)state;
    memset(&never, 0, sizeof never);
    ExInitializeNPagedLookasideList(&l, NULL, NULL, 0, 32, LTAG, 0);
    expect_bugcheck(0xC4, 0xCA, ExInitializeNPagedLookasideList(&l, NULL, NULL, 0, 32, LTAG, 0));
    assert_int_equal(poolsim_cmocka_last()->param[1], (uintptr_t)&l);
    assert_string_equal(poolsim_cmocka_last()->site.routine, "ExInitializeNPagedLookasideList");
    expect_bugcheck(0xC4, 0xCB, ExDeleteNPagedLookasideList(&never));
    assert_int_equal(poolsim_cmocka_last()->param[1], (uintptr_t)&never);
    expect_bugcheck(0xC4, 0xCB, ExAllocateFromNPagedLookasideList(&never));
    ExDeleteNPagedLookasideList(&l);
    expect_bugcheck(0xC4, 0xCB, ExDeleteNPagedLookasideList(&l)); /* deleted twice */
    assert_string_equal(poolsim_cmocka_last()->site.routine, "ExDeleteNPagedLookasideList");
    /* A live list whose struct was zeroed, then initialised again: still C4/0xCA (the list was made there
     * and never deleted), and the list keeps working as it was, its cached entry included. Once deleted, the
     * address takes a new list. */
    ExInitializeNPagedLookasideList(&l, NULL, NULL, 0, 32, LTAG, 0);
    PVOID e = ExAllocateFromNPagedLookasideList(&l), f;
    ExFreeToNPagedLookasideList(&l, e);
    memset(&l, 0, sizeof l);
    expect_bugcheck_continue(0xC4, 0xCA, ExInitializeNPagedLookasideList(&l, NULL, NULL, 0, 64, LTAG, 0));
    expect_no_bugcheck(f = ExAllocateFromNPagedLookasideList(&l));
    assert_ptr_equal(f, e);
    ExFreeToNPagedLookasideList(&l, f);
    expect_no_bugcheck(ExDeleteNPagedLookasideList(&l);
                       ExInitializeNPagedLookasideList(&l, NULL, NULL, 0, 64, LTAG, 0);
                       ExDeleteNPagedLookasideList(&l));
}

static void test_lookaside_free_pool_holding_a_list(void **state)
{
    (void)state;
    PNPAGED_LOOKASIDE_LIST l = ExAllocatePoolWithTag(NonPagedPoolNx, sizeof *l + 16, 'xeDD');
    ExInitializeNPagedLookasideList(l, NULL, NULL, 0, 32, LTAG, 0);
    expect_bugcheck(0xC4, 0xCC, ExFreePoolWithTag(l, 'xeDD'));
    assert_int_equal(poolsim_cmocka_last()->param[1], (uintptr_t)l);
    assert_int_equal(poolsim_cmocka_last()->param[2], (uintptr_t)l);
    assert_int_equal(poolsim_cmocka_last()->param[3], sizeof *l + 16);
    ExDeleteNPagedLookasideList(l);
    expect_no_bugcheck(ExFreePoolWithTag(l, 'xeDD')); /* once deleted, the pool may go */
}

static void test_lookaside_block_size_too_small(void **state)
{
    NPAGED_LOOKASIDE_LIST l;
    (void)state;
    expect_bugcheck(0xC4, 0xCD, ExInitializeNPagedLookasideList(&l, NULL, NULL, 0, 4, LTAG, 0));
    assert_int_equal(poolsim_cmocka_last()->param[2], 4);
    assert_int_equal(poolsim_cmocka_last()->param[3], sizeof(PVOID));
    expect_no_bugcheck(ExInitializeNPagedLookasideList(&l, NULL, NULL, 0, sizeof(PVOID), 'ginK', 0));
    ExDeleteNPagedLookasideList(&l);
}

static void test_lookaside_bad_entries(void **state)
{
    NPAGED_LOOKASIDE_LIST l;
    int local;
    (void)state;
    ExInitializeNPagedLookasideList(&l, NULL, NULL, 0, 32, LTAG, 0);
    PVOID e = ExAllocateFromNPagedLookasideList(&l);
    expect_bugcheck(0xC4, 0x10, ExFreeToNPagedLookasideList(&l, &local)); /* not a block */
    ExFreeToNPagedLookasideList(&l, e);
    expect_bugcheck(0xC4, 0x13, ExFreeToNPagedLookasideList(&l, e)); /* already in the list */
    ExDeleteNPagedLookasideList(&l);
}

static void test_lookaside_irql(void **state)
{
    NPAGED_LOOKASIDE_LIST n;
    PAGED_LOOKASIDE_LIST p;
    (void)state;
    ExInitializeNPagedLookasideList(&n, NULL, NULL, 0, 32, LTAG, 0);
    ExInitializePagedLookasideList(&p, NULL, NULL, 0, 32, LTAG, 0);
    poolsim_set_irql(DISPATCH_LEVEL);
    PVOID e = NULL;
    expect_no_bugcheck(e = ExAllocateFromNPagedLookasideList(&n); ExFreeToNPagedLookasideList(&n, e));
    expect_bugcheck(0xC4, 0x01, ExAllocateFromPagedLookasideList(&p));
    assert_int_equal(poolsim_cmocka_last()->param[1], DISPATCH_LEVEL);
    assert_int_equal(poolsim_cmocka_last()->param[2], PagedPool);
    poolsim_set_irql(PASSIVE_LEVEL);
    e = ExAllocateFromPagedLookasideList(&p);
    poolsim_set_irql(DISPATCH_LEVEL);
    expect_bugcheck(0xC4, 0x11, ExFreeToPagedLookasideList(&p, e));
    poolsim_set_irql(PASSIVE_LEVEL);
    ExFreeToPagedLookasideList(&p, e);
    ExDeleteNPagedLookasideList(&n);
    ExDeletePagedLookasideList(&p);
    /* Arg3 is the pool type as the pool routines give it: without the raise bit a list's flags may add. */
    ExInitializePagedLookasideList(&p, NULL, NULL, POOL_RAISE_IF_ALLOCATION_FAILURE, 32, LTAG, 0);
    poolsim_set_irql(DISPATCH_LEVEL);
    expect_bugcheck(0xC4, 0x01, ExAllocateFromPagedLookasideList(&p));
    assert_int_equal(poolsim_cmocka_last()->param[2], PagedPool);
    expect_bugcheck(0xC4, 0x01,
                    ExAllocatePoolWithTag(PagedPool | POOL_RAISE_IF_ALLOCATION_FAILURE, 32, LTAG));
    assert_int_equal(poolsim_cmocka_last()->param[2], PagedPool);
    poolsim_set_irql(PASSIVE_LEVEL);
    ExDeletePagedLookasideList(&p);
}

static void assert_args(uintptr_t p2, uintptr_t p3, uintptr_t p4)
{
    assert_int_equal(poolsim_cmocka_last()->param[1], p2);
    assert_int_equal(poolsim_cmocka_last()->param[2], p3);
    assert_int_equal(poolsim_cmocka_last()->param[3], p4);
}

/* Every routine of a list has the list's IRQL rule (§3), reported with the pool's codes: initialising as an
 * allocation (Arg4 the entry size), flushing and deleting as a free (Arg4 the list). When the handler returns
 * the list is made all the same, and a flush or delete does nothing: the cached entries stay in the list,
 * none is lost. Nonpaged lists may be flushed and deleted at DISPATCH_LEVEL. */
static void test_lookaside_irql_init_flush_delete(void **state)
{
    PAGED_LOOKASIDE_LIST p;
    LOOKASIDE_LIST_EX x;
    NPAGED_LOOKASIDE_LIST n;
    PVOID e, f;
    (void)state;
    poolsim_set_irql(DISPATCH_LEVEL);
    expect_bugcheck_continue(0xC4, 0x01, ExInitializePagedLookasideList(&p, NULL, NULL, 0, 40, LTAG, 0));
    assert_args(DISPATCH_LEVEL, PagedPool, 40);
    poolsim_set_irql(PASSIVE_LEVEL);
    expect_no_bugcheck(e = ExAllocateFromPagedLookasideList(&p); ExFreeToPagedLookasideList(&p, e));
    poolsim_set_irql(DISPATCH_LEVEL);
    expect_bugcheck_continue(0xC4, 0x11, ExDeletePagedLookasideList(&p));
    assert_args(DISPATCH_LEVEL, PagedPool, (uintptr_t)&p);
    poolsim_set_irql(PASSIVE_LEVEL);
    expect_no_bugcheck(f = ExAllocateFromPagedLookasideList(&p)); /* still live, the entry still cached */
    assert_ptr_equal(f, e);
    ExFreeToPagedLookasideList(&p, f);
    expect_no_bugcheck(ExDeletePagedLookasideList(&p));

    assert_int_equal(ExInitializeLookasideListEx(&x, NULL, NULL, PagedPool, 0, 32, LTAG, 0), 0);
    e = ExAllocateFromLookasideListEx(&x);
    ExFreeToLookasideListEx(&x, e);
    poolsim_set_irql(DISPATCH_LEVEL);
    expect_bugcheck_continue(0xC4, 0x11, ExFlushLookasideListEx(&x));
    assert_args(DISPATCH_LEVEL, PagedPool, (uintptr_t)&x);
    poolsim_set_irql(PASSIVE_LEVEL);
    expect_no_bugcheck(f = ExAllocateFromLookasideListEx(&x));
    assert_ptr_equal(f, e);
    ExFreeToLookasideListEx(&x, f);
    expect_no_bugcheck(ExFlushLookasideListEx(&x); ExDeleteLookasideListEx(&x));

    poolsim_set_irql(DISPATCH_LEVEL);
    expect_no_bugcheck(ExInitializeNPagedLookasideList(&n, NULL, NULL, 0, 32, LTAG, 0);
                       e = ExAllocateFromNPagedLookasideList(&n); ExFreeToNPagedLookasideList(&n, e);
                       ExDeleteNPagedLookasideList(&n));
    poolsim_set_irql(PASSIVE_LEVEL);
}

/* lookaside_debug: every free goes through the pool's quarantine, so a write
 * after free through a list is caught. */
static void test_lookaside_debug_catches_use_after_free(void **state)
{
    NPAGED_LOOKASIDE_LIST l;
    poolsim_options o = poolsim_cmocka_default_options();
    (void)state;
    o.lookaside_debug = 1;
    poolsim_cmocka_reinit(&o);
    ExInitializeNPagedLookasideList(&l, NULL, NULL, 0, 32, LTAG, 0);
    char *e = ExAllocateFromNPagedLookasideList(&l);
    ExFreeToNPagedLookasideList(&l, e);
    e[5] = 'x'; /* use after free */
    expect_bugcheck(0xC6, (uintptr_t)(e + 5), poolsim_validate());
    e[5] = (char)0xDD; /* mend the poison, or shutdown reports the block again */
    PVOID f = ExAllocateFromNPagedLookasideList(&l);
    assert_ptr_not_equal(f, e); /* nothing was cached */
    ExFreeToNPagedLookasideList(&l, f);
    ExDeleteNPagedLookasideList(&l);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, poolsim_cmocka_setup, poolsim_cmocka_teardown)
    const struct CMUnitTest tests[] = {
        T(test_lookaside_lifo_and_tag),
        T(test_lookaside_depth),
        T(test_lookaside_callbacks),
        T(test_lookaside_ex_arguments),
        T(test_lookaside_raise_rules),
        T(test_lookaside_reinit_and_uninitialised),
        T(test_lookaside_free_pool_holding_a_list),
        T(test_lookaside_block_size_too_small),
        T(test_lookaside_bad_entries),
        T(test_lookaside_irql),
        T(test_lookaside_irql_init_flush_delete),
        T(test_lookaside_debug_catches_use_after_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
