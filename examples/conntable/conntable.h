/* SPDX-License-Identifier: MIT */
/*
 * conntable.h — a driver's connection table (conntable.c): entries from a
 * nonpaged lookaside list, a spin lock over the table, and a paged copy of
 * the configuration made at initialisation. Include it after the WDK headers
 * (<ntddk.h>, or <poolsim/wdm.h> in user mode).
 */
#ifndef CONNTABLE_H
#define CONNTABLE_H

#define CONN_ENTRY_TAG 'tnEC'  /* "CEnt": connection entries (the lookaside list) */
#define CONN_BUFFER_TAG 'fuBC' /* "CBuf": per-connection receive buffers */
#define CONN_CONFIG_TAG 'gfCC' /* "CCfg": the paged configuration copy */
#define CONN_TABLE_SLOTS 16

#ifndef STATUS_OBJECT_NAME_COLLISION
#define STATUS_OBJECT_NAME_COLLISION ((NTSTATUS)0xC0000035L) /* ntstatus.h */
#endif

/* What the caller configures; the table keeps a paged copy. */
typedef struct _CONN_TABLE_CONFIG {
    ULONG MaxConnections; /* 1..CONN_TABLE_SLOTS */
    ULONG BufferSize;     /* bytes of each connection's buffer, > 0 */
    CHAR Name[32];        /* NUL-terminated */
} CONN_TABLE_CONFIG, *PCONN_TABLE_CONFIG;

typedef struct _CONN_ENTRY {
    ULONG Key;
    ULONG BufferSize;
    PUCHAR Buffer; /* nonpaged, CONN_BUFFER_TAG */
} CONN_ENTRY, *PCONN_ENTRY;

typedef struct _CONN_TABLE {
    KSPIN_LOCK Lock; /* guards Slots and Count */
    ULONG Count;
    ULONG MaxConnections; /* Config->MaxConnections, nonpaged: read under the lock */
    PCONN_ENTRY Slots[CONN_TABLE_SLOTS];
    NPAGED_LOOKASIDE_LIST EntryLookaside;
    PCONN_TABLE_CONFIG Config; /* paged: touch it only at IRQL <= APC_LEVEL */
} CONN_TABLE, *PCONN_TABLE;

/* Copies *Config into paged pool and sets up the lookaside list and the lock.
 * STATUS_INVALID_PARAMETER for a bad configuration, STATUS_INSUFFICIENT_RESOURCES
 * when the copy cannot be allocated; nothing stays allocated on failure.
 * IRQL: PASSIVE_LEVEL. */
NTSTATUS ConnTableInitialize(PCONN_TABLE Table, const CONN_TABLE_CONFIG *Config);

/* Opens connection Key: an entry and its buffer, inserted into the table.
 * STATUS_OBJECT_NAME_COLLISION when Key is open, STATUS_QUOTA_EXCEEDED when
 * MaxConnections are open, STATUS_INSUFFICIENT_RESOURCES when an allocation
 * fails. *Entry is set on success. IRQL <= APC_LEVEL (it reads the paged
 * configuration). */
NTSTATUS ConnTableOpen(PCONN_TABLE Table, ULONG Key, PCONN_ENTRY *Entry);

/* Closes connection Key; STATUS_NOT_FOUND when it is not open.
 * IRQL <= DISPATCH_LEVEL. */
NTSTATUS ConnTableClose(PCONN_TABLE Table, ULONG Key);

/* Closes every connection still open and releases the table. IRQL: PASSIVE_LEVEL. */
VOID ConnTableUninitialize(PCONN_TABLE Table);

#ifdef CONNTABLE_TEST_HOOKS
/* Where conntable.c allocates, recorded by CONN_SITE as each allocation runs,
 * so a test names the sites without hard-coding line numbers. */
typedef struct _CONN_TABLE_SITES {
    const char *File;
    int ConfigLine; /* ExAllocatePool2, paged: the configuration copy */
    int EntryLine;  /* ExAllocateFromNPagedLookasideList: an entry */
    int BufferLine; /* ExAllocatePool2, nonpaged: a connection's buffer */
} CONN_TABLE_SITES;
extern CONN_TABLE_SITES ConnTableSites;
#endif

#endif /* CONNTABLE_H */
