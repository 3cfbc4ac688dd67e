/* SPDX-License-Identifier: MIT */
/*
 * test_wdm.c — the user-mode WDK surface: <poolsim/wdm.h> and src/wdm/wdm.c.
 *
 * The first group needs no poolsim instance: type sizes, every constant
 * against wdk-semantics.md, tag byte order, the Rtl memory routines,
 * POOLSIM_TRY and DbgPrint's formatter. The second group runs each test on a
 * fresh instance with a bug-check handler that records every bug check and
 * can longjmp out of the raising call: call sites, raises out of allocations,
 * unhandled raises (bug check 0x1E) and KeBugCheckEx. Every check comes in
 * both directions: the misuse reports, the legal neighbour does not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <poolsim/wdm.h>

/* ---- Helpers ------------------------------------------------------------------ */

#define WDM_TAG 'gaTX' /* displays "XTag" (§2.6) */

/* The pool limits of the instance, and a request above them. */
#define WDM_LIMIT ((uint64_t)1 << 20)
#define WDM_TOO_BIG ((SIZE_T)2 << 20)

/* What the handler saw. */
typedef struct wdm_bugchecks {
    unsigned count;
    poolsim_bugcheck last;
    jmp_buf *jump; /* when set, the handler longjmps here (once) */
} wdm_bugchecks;

static wdm_bugchecks g_bc;

static void wdm_handler(const poolsim_bugcheck *bc, void *ctx)
{
    (void)ctx;
    g_bc.count++;
    g_bc.last = *bc;
    if (g_bc.jump != NULL) {
        jmp_buf *jb = g_bc.jump;
        g_bc.jump = NULL;
        longjmp(*jb, 1);
    }
}

/* A fresh instance with explicit options (never the environment, so the
 * limits below hold) and the recording handler. */
static int wdm_setup(void **state)
{
    poolsim_options o;
    (void)state;
    memset(&g_bc, 0, sizeof(g_bc));
    poolsim_wdm_try_reset();
    poolsim_options_default(&o);
    o.paged_limit = WDM_LIMIT;
    o.nonpaged_limit = WDM_LIMIT;
    o.continue_on_bugcheck = 0;
    if (poolsim_init(&o) != POOLSIM_OK)
        return -1;
    poolsim_set_bugcheck_handler(wdm_handler, NULL);
    return 0;
}

/* Fails the test when blocks leaked. */
static int wdm_teardown(void **state)
{
    size_t left;
    (void)state;
    g_bc.jump = NULL;
    poolsim_wdm_try_reset();
    left = poolsim_shutdown();
    poolsim_set_bugcheck_handler(NULL, NULL);
    if (left != 0)
        print_error("%u block(s) leaked\n", (unsigned)left);
    return left == 0 ? 0 : -1;
}

static int wdm_fmt(char *buf, size_t size, PCSTR format, ...)
{
    va_list ap;
    int n;
    va_start(ap, format);
    n = poolsim_wdm_vsnprintf(buf, size, format, ap);
    va_end(ap);
    return n;
}

#define assert_fmt(expected, ...)                                                                            \
    do {                                                                                                     \
        char buf_[256];                                                                                      \
        int n_ = wdm_fmt(buf_, sizeof(buf_), __VA_ARGS__);                                                   \
        assert_string_equal(buf_, (expected));                                                               \
        assert_int_equal(n_, (int)strlen(expected));                                                         \
    } while (0)

/* ---- Types and constants -------------------------------------------------------- */

/* Compile-time checks at file scope go through C_ASSERT too. */
C_ASSERT(sizeof(ULONG) == 4);
C_ASSERT(sizeof(POOL_EXTENDED_PARAMETER) == 16);

static void test_wdm_type_sizes(void **state)
{
    (void)state;
    assert_int_equal(sizeof(CHAR), 1);
    assert_int_equal(sizeof(UCHAR), 1);
    assert_int_equal(sizeof(CCHAR), 1);
    assert_int_equal(sizeof(SHORT), 2);
    assert_int_equal(sizeof(USHORT), 2);
    assert_int_equal(sizeof(LONG), 4);
    assert_int_equal(sizeof(ULONG), 4);
    assert_int_equal(sizeof(LOGICAL), 4);
    assert_int_equal(sizeof(NTSTATUS), 4);
    assert_int_equal(sizeof(KPRIORITY), 4);
    assert_int_equal(sizeof(LONG64), 8);
    assert_int_equal(sizeof(ULONG64), 8);
    assert_int_equal(sizeof(LONGLONG), 8);
    assert_int_equal(sizeof(ULONGLONG), 8);
    assert_int_equal(sizeof(POOL_FLAGS), 8);
    assert_int_equal(sizeof(ULONG_PTR), sizeof(void *));
    assert_int_equal(sizeof(LONG_PTR), sizeof(void *));
    assert_int_equal(sizeof(SIZE_T), sizeof(void *));
    assert_int_equal(sizeof(BOOLEAN), 1);
    assert_int_equal(sizeof(KIRQL), 1);
    assert_int_equal(sizeof(PVOID), sizeof(void *));
    assert_int_equal(sizeof(POOL_TYPE), 4);
    assert_int_equal(sizeof(EX_POOL_PRIORITY), 4);
    assert_int_equal(sizeof(POOL_EXTENDED_PARAMETER), sizeof(poolsim_ext_param));

    /* Signedness. */
    assert_true((LONG)-1 < 0);
    assert_true((ULONG)-1 > 0);
    assert_true((LONG64)-1 < 0);
    assert_true((ULONG64)-1 > 0);
    assert_true((LONG_PTR)-1 < 0);
    assert_true((SIZE_T)-1 > 0);
    assert_true((UCHAR)0xFF > 0);
    assert_true(STATUS_UNSUCCESSFUL < 0);
    assert_int_equal(TRUE, 1);
    assert_int_equal(FALSE, 0);
}

static void test_wdm_pool_type_values(void **state)
{
    (void)state;
    /* §2.1 */
    assert_int_equal(NonPagedPool, 0);
    assert_int_equal(NonPagedPoolExecute, 0);
    assert_int_equal(NonPagedPoolBase, 0);
    assert_int_equal(PagedPool, 1);
    assert_int_equal(NonPagedPoolMustSucceed, 2);
    assert_int_equal(NonPagedPoolBaseMustSucceed, 2);
    assert_int_equal(DontUseThisType, 3);
    assert_int_equal(NonPagedPoolCacheAligned, 4);
    assert_int_equal(NonPagedPoolBaseCacheAligned, 4);
    assert_int_equal(PagedPoolCacheAligned, 5);
    assert_int_equal(NonPagedPoolCacheAlignedMustS, 6);
    assert_int_equal(NonPagedPoolBaseCacheAlignedMustS, 6);
    assert_int_equal(MaxPoolType, 7);
    assert_int_equal(NonPagedPoolSession, 32);
    assert_int_equal(PagedPoolSession, 33);
    assert_int_equal(NonPagedPoolMustSucceedSession, 34);
    assert_int_equal(DontUseThisTypeSession, 35);
    assert_int_equal(NonPagedPoolCacheAlignedSession, 36);
    assert_int_equal(PagedPoolCacheAlignedSession, 37);
    assert_int_equal(NonPagedPoolCacheAlignedMustSSession, 38);
    assert_int_equal(NonPagedPoolNx, 512);
    assert_int_equal(NonPagedPoolNxCacheAligned, 516);
    assert_int_equal(NonPagedPoolSessionNx, 544);

    /* The OR-able bits (§2.1). */
    assert_int_equal(POOL_QUOTA_FAIL_INSTEAD_OF_RAISE, 8);
    assert_int_equal(POOL_RAISE_IF_ALLOCATION_FAILURE, 16);
    assert_int_equal(POOL_COLD_ALLOCATION, 256);
    assert_int_equal(POOL_NX_ALLOCATION, 512);
    assert_int_equal(POOL_NX_ALLOCATION, NonPagedPoolNx);
    assert_int_equal(POOL_ZERO_ALLOCATION, 1024);
    assert_true(PROTECTED_POOL == 0x80000000u);
}

