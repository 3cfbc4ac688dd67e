/* SPDX-License-Identifier: MIT */
/*
 * floor.c — the floor model (floor.h): the work poolsim's +sites mode does
 * for ExAllocatePoolWithTag and ExFreePoolWithTag of the blocks pair64 and
 * live10k ask for, written straight: one function each, every helper inline,
 * on poolsim's own data structures.
 *
 * The same rules and the same data as poolsim: the pool type decoded and the
 * request checked (type, tag, size, IRQL, and the options that would send it
 * elsewhere: fault injection, special pool, a pool limit); a slot taken under
 * its shard's lock from a slab of its size class; the 40-byte out-of-band
 * record with sequence number (above the allocation's at a free, batches per
 * thread), site and thread; a small block's header imitating POOL_HEADER with
 * its canary word, a big block's 256 canary bytes at the end of its guard
 * page, and the canary bytes from the block's end to its slot's end; per-tag,
 * per-site and per-shard counters with their peaks and the instance's peaks
 * summed over the shards. A free maps the address through a three-level radix
 * map to its slab, takes the lock, finds the slot, checks state, IRQL, tag and
 * every canary, writes the free into the record, counts it and queues the slot
 * at the tail of its slab's free list.
 *
 * What it leaves out is what the +sites mode does not reach on these two
 * workloads: reports (a violation is a NULL or a -1), zeroing and filling,
 * quarantine, special pool, cache-aligned blocks, blocks above FLOOR_MAX,
 * Pool2 flags, the lookaside and Mm routines. Its layout is its own: a slab
 * is at least eight slots, one or more pages, and never gives a page back
 * (poolsim returns an empty one to its runs); a small block still never
 * crosses a page, and a big one (4065..4096 bytes) starts a page after a
 * guard page, as in poolsim. It serves one thread at a time: the shard locks
 * are there for their cost; its tables and map are not guarded.
 */
#include "floor.h"

#include <stdlib.h>
#include <string.h>

#include "../src/core.h" /* poolsim's record, constants and tag rule */

#define PAGE PSIM_PAGE
#define GRAN PSIM_GRAN
#define SHARDS POOLSIM_SHARDS
#define CLASSES (PAGE / GRAN + 4) /* small slots by 16 bytes, then big ones by pages (2 or 3) */
#define RADIX_BITS 12u
#define RADIX_FAN (1u << RADIX_BITS)
#define CHUNK (256u * PAGE)
#define SEQ_BATCH 64u
#define PT_FLAGS (PSIM_PT_QUOTA_FAIL | PSIM_PT_RAISE | PSIM_PT_COLD | PSIM_PT_ZERO) /* not the type */
#define LIKELY PSIM_LIKELY
#define UNLIKELY PSIM_UNLIKELY

typedef psim_rec rec;

typedef struct slab { /* groups of `group` bytes (a page, or a big block's pages), `per_group` slots each */
    uint8_t shard, pool;
    uint16_t cls, slot_size, user_off, per_group, nslots, free_head, free_tail;
    uint32_t group, bytes;
    uintptr_t base;
    rec *recs;
    struct slab *next;
} slab;

typedef struct counters {
    uint64_t allocs, frees, bytes, peak;
} counters;

typedef struct tagent {
    uint32_t tag;
    counters c[SHARDS][2];
    uint64_t peak[2];
} tagent;

typedef struct site {
    const char *file;
    int line;
    uint32_t tag;
    uint64_t allocs[SHARDS][2], frees[SHARDS][2], bytes[SHARDS][2];
} site;

typedef struct shard {
    int lock;
    slab *partial[2][CLASSES];
    tagent *tag_cache;
    site *site_cache[2]; /* the last allocating and the last freeing site */
    uint64_t allocs, frees, live, live_peak, bytes[2], bytes_peak[2];
    char *chunk;
    size_t carved;
} shard;

typedef struct inst {
    uint64_t secret, epoch, seq, seq_floor;
    uint32_t tag_ok, faults, special;
    uint64_t limit[2], peak_bytes[2], peak_live;
    void **radix[RADIX_FAN];
    shard sh[SHARDS];
    tagent tags[8];
    site sites[8];
    unsigned ntags, nsites;
    void *mem[16384]; /* everything malloc'd, for floor_fini */
    unsigned nmem;
} inst;

typedef struct thread_state {
    uint8_t irql;
    uint32_t thread; /* 0 until the first call */
    uint64_t seq_next, seq_end, epoch;
} thread_state;

static inst *g;
static uint64_t g_epoch;
static uint32_t g_threads;
static _Thread_local thread_state tls;

