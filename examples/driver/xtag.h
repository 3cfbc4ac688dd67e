/* SPDX-License-Identifier: MIT */
/*
 * xtag.h — the sample driver's pool logic (xtag.c), shared by the driver's
 * entry points (driver.c) and its user-mode run (usermode.c). Include it after
 * the WDK headers.
 */
#ifndef XTAG_H
#define XTAG_H

#define XTAG_TAG 'gaTX'     /* shown as "XTag" */
#define XTAG_PARAMS 'graP'  /* "Parg" */
#define XTAG_CONTEXT 'xtCD' /* "DCtx" */
#define XTAG_BLOCKS 11      /* 8192-byte XTag blocks allocated at load */
#define XTAG_BLOCK_SIZE 8192

typedef struct xtag_state {
    PVOID blocks[XTAG_BLOCKS];
    PVOID params;  /* PagedPool, 512 bytes */
    PVOID context; /* NonPagedPoolNx, 256 bytes */
} xtag_state;

/* DriverEntry's allocations. On failure nothing stays allocated.
 * IRQL: PASSIVE_LEVEL. */
NTSTATUS xtag_load(xtag_state *s);

/* DriverUnload's frees: everything but the last XTag block, which the sample
 * leaves behind on purpose so the leak check has something to report.
 * IRQL: PASSIVE_LEVEL. */
VOID xtag_unload(xtag_state *s);

#endif /* XTAG_H */