static void test_wdm_pool_flag_values(void **state)
{
    (void)state;
    /* §2.2 */
    assert_true(POOL_FLAG_REQUIRED_START == 0x1ull);
    assert_true(POOL_FLAG_USE_QUOTA == 0x1ull);
    assert_true(POOL_FLAG_UNINITIALIZED == 0x2ull);
    assert_true(POOL_FLAG_SESSION == 0x4ull);
    assert_true(POOL_FLAG_CACHE_ALIGNED == 0x8ull);
    assert_true(POOL_FLAG_RESERVED1 == 0x10ull);
    assert_true(POOL_FLAG_RAISE_ON_FAILURE == 0x20ull);
    assert_true(POOL_FLAG_NON_PAGED == 0x40ull);
    assert_true(POOL_FLAG_NON_PAGED_EXECUTE == 0x80ull);
    assert_true(POOL_FLAG_PAGED == 0x100ull);
    assert_true(POOL_FLAG_RESERVED2 == 0x200ull);
    assert_true(POOL_FLAG_RESERVED3 == 0x400ull);
    assert_true(POOL_FLAG_REQUIRED_END == 0x80000000ull);
    assert_true(POOL_FLAG_OPTIONAL_START == 0x100000000ull);
    assert_true(POOL_FLAG_SPECIAL_POOL == 0x100000000ull);
    assert_true(POOL_FLAG_OPTIONAL_END == 0x8000000000000000ull);
    assert_true(POOL_FLAG_REQUIRED_MASK == 0xFFFFFFFFull);
    /* Unknown required bits: 0x800 up to bit 31. */
    assert_true(POOL_FLAG_UNUSED_REQUIRED_BITS == 0xFFFFF800ull);
    /* Every flag is a 64-bit value, also the ones below 2^32. */
    assert_int_equal(sizeof(POOL_FLAG_PAGED), 8);
    assert_true((POOL_FLAG_SPECIAL_POOL | POOL_FLAG_PAGED) == 0x100000100ull);
}

static void test_wdm_priority_and_ext_param_values(void **state)
{
    (void)state;
    /* §2.3 */
    assert_int_equal(LowPoolPriority, 0);
    assert_int_equal(LowPoolPrioritySpecialPoolOverrun, 8);
    assert_int_equal(LowPoolPrioritySpecialPoolUnderrun, 9);
    assert_int_equal(NormalPoolPriority, 16);
    assert_int_equal(NormalPoolPrioritySpecialPoolOverrun, 24);
    assert_int_equal(NormalPoolPrioritySpecialPoolUnderrun, 25);
    assert_int_equal(HighPoolPriority, 32);
    assert_int_equal(HighPoolPrioritySpecialPoolOverrun, 40);
    assert_int_equal(HighPoolPrioritySpecialPoolUnderrun, 41);
    assert_int_equal(PoolExtendedParameterInvalidType, 0);
    assert_int_equal(PoolExtendedParameterPriority, 1);
    assert_int_equal(PoolExtendedParameterSecurePool, 2);
    assert_int_equal(PoolExtendedParameterNumaNode, 3);
    assert_int_equal(PoolExtendedParameterMax, 4);
    assert_true(MM_ANY_NODE_OK == 0x80000000u);
    assert_int_equal(POOL_EXTENDED_PARAMETER_TYPE_BITS, 8);
    assert_int_equal(POOL_EXTENDED_PARAMETER_REQUIRED_FIELD_BITS, 1);
    assert_int_equal(POOL_EXTENDED_PARAMETER_RESERVED_BITS, 55);
    assert_int_equal(SECURE_POOL_FLAGS_FREEABLE, 1);
    assert_int_equal(SECURE_POOL_FLAGS_MODIFIABLE, 2);
}

/* POOL_EXTENDED_PARAMETER has poolsim_ext_param's bytes: Type in bits 0-7,
 * Optional in bit 8, Reserved above, the value in the second 8 bytes (its
 * low half for the 32-bit members on these little-endian hosts). */
static void test_wdm_ext_param_layout(void **state)
{
    POOL_EXTENDED_PARAMETER e;
    poolsim_ext_param raw;
    struct {
        char c;
        POOL_EXTENDED_PARAMETER p;
    } align;
    (void)state;

    assert_int_equal(offsetof(POOL_EXTENDED_PARAMETER, Reserved2), offsetof(poolsim_ext_param, value));
    assert_int_equal(offsetof(POOL_EXTENDED_PARAMETER, Priority), 8);
    assert_int_equal(offsetof(POOL_EXTENDED_PARAMETER, PreferredNode), 8);
    assert_int_equal((char *)&align.p - (char *)&align, 8); /* DECLSPEC_ALIGN(8) */

    memset(&e, 0, sizeof(e));
    e.Type = PoolExtendedParameterNumaNode;
    e.Optional = 1;
    e.PreferredNode = 3 | MM_ANY_NODE_OK;
    memcpy(&raw, &e, sizeof(raw));
    assert_true((raw.type_and_flags & 0xFF) == 3);
    assert_true(((raw.type_and_flags >> 8) & 1) == 1);
    assert_true((raw.type_and_flags >> 9) == 0);
    assert_true((raw.value & 0xFFFFFFFFu) == 0x80000003u);

    memset(&e, 0, sizeof(e));
    e.Type = PoolExtendedParameterPriority;
    e.Reserved = ((ULONG64)1 << 55) - 1;
    e.Priority = HighPoolPriority;
    memcpy(&raw, &e, sizeof(raw));
    assert_true((raw.type_and_flags & 0x1FF) == 1);
    assert_true((raw.type_and_flags >> 9) == ((uint64_t)1 << 55) - 1);
    assert_true((raw.value & 0xFFFFFFFFu) == 32);

    memset(&e, 0, sizeof(e));
    e.Reserved2 = 0x0123456789ABCDEFull;
    memcpy(&raw, &e, sizeof(raw));
    assert_true(raw.type_and_flags == 0);
    assert_true(raw.value == 0x0123456789ABCDEFull);
}

