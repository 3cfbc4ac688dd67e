/* SPDX-License-Identifier: MIT */
/*
 * test_forceirql.c — Force IRQL checking (src/forceirql.c, wdk-semantics.md
 * §5.3, §4.4, §1.6): while any thread is at DISPATCH_LEVEL or above, paged
 * pool is inaccessible, and a touch by a raised thread is bug check 0xD1
 * DRIVER_IRQL_NOT_LESS_OR_EQUAL (address, IRQL, 0 read / 1 write,
 * instruction) with the owning block and the IRQL history, found at the
 * instruction. Both directions everywhere: a spin lock held by one thread
 * while another at PASSIVE_LEVEL reads and writes paged pool (legal, no
 * report); the holder reading it (0xD1 with the exact address and the
 * block's tag); nonpaged pool under a spin lock (legal); poolsim's own
 * accesses at DISPATCH_LEVEL (validate, quarantine, fills) keep working;
 * faults poolsim does not own go to the handler installed before; and
 * poolsim_touch, the explicit form, on every platform.
 */
#if !defined(_WIN32)
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
/* <windows.h> cannot be mixed with <wdm.h>: declare what the tests call. */
typedef struct test_exception_record {
    unsigned long ExceptionCode;
    unsigned long ExceptionFlags;
    struct test_exception_record *ExceptionRecord;
    void *ExceptionAddress;
    unsigned long NumberParameters;
    uintptr_t ExceptionInformation[15];
} test_exception_record;
typedef struct test_exception_pointers {
    test_exception_record *ExceptionRecord;
    void *ContextRecord;
} test_exception_pointers;
__declspec(dllimport) void *__stdcall VirtualAlloc(void *, size_t, unsigned long, unsigned long);
__declspec(dllimport) int __stdcall VirtualProtect(void *, size_t, unsigned long, unsigned long *);
__declspec(dllimport) int __stdcall VirtualFree(void *, size_t, unsigned long);
__declspec(dllimport) void *__stdcall AddVectoredExceptionHandler(
    unsigned long, long(__stdcall *)(test_exception_pointers *));
__declspec(dllimport) unsigned long __stdcall RemoveVectoredExceptionHandler(void *);
#else
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <poolsim/wdm.h>
#include <poolsim/cmocka.h>

#define TAG ((ULONG)'gaTX') /* "XTag" */
#define TAG_NP ((ULONG)'PNgT')

#include "access.h"
#ifndef _WIN32
#include "capture.h" /* test_forceirql_protection_refused */
#endif
#include "threads.h"

/* ---- Helpers ---------------------------------------------------------------------------------- */

/* A handler for bug checks raised on any thread: counts them, keeps the
 * first, and returns (report and continue). */
static struct {
    int count;
    poolsim_bugcheck first;
} g_any;

static void any_handler(const poolsim_bugcheck *bc, void *ctx)
{
    (void)ctx;
    if (__atomic_fetch_add(&g_any.count, 1, __ATOMIC_ACQ_REL) == 0)
        g_any.first = *bc;
}

static void any_begin(void)
{
    memset(&g_any, 0, sizeof g_any);
    poolsim_set_bugcheck_handler(any_handler, NULL);
}

static int any_end(void)
{
    poolsim_cmocka_install_handler();
    return load_int(&g_any.count);
}

/* A thread that holds a spin lock until told, and can touch a block under it. */
typedef struct holder {
    KSPIN_LOCK lock;
    volatile uint8_t *touch; /* read by the holder under its lock at step 2 */
    int step;                /* 1: holding; 2: touch now; 5: touched; 3: release; 4: done */
    uint8_t seen;
    int passive_after;
} holder;

static void holder_thread(void *arg)
{
    holder *h = (holder *)arg;
    KIRQL old;
    KeAcquireSpinLock(&h->lock, &old);
    store_int(&h->step, 1);
    while (load_int(&h->step) == 1)
        sleep_ms(1);
    if (load_int(&h->step) == 2 && h->touch) {
        h->seen = read_byte(h->touch);
        store_int(&h->step, 5);
    }
    while (load_int(&h->step) != 3)
        sleep_ms(1);
    KeReleaseSpinLock(&h->lock, old);
    h->passive_after = poolsim_thread_passive_no_locks();
    store_int(&h->step, 4);
}

