/* SPDX-License-Identifier: MIT */
/*
 * test_pool.c — the tracker (src/tracker.c, src/guard.c) seen through the
 * pool engine (poolsim_pool_alloc / poolsim_pool_free).
 *
 * Placement follows wdk-semantics.md §2.5 and §7: every small block (up to
 * 0xFE0 bytes on x64) is aligned to the pool granule (16 bytes on 64-bit, 8
 * on 32-bit) and never crosses a page; bigger blocks are page-aligned;
 * cache-aligned types are 64-byte aligned. Thousands of random blocks keep
 * their own contents through interleaved frees. poolsim_find_block and
 * poolsim_valid_access are checked at every edge of a block. The guards
 * report an overrun into the slack, into the footer and an underrun into the
 * header, for small and big blocks, paged and nonpaged, in both code families
 * (§1.1 C4/0x51 and 0x53; §1.4 0x19/0x21 and 0x07), while writing the last
 * requested byte is never reported; poolsim_validate counts damaged blocks.
 * Two threads allocate and free 100,000 blocks each and leave exact per-tag
 * counters; poolsim_get_stats is exact.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#endif

#include <poolsim/cmocka.h>

#include "../src/core.h"

/* ---- Helpers --------------------------------------------------------------------------------- */

#define TAG4(a, b, c, d)                                                                                     \
    ((uint32_t)(uint8_t)(a) | (uint32_t)(uint8_t)(b) << 8 | (uint32_t)(uint8_t)(c) << 16 |                   \
     (uint32_t)(uint8_t)(d) << 24)
#define TAG_X TAG4('X', 'T', 'a', 'g') /* 'gaTX' */
#define TAG_F TAG4('F', 'r', 'e', 'd') /* 'derF' */

/* POOL_TYPE values (§2.1). */
#define NONPAGED 0u
#define PAGED 1u
#define NONPAGED_CACHE 4u
#define PAGED_CACHE 5u
#define NONPAGED_NX 512u
#define NONPAGED_NX_CACHE 516u

#define GRAN (2u * (unsigned)sizeof(void *)) /* §2.5 */
#define PAGE 4096u
#define SMALL_MAX (sizeof(void *) == 8 ? 0xFE0u : 0xFF0u)
#define CACHE_LINE 64u

#define FILE_NAME "drv/pool.c"

static void *alloc_at(uint32_t type, size_t n, uint32_t tag, int line)
{
    poolsim_alloc_req req;
    memset(&req, 0, sizeof req);
    req.routine = POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG;
    req.type = type;
    req.size = n;
    req.tag = tag;
    return poolsim_pool_alloc(&req, NULL, FILE_NAME, line);
}

/* ExAllocatePool2 with POOL_FLAGS. */
static void *alloc2_at(uint64_t flags, size_t n, uint32_t tag, int32_t *status, int line)
{
    poolsim_alloc_req req;
    memset(&req, 0, sizeof req);
    req.routine = POOLSIM_RT_EX_ALLOCATE_POOL2;
    req.type = flags;
    req.size = n;
    req.tag = tag;
    return poolsim_pool_alloc(&req, status, FILE_NAME, line);
}

static void free_at(void *p, uint32_t tag, int line)
{
    poolsim_pool_free(POOLSIM_RT_EX_FREE_POOL_WITH_TAG, p, tag, NULL, 0, FILE_NAME, line);
}

#define ALLOC(type, n, tag) alloc_at((type), (n), (tag), __LINE__)
#define ALLOC2(flags, n, tag, status) alloc2_at((flags), (n), (tag), (status), __LINE__)
#define FREE(p, tag) free_at((p), (tag), __LINE__)

/* A small deterministic generator (xorshift64*), so every run is the same. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* The content of byte i of the block with id `id`. */
static uint8_t pattern(uint32_t id, size_t i)
{
    uint32_t h = (id + 1u) * 2654435761u;
    return (uint8_t)((h >> (8 * (i & 3))) ^ (uint8_t)(i * 7u) ^ (uint8_t)(i >> 8));
}

static void fill(void *p, size_t n, uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        ((uint8_t *)p)[i] = pattern(id, i);
}

static bool intact(const void *p, size_t n, uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (((const uint8_t *)p)[i] != pattern(id, i))
            return false;
    return true;
}

static poolsim_options opts_default(void)
{
    poolsim_options o;
    poolsim_options_default(&o);
    return o;
}

/* Bug checks counted by a handler that returns, for tests that expect
 * several (poolsim_validate reports each damaged block). */
static struct {
    unsigned count;
    poolsim_bugcheck bc[8];
} g_many;

static void count_handler(const poolsim_bugcheck *bc, void *ctx)
{
    (void)ctx;
    if (g_many.count < PSIM_COUNTOF(g_many.bc))
        g_many.bc[g_many.count] = *bc;
    g_many.count++;
}

static void count_begin(void)
{
    memset(&g_many, 0, sizeof g_many);
    poolsim_set_bugcheck_handler(count_handler, NULL);
}

static void count_end(void) { poolsim_cmocka_install_handler(); }

/* ---- Placement (§2.5, §7) -------------------------------------------------------------------- */

static void test_pool_alignment_small(void **state)
{
    static const uint32_t types[] = {NONPAGED, PAGED, NONPAGED_NX};
    static void *blocks[0xFF0 + 1];
    (void)state;
    for (size_t t = 0; t < PSIM_COUNTOF(types); t++) {
        /* Every size, all live at once. */
        for (size_t n = 1; n <= SMALL_MAX; n++) {
            uint8_t *p = (uint8_t *)ALLOC(types[t], n, TAG_X);
            uintptr_t a = (uintptr_t)p;
            assert_non_null(p);
            assert_int_equal(a % GRAN, 0);
            /* Inside one page: the first and last byte share the page. */
            assert_int_equal(a / PAGE, (a + n - 1) / PAGE);
            p[0] = 1;
            p[n - 1] = 2;
            blocks[n] = p;
        }
        for (size_t n = 1; n <= SMALL_MAX; n++) {
            poolsim_block_info info;
            assert_true(poolsim_find_block(blocks[n], &info));
            assert_ptr_equal(info.address, blocks[n]);
            assert_int_equal(info.size, n);
            assert_int_equal(info.pool_type, types[t]);
            assert_int_equal(info.state, POOLSIM_BLOCK_LIVE);
            /* Every slot of every class, from its first byte (its header: not cache-aligned) to the last. */
            assert_true(poolsim_find_block((uint8_t *)blocks[n] - GRAN, &info));
            assert_ptr_equal(info.address, blocks[n]);
            assert_true(poolsim_find_block((uint8_t *)blocks[n] + n - 1, &info));
            assert_ptr_equal(info.address, blocks[n]);
            FREE(blocks[n], TAG_X);
        }
    }
    assert_int_equal(poolsim_validate(), 0);
}

