/* SPDX-License-Identifier: MIT */
/*
 * test_irql.c — the simulated IRQL (src/irql.c) through <poolsim/wdm.h>:
 * the x64 levels (wdk-semantics.md §4.1), KeRaiseIrql / KeLowerIrql /
 * KeRaiseIrqlToDpcLevel / KeRaiseIrqlToSynchLevel and their rules (§4.2:
 * C4/0x30 and 0x31, retail 0x9 and 0xA), one IRQL per thread, the pool's
 * IRQL rules (§9 fact 2: C4/0x01, 0x02, 0x11, 0x12; C2/0x08, 0x09) reached
 * by raising like a driver does, the per-thread IRQL history and the
 * history every IRQL report carries, poolsim_thread_check and the options
 * irql_history and synch_level. Every rule both ways: the bad call raises
 * exactly the documented code and parameters, the nearby legal one nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#define NOGDI
/* <windows.h> cannot be mixed with <wdm.h>: declare the three thread calls. */
__declspec(dllimport) void *__stdcall CreateThread(void *, size_t, unsigned long(__stdcall *)(void *), void *,
                                                   unsigned long, unsigned long *);
__declspec(dllimport) unsigned long __stdcall WaitForSingleObject(void *, unsigned long);
__declspec(dllimport) int __stdcall CloseHandle(void *);
#else
#include <pthread.h>
#endif

#include <poolsim/wdm.h>
#include <poolsim/cmocka.h>

#define TAG ((ULONG)'gaTX') /* "XTag" */

/* ---- Helpers ---------------------------------------------------------------------------------- */

static void use_family(uint32_t family)
{
    poolsim_options o = poolsim_cmocka_default_options();
    o.family = family;
    poolsim_cmocka_reinit(&o);
}

static const poolsim_bugcheck *last(void)
{
    const poolsim_bugcheck *bc = poolsim_cmocka_last();
    assert_non_null(bc);
    return bc;
}

static void assert_params(uintptr_t p2, uintptr_t p3, uintptr_t p4)
{
    assert_int_equal(last()->param[1], p2);
    assert_int_equal(last()->param[2], p3);
    assert_int_equal(last()->param[3], p4);
}

/* Runs fn(arg) on a new thread and waits for it. */
typedef void thread_fn(void *arg);
typedef struct thread_job {
    thread_fn *fn;
    void *arg;
} thread_job;

#ifdef _WIN32
static unsigned long __stdcall thread_main(void *p)
#else
static void *thread_main(void *p)
#endif
{
    thread_job *j = (thread_job *)p;
    j->fn(j->arg);
#ifdef _WIN32
    return 0;
#else
    return NULL;
#endif
}

static void run_thread(thread_fn *fn, void *arg)
{
    thread_job j = {fn, arg};
#ifdef _WIN32
    void *h = CreateThread(NULL, 0, thread_main, &j, 0, NULL);
    assert_non_null(h);
    WaitForSingleObject(h, 0xFFFFFFFFu);
    CloseHandle(h);
#else
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, thread_main, &j), 0);
    pthread_join(th, NULL);
#endif
}

/* ---- Levels (§4.1) ------------------------------------------------------------------------------ */

