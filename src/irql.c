/* SPDX-License-Identifier: MIT */
/*
 * irql.c — each thread's simulated IRQL, its last transitions, and the locks
 * that move it like the kernel: spin locks (ordinary and in-stack queued),
 * fast mutexes and critical regions (wdk-semantics.md §4, §1.1, §5.3).
 *
 * The fast path of every routine is the kernel's own work plus a history
 * store: the thread's block (prim.h) is read and written, a spin lock is one
 * compare-and-swap to take and one store to give back. Everything a rule
 * needs to check is in the thread's block or the lock word, so no global
 * state is touched; anything unusual (a wrong IRQL, a held or foreign lock,
 * contention) goes to a slow path that checks the rules in a fixed order,
 * reports at most one bug check per call (before changing any state, so a
 * handler may longjmp out), and when the handler returns does the safe thing
 * docs/semantics.md ("IRQL and locks") lists.
 *
 * A lock word (KSPIN_LOCK, a FAST_MUTEX's owner) holds the owning thread's
 * block address with bit 0 set while held, ReactOS's encoding (thread | 1).
 * A spin lock also remembers in bits 1-2 how it was last used, queued or
 * ordinary, so mixing the two is caught even when the lock is free: a freed
 * lock word is therefore 0, 2 or 4, not always 0 as in the kernel.
 */
#include "irql.h"

#define IRQL_APC PSIM_IRQL_APC
#define IRQL_DPC PSIM_IRQL_DISPATCH
#define IRQL_HIGH PSIM_IRQL_HIGH

/* Lock word bits. */
#define LW_HELD ((uintptr_t)1)
#define LW_QUEUED ((uintptr_t)2)   /* last used as an in-stack queued lock */
#define LW_ORDINARY ((uintptr_t)4) /* last used as an ordinary spin lock */
#define LW_KINDS (LW_QUEUED | LW_ORDINARY)
#define LW_OWNER (~(uintptr_t)15)

#define SPINS_BEFORE_YIELD 64u

/* The slow paths stay out of line, so the fast ones need no stack frame. */
#if defined(__GNUC__) || defined(__clang__)
#define SLOW __attribute__((noinline, cold))
#define PSIM_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define SLOW
#define PSIM_ALWAYS_INLINE inline
#endif

/* ---- Routine names and rule texts ------------------------------------------ */

static const char *const rt_names[POOLSIM_IRQL_RT_COUNT] = {
    [POOLSIM_IRQL_RT_SET_IRQL] = "poolsim_set_irql",
    [POOLSIM_IRQL_RT_RAISE_IRQL] = "KeRaiseIrql",
    [POOLSIM_IRQL_RT_LOWER_IRQL] = "KeLowerIrql",
    [POOLSIM_IRQL_RT_RAISE_TO_DPC] = "KeRaiseIrqlToDpcLevel",
    [POOLSIM_IRQL_RT_RAISE_TO_SYNCH] = "KeRaiseIrqlToSynchLevel",
    [POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK] = "KeAcquireSpinLock",
    [POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_RAISE] = "KeAcquireSpinLockRaiseToDpc",
    [POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK] = "KeReleaseSpinLock",
    [POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_AT_DPC] = "KeAcquireSpinLockAtDpcLevel",
    [POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK_FROM_DPC] = "KeReleaseSpinLockFromDpcLevel",
    [POOLSIM_IRQL_RT_ACQUIRE_QUEUED] = "KeAcquireInStackQueuedSpinLock",
    [POOLSIM_IRQL_RT_ACQUIRE_QUEUED_AT_DPC] = "KeAcquireInStackQueuedSpinLockAtDpcLevel",
    [POOLSIM_IRQL_RT_RELEASE_QUEUED] = "KeReleaseInStackQueuedSpinLock",
    [POOLSIM_IRQL_RT_RELEASE_QUEUED_FROM_DPC] = "KeReleaseInStackQueuedSpinLockFromDpcLevel",
    [POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX] = "ExAcquireFastMutex",
    [POOLSIM_IRQL_RT_RELEASE_FAST_MUTEX] = "ExReleaseFastMutex",
    [POOLSIM_IRQL_RT_ENTER_CRITICAL_REGION] = "KeEnterCriticalRegion",
    [POOLSIM_IRQL_RT_LEAVE_CRITICAL_REGION] = "KeLeaveCriticalRegion",
    [POOLSIM_IRQL_RT_THREAD_CHECK] = "poolsim_thread_check",
    [POOLSIM_IRQL_RT_TOUCH] = "poolsim_touch",
    [POOLSIM_IRQL_RT_ACCESS] = "memory access",
    [POOLSIM_IRQL_RT_TRY_FAST_MUTEX] = "ExTryToAcquireFastMutex",
    [POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX_UNSAFE] = "ExAcquireFastMutexUnsafe",
    [POOLSIM_IRQL_RT_RELEASE_FAST_MUTEX_UNSAFE] = "ExReleaseFastMutexUnsafe",
};
PSIM_STATIC_ASSERT(PSIM_COUNTOF(rt_names) == POOLSIM_IRQL_RT_COUNT, rt_names_complete);

const char *poolsim_irql_routine_name(poolsim_irql_routine rt)
{
    return (unsigned)rt < POOLSIM_IRQL_RT_COUNT && rt_names[rt] ? rt_names[rt] : "(unknown routine)";
}

/* Arg2 of the DDI compliance rule bug checks: "a pointer to the string that
 * describes the violated rule condition" (§1.1). Paraphrased from the rules'
 * pages. */
static const char rule_spin_lock[] =
    "SpinLock: acquires and releases of a spin lock must alternate (no second acquire by the holder, no "
    "release of a lock not held), and no spin lock may still be held when the routine returns";
static const char rule_queued[] =
    "QueuedSpinLock: a lock is used only through the in-stack queued routines or only through the ordinary "
    "ones, and is not acquired again before it is released";
static const char rule_queued_release[] =
    "QueuedSpinLockRelease: KeAcquireInStackQueuedSpinLock and KeReleaseInStackQueuedSpinLock must "
    "alternate, "
    "and no queued spin lock may still be held when the routine returns";
