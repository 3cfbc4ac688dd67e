/* SPDX-License-Identifier: MIT */
/*
 * routines.c — a compile check, not part of the sample driver: one call of
 * every routine <poolsim/shim.h> redirects, built against mingw-w64's DDK with
 * the shim on (calls go to the core) and off (calls go to the kernel, through
 * the declarations the shim adds for ExAllocatePool2, ExAllocatePool3,
 * ExFreePool2 and ExQueryPoolBlockSize). The ...Zero and ...Uninitialized
 * wrappers are inline functions of the current WDK that mingw-w64 lacks: off,
 * they are compiled only where the headers define them.
 */
#include <ntddk.h>
#include <poolsim/shim.h>

#define SHIM_TAG 'tmiS' /* "Simt" */

VOID shim_routines(SIZE_T n);

VOID shim_routines(SIZE_T n)
{
    POOL_EXTENDED_PARAMETER ext;
    BOOLEAN quota = FALSE;
    PVOID p[8];

    RtlZeroMemory(&ext, sizeof(ext));
    ext.Type = PoolExtendedParameterPriority;
    ext.Priority = NormalPoolPriority;

    p[0] = ExAllocatePool(NonPagedPoolNx, n);
    p[1] = ExAllocatePoolWithTag(NonPagedPoolNx, n, SHIM_TAG);
    p[2] = ExAllocatePoolWithQuotaTag(PagedPool | POOL_QUOTA_FAIL_INSTEAD_OF_RAISE, n, SHIM_TAG);
    p[3] = ExAllocatePoolWithTagPriority(NonPagedPoolNx, n, SHIM_TAG, NormalPoolPriority);
    p[4] = ExAllocatePool2(POOL_FLAG_NON_PAGED, n, SHIM_TAG);
    p[5] = ExAllocatePool3(POOL_FLAG_PAGED, n, SHIM_TAG, &ext, 1);
    p[6] = ExAllocatePoolWithQuota(PagedPool, n);
    p[7] = NULL;
#if POOLSIM_ENABLED || !defined(__MINGW32__)
    p[7] = ExAllocatePoolZero(NonPagedPoolNx, n, SHIM_TAG);
    ExFreePoolWithTag(p[7], SHIM_TAG);
    p[7] = ExAllocatePoolQuotaZero(PagedPool, n, SHIM_TAG);
    ExFreePoolWithTag(p[7], SHIM_TAG);
    p[7] = ExAllocatePoolPriorityZero(NonPagedPoolNx, n, SHIM_TAG, HighPoolPriority);
    ExFreePoolWithTag(p[7], SHIM_TAG);
    p[7] = ExAllocatePoolUninitialized(NonPagedPoolNx, n, SHIM_TAG);
    ExFreePoolWithTag(p[7], SHIM_TAG);
    p[7] = ExAllocatePoolQuotaUninitialized(PagedPool, n, SHIM_TAG);
    ExFreePoolWithTag(p[7], SHIM_TAG);
    p[7] = ExAllocatePoolPriorityUninitialized(NonPagedPoolNx, n, SHIM_TAG, LowPoolPriority);
#endif
    if (ExQueryPoolBlockSize(p[1], &quota) < n || quota)
        p[7] = NULL;
    ExFreePool(p[0]);
    ExFreePoolWithTag(p[1], SHIM_TAG);
    ExFreePoolWithTag(p[2], SHIM_TAG);
    ExFreePoolWithTag(p[3], SHIM_TAG);
    ExFreePool2(p[4], SHIM_TAG, NULL, 0);
    ExFreePool2(p[5], SHIM_TAG, NULL, 0);
    ExFreePool(p[6]);
    if (p[7] != NULL)
        ExFreePoolWithTag(p[7], SHIM_TAG);
}