static void test_pool_alignment_big(void **state)
{
    static const size_t sizes[] = {0xFF0 + 1, 0xFF8,  0x1000,  0x1001,  0x1800,   0x1FFF,
                                   0x2000,    0x2001, 0x10000, 0x12345, 0x100000, 0x200000 + 1};
    static const uint32_t types[] = {NONPAGED, PAGED, NONPAGED_NX};
    void *blocks[PSIM_COUNTOF(sizes)];
    (void)state;
    for (size_t t = 0; t < PSIM_COUNTOF(types); t++) {
        for (size_t i = 0; i < PSIM_COUNTOF(sizes); i++) {
            uint8_t *p = (uint8_t *)ALLOC(types[t], sizes[i], TAG_F);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % PAGE, 0);
            p[0] = 0x11;
            p[sizes[i] - 1] = 0x22;
            blocks[i] = p;
        }
        /* The sizes just above the small limit are big pool too. */
        if (sizeof(void *) == 8) {
            uint8_t *p = (uint8_t *)ALLOC(types[t], 0xFE1, TAG_F);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % PAGE, 0);
            FREE(p, TAG_F);
        }
        for (size_t i = 0; i < PSIM_COUNTOF(sizes); i++) {
            poolsim_block_info info;
            uint8_t *p = (uint8_t *)blocks[i];
            assert_true(poolsim_find_block(p + sizes[i] - 1, &info));
            assert_ptr_equal(info.address, p);
            assert_int_equal(info.size, sizes[i]);
            assert_int_equal(p[0], 0x11);
            assert_int_equal(p[sizes[i] - 1], 0x22);
            FREE(p, TAG_F);
        }
    }
    assert_int_equal(poolsim_validate(), 0);
}

/* CacheAligned types and POOL_FLAG_CACHE_ALIGNED: 64 bytes (§2.5, poolsim's choice). */
static void test_pool_alignment_cache(void **state)
{
    static const uint32_t types[] = {NONPAGED_CACHE, PAGED_CACHE, NONPAGED_NX_CACHE};
    static void *blocks[0xFF0 + 1];
    (void)state;
    for (size_t t = 0; t < PSIM_COUNTOF(types) + 2; t++) {
        for (size_t n = 1; n <= SMALL_MAX; n++) {
            uint8_t *p;
            uintptr_t a;
            if (t < PSIM_COUNTOF(types))
                p = (uint8_t *)ALLOC(types[t], n, TAG_X);
            else
                p = (uint8_t *)ALLOC2((t == PSIM_COUNTOF(types) ? PSIM_PF_NON_PAGED : PSIM_PF_PAGED) |
                                          PSIM_PF_CACHE_ALIGNED,
                                      n, TAG_X, NULL);
            a = (uintptr_t)p;
            assert_non_null(p);
            assert_int_equal(a % CACHE_LINE, 0);
            assert_int_equal(a / PAGE, (a + n - 1) / PAGE);
            p[n - 1] = 0x5A;
            blocks[n] = p;
        }
        for (size_t n = 1; n <= SMALL_MAX; n++) {
            poolsim_block_info info;
            uint32_t want = t < PSIM_COUNTOF(types)    ? types[t]
                            : t == PSIM_COUNTOF(types) ? NONPAGED_NX_CACHE
                                                       : PAGED_CACHE;
            assert_true(poolsim_find_block(blocks[n], &info));
            assert_int_equal(info.size, n);
            assert_int_equal(info.pool_type, want);
            FREE(blocks[n], TAG_X);
        }
    }
    /* A big cache-aligned block is page-aligned. */
    {
        void *p = ALLOC(NONPAGED_CACHE, 0x3000, TAG_X);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % PAGE, 0);
        FREE(p, TAG_X);
    }
    assert_int_equal(poolsim_validate(), 0);
}

/* ---- Many blocks ----------------------------------------------------------------------------- */

#define LIVE_SLOTS 3000u
#define RANDOM_OPS 60000u