static const char rule_irql_release[] =
    "IrqlKeReleaseSpinLock: KeReleaseSpinLock runs at DISPATCH_LEVEL and restores exactly the IRQL the "
    "matching KeAcquireSpinLock returned";

/* ---- Options of the running instance ------------------------------------- */

static bool retail(void)
{
    psim *ps = poolsim__g;
    return ps && ps->opt.family == POOLSIM_FAMILY_RETAIL;
}

uint8_t poolsim_synch_level(void)
{
    psim *ps = poolsim__g;
    return (uint8_t)(ps ? ps->opt.synch_level : POOLSIM_DEFAULT_SYNCH_LEVEL);
}

#ifdef POOLSIM__THREAD_TLS
uint32_t poolsim__irql_watch;
#endif

/* ---- History and IRQL changes ----------------------------------------------- */

static inline void hist_put(psim_thread *t, unsigned kind, unsigned from, unsigned to,
                            poolsim_irql_routine rt, const void *obj, const char *file, int line)
{
    poolsim__irql_record(&t->h, kind, from, to, (unsigned)rt, obj, file, line);
}
PSIM_STATIC_ASSERT(offsetof(poolsim_irql_event, routine) == offsetof(poolsim_irql_event, line) + 7 &&
                       offsetof(poolsim_irql_event, kind) == offsetof(poolsim_irql_event, line) + 4,
                   event_tail_layout);

/* Moves the thread's IRQL; Force IRQL checking follows the crossings of
 * DISPATCH_LEVEL (§5.3) when the option is on. */
static inline void irql_move(psim_thread *t, unsigned from, unsigned to)
{
    t->h.irql = (uint8_t)to;
    if (PSIM_UNLIKELY((from >= IRQL_DPC) != (to >= IRQL_DPC))) {
        psim *ps = poolsim__g;
        if (to >= IRQL_DPC) {
            if (ps && ps->opt.force_irql)
                poolsim__fi_up(t);
        } else if (t->h.fi_counted) {
            poolsim__fi_down(t);
        }
    }
}

/* Lowers to `to` when that is a lower (or the same) IRQL: the safe end of a
 * release whose IRQL argument may be wrong. */
static void irql_restore(psim_thread *t, unsigned to)
{
    if (to <= t->h.irql)
        irql_move(t, t->h.irql, to);
}

/* Raises a bug check at a routine's call site; the thread's history goes
 * with it (poolsim__bc_deliver). Returns when the handler returns. */
static SLOW void report_at(const char *routine, const char *file, int line, unsigned long code, uintptr_t p1,
                           uintptr_t p2, uintptr_t p3, uintptr_t p4)
{
    poolsim_bugcheck bc;
    poolsim__bc_make(&bc, code, p1, p2, p3, p4);
    bc.site.file = file;
    bc.site.line = line;
    bc.site.routine = routine;
    poolsim__bc_deliver(poolsim__g, &bc);
}

static SLOW void report(poolsim_irql_routine rt, const char *file, int line, unsigned long code, uintptr_t p1,
                        uintptr_t p2, uintptr_t p3, uintptr_t p4)
{
    report_at(poolsim_irql_routine_name(rt), file, line, code, p1, p2, p3, p4);
}

/* A NULL lock, fast mutex or lock handle (docs/bad-input.md §8): the kernel's routine would write to (near)
 * address 0 at `irql`, the IRQL at which it touches the object. At DISPATCH_LEVEL or above that is 0xD1
 * (0, IRQL, 1 write, 0: poolsim has no code address), below it an unhandled access violation, 0x1E
 * (STATUS_ACCESS_VIOLATION, 0, 1 write, 0). Checked before every other rule; when the handler returns the
 * call does nothing. */
SLOW void poolsim__irql_null(const char *routine, unsigned irql, const char *file, int line)
{
    if (irql >= IRQL_DPC)
        report_at(routine, file, line, 0xD1, 0, irql, 1, 0);
    else
        report_at(routine, file, line, 0x1E, 0xC0000005u, 0, 1, 0);
}

/* §4.2: a raise to a lower level, or past HIGH_LEVEL. The IRQL stays. */
static SLOW void bad_raise(poolsim_irql_routine rt, const char *file, int line, unsigned cur,
                           unsigned requested)
{
    if (retail())
        report(rt, file, line, 0x09, cur, requested, 0, 0);
    else
        report(rt, file, line, 0xC4, 0x30, cur, requested, 0);
}

/* §4.2: a lower to a higher level, or past HIGH_LEVEL. The IRQL stays; Arg4 0: poolsim runs no DPCs. */
static SLOW void bad_lower(poolsim_irql_routine rt, const char *file, int line, unsigned cur,
                           unsigned requested)
{
    if (retail())
        report(rt, file, line, 0x0A, cur, requested, 0, 0);
    else
        report(rt, file, line, 0xC4, 0x31, cur, requested, 0);
}

uint8_t poolsim_irql(void) { return poolsim__prim_irql_get(); }

void poolsim_set_irql(uint8_t irql)
{
    psim_thread *t = poolsim__thread();
    if (!t) {
        poolsim__prim_irql_set(irql);
        return;
    }
    hist_put(t, POOLSIM_IRQL_EV_SET, t->h.irql, irql, POOLSIM_IRQL_RT_SET_IRQL, NULL, NULL, 0);
    irql_move(t, t->h.irql, irql);
}

uint8_t poolsim_irql_raise(uint8_t new_irql, poolsim_irql_routine rt, const char *file, int line)
{
    psim_thread *t = poolsim__thread();
    if (rt == POOLSIM_IRQL_RT_RAISE_TO_DPC)
        new_irql = IRQL_DPC;
    else if (rt == POOLSIM_IRQL_RT_RAISE_TO_SYNCH)
        new_irql = poolsim_synch_level();
    else
        rt = POOLSIM_IRQL_RT_RAISE_IRQL;
    if (!t) {
        uint8_t cur = poolsim__prim_irql_get();
        poolsim__prim_irql_set(new_irql);
        return cur;
    }
    uint8_t cur = t->h.irql;
    if (PSIM_UNLIKELY(new_irql < cur || new_irql > IRQL_HIGH)) {
        bad_raise(rt, file, line, cur, new_irql);
        return cur;
    }
    hist_put(t, POOLSIM_IRQL_EV_RAISE, cur, new_irql, rt, NULL, file, line);
    irql_move(t, cur, new_irql);
    return cur;
}

