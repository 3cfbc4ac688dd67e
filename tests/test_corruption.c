/* SPDX-License-Identifier: MIT */
/*
 * test_corruption.c — the corruption matrix. For small blocks (40 bytes, with
 * slack; 48 bytes, footer right after) and big ones (0x1000, 0x1800: no in-band
 * header, a guard page before them), in NonPagedPoolNx and PagedPool, in the
 * verifier and the retail family, every way a driver corrupts the pool is
 * reported with the exact code and Arg1..Arg4 of docs/semantics.md, names the
 * right block (address, size, tag, pool, state, sites), describes the damaged
 * bytes, and fires exactly once: overruns into the slack and the footer,
 * underruns and header smashes, writes after free (found by poolsim_validate,
 * on eviction from the quarantine and at shutdown), double frees, and frees of
 * interior, misaligned, foreign, stack, static and NULL pointers. Every case
 * has its legal twin, which must not report (wdk-semantics.md §1.1, §1.2,
 * §1.4, §1.8, §1.9, §2.7; KFENCE's "both directions"). Then the edges of
 * poolsim_valid_access and poolsim_find_block, random damage to every in-band
 * guard byte of many blocks, the !pool report, and MemCheck's switches.
 *
 * A free that reports does nothing (the handler returns), so every case puts
 * the damaged bytes back from a snapshot and then frees the block cleanly:
 * that is also the proof that the report came from those bytes alone.
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

/* ---- Constants (docs/semantics.md: Allocation, Guards, Quarantine) --------------- */

#define TAG ((ULONG)'gaTX') /* displays as "XTag" (§2.6) */
#define TAG_TEXT "XTag"
#define GRAN (2 * sizeof(void *))                         /* §2.5: 16 on 64-bit */
#define SMALL_MAX (sizeof(void *) == 8 ? 0xFE0u : 0xFF0u) /* §2.5, §7: above is big pool */
#define PAGE ((size_t)PAGE_SIZE)
#define BIG_GUARD 256u /* canary bytes at the end of a big block's guard page */
#define POISON 0xDDu   /* a quarantined block's bytes */
#define WAF_BYTE 0x41u /* what the "driver" writes after free */
#define U(p) ((uintptr_t)(p))

/* ---- Checks that name the matrix case ---------------------------------------------- */

/* The matrix case running now; cleared when a test finishes its matrix, so the
 * teardown can say where a failed test stopped. */
static char g_case[160];
/* Bug-check cases asserted (for the summary line). */
static unsigned long g_ncases;

static void check_true_(int ok, const char *what, const char *file, int line)
{
    if (ok)
        return;
    print_error("%s:%d: [%s] check failed: %s\n", file, line, g_case[0] ? g_case : "-", what);
    _fail(file, line);
}

static void check_eq_(unsigned long long a, unsigned long long b, const char *sa, const char *sb,
                      const char *file, int line)
{
    if (a == b)
        return;
    print_error("%s:%d: [%s] %s is 0x%llx, expected %s = 0x%llx\n", file, line, g_case[0] ? g_case : "-", sa,
                a, sb, b);
    _fail(file, line);
}

static void check_str_(const char *s, const char *want, const char *what, const char *file, int line)
{
    if (s != NULL && strcmp(s, want) == 0)
        return;
    print_error("%s:%d: [%s] %s is \"%s\", expected \"%s\"\n", file, line, g_case[0] ? g_case : "-", what,
                s ? s : "(null)", want);
    _fail(file, line);
}

#define CHECK(cond) check_true_((cond) ? 1 : 0, #cond, __FILE__, __LINE__)
#define CHECK_EQ(a, b) check_eq_((unsigned long long)(a), (unsigned long long)(b), #a, #b, __FILE__, __LINE__)
#define CHECK_STR(s, want) check_str_((s), (want), #s, __FILE__, __LINE__)

/* The statement raises exactly one bug check, `code` with Arg1 `arg1`, and
 * poolsim counted exactly one. */
#define EXPECT_ONE(code, arg1, ...)                                                                          \
    do {                                                                                                     \
        uint64_t before_ = poolsim_bugcheck_count();                                                         \
        expect_bugcheck_continue((code), (arg1), __VA_ARGS__);                                               \
        CHECK_EQ(poolsim_bugcheck_count() - before_, 1);                                                     \
        g_ncases++;                                                                                          \
    } while (0)

/* The statement raises no bug check at all. */
#define EXPECT_NONE(...)                                                                                     \
    do {                                                                                                     \
        uint64_t before_ = poolsim_bugcheck_count();                                                         \
        expect_no_bugcheck(__VA_ARGS__);                                                                     \
        CHECK_EQ(poolsim_bugcheck_count() - before_, 0);                                                     \
    } while (0)

static const poolsim_bugcheck *last(void)
{
    const poolsim_bugcheck *bc = poolsim_cmocka_last();
    CHECK(bc != NULL);
    return bc;
}

/* ---- Call sites ---------------------------------------------------------------------- */

/* Each routine is called from one line, so reports can be checked for it. */
static int g_line_alloc, g_line_free, g_line_free2, g_line_free0;

static uint8_t *alloc_n(POOL_TYPE pool, size_t n)
{
    uint8_t *p;
    g_line_alloc = __LINE__ + 1;
    p = (uint8_t *)ExAllocatePoolWithTag(pool, n, TAG);
    CHECK(p != NULL);
    if (p != NULL)
        memset(p, 0x5A, n);
    return p;
}

static void do_free(void *p)
{ /* ExFreePoolWithTag */
    g_line_free = __LINE__ + 1;
    ExFreePoolWithTag(p, TAG);
}

static void do_free2(void *p)
{ /* ExFreePool2 */
    g_line_free2 = __LINE__ + 1;
    ExFreePool2(p, TAG, NULL, 0);
}

static void do_free0(void *p)
{ /* ExFreePool: no tag */
    g_line_free0 = __LINE__ + 1;
    ExFreePool(p);
}

/* Frees that must not report (each in a function of its own: the setjmp of
 * expect_no_bugcheck stays away from the callers' locals). */
static void free_clean(void *p) { EXPECT_NONE(do_free(p)); }
static void free2_clean(void *p) { EXPECT_NONE(do_free2(p)); }
static void free0_clean(void *p) { EXPECT_NONE(do_free0(p)); }

static size_t validate_clean(void)
{
    size_t bad = 0;
    uint64_t before = poolsim_bugcheck_count();
    bad = poolsim_validate();
    CHECK_EQ(bad, 0);
    CHECK_EQ(poolsim_bugcheck_count() - before, 0);
    CHECK_EQ(poolsim_cmocka_unexpected(), 0);
    return bad;
}

static void check_site(const poolsim_bugcheck *bc, int line, const char *routine)
{
    CHECK(bc->site.file != NULL && strcmp(bc->site.file, __FILE__) == 0);
    CHECK_EQ(bc->site.line, line);
    CHECK_STR(bc->site.routine, routine);
}

/* Reports found by a scan (validate, eviction, shutdown) have no file:line. */
static void check_scan_site(const poolsim_bugcheck *bc, const char *routine)
{
    CHECK(bc->site.file == NULL);
    CHECK_STR(bc->site.routine, routine);
}

/* ---- The matrix ------------------------------------------------------------------------ */

typedef struct mx {
    size_t size;
    POOL_TYPE pool;
    uint32_t family;
} mx;

static const size_t mx_sizes[] = {40, 48, 0x1000, 0x1800};
static const POOL_TYPE mx_pools[] = {NonPagedPoolNx, PagedPool};
static const uint32_t mx_families[] = {POOLSIM_FAMILY_VERIFIER, POOLSIM_FAMILY_RETAIL};

static bool is_big(size_t n) { return n > SMALL_MAX; }
static bool mx_big(const mx *m) { return is_big(m->size); }
static bool verifier(const mx *m) { return m->family == POOLSIM_FAMILY_VERIFIER; }
static size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

/* Guard bytes before the block: the header (small) or the canaries at the end
 * of the guard page (big). */
static size_t guard_before(size_t n) { return is_big(n) ? BIG_GUARD : GRAN; }

static poolsim_options g_opts; /* of the running matrix instance */

/* Offset from the block of one past its last guarded byte: the slot end,
 * [header][bytes][footer_bytes or more, to GRAN], or the end of the page run. */
static size_t guard_end(size_t n)
{
    return is_big(n) ? round_up(n + GRAN, PAGE) : round_up(n + g_opts.footer_bytes, GRAN);
}

/* A footer byte: the footer's first byte (small: footer_bytes before the slot
 * end), or the last of the GRAN bytes of slack every big block has. */
static size_t footer_first(size_t n) { return is_big(n) ? n + GRAN - 1 : guard_end(n) - g_opts.footer_bytes; }

static uint8_t *mx_alloc(const mx *m) { return alloc_n(m->pool, m->size); }

/* A fresh instance with the matrix options (after a case shut it down). */
static void mx_restart(void) { poolsim_cmocka_reinit(&g_opts); }

typedef void mx_fn(const mx *m);

/* Runs fn once per (size, pool, family), each on a fresh instance made from
 * base (NULL: the defaults) with the case's family. */
static void run_matrix(mx_fn *fn, const poolsim_options *base)
{
    for (size_t s = 0; s < sizeof mx_sizes / sizeof mx_sizes[0]; s++)
        for (size_t k = 0; k < sizeof mx_pools / sizeof mx_pools[0]; k++)
            for (size_t f = 0; f < sizeof mx_families / sizeof mx_families[0]; f++) {
                mx m;
                poolsim_stats st;
                m.size = mx_sizes[s];
                m.pool = mx_pools[k];
                m.family = mx_families[f];
                g_opts = base ? *base : poolsim_cmocka_default_options();
                g_opts.family = m.family;
                poolsim_cmocka_reinit(&g_opts);
                snprintf(g_case, sizeof g_case, "size 0x%x, %s, %s family", (unsigned)m.size,
                         m.pool == PagedPool ? "PagedPool" : "NonPagedPoolNx",
                         verifier(&m) ? "verifier" : "retail");
                fn(&m);
                CHECK_EQ(poolsim_cmocka_unexpected(), 0);
                poolsim_get_stats(&st);
                CHECK_EQ(st.live_blocks, 0);
            }
    g_case[0] = '\0';
}

/* ---- Snapshots of a block's guards ------------------------------------------------------ */

/* The bytes of a block's slot or run, guards included, taken while intact. */
static struct {
    uint8_t *lo;
    size_t len;
    uint8_t b[BIG_GUARD + 0x3000];
} g_snap;

