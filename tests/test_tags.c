/* SPDX-License-Identifier: MIT */
/*
 * test_tags.c — the tag table and the call-site table (src/tags.c).
 *
 * Every tag has counters per pool class (nonpaged, paged): successful
 * allocations, frees, bytes in use, the peak of those bytes and failed
 * requests, like WinDbg's !poolused (wdk-semantics.md §6.1). Tags are keyed
 * without PROTECTED_POOL (§2.6). The table holds 768 tags (three quarters of
 * POOLSIM_TAG_CAPACITY); further tags are counted together in the overflow
 * row (tag 0xFFFFFFFF). Call sites are counted per (file, line, routine, tag)
 * unless track_sites is off.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <poolsim/cmocka.h>

#include "../src/core.h"

#include "threads.h"

/* ---- Helpers --------------------------------------------------------------------------------- */

#define TAG4(a, b, c, d)                                                                                     \
    ((uint32_t)(uint8_t)(a) | (uint32_t)(uint8_t)(b) << 8 | (uint32_t)(uint8_t)(c) << 16 |                   \
     (uint32_t)(uint8_t)(d) << 24)
#define TAG_X TAG4('X', 'T', 'a', 'g') /* 'gaTX' */
#define TAG_F TAG4('F', 'r', 'e', 'd') /* 'derF' */
#define TAG_Q TAG4('Q', 'u', 'o', 't')
#define PROTECTED 0x80000000u

#define NONPAGED 0u
#define PAGED 1u
#define NONPAGED_NX 512u
#define PAGED_CACHE 5u

#define TAG_LIMIT (POOLSIM_TAG_CAPACITY / 4 * 3) /* tags counted one by one */

static const char g_file_a[] = "drv/a.c";
static const char g_file_b[] = "drv/b.c";

static void *alloc_rt(poolsim_routine rt, uint64_t type, size_t n, uint32_t tag, const char *file, int line)
{
    poolsim_alloc_req req;
    memset(&req, 0, sizeof req);
    req.routine = rt;
    req.type = type;
    req.size = n;
    req.tag = tag;
    return poolsim_pool_alloc(&req, NULL, file, line);
}

static void *alloc(uint32_t type, size_t n, uint32_t tag)
{
    return alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, type, n, tag, g_file_a, 1);
}

static void free_at(void *p, uint32_t tag, const char *file, int line)
{
    poolsim_pool_free(POOLSIM_RT_EX_FREE_POOL_WITH_TAG, p, tag, NULL, 0, file, line);
}

static void release(void *p, uint32_t tag) { free_at(p, tag, g_file_a, 2); }

static poolsim_tag_usage_t usage(uint32_t tag)
{
    poolsim_tag_usage_t u;
    assert_true(poolsim_tag_usage(tag, &u));
    return u;
}

static void check_counters(const poolsim_pool_counters *c, uint64_t allocs, uint64_t frees, uint64_t bytes,
                           uint64_t peak, uint64_t failed)
{
    assert_int_equal(c->allocs, allocs);
    assert_int_equal(c->frees, frees);
    assert_int_equal(c->bytes, bytes);
    assert_int_equal(c->peak_bytes, peak);
    assert_int_equal(c->failed, failed);
}

/* The site with this key in the internal table, or NULL. */
/* A site's counters, summed over the shards. */
static psim_site_counts sum(const psim_site *s)
{
    psim_site_counts c;
    poolsim__site_sum(s, &c);
    return c;
}

static const psim_site *site_find(const char *file, int line, poolsim_routine rt, uint32_t tag)
{
    const psim *ps = poolsim__g;
    const char *routine = poolsim_routine_name(rt);
    for (uint32_t i = 1; i < ps->nsites; i++) {
        const psim_site *s = poolsim__site_at(ps, i);
        if (s && s->file == file && s->line == line && s->routine == routine && s->tag == tag)
            return s;
    }
    return NULL;
}

/* ---- Counters -------------------------------------------------------------------------------- */

