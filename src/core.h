/* SPDX-License-Identifier: MIT */
/*
 * core.h — private declarations shared by the core's subsystems.
 *
 * The core is freestanding C99: it includes only compiler headers and asks
 * the platform for everything else through prim/prim.h. Layout of the state:
 *
 *   instance ─┬─ radix page map: any address → page descriptor (out of band)
 *             ├─ shards[]: one lock each; own chunks of pages, slab lists,
 *             │            free page runs (threads are spread over shards)
 *             ├─ tag table and site table: lock-free lookups, atomic counters
 *             └─ totals (atomics)
 *
 * A block lives in a slab slot (small) or a page run (big); its record lives
 * in the page descriptor's record array, never in memory the caller can reach.
 */
#ifndef POOLSIM_CORE_H
#define POOLSIM_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <poolsim/poolsim.h>

#include "atomic.h"
#include "prim/prim.h"

/* ---- Freestanding helpers ------------------------------------------------ */

#if defined(__GNUC__) || defined(__clang__)
#define psim_memset __builtin_memset
#define psim_memcpy __builtin_memcpy
#define psim_memcmp __builtin_memcmp
#define PSIM_LIKELY(x) __builtin_expect(!!(x), 1)
#define PSIM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PSIM_PREFETCH(p) __builtin_prefetch((const void *)(p))
#else
void *memset(void *, int, size_t);
void *memcpy(void *, const void *, size_t);
int memcmp(const void *, const void *, size_t);
#define psim_memset memset
#define psim_memcpy memcpy
#define psim_memcmp memcmp
#define PSIM_LIKELY(x) (x)
#define PSIM_UNLIKELY(x) (x)
#define PSIM_PREFETCH(p) ((void)(p))
#endif

/* Starts a member on a cache line of its own (64 bytes on every target poolsim has). */
#if defined(__GNUC__) || defined(__clang__)
#define PSIM_LINE_ALIGNED __attribute__((aligned(64)))
#elif defined(_MSC_VER)
#define PSIM_LINE_ALIGNED __declspec(align(64))
#else
#define PSIM_LINE_ALIGNED
#endif

#define PSIM_STATIC_ASSERT(cond, name) typedef char psim_static_assert_##name[(cond) ? 1 : -1]
#define PSIM_COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Windows constants the core needs (wdk-semantics.md §2, §4) ---------- */

#define PSIM_PAGE POOLSIM__PAGE_SIZE
#define PSIM_GRAN (2u * (unsigned)sizeof(void *))   /* pool granularity: 16 on x64, 8 on x86 (§2.5) */
#define PSIM_SMALL_MAX (PSIM_PAGE - 2u * PSIM_GRAN) /* 0xFE0 on x64, 0xFF0 on x86: above is big pool */
#define PSIM_BIG_GUARD 256u  /* canary bytes before a big block, at the end of its guard page */
#define PSIM_CACHE_ALIGN 64u /* CacheAligned types: §2.5 UNCONFIRMED, 64 chosen */

#define PSIM_PROTECTED_POOL 0x80000000u
#define PSIM_TAG_NONE 0x656E6F4Eu         /* 'enoN' displays "None" (§2.6) */
#define PSIM_TAG_BIG 0x20474942u          /* ' GIB' displays "BIG " */
#define PSIM_TAG_MM_CONTIG 0x74436D4Du    /* displays "MmCt": MmAllocateContiguousMemory */
#define PSIM_TAG_MM_NONCACHED 0x634E6D4Du /* displays "MmNc": MmAllocateNonCachedMemory */

/* POOL_TYPE bits (§2.1). */
#define PSIM_PT_PAGED 0x1u
#define PSIM_PT_MUST_SUCCEED 0x2u
#define PSIM_PT_CACHE_ALIGNED 0x4u
#define PSIM_PT_QUOTA_FAIL 0x8u
#define PSIM_PT_RAISE 0x10u
#define PSIM_PT_SESSION 0x20u
#define PSIM_PT_COLD 0x100u
#define PSIM_PT_NX 0x200u
#define PSIM_PT_ZERO 0x400u