void poolsim_irql_lower(uint8_t new_irql, const char *file, int line)
{
    psim_thread *t = poolsim__thread();
    const poolsim_irql_routine rt = POOLSIM_IRQL_RT_LOWER_IRQL;
    if (!t) {
        poolsim__prim_irql_set(new_irql);
        return;
    }
    uint8_t cur = t->h.irql;
    if (PSIM_UNLIKELY(new_irql > cur || new_irql > IRQL_HIGH)) {
        bad_lower(rt, file, line, cur, new_irql);
        return;
    }
    hist_put(t, POOLSIM_IRQL_EV_LOWER, cur, new_irql, rt, NULL, file, line);
    irql_move(t, cur, new_irql);
}

/* ---- Held locks ------------------------------------------------------------- */

/* The newest entry for obj, or -1. */
static int held_find(const psim_thread *t, const void *obj)
{
    for (int i = (int)t->nheld - 1; i >= 0; i--)
        if (t->held[i].obj == obj)
            return i;
    return -1;
}

static inline void held_push(psim_thread *t, const void *obj, unsigned kind, poolsim_irql_routine rt,
                             unsigned old_irql, const char *file, int line)
{
    t->nlocks++;
    if (PSIM_UNLIKELY(t->nheld >= PSIM_HELD_MAX))
        return; /* held, but nameless: its release finds it by its lock word */
    psim_held *h = &t->held[t->nheld++];
    h->obj = obj;
    h->file = file;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t tail = (uint64_t)(uint32_t)line | (uint64_t)((unsigned)rt & 0xFFu) << 32 |
                    (uint64_t)(old_irql & 0xFFu) << 40 | (uint64_t)(kind & 0xFFu) << 48; /* nest 0 */
    psim_memcpy(&h->line, &tail, sizeof tail);
#else
    h->line = line;
    h->routine = (uint8_t)rt;
    h->old_irql = (uint8_t)old_irql;
    h->kind = (uint8_t)kind;
    h->nest = 0;
#endif
}
PSIM_STATIC_ASSERT(offsetof(psim_held, routine) == offsetof(psim_held, line) + 4 &&
                       offsetof(psim_held, nest) == offsetof(psim_held, line) + 7,
                   held_tail_layout);

static inline void held_drop(psim_thread *t, int i)
{
    if (t->nlocks)
        t->nlocks--;
    if (i < 0)
        return;
    if (PSIM_UNLIKELY((unsigned)i + 1 < t->nheld))
        for (unsigned k = (unsigned)i; k + 1 < t->nheld; k++)
            t->held[k] = t->held[k + 1];
    t->nheld--;
}

/* wdm.c: an in-stack queued handle released while it holds nothing (released already, or the handle of an
 * earlier acquire while another handle holds the lock): §4.3, a handle's acquire and release alternate.
 * C4/0x40007 QueuedSpinLockRelease (rule, lock, 0); retail 0x10 SPIN_LOCK_NOT_OWNED (lock, 0, 0, 0), as for a
 * lock released while not held. */
SLOW void poolsim__queued_stale_release(const void *lock, poolsim_irql_routine rt, const char *file, int line)
{
    if (retail())
        report(rt, file, line, 0x10, (uintptr_t)lock, 0, 0, 0);
    else
        report(rt, file, line, 0xC4, 0x40007, (uintptr_t)rule_queued_release, (uintptr_t)lock, 0);
}

/* wdm.c: -1 when the calling thread does not hold lock as an in-stack queued lock, else the reported
 * recursive acquires of it not yet released. */
int poolsim__queued_nest(const void *lock)
{
    psim_thread *t = poolsim__thread();
    int i = t ? held_find(t, lock) : -1;
    return i >= 0 && t->held[i].kind == PSIM_LK_QUEUED ? t->held[i].nest : -1;
}

/* ---- Spin locks (§4.3) --------------------------------------------------------- */

/* What each spin-lock routine is, in one load. */
#define RF_ACQUIRE 0x1u
#define RF_RELEASE 0x2u
#define RF_QUEUED 0x4u
#define RF_AT_DPC 0x8u /* the AtDpcLevel / FromDpcLevel forms */
static const uint8_t rt_flags[POOLSIM_IRQL_RT_COUNT] = {
    [POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK] = RF_ACQUIRE,
    [POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_RAISE] = RF_ACQUIRE,
    [POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK] = RF_RELEASE,
    [POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_AT_DPC] = RF_ACQUIRE | RF_AT_DPC,
    [POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK_FROM_DPC] = RF_RELEASE | RF_AT_DPC,
    [POOLSIM_IRQL_RT_ACQUIRE_QUEUED] = RF_ACQUIRE | RF_QUEUED,
    [POOLSIM_IRQL_RT_ACQUIRE_QUEUED_AT_DPC] = RF_ACQUIRE | RF_QUEUED | RF_AT_DPC,
    [POOLSIM_IRQL_RT_RELEASE_QUEUED] = RF_RELEASE | RF_QUEUED,
    [POOLSIM_IRQL_RT_RELEASE_QUEUED_FROM_DPC] = RF_RELEASE | RF_QUEUED | RF_AT_DPC,
};

static unsigned rt_flags_of(poolsim_irql_routine rt)
{
    return (unsigned)rt < POOLSIM_IRQL_RT_COUNT ? rt_flags[rt] : 0u;
}
static bool rt_queued(poolsim_irql_routine rt) { return (rt_flags_of(rt) & RF_QUEUED) != 0; }
static bool rt_at_dpc(poolsim_irql_routine rt) { return (rt_flags_of(rt) & RF_AT_DPC) != 0; }