static void test_tags_counters(void **state)
{
    void *x1, *x2, *x3, *xp, *f1, *f2;
    poolsim_tag_usage_t u;
    (void)state;

    x1 = alloc(NONPAGED, 100, TAG_X);
    x2 = alloc(NONPAGED_NX, 200, TAG_X);
    u = usage(TAG_X);
    assert_int_equal(u.tag, TAG_X);
    check_counters(&u.nonpaged, 2, 0, 300, 300, 0);
    check_counters(&u.paged, 0, 0, 0, 0, 0);

    release(x1, TAG_X);
    x3 = alloc(NONPAGED, 50, TAG_X);
    xp = alloc(PAGED_CACHE, 1000, TAG_X);
    u = usage(TAG_X);
    check_counters(&u.nonpaged, 3, 1, 250, 300, 0);
    check_counters(&u.paged, 1, 0, 1000, 1000, 0);
    release(xp, TAG_X);
    u = usage(TAG_X);
    check_counters(&u.paged, 1, 1, 0, 1000, 0);

    /* A second tag is counted apart, big blocks by their requested size. */
    f1 = alloc(NONPAGED, 0x2000, TAG_F);
    f2 = alloc(PAGED, 7, TAG_F);
    u = usage(TAG_F);
    check_counters(&u.nonpaged, 1, 0, 0x2000, 0x2000, 0);
    check_counters(&u.paged, 1, 0, 7, 7, 0);
    u = usage(TAG_X);
    check_counters(&u.nonpaged, 3, 1, 250, 300, 0);

    /* Refused requests count as failed in the pool they asked for: two
     * nonpaged kinds at once and a reserved bit with paged (§2.4, no bug
     * check) ... */
    assert_null(alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL2, PSIM_PF_NON_PAGED | PSIM_PF_NON_PAGED_EXECUTE, 10,
                         TAG_F, g_file_a, 3));
    assert_null(alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL2, PSIM_PF_PAGED | 0x10u, 10, TAG_F, g_file_a, 4));
    /* ... and a bug check (C4/0x00, zero bytes) that the handler returned from. */
    expect_bugcheck_continue(0xC4, 0x00, assert_null(alloc(NONPAGED, 0, TAG_F)));
    u = usage(TAG_F);
    check_counters(&u.nonpaged, 1, 0, 0x2000, 0x2000, 2);
    check_counters(&u.paged, 1, 0, 7, 7, 1);
    {
        poolsim_stats s;
        poolsim_get_stats(&s);
        assert_int_equal(s.failed, 2 + 1);
    }

    release(x2, TAG_X);
    release(x3, TAG_X);
    release(f1, TAG_F);
    release(f2, TAG_F);
    u = usage(TAG_X);
    check_counters(&u.nonpaged, 3, 3, 0, 300, 0);
    check_counters(&u.paged, 1, 1, 0, 1000, 0);
    u = usage(TAG_F);
    check_counters(&u.nonpaged, 1, 1, 0, 0x2000, 2);
    check_counters(&u.paged, 1, 1, 0, 7, 1);

    /* A tag never used is not there, and the answer is empty. */
    memset(&u, 0xAB, sizeof u);
    assert_false(poolsim_tag_usage(TAG_Q, &u));
    check_counters(&u.nonpaged, 0, 0, 0, 0, 0);
    check_counters(&u.paged, 0, 0, 0, 0, 0);
    assert_false(poolsim_tag_usage(TAG_Q, NULL));
    {
        poolsim_stats s;
        poolsim_get_stats(&s);
        assert_int_equal(s.tags, 2);
    }
}

/* Routines without a tag count under "None" (§2.6). */
static void test_tags_untagged_routine(void **state)
{
    void *p;
    poolsim_tag_usage_t u;
    (void)state;
    p = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL, NONPAGED_NX, 24, TAG_X /* ignored */, g_file_a, 5);
    assert_non_null(p);
    u = usage(PSIM_TAG_NONE);
    check_counters(&u.nonpaged, 1, 0, 24, 24, 0);
    assert_false(poolsim_tag_usage(TAG_X, &u));
    poolsim_pool_free(POOLSIM_RT_EX_FREE_POOL, p, 0, NULL, 0, g_file_a, 6);
    u = usage(PSIM_TAG_NONE);
    check_counters(&u.nonpaged, 1, 1, 0, 24, 0);
}

