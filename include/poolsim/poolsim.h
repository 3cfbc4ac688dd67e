/* SPDX-License-Identifier: MIT */
/*
 * poolsim.h — the public contract of the poolsim core.
 *
 * poolsim emulates the Windows kernel pool: it hands out blocks with the
 * kernel's alignment and zeroing rules, keeps an out-of-band record of every
 * block, counts usage per tag and pool type like WinDbg's !poolused, and turns
 * every misuse into a bug check with the code and four parameters Windows (or
 * Driver Verifier) would raise. The bug check goes to a handler instead of
 * stopping the machine.
 *
 * The functions without a routine argument act on the process-wide default
 * instance created by poolsim_init(). Unless a comment says otherwise every
 * function is thread-safe and may be called at any simulated IRQL.
 *
 * The poolsim_pool_* functions are the engine behind <poolsim/wdm.h> (user
 * mode) and <poolsim/shim.h> (driver build); driver code calls the WDK names,
 * not these.
 */
#ifndef POOLSIM_POOLSIM_H
#define POOLSIM_POOLSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <poolsim/export.h>
#include <poolsim/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Options ----------------------------------------------------------- */

/* Values of the `family` option: which bug-check codes violations use. */
#define POOLSIM_FAMILY_VERIFIER 0u /* C4 DRIVER_VERIFIER_DETECTED_VIOLATION etc. */
#define POOLSIM_FAMILY_RETAIL 1u   /* C2 BAD_POOL_CALLER / 0x19 BAD_POOL_HEADER */

/* The special_pool_* options and stats exist (for code that builds against several versions). */
#define POOLSIM_HAS_SPECIAL_POOL 1

/* Values of the `tag_check` option: when ExFreePoolWithTag compares tags. */
#define POOLSIM_TAG_CHECK_STRICT 0u    /* any non-zero tag that differs */
#define POOLSIM_TAG_CHECK_PROTECTED 1u /* only blocks tagged PROTECTED_POOL */

/*
 * The options table: X(name, C type, kind, default, meaning). Every option
 * is a field of poolsim_options and can be set from the environment as
 * POOLSIM_<NAME> (upper case): booleans take 1/0/on/off/true/false/yes/no,
 * sizes take K/M/G suffixes, `family` takes verifier/retail, `tag_check`
 * takes strict/protected. A driver build, which has no environment, sets
 * defaults at compile time with -DPOOLSIM_DEFAULT_<NAME>=value.
 */
#ifndef POOLSIM_DEFAULT_FAMILY
#define POOLSIM_DEFAULT_FAMILY POOLSIM_FAMILY_VERIFIER
#endif
#ifndef POOLSIM_DEFAULT_CONTINUE_ON_BUGCHECK
#define POOLSIM_DEFAULT_CONTINUE_ON_BUGCHECK 0
#endif
#ifndef POOLSIM_DEFAULT_TAG_CHECK
#define POOLSIM_DEFAULT_TAG_CHECK POOLSIM_TAG_CHECK_STRICT
#endif
#ifndef POOLSIM_DEFAULT_LEAK_CODE
#define POOLSIM_DEFAULT_LEAK_CODE 0x62
#endif
#ifndef POOLSIM_DEFAULT_LEAK_CHECK
#define POOLSIM_DEFAULT_LEAK_CHECK 1
#endif
#ifndef POOLSIM_DEFAULT_ZERO_SIZE_CHECK
#define POOLSIM_DEFAULT_ZERO_SIZE_CHECK 1
#endif
#ifndef POOLSIM_DEFAULT_PAGED_LIMIT
#define POOLSIM_DEFAULT_PAGED_LIMIT 0x40000000ull
#endif
#ifndef POOLSIM_DEFAULT_NONPAGED_LIMIT
#define POOLSIM_DEFAULT_NONPAGED_LIMIT 0x40000000ull
#endif
#ifndef POOLSIM_DEFAULT_FILL_UNINIT
#define POOLSIM_DEFAULT_FILL_UNINIT 1
#endif
#ifndef POOLSIM_DEFAULT_UNINIT_BYTE
#define POOLSIM_DEFAULT_UNINIT_BYTE 0xC5
#endif
#ifndef POOLSIM_DEFAULT_TRACK_SITES
#define POOLSIM_DEFAULT_TRACK_SITES 1
#endif
#ifndef POOLSIM_DEFAULT_MAX_REPORTS
#define POOLSIM_DEFAULT_MAX_REPORTS 100
#endif
#ifndef POOLSIM_DEFAULT_MAX_REPEATS
#define POOLSIM_DEFAULT_MAX_REPEATS 1
#endif
#ifndef POOLSIM_DEFAULT_QUARANTINE_BYTES
#define POOLSIM_DEFAULT_QUARANTINE_BYTES 0x2000000ull
#endif
#ifndef POOLSIM_DEFAULT_QUARANTINE_BLOCKS
#define POOLSIM_DEFAULT_QUARANTINE_BLOCKS 65536
#endif
#ifndef POOLSIM_DEFAULT_GUARDS
#define POOLSIM_DEFAULT_GUARDS 1
#endif
#ifndef POOLSIM_DEFAULT_FOOTER_BYTES
#define POOLSIM_DEFAULT_FOOTER_BYTES 1
#endif
#ifndef POOLSIM_DEFAULT_QUARANTINE_CHECK
#define POOLSIM_DEFAULT_QUARANTINE_CHECK 256
#endif
#ifndef POOLSIM_DEFAULT_HALT_ON_BAD
#define POOLSIM_DEFAULT_HALT_ON_BAD 0
#endif
#ifndef POOLSIM_DEFAULT_PRINT_FREES
#define POOLSIM_DEFAULT_PRINT_FREES 0
#endif
#ifndef POOLSIM_DEFAULT_FAULT_PROBABILITY
#define POOLSIM_DEFAULT_FAULT_PROBABILITY 0
#endif
#ifndef POOLSIM_DEFAULT_FAULT_TAGS
#define POOLSIM_DEFAULT_FAULT_TAGS ""
#endif
#ifndef POOLSIM_DEFAULT_FAULT_DELAY_ALLOCS
#define POOLSIM_DEFAULT_FAULT_DELAY_ALLOCS 0
#endif
#ifndef POOLSIM_DEFAULT_FAULT_DELAY_MS
#define POOLSIM_DEFAULT_FAULT_DELAY_MS 0
#endif
#ifndef POOLSIM_DEFAULT_FAULT_SEED
#define POOLSIM_DEFAULT_FAULT_SEED 1
#endif
#ifndef POOLSIM_DEFAULT_LOOKASIDE_DEBUG
#define POOLSIM_DEFAULT_LOOKASIDE_DEBUG 0
#endif
#ifndef POOLSIM_DEFAULT_IRQL_HISTORY
#define POOLSIM_DEFAULT_IRQL_HISTORY 16
#endif
#ifndef POOLSIM_DEFAULT_FORCE_IRQL
#define POOLSIM_DEFAULT_FORCE_IRQL 0 /* the cmocka fixture turns it on */
#endif
#ifndef POOLSIM_DEFAULT_SYNCH_LEVEL
#define POOLSIM_DEFAULT_SYNCH_LEVEL 12 /* x64 MP; some headers say 13 (wdk-semantics.md §4.1) */
#endif
#ifndef POOLSIM_DEFAULT_SPECIAL_POOL_TAGS
#define POOLSIM_DEFAULT_SPECIAL_POOL_TAGS ""
#endif
#ifndef POOLSIM_DEFAULT_SPECIAL_POOL_SIZE
#define POOLSIM_DEFAULT_SPECIAL_POOL_SIZE 0
#endif
#ifndef POOLSIM_DEFAULT_SPECIAL_POOL_SAMPLE
#define POOLSIM_DEFAULT_SPECIAL_POOL_SAMPLE 0
#endif
#ifndef POOLSIM_DEFAULT_SPECIAL_POOL_SLOTS
#define POOLSIM_DEFAULT_SPECIAL_POOL_SLOTS 1024
#endif
#ifndef POOLSIM_DEFAULT_SPECIAL_POOL_UNDERRUN
#define POOLSIM_DEFAULT_SPECIAL_POOL_UNDERRUN 0
#endif
#ifndef POOLSIM_DEFAULT_SPECIAL_POOL_PRIORITY
#define POOLSIM_DEFAULT_SPECIAL_POOL_PRIORITY 1
#endif
#ifndef POOLSIM_DEFAULT_SPECIAL_POOL_SEED
#define POOLSIM_DEFAULT_SPECIAL_POOL_SEED 1
#endif
#ifndef POOLSIM_DEFAULT_DRIVER_NAME
#define POOLSIM_DEFAULT_DRIVER_NAME "poolsim.sys"
#endif

