/* SPDX-License-Identifier: MIT */
/*
 * wdm.c — the user-mode WDK routines of <poolsim/wdm.h>, over the core.
 *
 * The pool routines build a poolsim_alloc_req and call the core; when the
 * core answers that the routine raises, they raise with ExRaiseStatus, which
 * longjmps to the innermost POOLSIM_TRY frame of the thread or, with none,
 * raises bug check 0x1E. Here too live DbgPrint's formatter (Windows argument
 * sizes on every host), the Rtl memory functions and KeBugCheckEx.
 *
 * The real-named functions are defined with their names in parentheses, so
 * the site macros of the header do not expand; they record the call site as
 * unknown. This file is user mode only and may use the C library.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <poolsim/wdm.h>

#if defined(_MSC_VER)
#include <intrin.h>
#endif

#include "../wdm_entry.h"

/* ---- Compiler glue ------------------------------------------------------- */

#if defined(_MSC_VER) && !defined(__clang__)
#define POOLSIM__WDM_TLS __declspec(thread)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define POOLSIM__WDM_TLS _Thread_local
#elif defined(__GNUC__) || defined(__clang__)
#define POOLSIM__WDM_TLS __thread
#else
#error "src/wdm/wdm.c needs thread-local storage"
#endif

/* The address the current function returns to: Arg2 of bug check 0x1E. Each
 * exported entry point takes it itself, so it points into the driver code. */
#if defined(__GNUC__) || defined(__clang__)
#define POOLSIM__WDM_RETADDR() __builtin_extract_return_addr(__builtin_return_address(0))
#elif defined(_MSC_VER)
#define POOLSIM__WDM_RETADDR() _ReturnAddress()
#else
#define POOLSIM__WDM_RETADDR() NULL
#endif

#if defined(__GNUC__) || defined(__clang__)
#define POOLSIM__WDM_NORETURN __attribute__((__noreturn__))
#elif defined(_MSC_VER)
#define POOLSIM__WDM_NORETURN __declspec(noreturn)
#else
#define POOLSIM__WDM_NORETURN
#endif

/* Extended parameters are copied into poolsim_ext_param values (same bytes,
 * the core's type) when there are at most this many. */
#define POOLSIM__WDM_EXT_COPY 16

/* DbgPrint sends at most 512 bytes (the kernel's limit), NUL included. */
#define POOLSIM__WDM_DBGPRINT_MAX 512

/* poolsim_wdm_try_depth stops counting here (a damaged chain may loop). */
#define POOLSIM__WDM_MAX_DEPTH 65536u

/* Marks a frame that is on a chain: its address xor this. */
#define POOLSIM__WDM_FRAME_MAGIC ((uintptr_t)0x5053494Du)

/* ---- Output ----------------------------------------------------------------- */

/* Text from DbgPrint goes where poolsim's reports go. */
static void poolsim__wdm_print(const char *text) { poolsim_write(text); }

/* A routine that cannot return found that the bug-check handler returned. */
static POOLSIM__WDM_NORETURN void poolsim__wdm_stop(const char *routine)
{
    fprintf(stderr, "poolsim: the bug-check handler returned to %s, which never returns; stopping\n",
            routine);
    fflush(stderr);
    abort();
}

/* ---- Exceptions ----------------------------------------------------------------- */

static POOLSIM__WDM_TLS poolsim_wdm_try_frame *poolsim__wdm_top;
static POOLSIM__WDM_TLS NTSTATUS poolsim__wdm_caught;

static uintptr_t poolsim__wdm_frame_mark(const poolsim_wdm_try_frame *f)
{
    return (uintptr_t)f ^ POOLSIM__WDM_FRAME_MAGIC;
}

void poolsim_wdm_try_enter(poolsim_wdm_try_frame *frame)
{
    if (!frame) /* only POOLSIM_TRY calls this; a NULL frame is ignored */
        return;
    /* A frame at the address of the top one replaces it: the top one was left
     * behind at this spot (a goto out of the body) and is dead. */
    frame->prev = poolsim__wdm_top == frame ? frame->prev : poolsim__wdm_top;
    frame->check = poolsim__wdm_frame_mark(frame);
    poolsim__wdm_top = frame;
}

/* Pops frame and, with it, any frames above it: those were left behind by a
 * body that returned or was longjmp'd out of. Reads only the caller's own,
 * live frame. A frame that is not on the chain is ignored. */
void poolsim_wdm_try_leave(poolsim_wdm_try_frame *frame)
{
    if (!frame || frame->check != poolsim__wdm_frame_mark(frame))
        return;
    poolsim__wdm_top = frame->prev;
    frame->check = 0;
}

NTSTATUS poolsim_wdm_try_caught(void) { return poolsim__wdm_caught; }

unsigned poolsim_wdm_try_depth(void)
{
    unsigned n = 0;
    const poolsim_wdm_try_frame *f;
    for (f = poolsim__wdm_top; f != NULL && n < POOLSIM__WDM_MAX_DEPTH; f = f->prev)
        n++;
    return n;
}

/* Frames still running keep their mark: when they end they restore the
 * chain of their enclosing frames. */
void poolsim_wdm_try_reset(void) { poolsim__wdm_top = NULL; }

/*
 * Raises status: longjmps to the innermost frame, or, with none, raises bug
 * check 0x1E KMODE_EXCEPTION_NOT_HANDLED (Arg1 the status sign-extended as a
 * 64-bit kernel shows it, Arg2 the raising address, Arg3/Arg4 the exception
 * parameters, of which ExRaiseStatus has none). Returns only when that bug
 * check's handler returns.
 */
static void poolsim__wdm_raise(NTSTATUS status, void *address, const char *file, int line)
{
    poolsim_wdm_try_frame *f = poolsim__wdm_top;
    if (f != NULL) {
        if (f->check == poolsim__wdm_frame_mark(f)) {
            poolsim__wdm_top = f->prev;
            f->check = 0;
            poolsim__wdm_caught = status;
            longjmp(f->env, 1);
        }
        poolsim__wdm_top = NULL;
        fputs("poolsim: ExRaiseStatus found a damaged POOLSIM_TRY frame; the raise is unhandled\n", stderr);
    }
    poolsim_bugcheck_raise(KMODE_EXCEPTION_NOT_HANDLED, (uintptr_t)(intptr_t)status, (uintptr_t)address, 0, 0,
                           file, line, "ExRaiseStatus");
}

void poolsim_wdm_raise_status(NTSTATUS Status, const char *File, int Line)
{
    poolsim__wdm_raise(Status, POOLSIM__WDM_RETADDR(), File, Line);
    poolsim__wdm_stop("ExRaiseStatus");
}

VOID NTAPI(ExRaiseStatus)(NTSTATUS Status)
{
    poolsim__wdm_raise(Status, POOLSIM__WDM_RETADDR(), NULL, 0);
    poolsim__wdm_stop("ExRaiseStatus");
}

/* ---- Pool routines ------------------------------------------------------------- */

/* The core's view of the caller's extended parameters. POOL_EXTENDED_PARAMETER
 * and poolsim_ext_param have the same bytes (the header asserts the size), but
 * are different types: a copy keeps the core's reads well defined. */