static void test_wdm_status_values(void **state)
{
    (void)state;
    assert_true((ULONG)STATUS_SUCCESS == 0x00000000u);
    assert_true((ULONG)STATUS_TIMEOUT == 0x00000102u);
    assert_true((ULONG)STATUS_PENDING == 0x00000103u);
    assert_true((ULONG)STATUS_BUFFER_OVERFLOW == 0x80000005u);
    assert_true((ULONG)STATUS_UNSUCCESSFUL == 0xC0000001u);
    assert_true((ULONG)STATUS_NOT_IMPLEMENTED == 0xC0000002u);
    assert_true((ULONG)STATUS_ACCESS_VIOLATION == 0xC0000005u);
    assert_true((ULONG)STATUS_INVALID_PARAMETER == 0xC000000Du);
    assert_true((ULONG)STATUS_NO_MEMORY == 0xC0000017u);
    assert_true((ULONG)STATUS_BUFFER_TOO_SMALL == 0xC0000023u);
    assert_true((ULONG)STATUS_QUOTA_EXCEEDED == 0xC0000044u);
    assert_true((ULONG)STATUS_INSUFFICIENT_RESOURCES == 0xC000009Au); /* §2.4 */
    assert_true((ULONG)STATUS_NOT_SUPPORTED == 0xC00000BBu);
    assert_true((ULONG)STATUS_INVALID_PARAMETER_1 == 0xC00000EFu);
    assert_true((ULONG)STATUS_INVALID_PARAMETER_2 == 0xC00000F0u);
    assert_true((ULONG)STATUS_INVALID_PARAMETER_3 == 0xC00000F1u);
    assert_true((ULONG)STATUS_INVALID_PARAMETER_4 == 0xC00000F2u); /* §3 */
    assert_true((ULONG)STATUS_INVALID_PARAMETER_5 == 0xC00000F3u); /* §3 */
    assert_true((ULONG)STATUS_INVALID_PARAMETER_6 == 0xC00000F4u);
    assert_true((ULONG)STATUS_INVALID_PARAMETER_7 == 0xC00000F5u);
    assert_true((ULONG)STATUS_INVALID_PARAMETER_8 == 0xC00000F6u);
    assert_true((ULONG)STATUS_INVALID_PARAMETER_9 == 0xC00000F7u);
    assert_true((ULONG)STATUS_INVALID_PARAMETER_10 == 0xC00000F8u);
    assert_true((ULONG)STATUS_INVALID_PARAMETER_11 == 0xC00000F9u);
    assert_true((ULONG)STATUS_INVALID_PARAMETER_12 == 0xC00000FAu);
    assert_true((ULONG)STATUS_NOT_FOUND == 0xC0000225u);

    assert_true(NT_SUCCESS(STATUS_SUCCESS));
    assert_true(NT_SUCCESS(STATUS_PENDING));
    assert_false(NT_SUCCESS(STATUS_BUFFER_OVERFLOW));
    assert_false(NT_SUCCESS(STATUS_INSUFFICIENT_RESOURCES));
    assert_true(NT_ERROR(STATUS_INSUFFICIENT_RESOURCES));
    assert_false(NT_ERROR(STATUS_BUFFER_OVERFLOW));
    assert_true(NT_WARNING(STATUS_BUFFER_OVERFLOW));
    assert_false(NT_WARNING(STATUS_SUCCESS));
    assert_true(NT_INFORMATION((NTSTATUS)0x40000000L));
    assert_false(NT_INFORMATION(STATUS_SUCCESS));
}

static void test_wdm_irql_page_lookaside_values(void **state)
{
    int x = 0;
    (void)state;
    /* §4.1, x64 */
    assert_int_equal(PASSIVE_LEVEL, 0);
    assert_int_equal(LOW_LEVEL, 0);
    assert_int_equal(APC_LEVEL, 1);
    assert_int_equal(DISPATCH_LEVEL, 2);
    assert_int_equal(CMCI_LEVEL, 5);
    assert_int_equal(CLOCK_LEVEL, 13);
    assert_int_equal(IPI_LEVEL, 14);
    assert_int_equal(DRS_LEVEL, 14);
    assert_int_equal(POWER_LEVEL, 14);
    assert_int_equal(PROFILE_LEVEL, 15);
    assert_int_equal(HIGH_LEVEL, 15);

    /* §3 */
    assert_int_equal(LOOKASIDE_MINIMUM_BLOCK_SIZE, sizeof(void *));
    assert_int_equal(EX_MAXIMUM_LOOKASIDE_DEPTH_BASE, 256);
    assert_int_equal(EX_MAXIMUM_LOOKASIDE_DEPTH_LIMIT, 1024);
    assert_int_equal(EX_LOOKASIDE_LIST_EX_FLAGS_RAISE_ON_FAIL, 1);
    assert_int_equal(EX_LOOKASIDE_LIST_EX_FLAGS_FAIL_NO_RAISE, 2);

    /* Pages (§0). */
    assert_int_equal(PAGE_SIZE, 0x1000);
    assert_int_equal(PAGE_SHIFT, 12);
    assert_int_equal(BYTES_TO_PAGES(0), 0);
    assert_int_equal(BYTES_TO_PAGES(1), 1);
    assert_int_equal(BYTES_TO_PAGES(0x1000), 1);
    assert_int_equal(BYTES_TO_PAGES(0x1001), 2);
    assert_int_equal(ROUND_TO_PAGES(0), 0);
    assert_int_equal(ROUND_TO_PAGES(1), 0x1000);
    assert_int_equal(ROUND_TO_PAGES(0x2000), 0x2000);
    assert_true(PAGE_ALIGN((ULONG_PTR)0x12345) == (PVOID)(ULONG_PTR)0x12000);
    assert_int_equal(BYTE_OFFSET((ULONG_PTR)0x12345), 0x345);
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES((ULONG_PTR)0x1000, 0x1000), 1);
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES((ULONG_PTR)0x1FFF, 2), 2);
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES((ULONG_PTR)0x1800, 0x1000), 2);
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES((ULONG_PTR)0x1000, 0), 0);
    assert_true((ULONG_PTR)PAGE_ALIGN(&x) <= (ULONG_PTR)&x);
    assert_true((ULONG_PTR)&x - (ULONG_PTR)PAGE_ALIGN(&x) == BYTE_OFFSET(&x));
}

/* 'gaTX' = 0x67615458, stored little-endian as the bytes "XTag", which is how
 * the debugger shows it (§2.6). */
static void test_wdm_tag_byte_order(void **state)
{
    ULONG tag = WDM_TAG;
    ULONG none = 'enoN';
    ULONG protected_tag = WDM_TAG | PROTECTED_POOL;
    (void)state;
    assert_true(tag == 0x67615458u);
    assert_memory_equal(&tag, "XTag", 4);
    assert_true(none == 0x656E6F4Eu);
    assert_memory_equal(&none, "None", 4);
    assert_true((ULONG)' GIB' == 0x20474942u);
    assert_true((ULONG)'1gaT' == 0x31676154u); /* GFlags "Tag1" (§2.6) */
    assert_true(protected_tag == 0xE7615458u);
    assert_true((protected_tag & ~PROTECTED_POOL) == tag);
}

typedef struct WDM_RECORD {
    ULONG a;
    USHORT b;
    ULONG64 c;
} WDM_RECORD;

FORCEINLINE ULONG wdm_twice(ULONG x); /* an inline definition only: no out-of-line copy is needed */
FORCEINLINE ULONG wdm_twice(ULONG x) { return 2 * x; }

static FORCEINLINE ULONG wdm_thrice(ULONG x) { return 3 * x; }

/* SAL and driver annotations expand to nothing. */
_IRQL_requires_max_(DISPATCH_LEVEL) _Must_inspect_result_ _Success_(return != 0) static ULONG
    wdm_annotated(_In_ ULONG n, _Out_opt_ PULONG out, _In_reads_bytes_opt_(n) const VOID *src,
                  _Inout_updates_bytes_(n) PUCHAR dst, IN OUT OPTIONAL PVOID unused)
{
    UNREFERENCED_PARAMETER(unused);
    if (ARGUMENT_PRESENT(src))
        RtlCopyMemory(dst, src, n);
    if (out != NULL)
        *out = n;
    return n;
}

