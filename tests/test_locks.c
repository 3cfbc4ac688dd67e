/* SPDX-License-Identifier: MIT */
/*
 * test_locks.c — spin locks, in-stack queued spin locks, fast mutexes and
 * critical regions (src/irql.c) through <poolsim/wdm.h>: they really lock
 * (threads contend for the lock word: two threads hammering one lock keep
 * an exact count), they move the IRQL like the kernel (wdk-semantics.md
 * §4.3), and every misuse raises the documented bug check with its
 * parameters (§1.1: C4/0x32, 0x33, 0x34, 0x40, 0x41, 0x42, 0x11A, 0x11B; the
 * DDI rules 0x20015, 0x40006, 0x40007, 0x40009; Deadlock Detection's 0x1000,
 * 0x1004, 0x1007; 0x1009; retail 0xF, 0x10, 0x9) while its legal twin raises
 * nothing. After a reported misuse whose handler returns, the safe thing
 * happens: a recursive acquire does not deadlock, a foreign lock is not
 * released. Runs under ThreadSanitizer too (scripts/test.sh).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <poolsim/wdm.h>
#include <poolsim/cmocka.h>

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

/* A DDI rule's bug check: Arg2 points to the rule's text, Arg3 is the lock. */
static void assert_rule(const char *rule, const void *lock)
{
    assert_true(last()->param[1] != 0);
    assert_non_null(strstr((const char *)last()->param[1], rule));
    assert_int_equal(last()->param[2], (uintptr_t)lock);
    assert_int_equal(last()->param[3], 0);
}

static size_t locks_held(void) { return poolsim_thread_locks(NULL, 0); }

#include "threads.h"

/* ---- Spin locks: the legal uses (§4.3) --------------------------------------------------------- */

