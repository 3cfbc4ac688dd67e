/* SPDX-License-Identifier: MIT */
/*
 * test_special.c — special pool (src/special.c, wdk-semantics.md §5.1, §1.3,
 * §1.7): placement (Verify End at the page end rounded down to the
 * granularity, Verify Start at the page start), faults at the instruction
 * (0xD6 past the page, 0xD5 after free) with the right block, damage inside
 * the page found at free and by validation (C1 0x23 / 0x24), bad frees
 * (C1 0x20 / 0x21 / 0x22), IRQL (C1 0x30 / 0x31), every selection (flag,
 * priorities, tag patterns, size class, sampling rate within statistical
 * bounds and replayable from its seed), fixed slots with least-recently-freed
 * reuse and the fallback counter. Each with the nearby legal case silent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <poolsim/wdm.h>
#include <poolsim/cmocka.h>

#include "access.h"

#define TAG ((ULONG)'gaTX') /* "XTag" */
#define GRAN (2u * (unsigned)sizeof(void *))
#define PAGE 0x1000u

/* ---- Helpers ---------------------------------------------------------------------------------- */

static uintptr_t page_offset(const void *p) { return (uintptr_t)p & (PAGE - 1); }

static uint64_t special_allocs(void)
{
    poolsim_stats s;
    poolsim_get_stats(&s);
    return s.special_allocs;
}

/* Where Verify End puts an n-byte block: the page end less n, rounded down. */
static uintptr_t end_offset(size_t n) { return (PAGE - (n ? n : 1)) & ~(uintptr_t)(GRAN - 1); }

/* An ExAllocatePool2 block asked for in special pool (a macro: the block's site is the caller's line). */
static uint8_t *non_null(void *p)
{
    assert_non_null(p);
    return (uint8_t *)p;
}
#define sp_alloc(n, kind) non_null(ExAllocatePool2((kind) | POOL_FLAG_SPECIAL_POOL, (n), TAG))

/* Restarts poolsim with special-pool options on top of the fixture's. */
static void reinit(const char *tags, uint32_t size_class, uint32_t sample, uint32_t slots)
{
    poolsim_options o = poolsim_cmocka_default_options();
    o.special_pool_tags = tags;
    o.special_pool_size = size_class;
    o.special_pool_sample = sample;
    o.special_pool_slots = slots;
    poolsim_cmocka_reinit(&o);
}

/* True when an allocation of n bytes with this tag lands in special pool. */
static bool lands_special(POOL_FLAGS flags, size_t n, ULONG tag)
{
    uint64_t before = special_allocs();
    void *p = ExAllocatePool2(flags, n, tag);
    assert_non_null(p);
    bool special = special_allocs() == before + 1;
    ExFreePoolWithTag(p, tag);
    return special;
}

/* Reads every byte of a block (ExAllocatePool2 zeroed them) and writes it. */
static void touch_all(uint8_t *p, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(read_byte(p + k), 0);
        write_byte(p + k, 0x5A);
    }
}

/* ---- Placement -------------------------------------------------------------------------------- */

static void test_special_verify_end_placement(void **state)
{
    static const size_t sizes[] = {0x3C, 0x34, 0x18, 1, 0x20, 0xFF0};
    (void)state;
    SKIP_WITHOUT_TRAP();
    /* §5.1's !verifier samples (x64): 0x3C -> 0xFC0, 0x34 -> 0xFC0, 0x18 -> 0xFE0. */
    if (GRAN == 16) {
        assert_int_equal(end_offset(0x3C), 0xFC0);
        assert_int_equal(end_offset(0x34), 0xFC0);
        assert_int_equal(end_offset(0x18), 0xFE0);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *p = sp_alloc(sizes[i], POOL_FLAG_NON_PAGED);
        assert_int_equal(page_offset(p), end_offset(sizes[i]));
        assert_int_equal(special_allocs(), i + 1);
        /* Every byte of the block is the caller's; ExAllocatePool2 zeroed them. */
        expect_no_bugcheck(touch_all(p, sizes[i]));
        assert_true(poolsim_valid_access(p, sizes[i]));
        assert_false(poolsim_valid_access(p, sizes[i] + 1));
        expect_no_bugcheck(ExFreePoolWithTag(p, TAG));
    }
    /* Above a page less the header: never special (§5.1), and not counted as a fallback. */
    void *big = ExAllocatePool2(POOL_FLAG_NON_PAGED | POOL_FLAG_SPECIAL_POOL, PAGE - GRAN + 1, TAG);
    assert_non_null(big);
    poolsim_stats s;
    poolsim_get_stats(&s);
    assert_int_equal(s.special_allocs, 6);
    assert_int_equal(s.special_fallback, 0);
    ExFreePoolWithTag(big, TAG);
    /* Without the flag: normal pool. */
    assert_false(lands_special(POOL_FLAG_NON_PAGED, 0x40, TAG));
}

