/* SPDX-License-Identifier: MIT */
/*
 * test_report.c — the exact text of every report (src/report.c).
 *
 * This is the one test that reads report text: its job is the text. It pins
 * the !poolused table (wdk-semantics.md §6.1: the summary layout, verbose
 * with per-site rows, sorting by nonpaged or paged bytes, tag patterns with
 * '?' and '*'), the !verifier 3 style list of outstanding blocks (§6.4), the
 * statistics, the !analyze-style bug-check report (§1.0), the three JSON
 * reports (checked well-formed by a small JSON parser written here, and for
 * their values), and the leak table that poolsim_shutdown prints before the
 * leak bug check (§1.1: C4/0x62 with the driver name, or C4/0x60 with the
 * paged and nonpaged bytes) — and its absence when nothing leaked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core.h"

/* ---- Helpers --------------------------------------------------------------------------------- */

#define TAG4(a, b, c, d)                                                                                     \
    ((uint32_t)(uint8_t)(a) | (uint32_t)(uint8_t)(b) << 8 | (uint32_t)(uint8_t)(c) << 16 |                   \
     (uint32_t)(uint8_t)(d) << 24)
#define TAG_X TAG4('X', 'T', 'a', 'g') /* 'gaTX', 1734431832 */
#define TAG_F TAG4('F', 'r', 'e', 'd') /* 'derF', 1684369990 */
#define TAG_Z TAG4('Z', 'z', 'z', '9')
#define TAG_AB 0x6162u /* 'ab': shows "ba  " */

#define NONPAGED 0u
#define PAGED 1u
#define NONPAGED_NX 512u

#define FILE_R "drv/r.c"
#define PTRW ((int)sizeof(uintptr_t) * 2)

/* Captured output. */
static struct {
    char text[1 << 18];
    size_t len;
    bool overflow;
} g_out;

static void capture(const char *text, void *ctx)
{
    size_t n = strlen(text);
    (void)ctx;
    if (g_out.len + n >= sizeof g_out.text) {
        n = sizeof g_out.text - 1 - g_out.len;
        g_out.overflow = true;
    }
    memcpy(g_out.text + g_out.len, text, n);
    g_out.len += n;
    g_out.text[g_out.len] = '\0';
}

static void out_reset(void)
{
    g_out.len = 0;
    g_out.text[0] = '\0';
}

/* Bug checks: recorded, with how much output had been written by then. */
static struct {
    unsigned count;
    poolsim_bugcheck last;
    size_t out_len;
    char driver[64]; /* the string Arg2 of C4/0x62 points to, read in the handler */
} g_bc;

static void record(const poolsim_bugcheck *bc, void *ctx)
{
    (void)ctx;
    g_bc.count++;
    g_bc.last = *bc;
    g_bc.out_len = g_out.len;
    if (bc->code == 0xC4 && bc->param[0] == 0x62 && bc->param[1])
        snprintf(g_bc.driver, sizeof g_bc.driver, "%s", (const char *)bc->param[1]);
}

static poolsim_options default_opts(void)
{
    poolsim_options o;
    poolsim_options_default(&o);
    return o;
}

static int setup(void **state)
{
    poolsim_options o = default_opts();
    (void)state;
    memset(&g_bc, 0, sizeof g_bc);
    out_reset();
    g_out.overflow = false;
    poolsim_set_output(capture, NULL);
    poolsim_set_bugcheck_handler(record, NULL);
    return poolsim_init(&o) == POOLSIM_OK ? 0 : -1;
}

static int teardown(void **state)
{
    size_t left;
    (void)state;
    left = poolsim_shutdown();
    poolsim_set_bugcheck_handler(NULL, NULL);
    poolsim_set_output(NULL, NULL);
    return left == 0 && !g_out.overflow && g_bc.count == 0 ? 0 : -1;
}

static void restart(const poolsim_options *o)
{
    assert_int_equal(poolsim_shutdown(), 0);
    assert_int_equal(poolsim_init(o), POOLSIM_OK);
}

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

static void *alloc_at(uint32_t type, size_t n, uint32_t tag, int line)
{
    void *p = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, type, n, tag, FILE_R, line);
    assert_non_null(p);
    return p;
}

static void free_at(void *p, uint32_t tag, int line)
{
    poolsim_pool_free(POOLSIM_RT_EX_FREE_POOL_WITH_TAG, p, tag, NULL, 0, FILE_R, line);
}

/* Appends printf-formatted text to a growing expected string. */
typedef struct text {
    char s[1 << 14];
    size_t len;
} text;

static void add(text *t, const char *fmt, ...)
{
    va_list ap;
    size_t room = sizeof t->s - t->len;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(&t->s[t->len], room, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < room);
    t->len += (size_t)n;
}

/* poolsim prints pointers as 0x and every hex digit. */
static const char *ptr_text(const void *p, char buf[24])
{
    snprintf(buf, 24, "0x%0*llx", PTRW, (unsigned long long)(uintptr_t)p);
    return buf;
}