static void test_locks_spin_basic(void **state)
{
    KSPIN_LOCK lock = 0x5A5A;
    KIRQL old = 0xEE;
    poolsim_held_lock held[1];
    (void)state;
    KeInitializeSpinLock(&lock);
    assert_int_equal(lock, 0);
    expect_no_bugcheck(KeAcquireSpinLock(&lock, &old));
    assert_int_equal(old, PASSIVE_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    assert_true(lock & 1); /* held: the owner | 1 */
    assert_int_equal(poolsim_thread_locks(held, 1), 1);
    assert_ptr_equal(held[0].object, &lock);
    assert_int_equal(held[0].routine, POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK);
    expect_no_bugcheck(KeReleaseSpinLock(&lock, old));
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_false(lock & 1);
    assert_int_equal(locks_held(), 0);
    /* KeAcquireSpinLockRaiseToDpc from APC_LEVEL returns APC_LEVEL, and the release restores it. */
    KeRaiseIrql(APC_LEVEL, &old);
    {
        KIRQL o2 = KeAcquireSpinLockRaiseToDpc(&lock);
        assert_int_equal(o2, APC_LEVEL);
        assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
        expect_no_bugcheck(KeReleaseSpinLock(&lock, o2));
        assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    }
    KeLowerIrql(old);
    /* At DISPATCH_LEVEL KeAcquireSpinLock is legal and returns DISPATCH_LEVEL. */
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    {
        KIRQL o2;
        expect_no_bugcheck(KeAcquireSpinLock(&lock, &o2); KeReleaseSpinLock(&lock, o2));
        assert_int_equal(o2, DISPATCH_LEVEL);
        assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    }
    KeLowerIrql(old);
    /* The real-named functions (no site). */
    (KeAcquireSpinLock)(&lock, &old);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    (KeReleaseSpinLock)(&lock, old);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

static void test_locks_spin_nested(void **state)
{
    KSPIN_LOCK a, b;
    KIRQL oa, ob;
    (void)state;
    KeInitializeSpinLock(&a);
    KeInitializeSpinLock(&b);
    expect_no_bugcheck({
        KeAcquireSpinLock(&a, &oa);
        KeAcquireSpinLock(&b, &ob); /* two different locks: legal */
        assert_int_equal(ob, DISPATCH_LEVEL);
        assert_int_equal(locks_held(), 2);
        KeReleaseSpinLock(&b, ob);
        assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
        KeReleaseSpinLock(&a, oa);
    });
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(locks_held(), 0);
}

static void test_locks_at_dpc_level(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old;
    (void)state;
    KeInitializeSpinLock(&lock);
    /* §4.3: C4/0x40 (IRQL, lock, 0) below DISPATCH_LEVEL; the IRQL does not change. */
    expect_bugcheck(0xC4, 0x40, KeAcquireSpinLockAtDpcLevel(&lock));
    assert_params(PASSIVE_LEVEL, (uintptr_t)&lock, 0);
    assert_string_equal(last()->site.routine, "KeAcquireSpinLockAtDpcLevel");
    assert_int_equal(locks_held(), 0); /* the handler jumped out before the acquire */
    /* At DISPATCH_LEVEL: legal, and the IRQL stays. */
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_no_bugcheck(KeAcquireSpinLockAtDpcLevel(&lock));
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    assert_int_equal(locks_held(), 1);
    expect_no_bugcheck(KeReleaseSpinLockFromDpcLevel(&lock));
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    assert_int_equal(locks_held(), 0);
    /* Report and continue: taken anyway below DISPATCH_LEVEL, then C4/0x41 for the release. */
    KeLowerIrql(old);
    expect_bugcheck_continue(0xC4, 0x40, KeAcquireSpinLockAtDpcLevel(&lock));
    assert_int_equal(locks_held(), 1);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    expect_bugcheck_continue(0xC4, 0x41, KeReleaseSpinLockFromDpcLevel(&lock));
    assert_params(PASSIVE_LEVEL, (uintptr_t)&lock, 0);
    assert_string_equal(last()->site.routine, "KeReleaseSpinLockFromDpcLevel");
    assert_int_equal(locks_held(), 0);
    assert_int_equal(lock & 1, 0);
}

/* ---- Spin locks: misuse (§4.3) ----------------------------------------------------------------- */

static void test_locks_acquire_above_dispatch(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old;
    volatile KIRQL o2 = 0xEE;
    (void)state;
    KeInitializeSpinLock(&lock);
    KeRaiseIrql(HIGH_LEVEL, &old);
    /* C4/0x42 (IRQL, lock, 0). */
    expect_bugcheck(0xC4, 0x42, KeAcquireSpinLock(&lock, (KIRQL *)&o2));
    assert_params(HIGH_LEVEL, (uintptr_t)&lock, 0);
    assert_int_equal(locks_held(), 0);
    expect_bugcheck(0xC4, 0x42, (void)KeAcquireSpinLockRaiseToDpc(&lock));
    {
        KLOCK_QUEUE_HANDLE h;
        expect_bugcheck(0xC4, 0x42, KeAcquireInStackQueuedSpinLock(&lock, &h));
    }
    /* AtDpcLevel accepts any IRQL from DISPATCH_LEVEL up (its only documented rule, §4.3). */
    expect_no_bugcheck(KeAcquireSpinLockAtDpcLevel(&lock); KeReleaseSpinLockFromDpcLevel(&lock));
    /* Retail: the raise to DISPATCH_LEVEL from above it, 0x9 (IRQL, DISPATCH_LEVEL, 0, 0). */
    KeLowerIrql(old);
    use_family(POOLSIM_FAMILY_RETAIL);
    KeRaiseIrql(HIGH_LEVEL, &old);
    expect_bugcheck(0x09, HIGH_LEVEL, KeAcquireSpinLock(&lock, (KIRQL *)&o2));
    assert_params(DISPATCH_LEVEL, 0, 0);
    KeLowerIrql(old);
    assert_int_equal(lock, 4); /* free; last used as an ordinary lock */
}

static void test_locks_release_not_at_dispatch(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old;
    (void)state;
    KeInitializeSpinLock(&lock);
    KeAcquireSpinLock(&lock, &old);
    KeLowerIrql(APC_LEVEL); /* the bug: lowering below the lock's level */
    /* C4/0x32 (IRQL, lock, 0). Report and continue: the lock is given back and the IRQL set to NewIrql. */
    expect_bugcheck_continue(0xC4, 0x32, KeReleaseSpinLock(&lock, old));
    assert_params(APC_LEVEL, (uintptr_t)&lock, 0);
    assert_string_equal(last()->site.routine, "KeReleaseSpinLock");
    assert_int_equal(locks_held(), 0);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    /* A double release: at PASSIVE_LEVEL, 0x32 again ("possibly a double release"); nothing changes. */
    expect_bugcheck_continue(0xC4, 0x32, KeReleaseSpinLock(&lock, old));
    assert_params(PASSIVE_LEVEL, (uintptr_t)&lock, 0);
    assert_int_equal(lock & 1, 0);
    /* Above DISPATCH_LEVEL too. */
    KeAcquireSpinLock(&lock, &old);
    {
        KIRQL o2;
        KeRaiseIrql(HIGH_LEVEL, &o2);
        expect_bugcheck_continue(0xC4, 0x32, KeReleaseSpinLock(&lock, old));
        assert_params(HIGH_LEVEL, (uintptr_t)&lock, 0);
    }
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(locks_held(), 0);
}

/* An acquire above DISPATCH_LEVEL, reported and let through, saves that IRQL as OldIrql. After the caller
 * lowers to DISPATCH_LEVEL, the release's "lower to OldIrql" would be a raise: it is KeLowerIrql's bad
 * lower, C4/0x31 (current, requested, 0) [retail 0xA (current, requested, 0, 0)], and the IRQL stays
 * (fuzz_pool found the release raising the IRQL silently). */
static void test_locks_release_to_higher_irql(void **state)
{
    KSPIN_LOCK lock, qlock; /* a lock is used queued or ordinary, never both */
    KIRQL old, saved = 0;
    KLOCK_QUEUE_HANDLE h;
    (void)state;
    KeInitializeSpinLock(&lock);
    KeInitializeSpinLock(&qlock);
    KeRaiseIrql(HIGH_LEVEL, &old);
    expect_bugcheck_continue(0xC4, 0x42, KeAcquireSpinLock(&lock, &saved));
    assert_int_equal(saved, HIGH_LEVEL);
    KeLowerIrql(DISPATCH_LEVEL);
    expect_bugcheck_continue(0xC4, 0x31, KeReleaseSpinLock(&lock, saved));
    assert_params(DISPATCH_LEVEL, HIGH_LEVEL, 0);
    assert_string_equal(last()->site.routine, "KeReleaseSpinLock");
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    assert_int_equal(locks_held(), 0);
    /* In-stack queued: the handle holds OldIrql. */
    KeRaiseIrql(HIGH_LEVEL, &saved);
    expect_bugcheck_continue(0xC4, 0x42, KeAcquireInStackQueuedSpinLock(&qlock, &h));
    KeLowerIrql(DISPATCH_LEVEL);
    expect_bugcheck_continue(0xC4, 0x31, KeReleaseInStackQueuedSpinLock(&h));
    assert_params(DISPATCH_LEVEL, HIGH_LEVEL, 0);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    assert_int_equal(locks_held(), 0);
    KeLowerIrql(old);
    /* The legal twins: released to the OldIrql they were taken at. */
    expect_no_bugcheck(KeAcquireSpinLock(&lock, &saved); KeReleaseSpinLock(&lock, saved));
    expect_no_bugcheck(KeAcquireInStackQueuedSpinLock(&qlock, &h); KeReleaseInStackQueuedSpinLock(&h));
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    /* Retail: 0xA. */
    use_family(POOLSIM_FAMILY_RETAIL);
    KeRaiseIrql(HIGH_LEVEL, &old);
    expect_bugcheck_continue(0x09, HIGH_LEVEL, KeAcquireSpinLock(&lock, &saved));
    KeLowerIrql(DISPATCH_LEVEL);
    expect_bugcheck_continue(0x0A, DISPATCH_LEVEL, KeReleaseSpinLock(&lock, saved));
    assert_params(HIGH_LEVEL, 0, 0);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(old);
}

typedef struct recursion_ctx {
    KSPIN_LOCK *lock;
    int done;
} recursion_ctx;

static void test_locks_recursive_acquire(void **state)
{
    KSPIN_LOCK lock, other;
    KIRQL old, inner;
    (void)state;
    KeInitializeSpinLock(&lock);
    KeInitializeSpinLock(&other);
    KeAcquireSpinLock(&lock, &old);
    /* Verifier: the DDI rule SpinLock, C4/0x40009 (rule text, lock, 0). */
    expect_bugcheck(0xC4, 0x40009, KeAcquireSpinLock(&lock, &inner));
    assert_rule("SpinLock", &lock);
    assert_string_equal(last()->site.routine, "KeAcquireSpinLock");
    /* Report and continue: no deadlock; the matching release undoes the nesting only. */
    expect_bugcheck_continue(0xC4, 0x40009, KeAcquireSpinLock(&lock, &inner));
    assert_int_equal(inner, DISPATCH_LEVEL);
    assert_int_equal(locks_held(), 1);
    expect_no_bugcheck(KeReleaseSpinLock(&lock, inner));
    assert_true(lock & 1); /* still held by the outer acquire */
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    /* A different lock is no recursion. */
    expect_no_bugcheck(KeAcquireSpinLockAtDpcLevel(&other); KeReleaseSpinLockFromDpcLevel(&other));
    expect_no_bugcheck(KeReleaseSpinLock(&lock, old));
    assert_int_equal(lock & 1, 0);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    /* Retail: 0xF SPIN_LOCK_ALREADY_OWNED (lock, 0, 0, 0) as ReactOS's checked build raises it. */
    use_family(POOLSIM_FAMILY_RETAIL);
    KeAcquireSpinLock(&lock, &old);
    expect_bugcheck(0x0F, (uintptr_t)&lock, KeAcquireSpinLockAtDpcLevel(&lock));
    assert_params(0, 0, 0);
    assert_string_equal(last()->name, "SPIN_LOCK_ALREADY_OWNED");
    KeReleaseSpinLock(&lock, old);
}

static void holder_thread(void *arg)
{
    recursion_ctx *c = (recursion_ctx *)arg;
    KIRQL old;
    KeAcquireSpinLock(c->lock, &old);
    store_int(&c->done, 1);
    while (load_int(&c->done) != 2)
        sleep_ms(1);
    KeReleaseSpinLock(c->lock, old);
    store_int(&c->done, 3);
}

static void test_locks_release_not_held(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old;
    thread th;
    recursion_ctx c;
    (void)state;
    KeInitializeSpinLock(&lock);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    /* Verifier: SpinLock (C4/0x40009): release without acquire. */
    expect_bugcheck_continue(0xC4, 0x40009, KeReleaseSpinLock(&lock, old));
    assert_rule("SpinLock", &lock);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL); /* the release's IRQL, a lower one */
    assert_int_equal(lock, 0);                           /* the word is not touched */
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck(0xC4, 0x40009, KeReleaseSpinLockFromDpcLevel(&lock));
    /* Held by another thread: not this thread's to release; the other's hold survives. */
    c.lock = &lock;
    c.done = 0;
    thread_start(&th, holder_thread, &c);
    while (load_int(&c.done) != 1)
        sleep_ms(1);
    expect_bugcheck(0xC4, 0x40009, KeReleaseSpinLockFromDpcLevel(&lock));
    assert_true(lock & 1);
    store_int(&c.done, 2);
    thread_join(&th);
    assert_int_equal(load_int(&c.done), 3);
    assert_int_equal(lock & 1, 0);
    /* Retail: 0x10 SPIN_LOCK_NOT_OWNED (lock, 0, 0, 0). */
    KeLowerIrql(old);
    use_family(POOLSIM_FAMILY_RETAIL);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck(0x10, (uintptr_t)&lock, KeReleaseSpinLock(&lock, old));
    assert_params(0, 0, 0);
    assert_string_equal(last()->name, "SPIN_LOCK_NOT_OWNED");
    /* The legal twin. */
    expect_no_bugcheck(KeAcquireSpinLockAtDpcLevel(&lock); KeReleaseSpinLockFromDpcLevel(&lock));
    KeLowerIrql(old);
}

static void test_locks_new_irql_mismatch(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old;
    (void)state;
    KeInitializeSpinLock(&lock);
    KeAcquireSpinLock(&lock, &old);
    /* DDI rule IrqlKeReleaseSpinLock (C4/0x20015): NewIrql is not the acquire's OldIrql. Report and
     * continue: the acquire's OldIrql is restored. */
    expect_bugcheck_continue(0xC4, 0x20015, KeReleaseSpinLock(&lock, APC_LEVEL));
    assert_rule("IrqlKeReleaseSpinLock", &lock);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(locks_held(), 0);
    /* The legal twin: from APC_LEVEL, NewIrql APC_LEVEL is right. */
    KeRaiseIrql(APC_LEVEL, &old);
    {
        KIRQL o2;
        expect_no_bugcheck(KeAcquireSpinLock(&lock, &o2); KeReleaseSpinLock(&lock, APC_LEVEL));
    }
    KeLowerIrql(old);
}

static void test_locks_mismatched_release_routine(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old;
    (void)state;
    KeInitializeSpinLock(&lock);
    KeAcquireSpinLock(&lock, &old);
    /* §4.3: taken with KeAcquireSpinLock, released FromDpcLevel, the IRQL is never restored: C4/0x1009
     * (lock, 0, 0). Report and continue: the acquire's IRQL is restored. */
    expect_bugcheck_continue(0xC4, 0x1009, KeReleaseSpinLockFromDpcLevel(&lock));
    assert_params((uintptr_t)&lock, 0, 0);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(locks_held(), 0);
    /* AtDpcLevel then KeReleaseSpinLock(DISPATCH_LEVEL): the IRQL it restores is right, no report. */
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_no_bugcheck(KeAcquireSpinLockAtDpcLevel(&lock); KeReleaseSpinLock(&lock, DISPATCH_LEVEL));
    KeLowerIrql(old);
}

/* ---- In-stack queued spin locks (§4.3) ----------------------------------------------------------- */

static void test_locks_queued(void **state)
{
    KSPIN_LOCK lock, lock2;
    KLOCK_QUEUE_HANDLE h, h2;
    KIRQL old;
    (void)state;
    KeInitializeSpinLock(&lock);
    KeInitializeSpinLock(&lock2);
    expect_no_bugcheck(KeAcquireInStackQueuedSpinLock(&lock, &h));
    assert_ptr_equal(h.LockQueue.Lock, (uintptr_t)&lock | 2); /* LOCK_QUEUE_OWNER while it holds the lock */
    assert_int_equal(h.OldIrql, PASSIVE_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    expect_no_bugcheck(KeAcquireInStackQueuedSpinLockAtDpcLevel(&lock2, &h2));
    assert_int_equal(h2.OldIrql, DISPATCH_LEVEL);
    expect_no_bugcheck(KeReleaseInStackQueuedSpinLockFromDpcLevel(&h2); KeReleaseInStackQueuedSpinLock(&h));
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(locks_held(), 0);
    assert_int_equal(lock, 2); /* free; last used queued */
    assert_ptr_equal(h.LockQueue.Lock, &lock); /* the owner bit cleared */
    /* AtDpcLevel below DISPATCH_LEVEL: C4/0x40. */
    expect_bugcheck(0xC4, 0x40, KeAcquireInStackQueuedSpinLockAtDpcLevel(&lock, &h));
    assert_params(PASSIVE_LEVEL, (uintptr_t)&lock, 0);
    /* Release not at DISPATCH_LEVEL: C4/0x32. */
    KeAcquireInStackQueuedSpinLock(&lock, &h);
    KeLowerIrql(PASSIVE_LEVEL);
    expect_bugcheck_continue(0xC4, 0x32, KeReleaseInStackQueuedSpinLock(&h));
    assert_params(PASSIVE_LEVEL, (uintptr_t)&lock, 0);
    assert_string_equal(last()->site.routine, "KeReleaseInStackQueuedSpinLock");
    assert_int_equal(locks_held(), 0);
    /* Released while not held: QueuedSpinLockRelease (C4/0x40007). */
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    h.OldIrql = DISPATCH_LEVEL;
    expect_bugcheck(0xC4, 0x40007, KeReleaseInStackQueuedSpinLock(&h));
    assert_rule("QueuedSpinLockRelease", &lock);
    /* Acquired twice: QueuedSpinLock (C4/0x40006); report and continue does not deadlock. */
    KeAcquireInStackQueuedSpinLockAtDpcLevel(&lock, &h);
    expect_bugcheck_continue(0xC4, 0x40006, KeAcquireInStackQueuedSpinLockAtDpcLevel(&lock, &h2));
    assert_rule("QueuedSpinLock", &lock);
    expect_no_bugcheck(KeReleaseInStackQueuedSpinLockFromDpcLevel(&h2); KeReleaseInStackQueuedSpinLockFromDpcLevel(&h));
    assert_int_equal(locks_held(), 0);
    KeLowerIrql(old);
    /* A handle of an earlier acquire (here the nested one above, undone), released again while another handle
     * holds the lock: its OldIrql is not this hold's (the kernel would wait on a queue entry no longer in the
     * queue). QueuedSpinLockRelease; the lock and the IRQL stay, and the right handle releases it. A release
     * whose report ends the call (longjmp) leaves the handle holding the lock: released again, it is. */
    KeRaiseIrql(APC_LEVEL, &old);
    KeAcquireInStackQueuedSpinLock(&lock, &h);
    expect_bugcheck_continue(0xC4, 0x40007, KeReleaseInStackQueuedSpinLock(&h2));
    assert_rule("QueuedSpinLockRelease", &lock);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    assert_int_equal(locks_held(), 1);
    KeLowerIrql(PASSIVE_LEVEL);
    expect_bugcheck(0xC4, 0x32, KeReleaseInStackQueuedSpinLock(&h)); /* not at DISPATCH_LEVEL */
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_no_bugcheck(KeReleaseInStackQueuedSpinLock(&h));
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    assert_int_equal(locks_held(), 0);
    KeLowerIrql(PASSIVE_LEVEL);
    /* A handle acquired into while it still holds its lock: that lock can no longer be released through it.
     * The acquire cannot tell (a caller's handle is uninitialised memory before it, never read); the lock
     * left held is named when the thread's work ends (QueuedSpinLockRelease, still held). */
    KeAcquireInStackQueuedSpinLock(&lock, &h);
    expect_no_bugcheck(KeAcquireInStackQueuedSpinLockAtDpcLevel(&lock2, &h));
    assert_int_equal(locks_held(), 2);
    expect_no_bugcheck(KeReleaseInStackQueuedSpinLockFromDpcLevel(&h)); /* lock2 */
    expect_bugcheck_continue(0xC4, 0x40007, assert_false(poolsim_thread_check()));
    assert_rule("QueuedSpinLockRelease", &lock);
    h.LockQueue.Lock = (PKSPIN_LOCK)((uintptr_t)&lock | 2);             /* mend the handle to release lock */
    h.OldIrql = PASSIVE_LEVEL;
    expect_no_bugcheck(KeReleaseInStackQueuedSpinLock(&h));
    assert_int_equal(locks_held(), 0);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    /* The legal neighbour: one handle used again once released. */
    expect_no_bugcheck(KeAcquireInStackQueuedSpinLock(&lock, &h); KeReleaseInStackQueuedSpinLock(&h);
                       KeAcquireInStackQueuedSpinLock(&lock2, &h); KeReleaseInStackQueuedSpinLock(&h));
    /* Retail: 0xF and 0x10. */
    use_family(POOLSIM_FAMILY_RETAIL);
    KeAcquireInStackQueuedSpinLock(&lock, &h);
    expect_bugcheck(0x0F, (uintptr_t)&lock, KeAcquireInStackQueuedSpinLockAtDpcLevel(&lock, &h2));
    KeReleaseInStackQueuedSpinLock(&h);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck(0x10, (uintptr_t)&lock, KeReleaseInStackQueuedSpinLockFromDpcLevel(&h));
    KeLowerIrql(old);
}

static void test_locks_queued_and_ordinary_mixed(void **state)
{
    KSPIN_LOCK lock, plain;
    KLOCK_QUEUE_HANDLE h;
    KIRQL old;
    (void)state;
    KeInitializeSpinLock(&lock);
    KeInitializeSpinLock(&plain);
    /* §4.3: one lock is either queued or ordinary, never both (QueuedSpinLock, C4/0x40006). */
    KeAcquireInStackQueuedSpinLock(&lock, &h);
    KeReleaseInStackQueuedSpinLock(&h);
    expect_bugcheck(0xC4, 0x40006, KeAcquireSpinLock(&lock, &old));
    assert_rule("QueuedSpinLock", &lock);
    assert_int_equal(locks_held(), 0);
    /* Report and continue: taken anyway; from then on it counts as an ordinary lock. */
    expect_bugcheck_continue(0xC4, 0x40006, KeAcquireSpinLock(&lock, &old));
    expect_no_bugcheck(KeReleaseSpinLock(&lock, old); KeAcquireSpinLock(&lock, &old); KeReleaseSpinLock(&lock, old));
    /* The other way round, and the release of a queued lock through the ordinary routine. */
    expect_bugcheck(0xC4, 0x40006, KeAcquireInStackQueuedSpinLock(&lock, &h));
    KeAcquireSpinLock(&plain, &old);
    h.LockQueue.Next = NULL;
    h.LockQueue.Lock =
        (PKSPIN_LOCK)((uintptr_t)&plain | 2); /* a handle holding it, as an acquire leaves one */
    h.OldIrql = old;
    expect_bugcheck_continue(0xC4, 0x40006, KeReleaseInStackQueuedSpinLock(&h));
    assert_int_equal(locks_held(), 0);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    /* The legal twin: each lock always used the same way. */
    expect_no_bugcheck(KeAcquireSpinLock(&plain, &old); KeReleaseSpinLock(&plain, old));
}

/* ---- Fast mutexes ---------------------------------------------------------------------------------- */

typedef struct mutex_ctx {
    FAST_MUTEX *m;
    int step;
} mutex_ctx;

static void mutex_holder(void *arg)
{
    mutex_ctx *c = (mutex_ctx *)arg;
    ExAcquireFastMutex(c->m);
    store_int(&c->step, 1);
    while (load_int(&c->step) != 2)
        sleep_ms(1);
    ExReleaseFastMutex(c->m);
}

static void test_locks_fast_mutex(void **state)
{
    FAST_MUTEX m;
    KIRQL old;
    poolsim_irql_event ev;
    thread th;
    mutex_ctx c;
    (void)state;
    ExInitializeFastMutex(&m);
    assert_int_equal(m.Count, 1);
    assert_null(m.Owner);
    expect_no_bugcheck(ExAcquireFastMutex(&m));
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL); /* the acquire raises to APC_LEVEL */
    assert_non_null(m.Owner);
    assert_int_equal(m.OldIrql, PASSIVE_LEVEL);
    assert_int_equal(locks_held(), 1);
    expect_no_bugcheck(ExReleaseFastMutex(&m));
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_null(m.Owner);
    /* At APC_LEVEL: legal, and the release returns to APC_LEVEL. */
    KeRaiseIrql(APC_LEVEL, &old);
    expect_no_bugcheck(ExAcquireFastMutex(&m); ExReleaseFastMutex(&m));
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    KeLowerIrql(old);
    /* C4/0x33 (IRQL, mutex, 0) above APC_LEVEL. */
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck(0xC4, 0x33, ExAcquireFastMutex(&m));
    assert_params(DISPATCH_LEVEL, (uintptr_t)&m, 0);
    assert_string_equal(last()->site.routine, "ExAcquireFastMutex");
    assert_null(m.Owner);
    /* Taken anyway, with DISPATCH_LEVEL as its OldIrql: released at APC_LEVEL, the IRQL stays there, and
     * so says the history (found by fuzz_pool). */
    expect_bugcheck_continue(0xC4, 0x33, ExAcquireFastMutex(&m));
    KeLowerIrql(APC_LEVEL);
    expect_no_bugcheck(ExReleaseFastMutex(&m));
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    assert_int_equal(poolsim_thread_history(&ev, 1), 1);
    assert_int_equal(ev.to, APC_LEVEL);
    KeLowerIrql(old);
    /* C4/0x34 (IRQL, APC-disable count, mutex) when released not at APC_LEVEL. */
    ExAcquireFastMutex(&m);
    KeEnterCriticalRegion();
    KeLowerIrql(PASSIVE_LEVEL);
    expect_bugcheck_continue(0xC4, 0x34, ExReleaseFastMutex(&m));
    assert_params(PASSIVE_LEVEL, 1, (uintptr_t)&m);
    assert_null(m.Owner);
    KeLeaveCriticalRegion();
    /* Recursive acquire: Deadlock Detection's self-deadlock, C4/0x1000 (mutex, 0, 0); no deadlock. */
    ExAcquireFastMutex(&m);
    expect_bugcheck(0xC4, 0x1000, ExAcquireFastMutex(&m));
    assert_params((uintptr_t)&m, 0, 0);
    expect_bugcheck_continue(0xC4, 0x1000, ExAcquireFastMutex(&m));
    assert_int_equal(m.OldIrql, PASSIVE_LEVEL); /* the outer acquire's IRQL is kept */
    expect_no_bugcheck(ExReleaseFastMutex(&m));
    assert_non_null(m.Owner);
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    /* The history says what happened: the nested release left the IRQL at APC_LEVEL (found by fuzz_pool). */
    assert_int_equal(poolsim_thread_history(&ev, 1), 1);
    assert_int_equal(ev.kind, POOLSIM_IRQL_EV_RELEASE);
    assert_int_equal(ev.from, APC_LEVEL);
    assert_int_equal(ev.to, APC_LEVEL);
    ExReleaseFastMutex(&m);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    /* Released while nobody holds it: C4/0x1007 (mutex, 0, 0). */
    KeRaiseIrql(APC_LEVEL, &old);
    expect_bugcheck(0xC4, 0x1007, ExReleaseFastMutex(&m));
    assert_params((uintptr_t)&m, 0, 0);
    /* Released by a thread that does not own it: C4/0x1004 (mutex, owner, caller). */
    c.m = &m;
    c.step = 0;
    thread_start(&th, mutex_holder, &c);
    while (load_int(&c.step) != 1)
        sleep_ms(1);
    expect_bugcheck(0xC4, 0x1004, ExReleaseFastMutex(&m));
    assert_int_equal(last()->param[1], (uintptr_t)&m);
    assert_int_equal(last()->param[2], (uintptr_t)m.Owner & ~(uintptr_t)15);
    assert_true(last()->param[3] != 0 && last()->param[3] != last()->param[2]);
    assert_non_null(m.Owner); /* the owner's hold survives */
    store_int(&c.step, 2);
    thread_join(&th);
    assert_null(m.Owner);
    KeLowerIrql(old);
}

/* ExTryToAcquireFastMutex takes a free mutex as ExAcquireFastMutex does (APC_LEVEL) and returns FALSE at
 * once, with no report, when any thread has it, the caller too. The unsafe pair takes and gives back the
 * mutex without moving the IRQL (for a caller at APC_LEVEL or in a critical region); mixing the pairs is
 * C4/0x1009 (mutex, 0, 0), as for spin locks, and the IRQL goes back as the acquire needs. Above APC_LEVEL
 * each is C4/0x33 (acquire) or 0x34 (release), like the plain routines. */
static void test_locks_fast_mutex_try_and_unsafe(void **state)
{
    FAST_MUTEX m;
    KIRQL old;
    thread th;
    mutex_ctx c;
    BOOLEAN got;
    (void)state;
    ExInitializeFastMutex(&m);
    expect_no_bugcheck(got = ExTryToAcquireFastMutex(&m));
    assert_true(got);
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    assert_int_equal(m.OldIrql, PASSIVE_LEVEL);
    expect_no_bugcheck(got = ExTryToAcquireFastMutex(&m)); /* the caller's own: FALSE, no self-deadlock */
    assert_false(got);
    assert_int_equal(locks_held(), 1);
    expect_no_bugcheck(ExReleaseFastMutex(&m));
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    c.m = &m;
    c.step = 0;
    thread_start(&th, mutex_holder, &c);
    while (load_int(&c.step) != 1)
        sleep_ms(1);
    expect_no_bugcheck(got = ExTryToAcquireFastMutex(&m)); /* another thread's: FALSE, no wait */
    assert_false(got);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(locks_held(), 0);
    store_int(&c.step, 2);
    thread_join(&th);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck(0xC4, 0x33, (void)ExTryToAcquireFastMutex(&m));
    assert_params(DISPATCH_LEVEL, (uintptr_t)&m, 0);
    assert_string_equal(last()->site.routine, "ExTryToAcquireFastMutex");
    KeLowerIrql(old);
    assert_null(m.Owner);

    /* The unsafe pair: in a critical region at PASSIVE_LEVEL, and at APC_LEVEL; the IRQL does not move. */
    KeEnterCriticalRegion();
    expect_no_bugcheck(ExAcquireFastMutexUnsafe(&m));
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_non_null(m.Owner);
    assert_int_equal(locks_held(), 1);
    expect_no_bugcheck(ExReleaseFastMutexUnsafe(&m));
    assert_null(m.Owner);
    KeLeaveCriticalRegion();
    KeRaiseIrql(APC_LEVEL, &old);
    expect_no_bugcheck(ExAcquireFastMutexUnsafe(&m); ExReleaseFastMutexUnsafe(&m));
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    KeLowerIrql(old);
    /* Mixed pairs. */
    ExAcquireFastMutex(&m);
    expect_bugcheck_continue(0xC4, 0x1009, ExReleaseFastMutexUnsafe(&m));
    assert_params((uintptr_t)&m, 0, 0);
    assert_string_equal(last()->site.routine, "ExReleaseFastMutexUnsafe");
    assert_null(m.Owner);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL); /* the acquire's raise undone */
    KeRaiseIrql(APC_LEVEL, &old);
    ExAcquireFastMutexUnsafe(&m);
    expect_bugcheck_continue(0xC4, 0x1009, ExReleaseFastMutex(&m));
    assert_null(m.Owner);
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL); /* the unsafe acquire raised nothing */
    ExAcquireFastMutex(&m);                          /* at APC_LEVEL: the raise is none, and none is undone */
    expect_bugcheck_continue(0xC4, 0x1009, ExReleaseFastMutexUnsafe(&m));
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    KeLowerIrql(old);
    /* Above APC_LEVEL. */
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck_continue(0xC4, 0x33, ExAcquireFastMutexUnsafe(&m));
    assert_string_equal(last()->site.routine, "ExAcquireFastMutexUnsafe");
    expect_bugcheck_continue(0xC4, 0x34, ExReleaseFastMutexUnsafe(&m));
    assert_params(DISPATCH_LEVEL, 0, (uintptr_t)&m);
    assert_null(m.Owner);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(old);
    /* The real-named functions do the same. */
    expect_no_bugcheck(got = (ExTryToAcquireFastMutex)(&m); (ExReleaseFastMutex)(&m));
    assert_true(got);
    KeEnterCriticalRegion();
    expect_no_bugcheck((ExAcquireFastMutexUnsafe)(&m); (ExReleaseFastMutexUnsafe)(&m));
    KeLeaveCriticalRegion();
    assert_int_equal(locks_held(), 0);
}