static void test_special_cache_aligned(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
    uint8_t *p = sp_alloc(0x34, POOL_FLAG_NON_PAGED | POOL_FLAG_CACHE_ALIGNED);
    assert_int_equal(page_offset(p), (PAGE - 0x34) & ~(uintptr_t)63);
    ExFreePoolWithTag(p, TAG);
}

/* ---- Faults at the instruction (§1.7) ------------------------------------------------------------------ */

static void test_special_overrun_faults(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
    uint8_t *p = sp_alloc(0x40, POOL_FLAG_NON_PAGED);
    int line = __LINE__ - 1;
    uint8_t *past = p + 0x40; /* the first byte of the guard page */
    assert_int_equal(page_offset(past), 0);
    expect_no_bugcheck(write_byte(p + 0x3F, 1); read_byte(p));
    expect_bugcheck(0xD6, past, write_byte(past, 1));
    assert_int_equal(last()->param[1], 1);
    assert_ip_in(last()->param[2], (uintptr_t)&write_byte);
    assert_int_equal(last()->param[3], 0);
    assert_true(last()->has_block);
    assert_ptr_equal(last()->block.address, p);
    assert_int_equal(last()->block.size, 0x40);
    assert_int_equal(last()->block.tag, TAG);
    assert_int_equal(last()->block.state, POOLSIM_BLOCK_LIVE);
    assert_int_equal(last()->block.alloc_site.line, line);
    expect_bugcheck(0xD6, past + 0x7FF, read_byte(past + 0x7FF));
    assert_int_equal(last()->param[1], 0);
    assert_ip_in(last()->param[2], (uintptr_t)&read_byte);
    assert_ptr_equal(last()->block.address, p);
    assert_true(page_protected(past));
    expect_no_bugcheck(ExFreePoolWithTag(p, TAG));
}

static void test_special_use_after_free_faults(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
    uint8_t *p = sp_alloc(0x20, POOL_FLAG_NON_PAGED);
    ExFreePoolWithTag(p, TAG);
    int free_line = __LINE__ - 1;
    assert_true(page_protected(p));
    expect_bugcheck(0xD5, p, read_byte(p));
    assert_int_equal(last()->param[1], 0);
    assert_ip_in(last()->param[2], (uintptr_t)&read_byte);
    assert_true(last()->has_block);
    assert_ptr_equal(last()->block.address, p);
    assert_int_equal(last()->block.state, POOLSIM_BLOCK_RELEASED);
    assert_int_equal(last()->block.free_site.line, free_line);
    expect_bugcheck(0xD5, p + 0x1F, write_byte(p + 0x1F, 7));
    assert_int_equal(last()->param[1], 1);
    assert_ip_in(last()->param[2], (uintptr_t)&write_byte);
    /* The pattern before the block is on the same no-access page. */
    expect_bugcheck(0xD5, p - 0x100, read_byte(p - 0x100));
}

/* The guard page below a Verify End block belongs to the block under it;
 * the one above, to the block above when it is live. */
static void test_special_guard_owner(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
    reinit("", 0, 0, 4);
    uint8_t *a = sp_alloc(0x40, POOL_FLAG_NON_PAGED);
    uint8_t *b = sp_alloc(0x40, POOL_FLAG_NON_PAGED);
    uint8_t *guard = a + 0x40; /* between a's page and b's */
    assert_ptr_equal((uintptr_t)guard + PAGE, (uintptr_t)b - page_offset(b));
    expect_bugcheck(0xD6, guard + 8, read_byte(guard + 8));
    assert_ptr_equal(last()->block.address, a);
    expect_bugcheck(0xD6, guard + PAGE - 8, read_byte(guard + PAGE - 8));
    assert_ptr_equal(last()->block.address, b);
    ExFreePoolWithTag(a, TAG);
    ExFreePoolWithTag(b, TAG);
}