static const poolsim_ext_param *poolsim__wdm_ext(PCPOOL_EXTENDED_PARAMETER ext, ULONG count,
                                                 poolsim_ext_param copy[POOLSIM__WDM_EXT_COPY])
{
    if (ext == NULL || count == 0 || count > POOLSIM__WDM_EXT_COPY)
        return (const poolsim_ext_param *)(const void *)ext;
    memcpy(copy, ext, (size_t)count * sizeof(*copy));
    return copy;
}

static PVOID poolsim__wdm_alloc(poolsim_routine rt, ULONG64 type, SIZE_T size, ULONG tag, ULONG priority,
                                PCPOOL_EXTENDED_PARAMETER ext, ULONG ext_count, const char *file, int line,
                                void *address)
{
    poolsim_ext_param copy[POOLSIM__WDM_EXT_COPY];
    poolsim_alloc_req req;
    int32_t raise_status = 0;
    void *p;

    memset(&req, 0, sizeof(req));
    req.routine = rt;
    req.type = type;
    req.size = size;
    req.tag = tag;
    req.priority = priority;
    req.ext = poolsim__wdm_ext(ext, ext_count, copy);
    req.ext_count = ext_count;
    p = poolsim_pool_alloc(&req, &raise_status, file, line);
    if (raise_status != 0) {
        /* §2.4: the routine raises instead of returning NULL. An unhandled
         * raise whose bug-check handler returns gives NULL. */
        poolsim__wdm_raise((NTSTATUS)raise_status, address, file, line);
        return NULL;
    }
    return p;
}

static VOID poolsim__wdm_free(poolsim_routine rt, PVOID p, ULONG tag, PCPOOL_EXTENDED_PARAMETER ext,
                              ULONG ext_count, const char *file, int line)
{
    poolsim_ext_param copy[POOLSIM__WDM_EXT_COPY];
    poolsim_pool_free(rt, p, tag, poolsim__wdm_ext(ext, ext_count, copy), ext_count, file, line);
}

static SIZE_T poolsim__wdm_query_size(PVOID block, PBOOLEAN quota_charged, const char *file, int line)
{
    bool quota = false;
    size_t size = poolsim_pool_block_size(block, &quota, file, line);
    if (quota_charged != NULL)
        *quota_charged = quota ? TRUE : FALSE;
    return size;
}

PVOID poolsim_wdm_alloc(poolsim_routine Routine, ULONG64 Type, SIZE_T NumberOfBytes, ULONG Tag,
                        ULONG Priority, PCPOOL_EXTENDED_PARAMETER ExtendedParameters,
                        ULONG ExtendedParametersCount, const char *File, int Line)
{
    return poolsim__wdm_alloc(Routine, Type, NumberOfBytes, Tag, Priority, ExtendedParameters,
                              ExtendedParametersCount, File, Line, POOLSIM__WDM_RETADDR());
}

VOID poolsim_wdm_free(poolsim_routine Routine, PVOID P, ULONG Tag,
                      PCPOOL_EXTENDED_PARAMETER ExtendedParameters, ULONG ExtendedParametersCount,
                      const char *File, int Line)
{
    poolsim__wdm_free(Routine, P, Tag, ExtendedParameters, ExtendedParametersCount, File, Line);
}

SIZE_T poolsim_wdm_query_size(PVOID PoolBlock, PBOOLEAN QuotaCharged, const char *File, int Line)
{
    return poolsim__wdm_query_size(PoolBlock, QuotaCharged, File, Line);
}

/* The real-named functions: reached through a pointer, or with
 * POOLSIM_NO_SITE_MACROS. The legacy routines pass tag 0 where the WDK has
 * none: the core substitutes 'None' (§2.6). The ...Zero routines pass their
 * own routine id: the core ORs POOL_ZERO_ALLOCATION in (§2.4). */

PVOID NTAPI(ExAllocatePool)(POOL_TYPE PoolType, SIZE_T NumberOfBytes)
{
    return poolsim__wdm_alloc(POOLSIM_RT_EX_ALLOCATE_POOL, (ULONG64)PoolType, NumberOfBytes, 0, 0, NULL, 0,
                              NULL, 0, POOLSIM__WDM_RETADDR());
}

PVOID NTAPI(ExAllocatePoolWithTag)(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    return poolsim__wdm_alloc(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, (ULONG64)PoolType, NumberOfBytes, Tag, 0,
                              NULL, 0, NULL, 0, POOLSIM__WDM_RETADDR());
}

PVOID NTAPI(ExAllocatePoolWithQuota)(POOL_TYPE PoolType, SIZE_T NumberOfBytes)
{
    return poolsim__wdm_alloc(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_QUOTA, (ULONG64)PoolType, NumberOfBytes, 0, 0,
                              NULL, 0, NULL, 0, POOLSIM__WDM_RETADDR());
}

PVOID NTAPI(ExAllocatePoolWithQuotaTag)(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    return poolsim__wdm_alloc(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_QUOTA_TAG, (ULONG64)PoolType, NumberOfBytes,
                              Tag, 0, NULL, 0, NULL, 0, POOLSIM__WDM_RETADDR());
}

PVOID NTAPI(ExAllocatePoolWithTagPriority)(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag,
                                           EX_POOL_PRIORITY Priority)
{
    return poolsim__wdm_alloc(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG_PRIORITY, (ULONG64)PoolType, NumberOfBytes,
                              Tag, (ULONG)Priority, NULL, 0, NULL, 0, POOLSIM__WDM_RETADDR());
}

PVOID NTAPI(ExAllocatePool2)(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag)
{
    return poolsim__wdm_alloc(POOLSIM_RT_EX_ALLOCATE_POOL2, Flags, NumberOfBytes, Tag, 0, NULL, 0, NULL, 0,
                              POOLSIM__WDM_RETADDR());
}

PVOID NTAPI(ExAllocatePool3)(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag,
                             PCPOOL_EXTENDED_PARAMETER ExtendedParameters, ULONG ExtendedParametersCount)
{
    return poolsim__wdm_alloc(POOLSIM_RT_EX_ALLOCATE_POOL3, Flags, NumberOfBytes, Tag, 0, ExtendedParameters,
                              ExtendedParametersCount, NULL, 0, POOLSIM__WDM_RETADDR());
}

PVOID NTAPI(ExAllocatePoolZero)(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    return poolsim__wdm_alloc(POOLSIM_RT_EX_ALLOCATE_POOL_ZERO, (ULONG64)PoolType, NumberOfBytes, Tag, 0,
                              NULL, 0, NULL, 0, POOLSIM__WDM_RETADDR());
}

PVOID NTAPI(ExAllocatePoolQuotaZero)(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    return poolsim__wdm_alloc(POOLSIM_RT_EX_ALLOCATE_POOL_QUOTA_ZERO, (ULONG64)PoolType, NumberOfBytes, Tag,
                              0, NULL, 0, NULL, 0, POOLSIM__WDM_RETADDR());
}

