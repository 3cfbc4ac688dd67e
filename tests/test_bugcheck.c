/* SPDX-License-Identifier: MIT */
/*
 * test_bugcheck.c — the one path every violation takes (src/bugcheck.c).
 *
 * A bug check reaches the handler as a structured value: the code, P1-P4 as
 * given, the name, a one-line summary and what each argument means, for
 * every (code, subcode) poolsim raises (wdk-semantics.md §1.1, §1.2, §1.4,
 * §1.8, §1.9); unknown codes and subcodes get "UNKNOWN_BUGCHECK" or the
 * plain "Arg1".."Arg4". poolsim_bugcheck_raise passes arbitrary codes
 * through, poolsim_bugcheck_count counts them, the default handler in
 * report-and-continue mode prints the !analyze-style report and returns,
 * max_reports caps the printing but not the counting, and a handler that
 * longjmps out of a free, an allocation, a validation, a quarantine eviction
 * or the leak check leaves poolsim usable with no lock held. The default
 * stopping handler is not tested in-process (it aborts).
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#include <time.h>
#endif

#include "../src/core.h"

/* ---- Helpers --------------------------------------------------------------------------------- */

#define TAG4(a, b, c, d)                                                                                     \
    ((uint32_t)(uint8_t)(a) | (uint32_t)(uint8_t)(b) << 8 | (uint32_t)(uint8_t)(c) << 16 |                   \
     (uint32_t)(uint8_t)(d) << 24)
#define TAG_X TAG4('X', 'T', 'a', 'g') /* 'gaTX', 0x67615458 */
#define TAG_F TAG4('F', 'r', 'e', 'd') /* 'derF', 0x64657246 */

#define NONPAGED 0u
#define PAGED 1u
#define GRAN (2u * (unsigned)sizeof(void *))

/* What the handler saw; it longjmps to `jump` when set. */
static struct {
    unsigned count;
    poolsim_bugcheck last;
    void *ctx;
    jmp_buf *jump;
} g_rec;

static void record(const poolsim_bugcheck *bc, void *ctx)
{
    g_rec.count++;
    g_rec.last = *bc;
    g_rec.ctx = ctx;
    if (g_rec.jump != NULL) {
        jmp_buf *jb = g_rec.jump;
        g_rec.jump = NULL;
        longjmp(*jb, 1);
    }
}