/* Kinds: BOOL (1/0/on/off/true/false/yes/no), U32 and U64 (numbers), FAMILY
 * (verifier/retail), TAGCHECK (strict/protected), STR (a string: kept, not copied, so it must stay valid
 * until poolsim_shutdown, as literals and the environment's strings do). */
#define POOLSIM_OPTIONS(X)                                                                                   \
    X(family, uint32_t, FAMILY, POOLSIM_DEFAULT_FAMILY,                                                      \
      "bug-check family: verifier (C4...) or retail (C2/0x19)")                                              \
    X(continue_on_bugcheck, uint32_t, BOOL, POOLSIM_DEFAULT_CONTINUE_ON_BUGCHECK,                            \
      "the default handler reports and returns instead of stopping the process")                             \
    X(tag_check, uint32_t, TAGCHECK, POOLSIM_DEFAULT_TAG_CHECK,                                              \
      "wrong-tag free check: strict (any non-zero tag) or protected (PROTECTED_POOL blocks only)")           \
    X(leak_code, uint32_t, U32, POOLSIM_DEFAULT_LEAK_CODE,                                                   \
      "C4 subcode of the leak check: 0x62 (driver name, count) or 0x60 (paged, nonpaged bytes, count)")      \
    X(leak_check, uint32_t, BOOL, POOLSIM_DEFAULT_LEAK_CHECK,                                                \
      "poolsim_shutdown prints the leak table and raises the leak bug check when blocks remain")             \
    X(zero_size_check, uint32_t, BOOL, POOLSIM_DEFAULT_ZERO_SIZE_CHECK,                                      \
      "a zero-byte request is a bug check (C4/0x00; retail C2/0x00); off: served as a minimum block")        \
    X(paged_limit, uint64_t, U64, POOLSIM_DEFAULT_PAGED_LIMIT,                                               \
      "bytes of paged pool in use before allocations fail (0: no limit)")                                    \
    X(nonpaged_limit, uint64_t, U64, POOLSIM_DEFAULT_NONPAGED_LIMIT,                                         \
      "bytes of nonpaged pool in use before allocations fail (0: no limit)")                                 \
    X(fill_uninit, uint32_t, BOOL, POOLSIM_DEFAULT_FILL_UNINIT,                                              \
      "fill uninitialised blocks with uninit_byte so reads of uninitialised pool stand out")                 \
    X(uninit_byte, uint32_t, U32, POOLSIM_DEFAULT_UNINIT_BYTE, "the byte that fills uninitialised blocks")   \
    X(track_sites, uint32_t, BOOL, POOLSIM_DEFAULT_TRACK_SITES,                                              \
      "record and count the file:line of every allocation (per-site !poolused rows, leak table callers)")    \
    X(max_reports, uint32_t, U32, POOLSIM_DEFAULT_MAX_REPORTS,                                               \
      "reports the default handler prints before it goes quiet (0: no cap)")                                 \
    X(max_repeats, uint32_t, U32, POOLSIM_DEFAULT_MAX_REPEATS,                                               \
      "reports of one violation at one call site the default handler prints; the rest are counted (0: all)") \
    X(guards, uint32_t, BOOL, POOLSIM_DEFAULT_GUARDS,                                                        \
      "canary header, footer and slack around every block, checked at free and by poolsim_validate")         \
    X(footer_bytes, uint32_t, U32, POOLSIM_DEFAULT_FOOTER_BYTES,                                             \
      "canary bytes at least after each small block's requested size (0..64): 1 catches an overrun's first " \
      "byte at the block's free; a write further on may land in the next block's header, caught at its "     \
      "free or by poolsim_validate; 16: a footer of 16 bytes at least")                                      \
    X(quarantine_bytes, uint64_t, U64, POOLSIM_DEFAULT_QUARANTINE_BYTES,                                     \
      "freed bytes held back, poisoned, before reuse, per shard (0: no quarantine)")                         \
    X(quarantine_blocks, uint32_t, U32, POOLSIM_DEFAULT_QUARANTINE_BLOCKS,                                   \
      "freed blocks held back, poisoned, before reuse, per shard (0: no quarantine)")                        \
    X(quarantine_check, uint64_t, U64, POOLSIM_DEFAULT_QUARANTINE_CHECK,                                     \
      "poison bytes checked at each end of a block leaving the quarantine (0: all); poolsim_validate and "   \
      "poolsim_shutdown check all of them")                                                                  \
    X(halt_on_bad, uint32_t, BOOL, POOLSIM_DEFAULT_HALT_ON_BAD,                                              \
      "break into an attached debugger before each bug check is reported")                                   \
    X(print_frees, uint32_t, BOOL, POOLSIM_DEFAULT_PRINT_FREES,                                              \
      "print a line for every free (MemCheck style)")                                                        \
    X(fault_probability, uint32_t, U32, POOLSIM_DEFAULT_FAULT_PROBABILITY,                                   \
      "Low Resources Simulation: allocations failed per 10000 (Verifier's default is 600; 0: off)")          \
    X(fault_tags, const char *, STR, POOLSIM_DEFAULT_FAULT_TAGS,                                             \
      "only allocations with these tags fail: space-separated patterns with ? and * (empty: all; at most "   \
      "127 characters)")                                                                                     \
    X(fault_delay_allocs, uint64_t, U64, POOLSIM_DEFAULT_FAULT_DELAY_ALLOCS,                                 \
      "no injected failure among the first N allocations")                                                   \
    X(fault_delay_ms, uint64_t, U64, POOLSIM_DEFAULT_FAULT_DELAY_MS,                                         \
      "no injected failure during the first N milliseconds")                                                 \
    X(fault_seed, uint64_t, U64, POOLSIM_DEFAULT_FAULT_SEED,                                                 \
      "seed of the injected failures: the same seed and allocation order fail the same allocations")         \
    X(lookaside_debug, uint32_t, BOOL, POOLSIM_DEFAULT_LOOKASIDE_DEBUG,                                      \
      "lookaside lists cache nothing: every free goes to the pool (and its quarantine), so use after free "  \
      "through a list is caught")                                                                            \
    X(irql_history, uint32_t, U32, POOLSIM_DEFAULT_IRQL_HISTORY,                                             \
      "IRQL transitions per thread shown in IRQL and lock reports (0..64; each thread keeps the last 64)")   \
    X(force_irql, uint32_t, BOOL, POOLSIM_DEFAULT_FORCE_IRQL,                                                \
      "Force IRQL checking: paged pool is inaccessible while any thread is at >= DISPATCH_LEVEL; a touch "   \
      "from such a thread is bug check 0xD1")                                                                \
    X(synch_level, uint32_t, U32, POOLSIM_DEFAULT_SYNCH_LEVEL,                                               \
      "the IRQL KeRaiseIrqlToSynchLevel raises to: 12 or 13 (the x64 headers disagree)")                     \
    X(special_pool_tags, const char *, STR, POOLSIM_DEFAULT_SPECIAL_POOL_TAGS,                               \
      "special pool for these tags: space-separated patterns with ? and * (\"*\": every allocation)")        \
    X(special_pool_size, uint32_t, U32, POOLSIM_DEFAULT_SPECIAL_POOL_SIZE,                                   \
      "special pool for one GFlags size class: rounded size + 16 on x64 (0x30: 17-32 bytes; x86: + 8); 0: "  \
      "off")                                                                                                 \
    X(special_pool_sample, uint32_t, U32, POOLSIM_DEFAULT_SPECIAL_POOL_SAMPLE,                               \
      "KFENCE-style sampling: on average 1 in N eligible allocations goes to special pool (0: off)")         \
    X(special_pool_slots, uint32_t, U32, POOLSIM_DEFAULT_SPECIAL_POOL_SLOTS,                                 \
      "special-pool pages, each between no-access guard pages (at most 16384); when all are in use, "        \
      "selected allocations come from normal pool and are counted")                                          \
    X(special_pool_underrun, uint32_t, BOOL, POOLSIM_DEFAULT_SPECIAL_POOL_UNDERRUN,                          \
      "Verify Start: blocks begin at their page's start, so underruns fault at once (default: Verify End)")  \
    X(special_pool_priority, uint32_t, BOOL, POOLSIM_DEFAULT_SPECIAL_POOL_PRIORITY,                          \
      "the ...SpecialPoolOverrun/Underrun priorities put the allocation in special pool (Windows only "      \
      "chooses the placement of an allocation already selected)")                                            \
    X(special_pool_seed, uint64_t, U64, POOLSIM_DEFAULT_SPECIAL_POOL_SEED,                                   \
      "seed of the sampling: the same seed and allocation order sample the same allocations")                \
    X(driver_name, const char *, STR, POOLSIM_DEFAULT_DRIVER_NAME,                                           \
      "driver name: Arg2 of the C4/0x62 leak bug check")