/* POOL_FLAGS (§2.2). */
#define PSIM_PF_USE_QUOTA 0x1ull
#define PSIM_PF_UNINITIALIZED 0x2ull
#define PSIM_PF_SESSION 0x4ull
#define PSIM_PF_CACHE_ALIGNED 0x8ull
#define PSIM_PF_RAISE_ON_FAILURE 0x20ull
#define PSIM_PF_NON_PAGED 0x40ull
#define PSIM_PF_NON_PAGED_EXECUTE 0x80ull
#define PSIM_PF_PAGED 0x100ull
#define PSIM_PF_SPECIAL_POOL 0x100000000ull

#define PSIM_IRQL_APC 1u
#define PSIM_IRQL_DISPATCH 2u

#define PSIM_STATUS_INSUFFICIENT_RESOURCES ((int32_t)0xC000009Au)

/* ---- Small utilities --------------------------------------------------- */

static inline uintptr_t psim_align_up(uintptr_t v, uintptr_t a) { return (v + a - 1) & ~(a - 1); }

/* SplitMix64's finaliser: every bit of x moves about half of the result's. */
static inline uint64_t psim_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* A POOL_TYPE as records and bug checks show it: without the bits that only shape the request. */
static inline uint64_t psim_pool_type_base(uint64_t type)
{
    return type & ~(uint64_t)(PSIM_PT_QUOTA_FAIL | PSIM_PT_RAISE | PSIM_PT_COLD | PSIM_PT_ZERO);
}

/* ---- Options (options.c) ------------------------------------------------ */

typedef struct psim_option_desc {
    const char *name;
    size_t offset;
    unsigned kind; /* PSIM_OPT_* */
    const char *help;
} psim_option_desc;

#define PSIM_OPT_U32 1u
#define PSIM_OPT_U64 2u
#define PSIM_OPT_STR 3u
#define PSIM_OPT_BOOL 4u
#define PSIM_OPT_FAMILY 5u
#define PSIM_OPT_TAGCHECK 6u

extern const psim_option_desc poolsim__option_table[];
extern const size_t poolsim__option_count;

#define POOLSIM_QUARANTINE_BLOCKS_MAX 0x100000u /* 1M blocks: a 16 MiB ring per shard */

/* Checks ranges; returns the name of the first bad option or NULL. */
const char *poolsim__options_check(const poolsim_options *o);
/* True when s (NULL counts as empty) has at most max characters. */
bool poolsim__text_fits(const char *s, size_t max);

/* ---- Formatting (fmt.c) ------------------------------------------------- */

/* printf subset: %% %c %s %.*s %d %i %u %x %X %p, flags - 0, width (or *),
 * length l ll z. Always NUL-terminates; returns the length it wanted. */
size_t poolsim__vfmt(char *buf, size_t cap, const char *fmt, va_list ap);
size_t poolsim__fmt(char *buf, size_t cap, const char *fmt, ...);
/* True when both are NULL or both hold the same text. */
bool poolsim__same_text(const char *a, const char *b);

/* Writes the 4 tag bytes in memory order, non-printable bytes as '.'. */
void poolsim__tag_text(uint32_t tag, char out[5]);

/* ---- Records and pages (tracker.c) -------------------------------------- */

enum psim_state { PSIM_FREE = 0, PSIM_LIVE = 1, PSIM_QUARANTINED = 2, PSIM_RELEASED = 3 };

#define PSIM_REC_QUOTA 0x01u     /* quota was charged */
#define PSIM_REC_CACHE 0x02u     /* cache-aligned placement */
#define PSIM_REC_CONTIG 0x04u    /* made by MmAllocateContiguousMemory* */
#define PSIM_REC_NONCACHED 0x08u /* made by MmAllocateNonCachedMemory */
#define PSIM_REC_LIST 0x10u      /* holds a lookaside list's struct (C4/0xCC on free) */

/* The out-of-band record of one block: 40 bytes on every target. Sizes are
 * at most PSIM_SIZE_MAX; sequence numbers keep their low 48 bits (they wrap
 * after 2^48 allocations and frees, as docs/semantics.md says). Copy a
 * field into a uint64_t before arithmetic on it: GCC computes `r->size + 1`
 * in 48 bits. */