static void test_pool_random_blocks(void **state)
{
    static const uint32_t types[] = {NONPAGED, PAGED, NONPAGED_NX, NONPAGED_CACHE};
    static const uint32_t tags[] = {TAG_X, TAG_F, TAG4('A', 'b', 'c', '1'), TAG4('Z', 'z', '9', ' ')};
    static struct {
        uint8_t *p;
        size_t n;
        uint32_t id, tag;
    } slot[LIVE_SLOTS];
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    uint32_t next_id = 0;
    uint64_t live = 0, live_bytes = 0;
    (void)state;
    memset(slot, 0, sizeof slot);
    for (unsigned op = 0; op < RANDOM_OPS; op++) {
        unsigned k = (unsigned)(rng_next(&rng) % LIVE_SLOTS);
        if (slot[k].p) {
            assert_true(intact(slot[k].p, slot[k].n, slot[k].id));
            FREE(slot[k].p, slot[k].tag);
            live--;
            live_bytes -= slot[k].n;
            slot[k].p = NULL;
            continue;
        }
        uint64_t r = rng_next(&rng);
        size_t n = (r % 100) < 90   ? 1 + (size_t)((r >> 8) % 512)
                   : (r % 100) < 98 ? 1 + (size_t)((r >> 8) % SMALL_MAX)
                                    : SMALL_MAX + 1 + (size_t)((r >> 8) % 0x5000);
        slot[k].tag = tags[(r >> 40) % PSIM_COUNTOF(tags)];
        slot[k].p = (uint8_t *)ALLOC(types[(r >> 48) % PSIM_COUNTOF(types)], n, slot[k].tag);
        assert_non_null(slot[k].p);
        slot[k].n = n;
        slot[k].id = next_id++;
        fill(slot[k].p, n, slot[k].id);
        live++;
        live_bytes += n;
    }
    /* Every live block still holds its own pattern, and maps to itself. */
    {
        poolsim_stats s;
        poolsim_get_stats(&s);
        assert_int_equal(s.live_blocks, live);
        assert_int_equal(s.nonpaged_bytes + s.paged_bytes, live_bytes);
    }
    assert_true(live > LIVE_SLOTS / 4);
    for (unsigned k = 0; k < LIVE_SLOTS; k++) {
        poolsim_block_info info;
        if (!slot[k].p)
            continue;
        assert_true(intact(slot[k].p, slot[k].n, slot[k].id));
        assert_true(poolsim_find_block(slot[k].p + slot[k].n / 2, &info));
        assert_ptr_equal(info.address, slot[k].p);
        assert_int_equal(info.size, slot[k].n);
        assert_int_equal(info.tag, slot[k].tag);
        assert_true(poolsim_valid_access(slot[k].p, slot[k].n));
    }
    assert_int_equal(poolsim_validate(), 0);
    for (unsigned k = 0; k < LIVE_SLOTS; k++)
        if (slot[k].p)
            FREE(slot[k].p, slot[k].tag);
    {
        poolsim_stats s;
        poolsim_get_stats(&s);
        assert_int_equal(s.live_blocks, 0);
        assert_int_equal(s.nonpaged_bytes, 0);
        assert_int_equal(s.paged_bytes, 0);
        assert_int_equal(s.allocs, s.frees);
    }
}

/* ---- Lookup at the edges --------------------------------------------------------------------- */

static void test_pool_find_block_edges(void **state)
{
    poolsim_block_info info;
    uint8_t *p;
    char local[64];
    void *heap = malloc(64);
    (void)state;
    assert_non_null(heap);

    p = (uint8_t *)alloc_at(NONPAGED, 40, TAG_X, 1000);
    assert_non_null(p);

    /* The block itself, from the out-of-band record. */
    memset(&info, 0xAB, sizeof info);
    assert_true(poolsim_find_block(p, &info));
    assert_ptr_equal(info.address, p);
    assert_int_equal(info.size, 40);
    assert_int_equal(info.tag, TAG_X);
    assert_int_equal(info.pool_type, NONPAGED);
    assert_int_equal(info.state, POOLSIM_BLOCK_LIVE);
    assert_false(info.quota_charged);
    assert_int_not_equal(info.thread, 0);
    assert_int_equal(info.alloc_seq, 1);
    assert_string_equal(info.alloc_site.file, FILE_NAME);
    assert_int_equal(info.alloc_site.line, 1000);
    assert_string_equal(info.alloc_site.routine, "ExAllocatePoolWithTag");
    assert_null(info.free_site.file);
    assert_int_equal(info.free_seq, 0);

    /* Any byte of the slot maps to the block: the last byte, the slack after
     * it and the header before it. */
    assert_true(poolsim_find_block(p + 39, &info));
    assert_ptr_equal(info.address, p);
    assert_true(poolsim_find_block(p + 40, &info));
    assert_ptr_equal(info.address, p);
    assert_true(poolsim_find_block(p - 1, &info));
    assert_ptr_equal(info.address, p);
    assert_true(poolsim_find_block(p - GRAN, &info));
    assert_ptr_equal(info.address, p);
    assert_true(poolsim_find_block(p + 1, NULL));

    /* valid_access: the caller's bytes and nothing else. */
    assert_true(poolsim_valid_access(p, 40));
    assert_true(poolsim_valid_access(p, 1));
    assert_true(poolsim_valid_access(p + 39, 1));
    assert_true(poolsim_valid_access(p + 10, 30));
    assert_false(poolsim_valid_access(p, 41));
    assert_false(poolsim_valid_access(p + 39, 2));
    assert_false(poolsim_valid_access(p + 40, 1));
    assert_false(poolsim_valid_access(p + 41, 1));
    assert_false(poolsim_valid_access(p - 1, 1));
    assert_false(poolsim_valid_access(p - 1, 2));
    assert_false(poolsim_valid_access(p - GRAN, GRAN + 1));
    /* n = 0: an empty range inside the block, or at its end (C's one past). */
    assert_true(poolsim_valid_access(p, 0));
    assert_true(poolsim_valid_access(p + 40, 0));
    assert_false(poolsim_valid_access(p - 1, 0));
    /* n overflowing the address space. */
    assert_false(poolsim_valid_access(p, SIZE_MAX));
    assert_false(poolsim_valid_access(p + 1, SIZE_MAX));
    assert_false(poolsim_valid_access(p + 39, SIZE_MAX));
    assert_false(poolsim_valid_access(p, (size_t)0 - (uintptr_t)p));

    /* Addresses poolsim never handed out. */
    assert_false(poolsim_find_block(NULL, &info));
    assert_null(info.address);
    assert_false(poolsim_valid_access(NULL, 0));
    assert_false(poolsim_valid_access(NULL, 1));
    assert_false(poolsim_find_block(local, &info));
    assert_false(poolsim_valid_access(local, 1));
    assert_false(poolsim_find_block(heap, &info));
    assert_false(poolsim_valid_access(heap, 1));
    assert_false(poolsim_find_block((void *)(uintptr_t)0x1000, &info));
    assert_false(poolsim_valid_access((void *)(uintptr_t)0x1000, 1));

    /* Freed (quarantined by default): found, not accessible. */
    free_at(p, TAG_X, 1001);
    assert_true(poolsim_find_block(p, &info));
    assert_ptr_equal(info.address, p);
    assert_int_equal(info.state, POOLSIM_BLOCK_QUARANTINED);
    assert_int_equal(info.size, 40);
    assert_int_equal(info.alloc_seq, 1);
    assert_int_equal(info.free_seq, 2);
    assert_string_equal(info.free_site.file, FILE_NAME);
    assert_int_equal(info.free_site.line, 1001);
    assert_string_equal(info.free_site.routine, "ExFreePoolWithTag");
    assert_false(poolsim_valid_access(p, 1));
    assert_false(poolsim_valid_access(p, 0));
    /* Its bytes are poisoned. */
    for (size_t i = 0; i < 40; i++)
        assert_int_equal(p[i], PSIM_POISON);
    free(heap);
}