typedef struct poolsim_options {
#define POOLSIM_OPTION_FIELD_(name, type, kind, def, help) type name;
    POOLSIM_OPTIONS(POOLSIM_OPTION_FIELD_)
#undef POOLSIM_OPTION_FIELD_
} poolsim_options;

/* Fills *opts with the compile-time defaults. */
POOLSIM_API void poolsim_options_default(poolsim_options *opts);

/* Applies POOLSIM_<NAME> environment variables on top of *opts. Returns the
 * number of variables that could not be parsed (each is reported). */
POOLSIM_API int poolsim_options_from_env(poolsim_options *opts);

/* ---- Lifetime ---------------------------------------------------------- */

/* Return values of poolsim_init. */
#define POOLSIM_OK 0
#define POOLSIM_E_ALREADY -1 /* poolsim_init called twice without shutdown */
#define POOLSIM_E_NOMEM -2   /* the platform layer gave no memory */
#define POOLSIM_E_OPTION -3  /* an option value is out of range */

/* Creates the default instance. opts == NULL means defaults + environment.
 * IRQL: PASSIVE_LEVEL. */
POOLSIM_API int poolsim_init(const poolsim_options *opts);

/* True between poolsim_init and poolsim_shutdown. */
POOLSIM_API bool poolsim_initialized(void);

/* Reports leaks (Track-style table + the leak bug check), releases every
 * resource and returns the number of blocks that were still allocated.
 * Returns 0 and does nothing when not initialised. IRQL: PASSIVE_LEVEL. */
POOLSIM_API size_t poolsim_shutdown(void);

/* ---- Output and bug checks ---------------------------------------------- */

typedef void poolsim_output_fn(const char *text, void *ctx);

/* Where reports go; fn == NULL restores the platform default (stderr,
 * OutputDebugString or DbgPrintEx). Settable before poolsim_init. */
POOLSIM_API void poolsim_set_output(poolsim_output_fn *fn, void *ctx);

/* Writes text where reports go (DbgPrint uses it). */
POOLSIM_API void poolsim_write(const char *text);

/* Lifecycle of a block (KFENCE style). */
typedef enum poolsim_block_state {
    POOLSIM_BLOCK_LIVE = 1,        /* allocated, owned by the caller */
    POOLSIM_BLOCK_QUARANTINED = 2, /* freed, poisoned and held back */
    POOLSIM_BLOCK_RELEASED = 3     /* freed and gone; the record is history */
} poolsim_block_state;

/* A call site: where a routine was called from. */
typedef struct poolsim_site {
    const char *file; /* NULL when unknown */
    int line;
    const char *routine; /* WDK routine name, e.g. "ExAllocatePool2" */
} poolsim_site;

/* What poolsim knows of one block. Every field comes from the out-of-band
 * record, never from memory the caller can write. */
typedef struct poolsim_block_info {
    const void *address; /* the pointer the caller was given */
    size_t size;         /* bytes requested */
    uint32_t tag;        /* as passed (PROTECTED_POOL bit included) */
    uint32_t pool_type;  /* POOL_TYPE value; ExAllocatePool2 flags are mapped */
    poolsim_block_state state;
    bool quota_charged;
    uint32_t thread; /* allocating thread */
    poolsim_site alloc_site;
    uint64_t alloc_seq;     /* 1 for the instance's first allocation; kept modulo 2^48 */
    poolsim_site free_site; /* valid when state != LIVE */
    uint64_t free_seq;      /* the same, for the free */
} poolsim_block_info;

/* Damaged bytes found next to or inside a block (guards, or poison after free). */
#define POOLSIM_DAMAGE_UNDERRUN 1u   /* header or bytes before the block */
#define POOLSIM_DAMAGE_OVERRUN 2u    /* slack or footer after the block */
#define POOLSIM_DAMAGE_AFTER_FREE 3u /* the block's bytes, written while quarantined */
#define POOLSIM_DAMAGE_BYTES 32u

typedef struct poolsim_damage {
    uint32_t kind;     /* POOLSIM_DAMAGE_*; 0 = this slot is unused */
    const void *first; /* the first damaged byte */
    intptr_t offset;   /* of the first damaged byte from the block's address */
    size_t count;      /* damaged bytes in the checked region */
    uint32_t nbytes;   /* bytes captured below, from `first` */
    uint8_t found[POOLSIM_DAMAGE_BYTES];
    uint8_t expected[POOLSIM_DAMAGE_BYTES];
} poolsim_damage;

/* One IRQL transition of a thread: a raise, a lower, or a lock acquired or
 * released (wdk-semantics.md §5.3: Verifier's IRQL log). */
#define POOLSIM_IRQL_EV_SET 1u     /* poolsim_set_irql */
#define POOLSIM_IRQL_EV_RAISE 2u   /* KeRaiseIrql, KeRaiseIrqlToDpcLevel, ...ToSynchLevel */
#define POOLSIM_IRQL_EV_LOWER 3u   /* KeLowerIrql */
#define POOLSIM_IRQL_EV_ACQUIRE 4u /* a spin lock, queued spin lock or fast mutex was acquired */
#define POOLSIM_IRQL_EV_RELEASE 5u /* ... released */