static void snap_take(size_t n, uint8_t *p)
{
    g_snap.lo = p - guard_before(n);
    g_snap.len = guard_before(n) + guard_end(n);
    CHECK(g_snap.len <= sizeof g_snap.b);
    memcpy(g_snap.b, g_snap.lo, g_snap.len);
}

static uint8_t snap_at(const uint8_t *a) { return g_snap.b[a - g_snap.lo]; }
static void snap_restore(void) { memcpy(g_snap.lo, g_snap.b, g_snap.len); }

/* Bytes in [from, to) that differ from the snapshot, and the first of them. */
static size_t snap_diff(const uint8_t *from, const uint8_t *to, const uint8_t **first)
{
    size_t n = 0;
    *first = NULL;
    for (const uint8_t *a = from; a < to; a++)
        if (*a != snap_at(a) && n++ == 0)
            *first = a;
    return n;
}

/* Flips every bit of [p + off, p + off + len): every byte is then damaged. */
static void flip(uint8_t *p, ptrdiff_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[off + (ptrdiff_t)i] = (uint8_t)~p[off + (ptrdiff_t)i];
}

/* The first pointer-sized word of a block's header as it is in memory; big
 * blocks have no header, and poolsim gives 0. */
static uintptr_t header_word(size_t n, const uint8_t *p)
{
    uintptr_t w = 0;
    if (!is_big(n))
        memcpy(&w, p - GRAN, sizeof w);
    return w;
}

/* The 8-byte word holding byte a, read from memory (0x19/0x21 Arg4). */
static uintptr_t word_at(const uint8_t *a)
{
    uint64_t w;
    memcpy(&w, (const void *)(U(a) & ~(uintptr_t)7), sizeof w);
    return (uintptr_t)w;
}

/* ---- Expected bug checks (docs/semantics.md, Bug checks) --------------------------------- */

typedef struct want {
    unsigned long code;
    uintptr_t arg[4];
} want;

static want mk(unsigned long code, uintptr_t a1, uintptr_t a2, uintptr_t a3, uintptr_t a4)
{
    want w;
    w.code = code;
    w.arg[0] = a1;
    w.arg[1] = a2;
    w.arg[2] = a3;
    w.arg[3] = a4;
    return w;
}

/* Bytes after the block: C4/0x51 (block, first bad byte, size); 0x19/0x21
 * (block, size, the 8-byte word holding the first bad byte). */
static want want_overrun(uint32_t family, size_t n, const uint8_t *p, const uint8_t *first)
{
    return family == POOLSIM_FAMILY_VERIFIER ? mk(0xC4, 0x51, U(p), U(first), n)
                                             : mk(0x19, 0x21, U(p), n, word_at(first));
}

/* Header or bytes before: C4/0x53 (block, block - 16, 0); 0x19/0x07 (0, 0, block - 16). */
static want want_underrun(uint32_t family, const uint8_t *p)
{
    return family == POOLSIM_FAMILY_VERIFIER ? mk(0xC4, 0x53, U(p), U(p) - GRAN, 0)
                                             : mk(0x19, 0x07, 0, 0, U(p) - GRAN);
}

/* Write after free: C6 (first bad byte, 1, 0, 0); 13A (0xB, block, first bad byte, 0). */
static want want_waf(uint32_t family, const uint8_t *p, const uint8_t *first)
{
    return family == POOLSIM_FAMILY_VERIFIER ? mk(0xC6, U(first), 1, 0, 0)
                                             : mk(0x13A, 0x0B, U(p), U(first), 0);
}

/* Double free: C4/0x13 (0, block - 16, header word); C2/0x07 (tag, the header word's first ULONG, block). */
static want want_double(uint32_t family, const uint8_t *p, uintptr_t hw)
{
    return family == POOLSIM_FAMILY_VERIFIER ? mk(0xC4, 0x13, 0, U(p) - GRAN, hw)
                                             : mk(0xC2, 0x07, TAG, (uint32_t)hw, U(p));
}

/* Address inside a live block: C4/0x13E (address, block, 0); C2/0x99 (address, 0, 0). */
static want want_interior(uint32_t family, const void *a, const uint8_t *p)
{
    return family == POOLSIM_FAMILY_VERIFIER ? mk(0xC4, 0x13E, U(a), U(p), 0) : mk(0xC2, 0x99, U(a), 0, 0);
}

/* Address poolsim never handed out: C4/0x10 (address, 0, 0); C2/0x46 (address, 0, 0). */
static want want_bad_address(uint32_t family, const void *a)
{
    return family == POOLSIM_FAMILY_VERIFIER ? mk(0xC4, 0x10, U(a), 0, 0) : mk(0xC2, 0x46, U(a), 0, 0);
}

static void check_params(const poolsim_bugcheck *bc, want w)
{
    CHECK_EQ(bc->code, w.code);
    CHECK_EQ(bc->param[0], w.arg[0]);
    CHECK_EQ(bc->param[1], w.arg[1]);
    CHECK_EQ(bc->param[2], w.arg[2]);
    CHECK_EQ(bc->param[3], w.arg[3]);
    CHECK_STR(bc->name, poolsim_bugcheck_name(w.code));
}

/* The statement raises exactly the bug check w, once; then its Arg2..Arg4. */
#define EXPECT_WANT(w, ...)                                                                                  \
    do {                                                                                                     \
        want w_ = (w);                                                                                       \
        EXPECT_ONE(w_.code, w_.arg[0], __VA_ARGS__);                                                         \
        check_params(last(), w_);                                                                            \
    } while (0)

/* The block the report names, from the out-of-band record. free_line 0: live. */
static void check_info(const poolsim_block_info *b, size_t n, POOL_TYPE pool, const void *p,
                       poolsim_block_state state, int alloc_line, int free_line, const char *free_routine)
{
    CHECK_EQ(U(b->address), U(p));
    CHECK_EQ(b->size, n);
    CHECK_EQ(b->tag, TAG);
    CHECK_EQ(b->pool_type, (uint32_t)pool);
    CHECK_EQ(b->state, state);
    CHECK(b->alloc_site.file != NULL && strcmp(b->alloc_site.file, __FILE__) == 0);
    CHECK_EQ(b->alloc_site.line, alloc_line);
    CHECK_STR(b->alloc_site.routine, "ExAllocatePoolWithTag");
    CHECK(b->alloc_seq > 0);
    if (state == POOLSIM_BLOCK_LIVE) {
        CHECK(b->free_site.file == NULL);
        CHECK_EQ(b->free_seq, 0);
    } else {
        CHECK(b->free_site.file != NULL && strcmp(b->free_site.file, __FILE__) == 0);
        CHECK_EQ(b->free_site.line, free_line);
        CHECK_STR(b->free_site.routine, free_routine);
        CHECK(b->free_seq > b->alloc_seq);
    }
}

static void check_block(const poolsim_bugcheck *bc, const mx *m, const void *p, poolsim_block_state state,
                        int alloc_line, int free_line, const char *free_routine)
{
    CHECK(bc->has_block);
    check_info(&bc->block, m->size, m->pool, p, state, alloc_line, free_line, free_routine);
}

/* A damage entry against the snapshot: kind, first bad byte, how many bytes
 * differ in the region [.., region_end), and the diff from the first one. */
static void check_damage(const poolsim_damage *d, uint32_t kind, const uint8_t *p, const uint8_t *first,
                         size_t count, const uint8_t *region_end)
{
    size_t nb = (size_t)(region_end - first) < POOLSIM_DAMAGE_BYTES ? (size_t)(region_end - first)
                                                                    : POOLSIM_DAMAGE_BYTES;
    CHECK_EQ(d->kind, kind);
    CHECK_EQ(U(d->first), U(first));
    CHECK_EQ((long long)d->offset, (long long)(first - p));
    CHECK_EQ(d->count, count);
    CHECK_EQ(d->nbytes, nb);
    for (size_t i = 0; i < nb && i < d->nbytes; i++) {
        CHECK_EQ(d->found[i], first[i]);
        CHECK_EQ(d->expected[i], kind == POOLSIM_DAMAGE_AFTER_FREE ? POISON : snap_at(first + i));
    }
}

/* A single byte written after free at p[off] (memory may be gone: nothing is read). */
static void check_waf_damage(const poolsim_damage *d, size_t n, const uint8_t *p, size_t off)
{
    size_t nb = n - off < POOLSIM_DAMAGE_BYTES ? n - off : POOLSIM_DAMAGE_BYTES;
    CHECK_EQ(d->kind, POOLSIM_DAMAGE_AFTER_FREE);
    CHECK_EQ(U(d->first), U(p + off));
    CHECK_EQ(d->offset, off);
    CHECK_EQ(d->count, 1);
    CHECK_EQ(d->nbytes, nb);
    for (size_t i = 0; i < nb; i++) {
        CHECK_EQ(d->found[i], i == 0 ? WAF_BYTE : POISON);
        CHECK_EQ(d->expected[i], POISON);
    }
}

/* ---- Overruns, underruns, header smashes ------------------------------------------------ */

/* Damages [p + off, p + off + len) of a live block (all before the block when
 * off < 0, all after its requested size otherwise) and checks the free, then a
 * validate, report it once each; restored, the block frees cleanly. */
static void guard_case(const mx *m, ptrdiff_t off, size_t len)
{
    const size_t n = m->size;
    uint8_t *p = mx_alloc(m);
    const int aline = g_line_alloc;
    const bool under = off < 0;
    const uint8_t *region_end = under ? p : p + guard_end(n);
    const uint8_t *first;
    want w;
    size_t bad = 0;
    snap_take(n, p);
    p[0] = 1;
    p[n - 1] = 2; /* the block's own bytes are the caller's: never reported */
    flip(p, off, len);
    CHECK_EQ(snap_diff(under ? p - guard_before(n) : p + n, region_end, &first), len);
    CHECK_EQ(U(first), U(p + off));
    w = under ? want_underrun(m->family, p) : want_overrun(m->family, n, p, first);

    EXPECT_WANT(w, do_free(p));
    check_site(last(), g_line_free, "ExFreePoolWithTag");
    check_block(last(), m, p, POOLSIM_BLOCK_LIVE, aline, 0, NULL);
    check_damage(&last()->damage[0], under ? POOLSIM_DAMAGE_UNDERRUN : POOLSIM_DAMAGE_OVERRUN, p, first, len,
                 region_end);
    CHECK_EQ(last()->damage[1].kind, 0);

    /* The free did nothing: still live, still damaged, found again by a scan. */
    CHECK(poolsim_valid_access(p, n));
    EXPECT_WANT(w, bad = poolsim_validate());
    CHECK_EQ(bad, 1);
    check_scan_site(last(), "poolsim_validate");
    check_block(last(), m, p, POOLSIM_BLOCK_LIVE, aline, 0, NULL);
    check_damage(&last()->damage[0], under ? POOLSIM_DAMAGE_UNDERRUN : POOLSIM_DAMAGE_OVERRUN, p, first, len,
                 region_end);

    snap_restore();
    validate_clean();
    free_clean(p);
}

