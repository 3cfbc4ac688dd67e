/* SPDX-License-Identifier: MIT */
/*
 * test_options.c — the options table (src/options.c) and the lifetime of the
 * default instance (src/poolsim.c).
 *
 * The defaults must equal the documented table (README "Options", the
 * POOLSIM_OPTIONS list in poolsim.h). poolsim_options_from_env parses
 * POOLSIM_<NAME>: booleans as 1/0/on/off/true/false/yes/no, sizes with 0x and
 * K/M/G, the words verifier/retail/strict/protected; a value it cannot parse
 * or that overflows its field is reported, counted and leaves the field as it
 * was. poolsim_init refuses out-of-range options and a second init (the first
 * instance keeps working), poolsim_shutdown is idempotent, and calls made
 * before poolsim_init fail quietly instead of crashing.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* setenv, unsetenv */
#endif

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
#define TAG_X TAG4('X', 'T', 'a', 'g') /* 'gaTX' (§2.6) */

static void env_set(const char *name, const char *value)
{
#ifdef _WIN32
    assert_int_equal(_putenv_s(name, value), 0);
#else
    assert_int_equal(setenv(name, value, 1), 0);
#endif
}

static void env_unset(const char *name)
{
#ifdef _WIN32
    (void)_putenv_s(name, ""); /* an empty value removes the variable */
#else
    (void)unsetenv(name);
#endif
}

/* POOLSIM_<NAME> of option i of the table. */
static void env_name(size_t i, char *out, size_t cap)
{
    const char *n = poolsim__option_table[i].name;
    size_t k = (size_t)snprintf(out, cap, "POOLSIM_");
    for (; *n && k + 1 < cap; n++)
        out[k++] = (char)(*n >= 'a' && *n <= 'z' ? *n - 'a' + 'A' : *n);
    out[k] = '\0';
}

static void env_clear_all(void)
{
    for (size_t i = 0; i < poolsim__option_count; i++) {
        char var[64];
        env_name(i, var, sizeof var);
        env_unset(var);
    }
}

/* Output of poolsim, captured. */
static struct {
    char text[16384];
    size_t len;
    unsigned calls;
} g_out;

static void capture(const char *text, void *ctx)
{
    size_t n = strlen(text);
    (void)ctx;
    g_out.calls++;
    if (g_out.len + n >= sizeof g_out.text)
        n = sizeof g_out.text - 1 - g_out.len;
    memcpy(g_out.text + g_out.len, text, n);
    g_out.len += n;
    g_out.text[g_out.len] = '\0';
}

static void out_reset(void)
{
    g_out.len = 0;
    g_out.calls = 0;
    g_out.text[0] = '\0';
}

/* Bug checks, recorded; the handler returns (the call fails safely). */
static struct {
    unsigned count;
    poolsim_bugcheck last;
} g_bc;

static void record(const poolsim_bugcheck *bc, void *ctx)
{
    (void)ctx;
    g_bc.count++;
    g_bc.last = *bc;
}