static void holder_start(holder *h, thread *th)
{
    KeInitializeSpinLock(&h->lock);
    h->step = 0;
    thread_start(th, holder_thread, h);
    while (load_int(&h->step) != 1)
        sleep_ms(1);
}

static void holder_stop(holder *h, thread *th)
{
    store_int(&h->step, 3);
    thread_join(th);
    assert_int_equal(load_int(&h->step), 4);
    assert_true(h->passive_after);
}

/* ---- The option ---------------------------------------------------------------------------------- */

static void test_forceirql_active(void **state)
{
    poolsim_options o;
    (void)state;
    assert_int_equal(poolsim_force_irql_active(), HAVE_TRAP); /* the fixture turns it on */
    o = poolsim_cmocka_default_options();
    o.force_irql = 0;
    poolsim_cmocka_reinit(&o);
    assert_false(poolsim_force_irql_active());
}

/* ---- The acceptance cases ------------------------------------------------------------------------- */

static void test_forceirql_read_under_spin_lock(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old;
    uint8_t *p;
    int line, lock_line;
    (void)state;
    SKIP_WITHOUT_TRAP();
    p = (uint8_t *)ExAllocatePool2(POOL_FLAG_PAGED, 100, TAG), line = __LINE__;
    assert_non_null(p);
    p[10] = 0x5A;
    KeInitializeSpinLock(&lock);
    KeAcquireSpinLock(&lock, &old), lock_line = __LINE__;
    /* 0xD1: Arg1 the exact address, Arg2 DISPATCH_LEVEL, Arg3 0 (read), Arg4 the instruction. */
    expect_bugcheck(0xD1, (uintptr_t)(p + 10), (void)read_byte(p + 10));
    assert_string_equal(last()->name, "DRIVER_IRQL_NOT_LESS_OR_EQUAL");
    assert_int_equal(last()->param[1], DISPATCH_LEVEL);
    assert_int_equal(last()->param[2], 0);
    assert_ip_in(last()->param[3], (uintptr_t)read_byte);
    assert_string_equal(last()->site.routine, "memory access");
    /* The owning block: tag, size, allocation site. */
    assert_true(last()->has_block);
    assert_int_equal(last()->block.tag, TAG);
    assert_ptr_equal(last()->block.address, p);
    assert_int_equal(last()->block.size, 100);
    assert_string_equal(last()->block.alloc_site.file, __FILE__);
    assert_int_equal(last()->block.alloc_site.line, line);
    /* The IRQL history ends with the acquire that raised the thread. */
    assert_true(last()->irql_history_count >= 1);
    {
        const poolsim_irql_event *e = &last()->irql_history[last()->irql_history_count - 1];
        assert_int_equal(e->kind, POOLSIM_IRQL_EV_ACQUIRE);
        assert_ptr_equal(e->object, &lock);
        assert_int_equal(e->line, lock_line);
    }
    /* A write: Arg3 1. */
    expect_bugcheck(0xD1, (uintptr_t)(p + 99), write_byte(p + 99, 1));
    assert_int_equal(last()->param[2], 1);
    assert_ip_in(last()->param[3], (uintptr_t)write_byte);
    KeReleaseSpinLock(&lock, old);
    /* Back at PASSIVE_LEVEL the same accesses are legal, and nothing was written. */
    expect_no_bugcheck(assert_int_equal(read_byte(p + 10), 0x5A); write_byte(p + 99, 7));
    assert_int_equal(p[99], 7);
    ExFreePoolWithTag(p, TAG);
}

/* KeRaiseIrql, KeRaiseIrqlToDpcLevel and KeLowerIrql (inline in the caller where they can be, poolsim.h):
 * each raise to DISPATCH_LEVEL closes paged pool to the thread and the lower below it opens it again. */