/* Captured output. */
static struct {
    char text[1 << 20];
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

static unsigned count_of(const char *text, const char *needle)
{
    unsigned n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* A fresh instance with `o` and the recording handler. */
static void start(const poolsim_options *o)
{
    poolsim_set_bugcheck_handler(record, &g_rec);
    assert_int_equal(poolsim_init(o), POOLSIM_OK);
}

static int setup(void **state)
{
    poolsim_options o;
    (void)state;
    memset(&g_rec, 0, sizeof g_rec);
    out_reset();
    g_out.overflow = false;
    poolsim_set_output(capture, NULL);
    poolsim_options_default(&o);
    poolsim_set_bugcheck_handler(record, &g_rec);
    return poolsim_init(&o) == POOLSIM_OK ? 0 : -1;
}

static int teardown(void **state)
{
    size_t left;
    (void)state;
    g_rec.jump = NULL;
    poolsim_set_irql(0);
    poolsim_set_bugcheck_handler(record, &g_rec);
    left = poolsim_shutdown();
    poolsim_set_bugcheck_handler(NULL, NULL);
    poolsim_set_output(NULL, NULL);
    return left == 0 && !g_out.overflow ? 0 : -1;
}

/* Replaces the instance by one with other options. */
static void restart(const poolsim_options *o)
{
    assert_int_equal(poolsim_shutdown(), 0);
    start(o);
}

static void *alloc_req(poolsim_routine rt, uint64_t type, size_t n, uint32_t tag)
{
    poolsim_alloc_req req;
    memset(&req, 0, sizeof req);
    req.routine = rt;
    req.type = type;
    req.size = n;
    req.tag = tag;
    return poolsim_pool_alloc(&req, NULL, "drv/bc.c", 40);
}

static void *alloc(uint32_t type, size_t n, uint32_t tag)
{
    return alloc_req(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, type, n, tag);
}

static void release(void *p, uint32_t tag)
{
    poolsim_pool_free(POOLSIM_RT_EX_FREE_POOL_WITH_TAG, p, tag, NULL, 0, "drv/bc.c", 41);
}

/* ---- Names, summaries and argument meanings -------------------------------------------------- */

static void test_bugcheck_names(void **state)
{
    static const struct {
        unsigned long code;
        const char *name;
    } names[] = {
        {0x08, "IRQL_NOT_DISPATCH_LEVEL"},
        {0x09, "IRQL_NOT_GREATER_OR_EQUAL"},
        {0x0A, "IRQL_NOT_LESS_OR_EQUAL"},
        {0x0F, "SPIN_LOCK_ALREADY_OWNED"},
        {0x10, "SPIN_LOCK_NOT_OWNED"},
        {0x19, "BAD_POOL_HEADER"},
        {0x1E, "KMODE_EXCEPTION_NOT_HANDLED"},
        {0x41, "MUST_SUCCEED_POOL_EMPTY"},
        {0x4A, "IRQL_GT_ZERO_AT_SYSTEM_SERVICE"},
        {0x7E, "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED"},
        {0xC1, "SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION"},
        {0xC2, "BAD_POOL_CALLER"},
        {0xC4, "DRIVER_VERIFIER_DETECTED_VIOLATION"},
        {0xC5, "DRIVER_CORRUPTED_EXPOOL"},
        {0xC6, "DRIVER_CAUGHT_MODIFYING_FREED_POOL"},
        {0xCC, "PAGE_FAULT_IN_FREED_SPECIAL_POOL"},
        {0xCD, "PAGE_FAULT_BEYOND_END_OF_ALLOCATION"},
        {0xD0, "DRIVER_CORRUPTED_MMPOOL"},
        {0xD1, "DRIVER_IRQL_NOT_LESS_OR_EQUAL"},
        {0xD4, "SYSTEM_SCAN_AT_RAISED_IRQL_CAUGHT_IMPROPER_DRIVER_UNLOAD"},
        {0xD5, "DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL"},
        {0xD6, "DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION"},
        {0x13A, "KERNEL_MODE_HEAP_CORRUPTION"},
    };
    (void)state;
    for (size_t i = 0; i < PSIM_COUNTOF(names); i++) {
        assert_non_null(poolsim_bugcheck_name(names[i].code));
        assert_string_equal(poolsim_bugcheck_name(names[i].code), names[i].name);
    }
    assert_null(poolsim_bugcheck_name(0));
    assert_null(poolsim_bugcheck_name(0xC3));
    assert_null(poolsim_bugcheck_name(0xDEAD));
    assert_null(poolsim_bugcheck_name(0xC4 | 0x10000));
}

/* Every (code, subcode) row of the table, as the handler receives it. */
typedef struct row {
    unsigned long code;
    uintptr_t sub; /* Arg1 (Arg4 for 0xC1) */
    const char *summary;
    const char *arg[4];
} row;

static const row g_rows[] = {
    {0xC4,
     0x00,
     "zero-byte pool allocation requested",
     {"subcode 0x00: zero-byte allocation", "current IRQL", "pool type", "number of bytes"}},
    {0xC4,
     0x01,
     "paged pool allocation at IRQL > APC_LEVEL",
     {"subcode 0x01: paged allocation at bad IRQL", "current IRQL", "pool type", "size in bytes"}},
    {0xC4,
     0x02,
     "nonpaged pool allocation at IRQL > DISPATCH_LEVEL",
     {"subcode 0x02: nonpaged allocation at bad IRQL", "current IRQL", "pool type", "size in bytes"}},
    {0xC4,
     0x10,
     "free of an address never returned by an allocator",
     {"subcode 0x10: free of a bad address", "bad address", "0", "0"}},
    {0xC4,
     0x11,
     "paged pool free at IRQL > APC_LEVEL",
     {"subcode 0x11: paged free at bad IRQL", "current IRQL", "pool type", "pool address"}},
    {0xC4,
     0x12,
     "nonpaged pool free at IRQL > DISPATCH_LEVEL",
     {"subcode 0x12: nonpaged free at bad IRQL", "current IRQL", "pool type", "pool address"}},
    {0xC4,
     0x13,
     "double free: the pool was already freed",
     {"subcode 0x13: double free", "reserved", "pointer to pool header", "pool header contents"}},
    {0xC4,
     0x16,
     "bad address passed to a pool routine",
     {"subcode 0x16: bad address or parameters", "reserved", "pool address", "0"}},
    {0xC4,
     0x51,
     "free of a block written past its end",
     {"subcode 0x51: write beyond the allocation", "allocation base", "address of the bad byte",
      "charged bytes"}},
    {0xC4,
     0x53,
     "free of a block whose header was overwritten",
     {"subcode 0x53: header overwritten", "allocation base", "header", "reserved"}},
    {0xC4,
     0x60,
     "driver unloading without freeing its pool allocations",
     {"subcode 0x60: leaked allocations", "bytes from paged pool", "bytes from nonpaged pool",
      "total allocations not freed"}},
    {0xC4,
     0x62,
     "driver unloading without freeing its pool allocations",
     {"subcode 0x62: leaked allocations", "driver name", "reserved", "total allocations not freed"}},
    {0xC4,
     0x13E,
     "freed address differs from the address of the block",
     {"subcode 0x13E: freed address not tracked", "block address given by the caller",
      "block address tracked", "pointer to the tracked address"}},
    {0xC2,
     0x00,
     "zero-byte pool allocation requested",
     {"subcode 0x00: zero-byte allocation", "0", "pool type", "pool tag"}},
    {0xC2,
     0x07,
     "double free: the pool was already freed",
     {"subcode 0x07: double free", "reserved (the block's tag)", "pool header contents",
      "address of the block"}},
    {0xC2,
     0x08,
     "pool allocation at an invalid IRQL",
     {"subcode 0x08: allocation at bad IRQL", "current IRQL", "pool type", "size in bytes"}},
    {0xC2,
     0x09,
     "pool free at an invalid IRQL",
     {"subcode 0x09: free at bad IRQL", "current IRQL", "pool type", "pool address"}},
    {0xC2,
     0x0A,
     "pool freed with the wrong tag",
     {"subcode 0x0A: wrong tag", "pool address", "allocator's tag", "tag being freed"}},
    {0xC2,
     0x46,
     "free of an invalid pool address",
     {"subcode 0x46: invalid pool address", "starting address", "0", "0"}},
    {0xC2,
     0x99,
     "free of an invalid address (not the start of a block)",
     {"subcode 0x99: invalid address", "address being freed", "0", "0"}},
    {0xC2,
     0x9A,
     "unsupported pool type requested (MUST_SUCCEED or undefined)",
     {"subcode 0x9A: bad pool type", "pool type", "number of bytes requested", "pool tag"}},
    {0xC2,
     0x9B,
     "pool allocation with tag 0",
     {"subcode 0x9B: tag 0", "pool type", "number of bytes", "caller's address"}},
    {0xC2,
     0x9C,
     "pool allocation with tag \"BIG\"",
     {"subcode 0x9C: BIG tag", "pool type", "number of bytes", "caller's address"}},
    {0xC2,
     0x9D,
     "pool tag has no letters or digits, or bytes outside 0x20-0x7E",
     {"subcode 0x9D: bad tag", "incorrect tag", "pool type", "caller's address"}},
    {0x19, 0x07, "block header corrupt", {"subcode 0x07: header corrupt", "0", "reserved", "bad entry"}},
    {0x19,
     0x21,
     "data after the end of the block is corrupt",
     {"subcode 0x21: tail overwritten", "pointer being freed", "bytes allocated", "corrupted value found"}},
    {0xC6,
     0x1234,
     "a freed block was written after it was freed",
     {"memory referenced", "0 read / 1 write", "0 kernel mode / 1 user mode", "reserved"}},
    {0xC6,
     0,
     "a freed block was written after it was freed",
     {"memory referenced", "0 read / 1 write", "0 kernel mode / 1 user mode", "reserved"}},
    {0x13A,
     0x0B,
     "a freed block was written after it was freed (use after free)",
     {"corruption type 0xB: use after free", "heap address (the block)", "address of the corruption",
      "reserved"}},
    {0x1E,
     0xC0000005u,
     "an exception was raised and not handled",
     {"exception code", "address of the exception", "exception parameter 0", "exception parameter 1"}},
    {0x1E,
     0,
     "an exception was raised and not handled",
     {"exception code", "address of the exception", "exception parameter 0", "exception parameter 1"}},
    /* Known codes with subcodes the table does not describe: plain meanings. */
    {0xC4, 0x99, "bug check raised by the driver", {"Arg1", "Arg2", "Arg3", "Arg4"}},
    {0xC4, 0x61, "bug check raised by the driver", {"Arg1", "Arg2", "Arg3", "Arg4"}},
    {0xC2, 0x06, "bug check raised by the driver", {"Arg1", "Arg2", "Arg3", "Arg4"}},
    {0x19, 0x22, "bug check raised by the driver", {"Arg1", "Arg2", "Arg3", "Arg4"}},
    {0x13A, 0x11, "bug check raised by the driver", {"Arg1", "Arg2", "Arg3", "Arg4"}},
    {0xC1, 0x32, "bug check raised by the driver", {"Arg1", "Arg2", "Arg3", "Arg4"}},
    /* §1.3, §1.7: special pool. */
    {0xC1,
     0x20,
     "free of special pool that is not allocated (double free, or a never-used page)",
     {"address being freed", "reserved", "0", "subcode 0x20: page not allocated"}},
    {0xC1,
     0x21,
     "free of a bad special-pool address: the block cannot fit after it",
     {"address being freed", "bytes requested", "bytes calculated", "subcode 0x21: bad address"}},
    {0xC1,
     0x22,
     "free of a bad special-pool address: not the pointer that was returned",
     {"address being freed", "bytes requested", "bytes calculated", "subcode 0x22: bad address"}},
    {0xC1,
     0x23,
     "bytes before the block, in its special-pool page, were overwritten (underrun)",
     {"address being freed", "address of the corrupted bytes", "reserved", "subcode 0x23: pattern damaged"}},
    {0xC1,
     0x24,
     "bytes after the end of the block, in its special-pool page, were overwritten (overrun)",
     {"address being freed", "address of the corrupted bytes", "reserved", "subcode 0x24: slack damaged"}},
    {0xC1,
     0x30,
     "special-pool allocation at an incorrect IRQL",
     {"current IRQL", "pool type", "number of bytes", "subcode 0x30: allocation at bad IRQL"}},
    {0xC1,
     0x31,
     "special-pool free at an incorrect IRQL",
     {"current IRQL", "pool type", "address being freed", "subcode 0x31: free at bad IRQL"}},
    {0xD5,
     0x1000,
     "a driver touched freed special pool (use after free)",
     {"memory referenced", "0 read / 1 write", "address of the referencing code", "reserved"}},
    {0xD6,
     0x1000,
     "a driver touched memory beyond its special-pool allocation (overrun or underrun)",
     {"memory referenced", "0 read / 1 write", "address of the referencing code", "reserved"}},
    {0x08, 0x1000, "bug check raised by the driver", {"Arg1", "Arg2", "Arg3", "Arg4"}},
    {0xC4, 0x35, "bug check raised by the driver", {"Arg1", "Arg2", "Arg3", "Arg4"}},
    /* §4, §1.1, §1.6, §1.10: IRQL and locks (docs/semantics.md, "IRQL and locks"). */
    {0xC4,
     0x30,
     "KeRaiseIrql to a lower IRQL, or above HIGH_LEVEL",
     {"subcode 0x30: bad raise", "current IRQL", "requested IRQL", "0"}},
    {0xC4,
     0x31,
     "KeLowerIrql to a higher IRQL, or above HIGH_LEVEL",
     {"subcode 0x31: bad lower", "current IRQL", "requested IRQL",
      "0: the new IRQL is bad; 1: bad inside a DPC"}},
    {0xC4,
     0x32,
     "spin lock released at an IRQL other than DISPATCH_LEVEL (possibly a double release)",
     {"subcode 0x32: release not at DISPATCH_LEVEL", "current IRQL", "spin lock address", "0"}},
    {0xC4,
     0x33,
     "fast mutex acquired at IRQL > APC_LEVEL",
     {"subcode 0x33: fast mutex acquire above APC_LEVEL", "current IRQL", "fast mutex address", "0"}},
    {0xC4,
     0x34,
     "fast mutex released at an IRQL other than APC_LEVEL",
     {"subcode 0x34: fast mutex release not at APC_LEVEL", "current IRQL",
      "thread's APC-disable count (critical regions)", "fast mutex address"}},
    {0xC4,
     0x40,
     "KeAcquireSpinLockAtDpcLevel below DISPATCH_LEVEL",
     {"subcode 0x40: AtDpcLevel acquire below DISPATCH_LEVEL", "current IRQL", "spin lock address", "0"}},
    {0xC4,
     0x41,
     "KeReleaseSpinLockFromDpcLevel below DISPATCH_LEVEL",
     {"subcode 0x41: FromDpcLevel release below DISPATCH_LEVEL", "current IRQL", "spin lock address", "0"}},
    {0xC4,
     0x42,
     "KeAcquireSpinLock above DISPATCH_LEVEL",
     {"subcode 0x42: spin lock acquire above DISPATCH_LEVEL", "current IRQL", "spin lock address", "0"}},
    {0xC4,
     0x11A,
     "KeEnterCriticalRegion above APC_LEVEL",
     {"subcode 0x11A: critical region entered above APC_LEVEL", "current IRQL", "0", "0"}},
    {0xC4,
     0x11B,
     "KeLeaveCriticalRegion above APC_LEVEL",
     {"subcode 0x11B: critical region left above APC_LEVEL", "current IRQL", "0", "0"}},
    {0xC4,
     0x1000,
     "self-deadlock: a thread acquires a lock it already owns",
     {"subcode 0x1000: self-deadlock", "lock address", "reserved", "reserved"}},
    {0xC4,
     0x1004,
     "a lock released by a thread that does not own it",
     {"subcode 0x1004: unexpected thread", "lock address", "owner thread", "current thread"}},
    {0xC4,
     0x1007,
     "a lock released that was never acquired",
     {"subcode 0x1007: unacquired resource", "lock address", "reserved", "reserved"}},
    {0xC4,
     0x1009,
     "a lock released through a routine that does not match its acquire",
     {"subcode 0x1009: mismatched release routine", "lock address", "reserved", "reserved"}},
    {0xC4,
     0x20015,
     "DDI rule IrqlKeReleaseSpinLock: KeReleaseSpinLock's NewIrql is not the acquire's OldIrql",
     {"rule 0x20015: IrqlKeReleaseSpinLock", "pointer to the rule's description",
      "spin lock address (rule state)", "reserved"}},
    {0xC4,
     0x40006,
     "DDI rule QueuedSpinLock: a lock used both queued and ordinary, or queued-acquired twice",
     {"rule 0x40006: QueuedSpinLock", "pointer to the rule's description", "spin lock address (rule state)",
      "reserved"}},
    {0xC4,
     0x40007,
     "DDI rule QueuedSpinLockRelease: a queued spin lock released while not held, or still held",
     {"rule 0x40007: QueuedSpinLockRelease", "pointer to the rule's description",
      "spin lock address (rule state)", "reserved"}},
    {0xC4,
     0x40009,
     "DDI rule SpinLock: a spin lock acquired twice, released while not held, or still held",
     {"rule 0x40009: SpinLock", "pointer to the rule's description", "spin lock address (rule state)",
      "reserved"}},
    {0x09,
     2,
     "IRQL raised to a lower level (or above HIGH_LEVEL)",
     {"current IRQL", "requested IRQL", "0", "0"}},
    {0x0A,
     0x1000,
     "IRQL lowered to a higher level (or above HIGH_LEVEL)",
     {"current IRQL", "requested IRQL", "0", "0"}},
    {0x0F,
     0x1000,
     "spin lock acquired by the thread that already owns it",
     {"spin lock address", "0", "0", "0"}},
    {0x10,
     0x1000,
     "spin lock released by a thread that does not own it",
     {"spin lock address", "0", "0", "0"}},
    {0x4A,
     0,
     "returned at IRQL > PASSIVE_LEVEL, or holding a lock",
     {"system function (0: none)", "IRQL", "0", "0"}},
    {0xD1,
     0x1000,
     "pageable memory touched at IRQL >= DISPATCH_LEVEL",
     {"memory referenced", "IRQL", "0 read, 1 write, 8 execute", "address of the referencing code"}},
};

static void test_bugcheck_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < PSIM_COUNTOF(g_rows); i++) {
        const row *r = &g_rows[i];
        uintptr_t p1 = r->code == 0xC1 ? 0x11 : r->sub, p4 = r->code == 0xC1 ? r->sub : 0x44;
        unsigned before = g_rec.count;
        poolsim_bugcheck_raise(r->code, p1, 0x22, 0x33, p4, "drv/rows.c", (int)i, "test");
        assert_int_equal(g_rec.count, before + 1);
        assert_int_equal(g_rec.last.code, r->code);
        assert_int_equal(g_rec.last.param[0], p1);
        assert_int_equal(g_rec.last.param[1], 0x22);
        assert_int_equal(g_rec.last.param[2], 0x33);
        assert_int_equal(g_rec.last.param[3], p4);
        assert_string_equal(g_rec.last.name, poolsim_bugcheck_name(r->code));
        assert_string_equal(g_rec.last.summary, r->summary);
        for (int k = 0; k < 4; k++)
            assert_string_equal(g_rec.last.arg_meaning[k], r->arg[k]);
    }
}

