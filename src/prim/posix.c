/* SPDX-License-Identifier: MIT */
/*
 * posix.c — the platform layer on Linux and other POSIX systems: mmap for
 * pages, calloc for records, pthread mutexes, a thread-local simulated IRQL,
 * stderr for output and abort() to stop. Contracts are in prim.h.
 */
#define _GNU_SOURCE
#include "prim.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef char posix_lock_fits[sizeof(pthread_mutex_t) <= sizeof(poolsim__prim_lock) ? 1 : -1];

unsigned poolsim__prim_caps(void)
{
    return POOLSIM__CAP_PAGE_PROTECT | POOLSIM__CAP_ENVIRONMENT | POOLSIM__CAP_SIM_IRQL;
}

void *poolsim__prim_pages_map(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void poolsim__prim_pages_unmap(void *p, size_t bytes) { munmap(p, bytes); }

void *poolsim__prim_meta_alloc(size_t bytes) { return calloc(1, bytes ? bytes : 1); }

void poolsim__prim_meta_free(void *p, size_t bytes)
{
    (void)bytes;
    free(p);
}

void poolsim__prim_lock_init(poolsim__prim_lock *l)
{
    pthread_mutex_init((pthread_mutex_t *)(void *)l, NULL);
}
void poolsim__prim_lock_destroy(poolsim__prim_lock *l)
{
    pthread_mutex_destroy((pthread_mutex_t *)(void *)l);
}
void poolsim__prim_lock_acquire(poolsim__prim_lock *l) { pthread_mutex_lock((pthread_mutex_t *)(void *)l); }
void poolsim__prim_lock_release(poolsim__prim_lock *l) { pthread_mutex_unlock((pthread_mutex_t *)(void *)l); }

static __thread uint32_t posix_tid;
static __thread uint8_t posix_irql;

uint32_t poolsim__prim_thread_id(void)
{
    if (!posix_tid) {
#ifdef SYS_gettid
        posix_tid = (uint32_t)syscall(SYS_gettid);
#else
        static uint32_t next;
        posix_tid = __atomic_add_fetch(&next, 1, __ATOMIC_RELAXED);
#endif
    }
    return posix_tid;
}

uint8_t poolsim__prim_irql_get(void) { return posix_irql; }
void poolsim__prim_irql_set(uint8_t irql) { posix_irql = irql; }

uint64_t poolsim__prim_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t poolsim__prim_entropy(void)
{
    uint64_t v = poolsim__prim_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&v;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        uint64_t r;
        if (fread(&r, sizeof r, 1, f) == 1)
            v ^= r;
        fclose(f);
    }
    return v;
}

void poolsim__prim_write(const char *text) { fputs(text, stderr); }

long poolsim__prim_getenv(const char *name, char *buf, size_t cap)
{
    const char *v = getenv(name);
    if (!v || !*v || !cap)
        return -1;
    size_t n = strlen(v);
    size_t k = n < cap ? n : cap - 1;
    memcpy(buf, v, k);
    buf[k] = '\0';
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
    /* Only when a debugger is attached would SIGTRAP be caught; checking
     * TracerPid keeps an unattached process from dying. */
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    bool traced = false;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "TracerPid:", 10) == 0)
            traced = atoi(line + 10) != 0;
    if (f)
        fclose(f);
    if (traced)
        raise(SIGTRAP);
}