/* The number of lines in s equal to `line` (without its newline). */
static unsigned line_count(const char *s, const char *line)
{
    unsigned n = 0;
    size_t len = strlen(line);
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t l = nl ? (size_t)(nl - s) : strlen(s);
        if (l == len && memcmp(s, line, len) == 0)
            n++;
        s += l + (nl ? 1 : 0);
    }
    return n;
}

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static unsigned lines_in(const char *s)
{
    unsigned n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ---- A small JSON parser: true when s is exactly one well-formed value ----------------------- */

static const char *json_value(const char *s, int depth);

static const char *json_ws(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return s;
}

static const char *json_string(const char *s)
{
    if (*s != '"')
        return NULL;
    for (s++; *s != '"'; s++) {
        if ((unsigned char)*s < 0x20)
            return NULL;
        if (*s == '\\') {
            s++;
            if (*s == 'u') {
                for (int i = 1; i <= 4; i++) {
                    char c = s[i];
                    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                        return NULL;
                }
                s += 4;
            } else if (!strchr("\"\\/bfnrt", *s) || !*s) {
                return NULL;
            }
        }
    }
    return s + 1;
}

static const char *json_number(const char *s)
{
    const char *start;
    if (*s == '-')
        s++;
    start = s;
    if (*s == '0')
        s++;
    else
        while (*s >= '0' && *s <= '9')
            s++;
    if (s == start)
        return NULL;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9'))
            return NULL;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return NULL;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return s;
}

static const char *json_list(const char *s, char close, bool members, int depth)
{
    s = json_ws(s + 1);
    if (*s == close)
        return s + 1;
    for (;;) {
        if (members) {
            s = json_string(s);
            if (!s)
                return NULL;
            s = json_ws(s);
            if (*s != ':')
                return NULL;
            s = json_ws(s + 1);
        }
        s = json_value(s, depth + 1);
        if (!s)
            return NULL;
        s = json_ws(s);
        if (*s == close)
            return s + 1;
        if (*s != ',')
            return NULL;
        s = json_ws(s + 1);
    }
}

static const char *json_value(const char *s, int depth)
{
    if (depth > 32)
        return NULL;
    switch (*s) {
    case '{':
        return json_list(s, '}', true, depth);
    case '[':
        return json_list(s, ']', false, depth);
    case '"':
        return json_string(s);
    case 't':
        return strncmp(s, "true", 4) == 0 ? s + 4 : NULL;
    case 'f':
        return strncmp(s, "false", 5) == 0 ? s + 5 : NULL;
    case 'n':
        return strncmp(s, "null", 4) == 0 ? s + 4 : NULL;
    default:
        return json_number(s);
    }
}

static bool json_ok(const char *s)
{
    const char *end = json_value(json_ws(s), 0);
    return end != NULL && *json_ws(end) == '\0';
}

static void test_report_json_checker(void **state)
{
    (void)state;
    assert_true(json_ok("{}"));
    assert_true(json_ok("{\"a\":[1,-2,3.5e+2,true,false,null,\"x\\\"y\\\\z\\u00e9\"],\"b\":{}}\n"));
    assert_false(json_ok("{"));
    assert_false(json_ok("{\"a\":1,}"));
    assert_false(json_ok("[1 2]"));
    assert_false(json_ok("{\"a\" 1}"));
    assert_false(json_ok("\"unterminated"));
    assert_false(json_ok("\"bad \\q escape\""));
    assert_false(json_ok("{} {}"));
    assert_false(json_ok("[01]"));
    assert_false(json_ok("{\"a\":\"raw\nnewline\"}"));
}

/* ---- The scenario of the !poolused tests ----------------------------------------------------- */

/* XTag: nonpaged 100 (freed), 200 at line 10, 300 at line 11; paged 64 at line 12.
 * Fred: paged 1000 and 24 at line 20.  Zzz9: nonpaged 5000 at line 30, freed.
 * "ba  ": nonpaged 7 at line 40. */
typedef struct scenario {
    void *x[4], *f[2], *ab;
} scenario;

static void scenario_make(scenario *sc)
{
    sc->x[0] = alloc_at(NONPAGED, 100, TAG_X, 10);
    sc->x[1] = alloc_at(NONPAGED_NX, 200, TAG_X, 10);
    sc->x[2] = alloc_at(NONPAGED, 300, TAG_X, 11);
    sc->x[3] = alloc_at(PAGED, 64, TAG_X, 12);
    sc->f[0] = alloc_at(PAGED, 1000, TAG_F, 20);
    sc->f[1] = alloc_at(PAGED, 24, TAG_F, 20);
    free_at(alloc_at(NONPAGED, 5000, TAG_Z, 30), TAG_Z, 31);
    sc->ab = alloc_at(NONPAGED, 7, TAG_AB, 40);
    free_at(sc->x[0], TAG_X, 13);
}

static void scenario_free(scenario *sc)
{
    for (int i = 1; i < 4; i++)
        free_at(sc->x[i], TAG_X, 14);
    free_at(sc->f[0], TAG_F, 21);
    free_at(sc->f[1], TAG_F, 21);
    free_at(sc->ab, TAG_AB, 41);
}

#define ROW " %-4s%9llu%9llu%10llu%9llu\n"
#define TOTAL " TOTAL%8llu%9llu%10llu%9llu\n"

static void summary_head(text *t, const char *by)
{
    add(t, "   Sorting by  %s\n\n  Pool Used:\n", by);
    add(t, "            NonPaged            Paged\n");
    add(t, " Tag    Allocs     Used    Allocs     Used\n");
}

static void row_fred(text *t) { add(t, ROW, "Fred", 0ull, 0ull, 2ull, 1024ull); }
static void row_xtag(text *t) { add(t, ROW, "XTag", 2ull, 500ull, 1ull, 64ull); }
static void row_zzz9(text *t) { add(t, ROW, "Zzz9", 0ull, 0ull, 0ull, 0ull); }
static void row_ba(text *t) { add(t, ROW, "ba  ", 1ull, 7ull, 0ull, 0ull); }

static void test_report_poolused_summary(void **state)
{
    scenario sc;
    text want = {{0}, 0};
    (void)state;
    scenario_make(&sc);
    out_reset();
    poolsim_report_poolused(0, NULL);

    summary_head(&want, "Tag");
    row_fred(&want);
    row_xtag(&want);
    row_zzz9(&want);
    row_ba(&want);
    add(&want, TOTAL, 3ull, 507ull, 3ull, 1088ull);
    assert_string_equal(g_out.text, want.s);
    /* The literal layout, once, without the format strings. */
    assert_int_equal(line_count(g_out.text, " Tag    Allocs     Used    Allocs     Used"), 1);
    assert_int_equal(line_count(g_out.text, " XTag        2      500         1       64"), 1);
    assert_int_equal(line_count(g_out.text, " TOTAL       3      507         3     1088"), 1);

    /* "*", "" and NULL are every tag. */
    out_reset();
    poolsim_report_poolused(0, "*");
    assert_string_equal(g_out.text, want.s);
    out_reset();
    poolsim_report_poolused(0, "");
    assert_string_equal(g_out.text, want.s);
    scenario_free(&sc);
}

static void test_report_poolused_sorted(void **state)
{
    scenario sc;
    text want = {{0}, 0};
    (void)state;
    scenario_make(&sc);

    /* Flag 2: nonpaged bytes, most first; ties by tag. */
    out_reset();
    poolsim_report_poolused(POOLSIM_POOLUSED_SORT_NONPAGED, NULL);
    summary_head(&want, "NonPaged Used");
    row_xtag(&want);
    row_ba(&want);
    row_fred(&want);
    row_zzz9(&want);
    add(&want, TOTAL, 3ull, 507ull, 3ull, 1088ull);
    assert_string_equal(g_out.text, want.s);

    /* Flag 4: paged bytes. */
    out_reset();
    want.len = 0;
    poolsim_report_poolused(POOLSIM_POOLUSED_SORT_PAGED, NULL);
    summary_head(&want, "Paged Used");
    row_fred(&want);
    row_xtag(&want);
    row_zzz9(&want);
    row_ba(&want);
    add(&want, TOTAL, 3ull, 507ull, 3ull, 1088ull);
    assert_string_equal(g_out.text, want.s);
    scenario_free(&sc);
}

static void test_report_poolused_patterns(void **state)
{
    static const struct {
        const char *pattern;
        const char *rows; /* X F Z b: which rows, in tag order */
    } cases[] = {
        {"X*", "X"},  {"?Tag", "X"},    {"XTag", "X"}, {"XT?g", "X"}, {"*g", "X"},    {"*a*", "Xb"},
        {"F*d", "F"}, {"????", "FXZb"}, {"b*", "b"},   {"ba??", "b"}, {"ba  ", "b"},  {"ba", ""},
        {"Q*", ""},   {"xtag", ""},     {"XTag?", ""}, {"?", ""},     {"**", "FXZb"}, {"Z*9", "Z"},
    };
    scenario sc;
    (void)state;
    scenario_make(&sc);
    for (size_t i = 0; i < PSIM_COUNTOF(cases); i++) {
        text want = {{0}, 0};
        unsigned long long a0 = 0, u0 = 0, a1 = 0, u1 = 0;
        summary_head(&want, "Tag");
        for (const char *r = cases[i].rows; *r; r++) {
            switch (*r) {
            case 'F':
                row_fred(&want);
                a1 += 2;
                u1 += 1024;
                break;
            case 'X':
                row_xtag(&want);
                a0 += 2;
                u0 += 500;
                a1 += 1;
                u1 += 64;
                break;
            case 'Z':
                row_zzz9(&want);
                break;
            default:
                row_ba(&want);
                a0 += 1;
                u0 += 7;
                break;
            }
        }
        add(&want, TOTAL, a0, u0, a1, u1);
        out_reset();
        poolsim_report_poolused(0, cases[i].pattern);
        if (strcmp(g_out.text, want.s) != 0)
            print_error("pattern \"%s\"\n", cases[i].pattern);
        assert_string_equal(g_out.text, want.s);
    }
    scenario_free(&sc);
}

static void test_report_poolused_verbose(void **state)
{
    scenario sc;
    text want = {{0}, 0};
#define VROW " %-4s%10llu%9llu%9llu%9llu%11llu%9llu%9llu%9llu\n"
#define VSITE "     %10llu%9llu%9llu%9llu%11llu%9llu%9llu%9llu  %s:%d %s\n"
    (void)state;
    scenario_make(&sc);
    out_reset();
    poolsim_report_poolused(POOLSIM_POOLUSED_VERBOSE, NULL);

    add(&want, "   Sorting by  Tag\n\n  Pool Used:\n");
    add(&want, "            NonPaged                                  Paged\n");
    add(&want, " Tag     Allocs    Frees     Diff     Used     Allocs    Frees     Diff     Used\n");
    add(&want, VROW, "Fred", 0ull, 0ull, 0ull, 0ull, 2ull, 0ull, 2ull, 1024ull);
    add(&want, VSITE, 0ull, 0ull, 0ull, 0ull, 2ull, 0ull, 2ull, 1024ull, FILE_R, 20, "ExAllocatePoolWithTag");
    add(&want, VROW, "XTag", 3ull, 1ull, 2ull, 500ull, 1ull, 0ull, 1ull, 64ull);
    add(&want, VSITE, 2ull, 1ull, 1ull, 200ull, 0ull, 0ull, 0ull, 0ull, FILE_R, 10, "ExAllocatePoolWithTag");
    add(&want, VSITE, 1ull, 0ull, 1ull, 300ull, 0ull, 0ull, 0ull, 0ull, FILE_R, 11, "ExAllocatePoolWithTag");
    add(&want, VSITE, 0ull, 0ull, 0ull, 0ull, 1ull, 0ull, 1ull, 64ull, FILE_R, 12, "ExAllocatePoolWithTag");
    add(&want, VROW, "Zzz9", 1ull, 1ull, 0ull, 0ull, 0ull, 0ull, 0ull, 0ull);
    add(&want, VSITE, 1ull, 1ull, 0ull, 0ull, 0ull, 0ull, 0ull, 0ull, FILE_R, 30, "ExAllocatePoolWithTag");
    add(&want, VROW, "ba  ", 1ull, 0ull, 1ull, 7ull, 0ull, 0ull, 0ull, 0ull);
    add(&want, VSITE, 1ull, 0ull, 1ull, 7ull, 0ull, 0ull, 0ull, 0ull, FILE_R, 40, "ExAllocatePoolWithTag");
    add(&want, " TOTAL%9llu%9llu%9llu%9llu%11llu%9llu%9llu%9llu\n", 5ull, 2ull, 3ull, 507ull, 3ull, 0ull,
        3ull, 1088ull);
    assert_string_equal(g_out.text, want.s);
    assert_int_equal(line_count(g_out.text,
                                "              2        1        1      200          0        0        0"
                                "        0  drv/r.c:10 ExAllocatePoolWithTag"),
                     1);

    /* Verbose with a pattern and a sort. */
    out_reset();
    want.len = 0;
    poolsim_report_poolused(POOLSIM_POOLUSED_VERBOSE | POOLSIM_POOLUSED_SORT_PAGED, "F*");
    add(&want, "   Sorting by  Paged Used\n\n  Pool Used:\n");
    add(&want, "            NonPaged                                  Paged\n");
    add(&want, " Tag     Allocs    Frees     Diff     Used     Allocs    Frees     Diff     Used\n");
    add(&want, VROW, "Fred", 0ull, 0ull, 0ull, 0ull, 2ull, 0ull, 2ull, 1024ull);
    add(&want, VSITE, 0ull, 0ull, 0ull, 0ull, 2ull, 0ull, 2ull, 1024ull, FILE_R, 20, "ExAllocatePoolWithTag");
    add(&want, " TOTAL%9llu%9llu%9llu%9llu%11llu%9llu%9llu%9llu\n", 0ull, 0ull, 0ull, 0ull, 2ull, 0ull, 2ull,
        1024ull);
    assert_string_equal(g_out.text, want.s);
    scenario_free(&sc);
#undef VROW
#undef VSITE
}

/* Site file names show their last two path components. */
static void test_report_poolused_site_paths(void **state)
{
    void *a, *b, *c;
    (void)state;
    a = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, NONPAGED, 8, TAG_X, "/home/me/src/drv/io.c", 5);
    b = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, NONPAGED, 8, TAG_X, "C:\\src\\drv\\pnp.c", 6);
    c = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL2, PSIM_PF_NON_PAGED, 8, TAG_X, "top.c", 7);
    out_reset();
    poolsim_report_poolused(POOLSIM_POOLUSED_VERBOSE, NULL);
    assert_non_null(strstr(g_out.text, "  drv/io.c:5 ExAllocatePoolWithTag\n"));
    assert_non_null(strstr(g_out.text, "  drv\\pnp.c:6 ExAllocatePoolWithTag\n"));
    assert_non_null(strstr(g_out.text, "  top.c:7 ExAllocatePool2\n"));
    assert_null(strstr(g_out.text, "home"));
    free_at(a, TAG_X, 1);
    free_at(b, TAG_X, 1);
    free_at(c, TAG_X, 1);
}

