/* SPDX-License-Identifier: MIT */
/*
 * cmocka.h — header-only CMocka helpers for tests of code that uses poolsim.
 *
 * Usage:
 *
 *     #include <stdarg.h>
 *     #include <stddef.h>
 *     #include <setjmp.h>
 *     #include <stdint.h>
 *     #include <cmocka.h>
 *     #include <poolsim/wdm.h>
 *     #include <poolsim/cmocka.h>
 *
 *     static void test_drv_zero_size(void **state)
 *     {
 *         (void)state;
 *         expect_bugcheck(0xC4, 0x00, (void)ExAllocatePoolWithTag(NonPagedPoolNx, 0, 'gaTX'));
 *         assert_int_equal(poolsim_cmocka_last()->param[2], NonPagedPoolNx);
 *     }
 *
 *     int main(void)
 *     {
 *         const struct CMUnitTest tests[] = {
 *             cmocka_unit_test_setup_teardown(test_drv_zero_size, poolsim_cmocka_setup,
 *                                             poolsim_cmocka_teardown),
 *         };
 *         return cmocka_run_group_tests(tests, NULL, NULL);
 *     }
 *
 * poolsim_cmocka_setup() starts a fresh poolsim instance with the default
 * options plus Force IRQL checking (never the environment, so runs are
 * deterministic) and installs a capturing bug-check handler. A test that
 * needs other options calls poolsim_cmocka_reinit(&opts) first, or a program
 * sets options for every following setup with poolsim_cmocka_set_options(&opts).
 * poolsim_cmocka_teardown() shuts the instance down and fails the test when a
 * bug check was raised outside expect_bugcheck(), when blocks leaked, or when
 * the test's thread ended above PASSIVE_LEVEL, holding a lock or inside a
 * critical region (it then resets the thread's IRQL state);
 * assert_passive_no_locks() checks the same inside a test.
 *
 * expect_bugcheck(code, arg1, statement) runs statement and passes when the
 * bug check `code` with Arg1 == arg1 is raised during it. The handler
 * longjmps out of the statement, so nothing after the bug check runs: a local
 * variable assigned inside the statement and read afterwards must be volatile.
 * expect_bugcheck_continue() is the same, but the handler returns, so the
 * raising call fails safely (an allocation returns NULL, a free does nothing)
 * and the statement runs to its end: this is poolsim's report-and-continue
 * mode. expect_no_bugcheck(statement) fails when any bug check is raised.
 * poolsim_cmocka_last() is the last bug check this thread captured, for
 * asserting Arg2..Arg4 and the block. The statement may be several statements.
 *
 * Include <poolsim/wdm.h> before this header when the tests use POOLSIM_TRY:
 * the fixtures then also drop the try frames a bug check jumped out of.
 *
 * A bug check raised on another thread is recorded as unexpected and the
 * handler returns; the counters are not atomic, so tests that raise bug checks
 * from several threads at once should check poolsim_bugcheck_count() instead.
 */
#ifndef POOLSIM_CMOCKA_H
#define POOLSIM_CMOCKA_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <poolsim/poolsim.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_MSC_VER)
#define POOLSIM_CMOCKA_TLS_ __declspec(thread)
#elif defined(__GNUC__) || defined(__clang__)
#define POOLSIM_CMOCKA_TLS_ __thread
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define POOLSIM_CMOCKA_TLS_ _Thread_local
#else
#error "poolsim/cmocka.h needs thread-local storage"
#endif

/* A hook the capturing handler calls first with every bug check, while the
 * raising call is still on the stack (e.g. to read the string Arg2 of the
 * leak bug check points to before poolsim_shutdown releases it). */
typedef void poolsim_cmocka_hook_fn(const poolsim_bugcheck *bc, void *ctx);

/* ---- State (private: use the functions below) ----------------------------- */

#define POOLSIM_CMOCKA_JUMP_ 1   /* the handler longjmps out of the statement */
#define POOLSIM_CMOCKA_RETURN_ 2 /* the handler returns (report and continue) */