/* The held lock is the thread's now: record it and move the IRQL. */
static uint8_t spin_acquired(psim_thread *t, uintptr_t *lock, poolsim_irql_routine rt, const char *file,
                             int line)
{
    unsigned cur = t->h.irql;
    unsigned to = rt_at_dpc(rt) || cur > IRQL_DPC ? cur : IRQL_DPC;
    held_push(t, lock, rt_queued(rt) ? PSIM_LK_QUEUED : PSIM_LK_SPIN, rt, cur, file, line);
    hist_put(t, POOLSIM_IRQL_EV_ACQUIRE, cur, to, rt, lock, file, line);
    irql_move(t, cur, to);
    return (uint8_t)cur;
}

static SLOW uint8_t spin_acquire_slow(psim_thread *t, uintptr_t *lock, poolsim_irql_routine rt,
                                      const char *file, int line)
{
    const bool queued = rt_queued(rt), at_dpc = rt_at_dpc(rt);
    const uintptr_t me = (uintptr_t)t, kind = queued ? LW_QUEUED : LW_ORDINARY;
    unsigned cur = t->h.irql;
    bool reported = false;

    if (!at_dpc && cur > IRQL_DPC) {
        /* §4.3: C4/0x42; retail: the raise to DISPATCH_LEVEL from above it (0x9, §4.2). */
        if (retail())
            report(rt, file, line, 0x09, cur, IRQL_DPC, 0, 0);
        else
            report(rt, file, line, 0xC4, 0x42, cur, (uintptr_t)lock, 0);
        reported = true;
    } else if (at_dpc && cur < IRQL_DPC) {
        report(rt, file, line, 0xC4, 0x40, cur, (uintptr_t)lock, 0); /* §4.3 */
        reported = true;
    }
    uintptr_t w = psim_word_load(lock);
    if ((w & LW_HELD) && (w & LW_OWNER) == me) {
        /* §4.3: a recursive acquire deadlocks the processor; checked builds raise 0xF (ReactOS passes the
         * lock), the DDI rules SpinLock / QueuedSpinLock flag it. Safe: the lock stays the thread's, and
         * the release matching this acquire only undoes the nesting. */
        if (!reported) {
            if (retail())
                report(rt, file, line, 0x0F, (uintptr_t)lock, 0, 0, 0);
            else if (queued)
                report(rt, file, line, 0xC4, 0x40006, (uintptr_t)rule_queued, (uintptr_t)lock, 0);
            else
                report(rt, file, line, 0xC4, 0x40009, (uintptr_t)rule_spin_lock, (uintptr_t)lock, 0);
        }
        int i = held_find(t, lock);
        if (i >= 0 && t->held[i].nest < 255)
            t->held[i].nest++;
        unsigned to = at_dpc || cur > IRQL_DPC ? cur : IRQL_DPC;
        hist_put(t, POOLSIM_IRQL_EV_ACQUIRE, cur, to, rt, lock, file, line);
        irql_move(t, cur, to);
        return (uint8_t)cur;
    }
    if ((w & LW_KINDS & ~kind) && !reported) {
        /* §4.3: one lock, used both queued and ordinary (DDI rule QueuedSpinLock). Safe: take it. */
        report(rt, file, line, 0xC4, 0x40006, (uintptr_t)rule_queued, (uintptr_t)lock, 0);
    }
    /* Contention: spin with a pause, yield now and then, until the word is free. */
    for (unsigned spins = 0;; spins++) {
        w = psim_word_load(lock);
        if (!(w & LW_HELD)) {
            if (psim_word_cas(lock, &w, me | LW_HELD | kind))
                break;
            continue;
        }
        if (spins % SPINS_BEFORE_YIELD == SPINS_BEFORE_YIELD - 1)
            poolsim__prim_yield();
        else
            psim_cpu_pause();
    }
    return spin_acquired(t, lock, rt, file, line);
}

/* The fast path of one acquire routine; rt is a constant in each caller, so the
 * routine's flags fold away. Free, last used the same way, at an IRQL the
 * routine accepts: one compare-and-swap, then the bookkeeping. */
static PSIM_ALWAYS_INLINE uint8_t spin_acquire_fast(psim_thread *t, uintptr_t *lock, poolsim_irql_routine rt,
                                                    const char *file, int line)
{
    const unsigned f = rt_flags[rt];
    const uintptr_t kind = (f & RF_QUEUED) ? LW_QUEUED : LW_ORDINARY;
    const unsigned cur = t->h.irql;
    uintptr_t w = psim_word_load(lock);
    if (PSIM_LIKELY(!(w & (LW_HELD | (LW_KINDS & ~kind))) &&
                    ((f & RF_AT_DPC) ? cur >= IRQL_DPC : cur <= IRQL_DPC) && t->nheld < PSIM_HELD_MAX &&
                    psim_word_cas(lock, &w, (uintptr_t)t | LW_HELD | kind))) {
        unsigned to = (f & RF_AT_DPC) ? cur : IRQL_DPC;
        held_push(t, lock, (f & RF_QUEUED) ? PSIM_LK_QUEUED : PSIM_LK_SPIN, rt, cur, file, line);
        hist_put(t, POOLSIM_IRQL_EV_ACQUIRE, cur, to, rt, lock, file, line);
        irql_move(t, cur, to);
        return (uint8_t)cur;
    }
    return spin_acquire_slow(t, lock, rt, file, line);
}

/* A NULL lock: the acquire forms touch it after their raise to DISPATCH_LEVEL, the AtDpcLevel forms and the
 * releases at the current IRQL. Nothing changes; an acquire returns the current IRQL. */
static SLOW uint8_t spin_null(psim_thread *t, poolsim_irql_routine rt, const char *file, int line)
{
    unsigned f = rt_flags_of(rt);
    unsigned at = (f & RF_RELEASE) || (f & RF_AT_DPC) || t->h.irql > IRQL_DPC ? t->h.irql : IRQL_DPC;
    poolsim__irql_null(poolsim_irql_routine_name(rt), at, file, line);
    return t->h.irql;
}