/* More locks held at once than the thread names (32): the ones beyond are known by their lock words, and
 * releasing them in order is legal, fast mutexes and spin locks alike; one not held is still reported. */
static void test_locks_many_held(void **state)
{
    static FAST_MUTEX m[41]; /* m[40] is never acquired */
    static KSPIN_LOCK l[40];
    KIRQL old[40];
    (void)state;
    for (int i = 0; i < 41; i++)
        ExInitializeFastMutex(&m[i]);
    expect_no_bugcheck(for (int i = 0; i < 40; i++) ExAcquireFastMutex(&m[i]));
    assert_int_equal(locks_held(), 40);
    expect_bugcheck_continue(0xC4, 0x1007, ExReleaseFastMutex(&m[40]));
    expect_no_bugcheck(for (int i = 39; i >= 0; i--) ExReleaseFastMutex(&m[i]));
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(locks_held(), 0);
    for (int i = 0; i < 40; i++)
        assert_null(m[i].Owner);
    for (int i = 0; i < 40; i++)
        KeInitializeSpinLock(&l[i]);
    expect_no_bugcheck(for (int i = 0; i < 40; i++) KeAcquireSpinLock(&l[i], &old[i]);
                       for (int i = 39; i >= 0; i--) KeReleaseSpinLock(&l[i], old[i]));
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(locks_held(), 0);
}