/* Without quarantine a freed slot is RELEASED, and still found while unused. */
static void test_pool_find_block_released(void **state)
{
    poolsim_options o = opts_default();
    poolsim_block_info info;
    uint8_t *a, *b, *c;
    (void)state;
    o.quarantine_bytes = 0;
    poolsim_cmocka_reinit(&o);

    a = (uint8_t *)ALLOC(PAGED, 100, TAG_X);
    b = (uint8_t *)ALLOC(PAGED, 100, TAG_X);
    assert_non_null(a);
    assert_non_null(b);
    FREE(a, TAG_X);
    assert_true(poolsim_find_block(a, &info));
    assert_int_equal(info.state, POOLSIM_BLOCK_RELEASED);
    assert_int_equal(info.free_seq, 3);
    assert_false(poolsim_valid_access(a, 1));
    assert_false(poolsim_valid_access(a, 0));

    /* Freed slots are reused last (FIFO): the next block goes elsewhere and
     * the history of the first one stays. */
    c = (uint8_t *)ALLOC(PAGED, 100, TAG_X);
    assert_non_null(c);
    assert_ptr_not_equal(c, a);
    assert_true(poolsim_find_block(a, &info));
    assert_int_equal(info.state, POOLSIM_BLOCK_RELEASED);
    assert_true(poolsim_valid_access(c, 100));
    FREE(b, TAG_X);
    FREE(c, TAG_X);
}

/* A freed big block without quarantine: the header promises its history
 * stays findable until the pages are reused. */
static void test_pool_find_block_released_big(void **state)
{
    poolsim_options o = opts_default();
    poolsim_block_info info;
    uint8_t *p;
    (void)state;
    o.quarantine_bytes = 0;
    poolsim_cmocka_reinit(&o);
    p = (uint8_t *)ALLOC(NONPAGED, 0x1800, TAG_X);
    assert_non_null(p);
    FREE(p, TAG_X);
    assert_false(poolsim_valid_access(p, 1));
    assert_true(poolsim_find_block(p, &info));
    assert_int_equal(info.state, POOLSIM_BLOCK_RELEASED);
    assert_int_equal(info.size, 0x1800);
    /* And a second free is a double free naming it, not an unknown address. */
    expect_bugcheck(0xC4, 0x13, FREE(p, TAG_X));
    assert_true(poolsim_cmocka_last()->has_block);
    assert_ptr_equal(poolsim_cmocka_last()->block.address, p);
}

/* ---- Guards (§1.1, §1.4, §2.7) --------------------------------------------------------------- */

typedef struct guard_case {
    uint32_t type;
    size_t size;
} guard_case;

static const guard_case g_guard_cases[] = {
    {NONPAGED, 13}, /* slack between the size and the granule */
    {NONPAGED, 32}, /* a multiple of 16: straight into the footer */
    {PAGED, 13},        {PAGED, 32},     {NONPAGED, 1},   {NONPAGED_NX, 0xFE0 - 1},
    {NONPAGED, 0x1000}, /* big: page-sized */
    {NONPAGED, 0x1800}, {PAGED, 0x1000}, {PAGED, 0x1800}, {NONPAGED_CACHE, 40},
};

/* Writing every requested byte, the last one included, is legal. */
static void test_pool_guard_last_byte_is_legal(void **state)
{
    (void)state;
    for (size_t i = 0; i < PSIM_COUNTOF(g_guard_cases); i++) {
        const guard_case *gc = &g_guard_cases[i];
        uint8_t *p = (uint8_t *)ALLOC(gc->type, gc->size, TAG_X);
        assert_non_null(p);
        memset(p, 0xEE, gc->size);
        p[gc->size - 1] ^= 0xFF;
        assert_int_equal(poolsim_validate(), 0);
        expect_no_bugcheck(FREE(p, TAG_X));
    }
}

/* Damages byte p[off] of a fresh block, checks free raises `code`/`sub`, then
 * repairs it and frees cleanly. Returns the bug check; *word receives the
 * aligned 8 bytes holding the damaged byte as they were at the free. */
static poolsim_bugcheck guard_hit_word(const guard_case *gc, ptrdiff_t off, unsigned long code, uintptr_t sub,
                                       uint64_t *word)
{
    uint8_t *p = (uint8_t *)ALLOC(gc->type, gc->size, TAG_X);
    uint8_t saved;
    poolsim_bugcheck bc;
    poolsim_block_info info;
    assert_non_null(p);
    memset(p, 0x42, gc->size);
    saved = p[off];
    p[off] = (uint8_t)(saved ^ 0x5A);
    expect_bugcheck(code, sub, FREE(p, TAG_X));
    bc = *poolsim_cmocka_last();
    memcpy(word, (const void *)((uintptr_t)(p + off) & ~(uintptr_t)7), 8);
    /* The free did nothing: the block is still live. */
    assert_true(poolsim_find_block(p, &info));
    assert_int_equal(info.state, POOLSIM_BLOCK_LIVE);
    /* The bug check names the block and the damage. */
    assert_true(bc.has_block);
    assert_ptr_equal(bc.block.address, p);
    assert_int_equal(bc.block.size, gc->size);
    assert_int_equal(bc.block.tag, TAG_X);
    assert_int_equal(bc.block.state, POOLSIM_BLOCK_LIVE);
    assert_int_equal(bc.damage[0].count, 1);
    assert_ptr_equal(bc.damage[0].first, p + off);
    assert_int_equal(bc.damage[0].offset, off);
    assert_int_equal(bc.damage[0].found[0], (uint8_t)(saved ^ 0x5A));
    assert_int_equal(bc.damage[0].expected[0], saved);
    assert_int_equal(bc.damage[1].kind, 0);
    /* Repaired, it frees without a word. */
    p[off] = saved;
    expect_no_bugcheck(FREE(p, TAG_X));
    return bc;
}