typedef struct poolsim_cmocka_thread_ {
    int mode;               /* 0: not inside an expect_* statement */
    jmp_buf *jump;          /* where POOLSIM_CMOCKA_JUMP_ returns to */
    unsigned hits;          /* bug checks raised inside the statement */
    poolsim_bugcheck first; /* the first of them */
    bool has_last;
    poolsim_bugcheck last; /* last bug check this thread captured */
} poolsim_cmocka_thread_;

typedef struct poolsim_cmocka_state_ {
    bool have_options;       /* set_options was called */
    poolsim_options next;    /* options for the following setups */
    poolsim_options current; /* options of the running instance */
    int in_shutdown;         /* poolsim_shutdown is running under us */
    unsigned unexpected;
    poolsim_bugcheck first_unexpected;
    unsigned leaks; /* leak bug checks raised by the fixture's shutdown */
    poolsim_bugcheck leak;
    poolsim_cmocka_hook_fn *hook;
    void *hook_ctx;
} poolsim_cmocka_state_;

static inline poolsim_cmocka_state_ *poolsim_cmocka_state_get_(void)
{
    static poolsim_cmocka_state_ st;
    return &st;
}

static inline poolsim_cmocka_thread_ *poolsim_cmocka_thread_get_(void)
{
    static POOLSIM_CMOCKA_TLS_ poolsim_cmocka_thread_ th;
    return &th;
}

/* True for the bug checks that report blocks outstanding at unload (§1.1). */
static inline bool poolsim_cmocka_is_leak_(const poolsim_bugcheck *bc)
{
    return bc->code == 0xC4 && (bc->param[0] == 0x60 || bc->param[0] == 0x61 || bc->param[0] == 0x62);
}

static inline void poolsim_cmocka_print_(const char *what, const poolsim_bugcheck *bc)
{
    print_error("%s 0x%lX (0x%llX, 0x%llX, 0x%llX, 0x%llX) %s: %s\n", what, bc->code,
                (unsigned long long)bc->param[0], (unsigned long long)bc->param[1],
                (unsigned long long)bc->param[2], (unsigned long long)bc->param[3], bc->name ? bc->name : "?",
                bc->summary ? bc->summary : "");
    if (bc->site.file != NULL)
        print_error("    raised in %s at %s:%d\n", bc->site.routine ? bc->site.routine : "?", bc->site.file,
                    bc->site.line);
}

/* The handler installed by poolsim_cmocka_setup. */
static inline void poolsim_cmocka_handler_(const poolsim_bugcheck *bc, void *ctx)
{
    poolsim_cmocka_state_ *st = poolsim_cmocka_state_get_();
    poolsim_cmocka_thread_ *th = poolsim_cmocka_thread_get_();
    (void)ctx;
    th->last = *bc;
    th->has_last = true;
    if (st->hook != NULL)
        st->hook(bc, st->hook_ctx);
    if (th->mode != 0) {
        if (th->hits++ == 0)
            th->first = *bc;
        if (th->mode == POOLSIM_CMOCKA_JUMP_ && th->jump != NULL) {
            jmp_buf *jb = th->jump;
            th->jump = NULL;
            longjmp(*jb, 1);
        }
        return;
    }
    if (st->in_shutdown && poolsim_cmocka_is_leak_(bc)) {
        if (st->leaks++ == 0)
            st->leak = *bc;
        return;
    }
    if (st->unexpected++ == 0)
        st->first_unexpected = *bc;
}

static inline void poolsim_cmocka_reset_(void)
{
    poolsim_cmocka_state_ *st = poolsim_cmocka_state_get_();
    poolsim_cmocka_thread_ *th = poolsim_cmocka_thread_get_();
    st->in_shutdown = 0;
    st->unexpected = 0;
    st->leaks = 0;
    st->hook = NULL;
    st->hook_ctx = NULL;
    th->mode = 0;
    th->jump = NULL;
    th->hits = 0;
    th->has_last = false;
#ifdef POOLSIM_WDM_H
    /* A bug check that jumped out of a POOLSIM_TRY body left its frame behind. */
    poolsim_wdm_try_reset();
#endif
}

