/* SPDX-License-Identifier: MIT */
/*
 * wdm_entry.h — the core's entry points that src/wdm/wdm.c calls besides the
 * public ones. wdm.c cannot include the core's private headers (they do not
 * mix with <poolsim/wdm.h>), so these use <poolsim/poolsim.h>'s types only;
 * irql.h includes this file too, so the two sides cannot drift.
 */
#ifndef POOLSIM_WDM_ENTRY_H
#define POOLSIM_WDM_ENTRY_H

#include <poolsim/poolsim.h>

/* irql.c: the bug check for a NULL lock, fast mutex or lock handle passed to
 * `routine`, which would touch it at `irql` (0xD1 or 0x1E). wdm.c calls it
 * for the routines that are not the core's (the initialisers, the handles). */
void poolsim__irql_null(const char *routine, unsigned irql, const char *file, int line);

/* irql.c: an in-stack queued handle released while it holds nothing (C4/0x40007, retail 0x10); -1 when the
 * calling thread does not hold lock queued, else how often its acquire was nested (reported); the fast mutex
 * routines with the routine named (the try and unsafe forms). */
void poolsim__queued_stale_release(const void *lock, poolsim_irql_routine rt, const char *file, int line);
int poolsim__queued_nest(const void *lock);
uint8_t poolsim__fast_mutex_acquire(const void *mutex, void **owner, poolsim_irql_routine rt, const char *file,
                                    int line);
void poolsim__fast_mutex_release(const void *mutex, void **owner, uint8_t old_irql, poolsim_irql_routine rt,
                                 const char *file, int line);

#endif /* POOLSIM_WDM_ENTRY_H */