/* ---- Critical regions ------------------------------------------------------------------------------- */

static void test_locks_critical_region(void **state)
{
    KIRQL old;
    (void)state;
    expect_no_bugcheck(KeEnterCriticalRegion(); KeEnterCriticalRegion());
    assert_int_equal(poolsim_thread_critical_regions(), 2);
    KeRaiseIrql(APC_LEVEL, &old);
    expect_no_bugcheck(KeLeaveCriticalRegion()); /* APC_LEVEL is allowed */
    KeLowerIrql(old);
    assert_int_equal(poolsim_thread_critical_regions(), 1);
    /* §5.3: C4/0x11A and 0x11B (IRQL, 0, 0) above APC_LEVEL; counted anyway. */
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    expect_bugcheck_continue(0xC4, 0x11B, KeLeaveCriticalRegion());
    assert_params(DISPATCH_LEVEL, 0, 0);
    assert_string_equal(last()->site.routine, "KeLeaveCriticalRegion");
    assert_int_equal(poolsim_thread_critical_regions(), 0);
    expect_bugcheck(0xC4, 0x11A, KeEnterCriticalRegion());
    assert_params(DISPATCH_LEVEL, 0, 0);
    assert_int_equal(poolsim_thread_critical_regions(), 0);
    KeLowerIrql(old);
    /* A thread that ends inside a critical region (at PASSIVE_LEVEL, holding nothing) has kernel APCs still
     * disabled: 0x1 APC_INDEX_MISMATCH (0, 0, the combined APC disable count: -2 in 16 bits, 0), the check
     * Windows makes when a thread returns to user mode. Left again, the thread is fine. */
    KeEnterCriticalRegion();
    KeEnterCriticalRegion();
    assert_false(poolsim_thread_passive_no_locks());
    expect_bugcheck_continue(0x01, 0, assert_false(poolsim_thread_check()));
    assert_params(0, 0xFFFE, 0);
    assert_true(last()->irql_history_count > 0);
    KeLeaveCriticalRegion();
    KeLeaveCriticalRegion();
    expect_no_bugcheck(assert_true(poolsim_thread_check()));
}