static void test_wdm_helper_macros(void **state)
{
    WDM_RECORD r;
    UCHAR dst[4];
    ULONG out = 0;
    C_ASSERT(sizeof(WDM_RECORD) == 16); /* block scope */
    (void)state;
    assert_int_equal(FIELD_OFFSET(WDM_RECORD, b), 4);
    assert_int_equal(FIELD_OFFSET(WDM_RECORD, c), 8);
    assert_int_equal(RTL_SIZEOF_THROUGH_FIELD(WDM_RECORD, b), 6);
    assert_int_equal(RTL_FIELD_SIZE(WDM_RECORD, c), 8);
    assert_int_equal(RTL_NUMBER_OF(dst), 4);
    assert_ptr_equal(CONTAINING_RECORD(&r.c, WDM_RECORD, c), &r);
    assert_ptr_equal(CONTAINING_RECORD(&r.b, WDM_RECORD, b), &r);
    assert_false(ARGUMENT_PRESENT(NULL));
    assert_true(ARGUMENT_PRESENT(&r));
    assert_int_equal(wdm_twice(21), 42);
    assert_int_equal(wdm_thrice(14), 42);
    assert_int_equal(wdm_annotated(4, &out, "abcd", dst, NULL), 4);
    assert_int_equal(out, 4);
    assert_memory_equal(dst, "abcd", 4);
}

/* ---- Memory -------------------------------------------------------------------- */

static void test_wdm_rtl_compare_memory(void **state)
{
    static const UCHAR a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    UCHAR b[8];
    (void)state;
    memcpy(b, a, sizeof(b));
    assert_int_equal(RtlCompareMemory(a, b, sizeof(a)), 8);
    assert_int_equal(RtlCompareMemory(a, b, 0), 0);
    b[5] = 0;
    assert_int_equal(RtlCompareMemory(a, b, sizeof(a)), 5); /* leading matches, not memcmp's sign */
    assert_int_equal(RtlCompareMemory(a, b, 3), 3);
    b[0] = 0xFF;
    assert_int_equal(RtlCompareMemory(a, b, sizeof(a)), 0);
    assert_true(RtlEqualMemory(a, a, sizeof(a)));
    assert_false(RtlEqualMemory(a, b, sizeof(a)));
}

static void test_wdm_rtl_fill_copy_zero(void **state)
{
    UCHAR buf[16];
    UCHAR *p;
    (void)state;
    RtlFillMemory(buf, sizeof(buf), 0xAB);
    assert_int_equal(buf[0], 0xAB);
    assert_int_equal(buf[15], 0xAB);
    RtlZeroMemory(buf, 8);
    assert_int_equal(buf[7], 0);
    assert_int_equal(buf[8], 0xAB);
    RtlCopyMemory(buf, "0123456789", 10);
    RtlMoveMemory(buf + 2, buf, 8); /* overlapping */
    assert_memory_equal(buf, "0101234567", 10);
    p = (UCHAR *)RtlSecureZeroMemory(buf, sizeof(buf));
    assert_ptr_equal(p, buf);
    assert_int_equal(RtlCompareMemory(buf, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16), 16);
}

/* ---- POOLSIM_TRY ------------------------------------------------------------------ */

static int g_depth_seen;

#if defined(__GNUC__) || defined(__clang__)
#define WDM_NOINLINE __attribute__((__noinline__))
#else
#define WDM_NOINLINE
#endif

/* Raises status `levels` calls below the caller (nothing for STATUS_SUCCESS). */
static WDM_NOINLINE void wdm_raise_deep(int levels, NTSTATUS status)
{
    if (levels > 0) {
        wdm_raise_deep(levels - 1, status);
        return;
    }
    g_depth_seen = (int)poolsim_wdm_try_depth();
    if (status != STATUS_SUCCESS)
        ExRaiseStatus(status);
}

static void test_wdm_try_catches_raise(void **state)
{
    NTSTATUS volatile status = STATUS_SUCCESS;
    int volatile after = 0, handled = 0;
    (void)state;
    assert_int_equal(poolsim_wdm_try_depth(), 0);
    POOLSIM_TRY
    {
        assert_int_equal(poolsim_wdm_try_depth(), 1);
        ExRaiseStatus(STATUS_ACCESS_VIOLATION);
        after = 1;
    }
    POOLSIM_EXCEPT(status)
    {
        handled = 1;
        assert_true(POOLSIM_EXCEPTION_CODE() == STATUS_ACCESS_VIOLATION);
        assert_int_equal(poolsim_wdm_try_depth(), 0); /* popped by the raise */
    }
    POOLSIM_END_TRY;
    assert_int_equal(after, 0);
    assert_int_equal(handled, 1);
    assert_true(status == STATUS_ACCESS_VIOLATION);
    assert_int_equal(poolsim_wdm_try_depth(), 0);
}

/* The legal direction: a body that does not raise runs to its end and never
 * enters the except block. */
static void test_wdm_try_normal_exit(void **state)
{
    NTSTATUS volatile status = STATUS_SUCCESS;
    int volatile after = 0, handled = 0;
    (void)state;
    POOLSIM_TRY { after = 1; }
    POOLSIM_EXCEPT(status) { handled = 1; }
    POOLSIM_END_TRY;
    assert_int_equal(after, 1);
    assert_int_equal(handled, 0);
    assert_true(status == STATUS_SUCCESS);
    assert_int_equal(poolsim_wdm_try_depth(), 0);
}

static void test_wdm_try_raise_across_functions(void **state)
{
    NTSTATUS volatile status = STATUS_SUCCESS;
    (void)state;
    g_depth_seen = -1;
    POOLSIM_TRY
    {
        wdm_raise_deep(5, STATUS_INVALID_PARAMETER_3);
        fail_msg("ExRaiseStatus returned");
    }
    POOLSIM_EXCEPT(status) {}
    POOLSIM_END_TRY;
    assert_true(status == STATUS_INVALID_PARAMETER_3);
    assert_int_equal(g_depth_seen, 1);
    assert_int_equal(poolsim_wdm_try_depth(), 0);
}

static void test_wdm_try_nested(void **state)
{
    NTSTATUS volatile outer = STATUS_SUCCESS, inner = STATUS_SUCCESS;
    int volatile outer_handled = 0;
    (void)state;
    POOLSIM_TRY
    {
        POOLSIM_TRY
        {
            assert_int_equal(poolsim_wdm_try_depth(), 2);
            wdm_raise_deep(2, STATUS_NO_MEMORY);
        }
        POOLSIM_EXCEPT(inner) { assert_int_equal(poolsim_wdm_try_depth(), 1); }
        POOLSIM_END_TRY;
        assert_true(inner == STATUS_NO_MEMORY); /* the inner frame caught it */
        assert_int_equal(outer_handled, 0);
        /* A raise in an except block goes to the enclosing frame. */
        POOLSIM_TRY { ExRaiseStatus(STATUS_NOT_FOUND); }
        POOLSIM_EXCEPT(inner) { ExRaiseStatus(STATUS_QUOTA_EXCEEDED); }
        POOLSIM_END_TRY;
        fail_msg("the except block's raise was not propagated");
    }
    POOLSIM_EXCEPT(outer) { outer_handled = 1; }
    POOLSIM_END_TRY;
    assert_int_equal(outer_handled, 1);
    assert_true(inner == STATUS_NOT_FOUND);
    assert_true(outer == STATUS_QUOTA_EXCEEDED);
    assert_int_equal(poolsim_wdm_try_depth(), 0);
}