/* Empty instance: the head and a zero total. A tag whose only request failed
 * is listed too. */
static void test_report_poolused_empty_and_failed(void **state)
{
    text want = {{0}, 0};
    (void)state;
    out_reset();
    poolsim_report_poolused(0, NULL);
    summary_head(&want, "Tag");
    add(&want, TOTAL, 0ull, 0ull, 0ull, 0ull);
    assert_string_equal(g_out.text, want.s);

    assert_null(
        alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL2, PSIM_PF_PAGED | PSIM_PF_NON_PAGED, 8, TAG_F, FILE_R, 1));
    out_reset();
    want.len = 0;
    poolsim_report_poolused(0, NULL);
    summary_head(&want, "Tag");
    add(&want, ROW, "Fred", 0ull, 0ull, 0ull, 0ull);
    add(&want, TOTAL, 0ull, 0ull, 0ull, 0ull);
    assert_string_equal(g_out.text, want.s);
}

/* The overflow row shows as "....". */
static void test_report_poolused_overflow_row(void **state)
{
    static void *blocks[POOLSIM_TAG_CAPACITY];
    const unsigned limit = POOLSIM_TAG_CAPACITY / 4 * 3, total = limit + 3;
    text want = {{0}, 0};
    (void)state;
    for (unsigned i = 0; i < total; i++)
        blocks[i] =
            alloc_at(NONPAGED, 16, TAG4('T', '0' + i / 100 % 10, '0' + i / 10 % 10, 'A' + i % 10), 50);
    out_reset();
    poolsim_report_poolused(0, "....");
    summary_head(&want, "Tag");
    add(&want, ROW, "....", 3ull, 48ull, 0ull, 0ull);
    add(&want, TOTAL, 3ull, 48ull, 0ull, 0ull);
    assert_string_equal(g_out.text, want.s);
    out_reset();
    poolsim_report_poolused(0, "T*");
    assert_int_equal(lines_in(g_out.text), 5 + limit + 1);
    for (unsigned i = 0; i < total; i++)
        free_at(blocks[i], TAG4('T', '0' + i / 100 % 10, '0' + i / 10 % 10, 'A' + i % 10), 51);
}