/* ---- Damage inside the page, found at free (§1.3) ------------------------------------------------ */

static void test_special_slack_overrun_at_free(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
    uint8_t *p = sp_alloc(0x34, POOL_FLAG_NON_PAGED);
    uint8_t saved = p[0x34];
    expect_no_bugcheck(write_byte(p + 0x34, (uint8_t)~saved)); /* slack: no fault */
    expect_bugcheck(0xC1, p, ExFreePoolWithTag(p, TAG));
    assert_ptr_equal(last()->param[1], p + 0x34);
    assert_int_equal(last()->param[2], 0);
    assert_int_equal(last()->param[3], 0x24);
    assert_int_equal(last()->damage[0].kind, POOLSIM_DAMAGE_OVERRUN);
    assert_int_equal(last()->damage[0].count, 1);
    assert_ptr_equal(last()->block.address, p);
    /* poolsim_validate finds the same while the block lives. */
    expect_bugcheck_continue(0xC1, p, assert_int_equal(poolsim_validate(), 1));
    assert_int_equal(last()->param[3], 0x24);
    p[0x34] = saved;
    expect_no_bugcheck(assert_int_equal(poolsim_validate(), 0); ExFreePoolWithTag(p, TAG));
}

static void test_special_underrun_at_free(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
    uint8_t *p = sp_alloc(0x40, POOL_FLAG_NON_PAGED);
    uint8_t saved = p[-1];
    expect_no_bugcheck(write_byte(p - 1, (uint8_t)~saved)); /* the pattern before the block: no fault */
    expect_bugcheck(0xC1, p, ExFreePoolWithTag(p, TAG));
    assert_ptr_equal(last()->param[1], p - 1);
    assert_int_equal(last()->param[3], 0x23);
    assert_int_equal(last()->damage[0].kind, POOLSIM_DAMAGE_UNDERRUN);
    p[-1] = saved;
    expect_no_bugcheck(ExFreePoolWithTag(p, TAG));
}

/* ---- Verify Start ------------------------------------------------------------------------------ */

static void test_special_verify_start(void **state)
{
    poolsim_options o = poolsim_cmocka_default_options();
    (void)state;
    SKIP_WITHOUT_TRAP();
    o.special_pool_underrun = 1;
    poolsim_cmocka_reinit(&o);
    uint8_t *p = sp_alloc(0x34, POOL_FLAG_NON_PAGED);
    assert_int_equal(page_offset(p), 0);
    expect_bugcheck(0xD6, p - 1, write_byte(p - 1, 1));
    assert_int_equal(last()->param[1], 1);
    assert_ptr_equal(last()->block.address, p);
    /* An overrun stays in the page: found at free. */
    uint8_t saved = p[0x34];
    expect_no_bugcheck(write_byte(p + 0x34, (uint8_t)~saved));
    expect_bugcheck(0xC1, p, ExFreePoolWithTag(p, TAG));
    assert_ptr_equal(last()->param[1], p + 0x34);
    assert_int_equal(last()->param[3], 0x24);
    p[0x34] = saved;
    ExFreePoolWithTag(p, TAG);
}