/* The pool limit refuses without a bug check and counts the failure. */
static void test_tags_failed_at_limit(void **state)
{
    poolsim_options o;
    void *a, *b;
    poolsim_tag_usage_t u;
    int32_t status = 0;
    poolsim_alloc_req req;
    (void)state;
    poolsim_options_default(&o);
    o.nonpaged_limit = 0x10000;
    poolsim_cmocka_reinit(&o);

    a = alloc(NONPAGED, 0x8000, TAG_Q);
    assert_non_null(a);
    assert_null(alloc(NONPAGED, 0x8001, TAG_Q));  /* one byte over */
    assert_null(alloc(NONPAGED, 0x20000, TAG_Q)); /* over on its own */
    b = alloc(NONPAGED, 0x8000, TAG_Q);           /* exactly at the limit */
    assert_non_null(b);
    /* Paged pool has its own (default) limit. */
    release(alloc(PAGED, 0x20000, TAG_Q), TAG_Q);
    /* A quota routine raises instead (§2.4). */
    memset(&req, 0, sizeof req);
    req.routine = POOLSIM_RT_EX_ALLOCATE_POOL_WITH_QUOTA_TAG;
    req.type = NONPAGED;
    req.size = 16;
    req.tag = TAG_Q;
    assert_null(poolsim_pool_alloc(&req, &status, g_file_a, 7));
    assert_int_equal(status, PSIM_STATUS_INSUFFICIENT_RESOURCES);

    u = usage(TAG_Q);
    check_counters(&u.nonpaged, 2, 0, 0x10000, 0x10000, 3);
    check_counters(&u.paged, 1, 1, 0, 0x20000, 0);
    release(a, TAG_Q);
    release(b, TAG_Q);
    u = usage(TAG_Q);
    check_counters(&u.nonpaged, 2, 2, 0, 0x10000, 3);
}

/* ---- PROTECTED_POOL (§2.6) ------------------------------------------------------------------- */

static void test_tags_protected_masked(void **state)
{
    void *p, *q;
    poolsim_tag_usage_t u, v;
    poolsim_block_info info;
    (void)state;
    p = alloc(NONPAGED, 64, TAG_X | PROTECTED);
    q = alloc(NONPAGED, 32, TAG_X);
    assert_non_null(p);
    assert_non_null(q);

    /* One row, found with or without the bit; the block keeps the tag as passed. */
    u = usage(TAG_X | PROTECTED);
    v = usage(TAG_X);
    assert_int_equal(u.tag, TAG_X);
    assert_int_equal(v.tag, TAG_X);
    check_counters(&u.nonpaged, 2, 0, 96, 96, 0);
    check_counters(&v.nonpaged, 2, 0, 96, 96, 0);
    check_counters(&u.paged, 0, 0, 0, 0, 0);
    assert_true(poolsim_find_block(p, &info));
    assert_int_equal(info.tag, TAG_X | PROTECTED);
    {
        poolsim_stats s;
        poolsim_get_stats(&s);
        assert_int_equal(s.tags, 1);
    }

    /* The protected block frees with its tag, bit or no bit. */
    expect_no_bugcheck(release(p, TAG_X | PROTECTED));
    expect_no_bugcheck(release(q, TAG_X));
    p = alloc(NONPAGED, 64, TAG_X | PROTECTED);
    expect_no_bugcheck(release(p, TAG_X));
    u = usage(TAG_X);
    check_counters(&u.nonpaged, 3, 3, 0, 96, 0);
}

/* Each shard remembers the tag entry it counted last: allocations and frees that alternate between tags,
 * with and without PROTECTED_POOL, still land in their own rows. */
static void test_tags_alternating(void **state)
{
    void *p[6];
    const uint32_t tags[6] = {TAG_X, TAG_X | PROTECTED, TAG_F, TAG_F, TAG_Q, TAG_X};
    poolsim_tag_usage_t u;
    (void)state;
    for (int i = 0; i < 6; i++) {
        p[i] = alloc(i == 4 ? PAGED : NONPAGED, 16u * (unsigned)(i + 1), tags[i]);
        assert_non_null(p[i]);
    }
    u = usage(TAG_X);
    check_counters(&u.nonpaged, 3, 0, 16 + 32 + 96, 16 + 32 + 96, 0);
    u = usage(TAG_F);
    check_counters(&u.nonpaged, 2, 0, 48 + 64, 48 + 64, 0);
    u = usage(TAG_Q);
    check_counters(&u.paged, 1, 0, 80, 80, 0);
    check_counters(&u.nonpaged, 0, 0, 0, 0, 0);
    for (int i = 5; i >= 0; i--)
        expect_no_bugcheck(release(p[i], tags[i]));
    u = usage(TAG_X);
    check_counters(&u.nonpaged, 3, 3, 0, 16 + 32 + 96, 0);
    u = usage(TAG_F);
    check_counters(&u.nonpaged, 2, 2, 0, 48 + 64, 0);
    u = usage(TAG_Q);
    check_counters(&u.paged, 1, 1, 0, 80, 0);
}

/* The tag 0xFFFFFFFF is PROTECTED_POOL | 0x7FFFFFFF: it is counted in the row 0x7FFFFFFF, like any
 * protected tag, not in the overflow row that poolsim_tag_usage(0xFFFFFFFF) reads (found by fuzz_pool).
 * The retail family has no tag check, so such an allocation succeeds. */