/* Shuts the instance down with the capturing handler in place and returns
 * the outstanding block count. */
static inline size_t poolsim_cmocka_shutdown_(void)
{
    poolsim_cmocka_state_ *st = poolsim_cmocka_state_get_();
    poolsim_cmocka_thread_ *th = poolsim_cmocka_thread_get_();
    size_t left;
    th->mode = 0; /* a failed test may have left a statement armed */
    th->jump = NULL;
    st->in_shutdown = 1;
    left = poolsim_shutdown();
    st->in_shutdown = 0;
    return left;
}

static inline int poolsim_cmocka_start_(const poolsim_options *opts)
{
    poolsim_cmocka_state_ *st = poolsim_cmocka_state_get_();
    int rc;
    st->current = *opts;
    poolsim_set_bugcheck_handler(poolsim_cmocka_handler_, NULL);
    rc = poolsim_init(&st->current);
    poolsim_set_bugcheck_handler(poolsim_cmocka_handler_, NULL);
    return rc;
}

/* ---- Fixtures -------------------------------------------------------------- */

/* Options for every following poolsim_cmocka_setup; NULL goes back to the
 * defaults. */
static inline void poolsim_cmocka_set_options(const poolsim_options *opts)
{
    poolsim_cmocka_state_ *st = poolsim_cmocka_state_get_();
    st->have_options = opts != NULL;
    if (opts != NULL)
        st->next = *opts;
}

/* The defaults the fixture uses: poolsim_options_default(), no environment,
 * and Force IRQL checking on (force_irql: paged pool is inaccessible while a
 * thread is at DISPATCH_LEVEL or above, so touching it there is caught). */
static inline poolsim_options poolsim_cmocka_default_options(void)
{
    poolsim_options o;
    poolsim_options_default(&o);
    o.force_irql = 1;
    return o;
}

/* The options of the running instance. */
static inline const poolsim_options *poolsim_cmocka_options(void)
{
    return &poolsim_cmocka_state_get_()->current;
}

/* Group or per-test setup: a fresh instance and the capturing handler. */
static inline int poolsim_cmocka_setup(void **state)
{
    poolsim_cmocka_state_ *st = poolsim_cmocka_state_get_();
    poolsim_options o;
    (void)state;
    if (poolsim_initialized())
        (void)poolsim_cmocka_shutdown_();
    poolsim_cmocka_reset_();
    if (st->have_options)
        o = st->next;
    else
        o = poolsim_cmocka_default_options();
    if (poolsim_cmocka_start_(&o) != POOLSIM_OK) {
        print_error("poolsim_cmocka_setup: poolsim_init failed\n");
        return -1;
    }
    return 0;
}

/* Group or per-test teardown: shuts the instance down; fails the test when a
 * bug check was raised outside expect_* or when blocks leaked. */
static inline int poolsim_cmocka_teardown(void **state)
{
    poolsim_cmocka_state_ *st = poolsim_cmocka_state_get_();
    size_t left;
    bool passive = poolsim_thread_passive_no_locks();
    (void)state;
    if (!passive) {
        /* A test ends like a dispatch routine: at PASSIVE_LEVEL, holding no lock. */
        print_error("poolsim: the test ended above PASSIVE_LEVEL, holding a lock or in a critical region:\n");
        poolsim_report_thread();
    }
    poolsim_thread_reset(); /* the next test starts at PASSIVE_LEVEL whatever this one did */
    left = poolsim_cmocka_shutdown_();
    poolsim_set_bugcheck_handler(NULL, NULL);
    if (st->unexpected != 0) {
        print_error("poolsim: %u unexpected bug check(s) during the test; the first:\n", st->unexpected);
        poolsim_cmocka_print_("   ", &st->first_unexpected);
    }
    if (left != 0) {
        print_error("poolsim: %llu block(s) leaked\n", (unsigned long long)left);
        if (st->leaks != 0)
            poolsim_cmocka_print_("    leak bug check", &st->leak);
    }
    if (st->unexpected != 0 || left != 0 || !passive) {
        poolsim_cmocka_reset_();
        _fail(__FILE__, __LINE__);
    }
    poolsim_cmocka_reset_();
    return 0;
}