/* The rows reached through real violations carry the same text. */
static void test_bugcheck_rows_from_pool(void **state)
{
    uint8_t *p;
    (void)state;
    p = (uint8_t *)alloc(NONPAGED, 16, TAG_X);
    assert_non_null(p);
    release(p, TAG_F); /* wrong tag: C2/0x0A, the free does nothing */
    assert_int_equal(g_rec.last.code, 0xC2);
    assert_int_equal(g_rec.last.param[0], 0x0A);
    assert_string_equal(g_rec.last.name, "BAD_POOL_CALLER");
    assert_string_equal(g_rec.last.summary, "pool freed with the wrong tag");
    assert_string_equal(g_rec.last.arg_meaning[2], "allocator's tag");
    assert_true(g_rec.last.has_block);
    assert_string_equal(g_rec.last.site.file, "drv/bc.c");
    assert_int_equal(g_rec.last.site.line, 41);
    assert_string_equal(g_rec.last.site.routine, "ExFreePoolWithTag");
    release(p, TAG_X);
    release(p, TAG_X); /* double free: C4/0x13 */
    assert_int_equal(g_rec.last.code, 0xC4);
    assert_int_equal(g_rec.last.param[0], 0x13);
    assert_string_equal(g_rec.last.summary, "double free: the pool was already freed");
    assert_string_equal(g_rec.last.arg_meaning[2], "pointer to pool header");
    assert_int_equal(g_rec.last.param[2], (uintptr_t)(p - GRAN));
    assert_int_equal(g_rec.count, 2);
}