static void test_forceirql_raise_and_lower(void **state)
{
    KIRQL old, old2;
    uint8_t *p;
    (void)state;
    SKIP_WITHOUT_TRAP();
    p = (uint8_t *)ExAllocatePool2(POOL_FLAG_PAGED, 64, TAG);
    assert_non_null(p);
    KeRaiseIrql(APC_LEVEL, &old);
    expect_no_bugcheck(write_byte(p + 1, 1)); /* APC_LEVEL: paged pool is fine */
    old2 = KeRaiseIrqlToDpcLevel();
    assert_int_equal(old2, APC_LEVEL);
    expect_bugcheck(0xD1, (uintptr_t)(p + 2), (void)read_byte(p + 2));
    assert_int_equal(last()->param[1], DISPATCH_LEVEL);
    assert_int_equal(last()->param[2], 0);
    KeLowerIrql(old2);
    expect_no_bugcheck(write_byte(p + 3, 3)); /* back at APC_LEVEL */
    KeLowerIrql(old);
    KeRaiseIrql(HIGH_LEVEL, &old); /* from PASSIVE_LEVEL, past DISPATCH_LEVEL */
    expect_bugcheck(0xD1, (uintptr_t)(p + 4), write_byte(p + 4, 4));
    assert_int_equal(last()->param[1], HIGH_LEVEL);
    assert_int_equal(last()->param[2], 1);
    KeLowerIrql(old);
    expect_no_bugcheck(assert_int_equal(read_byte(p + 1), 1); assert_int_equal(read_byte(p + 3), 3));
    assert_int_equal(p[4], 0); /* the reported write did not happen */
    ExFreePoolWithTag(p, TAG);
}

static void test_forceirql_nonpaged_under_spin_lock(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old;
    uint8_t *np, *paged;
    (void)state;
    SKIP_WITHOUT_TRAP();
    np = (uint8_t *)ExAllocatePool2(POOL_FLAG_NON_PAGED, 4000, TAG_NP);
    paged = (uint8_t *)ExAllocatePool2(POOL_FLAG_PAGED, 64, TAG); /* there is paged pool to protect */
    KeInitializeSpinLock(&lock);
    KeAcquireSpinLock(&lock, &old);
    expect_no_bugcheck({
        write_byte(np, 1);
        memset(np, 0x33, 4000);
        assert_int_equal(read_byte(np + 3999), 0x33);
    });
    assert_true(page_protected(paged)); /* while the paged page is not accessible */
    KeReleaseSpinLock(&lock, old);
    assert_false(page_protected(paged));
    ExFreePoolWithTag(np, TAG_NP);
    ExFreePoolWithTag(paged, TAG);
}

static void test_forceirql_other_thread_passive_is_legal(void **state)
{
    holder h;
    thread th;
    uint8_t *p;
    (void)state;
    SKIP_WITHOUT_TRAP();
    p = (uint8_t *)ExAllocatePoolWithTag(PagedPool, 3000, TAG);
    assert_non_null(p);
    memset(p, 0x11, 3000);
    h.touch = NULL;
    holder_start(&h, &th); /* thread A holds a spin lock: paged pool is protected */
    assert_true(page_protected(p));
    /* Thread B (this one) at PASSIVE_LEVEL reads and writes it: legal, no report. */
    expect_no_bugcheck({
        assert_int_equal(read_byte(p), 0x11);
        write_byte(p + 2999, 0x22);
        memset(p + 100, 0x44, 2000);
        assert_int_equal(p[100] + p[2099], 0x88);
    });
    assert_int_equal(p[2999], 0x22);
    assert_true(page_protected(p)); /* and it is still protected for A */
    holder_stop(&h, &th);
    assert_false(page_protected(p)); /* the last thread lowered: lifted */
    ExFreePoolWithTag(p, TAG);
}

static void test_forceirql_holder_thread_reads(void **state)
{
    holder h;
    thread th;
    uint8_t *p;
    (void)state;
    SKIP_WITHOUT_TRAP();
    p = (uint8_t *)ExAllocatePoolWithTag(PagedPool, 64, TAG);
    assert_non_null(p);
    p[5] = 0x77;
    h.touch = p + 5;
    holder_start(&h, &th);
    any_begin();
    /* Thread A reads paged pool under its spin lock: 0xD1 on A, then (the handler returns) the read proceeds.
     */
    store_int(&h.step, 2);
    while (load_int(&h.step) != 5)
        sleep_ms(1);
    assert_int_equal(h.seen, 0x77);
    /* Meanwhile this thread's accesses stay legal. */
    assert_int_equal(read_byte(p + 5), 0x77);
    holder_stop(&h, &th);
    assert_int_equal(any_end(), 1);
    assert_int_equal(g_any.first.code, 0xD1);
    assert_int_equal(g_any.first.param[0], (uintptr_t)(p + 5));
    assert_int_equal(g_any.first.param[1], DISPATCH_LEVEL);
    assert_int_equal(g_any.first.param[2], 0);
    assert_true(g_any.first.has_block);
    assert_int_equal(g_any.first.block.tag, TAG);
    ExFreePoolWithTag(p, TAG);
}