typedef struct psim_rec {
    uint64_t size : 48;
    uint64_t pool_type : 10; /* POOL_TYPE without the OR-able request bits (at most 0x225) */
    uint64_t alloc_rt : 6;   /* poolsim_routine */
    uint64_t alloc_seq : 48;
    uint64_t next_free : 16; /* slot free list */
    uint64_t free_seq : 48;
    uint64_t state : 2; /* enum psim_state */
    uint64_t flags : 8; /* PSIM_REC_* */
    uint64_t free_rt : 6;
    uint32_t alloc_site; /* site table index; 0 = not recorded */
    uint32_t free_site;
    uint32_t tag;
    uint32_t thread;
} psim_rec;
PSIM_STATIC_ASSERT(sizeof(psim_rec) == 40, record_is_40_bytes);
PSIM_STATIC_ASSERT(POOLSIM_RT_COUNT <= 64, routines_fit_in_6_bits);
/* The largest request poolsim tries: larger ones fail like any request no memory can meet. */
#define PSIM_SIZE_MAX (sizeof(void *) == 8 ? (1ull << 47) - 1 : (uint64_t)(SIZE_MAX / 2))

enum psim_page_kind {
    PSIM_PG_UNUSED = 0,
    PSIM_PG_FREE_RUN,
    PSIM_PG_SLAB,
    PSIM_PG_BIG,
    PSIM_PG_BIG_TAIL,
    PSIM_PG_SPECIAL,      /* a special-pool page: one block (special.c) */
    PSIM_PG_SPECIAL_GUARD /* the no-access page between two special-pool pages */
};

#define PSIM_NO_SLOT 0xFFFFu

typedef struct psim_page {
    uint8_t kind;                                /* enum psim_page_kind */
    uint8_t pool;                                /* 0 nonpaged, 1 paged */
    uint8_t shard;                               /* owning shard: its lock guards this descriptor */
    uint16_t slot_size, user_off, nslots, nused; /* SPECIAL: nused 1 while the page is open */
    uint16_t free_head, free_tail;               /* FIFO of free slots */
    uint32_t run;                  /* BIG/FREE_RUN: pages in the run; BIG_TAIL: pages back to the head */
    uintptr_t base;                /* address of the page */
    psim_rec *recs;                /* SLAB: nslots records; BIG: one */
    struct psim_page *next, *prev; /* class list or free-run list */
} psim_page;

typedef struct psim_chunk {
    struct psim_chunk *next; /* instance list, for walks */
    uintptr_t base;
    uint32_t npages;
    uint32_t carved; /* pages handed out so far (bump) */
    uint8_t shard, pool;
    psim_page pages[1]; /* npages descriptors */
} psim_chunk;

/* Slab classes: slot sizes in granules, separately for cache alignment. */
#define PSIM_CLASSES (PSIM_PAGE / PSIM_GRAN + 1u)
#define PSIM_RUN_LISTS 64u /* exact-length free-run lists 1..63, last one: longer runs */

/* A quarantined block: its page and slot (out of band, like everything). */
typedef struct psim_qent {
    psim_page *page;
    uint32_t slot;
} psim_qent;

typedef struct psim_shard {
    poolsim__prim_lock lock;
    psim_qent *qring; /* FIFO of quarantined blocks, allocated on first use */
    uint32_t qcap, qhead, qcount;
    uint64_t qbytes;                         /* caller bytes in this shard's quarantine */
    uint64_t allocs, frees, live, live_peak; /* relaxed stores under the lock */
    uint64_t bytes[2], bytes_peak[2];        /* [pool]: caller bytes of the live blocks; their peak */
    uint64_t grant[2]; /* [pool]: bytes of the pool's limit this shard holds (>= bytes while one is set) */
    /* The last call site this shard looked up, for allocations [0] and frees [1]. */
    struct {
        const char *file;
        poolsim_routine rt;
        int line;
        uint32_t tag, idx;
    } site_cache[2];
    struct psim_tagent *tag_cache; /* the tag entry this shard counted last */
    psim_page *partial[2][2][PSIM_CLASSES]; /* [pool][cache-aligned][class]: pages with a free slot */
    psim_page *runs[2][PSIM_RUN_LISTS];     /* [pool][length]: free page runs */
    psim_chunk *cur[2];                     /* [pool]: chunk being carved */
} psim_shard;

/* The radix page map: 48-bit addresses, 12 + 12 + 12 bits of page number. */
#define PSIM_RADIX_BITS 12u
#define PSIM_RADIX_FAN (1u << PSIM_RADIX_BITS)

/* ---- Tags, sites and totals (tags.c) ------------------------------------ */

#ifndef POOLSIM_SHARDS
#define POOLSIM_SHARDS 8u /* power of two */
#endif

/* One shard's share of a call site's counters, [pool]; a cache line each. */
typedef struct psim_site_counts {
    uint64_t allocs[2], frees[2], bytes[2];
    uint64_t pad_[2];
} psim_site_counts;