PVOID NTAPI(ExAllocatePoolPriorityZero)(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag,
                                        EX_POOL_PRIORITY Priority)
{
    return poolsim__wdm_alloc(POOLSIM_RT_EX_ALLOCATE_POOL_PRIORITY_ZERO, (ULONG64)PoolType, NumberOfBytes,
                              Tag, (ULONG)Priority, NULL, 0, NULL, 0, POOLSIM__WDM_RETADDR());
}

PVOID NTAPI(ExAllocatePoolUninitialized)(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    return poolsim__wdm_alloc(POOLSIM_RT_EX_ALLOCATE_POOL_UNINITIALIZED, (ULONG64)PoolType, NumberOfBytes,
                              Tag, 0, NULL, 0, NULL, 0, POOLSIM__WDM_RETADDR());
}

PVOID NTAPI(ExAllocatePoolQuotaUninitialized)(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    return poolsim__wdm_alloc(POOLSIM_RT_EX_ALLOCATE_POOL_QUOTA_UNINITIALIZED, (ULONG64)PoolType,
                              NumberOfBytes, Tag, 0, NULL, 0, NULL, 0, POOLSIM__WDM_RETADDR());
}

PVOID NTAPI(ExAllocatePoolPriorityUninitialized)(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag,
                                                 EX_POOL_PRIORITY Priority)
{
    return poolsim__wdm_alloc(POOLSIM_RT_EX_ALLOCATE_POOL_PRIORITY_UNINITIALIZED, (ULONG64)PoolType,
                              NumberOfBytes, Tag, (ULONG)Priority, NULL, 0, NULL, 0, POOLSIM__WDM_RETADDR());
}

VOID NTAPI(ExFreePool)(PVOID P) { poolsim__wdm_free(POOLSIM_RT_EX_FREE_POOL, P, 0, NULL, 0, NULL, 0); }

VOID NTAPI(ExFreePoolWithTag)(PVOID P, ULONG Tag)
{
    poolsim__wdm_free(POOLSIM_RT_EX_FREE_POOL_WITH_TAG, P, Tag, NULL, 0, NULL, 0);
}

VOID NTAPI(ExFreePool2)(PVOID P, ULONG Tag, PCPOOL_EXTENDED_PARAMETER ExtendedParameters,
                        ULONG ExtendedParametersCount)
{
    poolsim__wdm_free(POOLSIM_RT_EX_FREE_POOL2, P, Tag, ExtendedParameters, ExtendedParametersCount, NULL, 0);
}

SIZE_T NTAPI(ExQueryPoolBlockSize)(PVOID PoolBlock, PBOOLEAN QuotaCharged)
{
    return poolsim__wdm_query_size(PoolBlock, QuotaCharged, NULL, 0);
}

/* ---- Lookaside lists ----------------------------------------------------------------- */

NTSTATUS poolsim_wdm_lookaside_init(poolsim_lookaside *Handle, unsigned Kind, void (*Allocate)(void),
                                    void (*Free)(void), ULONG64 PoolType, ULONG Flags, SIZE_T Size, ULONG Tag,
                                    USHORT Depth, PVOID Owner, const char *File, int Line)
{
    poolsim_lookaside_params p;
    memset(&p, 0, sizeof p);
    p.kind = Kind;
    p.allocate = Allocate;
    p.free = Free;
    p.pool_type = PoolType;
    p.flags = Flags;
    p.size = Size;
    p.tag = Tag;
    p.depth = Depth;
    p.owner = Owner;
    return (NTSTATUS)poolsim_lookaside_init(Handle, &p, File, Line);
}

static PVOID poolsim__wdm_lookaside_alloc(poolsim_lookaside *handle, unsigned kind, const char *file,
                                          int line, void *address)
{
    int32_t raise_status = 0;
    PVOID p = poolsim_lookaside_alloc(handle, kind, &raise_status, file, line);
    if (raise_status != 0)
        poolsim__wdm_raise((NTSTATUS)raise_status, address, file, line);
    return p;
}

PVOID poolsim_wdm_lookaside_alloc(poolsim_lookaside *Handle, unsigned Kind, const char *File, int Line)
{
    return poolsim__wdm_lookaside_alloc(Handle, Kind, File, Line, POOLSIM__WDM_RETADDR());
}

VOID NTAPI(ExInitializeNPagedLookasideList)(PNPAGED_LOOKASIDE_LIST Lookaside, PALLOCATE_FUNCTION Allocate,
                                            PFREE_FUNCTION Free, ULONG Flags, SIZE_T Size, ULONG Tag,
                                            USHORT Depth)
{
    (void)poolsim_wdm_lookaside_init(&Lookaside->Handle, POOLSIM_LOOKASIDE_NPAGED, (void (*)(void))Allocate,
                                     (void (*)(void))Free, 0, Flags, Size, Tag, Depth, Lookaside, NULL, 0);
}

PVOID NTAPI(ExAllocateFromNPagedLookasideList)(PNPAGED_LOOKASIDE_LIST Lookaside)
{
    return poolsim__wdm_lookaside_alloc(&Lookaside->Handle, POOLSIM_LOOKASIDE_NPAGED, NULL, 0,
                                        POOLSIM__WDM_RETADDR());
}

VOID NTAPI(ExFreeToNPagedLookasideList)(PNPAGED_LOOKASIDE_LIST Lookaside, PVOID Entry)
{
    poolsim_lookaside_free(&Lookaside->Handle, POOLSIM_LOOKASIDE_NPAGED, Entry, NULL, 0);
}

VOID NTAPI(ExDeleteNPagedLookasideList)(PNPAGED_LOOKASIDE_LIST Lookaside)
{
    poolsim_lookaside_delete(&Lookaside->Handle, POOLSIM_LOOKASIDE_NPAGED, NULL, 0);
}

VOID NTAPI(ExInitializePagedLookasideList)(PPAGED_LOOKASIDE_LIST Lookaside, PALLOCATE_FUNCTION Allocate,
                                           PFREE_FUNCTION Free, ULONG Flags, SIZE_T Size, ULONG Tag,
                                           USHORT Depth)
{
    (void)poolsim_wdm_lookaside_init(&Lookaside->Handle, POOLSIM_LOOKASIDE_PAGED, (void (*)(void))Allocate,
                                     (void (*)(void))Free, 1, Flags, Size, Tag, Depth, Lookaside, NULL, 0);
}

PVOID NTAPI(ExAllocateFromPagedLookasideList)(PPAGED_LOOKASIDE_LIST Lookaside)
{
    return poolsim__wdm_lookaside_alloc(&Lookaside->Handle, POOLSIM_LOOKASIDE_PAGED, NULL, 0,
                                        POOLSIM__WDM_RETADDR());
}

VOID NTAPI(ExFreeToPagedLookasideList)(PPAGED_LOOKASIDE_LIST Lookaside, PVOID Entry)
{
    poolsim_lookaside_free(&Lookaside->Handle, POOLSIM_LOOKASIDE_PAGED, Entry, NULL, 0);
}

VOID NTAPI(ExDeletePagedLookasideList)(PPAGED_LOOKASIDE_LIST Lookaside)
{
    poolsim_lookaside_delete(&Lookaside->Handle, POOLSIM_LOOKASIDE_PAGED, NULL, 0);
}