/* One instruction that first reads paged pool while another thread is raised (legal here: the page is
 * opened for a single step) and then writes a special-pool guard page (reported, D6). The handler longjmps
 * out of the report, so that step never ends: the page it opened must be closed again all the same, and the
 * raised thread's read of it reported (0xD1). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
static NOINLINE void movsb1(volatile uint8_t *dst, const volatile uint8_t *src)
{
    __asm__ volatile("movsb" : "+D"(dst), "+S"(src) : : "memory");
}
#endif

static void test_forceirql_step_cut_short_by_a_report(void **state)
{
    (void)state;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    holder h;
    thread th;
    SKIP_WITHOUT_TRAP();
    uint8_t *paged = (uint8_t *)ExAllocatePoolWithTag(PagedPool, 64, TAG);
    uint8_t *sp = (uint8_t *)ExAllocatePool2(POOL_FLAG_NON_PAGED | POOL_FLAG_SPECIAL_POOL, 0x40, TAG);
    assert_non_null(paged);
    assert_non_null(sp);
    paged[0] = 0x5A;
    h.touch = paged;
    holder_start(&h, &th);
    assert_true(page_protected(paged));
    expect_bugcheck(0xD6, (uintptr_t)(sp + 0x40), movsb1(sp + 0x40, paged));
    assert_true(page_protected(paged)); /* closed again, though the step never ended */
    any_begin();
    store_int(&h.step, 2);
    while (load_int(&h.step) != 5)
        sleep_ms(1);
    assert_int_equal(h.seen, 0x5A);
    holder_stop(&h, &th);
    assert_int_equal(any_end(), 1);
    assert_int_equal(g_any.first.code, 0xD1);
    assert_int_equal(g_any.first.param[0], (uintptr_t)paged);
    /* The legal neighbour: the same copy into the block itself. */
    expect_no_bugcheck(movsb1(sp + 0x3F, paged));
    assert_int_equal(sp[0x3F], 0x5A);
    ExFreePoolWithTag(sp, TAG);
    ExFreePoolWithTag(paged, TAG);
#else
    skip();
#endif
}

/* ---- poolsim's own accesses --------------------------------------------------------------------- */

static void test_forceirql_poolsim_own_accesses(void **state)
{
    poolsim_options o;
    holder h;
    thread th;
    KSPIN_LOCK lock;
    KIRQL old;
    uint8_t *paged[4], *np;
    (void)state;
    SKIP_WITHOUT_TRAP();
    /* A quarantine of one block, so a nonpaged free at DISPATCH_LEVEL pushes a paged block out and
     * checks its poison. */
    o = poolsim_cmocka_default_options();
    o.quarantine_blocks = 1;
    poolsim_cmocka_reinit(&o);
    for (int i = 0; i < 4; i++)
        paged[i] = (uint8_t *)ExAllocatePoolWithTag(PagedPool, 200, TAG);
    np = (uint8_t *)ExAllocatePoolWithTag(NonPagedPoolNx, 32, TAG_NP);
    ExFreePoolWithTag(paged[3], TAG); /* quarantined, poisoned */
    KeInitializeSpinLock(&lock);
    KeAcquireSpinLock(&lock, &old);
    expect_no_bugcheck({
        assert_int_equal(poolsim_validate(), 0); /* reads every guard, paged ones included */
        ExFreePoolWithTag(np, TAG_NP);           /* evicts paged[3] from the quarantine: its poison is read */
        np = (uint8_t *)ExAllocatePoolWithTag(NonPagedPoolNx, 32, TAG_NP);
        assert_true(poolsim_valid_access(paged[0], 200));
    });
    KeReleaseSpinLock(&lock, old);
    /* Allocating paged pool at PASSIVE_LEVEL while another thread holds a spin lock: poolsim writes the
     * guards and the fill into protected pages. */
    h.touch = NULL;
    holder_start(&h, &th);
    expect_no_bugcheck({
        uint8_t *q = (uint8_t *)ExAllocatePoolWithTag(PagedPool, 300, TAG);
        uint8_t *z = (uint8_t *)ExAllocatePool2(POOL_FLAG_PAGED, 300, TAG);
        assert_int_equal(q[0], 0xC5); /* the uninitialised fill */
        assert_int_equal(z[299], 0);  /* zeroed */
        ExFreePoolWithTag(q, TAG);
        ExFreePoolWithTag(z, TAG);
        assert_int_equal(poolsim_validate(), 0);
    });
    holder_stop(&h, &th);
    for (int i = 0; i < 3; i++)
        ExFreePoolWithTag(paged[i], TAG);
    ExFreePoolWithTag(np, TAG_NP);
}