/* ---- Outstanding blocks (!verifier 3) -------------------------------------------------------- */

static void outstanding_head(text *t)
{
    add(t, " %-*s  %-*s  Tag   %-26s %8s  Caller\n", PTRW + 2, "Address", PTRW + 2, "Length", "Pool", "Seq");
}

static void outstanding_row(text *t, const void *p, size_t size, const char *tag, const char *pool,
                            unsigned long long seq, const char *file, int line, const char *routine)
{
    char a[24];
    add(t, " %s  0x%0*llx  %s  %-26s %8llu  %s:%d (%s)\n", ptr_text(p, a), PTRW, (unsigned long long)size,
        tag, pool, seq, file, line, routine);
}

/* Checks the table in g_out after `first_line`: head, the rows in any order
 * (the arena's order), and the closing count. */
static void check_table(const char *first_line, const text *head, const text *rows, unsigned nrows,
                        const char *last_line)
{
    const char *s = g_out.text;
    assert_true(starts_with(s, first_line));
    s += strlen(first_line);
    assert_true(starts_with(s, head->s));
    s += head->len;
    /* Every expected row is there exactly once, and nothing else. */
    {
        const char *r = rows->s;
        unsigned seen = 0;
        while (*r) {
            const char *nl = strchr(r, '\n');
            char line[256];
            size_t n = (size_t)(nl - r);
            assert_true(n < sizeof line);
            memcpy(line, r, n);
            line[n] = '\0';
            assert_int_equal(line_count(s, line), 1);
            seen++;
            r = nl + 1;
        }
        assert_int_equal(seen, nrows);
    }
    assert_int_equal(lines_in(s), nrows + 1);
    assert_non_null(strstr(s, last_line));
    assert_string_equal(s + strlen(s) - strlen(last_line), last_line);
}