static void mx_overrun_one_byte(const mx *m) { guard_case(m, (ptrdiff_t)m->size, 1); }

/* The default footer (1 byte at least) and a 16-byte one. */
static void run_footers(mx_fn *fn)
{
    poolsim_options o = poolsim_cmocka_default_options();
    CHECK_EQ(o.footer_bytes, 1);
    run_matrix(fn, &o);
    o.footer_bytes = 16;
    run_matrix(fn, &o);
}

static void test_corruption_overrun_one_byte(void **state)
{
    (void)state;
    run_footers(mx_overrun_one_byte);
}

static void mx_overrun_footer(const mx *m)
{
    const size_t n = m->size;
    guard_case(m, (ptrdiff_t)footer_first(n), 1);    /* the first of the footer_bytes before the slot end */
    guard_case(m, (ptrdiff_t)(guard_end(n) - 1), 1); /* the last guarded byte */
    guard_case(m, (ptrdiff_t)n, guard_end(n) - n);   /* a linear overflow through slack and footer */
    const size_t last = guard_end(n) - n < GRAN ? guard_end(n) - n : GRAN;
    guard_case(m, (ptrdiff_t)(guard_end(n) - last), last); /* the last GRAN guarded bytes, or all */
}

static void test_corruption_overrun_footer(void **state)
{
    (void)state;
    run_footers(mx_overrun_footer);
}

/* A write past the slot end lands in the next slot's header: the block's own
 * free sees nothing (its guards are intact), the neighbour's free reports the
 * smashed header as Windows does. With footer_bytes 0 a block whose size is a
 * multiple of GRAN fills its slot, and even a one-byte overrun goes there. */
static void overrun_into_next(uint32_t footer, size_t n)
{
    poolsim_options o = poolsim_cmocka_default_options();
    o.footer_bytes = footer;
    g_opts = o;
    poolsim_cmocka_reinit(&o);
    uint8_t *a = alloc_n(PagedPool, n), *b = alloc_n(PagedPool, n);
    CHECK_EQ(U(b) - U(a), guard_end(n) + GRAN); /* neighbours in one page */
    a[guard_end(n)] ^= 0x5A;                    /* the first byte of b's header */
    free_clean(a);
    EXPECT_WANT(want_underrun(POOLSIM_FAMILY_VERIFIER, b), do_free(b));
    CHECK_EQ(last()->damage[0].kind, POOLSIM_DAMAGE_UNDERRUN);
    CHECK_EQ(U(last()->damage[0].first), U(b) - GRAN);
    b[-(ptrdiff_t)GRAN] ^= 0x5A;
    free_clean(b);
}

static void test_corruption_overrun_into_next_header(void **state)
{
    (void)state;
    overrun_into_next(1, 40);  /* past 8 bytes of slack */
    overrun_into_next(1, 48);  /* past a 16-byte footer */
    overrun_into_next(16, 40); /* past 8 bytes of slack and 16 of footer */
    overrun_into_next(0, 48);  /* no footer: the first byte past the block */
    overrun_into_next(64, 40); /* the widest footer */
    g_opts = poolsim_cmocka_default_options();
    poolsim_options o = g_opts;
    CHECK_EQ(poolsim_shutdown(), 0);
    o.footer_bytes = 65;
    CHECK_EQ(poolsim_init(&o), POOLSIM_E_OPTION);
    CHECK_EQ(poolsim_init(&g_opts), POOLSIM_OK);
    poolsim_cmocka_install_handler();
}

static void mx_underrun(const mx *m)
{
    guard_case(m, -1, 1); /* the byte just before the block */
    if (mx_big(m)) {
        guard_case(m, -(ptrdiff_t)BIG_GUARD, 1); /* the first canary of the guard page */
        guard_case(m, -(ptrdiff_t)BIG_GUARD, BIG_GUARD);
    } else {
        guard_case(m, -(ptrdiff_t)GRAN, 1); /* the header's first byte */
    }
}

static void test_corruption_underrun_header(void **state)
{
    (void)state;
    run_matrix(mx_underrun, NULL);
}

static void mx_header_smash(const mx *m)
{
    guard_case(m, -(ptrdiff_t)GRAN, GRAN); /* all of it: Ulong1, tag, canaries */
    guard_case(m, -(ptrdiff_t)GRAN, 8);    /* Ulong1 and the tag only (small: the POOL_HEADER copy) */
    guard_case(m, -(ptrdiff_t)GRAN + 4, 4);
}

static void test_corruption_header_smash(void **state)
{
    (void)state;
    run_matrix(mx_header_smash, NULL);
}

/* Both sides damaged: the code follows the underrun, both regions are described. */
static void mx_both_sides(const mx *m)
{
    const size_t n = m->size;
    uint8_t *p = mx_alloc(m);
    const int aline = g_line_alloc;
    snap_take(n, p);
    flip(p, -1, 1);
    flip(p, (ptrdiff_t)n, 2);
    EXPECT_WANT(want_underrun(m->family, p), do_free(p));
    check_block(last(), m, p, POOLSIM_BLOCK_LIVE, aline, 0, NULL);
    check_damage(&last()->damage[0], POOLSIM_DAMAGE_UNDERRUN, p, p - 1, 1, p);
    check_damage(&last()->damage[1], POOLSIM_DAMAGE_OVERRUN, p, p + n, 2, p + guard_end(n));
    snap_restore();
    free_clean(p);
}

static void test_corruption_both_sides(void **state)
{
    (void)state;
    run_matrix(mx_both_sides, NULL);
}

/* ---- Writes after free --------------------------------------------------------------------- */

enum { FOUND_BY_VALIDATE, FOUND_ON_EVICTION, FOUND_AT_SHUTDOWN };

static void waf_case(const mx *m, int found_by, size_t off)
{
    const size_t n = m->size;
    uint8_t *p = mx_alloc(m), *a = mx_alloc(m), *b = mx_alloc(m);
    const int aline = g_line_alloc; /* all three come from the same line */
    int fline;
    size_t bad = 0, left = 1;
    want w;
    free_clean(p);
    fline = g_line_free;
    validate_clean(); /* the twin: a clean quarantined block is not reported */
    p[off] = WAF_BYTE;
    w = want_waf(m->family, p, p + off);

    const uint64_t edge = g_opts.quarantine_check;
    if (found_by == FOUND_ON_EVICTION && edge && n > 2 * edge && off >= edge && off < n - edge) {
        /* Leaving the quarantine, only the poison's first and last `edge` bytes are checked. */
        poolsim_block_info info;
        free_clean(a);
        free_clean(b);
        CHECK(poolsim_find_block(p, &info)); /* it has left, unreported */
        CHECK_EQ(info.state, POOLSIM_BLOCK_RELEASED);
        validate_clean();
        return;
    }

    switch (found_by) {
    case FOUND_BY_VALIDATE:
        free_clean(a); /* another free is not where a write after free is found */
        EXPECT_WANT(w, bad = poolsim_validate());
        CHECK_EQ(bad, 1);
        check_scan_site(last(), "poolsim_validate");
        break;
    case FOUND_ON_EVICTION: /* quarantine_blocks = 2: the third free evicts p */
        free_clean(a);
        EXPECT_WANT(w, do_free(b));
        check_site(last(), g_line_free, "ExFreePoolWithTag"); /* the free that pushed p out */
        break;
    default:
        free_clean(a);
        free_clean(b);
        EXPECT_WANT(w, left = poolsim_shutdown());
        CHECK_EQ(left, 0);
        check_scan_site(last(), "poolsim_validate");
        break;
    }
    check_block(last(), m, p, POOLSIM_BLOCK_QUARANTINED, aline, fline, "ExFreePoolWithTag");
    check_waf_damage(&last()->damage[0], n, p, off);
    CHECK_EQ(last()->damage[1].kind, 0);

    switch (found_by) {
    case FOUND_BY_VALIDATE:
        p[off] = POISON; /* put the poison back: nothing left to report */
        validate_clean();
        free_clean(b);
        break;
    case FOUND_ON_EVICTION:
        /* p has left the quarantine: no longer an address one may access. */
        CHECK(!poolsim_valid_access(p, 1));
        validate_clean();
        break;
    default:
        mx_restart();
        break;
    }
}

static void mx_waf(const mx *m, int found_by)
{
    waf_case(m, found_by, 0);
    waf_case(m, found_by, m->size / 2);
    waf_case(m, found_by, m->size - 1);
    if (g_opts.quarantine_check && m->size > 2 * g_opts.quarantine_check) { /* an eviction check's edges */
        waf_case(m, found_by, (size_t)g_opts.quarantine_check - 1);
        waf_case(m, found_by, (size_t)g_opts.quarantine_check);
        waf_case(m, found_by, m->size - (size_t)g_opts.quarantine_check - 1);
        waf_case(m, found_by, m->size - (size_t)g_opts.quarantine_check);
    }
}

static void mx_waf_validate(const mx *m) { mx_waf(m, FOUND_BY_VALIDATE); }
static void mx_waf_eviction(const mx *m) { mx_waf(m, FOUND_ON_EVICTION); }
static void mx_waf_shutdown(const mx *m) { mx_waf(m, FOUND_AT_SHUTDOWN); }

static void test_corruption_waf_validate(void **state)
{
    (void)state;
    run_matrix(mx_waf_validate, NULL);
}

static poolsim_options quarantine_of(uint32_t blocks)
{
    poolsim_options o = poolsim_cmocka_default_options();
    o.quarantine_blocks = blocks;
    return o;
}

/* Evictions check the poison's first and last quarantine_check bytes (default 256), or all of it (0). */
static void test_corruption_waf_eviction(void **state)
{
    poolsim_options o = quarantine_of(2);
    (void)state;
    CHECK_EQ(o.quarantine_check, 256);
    run_matrix(mx_waf_eviction, &o);
    o.quarantine_check = 0;
    run_matrix(mx_waf_eviction, &o);
}