/* ---- More shapes ------------------------------------------------------------------------------------ */

static void test_forceirql_big_block_and_raise(void **state)
{
    KIRQL old;
    uint8_t *big;
    (void)state;
    SKIP_WITHOUT_TRAP();
    big = (uint8_t *)ExAllocatePoolWithTag(PagedPool, 3 * PAGE_SIZE, TAG);
    assert_non_null(big);
    big[5000] = 9;
    /* KeRaiseIrql to DISPATCH_LEVEL protects too (not only spin locks), and so does any level above. */
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck(0xD1, (uintptr_t)(big + 5000), (void)read_byte(big + 5000));
    assert_ptr_equal(last()->block.address, big);
    assert_int_equal(last()->block.size, 3 * PAGE_SIZE);
    KeLowerIrql(old);
    KeRaiseIrql(HIGH_LEVEL, &old);
    expect_bugcheck(0xD1, (uintptr_t)big, write_byte(big, 1));
    assert_int_equal(last()->param[1], HIGH_LEVEL);
    KeLowerIrql(old);
    /* APC_LEVEL may touch paged pool. */
    KeRaiseIrql(APC_LEVEL, &old);
    expect_no_bugcheck(assert_int_equal(read_byte(big + 5000), 9));
    KeLowerIrql(old);
    ExFreePoolWithTag(big, TAG);
}

static void test_forceirql_report_and_continue(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old;
    uint8_t *p;
    (void)state;
    SKIP_WITHOUT_TRAP();
    p = (uint8_t *)ExAllocatePoolWithTag(PagedPool, 16, TAG);
    p[0] = 1;
    KeInitializeSpinLock(&lock);
    KeAcquireSpinLock(&lock, &old);
    any_begin();
    /* Each raised access is reported; the handler returns and the access happens. */
    write_byte(p, 2);
    assert_int_equal(read_byte(p), 2);
    assert_int_equal(any_end(), 2);
    assert_int_equal(g_any.first.param[2], 1);
    KeReleaseSpinLock(&lock, old);
    assert_int_equal(p[0], 2);
    ExFreePoolWithTag(p, TAG);
}

static void test_forceirql_off(void **state)
{
    poolsim_options o;
    KSPIN_LOCK lock;
    KIRQL old;
    uint8_t *p;
    (void)state;
    o = poolsim_cmocka_default_options();
    o.force_irql = 0;
    poolsim_cmocka_reinit(&o);
    p = (uint8_t *)ExAllocatePoolWithTag(PagedPool, 16, TAG);
    p[0] = 3;
    KeInitializeSpinLock(&lock);
    KeAcquireSpinLock(&lock, &old);
    /* Without the option a resident page is just read, as on Windows without Force IRQL Checking (§4.4). */
    expect_no_bugcheck(assert_int_equal(read_byte(p), 3));
    assert_false(page_protected(p));
    KeReleaseSpinLock(&lock, old);
    ExFreePoolWithTag(p, TAG);
}

/* ---- Faults that are not poolsim's ----------------------------------------------------------------- */

#ifdef _WIN32
static int g_veh_hits;
static long __stdcall test_veh(test_exception_pointers *ep)
{
    unsigned long old;
    if (ep->ExceptionRecord->ExceptionCode != 0xC0000005ul)
        return 0; /* EXCEPTION_CONTINUE_SEARCH */
    g_veh_hits++;
    VirtualProtect((void *)(ep->ExceptionRecord->ExceptionInformation[1] & ~(uintptr_t)0xFFF), 4096,
                   TEST_PAGE_READWRITE, &old);
    return -1; /* EXCEPTION_CONTINUE_EXECUTION */
}
#else
static volatile int g_sig_hits;
static void test_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    g_sig_hits++;
    mprotect((void *)((uintptr_t)si->si_addr & ~(uintptr_t)4095), 4096, PROT_READ | PROT_WRITE);
}

