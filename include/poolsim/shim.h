/* SPDX-License-Identifier: MIT */
/*
 * shim.h — poolsim inside a real driver: the WDK pool routines, redirected to
 * the tracking core with the caller's file and line.
 *
 * Include it in every driver source after the real <wdm.h> or <ntddk.h>, and
 * link the core (the .c files of src/) with the kernel platform layer
 * (src/prim/ntkernel.c) into the .sys. docs/driver.md is the walkthrough.
 *
 * POOLSIM_ENABLED (default: 1 when DBG is non-zero, as in the WDK's Debug
 * configuration, else 0) decides everything:
 *
 *   1  ExAllocatePool*, ExFreePool* and ExQueryPoolBlockSize become
 *      function-like macros over poolsim_pool_alloc / poolsim_pool_free /
 *      poolsim_pool_block_size, which check each call like Driver Verifier and
 *      keep per-tag and per-site counters. A routine that must raise (quota
 *      routines, POOL_RAISE_IF_ALLOCATION_FAILURE, POOL_FLAG_RAISE_ON_FAILURE)
 *      calls the real ExRaiseStatus, so the driver's __try/__except sees the
 *      exception it would see without poolsim. POOLSIM_DRIVER_INIT() and
 *      POOLSIM_DRIVER_UNLOAD() start and stop the core.
 *   0  No routine is redirected and no poolsim name is referenced: the object
 *      code is what it is without this header. POOLSIM_DRIVER_INIT() is the
 *      constant STATUS_SUCCESS and POOLSIM_DRIVER_UNLOAD() does nothing.
 *
 * In both modes, headers that predate the POOL_FLAGS API (mingw-w64's DDK,
 * WDKs before 10.0.19041) get the declarations they lack, so driver code
 * written for the current WDK compiles; see "Declarations older headers lack".
 *
 * Only a call written as `Routine(...)` is redirected. `(ExFreePool)(p)` or a
 * routine used as a function pointer names the real kernel routine: use that
 * for memory the kernel allocates for the driver or frees on its behalf.
 * Lookaside lists (the WDK's list structures have no room for poolsim's
 * handle) and the Mm allocators (their memory must be physically contiguous
 * or non-cached) are left to the kernel and not tracked.
 */
#ifndef POOLSIM_SHIM_H
#define POOLSIM_SHIM_H

#ifndef POOLSIM_ENABLED
#if defined(DBG) && DBG
#define POOLSIM_ENABLED 1
#else
#define POOLSIM_ENABLED 0
#endif
#endif

/* ---- Declarations older headers lack ---------------------------------------------------------------- */

/*
 * The feature check is POOL_FLAG_NON_PAGED, a macro of every WDK that has
 * ExAllocatePool2 (10.0.19041 and later). Without it this block declares the
 * POOL_FLAGS API with the WDK's names and values: POOL_FLAGS and its
 * POOL_FLAG_* bits, the ExAllocatePool3 / ExFreePool2 extended-parameter
 * types, and the prototypes of ExAllocatePool2, ExAllocatePool3 and
 * ExFreePool2. Declarations generate no code. A call to those routines
 * that is not redirected (POOLSIM_ENABLED 0) also needs their imports:
 * mingw-w64's libntoskrnl.a has none (docs/driver.md). On mingw-w64 it also
 * declares ExQueryPoolBlockSize, which its <ntddk.h> lacks although
 * libntoskrnl.a exports it. Define POOLSIM_SHIM_NO_DECLARATIONS to skip all
 * of this.
 */
#if !defined(POOL_FLAG_NON_PAGED) && !defined(POOLSIM_SHIM_NO_DECLARATIONS)

#include <poolsim/pool2.h>

/* Windows 10 2004 and later. IRQL <= DISPATCH_LEVEL (POOL_FLAG_PAGED <= APC_LEVEL). */
NTKERNELAPI PVOID ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag);
NTKERNELAPI PVOID ExAllocatePool3(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag,
                                  PCPOOL_EXTENDED_PARAMETER ExtendedParameters,
                                  ULONG ExtendedParametersCount);