/* Fails the test unless the calling thread is at PASSIVE_LEVEL, holds no
 * spin lock and no fast mutex and is in no critical region
 * (poolsim_thread_passive_no_locks); the failure
 * prints the IRQL, the held locks with their acquire sites and the IRQL
 * history. Raises no bug check. */
#define assert_passive_no_locks() poolsim_cmocka_assert_passive_(__FILE__, __LINE__)

static inline void poolsim_cmocka_assert_passive_(const char *file, int line)
{
    if (poolsim_thread_passive_no_locks())
        return;
    print_error("%s:%d: expected PASSIVE_LEVEL and no lock held\n", file, line);
    poolsim_report_thread();
    _fail(file, line);
}

/* Inside a test: replaces the fresh instance by one with *opts (NULL: the
 * fixture's defaults). Fails the test when blocks were outstanding or init
 * fails. */
#define poolsim_cmocka_reinit(opts) poolsim_cmocka_reinit_((opts), __FILE__, __LINE__)

static inline void poolsim_cmocka_reinit_(const poolsim_options *opts, const char *file, int line)
{
    poolsim_options o;
    size_t left = poolsim_cmocka_shutdown_();
    if (left != 0) {
        print_error("poolsim_cmocka_reinit: %llu block(s) were outstanding\n", (unsigned long long)left);
        _fail(file, line);
    }
    if (opts != NULL)
        o = *opts;
    else
        o = poolsim_cmocka_default_options();
    if (poolsim_cmocka_start_(&o) != POOLSIM_OK) {
        print_error("poolsim_cmocka_reinit: poolsim_init failed\n");
        _fail(file, line);
    }
}

/* Puts the capturing handler back, e.g. after a test tried the default one. */
static inline void poolsim_cmocka_install_handler(void)
{
    poolsim_set_bugcheck_handler(poolsim_cmocka_handler_, NULL);
}

/* Calls fn with every captured bug check (NULL: none) until teardown. */
static inline void poolsim_cmocka_set_hook(poolsim_cmocka_hook_fn *fn, void *ctx)
{
    poolsim_cmocka_state_ *st = poolsim_cmocka_state_get_();
    st->hook = fn;
    st->hook_ctx = ctx;
}

/* The last bug check the calling thread captured since setup, or NULL. */
static inline const poolsim_bugcheck *poolsim_cmocka_last(void)
{
    poolsim_cmocka_thread_ *th = poolsim_cmocka_thread_get_();
    return th->has_last ? &th->last : NULL;
}

/* Bug checks raised outside expect_* since setup. */
static inline unsigned poolsim_cmocka_unexpected(void) { return poolsim_cmocka_state_get_()->unexpected; }

/* ---- Expectations ------------------------------------------------------------ */

static inline void poolsim_cmocka_arm_(jmp_buf *jb, int mode)
{
    poolsim_cmocka_thread_ *th = poolsim_cmocka_thread_get_();
    (void)poolsim_trap_rearm(); /* cmocka put its own SIGSEGV handler in place for this test */
    th->hits = 0;
    th->jump = jb;
    th->mode = mode;
}

/* Disarms and returns the number of bug checks the statement raised. */
static inline unsigned poolsim_cmocka_disarm_(void)
{
    poolsim_cmocka_thread_ *th = poolsim_cmocka_thread_get_();
    th->mode = 0;
    th->jump = NULL;
    return th->hits;
}