/* ---- Raising from outside the pool ----------------------------------------------------------- */

static void test_bugcheck_raise_arbitrary(void **state)
{
    int marker;
    (void)state;
    /* Sequence numbers: two allocations and a free before the raise. */
    release(alloc(NONPAGED, 8, TAG_X), TAG_X);
    {
        void *q = alloc(PAGED, 8, TAG_X);
        poolsim_bugcheck_raise(0x1E, 0xC0000005u, (uintptr_t)&marker, 0, UINTPTR_MAX, "drv/ex.c", 77,
                               "ExRaiseStatus");
        release(q, TAG_X);
    }
    assert_int_equal(g_rec.count, 1);
    assert_ptr_equal(g_rec.ctx, &g_rec);
    assert_int_equal(g_rec.last.code, 0x1E);
    assert_int_equal(g_rec.last.param[0], 0xC0000005u);
    assert_int_equal(g_rec.last.param[1], (uintptr_t)&marker);
    assert_int_equal(g_rec.last.param[2], 0);
    assert_int_equal(g_rec.last.param[3], UINTPTR_MAX);
    assert_string_equal(g_rec.last.name, "KMODE_EXCEPTION_NOT_HANDLED");
    assert_string_equal(g_rec.last.summary, "an exception was raised and not handled");
    assert_string_equal(g_rec.last.site.file, "drv/ex.c");
    assert_int_equal(g_rec.last.site.line, 77);
    assert_string_equal(g_rec.last.site.routine, "ExRaiseStatus");
    assert_false(g_rec.last.has_block);
    assert_int_equal(g_rec.last.damage[0].kind, 0);
    assert_int_equal(g_rec.last.damage[1].kind, 0);
    assert_int_equal(g_rec.last.seq, 3);

    poolsim_bugcheck_raise(0xDEAD, 1, 2, 3, 4, NULL, 0, NULL);
    assert_int_equal(g_rec.count, 2);
    assert_int_equal(g_rec.last.code, 0xDEAD);
    assert_int_equal(g_rec.last.param[0], 1);
    assert_int_equal(g_rec.last.param[3], 4);
    assert_string_equal(g_rec.last.name, "UNKNOWN_BUGCHECK");
    assert_string_equal(g_rec.last.summary, "bug check raised by the driver");
    assert_string_equal(g_rec.last.arg_meaning[0], "Arg1");
    assert_string_equal(g_rec.last.arg_meaning[3], "Arg4");
    assert_null(g_rec.last.site.file);
    assert_null(g_rec.last.site.routine);
    assert_int_equal(g_rec.last.seq, 4);
}