static void test_report_outstanding(void **state)
{
    void *a, *b, *c, *d;
    text head = {{0}, 0}, rows = {{0}, 0};
    (void)state;
    a = alloc_at(NONPAGED, 0x64, TAG_X, 60);                                              /* seq 1 */
    b = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL2, PSIM_PF_PAGED, 0x1800, TAG_F, FILE_R, 61); /* seq 2 */
    c = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL2, PSIM_PF_NON_PAGED, 0x10, TAG_X, "a/b/c/deep.c",
                 62);                                              /* seq 3 */
    d = alloc_at(4 /* NonPagedPoolCacheAligned */, 3, TAG_AB, 63); /* seq 4 */
    free_at(a, TAG_X, 64);                                         /* seq 5 */
    assert_non_null(b);
    assert_non_null(c);
    out_reset();
    poolsim_report_outstanding();

    outstanding_head(&head);
    outstanding_row(&rows, b, 0x1800, "Fred", "PagedPool", 2, FILE_R, 61, "ExAllocatePool2");
    outstanding_row(&rows, c, 0x10, "XTag", "NonPagedPoolNx", 3, "c/deep.c", 62, "ExAllocatePool2");
    outstanding_row(&rows, d, 3, "ba  ", "NonPagedPoolCacheAligned", 4, FILE_R, 63, "ExAllocatePoolWithTag");
    check_table("poolsim: outstanding allocations (!verifier 3)\n", &head, &rows, 3,
                " 3 allocation(s) outstanding, 6163 bytes\n");
    /* The literal header on 64-bit. */
    if (sizeof(void *) == 8)
        assert_int_equal(line_count(g_out.text,
                                    " Address             Length              Tag   Pool                    "
                                    "        Seq  Caller"),
                         1);

    free_at(b, TAG_F, 65);
    free_at(c, TAG_X, 65);
    free_at(d, TAG_AB, 65);
    out_reset();
    poolsim_report_outstanding();
    head.len = 0;
    add(&head, "poolsim: outstanding allocations (!verifier 3)\n");
    outstanding_head(&head);
    add(&head, " 0 allocation(s) outstanding, 0 bytes\n");
    assert_string_equal(g_out.text, head.s);
}

/* ---- Statistics -------------------------------------------------------------------------------------------
 */

/* A row longer than a line (511 characters: a call site's last two path components can be anything) is cut
 * and ends in "..." and its newline: the next row still starts a line of its own. */
static void test_report_outstanding_long_site(void **state)
{
    static char path[700];
    void *a, *b;
    (void)state;
    memcpy(path, "/src/", 5);
    memset(path + 5, 'd', 600);
    memcpy(path + 605, "/file.c", 8);
    a = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL2, PSIM_PF_NON_PAGED, 40, TAG_X, path, 42);
    b = alloc_at(NONPAGED, 24, TAG_F, 43);
    out_reset();
    poolsim_report_outstanding();
    assert_non_null(strstr(g_out.text, "ddd...\n"));
    unsigned rows = 0;
    for (const char *l = g_out.text; *l;) { /* every line at most 511 characters, each row on its own */
        char one[512];
        const char *e = strchr(l, '\n');
        assert_non_null(e);
        assert_true(e - l < 511);
        memcpy(one, l, (size_t)(e - l));
        one[e - l] = '\0';
        rows += strstr(one, "XTag") != NULL;
        rows += strstr(one, "Fred") != NULL;
        assert_false(strstr(one, "XTag") && strstr(one, "Fred"));
        l = e + 1;
    }
    assert_int_equal(rows, 2);
    free_at(a, TAG_X, 44);
    free_at(b, TAG_F, 44);
}