/* §2.3: the priorities choose the placement, and (special_pool_priority) select special pool. */
static void test_special_priorities(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
    uint8_t *over = (uint8_t *)ExAllocatePoolWithTagPriority(NonPagedPoolNx, 0x34, TAG,
                                                             NormalPoolPrioritySpecialPoolOverrun);
    uint8_t *under =
        (uint8_t *)ExAllocatePoolWithTagPriority(PagedPool, 0x34, TAG, HighPoolPrioritySpecialPoolUnderrun);
    assert_int_equal(special_allocs(), 2);
    assert_int_equal(page_offset(over), end_offset(0x34));
    assert_int_equal(page_offset(under), 0);
    void *plain = ExAllocatePoolWithTagPriority(NonPagedPoolNx, 0x34, TAG, NormalPoolPriority);
    assert_int_equal(special_allocs(), 2);
    ExFreePoolWithTag(plain, TAG);
    /* ExAllocatePool3's Priority parameter says the same. */
    POOL_EXTENDED_PARAMETER ext;
    memset(&ext, 0, sizeof ext);
    ext.Type = PoolExtendedParameterPriority;
    ext.Priority = LowPoolPrioritySpecialPoolUnderrun;
    uint8_t *p3 = (uint8_t *)ExAllocatePool3(POOL_FLAG_NON_PAGED, 0x34, TAG, &ext, 1);
    assert_int_equal(special_allocs(), 3);
    assert_int_equal(page_offset(p3), 0);
    ExFreePoolWithTag(p3, TAG);
    ExFreePoolWithTag(over, TAG);
    ExFreePoolWithTag(under, TAG);

    /* With the option off, a priority only places an allocation selected otherwise. */
    poolsim_options o = poolsim_cmocka_default_options();
    o.special_pool_priority = 0;
    poolsim_cmocka_reinit(&o);
    plain = ExAllocatePoolWithTagPriority(NonPagedPoolNx, 0x34, TAG, NormalPoolPrioritySpecialPoolUnderrun);
    assert_int_equal(special_allocs(), 0);
    ExFreePoolWithTag(plain, TAG);
    o.special_pool_tags = "*";
    poolsim_cmocka_reinit(&o);
    under = (uint8_t *)ExAllocatePoolWithTagPriority(NonPagedPoolNx, 0x34, TAG,
                                                     NormalPoolPrioritySpecialPoolUnderrun);
    assert_int_equal(special_allocs(), 1);
    assert_int_equal(page_offset(under), 0);
    ExFreePoolWithTag(under, TAG);
}

/* ---- Bad frees (§1.3) ---------------------------------------------------------------------------- */

static void test_special_bad_frees(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
    uint8_t *p = sp_alloc(0x3C, POOL_FLAG_NON_PAGED);
    /* Inside the block: 0x21 when the block cannot fit after the address. */
    uintptr_t calc = PAGE - page_offset(p + GRAN);
    expect_bugcheck(0xC1, p + GRAN, ExFreePoolWithTag(p + GRAN, TAG));
    assert_int_equal(last()->param[1], 0x3C);
    assert_int_equal(last()->param[2], calc);
    assert_int_equal(last()->param[3], calc < 0x3C ? 0x21 : 0x22);
    assert_ptr_equal(last()->block.address, p);
    /* A guard page, and a page never used. */
    uint8_t *guard = p - page_offset(p) - PAGE + 0x10;
    expect_bugcheck(0xC1, guard, ExFreePool(guard));
    assert_int_equal(last()->param[3], 0x20);
    assert_false(last()->has_block);
    uint8_t *unused = p - page_offset(p) + 2 * PAGE;
    expect_bugcheck(0xC1, unused, ExFreePool(unused));
    assert_int_equal(last()->param[3], 0x20);
    assert_false(last()->has_block);
    expect_no_bugcheck(ExFreePoolWithTag(p, TAG));
    /* Double free: the page is no longer allocated. */
    expect_bugcheck(0xC1, p, ExFreePoolWithTag(p, TAG));
    assert_int_equal(last()->param[1], 0);
    assert_int_equal(last()->param[2], 0);
    assert_int_equal(last()->param[3], 0x20);
    assert_int_equal(last()->block.state, POOLSIM_BLOCK_RELEASED);
    /* Verify Start: an address after the block's start where the block still fits, 0x22. */
    uint8_t *s = (uint8_t *)ExAllocatePoolWithTagPriority(NonPagedPoolNx, 0x20, TAG,
                                                          NormalPoolPrioritySpecialPoolUnderrun);
    expect_bugcheck(0xC1, s + GRAN, ExFreePoolWithTag(s + GRAN, TAG));
    assert_int_equal(last()->param[1], 0x20);
    assert_int_equal(last()->param[2], PAGE - GRAN);
    assert_int_equal(last()->param[3], 0x22);
    expect_no_bugcheck(ExFreePoolWithTag(s, TAG));
}

