/* SPDX-License-Identifier: MIT */
/*
 * test_fmt.c — poolsim's own formatter (src/fmt.c) and the tag text helper.
 *
 * The core may not call the C library's printf (it must build inside a
 * driver), so every report goes through poolsim__fmt. These tests pin each
 * conversion it supports (%d %i %u %x %X %p %s %.*s %c %%), the flags '-' and
 * '0', widths given as digits or '*', the length modifiers l, ll and z, the
 * 64-bit extremes, truncation (the return value is the wanted length, the
 * buffer is always NUL-terminated, capacities 0 and 1 included), and what an
 * unknown conversion prints. poolsim__tag_text is checked against the memory
 * order rule of wdk-semantics.md §2.6 ('gaTX' displays as "XTag").
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include "../src/core.h"

/* ---- Helpers --------------------------------------------------------------------------------- */

/* Formats into a roomy buffer, checks the return value is the length of the
 * text, and compares the text with `want`. */
#define check_fmt(want, ...)                                                                                 \
    do {                                                                                                     \
        char buf_[256];                                                                                      \
        size_t n_ = poolsim__fmt(buf_, sizeof buf_, __VA_ARGS__);                                            \
        assert_string_equal(buf_, (want));                                                                   \
        assert_int_equal(n_, strlen(want));                                                                  \
    } while (0)

/* A tag built from its four display characters (memory order, §2.6), so the
 * tests need no multi-character literals. */
#define TAG4(a, b, c, d)                                                                                     \
    ((uint32_t)(uint8_t)(a) | (uint32_t)(uint8_t)(b) << 8 | (uint32_t)(uint8_t)(c) << 16 |                   \
     (uint32_t)(uint8_t)(d) << 24)

/* ---- Conversions ----------------------------------------------------------------------------- */

static void test_fmt_plain_text(void **state)
{
    (void)state;
    check_fmt("", "");
    check_fmt("hello, world", "hello, world");
    check_fmt("100%", "100%%");
    check_fmt("%%", "%%%%");
    check_fmt("a%b", "a%%b");
}

static void test_fmt_signed(void **state)
{
    (void)state;
    check_fmt("0", "%d", 0);
    check_fmt("42", "%d", 42);
    check_fmt("-42", "%d", -42);
    check_fmt("-42", "%i", -42);
    check_fmt("2147483647", "%d", INT_MAX);
    check_fmt("-2147483648", "%d", INT_MIN);
    check_fmt("-2147483648", "%i", INT_MIN);
    check_fmt("-7", "%ld", -7L);
    check_fmt("123456789", "%li", 123456789L);
    check_fmt("9223372036854775807", "%lld", (long long)INT64_MAX);
    check_fmt("-9223372036854775808", "%lld", (long long)INT64_MIN);
    check_fmt("-9223372036854775808", "%lli", (long long)INT64_MIN);
    check_fmt("-1", "%lld", -1LL);
    check_fmt("4096", "%zd", (size_t)4096);
}

static void test_fmt_unsigned(void **state)
{
    (void)state;
    check_fmt("0", "%u", 0u);
    check_fmt("4294967295", "%u", UINT_MAX);
    check_fmt("ffffffff", "%x", UINT_MAX);
    check_fmt("FFFFFFFF", "%X", UINT_MAX);
    check_fmt("0", "%x", 0u);
    check_fmt("deadbeef", "%x", 0xDEADBEEFu);
    check_fmt("DEADBEEF", "%X", 0xDEADBEEFu);
    check_fmt("c4", "%lx", 0xC4UL);
    check_fmt("4294967295", "%lu", 4294967295UL);
    check_fmt("18446744073709551615", "%llu", (unsigned long long)UINT64_MAX);
    check_fmt("ffffffffffffffff", "%llx", (unsigned long long)UINT64_MAX);
    check_fmt("FFFFFFFFFFFFFFFF", "%llX", (unsigned long long)UINT64_MAX);
    check_fmt("8000000000000000", "%llx", 0x8000000000000000ull);
    check_fmt("9223372036854775808", "%llu", 0x8000000000000000ull);
    check_fmt("1000", "%zx", (size_t)0x1000);
    check_fmt("4096", "%zu", (size_t)4096);
    if (sizeof(size_t) == 8)
        check_fmt("18446744073709551615", "%zu", SIZE_MAX);
    else
        check_fmt("4294967295", "%zu", SIZE_MAX);
}

