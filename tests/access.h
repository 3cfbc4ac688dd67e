/* SPDX-License-Identifier: MIT */
/*
 * access.h — the tests' helpers for faulting accesses (Force IRQL checking,
 * special pool): out-of-line reads and writes whose instruction a bug check's
 * parameter can be checked to lie in, whether a page is no-access right now,
 * and whether this platform has poolsim's fault trap. Include after
 * <cmocka.h> and <poolsim/cmocka.h>.
 */
#ifndef POOLSIM_TESTS_ACCESS_H
#define POOLSIM_TESTS_ACCESS_H

#ifdef _WIN32
/* <windows.h> cannot be mixed with <wdm.h>: declare what the tests call. */
typedef struct test_mbi {
    void *BaseAddress;
    void *AllocationBase;
    unsigned long AllocationProtect;
    size_t RegionSize;
    unsigned long State;
    unsigned long Protect;
    unsigned long Type;
} test_mbi;
__declspec(dllimport) size_t __stdcall VirtualQuery(const void *, test_mbi *, size_t);
#define TEST_PAGE_NOACCESS 0x01ul
#define TEST_PAGE_READWRITE 0x04ul
#else
#include <errno.h>
#include <unistd.h>
#endif

/* Where the trap exists (prim.h: POOLSIM__CAP_FAULT_TRAP). */
#if (defined(__linux__) && (defined(__x86_64__) || defined(__i386__))) ||                                    \
    (defined(_WIN32) && defined(__x86_64__))
#define HAVE_TRAP 1
#else
#define HAVE_TRAP 0
#endif

#define SKIP_WITHOUT_TRAP()                                                                                  \
    do {                                                                                                     \
        if (!HAVE_TRAP) {                                                                                    \
            skip();                                                                                          \
            return;                                                                                          \
        }                                                                                                    \
    } while (0)

#if defined(__GNUC__) || defined(__clang__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

/* The accesses under test, out of line so a bug check's "address of the
 * referencing code" can be checked to lie in them. */
static NOINLINE uint8_t read_byte(const volatile uint8_t *p) { return *p; }
static NOINLINE void write_byte(volatile uint8_t *p, uint8_t v) { *p = v; }

static void assert_ip_in(uintptr_t ip, uintptr_t fn)
{
    assert_true(ip >= fn);
    assert_true(ip < fn + 1024);
}

/* The last bug check this thread captured; fails the test when there is none. */
static const poolsim_bugcheck *last(void)
{
    const poolsim_bugcheck *bc = poolsim_cmocka_last();
    assert_non_null(bc);
    return bc;
}

/* True when the page holding p is inaccessible right now. */
static bool page_protected(const void *p)
{
#ifdef _WIN32
    test_mbi mbi;
    assert_true(VirtualQuery(p, &mbi, sizeof mbi) != 0);
    return mbi.Protect == TEST_PAGE_NOACCESS;
#else
    /* A system call on a protected page fails with EFAULT instead of faulting. */
    int fds[2];
    char buf[16];
    ssize_t n;
    assert_int_equal(pipe(fds), 0);
    n = write(fds[1], p, 16);
    int err = errno;
    if (n == 16)
        assert_int_equal(read(fds[0], buf, 16), 16);
    close(fds[0]);
    close(fds[1]);
    assert_true(n == 16 || (n < 0 && err == EFAULT));
    return n < 0;
#endif
}

#endif /* POOLSIM_TESTS_ACCESS_H */