/* Sites and tag entries live in line-aligned tables (tags.c), so each shard's counters in them have a
 * cache line to themselves. */
typedef struct psim_site {
    const char *file;
    const char *routine;
    int32_t line;
    uint32_t tag; /* PROTECTED_POOL masked */
    /* Written under each shard's lock (relaxed stores), summed by readers: two
     * threads allocating at one site do not bounce one line between them. */
    PSIM_LINE_ALIGNED psim_site_counts c[POOLSIM_SHARDS];
} psim_site;

/* One shard's share of a tag's counters, written under that shard's lock
 * (relaxed stores) and summed by readers. */
typedef struct psim_counters {
    uint64_t allocs, frees, bytes;
    uint64_t peak; /* the highest `bytes` this shard has seen */
} psim_counters;

typedef struct psim_tagent {
    uint32_t tag;
    uint32_t used;                                        /* 0 = empty slot; published last */
    uint64_t peak[2];                                     /* atomic: highest total bytes seen, per pool */
    uint64_t failed[2];                                   /* atomic */
    PSIM_LINE_ALIGNED psim_counters c[POOLSIM_SHARDS][2]; /* [shard][pool]: a line per shard */
} psim_tagent;
PSIM_STATIC_ASSERT(sizeof(psim_site_counts) == 64 && sizeof(psim_counters) * 2 == 64, counters_fill_a_line);

#ifndef POOLSIM_TAG_CAPACITY
#define POOLSIM_TAG_CAPACITY 1024u /* distinct tags counted one by one; the rest in one overflow row */
#endif
#ifndef POOLSIM_SITE_CAPACITY
#define POOLSIM_SITE_CAPACITY 16384u /* distinct (call site, tag) pairs */
#endif
#define PSIM_SITE_CHUNK 256u
#define PSIM_TAG_OVERFLOW 0xFFFFFFFFu /* the overflow row's tag */

/* Instance-wide atomics; the per-operation counts live in the shards. */
typedef struct psim_totals {
    uint64_t failed, peak_live, peak_bytes[2];
    uint64_t granted[2]; /* [pool]: the shards' grants summed: at most the pool's limit */
} psim_totals;

#ifndef POOLSIM_LOOKASIDE_CAPACITY
#define POOLSIM_LOOKASIDE_CAPACITY 1024u /* live lookaside lists */
#endif

/* ---- Fault injection (fault.c) ------------------------------------------- */

#define PSIM_TRACE_SITES 256u
#define PSIM_FAULT_ON 0x1u    /* a probability, nth or site is set */
#define PSIM_FAULT_TRACE 0x2u /* record every allocation site (sweeps) */

#define PSIM_FAULT_TAGS_MAX 127u /* characters of a fault tag list (a copy is kept) */

typedef struct psim_fault {
    poolsim__prim_lock lock; /* guards everything below but the atomics */
    uint32_t flags;          /* PSIM_FAULT_*: the hot path reads only this */
    uint32_t probability;
    char tags[PSIM_FAULT_TAGS_MAX + 1];
    uint64_t delay_allocs, delay_ns, start_ns, seed, nth;
    bool persistent;
    const char *site_file;
    int site_line;
    uint64_t site_done;       /* atomic: the site's failure was injected */
    uint64_t count, injected; /* atomics: allocations seen, failures injected */
    poolsim_fault_record log[POOLSIM_FAULT_LOG];
    uint32_t log_n; /* records written, ever */
    poolsim_site trace[PSIM_TRACE_SITES];
    uint32_t ntrace;
} psim_fault;

/* ---- Special pool (special.c) -------------------------------------------- */

/* Each block page of the special-pool region becomes a mapping of its own the first time it is opened
 * and stays one (prim/posix.c says why), and Linux allows 65530 per process (vm.max_map_count): 16384
 * slots keep 32769, half of them, once every slot was used. */
#define PSIM_SPECIAL_SLOTS_MAX 16384u
/* Bits of psim_special.on. */
#define PSIM_SP_REQUESTS 0x1u /* the platform can: honour POOL_FLAG_SPECIAL_POOL and the priorities */
#define PSIM_SP_CHOOSE 0x2u   /* a tag pattern, size class or sampling rate is set */

/* The special-pool region: 2 * nslots + 1 pages, guard pages at the even
 * indexes, block pages at the odd ones. Shard 0's lock guards it. */