/* Arguments of different sizes in one call: the length modifiers must take
 * exactly their argument from the list, or everything after would shift. */
static void test_fmt_mixed_lengths(void **state)
{
    (void)state;
    check_fmt("1 2 3 4 5 6", "%d %ld %lld %zu %u %llx", 1, 2L, 3LL, (size_t)4, 5u, 6ull);
    check_fmt("-1|ffffffffffffffff|-1|x", "%d|%llx|%lld|%c", -1, (unsigned long long)UINT64_MAX, -1LL, 'x');
}

static void test_fmt_pointer(void **state)
{
    char want[64];
    int digits = (int)sizeof(void *) * 2;
    (void)state;
    /* %p is "0x" and every digit of the pointer, zero-filled. */
    memset(want, 0, sizeof want);
    want[0] = '0';
    want[1] = 'x';
    memset(want + 2, '0', (size_t)digits);
    check_fmt(want, "%p", (void *)0);
    want[2 + digits - 4] = '1';
    want[2 + digits - 3] = '2';
    want[2 + digits - 2] = 'a';
    want[2 + digits - 1] = 'f';
    check_fmt(want, "%p", (void *)(uintptr_t)0x12AF);
    if (sizeof(void *) == 8)
        check_fmt("0xfedcba9876543210", "%p", (void *)(uintptr_t)0xFEDCBA9876543210ull);
    else
        check_fmt("0xfedcba98", "%p", (void *)(uintptr_t)0xFEDCBA98u);
}

static void test_fmt_strings(void **state)
{
    static const char text[] = "XTag";
    (void)state;
    check_fmt("XTag", "%s", text);
    check_fmt("", "%s", "");
    check_fmt("(null)", "%s", (const char *)NULL);
    check_fmt("XT", "%.2s", text);
    check_fmt("XT", "%.*s", 2, text);
    check_fmt("", "%.*s", 0, text);
    check_fmt("XTag", "%.*s", 10, text);
    /* A negative precision is taken as none, as in C. */
    check_fmt("XTag", "%.*s", -1, text);
    /* The precision bounds the read: the bytes after it need no NUL. */
    {
        const char no_nul[3] = {'a', 'b', 'c'};
        check_fmt("ab", "%.*s", 2, no_nul);
        check_fmt("abc", "%.*s", 3, no_nul);
    }
    check_fmt("  XTag", "%6s", text);
    check_fmt("XTag  |", "%-6s|", text);
    check_fmt("XTag", "%2s", text);
    check_fmt("   XT|", "%5.2s|", text);
    check_fmt("XT   |", "%-5.*s|", 2, text);
}

static void test_fmt_chars(void **state)
{
    (void)state;
    check_fmt("A", "%c", 'A');
    check_fmt("  A|", "%3c|", 'A');
    check_fmt("A  |", "%-3c|", 'A');
    check_fmt("<x>", "<%c>", 'x');
    check_fmt("%", "%c", '%');
    check_fmt("a b", "%c%c%c", 'a', ' ', 'b');
}