/* A frame is popped when its body ends normally, so a later raise in the
 * outer body goes to the outer frame. */
static void test_wdm_try_popped_on_normal_exit(void **state)
{
    NTSTATUS volatile outer = STATUS_SUCCESS, inner = STATUS_SUCCESS;
    int volatile inner_handled = 0;
    (void)state;
    POOLSIM_TRY
    {
        POOLSIM_TRY { assert_int_equal(poolsim_wdm_try_depth(), 2); }
        POOLSIM_EXCEPT(inner) { inner_handled = 1; }
        POOLSIM_END_TRY;
        assert_int_equal(poolsim_wdm_try_depth(), 1);
        ExRaiseStatus(STATUS_BUFFER_TOO_SMALL);
    }
    POOLSIM_EXCEPT(outer) {}
    POOLSIM_END_TRY;
    assert_int_equal(inner_handled, 0);
    assert_true(inner == STATUS_SUCCESS);
    assert_true(outer == STATUS_BUFFER_TOO_SMALL);
    assert_int_equal(poolsim_wdm_try_depth(), 0);
}

static void test_wdm_try_leave_pops(void **state)
{
    NTSTATUS volatile status = STATUS_SUCCESS;
    int volatile reached = 0;
    (void)state;
    POOLSIM_TRY
    {
        if (poolsim_wdm_try_depth() == 1)
            POOLSIM_LEAVE;
        reached = 1;
    }
    POOLSIM_EXCEPT(status) {}
    POOLSIM_END_TRY;
    assert_int_equal(reached, 0);
    assert_int_equal(poolsim_wdm_try_depth(), 0);
    assert_true(status == STATUS_SUCCESS);
}

/* The real function, reached through its address, raises the same way. */
static void test_wdm_try_function_pointer_raise(void **state)
{
    VOID(NTAPI * raise)(NTSTATUS) = ExRaiseStatus;
    NTSTATUS volatile status = STATUS_SUCCESS;
    (void)state;
    POOLSIM_TRY { raise(STATUS_NOT_SUPPORTED); }
    POOLSIM_EXCEPT(status) {}
    POOLSIM_END_TRY;
    assert_true(status == STATUS_NOT_SUPPORTED);
    assert_int_equal(poolsim_wdm_try_depth(), 0);
}

/* A test whose handler longjmps out of a body leaves its frame behind;
 * poolsim_wdm_try_reset forgets it. */
static void test_wdm_try_reset(void **state)
{
    jmp_buf jb;
    NTSTATUS volatile status = STATUS_SUCCESS;
    (void)state;
    if (setjmp(jb) == 0) {
        POOLSIM_TRY { longjmp(jb, 1); }
        POOLSIM_EXCEPT(status) {}
        POOLSIM_END_TRY;
    }
    assert_int_equal(poolsim_wdm_try_depth(), 1);
    poolsim_wdm_try_reset();
    assert_int_equal(poolsim_wdm_try_depth(), 0);
    assert_true(status == STATUS_SUCCESS);
}

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define WDM_HAVE_PTHREADS 1

/* A thread's chain starts empty and its raises land in its own frames. */
static void *wdm_thread_body(void *arg)
{
    NTSTATUS volatile status = STATUS_SUCCESS;
    int *result = (int *)arg;
    result[0] = (int)poolsim_wdm_try_depth();
    POOLSIM_TRY { wdm_raise_deep(3, STATUS_TIMEOUT); }
    POOLSIM_EXCEPT(status) {}
    POOLSIM_END_TRY;
    result[1] = status == STATUS_TIMEOUT;
    result[2] = (int)poolsim_wdm_try_depth();
    return NULL;
}

