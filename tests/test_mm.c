/* SPDX-License-Identifier: MIT */
/*
 * test_mm.c — MmAllocateContiguousMemory / MmAllocateNonCachedMemory: tracked
 * like pool, whole pages, and freeing with the wrong allocator's routine is a
 * bug check naming both; the noncached routines' IRQL is APC_LEVEL at most
 * (docs/semantics.md). Both directions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <poolsim/wdm.h>
#include <poolsim/cmocka.h>

#include <string.h>

#define TAG_MMCT 0x74436D4Du /* "MmCt" */
#define TAG_MMNC 0x634E6D4Du /* "MmNc" */

static PHYSICAL_ADDRESS highest(void)
{
    PHYSICAL_ADDRESS a;
    a.QuadPart = -1;
    return a;
}

static void retail(void)
{
    poolsim_options o = poolsim_cmocka_default_options();
    o.family = POOLSIM_FAMILY_RETAIL;
    poolsim_cmocka_reinit(&o);
}

static void test_mm_contiguous_is_tracked_whole_pages(void **state)
{
    poolsim_tag_usage_t u;
    poolsim_block_info info;
    (void)state;
    unsigned char *p = MmAllocateContiguousMemory(100, highest());
    assert_non_null(p);
    assert_int_equal((uintptr_t)p & (PAGE_SIZE - 1), 0);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(p[i], poolsim_cmocka_options()->uninit_byte); /* not zeroed */
    assert_true(poolsim_tag_usage(TAG_MMCT, &u));
    assert_int_equal(u.nonpaged.allocs, 1);
    assert_int_equal(u.nonpaged.bytes, 100);
    assert_true(poolsim_find_block(p + 99, &info));
    assert_ptr_equal(info.address, p);
    assert_string_equal(info.alloc_site.routine, "MmAllocateContiguousMemory");
    assert_true(poolsim_valid_access(p, 100));
    PVOID q = MmAllocateContiguousMemorySpecifyCache(3 * PAGE_SIZE, highest(), highest(), highest(), MmCached);
    assert_non_null(q);
    expect_no_bugcheck(MmFreeContiguousMemory(p); MmFreeContiguousMemory(q));
    assert_true(poolsim_tag_usage(TAG_MMCT, &u));
    assert_int_equal(u.nonpaged.frees, 2);
    assert_int_equal(u.nonpaged.bytes, 0);
    assert_null(MmAllocateContiguousMemory(0, highest())); /* nothing to allocate: NULL, no bug check */
}

static void test_mm_noncached_size_must_match(void **state)
{
    (void)state;
    PVOID p = MmAllocateNonCachedMemory(5000);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p & (PAGE_SIZE - 1), 0);
    expect_bugcheck(0xC4, 0x13F, MmFreeNonCachedMemory(p, 4096));
    assert_int_equal(poolsim_cmocka_last()->param[1], (uintptr_t)p);
    assert_int_equal(poolsim_cmocka_last()->param[2], 4096);
    assert_true(poolsim_valid_access(p, 5000)); /* the bad free did nothing */
    expect_no_bugcheck(MmFreeNonCachedMemory(p, 5000));
    assert_pool_tag_balanced(TAG_MMNC);
}

static void test_mm_noncached_size_retail(void **state)
{
    (void)state;
    retail();
    PVOID p = MmAllocateNonCachedMemory(64);
    expect_bugcheck(0xC2, 0x99, MmFreeNonCachedMemory(p, 65));
    assert_int_equal(poolsim_cmocka_last()->param[1], (uintptr_t)p);
    MmFreeNonCachedMemory(p, 64);
}

static void test_mm_wrong_routine_names_both(void **state)
{
    (void)state;
    PVOID c = MmAllocateContiguousMemory(64, highest());
    PVOID n = MmAllocateNonCachedMemory(64);
    PVOID pool = ExAllocatePoolWithTag(NonPagedPoolNx, 64, 'gaTX');
    int local = 0;

    expect_bugcheck(0xC4, 0x16, ExFreePoolWithTag(c, 'tCmM'));
    assert_int_equal(poolsim_cmocka_last()->param[2], (uintptr_t)c);
    assert_true(poolsim_cmocka_last()->has_block);
    assert_string_equal(poolsim_cmocka_last()->block.alloc_site.routine, "MmAllocateContiguousMemory");
    assert_string_equal(poolsim_cmocka_last()->site.routine, "ExFreePoolWithTag");

    expect_bugcheck(0xC4, 0x16, MmFreeNonCachedMemory(c, 64));
    expect_bugcheck(0xC4, 0x16, ExFreePool(n));
    expect_bugcheck(0xC2, 0x60, MmFreeContiguousMemory(n));
    assert_int_equal(poolsim_cmocka_last()->param[1], (uintptr_t)n);
    expect_bugcheck(0xC2, 0x60, MmFreeContiguousMemory(pool));
    assert_string_equal(poolsim_cmocka_last()->block.alloc_site.routine, "ExAllocatePoolWithTag");
    expect_bugcheck(0xC2, 0x60, MmFreeContiguousMemory(&local));
    assert_false(poolsim_cmocka_last()->has_block);

    /* Each right routine still works after the wrong ones did nothing. */
    expect_no_bugcheck(MmFreeContiguousMemory(c); MmFreeNonCachedMemory(n, 64); ExFreePoolWithTag(pool, 'gaTX'));
    /* A second free by the right routine is a double free, as for pool. */
    expect_bugcheck(0xC4, 0x13, MmFreeContiguousMemory(c));
}