uint8_t poolsim_spin_acquire(uintptr_t *lock, poolsim_irql_routine rt, const char *file, int line)
{
    psim_thread *t = poolsim__thread();
    if (!t) /* no per-thread state (the kernel): nothing to simulate */
        return poolsim__prim_irql_get();
    if (PSIM_UNLIKELY(!lock))
        return spin_null(t, rt_flags_of(rt) & RF_ACQUIRE ? rt : POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK, file,
                         line);
    switch (rt) {
    case POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_RAISE:
        return spin_acquire_fast(t, lock, POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_RAISE, file, line);
    case POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_AT_DPC:
        return spin_acquire_fast(t, lock, POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_AT_DPC, file, line);
    case POOLSIM_IRQL_RT_ACQUIRE_QUEUED:
        return spin_acquire_fast(t, lock, POOLSIM_IRQL_RT_ACQUIRE_QUEUED, file, line);
    case POOLSIM_IRQL_RT_ACQUIRE_QUEUED_AT_DPC:
        return spin_acquire_fast(t, lock, POOLSIM_IRQL_RT_ACQUIRE_QUEUED_AT_DPC, file, line);
    default:
        return spin_acquire_fast(t, lock, POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK, file, line);
    }
}

static SLOW void spin_release_slow(psim_thread *t, uintptr_t *lock, uint8_t new_irql, poolsim_irql_routine rt,
                                   const char *file, int line, int i);

/* The fast path of one release routine (rt a constant, as above): the
 * thread's own lock, released the way it was taken, at the right IRQL. */
static PSIM_ALWAYS_INLINE void spin_release_fast(psim_thread *t, uintptr_t *lock, uint8_t new_irql,
                                                 poolsim_irql_routine rt, const char *file, int line)
{
    const unsigned f = rt_flags[rt];
    const bool queued = (f & RF_QUEUED) != 0, from_dpc = (f & RF_AT_DPC) != 0;
    const unsigned cur = t->h.irql;
    /* The newest entry first: locks are mostly released in reverse order. */
    int i = t->nheld && t->held[t->nheld - 1].obj == lock ? (int)t->nheld - 1 : held_find(t, lock);
    if (PSIM_LIKELY(i >= 0)) {
        const psim_held *h = &t->held[i];
        if (PSIM_LIKELY(!h->nest && h->kind == (queued ? PSIM_LK_QUEUED : PSIM_LK_SPIN) &&
                        (from_dpc
                             ? cur >= IRQL_DPC && (rt_flags[h->routine] & RF_AT_DPC)
                             : cur == IRQL_DPC && (queued || new_irql == h->old_irql) && new_irql <= cur))) {
            unsigned to = from_dpc ? cur : new_irql;
            psim_word_release(lock, queued ? LW_QUEUED : LW_ORDINARY);
            held_drop(t, i);
            hist_put(t, POOLSIM_IRQL_EV_RELEASE, cur, to, rt, lock, file, line);
            irql_move(t, cur, to);
            return;
        }
    }
    spin_release_slow(t, lock, new_irql, rt, file, line, i);
}

void poolsim_spin_release(uintptr_t *lock, uint8_t new_irql, poolsim_irql_routine rt, const char *file,
                          int line)
{
    psim_thread *t = poolsim__thread();
    if (!t)
        return;
    if (PSIM_UNLIKELY(!lock)) {
        (void)spin_null(t, rt_flags_of(rt) & RF_RELEASE ? rt : POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK, file, line);
        return;
    }
    switch (rt) {
    case POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK_FROM_DPC:
        spin_release_fast(t, lock, new_irql, POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK_FROM_DPC, file, line);
        break;
    case POOLSIM_IRQL_RT_RELEASE_QUEUED:
        spin_release_fast(t, lock, new_irql, POOLSIM_IRQL_RT_RELEASE_QUEUED, file, line);
        break;
    case POOLSIM_IRQL_RT_RELEASE_QUEUED_FROM_DPC:
        spin_release_fast(t, lock, new_irql, POOLSIM_IRQL_RT_RELEASE_QUEUED_FROM_DPC, file, line);
        break;
    default:
        spin_release_fast(t, lock, new_irql, POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK, file, line);
        break;
    }
}

