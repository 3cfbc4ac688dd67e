/* SPDX-License-Identifier: MIT */
/*
 * pool2.h — the WDK's POOL_FLAGS API declarations (wdk-semantics.md §2.2, §2.3):
 * POOL_FLAGS and its POOL_FLAG_* bits, and the ExAllocatePool3 / ExFreePool2
 * extended-parameter types, with the WDK's names, values and layout.
 *
 * Included by <poolsim/wdm.h> (user mode) and by <poolsim/shim.h> when the
 * driver's WDK headers predate the API (mingw-w64's DDK). Not for direct use.
 * Expects ULONG, ULONG64, ULONG_PTR, PVOID, HANDLE, EX_POOL_PRIORITY and
 * DECLSPEC_ALIGN to be defined.
 */
#ifndef POOLSIM_POOL2_H
#define POOLSIM_POOL2_H

#if defined(__GNUC__) || defined(__clang__)
#define POOLSIM_POOL2_EXTENSION_ __extension__ /* nameless members and ULONG64 bit-fields */
#else
#define POOLSIM_POOL2_EXTENSION_
#endif

/* ExAllocatePool2/3 flags (§2.2): the low 32 bits are required attributes,
 * the high 32 bits optional ones. */
typedef ULONG64 POOL_FLAGS;
#define POOL_FLAG_REQUIRED_START ((ULONG64)0x0000000000000001)
#define POOL_FLAG_USE_QUOTA ((ULONG64)0x0000000000000001)
#define POOL_FLAG_UNINITIALIZED ((ULONG64)0x0000000000000002)
#define POOL_FLAG_SESSION ((ULONG64)0x0000000000000004)
#define POOL_FLAG_CACHE_ALIGNED ((ULONG64)0x0000000000000008)
#define POOL_FLAG_RESERVED1 ((ULONG64)0x0000000000000010)
#define POOL_FLAG_RAISE_ON_FAILURE ((ULONG64)0x0000000000000020)
#define POOL_FLAG_NON_PAGED ((ULONG64)0x0000000000000040)
#define POOL_FLAG_NON_PAGED_EXECUTE ((ULONG64)0x0000000000000080)
#define POOL_FLAG_PAGED ((ULONG64)0x0000000000000100)
#define POOL_FLAG_RESERVED2 ((ULONG64)0x0000000000000200)
#define POOL_FLAG_RESERVED3 ((ULONG64)0x0000000000000400)
#define POOL_FLAG_LAST_KNOWN_REQUIRED POOL_FLAG_RESERVED3
#define POOL_FLAG_REQUIRED_END ((ULONG64)0x0000000080000000)
#define POOL_FLAG_OPTIONAL_START ((ULONG64)0x0000000100000000)
#define POOL_FLAG_SPECIAL_POOL ((ULONG64)0x0000000100000000)
#define POOL_FLAG_OPTIONAL_END ((ULONG64)0x8000000000000000)
#define POOL_FLAG_REQUIRED_MASK ((ULONG64)0x00000000FFFFFFFF)
/* Required bits with no meaning yet: a request with any of them fails. */
#define POOL_FLAG_UNUSED_REQUIRED_BITS                                                                       \
    (POOL_FLAG_REQUIRED_MASK & ~(POOL_FLAG_LAST_KNOWN_REQUIRED | (POOL_FLAG_LAST_KNOWN_REQUIRED - 1)))


typedef enum POOL_EXTENDED_PARAMETER_TYPE {
    PoolExtendedParameterInvalidType = 0,
    PoolExtendedParameterPriority = 1,
    PoolExtendedParameterSecurePool = 2,
    PoolExtendedParameterNumaNode = 3,
    PoolExtendedParameterMax = 4
} POOL_EXTENDED_PARAMETER_TYPE,
    *PPOOL_EXTENDED_PARAMETER_TYPE;

#define POOL_EXTENDED_PARAMETER_TYPE_BITS 8
#define POOL_EXTENDED_PARAMETER_REQUIRED_FIELD_BITS 1
#define POOL_EXTENDED_PARAMETER_RESERVED_BITS                                                                \
    (64 - POOL_EXTENDED_PARAMETER_TYPE_BITS - POOL_EXTENDED_PARAMETER_REQUIRED_FIELD_BITS)

#define SECURE_POOL_FLAGS_NONE 0x0
#define SECURE_POOL_FLAGS_FREEABLE 0x1
#define SECURE_POOL_FLAGS_MODIFIABLE 0x2

typedef struct _POOL_EXTENDED_PARAMS_SECURE_POOL {
    HANDLE SecurePoolHandle;
    PVOID Buffer;
    ULONG_PTR Cookie;
    ULONG SecurePoolFlags;
} POOL_EXTENDED_PARAMS_SECURE_POOL;

/* A NUMA node number; MM_ANY_NODE_OK allows a fallback to other nodes. */
typedef ULONG POOL_NODE_REQUIREMENT;
#ifndef MM_ANY_NODE_OK
#define MM_ANY_NODE_OK 0x80000000
#endif

/* One ExAllocatePool3 / ExFreePool2 parameter: the WDK layout, 16 bytes, the
 * same bits as poolsim_ext_param (Type in bits 0-7, Optional in bit 8). With
 * an Optional of 0 an unknown Type makes the allocation fail (§2.3). */
POOLSIM_POOL2_EXTENSION_ typedef struct DECLSPEC_ALIGN(8) _POOL_EXTENDED_PARAMETER {
    POOLSIM_POOL2_EXTENSION_ struct {
        ULONG64 Type : POOL_EXTENDED_PARAMETER_TYPE_BITS;
        ULONG64 Optional : POOL_EXTENDED_PARAMETER_REQUIRED_FIELD_BITS;
        ULONG64 Reserved : POOL_EXTENDED_PARAMETER_RESERVED_BITS;
    } DUMMYSTRUCTNAME;
    POOLSIM_POOL2_EXTENSION_ union {
        ULONG64 Reserved2;
        PVOID Reserved3;
        EX_POOL_PRIORITY Priority;
        POOL_EXTENDED_PARAMS_SECURE_POOL *SecurePoolParams;
        POOL_NODE_REQUIREMENT PreferredNode;
    } DUMMYUNIONNAME;
} POOL_EXTENDED_PARAMETER, *PPOOL_EXTENDED_PARAMETER;
typedef const POOL_EXTENDED_PARAMETER *PCPOOL_EXTENDED_PARAMETER;

#endif /* POOLSIM_POOL2_H */