NTSTATUS NTAPI(ExInitializeLookasideListEx)(PLOOKASIDE_LIST_EX Lookaside, PALLOCATE_FUNCTION_EX Allocate,
                                            PFREE_FUNCTION_EX Free, POOL_TYPE PoolType, ULONG Flags,
                                            SIZE_T Size, ULONG Tag, USHORT Depth)
{
    return poolsim_wdm_lookaside_init(&Lookaside->Handle, POOLSIM_LOOKASIDE_EX, (void (*)(void))Allocate,
                                      (void (*)(void))Free, (ULONG64)PoolType, Flags, Size, Tag, Depth,
                                      Lookaside, NULL, 0);
}

PVOID NTAPI(ExAllocateFromLookasideListEx)(PLOOKASIDE_LIST_EX Lookaside)
{
    return poolsim__wdm_lookaside_alloc(&Lookaside->Handle, POOLSIM_LOOKASIDE_EX, NULL, 0,
                                        POOLSIM__WDM_RETADDR());
}

VOID NTAPI(ExFreeToLookasideListEx)(PLOOKASIDE_LIST_EX Lookaside, PVOID Entry)
{
    poolsim_lookaside_free(&Lookaside->Handle, POOLSIM_LOOKASIDE_EX, Entry, NULL, 0);
}

VOID NTAPI(ExDeleteLookasideListEx)(PLOOKASIDE_LIST_EX Lookaside)
{
    poolsim_lookaside_delete(&Lookaside->Handle, POOLSIM_LOOKASIDE_EX, NULL, 0);
}

VOID NTAPI(ExFlushLookasideListEx)(PLOOKASIDE_LIST_EX Lookaside)
{
    poolsim_lookaside_flush(&Lookaside->Handle, POOLSIM_LOOKASIDE_EX, NULL, 0);
}

/* ---- Mm allocators ------------------------------------------------------------------ */

PVOID poolsim_wdm_mm_alloc(poolsim_routine Routine, SIZE_T NumberOfBytes, const char *File, int Line)
{
    poolsim_alloc_req req;
    memset(&req, 0, sizeof req);
    req.routine = Routine;
    req.size = NumberOfBytes;
    return poolsim_pool_alloc(&req, NULL, File, Line); /* Mm routines never raise */
}

VOID poolsim_wdm_mm_free(poolsim_routine Routine, PVOID BaseAddress, SIZE_T NumberOfBytes, const char *File,
                         int Line)
{
    poolsim_mm_free(Routine, BaseAddress, NumberOfBytes, File, Line);
}

PVOID NTAPI(MmAllocateContiguousMemory)(SIZE_T NumberOfBytes, PHYSICAL_ADDRESS HighestAcceptableAddress)
{
    (void)HighestAcceptableAddress;
    return poolsim_wdm_mm_alloc(POOLSIM_RT_MM_ALLOCATE_CONTIGUOUS_MEMORY, NumberOfBytes, NULL, 0);
}

PVOID NTAPI(MmAllocateContiguousMemorySpecifyCache)(SIZE_T NumberOfBytes,
                                                    PHYSICAL_ADDRESS LowestAcceptableAddress,
                                                    PHYSICAL_ADDRESS HighestAcceptableAddress,
                                                    PHYSICAL_ADDRESS BoundaryAddressMultiple,
                                                    MEMORY_CACHING_TYPE CacheType)
{
    (void)LowestAcceptableAddress;
    (void)HighestAcceptableAddress;
    (void)BoundaryAddressMultiple;
    (void)CacheType;
    return poolsim_wdm_mm_alloc(POOLSIM_RT_MM_ALLOCATE_CONTIGUOUS_MEMORY_SPECIFY_CACHE, NumberOfBytes, NULL,
                                0);
}

VOID NTAPI(MmFreeContiguousMemory)(PVOID BaseAddress)
{
    poolsim_mm_free(POOLSIM_RT_MM_FREE_CONTIGUOUS_MEMORY, BaseAddress, 0, NULL, 0);
}

PVOID NTAPI(MmAllocateNonCachedMemory)(SIZE_T NumberOfBytes)
{
    return poolsim_wdm_mm_alloc(POOLSIM_RT_MM_ALLOCATE_NONCACHED_MEMORY, NumberOfBytes, NULL, 0);
}

VOID NTAPI(MmFreeNonCachedMemory)(PVOID BaseAddress, SIZE_T NumberOfBytes)
{
    poolsim_mm_free(POOLSIM_RT_MM_FREE_NONCACHED_MEMORY, BaseAddress, NumberOfBytes, NULL, 0);
}

/* ---- IRQL ------------------------------------------------------------------------ */

KIRQL NTAPI(KeGetCurrentIrql)(VOID) { return (KIRQL)poolsim_irql(); }

/* The rules, the history and the locking itself are the core's (src/irql.c);
 * these are the real-named functions, which record the site as unknown. */

VOID NTAPI(KeRaiseIrql)(KIRQL NewIrql, PKIRQL OldIrql)
{
    *OldIrql = poolsim__irql_raise_inline(NewIrql, POOLSIM_IRQL_RT_RAISE_IRQL, NULL, 0);
}

VOID NTAPI(KeLowerIrql)(KIRQL NewIrql) { poolsim__irql_lower_inline(NewIrql, NULL, 0); }

KIRQL NTAPI(KeRaiseIrqlToDpcLevel)(VOID)
{
    return poolsim__irql_raise_inline(DISPATCH_LEVEL, POOLSIM_IRQL_RT_RAISE_TO_DPC, NULL, 0);
}

KIRQL NTAPI(KeRaiseIrqlToSynchLevel)(VOID)
{
    return poolsim_irql_raise(SYNCH_LEVEL, POOLSIM_IRQL_RT_RAISE_TO_SYNCH, NULL, 0);
}

/* A NULL object passed to the routines below is the core's NULL-object bug check (poolsim__irql_null,
 * docs/bad-input.md §8): the initialisers and the lock handles are checked here, the locks by the core. */

VOID NTAPI(KeInitializeSpinLock)(PKSPIN_LOCK SpinLock)
{
    if (!SpinLock) {
        poolsim__irql_null("KeInitializeSpinLock", poolsim_irql(), NULL, 0);
        return;
    }
    *SpinLock = 0;
}

VOID NTAPI(KeAcquireSpinLock)(PKSPIN_LOCK SpinLock, PKIRQL OldIrql)
{
    *OldIrql = poolsim_spin_acquire(SpinLock, POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK, NULL, 0);
}

KIRQL NTAPI(KeAcquireSpinLockRaiseToDpc)(PKSPIN_LOCK SpinLock)
{
    return poolsim_spin_acquire(SpinLock, POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_RAISE, NULL, 0);
}

VOID NTAPI(KeReleaseSpinLock)(PKSPIN_LOCK SpinLock, KIRQL NewIrql)
{
    poolsim_spin_release(SpinLock, NewIrql, POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK, NULL, 0);
}

VOID NTAPI(KeAcquireSpinLockAtDpcLevel)(PKSPIN_LOCK SpinLock)
{
    (void)poolsim_spin_acquire(SpinLock, POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_AT_DPC, NULL, 0);
}