static poolsim_bugcheck guard_hit(const guard_case *gc, ptrdiff_t off, unsigned long code, uintptr_t sub)
{
    uint64_t word;
    return guard_hit_word(gc, off, code, sub, &word);
}

static void test_pool_guard_overrun_verifier(void **state)
{
    (void)state;
    for (size_t i = 0; i < PSIM_COUNTOF(g_guard_cases); i++) {
        const guard_case *gc = &g_guard_cases[i];
        poolsim_bugcheck bc = guard_hit(gc, (ptrdiff_t)gc->size, 0xC4, 0x51);
        /* C4/0x51: allocation base, address of the bad byte, charged bytes. */
        assert_ptr_equal((void *)bc.param[1], bc.block.address);
        assert_int_equal(bc.param[2], (uintptr_t)bc.block.address + gc->size);
        assert_int_equal(bc.param[3], gc->size);
        assert_int_equal(bc.damage[0].kind, POOLSIM_DAMAGE_OVERRUN);
    }
}

static void test_pool_guard_underrun_verifier(void **state)
{
    (void)state;
    for (size_t i = 0; i < PSIM_COUNTOF(g_guard_cases); i++) {
        const guard_case *gc = &g_guard_cases[i];
        poolsim_bugcheck bc = guard_hit(gc, -1, 0xC4, 0x53);
        /* C4/0x53: allocation base, header, reserved. */
        assert_ptr_equal((void *)bc.param[1], bc.block.address);
        assert_int_equal(bc.param[2], (uintptr_t)bc.block.address - GRAN);
        assert_int_equal(bc.param[3], 0);
        assert_int_equal(bc.damage[0].kind, POOLSIM_DAMAGE_UNDERRUN);
    }
}

/* The imitation POOL_HEADER of a small block (§7) is checked too: its tag
 * and its BlockSize byte. */
static void test_pool_guard_header_fields(void **state)
{
    static const guard_case small = {NONPAGED, 24};
    poolsim_bugcheck bc;
    (void)state;
    bc = guard_hit(&small, -(ptrdiff_t)GRAN + 4, 0xC4, 0x53); /* PoolTag, first byte */
    assert_int_equal(bc.damage[0].offset, -(ptrdiff_t)GRAN + 4);
    bc = guard_hit(&small, -(ptrdiff_t)GRAN + 2, 0xC4, 0x53); /* BlockSize */
    assert_int_equal(bc.param[2], (uintptr_t)bc.block.address - GRAN);
}

/* The first bad byte is named even when the next ones are bad too, and a
 * write further out is found where it landed. */
static void test_pool_guard_first_bad_byte(void **state)
{
    uint8_t *p = (uint8_t *)ALLOC(NONPAGED, 20, TAG_X);
    uint8_t s3, s5;
    const poolsim_bugcheck *bc;
    (void)state;
    assert_non_null(p);
    s3 = p[23];
    s5 = p[25];
    p[23] ^= 1;
    p[25] ^= 1;
    expect_bugcheck(0xC4, 0x51, FREE(p, TAG_X));
    bc = poolsim_cmocka_last();
    assert_int_equal(bc->param[2], (uintptr_t)(p + 23));
    assert_int_equal(bc->param[3], 20);
    assert_int_equal(bc->damage[0].count, 2);
    assert_int_equal(bc->damage[0].offset, 23);
    p[23] = s3;
    p[25] = s5;
    /* Both sides at once: the underrun is first, the overrun second (KFENCE). */
    p[-1] ^= 0x80;
    p[20] ^= 0x80;
    expect_bugcheck(0xC4, 0x53, FREE(p, TAG_X));
    bc = poolsim_cmocka_last();
    assert_int_equal(bc->damage[0].kind, POOLSIM_DAMAGE_UNDERRUN);
    assert_int_equal(bc->damage[0].offset, -1);
    assert_int_equal(bc->damage[1].kind, POOLSIM_DAMAGE_OVERRUN);
    assert_int_equal(bc->damage[1].offset, 20);
    p[-1] ^= 0x80;
    p[20] ^= 0x80;
    expect_no_bugcheck(FREE(p, TAG_X));
}

static void test_pool_guard_retail(void **state)
{
    poolsim_options o = opts_default();
    (void)state;
    o.family = POOLSIM_FAMILY_RETAIL;
    poolsim_cmocka_reinit(&o);
    for (size_t i = 0; i < PSIM_COUNTOF(g_guard_cases); i++) {
        const guard_case *gc = &g_guard_cases[i];
        uint64_t word;
        poolsim_bugcheck bc = guard_hit_word(gc, (ptrdiff_t)gc->size, 0x19, 0x21, &word);
        /* 0x19/0x21: pointer being freed, bytes allocated, the corrupted value
         * (the aligned 8 bytes holding the first bad byte, as found). */
        assert_ptr_equal((void *)bc.param[1], bc.block.address);
        assert_int_equal(bc.param[2], gc->size);
        assert_int_equal(bc.param[3], (uintptr_t)word);

        bc = guard_hit(gc, -1, 0x19, 0x07);
        /* 0x19/0x07: 0, reserved, bad entry (the header). */
        assert_int_equal(bc.param[1], 0);
        assert_int_equal(bc.param[2], 0);
        assert_int_equal(bc.param[3], (uintptr_t)bc.block.address - GRAN);
    }
}

/* With guards off nothing around a block is checked. */
static void test_pool_guard_off(void **state)
{
    poolsim_options o = opts_default();
    uint8_t *p;
    (void)state;
    o.guards = 0;
    poolsim_cmocka_reinit(&o);
    p = (uint8_t *)ALLOC(NONPAGED, 13, TAG_X);
    assert_non_null(p);
    p[13] ^= 0xFF;
    assert_int_equal(poolsim_validate(), 0);
    expect_no_bugcheck(FREE(p, TAG_X));
}

/* ---- poolsim_validate ------------------------------------------------------------------------ */