/* The retail family raises the same codes: special pool's are not Verifier subcodes. */
static void test_special_retail(void **state)
{
    poolsim_options o = poolsim_cmocka_default_options();
    (void)state;
    SKIP_WITHOUT_TRAP();
    o.family = POOLSIM_FAMILY_RETAIL;
    poolsim_cmocka_reinit(&o);
    uint8_t *p = sp_alloc(0x40, POOL_FLAG_NON_PAGED);
    expect_bugcheck(0xD6, p + 0x40, read_byte(p + 0x40));
    ExFreePoolWithTag(p, TAG);
    expect_bugcheck(0xC1, p, ExFreePoolWithTag(p, TAG));
    assert_int_equal(last()->param[3], 0x20);
}

/* ---- IRQL (§1.3 0x30, 0x31) ----------------------------------------------------------------- */

static void test_special_irql(void **state)
{
    KIRQL old;
    (void)state;
    SKIP_WITHOUT_TRAP();
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    const POOL_FLAGS paged_special = POOL_FLAG_PAGED | POOL_FLAG_SPECIAL_POOL;
    expect_bugcheck(0xC1, DISPATCH_LEVEL, ExAllocatePool2(paged_special, 0x20, TAG));
    assert_int_equal(last()->param[1], PagedPool);
    assert_int_equal(last()->param[2], 0x20);
    assert_int_equal(last()->param[3], 0x30);
    /* Nonpaged special pool at DISPATCH_LEVEL is legal. */
    expect_no_bugcheck(ExFreePoolWithTag(sp_alloc(0x20, POOL_FLAG_NON_PAGED), TAG));
    KeLowerIrql(old);
    void *p = sp_alloc(0x20, POOL_FLAG_PAGED);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck(0xC1, DISPATCH_LEVEL, ExFreePoolWithTag(p, TAG));
    assert_int_equal(last()->param[1], PagedPool);
    assert_ptr_equal(last()->param[2], p);
    assert_int_equal(last()->param[3], 0x31);
    KeLowerIrql(old);
    expect_no_bugcheck(ExFreePoolWithTag(p, TAG));
    assert_int_equal(special_allocs(), 2);
}

/* ---- Selection --------------------------------------------------------------------------------- */

static void test_special_select_tags(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
    reinit("Ab?d Zz*", 0, 0, 16);
    assert_true(lands_special(POOL_FLAG_NON_PAGED, 0x40, 'dcbA'));
    assert_true(lands_special(POOL_FLAG_PAGED, 0x40, 'dxbA'));
    assert_true(lands_special(POOL_FLAG_NON_PAGED, 0x40, 'zzzZ'));
    assert_false(lands_special(POOL_FLAG_NON_PAGED, 0x40, 'ccbA'));
    assert_false(lands_special(POOL_FLAG_NON_PAGED, 0x40, 'aaaZ'));
    assert_false(lands_special(POOL_FLAG_NON_PAGED, PAGE - GRAN + 1, 'dcbA')); /* too big */

    /* "*": every eligible allocation, legacy routines included; not the Mm allocators. */
    reinit("*", 0, 0, 16);
    void *p = ExAllocatePoolWithTag(NonPagedPoolNx, 0x10, TAG);
    assert_int_equal(special_allocs(), 1);
    assert_int_equal(page_offset(p), end_offset(0x10));
    ExFreePoolWithTag(p, TAG);
    PHYSICAL_ADDRESS high;
    high.QuadPart = -1;
    void *mm = MmAllocateContiguousMemory(0x100, high);
    assert_non_null(mm);
    assert_int_equal(special_allocs(), 1);
    MmFreeContiguousMemory(mm);
}

static void test_special_select_size_class(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
    /* Class 3 granules (x64 0x30): rounded size + one granule, so 17..32 bytes. */
    reinit("", 3 * GRAN, 0, 16);
    assert_false(lands_special(POOL_FLAG_NON_PAGED, GRAN, TAG));
    assert_true(lands_special(POOL_FLAG_NON_PAGED, GRAN + 1, TAG));
    assert_true(lands_special(POOL_FLAG_PAGED, 2 * GRAN, TAG));
    assert_false(lands_special(POOL_FLAG_NON_PAGED, 2 * GRAN + 1, TAG));
    /* The largest class: up to a page less two granules. */
    reinit("", PAGE - GRAN, 0, 16);
    assert_true(lands_special(POOL_FLAG_NON_PAGED, PAGE - 2 * GRAN, TAG));
    assert_false(lands_special(POOL_FLAG_NON_PAGED, PAGE - 3 * GRAN, TAG));
}