static void test_fmt_widths_and_flags(void **state)
{
    (void)state;
    check_fmt("   42", "%5d", 42);
    check_fmt("42   |", "%-5d|", 42);
    check_fmt("00042", "%05d", 42);
    check_fmt("  -42", "%5d", -42);
    check_fmt("-0042", "%05d", -42);
    check_fmt("-42  |", "%-5d|", -42);
    /* '-' wins over '0', as in C. */
    check_fmt("42   |", "%-05d|", 42);
    check_fmt("42   |", "%0-5d|", 42);
    /* A width smaller than the number is no limit. */
    check_fmt("123456", "%3d", 123456);
    check_fmt("000000c4", "%08lx", 0xC4UL);
    check_fmt("0000000A", "%08X", 0xAu);
    check_fmt("       ff", "%9llx", 0xFFull);
    check_fmt("0x0000000000000064", "0x%016zx", (size_t)100);
    check_fmt("      4096", "%10zu", (size_t)4096);
    /* Width from the argument list. */
    check_fmt("   42", "%*d", 5, 42);
    check_fmt("00042", "%0*d", 5, 42);
    check_fmt("42   |", "%-*d|", 5, 42);
    /* A negative '*' width means '-' and its magnitude, as in C. */
    check_fmt("42   |", "%*d|", -5, 42);
    check_fmt("  ab|", "%*s|", 4, "ab");
    check_fmt("ab  |", "%*s|", -4, "ab");
    check_fmt("0000000000000000000000000000000000000007", "%040u", 7u);
    /* The layouts report.c uses for !poolused and !analyze. */
    check_fmt(" XTag        2      500         1       64", " %-4s%9llu%9llu%10llu%9llu", "XTag", 2ull,
              500ull, 1ull, 64ull);
    check_fmt("Arg1: 00000000000000c4, x", "Arg%d: %0*llx, %s", 1, 16, 0xC4ull, "x");
}

/* ---- Truncation ------------------------------------------------------------------------------ */

static void test_fmt_truncation(void **state)
{
    char buf[16];
    (void)state;

    /* Exactly enough room: the text and its NUL. */
    memset(buf, '#', sizeof buf);
    assert_int_equal(poolsim__fmt(buf, 6, "%s", "hello"), 5);
    assert_string_equal(buf, "hello");
    assert_int_equal(buf[6], '#');

    /* One byte short: the last character gives way to the NUL. */
    memset(buf, '#', sizeof buf);
    assert_int_equal(poolsim__fmt(buf, 5, "%s", "hello"), 5);
    assert_string_equal(buf, "hell");
    assert_int_equal(buf[5], '#');

    /* Numbers, padding and literal text are cut the same way. */
    memset(buf, '#', sizeof buf);
    assert_int_equal(poolsim__fmt(buf, 4, "%05d", 42), 5);
    assert_string_equal(buf, "000");
    assert_int_equal(buf[4], '#');
    memset(buf, '#', sizeof buf);
    assert_int_equal(poolsim__fmt(buf, 8, "%lld", (long long)INT64_MIN), 20);
    assert_string_equal(buf, "-922337");
    memset(buf, '#', sizeof buf);
    assert_int_equal(poolsim__fmt(buf, 3, "abcdef"), 6);
    assert_string_equal(buf, "ab");

    /* Capacity 1: only the NUL. */
    memset(buf, '#', sizeof buf);
    assert_int_equal(poolsim__fmt(buf, 1, "%s=%d", "x", 12345), 7);
    assert_int_equal(buf[0], '\0');
    assert_int_equal(buf[1], '#');

    /* Capacity 0: nothing is written, not even the NUL; a NULL buffer is fine. */
    memset(buf, '#', sizeof buf);
    assert_int_equal(poolsim__fmt(buf, 0, "%s=%d", "x", 12345), 7);
    assert_int_equal(buf[0], '#');
    assert_int_equal(poolsim__fmt(NULL, 0, "%p %s", (void *)buf, "long text"), 2 + 2 * sizeof(void *) + 10);

    /* The wanted length counts past the end, so a caller can size a buffer. */
    {
        char big[64];
        size_t want = poolsim__fmt(NULL, 0, "%-20s|%08x", "tag", 0xC2u);
        assert_int_equal(want, 29);
        assert_int_equal(poolsim__fmt(big, want + 1, "%-20s|%08x", "tag", 0xC2u), want);
        assert_string_equal(big, "tag                 |000000c2");
    }
}

/* ---- Odd format strings ---------------------------------------------------------------------- */

