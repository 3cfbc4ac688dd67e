/* SPDX-License-Identifier: MIT */
/*
 * floor.h — the floor model: the work poolsim's +sites mode does for an
 * allocation and a free, on poolsim's data structures, written as one
 * straight pair of functions (floor.c). poolbench runs it as the "floor" mode
 * on pair64 and live10k, so the targets for those two can be read against
 * what the rules cost without poolsim's layers (bench/README.md).
 */
#ifndef POOLBENCH_FLOOR_H
#define POOLBENCH_FLOOR_H

#include <stddef.h>
#include <stdint.h>

#define FLOOR_MAX 4096u /* the largest request the model serves (live10k's largest) */

/* Sets the model up; false when memory ran out. */
int floor_init(void);
/* Releases everything; returns the number of blocks still live. */
size_t floor_fini(void);
/* ExAllocatePoolWithTag(type, n, tag) from file:line; NULL for a request the real routine refuses or the
 * model does not serve (floor.c). */
void *floor_alloc(uint64_t type, size_t n, uint32_t tag, const char *file, int line);
/* ExFreePoolWithTag(p, tag) from file:line; returns 0, or -1 for a violation the real routine reports. */
int floor_free(void *p, uint32_t tag, const char *file, int line);

#endif