static void test_report_stats(void **state)
{
    scenario sc;
    poolsim_stats s;
    text want = {{0}, 0};
    (void)state;
    scenario_make(&sc);
    assert_null(
        alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL2, PSIM_PF_PAGED | PSIM_PF_NON_PAGED, 8, TAG_F, FILE_R, 1));
    poolsim_bugcheck_raise(0xDEAD, 0, 0, 0, 0, NULL, 0, NULL);
    g_bc.count = 0;
    poolsim_get_stats(&s);
    out_reset();
    poolsim_report_stats();
    add(&want, "poolsim: statistics\n");
    add(&want, "  Pool Allocations Attempted      9\n");
    add(&want, "  Pool Allocations Succeeded      8\n");
    add(&want, "  Pool Allocations Succeeded SpecialPool 0 (0 more selected, no free slot)\n");
    add(&want, "  Pool Allocations Failed         1\n");
    add(&want, "  Pool Frees                      2\n");
    add(&want, "  Current allocations             6 (peak 7)\n");
    add(&want, "  Current nonpaged bytes          507 (peak 5600)\n");
    add(&want, "  Current paged bytes             1088 (peak 1088)\n");
    /* Sites: allocations at lines 10, 11, 12, 20, 30, 40; frees at 31 and 13. */
    add(&want, "  Tags 4, call sites 8, bug checks 1\n");
    add(&want, "  poolsim memory: %llu bytes of pages, %llu bytes of records\n",
        (unsigned long long)s.arena_bytes, (unsigned long long)s.meta_bytes);
    assert_string_equal(g_out.text, want.s);

    out_reset();
    poolsim_report_stats_json();
    assert_true(json_ok(g_out.text));
    want.len = 0;
    add(&want,
        "{\"allocs\":8,\"frees\":2,\"failed\":1,\"live_blocks\":6,\"peak_blocks\":7,\"nonpaged_bytes\":507,"
        "\"peak_nonpaged_bytes\":5600,\"paged_bytes\":1088,\"peak_paged_bytes\":1088,\"bugchecks\":1,"
        "\"tags\":4,"
        "\"sites\":8,\"arena_bytes\":%llu,\"meta_bytes\":%llu,\"special_allocs\":0,\"special_fallback\":0}\n",
        (unsigned long long)s.arena_bytes, (unsigned long long)s.meta_bytes);
    assert_string_equal(g_out.text, want.s);
    scenario_free(&sc);
}

/* ---- JSON
 * --------------------------------------------------------------------------------------------------- */

static void test_report_poolused_json(void **state)
{
    scenario sc;
    (void)state;
    scenario_make(&sc);
    out_reset();
    poolsim_report_poolused_json(NULL);
    assert_true(json_ok(g_out.text));
    assert_int_equal(g_out.text[g_out.len - 1], '\n');
    assert_true(starts_with(g_out.text, "{\"tags\":[{\"tag\":\"Fred\",\"value\":1684369990,"));
    assert_non_null(
        strstr(g_out.text,
               "{\"tag\":\"XTag\",\"value\":1734431832,"
               "\"nonpaged\":{\"allocs\":3,\"frees\":1,\"diff\":2,\"used\":500,\"peak\":600,\"failed\":0},"
               "\"paged\":{\"allocs\":1,\"frees\":0,\"diff\":1,\"used\":64,\"peak\":64,\"failed\":0},"
               "\"sites\":[{\"file\":\"drv/r.c\",\"line\":10,\"routine\":\"ExAllocatePoolWithTag\","
               "\"nonpaged\":{\"allocs\":2,\"frees\":1,\"used\":200},"
               "\"paged\":{\"allocs\":0,\"frees\":0,\"used\":0}},"));
    assert_non_null(strstr(g_out.text, "{\"tag\":\"ba  \",\"value\":24930,"));
    assert_non_null(strstr(g_out.text, "\"paged\":{\"allocs\":0,\"frees\":0,\"diff\":0,\"used\":0,\"peak\":0,"
                                       "\"failed\":0},\"sites\":[{\"file\":\"drv/r.c\",\"line\":40,"));
    /* Same order as the text report: Fred, XTag, Zzz9, "ba  ". */
    {
        const char *f = strstr(g_out.text, "\"Fred\""), *x = strstr(g_out.text, "\"XTag\""),
                   *z = strstr(g_out.text, "\"Zzz9\""), *b = strstr(g_out.text, "\"ba  \"");
        assert_true(f && x && z && b && f < x && x < z && z < b);
    }

    /* A pattern. */
    out_reset();
    poolsim_report_poolused_json("X*");
    assert_true(json_ok(g_out.text));
    assert_null(strstr(g_out.text, "Fred"));
    assert_non_null(strstr(g_out.text, "\"XTag\""));
    /* No match: an empty list. */
    out_reset();
    poolsim_report_poolused_json("Q*");
    assert_string_equal(g_out.text, "{\"tags\":[]}\n");
    scenario_free(&sc);
}

/* Quotes and backslashes in tags and file names are escaped. */
static void test_report_json_escapes(void **state)
{
    const uint32_t odd = TAG4('a', '"', '\\', '1');
    const char *file = "dir\\sub\"x\".c";
    void *p;
    (void)state;
    p = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, NONPAGED, 12, odd, file, 70);
    assert_non_null(p);
    out_reset();
    poolsim_report_poolused_json(NULL);
    assert_true(json_ok(g_out.text));
    assert_non_null(strstr(g_out.text, "{\"tag\":\"a\\\"\\\\1\","));
    assert_non_null(strstr(g_out.text, "\"file\":\"dir\\\\sub\\\"x\\\".c\",\"line\":70,"));
    out_reset();
    poolsim_report_outstanding_json();
    assert_true(json_ok(g_out.text));
    assert_non_null(strstr(g_out.text, "\"tag\":\"a\\\"\\\\1\""));
    assert_non_null(strstr(g_out.text, "\"file\":\"dir\\\\sub\\\"x\\\".c\""));
    poolsim_pool_free(POOLSIM_RT_EX_FREE_POOL_WITH_TAG, p, odd, NULL, 0, FILE_R, 71);
}