/* Only a granule multiple from two granules to a page less one is a class; at most 16384 slots. */
static void test_special_option_ranges(void **state)
{
    static const uint32_t bad[] = {GRAN, 3 * GRAN + 1, PAGE, PAGE - GRAN / 2};
    poolsim_options o;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o = poolsim_cmocka_default_options();
        o.special_pool_size = bad[i];
        assert_int_equal(poolsim_init(&o), POOLSIM_E_OPTION);
    }
    o = poolsim_cmocka_default_options();
    o.special_pool_slots = 16385;
    assert_int_equal(poolsim_init(&o), POOLSIM_E_OPTION);
    o.special_pool_slots = 2;
    o.special_pool_tags = NULL;
    assert_int_equal(poolsim_init(&o), POOLSIM_E_OPTION);
    assert_false(poolsim_initialized());
    static const uint32_t good[] = {2 * GRAN, 3 * GRAN, PAGE - GRAN};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        o = poolsim_cmocka_default_options();
        o.special_pool_size = good[i];
        o.special_pool_slots = i ? 16384 : 0;
        assert_int_equal(poolsim_init(&o), POOLSIM_OK);
        assert_int_equal(poolsim_shutdown(), 0);
    }
}

/* ---- Slots: fixed, least recently freed reused first, fallback counted --------------------------------- */

static uintptr_t page_of(const void *p) { return (uintptr_t)p & ~(uintptr_t)(PAGE - 1); }

static void test_special_slots(void **state)
{
    uint8_t *b[4];
    (void)state;
    SKIP_WITHOUT_TRAP();
    reinit("*", 0, 0, 4);
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t *)ExAllocatePool2(POOL_FLAG_NON_PAGED, 0x40, TAG);
    /* Every slot in use: normal pool, silently, and counted. */
    uint8_t *e = (uint8_t *)ExAllocatePool2(POOL_FLAG_NON_PAGED, 0x40, TAG);
    assert_non_null(e);
    poolsim_stats s;
    poolsim_get_stats(&s);
    assert_int_equal(s.special_allocs, 4);
    assert_int_equal(s.special_fallback, 1);
    ExFreePoolWithTag(e, TAG);
    poolsim_stats t;
    poolsim_get_stats(&t);
    assert_int_equal(t.special_fallback, 1); /* frees do not count */
    /* Freed b[1] then b[0]: b[1]'s page comes back first. */
    ExFreePoolWithTag(b[1], TAG);
    ExFreePoolWithTag(b[0], TAG);
    uint8_t *x = (uint8_t *)ExAllocatePool2(POOL_FLAG_NON_PAGED, 0x40, TAG);
    assert_int_equal(page_of(x), page_of(b[1]));
    assert_true(page_protected(b[0])); /* still no-access */
    expect_bugcheck(0xD5, b[0], read_byte(b[0]));
    uint8_t *y = (uint8_t *)ExAllocatePool2(POOL_FLAG_NON_PAGED, 0x40, TAG);
    assert_int_equal(page_of(y), page_of(b[0]));
    ExFreePoolWithTag(x, TAG);
    ExFreePoolWithTag(y, TAG);
    ExFreePoolWithTag(b[2], TAG);
    ExFreePoolWithTag(b[3], TAG);
    /* Never-used slots come before freed ones. */
    uint8_t *n[8];
    reinit("*", 0, 0, 8);
    uint8_t *a = (uint8_t *)ExAllocatePool2(POOL_FLAG_NON_PAGED, 0x40, TAG);
    ExFreePoolWithTag(a, TAG);
    for (int i = 0; i < 8; i++) {
        n[i] = (uint8_t *)ExAllocatePool2(POOL_FLAG_NON_PAGED, 0x40, TAG);
        assert_true(i == 7 ? page_of(n[i]) == page_of(a) : page_of(n[i]) != page_of(a));
    }
    for (int i = 0; i < 8; i++)
        ExFreePoolWithTag(n[i], TAG);
    reinit("*", 0, 0, 0); /* no slots: every selected allocation falls back */
    assert_false(lands_special(POOL_FLAG_NON_PAGED, 0x40, TAG));
    poolsim_get_stats(&s);
    assert_int_equal(s.special_fallback, 1);
}

/* ---- Sampling ------------------------------------------------------------------------------- */

