/* SPDX-License-Identifier: MIT */
/*
 * conntable.c — a driver's connection table, and a leak only a failed
 * allocation reveals.
 *
 * ConnTableInitialize copies the caller's configuration into paged pool
 * (ExAllocatePool2, POOL_FLAG_PAGED, "CCfg") and sets up a nonpaged lookaside
 * list of entries ("CEnt") and the spin lock that guards the table.
 * ConnTableOpen takes an entry from the list, gives it a nonpaged buffer
 * (ExAllocatePool2, "CBuf") and inserts it under the lock; ConnTableClose and
 * ConnTableUninitialize give both back. The paged configuration is read only
 * before the lock is taken: under the lock the thread is at DISPATCH_LEVEL,
 * where paged pool must not be touched (poolsim's Force IRQL checking, on in
 * the CMocka fixture, would raise 0xD1).
 *
 * With CONNTABLE_PLANT_LEAK=1 the error path for a failed buffer allocation
 * forgets to give the entry back. No ordinary run takes that path; a fault
 * sweep does (test_conntable.c). Its table has one row per run: the run
 * number, the site failed in it (or, in the Nth sweep, the allocation
 * number), and what the run left behind:
 *
 *     0  (none: the clean run)                       ok
 *     1  conntable/conntable.c:C ExAllocatePool2        ok
 *     2  conntable/conntable.c:E ExAllocatePoolWithTag  ok
 *     3  conntable/conntable.c:B ExAllocatePool2        leaked 1 block(s), first:
 *                                  conntable/conntable.c:E CEnt 16 bytes
 *
 * C, E and B are the lines of the configuration's, the entry's and the
 * buffer's allocations (the CONN_SITE calls below). Run 3 failed the buffer
 * and leaked a block allocated at line E, the entry: the failure is at one
 * site, the leak comes from another. An entry's site shows as
 * ExAllocatePoolWithTag, the call an empty lookaside list makes to the pool
 * for its caller. Runs 1 and 2 fail the configuration and the entry: those
 * error paths give everything back, so the runs are ok, as is every run of
 * the fixed build. (16 bytes is the entry's size on 64-bit hosts.)
 *
 * The file is WDK code: in a driver it includes <ntddk.h>; built with
 * CONNTABLE_USER_MODE it includes <poolsim/wdm.h> instead, unchanged
 * otherwise.
 */
#ifdef CONNTABLE_USER_MODE
#include <poolsim/wdm.h>
#else
#include <ntddk.h>
#endif

#include "conntable.h"

#ifndef CONNTABLE_PLANT_LEAK
#define CONNTABLE_PLANT_LEAK 0
#endif

/* <poolsim/wdm.h> has no PAGED_CODE (the WDK's asserts IRQL <= APC_LEVEL in
 * checked builds); poolsim's Force IRQL checking catches the paged accesses
 * themselves. */
#ifndef PAGED_CODE
#define PAGED_CODE() ((void)0)
#endif

/* CONN_SITE(Field, Call) is Call; test builds also record where it is (on one
 * line, so __LINE__ is the line of the allocation inside Call). */
#ifdef CONNTABLE_TEST_HOOKS
CONN_TABLE_SITES ConnTableSites;
#define CONN_SITE(Field, Call) (ConnTableSites.File = __FILE__, ConnTableSites.Field = __LINE__, (Call))
#else
#define CONN_SITE(Field, Call) (Call)
#endif

#ifdef ALLOC_PRAGMA
#pragma alloc_text(PAGE, ConnTableInitialize)
#pragma alloc_text(PAGE, ConnTableOpen)
#pragma alloc_text(PAGE, ConnTableUninitialize)
#endif

NTSTATUS ConnTableInitialize(PCONN_TABLE Table, const CONN_TABLE_CONFIG *Config)
{
    PNPAGED_LOOKASIDE_LIST Lookaside = &Table->EntryLookaside;
    SIZE_T EntrySize = sizeof(CONN_ENTRY);
    PCONN_TABLE_CONFIG Copy;

    PAGED_CODE();

    RtlZeroMemory(Table, sizeof(*Table));
    if (Config->MaxConnections == 0 || Config->MaxConnections > CONN_TABLE_SLOTS || Config->BufferSize == 0)
        return STATUS_INVALID_PARAMETER;

    Copy = CONN_SITE(ConfigLine, ExAllocatePool2(POOL_FLAG_PAGED, sizeof(*Copy), CONN_CONFIG_TAG));
    if (Copy == NULL)
        return STATUS_INSUFFICIENT_RESOURCES;
    RtlCopyMemory(Copy, Config, sizeof(*Copy));
    Copy->Name[sizeof(Copy->Name) - 1] = '\0';
    Table->Config = Copy;
    Table->MaxConnections = Copy->MaxConnections;

    KeInitializeSpinLock(&Table->Lock);
    ExInitializeNPagedLookasideList(Lookaside, NULL, NULL, POOL_NX_ALLOCATION, EntrySize, CONN_ENTRY_TAG, 0);
    return STATUS_SUCCESS;
}