typedef struct psim_special {
    uint32_t on;       /* atomic: PSIM_SP_*, set at init; 0 when the region cannot be made */
    uint32_t nslots;   /* from the special_pool_slots option */
    psim_chunk *chunk; /* made at the first special allocation */
    psim_rec *recs;    /* one per slot */
    uint32_t *fifo;    /* free slots, least recently freed first */
    uint32_t fhead, fcount;
    uint64_t allocs, fallback; /* atomics */
    uint64_t sample_count;     /* atomic: the sampling count where there is no thread state */
    uint64_t threads;          /* atomic: threads that have sampled, numbering their seeds */
} psim_special;

/* ---- The instance ------------------------------------------------------ */

#ifndef POOLSIM_CHUNK_PAGES
#define POOLSIM_CHUNK_PAGES 256u /* 1 MiB of pages per chunk */
#endif

typedef struct psim {
    poolsim_options opt;
    uint64_t secret;      /* canary secret; also names the instance a thread's sequence batch is of */
    uint64_t seq_floor;   /* atomic: the last checkpoint (poolsim__seq_now); numbers handed out are above */
    /* atomic: the last sequence number handed out (in batches). Padded, not aligned, to a line of its
     * own: the platform allocates the instance 16-aligned. */
    uint8_t seq_pad_[56];
    uint64_t seq;
    uint8_t seq_pad2_[56];
    psim_totals tot;      /* atomics */
    uint64_t meta_bytes;  /* atomic */
    uint64_t arena_bytes; /* atomic */

    poolsim__prim_lock map_lock; /* guards radix growth and the chunk list */
    void **radix;                /* PSIM_RADIX_FAN level-1 slots */
    psim_chunk *chunks;

    psim_tagent *tags; /* POOLSIM_TAG_CAPACITY + 1 (overflow row last), line-aligned in tags_mem */
    void *tags_mem;
    uint32_t ntags;    /* entries in use: written under site_lock, read atomically */
    uint32_t tag_ok;   /* atomic: the last tag found well formed */
    poolsim__prim_lock site_lock;
    uint32_t *site_index; /* hash: 2 * POOLSIM_SITE_CAPACITY slots of site numbers */
    psim_site *site_chunks[POOLSIM_SITE_CAPACITY / PSIM_SITE_CHUNK]; /* line-aligned in site_mem[] */
    void *site_mem[POOLSIM_SITE_CAPACITY / PSIM_SITE_CHUNK];
    uint32_t nsites; /* atomic; site 0 is "unknown" */

    psim_fault fault;
    psim_special special;
    poolsim__prim_lock lal_lock; /* guards lals */
    struct psim_lal **lals;      /* live lookaside lists, POOLSIM_LOOKASIDE_CAPACITY slots */
    psim_shard shards[POOLSIM_SHARDS];
} psim;

/* The default instance, NULL when not initialised. */
extern psim *poolsim__g;

/* A block looked up by address, with a snapshot of its record. */
typedef struct psim_where {
    psim_page *page;
    uint32_t slot;   /* slab slot, or 0 for big */
    uintptr_t user;  /* the caller's pointer of that slot */
    uintptr_t start; /* first byte of the slot / run (guard region included) */
    uintptr_t end;   /* one past the slot / run */
    psim_rec *rec;   /* valid while the shard lock is held */
} psim_where;

/* tracker.c */
bool poolsim__tracker_init(psim *ps);
void poolsim__tracker_fini(psim *ps);
void *poolsim__meta_alloc(psim *ps, size_t n);
void poolsim__meta_free(psim *ps, void *p, size_t n);
psim_page *poolsim__page_of(const psim *ps, uintptr_t addr);
/* Finds the slot or run containing addr. Caller holds the page's shard lock.
 * Returns false for addresses in no slot. */
bool poolsim__locate(psim_page *pg, uintptr_t addr, psim_where *w);
/* Allocates a slot or run for n bytes; returns the caller's pointer with its
 * record (state FREE, to be filled) and shard locked, or NULL (unlocked). */
void *poolsim__block_alloc(psim *ps, size_t n, unsigned pool, bool cache_aligned, bool whole_pages,
                           psim_where *w);
#define PSIM_GRANT 0x10000u /* bytes of a pool limit a shard takes at a time */
/* True when n more bytes of pool fit the pool's limit (or there is none), taking a larger grant for
 * the shard when its own is used up. Called with the shard's lock held, which it may release and take
 * again (to take back the other shards' spare grants). */