/* Over m eligible allocations sampled 1 in n, the count sampled has mean m/n
 * and (countdowns uniform over 1..2n-1) variance about m/(3n): allow 6 sigma. */
static void test_special_sampling_rate(void **state)
{
    const unsigned m = 100000, n = 100;
    (void)state;
    SKIP_WITHOUT_TRAP();
    reinit("", 0, n, 16);
    for (unsigned i = 0; i < m; i++) {
        void *p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, TAG);
        ExFreePoolWithTag(p, TAG);
    }
    uint64_t got = special_allocs();
    print_message("sampled %llu of %u allocations at 1 in %u\n", (unsigned long long)got, m, n);
    assert_in_range(got, 1000 - 110, 1000 + 110);
    /* Blocks too big for special pool are not counted against the rate. */
    uint64_t before = special_allocs();
    for (unsigned i = 0; i < 2000; i++) {
        void *p = ExAllocatePool2(POOL_FLAG_NON_PAGED, PAGE, TAG);
        ExFreePoolWithTag(p, TAG);
    }
    assert_int_equal(special_allocs(), before);
    /* 1 in 1: every allocation. */
    reinit("", 0, 1, 16);
    for (unsigned i = 0; i < 50; i++)
        assert_true(lands_special(POOL_FLAG_NON_PAGED, 64, TAG));
}

/* Which of 20000 allocations were sampled, as a hash of their indexes. */
static uint64_t sampled_pattern(uint64_t seed)
{
    poolsim_options o = poolsim_cmocka_default_options();
    uint64_t h = 1469598103934665603ull;
    o.special_pool_sample = 50;
    o.special_pool_seed = seed;
    poolsim_cmocka_reinit(&o);
    for (uint64_t i = 0; i < 20000; i++)
        if (lands_special(POOL_FLAG_NON_PAGED, 32, TAG))
            h = (h ^ i) * 1099511628211ull;
    return h;
}

static void test_special_sampling_replay(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
    uint64_t a = sampled_pattern(7), b = sampled_pattern(7), c = sampled_pattern(8), d = sampled_pattern(6);
    assert_true(a == b);
    assert_false(a == c);
    assert_false(a == d); /* seeds that differ in their lowest bit alone sample differently too */
}

/* ---- Reports ---------------------------------------------------------------------------------- */

#include "capture.h"

static void test_special_reports(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
    uint8_t *p = sp_alloc(0x40, POOL_FLAG_NON_PAGED);
    char want[160];
    capture_start();
    poolsim_report_block(p + 3);
    poolsim_report_block(p + 0x40);
    poolsim_report_stats();
    capture_stop();
    snprintf(want, sizeof want,
             "nonpaged page 0x%016llx, special pool (Verify End) of 4096-byte (0x1000) page\n",
             (unsigned long long)page_of(p));
    assert_non_null(strstr(g_text, want));
    snprintf(want, sizeof want, "poolsim: !pool 0x%016llx: a guard page of poolsim's special pool\n",
             (unsigned long long)(uintptr_t)(p + 0x40));
    assert_non_null(strstr(g_text, want));
    assert_non_null(
        strstr(g_text, "  Pool Allocations Succeeded SpecialPool 1 (0 more selected, no free slot)\n"));
    ExFreePoolWithTag(p, TAG);
}

/* Report and continue: the handler returns, the access happens, and the page closes again after it. */
static void test_special_continue(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
    uint8_t *p = sp_alloc(0x40, POOL_FLAG_NON_PAGED);
    expect_bugcheck_continue(0xD6, p + 0x40, write_byte(p + 0x40, 0x77));
    expect_bugcheck_continue(0xD6, p + 0x40, assert_int_equal(read_byte(p + 0x40), 0x77));
    assert_true(page_protected(p + 0x40));
    ExFreePoolWithTag(p, TAG);
    expect_bugcheck_continue(0xD5, p, read_byte(p));
    assert_true(page_protected(p));
}

/* Bytes in use and peak, of the pool (nonpaged) and of TAG. */
static void check_bytes(uint64_t bytes, uint64_t peak)
{
    poolsim_stats s;
    poolsim_tag_usage_t u;
    poolsim_get_stats(&s);
    assert_int_equal(s.nonpaged_bytes, bytes);
    assert_int_equal(s.peak_nonpaged_bytes, peak);
    assert_true(poolsim_tag_usage(TAG, &u));
    assert_int_equal(u.nonpaged.bytes, bytes);
    assert_int_equal(u.nonpaged.peak_bytes, peak);
}