static inline void poolsim_cmocka_check_(unsigned long code, uintptr_t arg1, const char *stmt,
                                         const char *file, int line)
{
    poolsim_cmocka_thread_ *th = poolsim_cmocka_thread_get_();
    unsigned hits = poolsim_cmocka_disarm_();
    if (hits == 1 && th->first.code == code && th->first.param[0] == arg1)
        return;
    print_error("%s:%d: expected bug check 0x%lX with Arg1 0x%llX from `%s`\n", file, line, code,
                (unsigned long long)arg1, stmt);
    if (hits == 0) {
        print_error("    got none\n");
    } else {
        poolsim_cmocka_print_("    got", &th->first);
        if (hits > 1)
            print_error("    and %u more bug check(s); the last:\n", hits - 1);
        if (hits > 1)
            poolsim_cmocka_print_("   ", &th->last);
    }
    _fail(file, line);
}

static inline void poolsim_cmocka_check_none_(const char *stmt, const char *file, int line)
{
    poolsim_cmocka_thread_ *th = poolsim_cmocka_thread_get_();
    unsigned hits = poolsim_cmocka_disarm_();
    if (hits == 0)
        return;
    print_error("%s:%d: expected no bug check from `%s`\n", file, line, stmt);
    poolsim_cmocka_print_("    got", &th->first);
    _fail(file, line);
}

/* Runs statement; passes when exactly bug check `code` with Arg1 == arg1 is
 * raised in it. The statement stops at the bug check. */