static void test_tags_protected_all_ones(void **state)
{
    poolsim_options o = poolsim_cmocka_default_options();
    poolsim_tag_usage_t u;
    poolsim_stats s;
    void *p;
    (void)state;
    o.family = POOLSIM_FAMILY_RETAIL;
    poolsim_cmocka_reinit(&o);
    p = alloc(NONPAGED, 40, 0xFFFFFFFFu);
    assert_non_null(p);
    u = usage(0x7FFFFFFFu);
    assert_int_equal(u.tag, 0x7FFFFFFFu);
    check_counters(&u.nonpaged, 1, 0, 40, 40, 0);
    assert_false(poolsim_tag_usage(0xFFFFFFFFu, &u)); /* no tag overflowed */
    poolsim_get_stats(&s);
    assert_int_equal(s.tags, 1);
    expect_no_bugcheck(release(p, 0xFFFFFFFFu));
    u = usage(0x7FFFFFFFu);
    check_counters(&u.nonpaged, 1, 1, 0, 40, 0);
}

/* ---- The overflow row ------------------------------------------------------------------------ */

#define MANY_TAGS (TAG_LIMIT + 32u)

static uint32_t nth_tag(unsigned i)
{
    return TAG4('T', '0' + i / 100 % 10, '0' + i / 10 % 10, 'A' + i % 10 + (i / 1000) * 10);
}

static void test_tags_overflow_row(void **state)
{
    static void *blocks[MANY_TAGS];
    const psim_tagent *overflow;
    poolsim_tag_usage_t u;
    poolsim_stats s;
    (void)state;
    for (unsigned i = 0; i < MANY_TAGS; i++) {
        blocks[i] = alloc(i & 1 ? PAGED : NONPAGED, 10 + i % 3, nth_tag(i));
        assert_non_null(blocks[i]);
    }
    poolsim_get_stats(&s);
    assert_int_equal(s.tags, TAG_LIMIT);
    assert_int_equal(s.live_blocks, MANY_TAGS);

    /* The first 768 tags have their own rows ... */
    for (unsigned i = 0; i < TAG_LIMIT; i++) {
        u = usage(nth_tag(i));
        assert_int_equal(u.tag, nth_tag(i));
        assert_int_equal((i & 1 ? u.paged : u.nonpaged).allocs, 1);
        assert_int_equal((i & 1 ? u.paged : u.nonpaged).bytes, 10 + i % 3);
        assert_int_equal((i & 1 ? u.nonpaged : u.paged).allocs, 0);
    }
    /* ... the rest share the overflow row (tag 0xFFFFFFFF, the last one). */
    for (unsigned i = TAG_LIMIT; i < MANY_TAGS; i++)
        assert_false(poolsim_tag_usage(nth_tag(i), &u));
    overflow = &poolsim__g->tags[POOLSIM_TAG_CAPACITY];
    assert_int_equal(overflow->tag, PSIM_TAG_OVERFLOW);
    {
        uint64_t np = 0, pg = 0, npb = 0, pgb = 0;
        for (unsigned i = TAG_LIMIT; i < MANY_TAGS; i++) {
            if (i & 1) {
                pg++;
                pgb += 10 + i % 3;
            } else {
                np++;
                npb += 10 + i % 3;
            }
        }
        /* The overflow row is queried with its own value. */
        assert_true(poolsim_tag_usage(PSIM_TAG_OVERFLOW, &u));
        assert_int_equal(u.tag, PSIM_TAG_OVERFLOW);
        assert_int_equal(u.nonpaged.allocs, np);
        assert_int_equal(u.nonpaged.bytes, npb);
        assert_int_equal(u.paged.allocs, pg);
        assert_int_equal(u.paged.bytes, pgb);

        for (unsigned i = 0; i < MANY_TAGS; i++)
            release(blocks[i], nth_tag(i));
        assert_true(poolsim_tag_usage(PSIM_TAG_OVERFLOW, &u));
        assert_int_equal(u.nonpaged.frees, np);
        assert_int_equal(u.paged.frees, pg);
        assert_int_equal(u.nonpaged.bytes, 0);
        assert_int_equal(u.paged.bytes, 0);
        assert_int_equal(u.nonpaged.peak_bytes, npb);
        assert_int_equal(u.paged.peak_bytes, pgb);
    }
    /* A new tag after the table is full still goes to the overflow row;
     * the known ones keep theirs. */
    release(alloc(NONPAGED, 5, TAG4('N', 'e', 'w', '1')), TAG4('N', 'e', 'w', '1'));
    assert_false(poolsim_tag_usage(TAG4('N', 'e', 'w', '1'), &u));
    release(alloc(NONPAGED, 5, nth_tag(0)), nth_tag(0));
    u = usage(nth_tag(0));
    assert_int_equal(u.nonpaged.allocs, 2);
    poolsim_get_stats(&s);
    assert_int_equal(s.tags, TAG_LIMIT);
    assert_int_equal(s.live_blocks, 0);
}