bool poolsim__limit_fits(psim *ps, unsigned shard, unsigned pool, uint64_t n);
/* Gives back the spare part of the shard's grant beyond `keep` bytes when more than `over`. Shard locked. */
void poolsim__limit_trim(psim *ps, psim_shard *sh, unsigned pool, uint64_t over, uint64_t keep);
/* Gives a located block's memory back. Caller holds the shard lock. */
void poolsim__block_release(psim *ps, psim_where *w);
unsigned poolsim__shard_of_thread(uint32_t thread);
/* A chunk of npages pages mapped with protection `prot` (POOLSIM__PROT_*) and
 * entered in the page map, owned by shard; its descriptors say `pool`. NULL
 * when the platform has no memory. */
psim_chunk *poolsim__chunk_new(psim *ps, unsigned shard, unsigned pool, uint32_t npages, unsigned prot);
static inline psim_shard *poolsim__shard(psim *ps, const psim_page *pg) { return &ps->shards[pg->shard]; }
/* §2.6: 1-4 characters 0x20..0x7E in memory order, then zero bytes; at least one letter or digit. */
static inline bool poolsim__tag_well_formed(uint32_t tag)
{
    bool alnum = false, ended = false;
    for (unsigned i = 0; i < 4; i++) {
        unsigned c = (tag >> (8 * i)) & 0xFFu;
        if (c == 0) {
            ended = true;
            continue;
        }
        if (ended || c < 0x20 || c > 0x7E)
            return false;
        alnum |= (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    }
    return alnum;
}

/* Iterates blocks whose state bit (1 << state) is in `states`. Each true
 * return leaves the block's shard locked; release it with poolsim__unlock
 * before the next call. Start with a zeroed iterator. */
#define PSIM_ST(s) (1u << (s))
typedef struct psim_iter {
    psim_chunk *chunk;
    uint32_t page, slot;
    bool done;
} psim_iter;
bool poolsim__iter_next(psim *ps, psim_iter *it, unsigned states, psim_where *w);
void poolsim__unlock(psim *ps, const psim_page *pg);

/* guard.c — canaries around blocks */
void poolsim__guard_arm(const psim *ps, const psim_where *w, const psim_rec *r);
#define PSIM_POISON 0xDDu /* fills the caller bytes of a quarantined block */
/* True when the guards (and a quarantined block's poison) are intact: the
 * fast check. `edge` non-zero checks only the first and last `edge` bytes of
 * the poison (the eviction check, quarantine_check); 0 checks all of it.
 * Caller holds the shard lock. */
bool poolsim__block_intact(const psim *ps, const psim_where *w, const psim_rec *r, uint64_t edge);
/* Describes the damage byte by byte: up to two regions, write-after-free
 * first, then the underrun side, then the overrun side. */
void poolsim__damage_describe(const psim *ps, const psim_where *w, const psim_rec *r, poolsim_damage d[2]);
void poolsim__poison(const psim_where *w, const psim_rec *r);
uint8_t poolsim__guard_byte(const psim *ps, uintptr_t addr);
/* pool.c: builds the bug check for a damaged block (shard locked), or
 * returns false when it is intact (`edge`: as poolsim__block_intact). */
bool poolsim__damage_violation(psim *ps, const psim_where *w, uint64_t edge, poolsim_bugcheck *bc);
/* pool.c: releases the oldest quarantined blocks of shard `shard` while its
 * quarantine is over the limits, reporting damaged ones as found by the call
 * at file:line. Call with no lock held. */
void poolsim__quarantine_trim(psim *ps, unsigned shard, uint64_t max_bytes, uint64_t max_blocks,
                              const char *file, int line, poolsim_routine rt);

/* special.c */
void poolsim__special_init(psim *ps);
void poolsim__special_fini(psim *ps);
/* True when this allocation goes to special pool: POOL_FLAG_SPECIAL_POOL, a
 * special-pool priority, the tag pattern, the size class or the sampling.
 * The inline test keeps the cost to one load while nothing is configured. */
bool poolsim__special_select(psim *ps, const poolsim_alloc_req *req, bool flags_routine, uint32_t tag,
                             size_t n);
static inline bool poolsim__special_wanted(psim *ps, const poolsim_alloc_req *req, bool flags_routine,
                                           uint32_t tag, size_t n)
{
    uint32_t on = psim_atomic_load32(&ps->special.on);
    if (PSIM_LIKELY(!(on & PSIM_SP_CHOOSE)) &&
        (!on ||
         (flags_routine ? !(req->type & PSIM_PF_SPECIAL_POOL) && !req->ext_count : !(req->priority & 8u))))
        return false;
    return poolsim__special_select(ps, req, flags_routine, tag, n);
}
/* Verify Start for this request: the option, or a ...SpecialPoolUnderrun priority. */
bool poolsim__special_underrun(const psim *ps, const poolsim_alloc_req *req, bool flags_routine);
/* Like poolsim__block_alloc, from a free special-pool slot; NULL (unlocked,
 * counted as a fallback) when there is none. */
void *poolsim__special_alloc(psim *ps, size_t n, unsigned pool, bool cache_aligned, bool underrun,
                             psim_where *w);
/* Closes a freed block's page and queues its slot last. Shard 0 locked. */
void poolsim__special_release(psim *ps, psim_where *w);
static inline bool poolsim__is_special(const psim_page *pg)
{
    return pg->kind == PSIM_PG_SPECIAL || pg->kind == PSIM_PG_SPECIAL_GUARD;
}
/* Builds the bug check of a free of `a`, an address in special pool that is
 * not a live block's pointer (C1 0x20, 0x21, 0x22). Shard 0 locked. */
void poolsim__special_bad_free(psim *ps, psim_page *pg, uintptr_t a, poolsim_bugcheck *bc);
/* forceirql.c: the fault trap is in place (again); a page of special pool
 * opens (live) or closes, in step with pages opened for single steps. */
bool poolsim__trap_arm(void);
bool poolsim__trap_page(psim_page *pg, bool open);

/* tags.c */
bool poolsim__tags_init(psim *ps);
void poolsim__tags_fini(psim *ps);
psim_tagent *poolsim__tag_get(psim *ps, uint32_t tag); /* never NULL */
const psim_tagent *poolsim__tag_find(const psim *ps, uint32_t tag);
/* True when the tag's display text matches the pattern (? one character,
 * * any run; spaces are characters, as in "ba  "); NULL or "" match every tag. */
bool poolsim__tag_match(uint32_t tag, const char *pattern);
/* The same over a space-separated list of patterns (Verifier's /faults tags). */
bool poolsim__tag_match_list(uint32_t tag, const char *patterns);
uint32_t poolsim__site_get(psim *ps, const char *file, int line, poolsim_routine rt, uint32_t tag);
/* The same, remembered in the shard's one-entry cache for allocations or frees (the shard's lock is held). */
uint32_t poolsim__site_lookup(psim *ps, psim_shard *sh, const char *file, int line, poolsim_routine rt,
                              uint32_t tag);
/* The same through that cache: the call site repeats its last call's (a loop) in most calls. A site the
 * full table has no room for is cached as 0, for good (the zeroed cache is right too: NULL file, site 0). */
static inline uint32_t poolsim__site_cached(psim *ps, psim_shard *sh, const char *file, int line,
                                            poolsim_routine rt, uint32_t tag)
{
    unsigned k = rt >= POOLSIM_RT_EX_FREE_POOL; /* the pool allocators, then the frees and the others */
    if (!ps->opt.track_sites)
        return 0;
    if (PSIM_LIKELY(sh->site_cache[k].file == file && sh->site_cache[k].line == line &&
                    sh->site_cache[k].tag == tag && sh->site_cache[k].rt == rt))
        return sh->site_cache[k].idx;
    return poolsim__site_lookup(ps, sh, file, line, rt, tag);
}
const psim_site *poolsim__site_at(const psim *ps, uint32_t idx);
/* A site's counters summed over the shards. */
void poolsim__site_sum(const psim_site *s, psim_site_counts *sum);
psim_site *poolsim__site_mut(psim *ps, uint32_t idx);
/* Count an allocation or a free in shard `shard`, whose lock the caller holds. */
void poolsim__count_alloc(psim *ps, unsigned shard, uint32_t tag, unsigned pool, uint32_t site, uint64_t n);
void poolsim__count_free(psim *ps, unsigned shard, uint32_t tag, unsigned pool, uint32_t site, uint64_t n);
void poolsim__count_failed(psim *ps, uint32_t tag, unsigned pool);
/* A tag's counters in one pool, summed over the shards. */
void poolsim__tag_counters(const psim_tagent *e, unsigned pool, poolsim_pool_counters *out);
/* Instance totals summed over the shards. */
void poolsim__totals(const psim *ps, uint64_t *allocs, uint64_t *frees, uint64_t *live);
/* Caller bytes of a pool's live blocks, summed over the shards. */
uint64_t poolsim__pool_bytes(const psim *ps, unsigned pool);
void poolsim__atomic_max(uint64_t *p, uint64_t v);

/* fault.c */
void poolsim__fault_init(psim *ps);
void poolsim__fault_fini(psim *ps);
/* True when this allocation must fail (and logs it); the inline test keeps
 * the cost of an idle injector to one load. */
bool poolsim__fault_decide(psim *ps, uint32_t tag, uint64_t n, uint32_t pool_type, const char *file, int line,
                           poolsim_routine rt);
static inline bool poolsim__fault_fires(psim *ps, uint32_t tag, uint64_t n, uint32_t pool_type,
                                        const char *file, int line, poolsim_routine rt)
{
    return PSIM_UNLIKELY(psim_atomic_load32(&ps->fault.flags) != 0) &&
           poolsim__fault_decide(ps, tag, n, pool_type, file, line, rt);
}
/* Sweeps: start recording distinct allocation sites; copy them out. */
void poolsim__fault_trace(psim *ps, bool on);
size_t poolsim__fault_traced(psim *ps, poolsim_site *out, size_t max);

/* pool.c: a checkpoint of the sequence numbers: every number handed out so far is at most the result,
 * every number handed out after it returns (in the calling thread, or in one that synchronises with it)
 * is above. */
uint64_t poolsim__seq_now(psim *ps);
/* pool.c: the line every routine prints when called with no instance. */
void poolsim__not_initialised(const char *routine, const char *file, int line);
/* pool.c, for the lookaside lists */
bool poolsim__pool_type_valid(uint64_t pool_type);
/* True when a is the start of a live block; otherwise builds the bug check a
 * pool free of a would raise. */
bool poolsim__check_live(psim *ps, uintptr_t a, poolsim_bugcheck *bc);
/* Marks the live block starting at `block` as holding a lookaside list. */
void poolsim__mark_list_holder(psim *ps, uintptr_t block);
/* lookaside.c */
poolsim_lookaside *poolsim__lookaside_inside(psim *ps, uintptr_t from, uintptr_t to);
void poolsim__lookaside_fini(psim *ps);

/* ---- Bug checks (bugcheck.c) -------------------------------------------- */

/* Fills bc with the code, parameters, name, summary and Arg meanings. */
void poolsim__bc_make(poolsim_bugcheck *bc, unsigned long code, uintptr_t p1, uintptr_t p2, uintptr_t p3,
                      uintptr_t p4);
/* Replaces the code and parameters of bc, keeping its block. */
void poolsim__bc_make_keep_block(poolsim_bugcheck *bc, unsigned long code, uintptr_t p1, uintptr_t p2,
                                 uintptr_t p3, uintptr_t p4);
/* Sets the call site of bc. */
void poolsim__bc_site(poolsim_bugcheck *bc, const char *file, int line, poolsim_routine rt);
/* Copies a record into bc->block. */
void poolsim__bc_block(const psim *ps, poolsim_bugcheck *bc, const psim_where *w, const psim_rec *r);
void poolsim__block_info(const psim *ps, const psim_where *w, const psim_rec *r, poolsim_block_info *out);
/* Delivers bc to the handler. Must be called with no lock held. Returns when
 * the handler returns. */
void poolsim__bc_deliver(psim *ps, poolsim_bugcheck *bc);
/* Takes the handler settings of a new instance. */
void poolsim__bc_configure(const poolsim_options *o);
/* Prints, for poolsim_shutdown, the violations whose reports max_repeats and
 * max_reports kept the default handler from printing, with their counts. */
void poolsim__bc_summary(void);

/* ---- Reports (report.c) ------------------------------------------------- */

void poolsim__out(const char *text);
void poolsim__outf(const char *fmt, ...);
void poolsim__report_leaks(psim *ps, uint64_t blocks, uint64_t bytes);
const char *poolsim__pool_type_name(uint32_t pool_type);
/* The last two components of a path ("examples/eapwt.c"); "(unknown)" for NULL. */
const char *poolsim__short_path(const char *file);

#endif /* POOLSIM_CORE_H */