VOID NTAPI(KeReleaseSpinLockFromDpcLevel)(PKSPIN_LOCK SpinLock)
{
    poolsim_spin_release(SpinLock, 0, POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK_FROM_DPC, NULL, 0);
}

/* The kernel's LOCK_QUEUE_OWNER bit of a handle's LockQueue.Lock: set while the handle holds its lock, clear
 * once it is released. (Bit 0, LOCK_QUEUE_WAIT, is never set: a waiter spins on the lock word.) */
#define LQ_OWNER ((uintptr_t)2)
#define LQ_BITS ((uintptr_t)3)

VOID poolsim_wdm_queued_acquire(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle, BOOLEAN AtDpcLevel,
                                const char *File, int Line)
{
    if (!LockHandle) { /* written before the raise */
        poolsim_irql_routine rt =
            AtDpcLevel ? POOLSIM_IRQL_RT_ACQUIRE_QUEUED_AT_DPC : POOLSIM_IRQL_RT_ACQUIRE_QUEUED;
        poolsim__irql_null(poolsim_irql_routine_name(rt), poolsim_irql(), File, Line);
        return;
    }
    /* The handle is written, never read, before the acquire (a caller's handle is uninitialised then). Its
     * lock carries the owner bit from before the acquire: if the acquire's report ends the call (a handler's
     * longjmp) while the thread still holds the lock, the handle still releases it. */
    LockHandle->LockQueue.Next = NULL;
    LockHandle->LockQueue.Lock = (PKSPIN_LOCK)((uintptr_t)SpinLock | LQ_OWNER);
    LockHandle->OldIrql = poolsim_spin_acquire(
        SpinLock, AtDpcLevel ? POOLSIM_IRQL_RT_ACQUIRE_QUEUED_AT_DPC : POOLSIM_IRQL_RT_ACQUIRE_QUEUED, File,
        Line);
}

VOID poolsim_wdm_queued_release(PKLOCK_QUEUE_HANDLE LockHandle, BOOLEAN FromDpcLevel, const char *File,
                                int Line)
{
    poolsim_irql_routine rt =
        FromDpcLevel ? POOLSIM_IRQL_RT_RELEASE_QUEUED_FROM_DPC : POOLSIM_IRQL_RT_RELEASE_QUEUED;
    if (!LockHandle) {
        poolsim__irql_null(poolsim_irql_routine_name(rt), poolsim_irql(), File, Line);
        return;
    }
    uintptr_t held = (uintptr_t)LockHandle->LockQueue.Lock;
    PKSPIN_LOCK lock = (PKSPIN_LOCK)(held & ~LQ_BITS);
    if (lock && !(held & LQ_OWNER)) { /* a zeroed handle's NULL lock goes on: the core's NULL touch */
        /* Released already, or a handle of an earlier acquire: its OldIrql is not this hold's. Reported; the
         * lock and the IRQL stay as they are. */
        poolsim__queued_stale_release(lock, rt, File, Line);
        return;
    }
    /* The handle lets go once its hold ends: the lock is released, or the reported nested acquire it made is
     * undone. A reported release that changed nothing leaves it holding the lock. */
    int nest = poolsim__queued_nest(lock);
    poolsim_spin_release(lock, LockHandle->OldIrql, rt, File, Line);
    int now = poolsim__queued_nest(lock);
    if (now < 0 || now < nest)
        LockHandle->LockQueue.Lock = lock;
}

VOID NTAPI(KeAcquireInStackQueuedSpinLock)(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle)
{
    poolsim_wdm_queued_acquire(SpinLock, LockHandle, FALSE, NULL, 0);
}

VOID NTAPI(KeAcquireInStackQueuedSpinLockAtDpcLevel)(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle)
{
    poolsim_wdm_queued_acquire(SpinLock, LockHandle, TRUE, NULL, 0);
}

VOID NTAPI(KeReleaseInStackQueuedSpinLock)(PKLOCK_QUEUE_HANDLE LockHandle)
{
    poolsim_wdm_queued_release(LockHandle, FALSE, NULL, 0);
}

VOID NTAPI(KeReleaseInStackQueuedSpinLockFromDpcLevel)(PKLOCK_QUEUE_HANDLE LockHandle)
{
    poolsim_wdm_queued_release(LockHandle, TRUE, NULL, 0);
}

VOID NTAPI(ExInitializeFastMutex)(PFAST_MUTEX FastMutex)
{
    if (!FastMutex) {
        poolsim__irql_null("ExInitializeFastMutex", poolsim_irql(), NULL, 0);
        return;
    }
    memset(FastMutex, 0, sizeof *FastMutex);
    FastMutex->Count = 1; /* FM_LOCK_BIT: free */
}

/* ExAcquireFastMutex, or ExTryToAcquireFastMutex (try): TRUE when the caller took it. */
static BOOLEAN fast_mutex_acquire(PFAST_MUTEX FastMutex, poolsim_irql_routine Routine, const char *File,
                                  int Line)
{
    KIRQL old =
        poolsim__fast_mutex_acquire(FastMutex, FastMutex ? &FastMutex->Owner : NULL, Routine, File, Line);
    /* Written by the owner only, after the acquire, as the kernel does. A reported recursive acquire returns
     * POOLSIM_NOT_ACQUIRED: the outer acquire's IRQL stays. */
    if (old == POOLSIM_NOT_ACQUIRED)
        return FALSE;
    FastMutex->OldIrql = old;
    return TRUE;
}

VOID poolsim_wdm_fast_mutex_acquire(PFAST_MUTEX FastMutex, const char *File, int Line)
{
    (void)fast_mutex_acquire(FastMutex, POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX, File, Line);
}

BOOLEAN poolsim_wdm_fast_mutex_try(PFAST_MUTEX FastMutex, const char *File, int Line)
{
    return fast_mutex_acquire(FastMutex, POOLSIM_IRQL_RT_TRY_FAST_MUTEX, File, Line);
}

VOID poolsim_wdm_fast_mutex_release(PFAST_MUTEX FastMutex, const char *File, int Line)
{
    poolsim__fast_mutex_release(FastMutex, FastMutex ? &FastMutex->Owner : NULL,
                                FastMutex ? (uint8_t)FastMutex->OldIrql : 0,
                                POOLSIM_IRQL_RT_RELEASE_FAST_MUTEX, File, Line);
}

VOID NTAPI(ExAcquireFastMutex)(PFAST_MUTEX FastMutex) { poolsim_wdm_fast_mutex_acquire(FastMutex, NULL, 0); }

VOID NTAPI(ExReleaseFastMutex)(PFAST_MUTEX FastMutex) { poolsim_wdm_fast_mutex_release(FastMutex, NULL, 0); }

BOOLEAN NTAPI(ExTryToAcquireFastMutex)(PFAST_MUTEX FastMutex)
{
    return poolsim_wdm_fast_mutex_try(FastMutex, NULL, 0);
}