/* Remembers p for floor_fini; NULL (p freed) when there is no room to. */
static void *keep(void *p)
{
    if (p && g->nmem == sizeof g->mem / sizeof g->mem[0]) {
        free(p);
        return NULL;
    }
    if (p)
        g->mem[g->nmem++] = p;
    return p;
}

int floor_init(void)
{
    if (g || !(g = calloc(1, sizeof *g)))
        return 0;
    g->secret = 0x5DEECE66DA3B9F11ull;
    g->epoch = ++g_epoch; /* a thread's batch of sequence numbers from an earlier instance is dropped */
    return 1;
}

size_t floor_fini(void)
{
    size_t live = 0;
    if (!g)
        return 0;
    for (unsigned i = 0; i < SHARDS; i++)
        live += g->sh[i].live;
    for (unsigned i = 0; i < g->nmem; i++)
        free(g->mem[i]);
    free(g);
    g = NULL;
    return live;
}

static inline void lock(int *l)
{
    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(l, __ATOMIC_RELAXED))
            ;
}
static inline void unlock(int *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }
static inline uint64_t load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void bump(uint64_t *p, uint64_t by) { __atomic_store_n(p, load(p) + by, __ATOMIC_RELAXED); }
static inline void raise_to(uint64_t *p, uint64_t v)
{
    uint64_t old = load(p);
    while (old < v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

static inline uint64_t guard_word(uintptr_t aligned8)
{
    return g->secret ^ ((aligned8 >> 3) * 0x9E3779B97F4A7C15ull);
}
static inline uint8_t guard_byte(uintptr_t a)
{
    return (uint8_t)(guard_word(a & ~(uintptr_t)7) >> (8 * (a & 7)));
}

static inline void guard_fill(uintptr_t from, uintptr_t to)
{
    for (; from < to && (from & 7); from++)
        *(uint8_t *)from = guard_byte(from);
    for (; from + 8 <= to; from += 8) {
        uint64_t w = guard_word(from);
        memcpy((void *)from, &w, 8);
    }
    for (; from < to; from++)
        *(uint8_t *)from = guard_byte(from);
}

static inline bool guard_intact(uintptr_t from, uintptr_t to)
{
    for (; from < to && (from & 7); from++)
        if (*(const uint8_t *)from != guard_byte(from))
            return false;
    for (; from + 8 <= to; from += 8) {
        uint64_t w;
        memcpy(&w, (const void *)from, 8);
        if (w != guard_word(from))
            return false;
    }
    for (; from < to; from++)
        if (*(const uint8_t *)from != guard_byte(from))
            return false;
    return true;
}

/* A small block's POOL_HEADER (Ulong1 and tag) and canary word (poolsim's header_expected); `in_page` is
 * the slot's index in its page. */
static inline void header(const slab *sb, uint32_t in_page, const rec *r, uintptr_t user, uint64_t out[2])
{
    uint32_t units = (uint32_t)((GRAN + ((r->size + GRAN - 1) & ~(uint64_t)(GRAN - 1))) / GRAN);
    uint32_t prev = in_page ? sb->slot_size / GRAN : 0, type = (uint32_t)(r->pool_type & 0x7F) + 1;
    out[0] = (uint64_t)((prev & 0xFF) | (units & 0xFF) << 16 | (type & 0xFF) << 24) | (uint64_t)r->tag << 32;
    out[1] = guard_word(user - 8);
}

static inline uint64_t seq_next(uint64_t above)
{
    uint64_t s = tls.seq_next;
    if (UNLIKELY(s > tls.seq_end || s <= above || tls.epoch != g->epoch ||
                 s <= __atomic_load_n(&g->seq_floor, __ATOMIC_ACQUIRE))) {
        do {
            tls.seq_end = __atomic_add_fetch(&g->seq, SEQ_BATCH, __ATOMIC_RELAXED);
            s = tls.seq_end - SEQ_BATCH + 1;
        } while (s <= __atomic_load_n(&g->seq_floor, __ATOMIC_ACQUIRE));
        tls.epoch = g->epoch;
    }
    tls.seq_next = s + 1;
    return s;
}

static inline shard *my_shard(void)
{
    if (UNLIKELY(!tls.thread))
        tls.thread = __atomic_add_fetch(&g_threads, 1, __ATOMIC_RELAXED);
    return &g->sh[((uint64_t)(uint32_t)(tls.thread * 0x9E3779B1u) * SHARDS) >> 32];
}

/* ---- Out of line: what a run meets once --------------------------------- */

static __attribute__((noinline)) tagent *tag_get(shard *sh, uint32_t tag)
{
    for (unsigned i = 0; i < g->ntags; i++)
        if (g->tags[i].tag == tag)
            return sh->tag_cache = &g->tags[i];
    if (g->ntags == sizeof g->tags / sizeof g->tags[0])
        return NULL;
    g->tags[g->ntags].tag = tag;
    return sh->tag_cache = &g->tags[g->ntags++];
}

static __attribute__((noinline)) site *site_get(shard *sh, unsigned k, const char *file, int line,
                                                uint32_t tag)
{
    for (unsigned i = 0; i < g->nsites; i++)
        if (g->sites[i].file == file && g->sites[i].line == line && g->sites[i].tag == tag)
            return sh->site_cache[k] = &g->sites[i];
    if (g->nsites == sizeof g->sites / sizeof g->sites[0])
        return NULL; /* counted under its tag only, as poolsim does beyond its table */
    site *s = &g->sites[g->nsites++];
    s->file = file;
    s->line = line;
    s->tag = tag;
    return sh->site_cache[k] = s;
}

static inline site *site_of(shard *sh, unsigned k, const char *file, int line, uint32_t tag)
{
    site *s = sh->site_cache[k];
    if (LIKELY(s && s->file == file && s->line == line && s->tag == tag))
        return s;
    return site_get(sh, k, file, line, tag);
}

static bool radix_put(uintptr_t addr, slab *sb)
{
    uint64_t pn = ((uint64_t)addr & 0xFFFFFFFFFFFFull) >> 12;
    void ***l2 = (void ***)&g->radix[pn >> (2 * RADIX_BITS)];
    if (!*l2 && !(*l2 = keep(calloc(RADIX_FAN, sizeof(void *)))))
        return false;
    void ***leaf = (void ***)&(*l2)[(pn >> RADIX_BITS) & (RADIX_FAN - 1)];
    if (!*leaf && !(*leaf = keep(calloc(RADIX_FAN, sizeof(void *)))))
        return false;
    __atomic_store_n(&(*leaf)[pn & (RADIX_FAN - 1)], sb, __ATOMIC_RELEASE);
    return true;
}

/* A slab of class cls: groups of `group` bytes holding `per_group` slots of `slot` bytes, eight slots at
 * least. */
static __attribute__((noinline)) slab *slab_new(shard *sh, unsigned pool, unsigned cls, uint32_t slot,
                                                uint32_t user_off, uint32_t group)
{
    uint32_t per_group = group / slot, groups = (8 + per_group - 1) / per_group, bytes = groups * group;
    if (!sh->chunk || sh->carved + bytes > CHUNK) {
        char *mem = keep(malloc(CHUNK + PAGE));
        if (!mem)
            return NULL;
        sh->chunk = (char *)(((uintptr_t)mem + PAGE - 1) & ~(uintptr_t)(PAGE - 1));
        sh->carved = 0;
    }
    slab *sb = keep(calloc(1, sizeof *sb));
    uint32_t n = groups * per_group;
    rec *recs = keep(calloc(n, sizeof *recs));
    if (!sb || !recs)
        return NULL;
    sb->base = (uintptr_t)sh->chunk + sh->carved;
    sh->carved += bytes;
    sb->shard = (uint8_t)(sh - g->sh);
    sb->pool = (uint8_t)pool;
    sb->cls = (uint16_t)cls;
    sb->slot_size = (uint16_t)slot;
    sb->user_off = (uint16_t)user_off;
    sb->per_group = (uint16_t)per_group;
    sb->nslots = (uint16_t)n;
    sb->group = group;
    sb->bytes = bytes;
    sb->recs = recs;
    for (uint32_t i = 0; i < n; i++)
        recs[i].next_free = i + 1 < n ? i + 1 : PSIM_NO_SLOT;
    sb->free_tail = (uint16_t)(n - 1);
    for (uint32_t off = 0; off < bytes; off += PAGE)
        if (!radix_put(sb->base + off, sb))
            return NULL;
    return sb;
}

/* The instance's peaks, summed over the shards when one shard reaches a new high of its own (poolsim's
 * poolsim__count_alloc). */
static __attribute__((noinline)) void tag_peak(tagent *e, unsigned pool)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < SHARDS; i++)
        total += load(&e->c[i][pool].bytes);
    raise_to(&e->peak[pool], total);
}