static void test_wdm_try_per_thread(void **state)
{
    NTSTATUS volatile status = STATUS_SUCCESS;
    int result[3] = {-1, -1, -1};
    pthread_t t;
    (void)state;
    POOLSIM_TRY
    {
        assert_int_equal(pthread_create(&t, NULL, wdm_thread_body, result), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(poolsim_wdm_try_depth(), 1);
    }
    POOLSIM_EXCEPT(status) {}
    POOLSIM_END_TRY;
    assert_true(status == STATUS_SUCCESS);
    assert_int_equal(result[0], 0);
    assert_int_equal(result[1], 1);
    assert_int_equal(result[2], 0);
}
#endif

/* ---- Routine prototypes ------------------------------------------------------------- */

/* The bare names, not followed by `(`, are the functions with the WDK's
 * prototypes (this is a compile-time check as much as a run-time one). */
static void test_wdm_routine_addresses(void **state)
{
    PVOID(NTAPI * pool)(POOL_TYPE, SIZE_T) = ExAllocatePool;
    PVOID(NTAPI * with_tag)(POOL_TYPE, SIZE_T, ULONG) = &ExAllocatePoolWithTag;
    PVOID(NTAPI * quota)(POOL_TYPE, SIZE_T) = ExAllocatePoolWithQuota;
    PVOID(NTAPI * quota_tag)(POOL_TYPE, SIZE_T, ULONG) = ExAllocatePoolWithQuotaTag;
    PVOID(NTAPI * priority)(POOL_TYPE, SIZE_T, ULONG, EX_POOL_PRIORITY) = ExAllocatePoolWithTagPriority;
    PVOID(NTAPI * pool2)(POOL_FLAGS, SIZE_T, ULONG) = ExAllocatePool2;
    PVOID(NTAPI * pool3)(POOL_FLAGS, SIZE_T, ULONG, PCPOOL_EXTENDED_PARAMETER, ULONG) = ExAllocatePool3;
    PVOID(NTAPI * zero)(POOL_TYPE, SIZE_T, ULONG) = ExAllocatePoolZero;
    PVOID(NTAPI * quota_zero)(POOL_TYPE, SIZE_T, ULONG) = ExAllocatePoolQuotaZero;
    PVOID(NTAPI * priority_zero)(POOL_TYPE, SIZE_T, ULONG, EX_POOL_PRIORITY) = ExAllocatePoolPriorityZero;
    PVOID(NTAPI * uninit)(POOL_TYPE, SIZE_T, ULONG) = ExAllocatePoolUninitialized;
    PVOID(NTAPI * quota_uninit)(POOL_TYPE, SIZE_T, ULONG) = ExAllocatePoolQuotaUninitialized;
    PVOID(NTAPI * priority_uninit)
    (POOL_TYPE, SIZE_T, ULONG, EX_POOL_PRIORITY) = ExAllocatePoolPriorityUninitialized;
    VOID(NTAPI * free_pool)(PVOID) = ExFreePool;
    VOID(NTAPI * free_tag)(PVOID, ULONG) = ExFreePoolWithTag;
    VOID(NTAPI * free2)(PVOID, ULONG, PCPOOL_EXTENDED_PARAMETER, ULONG) = ExFreePool2;
    SIZE_T(NTAPI * query)(PVOID, PBOOLEAN) = ExQueryPoolBlockSize;
    VOID(NTAPI * bugcheck_ex)(ULONG, ULONG_PTR, ULONG_PTR, ULONG_PTR, ULONG_PTR) = KeBugCheckEx;
    VOID(NTAPI * bugcheck)(ULONG) = KeBugCheck;
    KIRQL(NTAPI * irql)(VOID) = KeGetCurrentIrql;
    SIZE_T(NTAPI * compare)(const VOID *, const VOID *, SIZE_T) = RtlCompareMemory;
    ULONG(POOLSIM_WDM_CDECL * print)(PCSTR, ...) = DbgPrint;
    ULONG(POOLSIM_WDM_CDECL * print_ex)(ULONG, ULONG, PCSTR, ...) = DbgPrintEx;
    (void)state;
    assert_non_null(pool);
    assert_non_null(with_tag);
    assert_non_null(quota);
    assert_non_null(quota_tag);
    assert_non_null(priority);
    assert_non_null(pool2);
    assert_non_null(pool3);
    assert_non_null(zero);
    assert_non_null(quota_zero);
    assert_non_null(priority_zero);
    assert_non_null(uninit);
    assert_non_null(quota_uninit);
    assert_non_null(priority_uninit);
    assert_non_null(free_pool);
    assert_non_null(free_tag);
    assert_non_null(free2);
    assert_non_null(query);
    assert_non_null(bugcheck_ex);
    assert_non_null(bugcheck);
    assert_non_null(irql);
    assert_non_null(compare);
    assert_non_null(print);
    assert_non_null(print_ex);
}

/* ---- DbgPrint ------------------------------------------------------------------------ */

static void test_wdm_dbgprint_windows_sizes(void **state)
{
    (void)state;
    /* l is 32 bits on every host: a ULONG passed for %lx prints right on LP64 too. */
    assert_fmt("deadbeef", "%lx", (ULONG)0xDEADBEEFu);
    assert_fmt("-5|4000000000", "%ld|%lu", (LONG)-5, (ULONG)4000000000u);
    assert_fmt("C000009A", "%08lX", (ULONG)STATUS_INSUFFICIENT_RESOURCES);
    assert_fmt("123456789abcdef0", "%I64x", (ULONG64)0x123456789ABCDEF0ull);
    assert_fmt("-1|-1", "%I64d|%I32d", (LONG64)-1, (LONG)-1);
    assert_fmt("18446744073709551615", "%llu", (ULONGLONG)UINT64_MAX);
    assert_fmt("-9223372036854775808", "%lld", (LONGLONG)INT64_MIN);
    assert_fmt("12345|6|7", "%Iu|%zu|%Id", (SIZE_T)12345, (SIZE_T)6, (LONG_PTR)7);
    assert_fmt("4464|44", "%hd|%hhu", 70000, 300);
    if (sizeof(void *) == 8)
        assert_fmt("0000000000001234", "%p", (PVOID)(ULONG_PTR)0x1234);
    else
        assert_fmt("00001234", "%p", (PVOID)(ULONG_PTR)0x1234);
}

static void test_wdm_dbgprint_flags_and_text(void **state)
{
    static const USHORT wide[] = {'h', 'i', 0};
    static const USHORT unicode_text[] = {'a', 'b', 'c'};
    struct {
        USHORT Length;
        USHORT MaximumLength;
        const void *Buffer;
    } ansi = {3, 3, "xyzw"}, unicode = {6, 6, unicode_text}, empty = {0, 0, NULL};
    char small[8];
    (void)state;
    assert_fmt("0000BEEF|42   |   42|+7| 7", "%08X|%-5d|%5d|%+d|% d", 0xBEEFu, 42, 42, 7, 7);
    assert_fmt("0xff|010|007||0", "%#x|%#o|%.3d|%.0d|%X", 255u, 8u, 7, 0, 0u);
    assert_fmt("   1|2  |", "%*d|%-*d|", 4, 1, 3, 2);
    assert_fmt("abc|(null)|Q|%", "%.3s|%s|%c|%%", "abcdef", (const char *)NULL, 'Q');
    assert_fmt("hi|hi|hi|h", "%ws|%S|%ls|%.1ws", wide, wide, wide, wide);
    assert_fmt("x|?|y", "%wc|%C|%hc", 'x', 0x263A, 'y');
    assert_fmt("xyz|abc|(null)", "%Z|%wZ|%wZ", &ansi, &unicode, &empty);
    assert_fmt(" 3.14|2.5e+00", "%5.2f|%.1e", 3.14159, 2.5);
    assert_fmt("%y|%", "%y|%");

    /* Truncation: like vsnprintf, the whole length comes back. */
    assert_int_equal(wdm_fmt(small, sizeof(small), "%s", "abcdefghijkl"), 12);
    assert_string_equal(small, "abcdefg");
    assert_int_equal(wdm_fmt(NULL, 0, "%lu", (ULONG)123456), 6);
}

static void test_wdm_dbgprint_returns_success(void **state)
{
    (void)state;
    assert_int_equal(DbgPrint("poolsim test_wdm: DbgPrint %s %lu\n", "works", (ULONG)1), STATUS_SUCCESS);
    assert_int_equal(
        DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_INFO_LEVEL, "poolsim test_wdm: DbgPrintEx %d\n", 2),
        STATUS_SUCCESS);
    assert_int_equal(DPFLTR_IHVDRIVER_ID, 77);
    assert_int_equal(DPFLTR_DEFAULT_ID, 101);
    assert_int_equal(DPFLTR_ERROR_LEVEL, 0);
    assert_int_equal(DPFLTR_INFO_LEVEL, 3);
    KdPrint(("poolsim test_wdm: KdPrint is off unless DBG\n"));
}

/* ---- With a poolsim instance ------------------------------------------------------ */