/* ---- Call sites ------------------------------------------------------------------------------ */

static void test_tags_sites(void **state)
{
    void *b[8];
    const psim_site *s;
    poolsim_stats st;
    poolsim_block_info info;
    (void)state;
    b[0] = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, NONPAGED, 10, TAG_X, g_file_a, 10);
    b[1] = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, PAGED, 20, TAG_X, g_file_a, 10);     /* same site */
    b[2] = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, NONPAGED, 30, TAG_X, g_file_a, 11);  /* line */
    b[3] = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL2, PSIM_PF_NON_PAGED, 40, TAG_X, g_file_a, 10); /* routine */
    b[4] = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, NONPAGED, 50, TAG_F, g_file_a, 10);  /* tag */
    b[5] = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, NONPAGED, 60, TAG_X, g_file_b, 10);  /* file */
    b[6] = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, NONPAGED, 70, TAG_X | PROTECTED, g_file_a, 10);
    b[7] =
        alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, NONPAGED, 80, TAG_X, NULL, 10); /* no file: no site */
    for (int i = 0; i < 8; i++)
        assert_non_null(b[i]);

    poolsim_get_stats(&st);
    assert_int_equal(st.sites, 5);
    assert_int_equal(poolsim__g->nsites, 6); /* site 0 is "unknown" */

    s = site_find(g_file_a, 10, POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, TAG_X);
    assert_non_null(s);
    /* b[0], b[1] and the PROTECTED_POOL b[6] (the bit is masked). */
    assert_int_equal(sum(s).allocs[0], 2);
    assert_int_equal(sum(s).allocs[1], 1);
    assert_int_equal(sum(s).bytes[0], 80);
    assert_int_equal(sum(s).bytes[1], 20);
    s = site_find(g_file_a, 11, POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, TAG_X);
    assert_non_null(s);
    assert_int_equal(sum(s).allocs[0], 1);
    assert_int_equal(sum(s).bytes[0], 30);
    s = site_find(g_file_a, 10, POOLSIM_RT_EX_ALLOCATE_POOL2, TAG_X);
    assert_non_null(s);
    assert_int_equal(sum(s).allocs[0], 1);
    assert_int_equal(sum(s).bytes[0], 40);
    s = site_find(g_file_a, 10, POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, TAG_F);
    assert_non_null(s);
    assert_int_equal(sum(s).bytes[0], 50);
    s = site_find(g_file_b, 10, POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, TAG_X);
    assert_non_null(s);
    assert_int_equal(sum(s).bytes[0], 60);
    assert_null(site_find(g_file_a, 10, POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, TAG_X | PROTECTED));

    /* Blocks carry their site. */
    assert_true(poolsim_find_block(b[5], &info));
    assert_ptr_equal(info.alloc_site.file, g_file_b);
    assert_int_equal(info.alloc_site.line, 10);
    assert_string_equal(info.alloc_site.routine, "ExAllocatePoolWithTag");
    assert_true(poolsim_find_block(b[7], &info));
    assert_null(info.alloc_site.file);
    assert_int_equal(info.alloc_site.line, 0);

    /* Frees are counted at the allocating site; the freeing site is a site of its own. */
    free_at(b[0], TAG_X, g_file_b, 99);
    free_at(b[1], TAG_X, g_file_b, 99);
    s = site_find(g_file_a, 10, POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, TAG_X);
    assert_int_equal(sum(s).frees[0], 1);
    assert_int_equal(sum(s).frees[1], 1);
    assert_int_equal(sum(s).bytes[0], 70);
    assert_int_equal(sum(s).bytes[1], 0);
    s = site_find(g_file_b, 99, POOLSIM_RT_EX_FREE_POOL_WITH_TAG, TAG_X);
    assert_non_null(s);
    assert_int_equal(sum(s).allocs[0] + sum(s).allocs[1] + sum(s).frees[0] + sum(s).frees[1], 0);
    poolsim_get_stats(&st);
    assert_int_equal(st.sites, 6);

    for (int i = 2; i < 8; i++)
        free_at(b[i], i == 4 ? TAG_F : TAG_X, g_file_b, 99 + (i == 4));
    poolsim_get_stats(&st);
    assert_int_equal(st.sites, 7); /* + (b.c, 100, ExFreePoolWithTag, Fred) */
    s = site_find(g_file_a, 10, POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, TAG_X);
    assert_int_equal(sum(s).allocs[0], 2);
    assert_int_equal(sum(s).frees[0], 2);
    assert_int_equal(sum(s).bytes[0], 0);
}

