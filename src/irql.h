/* SPDX-License-Identifier: MIT */
/*
 * irql.h — private declarations of the IRQL model (irql.c) and Force IRQL
 * checking (forceirql.c): the per-thread state both keep in the block the
 * platform gives each thread (prim.h, poolsim__prim_thread_state).
 */
#ifndef POOLSIM_IRQL_H
#define POOLSIM_IRQL_H

#include "core.h"
#include "wdm_entry.h"

/* IRQL levels (wdk-semantics.md §4.1, x64). */
#define PSIM_IRQL_PASSIVE 0u
#define PSIM_IRQL_HIGH 15u

#define PSIM_HIST POOLSIM__IRQL_HIST /* transitions each thread keeps; irql_history shows up to this */
#define PSIM_HELD_MAX 32u /* locks a thread holds with their acquire site; more still work, unnamed */
#define PSIM_OPEN_MAX 8u  /* pages one single-stepped instruction may open */

/* What a held lock is. */
#define PSIM_LK_SPIN 1u   /* an ordinary spin lock */
#define PSIM_LK_QUEUED 2u /* an in-stack queued spin lock */
#define PSIM_LK_MUTEX 3u  /* a fast mutex */

/* A lock the thread holds, with where and how it was taken. */
typedef struct psim_held {
    const void *obj;
    const char *file;
    int32_t line;
    uint8_t routine;  /* poolsim_irql_routine of the acquire */
    uint8_t old_irql; /* the IRQL the acquire found */
    uint8_t kind;     /* PSIM_LK_* */
    uint8_t nest;     /* recursive acquires that were reported and let through */
} psim_held;

/* One thread's state. It starts with the part wdm.h's inline KeRaiseIrql and
 * KeLowerIrql update (poolsim.h): the simulated IRQL, which
 * poolsim__prim_irql_get reads (prim.h), and the history ring. */
typedef struct psim_thread {
    poolsim__thread_head h;
    uint8_t fi_pass;       /* forceirql.c: a reported access whose handler returned may proceed */
    uint8_t nheld;         /* entries in held[] */
    uint32_t nopen;        /* forceirql.c: pages opened for the pending single step */
    uint32_t nlocks;       /* locks held, including those beyond held[] */
    uint32_t critical;     /* KeEnterCriticalRegion calls not yet left */
    uint32_t sp_countdown; /* special.c: eligible allocations until the next sample */
    uint64_t sp_secret;    /* special.c: the instance the sampling state belongs to */
    uint64_t sp_rng;       /* special.c: the thread's sampling generator */
    uint64_t seq_secret;   /* pool.c: the instance the sequence batch below is of */
    uint64_t seq_next;     /* pool.c: the thread's next sequence number, while it is at most seq_end */
    uint64_t seq_end;
    uintptr_t open[PSIM_OPEN_MAX];
    psim_held held[PSIM_HELD_MAX];
    poolsim_irql_event snap[PSIM_HIST]; /* the history a bug check points to */
} psim_thread;

PSIM_STATIC_ASSERT(sizeof(psim_thread) <= POOLSIM__THREAD_BYTES, thread_state_fits);
PSIM_STATIC_ASSERT((PSIM_HIST & (PSIM_HIST - 1)) == 0, hist_power_of_two);

static inline psim_thread *poolsim__thread(void) { return (psim_thread *)poolsim__prim_thread_state(); }

/* irql.c: attaches the raising thread's IRQL history to an IRQL or lock bug
 * check (poolsim__bc_deliver calls it for every bug check). */
void poolsim__irql_annotate(poolsim_bugcheck *bc);

/* forceirql.c: the thread t has crossed to >= DISPATCH_LEVEL (up) or back
 * below it (down). */
void poolsim__fi_up(psim_thread *t);
void poolsim__fi_down(psim_thread *t);

/* report.c: the formatted parts of IRQL reports. */
void poolsim__report_irql_history(const poolsim_irql_event *ev, size_t n);
void poolsim__report_irql_header(size_t n);                               /* the history's first line */
void poolsim__report_irql_events(const poolsim_irql_event *ev, size_t n); /* its lines */
void poolsim__report_thread_state(uint8_t irql, uint32_t critical, const poolsim_held_lock *locks,
                                  size_t nlocks, size_t shown, const poolsim_irql_event *ev, size_t nev);

#endif /* POOLSIM_IRQL_H */