static void test_pool_validate_counts(void **state)
{
    uint8_t *blk[5];
    static const size_t sizes[5] = {10, 48, 0x1800, 200, 64};
    uint8_t s0, s1, s2;
    (void)state;
    for (int i = 0; i < 5; i++) {
        blk[i] = (uint8_t *)ALLOC(i & 1 ? PAGED : NONPAGED, sizes[i], TAG_X);
        assert_non_null(blk[i]);
    }
    assert_int_equal(poolsim_validate(), 0);

    s0 = blk[0][10];
    s1 = *(blk[1] - 3);
    s2 = blk[2][0x1800];
    blk[0][10] ^= 1;     /* overrun into the slack */
    *(blk[1] - 3) ^= 1;  /* underrun into the header */
    blk[2][0x1800] ^= 1; /* big block overrun */

    count_begin();
    assert_int_equal(poolsim_validate(), 3);
    count_end();
    assert_int_equal(g_many.count, 3);
    /* One report per damaged block, each with its block (order: arena walk). */
    {
        bool seen[3] = {false, false, false};
        for (unsigned i = 0; i < 3; i++) {
            const poolsim_bugcheck *bc = &g_many.bc[i];
            assert_int_equal(bc->code, 0xC4);
            assert_true(bc->has_block);
            assert_string_equal(bc->site.routine, "poolsim_validate");
            if (bc->block.address == blk[0]) {
                assert_int_equal(bc->param[0], 0x51);
                assert_int_equal(bc->param[2], (uintptr_t)(blk[0] + 10));
                seen[0] = true;
            } else if (bc->block.address == blk[1]) {
                assert_int_equal(bc->param[0], 0x53);
                seen[1] = true;
            } else if (bc->block.address == blk[2]) {
                assert_int_equal(bc->param[0], 0x51);
                assert_int_equal(bc->param[3], 0x1800);
                seen[2] = true;
            }
        }
        assert_true(seen[0] && seen[1] && seen[2]);
    }
    /* Validation reports; it does not repair or free. A second pass finds the same. */
    count_begin();
    assert_int_equal(poolsim_validate(), 3);
    count_end();
    assert_int_equal(g_many.count, 3);

    blk[0][10] = s0;
    *(blk[1] - 3) = s1;
    blk[2][0x1800] = s2;
    expect_no_bugcheck(assert_int_equal(poolsim_validate(), 0));
    for (int i = 0; i < 5; i++)
        FREE(blk[i], TAG_X);
    assert_int_equal(poolsim_validate(), 0);
}

/* A quarantined block written after its free is damaged too (§1.8: C6). */
static void test_pool_validate_quarantine(void **state)
{
    uint8_t *p = (uint8_t *)ALLOC(NONPAGED, 64, TAG_X);
    (void)state;
    assert_non_null(p);
    FREE(p, TAG_X);
    assert_int_equal(poolsim_validate(), 0);
    p[5] = 0;
    count_begin();
    assert_int_equal(poolsim_validate(), 1);
    count_end();
    assert_int_equal(g_many.count, 1);
    assert_int_equal(g_many.bc[0].code, 0xC6);
    assert_int_equal(g_many.bc[0].param[0], (uintptr_t)(p + 5));
    assert_int_equal(g_many.bc[0].param[1], 1);
    assert_int_equal(g_many.bc[0].damage[0].kind, POOLSIM_DAMAGE_AFTER_FREE);
    assert_int_equal(g_many.bc[0].block.state, POOLSIM_BLOCK_QUARANTINED);
    p[5] = PSIM_POISON;
    assert_int_equal(poolsim_validate(), 0);
}

/* ---- Threads
 * ------------------------------------------------------------------------------------------------ */

#define THREAD_BLOCKS 100000u
#define THREAD_RING 64u

typedef struct thread_job {
    uint32_t tag;
    uint64_t seed;
    /* What the thread expects the tag's counters to say. */
    uint64_t allocs[2], peak[2];
    unsigned errors;
} thread_job;

static void thread_body(thread_job *job)
{
    struct {
        uint8_t *p;
        size_t n;
        unsigned pool;
    } ring[THREAD_RING];
    uint64_t bytes[2] = {0, 0};
    uint64_t rng = job->seed;
    memset(ring, 0, sizeof ring);
    for (uint32_t i = 0; i < THREAD_BLOCKS; i++) {
        unsigned k = (unsigned)(rng_next(&rng) % THREAD_RING);
        uint64_t r = rng_next(&rng);
        if (ring[k].p) {
            if (ring[k].p[0] != (uint8_t)job->tag ||
                (ring[k].n > 1 && ring[k].p[ring[k].n - 1] != (uint8_t)(job->tag >> 8)))
                job->errors++;
            free_at(ring[k].p, job->tag, 77);
            bytes[ring[k].pool] -= ring[k].n;
            ring[k].p = NULL;
        }
        ring[k].pool = (unsigned)(r & 1);
        ring[k].n = (r >> 8) % 1000 == 0 ? 0x1800 : 1 + (size_t)((r >> 16) % 700);
        ring[k].p = (uint8_t *)alloc_at(ring[k].pool ? PAGED : NONPAGED_NX, ring[k].n, job->tag, 76);
        if (!ring[k].p) {
            job->errors++;
            continue;
        }
        ring[k].p[ring[k].n - 1] = (uint8_t)(job->tag >> 8);
        ring[k].p[0] = (uint8_t)job->tag;
        job->allocs[ring[k].pool]++;
        bytes[ring[k].pool] += ring[k].n;
        if (bytes[ring[k].pool] > job->peak[ring[k].pool])
            job->peak[ring[k].pool] = bytes[ring[k].pool];
    }
    for (unsigned k = 0; k < THREAD_RING; k++)
        if (ring[k].p)
            free_at(ring[k].p, job->tag, 78);
}

#ifdef _WIN32
static DWORD WINAPI thread_main(LPVOID arg)
{
    thread_body((thread_job *)arg);
    return 0;
}
#else
static void *thread_main(void *arg)
{
    thread_body((thread_job *)arg);
    return NULL;
}
#endif