/* ---- They really lock ------------------------------------------------------------------------------- */

#define HAMMER 200000

typedef struct hammer {
    KSPIN_LOCK lock;
    FAST_MUTEX mutex;
    long counter;    /* plain: only the lock protects it */
    long mcounter;   /* the same under the mutex */
    long qcounter;   /* the same under the lock used queued (a second lock) */
    KSPIN_LOCK qlock;
    int bad;         /* a thread saw a wrong IRQL or ended holding a lock */
} hammer;

static void hammer_thread(void *arg)
{
    hammer *h = (hammer *)arg;
    for (int i = 0; i < HAMMER; i++) {
        KIRQL old;
        KLOCK_QUEUE_HANDLE q;
        KeAcquireSpinLock(&h->lock, &old);
        if (KeGetCurrentIrql() != DISPATCH_LEVEL)
            store_int(&h->bad, 1);
        h->counter++;
        KeReleaseSpinLock(&h->lock, old);
        KeAcquireInStackQueuedSpinLock(&h->qlock, &q);
        h->qcounter++;
        KeReleaseInStackQueuedSpinLock(&q);
        if (i % 16 == 0) {
            ExAcquireFastMutex(&h->mutex);
            h->mcounter++;
            ExReleaseFastMutex(&h->mutex);
        }
    }
    if (!poolsim_thread_passive_no_locks())
        store_int(&h->bad, 1);
}

