/* SPDX-License-Identifier: MIT */
/*
 * xtag.c — the sample driver's pool logic: the seed's ExAllocatePoolWithTag
 * walkthrough (EAPWT) as driver code. Load allocates eleven 8192-byte
 * NonPagedPoolNx blocks tagged 'gaTX' ("XTag"), a paged parameters buffer and
 * a nonpaged context; unload frees all of them but one XTag block.
 *
 * This file is ordinary WDK code: it calls the pool routines by their real
 * names. <poolsim/shim.h> decides where the calls go: to poolsim's core in
 * the checked build (POOLSIM_ENABLED 1), straight to ntoskrnl.exe in the free
 * build, with object code identical to the same file without the include
 * (scripts/check-driver.sh compares them).
 */
#ifdef XTAG_USER_MODE
#include <poolsim/wdm.h> /* the user-mode run (usermode.c): poolsim's own WDK surface */
#else
#include <ntddk.h>
#endif
#include <poolsim/shim.h>

#include "xtag.h"

NTSTATUS xtag_load(xtag_state *s)
{
    ULONG i;

    RtlZeroMemory(s, sizeof(*s));
    s->params = ExAllocatePoolWithTag(PagedPool, 512, XTAG_PARAMS);
    s->context = ExAllocatePoolWithTag(NonPagedPoolNx, 256, XTAG_CONTEXT);
    for (i = 0; i < XTAG_BLOCKS; i++)
        s->blocks[i] = ExAllocatePoolWithTag(NonPagedPoolNx, XTAG_BLOCK_SIZE, XTAG_TAG);
    for (i = 0; i < XTAG_BLOCKS && s->blocks[i] != NULL; i++)
        ;
    if (s->params != NULL && s->context != NULL && i == XTAG_BLOCKS)
        return STATUS_SUCCESS;

    for (i = 0; i < XTAG_BLOCKS; i++)
        if (s->blocks[i] != NULL)
            ExFreePoolWithTag(s->blocks[i], XTAG_TAG);
    if (s->params != NULL)
        ExFreePoolWithTag(s->params, XTAG_PARAMS);
    if (s->context != NULL)
        ExFreePool(s->context);
    RtlZeroMemory(s, sizeof(*s));
    return STATUS_INSUFFICIENT_RESOURCES;
}

VOID xtag_unload(xtag_state *s)
{
    ULONG i;

    for (i = 0; i + 1 < XTAG_BLOCKS; i++)
        ExFreePoolWithTag(s->blocks[i], XTAG_TAG);
    ExFreePoolWithTag(s->params, XTAG_PARAMS);
    ExFreePool(s->context);
    /* s->blocks[XTAG_BLOCKS - 1] is leaked on purpose. */
}