static void test_irql_levels(void **state)
{
    (void)state;
    assert_int_equal(PASSIVE_LEVEL, 0);
    assert_int_equal(LOW_LEVEL, 0);
    assert_int_equal(APC_LEVEL, 1);
    assert_int_equal(DISPATCH_LEVEL, 2);
    assert_int_equal(CMCI_LEVEL, 5);
    assert_int_equal(SYNCH_LEVEL, 12); /* §4.1 UNCONFIRMED: poolsim's choice */
    assert_int_equal(CLOCK_LEVEL, 13);
    assert_int_equal(IPI_LEVEL, 14);
    assert_int_equal(POWER_LEVEL, 14);
    assert_int_equal(PROFILE_LEVEL, 15);
    assert_int_equal(HIGH_LEVEL, 15);
    assert_int_equal(POOLSIM_HIGH_LEVEL, HIGH_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(poolsim_synch_level(), 12);
    assert_string_equal(poolsim_irql_routine_name(POOLSIM_IRQL_RT_RAISE_IRQL), "KeRaiseIrql");
    assert_string_equal(poolsim_irql_routine_name(POOLSIM_IRQL_RT_RELEASE_QUEUED),
                        "KeReleaseInStackQueuedSpinLock");
    assert_string_equal(poolsim_irql_routine_name(POOLSIM_IRQL_RT_COUNT), "(unknown routine)");
}

/* ---- KeRaiseIrql / KeLowerIrql (§4.2) ---------------------------------------------------------- */

static void test_irql_raise_lower_legal(void **state)
{
    KIRQL old = 0xEE, old2 = 0xEE, old3 = 0xEE;
    (void)state;
    expect_no_bugcheck({
        KeRaiseIrql(APC_LEVEL, &old);
        assert_int_equal(old, PASSIVE_LEVEL);
        assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
        KeRaiseIrql(APC_LEVEL, &old2); /* the same level is a legal raise */
        assert_int_equal(old2, APC_LEVEL);
        KeRaiseIrql(HIGH_LEVEL, &old3); /* up to HIGH_LEVEL */
        assert_int_equal(old3, APC_LEVEL);
        assert_int_equal(KeGetCurrentIrql(), HIGH_LEVEL);
        KeLowerIrql(old3);
        KeLowerIrql(old2); /* the same level is a legal lower */
        assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
        KeLowerIrql(old);
        assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    });
    assert_int_equal(poolsim_bugcheck_count(), 0);
}

static void test_irql_raise_to_lower_level(void **state)
{
    KIRQL old;
    volatile KIRQL bad = 0xEE;
    (void)state;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    /* §4.2: C4/0x30 (current, requested, 0); the IRQL stays. */
    expect_bugcheck(0xC4, 0x30, KeRaiseIrql(APC_LEVEL, (KIRQL *)&bad));
    assert_params(DISPATCH_LEVEL, APC_LEVEL, 0);
    assert_string_equal(last()->site.routine, "KeRaiseIrql");
    assert_string_equal(last()->site.file, __FILE__);
    assert_int_equal(bad, 0xEE); /* the handler jumped out before *OldIrql was written */
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    /* Report and continue: *OldIrql is the current IRQL, so the caller's lower changes nothing. */
    expect_bugcheck_continue(0xC4, 0x30, KeRaiseIrql(PASSIVE_LEVEL, (KIRQL *)&bad));
    assert_int_equal(bad, DISPATCH_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    /* Above HIGH_LEVEL. */
    expect_bugcheck(0xC4, 0x30, KeRaiseIrql(HIGH_LEVEL + 1, (KIRQL *)&bad));
    assert_params(DISPATCH_LEVEL, HIGH_LEVEL + 1, 0);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(old);
}

static void test_irql_lower_to_higher_level(void **state)
{
    KIRQL old;
    (void)state;
    KeRaiseIrql(APC_LEVEL, &old);
    /* §4.2: C4/0x31 (current, requested, 0: poolsim runs no DPCs). */
    expect_bugcheck(0xC4, 0x31, KeLowerIrql(DISPATCH_LEVEL));
    assert_params(APC_LEVEL, DISPATCH_LEVEL, 0);
    assert_string_equal(last()->site.routine, "KeLowerIrql");
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    expect_bugcheck_continue(0xC4, 0x31, KeLowerIrql(HIGH_LEVEL));
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    /* Above HIGH_LEVEL even when at HIGH_LEVEL. */
    KeRaiseIrql(HIGH_LEVEL, &old);
    expect_bugcheck(0xC4, 0x31, KeLowerIrql(HIGH_LEVEL + 1));
    assert_params(HIGH_LEVEL, HIGH_LEVEL + 1, 0);
    expect_no_bugcheck(KeLowerIrql(APC_LEVEL); KeLowerIrql(PASSIVE_LEVEL));
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

static void test_irql_retail_codes(void **state)
{
    KIRQL old;
    volatile KIRQL bad;
    (void)state;
    use_family(POOLSIM_FAMILY_RETAIL);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    /* §4.2: 0x9 IRQL_NOT_GREATER_OR_EQUAL and 0xA IRQL_NOT_LESS_OR_EQUAL, (current, requested, 0, 0). */
    expect_bugcheck(0x09, DISPATCH_LEVEL, KeRaiseIrql(APC_LEVEL, (KIRQL *)&bad));
    assert_params(APC_LEVEL, 0, 0);
    assert_string_equal(last()->name, "IRQL_NOT_GREATER_OR_EQUAL");
    expect_bugcheck(0x0A, DISPATCH_LEVEL, KeLowerIrql(HIGH_LEVEL));
    assert_params(HIGH_LEVEL, 0, 0);
    assert_string_equal(last()->name, "IRQL_NOT_LESS_OR_EQUAL");
    expect_no_bugcheck(KeLowerIrql(DISPATCH_LEVEL); KeLowerIrql(old)); /* the same level, then the saved one */
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

/* ---- KeRaiseIrqlToDpcLevel / KeRaiseIrqlToSynchLevel (§4.1, §4.2) ---------------------------------- */

static void test_irql_raise_to_dpc(void **state)
{
    KIRQL old, old2, old3;
    (void)state;
    expect_no_bugcheck(old = KeRaiseIrqlToDpcLevel());
    assert_int_equal(old, PASSIVE_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    expect_no_bugcheck(old2 = KeRaiseIrqlToDpcLevel()); /* at DISPATCH_LEVEL: legal */
    assert_int_equal(old2, DISPATCH_LEVEL);
    KeRaiseIrql(HIGH_LEVEL, &old3);
    /* Above DISPATCH_LEVEL it is a raise to a lower level: C4/0x30 (15, 2, 0). */
    expect_bugcheck(0xC4, 0x30, (void)KeRaiseIrqlToDpcLevel());
    assert_params(HIGH_LEVEL, DISPATCH_LEVEL, 0);
    assert_string_equal(last()->site.routine, "KeRaiseIrqlToDpcLevel");
    assert_int_equal(KeGetCurrentIrql(), HIGH_LEVEL);
    KeLowerIrql(old3);
    KeLowerIrql(old);
    /* The real-named function (used as a pointer) behaves the same, with no site. */
    {
        KIRQL(NTAPI * to_dpc)(VOID) = KeRaiseIrqlToDpcLevel;
        old = to_dpc();
        assert_int_equal(old, PASSIVE_LEVEL);
        assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
        (KeLowerIrql)(old);
        assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    }
}

static void test_irql_raise_to_synch(void **state)
{
    KIRQL old, old2;
    poolsim_options o;
    (void)state;
    expect_no_bugcheck(old = KeRaiseIrqlToSynchLevel());
    assert_int_equal(old, PASSIVE_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), 12);
    KeRaiseIrql(HIGH_LEVEL, &old2);
    expect_bugcheck(0xC4, 0x30, (void)KeRaiseIrqlToSynchLevel());
    assert_params(HIGH_LEVEL, 12, 0);
    KeLowerIrql(old2);
    KeLowerIrql(old);
    /* The other plausible value (§4.1: IPI_LEVEL - 1). */
    o = poolsim_cmocka_default_options();
    o.synch_level = 13;
    poolsim_cmocka_reinit(&o);
    assert_int_equal(poolsim_synch_level(), 13);
    old = KeRaiseIrqlToSynchLevel();
    assert_int_equal(KeGetCurrentIrql(), 13);
    KeLowerIrql(old);
}

static void test_irql_option_ranges(void **state)
{
    poolsim_options o;
    (void)state;
    assert_int_equal(poolsim_shutdown(), 0);
    o = poolsim_cmocka_default_options();
    o.synch_level = 11;
    assert_int_equal(poolsim_init(&o), POOLSIM_E_OPTION);
    o.synch_level = 14;
    assert_int_equal(poolsim_init(&o), POOLSIM_E_OPTION);
    o.synch_level = 12;
    o.irql_history = 65;
    assert_int_equal(poolsim_init(&o), POOLSIM_E_OPTION);
    o.irql_history = 64;
    o.synch_level = 13;
    assert_int_equal(poolsim_init(&o), POOLSIM_OK);
    poolsim_cmocka_install_handler();
}

/* ---- One IRQL per thread ------------------------------------------------------------------------- */

typedef struct other_irql {
    KIRQL seen, after;
} other_irql;

static void other_thread(void *arg)
{
    other_irql *r = (other_irql *)arg;
    KIRQL old;
    r->seen = KeGetCurrentIrql();
    KeRaiseIrql(APC_LEVEL, &old);
    r->after = KeGetCurrentIrql();
    KeLowerIrql(old);
}

static void test_irql_per_thread(void **state)
{
    KIRQL old;
    other_irql r = {0xEE, 0xEE};
    (void)state;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    run_thread(other_thread, &r);
    assert_int_equal(r.seen, PASSIVE_LEVEL); /* a new thread starts at PASSIVE_LEVEL */
    assert_int_equal(r.after, APC_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL); /* its raise was its own */
    KeLowerIrql(old);
}

/* ---- The pool's IRQL rules (§9 fact 2), reached by raising ---------------------------------------- */

static void test_irql_pool_alloc_rules(void **state)
{
    KIRQL old;
    void *p;
    (void)state;
    /* Paged: legal at APC_LEVEL, C4/0x01 (IRQL, pool type, bytes) at DISPATCH_LEVEL. */
    KeRaiseIrql(APC_LEVEL, &old);
    expect_no_bugcheck(p = ExAllocatePoolWithTag(PagedPool, 40, TAG));
    assert_non_null(p);
    ExFreePoolWithTag(p, TAG);
    KeLowerIrql(old);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck(0xC4, 0x01, (void)ExAllocatePoolWithTag(PagedPool, 40, TAG));
    assert_params(DISPATCH_LEVEL, PagedPool, 40);
    assert_string_equal(last()->site.routine, "ExAllocatePoolWithTag");
    expect_bugcheck(0xC4, 0x01, (void)ExAllocatePool2(POOL_FLAG_PAGED, 24, TAG));
    assert_params(DISPATCH_LEVEL, PagedPool, 24);
    /* Report and continue: the allocation returns NULL. */
    expect_bugcheck_continue(0xC4, 0x01, p = ExAllocatePoolWithTag(PagedPool, 40, TAG));
    assert_null(p);
    /* Nonpaged: legal at DISPATCH_LEVEL, C4/0x02 above it. */
    expect_no_bugcheck(p = ExAllocatePoolWithTag(NonPagedPoolNx, 40, TAG));
    assert_non_null(p);
    ExFreePoolWithTag(p, TAG);
    KeLowerIrql(old);
    KeRaiseIrql(DISPATCH_LEVEL + 1, &old);
    expect_bugcheck(0xC4, 0x02, (void)ExAllocatePoolWithTag(NonPagedPoolNx, 40, TAG));
    assert_params(DISPATCH_LEVEL + 1, NonPagedPoolNx, 40);
    /* The report carries the history: the raise that caused it is the last entry. */
    assert_true(last()->irql_history_count >= 1);
    assert_int_equal(last()->irql_history[last()->irql_history_count - 1].kind, POOLSIM_IRQL_EV_RAISE);
    assert_int_equal(last()->irql_history[last()->irql_history_count - 1].to, DISPATCH_LEVEL + 1);
    KeLowerIrql(old);
    /* Retail: C2/0x08 for both. */
    use_family(POOLSIM_FAMILY_RETAIL);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck(0xC2, 0x08, (void)ExAllocatePoolWithTag(PagedPool, 8, TAG));
    assert_params(DISPATCH_LEVEL, PagedPool, 8);
    expect_no_bugcheck(p = ExAllocatePoolWithTag(NonPagedPool, 8, TAG));
    ExFreePoolWithTag(p, TAG);
    KeLowerIrql(old);
    KeRaiseIrql(HIGH_LEVEL, &old);
    expect_bugcheck(0xC2, 0x08, (void)ExAllocatePoolWithTag(NonPagedPool, 8, TAG));
    assert_params(HIGH_LEVEL, NonPagedPool, 8);
    KeLowerIrql(old);
}

static void test_irql_pool_free_rules(void **state)
{
    KIRQL old;
    void *paged, *nonpaged;
    (void)state;
    paged = ExAllocatePoolWithTag(PagedPool, 64, TAG);
    nonpaged = ExAllocatePoolWithTag(NonPagedPoolNx, 64, TAG);
    assert_non_null(paged);
    assert_non_null(nonpaged);
    /* Paged: C4/0x11 (IRQL, pool type, address) above APC_LEVEL; the free does nothing. */
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck_continue(0xC4, 0x11, ExFreePoolWithTag(paged, TAG));
    assert_params(DISPATCH_LEVEL, PagedPool, (uintptr_t)paged);
    assert_true(poolsim_valid_access(paged, 64)); /* still allocated */
    /* Nonpaged at DISPATCH_LEVEL: legal. */
    expect_no_bugcheck(ExFreePoolWithTag(nonpaged, TAG));
    KeLowerIrql(old);
    nonpaged = ExAllocatePoolWithTag(NonPagedPoolNx, 64, TAG);
    KeRaiseIrql(DISPATCH_LEVEL + 1, &old);
    expect_bugcheck(0xC4, 0x12, ExFreePoolWithTag(nonpaged, TAG));
    assert_params(DISPATCH_LEVEL + 1, NonPagedPoolNx, (uintptr_t)nonpaged);
    KeLowerIrql(old);
    /* Paged at APC_LEVEL: legal. */
    KeRaiseIrql(APC_LEVEL, &old);
    expect_no_bugcheck(ExFreePoolWithTag(paged, TAG); ExFreePoolWithTag(nonpaged, TAG));
    KeLowerIrql(old);
    /* Retail: C2/0x09. */
    use_family(POOLSIM_FAMILY_RETAIL);
    paged = ExAllocatePoolWithTag(PagedPool, 16, TAG);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck(0xC2, 0x09, ExFreePoolWithTag(paged, TAG));
    assert_params(DISPATCH_LEVEL, PagedPool, (uintptr_t)paged);
    KeLowerIrql(old);
    ExFreePoolWithTag(paged, TAG);
}

static void test_irql_pool_under_spin_lock(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old;
    void *p;
    (void)state;
    KeInitializeSpinLock(&lock);
    KeAcquireSpinLock(&lock, &old);
    /* The classic bug: paged pool allocated while holding a spin lock. */
    expect_bugcheck(0xC4, 0x01, (void)ExAllocatePoolWithTag(PagedPool, 100, TAG));
    assert_params(DISPATCH_LEVEL, PagedPool, 100);
    assert_int_equal(last()->irql_history[last()->irql_history_count - 1].kind, POOLSIM_IRQL_EV_ACQUIRE);
    assert_ptr_equal(last()->irql_history[last()->irql_history_count - 1].object, &lock);
    expect_no_bugcheck(p = ExAllocatePoolWithTag(NonPagedPoolNx, 100, TAG));
    KeReleaseSpinLock(&lock, old);
    ExFreePoolWithTag(p, TAG);
}

/* ---- History (§5.3: Verifier's IRQL log) ------------------------------------------------------------ */

static void test_irql_history_records(void **state)
{
    poolsim_irql_event ev[8];
    KSPIN_LOCK lock;
    KIRQL old, old2;
    int line_raise, line_acquire, line_release, line_lower;
    size_t n;
    (void)state;
    KeInitializeSpinLock(&lock);
    KeRaiseIrql(APC_LEVEL, &old), line_raise = __LINE__;
    KeAcquireSpinLock(&lock, &old2), line_acquire = __LINE__;
    KeReleaseSpinLock(&lock, old2), line_release = __LINE__;
    KeLowerIrql(old), line_lower = __LINE__;
    poolsim_set_irql(PASSIVE_LEVEL);
    n = poolsim_thread_history(ev, 8);
    assert_true(n >= 5);
    /* Oldest first; the last five are ours. */
    {
        const poolsim_irql_event *e = &ev[n - 5];
        assert_int_equal(e[0].kind, POOLSIM_IRQL_EV_RAISE);
        assert_int_equal(e[0].from, PASSIVE_LEVEL);
        assert_int_equal(e[0].to, APC_LEVEL);
        assert_int_equal(e[0].routine, POOLSIM_IRQL_RT_RAISE_IRQL);
        assert_string_equal(e[0].file, __FILE__);
        assert_int_equal(e[0].line, line_raise);
        assert_null(e[0].object);
        assert_int_equal(e[1].kind, POOLSIM_IRQL_EV_ACQUIRE);
        assert_int_equal(e[1].from, APC_LEVEL);
        assert_int_equal(e[1].to, DISPATCH_LEVEL);
        assert_ptr_equal(e[1].object, &lock);
        assert_int_equal(e[1].routine, POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK);
        assert_int_equal(e[1].line, line_acquire);
        assert_int_equal(e[2].kind, POOLSIM_IRQL_EV_RELEASE);
        assert_int_equal(e[2].from, DISPATCH_LEVEL);
        assert_int_equal(e[2].to, APC_LEVEL);
        assert_int_equal(e[2].line, line_release);
        assert_int_equal(e[3].kind, POOLSIM_IRQL_EV_LOWER);
        assert_int_equal(e[3].to, PASSIVE_LEVEL);
        assert_int_equal(e[3].line, line_lower);
        assert_int_equal(e[4].kind, POOLSIM_IRQL_EV_SET);
        assert_int_equal(e[4].routine, POOLSIM_IRQL_RT_SET_IRQL);
        assert_null(e[4].file);
    }
}

static void test_irql_history_keeps_64(void **state)
{
    poolsim_irql_event ev[100];
    KIRQL old;
    size_t n;
    (void)state;
    poolsim_thread_reset();
    assert_int_equal(poolsim_thread_history(ev, 100), 0);
    for (int i = 0; i < 50; i++) {
        KeRaiseIrql(APC_LEVEL, &old);
        KeLowerIrql(old);
    }
    n = poolsim_thread_history(ev, 100);
    assert_int_equal(n, 64); /* the thread keeps its last 64 transitions */
    assert_int_equal(ev[63].kind, POOLSIM_IRQL_EV_LOWER);
    assert_int_equal(ev[62].kind, POOLSIM_IRQL_EV_RAISE);
    assert_int_equal(poolsim_thread_history(ev, 3), 3); /* the newest 3 */
    assert_int_equal(ev[2].kind, POOLSIM_IRQL_EV_LOWER);
    assert_int_equal(ev[1].kind, POOLSIM_IRQL_EV_RAISE);
}

/* With GCC or Clang outside Windows, KeRaiseIrql, KeRaiseIrqlToDpcLevel and KeLowerIrql run inline
 * (poolsim.h); they must leave the IRQL and the history exactly as the library's calls do. */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(_WIN32) && !defined(POOLSIM_NO_INLINE_IRQL) &&        \
    !defined(POOLSIM__IRQL_INLINE)
#error "wdm.h's raise and lower should be inline in this build"
#endif
static void inline_matches_calls(void)
{
    static const uint8_t rt[6] = {POOLSIM_IRQL_RT_RAISE_IRQL,   POOLSIM_IRQL_RT_RAISE_TO_DPC,
                                  POOLSIM_IRQL_RT_RAISE_TO_DPC, POOLSIM_IRQL_RT_RAISE_IRQL,
                                  POOLSIM_IRQL_RT_LOWER_IRQL,   POOLSIM_IRQL_RT_LOWER_IRQL};
    static const uint8_t to[6] = {APC_LEVEL,  DISPATCH_LEVEL, DISPATCH_LEVEL,
                                  HIGH_LEVEL, DISPATCH_LEVEL, PASSIVE_LEVEL};
    poolsim_irql_event in[6], call[6];
    KIRQL old[4];
    int line[6];
    poolsim_thread_reset();
    expect_no_bugcheck({
        KeRaiseIrql(APC_LEVEL, &old[0]), line[0] = __LINE__;
        old[1] = KeRaiseIrqlToDpcLevel(), line[1] = __LINE__; /* crosses to DISPATCH_LEVEL */
        old[2] = KeRaiseIrqlToDpcLevel(), line[2] = __LINE__; /* stays */
        KeRaiseIrql(HIGH_LEVEL, &old[3]), line[3] = __LINE__;
        KeLowerIrql(old[3]), line[4] = __LINE__;
        KeLowerIrql(old[0]), line[5] = __LINE__; /* crosses back */
    });
    assert_int_equal(old[0], PASSIVE_LEVEL);
    assert_int_equal(old[1], APC_LEVEL);
    assert_int_equal(old[2], DISPATCH_LEVEL);
    assert_int_equal(old[3], DISPATCH_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(poolsim_thread_history(in, 6), 6);
    /* The same transitions through the library's calls, from the same sites. */
    poolsim_thread_reset();
    for (int i = 0; i < 6; i++) {
        if (i < 4)
            assert_int_equal(poolsim_irql_raise(to[i], (poolsim_irql_routine)rt[i], __FILE__, line[i]),
                             i ? to[i - 1] : PASSIVE_LEVEL);
        else
            poolsim_irql_lower(to[i], __FILE__, line[i]);
        assert_int_equal(KeGetCurrentIrql(), to[i]);
    }
    assert_int_equal(poolsim_thread_history(call, 6), 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(in[i].kind, i < 4 ? POOLSIM_IRQL_EV_RAISE : POOLSIM_IRQL_EV_LOWER);
        assert_int_equal(in[i].from, i ? to[i - 1] : PASSIVE_LEVEL);
        assert_int_equal(in[i].to, to[i]);
        assert_int_equal(in[i].routine, rt[i]);
        assert_string_equal(in[i].file, __FILE__);
        assert_int_equal(in[i].line, line[i]);
        assert_null(in[i].object);
        assert_string_equal(call[i].file, in[i].file);
        assert_ptr_equal(call[i].object, in[i].object);
        assert_int_equal(call[i].line, in[i].line);
        assert_int_equal(call[i].kind, in[i].kind);
        assert_int_equal(call[i].from, in[i].from);
        assert_int_equal(call[i].to, in[i].to);
        assert_int_equal(call[i].routine, in[i].routine);
    }
}

static void test_irql_inline_matches_calls(void **state)
{
    poolsim_options o = poolsim_cmocka_default_options();
    (void)state;
    /* With Force IRQL checking (the fixture's) the crossings of DISPATCH_LEVEL take the calls; without it
     * every transition is inline. */
    assert_true(o.force_irql);
    inline_matches_calls();
    o.force_irql = 0;
    poolsim_cmocka_reinit(&o);
    inline_matches_calls();
}

static void test_irql_history_in_reports(void **state)
{
    poolsim_options o;
    KIRQL old;
    void *p;
    (void)state;
    /* irql_history = 3: a report shows the last three transitions, oldest first. */
    o = poolsim_cmocka_default_options();
    o.irql_history = 3;
    poolsim_cmocka_reinit(&o);
    for (int i = 0; i < 5; i++) {
        KeRaiseIrql(APC_LEVEL, &old);
        KeLowerIrql(old);
    }
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck(0xC4, 0x30, KeRaiseIrql(APC_LEVEL, &old));
    assert_int_equal(last()->irql_history_count, 3);
    assert_int_equal(last()->irql_history[0].kind, POOLSIM_IRQL_EV_RAISE);
    assert_int_equal(last()->irql_history[1].kind, POOLSIM_IRQL_EV_LOWER);
    assert_int_equal(last()->irql_history[2].kind, POOLSIM_IRQL_EV_RAISE);
    assert_int_equal(last()->irql_history[2].to, DISPATCH_LEVEL);
    KeLowerIrql(PASSIVE_LEVEL);
    /* A bug check that is not about the IRQL carries none. */
    p = ExAllocatePoolWithTag(NonPagedPoolNx, 8, TAG);
    ExFreePoolWithTag(p, TAG);
    expect_bugcheck(0xC4, 0x13, ExFreePoolWithTag(p, TAG));
    assert_int_equal(last()->irql_history_count, 0);
    assert_null(last()->irql_history);
    /* irql_history = 0: none either. */
    o.irql_history = 0;
    poolsim_cmocka_reinit(&o);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck(0xC4, 0x30, KeRaiseIrql(APC_LEVEL, &old));
    assert_int_equal(last()->irql_history_count, 0);
    KeLowerIrql(PASSIVE_LEVEL);
}

/* The report text: the history lines follow the block. */
#include "capture.h"

static void test_irql_history_printed(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old;
    char want[256];
    int line;
    (void)state;
    KeInitializeSpinLock(&lock);
    KeAcquireSpinLock(&lock, &old), line = __LINE__;
    expect_bugcheck(0xC4, 0x01, (void)ExAllocatePoolWithTag(PagedPool, 100, TAG));
    capture_start();
    poolsim_report_bugcheck(last());
    poolsim_report_thread();
    capture_stop();
    KeReleaseSpinLock(&lock, old);
    assert_non_null(strstr(g_text, "IRQL history, oldest first ("));
    snprintf(want, sizeof want, "PASSIVE_LEVEL  -> DISPATCH_LEVEL acquire KeAcquireSpinLock 0x%0*llx at",
             (int)(2 * sizeof(void *)), (unsigned long long)(uintptr_t)&lock);
    assert_non_null(strstr(g_text, want));
    snprintf(want, sizeof want, "test_irql.c:%d\n", line);
    assert_non_null(strstr(g_text, want));
    /* poolsim_report_thread: the IRQL and the held lock with its site. */
    assert_non_null(strstr(g_text, "at DISPATCH_LEVEL, 1 lock(s) held, 0 critical region(s)\n"));
    snprintf(want, sizeof want, "  holds 0x%0*llx taken by KeAcquireSpinLock at", (int)(2 * sizeof(void *)),
             (unsigned long long)(uintptr_t)&lock);
    assert_non_null(strstr(g_text, want));
}

/* ---- poolsim_thread_check and the cmocka helper ----------------------------------------------------------- */

static void test_irql_thread_check(void **state)
{
    KSPIN_LOCK lock, qlock;
    KLOCK_QUEUE_HANDLE h;
    FAST_MUTEX m;
    KIRQL old;
    volatile bool ok = false;
    (void)state;
    KeInitializeSpinLock(&lock);
    KeInitializeSpinLock(&qlock);
    ExInitializeFastMutex(&m);
    expect_no_bugcheck(ok = poolsim_thread_check());
    assert_true(ok);
    assert_passive_no_locks();
    /* Above PASSIVE_LEVEL: 0x4A IRQL_GT_ZERO_AT_SYSTEM_SERVICE (0, IRQL, 0, 0). */
    KeRaiseIrql(APC_LEVEL, &old);
    assert_false(poolsim_thread_passive_no_locks());
    expect_bugcheck_continue(0x4A, 0, ok = poolsim_thread_check());
    assert_false(ok);
    assert_params(APC_LEVEL, 0, 0);
    assert_string_equal(last()->site.routine, "poolsim_thread_check");
    KeLowerIrql(old);
    /* A spin lock still held: the DDI rule SpinLock (C4/0x40009), P3 the lock. */
    KeAcquireSpinLock(&lock, &old);
    expect_bugcheck(0xC4, 0x40009, (void)poolsim_thread_check());
    assert_int_equal(last()->param[2], (uintptr_t)&lock);
    assert_non_null(strstr((const char *)last()->param[1], "SpinLock"));
    KeReleaseSpinLock(&lock, old);
    /* A queued one: QueuedSpinLockRelease (C4/0x40007). */
    KeAcquireInStackQueuedSpinLock(&qlock, &h);
    expect_bugcheck(0xC4, 0x40007, (void)poolsim_thread_check());
    assert_int_equal(last()->param[2], (uintptr_t)&qlock);
    KeReleaseInStackQueuedSpinLock(&h);
    /* A fast mutex: APC_LEVEL, 0x4A. */
    ExAcquireFastMutex(&m);
    expect_bugcheck(0x4A, 0, (void)poolsim_thread_check());
    assert_params(APC_LEVEL, 0, 0);
    ExReleaseFastMutex(&m);
    /* Retail: 0x4A for a spin lock too. */
    use_family(POOLSIM_FAMILY_RETAIL);
    KeAcquireSpinLock(&lock, &old);
    expect_bugcheck(0x4A, 0, (void)poolsim_thread_check());
    assert_params(DISPATCH_LEVEL, 0, 0);
    KeReleaseSpinLock(&lock, old);
    expect_no_bugcheck(ok = poolsim_thread_check());
    assert_true(ok);
}

static void test_irql_thread_reset(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old;
    poolsim_held_lock held[2];
    (void)state;
    KeInitializeSpinLock(&lock);
    KeEnterCriticalRegion();
    KeAcquireSpinLock(&lock, &old);
    assert_int_equal(poolsim_thread_locks(held, 2), 1);
    assert_ptr_equal(held[0].object, &lock);
    assert_int_equal(held[0].old_irql, PASSIVE_LEVEL);
    assert_int_equal(held[0].routine, POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK);
    assert_string_equal(held[0].file, __FILE__);
    assert_int_equal(poolsim_thread_critical_regions(), 1);
    poolsim_thread_reset();
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(poolsim_thread_locks(held, 2), 0);
    assert_int_equal(poolsim_thread_critical_regions(), 0);
    assert_passive_no_locks();
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, poolsim_cmocka_setup, poolsim_cmocka_teardown)
    const struct CMUnitTest tests[] = {
        T(test_irql_levels),
        T(test_irql_raise_lower_legal),
        T(test_irql_raise_to_lower_level),
        T(test_irql_lower_to_higher_level),
        T(test_irql_retail_codes),
        T(test_irql_raise_to_dpc),
        T(test_irql_raise_to_synch),
        T(test_irql_option_ranges),
        T(test_irql_per_thread),
        T(test_irql_pool_alloc_rules),
        T(test_irql_pool_free_rules),
        T(test_irql_pool_under_spin_lock),
        T(test_irql_history_records),
        T(test_irql_history_keeps_64),
        T(test_irql_inline_matches_calls),
        T(test_irql_history_in_reports),
        T(test_irql_history_printed),
        T(test_irql_thread_check),
        T(test_irql_thread_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