static void test_bugcheck_count(void **state)
{
    poolsim_options o;
    poolsim_stats s;
    (void)state;
    assert_int_equal(poolsim_bugcheck_count(), 0);
    poolsim_bugcheck_raise(0xDEAD, 0, 0, 0, 0, NULL, 0, NULL);
    poolsim_bugcheck_raise(0x1E, 0, 0, 0, 0, NULL, 0, NULL);
    assert_int_equal(poolsim_bugcheck_count(), 2);
    assert_null(alloc(NONPAGED, 0, TAG_X)); /* C4/0x00, the handler returns */
    assert_int_equal(poolsim_bugcheck_count(), 3);
    assert_int_equal(g_rec.count, 3);
    poolsim_get_stats(&s);
    assert_int_equal(s.bugchecks, 3);
    /* Legal calls count nothing. */
    release(alloc(NONPAGED, 1, TAG_X), TAG_X);
    assert_int_equal(poolsim_bugcheck_count(), 3);
    /* A new instance starts from zero. */
    poolsim_options_default(&o);
    restart(&o);
    assert_int_equal(poolsim_bugcheck_count(), 0);
}

/* A handler set before poolsim_init is kept; a new one replaces it. */
static void test_bugcheck_handler_replaced(void **state)
{
    poolsim_options o;
    int other_ctx;
    (void)state;
    assert_int_equal(poolsim_shutdown(), 0);
    poolsim_set_bugcheck_handler(record, &other_ctx);
    poolsim_options_default(&o);
    assert_int_equal(poolsim_init(&o), POOLSIM_OK);
    poolsim_bugcheck_raise(0xDEAD, 9, 0, 0, 0, NULL, 0, NULL);
    assert_int_equal(g_rec.count, 1);
    assert_ptr_equal(g_rec.ctx, &other_ctx);
    poolsim_set_bugcheck_handler(record, NULL);
    poolsim_bugcheck_raise(0xDEAD, 10, 0, 0, 0, NULL, 0, NULL);
    assert_int_equal(g_rec.count, 2);
    assert_null(g_rec.ctx);
}

