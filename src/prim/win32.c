/* SPDX-License-Identifier: MIT */
/*
 * win32.c — the platform layer in Windows user mode (and under Wine):
 * VirtualAlloc for pages, HeapAlloc for records, SRW locks, a thread-local
 * simulated IRQL, stderr plus OutputDebugStringA for output. Contracts are in
 * prim.h.
 */
#define WIN32_LEAN_AND_MEAN
#include "prim.h"

#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef char win_lock_fits[sizeof(SRWLOCK) <= sizeof(poolsim__prim_lock) ? 1 : -1];

unsigned poolsim__prim_caps(void)
{
    return POOLSIM__CAP_PAGE_PROTECT | POOLSIM__CAP_ENVIRONMENT | POOLSIM__CAP_SIM_IRQL;
}

void *poolsim__prim_pages_map(size_t bytes)
{
    return VirtualAlloc(NULL, bytes, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
}

void poolsim__prim_pages_unmap(void *p, size_t bytes)
{
    (void)bytes;
    VirtualFree(p, 0, MEM_RELEASE);
}

void *poolsim__prim_meta_alloc(size_t bytes)
{
    return HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, bytes ? bytes : 1);
}

void poolsim__prim_meta_free(void *p, size_t bytes)
{
    (void)bytes;
    if (p)
        HeapFree(GetProcessHeap(), 0, p);
}

void poolsim__prim_lock_init(poolsim__prim_lock *l) { InitializeSRWLock((PSRWLOCK)(void *)l); }
void poolsim__prim_lock_destroy(poolsim__prim_lock *l) { (void)l; }
void poolsim__prim_lock_acquire(poolsim__prim_lock *l) { AcquireSRWLockExclusive((PSRWLOCK)(void *)l); }
void poolsim__prim_lock_release(poolsim__prim_lock *l) { ReleaseSRWLockExclusive((PSRWLOCK)(void *)l); }

static __thread uint8_t win_irql;

uint32_t poolsim__prim_thread_id(void) { return (uint32_t)GetCurrentThreadId(); }
uint8_t poolsim__prim_irql_get(void) { return win_irql; }
void poolsim__prim_irql_set(uint8_t irql) { win_irql = irql; }

uint64_t poolsim__prim_now_ns(void)
{
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (uint64_t)((double)c.QuadPart * 1e9 / (double)f.QuadPart);
}

uint64_t poolsim__prim_entropy(void)
{
    uint64_t v = poolsim__prim_now_ns() ^ ((uint64_t)GetCurrentProcessId() << 32) ^ (uint64_t)(uintptr_t)&v;
    return v ^ (uint64_t)GetTickCount64() * 0x9E3779B97F4A7C15ull;
}

void poolsim__prim_write(const char *text)
{
    fputs(text, stderr);
    OutputDebugStringA(text);
}

long poolsim__prim_getenv(const char *name, char *buf, size_t cap)
{
    DWORD n = GetEnvironmentVariableA(name, buf, (DWORD)cap);
    if (n == 0 || !cap)
        return -1;
    if (n >= cap) { /* too long: n is the size needed, with the NUL */
        buf[0] = '\0';
        return (long)n - 1;
    }
    return (long)n;
}

void poolsim__prim_stop(unsigned long code, const uintptr_t param[4])
{
    (void)code;
    (void)param;
    fflush(stderr);
    abort();
}

void poolsim__prim_debug_break(void)
{
    if (IsDebuggerPresent())
        DebugBreak();
}