VOID poolsim_wdm_fast_mutex_unsafe(PFAST_MUTEX FastMutex, BOOLEAN Release, const char *File, int Line)
{
    void **owner = FastMutex ? &FastMutex->Owner : NULL;
    if (Release) /* the IRQL stays: no OldIrql is read or written */
        poolsim__fast_mutex_release(FastMutex, owner, 0, POOLSIM_IRQL_RT_RELEASE_FAST_MUTEX_UNSAFE, File,
                                    Line);
    else
        (void)poolsim__fast_mutex_acquire(FastMutex, owner, POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX_UNSAFE, File,
                                          Line);
}

VOID NTAPI(ExAcquireFastMutexUnsafe)(PFAST_MUTEX FastMutex)
{
    poolsim_wdm_fast_mutex_unsafe(FastMutex, FALSE, NULL, 0);
}

VOID NTAPI(ExReleaseFastMutexUnsafe)(PFAST_MUTEX FastMutex)
{
    poolsim_wdm_fast_mutex_unsafe(FastMutex, TRUE, NULL, 0);
}

VOID NTAPI(KeEnterCriticalRegion)(VOID) { poolsim_critical_region(true, NULL, 0); }

VOID NTAPI(KeLeaveCriticalRegion)(VOID) { poolsim_critical_region(false, NULL, 0); }

/* ---- Memory -------------------------------------------------------------------- */

SIZE_T NTAPI(RtlCompareMemory)(const VOID *Source1, const VOID *Source2, SIZE_T Length)
{
    const UCHAR *a = (const UCHAR *)Source1;
    const UCHAR *b = (const UCHAR *)Source2;
    SIZE_T i = 0;
    while (i < Length && a[i] == b[i])
        i++;
    return i;
}

PVOID(RtlSecureZeroMemory)(PVOID ptr, SIZE_T cnt)
{
    volatile UCHAR *p = (volatile UCHAR *)ptr;
    while (cnt-- != 0)
        *p++ = 0;
    return ptr;
}

/* ---- Bug checks ------------------------------------------------------------------ */

void poolsim_wdm_bugcheck(ULONG BugCheckCode, ULONG_PTR P1, ULONG_PTR P2, ULONG_PTR P3, ULONG_PTR P4,
                          const char *Routine, const char *File, int Line)
{
    poolsim_bugcheck_raise(BugCheckCode, P1, P2, P3, P4, File, Line, Routine);
    poolsim__wdm_stop(Routine != NULL ? Routine : "KeBugCheckEx");
}

VOID NTAPI(KeBugCheckEx)(ULONG BugCheckCode, ULONG_PTR BugCheckParameter1, ULONG_PTR BugCheckParameter2,
                         ULONG_PTR BugCheckParameter3, ULONG_PTR BugCheckParameter4)
{
    poolsim_bugcheck_raise(BugCheckCode, BugCheckParameter1, BugCheckParameter2, BugCheckParameter3,
                           BugCheckParameter4, NULL, 0, "KeBugCheckEx");
    poolsim__wdm_stop("KeBugCheckEx");
}

VOID NTAPI(KeBugCheck)(ULONG BugCheckCode)
{
    poolsim_bugcheck_raise(BugCheckCode, 0, 0, 0, 0, NULL, 0, "KeBugCheck");
    poolsim__wdm_stop("KeBugCheck");
}

/* ---- DbgPrint's formatter -------------------------------------------------------- */

/*
 * A printf with the kernel's argument sizes, independent of the host's long:
 * h/hh short/char, l and I32 32 bits, ll, L and I64 64 bits, I, z and t
 * pointer-sized, j intmax_t; w or l before c/s/Z and the upper-case C/S mean
 * 16-bit WCHAR text, printed as ASCII ('?' for other characters). Integers,
 * characters and strings are formatted here; only floating point goes to the
 * host's snprintf. %n writes nothing.
 */

#define POOLSIM__WDM_F_LEFT 0x01u
#define POOLSIM__WDM_F_PLUS 0x02u
#define POOLSIM__WDM_F_SPACE 0x04u
#define POOLSIM__WDM_F_ALT 0x08u
#define POOLSIM__WDM_F_ZERO 0x10u

enum poolsim__wdm_size {
    POOLSIM__WDM_SZ_INT,
    POOLSIM__WDM_SZ_CHAR,
    POOLSIM__WDM_SZ_SHORT,
    POOLSIM__WDM_SZ_32,
    POOLSIM__WDM_SZ_64,
    POOLSIM__WDM_SZ_PTR,
    POOLSIM__WDM_SZ_MAX
};

typedef struct poolsim__wdm_sink {
    char *buf;
    size_t cap;
    size_t len; /* characters the whole text needs so far */
} poolsim__wdm_sink;

typedef struct poolsim__wdm_spec {
    unsigned flags;
    int width;
    int prec; /* -1: none */
    enum poolsim__wdm_size size;
    int wide;   /* w/l with c, s, Z */
    int narrow; /* h with c, s */
} poolsim__wdm_spec;

/* The layout of ANSI_STRING and UNICODE_STRING. */
typedef struct poolsim__wdm_counted {
    USHORT Length; /* bytes */
    USHORT MaximumLength;
    const void *Buffer;
} poolsim__wdm_counted;

static void poolsim__wdm_put(poolsim__wdm_sink *s, char c)
{
    if (s->len + 1 < s->cap)
        s->buf[s->len] = c;
    s->len++;
}

static void poolsim__wdm_repeat(poolsim__wdm_sink *s, char c, int n)
{
    while (n-- > 0)
        poolsim__wdm_put(s, c);
}

static char poolsim__wdm_ascii(unsigned c) { return c < 0x80u ? (char)c : '?'; }

/* Text of n characters, 8-bit (unit 1) or WCHAR (unit 2), padded to width. */
static void poolsim__wdm_text(poolsim__wdm_sink *s, const poolsim__wdm_spec *sp, const void *text, size_t n,
                              int unit)
{
    size_t i;
    int pad = sp->width > 0 && (size_t)sp->width > n ? sp->width - (int)n : 0;
    if (!(sp->flags & POOLSIM__WDM_F_LEFT))
        poolsim__wdm_repeat(s, ' ', pad);
    for (i = 0; i < n; i++) {
        if (unit == 1) {
            poolsim__wdm_put(s, ((const char *)text)[i]);
        } else {
            const unsigned char *b = (const unsigned char *)text + 2 * i; /* WCHAR is little-endian UTF-16 */
            poolsim__wdm_put(s, poolsim__wdm_ascii((unsigned)b[0] | ((unsigned)b[1] << 8)));
        }
    }
    if (sp->flags & POOLSIM__WDM_F_LEFT)
        poolsim__wdm_repeat(s, ' ', pad);
}

/* Length of a NUL-terminated string of units, at most max. */
static size_t poolsim__wdm_strlen(const void *text, int unit, size_t max)
{
    size_t n = 0;
    if (unit == 1) {
        const char *c = (const char *)text;
        while (n < max && c[n] != '\0')
            n++;
    } else {
        const unsigned char *b = (const unsigned char *)text;
        while (n < max && (b[2 * n] | b[2 * n + 1]) != 0)
            n++;
    }
    return n;
}