/* Windows Server 2022 and later. IRQL <= DISPATCH_LEVEL (a paged block <= APC_LEVEL). */
NTKERNELAPI VOID ExFreePool2(PVOID P, ULONG Tag, PCPOOL_EXTENDED_PARAMETER ExtendedParameters,
                             ULONG ExtendedParametersCount);

#endif /* !POOL_FLAG_NON_PAGED */

#if defined(__MINGW32__) && (defined(_WDMDDK_) || defined(_NTDDK_)) && !defined(POOLSIM_SHIM_NO_DECLARATIONS)
/* mingw-w64's DDK. IRQL <= DISPATCH_LEVEL. */
NTKERNELAPI SIZE_T NTAPI ExQueryPoolBlockSize(PVOID PoolBlock, PBOOLEAN QuotaCharged);
#endif

#if POOLSIM_ENABLED

#include <poolsim/poolsim.h>

/* ---- The engine calls behind the macros ------------------------------------------------------------- */

#if defined(_MSC_VER)
#define POOLSIM_SHIM_INLINE static __inline
#else
#define POOLSIM_SHIM_INLINE static inline
#endif

/* Extended parameters copied into the core's type (the same 16 bytes) so the
 * core never reads the driver's structure through another type. */
#define POOLSIM_SHIM_EXT_COPY 4u
typedef char poolsim_shim_ext_size_[sizeof(POOL_EXTENDED_PARAMETER) == sizeof(poolsim_ext_param) ? 1 : -1];

POOLSIM_SHIM_INLINE const poolsim_ext_param *poolsim_shim_ext(PCPOOL_EXTENDED_PARAMETER ext, ULONG count,
                                                              poolsim_ext_param copy[POOLSIM_SHIM_EXT_COPY])
{
    if (ext == NULL || count == 0 || count > POOLSIM_SHIM_EXT_COPY)
        return (const poolsim_ext_param *)(const void *)ext;
    RtlCopyMemory(copy, ext, (SIZE_T)count * sizeof(*copy));
    return copy;
}

/* Every allocation routine. Raises the status the core asks for with the
 * real ExRaiseStatus. IRQL: as the routine (<= DISPATCH_LEVEL, paged <= APC_LEVEL). */
POOLSIM_SHIM_INLINE PVOID poolsim_shim_alloc(poolsim_routine routine, ULONG64 type, SIZE_T size, ULONG tag,
                                             ULONG priority, PCPOOL_EXTENDED_PARAMETER ext, ULONG ext_count,
                                             const char *file, int line)
{
    poolsim_ext_param copy[POOLSIM_SHIM_EXT_COPY];
    poolsim_alloc_req req;
    int32_t raise_status = 0;
    PVOID p;

    req.routine = routine;
    req.type = type;
    req.size = size;
    req.tag = tag;
    req.priority = priority;
    req.ext = poolsim_shim_ext(ext, ext_count, copy);
    req.ext_count = ext_count;
    p = poolsim_pool_alloc(&req, &raise_status, file, line);
    if (raise_status != 0)
        ExRaiseStatus((NTSTATUS)raise_status);
    return p;
}

/* Every free routine. IRQL <= DISPATCH_LEVEL (a paged block <= APC_LEVEL). */
POOLSIM_SHIM_INLINE VOID poolsim_shim_free(poolsim_routine routine, PVOID p, ULONG tag,
                                           PCPOOL_EXTENDED_PARAMETER ext, ULONG ext_count, const char *file,
                                           int line)
{
    poolsim_ext_param copy[POOLSIM_SHIM_EXT_COPY];
    poolsim_pool_free(routine, p, tag, poolsim_shim_ext(ext, ext_count, copy), ext_count, file, line);
}

/* ExQueryPoolBlockSize. IRQL <= DISPATCH_LEVEL. */
POOLSIM_SHIM_INLINE SIZE_T poolsim_shim_block_size(PVOID block, PBOOLEAN quota_charged, const char *file,
                                                   int line)
{
    bool quota = false;
    SIZE_T size = poolsim_pool_block_size(block, &quota, file, line);
    if (quota_charged != NULL)
        *quota_charged = quota ? TRUE : FALSE;
    return size;
}

