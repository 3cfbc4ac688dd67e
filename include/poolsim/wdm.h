/* SPDX-License-Identifier: MIT */
/*
 * wdm.h — the WDK's kernel surface, in user mode, for unit tests of driver code.
 *
 * Driver sources include <poolsim/wdm.h> instead of the WDK's <wdm.h> and
 * compile unchanged on Linux and Windows: the types have their Windows sizes
 * on every host (ULONG is 32 bits on LP64 Linux too), the constants have the
 * WDK's names and values, and the pool routines run on the poolsim core, which
 * checks every call like Driver Verifier and turns each misuse into a bug
 * check delivered to the test. Values come from wdk-semantics.md; comments
 * cite its sections (§).
 *
 * Each pool routine is both a function with its real prototype and, unless
 * POOLSIM_NO_SITE_MACROS is defined, a function-like macro of the same name
 * that passes the caller's __FILE__ and __LINE__ to the core (the Track
 * library's trick). `&ExAllocatePoolWithTag` or a bare `ExAllocatePoolWithTag`
 * used as a callback is not followed by `(`, so it names the function, which
 * records the call site as unknown (file NULL).
 *
 * Never include this header in a real driver build: there the real <wdm.h>
 * and <poolsim/shim.h> are used.
 */
#ifndef POOLSIM_WDM_H
#define POOLSIM_WDM_H

#if defined(_WDMDDK_) || defined(_NTDDK_) || defined(_KERNEL_MODE)
#error                                                                                                       \
    "<poolsim/wdm.h> is the user-mode WDK surface; a driver build includes the real <wdm.h> and <poolsim/shim.h>"
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <poolsim/poolsim.h>

/* Pool tags are multi-character literals ('gaTX', §2.6): that is the WDK's
 * idiom, so GCC's -Wmultichar is silenced for the code that includes this
 * header (define POOLSIM_KEEP_MULTICHAR_WARNING to keep it). g++ before 13
 * ignores this pragma: C++ builds with it add -Wno-multichar. */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(POOLSIM_KEEP_MULTICHAR_WARNING)
#pragma GCC diagnostic ignored "-Wmultichar"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Compiler glue ------------------------------------------------------- */

#ifndef NTAPI
#if defined(_WIN32) && (defined(_M_IX86) || defined(__i386__))
#define NTAPI __stdcall
#else
#define NTAPI
#endif
#endif

#if defined(_WIN32)
#define POOLSIM_WDM_CDECL __cdecl /* DbgPrint is __cdecl in the WDK */
#else
#define POOLSIM_WDM_CDECL
#endif

#ifndef DECLSPEC_NORETURN
#if defined(_MSC_VER)
#define DECLSPEC_NORETURN __declspec(noreturn)
#elif defined(__GNUC__) || defined(__clang__)
#define DECLSPEC_NORETURN __attribute__((__noreturn__))
#else
#define DECLSPEC_NORETURN
#endif
#endif

#ifndef DECLSPEC_ALIGN
#if defined(_MSC_VER)
#define DECLSPEC_ALIGN(x) __declspec(align(x))
#elif defined(__GNUC__) || defined(__clang__)
#define DECLSPEC_ALIGN(x) __attribute__((__aligned__(x)))
#else
#define DECLSPEC_ALIGN(x)
#endif
#endif

/* The WDK's FORCEINLINE is MSVC's __forceinline. GCC gets an always-inlined
 * inline function, which needs no out-of-line copy even in C99. */
#ifndef FORCEINLINE
#if defined(_MSC_VER)
#define FORCEINLINE __forceinline
#elif defined(__GNUC__) || defined(__clang__)
#define FORCEINLINE __inline__ __attribute__((__always_inline__))
#else
#define FORCEINLINE inline
#endif
#endif

#ifndef NTKERNELAPI
#define NTKERNELAPI
#endif
#ifndef NTSYSAPI
#define NTSYSAPI
#endif
#ifndef NTHALAPI
#define NTHALAPI
#endif

#ifndef IN
#define IN
#endif
#ifndef OUT
#define OUT
#endif
#ifndef OPTIONAL
#define OPTIONAL
#endif
#ifndef CONST
#define CONST const
#endif

#define POOLSIM_WDM_CAT2_(a, b) a##b
#define POOLSIM_WDM_CAT_(a, b) POOLSIM_WDM_CAT2_(a, b)
#if defined(__GNUC__) || defined(__clang__)
#define POOLSIM_WDM_UNUSED_ __attribute__((__unused__))
#else
#define POOLSIM_WDM_UNUSED_
#endif
#if defined(__COUNTER__)
#define POOLSIM_WDM_UNIQUE_(prefix) POOLSIM_WDM_CAT_(prefix, __COUNTER__)
#else
#define POOLSIM_WDM_UNIQUE_(prefix) POOLSIM_WDM_CAT_(prefix, __LINE__)
#endif

/* C_ASSERT(e): a compile-time assertion, usable at file and block scope. */
#ifndef C_ASSERT
#if defined(__cplusplus) && __cplusplus >= 201103L
#define C_ASSERT(e) static_assert((e), #e)
#elif !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define C_ASSERT(e) _Static_assert((e), #e)
#else
#define C_ASSERT(e) typedef char POOLSIM_WDM_UNIQUE_(poolsim_wdm_c_assert_)[(e) ? 1 : -1] POOLSIM_WDM_UNUSED_
#endif
#endif

/* Nameless members, as in the WDK; NONAMELESSUNION names them s and u. */
#ifndef DUMMYSTRUCTNAME
#ifdef NONAMELESSUNION
#define DUMMYSTRUCTNAME s
#define DUMMYUNIONNAME u
#else
#define DUMMYSTRUCTNAME
#define DUMMYUNIONNAME
#endif
#endif

/* ---- Basic types: Windows sizes on every host ----------------------------- */

/* LONG and ULONG are 32 bits everywhere (Windows is LLP64). On Windows hosts
 * they are `long`, exactly as in the WDK; elsewhere int32_t/uint32_t. */
#ifndef VOID
#define VOID void
typedef char CHAR;
typedef short SHORT;
#if defined(_WIN32)
typedef long LONG;
#else
typedef int32_t LONG;
#endif
#endif
#if defined(_WIN32)
typedef unsigned long ULONG;
#else
typedef uint32_t ULONG;
#endif
typedef void *PVOID;
typedef unsigned char UCHAR;
typedef unsigned short USHORT;
typedef CHAR *PCHAR;
typedef UCHAR *PUCHAR;
typedef SHORT *PSHORT;
typedef USHORT *PUSHORT;
typedef LONG *PLONG;
typedef ULONG *PULONG;
typedef int64_t LONG64;
typedef uint64_t ULONG64;
typedef int64_t LONGLONG;
typedef uint64_t ULONGLONG;
typedef LONG64 *PLONG64;
typedef ULONG64 *PULONG64;
typedef LONGLONG *PLONGLONG;
typedef ULONGLONG *PULONGLONG;
typedef intptr_t LONG_PTR;
typedef uintptr_t ULONG_PTR;
typedef LONG_PTR *PLONG_PTR;
typedef ULONG_PTR *PULONG_PTR;
typedef ULONG_PTR SIZE_T;
typedef SIZE_T *PSIZE_T;
typedef LONG_PTR SSIZE_T;
typedef UCHAR BOOLEAN;
typedef BOOLEAN *PBOOLEAN;
typedef ULONG LOGICAL;
typedef ULONG *PLOGICAL;
typedef char CCHAR;
typedef CHAR *PSTR;
typedef const CHAR *PCSTR;
typedef PVOID HANDLE;
typedef HANDLE *PHANDLE;
typedef LONG NTSTATUS;
typedef NTSTATUS *PNTSTATUS;
typedef UCHAR KIRQL;
typedef KIRQL *PKIRQL;
typedef LONG KPRIORITY;

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

/* The sizes the rest of this header and the core rely on. */
typedef char poolsim_wdm_check_ulong_[sizeof(ULONG) == 4 ? 1 : -1];
typedef char poolsim_wdm_check_size_t_[sizeof(SIZE_T) == sizeof(size_t) ? 1 : -1];

/* ---- Helper macros ---------------------------------------------------------- */

#define UNREFERENCED_PARAMETER(P) ((void)(P))
#define DBG_UNREFERENCED_PARAMETER(P) ((void)(P))
#define DBG_UNREFERENCED_LOCAL_VARIABLE(V) ((void)(V))
#define FIELD_OFFSET(type, field) ((LONG)offsetof(type, field))
#define RTL_FIELD_SIZE(type, field) (sizeof(((type *)0)->field))
#define RTL_SIZEOF_THROUGH_FIELD(type, field) (FIELD_OFFSET(type, field) + RTL_FIELD_SIZE(type, field))
#define RTL_NUMBER_OF(A) (sizeof(A) / sizeof((A)[0]))
#define CONTAINING_RECORD(address, type, field)                                                              \
    ((type *)((PCHAR)(address) - (ULONG_PTR)offsetof(type, field)))
#define ARGUMENT_PRESENT(ArgumentPointer) ((CHAR *)((ULONG_PTR)(ArgumentPointer)) != (CHAR *)NULL)

/* ---- NTSTATUS ------------------------------------------------------------------ */

/* Severity is in the top two bits: 0 success, 1 informational, 2 warning,
 * 3 error. */
#define NT_SUCCESS(Status) (((NTSTATUS)(Status)) >= 0)
#define NT_INFORMATION(Status) ((((ULONG)(Status)) >> 30) == 1)
#define NT_WARNING(Status) ((((ULONG)(Status)) >> 30) == 2)
#define NT_ERROR(Status) ((((ULONG)(Status)) >> 30) == 3)