static void poolsim__wdm_integer(poolsim__wdm_sink *s, const poolsim__wdm_spec *sp, char conv, uint64_t mag,
                                 int negative)
{
    static const char lower[] = "0123456789abcdef";
    static const char upper[] = "0123456789ABCDEF";
    const char *digits = conv == 'X' ? upper : lower;
    unsigned base = conv == 'o' ? 8u : (conv == 'x' || conv == 'X') ? 16u : 10u;
    char buf[24];
    char prefix[3];
    int nd = 0, np = 0, zeros, pad, body, i;
    uint64_t v = mag;

    do {
        buf[nd++] = digits[v % base];
        v /= base;
    } while (v != 0);
    if (sp->prec == 0 && mag == 0)
        nd = 0;
    zeros = sp->prec > nd ? sp->prec - nd : 0;

    if (conv == 'd' || conv == 'i') {
        if (negative)
            prefix[np++] = '-';
        else if (sp->flags & POOLSIM__WDM_F_PLUS)
            prefix[np++] = '+';
        else if (sp->flags & POOLSIM__WDM_F_SPACE)
            prefix[np++] = ' ';
    } else if ((sp->flags & POOLSIM__WDM_F_ALT) && mag != 0 && base == 16) {
        prefix[np++] = '0';
        prefix[np++] = conv;
    } else if ((sp->flags & POOLSIM__WDM_F_ALT) && base == 8 && zeros == 0 &&
               (nd == 0 || buf[nd - 1] != '0')) {
        zeros = 1;
    }

    body = np + zeros + nd;
    pad = sp->width > body ? sp->width - body : 0;
    if ((sp->flags & POOLSIM__WDM_F_ZERO) && !(sp->flags & POOLSIM__WDM_F_LEFT) && sp->prec < 0) {
        zeros += pad;
        pad = 0;
    }
    if (!(sp->flags & POOLSIM__WDM_F_LEFT))
        poolsim__wdm_repeat(s, ' ', pad);
    for (i = 0; i < np; i++)
        poolsim__wdm_put(s, prefix[i]);
    poolsim__wdm_repeat(s, '0', zeros);
    while (nd > 0)
        poolsim__wdm_put(s, buf[--nd]);
    if (sp->flags & POOLSIM__WDM_F_LEFT)
        poolsim__wdm_repeat(s, ' ', pad);
}

static void poolsim__wdm_signed(poolsim__wdm_sink *s, const poolsim__wdm_spec *sp, char conv, va_list *ap)
{
    int64_t v;
    switch (sp->size) {
    case POOLSIM__WDM_SZ_CHAR:
        v = (signed char)va_arg(*ap, int);
        break;
    case POOLSIM__WDM_SZ_SHORT:
        v = (short)va_arg(*ap, int);
        break;
    case POOLSIM__WDM_SZ_32:
        v = va_arg(*ap, LONG);
        break;
    case POOLSIM__WDM_SZ_64:
        v = va_arg(*ap, LONGLONG);
        break;
    case POOLSIM__WDM_SZ_PTR:
        v = va_arg(*ap, LONG_PTR);
        break;
    case POOLSIM__WDM_SZ_MAX:
        v = (int64_t)va_arg(*ap, intmax_t);
        break;
    default:
        v = va_arg(*ap, int);
        break;
    }
    poolsim__wdm_integer(s, sp, conv, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, v < 0);
}

static void poolsim__wdm_unsigned(poolsim__wdm_sink *s, const poolsim__wdm_spec *sp, char conv, va_list *ap)
{
    uint64_t v;
    switch (sp->size) {
    case POOLSIM__WDM_SZ_CHAR:
        v = (unsigned char)va_arg(*ap, unsigned);
        break;
    case POOLSIM__WDM_SZ_SHORT:
        v = (unsigned short)va_arg(*ap, unsigned);
        break;
    case POOLSIM__WDM_SZ_32:
        v = va_arg(*ap, ULONG);
        break;
    case POOLSIM__WDM_SZ_64:
        v = va_arg(*ap, ULONGLONG);
        break;
    case POOLSIM__WDM_SZ_PTR:
        v = va_arg(*ap, ULONG_PTR);
        break;
    case POOLSIM__WDM_SZ_MAX:
        v = (uint64_t)va_arg(*ap, uintmax_t);
        break;
    default:
        v = va_arg(*ap, unsigned);
        break;
    }
    poolsim__wdm_integer(s, sp, conv, v, 0);
}

/* %p: the pointer in 2*sizeof(PVOID) upper-case hex digits, as the kernel
 * prints it. */
static void poolsim__wdm_pointer(poolsim__wdm_sink *s, const poolsim__wdm_spec *sp, va_list *ap)
{
    poolsim__wdm_spec p = *sp;
    p.flags &= ~(POOLSIM__WDM_F_ALT | POOLSIM__WDM_F_ZERO);
    p.prec = (int)(2 * sizeof(void *));
    poolsim__wdm_integer(s, &p, 'X', (uint64_t)(uintptr_t)va_arg(*ap, void *), 0);
}

static void poolsim__wdm_float(poolsim__wdm_sink *s, const poolsim__wdm_spec *sp, char conv, va_list *ap)
{
    char fmt[16];
    size_t n = 0;
    int len;
    double v = va_arg(*ap, double); /* %Lf is a double too: Windows' long double is a double */
    size_t room = s->len < s->cap ? s->cap - s->len : 0;

    fmt[n++] = '%';
    if (sp->flags & POOLSIM__WDM_F_LEFT)
        fmt[n++] = '-';
    if (sp->flags & POOLSIM__WDM_F_PLUS)
        fmt[n++] = '+';
    if (sp->flags & POOLSIM__WDM_F_SPACE)
        fmt[n++] = ' ';
    if (sp->flags & POOLSIM__WDM_F_ALT)
        fmt[n++] = '#';
    if (sp->flags & POOLSIM__WDM_F_ZERO)
        fmt[n++] = '0';
    fmt[n++] = '*';
    if (sp->prec >= 0) {
        fmt[n++] = '.';
        fmt[n++] = '*';
    }
    fmt[n++] = conv;
    fmt[n] = '\0';
    if (sp->prec >= 0)
        len = snprintf(room != 0 ? s->buf + s->len : NULL, room, fmt, sp->width, sp->prec, v);
    else
        len = snprintf(room != 0 ? s->buf + s->len : NULL, room, fmt, sp->width, v);
    if (len > 0)
        s->len += (size_t)len;
}

static void poolsim__wdm_string(poolsim__wdm_sink *s, const poolsim__wdm_spec *sp, char conv, va_list *ap)
{
    size_t max = sp->prec >= 0 ? (size_t)sp->prec : (size_t)-1;
    const void *text;
    int unit = 1;
    size_t n;

    if (conv == 'Z') {
        const poolsim__wdm_counted *str = va_arg(*ap, const poolsim__wdm_counted *);
        unit = sp->wide ? 2 : 1;
        if (str == NULL || str->Buffer == NULL) {
            poolsim__wdm_text(s, sp, "(null)", 6, 1);
            return;
        }
        n = str->Length / (size_t)unit;
        poolsim__wdm_text(s, sp, str->Buffer, n < max ? n : max, unit);
        return;
    }
    if ((conv == 's' && sp->wide) || (conv == 'S' && !sp->narrow))
        unit = 2;
    text = va_arg(*ap, const void *);
    if (text == NULL) {
        poolsim__wdm_text(s, sp, "(null)", 6, 1);
        return;
    }
    n = poolsim__wdm_strlen(text, unit, max);
    poolsim__wdm_text(s, sp, text, n, unit);
}