/* ---- The pool routines ------------------------------------------------------------------------------- */

/* The WDK defines some of these names as macros (ExAllocatePool over
 * ExAllocatePoolWithTag, ExFreePool over ExFreePoolWithTag); the shim's own
 * definitions replace them. */
#undef ExAllocatePool
#undef ExAllocatePoolWithTag
#undef ExAllocatePoolWithQuota
#undef ExAllocatePoolWithQuotaTag
#undef ExAllocatePoolWithTagPriority
#undef ExAllocatePool2
#undef ExAllocatePool3
#undef ExAllocatePoolZero
#undef ExAllocatePoolQuotaZero
#undef ExAllocatePoolPriorityZero
#undef ExAllocatePoolUninitialized
#undef ExAllocatePoolQuotaUninitialized
#undef ExAllocatePoolPriorityUninitialized
#undef ExFreePool
#undef ExFreePoolWithTag
#undef ExFreePool2
#undef ExQueryPoolBlockSize

#undef POOLSIM_POOL_ALLOC_
#undef POOLSIM_POOL_FREE_
#undef POOLSIM_POOL_SIZE_
#define POOLSIM_POOL_ALLOC_ poolsim_shim_alloc
#define POOLSIM_POOL_FREE_ poolsim_shim_free
#define POOLSIM_POOL_SIZE_ poolsim_shim_block_size
#include <poolsim/pool_macros.h>

/* ---- DriverEntry and DriverUnload -------------------------------------------------------------------- */

/* What POOLSIM_DRIVER_UNLOAD prints before the leak check: the !poolused
 * flags (1: verbose, with a row per call site), or -1 for nothing. */
#ifndef POOLSIM_UNLOAD_POOLUSED
#define POOLSIM_UNLOAD_POOLUSED 1
#endif

/* Starts the core with the compile-time option defaults (the kernel has no
 * environment). Returns STATUS_SUCCESS, or the status DriverEntry should fail
 * with. IRQL: PASSIVE_LEVEL. */
POOLSIM_SHIM_INLINE NTSTATUS poolsim_shim_driver_init(void)
{
    int rc = poolsim_init(NULL);
    if (rc == POOLSIM_OK) {
        poolsim_write("poolsim " POOLSIM_VERSION_STRING ": tracking this driver's pool\n");
        return STATUS_SUCCESS;
    }
    return rc == POOLSIM_E_NOMEM    ? STATUS_INSUFFICIENT_RESOURCES
           : rc == POOLSIM_E_OPTION ? STATUS_INVALID_PARAMETER
                                    : STATUS_UNSUCCESSFUL;
}

/* Prints the driver's !poolused table, then runs the leak check (the leak
 * table and the C4/0x62 bug check when blocks remain) and releases all of
 * poolsim's memory. Every pointer poolsim handed out is invalid afterwards.
 * IRQL: PASSIVE_LEVEL. */
POOLSIM_SHIM_INLINE VOID poolsim_shim_driver_unload(void)
{
#if POOLSIM_UNLOAD_POOLUSED >= 0
    poolsim_write("poolsim: the driver is unloading; its pool by tag:\n");
    poolsim_report_poolused((unsigned)POOLSIM_UNLOAD_POOLUSED, NULL);
#endif
    (void)poolsim_shutdown();
}

/* In DriverEntry, before the first allocation:
 *     NTSTATUS status = POOLSIM_DRIVER_INIT();
 *     if (!NT_SUCCESS(status))
 *         return status;
 * and as the last statement of DriverUnload: POOLSIM_DRIVER_UNLOAD(); */
#define POOLSIM_DRIVER_INIT() poolsim_shim_driver_init()
#define POOLSIM_DRIVER_UNLOAD() poolsim_shim_driver_unload()

#else /* !POOLSIM_ENABLED */

#define POOLSIM_DRIVER_INIT() STATUS_SUCCESS
#define POOLSIM_DRIVER_UNLOAD() ((void)0)

#endif /* POOLSIM_ENABLED */

#endif /* POOLSIM_SHIM_H */
