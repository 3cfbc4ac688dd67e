/* SPDX-License-Identifier: MIT */
/*
 * pool_macros.h — the pool routines as function-like macros that pass the
 * caller's __FILE__ and __LINE__ (Track style), shared by <poolsim/wdm.h>
 * (user mode) and <poolsim/shim.h> (a driver). The includer names the three
 * functions the macros call: POOLSIM_POOL_ALLOC_(routine, type or flags,
 * bytes, tag, priority, extended parameters, count, file, line),
 * POOLSIM_POOL_FREE_(routine, p, tag, extended parameters, count, file, line)
 * and POOLSIM_POOL_SIZE_(p, quota charged, file, line). Not for direct use.
 *
 * No include guard: the shim, included after <poolsim/wdm.h> in a user-mode
 * run of driver code, re-points the three names and includes this again (the
 * definitions are the same text, so redefining them is allowed).
 */

#define ExAllocatePool(PoolType, NumberOfBytes)                                                              \
    POOLSIM_POOL_ALLOC_(POOLSIM_RT_EX_ALLOCATE_POOL, (ULONG64)(PoolType), (NumberOfBytes), 0, 0, NULL, 0,     \
                       __FILE__, __LINE__)
#define ExAllocatePoolWithTag(PoolType, NumberOfBytes, Tag)                                                  \
    POOLSIM_POOL_ALLOC_(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, (ULONG64)(PoolType), (NumberOfBytes),           \
                       (ULONG)(Tag), 0, NULL, 0, __FILE__, __LINE__)
#define ExAllocatePoolWithQuota(PoolType, NumberOfBytes)                                                     \
    POOLSIM_POOL_ALLOC_(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_QUOTA, (ULONG64)(PoolType), (NumberOfBytes), 0, 0,   \
                       NULL, 0, __FILE__, __LINE__)
#define ExAllocatePoolWithQuotaTag(PoolType, NumberOfBytes, Tag)                                             \
    POOLSIM_POOL_ALLOC_(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_QUOTA_TAG, (ULONG64)(PoolType), (NumberOfBytes),     \
                       (ULONG)(Tag), 0, NULL, 0, __FILE__, __LINE__)
#define ExAllocatePoolWithTagPriority(PoolType, NumberOfBytes, Tag, Priority)                                \
    POOLSIM_POOL_ALLOC_(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG_PRIORITY, (ULONG64)(PoolType), (NumberOfBytes),  \
                       (ULONG)(Tag), (ULONG)(Priority), NULL, 0, __FILE__, __LINE__)
#define ExAllocatePool2(Flags, NumberOfBytes, Tag)                                                           \
    POOLSIM_POOL_ALLOC_(POOLSIM_RT_EX_ALLOCATE_POOL2, (ULONG64)(Flags), (NumberOfBytes), (ULONG)(Tag), 0,     \
                       NULL, 0, __FILE__, __LINE__)
#define ExAllocatePool3(Flags, NumberOfBytes, Tag, ExtendedParameters, ExtendedParametersCount)              \
    POOLSIM_POOL_ALLOC_(POOLSIM_RT_EX_ALLOCATE_POOL3, (ULONG64)(Flags), (NumberOfBytes), (ULONG)(Tag), 0,     \
                       (ExtendedParameters), (ULONG)(ExtendedParametersCount), __FILE__, __LINE__)
#define ExAllocatePoolZero(PoolType, NumberOfBytes, Tag)                                                     \
    POOLSIM_POOL_ALLOC_(POOLSIM_RT_EX_ALLOCATE_POOL_ZERO, (ULONG64)(PoolType), (NumberOfBytes), (ULONG)(Tag), \
                       0, NULL, 0, __FILE__, __LINE__)
#define ExAllocatePoolQuotaZero(PoolType, NumberOfBytes, Tag)                                                \
    POOLSIM_POOL_ALLOC_(POOLSIM_RT_EX_ALLOCATE_POOL_QUOTA_ZERO, (ULONG64)(PoolType), (NumberOfBytes),         \
                       (ULONG)(Tag), 0, NULL, 0, __FILE__, __LINE__)
#define ExAllocatePoolPriorityZero(PoolType, NumberOfBytes, Tag, Priority)                                   \
    POOLSIM_POOL_ALLOC_(POOLSIM_RT_EX_ALLOCATE_POOL_PRIORITY_ZERO, (ULONG64)(PoolType), (NumberOfBytes),      \
                       (ULONG)(Tag), (ULONG)(Priority), NULL, 0, __FILE__, __LINE__)
#define ExAllocatePoolUninitialized(PoolType, NumberOfBytes, Tag)                                            \
    POOLSIM_POOL_ALLOC_(POOLSIM_RT_EX_ALLOCATE_POOL_UNINITIALIZED, (ULONG64)(PoolType), (NumberOfBytes),      \
                       (ULONG)(Tag), 0, NULL, 0, __FILE__, __LINE__)
#define ExAllocatePoolQuotaUninitialized(PoolType, NumberOfBytes, Tag)                                       \
    POOLSIM_POOL_ALLOC_(POOLSIM_RT_EX_ALLOCATE_POOL_QUOTA_UNINITIALIZED, (ULONG64)(PoolType),                 \
                       (NumberOfBytes), (ULONG)(Tag), 0, NULL, 0, __FILE__, __LINE__)
#define ExAllocatePoolPriorityUninitialized(PoolType, NumberOfBytes, Tag, Priority)                          \
    POOLSIM_POOL_ALLOC_(POOLSIM_RT_EX_ALLOCATE_POOL_PRIORITY_UNINITIALIZED, (ULONG64)(PoolType),              \
                       (NumberOfBytes), (ULONG)(Tag), (ULONG)(Priority), NULL, 0, __FILE__, __LINE__)
#define ExFreePool(P) POOLSIM_POOL_FREE_(POOLSIM_RT_EX_FREE_POOL, (P), 0, NULL, 0, __FILE__, __LINE__)
#define ExFreePoolWithTag(P, Tag)                                                                            \
    POOLSIM_POOL_FREE_(POOLSIM_RT_EX_FREE_POOL_WITH_TAG, (P), (ULONG)(Tag), NULL, 0, __FILE__, __LINE__)
#define ExFreePool2(P, Tag, ExtendedParameters, ExtendedParametersCount)                                     \
    POOLSIM_POOL_FREE_(POOLSIM_RT_EX_FREE_POOL2, (P), (ULONG)(Tag), (ExtendedParameters),                     \
                      (ULONG)(ExtendedParametersCount), __FILE__, __LINE__)
#define ExQueryPoolBlockSize(PoolBlock, QuotaCharged)                                                        \
    POOLSIM_POOL_SIZE_((PoolBlock), (QuotaCharged), __FILE__, __LINE__)