static void test_tags_sites_off(void **state)
{
    poolsim_options o;
    poolsim_block_info info;
    poolsim_stats st;
    void *p;
    (void)state;
    poolsim_options_default(&o);
    o.track_sites = 0;
    poolsim_cmocka_reinit(&o);
    p = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, NONPAGED, 10, TAG_X, g_file_a, 10);
    assert_non_null(p);
    assert_true(poolsim_find_block(p, &info));
    assert_null(info.alloc_site.file);
    assert_int_equal(info.alloc_site.line, 0);
    /* The routine is known without a site. */
    assert_string_equal(info.alloc_site.routine, "ExAllocatePoolWithTag");
    free_at(p, TAG_X, g_file_b, 20);
    assert_true(poolsim_find_block(p, &info));
    assert_null(info.free_site.file);
    assert_string_equal(info.free_site.routine, "ExFreePoolWithTag");
    poolsim_get_stats(&st);
    assert_int_equal(st.sites, 0);
    assert_int_equal(poolsim__g->nsites, 1);
    /* Tags are counted all the same. */
    assert_int_equal(usage(TAG_X).nonpaged.allocs, 1);
}

/* A full call-site table: the blocks of a site beyond it are tracked and counted under their tag, their
 * site unknown; the sites it holds keep counting. */
static void test_tags_site_table_full(void **state)
{
    enum { EXTRA = 10 };
    static void *b[POOLSIM_SITE_CAPACITY + EXTRA];
    poolsim_stats st;
    poolsim_block_info info;
    (void)state;
    for (int i = 0; i < (int)POOLSIM_SITE_CAPACITY + EXTRA; i++) /* site i + 1: line i + 1 of drv/a.c */
        assert_non_null(
            b[i] = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, NONPAGED, 8, TAG_X, g_file_a, i + 1));
    poolsim_get_stats(&st);
    assert_int_equal(st.sites, POOLSIM_SITE_CAPACITY - 1); /* entry 0 is "unknown" */
    assert_int_equal(usage(TAG_X).nonpaged.allocs, POOLSIM_SITE_CAPACITY + EXTRA);
    assert_true(poolsim_find_block(b[POOLSIM_SITE_CAPACITY - 2], &info)); /* the last site that fit */
    assert_ptr_equal(info.alloc_site.file, g_file_a);
    assert_int_equal(info.alloc_site.line, POOLSIM_SITE_CAPACITY - 1);
    for (int i = POOLSIM_SITE_CAPACITY - 1; i < (int)POOLSIM_SITE_CAPACITY + EXTRA; i++) {
        assert_true(poolsim_find_block(b[i], &info));
        assert_null(info.alloc_site.file);
        assert_int_equal(info.alloc_site.line, 0);
        assert_int_equal(info.tag, TAG_X);
    }
    /* The last site that did not fit again (the shard's cache has it), then a site in the table. */
    void *q = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, NONPAGED, 8, TAG_X, g_file_a,
                       (int)POOLSIM_SITE_CAPACITY + EXTRA);
    assert_true(poolsim_find_block(q, &info));
    assert_null(info.alloc_site.file);
    void *p = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, NONPAGED, 8, TAG_X, g_file_a, 1);
    assert_true(poolsim_find_block(p, &info));
    assert_ptr_equal(info.alloc_site.file, g_file_a);
    assert_int_equal(info.alloc_site.line, 1);
    const psim_site *s = site_find(g_file_a, 1, POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, TAG_X);
    assert_non_null(s);
    assert_int_equal(sum(s).allocs[0], 2);
    poolsim_get_stats(&st);
    assert_int_equal(st.sites, POOLSIM_SITE_CAPACITY - 1);
    release(p, TAG_X);
    release(q, TAG_X);
    for (int i = 0; i < (int)POOLSIM_SITE_CAPACITY + EXTRA; i++)
        release(b[i], TAG_X);
    assert_int_equal(usage(TAG_X).nonpaged.bytes, 0);
    assert_int_equal(poolsim_validate(), 0);
}

/* ---- New tags while another thread reads the totals ----------------------------------------------- */

#define NEW_TAGS 300u