#define STATUS_SUCCESS ((NTSTATUS)0x00000000L)
#define STATUS_TIMEOUT ((NTSTATUS)0x00000102L)
#define STATUS_PENDING ((NTSTATUS)0x00000103L)
#define STATUS_BUFFER_OVERFLOW ((NTSTATUS)0x80000005L)
#define STATUS_UNSUCCESSFUL ((NTSTATUS)0xC0000001L)
#define STATUS_NOT_IMPLEMENTED ((NTSTATUS)0xC0000002L)
#define STATUS_ACCESS_VIOLATION ((NTSTATUS)0xC0000005L)
#define STATUS_INVALID_PARAMETER ((NTSTATUS)0xC000000DL)
#define STATUS_NO_MEMORY ((NTSTATUS)0xC0000017L)
#define STATUS_BUFFER_TOO_SMALL ((NTSTATUS)0xC0000023L)
#define STATUS_QUOTA_EXCEEDED ((NTSTATUS)0xC0000044L)
#define STATUS_INSUFFICIENT_RESOURCES ((NTSTATUS)0xC000009AL) /* what a failed allocation raises (§2.4) */
#define STATUS_NOT_SUPPORTED ((NTSTATUS)0xC00000BBL)
#define STATUS_INVALID_PARAMETER_1 ((NTSTATUS)0xC00000EFL)
#define STATUS_INVALID_PARAMETER_2 ((NTSTATUS)0xC00000F0L)
#define STATUS_INVALID_PARAMETER_3 ((NTSTATUS)0xC00000F1L)
#define STATUS_INVALID_PARAMETER_4 ((NTSTATUS)0xC00000F2L)
#define STATUS_INVALID_PARAMETER_5 ((NTSTATUS)0xC00000F3L)
#define STATUS_INVALID_PARAMETER_6 ((NTSTATUS)0xC00000F4L)
#define STATUS_INVALID_PARAMETER_7 ((NTSTATUS)0xC00000F5L)
#define STATUS_INVALID_PARAMETER_8 ((NTSTATUS)0xC00000F6L)
#define STATUS_INVALID_PARAMETER_9 ((NTSTATUS)0xC00000F7L)
#define STATUS_INVALID_PARAMETER_10 ((NTSTATUS)0xC00000F8L)
#define STATUS_INVALID_PARAMETER_11 ((NTSTATUS)0xC00000F9L)
#define STATUS_INVALID_PARAMETER_12 ((NTSTATUS)0xC00000FAL)
#define STATUS_NOT_FOUND ((NTSTATUS)0xC0000225L)

/* ---- Pages (§0: PAGE_SIZE is 0x1000 on every Windows architecture) -------- */

/* The WDK's value wins over any host definition in a driver's translation
 * unit. */
#ifdef PAGE_SIZE
#undef PAGE_SIZE
#endif
#ifdef PAGE_SHIFT
#undef PAGE_SHIFT
#endif
#define PAGE_SIZE 0x1000
#define PAGE_SHIFT 12L

/* Pages needed for Size bytes. */
#define BYTES_TO_PAGES(Size)                                                                                 \
    ((ULONG)(((ULONG_PTR)(Size) >> PAGE_SHIFT) + (((ULONG_PTR)(Size) & (PAGE_SIZE - 1)) != 0)))
/* Size rounded up to a multiple of PAGE_SIZE. */
#define ROUND_TO_PAGES(Size) (((ULONG_PTR)(Size) + PAGE_SIZE - 1) & ~((ULONG_PTR)PAGE_SIZE - 1))
/* The start of the page holding Va. */
#define PAGE_ALIGN(Va) ((PVOID)((ULONG_PTR)(Va) & ~((ULONG_PTR)PAGE_SIZE - 1)))
/* Va's offset inside its page. */
#define BYTE_OFFSET(Va) ((ULONG)((LONG_PTR)(Va) & (PAGE_SIZE - 1)))
/* Pages touched by the range [Va, Va + Size). */
#define ADDRESS_AND_SIZE_TO_SPAN_PAGES(Va, Size)                                                             \
    ((ULONG)((((ULONG_PTR)BYTE_OFFSET(Va)) + ((SIZE_T)(Size)) + (PAGE_SIZE - 1)) >> PAGE_SHIFT))

/* ---- IRQL (§4.1, the x64 numbers on every host) ---------------------------- */

#define PASSIVE_LEVEL 0
#define LOW_LEVEL 0
#define APC_LEVEL 1
#define DISPATCH_LEVEL 2
#define CMCI_LEVEL 5
#define CLOCK_LEVEL 13
#define IPI_LEVEL 14
#define DRS_LEVEL 14
#define POWER_LEVEL 14
#define PROFILE_LEVEL 15
#define HIGH_LEVEL 15
/* UNCONFIRMED (§4.1): the x64 headers say IPI_LEVEL-2 (12) or IPI_LEVEL-1 (13).
 * -DPOOLSIM_DEFAULT_SYNCH_LEVEL=13 changes this and the synch_level option. */
#define SYNCH_LEVEL POOLSIM_DEFAULT_SYNCH_LEVEL

/* The calling thread's simulated IRQL. IRQL: any. */
POOLSIM_API KIRQL NTAPI KeGetCurrentIrql(VOID);
#define KeGetCurrentIrql() ((KIRQL)poolsim__irql_inline()) /* inline where it can be (poolsim.h) */

/* ---- IRQL routines, spin locks, fast mutexes (§4.2, §4.3, §5.3) -------------- */

/*
 * The IRQL is simulated per thread and these routines move it like the
 * kernel; the locks really lock (a thread that finds one held spins until it
 * is free). Every rule of §4 is checked with the bug check Driver Verifier
 * raises (docs/semantics.md, "IRQL and locks", lists them with their
 * parameters); each thread's last transitions are kept and shown in IRQL and
 * lock reports. Like the pool routines, each routine is also a macro that
 * passes the caller's file and line.
 */

typedef ULONG_PTR KSPIN_LOCK;
typedef KSPIN_LOCK *PKSPIN_LOCK;

/* An in-stack queued spin lock's handle; the caller keeps it on its stack
 * between acquire and release. Lock is the spin lock, with bit 1 (the
 * kernel's LOCK_QUEUE_OWNER) set while the handle holds it; OldIrql is the
 * IRQL the acquire found. */
typedef struct _KSPIN_LOCK_QUEUE {
    struct _KSPIN_LOCK_QUEUE *volatile Next;
    PKSPIN_LOCK volatile Lock;
} KSPIN_LOCK_QUEUE, *PKSPIN_LOCK_QUEUE;

typedef struct _KLOCK_QUEUE_HANDLE {
    KSPIN_LOCK_QUEUE LockQueue;
    KIRQL OldIrql;
} KLOCK_QUEUE_HANDLE, *PKLOCK_QUEUE_HANDLE;

/* The WDK's layout (Count, Owner, Contention, an event, OldIrql). poolsim
 * uses Owner (the owning thread, NULL when free) and OldIrql; Count is 1
 * after ExInitializeFastMutex and not maintained after. */
typedef struct _FAST_MUTEX {
    volatile LONG Count;
    PVOID Owner;
    ULONG Contention;
    struct {
        ULONG_PTR Reserved[3]; /* the KEVENT a waiter sleeps on in the kernel */
    } Event;
    ULONG OldIrql;
} FAST_MUTEX, *PFAST_MUTEX;

/* Raises to NewIrql (>= the current IRQL) and stores the IRQL before in *OldIrql. IRQL: any. */
POOLSIM_API VOID NTAPI KeRaiseIrql(KIRQL NewIrql, PKIRQL OldIrql);
/* Lowers to NewIrql (<= the current IRQL): the value the matching raise returned. IRQL: any. */
POOLSIM_API VOID NTAPI KeLowerIrql(KIRQL NewIrql);
/* Raises to DISPATCH_LEVEL; returns the IRQL before. IRQL <= DISPATCH_LEVEL. */
POOLSIM_API KIRQL NTAPI KeRaiseIrqlToDpcLevel(VOID);
/* Raises to SYNCH_LEVEL (the synch_level option); returns the IRQL before. IRQL <= SYNCH_LEVEL. */
POOLSIM_API KIRQL NTAPI KeRaiseIrqlToSynchLevel(VOID);
/* *SpinLock = 0. IRQL: any. */
POOLSIM_API VOID NTAPI KeInitializeSpinLock(PKSPIN_LOCK SpinLock);
/* Raises to DISPATCH_LEVEL, takes the lock, stores the IRQL before in *OldIrql. IRQL <= DISPATCH_LEVEL. */
POOLSIM_API VOID NTAPI KeAcquireSpinLock(PKSPIN_LOCK SpinLock, PKIRQL OldIrql);
/* KeAcquireSpinLock returning the IRQL before. IRQL <= DISPATCH_LEVEL. */
POOLSIM_API KIRQL NTAPI KeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK SpinLock);
/* Gives the lock back and lowers to NewIrql, the OldIrql of the acquire. IRQL: DISPATCH_LEVEL. */
POOLSIM_API VOID NTAPI KeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql);
/* Takes the lock without changing the IRQL. IRQL >= DISPATCH_LEVEL. */
POOLSIM_API VOID NTAPI KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock);
/* Gives back a lock taken AtDpcLevel; the IRQL stays. IRQL >= DISPATCH_LEVEL. */
POOLSIM_API VOID NTAPI KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK SpinLock);
/* Raises to DISPATCH_LEVEL and takes SpinLock as an in-stack queued lock. IRQL <= DISPATCH_LEVEL. */
POOLSIM_API VOID NTAPI KeAcquireInStackQueuedSpinLock(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle);
/* The same without changing the IRQL. IRQL >= DISPATCH_LEVEL. */
POOLSIM_API VOID NTAPI KeAcquireInStackQueuedSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock,
                                                                 PKLOCK_QUEUE_HANDLE LockHandle);
/* Gives the lock back and restores the IRQL saved in the handle. IRQL: DISPATCH_LEVEL. */
POOLSIM_API VOID NTAPI KeReleaseInStackQueuedSpinLock(PKLOCK_QUEUE_HANDLE LockHandle);
/* Gives back a lock taken AtDpcLevel; the IRQL stays. IRQL >= DISPATCH_LEVEL. */
POOLSIM_API VOID NTAPI KeReleaseInStackQueuedSpinLockFromDpcLevel(PKLOCK_QUEUE_HANDLE LockHandle);
/* A free fast mutex. IRQL <= DISPATCH_LEVEL. */
POOLSIM_API VOID NTAPI ExInitializeFastMutex(PFAST_MUTEX FastMutex);
/* Raises to APC_LEVEL and takes the mutex, waiting while another thread has it. IRQL <= APC_LEVEL. */
POOLSIM_API VOID NTAPI ExAcquireFastMutex(PFAST_MUTEX FastMutex);
/* Gives the mutex back and restores the IRQL of the acquire. IRQL: APC_LEVEL. */
POOLSIM_API VOID NTAPI ExReleaseFastMutex(PFAST_MUTEX FastMutex);
/* ExAcquireFastMutex without the wait: FALSE at once when any thread (the caller too) has the mutex.
 * IRQL <= APC_LEVEL. */