/* Special-pool blocks live in a region of their own, but one thread's events still count 1, 2, 3 ... in
 * order, and the pool's peak bytes see normal and special blocks together (a design with per-shard
 * sequence batches and byte totals got 1, 65, 2 and a peak below the bytes in use here). */
static void test_special_order_and_peak(void **state)
{
    poolsim_block_info info;
    uint8_t *a, *b, *c;
    (void)state;
    a = non_null(ExAllocatePool2(POOL_FLAG_NON_PAGED, 1000, TAG));
    ExFreePoolWithTag(a, TAG);
    b = sp_alloc(1000, POOL_FLAG_NON_PAGED);
    assert_int_equal(special_allocs(), 1);
    c = non_null(ExAllocatePool2(POOL_FLAG_NON_PAGED, 500, TAG));
    assert_true(poolsim_find_block(b, &info));
    assert_int_equal(info.alloc_seq, 3);
    assert_true(poolsim_find_block(c, &info));
    assert_int_equal(info.alloc_seq, 4);
    assert_true(poolsim_find_block(a, &info));
    assert_int_equal(info.alloc_seq, 1);
    assert_int_equal(info.free_seq, 2);
    assert_int_equal(poolsim_sequence(), 4);
    /* The tag's peak comes from the shards' high-water marks, which miss this one (shard 0 holds b, the
     * thread's shard had 1000 once): a read never shows it below the current total, and keeps it. */
    check_bytes(1500, 1500);
    ExFreePoolWithTag(b, TAG);
    ExFreePoolWithTag(c, TAG);
    assert_int_equal(poolsim_sequence(), 6);
    check_bytes(0, 1500);
}

/* A block made in a test's setup: cmocka puts its own SIGSEGV handler in place between the setup and the
 * test, so the trap poolsim installed at the allocation is gone when the test touches the block. The expect_*
 * macros put it back (poolsim_trap_rearm), and a free does too: the overrun is D6, the touch after the free
 * D5, not a crash. */
static uint8_t *g_fixture_block;

static int setup_with_special_block(void **state)
{
    int rc = poolsim_cmocka_setup(state);
    g_fixture_block = (uint8_t *)ExAllocatePool2(POOL_FLAG_NON_PAGED | POOL_FLAG_SPECIAL_POOL, 0x40, TAG);
    return rc;
}

static void test_special_block_from_a_fixture_overrun(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
    uint8_t *p = g_fixture_block;
    assert_non_null(p);
    expect_bugcheck(0xD6, (uintptr_t)(p + 0x40), write_byte(p + 0x40, 1));
    expect_no_bugcheck(write_byte(p + 0x3F, 1)); /* the legal neighbour */
    ExFreePoolWithTag(p, TAG);
}

static void test_special_block_from_a_fixture_use_after_free(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
    uint8_t *p = g_fixture_block;
    assert_non_null(p);
    ExFreePoolWithTag(p, TAG);
    expect_bugcheck(0xD5, (uintptr_t)p, (void)read_byte(p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_special_block_from_a_fixture_overrun, setup_with_special_block,
                                        poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_block_from_a_fixture_use_after_free,
                                        setup_with_special_block, poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_verify_end_placement, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_cache_aligned, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_overrun_faults, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_use_after_free_faults, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_guard_owner, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_slack_overrun_at_free, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_underrun_at_free, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_verify_start, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_priorities, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_bad_frees, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_retail, poolsim_cmocka_setup, poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_irql, poolsim_cmocka_setup, poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_select_tags, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_select_size_class, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
        cmocka_unit_test(test_special_option_ranges),
        cmocka_unit_test_setup_teardown(test_special_slots, poolsim_cmocka_setup, poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_sampling_rate, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_sampling_replay, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_reports, poolsim_cmocka_setup, poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_continue, poolsim_cmocka_setup, poolsim_cmocka_teardown),
        cmocka_unit_test_setup_teardown(test_special_order_and_peak, poolsim_cmocka_setup,
                                        poolsim_cmocka_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