static void tag_maker(void *arg)
{
    int *done = (int *)arg;
    for (uint32_t i = 0; i < NEW_TAGS; i++) {
        uint32_t tag = TAG4('N', 'w', 'A' + i % 26, 'A' + i / 26);
        release(alloc(NONPAGED, 8, tag), tag);
    }
    store_int(done, 1);
}

/* poolsim_get_stats reads the tag count while a table insert moves it (ThreadSanitizer found the count
 * written without an atomic store: test.sh runs this file under TSan). */
static void test_tags_new_tags_while_stats_read(void **state)
{
    thread th;
    int done = 0;
    uint64_t seen = 0;
    poolsim_stats s;
    (void)state;
    thread_start(&th, tag_maker, &done);
    while (!load_int(&done)) {
        poolsim_get_stats(&s);
        assert_true(s.tags >= seen && s.tags <= NEW_TAGS);
        seen = s.tags;
    }
    thread_join(&th);
    poolsim_get_stats(&s);
    assert_int_equal(s.tags, NEW_TAGS);
    assert_int_equal(s.live_blocks, 0);
}

/* ---- Sequence numbers and pool peaks with two threads --------------------------------------------- */

/* A second thread that allocates or frees on request, one step at a time. */
typedef struct helper {
    int cmd; /* 0 idle, 1 allocate `size`, 2 free `p`, 3 stop */
    size_t size;
    void *p;
} helper;

static void helper_main(void *arg)
{
    helper *h = (helper *)arg;
    for (;;) {
        int cmd = load_int(&h->cmd);
        if (cmd == 1)
            h->p = alloc(NONPAGED, h->size, TAG_X);
        else if (cmd == 2)
            release(h->p, TAG_X);
        if (cmd)
            store_int(&h->cmd, 0);
        if (cmd == 3)
            return;
        if (!cmd)
            sleep_ms(1);
    }
}

static void *helper_do(helper *h, int cmd, size_t size, void *p)
{
    h->size = size;
    h->p = p;
    store_int(&h->cmd, cmd);
    while (load_int(&h->cmd))
        sleep_ms(1);
    return h->p;
}

static poolsim_block_info info_of(const void *p)
{
    poolsim_block_info info;
    assert_true(poolsim_find_block(p, &info));
    return info;
}

/* Each thread numbers its events from a batch of its own (docs/semantics.md): a free is still numbered
 * above its block's allocation when another thread made the block with a later batch, and a checkpoint
 * closes the other thread's open batch, so what it allocates next is found by poolsim_live_since. */
static void test_tags_sequence_threads(void **state)
{
    helper h = {0};
    thread th;
    (void)state;
    thread_start(&th, helper_main, &h);
    void *y = helper_do(&h, 1, 10, NULL); /* the helper's batch: 1..64 */
    void *x = alloc(NONPAGED, 20, TAG_X); /* this thread's: 65..128 */
    assert_int_equal(info_of(y).alloc_seq, 1);
    assert_int_equal(info_of(x).alloc_seq, 65);
    helper_do(&h, 2, 0, x); /* the helper's next number, 2, is below x's allocation: a new batch */
    poolsim_block_info fx = info_of(x);
    assert_int_equal(fx.free_seq, 129);
    uint64_t since = poolsim_sequence();
    assert_int_equal(since, 192);         /* the end of the helper's batch; nothing was given back */
    void *z = helper_do(&h, 1, 30, NULL); /* the helper's open batch (130..192) is below the checkpoint */
    assert_int_equal(info_of(z).alloc_seq, 193);
    poolsim_block_info found[2];
    assert_int_equal(poolsim_live_since(since, found, 2), 1);
    assert_ptr_equal(found[0].address, z);
    assert_int_equal(poolsim_live_since(0, NULL, 0), 2);
    /* This thread's events keep increasing along it: 66 is below the checkpoint, so a new batch. */
    release(y, TAG_X);
    assert_true(info_of(y).free_seq > since);
    assert_true(poolsim_sequence() >= since);
    helper_do(&h, 2, 0, z);
    assert_true(info_of(z).free_seq > info_of(z).alloc_seq);
    helper_do(&h, 3, 0, NULL);
    thread_join(&th);
}

static void check_pool_bytes(uint64_t bytes, uint64_t peak)
{
    poolsim_stats s;
    poolsim_get_stats(&s);
    assert_int_equal(s.nonpaged_bytes, bytes);
    assert_int_equal(s.peak_nonpaged_bytes, peak);
}

/* The pool's bytes are counted where the thread allocates and summed when read. The peak is exact while
 * one thread's blocks are live, never below the bytes in use, and a pool limit holds exactly. */