static void test_corruption_waf_shutdown(void **state)
{
    (void)state;
    run_matrix(mx_waf_shutdown, NULL);
}

/* quarantine_check takes any size a block can have; a huge one checks everything, and more is refused. */
static void test_corruption_quarantine_check_range(void **state)
{
    poolsim_options o = quarantine_of(1);
    uint8_t *p, *a;
    (void)state;
    CHECK_EQ(poolsim_shutdown(), 0);
    o.quarantine_check = (uint64_t)1 << 62;
    CHECK_EQ(poolsim_init(&o), POOLSIM_E_OPTION);
    o.quarantine_check = sizeof(void *) == 8 ? ((uint64_t)1 << 47) - 1 : 0x7FFFFFFFu;
    CHECK_EQ(poolsim_init(&o), POOLSIM_OK);
    poolsim_cmocka_install_handler();
    p = alloc_n(PagedPool, 0x1800);
    a = alloc_n(PagedPool, 64);
    free_clean(p);
    p[0x800] = WAF_BYTE; /* the middle: checked, as with 0 */
    EXPECT_WANT(want_waf(POOLSIM_FAMILY_VERIFIER, p, p + 0x800), do_free(a)); /* evicts p */
    validate_clean();
}

/* A handler that longjmps out of an eviction report (expect_bugcheck) leaves
 * poolsim consistent: the quarantine stays over its byte limit until the next
 * free, a second damaged block still waiting there is found by the next scan,
 * and every damaged block is reported exactly once. */
static uint8_t *g_evict_first;

static void evict_with_longjmp(uint8_t *big) { expect_bugcheck(0xC6, U(g_evict_first), do_free(big)); }

static void test_corruption_waf_eviction_longjmp(void **state)
{
    poolsim_options o = poolsim_cmocka_default_options();
    uint8_t *s[4], *big, *x;
    size_t bad = 0;
    (void)state;
    o.quarantine_bytes = 0x1000;
    poolsim_cmocka_reinit(&o);
    for (int i = 0; i < 4; i++)
        s[i] = alloc_n(NonPagedPoolNx, 40);
    big = alloc_n(NonPagedPoolNx, 0x1000);
    x = alloc_n(NonPagedPoolNx, 40);
    for (int i = 0; i < 4; i++)
        free_clean(s[i]);
    s[0][39] = WAF_BYTE;
    s[2][0] = WAF_BYTE;
    g_evict_first = s[0] + 39;
    {
        uint64_t before = poolsim_bugcheck_count();
        evict_with_longjmp(big); /* evicts s[0]; the handler jumps out of the trim */
        CHECK_EQ(poolsim_bugcheck_count() - before, 1);
    }
    check_site(last(), g_line_free, "ExFreePoolWithTag"); /* the free that pushed s[0] out */
    CHECK_EQ(U(last()->block.address), U(s[0]));
    CHECK(!poolsim_valid_access(big, 1));
    EXPECT_WANT(want_waf(POOLSIM_FAMILY_VERIFIER, s[2], s[2]), bad = poolsim_validate());
    CHECK_EQ(bad, 1);
    CHECK_EQ(last()->block.state, POOLSIM_BLOCK_QUARANTINED);
    s[2][0] = POISON;
    free_clean(x); /* evicts the rest, all intact now */
    validate_clean();
}

/* A quarantined block's guards are still checked: a write one past it is an
 * overrun (not a write after free); with both, the code follows the write
 * after free and both regions are described. */
static void mx_after_free_guards(const mx *m)
{
    const size_t n = m->size;
    uint8_t *p = mx_alloc(m);
    const int aline = g_line_alloc;
    size_t bad = 0;
    free_clean(p);
    snap_take(n, p); /* poison included */
    flip(p, (ptrdiff_t)n, 1);
    EXPECT_WANT(want_overrun(m->family, n, p, p + n), bad = poolsim_validate());
    CHECK_EQ(bad, 1);
    check_block(last(), m, p, POOLSIM_BLOCK_QUARANTINED, aline, g_line_free, "ExFreePoolWithTag");
    check_damage(&last()->damage[0], POOLSIM_DAMAGE_OVERRUN, p, p + n, 1, p + guard_end(n));

    p[n - 1] = WAF_BYTE;
    EXPECT_WANT(want_waf(m->family, p, p + n - 1), bad = poolsim_validate());
    CHECK_EQ(bad, 1);
    check_damage(&last()->damage[0], POOLSIM_DAMAGE_AFTER_FREE, p, p + n - 1, 1, p + n);
    check_damage(&last()->damage[1], POOLSIM_DAMAGE_OVERRUN, p, p + n, 1, p + guard_end(n));

    flip(p, -1, 1); /* three regions: the first two are described */
    EXPECT_WANT(want_waf(m->family, p, p + n - 1), bad = poolsim_validate());
    check_damage(&last()->damage[0], POOLSIM_DAMAGE_AFTER_FREE, p, p + n - 1, 1, p + n);
    check_damage(&last()->damage[1], POOLSIM_DAMAGE_UNDERRUN, p, p - 1, 1, p);
    snap_restore();
    validate_clean();
}

static void test_corruption_after_free_guards(void **state)
{
    (void)state;
    run_matrix(mx_after_free_guards, NULL);
}

/* ---- Double free ------------------------------------------------------------------------------ */

/* The header word of a small block imitates the x64 POOL_HEADER (§7). */
static void check_header_word(const mx *m, uintptr_t hw)
{
    if (mx_big(m) || sizeof(void *) != 8)
        return;
    CHECK_EQ((hw >> 16) & 0xFF, (GRAN + round_up(m->size, GRAN)) / GRAN); /* BlockSize */
    CHECK_EQ((hw >> 24) & 0xFF, ((unsigned)m->pool & 0x7F) + 1);          /* PoolType + 1 */
    CHECK_EQ((uint64_t)hw >> 32, TAG);                                    /* PoolTag */
}

static void mx_double_free_at_once(const mx *m)
{
    uint8_t *p = mx_alloc(m);
    const int aline = g_line_alloc;
    uintptr_t hw = header_word(m->size, p);
    check_header_word(m, hw);
    free2_clean(p);
    EXPECT_WANT(want_double(m->family, p, hw), do_free(p));
    check_site(last(), g_line_free, "ExFreePoolWithTag");
    check_block(last(), m, p, POOLSIM_BLOCK_QUARANTINED, aline, g_line_free2, "ExFreePool2");
    CHECK_EQ(last()->damage[0].kind, 0);
    /* A third free is one more report, and the block stays as it was. */
    EXPECT_WANT(want_double(m->family, p, hw), do_free0(p));
    check_site(last(), g_line_free0, "ExFreePool");
    check_block(last(), m, p, POOLSIM_BLOCK_QUARANTINED, aline, g_line_free2, "ExFreePool2");
    validate_clean();
}

static void test_corruption_double_free_at_once(void **state)
{
    (void)state;
    run_matrix(mx_double_free_at_once, NULL);
}

static void mx_double_free_after_others(const mx *m)
{
    uint8_t *a = mx_alloc(m), *p = mx_alloc(m), *b = mx_alloc(m), *c = mx_alloc(m), *d = mx_alloc(m);
    const int aline = g_line_alloc;
    uintptr_t hw = header_word(m->size, p);
    free_clean(a);
    free0_clean(p);
    free_clean(b);
    free_clean(c);
    EXPECT_WANT(want_double(m->family, p, hw), do_free2(p));
    check_site(last(), g_line_free2, "ExFreePool2");
    check_block(last(), m, p, POOLSIM_BLOCK_QUARANTINED, aline, g_line_free0, "ExFreePool");
    EXPECT_WANT(want_double(m->family, a, header_word(m->size, a)), do_free(a));
    check_block(last(), m, a, POOLSIM_BLOCK_QUARANTINED, aline, g_line_free, "ExFreePoolWithTag");
    free_clean(d); /* the twin: a block freed once */
    validate_clean();
}

static void test_corruption_double_free_after_others(void **state)
{
    (void)state;
    run_matrix(mx_double_free_after_others, NULL);
}

/* After the block left the quarantine (quarantine_blocks = 2), its slot or
 * run keeps the released record until the memory is reused, so a second
 * free is still a double free naming the block (state RELEASED). */
/* A small block whose slab page emptied while another page of its class had
 * room: the page waits in the free pages with its records, so a later free of
 * the block is still a double free. */
static void double_free_after_page_recycled(const mx *m)
{
    const size_t nslots = PAGE / (guard_end(m->size) + GRAN);
    uint8_t *blk[PAGE / (3 * 16) + 3];
    poolsim_block_info info;
    mx_restart();
    CHECK(nslots + 3 <= sizeof blk / sizeof blk[0]);
    for (size_t i = 0; i < nslots + 3; i++)
        blk[i] = mx_alloc(m);
    CHECK_EQ((U(blk[0]) - GRAN) % PAGE, 0); /* a fresh instance: the first page holds nslots */
    CHECK(U(blk[nslots]) / PAGE != U(blk[0]) / PAGE);
    for (size_t i = 0; i < nslots + 3; i++)
        free_clean(blk[i]); /* quarantine_blocks = 2: every block of the first page is evicted */
    CHECK(poolsim_find_block(blk[0], &info));
    CHECK_EQ(info.state, POOLSIM_BLOCK_RELEASED);
    EXPECT_WANT(want_double(m->family, blk[0], header_word(m->size, blk[0])), do_free(blk[0]));
    CHECK(last()->has_block);
    CHECK_EQ(U(last()->block.address), U(blk[0]));
    validate_clean();
}

static void mx_double_free_after_quarantine(const mx *m)
{
    uint8_t *p = mx_alloc(m), *a = mx_alloc(m), *b = mx_alloc(m);
    const int aline = g_line_alloc;
    uintptr_t hw = header_word(m->size, p);
    poolsim_block_info info;
    free2_clean(p);
    free_clean(a);
    free_clean(b); /* evicts p, intact: nothing to report */
    CHECK(!poolsim_valid_access(p, 1));
    CHECK(poolsim_find_block(p, &info));
    check_info(&info, m->size, m->pool, p, POOLSIM_BLOCK_RELEASED, aline, g_line_free2, "ExFreePool2");
    CHECK_EQ(header_word(m->size, p), hw); /* release leaves the header alone */
    EXPECT_WANT(want_double(m->family, p, hw), do_free(p));
    check_block(last(), m, p, POOLSIM_BLOCK_RELEASED, aline, g_line_free2, "ExFreePool2");
    check_site(last(), g_line_free, "ExFreePoolWithTag");
    validate_clean();
    if (!mx_big(m))
        double_free_after_page_recycled(m);
}