static void test_fmt_unknown_conversion(void **state)
{
    (void)state;
    /* An unsupported conversion prints as written and takes no argument. */
    check_fmt("%q", "%q");
    check_fmt("a%yb", "a%yb");
    check_fmt("%f 7", "%f %d", 7);
    check_fmt("%n", "%n");
    /* A '%' at the very end prints nothing and stops cleanly. */
    check_fmt("abc", "abc%");
    check_fmt("", "%");
}

/* poolsim__vfmt with a va_list, as report.c's poolsim__outf uses it. */
static size_t vfmt_wrapper(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    size_t n;
    va_start(ap, fmt);
    n = poolsim__vfmt(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

static void test_fmt_vfmt(void **state)
{
    char buf[64];
    (void)state;
    assert_int_equal(vfmt_wrapper(buf, sizeof buf, "%s:%d (%s)", "drv/a.c", 10, "ExFreePool"), 23);
    assert_string_equal(buf, "drv/a.c:10 (ExFreePool)");
    assert_int_equal(vfmt_wrapper(buf, 4, "%u", 123456u), 6);
    assert_string_equal(buf, "123");
}

/* ---- Tag text (§2.6) ------------------------------------------------------------------------- */

static void test_fmt_tag_text(void **state)
{
    char t[5];
    (void)state;

    /* 'gaTX' is 0x67615458: bytes 58 54 61 67 in memory, shown as "XTag". */
    memset(t, '#', sizeof t);
    poolsim__tag_text(0x67615458u, t);
    assert_string_equal(t, "XTag");
    assert_int_equal(TAG4('X', 'T', 'a', 'g'), 0x67615458u);

    /* 'derF' shows "Fred"; 'enoN' (TAG_NONE) shows "None"; ' GIB' shows "BIG ". */
    poolsim__tag_text(0x46726564u, t);
    assert_string_equal(t, "derF");
    poolsim__tag_text(TAG4('F', 'r', 'e', 'd'), t);
    assert_string_equal(t, "Fred");
    poolsim__tag_text(PSIM_TAG_NONE, t);
    assert_string_equal(t, "None");
    poolsim__tag_text(PSIM_TAG_BIG, t);
    assert_string_equal(t, "BIG ");

    /* Short tags: 'ab' is 0x6162, memory 62 61 00 00: "ba" and two blanks. */
    poolsim__tag_text(0x6162u, t);
    assert_string_equal(t, "ba  ");
    poolsim__tag_text(0x41u, t);
    assert_string_equal(t, "A   ");
    poolsim__tag_text(0, t);
    assert_string_equal(t, "    ");

    /* Non-printable bytes (below 0x20, 0x7F and above) show as '.'. */
    poolsim__tag_text(TAG4('A', 0x01, 0x7F, 0x80), t);
    assert_string_equal(t, "A...");
    poolsim__tag_text(TAG4(0x1F, ' ', '~', 0xFF), t);
    assert_string_equal(t, ". ~.");
    poolsim__tag_text(PSIM_TAG_OVERFLOW, t);
    assert_string_equal(t, "....");

    /* PROTECTED_POOL is the high bit of the last byte: 'gaTX' | 0x80000000
     * is 0xE7615458, whose fourth byte 0xE7 is not printable. */
    poolsim__tag_text(0x67615458u | PSIM_PROTECTED_POOL, t);
    assert_string_equal(t, "XTa.");
    assert_int_equal(t[4], '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fmt_plain_text), cmocka_unit_test(test_fmt_signed),
        cmocka_unit_test(test_fmt_unsigned),   cmocka_unit_test(test_fmt_mixed_lengths),
        cmocka_unit_test(test_fmt_pointer),    cmocka_unit_test(test_fmt_strings),
        cmocka_unit_test(test_fmt_chars),      cmocka_unit_test(test_fmt_widths_and_flags),
        cmocka_unit_test(test_fmt_truncation), cmocka_unit_test(test_fmt_unknown_conversion),
        cmocka_unit_test(test_fmt_vfmt),       cmocka_unit_test(test_fmt_tag_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