/* Everything but the fast path: i is the held[] entry of the lock, or -1. */
static SLOW void spin_release_slow(psim_thread *t, uintptr_t *lock, uint8_t new_irql, poolsim_irql_routine rt,
                                   const char *file, int line, int i)
{
    const bool queued = rt_queued(rt), from_dpc = rt_at_dpc(rt);
    const unsigned cur = t->h.irql;
    psim_held *h = i >= 0 ? &t->held[i] : NULL;

    /* Slow path: is it this thread's at all? An entry says so; beyond held[]
     * (more than PSIM_HELD_MAX locks) the lock word does. */
    bool mine = h != NULL;
    if (!mine && t->nlocks > t->nheld) {
        uintptr_t w = psim_word_load(lock);
        mine = (w & LW_HELD) && (w & LW_OWNER) == (uintptr_t)t;
    }
    unsigned restore = from_dpc ? cur : new_irql; /* where the IRQL goes afterwards */
    bool reported = false;
    if (!from_dpc && cur != IRQL_DPC) {
        /* §4.3: KeReleaseSpinLock not at DISPATCH_LEVEL, "possibly a double release" (0x32). */
        report(rt, file, line, 0xC4, 0x32, cur, (uintptr_t)lock, 0);
        reported = true;
    } else if (from_dpc && cur < IRQL_DPC) {
        report(rt, file, line, 0xC4, 0x41, cur, (uintptr_t)lock, 0); /* §4.3 */
        reported = true;
    }
    if (!mine) {
        /* Released without being held by this thread. Safe: the word is not
         * touched (it may be another thread's); the IRQL goes where the
         * caller asked if that is a lower one. */
        if (!reported) {
            if (retail())
                report(rt, file, line, 0x10, (uintptr_t)lock, 0, 0, 0);
            else if (queued)
                report(rt, file, line, 0xC4, 0x40007, (uintptr_t)rule_queued_release, (uintptr_t)lock, 0);
            else
                report(rt, file, line, 0xC4, 0x40009, (uintptr_t)rule_spin_lock, (uintptr_t)lock, 0);
        }
        hist_put(t, POOLSIM_IRQL_EV_RELEASE, cur, restore <= cur ? restore : cur, rt, lock, file, line);
        irql_restore(t, restore);
        return;
    }
    if (h && h->nest) {
        /* The release of a recursive acquire that was reported: undo the nesting only. */
        h->nest--;
        hist_put(t, POOLSIM_IRQL_EV_RELEASE, cur, restore <= cur ? restore : cur, rt, lock, file, line);
        irql_restore(t, restore);
        return;
    }
    if (h && !reported && h->kind != (queued ? PSIM_LK_QUEUED : PSIM_LK_SPIN)) {
        /* Taken queued, released ordinary, or the reverse (DDI rule QueuedSpinLock). */
        report(rt, file, line, 0xC4, 0x40006, (uintptr_t)rule_queued, (uintptr_t)lock, 0);
        reported = true;
    }
    if (h && !reported && from_dpc && !rt_at_dpc((poolsim_irql_routine)h->routine)) {
        /* §4.3: taken with KeAcquireSpinLock, released FromDpcLevel: the IRQL is never restored (C4/0x1009,
         * "a release through an API mismatched for this lock"). Safe: restore what the acquire saved. */
        report(rt, file, line, 0xC4, 0x1009, (uintptr_t)lock, 0, 0);
        reported = true;
        restore = h->old_irql;
    }
    if (h && !from_dpc && !queued && new_irql != h->old_irql) {
        /* §4.3: NewIrql is not the acquire's OldIrql (DDI rule IrqlKeReleaseSpinLock). Safe: restore the
         * acquire's OldIrql. */
        if (!reported)
            report(rt, file, line, 0xC4, 0x20015, (uintptr_t)rule_irql_release, (uintptr_t)lock, 0);
        reported = true;
        restore = h->old_irql;
    }
    if (h && !from_dpc && !reported && restore > cur) {
        /* §4.2: the release lowers to NewIrql, which is above the current IRQL (the acquire was above
         * DISPATCH_LEVEL, reported, and the caller lowered since): a bad lower. The IRQL stays. */
        bad_lower(rt, file, line, cur, restore);
    }
    psim_word_release(lock, psim_word_load(lock) & LW_KINDS);
    held_drop(t, i);
    hist_put(t, POOLSIM_IRQL_EV_RELEASE, cur, restore <= cur ? restore : cur, rt, lock, file, line);
    irql_restore(t, restore);
}

/* ---- Fast mutexes -------------------------------------------------------------------- */

uint8_t poolsim__fast_mutex_acquire(const void *mutex, void **owner, poolsim_irql_routine rt,
                                    const char *file, int line)
{
    if (rt != POOLSIM_IRQL_RT_TRY_FAST_MUTEX && rt != POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX_UNSAFE)
        rt = POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX;
    const bool try_only = rt == POOLSIM_IRQL_RT_TRY_FAST_MUTEX,
               unsafe = rt == POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX_UNSAFE;
    psim_thread *t = poolsim__thread();
    if (!t)
        return poolsim__prim_irql_get();
    if (PSIM_UNLIKELY(!mutex || !owner)) { /* touched after the raise to APC_LEVEL */
        poolsim__irql_null(poolsim_irql_routine_name(rt), t->h.irql > IRQL_APC ? t->h.irql : IRQL_APC, file,
                           line);
        return POOLSIM_NOT_ACQUIRED;
    }
    void *me = (void *)((uintptr_t)t | LW_HELD);
    unsigned cur = t->h.irql;
    void *expected = NULL;
    if (PSIM_UNLIKELY(cur > IRQL_APC || !psim_ptr_cas(owner, &expected, me))) {
        bool reported = false;
        if (cur > IRQL_APC) {
            report(rt, file, line, 0xC4, 0x33, cur, (uintptr_t)mutex, 0); /* §1.1 */
            reported = true;
        }
        if (try_only) {
            /* No wait and no report when anyone has it, the caller included: FALSE. */
            expected = NULL;
            if (psim_ptr_load(owner) != NULL || !psim_ptr_cas(owner, &expected, me))
                return POOLSIM_NOT_ACQUIRED;
        } else if (psim_ptr_load(owner) == me) {
            /* A fast mutex is not recursive: the owner would wait forever. Driver Verifier's Deadlock
             * Detection reports a self-deadlock (C4/0x1000). Safe: no wait; the matching release only
             * undoes the nesting. */
            if (!reported)
                report(rt, file, line, 0xC4, 0x1000, (uintptr_t)mutex, 0, 0);
            int i = held_find(t, mutex);
            if (i >= 0 && t->held[i].nest < 255)
                t->held[i].nest++;
            hist_put(t, POOLSIM_IRQL_EV_ACQUIRE, cur, cur, rt, mutex, file, line);
            return POOLSIM_NOT_ACQUIRED;
        } else {
            for (unsigned spins = 0;; spins++) {
                expected = NULL;
                if (psim_ptr_load(owner) == NULL && psim_ptr_cas(owner, &expected, me))
                    break;
                /* A fast mutex waiter sleeps in the kernel: yield often. */
                if (spins % 8u == 7u)
                    poolsim__prim_yield();
                else
                    psim_cpu_pause();
            }
        }
    }
    unsigned to = cur > IRQL_APC || unsafe ? cur : IRQL_APC; /* the unsafe acquire does not raise */
    held_push(t, mutex, PSIM_LK_MUTEX, rt, cur, file, line);
    hist_put(t, POOLSIM_IRQL_EV_ACQUIRE, cur, to, rt, mutex, file, line);
    irql_move(t, cur, to);
    return (uint8_t)cur;
}