POOLSIM_API BOOLEAN NTAPI ExTryToAcquireFastMutex(PFAST_MUTEX FastMutex);
/* Takes the mutex, waiting, without raising the IRQL: for a caller at APC_LEVEL or inside a critical region.
 * Released by ExReleaseFastMutexUnsafe. IRQL <= APC_LEVEL. */
POOLSIM_API VOID NTAPI ExAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex);
/* Gives back a mutex taken by ExAcquireFastMutexUnsafe; the IRQL stays. IRQL <= APC_LEVEL. */
POOLSIM_API VOID NTAPI ExReleaseFastMutexUnsafe(PFAST_MUTEX FastMutex);
/* Counts a critical region (normal kernel APCs off). IRQL <= APC_LEVEL. */
POOLSIM_API VOID NTAPI KeEnterCriticalRegion(VOID);
/* Leaves one. IRQL <= APC_LEVEL. */
POOLSIM_API VOID NTAPI KeLeaveCriticalRegion(VOID);

/* The site-capturing entry points behind the macros that need the handle or
 * the mutex (the others call the core directly). File NULL means unknown. */
POOLSIM_API VOID poolsim_wdm_queued_acquire(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle, BOOLEAN AtDpcLevel,
                                            const char *File, int Line);
POOLSIM_API VOID poolsim_wdm_queued_release(PKLOCK_QUEUE_HANDLE LockHandle, BOOLEAN FromDpcLevel, const char *File,
                                            int Line);
POOLSIM_API VOID poolsim_wdm_fast_mutex_acquire(PFAST_MUTEX FastMutex, const char *File, int Line);
POOLSIM_API VOID poolsim_wdm_fast_mutex_release(PFAST_MUTEX FastMutex, const char *File, int Line);
POOLSIM_API BOOLEAN poolsim_wdm_fast_mutex_try(PFAST_MUTEX FastMutex, const char *File, int Line);
POOLSIM_API VOID poolsim_wdm_fast_mutex_unsafe(PFAST_MUTEX FastMutex, BOOLEAN Release, const char *File,
                                               int Line);

#ifndef POOLSIM_NO_SITE_MACROS
/* Raise and lower are inline where they can be (poolsim.h, poolsim__irql_raise_inline). */
#define KeRaiseIrql(NewIrql, OldIrql)                                                                        \
    ((void)(*(OldIrql) = poolsim__irql_raise_inline((uint8_t)(NewIrql), POOLSIM_IRQL_RT_RAISE_IRQL,          \
                                                    __FILE__, __LINE__)))
#define KeLowerIrql(NewIrql) poolsim__irql_lower_inline((uint8_t)(NewIrql), __FILE__, __LINE__)
#define KeRaiseIrqlToDpcLevel()                                                                              \
    ((KIRQL)poolsim__irql_raise_inline(DISPATCH_LEVEL, POOLSIM_IRQL_RT_RAISE_TO_DPC, __FILE__, __LINE__))
#define KeRaiseIrqlToSynchLevel()                                                                            \
    ((KIRQL)poolsim_irql_raise(SYNCH_LEVEL, POOLSIM_IRQL_RT_RAISE_TO_SYNCH, __FILE__, __LINE__))
#define KeAcquireSpinLock(SpinLock, OldIrql)                                                                 \
    ((void)(*(OldIrql) = poolsim_spin_acquire((SpinLock), POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK, __FILE__, __LINE__)))
#define KeAcquireSpinLockRaiseToDpc(SpinLock)                                                                \
    ((KIRQL)poolsim_spin_acquire((SpinLock), POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_RAISE, __FILE__, __LINE__))
#define KeReleaseSpinLock(SpinLock, NewIrql)                                                                 \
    poolsim_spin_release((SpinLock), (uint8_t)(NewIrql), POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK, __FILE__, __LINE__)
#define KeAcquireSpinLockAtDpcLevel(SpinLock)                                                                \
    ((void)poolsim_spin_acquire((SpinLock), POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_AT_DPC, __FILE__, __LINE__))
#define KeReleaseSpinLockFromDpcLevel(SpinLock)                                                              \
    poolsim_spin_release((SpinLock), 0, POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK_FROM_DPC, __FILE__, __LINE__)
#define KeAcquireInStackQueuedSpinLock(SpinLock, LockHandle)                                                 \
    poolsim_wdm_queued_acquire((SpinLock), (LockHandle), FALSE, __FILE__, __LINE__)
#define KeAcquireInStackQueuedSpinLockAtDpcLevel(SpinLock, LockHandle)                                       \
    poolsim_wdm_queued_acquire((SpinLock), (LockHandle), TRUE, __FILE__, __LINE__)
#define KeReleaseInStackQueuedSpinLock(LockHandle) poolsim_wdm_queued_release((LockHandle), FALSE, __FILE__, __LINE__)
#define KeReleaseInStackQueuedSpinLockFromDpcLevel(LockHandle)                                               \
    poolsim_wdm_queued_release((LockHandle), TRUE, __FILE__, __LINE__)
#define ExAcquireFastMutex(FastMutex) poolsim_wdm_fast_mutex_acquire((FastMutex), __FILE__, __LINE__)
#define ExReleaseFastMutex(FastMutex) poolsim_wdm_fast_mutex_release((FastMutex), __FILE__, __LINE__)
#define ExTryToAcquireFastMutex(FastMutex) poolsim_wdm_fast_mutex_try((FastMutex), __FILE__, __LINE__)
#define ExAcquireFastMutexUnsafe(FastMutex)                                                                  \
    poolsim_wdm_fast_mutex_unsafe((FastMutex), FALSE, __FILE__, __LINE__)
#define ExReleaseFastMutexUnsafe(FastMutex)                                                                  \
    poolsim_wdm_fast_mutex_unsafe((FastMutex), TRUE, __FILE__, __LINE__)
#define KeEnterCriticalRegion() poolsim_critical_region(true, __FILE__, __LINE__)
#define KeLeaveCriticalRegion() poolsim_critical_region(false, __FILE__, __LINE__)
#endif /* POOLSIM_NO_SITE_MACROS */

/* ---- Pool types, flags and parameters (§2.1–§2.3) ------------------------- */

typedef enum _POOL_TYPE {
    NonPagedPool = 0,
    NonPagedPoolExecute = 0,
    PagedPool = 1,
    NonPagedPoolMustSucceed = 2,
    DontUseThisType = 3,
    NonPagedPoolCacheAligned = 4,
    PagedPoolCacheAligned = 5,
    NonPagedPoolCacheAlignedMustS = 6,
    MaxPoolType = 7,
    NonPagedPoolBase = 0,
    NonPagedPoolBaseMustSucceed = 2,
    NonPagedPoolBaseCacheAligned = 4,
    NonPagedPoolBaseCacheAlignedMustS = 6,
    NonPagedPoolSession = 32,
    PagedPoolSession = 33,
    NonPagedPoolMustSucceedSession = 34,
    DontUseThisTypeSession = 35,
    NonPagedPoolCacheAlignedSession = 36,
    PagedPoolCacheAlignedSession = 37,
    NonPagedPoolCacheAlignedMustSSession = 38,
    NonPagedPoolNx = 512,
    NonPagedPoolNxCacheAligned = 516,
    NonPagedPoolSessionNx = 544
} POOL_TYPE;

/* Bits callers OR into a POOL_TYPE (§2.1). */
#define POOL_QUOTA_FAIL_INSTEAD_OF_RAISE 8
#define POOL_RAISE_IF_ALLOCATION_FAILURE 16
#define POOL_COLD_ALLOCATION 256
#define POOL_NX_ALLOCATION 512
#define POOL_ZERO_ALLOCATION 1024
/* The high bit of a tag: the block must be freed with ExFreePoolWithTag (§2.6). */
#define PROTECTED_POOL 0x80000000

/* §2.3: bit 0x8 selects a special-pool placement, bit 0x1 underrun. */
typedef enum _EX_POOL_PRIORITY {
    LowPoolPriority = 0,
    LowPoolPrioritySpecialPoolOverrun = 8,
    LowPoolPrioritySpecialPoolUnderrun = 9,
    NormalPoolPriority = 16,
    NormalPoolPrioritySpecialPoolOverrun = 24,
    NormalPoolPrioritySpecialPoolUnderrun = 25,
    HighPoolPriority = 32,
    HighPoolPrioritySpecialPoolOverrun = 40,
    HighPoolPrioritySpecialPoolUnderrun = 41
} EX_POOL_PRIORITY;

#include <poolsim/pool2.h>

typedef char
    poolsim_wdm_check_ext_param_[sizeof(POOL_EXTENDED_PARAMETER) == sizeof(poolsim_ext_param) ? 1 : -1];

/* ---- Lookaside lists (§3) --------------------------------------------------- */

/* RTL_SIZEOF_THROUGH_FIELD(SLIST_ENTRY, Next): one pointer. */
#define LOOKASIDE_MINIMUM_BLOCK_SIZE ((SIZE_T)sizeof(PVOID))
#define EX_MAXIMUM_LOOKASIDE_DEPTH_BASE 256
#define EX_MAXIMUM_LOOKASIDE_DEPTH_LIMIT 1024
#define EX_LOOKASIDE_LIST_EX_FLAGS_RAISE_ON_FAIL 0x00000001UL
#define EX_LOOKASIDE_LIST_EX_FLAGS_FAIL_NO_RAISE 0x00000002UL