typedef struct poolsim_irql_event {
    const char *file;   /* call site; NULL when unknown */
    const void *object; /* the lock or fast mutex; NULL for raise and lower */
    uint32_t line;
    uint8_t kind;    /* POOLSIM_IRQL_EV_* */
    uint8_t from;    /* IRQL before */
    uint8_t to;      /* IRQL after */
    uint8_t routine; /* poolsim_irql_routine: which WDK routine */
} poolsim_irql_event;

/* A violation, with the code and parameters Windows would raise. */
typedef struct poolsim_bugcheck {
    unsigned long code;         /* e.g. 0xC4 */
    uintptr_t param[4];         /* Arg1..Arg4 exactly as documented */
    const char *name;           /* e.g. "DRIVER_VERIFIER_DETECTED_VIOLATION" */
    const char *summary;        /* one line, e.g. "free of an address never allocated" */
    const char *arg_meaning[4]; /* what each Arg holds, for the report */
    poolsim_site site;          /* the call that found it */
    bool has_block;             /* block below is the owning block */
    poolsim_block_info block;
    poolsim_damage damage[2]; /* for corruption: both sides (KFENCE style) */
    uint64_t seq;             /* the instance's sequence number when it was raised */
    /* IRQL and lock bug checks: the raising thread's last IRQL transitions,
     * oldest first (at most the irql_history option). The array lives in the
     * thread's own storage and stays valid until its next bug check. */
    const poolsim_irql_event *irql_history;
    uint32_t irql_history_count;
} poolsim_bugcheck;

typedef void poolsim_bugcheck_fn(const poolsim_bugcheck *bc, void *ctx);

/* Who receives violations. fn == NULL restores the default handler, which
 * prints an !analyze-style report and stops the process, or returns when the
 * continue_on_bugcheck option is set. When a handler returns, the call that
 * raised the bug check fails safely: an allocation returns NULL, a free does
 * nothing. A handler may longjmp out: poolsim holds no lock while it runs.
 * Settable before poolsim_init. */
POOLSIM_API void poolsim_set_bugcheck_handler(poolsim_bugcheck_fn *fn, void *ctx);

/* The handler set with poolsim_set_bugcheck_handler (NULL: the default). */
POOLSIM_API void poolsim_get_bugcheck_handler(poolsim_bugcheck_fn **fn, void **ctx);

/* Raises a bug check from outside the pool (KeBugCheckEx, an unhandled
 * ExRaiseStatus). Returns only when the handler returns. */
POOLSIM_API void poolsim_bugcheck_raise(unsigned long code, uintptr_t p1, uintptr_t p2, uintptr_t p3,
                                        uintptr_t p4, const char *file, int line, const char *routine);

/* The report text of a bug check, as the default handler prints it. */
POOLSIM_API void poolsim_report_bugcheck(const poolsim_bugcheck *bc);

/* Name of a bug-check code ("BAD_POOL_CALLER"), or NULL when unknown. */
POOLSIM_API const char *poolsim_bugcheck_name(unsigned long code);

/* Number of bug checks raised since poolsim_init. */
POOLSIM_API uint64_t poolsim_bugcheck_count(void);

/* ---- Queries and checks ----------------------------------------------- */

/* Checks the guards of every live and quarantined block and the poison of
 * every quarantined one. Returns the number of bad blocks and raises a bug
 * check for each. */
POOLSIM_API size_t poolsim_validate(void);

/* True when [p, p+n) lies inside the caller bytes of one live block. With
 * n == 0, true for any p from the block's first byte to one past its last. */
POOLSIM_API bool poolsim_valid_access(const void *p, size_t n);

/* Maps any address inside a block poolsim manages (live, quarantined or
 * released but not yet reused) to that block. Returns false for other
 * addresses. */
POOLSIM_API bool poolsim_find_block(const void *p, poolsim_block_info *out);

/* Prints what poolsim knows of the block containing p, like WinDbg's !pool:
 * the block, its state and sites, and every block on its page with its tag
 * and state ('*' marks the one containing p). */
POOLSIM_API void poolsim_report_block(const void *p);

/* Counters of one tag in one pool class. */
typedef struct poolsim_pool_counters {
    uint64_t allocs;     /* successful allocations */
    uint64_t frees;      /* frees */
    uint64_t bytes;      /* bytes in use (requested sizes) */
    uint64_t peak_bytes; /* highest value of bytes */
    uint64_t failed;     /* allocations that returned NULL or raised */
} poolsim_pool_counters;

typedef struct poolsim_tag_usage_t {
    uint32_t tag;
    poolsim_pool_counters nonpaged; /* every NonPaged* type */
    poolsim_pool_counters paged;    /* every Paged* type */
} poolsim_tag_usage_t;

/* Usage of one tag (PROTECTED_POOL masked off; 0xFFFFFFFF: the overflow row
 * that counts every tag beyond the table's 768). Returns false, with *out
 * zeroed, when the tag was never used or has no row of its own (it came after
 * the table was full: the overflow row counts it). (The type cannot share the
 * function's name in C, hence the _t.) */
POOLSIM_API bool poolsim_tag_usage(unsigned long tag, poolsim_tag_usage_t *out);

/* Totals of the instance. The peaks are exact while one thread's blocks are live (outside special
 * pool), never below the current figure, and a lower bound when threads allocate at once
 * (docs/semantics.md). */
typedef struct poolsim_stats {
    uint64_t allocs, frees, failed;
    uint64_t live_blocks, peak_blocks;
    uint64_t nonpaged_bytes, peak_nonpaged_bytes;
    uint64_t paged_bytes, peak_paged_bytes;
    uint64_t bugchecks;
    uint64_t faults_injected; /* Low Resources Simulation / fail-the-Nth */
    uint64_t tags; /* tags with a row of their own (768 at most: later ones share the overflow row) */
    uint64_t sites;       /* distinct call sites seen */
    uint64_t meta_bytes;  /* poolsim's own out-of-band memory */
    uint64_t arena_bytes; /* pages poolsim holds for blocks */
    uint64_t special_allocs;   /* allocations placed in special pool ("Succeeded SpecialPool") */
    uint64_t special_fallback; /* selected for special pool but served by normal pool: no free slot */
} poolsim_stats;

POOLSIM_API void poolsim_get_stats(poolsim_stats *out);

/* Live blocks allocated after sequence number `since` (poolsim_sequence()):
 * copies up to max of them into out and returns how many there are. Lets a
 * test snapshot before a piece of code and list what it left allocated. */
POOLSIM_API size_t poolsim_live_since(uint64_t since, poolsim_block_info *out, size_t max);

/* A checkpoint of the instance's sequence numbers (allocations and frees both count): every event
 * numbered so far is at most the result, every later one (in this thread, or in a thread that
 * synchronised with it) is above. One thread alone numbers 1, 2, 3...; docs/semantics.md. */
POOLSIM_API uint64_t poolsim_sequence(void);

/* ---- Fault injection (Verifier's Low Resources Simulation, fail-the-Nth) ---- */

/* What to fail. An injected failure returns exactly what the routine returns
 * when the pool is exhausted: NULL, or a raise where the routine raises. */