static void test_pool_threads(void **state)
{
    thread_job jobs[2];
    (void)state;
    memset(jobs, 0, sizeof jobs);
    jobs[0].tag = TAG4('T', 'h', 'r', '1');
    jobs[0].seed = 0x1234567887654321ull;
    jobs[1].tag = TAG4('T', 'h', 'r', '2');
    jobs[1].seed = 0x0F1E2D3C4B5A6978ull;
#ifdef _WIN32
    {
        HANDLE h[2];
        for (int i = 0; i < 2; i++) {
            h[i] = CreateThread(NULL, 0, thread_main, &jobs[i], 0, NULL);
            assert_non_null(h[i]);
        }
        for (int i = 0; i < 2; i++) {
            assert_int_equal(WaitForSingleObject(h[i], INFINITE), WAIT_OBJECT_0);
            CloseHandle(h[i]);
        }
    }
#else
    {
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&th[i], NULL, thread_main, &jobs[i]), 0);
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_join(th[i], NULL), 0);
    }
#endif
    for (int i = 0; i < 2; i++) {
        poolsim_tag_usage_t u;
        assert_int_equal(jobs[i].errors, 0);
        assert_true(poolsim_tag_usage(jobs[i].tag, &u));
        assert_int_equal(u.nonpaged.allocs, jobs[i].allocs[0]);
        assert_int_equal(u.paged.allocs, jobs[i].allocs[1]);
        assert_int_equal(u.nonpaged.allocs + u.paged.allocs, THREAD_BLOCKS);
        assert_int_equal(u.nonpaged.frees, jobs[i].allocs[0]);
        assert_int_equal(u.paged.frees, jobs[i].allocs[1]);
        assert_int_equal(u.nonpaged.bytes, 0);
        assert_int_equal(u.paged.bytes, 0);
        assert_int_equal(u.nonpaged.peak_bytes, jobs[i].peak[0]);
        assert_int_equal(u.paged.peak_bytes, jobs[i].peak[1]);
        assert_int_equal(u.nonpaged.failed, 0);
        assert_int_equal(u.paged.failed, 0);
    }
    {
        poolsim_stats s;
        poolsim_get_stats(&s);
        assert_int_equal(s.allocs, 2 * THREAD_BLOCKS);
        assert_int_equal(s.frees, 2 * THREAD_BLOCKS);
        assert_int_equal(s.failed, 0);
        assert_int_equal(s.live_blocks, 0);
        assert_true(s.peak_blocks >= THREAD_RING && s.peak_blocks <= 2 * THREAD_RING);
        assert_int_equal(s.nonpaged_bytes, 0);
        assert_int_equal(s.paged_bytes, 0);
        assert_int_equal(s.tags, 2);
        assert_int_equal(s.bugchecks, 0);
    }
    assert_int_equal(poolsim_validate(), 0);
}

/* Threads are spread over shards by id: consecutive ids (Linux numbers threads one by one) and ids four apart
 * (Windows) never share a shard, so two threads started together never take one lock (the first hash, bits
 * 16-18 of id * 0x9E3779B1, put about half of all id pairs t, t + 1 in one shard). */
static void test_pool_shards_spread(void **state)
{
    unsigned seen[POOLSIM_SHARDS] = {0};
    (void)state;
    for (uint32_t t = 1; t < 200000; t++) {
        assert_int_not_equal(poolsim__shard_of_thread(t), poolsim__shard_of_thread(t + 1));
        assert_int_not_equal(poolsim__shard_of_thread(4 * t), poolsim__shard_of_thread(4 * t + 4));
        assert_true(poolsim__shard_of_thread(t) < POOLSIM_SHARDS);
        seen[poolsim__shard_of_thread(t)]++;
    }
    for (unsigned i = 0; i < POOLSIM_SHARDS; i++) { /* and evenly: each within 1 % of its share */
        assert_true(seen[i] > 199999u / POOLSIM_SHARDS * 99 / 100);
        assert_true(seen[i] < 199999u / POOLSIM_SHARDS * 101 / 100);
    }
}

/* A page of one slot (blocks above 2 KiB) whose block is freed stays on its own class's list, the largest
 * class (a whole page) included: without quarantine the next block of that size takes the same slot (a
 * page-sized slot was filed under class 0, an 8-bit field, so the next one took a new page and the old
 * one stayed where no allocation looks). */
static void test_pool_slab_class_reused(void **state)
{
    static const size_t sizes[] = {2100, 4000, 0xFE0}; /* 0xFE0: the largest small block */
    poolsim_options o = opts_default();
    (void)state;
    o.quarantine_bytes = 0;
    poolsim_cmocka_reinit(&o);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int pool = 0; pool < 2; pool++) {
            uint32_t type = pool ? PAGED : NONPAGED_NX;
            void *p = ALLOC(type, sizes[i], TAG_X), *q;
            assert_non_null(p);
            assert_int_not_equal((uintptr_t)p % PAGE, 0); /* a small block, after its header */
            FREE(p, TAG_X);
            q = ALLOC(type, sizes[i], TAG_X);
            assert_ptr_equal(q, p);
            FREE(q, TAG_X);
        }
    assert_int_equal(poolsim_validate(), 0);
}

/* A page handed out again keeps its record array when the new class has as many slots, cleared: no slot
 * answers with the history of the page's last use. 1000-byte blocks and 900-byte ones both take 4 slots a
 * page; the chunk is used up first, since untouched pages go before freed ones. */
static void test_pool_reused_page_records_cleared(void **state)
{
    static void *blocks[POOLSIM_CHUNK_PAGES * 4];
    poolsim_options o = opts_default();
    poolsim_block_info info;
    (void)state;
    o.quarantine_bytes = 0;
    poolsim_cmocka_reinit(&o);
    for (size_t i = 0; i < PSIM_COUNTOF(blocks); i++)
        assert_non_null(blocks[i] = ALLOC(NONPAGED, 1000, TAG_X));
    uintptr_t page1 = (uintptr_t)blocks[4] & ~(uintptr_t)(PAGE - 1);
    assert_int_equal((uintptr_t)blocks[7] & ~(uintptr_t)(PAGE - 1), page1);
    for (size_t i = 0; i < 8; i++) /* page 0 stays its class's empty page, page 1 goes back to the runs */
        FREE(blocks[i], TAG_X);
    assert_true(poolsim_find_block(blocks[5], &info));
    assert_int_equal(info.state, POOLSIM_BLOCK_RELEASED);
    void *q = ALLOC(NONPAGED, 900, TAG_X);
    assert_int_equal((uintptr_t)q & ~(uintptr_t)(PAGE - 1), page1);
    assert_false(poolsim_find_block(blocks[5], &info)); /* the new class's slot 1, never used */
    assert_true(poolsim_find_block(blocks[1], &info));  /* page 0 keeps its history */
    assert_int_equal(info.state, POOLSIM_BLOCK_RELEASED);
    FREE(q, TAG_X);
    for (size_t i = 8; i < PSIM_COUNTOF(blocks); i++)
        FREE(blocks[i], TAG_X);
    assert_int_equal(poolsim_validate(), 0);
}