/* In a child: poolsim's trap installed after the program's own handler, then a fault on a page that is
 * not poolsim's. Exits 0 when the program's handler got it and the access completed. */
static void chain_child(bool own_handler)
{
    KSPIN_LOCK lock;
    KIRQL old;
    volatile uint8_t *page;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    if (own_handler) {
        sa.sa_sigaction = test_segv;
        sa.sa_flags = SA_SIGINFO;
    } else {
        sa.sa_handler = SIG_DFL; /* not cmocka's, inherited from the parent's test */
    }
    sigaction(SIGSEGV, &sa, NULL);
    if (!poolsim_force_irql_active()) /* the fixture's instance, copied by fork */
        _exit(2);
    void *paged = ExAllocatePoolWithTag(PagedPool, 8, TAG);
    KeInitializeSpinLock(&lock);
    KeAcquireSpinLock(&lock, &old); /* installs the trap */
    page = (volatile uint8_t *)mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    page[1] = 5;
    KeReleaseSpinLock(&lock, old);
    ExFreePoolWithTag(paged, TAG);
    _exit(g_sig_hits == 1 && page[1] == 5 ? 0 : 3);
}
#endif

static void test_forceirql_foreign_faults_chain(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
#ifdef _WIN32
    {
        KSPIN_LOCK lock;
        KIRQL old;
        void *h = AddVectoredExceptionHandler(0, test_veh); /* after poolsim's */
        volatile uint8_t *page = (volatile uint8_t *)VirtualAlloc(NULL, 4096, 0x3000, TEST_PAGE_NOACCESS);
        void *paged = ExAllocatePoolWithTag(PagedPool, 8, TAG);
        assert_non_null(h);
        assert_non_null((void *)page);
        KeInitializeSpinLock(&lock);
        KeAcquireSpinLock(&lock, &old);
        g_veh_hits = 0;
        expect_no_bugcheck(page[1] = 5);
        KeReleaseSpinLock(&lock, old);
        assert_int_equal(g_veh_hits, 1); /* poolsim passed it on */
        assert_int_equal(page[1], 5);
        RemoveVectoredExceptionHandler(h);
        VirtualFree((void *)page, 0, 0x8000);
        ExFreePoolWithTag(paged, TAG);
    }
#else
    {
        int status;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            chain_child(true);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        /* With no handler before poolsim's, the process dies as it would have without it. */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            chain_child(false);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
#endif
}

#ifndef _WIN32
#define SKIPPED 77 /* the child's exit status when this machine cannot run the test */

/* Uses up the process's mappings: a no-access region whose every other page is made readable (a mapping
 * of its own each) until the system refuses one. */
static void exhaust_mappings(void)
{
    long max = 0;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    bool known = f && fscanf(f, "%ld", &max) == 1;
    if (f)
        fclose(f);
    if (!known || max <= 0 || max > 262144)
        _exit(SKIPPED); /* no such limit, or one that takes too much memory to reach */
    size_t page = 4096, n = 2 * (size_t)max + 8;
    uint8_t *r =
        (uint8_t *)mmap(NULL, n * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED)
        _exit(SKIPPED); /* an address-space limit */
    for (size_t i = 1; i < n; i += 2)
        if (mprotect(r + i * page, page, PROT_READ) != 0)
            return;
    _exit(5); /* never refused */
}

/* Output that raises and lowers, as a driver's logging might: the message comes with no lock held. */
static void raising_output(const char *text, void *ctx)
{
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    KeLowerIrql(old);
    capture(text, ctx);
}

static void refused_child(void)
{
    KIRQL old;
    uint8_t *p, *big[4];
    alarm(60);                        /* a step that cannot open its page would fault forever */
    if (!poolsim_force_irql_active()) /* the fixture's instance, copied by fork */
        _exit(2);
    p = (uint8_t *)ExAllocatePoolWithTag(PagedPool, 64, TAG);
    p[0] = 1;
    /* Chunks of their own, mapped next to each other: closed, they are one mapping. */
    for (int i = 0; i < 4; i++) {
        big[i] = (uint8_t *)ExAllocatePoolWithTag(PagedPool, 2u << 20, TAG);
        if (!big[i])
            _exit(11);
        big[i][0] = (uint8_t)i;
    }
    capture_start();
    poolsim_set_output(raising_output, NULL);
    any_begin();
    KeRaiseIrql(DISPATCH_LEVEL, &old); /* paged pool closed while there is room */
    exhaust_mappings();
    /* poolsim's own access at DISPATCH_LEVEL: opening a block's page inside its closed chunk needs two
     * mappings more, which the system refuses. Checking stops; the access proceeds. */
    if (poolsim_validate() != 0)
        _exit(6);
    if (poolsim_force_irql_active())
        _exit(7);
    write_byte(p + 1, 2); /* no longer protected: no 0xD1 */
    write_byte(big[3] + 100, 3);
    KeLowerIrql(old);
    capture_stop();
    if (any_end() != 0)
        _exit(8);
    if (!strstr(g_text,
                "poolsim: Force IRQL checking stopped: the system refused to change a page's protection"))
        _exit(9);
    _exit(p[1] == 2 && big[3][100] == 3 ? 0 : 10);
}
#endif

/* When the system refuses a protection change (on Linux, at the limit on mappings), Force IRQL checking
 * stops with a message and everything runs on unchecked; before, a step that could not open its page
 * faulted forever. */
static void test_forceirql_protection_refused(void **state)
{
    (void)state;
    SKIP_WITHOUT_TRAP();
#ifdef _WIN32
    skip(); /* Windows has no such limit to reach */
#else
    {
        int status;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            refused_child();
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == SKIPPED)
            skip();
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    /* The parent's instance was not affected. */
    assert_true(poolsim_force_irql_active());
#endif
}

/* ---- poolsim_touch: the explicit check, on every platform --------------------------------------------- */

static void test_forceirql_touch(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old;
    uint8_t *p, *np;
    volatile bool ok = false;
    poolsim_options o;
    (void)state;
    p = (uint8_t *)ExAllocatePoolWithTag(PagedPool, 64, TAG);
    np = (uint8_t *)ExAllocatePoolWithTag(NonPagedPoolNx, 64, TAG_NP);
    expect_no_bugcheck(ok = poolsim_touch(p, 64)); /* PASSIVE_LEVEL */
    assert_true(ok);
    KeInitializeSpinLock(&lock);
    KeAcquireSpinLock(&lock, &old);
    expect_no_bugcheck(ok = poolsim_touch(np, 64) && poolsim_touch(p, 0));
    assert_true(ok);
    expect_bugcheck(0xD1, (uintptr_t)(p + 3), (void)poolsim_touch(p + 3, 8));
    assert_int_equal(last()->param[1], DISPATCH_LEVEL);
    assert_int_equal(last()->param[2], 0);
    assert_true(last()->param[3] != 0); /* the caller's address */
    assert_int_equal(last()->block.tag, TAG);
    assert_string_equal(last()->site.routine, "poolsim_touch");
    expect_bugcheck_continue(0xD1, (uintptr_t)p, ok = poolsim_touch_write(p, 64));
    assert_false(ok);
    assert_int_equal(last()->param[2], 1);
    KeReleaseSpinLock(&lock, old);
    /* The check does not depend on the force_irql option or on page protection. */
    ExFreePoolWithTag(p, TAG);
    ExFreePoolWithTag(np, TAG_NP);
    o = poolsim_cmocka_default_options();
    o.force_irql = 0;
    poolsim_cmocka_reinit(&o);
    p = (uint8_t *)ExAllocatePoolWithTag(PagedPool, 64, TAG);
    KeAcquireSpinLock(&lock, &old);
    expect_bugcheck(0xD1, (uintptr_t)(p + 63), (void)poolsim_touch(p + 63, 1));
    KeReleaseSpinLock(&lock, old);
    ExFreePoolWithTag(p, TAG);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, poolsim_cmocka_setup, poolsim_cmocka_teardown)
    const struct CMUnitTest tests[] = {
        T(test_forceirql_active),
        T(test_forceirql_read_under_spin_lock),
        T(test_forceirql_raise_and_lower),
        T(test_forceirql_nonpaged_under_spin_lock),
        T(test_forceirql_other_thread_passive_is_legal),
        T(test_forceirql_holder_thread_reads),
        T(test_forceirql_step_cut_short_by_a_report),
        T(test_forceirql_poolsim_own_accesses),
        T(test_forceirql_big_block_and_raise),
        T(test_forceirql_report_and_continue),
        T(test_forceirql_off),
        T(test_forceirql_foreign_faults_chain),
        T(test_forceirql_protection_refused),
        T(test_forceirql_touch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