static __attribute__((noinline)) void pool_peak(unsigned pool)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < SHARDS; i++)
        total += load(&g->sh[i].bytes[pool]);
    raise_to(&g->peak_bytes[pool], total);
}

static __attribute__((noinline)) void live_peak(void)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < SHARDS; i++)
        total += load(&g->sh[i].live);
    raise_to(&g->peak_live, total);
}

/* ---- The pair ------------------------------------------------------------- */

void *floor_alloc(uint64_t type, size_t n, uint32_t tag, const char *file, int line)
{
    inst *ps = g;
    uint64_t base = type & ~(uint64_t)PT_FLAGS, rest = base & ~(uint64_t)PSIM_PT_NX;
    unsigned pool = (unsigned)(rest & PSIM_PT_PAGED);
    uint32_t tagm = tag & ~PSIM_PROTECTED_POOL;
    if (UNLIKELY(!ps || (rest & ~(uint64_t)(PSIM_PT_PAGED | PSIM_PT_SESSION)) || tagm == 0 ||
                 tagm == PSIM_TAG_BIG || n == 0 || n > FLOOR_MAX || tls.irql > (pool ? 1 : 2) || ps->faults ||
                 ps->special || ps->limit[pool]))
        return NULL;
    if (UNLIKELY(tagm != __atomic_load_n(&ps->tag_ok, __ATOMIC_RELAXED))) {
        if (!poolsim__tag_well_formed(tagm)) /* poolsim's rule (core.h) */
            return NULL;
        __atomic_store_n(&ps->tag_ok, tagm, __ATOMIC_RELAXED);
    }
    shard *sh = my_shard();
    unsigned cls;
    uint32_t slot, user_off, group;
    if (LIKELY(n <= PSIM_SMALL_MAX)) { /* header, block, at least one footer byte: poolsim's footer_bytes 1 */
        slot = (uint32_t)((GRAN + n + 1 + GRAN - 1) & ~(uintptr_t)(GRAN - 1));
        cls = slot / GRAN;
        user_off = GRAN;
        group = PAGE;
    } else { /* a guard page, then the block's pages with GRAN bytes of slack at least */
        uint32_t pages = 1 + (uint32_t)((n + GRAN + PAGE - 1) / PAGE);
        slot = group = pages * PAGE;
        cls = PAGE / GRAN + pages;
        user_off = PAGE;
    }
    lock(&sh->lock);
    tagent *e = sh->tag_cache;
    if (UNLIKELY(!e || e->tag != tagm) && !(e = tag_get(sh, tagm))) {
        unlock(&sh->lock);
        return NULL;
    }
    slab **head = &sh->partial[pool][cls];
    slab *sb = *head;
    if (UNLIKELY(!sb) && !(*head = sb = slab_new(sh, pool, cls, slot, user_off, group))) {
        unlock(&sh->lock);
        return NULL;
    }
    uint16_t s = sb->free_head;
    rec *r = &sb->recs[s];
    sb->free_head = (uint16_t)r->next_free;
    if (UNLIKELY(sb->free_head == PSIM_NO_SLOT)) {
        sb->free_tail = PSIM_NO_SLOT;
        *head = sb->next;
    }
    uint32_t in_group = s % sb->per_group;
    uintptr_t start =
        sb->base + (uintptr_t)(s / sb->per_group) * sb->group + (uintptr_t)in_group * sb->slot_size;
    uintptr_t user = start + sb->user_off;
    site *st = site_of(sh, 0, file, line, tag);
    r->size = n;
    r->pool_type = base & 0x3FF;
    r->alloc_rt = POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG;
    r->alloc_seq = seq_next(0);
    r->free_seq = 0;
    r->state = PSIM_LIVE;
    r->flags = 0;
    r->free_rt = 0;
    r->alloc_site = st ? (uint32_t)(st - ps->sites) + 1 : 0;
    r->free_site = 0;
    r->tag = tag;
    r->thread = tls.thread;
    if (LIKELY(sb->user_off == GRAN)) {
        uint64_t h[2];
        header(sb, in_group, r, user, h);
        memcpy((void *)(user - GRAN), h, GRAN);
    } else {
        guard_fill(user - PSIM_BIG_GUARD, user);
    }
    guard_fill(user + n, start + sb->slot_size);
    unsigned i = (unsigned)(sh - ps->sh);
    counters *c = &e->c[i][pool];
    bump(&c->allocs, 1);
    bump(&c->bytes, n);
    if (c->bytes > c->peak) {
        c->peak = c->bytes;
        tag_peak(e, pool);
    }
    if (st) {
        bump(&st->allocs[i][pool], 1);
        bump(&st->bytes[i][pool], n);
    }
    bump(&sh->allocs, 1);
    bump(&sh->bytes[pool], n);
    if (sh->bytes[pool] > sh->bytes_peak[pool]) {
        sh->bytes_peak[pool] = sh->bytes[pool];
        pool_peak(pool);
    }
    bump(&sh->live, 1);
    if (sh->live > sh->live_peak) {
        sh->live_peak = sh->live;
        live_peak();
    }
    unlock(&sh->lock);
    return (void *)user;
}

