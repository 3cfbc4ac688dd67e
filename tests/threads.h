/* SPDX-License-Identifier: MIT */
/*
 * threads.h — the tests' small portable thread helpers (pthreads, or Win32
 * threads under Wine): start/join, a sleep, and int atomics. Include after
 * <cmocka.h>.
 */
#ifndef POOLSIM_TESTS_THREADS_H
#define POOLSIM_TESTS_THREADS_H

#ifdef _WIN32
/* <windows.h> cannot be mixed with <wdm.h>: declare the thread calls. */
__declspec(dllimport) void *__stdcall CreateThread(void *, size_t, unsigned long(__stdcall *)(void *), void *,
                                                   unsigned long, unsigned long *);
__declspec(dllimport) unsigned long __stdcall WaitForSingleObject(void *, unsigned long);
__declspec(dllimport) int __stdcall CloseHandle(void *);
__declspec(dllimport) void __stdcall Sleep(unsigned long);
#else
#include <pthread.h>
#include <time.h>
#endif

static inline void sleep_ms(unsigned ms)
{
#ifdef _WIN32
    Sleep(ms);
#else
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
#endif
}

static inline int load_int(const int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void store_int(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

typedef void thread_fn(void *arg);
typedef struct thread {
    thread_fn *fn;
    void *arg;
#ifdef _WIN32
    void *h;
#else
    pthread_t th;
#endif
} thread;

#ifdef _WIN32
static unsigned long __stdcall thread_main(void *p)
#else
static void *thread_main(void *p)
#endif
{
    thread *t = (thread *)p;
    t->fn(t->arg);
#ifdef _WIN32
    return 0;
#else
    return NULL;
#endif
}

static inline void thread_start(thread *t, thread_fn *fn, void *arg)
{
    t->fn = fn;
    t->arg = arg;
#ifdef _WIN32
    t->h = CreateThread(NULL, 0, thread_main, t, 0, NULL);
    assert_non_null(t->h);
#else
    assert_int_equal(pthread_create(&t->th, NULL, thread_main, t), 0);
#endif
}

static inline void thread_join(thread *t)
{
#ifdef _WIN32
    WaitForSingleObject(t->h, 0xFFFFFFFFu);
    CloseHandle(t->h);
#else
    pthread_join(t->th, NULL);
#endif
}

#endif /* POOLSIM_TESTS_THREADS_H */