typedef struct poolsim_fault_config {
    uint32_t probability;  /* failures per 10000 allocations; 0: off */
    const char *tags;      /* probability applies to these tags only (patterns, ? *); NULL or "": all. At most
                            * 127 characters (copied): a longer list turns injection off, with a message */
    uint64_t delay_allocs; /* no random failure among the first delay_allocs allocations */
    uint64_t delay_ms;     /* nor during the first delay_ms milliseconds */
    uint64_t seed;         /* the same seed and the same allocation order fail the same allocations */
    uint64_t nth;          /* fail the nth allocation from now on (1: the next one); 0: off */
    bool persistent;       /* with nth: fail every allocation from the nth on (SQLite's "repeat") */
    const char *site_file; /* fail the first allocation made at site_file:site_line; NULL: off. Kept, not
                            * copied: it must stay valid while this configuration is in force (__FILE__ is) */
    int site_line;
} poolsim_fault_config;

/* Replaces the injection settings and restarts the allocation count; NULL
 * turns injection off. poolsim_init starts from the fault_* options. */
POOLSIM_API void poolsim_fault_configure(const poolsim_fault_config *cfg);

/* Failures injected since poolsim_init ("Resource Allocations Failed Deliberately"). */
POOLSIM_API uint64_t poolsim_faults_injected(void);

/* One injected failure, for the log. */
typedef struct poolsim_fault_record {
    poolsim_site site;
    uint32_t tag;
    uint32_t pool_type;
    size_t size;
    uint64_t index; /* which allocation since poolsim_fault_configure (1 = the first) */
} poolsim_fault_record;

#define POOLSIM_FAULT_LOG 16u

/* The last injected failures, most recent first (at most POOLSIM_FAULT_LOG). */
POOLSIM_API size_t poolsim_fault_log(poolsim_fault_record *out, size_t max);

/* ---- Systematic fault sweep (user mode) ------------------------------------------ */

typedef void poolsim_sweep_body(void *ctx);

/* Outcome of a sweep. */
typedef struct poolsim_sweep_result {
    unsigned runs;        /* runs with an injected failure, plus the first clean run */
    unsigned sites;       /* distinct allocation call sites seen */
    unsigned ok;          /* runs that handled their failure cleanly */
    unsigned leaked;      /* runs that left blocks allocated */
    unsigned bugchecks;   /* runs that raised a bug check */
    unsigned crashes;     /* runs that died or whose process exited non-zero (POSIX only: each run is a child) */
    unsigned not_reached; /* sites whose run never reached them */
} poolsim_sweep_result;

/*
 * Runs body repeatedly, failing each distinct allocation call site once
 * (Verifier's Systematic Low Resources Simulation, usersim's "each unique call
 * site"), sites found only on error paths included. After each run it checks
 * that nothing the run allocated is still allocated and that the counters
 * agree. Prints a table (site, run, outcome) through the output callback and
 * fills *result. Returns 0 when every run was clean, 1 otherwise, -1 when
 * poolsim is not initialised. On POSIX each run is a child process, so a crash
 * is isolated and reported; on Windows the runs share the process (a crash
 * ends it; the table printed so far names the site) and blocks a run leaked
 * are freed after they are reported.
 */
POOLSIM_API int poolsim_fault_sweep(poolsim_sweep_body *body, void *ctx, poolsim_sweep_result *result);

/* The same, failing the nth allocation for n = 1, 2, ... until a run makes
 * fewer than n allocations (SQLite's malloc test loop). */
POOLSIM_API int poolsim_fault_sweep_nth(poolsim_sweep_body *body, void *ctx, poolsim_sweep_result *result);

/* ---- Reports (formatted through the output callback) -------------------- */

/* !poolused flags. */
#define POOLSIM_POOLUSED_VERBOSE 0x1u
#define POOLSIM_POOLUSED_SORT_NONPAGED 0x2u
#define POOLSIM_POOLUSED_SORT_PAGED 0x4u

/* WinDbg's !poolused table. pattern: 4 characters with ? and *, or NULL /
 * "*" for every tag. Verbose adds Allocs, Frees, Diff and Used per pool and a
 * breakdown of each tag by call site. */
POOLSIM_API void poolsim_report_poolused(unsigned flags, const char *tag_pattern);
POOLSIM_API void poolsim_report_poolused_json(const char *tag_pattern);

/* Live blocks like !verifier 3: Address, Length, Tag, Pool, Seq, Caller. */
POOLSIM_API void poolsim_report_outstanding(void);
POOLSIM_API void poolsim_report_outstanding_json(void);

/* Totals and peaks. */
POOLSIM_API void poolsim_report_stats(void);
POOLSIM_API void poolsim_report_stats_json(void);

/* ---- The pool engine (used by wdm.h and shim.h) -------------------------- */

/* Which WDK routine a call came through: it decides the default tag, the
 * failure rule (NULL or raise) and zeroing. */
typedef enum poolsim_routine {
    POOLSIM_RT_EX_ALLOCATE_POOL,
    POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG,
    POOLSIM_RT_EX_ALLOCATE_POOL_WITH_QUOTA,
    POOLSIM_RT_EX_ALLOCATE_POOL_WITH_QUOTA_TAG,
    POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG_PRIORITY,
    POOLSIM_RT_EX_ALLOCATE_POOL_ZERO,
    POOLSIM_RT_EX_ALLOCATE_POOL_QUOTA_ZERO,
    POOLSIM_RT_EX_ALLOCATE_POOL_PRIORITY_ZERO,
    POOLSIM_RT_EX_ALLOCATE_POOL_UNINITIALIZED,
    POOLSIM_RT_EX_ALLOCATE_POOL_QUOTA_UNINITIALIZED,
    POOLSIM_RT_EX_ALLOCATE_POOL_PRIORITY_UNINITIALIZED,
    POOLSIM_RT_EX_ALLOCATE_POOL2,
    POOLSIM_RT_EX_ALLOCATE_POOL3,
    POOLSIM_RT_EX_FREE_POOL,
    POOLSIM_RT_EX_FREE_POOL_WITH_TAG,
    POOLSIM_RT_EX_FREE_POOL2,
    POOLSIM_RT_EX_QUERY_POOL_BLOCK_SIZE,
    POOLSIM_RT_MM_ALLOCATE_CONTIGUOUS_MEMORY,
    POOLSIM_RT_MM_ALLOCATE_CONTIGUOUS_MEMORY_SPECIFY_CACHE,
    POOLSIM_RT_MM_FREE_CONTIGUOUS_MEMORY,
    POOLSIM_RT_MM_ALLOCATE_NONCACHED_MEMORY,
    POOLSIM_RT_MM_FREE_NONCACHED_MEMORY,
    POOLSIM_RT_EX_INITIALIZE_LOOKASIDE_LIST,
    POOLSIM_RT_EX_ALLOCATE_FROM_LOOKASIDE_LIST,
    POOLSIM_RT_EX_FREE_TO_LOOKASIDE_LIST,
    POOLSIM_RT_EX_DELETE_LOOKASIDE_LIST,
    POOLSIM_RT_EX_FLUSH_LOOKASIDE_LIST,
    POOLSIM_RT_COUNT
} poolsim_routine;

/* The WDK name of a routine ("ExAllocatePoolWithTag"). */
POOLSIM_API const char *poolsim_routine_name(poolsim_routine rt);

/* One ExAllocatePool3 / ExFreePool2 extended parameter, laid out like the
 * WDK's POOL_EXTENDED_PARAMETER: Type in bits 0-7, Optional in bit 8. */
typedef struct poolsim_ext_param {
    uint64_t type_and_flags;
    uint64_t value; /* EX_POOL_PRIORITY, a pointer or a node number */
} poolsim_ext_param;

/* An allocation request. `type` is a POOL_TYPE (with the OR-able bits) for
 * the legacy routines and the POOL_FLAGS value for ExAllocatePool2/3. */