/* halt_on_bad with no debugger attached does not stop anything. */
static void test_bugcheck_halt_without_debugger(void **state)
{
    poolsim_options o;
    (void)state;
    poolsim_options_default(&o);
    o.halt_on_bad = 1;
    restart(&o);
    poolsim_bugcheck_raise(0xDEAD, 1, 0, 0, 0, NULL, 0, NULL);
    assert_int_equal(g_rec.count, 1);
}

/* ---- The default handler, report and continue ------------------------------------------------ */

static void start_continue(uint32_t max_reports)
{
    poolsim_options o;
    poolsim_options_default(&o);
    o.continue_on_bugcheck = 1;
    o.max_reports = max_reports;
    restart(&o);
    poolsim_set_bugcheck_handler(NULL, NULL);
    out_reset();
}

static void test_bugcheck_continue_prints_report(void **state)
{
    uint8_t *p;
    char line[160];
    const int w = (int)sizeof(uintptr_t) * 2;
    (void)state;
    start_continue(100);
    p = (uint8_t *)alloc(NONPAGED, 24, TAG_X);
    assert_non_null(p);
    assert_int_equal(g_out.len, 0);

    release(p, TAG_F); /* returns: the default handler reported and went on */
    assert_int_equal(poolsim_bugcheck_count(), 1);
    assert_int_equal(g_rec.count, 0);
    assert_true(poolsim_valid_access(p, 24)); /* the free did nothing */

    /* The first line, after the blank line that separates reports. */
    assert_true(
        strncmp(g_out.text, "\npoolsim: BAD_POOL_CALLER (c2) Arg1 0xa pool freed with the wrong tag\n",
                strlen("\npoolsim: BAD_POOL_CALLER (c2) Arg1 0xa pool freed with the wrong tag\n")) == 0);
    assert_non_null(strstr(g_out.text, "\n*** Fatal System Error: 0x000000c2\n"));
    assert_non_null(
        strstr(g_out.text, "\nBAD_POOL_CALLER (c2)\npool freed with the wrong tag\nArguments:\n"));
    snprintf(line, sizeof line, "\nArg1: %0*llx, subcode 0x0A: wrong tag\n", w, 0xAull);
    assert_non_null(strstr(g_out.text, line));
    snprintf(line, sizeof line, "\nArg2: %0*llx, pool address\n", w, (unsigned long long)(uintptr_t)p);
    assert_non_null(strstr(g_out.text, line));
    snprintf(line, sizeof line, "\nArg3: %0*llx, allocator's tag\n", w, (unsigned long long)TAG_X);
    assert_non_null(strstr(g_out.text, line));
    snprintf(line, sizeof line, "\nArg4: %0*llx, tag being freed\n", w, (unsigned long long)TAG_F);
    assert_non_null(strstr(g_out.text, line));
    assert_non_null(strstr(g_out.text, "\nBUGCHECK_STR:  0xc2_a_XTag\n"));
    assert_int_equal(count_of(g_out.text, "\npoolsim: "), 1);

    /* The legal free prints nothing. */
    out_reset();
    release(p, TAG_X);
    assert_int_equal(g_out.len, 0);
    assert_int_equal(poolsim_bugcheck_count(), 1);
    poolsim_set_bugcheck_handler(record, &g_rec);
}

static void test_bugcheck_max_reports(void **state)
{
    (void)state;
    start_continue(2);
    for (uintptr_t i = 1; i <= 5; i++)
        poolsim_bugcheck_raise(0xDEAD, i, 0, 0, 0, "drv/many.c", (int)i, "KeBugCheckEx");
    assert_int_equal(poolsim_bugcheck_count(), 5);
    assert_int_equal(count_of(g_out.text, "\npoolsim: UNKNOWN_BUGCHECK (dead) Arg1 0x"), 2);
    assert_non_null(
        strstr(g_out.text, "\npoolsim: UNKNOWN_BUGCHECK (dead) Arg1 0x1 bug check raised by the driver\n"));
    assert_non_null(
        strstr(g_out.text, "\npoolsim: UNKNOWN_BUGCHECK (dead) Arg1 0x2 bug check raised by the driver\n"));
    assert_null(strstr(g_out.text, "Arg1 0x3 "));
    assert_int_equal(
        count_of(g_out.text,
                 "poolsim: 2 reports printed; further reports are counted, not printed (max_reports)\n"),
        1);
    /* Still counting, still quiet. */
    out_reset();
    poolsim_bugcheck_raise(0xDEAD, 6, 0, 0, 0, NULL, 0, NULL);
    assert_int_equal(g_out.len, 0);
    assert_int_equal(poolsim_bugcheck_count(), 6);
    {
        poolsim_stats s;
        poolsim_get_stats(&s);
        assert_int_equal(s.bugchecks, 6);
    }
    /* A new instance prints again. */
    start_continue(1);
    poolsim_bugcheck_raise(0xDEAD, 7, 0, 0, 0, NULL, 0, NULL);
    poolsim_bugcheck_raise(0xDEAD, 8, 0, 0, 0, NULL, 0, NULL);
    poolsim_bugcheck_raise(0xDEAD, 9, 0, 0, 0, NULL, 0, NULL);
    assert_int_equal(count_of(g_out.text, "\npoolsim: UNKNOWN_BUGCHECK (dead)"), 1);
    assert_int_equal(count_of(g_out.text, "poolsim: 1 reports printed; further reports are counted"), 1);
    poolsim_set_bugcheck_handler(record, &g_rec);
}