#define expect_bugcheck(code, arg1, ...)                                                                     \
    do {                                                                                                     \
        jmp_buf poolsim_cmocka_jb_;                                                                          \
        poolsim_cmocka_arm_(&poolsim_cmocka_jb_, POOLSIM_CMOCKA_JUMP_);                                      \
        if (setjmp(poolsim_cmocka_jb_) == 0) {                                                               \
            __VA_ARGS__;                                                                                     \
        }                                                                                                    \
        poolsim_cmocka_check_((unsigned long)(code), (uintptr_t)(arg1), #__VA_ARGS__, __FILE__, __LINE__);   \
    } while (0)

/* Like expect_bugcheck, but the handler returns: the raising call fails safely
 * and the statement runs to its end. Passes when exactly one bug check was
 * raised and it matches. */
#define expect_bugcheck_continue(code, arg1, ...)                                                            \
    do {                                                                                                     \
        poolsim_cmocka_arm_(NULL, POOLSIM_CMOCKA_RETURN_);                                                   \
        __VA_ARGS__;                                                                                         \
        poolsim_cmocka_check_((unsigned long)(code), (uintptr_t)(arg1), #__VA_ARGS__, __FILE__, __LINE__);   \
    } while (0)

/* Runs statement; fails when any bug check is raised in it. */
#define expect_no_bugcheck(...)                                                                              \
    do {                                                                                                     \
        jmp_buf poolsim_cmocka_jb_;                                                                          \
        poolsim_cmocka_arm_(&poolsim_cmocka_jb_, POOLSIM_CMOCKA_JUMP_);                                      \
        if (setjmp(poolsim_cmocka_jb_) == 0) {                                                               \
            __VA_ARGS__;                                                                                     \
        }                                                                                                    \
        poolsim_cmocka_check_none_(#__VA_ARGS__, __FILE__, __LINE__);                                        \
    } while (0)

/* ---- Tags, snapshots and fault sweeps ------------------------------------------------------ */

/* Fails the test unless every block allocated with `tag` (either pool; PROTECTED_POOL masked) has been
 * freed. A tag with no row of its own (beyond the table's 768, counted in the overflow row) is checked by
 * going through the live blocks. */
#define assert_pool_tag_balanced(tag) poolsim_cmocka_tag_balanced_((unsigned long)(tag), __FILE__, __LINE__)

/* The blocks of `tag` still allocated, [0] nonpaged and [1] paged, and their bytes; false when there was no
 * memory to go through the live blocks. */
static inline bool poolsim_cmocka_tag_live_(unsigned long tag, uint64_t blocks[2], uint64_t bytes[2])
{
    const uint32_t want = (uint32_t)tag & 0x7FFFFFFFu;
    poolsim_tag_usage_t u;
    if (poolsim_tag_usage(want, &u) && u.tag == want) {
        blocks[0] = u.nonpaged.allocs - u.nonpaged.frees, blocks[1] = u.paged.allocs - u.paged.frees;
        bytes[0] = u.nonpaged.bytes, bytes[1] = u.paged.bytes;
        return true;
    }
    size_t n = poolsim_live_since(0, NULL, 0), got, i;
    poolsim_block_info *b = (poolsim_block_info *)calloc(n ? n : 1, sizeof *b);
    if (!b)
        return false;
    got = poolsim_live_since(0, b, n);
    n = got < n ? got : n;
    blocks[0] = blocks[1] = bytes[0] = bytes[1] = 0;
    for (i = 0; i < n; i++) {
        if ((b[i].tag & 0x7FFFFFFFu) == want) {
            blocks[b[i].pool_type & 1u]++;
            bytes[b[i].pool_type & 1u] += b[i].size;
        }
    }
    free(b);
    return true;
}

static inline void poolsim_cmocka_tag_balanced_(unsigned long tag, const char *file, int line)
{
    uint64_t blocks[2], bytes[2];
    if (!poolsim_cmocka_tag_live_(tag, blocks, bytes)) {
        print_error("assert_pool_tag_balanced: no memory to go through the live blocks\n");
        _fail(file, line);
    } else if (blocks[0] || blocks[1]) {
        print_error("tag 0x%08lx: %lu nonpaged block(s) (%lu bytes) and %lu paged block(s) (%lu bytes) "
                    "still allocated\n",
                    tag, (unsigned long)blocks[0], (unsigned long)bytes[0], (unsigned long)blocks[1],
                    (unsigned long)bytes[1]);
        _fail(file, line);
    }
}

/* A point in time to compare against: `poolsim_cmocka_snapshot s =
 * poolsim_cmocka_snap(); ...code...; assert_snapshot_balanced(s);` fails when
 * the code left blocks allocated, naming each (up to 16). */
typedef struct poolsim_cmocka_snapshot {
    uint64_t seq;
    poolsim_stats stats;
} poolsim_cmocka_snapshot;

static inline poolsim_cmocka_snapshot poolsim_cmocka_snap(void)
{
    poolsim_cmocka_snapshot s;
    s.seq = poolsim_sequence();
    poolsim_get_stats(&s.stats);
    return s;
}

#define assert_snapshot_balanced(snap) poolsim_cmocka_snapshot_balanced_(&(snap), __FILE__, __LINE__)

static inline void poolsim_cmocka_snapshot_balanced_(const poolsim_cmocka_snapshot *s, const char *file, int line)
{
    poolsim_block_info b[16];
    size_t n = poolsim_live_since(s->seq, b, 16);
    if (!n)
        return;
    print_error("%lu block(s) allocated since the snapshot are still allocated:\n", (unsigned long)n);
    for (size_t i = 0; i < n && i < 16; i++)
        print_error("  %p %lu bytes tag 0x%08x from %s:%d (%s)\n", b[i].address, (unsigned long)b[i].size,
                    (unsigned)b[i].tag,
                    b[i].alloc_site.file ? b[i].alloc_site.file : "?", b[i].alloc_site.line,
                    b[i].alloc_site.routine ? b[i].alloc_site.routine : "?");
    _fail(file, line);
}

/* Runs poolsim_fault_sweep(body, ctx) (its table goes through poolsim's
 * output) and fails the test when any run leaked, raised a bug check or
 * crashed. */
#define assert_fault_sweep_clean(body, ctx) poolsim_cmocka_sweep_clean_((body), (ctx), __FILE__, __LINE__)

static inline void poolsim_cmocka_sweep_clean_(poolsim_sweep_body *body, void *ctx, const char *file, int line)
{
    poolsim_sweep_result r;
    if (poolsim_fault_sweep(body, ctx, &r) != 0) {
        print_error("fault sweep: %u run(s) leaked, %u raised a bug check, %u crashed (table above)\n", r.leaked,
                    r.bugchecks, r.crashes);
        _fail(file, line);
    }
}

#ifdef __cplusplus
}
#endif
#endif /* POOLSIM_CMOCKA_H */