typedef struct poolsim_alloc_req {
    poolsim_routine routine;
    uint64_t type;
    size_t size;
    uint32_t tag;
    uint32_t priority; /* EX_POOL_PRIORITY for the ...Priority routines */
    const poolsim_ext_param *ext;
    uint32_t ext_count;
} poolsim_alloc_req;

/*
 * Allocates like the kernel would for req->routine. Returns the block, or
 * NULL. When the routine would raise instead of returning NULL, *raise_status
 * is set to the NTSTATUS to raise (STATUS_INSUFFICIENT_RESOURCES) and NULL is
 * returned; the caller raises it. Otherwise *raise_status is 0.
 * IRQL: as the routine (<= DISPATCH_LEVEL; paged <= APC_LEVEL).
 */
POOLSIM_API void *poolsim_pool_alloc(const poolsim_alloc_req *req, int32_t *raise_status, const char *file,
                                     int line);

/* Frees p through routine rt (ExFreePool, ExFreePoolWithTag, ExFreePool2).
 * has_tag is false for ExFreePool. */
POOLSIM_API void poolsim_pool_free(poolsim_routine rt, void *p, uint32_t tag, const poolsim_ext_param *ext,
                                   uint32_t ext_count, const char *file, int line);

/* MmFreeContiguousMemory (size ignored) and MmFreeNonCachedMemory (size must
 * be the size allocated). The Mm allocations go through poolsim_pool_alloc
 * with their POOLSIM_RT_MM_* routine: whole pages, never zeroed, NULL on
 * failure, tracked under the tags "MmCt" and "MmNc". */
POOLSIM_API void poolsim_mm_free(poolsim_routine rt, void *p, size_t size, const char *file, int line);

/* ---- Lookaside lists (wdk-semantics.md §3) ------------------------------------ */

#define POOLSIM_LOOKASIDE_NPAGED 0u /* ExInitializeNPagedLookasideList */
#define POOLSIM_LOOKASIDE_PAGED 1u  /* ExInitializePagedLookasideList */
#define POOLSIM_LOOKASIDE_EX 2u     /* ExInitializeLookasideListEx */

/* What of a lookaside list lives in the driver's memory: a handle that ties
 * it to poolsim's out-of-band record of the list. A handle that does not
 * check out is an uninitialised (or deleted) list. */
typedef struct poolsim_lookaside {
    uint64_t check;
    uint32_t index;
    uint32_t reserved;
} poolsim_lookaside;

typedef struct poolsim_lookaside_params {
    unsigned kind;      /* POOLSIM_LOOKASIDE_* */
    void (*allocate)(void); /* the driver's Allocate(Ex) routine, or NULL for the pool */
    void (*free)(void);     /* the driver's Free(Ex) routine, or NULL for the pool */
    uint64_t pool_type; /* POOL_TYPE (Ex); NonPagedPool / PagedPool for the others */
    uint32_t flags;     /* the routine's Flags argument */
    size_t size;
    uint32_t tag;
    uint16_t depth;
    void *owner; /* what AllocateEx / FreeEx receive as the list */
} poolsim_lookaside_params;

/* The lookaside routines. init returns an NTSTATUS (STATUS_SUCCESS, or for
 * the Ex list STATUS_INVALID_PARAMETER_4 / _5 for a bad pool type / flags).
 * alloc sets *raise_status when the routine must raise. IRQL: <= DISPATCH_LEVEL
 * (paged lists <= APC_LEVEL). */
POOLSIM_API int32_t poolsim_lookaside_init(poolsim_lookaside *l, const poolsim_lookaside_params *params,
                                           const char *file, int line);
/* `kind` is the kind of routine called (it names the routine in reports). */
POOLSIM_API void *poolsim_lookaside_alloc(poolsim_lookaside *l, unsigned kind, int32_t *raise_status, const char *file,
                                          int line);
POOLSIM_API void poolsim_lookaside_free(poolsim_lookaside *l, unsigned kind, void *entry, const char *file, int line);
POOLSIM_API void poolsim_lookaside_flush(poolsim_lookaside *l, unsigned kind, const char *file, int line);
POOLSIM_API void poolsim_lookaside_delete(poolsim_lookaside *l, unsigned kind, const char *file, int line);

/* ExQueryPoolBlockSize: what the kernel would report for p (rounded to the
 * pool granularity, page-rounded for big blocks). */
POOLSIM_API size_t poolsim_pool_block_size(const void *p, bool *quota_charged, const char *file, int line);

/* ---- Simulated IRQL, spin locks, fast mutexes (user mode) -------------------
 *
 * wdk-semantics.md §4 (levels, raise and lower rules, spin locks), §5.3 (Force
 * IRQL Checking), §1.1 (C4 0x30-0x42), §1.6 (0xA, 0xD1). Each thread has its
 * own simulated IRQL (x64 numbers: PASSIVE 0, APC 1, DISPATCH 2, HIGH 15),
 * its last 64 transitions, and the list of locks it holds. The IRQL and the
 * locks belong to threads, not to an instance: they work before poolsim_init
 * and survive poolsim_shutdown; the options (family, irql_history,
 * force_irql, synch_level) are the running instance's, or the defaults.
 * <poolsim/wdm.h> maps the WDK routines (KeRaiseIrql, KeAcquireSpinLock...)
 * onto these functions with the caller's file and line; docs/semantics.md
 * ("IRQL and locks") lists every bug check with its parameters. A reported
 * misuse whose handler returns does the safe thing documented there (a
 * recursive acquire never deadlocks).
 */

#define POOLSIM_PASSIVE_LEVEL 0u
#define POOLSIM_APC_LEVEL 1u
#define POOLSIM_DISPATCH_LEVEL 2u
#define POOLSIM_HIGH_LEVEL 15u

/* The routine behind a transition or a report. */
typedef enum poolsim_irql_routine {
    POOLSIM_IRQL_RT_SET_IRQL,                   /* poolsim_set_irql */
    POOLSIM_IRQL_RT_RAISE_IRQL,                 /* KeRaiseIrql */
    POOLSIM_IRQL_RT_LOWER_IRQL,                 /* KeLowerIrql */
    POOLSIM_IRQL_RT_RAISE_TO_DPC,               /* KeRaiseIrqlToDpcLevel */
    POOLSIM_IRQL_RT_RAISE_TO_SYNCH,             /* KeRaiseIrqlToSynchLevel */
    POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK,          /* KeAcquireSpinLock */
    POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_RAISE,    /* KeAcquireSpinLockRaiseToDpc */
    POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK,          /* KeReleaseSpinLock */
    POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_AT_DPC,   /* KeAcquireSpinLockAtDpcLevel */
    POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK_FROM_DPC, /* KeReleaseSpinLockFromDpcLevel */
    POOLSIM_IRQL_RT_ACQUIRE_QUEUED,             /* KeAcquireInStackQueuedSpinLock */
    POOLSIM_IRQL_RT_ACQUIRE_QUEUED_AT_DPC,      /* KeAcquireInStackQueuedSpinLockAtDpcLevel */
    POOLSIM_IRQL_RT_RELEASE_QUEUED,             /* KeReleaseInStackQueuedSpinLock */
    POOLSIM_IRQL_RT_RELEASE_QUEUED_FROM_DPC,    /* KeReleaseInStackQueuedSpinLockFromDpcLevel */
    POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX,         /* ExAcquireFastMutex */
    POOLSIM_IRQL_RT_RELEASE_FAST_MUTEX,         /* ExReleaseFastMutex */
    POOLSIM_IRQL_RT_ENTER_CRITICAL_REGION,      /* KeEnterCriticalRegion */
    POOLSIM_IRQL_RT_LEAVE_CRITICAL_REGION,      /* KeLeaveCriticalRegion */
    POOLSIM_IRQL_RT_THREAD_CHECK,               /* poolsim_thread_check */
    POOLSIM_IRQL_RT_TOUCH,                      /* poolsim_touch */
    POOLSIM_IRQL_RT_ACCESS,                     /* a memory access caught by Force IRQL checking */
    POOLSIM_IRQL_RT_TRY_FAST_MUTEX,             /* ExTryToAcquireFastMutex */
    POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX_UNSAFE,  /* ExAcquireFastMutexUnsafe */
    POOLSIM_IRQL_RT_RELEASE_FAST_MUTEX_UNSAFE,  /* ExReleaseFastMutexUnsafe */
    POOLSIM_IRQL_RT_COUNT
} poolsim_irql_routine;