typedef PVOID(NTAPI *PALLOCATE_FUNCTION)(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
typedef VOID(NTAPI *PFREE_FUNCTION)(PVOID Buffer);
typedef struct _LOOKASIDE_LIST_EX LOOKASIDE_LIST_EX, *PLOOKASIDE_LIST_EX;
typedef PVOID(NTAPI *PALLOCATE_FUNCTION_EX)(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag,
                                            PLOOKASIDE_LIST_EX Lookaside);
typedef VOID(NTAPI *PFREE_FUNCTION_EX)(PVOID Buffer, PLOOKASIDE_LIST_EX Lookaside);

/* The WDK's structs are 0x80 bytes; poolsim keeps only a checked handle in
 * them and the list itself out of band. */
#define POOLSIM_WDM_LOOKASIDE_PAD (0x80 - sizeof(poolsim_lookaside))
typedef struct _NPAGED_LOOKASIDE_LIST {
    poolsim_lookaside Handle;
    UCHAR Reserved[POOLSIM_WDM_LOOKASIDE_PAD];
} NPAGED_LOOKASIDE_LIST, *PNPAGED_LOOKASIDE_LIST;
typedef struct _PAGED_LOOKASIDE_LIST {
    poolsim_lookaside Handle;
    UCHAR Reserved[POOLSIM_WDM_LOOKASIDE_PAD];
} PAGED_LOOKASIDE_LIST, *PPAGED_LOOKASIDE_LIST;
struct _LOOKASIDE_LIST_EX {
    poolsim_lookaside Handle;
    UCHAR Reserved[POOLSIM_WDM_LOOKASIDE_PAD];
};

/* IRQL: <= DISPATCH_LEVEL; the paged list's routines <= APC_LEVEL. */
POOLSIM_API VOID NTAPI ExInitializeNPagedLookasideList(PNPAGED_LOOKASIDE_LIST Lookaside, PALLOCATE_FUNCTION Allocate,
                                                       PFREE_FUNCTION Free, ULONG Flags, SIZE_T Size, ULONG Tag,
                                                       USHORT Depth);
POOLSIM_API PVOID NTAPI ExAllocateFromNPagedLookasideList(PNPAGED_LOOKASIDE_LIST Lookaside);
POOLSIM_API VOID NTAPI ExFreeToNPagedLookasideList(PNPAGED_LOOKASIDE_LIST Lookaside, PVOID Entry);
POOLSIM_API VOID NTAPI ExDeleteNPagedLookasideList(PNPAGED_LOOKASIDE_LIST Lookaside);
POOLSIM_API VOID NTAPI ExInitializePagedLookasideList(PPAGED_LOOKASIDE_LIST Lookaside, PALLOCATE_FUNCTION Allocate,
                                                      PFREE_FUNCTION Free, ULONG Flags, SIZE_T Size, ULONG Tag,
                                                      USHORT Depth);
POOLSIM_API PVOID NTAPI ExAllocateFromPagedLookasideList(PPAGED_LOOKASIDE_LIST Lookaside);
POOLSIM_API VOID NTAPI ExFreeToPagedLookasideList(PPAGED_LOOKASIDE_LIST Lookaside, PVOID Entry);
POOLSIM_API VOID NTAPI ExDeletePagedLookasideList(PPAGED_LOOKASIDE_LIST Lookaside);
POOLSIM_API NTSTATUS NTAPI ExInitializeLookasideListEx(PLOOKASIDE_LIST_EX Lookaside, PALLOCATE_FUNCTION_EX Allocate,
                                                       PFREE_FUNCTION_EX Free, POOL_TYPE PoolType, ULONG Flags,
                                                       SIZE_T Size, ULONG Tag, USHORT Depth);
POOLSIM_API PVOID NTAPI ExAllocateFromLookasideListEx(PLOOKASIDE_LIST_EX Lookaside);
POOLSIM_API VOID NTAPI ExFreeToLookasideListEx(PLOOKASIDE_LIST_EX Lookaside, PVOID Entry);
POOLSIM_API VOID NTAPI ExDeleteLookasideListEx(PLOOKASIDE_LIST_EX Lookaside);
POOLSIM_API VOID NTAPI ExFlushLookasideListEx(PLOOKASIDE_LIST_EX Lookaside);

POOLSIM_API NTSTATUS poolsim_wdm_lookaside_init(poolsim_lookaside *Handle, unsigned Kind, void (*Allocate)(void),
                                                void (*Free)(void), ULONG64 PoolType, ULONG Flags, SIZE_T Size,
                                                ULONG Tag, USHORT Depth, PVOID Owner, const char *File, int Line);
POOLSIM_API PVOID poolsim_wdm_lookaside_alloc(poolsim_lookaside *Handle, unsigned Kind, const char *File, int Line);

#ifndef POOLSIM_NO_SITE_MACROS
#define ExInitializeNPagedLookasideList(L, Allocate, Free, Flags, Size, Tag, Depth)                                \
    ((void)poolsim_wdm_lookaside_init(&(L)->Handle, POOLSIM_LOOKASIDE_NPAGED, (void (*)(void))(Allocate),          \
                                      (void (*)(void))(Free), 0, (Flags), (Size), (Tag), (Depth), (L), __FILE__, \
                                      __LINE__))
#define ExInitializePagedLookasideList(L, Allocate, Free, Flags, Size, Tag, Depth)                                 \
    ((void)poolsim_wdm_lookaside_init(&(L)->Handle, POOLSIM_LOOKASIDE_PAGED, (void (*)(void))(Allocate),           \
                                      (void (*)(void))(Free), 1, (Flags), (Size), (Tag), (Depth), (L), __FILE__, \
                                      __LINE__))
#define ExInitializeLookasideListEx(L, Allocate, Free, PoolType, Flags, Size, Tag, Depth)                          \
    poolsim_wdm_lookaside_init(&(L)->Handle, POOLSIM_LOOKASIDE_EX, (void (*)(void))(Allocate),                     \
                               (void (*)(void))(Free), (ULONG64)(PoolType), (Flags), (Size), (Tag), (Depth), (L),  \
                               __FILE__, __LINE__)
#define ExAllocateFromNPagedLookasideList(L)                                                                       \
    poolsim_wdm_lookaside_alloc(&(L)->Handle, POOLSIM_LOOKASIDE_NPAGED, __FILE__, __LINE__)
#define ExAllocateFromPagedLookasideList(L)                                                                        \
    poolsim_wdm_lookaside_alloc(&(L)->Handle, POOLSIM_LOOKASIDE_PAGED, __FILE__, __LINE__)
#define ExAllocateFromLookasideListEx(L) poolsim_wdm_lookaside_alloc(&(L)->Handle, POOLSIM_LOOKASIDE_EX, __FILE__, __LINE__)
#define ExFreeToNPagedLookasideList(L, Entry)                                                                      \
    poolsim_lookaside_free(&(L)->Handle, POOLSIM_LOOKASIDE_NPAGED, (Entry), __FILE__, __LINE__)
#define ExFreeToPagedLookasideList(L, Entry)                                                                       \
    poolsim_lookaside_free(&(L)->Handle, POOLSIM_LOOKASIDE_PAGED, (Entry), __FILE__, __LINE__)
#define ExFreeToLookasideListEx(L, Entry)                                                                          \
    poolsim_lookaside_free(&(L)->Handle, POOLSIM_LOOKASIDE_EX, (Entry), __FILE__, __LINE__)
#define ExDeleteNPagedLookasideList(L) poolsim_lookaside_delete(&(L)->Handle, POOLSIM_LOOKASIDE_NPAGED, __FILE__, __LINE__)
#define ExDeletePagedLookasideList(L) poolsim_lookaside_delete(&(L)->Handle, POOLSIM_LOOKASIDE_PAGED, __FILE__, __LINE__)
#define ExDeleteLookasideListEx(L) poolsim_lookaside_delete(&(L)->Handle, POOLSIM_LOOKASIDE_EX, __FILE__, __LINE__)
#define ExFlushLookasideListEx(L) poolsim_lookaside_flush(&(L)->Handle, POOLSIM_LOOKASIDE_EX, __FILE__, __LINE__)
#endif /* POOLSIM_NO_SITE_MACROS */

/* ---- Pool routines (§2.4) -------------------------------------------------- */

/*
 * IRQL: every allocation routine runs at <= DISPATCH_LEVEL, and at
 * <= APC_LEVEL for paged pool; every free at <= DISPATCH_LEVEL, and at
 * <= APC_LEVEL for a paged block (written "IRQL <= DISPATCH (paged <= APC)"
 * below). The core checks it and raises the bug check Windows would. A
 * routine that raises on failure (a quota routine, the
 * POOL_RAISE_IF_ALLOCATION_FAILURE bit, POOL_FLAG_RAISE_ON_FAILURE) calls
 * ExRaiseStatus(STATUS_INSUFFICIENT_RESOURCES): see POOLSIM_TRY below.
 */

/* Obsolete. Uninitialised block tagged 'None', or NULL. IRQL <= DISPATCH (paged <= APC). */
POOLSIM_API PVOID NTAPI ExAllocatePool(POOL_TYPE PoolType, SIZE_T NumberOfBytes);
/* Uninitialised block, or NULL; raises with POOL_RAISE_IF_ALLOCATION_FAILURE.
 * IRQL <= DISPATCH (paged <= APC). */
POOLSIM_API PVOID NTAPI ExAllocatePoolWithTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
/* Obsolete. Quota-charged block tagged 'None'; raises on failure. IRQL <= DISPATCH (paged <= APC). */
POOLSIM_API PVOID NTAPI ExAllocatePoolWithQuota(POOL_TYPE PoolType, SIZE_T NumberOfBytes);
/* Quota-charged block; raises on failure unless POOL_QUOTA_FAIL_INSTEAD_OF_RAISE.
 * IRQL <= DISPATCH (paged <= APC). */
POOLSIM_API PVOID NTAPI ExAllocatePoolWithQuotaTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
/* ExAllocatePoolWithTag; Priority says how hard to try and may pick a special-pool placement (§2.3).
 * IRQL <= DISPATCH (paged <= APC). */
POOLSIM_API PVOID NTAPI ExAllocatePoolWithTagPriority(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag,
                                                      EX_POOL_PRIORITY Priority);
/* Zeroed block unless POOL_FLAG_UNINITIALIZED; NULL for tag 0 or invalid flags; raises with
 * POOL_FLAG_RAISE_ON_FAILURE. IRQL <= DISPATCH (POOL_FLAG_PAGED <= APC). */
POOLSIM_API PVOID NTAPI ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag);
/* ExAllocatePool2 with extended parameters; NULL for invalid ones. IRQL <= DISPATCH (POOL_FLAG_PAGED <= APC).
 */