static void test_corruption_double_free_after_quarantine(void **state)
{
    poolsim_options o = quarantine_of(2);
    (void)state;
    run_matrix(mx_double_free_after_quarantine, &o);
}

/* A header smashed after the free: the double free still names the block from
 * the record, and Arg4 (C2: Arg3, its first ULONG) is the header word as it now is in memory;
 * the smash itself is then found by poolsim_validate. */
static void mx_double_free_smashed_header(const mx *m)
{
    const size_t n = m->size;
    uint8_t *p = mx_alloc(m);
    const int aline = g_line_alloc;
    const uint8_t *first;
    size_t count, bad = 0;
    free_clean(p);
    snap_take(n, p);
    memset(p - GRAN, 0xEE, GRAN);
    count = snap_diff(p - guard_before(n), p, &first);
    CHECK(count > 0);
    EXPECT_WANT(want_double(m->family, p, header_word(n, p)), do_free2(p));
    if (!mx_big(m))
        CHECK_EQ(last()->param[verifier(m) ? 3 : 2],
                 verifier(m) ? (uintptr_t)0xEEEEEEEEEEEEEEEEull : 0xEEEEEEEEu);
    check_block(last(), m, p, POOLSIM_BLOCK_QUARANTINED, aline, g_line_free, "ExFreePoolWithTag");
    EXPECT_WANT(want_underrun(m->family, p), bad = poolsim_validate());
    CHECK_EQ(bad, 1);
    check_block(last(), m, p, POOLSIM_BLOCK_QUARANTINED, aline, g_line_free, "ExFreePoolWithTag");
    check_damage(&last()->damage[0], POOLSIM_DAMAGE_UNDERRUN, p, first, count, p);
    snap_restore();
    validate_clean();
}

static void test_corruption_double_free_smashed_header(void **state)
{
    (void)state;
    run_matrix(mx_double_free_smashed_header, NULL);
}

/* ---- Bad pointers ------------------------------------------------------------------------------ */

/* Frees of addresses inside a live block but not its start: the block is named
 * and stays live. */
static void mx_free_interior(const mx *m)
{
    const size_t n = m->size;
    uint8_t *p = mx_alloc(m);
    const int aline = g_line_alloc;
    const ptrdiff_t offs[] = {(ptrdiff_t)GRAN,
                              (ptrdiff_t)(n / 2),
                              (ptrdiff_t)(n - 1),
                              (ptrdiff_t)n,                       /* one past: slack or footer */
                              -(ptrdiff_t)GRAN,                   /* the header (big: the canaries) */
                              (ptrdiff_t)guard_end(n) - 1,        /* the last byte of the slot or run */
                              mx_big(m) ? -(ptrdiff_t)PAGE : -1}; /* big: the guard page's first byte */
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        uint8_t *a = p + offs[i];
        EXPECT_WANT(want_interior(m->family, a, p), do_free(a));
        check_site(last(), g_line_free, "ExFreePoolWithTag");
        check_block(last(), m, p, POOLSIM_BLOCK_LIVE, aline, 0, NULL);
        CHECK(poolsim_valid_access(p, n));
    }
    validate_clean();
    free_clean(p);
}

static void test_corruption_free_interior(void **state)
{
    (void)state;
    run_matrix(mx_free_interior, NULL);
}

static char g_static[64]; /* a static: never handed out by poolsim */

/* Misaligned pointers: into a live block (interior), into a quarantined one
 * (not a block start: an unknown address, the block named), into the heap. */
static void mx_free_misaligned(const mx *m)
{
    uint8_t *p = mx_alloc(m), *q = mx_alloc(m);
    const int aline = g_line_alloc;
    char *heap = (char *)malloc(64);
    const size_t offs[] = {1, 3, GRAN / 2, GRAN + 7};
    CHECK(heap != NULL);
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        EXPECT_WANT(want_interior(m->family, p + offs[i], p), do_free2(p + offs[i]));
        check_block(last(), m, p, POOLSIM_BLOCK_LIVE, aline, 0, NULL);
    }
    free_clean(q);
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        EXPECT_WANT(want_bad_address(m->family, q + offs[i]), do_free(q + offs[i]));
        check_block(last(), m, q, POOLSIM_BLOCK_QUARANTINED, aline, g_line_free, "ExFreePoolWithTag");
        EXPECT_WANT(want_bad_address(m->family, heap + offs[i]), do_free(heap + offs[i]));
        CHECK(!last()->has_block);
    }
    free_clean(p);
    validate_clean();
    free(heap);
}

static void test_corruption_free_misaligned(void **state)
{
    (void)state;
    run_matrix(mx_free_misaligned, NULL);
}

/* Addresses poolsim never handed out, through each free routine; the twin: a
 * real block next to them frees cleanly. */
static void mx_free_foreign(const mx *m)
{
    char on_stack[32];
    char *heap = (char *)malloc(m->size);
    uint8_t *p = mx_alloc(m);
    void *bad[4];
    CHECK(heap != NULL);
    bad[0] = heap;
    bad[1] = on_stack;
    bad[2] = g_static;
    bad[3] = NULL;
    on_stack[0] = 0;
    for (size_t i = 0; i < 4; i++) {
        EXPECT_WANT(want_bad_address(m->family, bad[i]), do_free(bad[i]));
        check_site(last(), g_line_free, "ExFreePoolWithTag");
        CHECK(!last()->has_block);
        EXPECT_WANT(want_bad_address(m->family, bad[i]), do_free2(bad[i]));
        check_site(last(), g_line_free2, "ExFreePool2");
        EXPECT_WANT(want_bad_address(m->family, bad[i]), do_free0(bad[i]));
        check_site(last(), g_line_free0, "ExFreePool");
        CHECK(!poolsim_valid_access(bad[i], 1));
    }
    free_clean(p);
    free(heap); /* untouched by poolsim */
    validate_clean();
}

static void test_corruption_free_foreign(void **state)
{
    (void)state;
    run_matrix(mx_free_foreign, NULL);
}

/* ---- Legal twins: must not report ------------------------------------------------------------- */

static void mx_twin_last_byte(const mx *m)
{
    const size_t n = m->size;
    uint8_t *p = mx_alloc(m);
    volatile uint8_t sink = 0;
    p[0] = 0x7F;
    p[n - 1] = 0x7E; /* the last requested byte */
    memset(p, 0x33, n);
    sink = (uint8_t)(sink + p[-1] + p[n] + p[guard_end(n) - 1]); /* reading the guards changes nothing */
    (void)sink;
    CHECK(poolsim_valid_access(p, n));
    validate_clean();
    free_clean(p);
    validate_clean();
}

static void test_corruption_twin_last_byte(void **state)
{
    (void)state;
    run_matrix(mx_twin_last_byte, NULL);
}

/* The realloc pattern: allocate the new block, copy, free the old, use the
 * new; and free then allocate again. */
static void mx_twin_realloc(const mx *m)
{
    const size_t n = m->size;
    uint8_t *old = mx_alloc(m), *grown, *shrunk, *again;
    memset(old, 0x11, n);
    grown = alloc_n(m->pool, 2 * n);
    memcpy(grown, old, n);
    free_clean(old);
    memset(grown, 0x22, 2 * n);
    CHECK(poolsim_valid_access(grown, 2 * n));
    CHECK(!poolsim_valid_access(old, 1));
    shrunk = alloc_n(m->pool, n / 2);
    memcpy(shrunk, grown, n / 2);
    free_clean(grown);
    shrunk[n / 2 - 1] = 0x44;
    again = mx_alloc(m); /* after a free: a new block, the old one still quarantined */
    CHECK(again != old);
    memset(again, 0x55, n);
    validate_clean();
    free_clean(shrunk);
    free_clean(again);
    validate_clean();
}

static void test_corruption_twin_realloc_pattern(void **state)
{
    (void)state;
    run_matrix(mx_twin_realloc, NULL);
}

/* Reading a neighbour, its guards included, is not a violation poolsim sees. */
static void mx_twin_read_neighbour(const mx *m)
{
    const size_t n = m->size;
    uint8_t *a = mx_alloc(m), *b = mx_alloc(m);
    volatile unsigned sum = 0, guards = 0;
    memset(b, 0x66, n);
    for (size_t i = 0; i < n; i++)
        sum += b[i];
    for (size_t i = 0; i < guard_before(n); i++)
        guards += b[-1 - (ptrdiff_t)i];
    for (size_t i = n; i < guard_end(n); i++)
        guards += a[i];
    (void)guards;
    CHECK_EQ(sum, 0x66u * (unsigned)n);
    validate_clean();
    free_clean(a);
    free_clean(b);
    validate_clean();
}

static void test_corruption_twin_read_neighbour(void **state)
{
    (void)state;
    run_matrix(mx_twin_read_neighbour, NULL);
}

/* A quarantined block between two live ones: every byte of the neighbours
 * may be written. */
static void mx_twin_quarantine_neighbours(const mx *m)
{
    const size_t n = m->size;
    uint8_t *a = mx_alloc(m), *b = mx_alloc(m), *c = mx_alloc(m);
    free_clean(b);
    memset(a, 0x77, n);
    memset(c, 0x77, n);
    validate_clean();
    free_clean(a);
    free_clean(c);
    validate_clean();
}

static void test_corruption_twin_quarantine_neighbours(void **state)
{
    (void)state;
    run_matrix(mx_twin_quarantine_neighbours, NULL);
}

/* A clean heap of live and quarantined blocks validates to 0; so does one
 * where only a big block's guard page, beyond its canaries, was written
 * (documented: harmless and unreported). */
static void mx_twin_validate_clean(const mx *m)
{
    uint8_t *blk[6];
    poolsim_stats st;
    for (int i = 0; i < 6; i++)
        blk[i] = mx_alloc(m);
    for (int i = 0; i < 6; i += 2)
        free_clean(blk[i]);
    poolsim_get_stats(&st);
    CHECK_EQ(st.live_blocks, 3);
    validate_clean();
    if (mx_big(m)) {
        blk[1][-(ptrdiff_t)BIG_GUARD - 1] = 0xAB;
        blk[1][-(ptrdiff_t)PAGE] = 0xAB;
        validate_clean();
    }
    for (int i = 1; i < 6; i += 2)
        free_clean(blk[i]);
    validate_clean();
}