static void test_report_outstanding_json(void **state)
{
    void *a, *b;
    poolsim_block_info ia, ib;
    char want[512], ptr[24];
    (void)state;
    out_reset();
    poolsim_report_outstanding_json();
    assert_string_equal(g_out.text, "{\"blocks\":[],\"count\":0,\"bytes\":0}\n");

    a = alloc_at(NONPAGED, 40, TAG_X, 80);
    b = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL, PAGED, 0x2000, 0, NULL, 0);
    assert_non_null(b);
    assert_true(poolsim_find_block(a, &ia));
    assert_true(poolsim_find_block(b, &ib));
    out_reset();
    poolsim_report_outstanding_json();
    assert_true(json_ok(g_out.text));
    assert_true(starts_with(g_out.text, "{\"blocks\":[{\"address\":"));
    snprintf(
        want, sizeof want,
        "{\"address\":\"%s\",\"size\":40,\"tag\":\"XTag\",\"value\":1734431832,\"pool\":\"NonPagedPool\","
        "\"seq\":1,\"file\":\"drv/r.c\",\"line\":80,\"routine\":\"ExAllocatePoolWithTag\",\"thread\":%u}",
        ptr_text(a, ptr), (unsigned)ia.thread);
    assert_non_null(strstr(g_out.text, want));
    /* No site: "file" is null. */
    snprintf(want, sizeof want,
             "{\"address\":\"%s\",\"size\":8192,\"tag\":\"None\",\"value\":1701736270,\"pool\":\"PagedPool\","
             "\"seq\":2,\"file\":null,\"line\":0,\"routine\":\"ExAllocatePool\",\"thread\":%u}",
             ptr_text(b, ptr), (unsigned)ib.thread);
    assert_non_null(strstr(g_out.text, want));
    assert_non_null(strstr(g_out.text, "}],\"count\":2,\"bytes\":8232}\n"));
    free_at(a, TAG_X, 81);
    poolsim_pool_free(POOLSIM_RT_EX_FREE_POOL, b, 0, NULL, 0, FILE_R, 82);
}

/* ---- The bug-check report (§1.0)
 * ------------------------------------------------------------------------------- */

static void test_report_bugcheck_text(void **state)
{
    poolsim_options o = default_opts();
    uint8_t *p;
    poolsim_block_info info;
    text want = {{0}, 0};
    char a[24], b[24];
    (void)state;
    o.continue_on_bugcheck = 1;
    restart(&o);
    poolsim_set_bugcheck_handler(NULL, NULL); /* the default handler prints */

    p = (uint8_t *)alloc_at(PAGED, 24, TAG_X, 90); /* seq 1 */
    assert_true(poolsim_find_block(p, &info));
    p[24] ^= 0x5A;
    out_reset();
    free_at(p, TAG_X, 91);
    {
        uintptr_t bad = (uintptr_t)(p + 24);
        add(&want, "\npoolsim: DRIVER_VERIFIER_DETECTED_VIOLATION (c4) Arg1 0x51 free of a block written "
                   "past its end\n");
        add(&want, "*** Fatal System Error: 0x000000c4\n");
        add(&want, "                       (0x%0*llx,0x%0*llx,0x%0*llx,0x%0*llx)\n\n", PTRW, 0x51ull, PTRW,
            (unsigned long long)(uintptr_t)p, PTRW, (unsigned long long)bad, PTRW, 24ull);
        add(&want,
            "DRIVER_VERIFIER_DETECTED_VIOLATION (c4)\nfree of a block written past its end\nArguments:\n");
        add(&want, "Arg1: %0*llx, subcode 0x51: write beyond the allocation\n", PTRW, 0x51ull);
        add(&want, "Arg2: %0*llx, allocation base\n", PTRW, (unsigned long long)(uintptr_t)p);
        add(&want, "Arg3: %0*llx, address of the bad byte\n", PTRW, (unsigned long long)bad);
        add(&want, "Arg4: %0*llx, charged bytes\n", PTRW, 24ull);
        add(&want, "\nBUGCHECK_STR:  0xc4_51_XTag\n");
        add(&want, "Block:  %s size 0x18 (24) tag XTag (0x67615458) PagedPool, live, thread %u\n",
            ptr_text(p, a), (unsigned)info.thread);
        add(&want, "  allocated at drv/r.c:90 by ExAllocatePoolWithTag, seq 1\n");
        /* The slot ends 8 bytes after the block's end: one bad byte, 7 good. */
        add(&want, "Damage: overrun at block+0x18 (%s), 1 byte(s) differ:\n", ptr_text(p + 24, b));
        add(&want, "  [ %02x", (unsigned)(p[24]));
        for (int i = 1; i < 8; i++)
            add(&want, " .");
        add(&want, " ]\n");
        add(&want, "Raised: at drv/r.c:91 by ExFreePoolWithTag, seq 1\n\n");
    }
    assert_string_equal(g_out.text, want.s);
    assert_int_equal(poolsim_bugcheck_count(), 1);
    p[24] ^= 0x5A;
    free_at(p, TAG_X, 92);

    /* A bug check with no block and no file. */
    out_reset();
    want.len = 0;
    poolsim_bugcheck_raise(0x1E, 0xC0000005u, 0, 0, 0, NULL, 0, "KeBugCheckEx");
    add(&want, "\npoolsim: KMODE_EXCEPTION_NOT_HANDLED (1e) Arg1 0xc0000005 an exception was raised and not "
               "handled\n");
    add(&want, "*** Fatal System Error: 0x0000001e\n");
    add(&want, "                       (0x%0*llx,0x%0*llx,0x%0*llx,0x%0*llx)\n\n", PTRW, 0xC0000005ull, PTRW,
        0ull, PTRW, 0ull, PTRW, 0ull);
    add(&want, "KMODE_EXCEPTION_NOT_HANDLED (1e)\nan exception was raised and not handled\nArguments:\n");
    add(&want, "Arg1: %0*llx, exception code\n", PTRW, 0xC0000005ull);
    add(&want, "Arg2: %0*llx, address of the exception\n", PTRW, 0ull);
    add(&want, "Arg3: %0*llx, exception parameter 0\n", PTRW, 0ull);
    add(&want, "Arg4: %0*llx, exception parameter 1\n", PTRW, 0ull);
    add(&want, "\nBUGCHECK_STR:  0x1e_c0000005\n");
    add(&want, "Raised: by KeBugCheckEx, seq 2\n\n");
    assert_string_equal(g_out.text, want.s);
    poolsim_set_bugcheck_handler(record, NULL);
}