/* Gives back an entry that is no longer in the table. IRQL <= DISPATCH_LEVEL. */
static VOID ConnFreeEntry(PCONN_TABLE Table, PCONN_ENTRY Entry)
{
    ExFreePoolWithTag(Entry->Buffer, CONN_BUFFER_TAG);
    ExFreeToNPagedLookasideList(&Table->EntryLookaside, Entry);
}

NTSTATUS ConnTableOpen(PCONN_TABLE Table, ULONG Key, PCONN_ENTRY *Entry)
{
    PCONN_ENTRY NewEntry;
    PUCHAR Buffer;
    ULONG BufferSize, Free, i;
    NTSTATUS Status = STATUS_SUCCESS;
    KIRQL OldIrql;

    PAGED_CODE();

    *Entry = NULL;
    BufferSize = Table->Config->BufferSize; /* paged: read before the lock raises the IRQL */

    NewEntry = CONN_SITE(EntryLine, ExAllocateFromNPagedLookasideList(&Table->EntryLookaside));
    if (NewEntry == NULL)
        return STATUS_INSUFFICIENT_RESOURCES;
    Buffer = CONN_SITE(BufferLine, ExAllocatePool2(POOL_FLAG_NON_PAGED, BufferSize, CONN_BUFFER_TAG));
    if (Buffer == NULL) {
#if !CONNTABLE_PLANT_LEAK
        ExFreeToNPagedLookasideList(&Table->EntryLookaside, NewEntry);
#endif
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    NewEntry->Key = Key;
    NewEntry->BufferSize = BufferSize;
    NewEntry->Buffer = Buffer;

    KeAcquireSpinLock(&Table->Lock, &OldIrql);
    Free = CONN_TABLE_SLOTS;
    for (i = 0; i < CONN_TABLE_SLOTS; i++) {
        if (Table->Slots[i] == NULL) {
            if (Free == CONN_TABLE_SLOTS)
                Free = i;
        } else if (Table->Slots[i]->Key == Key) {
            Status = STATUS_OBJECT_NAME_COLLISION;
        }
    }
    if (NT_SUCCESS(Status) && Table->Count >= Table->MaxConnections)
        Status = STATUS_QUOTA_EXCEEDED;
    if (NT_SUCCESS(Status)) {
        Table->Slots[Free] = NewEntry;
        Table->Count++;
    }
    KeReleaseSpinLock(&Table->Lock, OldIrql);

    if (!NT_SUCCESS(Status)) {
        ConnFreeEntry(Table, NewEntry);
        return Status;
    }
    *Entry = NewEntry;
    return STATUS_SUCCESS;
}

NTSTATUS ConnTableClose(PCONN_TABLE Table, ULONG Key)
{
    PCONN_ENTRY Entry = NULL;
    KIRQL OldIrql;
    ULONG i;

    KeAcquireSpinLock(&Table->Lock, &OldIrql);
    for (i = 0; i < CONN_TABLE_SLOTS && Entry == NULL; i++) {
        if (Table->Slots[i] != NULL && Table->Slots[i]->Key == Key) {
            Entry = Table->Slots[i];
            Table->Slots[i] = NULL;
            Table->Count--;
        }
    }
    KeReleaseSpinLock(&Table->Lock, OldIrql);

    if (Entry == NULL)
        return STATUS_NOT_FOUND;
    ConnFreeEntry(Table, Entry);
    return STATUS_SUCCESS;
}

VOID ConnTableUninitialize(PCONN_TABLE Table)
{
    PCONN_ENTRY Open[CONN_TABLE_SLOTS];
    KIRQL OldIrql;
    ULONG i;

    PAGED_CODE();

    KeAcquireSpinLock(&Table->Lock, &OldIrql);
    RtlCopyMemory(Open, Table->Slots, sizeof(Open));
    RtlZeroMemory(Table->Slots, sizeof(Table->Slots));
    Table->Count = 0;
    KeReleaseSpinLock(&Table->Lock, OldIrql);

    for (i = 0; i < CONN_TABLE_SLOTS; i++)
        if (Open[i] != NULL)
            ConnFreeEntry(Table, Open[i]);
    ExDeleteNPagedLookasideList(&Table->EntryLookaside);
    ExFreePoolWithTag(Table->Config, CONN_CONFIG_TAG);
    Table->Config = NULL;
}