static void poolsim__wdm_char(poolsim__wdm_sink *s, const poolsim__wdm_spec *sp, char conv, va_list *ap)
{
    unsigned v = (unsigned)va_arg(*ap, int);
    char c;
    if ((conv == 'c' && sp->wide) || (conv == 'C' && !sp->narrow))
        c = poolsim__wdm_ascii(v & 0xFFFFu);
    else
        c = (char)v;
    poolsim__wdm_text(s, sp, &c, 1, 1);
}

/* Parses the length prefix at *f. */
static void poolsim__wdm_length(const char **f, poolsim__wdm_spec *sp)
{
    const char *p = *f;
    switch (*p) {
    case 'h':
        p++;
        sp->narrow = 1;
        sp->size = POOLSIM__WDM_SZ_SHORT;
        if (*p == 'h') {
            p++;
            sp->size = POOLSIM__WDM_SZ_CHAR;
        }
        break;
    case 'l':
        p++;
        sp->wide = 1;
        sp->size = POOLSIM__WDM_SZ_32;
        if (*p == 'l') {
            p++;
            sp->wide = 0;
            sp->size = POOLSIM__WDM_SZ_64;
        }
        break;
    case 'w':
        p++;
        sp->wide = 1;
        break;
    case 'L':
        p++;
        sp->size = POOLSIM__WDM_SZ_64;
        break;
    case 'z':
    case 't':
        p++;
        sp->size = POOLSIM__WDM_SZ_PTR;
        break;
    case 'j':
        p++;
        sp->size = POOLSIM__WDM_SZ_MAX;
        break;
    case 'I':
        p++;
        if (p[0] == '6' && p[1] == '4') {
            p += 2;
            sp->size = POOLSIM__WDM_SZ_64;
        } else if (p[0] == '3' && p[1] == '2') {
            p += 2;
            sp->size = POOLSIM__WDM_SZ_32;
        } else {
            sp->size = POOLSIM__WDM_SZ_PTR;
        }
        break;
    default:
        break;
    }
    *f = p;
}

static void poolsim__wdm_format(poolsim__wdm_sink *s, const char *f, va_list *ap)
{
    while (*f != '\0') {
        const char *start = f;
        poolsim__wdm_spec sp;
        char conv;

        if (*f != '%') {
            poolsim__wdm_put(s, *f++);
            continue;
        }
        f++;
        memset(&sp, 0, sizeof(sp));
        sp.prec = -1;
        sp.size = POOLSIM__WDM_SZ_INT;
        for (;; f++) {
            if (*f == '-')
                sp.flags |= POOLSIM__WDM_F_LEFT;
            else if (*f == '+')
                sp.flags |= POOLSIM__WDM_F_PLUS;
            else if (*f == ' ')
                sp.flags |= POOLSIM__WDM_F_SPACE;
            else if (*f == '#')
                sp.flags |= POOLSIM__WDM_F_ALT;
            else if (*f == '0')
                sp.flags |= POOLSIM__WDM_F_ZERO;
            else
                break;
        }
        if (*f == '*') {
            f++;
            sp.width = va_arg(*ap, int);
            if (sp.width < 0) {
                sp.flags |= POOLSIM__WDM_F_LEFT;
                sp.width = sp.width == INT_MIN ? INT_MAX : -sp.width;
            }
        } else {
            while (*f >= '0' && *f <= '9') {
                if (sp.width < INT_MAX / 10)
                    sp.width = sp.width * 10 + (*f - '0');
                f++;
            }
        }
        if (*f == '.') {
            f++;
            sp.prec = 0;
            if (*f == '*') {
                f++;
                sp.prec = va_arg(*ap, int);
                if (sp.prec < 0)
                    sp.prec = -1;
            } else {
                while (*f >= '0' && *f <= '9') {
                    if (sp.prec < INT_MAX / 10)
                        sp.prec = sp.prec * 10 + (*f - '0');
                    f++;
                }
            }
        }
        poolsim__wdm_length(&f, &sp);
        conv = *f;
        if (conv != '\0')
            f++;
        switch (conv) {
        case 'd':
        case 'i':
            poolsim__wdm_signed(s, &sp, conv, ap);
            break;
        case 'u':
        case 'o':
        case 'x':
        case 'X':
            poolsim__wdm_unsigned(s, &sp, conv, ap);
            break;
        case 'p':
            poolsim__wdm_pointer(s, &sp, ap);
            break;
        case 'c':
        case 'C':
            poolsim__wdm_char(s, &sp, conv, ap);
            break;
        case 's':
        case 'S':
        case 'Z':
            poolsim__wdm_string(s, &sp, conv, ap);
            break;
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G':
        case 'a':
        case 'A':
            poolsim__wdm_float(s, &sp, conv, ap);
            break;
        case 'n':
            (void)va_arg(*ap, void *);
            break;
        case '%':
            poolsim__wdm_put(s, '%');
            break;
        default:
            /* Unknown or cut short: print the directive as written. */
            while (start < f)
                poolsim__wdm_put(s, *start++);
            break;
        }
    }
}

int poolsim_wdm_vsnprintf(char *buf, size_t size, PCSTR Format, va_list args)
{
    poolsim__wdm_sink s;
    va_list ap;

    s.buf = buf;
    s.cap = buf != NULL ? size : 0;
    s.len = 0;
    if (Format != NULL) {
        va_copy(ap, args);
        poolsim__wdm_format(&s, Format, &ap);
        va_end(ap);
    }
    if (s.cap != 0)
        s.buf[s.len < s.cap ? s.len : s.cap - 1] = '\0';
    return s.len > (size_t)INT_MAX ? INT_MAX : (int)s.len;
}

ULONG NTAPI vDbgPrintEx(ULONG ComponentId, ULONG Level, PCSTR Format, va_list arglist)
{
    char text[POOLSIM__WDM_DBGPRINT_MAX];
    (void)ComponentId;
    (void)Level;
    poolsim_wdm_vsnprintf(text, sizeof(text), Format, arglist);
    poolsim__wdm_print(text);
    return (ULONG)STATUS_SUCCESS;
}

ULONG POOLSIM_WDM_CDECL DbgPrint(PCSTR Format, ...)
{
    va_list ap;
    ULONG r;
    va_start(ap, Format);
    r = vDbgPrintEx(DPFLTR_DEFAULT_ID, DPFLTR_ERROR_LEVEL, Format, ap);
    va_end(ap);
    return r;
}

ULONG POOLSIM_WDM_CDECL DbgPrintEx(ULONG ComponentId, ULONG Level, PCSTR Format, ...)
{
    va_list ap;
    ULONG r;
    va_start(ap, Format);
    r = vDbgPrintEx(ComponentId, Level, Format, ap);
    va_end(ap);
    return r;
}