/* The WDK name of a routine ("KeAcquireSpinLock"). */
POOLSIM_API const char *poolsim_irql_routine_name(poolsim_irql_routine rt);

/* The calling thread's IRQL. IRQL: any. */
POOLSIM_API uint8_t poolsim_irql(void);

/* Sets the calling thread's IRQL without any rule check (a test helper: "this
 * code runs at DISPATCH_LEVEL"). Recorded in the history; Force IRQL
 * checking follows it. IRQL: any. */
POOLSIM_API void poolsim_set_irql(uint8_t irql);

/* KeRaiseIrql (rt RAISE_IRQL), KeRaiseIrqlToDpcLevel (RAISE_TO_DPC, new_irql
 * ignored: DISPATCH_LEVEL), KeRaiseIrqlToSynchLevel (RAISE_TO_SYNCH, the
 * synch_level option). Returns the IRQL before. A raise to a lower level or
 * above HIGH_LEVEL is C4/0x30 (retail family 0x9) and changes nothing. */
POOLSIM_API uint8_t poolsim_irql_raise(uint8_t new_irql, poolsim_irql_routine rt, const char *file, int line);

/* KeLowerIrql. A lower to a higher level or above HIGH_LEVEL is C4/0x31
 * (retail family 0xA) and changes nothing. */
POOLSIM_API void poolsim_irql_lower(uint8_t new_irql, const char *file, int line);

/* The IRQL KeRaiseIrqlToSynchLevel raises to (the synch_level option). */
POOLSIM_API uint8_t poolsim_synch_level(void);

/*
 * Internal, not an API. The start of each thread's poolsim state: its IRQL and the ring of its last
 * transitions (poolsim_thread_history); the library's own state of a thread (src/irql.h) starts with
 * this struct. In user mode with GCC or Clang the state is a thread-local variable, and outside Windows
 * (where mingw-w64's thread-local variables are emulated, a call each) wdm.h's KeGetCurrentIrql,
 * KeRaiseIrql, KeRaiseIrqlToDpcLevel and KeLowerIrql read and update it inline: a raise and a lower
 * cost a few loads and stores instead of two calls. Anything but the plain case (a bad level, a raise
 * across DISPATCH_LEVEL while Force IRQL checking is on, the lower of a thread it counts) takes the call
 * (poolsim_irql_raise, poolsim_irql_lower), which does the same and more. POOLSIM_NO_INLINE_IRQL
 * defined before the header makes every one a call.
 */
#if defined(__GNUC__) || defined(__clang__)
#define POOLSIM__INLINE static __inline__
#elif defined(_MSC_VER)
#define POOLSIM__INLINE static __inline
#else
#define POOLSIM__INLINE static inline
#endif
#define POOLSIM__THREAD_BYTES 4096u /* the whole state */
#define POOLSIM__IRQL_HIST 64u      /* transitions kept (a power of two) */
typedef struct poolsim__thread_head {
    uint8_t irql;       /* the simulated IRQL */
    uint8_t fi_counted; /* Force IRQL checking counts the thread as raised: its lower takes the call */
    uint8_t reserved_[2];
    uint32_t hpos; /* transitions recorded; the newest is hist[(hpos - 1) % POOLSIM__IRQL_HIST] */
    poolsim_irql_event hist[POOLSIM__IRQL_HIST];
} poolsim__thread_head;

/* Records a transition in the thread's ring. */
POOLSIM__INLINE void poolsim__irql_record(poolsim__thread_head *t, unsigned kind, unsigned from, unsigned to,
                                          unsigned rt, const void *obj, const char *file, int line)
{
    poolsim_irql_event *e = &t->hist[t->hpos++ % POOLSIM__IRQL_HIST];
    e->file = file;
    e->object = obj;
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) &&                                  \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    {
        /* line, kind, from, to and routine are the event's last 8 bytes: one store. */
        uint64_t tail = (uint64_t)(uint32_t)line | (uint64_t)(kind & 0xFFu) << 32 |
                        (uint64_t)(from & 0xFFu) << 40 | (uint64_t)(to & 0xFFu) << 48 |
                        (uint64_t)(rt & 0xFFu) << 56;
        __builtin_memcpy(&e->line, &tail, sizeof tail);
    }
#else
    e->line = (uint32_t)line;
    e->kind = (uint8_t)kind;
    e->from = (uint8_t)from;
    e->to = (uint8_t)to;
    e->routine = (uint8_t)rt;
#endif
}

#if !defined(POOLSIM_KERNEL) && (defined(__GNUC__) || defined(__clang__))
#define POOLSIM__THREAD_TLS 1
typedef union poolsim__thread_block {
    poolsim__thread_head head;
    uint64_t words[POOLSIM__THREAD_BYTES / 8];
} poolsim__thread_block;
#ifdef _WIN32
#define POOLSIM__THREAD_API /* read by the library only: a DLL does not export it */
#else
#define POOLSIM__THREAD_API POOLSIM_API /* a shared library exports it for the inline raise and lower */
#endif
/* Zeroed when the thread starts (src/prim/posix.c, win32.c). */
POOLSIM__THREAD_API extern __thread poolsim__thread_block poolsim__thread_tls __attribute__((aligned(16)));
/* Non-zero while an instance has Force IRQL checking on: a raise to DISPATCH_LEVEL takes the call. */
POOLSIM__THREAD_API extern uint32_t poolsim__irql_watch;
#endif

#if defined(POOLSIM__THREAD_TLS) && !defined(_WIN32) && !defined(POOLSIM_NO_INLINE_IRQL)
#define POOLSIM__IRQL_INLINE 1

POOLSIM__INLINE uint8_t poolsim__irql_inline(void) { return poolsim__thread_tls.head.irql; }

POOLSIM__INLINE uint8_t poolsim__irql_raise_inline(uint8_t new_irql, poolsim_irql_routine rt,
                                                   const char *file, int line)
{
    poolsim__thread_head *t = &poolsim__thread_tls.head;
    uint8_t cur = t->irql;
    /* 15 HIGH_LEVEL, 2 DISPATCH_LEVEL */
    if (__builtin_expect(
            new_irql < cur || new_irql > 15 ||
                (cur < 2 && new_irql >= 2 && __atomic_load_n(&poolsim__irql_watch, __ATOMIC_RELAXED)),
            0))
        return poolsim_irql_raise(new_irql, rt, file, line);
    poolsim__irql_record(t, POOLSIM_IRQL_EV_RAISE, cur, new_irql, (unsigned)rt, NULL, file, line);
    t->irql = new_irql;
    return cur;
}