void poolsim__fast_mutex_release(const void *mutex, void **owner, uint8_t old_irql, poolsim_irql_routine rt,
                                 const char *file, int line)
{
    if (rt != POOLSIM_IRQL_RT_RELEASE_FAST_MUTEX_UNSAFE)
        rt = POOLSIM_IRQL_RT_RELEASE_FAST_MUTEX;
    const bool unsafe = rt == POOLSIM_IRQL_RT_RELEASE_FAST_MUTEX_UNSAFE;
    psim_thread *t = poolsim__thread();
    if (!t)
        return;
    if (PSIM_UNLIKELY(!mutex || !owner)) {
        poolsim__irql_null(poolsim_irql_routine_name(rt), t->h.irql, file, line);
        return;
    }
    unsigned cur = t->h.irql;
    int i = held_find(t, mutex);
    psim_held *h = i >= 0 && t->held[i].kind == PSIM_LK_MUTEX ? &t->held[i] : NULL;
    if (PSIM_LIKELY(h && !h->nest && cur == IRQL_APC && !unsafe &&
                    h->routine != POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX_UNSAFE)) {
        psim_ptr_release(owner, NULL);
        held_drop(t, i);
        hist_put(t, POOLSIM_IRQL_EV_RELEASE, cur, old_irql <= cur ? old_irql : cur, rt, mutex, file, line);
        irql_restore(t, old_irql);
        return;
    }
    bool reported = false;
    if (unsafe ? cur > IRQL_APC : cur != IRQL_APC) {
        /* §1.1: P3 is the thread's APC-disable count: poolsim counts critical regions. */
        report(rt, file, line, 0xC4, 0x34, cur, t->critical, (uintptr_t)mutex);
        reported = true;
    }
    /* The IRQL the release goes back to: the one the acquire found, unless the acquire did not raise (the
     * unsafe pair). */
    bool raised = h ? h->routine != POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX_UNSAFE : !unsafe;
    unsigned back = h ? h->old_irql : old_irql;
    unsigned to = raised && back <= cur ? back : cur;
    if (!h && t->nlocks > t->nheld && psim_ptr_load(owner) == (void *)((uintptr_t)t | LW_HELD)) {
        /* Beyond held[] (more than PSIM_HELD_MAX locks held): the owner word says it is this thread's. */
        hist_put(t, POOLSIM_IRQL_EV_RELEASE, cur, to, rt, mutex, file, line);
        psim_ptr_release(owner, NULL);
        held_drop(t, -1);
        irql_restore(t, to);
        return;
    }
    if (!h) {
        /* Not this thread's: another thread owns it (C4/0x1004, Deadlock Detection's "unexpected thread":
         * P3 and P4 are the owner's and the caller's thread blocks) or nobody does (0x1007, "unacquired
         * resource"). Safe: neither the owner word nor the IRQL changes. */
        uintptr_t o = (uintptr_t)psim_ptr_load(owner);
        if (!reported) {
            if (o & LW_HELD)
                report(rt, file, line, 0xC4, 0x1004, (uintptr_t)mutex, o & LW_OWNER, (uintptr_t)t);
            else
                report(rt, file, line, 0xC4, 0x1007, (uintptr_t)mutex, 0, 0);
        }
        hist_put(t, POOLSIM_IRQL_EV_RELEASE, cur, cur, rt, mutex, file, line);
        return;
    }
    if (h->nest) {
        /* The release of a reported recursive acquire: the IRQL stays, and the history says so. */
        hist_put(t, POOLSIM_IRQL_EV_RELEASE, cur, cur, rt, mutex, file, line);
        h->nest--;
        return;
    }
    if (!reported && raised == unsafe) {
        /* ExAcquireFastMutex released by ExReleaseFastMutexUnsafe, or the reverse (the WDK pairs them):
         * C4/0x1009, "released by an API mismatched for this lock", as for spin locks. Safe: released, and
         * the IRQL goes back as the acquire needs. */
        report(rt, file, line, 0xC4, 0x1009, (uintptr_t)mutex, 0, 0);
    }
    hist_put(t, POOLSIM_IRQL_EV_RELEASE, cur, to, rt, mutex, file, line);
    psim_ptr_release(owner, NULL);
    held_drop(t, i);
    irql_restore(t, to);
}

uint8_t poolsim_fast_mutex_acquire(const void *mutex, void **owner, const char *file, int line)
{
    return poolsim__fast_mutex_acquire(mutex, owner, POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX, file, line);
}

void poolsim_fast_mutex_release(const void *mutex, void **owner, uint8_t old_irql, const char *file, int line)
{
    poolsim__fast_mutex_release(mutex, owner, old_irql, POOLSIM_IRQL_RT_RELEASE_FAST_MUTEX, file, line);
}

/* ---- Critical regions ------------------------------------------------------------------ */

void poolsim_critical_region(bool enter, const char *file, int line)
{
    psim_thread *t = poolsim__thread();
    poolsim_irql_routine rt =
        enter ? POOLSIM_IRQL_RT_ENTER_CRITICAL_REGION : POOLSIM_IRQL_RT_LEAVE_CRITICAL_REGION;
    if (!t)
        return;
    if (t->h.irql > IRQL_APC) /* §5.3: C4/0x11A, 0x11B. Safe: count it anyway. */
        report(rt, file, line, 0xC4, enter ? 0x11A : 0x11B, t->h.irql, 0, 0);
    if (enter)
        t->critical++;
    else if (t->critical)
        t->critical--;
}

/* ---- The thread's state ----------------------------------------------------------------- */

bool poolsim_thread_passive_no_locks(void)
{
    psim_thread *t = poolsim__thread();
    return t ? t->h.irql == PSIM_IRQL_PASSIVE && t->nlocks == 0 && t->critical == 0
             : poolsim__prim_irql_get() == PSIM_IRQL_PASSIVE;
}