/* Each shard's share of a tag's and of a site's counters has a cache line of its own, so two threads
 * counting one tag or one site never write the same line (they did: the rows sat 40 and 72 bytes into
 * 16-aligned memory, two shards to a line). */
static void test_pool_counters_own_lines(void **state)
{
    const psim *ps = poolsim__g;
    void *p;
    (void)state;
    p = ALLOC(0, 64, TAG4('L', 'i', 'n', 'e'));
    assert_non_null(p);
    {
        const psim_tagent *e = poolsim__tag_find(ps, TAG4('L', 'i', 'n', 'e'));
        const psim_site *site = poolsim__site_at(ps, 1);
        assert_non_null(e);
        assert_non_null(site);
        for (unsigned i = 0; i < POOLSIM_SHARDS; i++) {
            assert_int_equal((uintptr_t)&e->c[i][0] % 64, 0);
            assert_int_equal((uintptr_t)&site->c[i] % 64, 0);
        }
    }
    FREE(p, TAG4('L', 'i', 'n', 'e'));
}

/* ---- Statistics
 * ------------------------------------------------------------------------------------------------ */

static void test_pool_stats_exact(void **state)
{
    poolsim_stats s;
    void *a, *b, *c, *d;
    int32_t status = 0;
    (void)state;
    poolsim_get_stats(&s);
    assert_int_equal(s.allocs, 0);
    assert_int_equal(s.live_blocks, 0);
    assert_int_equal(s.tags, 0);
    assert_int_equal(s.sites, 0);
    assert_int_equal(s.arena_bytes, 0);
    assert_true(s.meta_bytes > 0);

    a = alloc_at(NONPAGED, 100, TAG_X, 1);
    b = alloc_at(PAGED, 200, TAG_X, 2);
    c = alloc_at(NONPAGED_NX, 50, TAG_F, 3);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    free_at(a, TAG_X, 4);
    d = alloc_at(PAGED, 0x2000, TAG_F, 5);
    assert_non_null(d);
    free_at(b, TAG_X, 6);
    /* Two pool kinds at once: refused, counted as failed, no bug check (§2.4). */
    assert_null(alloc2_at(PSIM_PF_NON_PAGED | PSIM_PF_PAGED, 10, TAG_X, &status, 7));
    assert_int_equal(status, 0);
    assert_null(
        alloc2_at(PSIM_PF_NON_PAGED | PSIM_PF_PAGED | PSIM_PF_RAISE_ON_FAILURE, 10, TAG_X, &status, 8));
    assert_int_equal(status, PSIM_STATUS_INSUFFICIENT_RESOURCES);

    poolsim_get_stats(&s);
    assert_int_equal(s.allocs, 4);
    assert_int_equal(s.frees, 2);
    assert_int_equal(s.failed, 2);
    assert_int_equal(s.live_blocks, 2);
    assert_int_equal(s.peak_blocks, 3);
    assert_int_equal(s.nonpaged_bytes, 50);
    assert_int_equal(s.peak_nonpaged_bytes, 150);
    assert_int_equal(s.paged_bytes, 0x2000);
    assert_int_equal(s.peak_paged_bytes, 200 + 0x2000);
    assert_int_equal(s.bugchecks, 0);
    assert_int_equal(s.tags, 2);
    /* Sites: allocations at lines 1, 2, 3, 5 and frees at 4 and 6 (the
     * refused requests record none). */
    assert_int_equal(s.sites, 6);
    assert_true(s.arena_bytes > 0);
    assert_int_equal(s.arena_bytes % PAGE, 0);
    assert_true(s.meta_bytes > 0);

    free_at(c, TAG_F, 9);
    free_at(d, TAG_F, 10);
    poolsim_get_stats(&s);
    assert_int_equal(s.allocs, 4);
    assert_int_equal(s.frees, 4);
    assert_int_equal(s.live_blocks, 0);
    assert_int_equal(s.peak_blocks, 3);
    assert_int_equal(s.nonpaged_bytes, 0);
    assert_int_equal(s.paged_bytes, 0);
    assert_int_equal(s.peak_nonpaged_bytes, 150);
    assert_int_equal(s.peak_paged_bytes, 200 + 0x2000);
    assert_int_equal(s.sites, 8);

    /* A bug check is counted in the totals. */
    expect_bugcheck(0xC4, 0x00, alloc_at(NONPAGED, 0, TAG_X, 11));
    poolsim_get_stats(&s);
    assert_int_equal(s.bugchecks, 1);
    assert_int_equal(s.failed, 3);
    assert_int_equal(s.allocs, 4);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, poolsim_cmocka_setup, poolsim_cmocka_teardown)
    const struct CMUnitTest tests[] = {
        T(test_pool_alignment_small),
        T(test_pool_alignment_big),
        T(test_pool_alignment_cache),
        T(test_pool_random_blocks),
        T(test_pool_find_block_edges),
        T(test_pool_find_block_released),
        T(test_pool_find_block_released_big),
        T(test_pool_guard_last_byte_is_legal),
        T(test_pool_guard_overrun_verifier),
        T(test_pool_guard_underrun_verifier),
        T(test_pool_guard_header_fields),
        T(test_pool_guard_first_bad_byte),
        T(test_pool_guard_retail),
        T(test_pool_guard_off),
        T(test_pool_validate_counts),
        T(test_pool_validate_quarantine),
        T(test_pool_threads),
        T(test_pool_shards_spread),
        T(test_pool_slab_class_reused),
        T(test_pool_reused_page_records_cleared),
        T(test_pool_counters_own_lines),
        T(test_pool_stats_exact),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