static void test_locks_two_threads_hammer(void **state)
{
    static hammer h;
    thread a, b;
    (void)state;
    memset(&h, 0, sizeof h);
    KeInitializeSpinLock(&h.lock);
    KeInitializeSpinLock(&h.qlock);
    ExInitializeFastMutex(&h.mutex);
    thread_start(&a, hammer_thread, &h);
    thread_start(&b, hammer_thread, &h);
    thread_join(&a);
    thread_join(&b);
    assert_int_equal(h.counter, 2L * HAMMER);
    assert_int_equal(h.qcounter, 2L * HAMMER);
    assert_int_equal(h.mcounter, 2L * ((HAMMER + 15) / 16));
    assert_int_equal(h.bad, 0);
    assert_int_equal(h.lock, 4);
    assert_int_equal(h.qlock, 2);
    assert_null(h.mutex.Owner);
    assert_int_equal(poolsim_bugcheck_count(), 0);
}

typedef struct waiter {
    KSPIN_LOCK *lock;
    int got;
} waiter;

static void waiter_thread(void *arg)
{
    waiter *w = (waiter *)arg;
    KIRQL old;
    KeAcquireSpinLock(w->lock, &old);
    store_int(&w->got, 1);
    KeReleaseSpinLock(w->lock, old);
}