static int setup(void **state)
{
    (void)state;
    env_clear_all();
    out_reset();
    memset(&g_bc, 0, sizeof g_bc);
    poolsim_set_output(capture, NULL);
    poolsim_set_bugcheck_handler(record, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    env_clear_all();
    (void)poolsim_shutdown();
    poolsim_set_output(NULL, NULL);
    poolsim_set_bugcheck_handler(NULL, NULL);
    return 0;
}

static void *alloc(uint32_t pool_type, size_t n, uint32_t tag)
{
    poolsim_alloc_req req;
    memset(&req, 0, sizeof req);
    req.routine = POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG;
    req.type = pool_type;
    req.size = n;
    req.tag = tag;
    return poolsim_pool_alloc(&req, NULL, "drv/opt.c", 1);
}

static void free_tag(void *p, uint32_t tag)
{
    poolsim_pool_free(POOLSIM_RT_EX_FREE_POOL_WITH_TAG, p, tag, NULL, 0, "drv/opt.c", 2);
}

/* Every field of two option sets equal (the struct has padding, so no memcmp). */
static void assert_options_equal(const poolsim_options *a, const poolsim_options *b)
{
    for (size_t i = 0; i < poolsim__option_count; i++) {
        const psim_option_desc *d = &poolsim__option_table[i];
        const char *fa = (const char *)a + d->offset, *fb = (const char *)b + d->offset;
        if (d->kind == PSIM_OPT_STR)
            assert_ptr_equal(*(const char *const *)(const void *)fa, *(const char *const *)(const void *)fb);
        else if (d->kind == PSIM_OPT_U64)
            assert_int_equal(*(const uint64_t *)(const void *)fa, *(const uint64_t *)(const void *)fb);
        else
            assert_int_equal(*(const uint32_t *)(const void *)fa, *(const uint32_t *)(const void *)fb);
    }
}

/* poolsim_options_default as a value. */
static poolsim_options default_options(void)
{
    poolsim_options o;
    poolsim_options_default(&o);
    return o;
}

/* ---- The table ------------------------------------------------------------------------------- */

static void test_options_defaults(void **state)
{
    poolsim_options o;
    (void)state;
    memset(&o, 0xAB, sizeof o);
    poolsim_options_default(&o);
    /* README "Options" and poolsim.h. */
    assert_int_equal(o.family, POOLSIM_FAMILY_VERIFIER);
    assert_int_equal(o.family, 0);
    assert_int_equal(o.continue_on_bugcheck, 0);
    assert_int_equal(o.tag_check, POOLSIM_TAG_CHECK_STRICT);
    assert_int_equal(o.tag_check, 0);
    assert_int_equal(o.leak_code, 0x62);
    assert_int_equal(o.leak_check, 1);
    assert_int_equal(o.zero_size_check, 1);
    assert_int_equal(o.paged_limit, 0x40000000ull);    /* 1G */
    assert_int_equal(o.nonpaged_limit, 0x40000000ull); /* 1G */
    assert_int_equal(o.fill_uninit, 1);
    assert_int_equal(o.uninit_byte, 0xC5);
    assert_int_equal(o.track_sites, 1);
    assert_int_equal(o.max_reports, 100);
    assert_int_equal(o.max_repeats, 1);
    assert_int_equal(o.guards, 1);
    assert_int_equal(o.quarantine_bytes, 0x2000000ull); /* 32M */
    assert_int_equal(o.quarantine_blocks, 65536);
    assert_int_equal(o.halt_on_bad, 0);
    assert_int_equal(o.print_frees, 0);
    assert_int_equal(o.fault_probability, 0);
    assert_string_equal(o.fault_tags, "");
    assert_int_equal(o.fault_delay_allocs, 0);
    assert_int_equal(o.fault_delay_ms, 0);
    assert_int_equal(o.fault_seed, 1);
    assert_int_equal(o.lookaside_debug, 0);
    assert_int_equal(o.irql_history, 16);
    assert_int_equal(o.force_irql, 0); /* the cmocka fixture turns it on */
    assert_int_equal(o.synch_level, 12);
    assert_non_null(o.driver_name);
    assert_string_equal(o.driver_name, "poolsim.sys");
    /* The defaults pass the range check. */
    assert_null(poolsim__options_check(&o));
    poolsim_options_default(NULL); /* no crash */
}

static void test_options_table(void **state)
{
    static const struct {
        const char *name;
        size_t offset;
        unsigned kind;
    } want[] = {
        {"family", offsetof(poolsim_options, family), PSIM_OPT_FAMILY},
        {"continue_on_bugcheck", offsetof(poolsim_options, continue_on_bugcheck), PSIM_OPT_BOOL},
        {"tag_check", offsetof(poolsim_options, tag_check), PSIM_OPT_TAGCHECK},
        {"leak_code", offsetof(poolsim_options, leak_code), PSIM_OPT_U32},
        {"leak_check", offsetof(poolsim_options, leak_check), PSIM_OPT_BOOL},
        {"zero_size_check", offsetof(poolsim_options, zero_size_check), PSIM_OPT_BOOL},
        {"paged_limit", offsetof(poolsim_options, paged_limit), PSIM_OPT_U64},
        {"nonpaged_limit", offsetof(poolsim_options, nonpaged_limit), PSIM_OPT_U64},
        {"fill_uninit", offsetof(poolsim_options, fill_uninit), PSIM_OPT_BOOL},
        {"uninit_byte", offsetof(poolsim_options, uninit_byte), PSIM_OPT_U32},
        {"track_sites", offsetof(poolsim_options, track_sites), PSIM_OPT_BOOL},
        {"max_reports", offsetof(poolsim_options, max_reports), PSIM_OPT_U32},
        {"max_repeats", offsetof(poolsim_options, max_repeats), PSIM_OPT_U32},
        {"guards", offsetof(poolsim_options, guards), PSIM_OPT_BOOL},
        {"footer_bytes", offsetof(poolsim_options, footer_bytes), PSIM_OPT_U32},
        {"quarantine_bytes", offsetof(poolsim_options, quarantine_bytes), PSIM_OPT_U64},
        {"quarantine_blocks", offsetof(poolsim_options, quarantine_blocks), PSIM_OPT_U32},
        {"quarantine_check", offsetof(poolsim_options, quarantine_check), PSIM_OPT_U64},
        {"halt_on_bad", offsetof(poolsim_options, halt_on_bad), PSIM_OPT_BOOL},
        {"print_frees", offsetof(poolsim_options, print_frees), PSIM_OPT_BOOL},
        {"fault_probability", offsetof(poolsim_options, fault_probability), PSIM_OPT_U32},
        {"fault_tags", offsetof(poolsim_options, fault_tags), PSIM_OPT_STR},
        {"fault_delay_allocs", offsetof(poolsim_options, fault_delay_allocs), PSIM_OPT_U64},
        {"fault_delay_ms", offsetof(poolsim_options, fault_delay_ms), PSIM_OPT_U64},
        {"fault_seed", offsetof(poolsim_options, fault_seed), PSIM_OPT_U64},
        {"lookaside_debug", offsetof(poolsim_options, lookaside_debug), PSIM_OPT_BOOL},
        {"irql_history", offsetof(poolsim_options, irql_history), PSIM_OPT_U32},
        {"force_irql", offsetof(poolsim_options, force_irql), PSIM_OPT_BOOL},
        {"synch_level", offsetof(poolsim_options, synch_level), PSIM_OPT_U32},
        {"special_pool_tags", offsetof(poolsim_options, special_pool_tags), PSIM_OPT_STR},
        {"special_pool_size", offsetof(poolsim_options, special_pool_size), PSIM_OPT_U32},
        {"special_pool_sample", offsetof(poolsim_options, special_pool_sample), PSIM_OPT_U32},
        {"special_pool_slots", offsetof(poolsim_options, special_pool_slots), PSIM_OPT_U32},
        {"special_pool_underrun", offsetof(poolsim_options, special_pool_underrun), PSIM_OPT_BOOL},
        {"special_pool_priority", offsetof(poolsim_options, special_pool_priority), PSIM_OPT_BOOL},
        {"special_pool_seed", offsetof(poolsim_options, special_pool_seed), PSIM_OPT_U64},
        {"driver_name", offsetof(poolsim_options, driver_name), PSIM_OPT_STR},
    };
    (void)state;
    assert_int_equal(poolsim__option_count, PSIM_COUNTOF(want));
    for (size_t i = 0; i < PSIM_COUNTOF(want); i++) {
        assert_string_equal(poolsim__option_table[i].name, want[i].name);
        assert_int_equal(poolsim__option_table[i].offset, want[i].offset);
        assert_int_equal(poolsim__option_table[i].kind, want[i].kind);
        assert_non_null(poolsim__option_table[i].help);
        assert_true(strlen(poolsim__option_table[i].help) > 10);
    }
}

/* ---- The environment ------------------------------------------------------------------------- */

static void test_options_env_none(void **state)
{
    poolsim_options o = default_options(), d;
    (void)state;
    poolsim_options_default(&d);
    assert_int_equal(poolsim_options_from_env(&o), 0);
    assert_options_equal(&o, &d);
    assert_int_equal(poolsim_options_from_env(NULL), 0);
    assert_int_equal(g_out.calls, 0);
}

static void test_options_env_booleans(void **state)
{
    static const struct {
        const char *text;
        uint32_t value;
    } words[] = {{"on", 1},  {"off", 0}, {"true", 1}, {"false", 0}, {"yes", 1},  {"no", 0},
                 {"1", 1},   {"0", 0},   {"ON", 1},   {"Off", 0},   {"TRUE", 1}, {"False", 0},
                 {"YES", 1}, {"No", 0},  {"0x1", 1},  {"00", 0}};
    (void)state;
    for (size_t i = 0; i < PSIM_COUNTOF(words); i++) {
        poolsim_options o = default_options();
        o.guards = 7;
        o.continue_on_bugcheck = 7;
        env_set("POOLSIM_GUARDS", words[i].text);
        env_set("POOLSIM_CONTINUE_ON_BUGCHECK", words[i].text);
        assert_int_equal(poolsim_options_from_env(&o), 0);
        assert_int_equal(o.guards, words[i].value);
        assert_int_equal(o.continue_on_bugcheck, words[i].value);
        /* Nothing else moved. */
        assert_int_equal(o.leak_check, 1);
        assert_int_equal(o.print_frees, 0);
    }
    assert_int_equal(g_out.calls, 0);
}

static void test_options_env_sizes(void **state)
{
    static const struct {
        const char *text;
        uint64_t value;
    } sizes[] = {
        {"0", 0},
        {"4096", 4096},
        {"4k", 4096},
        {"4K", 4096},
        {"3m", 3ull << 20},
        {"3M", 3ull << 20},
        {"2g", 2ull << 30},
        {"2G", 2ull << 30},
        {"0x1000", 0x1000},
        {"0X10", 0x10},
        {"0xabcDEF", 0xABCDEF},
        {"0x10K", 0x10ull << 10},
        {"0x2G", 2ull << 30},
        {"0K", 0},
        {"18446744073709551615", UINT64_MAX},
        {"0xffffffffffffffff", UINT64_MAX},
        {"0xFFFFFFFFFFFFFFFF", UINT64_MAX},
        {"17179869183G", 17179869183ull << 30},
        {"17592186044415M", 17592186044415ull << 20},
        {"18014398509481983K", 18014398509481983ull << 10},
    };
    (void)state;
    for (size_t i = 0; i < PSIM_COUNTOF(sizes); i++) {
        poolsim_options o = default_options();
        env_set("POOLSIM_PAGED_LIMIT", sizes[i].text);
        env_set("POOLSIM_QUARANTINE_BYTES", sizes[i].text);
        assert_int_equal(poolsim_options_from_env(&o), 0);
        assert_int_equal(o.paged_limit, sizes[i].value);
        assert_int_equal(o.quarantine_bytes, sizes[i].value);
        assert_int_equal(o.nonpaged_limit, 0x40000000ull);
    }
    /* 32-bit fields take suffixes too, up to UINT32_MAX. */
    {
        poolsim_options o = default_options();
        env_unset("POOLSIM_PAGED_LIMIT");
        env_unset("POOLSIM_QUARANTINE_BYTES");
        env_set("POOLSIM_QUARANTINE_BLOCKS", "64K");
        env_set("POOLSIM_MAX_REPORTS", "4294967295");
        env_set("POOLSIM_UNINIT_BYTE", "0xAA");
        assert_int_equal(poolsim_options_from_env(&o), 0);
        assert_int_equal(o.quarantine_blocks, 65536);
        assert_int_equal(o.max_reports, UINT32_MAX);
        assert_int_equal(o.uninit_byte, 0xAA);
        env_set("POOLSIM_QUARANTINE_BLOCKS", "4194303K");
        assert_int_equal(poolsim_options_from_env(&o), 0);
        assert_int_equal(o.quarantine_blocks, 4194303ull << 10);
    }
    assert_int_equal(g_out.calls, 0);
}

static void test_options_env_words(void **state)
{
    poolsim_options o = default_options();
    (void)state;
    env_set("POOLSIM_FAMILY", "retail");
    env_set("POOLSIM_TAG_CHECK", "protected");
    env_set("POOLSIM_LEAK_CODE", "0x60");
    assert_int_equal(poolsim_options_from_env(&o), 0);
    assert_int_equal(o.family, POOLSIM_FAMILY_RETAIL);
    assert_int_equal(o.tag_check, POOLSIM_TAG_CHECK_PROTECTED);
    assert_int_equal(o.leak_code, 0x60);

    env_set("POOLSIM_FAMILY", "Verifier");
    env_set("POOLSIM_TAG_CHECK", "STRICT");
    env_set("POOLSIM_LEAK_CODE", "98");
    assert_int_equal(poolsim_options_from_env(&o), 0);
    assert_int_equal(o.family, POOLSIM_FAMILY_VERIFIER);
    assert_int_equal(o.tag_check, POOLSIM_TAG_CHECK_STRICT);
    assert_int_equal(o.leak_code, 0x62);

    env_set("POOLSIM_FAMILY", "RETAIL");
    env_set("POOLSIM_TAG_CHECK", "1");
    assert_int_equal(poolsim_options_from_env(&o), 0);
    assert_int_equal(o.family, POOLSIM_FAMILY_RETAIL);
    assert_int_equal(o.tag_check, POOLSIM_TAG_CHECK_PROTECTED);
    assert_int_equal(g_out.calls, 0);
}

static void test_options_env_string(void **state)
{
    poolsim_options o = default_options();
    (void)state;
    env_set("POOLSIM_DRIVER_NAME", "mydriver.sys");
    assert_int_equal(poolsim_options_from_env(&o), 0);
    assert_non_null(o.driver_name);
    assert_string_equal(o.driver_name, "mydriver.sys");
    /* The value is poolsim's copy: it outlives the variable. */
    env_unset("POOLSIM_DRIVER_NAME");
    assert_string_equal(o.driver_name, "mydriver.sys");
    assert_int_equal(g_out.calls, 0);
}

/* Each bad value: counted once, reported once, and the field keeps its value. */
static void test_options_env_bad_values(void **state)
{
    static const char *const bad[] = {
        "maybe", "12abc", "0x",   "-1",  "+1",     "4KB", " 1",       "1 ",        "K", "0xg",
        "1.5",   "on1",   "0x1P", "1KK", "enable", "on",  "verifier", "protected", /* words of other kinds of
                                                                                      option */
    };
    (void)state;
    for (size_t i = 0; i < PSIM_COUNTOF(bad); i++) {
        poolsim_options o = default_options();
        char want[160];
        o.max_reports = 1234;
        o.paged_limit = 0x5555;
        out_reset();
        env_set("POOLSIM_MAX_REPORTS", bad[i]);
        assert_int_equal(poolsim_options_from_env(&o), 1);
        assert_int_equal(o.max_reports, 1234);
        assert_int_equal(g_out.calls, 1);
        snprintf(want, sizeof want,
                 "poolsim: ignoring POOLSIM_MAX_REPORTS=\"%s\": not a valid value for option max_reports\n",
                 bad[i]);
        assert_string_equal(g_out.text, want);
        env_unset("POOLSIM_MAX_REPORTS");

        out_reset();
        env_set("POOLSIM_PAGED_LIMIT", bad[i]);
        assert_int_equal(poolsim_options_from_env(&o), 1);
        assert_int_equal(o.paged_limit, 0x5555);
        assert_int_equal(g_out.calls, 1);
        env_unset("POOLSIM_PAGED_LIMIT");
    }
}

/* Each option takes only its own words; booleans only 0 or 1; an empty value is
 * unset (Windows has no empty variables); a value too long to hold is reported. */
static void test_options_env_kinds(void **state)
{
    static const struct {
        const char *var, *value;
    } bad[] = {{"POOLSIM_GUARDS", "retail"}, {"POOLSIM_GUARDS", "2"},
               {"POOLSIM_FAMILY", "yes"},    {"POOLSIM_FAMILY", "strict"},
               {"POOLSIM_TAG_CHECK", "on"},  {"POOLSIM_MAX_REPORTS", "protected"},
               {"POOLSIM_LEAK_CHECK", "1K"}};
    char longval[200];
    (void)state;
    for (size_t i = 0; i < PSIM_COUNTOF(bad); i++) {
        poolsim_options o = default_options(), before = default_options();
        out_reset();
        env_set(bad[i].var, bad[i].value);
        assert_int_equal(poolsim_options_from_env(&o), 1);
        assert_options_equal(&o, &before);
        env_unset(bad[i].var);
    }
    poolsim_options o = default_options();
    env_set("POOLSIM_FAMILY", "RETAIL");
    env_set("POOLSIM_TAG_CHECK", "protected");
    env_set("POOLSIM_GUARDS", "no");
    assert_int_equal(poolsim_options_from_env(&o), 0);
    assert_int_equal(o.family, POOLSIM_FAMILY_RETAIL);
    assert_int_equal(o.tag_check, POOLSIM_TAG_CHECK_PROTECTED);
    assert_int_equal(o.guards, 0);
    env_unset("POOLSIM_FAMILY");
    env_unset("POOLSIM_TAG_CHECK");
    env_unset("POOLSIM_GUARDS");

    memset(longval, '7', sizeof longval - 1);
    longval[sizeof longval - 1] = '\0';
    o = default_options();
    out_reset();
    env_set("POOLSIM_MAX_REPORTS", longval);
    assert_int_equal(poolsim_options_from_env(&o), 1);
    assert_int_equal(o.max_reports, 100);
    assert_int_equal(g_out.calls, 1);
    assert_non_null(strstr(g_out.text, "longer than"));
    env_unset("POOLSIM_MAX_REPORTS");
#ifndef _WIN32
    o = default_options();
    out_reset();
    env_set("POOLSIM_MAX_REPORTS", "");
    assert_int_equal(poolsim_options_from_env(&o), 0);
    assert_int_equal(o.max_reports, 100);
    assert_int_equal(g_out.calls, 0);
    env_unset("POOLSIM_MAX_REPORTS");
#endif
}

/* Several variables at once: the bad ones are counted, the good ones applied. */
static void test_options_env_mixed(void **state)
{
    poolsim_options o = default_options();
    (void)state;
    env_set("POOLSIM_FAMILY", "sometimes");
    env_set("POOLSIM_GUARDS", "off");
    env_set("POOLSIM_NONPAGED_LIMIT", "12Q");
    env_set("POOLSIM_MAX_REPORTS", "7");
    env_set("POOLSIM_TRACK_SITES", "2x");
    assert_int_equal(poolsim_options_from_env(&o), 3);
    assert_int_equal(g_out.calls, 3);
    assert_int_equal(o.family, POOLSIM_FAMILY_VERIFIER);
    assert_int_equal(o.guards, 0);
    assert_int_equal(o.nonpaged_limit, 0x40000000ull);
    assert_int_equal(o.max_reports, 7);
    assert_int_equal(o.track_sites, 1);
    assert_non_null(strstr(g_out.text, "POOLSIM_FAMILY=\"sometimes\""));
    assert_non_null(strstr(g_out.text, "POOLSIM_NONPAGED_LIMIT=\"12Q\""));
    assert_non_null(strstr(g_out.text, "POOLSIM_TRACK_SITES=\"2x\""));
}

/* A value that does not fit its field is refused, not wrapped. */
static void test_options_env_overflow(void **state)
{
    static const char *const too_big_u32[] = {"4294967296", "0x100000000", "4194304K",
                                              "4096M",      "4G",          "18446744073709551615"};
    static const char *const too_big_u64[] = {
        "18446744073709551616", "99999999999999999999", "0x10000000000000000",  "17179869184G",
        "17592186044416M",      "18014398509481984K",   "184467440737095516150"};
    (void)state;
    for (size_t i = 0; i < PSIM_COUNTOF(too_big_u32); i++) {
        poolsim_options o = default_options();
        env_set("POOLSIM_QUARANTINE_BLOCKS", too_big_u32[i]);
        assert_int_equal(poolsim_options_from_env(&o), 1);
        assert_int_equal(o.quarantine_blocks, 65536);
    }
    env_unset("POOLSIM_QUARANTINE_BLOCKS");
    for (size_t i = 0; i < PSIM_COUNTOF(too_big_u64); i++) {
        poolsim_options o = default_options();
        env_set("POOLSIM_QUARANTINE_BYTES", too_big_u64[i]);
        assert_int_equal(poolsim_options_from_env(&o), 1);
        assert_int_equal(o.quarantine_bytes, 0x2000000ull);
    }
    assert_int_equal(g_out.calls, PSIM_COUNTOF(too_big_u32) + PSIM_COUNTOF(too_big_u64));
}

/* ---- poolsim_init and poolsim_shutdown ------------------------------------------------------- */

/* poolsim_init(NULL) is defaults + environment. */
static void test_options_init_from_env(void **state)
{
    void *p;
    (void)state;
    env_set("POOLSIM_FAMILY", "retail");
    env_set("POOLSIM_UNINIT_BYTE", "0x3C");
    env_set("POOLSIM_DRIVER_NAME", "envdrv.sys");
    assert_int_equal(poolsim_init(NULL), POOLSIM_OK);
    assert_true(poolsim_initialized());
    assert_int_equal(poolsim__g->opt.family, POOLSIM_FAMILY_RETAIL);
    assert_int_equal(poolsim__g->opt.uninit_byte, 0x3C);
    assert_string_equal(poolsim__g->opt.driver_name, "envdrv.sys");
    assert_int_equal(poolsim__g->opt.leak_code, 0x62);

    /* The options act: uninitialised pool is filled with 0x3C, and a zero-byte
     * request raises the retail code C2/0x00 (§2.5), not C4/0x00. */
    p = alloc(0, 24, TAG_X);
    assert_non_null(p);
    for (size_t i = 0; i < 24; i++)
        assert_int_equal(((unsigned char *)p)[i], 0x3C);
    free_tag(p, TAG_X);
    assert_null(alloc(0, 0, TAG_X));
    assert_int_equal(g_bc.count, 1);
    assert_int_equal(g_bc.last.code, 0xC2);
    assert_int_equal(g_bc.last.param[0], 0x00);
    assert_int_equal(poolsim_shutdown(), 0);
    assert_false(poolsim_initialized());
}

/* An explicit struct ignores the environment. */
static void test_options_init_struct_ignores_env(void **state)
{
    poolsim_options o;
    (void)state;
    env_set("POOLSIM_FAMILY", "retail");
    poolsim_options_default(&o);
    assert_int_equal(poolsim_init(&o), POOLSIM_OK);
    assert_int_equal(poolsim__g->opt.family, POOLSIM_FAMILY_VERIFIER);
    assert_null(alloc(0, 0, TAG_X));
    assert_int_equal(g_bc.count, 1);
    assert_int_equal(g_bc.last.code, 0xC4);
    assert_int_equal(g_bc.last.param[0], 0x00);
    assert_int_equal(poolsim_shutdown(), 0);
}

static void test_options_init_out_of_range(void **state)
{
    static const char *const names[] = {"family",    "family",    "tag_check",   "leak_code",
                                        "leak_code", "leak_code", "uninit_byte", "driver_name"};
    (void)state;
    for (size_t i = 0; i < PSIM_COUNTOF(names); i++) {
        poolsim_options o;
        char want[96];
        poolsim_options_default(&o);
        switch (i) {
        case 0:
            o.family = 7;
            break;
        case 1:
            o.family = 2;
            break;
        case 2:
            o.tag_check = 2;
            break;
        case 3:
            o.leak_code = 0x61;
            break;
        case 4:
            o.leak_code = 0;
            break;
        case 5:
            o.leak_code = 0x63;
            break;
        case 6:
            o.uninit_byte = 0x100;
            break;
        default:
            o.driver_name = NULL;
            break;
        }
        out_reset();
        assert_int_equal(poolsim_init(&o), POOLSIM_E_OPTION);
        assert_false(poolsim_initialized());
        assert_null(poolsim__g);
        snprintf(want, sizeof want, "poolsim: poolsim_init: option %s is out of range\n", names[i]);
        assert_string_equal(g_out.text, want);
    }
    /* The edges of each range are accepted. */
    {
        poolsim_options o;
        poolsim_options_default(&o);
        o.family = POOLSIM_FAMILY_RETAIL;
        o.tag_check = POOLSIM_TAG_CHECK_PROTECTED;
        o.leak_code = 0x60;
        o.uninit_byte = 0xFF;
        o.driver_name = "";
        assert_int_equal(poolsim_init(&o), POOLSIM_OK);
        assert_int_equal(poolsim_shutdown(), 0);
        o.uninit_byte = 0;
        o.leak_code = 0x62;
        assert_int_equal(poolsim_init(&o), POOLSIM_OK);
        assert_int_equal(poolsim_shutdown(), 0);
    }
}

static void test_options_init_twice(void **state)
{
    poolsim_options first, second;
    psim *inst;
    void *p;
    (void)state;
    poolsim_options_default(&first);
    first.family = POOLSIM_FAMILY_RETAIL;
    assert_int_equal(poolsim_init(&first), POOLSIM_OK);
    inst = poolsim__g;
    p = alloc(1, 100, TAG_X);
    assert_non_null(p);

    poolsim_options_default(&second);
    out_reset();
    assert_int_equal(poolsim_init(&second), POOLSIM_E_ALREADY);
    assert_int_equal(g_out.calls, 1);
    assert_true(poolsim_initialized());
    assert_ptr_equal(poolsim__g, inst);

    /* The first instance, with its options and its block, keeps working. */
    assert_int_equal(poolsim__g->opt.family, POOLSIM_FAMILY_RETAIL);
    assert_true(poolsim_valid_access(p, 100));
    free_tag(p, TAG_X);
    assert_false(poolsim_valid_access(p, 1));
    assert_null(alloc(0, 0, TAG_X));
    assert_int_equal(g_bc.count, 1);
    assert_int_equal(g_bc.last.code, 0xC2); /* retail, as the first init asked */
    p = alloc(0, 32, TAG_X);
    assert_non_null(p);
    free_tag(p, TAG_X);
    {
        poolsim_stats s;
        poolsim_get_stats(&s);
        assert_int_equal(s.allocs, 2);
        assert_int_equal(s.frees, 2);
        assert_int_equal(s.failed, 1);
    }

    /* Shutdown is idempotent: the second call finds nothing. */
    out_reset();
    assert_int_equal(poolsim_shutdown(), 0);
    assert_false(poolsim_initialized());
    assert_int_equal(poolsim_shutdown(), 0);
    assert_int_equal(poolsim_shutdown(), 0);
    assert_int_equal(g_out.calls, 0);
    assert_int_equal(g_bc.count, 1);

    /* And a new instance can start afterwards. */
    assert_int_equal(poolsim_init(&second), POOLSIM_OK);
    assert_int_equal(poolsim__g->opt.family, POOLSIM_FAMILY_VERIFIER);
    assert_int_equal(poolsim_shutdown(), 0);
}

/* Everything called before poolsim_init fails quietly. */
static void test_options_before_init(void **state)
{
    poolsim_alloc_req req;
    int32_t status = 12345;
    poolsim_block_info info;
    poolsim_tag_usage_t usage;
    poolsim_stats s;
    bool quota = true;
    char local[16];
    (void)state;
    assert_false(poolsim_initialized());

    memset(&req, 0, sizeof req);
    req.routine = POOLSIM_RT_EX_ALLOCATE_POOL2;
    req.type = PSIM_PF_NON_PAGED;
    req.size = 64;
    req.tag = TAG_X;
    assert_null(poolsim_pool_alloc(&req, &status, "drv/early.c", 10));
    assert_int_equal(status, 0);
    assert_int_equal(g_out.calls, 1);
    assert_non_null(strstr(g_out.text, "ExAllocatePool2"));

    out_reset();
    poolsim_pool_free(POOLSIM_RT_EX_FREE_POOL, local, 0, NULL, 0, "drv/early.c", 11);
    assert_int_equal(g_out.calls, 1);
    poolsim_pool_free(POOLSIM_RT_EX_FREE_POOL_WITH_TAG, NULL, TAG_X, NULL, 0, NULL, 0);
    assert_int_equal(poolsim_pool_block_size(local, &quota, "drv/early.c", 12), 0);
    assert_false(quota);

    assert_int_equal(poolsim_validate(), 0);
    assert_false(poolsim_valid_access(local, 1));
    assert_false(poolsim_valid_access(NULL, 0));
    memset(&info, 0xAB, sizeof info);
    assert_false(poolsim_find_block(local, &info));
    assert_null(info.address);
    assert_int_equal(info.size, 0);
    assert_false(poolsim_find_block(local, NULL));
    memset(&usage, 0xAB, sizeof usage);
    assert_false(poolsim_tag_usage(TAG_X, &usage));
    assert_int_equal(usage.nonpaged.allocs, 0);
    assert_int_equal(usage.paged.bytes, 0);
    memset(&s, 0xAB, sizeof s);
    poolsim_get_stats(&s);
    assert_int_equal(s.allocs, 0);
    assert_int_equal(s.live_blocks, 0);
    assert_int_equal(s.tags, 0);
    assert_int_equal(s.arena_bytes, 0);
    assert_int_equal(s.meta_bytes, 0);
    poolsim_get_stats(NULL);

    /* Reports say so instead of printing a table. */
    out_reset();
    poolsim_report_poolused(0, NULL);
    poolsim_report_outstanding();
    poolsim_report_stats();
    poolsim_report_block(local);
    poolsim_report_poolused_json(NULL);
    poolsim_report_outstanding_json();
    poolsim_report_stats_json();
    assert_true(g_out.calls >= 7);
    assert_non_null(strstr(g_out.text, "poolsim: !poolused: poolsim is not initialised\n"));
    assert_non_null(strstr(g_out.text, "poolsim: outstanding: poolsim is not initialised\n"));
    assert_non_null(strstr(g_out.text, "poolsim: statistics: poolsim is not initialised\n"));

    /* A bug check raised from outside the pool still reaches the handler. */
    poolsim_bugcheck_raise(0x1E, 0xC0000005u, 0x1234, 0, 0, "drv/early.c", 13, "KeBugCheckEx");
    assert_int_equal(g_bc.count, 1);
    assert_int_equal(g_bc.last.code, 0x1E);
    assert_int_equal(g_bc.last.param[0], 0xC0000005u);
    assert_int_equal(g_bc.last.seq, 0);

    assert_int_equal(poolsim_shutdown(), 0);
    poolsim_set_irql(1);
    assert_int_equal(poolsim_irql(), 1);
    poolsim_set_irql(0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_options_defaults),
        T(test_options_table),
        T(test_options_env_none),
        T(test_options_env_booleans),
        T(test_options_env_sizes),
        T(test_options_env_words),
        T(test_options_env_string),
        T(test_options_env_bad_values),
        T(test_options_env_kinds),
        T(test_options_env_mixed),
        T(test_options_env_overflow),
        T(test_options_init_from_env),
        T(test_options_init_struct_ignores_env),
        T(test_options_init_out_of_range),
        T(test_options_init_twice),
        T(test_options_before_init),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