static void test_tags_pool_bytes_threads(void **state)
{
    helper h = {0};
    thread th;
    (void)state;
    thread_start(&th, helper_main, &h);
    void *a = helper_do(&h, 1, 1000, NULL);
    check_pool_bytes(1000, 1000);
    helper_do(&h, 2, 0, a);
    check_pool_bytes(0, 1000);
    void *b = alloc(NONPAGED, 600, TAG_X);
    void *c = alloc(NONPAGED, 700, TAG_X);
    check_pool_bytes(1300, 1300);
    release(b, TAG_X);
    a = helper_do(&h, 1, 900, NULL); /* 1600 in use: a read finds it, whatever the shards saw */
    check_pool_bytes(1600, 1600);
    helper_do(&h, 2, 0, a);
    release(c, TAG_X);
    check_pool_bytes(0, 1600);
    helper_do(&h, 3, 0, NULL);
    thread_join(&th);
}

static void test_tags_pool_limit_threads(void **state)
{
    helper h = {0};
    thread th;
    (void)state;
    poolsim_options o;
    poolsim_options_default(&o);
    o.nonpaged_limit = 1000;
    poolsim_cmocka_reinit(&o);
    thread_start(&th, helper_main, &h);
    void *a = helper_do(&h, 1, 600, NULL);
    assert_non_null(a);
    assert_null(alloc(NONPAGED, 401, TAG_X)); /* the other thread's 600 count against the limit */
    void *b = alloc(NONPAGED, 400, TAG_X);
    assert_non_null(b);
    assert_null(helper_do(&h, 1, 1, NULL));
    release(b, TAG_X); /* this thread gives back bytes the other one may take */
    void *c = helper_do(&h, 1, 400, NULL);
    assert_non_null(c);
    check_pool_bytes(1000, 1000);
    helper_do(&h, 2, 0, c);
    helper_do(&h, 2, 0, a);
    check_pool_bytes(0, 1000);
    helper_do(&h, 3, 0, NULL);
    thread_join(&th);
}

/* Four threads allocate and free at once, never more than the limit in all: none may fail. A request
 * that finds no grant left takes back the other shards' spare ones with every shard locked, so a thread
 * cannot take them again before the request's own grant. A stress check: a design that trimmed one shard at
 * a time failed here in about one run of five (and 1 % of the requests of a longer run). */
#define RACE_LIMIT 0x100000u
#define RACE_SMALL 0x19000u
#define RACE_ROUNDS 10000

typedef struct racer {
    size_t size;
    int failed;
} racer;

static void racer_main(void *arg)
{
    racer *r = (racer *)arg;
    for (int i = 0; i < RACE_ROUNDS; i++) {
        void *p = alloc(NONPAGED, r->size, TAG_X);
        if (p)
            release(p, TAG_X);
        else
            r->failed++;
    }
}

static void test_tags_pool_limit_racing(void **state)
{
    racer r[4] = {{RACE_LIMIT - 3 * RACE_SMALL, 0}, {RACE_SMALL, 0}, {RACE_SMALL, 0}, {RACE_SMALL, 0}};
    thread th[4];
    (void)state;
    poolsim_options o;
    poolsim_options_default(&o);
    o.nonpaged_limit = RACE_LIMIT;
    o.quarantine_bytes = 0;
    poolsim_cmocka_reinit(&o);
    for (int i = 0; i < 4; i++)
        thread_start(&th[i], racer_main, &r[i]);
    for (int i = 0; i < 4; i++)
        thread_join(&th[i]);
    for (int i = 0; i < 4; i++)
        assert_int_equal(r[i].failed, 0);
    assert_null(alloc(NONPAGED, RACE_LIMIT + 1, TAG_X));
    void *all = alloc(NONPAGED, RACE_LIMIT, TAG_X); /* the spare grants of the four shards come back */
    assert_non_null(all);
    release(all, TAG_X);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, poolsim_cmocka_setup, poolsim_cmocka_teardown)
    const struct CMUnitTest tests[] = {
        T(test_tags_counters),           T(test_tags_untagged_routine),
        T(test_tags_failed_at_limit),    T(test_tags_protected_masked),
        T(test_tags_overflow_row),       T(test_tags_sites),
        T(test_tags_sites_off),          T(test_tags_new_tags_while_stats_read),
        T(test_tags_sequence_threads),   T(test_tags_pool_bytes_threads),
        T(test_tags_pool_limit_threads), T(test_tags_pool_limit_racing),
        T(test_tags_protected_all_ones), T(test_tags_alternating),
        T(test_tags_site_table_full),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