static void test_bugcheck_max_reports_zero_is_no_cap(void **state)
{
    (void)state;
    start_continue(0);
    for (uintptr_t i = 0; i < 150; i++)
        poolsim_bugcheck_raise(0xDEAD, i, 0, 0, 0, NULL, 0, NULL);
    assert_int_equal(count_of(g_out.text, "\npoolsim: UNKNOWN_BUGCHECK (dead)"), 150);
    assert_null(strstr(g_out.text, "further reports"));
    assert_int_equal(poolsim_bugcheck_count(), 150);
    poolsim_set_bugcheck_handler(record, &g_rec);
}

/* ---- Longjmp out of poolsim ------------------------------------------------------------------ */

/* Runs poolsim calls on another thread, which would block for good on any
 * lock the raising thread still held. Fails after 20 seconds. */
typedef struct probe {
    uint32_t done;
    unsigned bad;
    void *victim; /* a live block of the main thread, freed by the probe */
} probe;

static void probe_body(probe *pr)
{
    void *a = alloc(NONPAGED, 40, TAG_X);   /* shard, site table */
    void *b = alloc(PAGED, 0x30000, TAG_X); /* page runs, maybe a new chunk and the radix map */
    if (!a || !b)
        pr->bad++;
    if (poolsim_validate() != 0) /* every shard lock */
        pr->bad++;
    release(a, TAG_X);
    release(b, TAG_X);
    if (pr->victim)
        release(pr->victim, TAG_X); /* the main thread's shard */
    psim_atomic_store32(&pr->done, 1);
}

#ifdef _WIN32
static DWORD WINAPI probe_main(LPVOID arg)
{
    probe_body((probe *)arg);
    return 0;
}
#else
static void *probe_main(void *arg)
{
    probe_body((probe *)arg);
    return NULL;
}
#endif

static void sleep_ms(unsigned ms)
{
#ifdef _WIN32
    Sleep(ms);
#else
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
#endif
}

static void probe_usable(void)
{
    probe pr;
    unsigned waited = 0;
    memset(&pr, 0, sizeof pr);
    pr.victim = alloc(NONPAGED, 24, TAG_X);
    assert_non_null(pr.victim);
#ifdef _WIN32
    {
        HANDLE h = CreateThread(NULL, 0, probe_main, &pr, 0, NULL);
        assert_non_null(h);
        while (!psim_atomic_load32(&pr.done) && waited < 20000) {
            sleep_ms(5);
            waited += 5;
        }
        assert_true(psim_atomic_load32(&pr.done));
        WaitForSingleObject(h, INFINITE);
        CloseHandle(h);
    }
#else
    {
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, probe_main, &pr), 0);
        while (!psim_atomic_load32(&pr.done) && waited < 20000) {
            sleep_ms(5);
            waited += 5;
        }
        assert_true(psim_atomic_load32(&pr.done)); /* else a lock is held: the thread is stuck */
        pthread_join(th, NULL);
    }
#endif
    assert_int_equal(pr.bad, 0);
    /* And on this thread too. */
    release(alloc(NONPAGED, 40, TAG_X), TAG_X);
    assert_int_equal(poolsim_validate(), 0);
}

/* Runs `stmt` with the handler set to longjmp, and checks it jumped with
 * the bug check code/sub. */
#define expect_jump(code_, sub_, stmt)                                                                       \
    do {                                                                                                     \
        jmp_buf jb_;                                                                                         \
        unsigned before_ = g_rec.count;                                                                      \
        volatile int jumped_ = 0;                                                                            \
        g_rec.jump = &jb_;                                                                                   \
        if (setjmp(jb_) == 0) {                                                                              \
            stmt;                                                                                            \
        } else {                                                                                             \
            jumped_ = 1;                                                                                     \
        }                                                                                                    \
        g_rec.jump = NULL;                                                                                   \
        assert_true(jumped_);                                                                                \
        assert_int_equal(g_rec.count, before_ + 1);                                                          \
        assert_int_equal(g_rec.last.code, (code_));                                                          \
        assert_int_equal(g_rec.last.param[0], (sub_));                                                       \
    } while (0)