static void test_wdm_irql_is_passive(void **state)
{
    (void)state;
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

/* The macro records the caller's file and line; the tag is stored as passed. */
static void test_wdm_macro_records_site(void **state)
{
    poolsim_block_info info;
    PVOID p;
    int line;
    (void)state;
    line = __LINE__ + 1;
    p = ExAllocatePoolWithTag(NonPagedPoolNx, 32, WDM_TAG);
    assert_non_null(p);
    assert_true(poolsim_find_block(p, &info));
    assert_non_null(info.alloc_site.file);
    assert_string_equal(info.alloc_site.file, __FILE__);
    assert_int_equal(info.alloc_site.line, line);
    assert_true(info.tag == WDM_TAG);
    assert_int_equal(info.size, 32);
    ExFreePoolWithTag(p, WDM_TAG);
    assert_int_equal(g_bc.count, 0);
}

/* Through its address the real function runs: it knows no call site. */
static void test_wdm_function_pointer_site_unknown(void **state)
{
    PVOID(NTAPI * alloc)(POOL_TYPE, SIZE_T, ULONG) = &ExAllocatePoolWithTag;
    VOID(NTAPI * release)(PVOID, ULONG) = &ExFreePoolWithTag;
    poolsim_block_info info;
    PVOID p;
    (void)state;
    p = alloc(PagedPool, 48, WDM_TAG);
    assert_non_null(p);
    assert_true(poolsim_find_block(p, &info));
    assert_null(info.alloc_site.file);
    assert_true(info.tag == WDM_TAG);
    release(p, WDM_TAG);
    /* With parentheses the name is the function too. */
    p = (ExAllocatePool2)(POOL_FLAG_NON_PAGED, 16, WDM_TAG);
    assert_non_null(p);
    assert_true(poolsim_find_block(p, &info));
    assert_null(info.alloc_site.file);
    (ExFreePool)(p);
    assert_int_equal(g_bc.count, 0);
}

/* ExAllocatePool passes no tag: the block is tagged 'None' (§2.6). */
static void test_wdm_untagged_is_none(void **state)
{
    poolsim_block_info info;
    PVOID p;
    (void)state;
    p = ExAllocatePool(NonPagedPoolNx, 16);
    assert_non_null(p);
    assert_true(poolsim_find_block(p, &info));
    assert_true(info.tag == 'enoN');
    ExFreePool(p);
    assert_int_equal(g_bc.count, 0);
}

/* POOL_RAISE_IF_ALLOCATION_FAILURE turns the failure into a raise of
 * STATUS_INSUFFICIENT_RESOURCES, caught by POOLSIM_TRY; without the bit the
 * same failure returns NULL and raises nothing (§2.4). Neither reports. */
static void test_wdm_alloc_raise_caught(void **state)
{
    NTSTATUS volatile status = STATUS_SUCCESS;
    PVOID volatile p = (PVOID)1;
    (void)state;
    POOLSIM_TRY
    {
        p = ExAllocatePoolWithTag((POOL_TYPE)(PagedPool | POOL_RAISE_IF_ALLOCATION_FAILURE), WDM_TOO_BIG,
                                  WDM_TAG);
        fail_msg("the allocation returned instead of raising");
    }
    POOLSIM_EXCEPT(status) {}
    POOLSIM_END_TRY;
    assert_true(status == STATUS_INSUFFICIENT_RESOURCES);
    assert_true(p == (PVOID)1);
    assert_int_equal(poolsim_wdm_try_depth(), 0);

    status = STATUS_SUCCESS;
    POOLSIM_TRY { p = ExAllocatePoolWithTag(PagedPool, WDM_TOO_BIG, WDM_TAG); }
    POOLSIM_EXCEPT(status) {}
    POOLSIM_END_TRY;
    assert_null(p);
    assert_true(status == STATUS_SUCCESS);
    assert_int_equal(g_bc.count, 0);
}

/* Quota allocators raise by default; POOL_QUOTA_FAIL_INSTEAD_OF_RAISE makes
 * them return NULL (§2.4). */
static void test_wdm_quota_raises_by_default(void **state)
{
    NTSTATUS volatile status = STATUS_SUCCESS;
    PVOID volatile p = (PVOID)1;
    (void)state;
    POOLSIM_TRY { p = ExAllocatePoolWithQuotaTag(PagedPool, WDM_TOO_BIG, WDM_TAG); }
    POOLSIM_EXCEPT(status) {}
    POOLSIM_END_TRY;
    assert_true(status == STATUS_INSUFFICIENT_RESOURCES);
    assert_true(p == (PVOID)1);

    status = STATUS_SUCCESS;
    POOLSIM_TRY
    {
        p = ExAllocatePoolWithQuotaTag((POOL_TYPE)(PagedPool | POOL_QUOTA_FAIL_INSTEAD_OF_RAISE), WDM_TOO_BIG,
                                       WDM_TAG);
    }
    POOLSIM_EXCEPT(status) {}
    POOLSIM_END_TRY;
    assert_true(status == STATUS_SUCCESS);
    assert_null(p);
    assert_int_equal(g_bc.count, 0);
}

/* ExAllocatePool2 raises only with POOL_FLAG_RAISE_ON_FAILURE (§2.2). */
static void test_wdm_pool2_raise_on_failure(void **state)
{
    NTSTATUS volatile status = STATUS_SUCCESS;
    PVOID volatile p = (PVOID)1;
    (void)state;
    POOLSIM_TRY { p = ExAllocatePool2(POOL_FLAG_PAGED | POOL_FLAG_RAISE_ON_FAILURE, WDM_TOO_BIG, WDM_TAG); }
    POOLSIM_EXCEPT(status) {}
    POOLSIM_END_TRY;
    assert_true(status == STATUS_INSUFFICIENT_RESOURCES);
    assert_true(p == (PVOID)1);

    status = STATUS_SUCCESS;
    p = ExAllocatePool2(POOL_FLAG_PAGED, WDM_TOO_BIG, WDM_TAG);
    assert_null(p);
    assert_int_equal(g_bc.count, 0);
}

/* A raise with no frame is bug check 0x1E KMODE_EXCEPTION_NOT_HANDLED with
 * Arg1 = the status (sign-extended, as a 64-bit kernel shows it), reported at
 * the allocation's call site. */
static void test_wdm_unhandled_raise_bugchecks(void **state)
{
    jmp_buf jb;
    PVOID volatile p = (PVOID)1;
    int volatile line = 0;
    (void)state;
    g_bc.jump = &jb;
    if (setjmp(jb) == 0) {
        const POOL_TYPE raising = (POOL_TYPE)(PagedPool | POOL_RAISE_IF_ALLOCATION_FAILURE);
        line = __LINE__ + 1; /* one line: compilers disagree on __LINE__ in a macro call split over lines */
        p = ExAllocatePoolWithTag(raising, WDM_TOO_BIG, WDM_TAG);
        fail_msg("the unhandled raise returned");
    }
    assert_int_equal(g_bc.count, 1);
    assert_int_equal(g_bc.last.code, KMODE_EXCEPTION_NOT_HANDLED);
    assert_int_equal(g_bc.last.code, 0x1E);
    assert_true(g_bc.last.param[0] == (uintptr_t)(intptr_t)STATUS_INSUFFICIENT_RESOURCES);
#if defined(__GNUC__) || defined(__clang__) || defined(_MSC_VER)
    assert_true(g_bc.last.param[1] != 0); /* the raising code's address */
#endif
    assert_true(g_bc.last.param[2] == 0);
    assert_true(g_bc.last.param[3] == 0);
    assert_non_null(g_bc.last.site.file);
    assert_string_equal(g_bc.last.site.file, __FILE__);
    assert_int_equal(g_bc.last.site.line, line);
    assert_non_null(g_bc.last.site.routine);
    assert_string_equal(g_bc.last.site.routine, "ExRaiseStatus");
    assert_true(p == (PVOID)1);
}

/* When the bug-check handler returns (report and continue), the allocation
 * that could not raise returns NULL. */
static void test_wdm_unhandled_raise_continue_returns_null(void **state)
{
    PVOID p;
    (void)state;
    p = ExAllocatePoolWithQuotaTag(PagedPool, WDM_TOO_BIG, WDM_TAG);
    assert_null(p);
    assert_int_equal(g_bc.count, 1);
    assert_int_equal(g_bc.last.code, 0x1E);
    assert_true(g_bc.last.param[0] == (uintptr_t)(intptr_t)STATUS_INSUFFICIENT_RESOURCES);
}

/* A direct ExRaiseStatus with no frame: 0x1E at the caller's line. */
static void test_wdm_unhandled_direct_raise(void **state)
{
    jmp_buf jb;
    int volatile line = 0;
    (void)state;
    g_bc.jump = &jb;
    if (setjmp(jb) == 0) {
        line = __LINE__ + 1;
        ExRaiseStatus(STATUS_ACCESS_VIOLATION);
    }
    assert_int_equal(g_bc.count, 1);
    assert_int_equal(g_bc.last.code, 0x1E);
    assert_true(g_bc.last.param[0] == (uintptr_t)(intptr_t)STATUS_ACCESS_VIOLATION);
    if (sizeof(uintptr_t) == 8)
        assert_true(g_bc.last.param[0] == (uintptr_t)0xFFFFFFFFC0000005ull);
    assert_string_equal(g_bc.last.site.file, __FILE__);
    assert_int_equal(g_bc.last.site.line, line);
}

static void test_wdm_kebugcheckex_reaches_handler(void **state)
{
    jmp_buf jb;
    int volatile line = 0;
    (void)state;
    g_bc.jump = &jb;
    if (setjmp(jb) == 0) {
        line = __LINE__ + 1;
        KeBugCheckEx(0xDEAD, 1, 2, 3, (ULONG_PTR)&jb);
    }
    assert_int_equal(g_bc.count, 1);
    assert_int_equal(g_bc.last.code, 0xDEAD);
    assert_true(g_bc.last.param[0] == 1);
    assert_true(g_bc.last.param[1] == 2);
    assert_true(g_bc.last.param[2] == 3);
    assert_true(g_bc.last.param[3] == (uintptr_t)&jb);
    assert_string_equal(g_bc.last.site.file, __FILE__);
    assert_int_equal(g_bc.last.site.line, line);
    assert_string_equal(g_bc.last.site.routine, "KeBugCheckEx");

    g_bc.jump = &jb;
    if (setjmp(jb) == 0)
        KeBugCheck(0x1234);
    assert_int_equal(g_bc.count, 2);
    assert_int_equal(g_bc.last.code, 0x1234);
    assert_true(g_bc.last.param[0] == 0 && g_bc.last.param[3] == 0);
    assert_string_equal(g_bc.last.site.routine, "KeBugCheck");
}

/* ...Zero wrappers hand out zeroed blocks, ...Uninitialized ones do not
 * (the instance fills those with uninit_byte, 0xC5 by default). */
static void test_wdm_zero_and_uninitialized(void **state)
{
    UCHAR *z, *u;
    SIZE_T i;
    (void)state;
    z = (UCHAR *)ExAllocatePoolZero(NonPagedPoolNx, 64, WDM_TAG);
    u = (UCHAR *)ExAllocatePoolUninitialized(NonPagedPoolNx, 64, WDM_TAG);
    assert_non_null(z);
    assert_non_null(u);
    for (i = 0; i < 64; i++)
        assert_int_equal(z[i], 0);
    assert_int_equal(u[0], 0xC5);
    ExFreePoolWithTag(z, WDM_TAG);
    ExFreePoolWithTag(u, WDM_TAG);

    z = (UCHAR *)ExAllocatePoolPriorityZero(PagedPool, 32, WDM_TAG, NormalPoolPriority);
    assert_non_null(z);
    assert_int_equal(z[31], 0);
    ExFreePool(z);
    assert_int_equal(g_bc.count, 0);
}

static void test_wdm_query_block_size(void **state)
{
    BOOLEAN quota = 2;
    PVOID q, p;
    (void)state;
    q = ExAllocatePoolWithQuotaTag(PagedPool, 100, WDM_TAG);
    p = ExAllocatePoolWithTag(PagedPool, 100, WDM_TAG);
    assert_non_null(q);
    assert_non_null(p);
    assert_true(ExQueryPoolBlockSize(q, &quota) >= 100);
    assert_int_equal(quota, TRUE);
    quota = 2;
    assert_true(ExQueryPoolBlockSize(p, &quota) >= 100);
    assert_int_equal(quota, FALSE);
    ExFreePoolWithTag(q, WDM_TAG);
    ExFreePoolWithTag(p, WDM_TAG);
    assert_int_equal(g_bc.count, 0);
}

/* ExAllocatePool3: a known parameter is accepted, an unknown required one
 * fails the allocation, an unknown optional one is ignored (§2.3). ExFreePool2
 * of an ordinary block takes no parameters (§2.4). */
static void test_wdm_pool3_extended_parameters(void **state)
{
    POOL_EXTENDED_PARAMETER ext;
    PVOID p;
    (void)state;
    memset(&ext, 0, sizeof(ext));
    ext.Type = PoolExtendedParameterPriority;
    ext.Priority = HighPoolPriority;
    p = ExAllocatePool3(POOL_FLAG_NON_PAGED, 40, WDM_TAG, &ext, 1);
    assert_non_null(p);
    ExFreePool2(p, WDM_TAG, NULL, 0);

    memset(&ext, 0, sizeof(ext));
    ext.Type = 0x7F;
    ext.Optional = 0;
    p = ExAllocatePool3(POOL_FLAG_NON_PAGED, 40, WDM_TAG, &ext, 1);
    assert_null(p);

    ext.Optional = 1;
    p = ExAllocatePool3(POOL_FLAG_NON_PAGED, 40, WDM_TAG, &ext, 1);
    assert_non_null(p);
    ExFreePool2(p, WDM_TAG, NULL, 0);
    assert_int_equal(g_bc.count, 0);
}

/* ---- Runner ---------------------------------------------------------------------------- */

#define WDM_CORE_TEST(f) cmocka_unit_test_setup_teardown(f, wdm_setup, wdm_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wdm_type_sizes),
        cmocka_unit_test(test_wdm_pool_type_values),
        cmocka_unit_test(test_wdm_pool_flag_values),
        cmocka_unit_test(test_wdm_priority_and_ext_param_values),
        cmocka_unit_test(test_wdm_ext_param_layout),
        cmocka_unit_test(test_wdm_status_values),
        cmocka_unit_test(test_wdm_irql_page_lookaside_values),
        cmocka_unit_test(test_wdm_tag_byte_order),
        cmocka_unit_test(test_wdm_helper_macros),
        cmocka_unit_test(test_wdm_rtl_compare_memory),
        cmocka_unit_test(test_wdm_rtl_fill_copy_zero),
        cmocka_unit_test(test_wdm_try_catches_raise),
        cmocka_unit_test(test_wdm_try_normal_exit),
        cmocka_unit_test(test_wdm_try_raise_across_functions),
        cmocka_unit_test(test_wdm_try_nested),
        cmocka_unit_test(test_wdm_try_popped_on_normal_exit),
        cmocka_unit_test(test_wdm_try_leave_pops),
        cmocka_unit_test(test_wdm_try_function_pointer_raise),
        cmocka_unit_test(test_wdm_try_reset),
#ifdef WDM_HAVE_PTHREADS
        cmocka_unit_test(test_wdm_try_per_thread),
#endif
        cmocka_unit_test(test_wdm_routine_addresses),
        cmocka_unit_test(test_wdm_dbgprint_windows_sizes),
        cmocka_unit_test(test_wdm_dbgprint_flags_and_text),
        cmocka_unit_test(test_wdm_dbgprint_returns_success),
        WDM_CORE_TEST(test_wdm_irql_is_passive),
        WDM_CORE_TEST(test_wdm_macro_records_site),
        WDM_CORE_TEST(test_wdm_function_pointer_site_unknown),
        WDM_CORE_TEST(test_wdm_untagged_is_none),
        WDM_CORE_TEST(test_wdm_alloc_raise_caught),
        WDM_CORE_TEST(test_wdm_quota_raises_by_default),
        WDM_CORE_TEST(test_wdm_pool2_raise_on_failure),
        WDM_CORE_TEST(test_wdm_unhandled_raise_bugchecks),
        WDM_CORE_TEST(test_wdm_unhandled_raise_continue_returns_null),
        WDM_CORE_TEST(test_wdm_unhandled_direct_raise),
        WDM_CORE_TEST(test_wdm_kebugcheckex_reaches_handler),
        WDM_CORE_TEST(test_wdm_zero_and_uninitialized),
        WDM_CORE_TEST(test_wdm_query_block_size),
        WDM_CORE_TEST(test_wdm_pool3_extended_parameters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