static void test_corruption_twin_validate_clean(void **state)
{
    (void)state;
    run_matrix(mx_twin_validate_clean, NULL);
}

/* ---- poolsim_valid_access and poolsim_find_block at the edges ----------------------------------- */

static void mx_valid_access(const mx *m)
{
    const size_t n = m->size;
    uint8_t *p = mx_alloc(m);
    char on_stack[8];
    char *heap = (char *)malloc(16);
    CHECK(heap != NULL);
    CHECK(poolsim_valid_access(p, n));         /* whole block */
    CHECK(poolsim_valid_access(p, 1));         /* first byte */
    CHECK(poolsim_valid_access(p + n - 1, 1)); /* last byte */
    CHECK(poolsim_valid_access(p + 1, n - 1));
    CHECK(poolsim_valid_access(p, 0));      /* an empty range at the start */
    CHECK(poolsim_valid_access(p + n, 0));  /* an empty range at the end (like a one-past pointer) */
    CHECK(!poolsim_valid_access(p, n + 1)); /* one past */
    CHECK(!poolsim_valid_access(p + n - 1, 2));
    CHECK(!poolsim_valid_access(p + n, 1));
    CHECK(!poolsim_valid_access(p + guard_end(n) - 1, 1));
    CHECK(!poolsim_valid_access(p - 1, 1)); /* header bytes */
    CHECK(!poolsim_valid_access(p - 1, 2));
    CHECK(!poolsim_valid_access(p - 1, 0));
    CHECK(!poolsim_valid_access(p - GRAN, GRAN));
    CHECK(!poolsim_valid_access(p - GRAN, n + GRAN));
    CHECK(!poolsim_valid_access(p, SIZE_MAX)); /* n overflowing */
    CHECK(!poolsim_valid_access(p + 1, SIZE_MAX));
    CHECK(!poolsim_valid_access(p + n - 1, SIZE_MAX));
    CHECK(!poolsim_valid_access(p + n, SIZE_MAX));
    CHECK(!poolsim_valid_access(NULL, 0));
    CHECK(!poolsim_valid_access(NULL, 1));
    CHECK(!poolsim_valid_access(on_stack, 1));
    CHECK(!poolsim_valid_access(heap, 1));
    CHECK(!poolsim_valid_access(g_static, 1));
    free_clean(p);
    CHECK(!poolsim_valid_access(p, n)); /* quarantined */
    CHECK(!poolsim_valid_access(p, 1));
    CHECK(!poolsim_valid_access(p + n - 1, 1));
    CHECK(!poolsim_valid_access(p, 0));
    free(heap);
}

static void test_corruption_valid_access_edges(void **state)
{
    (void)state;
    run_matrix(mx_valid_access, NULL);
}

static void check_found(const void *a, const mx *m, const void *p, poolsim_block_state state, int aline,
                        int fline)
{
    poolsim_block_info info;
    CHECK(poolsim_find_block(a, &info));
    check_info(&info, m->size, m->pool, p, state, aline, fline, "ExFreePoolWithTag");
}

static void check_not_found(const void *a)
{
    poolsim_block_info info;
    memset(&info, 0xA5, sizeof info);
    CHECK(!poolsim_find_block(a, &info));
    CHECK(info.address == NULL && info.size == 0 && info.state == 0); /* zeroed */
}

static void mx_find_block(const mx *m)
{
    const size_t n = m->size;
    uint8_t *p = mx_alloc(m), *q;
    const int aline = g_line_alloc;
    char on_stack[8];
    char *heap = (char *)malloc(16);
    CHECK(heap != NULL);
    check_found(p, m, p, POOLSIM_BLOCK_LIVE, aline, 0);         /* first byte */
    check_found(p + n - 1, m, p, POOLSIM_BLOCK_LIVE, aline, 0); /* last byte */
    check_found(p + n, m, p, POOLSIM_BLOCK_LIVE, aline, 0);     /* one past the block: its slack or footer */
    check_found(p + guard_end(n) - 1, m, p, POOLSIM_BLOCK_LIVE, aline, 0);
    check_found(p - 1, m, p, POOLSIM_BLOCK_LIVE, aline, 0); /* header bytes */
    check_found(p - guard_before(n), m, p, POOLSIM_BLOCK_LIVE, aline, 0);
    if (mx_big(m)) {
        check_found(p - PAGE, m, p, POOLSIM_BLOCK_LIVE, aline, 0); /* the guard page is the block's */
        check_not_found(p + guard_end(n));                         /* one past the run: an unused page */
    } else {
        /* A fresh instance: p is the first slot of its page, the next slot unused. */
        const size_t slot = guard_end(n) + GRAN;
        CHECK_EQ((U(p) - GRAN) % PAGE, 0);
        check_not_found(p + guard_end(n));    /* one past the slot */
        check_not_found(p - GRAN + PAGE - 1); /* the page's tail, in no slot */
        q = mx_alloc(m);
        CHECK_EQ(U(q), U(p) + slot); /* the next slot */
        check_found(p + guard_end(n), m, q, POOLSIM_BLOCK_LIVE, g_line_alloc, 0);
        free_clean(q);
    }
    check_not_found(NULL);
    check_not_found(on_stack);
    check_not_found(heap);
    check_not_found(g_static);
    CHECK(poolsim_find_block(p, NULL)); /* out may be NULL */
    free_clean(p);
    check_found(p, m, p, POOLSIM_BLOCK_QUARANTINED, aline, g_line_free);
    check_found(p + n - 1, m, p, POOLSIM_BLOCK_QUARANTINED, aline, g_line_free);
    check_found(p - 1, m, p, POOLSIM_BLOCK_QUARANTINED, aline, g_line_free);
    free(heap);
}

static void test_corruption_find_block_edges(void **state)
{
    (void)state;
    run_matrix(mx_find_block, NULL);
}

/* ---- Robustness: random damage to every in-band guard byte -------------------------------------- */

static uint64_t g_rng;