POOLSIM__INLINE void poolsim__irql_lower_inline(uint8_t new_irql, const char *file, int line)
{
    poolsim__thread_head *t = &poolsim__thread_tls.head;
    uint8_t cur = t->irql;
    if (__builtin_expect(new_irql > cur || new_irql > 15 /* HIGH_LEVEL */ || t->fi_counted, 0)) {
        poolsim_irql_lower(new_irql, file, line);
        return;
    }
    poolsim__irql_record(t, POOLSIM_IRQL_EV_LOWER, cur, new_irql, POOLSIM_IRQL_RT_LOWER_IRQL, NULL, file,
                         line);
    t->irql = new_irql;
}
#else
#define poolsim__irql_inline poolsim_irql
#define poolsim__irql_raise_inline poolsim_irql_raise
#define poolsim__irql_lower_inline poolsim_irql_lower
#endif

/*
 * A spin lock: a pointer-sized word (KSPIN_LOCK), 0 when initialised. It
 * really locks: a thread that finds it held spins (with a pause, then yields)
 * until it is free. rt says which routine: ACQUIRE_SPIN_LOCK and
 * ACQUIRE_SPIN_LOCK_RAISE raise to DISPATCH_LEVEL and return the IRQL
 * before; ACQUIRE_SPIN_LOCK_AT_DPC needs DISPATCH_LEVEL or above and returns
 * the current IRQL; the QUEUED forms are the in-stack queued spin lock
 * routines (the caller keeps the returned IRQL in its KLOCK_QUEUE_HANDLE).
 * IRQL: <= DISPATCH_LEVEL (the AtDpcLevel forms: >= DISPATCH_LEVEL).
 */
POOLSIM_API uint8_t poolsim_spin_acquire(uintptr_t *lock, poolsim_irql_routine rt, const char *file, int line);

/* Releases lock through routine rt (RELEASE_SPIN_LOCK with new_irql the
 * OldIrql of the acquire; RELEASE_SPIN_LOCK_FROM_DPC; RELEASE_QUEUED with the
 * handle's saved IRQL; RELEASE_QUEUED_FROM_DPC). IRQL: DISPATCH_LEVEL (the
 * FromDpcLevel forms: >= DISPATCH_LEVEL). */
POOLSIM_API void poolsim_spin_release(uintptr_t *lock, uint8_t new_irql, poolsim_irql_routine rt,
                                      const char *file, int line);

/* A fast mutex whose owner word is *owner (NULL when free). Acquire raises to
 * APC_LEVEL and returns the IRQL before (the caller keeps it in the mutex),
 * or POOLSIM_NOT_ACQUIRED after a reported recursive acquire (the mutex was
 * the caller's already: keep the saved IRQL). Release restores old_irql.
 * Waiting threads spin and yield. IRQL: acquire <= APC_LEVEL, release
 * APC_LEVEL. mutex is the object reports name. (ExTryToAcquireFastMutex and
 * the unsafe pair are <poolsim/wdm.h>'s.) */
#define POOLSIM_NOT_ACQUIRED 0xFFu
POOLSIM_API uint8_t poolsim_fast_mutex_acquire(const void *mutex, void **owner, const char *file, int line);
POOLSIM_API void poolsim_fast_mutex_release(const void *mutex, void **owner, uint8_t old_irql,
                                            const char *file, int line);

/* KeEnterCriticalRegion (enter true) and KeLeaveCriticalRegion: counts the
 * thread's critical regions. IRQL: <= APC_LEVEL (C4/0x11A, 0x11B above). */
POOLSIM_API void poolsim_critical_region(bool enter, const char *file, int line);

/* A lock the calling thread holds. */
typedef struct poolsim_held_lock {
    const void *object; /* the KSPIN_LOCK or FAST_MUTEX */
    const char *file;   /* where it was acquired; NULL when unknown */
    int line;
    uint8_t routine;  /* poolsim_irql_routine of the acquire */
    uint8_t old_irql; /* the IRQL before the acquire */
} poolsim_held_lock;

/* Copies up to max of the locks the calling thread holds (oldest first)
 * and returns how many it holds. IRQL: any. */
POOLSIM_API size_t poolsim_thread_locks(poolsim_held_lock *out, size_t max);

/* Copies up to max of the calling thread's last IRQL transitions (oldest
 * first; the thread keeps 64) and returns how many were copied. IRQL: any. */
POOLSIM_API size_t poolsim_thread_history(poolsim_irql_event *out, size_t max);

/* KeEnterCriticalRegion calls of this thread not yet left. */
POOLSIM_API uint32_t poolsim_thread_critical_regions(void);

/* True when the calling thread is at PASSIVE_LEVEL, holds no spin lock and
 * no fast mutex, and is in no critical region: what every dispatch routine
 * and every test must end with. Otherwise raises a bug check and returns
 * false: C4/0x40009 (a spin lock is still held; the DDI SpinLock rule) or
 * C4/0x40007 (a queued one) in the verifier family, else 0x4A
 * IRQL_GT_ZERO_AT_SYSTEM_SERVICE (0, IRQL, 0, 0); at PASSIVE_LEVEL holding
 * nothing but inside a critical region, 0x1 APC_INDEX_MISMATCH (0, 0, the
 * combined APC disable count, 0). The report shows the held locks and the
 * history. IRQL: any. */
POOLSIM_API bool poolsim_thread_check(void);

/* The same without reporting. */
POOLSIM_API bool poolsim_thread_passive_no_locks(void);

/* Forgets the calling thread's state: back to PASSIVE_LEVEL, no locks held
 * (their lock words are not touched), no critical region, empty history.
 * Test fixtures call it after a test that failed with a lock held. */
POOLSIM_API void poolsim_thread_reset(void);

/* Prints the calling thread's IRQL, held locks and IRQL history. */
POOLSIM_API void poolsim_report_thread(void);

/*
 * Force IRQL checking without page protection: the check a trapped access
 * makes, done explicitly. When the calling thread is at DISPATCH_LEVEL or
 * above and [p, p+n) touches paged pool, raises DRIVER_IRQL_NOT_LESS_OR_EQUAL
 * (0xD1: the first paged byte, the IRQL, 0 read / 1 write, the caller's
 * address) with the owning block and returns false; true otherwise. Works
 * on every platform and whatever the force_irql option says. IRQL: any.
 */
POOLSIM_API bool poolsim_touch(const void *p, size_t n);
POOLSIM_API bool poolsim_touch_write(const void *p, size_t n);

/* Puts poolsim's fault trap (special pool's guard and freed pages, Force IRQL
 * checking) back in front of the process's fault handling, when a test
 * framework replaced it since (cmocka installs its own SIGSEGV handler around
 * each test). poolsim does this itself at each special-pool allocation and
 * free and when Force IRQL checking applies its protection (the first raise
 * to DISPATCH_LEVEL); <poolsim/cmocka.h>'s expect_* macros call it first. A
 * test that touches a fixture's special-pool block outside those macros
 * calls it at its start. Does nothing, and returns false, until special
 * pool or Force IRQL checking has installed the trap; returns whether it is
 * in place. IRQL: any (not from a signal handler). */
POOLSIM_API bool poolsim_trap_rearm(void);

/* True when Force IRQL checking traps accesses here: the force_irql option
 * is on and the platform can protect pages and trap faults (x86-64 Linux
 * and Windows; not the kernel). */
POOLSIM_API bool poolsim_force_irql_active(void);

#ifdef __cplusplus
}
#endif
#endif /* POOLSIM_POOLSIM_H */