/* ---- The leak table at shutdown (§1.1, §5.2)
 * ----------------------------------------------------------------------- */

static void test_report_leaks_0x62(void **state)
{
    static const char driver[] = "leaky.sys";
    poolsim_options o = default_opts();
    void *a, *b;
    text head = {{0}, 0}, rows = {{0}, 0};
    char first[160];
    (void)state;
    o.driver_name = driver;
    restart(&o);
    a = alloc_at(NONPAGED, 100, TAG_X, 100);                                            /* seq 1 */
    b = alloc_rt(POOLSIM_RT_EX_ALLOCATE_POOL2, PSIM_PF_PAGED, 200, TAG_F, FILE_R, 101); /* seq 2 */
    free_at(alloc_at(NONPAGED, 50, TAG_X, 102), TAG_X, 103); /* quarantined, not a leak */
    out_reset();
    assert_int_equal(poolsim_shutdown(), 2);
    assert_false(poolsim_initialized());

    snprintf(
        first, sizeof first,
        "poolsim: LEAK: 2 block(s), 300 bytes still allocated at poolsim_shutdown (driver leaky.sys):\n");
    outstanding_head(&head);
    outstanding_row(&rows, a, 100, "XTag", "NonPagedPool", 1, FILE_R, 100, "ExAllocatePoolWithTag");
    outstanding_row(&rows, b, 200, "Fred", "PagedPool", 2, FILE_R, 101, "ExAllocatePool2");
    check_table(first, &head, &rows, 2, " 2 allocation(s) outstanding, 300 bytes\n");

    /* Then the bug check: C4/0x62, the driver name, 0, the count. */
    assert_int_equal(g_bc.count, 1);
    assert_int_equal(g_bc.last.code, 0xC4);
    assert_int_equal(g_bc.last.param[0], 0x62);
    assert_ptr_equal((const void *)g_bc.last.param[1], driver);
    assert_string_equal(g_bc.driver, "leaky.sys");
    assert_int_equal(g_bc.last.param[2], 0);
    assert_int_equal(g_bc.last.param[3], 2);
    assert_string_equal(g_bc.last.site.routine, "poolsim_shutdown");
    assert_int_equal(g_bc.out_len, g_out.len); /* raised after the table */
    g_bc.count = 0;
    assert_int_equal(poolsim_init(&o), POOLSIM_OK);
}

static void test_report_leaks_0x60(void **state)
{
    poolsim_options o = default_opts();
    (void)state;
    o.leak_code = 0x60;
    restart(&o);
    (void)alloc_at(NONPAGED, 100, TAG_X, 110);
    (void)alloc_at(NONPAGED_NX, 0x2000, TAG_X, 111);
    (void)alloc_at(PAGED, 30, TAG_F, 112);
    out_reset();
    assert_int_equal(poolsim_shutdown(), 3);
    assert_true(starts_with(g_out.text, "poolsim: LEAK: 3 block(s), 8322 bytes still allocated at "
                                        "poolsim_shutdown (driver poolsim.sys):\n"));
    assert_true(strstr(g_out.text, " 3 allocation(s) outstanding, 8322 bytes\n") != NULL);
    /* C4/0x60: paged bytes, nonpaged bytes, count. */
    assert_int_equal(g_bc.count, 1);
    assert_int_equal(g_bc.last.code, 0xC4);
    assert_int_equal(g_bc.last.param[0], 0x60);
    assert_int_equal(g_bc.last.param[1], 30);
    assert_int_equal(g_bc.last.param[2], 100 + 0x2000);
    assert_int_equal(g_bc.last.param[3], 3);
    assert_string_equal(g_bc.last.summary, "driver unloading without freeing its pool allocations");
    g_bc.count = 0;
    o.leak_code = 0x62;
    assert_int_equal(poolsim_init(&o), POOLSIM_OK);
}

static void test_report_no_leaks(void **state)
{
    poolsim_options o = default_opts();
    scenario sc;
    (void)state;
    scenario_make(&sc);
    scenario_free(&sc);
    out_reset();
    assert_int_equal(poolsim_shutdown(), 0);
    assert_int_equal(g_out.len, 0);
    assert_int_equal(g_bc.count, 0);

    /* leak_check off: the count, and no word about it. */
    o.leak_check = 0;
    assert_int_equal(poolsim_init(&o), POOLSIM_OK);
    (void)alloc_at(PAGED, 10, TAG_X, 120);
    assert_int_equal(poolsim_shutdown(), 1);
    assert_int_equal(g_out.len, 0);
    assert_int_equal(g_bc.count, 0);
    o.leak_check = 1;
    assert_int_equal(poolsim_init(&o), POOLSIM_OK);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_json_checker),
        T(test_report_poolused_summary),
        T(test_report_poolused_sorted),
        T(test_report_poolused_patterns),
        T(test_report_poolused_verbose),
        T(test_report_poolused_site_paths),
        T(test_report_poolused_empty_and_failed),
        T(test_report_poolused_overflow_row),
        T(test_report_outstanding),
        T(test_report_outstanding_long_site),
        T(test_report_stats),
        T(test_report_poolused_json),
        T(test_report_json_escapes),
        T(test_report_outstanding_json),
        T(test_report_bugcheck_text),
        T(test_report_leaks_0x62),
        T(test_report_leaks_0x60),
        T(test_report_no_leaks),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