static void test_mm_wrong_routine_retail(void **state)
{
    (void)state;
    retail();
    PVOID c = MmAllocateContiguousMemory(64, highest());
    expect_bugcheck(0xC2, 0x99, ExFreePool(c));
    assert_int_equal(poolsim_cmocka_last()->param[1], (uintptr_t)c);
    MmFreeContiguousMemory(c);
}

/* MmAllocateNonCachedMemory and MmFreeNonCachedMemory run at <= APC_LEVEL (the WDK; DDI rule IrqlMmApcLte):
 * above it C4/0x20019 (rule text, IRQL, bytes requested or address freed) in both families, as the other DDI
 * rules; the allocation returns NULL and the free does nothing. APC_LEVEL is legal, and the contiguous
 * routines keep DISPATCH_LEVEL. */
static void test_mm_noncached_irql(void **state)
{
    (void)state;
    for (unsigned family = 0; family < 2; family++) {
        poolsim_options o = poolsim_cmocka_default_options();
        PVOID p, q, c;
        KIRQL old;
        o.family = family;
        poolsim_cmocka_reinit(&o);
        p = MmAllocateNonCachedMemory(100);
        assert_non_null(p);
        KeRaiseIrql(APC_LEVEL, &old);
        expect_no_bugcheck(q = MmAllocateNonCachedMemory(64); MmFreeNonCachedMemory(q, 64));
        KeLowerIrql(old);
        KeRaiseIrql(DISPATCH_LEVEL, &old);
        q = p;
        expect_bugcheck_continue(0xC4, 0x20019, q = MmAllocateNonCachedMemory(64)); /* the handler returns */
        assert_null(q);
        assert_non_null(strstr((const char *)poolsim_cmocka_last()->param[1], "IrqlMmApcLte: "));
        assert_int_equal(poolsim_cmocka_last()->param[2], DISPATCH_LEVEL);
        assert_int_equal(poolsim_cmocka_last()->param[3], 64);
        assert_true(poolsim_cmocka_last()->irql_history_count > 0);
        expect_bugcheck_continue(0xC4, 0x20019, MmFreeNonCachedMemory(p, 100));
        assert_int_equal(poolsim_cmocka_last()->param[2], DISPATCH_LEVEL);
        assert_int_equal(poolsim_cmocka_last()->param[3], (uintptr_t)p);
        assert_true(poolsim_valid_access(p, 100)); /* the free did nothing */
        expect_no_bugcheck(c = MmAllocateContiguousMemory(64, highest()); MmFreeContiguousMemory(c));
        KeLowerIrql(old);
        expect_no_bugcheck(MmFreeNonCachedMemory(p, 100));
        assert_pool_tag_balanced(TAG_MMNC);
    }
}

static char g_out[8192];
static void capture(const char *text, void *ctx)
{
    (void)ctx;
    strncat(g_out, text, sizeof g_out - 1 - strlen(g_out));
}

static void test_mm_shows_in_poolused(void **state)
{
    (void)state;
    PVOID c = MmAllocateContiguousMemory(8192, highest());
    g_out[0] = '\0';
    poolsim_set_output(capture, NULL);
    poolsim_report_poolused(0, "Mm*");
    poolsim_set_output(NULL, NULL);
    assert_non_null(strstr(g_out, " MmCt        1     8192         0        0\n"));
    MmFreeContiguousMemory(c);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, poolsim_cmocka_setup, poolsim_cmocka_teardown)
    const struct CMUnitTest tests[] = {
        T(test_mm_contiguous_is_tracked_whole_pages),
        T(test_mm_noncached_size_must_match),
        T(test_mm_noncached_size_retail),
        T(test_mm_wrong_routine_names_both),
        T(test_mm_wrong_routine_retail),
        T(test_mm_shows_in_poolused),
        T(test_mm_noncached_irql),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