static uint64_t rng_next(void)
{ /* splitmix64: deterministic */
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t rng_below(size_t n) { return (size_t)(rng_next() % n); }

/* Collects every bug check (for scans that raise many). */
#define COLLECT_MAX 128
static struct {
    unsigned n;
    poolsim_bugcheck bc[COLLECT_MAX];
} g_col;

static void collect_handler(const poolsim_bugcheck *bc, void *ctx)
{
    (void)ctx;
    if (g_col.n < COLLECT_MAX)
        g_col.bc[g_col.n] = *bc;
    g_col.n++;
}

static size_t validate_collect(void)
{
    size_t bad;
    g_col.n = 0;
    poolsim_set_bugcheck_handler(collect_handler, NULL);
    bad = poolsim_validate();
    poolsim_cmocka_install_handler();
    CHECK_EQ(g_col.n, bad);
    return bad;
}

#define RB_N 48

typedef struct rblk {
    uint8_t *p;
    size_t n, nb, na; /* requested bytes; guard bytes before and after */
    POOL_TYPE pool;
    int alloc_line;
    uint8_t before[BIG_GUARD], after[BIG_GUARD + 2 * 16];
    size_t dmg_b, dmg_a, dmg_u; /* damaged bytes before, after, inside (after free) */
    const uint8_t *first_b, *first_a, *first_u;
    bool seen;
} rblk;

static rblk g_rb[RB_N];

static void rb_save(rblk *r)
{
    memcpy(r->before, r->p - r->nb, r->nb);
    memcpy(r->after, r->p + r->n, r->na);
}

static void rb_restore(rblk *r)
{
    memcpy(r->p - r->nb, r->before, r->nb);
    memcpy(r->p + r->n, r->after, r->na);
}

static size_t rb_diff(const uint8_t *mem, const uint8_t *orig, size_t len, const uint8_t **first)
{
    size_t n = 0;
    *first = NULL;
    for (size_t i = 0; i < len; i++)
        if (mem[i] != orig[i] && n++ == 0)
            *first = mem + i;
    return n;
}

/* Random bytes over the guard bytes: all of a side, or one byte. */
static void rb_damage(rblk *r, bool all_before, bool all_after, bool one)
{
    if (all_before)
        for (size_t i = 0; i < r->nb; i++)
            r->p[-1 - (ptrdiff_t)i] = (uint8_t)rng_next();
    if (all_after)
        for (size_t i = 0; i < r->na; i++)
            r->p[r->n + i] = (uint8_t)rng_next();
    if (one) {
        size_t k = rng_below(r->nb + r->na);
        uint8_t *a = k < r->nb ? r->p - r->nb + k : r->p + r->n + (k - r->nb);
        *a = (uint8_t)(*a ^ (1u + rng_below(255)));
    }
    r->dmg_b = rb_diff(r->p - r->nb, r->before, r->nb, &r->first_b);
    r->dmg_a = rb_diff(r->p + r->n, r->after, r->na, &r->first_a);
}

/* The bug check a damaged block must raise, and the damage it must describe. */
static void rb_check(const rblk *r, const poolsim_bugcheck *bc, uint32_t family, poolsim_block_state state)
{
    const uint8_t *end_after = r->p + r->n + r->na;
    unsigned k = 0;
    want w;
    if (r->dmg_u)
        w = want_waf(family, r->p, r->first_u);
    else if (r->dmg_b)
        w = want_underrun(family, r->p);
    else
        w = want_overrun(family, r->n, r->p, r->first_a);
    check_params(bc, w);
    CHECK(bc->has_block);
    CHECK_EQ(U(bc->block.address), U(r->p)); /* never another block */
    CHECK_EQ(bc->block.size, r->n);
    CHECK_EQ(bc->block.pool_type, (uint32_t)r->pool);
    CHECK_EQ(bc->block.state, state);
    CHECK_EQ(bc->block.alloc_site.line, r->alloc_line);
    if (r->dmg_u) {
        CHECK_EQ(bc->damage[k].kind, POOLSIM_DAMAGE_AFTER_FREE);
        CHECK_EQ(U(bc->damage[k].first), U(r->first_u));
        CHECK_EQ(bc->damage[k].count, r->dmg_u);
        k++;
    }
    if (r->dmg_b && k < 2) {
        CHECK_EQ(bc->damage[k].kind, POOLSIM_DAMAGE_UNDERRUN);
        CHECK_EQ(U(bc->damage[k].first), U(r->first_b));
        CHECK_EQ((long long)bc->damage[k].offset, (long long)(r->first_b - r->p));
        CHECK_EQ(bc->damage[k].count, r->dmg_b);
        k++;
    }
    if (r->dmg_a && k < 2) {
        CHECK_EQ(bc->damage[k].kind, POOLSIM_DAMAGE_OVERRUN);
        CHECK_EQ(U(bc->damage[k].first), U(r->first_a));
        CHECK_EQ(bc->damage[k].count, r->dmg_a);
        CHECK(bc->damage[k].nbytes <= (size_t)(end_after - r->first_a));
        k++;
    }
    if (k < 2)
        CHECK_EQ(bc->damage[k].kind, 0);
}

/* Each reported block is one of the damaged ones, and each is reported once. */
static void rb_check_scan(size_t nblocks, size_t ndamaged, uint32_t family, poolsim_block_state state)
{
    CHECK_EQ(g_col.n, ndamaged);
    for (size_t i = 0; i < nblocks; i++)
        g_rb[i].seen = false;
    for (unsigned c = 0; c < g_col.n && c < COLLECT_MAX; c++) {
        size_t i = 0;
        while (i < nblocks && U(g_rb[i].p) != U(g_col.bc[c].block.address))
            i++;
        CHECK(i < nblocks);
        if (i == nblocks)
            continue;
        CHECK(g_rb[i].dmg_b + g_rb[i].dmg_a + g_rb[i].dmg_u > 0);
        CHECK(!g_rb[i].seen);
        g_rb[i].seen = true;
        rb_check(&g_rb[i], &g_col.bc[c], family, state);
    }
}

static void robust_round(uint32_t family, uint64_t seed)
{
    poolsim_options o = poolsim_cmocka_default_options();
    size_t order[RB_N], ndamaged = 0;
    o.family = family;
    poolsim_cmocka_reinit(&o);
    g_rng = seed;
    snprintf(g_case, sizeof g_case, "random guards, %s family, seed %llu",
             family == POOLSIM_FAMILY_VERIFIER ? "verifier" : "retail", (unsigned long long)seed);

    for (size_t i = 0; i < RB_N; i++) {
        rblk *r = &g_rb[i];
        memset(r, 0, sizeof *r);
        /* Small sizes, slack or none, and big ones whose run ends close after them. */
        r->n = i % 8 == 7 ? 0x2000 - GRAN - rng_below(200)
                          : (rng_below(4) == 0 ? 1 + rng_below(SMALL_MAX) : 1 + rng_below(256));
        r->pool = rng_below(2) ? PagedPool : NonPagedPoolNx;
        r->p = alloc_n(r->pool, r->n);
        r->alloc_line = g_line_alloc;
        r->nb = guard_before(r->n);
        r->na = guard_end(r->n) - r->n;
        CHECK(r->na <= sizeof r->after);
        rb_save(r);
    }
    for (size_t i = 0; i < RB_N; i++) {
        rblk *r = &g_rb[i];
        switch (rng_below(6)) {
        case 2:
            rb_damage(r, true, false, false);
            break;
        case 3:
            rb_damage(r, false, true, false);
            break;
        case 4:
            rb_damage(r, true, true, false);
            break;
        case 5:
            rb_damage(r, false, false, true);
            break;
        default:
            break;
        }
        ndamaged += r->dmg_b + r->dmg_a > 0;
        order[i] = i;
    }
    CHECK(ndamaged > 0 && ndamaged < RB_N);
    for (size_t i = RB_N - 1; i > 0; i--) { /* free in a random order */
        size_t j = rng_below(i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (size_t k = 0; k < RB_N; k++) {
        rblk *r = &g_rb[order[k]];
        if (r->dmg_b + r->dmg_a == 0) {
            free_clean(r->p);
            continue;
        }
        {
            want w = r->dmg_b ? want_underrun(family, r->p) : want_overrun(family, r->n, r->p, r->first_a);
            EXPECT_ONE(w.code, w.arg[0], do_free(r->p));
            rb_check(r, last(), family, POOLSIM_BLOCK_LIVE);
        }
    }
    /* The damaged blocks are still live: one scan reports each of them once. */
    CHECK_EQ(validate_collect(), ndamaged);
    rb_check_scan(RB_N, ndamaged, family, POOLSIM_BLOCK_LIVE);
    for (size_t i = 0; i < RB_N; i++) {
        rblk *r = &g_rb[i];
        if (r->dmg_b + r->dmg_a == 0)
            continue;
        rb_restore(r);
        r->dmg_b = r->dmg_a = 0;
        free_clean(r->p);
    }
    CHECK_EQ(validate_collect(), 0);

    /* Now every block is quarantined: damage guards and poison again. */
    ndamaged = 0;
    for (size_t i = 0; i < RB_N; i++) {
        rblk *r = &g_rb[i];
        unsigned how = (unsigned)rng_below(8);
        if (how >= 5)
            continue;
        if (how == 0 || how == 4) { /* written after free: a run of random bytes */
            size_t at = rng_below(r->n), len = 1 + rng_below(r->n - at);
            for (size_t j = 0; j < len; j++)
                r->p[at + j] = (uint8_t)rng_next();
            r->dmg_u = 0;
            for (size_t j = 0; j < r->n; j++)
                if (r->p[j] != POISON && r->dmg_u++ == 0)
                    r->first_u = r->p + j;
        }
        rb_damage(r, how == 1 || how == 4, how == 2 || how == 4, how == 3);
        ndamaged += r->dmg_b + r->dmg_a + r->dmg_u > 0;
    }
    CHECK_EQ(validate_collect(), ndamaged);
    rb_check_scan(RB_N, ndamaged, family, POOLSIM_BLOCK_QUARANTINED);
    for (size_t i = 0; i < RB_N; i++) {
        rb_restore(&g_rb[i]);
        memset(g_rb[i].p, POISON, g_rb[i].n);
    }
    CHECK_EQ(validate_collect(), 0);
    g_case[0] = '\0';
}

static void test_corruption_robust_random_guards(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        robust_round(POOLSIM_FAMILY_VERIFIER, seed);
        robust_round(POOLSIM_FAMILY_RETAIL, seed * 1000003u);
    }
}

/* A smashed header never makes a free (or a scan) blame another block: not a
 * header copied from a neighbour, not one claiming another size, pool type or
 * tag, not a zeroed one. Bytes written into the next block's header are that
 * block's underrun: written through a pointer of the block before, whose own
 * guards are intact, they leave that block freeing cleanly; a linear overflow
 * through its footer into the next header reports both blocks, each once. */
static void test_corruption_robust_header_never_misblames(void **state)
{
    const POOL_TYPE pools[2] = {NonPagedPoolNx, PagedPool};
    (void)state;
    for (int k = 0; k < 2; k++) {
        mx m;
        m.size = 40;
        m.pool = pools[k];
        m.family = POOLSIM_FAMILY_VERIFIER;
        for (int how = 0; how < 6; how++) {
            uint8_t *a = mx_alloc(&m), *b = mx_alloc(&m), *c = mx_alloc(&m);
            const int aline = g_line_alloc;
            const size_t ge = guard_end(m.size), slot = ge + GRAN;
            uint8_t a_after[64];
            const uint8_t *first;
            size_t count;
            snprintf(g_case, sizeof g_case, "header smash %d, %s", how,
                     m.pool == PagedPool ? "PagedPool" : "NonPagedPoolNx");
            CHECK_EQ(U(b), U(a) + slot); /* consecutive slots: b's header follows a's footer */
            CHECK_EQ(U(c), U(b) + slot);
            memcpy(a_after, a + m.size, ge - m.size);
            snap_take(m.size, b);
            switch (how) {
            case 0: /* a neighbour's header, copied */
                memcpy(b - GRAN, c - GRAN, GRAN);
                break;
            case 1: /* BlockSize claims a bigger block */
                b[-(ptrdiff_t)GRAN + 2] = (uint8_t)(b[-(ptrdiff_t)GRAN + 2] + 7);
                break;
            case 2: /* another pool type and the tag of another allocation */
                b[-(ptrdiff_t)GRAN + 3] ^= 0x03;
                memcpy(b - GRAN + 4, "Fred", 4);
                break;
            case 3: /* zeroed: what a free block's header looks like */
                memset(b - GRAN, 0, GRAN);
                break;
            case 4: /* through a pointer of a, only b's header */
                memset(a + ge, 0x99, GRAN);
                break;
            default: /* a linear overflow of a, through its slack and footer into b's header */
                memset(a + m.size, 0x99, ge - m.size + GRAN);
                break;
            }
            count = snap_diff(b - GRAN, b, &first);
            CHECK(count > 0);
            if (how == 5) {
                size_t na = 0;
                const uint8_t *afirst = NULL;
                for (size_t i = 0; i < ge - m.size; i++)
                    if (a[m.size + i] != a_after[i] && na++ == 0)
                        afirst = a + m.size + i;
                CHECK(na > 0);
                EXPECT_WANT(want_overrun(m.family, m.size, a, afirst), do_free(a));
                check_block(last(), &m, a, POOLSIM_BLOCK_LIVE, aline, 0, NULL);
                CHECK_EQ(last()->damage[0].count, na);
                CHECK_EQ(last()->damage[1].kind, 0); /* b's header is not a's damage */
            } else {
                free_clean(a);
            }
            EXPECT_WANT(want_underrun(m.family, b), do_free(b));
            check_block(last(), &m, b, POOLSIM_BLOCK_LIVE, aline, 0, NULL);
            check_damage(&last()->damage[0], POOLSIM_DAMAGE_UNDERRUN, b, first, count, b);
            CHECK_EQ(last()->damage[1].kind, 0);
            free_clean(c); /* the neighbour after is not blamed */
            snap_restore();
            free_clean(b);
            if (how == 5) {
                memcpy(a + m.size, a_after, ge - m.size);
                free_clean(a);
            }
            validate_clean();
        }
    }
    g_case[0] = '\0';
}

/* ---- The !pool report ------------------------------------------------------------------------- */

#include "capture.h"

static unsigned count_of(const char *hay, const char *needle)
{
    unsigned n = 0;
    size_t len = strlen(needle);
    for (const char *s = strstr(hay, needle); s != NULL; s = strstr(s + len, needle))
        n++;
    return n;
}

/* The lines of the captured output that start with '*' (the containing
 * block); the only one is copied to out. */
static unsigned star_lines(char *out, size_t cap)
{
    unsigned n = 0;
    out[0] = '\0';
    for (const char *s = g_text; *s;) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (*s == '*' && n++ == 0) {
            size_t k = len < cap - 1 ? len : cap - 1;
            memcpy(out, s, k);
            out[k] = '\0';
        }
        s += len + (e ? 1 : 0);
    }
    return n;
}

static void report_of(const void *p, const char *star_state)
{
    char star[256];
    capture_start();
    poolsim_report_block(p);
    capture_stop();
    if (star_state == NULL) {
        CHECK_EQ(star_lines(star, sizeof star), 0);
        return;
    }
    CHECK_EQ(star_lines(star, sizeof star), 1);
    CHECK(strstr(star, star_state) != NULL);
    if (strcmp(star_state, "(Free)") != 0)
        CHECK(strstr(star, "*" TAG_TEXT) != NULL); /* the tag of the block holding the address, marked (§6.2) */
}

static void test_corruption_report_block(void **state)
{
    uint8_t *a, *b, *c, *big;
    int aline, bigline;
    char text[96];
    char *heap = (char *)malloc(16);
    (void)state;
    CHECK(heap != NULL);
    a = alloc_n(NonPagedPoolNx, 40);
    aline = g_line_alloc;
    b = alloc_n(NonPagedPoolNx, 40);
    c = alloc_n(NonPagedPoolNx, 40);
    big = alloc_n(PagedPool, 0x1800);
    bigline = g_line_alloc;
    free_clean(b);

    report_of(a + 5, "(Allocated)");
    CHECK(strstr(g_text, "slab of 64-byte") != NULL); /* header 16, 40 bytes, footer 8 */
    CHECK_EQ(count_of(g_text, "(Quarantined) " TAG_TEXT), 1); /* b, on the same page */
    CHECK_EQ(count_of(g_text, "(Allocated) *" TAG_TEXT), 1);  /* a: the block holding the address (§6.2) */
    CHECK_EQ(count_of(g_text, "(Allocated)  " TAG_TEXT), 1);  /* c */
    CHECK(strstr(g_text, "Block:") != NULL);
    CHECK(strstr(g_text, "size 0x28 (40) tag XTag") != NULL);
    CHECK(strstr(g_text, "NonPagedPoolNx, live") != NULL);
    snprintf(text, sizeof text, "test_corruption.c:%d by ExAllocatePoolWithTag", aline);
    CHECK(strstr(g_text, text) != NULL);
    CHECK(strstr(g_text, "freed at") == NULL);

    report_of(a - GRAN, "(Allocated)"); /* the header belongs to the block */
    report_of(a + 40, "(Allocated)");   /* so do its slack and footer */

    report_of(b, "(Quarantined)");
    CHECK(strstr(g_text, "NonPagedPoolNx, quarantined") != NULL);
    snprintf(text, sizeof text, "freed at tests/test_corruption.c:%d by ExFreePoolWithTag", g_line_free);
    CHECK(strstr(g_text, text) != NULL);

    CHECK_EQ(U(c), U(a) + 128); /* consecutive slots: the one after c was never used */
    report_of(c + 64, "(Free)");
    CHECK(strstr(g_text, "Block:") == NULL);

    report_of(big + 0x1000, "(Allocated)");
    CHECK(strstr(g_text, "big block") != NULL);
    CHECK(strstr(g_text, "size 0x1800 (6144) tag XTag") != NULL);
    CHECK(strstr(g_text, "PagedPool, live") != NULL);
    snprintf(text, sizeof text, "test_corruption.c:%d", bigline);
    CHECK(strstr(g_text, text) != NULL);
    report_of(big - 1, "(Allocated)"); /* the canaries before it */

    report_of(heap, NULL);
    CHECK(strstr(g_text, "not an address in poolsim's pool") != NULL);
    report_of(NULL, NULL);

    free_clean(a);
    free_clean(c);
    report_of(big, "(Allocated)");
    free_clean(big);
    report_of(big, "(Quarantined)");
    CHECK(strstr(g_text, "PagedPool, quarantined") != NULL);
    free(heap);
}

/* ---- MemCheck's switches ------------------------------------------------------------------------ */

/* print_frees: one line per free that frees; none for a free that reports. */
static void test_corruption_print_frees(void **state)
{
    poolsim_options o = poolsim_cmocka_default_options();
    char on_stack[8], text[96];
    uint8_t *a, *b;
    (void)state;
    o.print_frees = 1;
    poolsim_cmocka_reinit(&o);
    a = alloc_n(PagedPool, 40);
    b = alloc_n(NonPagedPoolNx, 0x1800);
    capture_start();
    do_free(a);
    do_free2(b);
    EXPECT_ONE(0xC4, 0x10, do_free(on_stack));
    EXPECT_ONE(0xC4, 0x13, do_free(a));
    capture_stop();
    CHECK_EQ(count_of(g_text, "poolsim: free "), 2);
    snprintf(text, sizeof text, "size 40 tag XTag at ");
    CHECK(strstr(g_text, text) != NULL);
    snprintf(text, sizeof text, "test_corruption.c:%d (ExFreePoolWithTag)", g_line_free);
    CHECK(strstr(g_text, text) != NULL);
    snprintf(text, sizeof text, "test_corruption.c:%d (ExFreePool2)", g_line_free2);
    CHECK(strstr(g_text, text) != NULL);
    CHECK(strstr(g_text, "size 6144 tag XTag") != NULL);

    /* The twin: off by default. */
    poolsim_cmocka_reinit(NULL);
    a = alloc_n(PagedPool, 40);
    capture_start();
    free_clean(a);
    capture_stop();
    CHECK_EQ(count_of(g_text, "poolsim: free "), 0);
}

/* halt_on_bad with no debugger attached: the bug checks are delivered and the
 * test goes on. */
static void test_corruption_halt_on_bad(void **state)
{
    poolsim_options o = poolsim_cmocka_default_options();
    uint8_t *p;
    size_t bad = 0;
    (void)state;
    o.halt_on_bad = 1;
    poolsim_cmocka_reinit(&o);
    p = alloc_n(NonPagedPoolNx, 48);
    free_clean(p);
    EXPECT_WANT(want_double(POOLSIM_FAMILY_VERIFIER, p, header_word(48, p)), do_free(p));
    p[47] = WAF_BYTE;
    EXPECT_WANT(want_waf(POOLSIM_FAMILY_VERIFIER, p, p + 47), bad = poolsim_validate());
    CHECK_EQ(bad, 1);
    p[47] = POISON;
    validate_clean();
}

/* max_reports with the default handler in continue_on_bugcheck mode: the
 * first max_reports bug checks are printed, one line says the rest are only
 * counted, and every one is counted; 0 means no cap. */
static void max_reports_round(uint32_t max, unsigned raised)
{
    poolsim_options o = poolsim_cmocka_default_options();
    char on_stack[8];
    uint64_t before;
    uint8_t *p;
    poolsim_stats st;
    o.continue_on_bugcheck = 1;
    o.max_reports = max;
    o.max_repeats = 0; /* the bad frees below repeat one violation at one site: max_repeats would quiet them */
    poolsim_cmocka_reinit(&o);
    p = alloc_n(NonPagedPoolNx, 40);
    before = poolsim_bugcheck_count();
    poolsim_set_bugcheck_handler(NULL, NULL);
    capture_start();
    for (unsigned i = 0; i + 2 < raised; i++)
        do_free(on_stack);
    do_free(p);
    do_free(p); /* a double free, reported and ignored */
    p[0] = WAF_BYTE;
    (void)poolsim_validate(); /* a write after free */
    capture_stop();
    poolsim_cmocka_install_handler();
    p[0] = POISON;
    CHECK_EQ(poolsim_bugcheck_count() - before, raised);
    poolsim_get_stats(&st);
    CHECK_EQ(st.bugchecks, raised);
    if (max == 0 || max >= raised) {
        CHECK_EQ(count_of(g_text, "*** Fatal System Error"), raised);
        CHECK_EQ(count_of(g_text, "further reports are counted"), 0);
    } else {
        char text[64];
        CHECK_EQ(count_of(g_text, "*** Fatal System Error"), max);
        CHECK_EQ(count_of(g_text, "further reports are counted"), 1);
        snprintf(text, sizeof text, "poolsim: %u reports printed", max);
        CHECK(strstr(g_text, text) != NULL);
    }
    CHECK_EQ(count_of(g_text, "DRIVER_CAUGHT_MODIFYING_FREED_POOL"), max == 0 || max >= raised ? 2 : 0);
    CHECK_EQ(poolsim_cmocka_unexpected(), 0);
    validate_clean();
}

static void test_corruption_max_reports(void **state)
{
    (void)state;
    max_reports_round(2, 7);
    max_reports_round(0, 7);
    max_reports_round(7, 7);
    max_reports_round(1, 3);
}

/* ---- Main --------------------------------------------------------------------------------------- */

/* The teardown says in which matrix case a failed test stopped. */
static int corruption_teardown(void **state)
{
    if (g_case[0] != '\0')
        print_error("    (the test stopped in: %s)\n", g_case);
    g_case[0] = '\0';
    poolsim_set_output(NULL, NULL);
    poolsim_cmocka_install_handler();
    return poolsim_cmocka_teardown(state);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, poolsim_cmocka_setup, corruption_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_corruption_overrun_one_byte),
        T(test_corruption_overrun_footer),
        T(test_corruption_overrun_into_next_header),
        T(test_corruption_underrun_header),
        T(test_corruption_header_smash),
        T(test_corruption_both_sides),
        T(test_corruption_waf_validate),
        T(test_corruption_waf_eviction),
        T(test_corruption_waf_shutdown),
        T(test_corruption_waf_eviction_longjmp),
        T(test_corruption_quarantine_check_range),
        T(test_corruption_after_free_guards),
        T(test_corruption_double_free_at_once),
        T(test_corruption_double_free_after_others),
        T(test_corruption_double_free_after_quarantine),
        T(test_corruption_double_free_smashed_header),
        T(test_corruption_free_interior),
        T(test_corruption_free_misaligned),
        T(test_corruption_free_foreign),
        T(test_corruption_twin_last_byte),
        T(test_corruption_twin_realloc_pattern),
        T(test_corruption_twin_read_neighbour),
        T(test_corruption_twin_quarantine_neighbours),
        T(test_corruption_twin_validate_clean),
        T(test_corruption_valid_access_edges),
        T(test_corruption_find_block_edges),
        T(test_corruption_robust_random_guards),
        T(test_corruption_robust_header_never_misblames),
        T(test_corruption_report_block),
        T(test_corruption_print_frees),
        T(test_corruption_halt_on_bad),
        T(test_corruption_max_reports),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    print_message("test_corruption: %lu bug-check cases asserted\n", g_ncases);
    return failed;
}