static void test_locks_waiter_blocks(void **state)
{
    KSPIN_LOCK lock;
    KIRQL old;
    waiter w;
    thread th;
    (void)state;
    KeInitializeSpinLock(&lock);
    w.lock = &lock;
    w.got = 0;
    KeAcquireSpinLock(&lock, &old);
    thread_start(&th, waiter_thread, &w);
    sleep_ms(100);
    assert_int_equal(load_int(&w.got), 0); /* it spins while the lock is held */
    KeReleaseSpinLock(&lock, old);
    thread_join(&th);
    assert_int_equal(load_int(&w.got), 1); /* and gets it once released */
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, poolsim_cmocka_setup, poolsim_cmocka_teardown)
    const struct CMUnitTest tests[] = {
        T(test_locks_spin_basic),
        T(test_locks_spin_nested),
        T(test_locks_at_dpc_level),
        T(test_locks_acquire_above_dispatch),
        T(test_locks_release_not_at_dispatch),
        T(test_locks_recursive_acquire),
        T(test_locks_release_not_held),
        T(test_locks_new_irql_mismatch),
        T(test_locks_release_to_higher_irql),
        T(test_locks_mismatched_release_routine),
        T(test_locks_queued),
        T(test_locks_queued_and_ordinary_mixed),
        T(test_locks_fast_mutex),
        T(test_locks_many_held),
        T(test_locks_fast_mutex_try_and_unsafe),
        T(test_locks_critical_region),
        T(test_locks_two_threads_hammer),
        T(test_locks_waiter_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