bool poolsim_thread_check(void)
{
    const poolsim_irql_routine rt = POOLSIM_IRQL_RT_THREAD_CHECK;
    psim_thread *t = poolsim__thread();
    if (poolsim_thread_passive_no_locks())
        return true;
    const psim_held *spin = NULL;
    for (unsigned i = t ? t->nheld : 0; i-- > 0;)
        if (t->held[i].kind != PSIM_LK_MUTEX) {
            spin = &t->held[i];
            break;
        }
    if (spin && !retail()) {
        if (spin->kind == PSIM_LK_QUEUED)
            report(rt, NULL, 0, 0xC4, 0x40007, (uintptr_t)rule_queued_release, (uintptr_t)spin->obj, 0);
        else
            report(rt, NULL, 0, 0xC4, 0x40009, (uintptr_t)rule_spin_lock, (uintptr_t)spin->obj, 0);
    } else if (t && t->h.irql == PSIM_IRQL_PASSIVE && t->nlocks == 0) {
        /* Only a critical region not left: 0x1 APC_INDEX_MISMATCH, Windows' check when a thread returns to
         * user mode with kernel APCs disabled. Arg3 is the combined APC disable count as the kernel keeps it
         * (KernelApcDisable, decremented by each KeEnterCriticalRegion, in its low 16 bits). */
        report(rt, NULL, 0, 0x01, 0, 0, (uintptr_t)((0x10000u - (t->critical & 0xFFFFu)) & 0xFFFFu), 0);
    } else {
        /* §1.10: 0x4A IRQL_GT_ZERO_AT_SYSTEM_SERVICE; poolsim has no system function to name (P1 0). */
        report(rt, NULL, 0, 0x4A, 0, poolsim__prim_irql_get(), 0, 0);
    }
    return false;
}

void poolsim_thread_reset(void)
{
    psim_thread *t = poolsim__thread();
    if (!t) {
        poolsim__prim_irql_set(PSIM_IRQL_PASSIVE);
        return;
    }
    irql_move(t, t->h.irql, PSIM_IRQL_PASSIVE);
    t->nheld = 0;
    t->nlocks = 0;
    t->critical = 0;
    t->h.hpos = 0;
    t->fi_pass = 0;
}

size_t poolsim_thread_locks(poolsim_held_lock *out, size_t max)
{
    psim_thread *t = poolsim__thread();
    if (!t)
        return 0;
    for (size_t i = 0; i < t->nheld && i < max; i++) {
        out[i].object = t->held[i].obj;
        out[i].file = t->held[i].file;
        out[i].line = t->held[i].line;
        out[i].routine = t->held[i].routine;
        out[i].old_irql = t->held[i].old_irql;
    }
    return t->nlocks;
}

/* Copies the last n transitions (n <= PSIM_HIST), oldest first. */
static size_t history_copy(const psim_thread *t, poolsim_irql_event *out, size_t n)
{
    size_t have = t->h.hpos < PSIM_HIST ? t->h.hpos : PSIM_HIST;
    if (n > have)
        n = have;
    for (size_t k = 0; k < n; k++)
        out[k] = t->h.hist[(t->h.hpos - n + k) % PSIM_HIST];
    return n;
}

size_t poolsim_thread_history(poolsim_irql_event *out, size_t max)
{
    psim_thread *t = poolsim__thread();
    return t && out ? history_copy(t, out, max) : 0;
}

uint32_t poolsim_thread_critical_regions(void)
{
    psim_thread *t = poolsim__thread();
    return t ? t->critical : 0;
}

void poolsim_report_thread(void)
{
    psim_thread *t = poolsim__thread();
    poolsim_held_lock locks[PSIM_HELD_MAX];
    if (!t) {
        poolsim__report_thread_state(poolsim__prim_irql_get(), 0, locks, 0, 0, NULL, 0);
        return;
    }
    size_t n = poolsim_thread_locks(locks, PSIM_HELD_MAX);
    size_t shown = n < PSIM_HELD_MAX ? n : PSIM_HELD_MAX;
    psim *ps = poolsim__g;
    size_t want = ps ? ps->opt.irql_history : POOLSIM_DEFAULT_IRQL_HISTORY;
    size_t have = t->h.hpos < PSIM_HIST ? t->h.hpos : PSIM_HIST;
    size_t nev = want < have ? want : have;
    poolsim__report_thread_state(t->h.irql, t->critical, locks, n, shown, NULL, 0);
    /* Straight from the thread's ring, oldest first: no copy (not t->snap, which a bug check the caller still
     * holds points to) and no allocation, so this prints when memory is exhausted too. */
    if (nev)
        poolsim__report_irql_header(nev);
    for (size_t k = 0; k < nev; k++)
        poolsim__report_irql_events(&t->h.hist[(t->h.hpos - nev + k) % PSIM_HIST], 1);
}

/* ---- History in bug checks ------------------------------------------------------------------ */

/* The bug checks about IRQL and locks: they carry the history. */
static bool irql_related(const poolsim_bugcheck *bc)
{
    static const uintptr_t c4[] = {0x01,   0x02,   0x11,    0x12,    0x30,    0x31,    0x32,   0x33,   0x34,
                                   0x35,   0x36,   0x40,    0x41,    0x42,    0x11A,   0x11B,  0x1000, 0x1004,
                                   0x1007, 0x1009, 0x20015, 0x20019, 0x40006, 0x40007, 0x40009};
    switch (bc->code) {
    case 0x01:
    case 0x08:
    case 0x09:
    case 0x0A:
    case 0x0F:
    case 0x10:
    case 0x4A:
    case 0xD1:
        return true;
    case 0x1E: /* a NULL lock touched below DISPATCH_LEVEL (poolsim__irql_null): the access violation */
        return bc->param[0] == 0xC0000005u && bc->param[2] == 1;
    case 0xC2:
        return bc->param[0] == 0x08 || bc->param[0] == 0x09;
    case 0xC1:
        return bc->param[3] == 0x30 || bc->param[3] == 0x31;
    case 0xC4:
        for (size_t i = 0; i < PSIM_COUNTOF(c4); i++)
            if (bc->param[0] == c4[i])
                return true;
        return false;
    default:
        return false;
    }
}

void poolsim__irql_annotate(poolsim_bugcheck *bc)
{
    psim_thread *t;
    if (bc->irql_history || !irql_related(bc) || !(t = poolsim__thread()))
        return;
    psim *ps = poolsim__g;
    size_t n = ps ? ps->opt.irql_history : POOLSIM_DEFAULT_IRQL_HISTORY;
    bc->irql_history_count = (uint32_t)history_copy(t, t->snap, n < PSIM_HIST ? n : PSIM_HIST);
    bc->irql_history = bc->irql_history_count ? t->snap : NULL;
}