POOLSIM_API PVOID NTAPI ExAllocatePool3(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag,
                                        PCPOOL_EXTENDED_PARAMETER ExtendedParameters,
                                        ULONG ExtendedParametersCount);
/* ExAllocatePoolWithTag with POOL_ZERO_ALLOCATION: a zeroed block. IRQL <= DISPATCH (paged <= APC). */
POOLSIM_API PVOID NTAPI ExAllocatePoolZero(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
/* ExAllocatePoolWithQuotaTag with POOL_ZERO_ALLOCATION: a zeroed block. IRQL <= DISPATCH (paged <= APC). */
POOLSIM_API PVOID NTAPI ExAllocatePoolQuotaZero(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
/* ExAllocatePoolWithTagPriority with POOL_ZERO_ALLOCATION: a zeroed block. IRQL <= DISPATCH (paged <= APC).
 */
POOLSIM_API PVOID NTAPI ExAllocatePoolPriorityZero(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag,
                                                   EX_POOL_PRIORITY Priority);
/* ExAllocatePoolWithTag under the name that says "uninitialised". IRQL <= DISPATCH (paged <= APC). */
POOLSIM_API PVOID NTAPI ExAllocatePoolUninitialized(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
/* ExAllocatePoolWithQuotaTag under the name that says "uninitialised". IRQL <= DISPATCH (paged <= APC). */
POOLSIM_API PVOID NTAPI ExAllocatePoolQuotaUninitialized(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
/* ExAllocatePoolWithTagPriority under the name that says "uninitialised". IRQL <= DISPATCH (paged <= APC). */
POOLSIM_API PVOID NTAPI ExAllocatePoolPriorityUninitialized(POOL_TYPE PoolType, SIZE_T NumberOfBytes,
                                                            ULONG Tag, EX_POOL_PRIORITY Priority);
/* Frees a block with no tag check (ExFreePoolWithTag(P, 0)). IRQL <= DISPATCH (paged block <= APC). */
POOLSIM_API VOID NTAPI ExFreePool(PVOID P);
/* Frees a block; a non-zero Tag must match the allocation's (§2.6). IRQL <= DISPATCH (paged block <= APC). */
POOLSIM_API VOID NTAPI ExFreePoolWithTag(PVOID P, ULONG Tag);
/* Frees a block; ordinary blocks pass no extended parameters; P must not be NULL.
 * IRQL <= DISPATCH (paged block <= APC). */
POOLSIM_API VOID NTAPI ExFreePool2(PVOID P, ULONG Tag, PCPOOL_EXTENDED_PARAMETER ExtendedParameters,
                                   ULONG ExtendedParametersCount);
/* The block's size as the kernel reports it; *QuotaCharged says whether quota was charged.
 * IRQL <= DISPATCH. */
POOLSIM_API SIZE_T NTAPI ExQueryPoolBlockSize(PVOID PoolBlock, PBOOLEAN QuotaCharged);

/* The site-capturing entry points behind the macros. File NULL means unknown.
 * Priority is an EX_POOL_PRIORITY; Type a POOL_TYPE or, for ExAllocatePool2/3,
 * the POOL_FLAGS. */
POOLSIM_API PVOID poolsim_wdm_alloc(poolsim_routine Routine, ULONG64 Type, SIZE_T NumberOfBytes, ULONG Tag,
                                    ULONG Priority, PCPOOL_EXTENDED_PARAMETER ExtendedParameters,
                                    ULONG ExtendedParametersCount, const char *File, int Line);
POOLSIM_API VOID poolsim_wdm_free(poolsim_routine Routine, PVOID P, ULONG Tag,
                                  PCPOOL_EXTENDED_PARAMETER ExtendedParameters, ULONG ExtendedParametersCount,
                                  const char *File, int Line);
POOLSIM_API SIZE_T poolsim_wdm_query_size(PVOID PoolBlock, PBOOLEAN QuotaCharged, const char *File, int Line);

#ifndef POOLSIM_NO_SITE_MACROS
#define POOLSIM_POOL_ALLOC_ poolsim_wdm_alloc
#define POOLSIM_POOL_FREE_ poolsim_wdm_free
#define POOLSIM_POOL_SIZE_ poolsim_wdm_query_size
#include <poolsim/pool_macros.h>
#endif /* POOLSIM_NO_SITE_MACROS */

/* ---- Mm allocators: tracked like pool (Track did too) ----------------------- */

typedef union _LARGE_INTEGER {
    struct {
        ULONG LowPart;
        LONG HighPart;
    } u;
    LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;
typedef LARGE_INTEGER PHYSICAL_ADDRESS, *PPHYSICAL_ADDRESS;

typedef enum _MEMORY_CACHING_TYPE {
    MmNotMapped = -1,
    MmNonCached = 0,
    MmCached = 1,
    MmWriteCombined = 2,
    MmHardwareCoherentCached = 3,
    MmNonCachedUnordered = 4,
    MmUSWCCached = 5,
    MmMaximumCacheType = 6
} MEMORY_CACHING_TYPE;

/* Whole nonpaged pages, uninitialised, NULL on failure. poolsim cannot place
 * memory physically: the address limits and the caching type are accepted
 * and not otherwise honoured. Freeing with another allocator's routine is a
 * bug check (docs/semantics.md). IRQL: <= DISPATCH_LEVEL (contiguous),
 * <= APC_LEVEL (noncached). */
POOLSIM_API PVOID NTAPI MmAllocateContiguousMemory(SIZE_T NumberOfBytes, PHYSICAL_ADDRESS HighestAcceptableAddress);
POOLSIM_API PVOID NTAPI MmAllocateContiguousMemorySpecifyCache(SIZE_T NumberOfBytes,
                                                               PHYSICAL_ADDRESS LowestAcceptableAddress,
                                                               PHYSICAL_ADDRESS HighestAcceptableAddress,
                                                               PHYSICAL_ADDRESS BoundaryAddressMultiple,
                                                               MEMORY_CACHING_TYPE CacheType);
POOLSIM_API VOID NTAPI MmFreeContiguousMemory(PVOID BaseAddress);
POOLSIM_API PVOID NTAPI MmAllocateNonCachedMemory(SIZE_T NumberOfBytes);
/* NumberOfBytes must be the size allocated (C4/0x13F otherwise). */
POOLSIM_API VOID NTAPI MmFreeNonCachedMemory(PVOID BaseAddress, SIZE_T NumberOfBytes);

POOLSIM_API PVOID poolsim_wdm_mm_alloc(poolsim_routine Routine, SIZE_T NumberOfBytes, const char *File, int Line);
POOLSIM_API VOID poolsim_wdm_mm_free(poolsim_routine Routine, PVOID BaseAddress, SIZE_T NumberOfBytes,
                                     const char *File, int Line);

#ifndef POOLSIM_NO_SITE_MACROS
#define MmAllocateContiguousMemory(NumberOfBytes, HighestAcceptableAddress)                                 \
    ((void)(HighestAcceptableAddress),                                                                       \
     poolsim_wdm_mm_alloc(POOLSIM_RT_MM_ALLOCATE_CONTIGUOUS_MEMORY, (NumberOfBytes), __FILE__, __LINE__))
#define MmAllocateContiguousMemorySpecifyCache(NumberOfBytes, Lowest, Highest, Boundary, CacheType)         \
    ((void)(Lowest), (void)(Highest), (void)(Boundary), (void)(CacheType),                                   \
     poolsim_wdm_mm_alloc(POOLSIM_RT_MM_ALLOCATE_CONTIGUOUS_MEMORY_SPECIFY_CACHE, (NumberOfBytes), __FILE__,  \
                          __LINE__))
#define MmFreeContiguousMemory(BaseAddress)                                                                  \
    poolsim_wdm_mm_free(POOLSIM_RT_MM_FREE_CONTIGUOUS_MEMORY, (BaseAddress), 0, __FILE__, __LINE__)
#define MmAllocateNonCachedMemory(NumberOfBytes)                                                             \
    poolsim_wdm_mm_alloc(POOLSIM_RT_MM_ALLOCATE_NONCACHED_MEMORY, (NumberOfBytes), __FILE__, __LINE__)
#define MmFreeNonCachedMemory(BaseAddress, NumberOfBytes)                                                    \
    poolsim_wdm_mm_free(POOLSIM_RT_MM_FREE_NONCACHED_MEMORY, (BaseAddress), (NumberOfBytes), __FILE__, __LINE__)
#endif /* POOLSIM_NO_SITE_MACROS */

/* ---- Exceptions: ExRaiseStatus and POOLSIM_TRY ------------------------------ */

/*
 * User mode has no structured exception handling on Linux, so the kernel's
 * __try/__except around a raising routine is written as
 *
 *     NTSTATUS volatile status = STATUS_SUCCESS;
 *     PVOID volatile p = NULL;
 *     POOLSIM_TRY {
 *         p = ExAllocatePoolWithQuotaTag(PagedPool, n, 'gaTX');
 *     } POOLSIM_EXCEPT(status) {
 *         ... status (and POOLSIM_EXCEPTION_CODE()) hold the raised NTSTATUS ...
 *     } POOLSIM_END_TRY;
 *
 * built on setjmp/longjmp. Frames nest, belong to the calling thread, and a
 * raise anywhere below the body (in any function) lands in the innermost
 * one. The frame is popped when the body ends normally and when it is raised
 * to, so a raise in the except block goes to the enclosing frame. Rules that
 * follow from setjmp: a local that is assigned inside the construct and read
 * after a raise must be volatile, and so must the status variable (it is
 * assigned after one setjmp and may be read after an enclosing frame's
 * longjmp; gcc's -Wclobbered flags it otherwise); `break` or `continue`
 * directly in the body (or POOLSIM_LEAVE) ends the body normally, like
 * __leave; `return` and `goto` must not leave the body; in C++ the body must
 * not skip destructors.
 * A raise with no frame is unhandled: bug check 0x1E KMODE_EXCEPTION_NOT_HANDLED
 * (Arg1 the status, sign-extended like a 64-bit kernel shows it; Arg2 the
 * raising code's address, or 0; Arg3 = Arg4 = 0).
 */

/* One POOLSIM_TRY frame; lives on the stack of the function using the macro. */
typedef struct poolsim_wdm_try_frame {
    struct poolsim_wdm_try_frame *prev; /* the enclosing frame */
    uintptr_t check;                    /* set while the frame is on the thread's chain */
    jmp_buf env;
} poolsim_wdm_try_frame;

/* Used by the macros. */
POOLSIM_API void poolsim_wdm_try_enter(poolsim_wdm_try_frame *frame);
POOLSIM_API void poolsim_wdm_try_leave(poolsim_wdm_try_frame *frame);
/* The status of the last raise a frame of this thread caught. */
POOLSIM_API NTSTATUS poolsim_wdm_try_caught(void);
/* Frames on the calling thread's chain. */
POOLSIM_API unsigned poolsim_wdm_try_depth(void);
/* Forgets the calling thread's frames: for a test whose bug-check handler
 * longjmps out of a POOLSIM_TRY body, which leaves its frame behind. */
POOLSIM_API void poolsim_wdm_try_reset(void);

/* A POOLSIM_TRY nested in another in the same function declares a frame that
 * shadows the outer one, harmlessly: -Wshadow (C4456) is silenced for it. */
#if defined(__GNUC__) || defined(__clang__)
#define POOLSIM_WDM_NOSHADOW_BEGIN_                                                                          \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wshadow\"")
#define POOLSIM_WDM_NOSHADOW_END_ _Pragma("GCC diagnostic pop")
#elif defined(_MSC_VER)
#define POOLSIM_WDM_NOSHADOW_BEGIN_ __pragma(warning(push)) __pragma(warning(disable : 4456))
#define POOLSIM_WDM_NOSHADOW_END_ __pragma(warning(pop))
#else
#define POOLSIM_WDM_NOSHADOW_BEGIN_
#define POOLSIM_WDM_NOSHADOW_END_
#endif

#define POOLSIM_TRY                                                                                          \
    do {                                                                                                     \
        POOLSIM_WDM_NOSHADOW_BEGIN_                                                                          \
        poolsim_wdm_try_frame poolsim_wdm_frame_;                                                            \
        POOLSIM_WDM_NOSHADOW_END_                                                                            \
        if (setjmp(poolsim_wdm_frame_.env) == 0) {                                                           \
            poolsim_wdm_try_enter(&poolsim_wdm_frame_);                                                      \
            do
#define POOLSIM_EXCEPT(status_var)                                                                           \
    while (0)                                                                                                \
        ;                                                                                                    \
    poolsim_wdm_try_leave(&poolsim_wdm_frame_);                                                              \
    }                                                                                                        \
    else                                                                                                     \
    {                                                                                                        \
        (status_var) = poolsim_wdm_try_caught();
#define POOLSIM_END_TRY                                                                                      \
    }                                                                                                        \
    }                                                                                                        \
    while (0)
/* Ends the body of the innermost POOLSIM_TRY normally (only outside loops and
 * switches of the body). */
#define POOLSIM_LEAVE break
/* In an except block: the status being handled (GetExceptionCode()). */
#define POOLSIM_EXCEPTION_CODE() poolsim_wdm_try_caught()

/* Raises Status to the innermost POOLSIM_TRY frame; never returns. With no
 * frame it raises bug check 0x1E and, should the handler return, stops the
 * process (a raise cannot return). IRQL <= DISPATCH_LEVEL. */
POOLSIM_API DECLSPEC_NORETURN VOID NTAPI ExRaiseStatus(NTSTATUS Status);
POOLSIM_API DECLSPEC_NORETURN VOID poolsim_wdm_raise_status(NTSTATUS Status, const char *File, int Line);
#ifndef POOLSIM_NO_SITE_MACROS
#define ExRaiseStatus(Status) poolsim_wdm_raise_status((Status), __FILE__, __LINE__)
#endif

/* ---- Memory (the WDK's Rtl*Memory macros are the C library's) --------------- */

/* Any IRQL when the memory is resident (nonpaged), else <= APC_LEVEL. */
#define RtlEqualMemory(Destination, Source, Length) (!memcmp((Destination), (Source), (Length)))
#define RtlMoveMemory(Destination, Source, Length) memmove((Destination), (Source), (Length))
#define RtlCopyMemory(Destination, Source, Length) memcpy((Destination), (Source), (Length))
#define RtlFillMemory(Destination, Length, Fill) memset((Destination), (Fill), (Length))
#define RtlZeroMemory(Destination, Length) memset((Destination), 0, (Length))

/* Number of leading bytes that match, up to Length (not memcmp's sign).
 * Any IRQL when both blocks are nonpaged, else <= APC_LEVEL. */
POOLSIM_API SIZE_T NTAPI RtlCompareMemory(const VOID *Source1, const VOID *Source2, SIZE_T Length);
/* Zeroes cnt bytes with stores the compiler cannot drop; returns ptr. IRQL: any. */
POOLSIM_API PVOID RtlSecureZeroMemory(PVOID ptr, SIZE_T cnt);

/* ---- Debug output ---------------------------------------------------------------- */

#define DPFLTR_ERROR_LEVEL 0
#define DPFLTR_WARNING_LEVEL 1
#define DPFLTR_TRACE_LEVEL 2
#define DPFLTR_INFO_LEVEL 3
#define DPFLTR_MASK 0x80000000
/* The component ids drivers use (DPFLTR_TYPE values). */
#define DPFLTR_IHVDRIVER_ID 77
#define DPFLTR_IHVVIDEO_ID 78
#define DPFLTR_IHVAUDIO_ID 79
#define DPFLTR_IHVNETWORK_ID 80
#define DPFLTR_IHVSTREAMING_ID 81
#define DPFLTR_IHVBUS_ID 82
#define DPFLTR_DEFAULT_ID 101

/* Formats like the kernel (Windows argument sizes on every host: %ld and %lx
 * take a LONG/ULONG, %I64x and %llx 64 bits, %Iu and %zu a SIZE_T, %p prints
 * 2*sizeof(PVOID) upper-case hex digits, %ws and %S a NUL-terminated WCHAR
 * string, %Z an ANSI_STRING*, %wZ a UNICODE_STRING*) and prints at most 511
 * characters, like the kernel's 512-byte limit. Returns STATUS_SUCCESS.
 * IRQL: any (the Unicode formats at PASSIVE_LEVEL only, as in the kernel). */
POOLSIM_API ULONG POOLSIM_WDM_CDECL DbgPrint(PCSTR Format, ...);
/* DbgPrint with a component and level; poolsim prints every level. */
POOLSIM_API ULONG POOLSIM_WDM_CDECL DbgPrintEx(ULONG ComponentId, ULONG Level, PCSTR Format, ...);
POOLSIM_API ULONG NTAPI vDbgPrintEx(ULONG ComponentId, ULONG Level, PCSTR Format, va_list arglist);

/* The formatter behind DbgPrint, like vsnprintf: writes at most size bytes
 * including the NUL and returns the length the whole text needs. */
POOLSIM_API int poolsim_wdm_vsnprintf(char *buf, size_t size, PCSTR Format, va_list args);

/* KdPrint((...)) and KdPrintEx((...)) print only when DBG is non-zero, as in
 * the WDK's free builds. */
#if defined(DBG) && DBG
#define KdPrint(_x_) DbgPrint _x_
#define KdPrintEx(_x_) DbgPrintEx _x_
#else
#define KdPrint(_x_) ((void)0)
#define KdPrintEx(_x_) ((void)0)
#endif

/* ---- Bug checks -------------------------------------------------------------------- */

/* Codes poolsim raises (§1); bugcodes.h names. */
#define IRQL_NOT_GREATER_OR_EQUAL ((ULONG)0x00000009UL)
#define IRQL_NOT_LESS_OR_EQUAL ((ULONG)0x0000000AUL)
#define SPIN_LOCK_ALREADY_OWNED ((ULONG)0x0000000FUL)
#define SPIN_LOCK_NOT_OWNED ((ULONG)0x00000010UL)
#define BAD_POOL_HEADER ((ULONG)0x00000019UL)
#define KMODE_EXCEPTION_NOT_HANDLED ((ULONG)0x0000001EUL)
#define IRQL_GT_ZERO_AT_SYSTEM_SERVICE ((ULONG)0x0000004AUL)
#define SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION ((ULONG)0x000000C1UL)
#define BAD_POOL_CALLER ((ULONG)0x000000C2UL)
#define DRIVER_VERIFIER_DETECTED_VIOLATION ((ULONG)0x000000C4UL)
#define DRIVER_CORRUPTED_EXPOOL ((ULONG)0x000000C5UL)
#define DRIVER_IRQL_NOT_LESS_OR_EQUAL ((ULONG)0x000000D1UL)

/* Raises the bug check to poolsim's handler; never returns: should the
 * handler return (report-and-continue mode), the process stops, as the
 * machine would. IRQL: any. */
POOLSIM_API DECLSPEC_NORETURN VOID NTAPI KeBugCheckEx(ULONG BugCheckCode, ULONG_PTR BugCheckParameter1,
                                                      ULONG_PTR BugCheckParameter2,
                                                      ULONG_PTR BugCheckParameter3,
                                                      ULONG_PTR BugCheckParameter4);
/* KeBugCheckEx(BugCheckCode, 0, 0, 0, 0). IRQL: any. */
POOLSIM_API DECLSPEC_NORETURN VOID NTAPI KeBugCheck(ULONG BugCheckCode);
POOLSIM_API DECLSPEC_NORETURN VOID poolsim_wdm_bugcheck(ULONG BugCheckCode, ULONG_PTR P1, ULONG_PTR P2,
                                                        ULONG_PTR P3, ULONG_PTR P4, const char *Routine,
                                                        const char *File, int Line);
#ifndef POOLSIM_NO_SITE_MACROS
#define KeBugCheckEx(BugCheckCode, P1, P2, P3, P4)                                                           \
    poolsim_wdm_bugcheck((BugCheckCode), (ULONG_PTR)(P1), (ULONG_PTR)(P2), (ULONG_PTR)(P3), (ULONG_PTR)(P4), \
                         "KeBugCheckEx", __FILE__, __LINE__)
#define KeBugCheck(BugCheckCode)                                                                             \
    poolsim_wdm_bugcheck((BugCheckCode), 0, 0, 0, 0, "KeBugCheck", __FILE__, __LINE__)
#endif

#ifdef __cplusplus
}
#endif

/* ---- SAL and driver annotations: empty, unless already defined ------------------- */

#ifndef _In_
#define _In_
#endif
#ifndef _Out_
#define _Out_
#endif
#ifndef _Inout_
#define _Inout_
#endif
#ifndef _In_opt_
#define _In_opt_
#endif
#ifndef _Out_opt_
#define _Out_opt_
#endif
#ifndef _Inout_opt_
#define _Inout_opt_
#endif
#ifndef _In_z_
#define _In_z_
#endif
#ifndef _In_opt_z_
#define _In_opt_z_
#endif
#ifndef _Inout_z_
#define _Inout_z_
#endif
#ifndef _Inout_opt_z_
#define _Inout_opt_z_
#endif
#ifndef _Outptr_
#define _Outptr_
#endif
#ifndef _Outptr_opt_
#define _Outptr_opt_
#endif
#ifndef _Outptr_result_maybenull_
#define _Outptr_result_maybenull_
#endif
#ifndef _Outptr_opt_result_maybenull_
#define _Outptr_opt_result_maybenull_
#endif
#ifndef _Outptr_result_nullonfailure_
#define _Outptr_result_nullonfailure_
#endif
#ifndef _Outptr_result_z_
#define _Outptr_result_z_
#endif
#ifndef _Must_inspect_result_
#define _Must_inspect_result_
#endif
#ifndef _Check_return_
#define _Check_return_
#endif
#ifndef _Ret_maybenull_
#define _Ret_maybenull_
#endif
#ifndef _Ret_notnull_
#define _Ret_notnull_
#endif
#ifndef _Ret_z_
#define _Ret_z_
#endif
#ifndef _Ret_maybenull_z_
#define _Ret_maybenull_z_
#endif
#ifndef _Result_nullonfailure_
#define _Result_nullonfailure_
#endif
#ifndef _Result_zeroonfailure_
#define _Result_zeroonfailure_
#endif
#ifndef _Notnull_
#define _Notnull_
#endif
#ifndef _Maybenull_
#define _Maybenull_
#endif
#ifndef _Null_terminated_
#define _Null_terminated_
#endif
#ifndef _NullNull_terminated_
#define _NullNull_terminated_
#endif
#ifndef _Printf_format_string_
#define _Printf_format_string_
#endif
#ifndef _Scanf_format_string_
#define _Scanf_format_string_
#endif
#ifndef _Frees_ptr_
#define _Frees_ptr_
#endif
#ifndef _Frees_ptr_opt_
#define _Frees_ptr_opt_
#endif
#ifndef _Post_invalid_
#define _Post_invalid_
#endif
#ifndef _Post_ptr_invalid_
#define _Post_ptr_invalid_
#endif
#ifndef _Pre_notnull_
#define _Pre_notnull_
#endif
#ifndef _Pre_maybenull_
#define _Pre_maybenull_
#endif
#ifndef _Pre_null_
#define _Pre_null_
#endif
#ifndef _Post_notnull_
#define _Post_notnull_
#endif
#ifndef _Post_maybenull_
#define _Post_maybenull_
#endif
#ifndef _Post_null_
#define _Post_null_
#endif
#ifndef _Post_z_
#define _Post_z_
#endif
#ifndef _Reserved_
#define _Reserved_
#endif
#ifndef _Use_decl_annotations_
#define _Use_decl_annotations_
#endif
#ifndef _Literal_
#define _Literal_
#endif
#ifndef _Notliteral_
#define _Notliteral_
#endif
#ifndef _Const_
#define _Const_
#endif
#ifndef _Pre_
#define _Pre_
#endif
#ifndef _Post_
#define _Post_
#endif
#ifndef _Deref_pre_
#define _Deref_pre_
#endif
#ifndef _Deref_post_
#define _Deref_post_
#endif
#ifndef _Points_to_data_
#define _Points_to_data_
#endif
#ifndef _Enum_is_bitflag_
#define _Enum_is_bitflag_
#endif
#ifndef _Strict_type_match_
#define _Strict_type_match_
#endif
#ifndef _Pre_defensive_
#define _Pre_defensive_
#endif
#ifndef _Post_defensive_
#define _Post_defensive_
#endif
#ifndef _Analysis_noreturn_
#define _Analysis_noreturn_
#endif
#ifndef _Raises_SEH_exception_
#define _Raises_SEH_exception_
#endif
#ifndef _Maybe_raises_SEH_exception_
#define _Maybe_raises_SEH_exception_
#endif
#ifndef _Interlocked_
#define _Interlocked_
#endif
#ifndef _Interlocked_operand_
#define _Interlocked_operand_
#endif
#ifndef _IRQL_saves_
#define _IRQL_saves_
#endif
#ifndef _IRQL_restores_
#define _IRQL_restores_
#endif
#ifndef _IRQL_requires_same_
#define _IRQL_requires_same_
#endif
#ifndef _IRQL_uses_cancel_
#define _IRQL_uses_cancel_
#endif
#ifndef _IRQL_is_cancel_
#define _IRQL_is_cancel_
#endif
#ifndef _Kernel_float_saved_
#define _Kernel_float_saved_
#endif
#ifndef _Kernel_float_restored_
#define _Kernel_float_restored_
#endif
#ifndef _Kernel_float_used_
#define _Kernel_float_used_
#endif
#ifndef __drv_aliasesMem
#define __drv_aliasesMem
#endif
#ifndef __drv_isObjectPointer
#define __drv_isObjectPointer
#endif
#ifndef __drv_sameIRQL
#define __drv_sameIRQL
#endif
#ifndef __drv_useCancelIRQL
#define __drv_useCancelIRQL
#endif
#ifndef __drv_savesIRQL
#define __drv_savesIRQL
#endif
#ifndef __drv_restoresIRQL
#define __drv_restoresIRQL
#endif
#ifndef __drv_inTry
#define __drv_inTry
#endif
#ifndef __drv_notInTry
#define __drv_notInTry
#endif
#ifndef __drv_floatSaved
#define __drv_floatSaved
#endif
#ifndef __drv_floatRestored
#define __drv_floatRestored
#endif
#ifndef __drv_floatUsed
#define __drv_floatUsed
#endif
#ifndef __drv_nonConstant
#define __drv_nonConstant
#endif
#ifndef __drv_constant
#define __drv_constant
#endif
#ifndef __drv_interlocked
#define __drv_interlocked
#endif
#ifndef __drv_acquiresCancelSpinLock
#define __drv_acquiresCancelSpinLock
#endif
#ifndef __drv_releasesCancelSpinLock
#define __drv_releasesCancelSpinLock
#endif
#ifndef __drv_mustHoldCancelSpinLock
#define __drv_mustHoldCancelSpinLock
#endif
#ifndef __drv_neverHoldCancelSpinLock
#define __drv_neverHoldCancelSpinLock
#endif
#ifndef __drv_acquiresCriticalRegion
#define __drv_acquiresCriticalRegion
#endif
#ifndef __drv_releasesCriticalRegion
#define __drv_releasesCriticalRegion
#endif
#ifndef __drv_mustHoldCriticalRegion
#define __drv_mustHoldCriticalRegion
#endif
#ifndef __drv_neverHoldCriticalRegion
#define __drv_neverHoldCriticalRegion
#endif
#ifndef _In_reads_
#define _In_reads_(...)
#endif
#ifndef _In_reads_opt_
#define _In_reads_opt_(...)
#endif
#ifndef _In_reads_bytes_
#define _In_reads_bytes_(...)
#endif
#ifndef _In_reads_bytes_opt_
#define _In_reads_bytes_opt_(...)
#endif
#ifndef _In_reads_z_
#define _In_reads_z_(...)
#endif
#ifndef _In_reads_or_z_
#define _In_reads_or_z_(...)
#endif
#ifndef _In_range_
#define _In_range_(...)
#endif
#ifndef _Out_writes_
#define _Out_writes_(...)
#endif
#ifndef _Out_writes_opt_
#define _Out_writes_opt_(...)
#endif
#ifndef _Out_writes_bytes_
#define _Out_writes_bytes_(...)
#endif
#ifndef _Out_writes_bytes_opt_
#define _Out_writes_bytes_opt_(...)
#endif
#ifndef _Out_writes_to_
#define _Out_writes_to_(...)
#endif
#ifndef _Out_writes_to_opt_
#define _Out_writes_to_opt_(...)
#endif
#ifndef _Out_writes_all_
#define _Out_writes_all_(...)
#endif
#ifndef _Out_writes_all_opt_
#define _Out_writes_all_opt_(...)
#endif
#ifndef _Out_writes_bytes_all_
#define _Out_writes_bytes_all_(...)
#endif
#ifndef _Out_writes_bytes_all_opt_
#define _Out_writes_bytes_all_opt_(...)
#endif
#ifndef _Out_writes_bytes_to_
#define _Out_writes_bytes_to_(...)
#endif
#ifndef _Out_writes_bytes_to_opt_
#define _Out_writes_bytes_to_opt_(...)
#endif
#ifndef _Out_writes_z_
#define _Out_writes_z_(...)
#endif
#ifndef _Out_writes_opt_z_
#define _Out_writes_opt_z_(...)
#endif
#ifndef _Out_range_
#define _Out_range_(...)
#endif
#ifndef _Inout_updates_
#define _Inout_updates_(...)
#endif
#ifndef _Inout_updates_opt_
#define _Inout_updates_opt_(...)
#endif
#ifndef _Inout_updates_bytes_
#define _Inout_updates_bytes_(...)
#endif
#ifndef _Inout_updates_bytes_opt_
#define _Inout_updates_bytes_opt_(...)
#endif
#ifndef _Inout_updates_z_
#define _Inout_updates_z_(...)
#endif
#ifndef _Inout_updates_to_
#define _Inout_updates_to_(...)
#endif
#ifndef _Inout_updates_bytes_to_
#define _Inout_updates_bytes_to_(...)
#endif
#ifndef _Inout_updates_all_
#define _Inout_updates_all_(...)
#endif
#ifndef _Inout_updates_bytes_all_
#define _Inout_updates_bytes_all_(...)
#endif
#ifndef _Outptr_result_buffer_
#define _Outptr_result_buffer_(...)
#endif
#ifndef _Outptr_result_bytebuffer_
#define _Outptr_result_bytebuffer_(...)
#endif
#ifndef _Outptr_result_buffer_maybenull_
#define _Outptr_result_buffer_maybenull_(...)
#endif
#ifndef _Outptr_result_bytebuffer_maybenull_
#define _Outptr_result_bytebuffer_maybenull_(...)
#endif
#ifndef _Outptr_opt_result_buffer_
#define _Outptr_opt_result_buffer_(...)
#endif
#ifndef _Outptr_opt_result_bytebuffer_
#define _Outptr_opt_result_bytebuffer_(...)
#endif
#ifndef _Deref_out_range_
#define _Deref_out_range_(...)
#endif
#ifndef _Ret_range_
#define _Ret_range_(...)
#endif
#ifndef _Ret_writes_
#define _Ret_writes_(...)
#endif
#ifndef _Ret_writes_bytes_
#define _Ret_writes_bytes_(...)
#endif
#ifndef _Ret_writes_maybenull_
#define _Ret_writes_maybenull_(...)
#endif
#ifndef _Ret_writes_bytes_maybenull_
#define _Ret_writes_bytes_maybenull_(...)
#endif
#ifndef _Ret_writes_bytes_to_
#define _Ret_writes_bytes_to_(...)
#endif
#ifndef _Post_writable_byte_size_
#define _Post_writable_byte_size_(...)
#endif
#ifndef _Post_writable_size_
#define _Post_writable_size_(...)
#endif
#ifndef _Post_readable_byte_size_
#define _Post_readable_byte_size_(...)
#endif
#ifndef _Post_readable_size_
#define _Post_readable_size_(...)
#endif
#ifndef _Pre_writable_byte_size_
#define _Pre_writable_byte_size_(...)
#endif
#ifndef _Pre_writable_size_
#define _Pre_writable_size_(...)
#endif
#ifndef _Pre_readable_byte_size_
#define _Pre_readable_byte_size_(...)
#endif
#ifndef _Pre_readable_size_
#define _Pre_readable_size_(...)
#endif
#ifndef _Pre_satisfies_
#define _Pre_satisfies_(...)
#endif
#ifndef _Post_satisfies_
#define _Post_satisfies_(...)
#endif
#ifndef _Post_equal_to_
#define _Post_equal_to_(...)
#endif
#ifndef _Success_
#define _Success_(...)
#endif
#ifndef _Return_type_success_
#define _Return_type_success_(...)
#endif
#ifndef _When_
#define _When_(...)
#endif
#ifndef _On_failure_
#define _On_failure_(...)
#endif
#ifndef _Always_
#define _Always_(...)
#endif
#ifndef _Field_size_
#define _Field_size_(...)
#endif
#ifndef _Field_size_opt_
#define _Field_size_opt_(...)
#endif
#ifndef _Field_size_bytes_
#define _Field_size_bytes_(...)
#endif
#ifndef _Field_size_bytes_opt_
#define _Field_size_bytes_opt_(...)
#endif
#ifndef _Field_size_part_
#define _Field_size_part_(...)
#endif
#ifndef _Field_size_bytes_part_
#define _Field_size_bytes_part_(...)
#endif
#ifndef _Field_range_
#define _Field_range_(...)
#endif
#ifndef _Field_z_
#define _Field_z_(...)
#endif
#ifndef _Struct_size_bytes_
#define _Struct_size_bytes_(...)
#endif
#ifndef _Analysis_assume_
#define _Analysis_assume_(...)
#endif
#ifndef _Analysis_mode_
#define _Analysis_mode_(...)
#endif
#ifndef _At_
#define _At_(...)
#endif
#ifndef _At_buffer_
#define _At_buffer_(...)
#endif
#ifndef _Group_
#define _Group_(...)
#endif
#ifndef _Printf_format_string_params_
#define _Printf_format_string_params_(...)
#endif
#ifndef _Unreferenced_parameter_
#define _Unreferenced_parameter_(...)
#endif
#ifndef _IRQL_requires_max_
#define _IRQL_requires_max_(...)
#endif
#ifndef _IRQL_requires_min_
#define _IRQL_requires_min_(...)
#endif
#ifndef _IRQL_requires_
#define _IRQL_requires_(...)
#endif
#ifndef _IRQL_raises_
#define _IRQL_raises_(...)
#endif
#ifndef _IRQL_saves_global_
#define _IRQL_saves_global_(...)
#endif
#ifndef _IRQL_restores_global_
#define _IRQL_restores_global_(...)
#endif
#ifndef _IRQL_always_function_max_
#define _IRQL_always_function_max_(...)
#endif
#ifndef _IRQL_always_function_min_
#define _IRQL_always_function_min_(...)
#endif
#ifndef _Dispatch_type_
#define _Dispatch_type_(...)
#endif
#ifndef _Function_class_
#define _Function_class_(...)
#endif
#ifndef _Kernel_requires_resource_held_
#define _Kernel_requires_resource_held_(...)
#endif
#ifndef _Kernel_requires_resource_not_held_
#define _Kernel_requires_resource_not_held_(...)
#endif
#ifndef _Kernel_acquires_resource_
#define _Kernel_acquires_resource_(...)
#endif
#ifndef _Kernel_releases_resource_
#define _Kernel_releases_resource_(...)
#endif
#ifndef _Kernel_clear_do_init_
#define _Kernel_clear_do_init_(...)
#endif
#ifndef _Acquires_lock_
#define _Acquires_lock_(...)
#endif
#ifndef _Releases_lock_
#define _Releases_lock_(...)
#endif
#ifndef _Requires_lock_held_
#define _Requires_lock_held_(...)
#endif
#ifndef _Requires_lock_not_held_
#define _Requires_lock_not_held_(...)
#endif
#ifndef _Acquires_exclusive_lock_
#define _Acquires_exclusive_lock_(...)
#endif
#ifndef _Releases_exclusive_lock_
#define _Releases_exclusive_lock_(...)
#endif
#ifndef _Acquires_shared_lock_
#define _Acquires_shared_lock_(...)
#endif
#ifndef _Releases_shared_lock_
#define _Releases_shared_lock_(...)
#endif
#ifndef _Requires_exclusive_lock_held_
#define _Requires_exclusive_lock_held_(...)
#endif
#ifndef _Requires_shared_lock_held_
#define _Requires_shared_lock_held_(...)
#endif
#ifndef _Acquires_nonreentrant_lock_
#define _Acquires_nonreentrant_lock_(...)
#endif
#ifndef _Releases_nonreentrant_lock_
#define _Releases_nonreentrant_lock_(...)
#endif
#ifndef _Guarded_by_
#define _Guarded_by_(...)
#endif
#ifndef _Write_guarded_by_
#define _Write_guarded_by_(...)
#endif
#ifndef _Has_lock_kind_
#define _Has_lock_kind_(...)
#endif
#ifndef _Post_same_lock_
#define _Post_same_lock_(...)
#endif
#ifndef _Create_lock_level_
#define _Create_lock_level_(...)
#endif
#ifndef _Has_lock_level_
#define _Has_lock_level_(...)
#endif
#ifndef _Lock_level_order_
#define _Lock_level_order_(...)
#endif
#ifndef __drv_allocatesMem
#define __drv_allocatesMem(...)
#endif
#ifndef __drv_freesMem
#define __drv_freesMem(...)
#endif
#ifndef __drv_reportError
#define __drv_reportError(...)
#endif
#ifndef __drv_preferredFunction
#define __drv_preferredFunction(...)
#endif
#ifndef __drv_maxIRQL
#define __drv_maxIRQL(...)
#endif
#ifndef __drv_minIRQL
#define __drv_minIRQL(...)
#endif
#ifndef __drv_requiresIRQL
#define __drv_requiresIRQL(...)
#endif
#ifndef __drv_setsIRQL
#define __drv_setsIRQL(...)
#endif
#ifndef __drv_raisesIRQL
#define __drv_raisesIRQL(...)
#endif
#ifndef __drv_savesIRQLGlobal
#define __drv_savesIRQLGlobal(...)
#endif
#ifndef __drv_restoresIRQLGlobal
#define __drv_restoresIRQLGlobal(...)
#endif
#ifndef __drv_when
#define __drv_when(...)
#endif
#ifndef __drv_arg
#define __drv_arg(...)
#endif
#ifndef __drv_in
#define __drv_in(...)
#endif
#ifndef __drv_out
#define __drv_out(...)
#endif
#ifndef __drv_at
#define __drv_at(...)
#endif
#ifndef __drv_deref
#define __drv_deref(...)
#endif
#ifndef __drv_valueIs
#define __drv_valueIs(...)
#endif
#ifndef __drv_strictType
#define __drv_strictType(...)
#endif
#ifndef __drv_strictTypeMatch
#define __drv_strictTypeMatch(...)
#endif
#ifndef __drv_acquiresResource
#define __drv_acquiresResource(...)
#endif
#ifndef __drv_releasesResource
#define __drv_releasesResource(...)
#endif
#ifndef __drv_acquiresExclusiveResource
#define __drv_acquiresExclusiveResource(...)
#endif
#ifndef __drv_releasesExclusiveResource
#define __drv_releasesExclusiveResource(...)
#endif
#ifndef __drv_mustHold
#define __drv_mustHold(...)
#endif
#ifndef __drv_neverHold
#define __drv_neverHold(...)
#endif
#ifndef __drv_functionClass
#define __drv_functionClass(...)
#endif
#ifndef __drv_dispatchType
#define __drv_dispatchType(...)
#endif
#ifndef __drv_maxFunctionIRQL
#define __drv_maxFunctionIRQL(...)
#endif
#ifndef __drv_minFunctionIRQL
#define __drv_minFunctionIRQL(...)
#endif
#ifndef __drv_formatString
#define __drv_formatString(...)
#endif
#ifndef __drv_clearDoInit
#define __drv_clearDoInit(...)
#endif

#endif /* POOLSIM_WDM_H */