static void test_bugcheck_longjmp_out_of_free(void **state)
{
    uint8_t *p, *q;
    char local[32];
    (void)state;
    p = (uint8_t *)alloc(NONPAGED, 24, TAG_X);
    q = (uint8_t *)alloc(PAGED, 0x1800, TAG_X);
    assert_non_null(p);
    assert_non_null(q);

    expect_jump(0xC2, 0x0A, release(p, TAG_F)); /* wrong tag */
    probe_usable();
    expect_jump(0xC4, 0x10, release(local, TAG_X)); /* never allocated */
    probe_usable();
    expect_jump(0xC4, 0x13E, release(p + 8, TAG_X)); /* inside a block */
    probe_usable();
    poolsim_set_irql(3);
    expect_jump(0xC4, 0x12, release(p, TAG_X)); /* above DISPATCH_LEVEL */
    poolsim_set_irql(0);
    probe_usable();
    p[24] ^= 0xFF;
    expect_jump(0xC4, 0x51, release(p, TAG_X)); /* overrun */
    p[24] ^= 0xFF;
    probe_usable();
    q[-1] ^= 0xFF;
    expect_jump(0xC4, 0x53, release(q, TAG_X)); /* underrun of a big block */
    q[-1] ^= 0xFF;
    probe_usable();
    release(p, TAG_X);
    expect_jump(0xC4, 0x13, release(p, TAG_X)); /* double free */
    probe_usable();
    release(q, TAG_X);
    assert_int_equal(g_rec.count, 7);
}

static void test_bugcheck_longjmp_out_of_alloc(void **state)
{
    (void)state;
    expect_jump(0xC4, 0x00, alloc(NONPAGED, 0, TAG_X));
    probe_usable();
    poolsim_set_irql(2);
    expect_jump(0xC4, 0x01, alloc(PAGED, 10, TAG_X));
    poolsim_set_irql(3);
    expect_jump(0xC4, 0x02, alloc(NONPAGED, 10, TAG_X));
    poolsim_set_irql(0);
    probe_usable();
    expect_jump(0xC2, 0x9B, alloc(NONPAGED, 10, 0));
    probe_usable();
    expect_jump(0xC2, 0x9C, alloc(NONPAGED, 10, PSIM_TAG_BIG));
    probe_usable();
    expect_jump(0xC2, 0x9A, alloc(2 /* NonPagedPoolMustSucceed */, 10, TAG_X));
    probe_usable();
    {
        poolsim_stats s;
        poolsim_get_stats(&s);
        assert_int_equal(s.failed, 6);
        assert_int_equal(s.live_blocks, 0);
        assert_int_equal(s.nonpaged_bytes, 0);
        assert_int_equal(s.paged_bytes, 0);
    }
}

static void test_bugcheck_longjmp_out_of_validate(void **state)
{
    uint8_t *p = (uint8_t *)alloc(NONPAGED, 10, TAG_X);
    uint8_t *q = (uint8_t *)alloc(NONPAGED, 10, TAG_X);
    (void)state;
    assert_non_null(p);
    assert_non_null(q);
    p[10] ^= 1;
    q[10] ^= 1;
    expect_jump(0xC4, 0x51, poolsim_validate()); /* out after the first of two */
    p[10] ^= 1;
    q[10] ^= 1;
    probe_usable();
    release(p, TAG_X);
    release(q, TAG_X);
}

/* A write into a quarantined block is found when the block leaves the
 * quarantine, while another free runs. */
static void test_bugcheck_longjmp_out_of_eviction(void **state)
{
    poolsim_options o;
    uint8_t *p, *q;
    (void)state;
    poolsim_options_default(&o);
    o.quarantine_blocks = 1;
    restart(&o);
    p = (uint8_t *)alloc(NONPAGED, 32, TAG_X);
    q = (uint8_t *)alloc(NONPAGED, 32, TAG_X);
    assert_non_null(p);
    assert_non_null(q);
    release(p, TAG_X); /* quarantined */
    p[3] = 0x77;       /* write after free */
    expect_jump(0xC6, (uintptr_t)(p + 3), release(q, TAG_X));
    assert_string_equal(g_rec.last.site.routine, "ExFreePoolWithTag"); /* the free that evicted p */
    assert_true(g_rec.last.has_block);
    assert_ptr_equal(g_rec.last.block.address, p);
    /* q was freed before the eviction. */
    assert_false(poolsim_valid_access(q, 1));
    probe_usable();
}

/* The leak bug check comes after everything is released: a longjmp out of
 * poolsim_shutdown leaves no instance behind, and a new one starts. */
static void test_bugcheck_longjmp_out_of_shutdown(void **state)
{
    poolsim_options o;
    (void)state;
    assert_non_null(alloc(NONPAGED, 100, TAG_X));
    out_reset();
    expect_jump(0xC4, 0x62, poolsim_shutdown());
    assert_int_equal(g_rec.last.param[3], 1);
    assert_false(poolsim_initialized());
    assert_non_null(strstr(g_out.text, "poolsim: LEAK: 1 block(s), 100 bytes"));
    poolsim_options_default(&o);
    start(&o);
    probe_usable();
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_bugcheck_names),
        T(test_bugcheck_rows),
        T(test_bugcheck_rows_from_pool),
        T(test_bugcheck_raise_arbitrary),
        T(test_bugcheck_count),
        T(test_bugcheck_handler_replaced),
        T(test_bugcheck_halt_without_debugger),
        T(test_bugcheck_continue_prints_report),
        T(test_bugcheck_max_reports),
        T(test_bugcheck_max_reports_zero_is_no_cap),
        T(test_bugcheck_longjmp_out_of_free),
        T(test_bugcheck_longjmp_out_of_alloc),
        T(test_bugcheck_longjmp_out_of_validate),
        T(test_bugcheck_longjmp_out_of_eviction),
        T(test_bugcheck_longjmp_out_of_shutdown),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
