/* SPDX-License-Identifier: MIT */
/*
 * atomic.h — the few atomic operations the core uses, without <stdatomic.h>
 * (which a kernel build does not have): GCC/Clang builtins, or the MSVC
 * Interlocked intrinsics.
 */
#ifndef POOLSIM_ATOMIC_H
#define POOLSIM_ATOMIC_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)

static inline uint64_t psim_atomic_load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void psim_atomic_store(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
/* Adds v and returns the new value. */
static inline uint64_t psim_atomic_add(uint64_t *p, uint64_t v)
{
    return __atomic_add_fetch(p, v, __ATOMIC_RELAXED);
}
static inline uint64_t psim_atomic_sub(uint64_t *p, uint64_t v)
{
    return __atomic_sub_fetch(p, v, __ATOMIC_RELAXED);
}
static inline bool psim_atomic_cas(uint64_t *p, uint64_t *expected, uint64_t desired)
{
    return __atomic_compare_exchange_n(p, expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}
static inline uint32_t psim_atomic_load32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
/* A counter written by one lock holder and read by anyone: plain moves on x86. */
static inline uint64_t psim_relaxed_load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void psim_relaxed_store(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void psim_atomic_store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void *psim_atomic_load_ptr(void *const *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void psim_atomic_store_ptr(void **p, void *v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/* Lock words (irql.c: KSPIN_LOCK, a FAST_MUTEX's owner): a successful CAS
 * acquires, the store that frees the word releases. */
static inline uintptr_t psim_word_load(const uintptr_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline bool psim_word_cas(uintptr_t *p, uintptr_t *expected, uintptr_t desired)
{
    return __atomic_compare_exchange_n(p, expected, desired, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}
static inline void psim_word_release(uintptr_t *p, uintptr_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
/* Adds v (may be negative) and returns the new value; a full barrier. */
static inline uintptr_t psim_word_add(uintptr_t *p, intptr_t v)
{
    return __atomic_add_fetch(p, (uintptr_t)v, __ATOMIC_ACQ_REL);
}
static inline bool psim_word_cas_full(uintptr_t *p, uintptr_t *expected, uintptr_t desired)
{
    return __atomic_compare_exchange_n(p, expected, desired, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static inline void *psim_ptr_load(void *const *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline bool psim_ptr_cas(void **p, void **expected, void *desired)
{
    return __atomic_compare_exchange_n(p, expected, desired, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}
static inline void psim_ptr_release(void **p, void *v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
/* A spin-wait hint to the processor. */
static inline void psim_cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

#elif defined(_MSC_VER)

#include <intrin.h>
static inline uint64_t psim_atomic_load(const uint64_t *p)
{
    return (uint64_t)_InterlockedCompareExchange64((volatile __int64 *)p, 0, 0);
}
static inline void psim_atomic_store(uint64_t *p, uint64_t v)
{
    _InterlockedExchange64((volatile __int64 *)p, (__int64)v);
}
static inline uint64_t psim_atomic_add(uint64_t *p, uint64_t v)
{
    return (uint64_t)_InterlockedExchangeAdd64((volatile __int64 *)p, (__int64)v) + v;
}
static inline uint64_t psim_atomic_sub(uint64_t *p, uint64_t v)
{
    return psim_atomic_add(p, (uint64_t)0 - v);
}
static inline bool psim_atomic_cas(uint64_t *p, uint64_t *expected, uint64_t desired)
{
    uint64_t old =
        (uint64_t)_InterlockedCompareExchange64((volatile __int64 *)p, (__int64)desired, (__int64)*expected);
    if (old == *expected)
        return true;
    *expected = old;
    return false;
}
static inline uint32_t psim_atomic_load32(const uint32_t *p)
{
    return (uint32_t)_InterlockedOr((volatile long *)p, 0);
}
static inline void psim_atomic_store32(uint32_t *p, uint32_t v)
{
    _InterlockedExchange((volatile long *)p, (long)v);
}
static inline uint64_t psim_relaxed_load(const uint64_t *p) { return *(const volatile uint64_t *)p; }
static inline void psim_relaxed_store(uint64_t *p, uint64_t v) { *(volatile uint64_t *)p = v; }
static inline void *psim_atomic_load_ptr(void *const *p)
{
    return _InterlockedCompareExchangePointer((void *volatile *)p, 0, 0);
}
static inline void psim_atomic_store_ptr(void **p, void *v)
{
    _InterlockedExchangePointer((void *volatile *)p, v);
}
static inline uintptr_t psim_word_load(const uintptr_t *p) { return *(const volatile uintptr_t *)p; }
static inline bool psim_word_cas(uintptr_t *p, uintptr_t *expected, uintptr_t desired)
{
    void *old = _InterlockedCompareExchangePointer((void *volatile *)p, (void *)desired, (void *)*expected);
    if ((uintptr_t)old == *expected)
        return true;
    *expected = (uintptr_t)old;
    return false;
}
static inline bool psim_word_cas_full(uintptr_t *p, uintptr_t *expected, uintptr_t desired)
{
    return psim_word_cas(p, expected, desired);
}
static inline void psim_word_release(uintptr_t *p, uintptr_t v)
{
    _InterlockedExchangePointer((void *volatile *)p, (void *)v);
}
static inline uintptr_t psim_word_add(uintptr_t *p, intptr_t v)
{
#if defined(_WIN64)
    return (uintptr_t)_InterlockedExchangeAdd64((volatile __int64 *)p, (__int64)v) + (uintptr_t)v;
#else
    return (uintptr_t)_InterlockedExchangeAdd((volatile long *)p, (long)v) + (uintptr_t)v;
#endif
}
static inline void *psim_ptr_load(void *const *p) { return *(void *const volatile *)p; }
static inline bool psim_ptr_cas(void **p, void **expected, void *desired)
{
    void *old = _InterlockedCompareExchangePointer((void *volatile *)p, desired, *expected);
    if (old == *expected)
        return true;
    *expected = old;
    return false;
}
static inline void psim_ptr_release(void **p, void *v) { _InterlockedExchangePointer((void *volatile *)p, v); }
static inline void psim_cpu_pause(void)
{
#if defined(_M_IX86) || defined(_M_X64)
    _mm_pause();
#elif defined(_M_ARM64) || defined(_M_ARM)
    __yield();
#endif
}

#else
#error "poolsim: no atomic operations for this compiler"
#endif

#endif /* POOLSIM_ATOMIC_H */