int floor_free(void *p, uint32_t tag, const char *file, int line)
{
    inst *ps = g;
    uintptr_t a = (uintptr_t)p;
    if (UNLIKELY(!ps || !a))
        return -1;
    uint64_t pn = ((uint64_t)a & 0xFFFFFFFFFFFFull) >> 12;
    void **l2 = __atomic_load_n(&ps->radix[pn >> (2 * RADIX_BITS)], __ATOMIC_ACQUIRE);
    void **leaf = l2 ? __atomic_load_n(&l2[(pn >> RADIX_BITS) & (RADIX_FAN - 1)], __ATOMIC_ACQUIRE) : NULL;
    slab *sb = leaf ? __atomic_load_n(&leaf[pn & (RADIX_FAN - 1)], __ATOMIC_ACQUIRE) : NULL;
    if (UNLIKELY(!sb))
        return -1;
    shard *sh = &ps->sh[sb->shard];
    lock(&sh->lock);
    uintptr_t off = a - sb->base, gi = off / sb->group, in = off - gi * sb->group, si = in / sb->slot_size;
    uintptr_t start = sb->base + gi * sb->group + si * sb->slot_size, user = start + sb->user_off;
    if (UNLIKELY(off >= sb->bytes || si >= sb->per_group || a != user)) { /* bits above 47 make off large */
        unlock(&sh->lock);
        return -1;
    }
    uint32_t s = (uint32_t)(gi * sb->per_group + si);
    rec *r = &sb->recs[s];
    unsigned pool = sb->pool;
    uint32_t have = r->tag & ~PSIM_PROTECTED_POOL, given = tag & ~PSIM_PROTECTED_POOL;
    if (UNLIKELY(r->state != PSIM_LIVE || r->flags || tls.irql > (pool ? 1 : 2) ||
                 (given != have && (given || (r->tag & PSIM_PROTECTED_POOL))))) {
        unlock(&sh->lock);
        return -1;
    }
    bool intact;
    if (LIKELY(sb->user_off == GRAN)) {
        uint64_t h[2], found[2];
        header(sb, (uint32_t)si, r, user, h);
        memcpy(found, (const void *)(user - GRAN), GRAN);
        intact = found[0] == h[0] && found[1] == h[1];
    } else {
        intact = guard_intact(user - PSIM_BIG_GUARD, user);
    }
    if (UNLIKELY(!intact || !guard_intact(user + r->size, start + sb->slot_size))) {
        unlock(&sh->lock);
        return -1;
    }
    uint64_t n = r->size;
    uint32_t alloc_site = r->alloc_site;
    site *st = site_of(sh, 1, file, line, r->tag);
    r->free_seq = seq_next(r->alloc_seq);
    r->free_site = st ? (uint32_t)(st - ps->sites) + 1 : 0;
    r->free_rt = POOLSIM_RT_EX_FREE_POOL_WITH_TAG;
    r->state = PSIM_RELEASED;
    unsigned i = (unsigned)(sh - ps->sh);
    tagent *e = sh->tag_cache;
    if (UNLIKELY(!e || e->tag != have))
        e = tag_get(sh, have); /* it has an entry: its allocation made one */
    bump(&e->c[i][pool].frees, 1);
    bump(&e->c[i][pool].bytes, 0 - n);
    if (alloc_site) {
        bump(&ps->sites[alloc_site - 1].frees[i][pool], 1);
        bump(&ps->sites[alloc_site - 1].bytes[i][pool], 0 - n);
    }
    bump(&sh->frees, 1);
    bump(&sh->live, (uint64_t)0 - 1);
    bump(&sh->bytes[pool], 0 - n);
    r->next_free = PSIM_NO_SLOT;
    if (sb->free_tail == PSIM_NO_SLOT) { /* it was full: back on its class's list */
        sb->free_head = (uint16_t)s;
        sb->next = sh->partial[pool][sb->cls];
        sh->partial[pool][sb->cls] = sb;
    } else {
        sb->recs[sb->free_tail].next_free = s;
    }
    sb->free_tail = (uint16_t)s;
    unlock(&sh->lock);
    return 0;
}
