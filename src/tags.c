/* SPDX-License-Identifier: MIT */
/*
 * tags.c — per-tag and per-call-site counters, like WinDbg's !poolused.
 *
 * Both tables are open-addressed and never shrink, so a lookup needs no lock:
 * an entry's key is written first and its `used` word published last.
 * Inserting takes site_lock (tags and sites are few and seen again and
 * again). Counters are atomics. Tags are keyed without PROTECTED_POOL.
 * When the tag table is full, further tags are counted in one overflow row
 * (tag 0xFFFFFFFF, shown as "....", queried with that value); when the site table is full, blocks keep
 * site 0 ("unknown").
 */
#include "core.h"

static uint32_t hash32(uint64_t v)
{
    v ^= v >> 33;
    v *= 0xFF51AFD7ED558CCDull;
    v ^= v >> 33;
    return (uint32_t)v;
}

void poolsim__atomic_max(uint64_t *p, uint64_t v)
{
    uint64_t cur = psim_atomic_load(p);
    while (cur < v && !psim_atomic_cas(p, &cur, v)) {
    }
}

/* The tag table and the site chunks start on a cache line, so each shard's row of counters has lines of
 * its own; the platform aligns to 16, so they ask for a line more and keep the platform's pointer. */
#define PSIM_TAGS_BYTES ((POOLSIM_TAG_CAPACITY + 1) * sizeof(psim_tagent) + 64)
#define PSIM_SITE_CHUNK_BYTES (PSIM_SITE_CHUNK * sizeof(psim_site) + 64)

static void *line_aligned(psim *ps, size_t bytes, void **mem)
{
    *mem = poolsim__meta_alloc(ps, bytes);
    return *mem ? (void *)(((uintptr_t)*mem + 63) & ~(uintptr_t)63) : NULL;
}

bool poolsim__tags_init(psim *ps)
{
    ps->tags = (psim_tagent *)line_aligned(ps, PSIM_TAGS_BYTES, &ps->tags_mem);
    ps->site_index = (uint32_t *)poolsim__meta_alloc(ps, 2 * POOLSIM_SITE_CAPACITY * sizeof(uint32_t));
    ps->site_chunks[0] = (psim_site *)line_aligned(ps, PSIM_SITE_CHUNK_BYTES, &ps->site_mem[0]);
    poolsim__prim_lock_init(&ps->site_lock);
    if (!ps->tags || !ps->site_index || !ps->site_chunks[0])
        return false;
    ps->tags[POOLSIM_TAG_CAPACITY].tag = PSIM_TAG_OVERFLOW;
    ps->tags[POOLSIM_TAG_CAPACITY].used = 1;
    ps->nsites = 1; /* site 0: unknown */
    return true;
}

void poolsim__tags_fini(psim *ps)
{
    poolsim__meta_free(ps, ps->tags_mem, PSIM_TAGS_BYTES);
    poolsim__meta_free(ps, ps->site_index, 2 * POOLSIM_SITE_CAPACITY * sizeof(uint32_t));
    for (size_t i = 0; i < PSIM_COUNTOF(ps->site_mem); i++)
        poolsim__meta_free(ps, ps->site_mem[i], PSIM_SITE_CHUNK_BYTES);
    poolsim__prim_lock_destroy(&ps->site_lock);
}

/* ---- Tags ---------------------------------------------------------------- */

const psim_tagent *poolsim__tag_find(const psim *ps, uint32_t tag)
{
    if (tag == PSIM_TAG_OVERFLOW)
        return &ps->tags[POOLSIM_TAG_CAPACITY];
    tag &= ~PSIM_PROTECTED_POOL;
    for (uint32_t i = hash32(tag), n = 0; n < POOLSIM_TAG_CAPACITY; i++, n++) {
        const psim_tagent *e = &ps->tags[i & (POOLSIM_TAG_CAPACITY - 1)];
        if (!psim_atomic_load32(&e->used))
            return NULL;
        if (e->tag == tag)
            return e;
    }
    return NULL;
}

psim_tagent *poolsim__tag_get(psim *ps, uint32_t tag)
{
    /* Masked first: the tag 0xFFFFFFFF is PROTECTED_POOL | 0x7FFFFFFF, not the overflow row. */
    tag &= ~PSIM_PROTECTED_POOL;
    const psim_tagent *found = poolsim__tag_find(ps, tag);
    if (PSIM_LIKELY(found != NULL))
        return (psim_tagent *)(uintptr_t)found;
    psim_tagent *e = &ps->tags[POOLSIM_TAG_CAPACITY];
    poolsim__prim_lock_acquire(&ps->site_lock);
    for (uint32_t i = hash32(tag), n = 0; n < POOLSIM_TAG_CAPACITY; i++, n++) {
        psim_tagent *slot = &ps->tags[i & (POOLSIM_TAG_CAPACITY - 1)];
        if (slot->used && slot->tag == tag) {
            e = slot;
            break;
        }
        if (slot->used)
            continue;
        /* A quarter of the table stays empty so probes stay short. */
        if (ps->ntags < POOLSIM_TAG_CAPACITY / 4 * 3) {
            slot->tag = tag;
            psim_atomic_store32(&slot->used, 1);
            psim_atomic_store32(&ps->ntags, ps->ntags + 1); /* poolsim_get_stats reads it without the lock */
            e = slot;
        }
        break;
    }
    poolsim__prim_lock_release(&ps->site_lock);
    return e;
}

/* Glob of one pattern [p, end) over the tag's display text: ? one character,
 * * any run (iterative: no recursion in the core). */
static bool tag_glob(const char *text, const char *p, const char *end)
{
    const char *t = text, *star = NULL, *retry = NULL;
    while (*t) {
        if (p < end && *p == '*') {
            star = p++;
            retry = t;
        } else if (p < end && (*p == '?' || *p == *t)) {
            p++;
            t++;
        } else if (star) {
            p = star + 1;
            t = ++retry;
        } else {
            return false;
        }
    }
    while (p < end && *p == '*')
        p++;
    return p == end;
}

bool poolsim__tag_match(uint32_t tag, const char *pattern)
{
    char text[5];
    if (!pattern || !*pattern)
        return true;
    poolsim__tag_text(tag, text);
    const char *end = pattern;
    while (*end)
        end++;
    return tag_glob(text, pattern, end);
}

bool poolsim__tag_match_list(uint32_t tag, const char *patterns)
{
    char text[5];
    if (!patterns || !*patterns)
        return true;
    poolsim__tag_text(tag, text);
    for (const char *p = patterns; *p;) {
        while (*p == ' ')
            p++;
        const char *end = p;
        while (*end && *end != ' ')
            end++;
        if (end > p && tag_glob(text, p, end))
            return true;
        p = end;
    }
    return false;
}

/* ---- Sites --------------------------------------------------------------- */

const psim_site *poolsim__site_at(const psim *ps, uint32_t idx)
{
    const psim_site *chunk = ps->site_chunks[idx / PSIM_SITE_CHUNK];
    return chunk ? &chunk[idx % PSIM_SITE_CHUNK] : NULL;
}

psim_site *poolsim__site_mut(psim *ps, uint32_t idx)
{
    return (psim_site *)(uintptr_t)poolsim__site_at(ps, idx);
}

static uint32_t site_hash(const char *file, int line, const char *routine, uint32_t tag)
{
    return hash32((uint64_t)(uintptr_t)file * 31u + (uint64_t)(uint32_t)line * 0x10001u +
                  (uint64_t)(uintptr_t)routine * 7u + tag);
}

static bool site_is(const psim_site *s, const char *file, int line, const char *routine, uint32_t tag)
{
    return s->file == file && s->line == line && s->routine == routine && s->tag == tag;
}

uint32_t poolsim__site_get(psim *ps, const char *file, int line, poolsim_routine rt, uint32_t tag)
{
    if (!file || !ps->opt.track_sites)
        return 0;
    const char *routine = poolsim_routine_name(rt);
    tag &= ~PSIM_PROTECTED_POOL;
    const uint32_t mask = 2 * POOLSIM_SITE_CAPACITY - 1;
    uint32_t h = site_hash(file, line, routine, tag);
    for (uint32_t i = h, n = 0; n <= mask; i++, n++) {
        uint32_t idx = psim_atomic_load32(&ps->site_index[i & mask]);
        if (!idx)
            break;
        if (site_is(poolsim__site_at(ps, idx), file, line, routine, tag))
            return idx;
    }
    uint32_t found = 0;
    poolsim__prim_lock_acquire(&ps->site_lock);
    for (uint32_t i = h;; i++) {
        uint32_t *slot = &ps->site_index[i & mask];
        if (*slot && site_is(poolsim__site_at(ps, *slot), file, line, routine, tag)) {
            found = *slot;
            break;
        }
        if (*slot)
            continue;
        uint32_t idx = ps->nsites;
        if (idx >= POOLSIM_SITE_CAPACITY) /* full: the block is counted under its tag only */
            break;
        psim_site **chunk = &ps->site_chunks[idx / PSIM_SITE_CHUNK];
        if (!*chunk)
            *chunk =
                (psim_site *)line_aligned(ps, PSIM_SITE_CHUNK_BYTES, &ps->site_mem[idx / PSIM_SITE_CHUNK]);
        if (!*chunk)
            break;
        psim_site *s = &(*chunk)[idx % PSIM_SITE_CHUNK];
        s->file = file;
        s->line = line;
        s->routine = routine;
        s->tag = tag;
        psim_atomic_store32(&ps->nsites, idx + 1);
        psim_atomic_store32(slot, idx);
        found = idx;
        break;
    }
    poolsim__prim_lock_release(&ps->site_lock);
    return found;
}

uint32_t poolsim__site_lookup(psim *ps, psim_shard *sh, const char *file, int line, poolsim_routine rt,
                              uint32_t tag)
{
    unsigned k = rt >= POOLSIM_RT_EX_FREE_POOL;
    uint32_t idx = poolsim__site_get(ps, file, line, rt, tag);
    if (!idx && file && psim_atomic_load32(&ps->nsites) < POOLSIM_SITE_CAPACITY)
        return 0; /* no memory for the table just now: the next call tries again */
    sh->site_cache[k].file = file;
    sh->site_cache[k].line = line;
    sh->site_cache[k].rt = rt;
    sh->site_cache[k].tag = tag;
    sh->site_cache[k].idx = idx;
    return idx;
}

/* ---- Counters ------------------------------------------------------------ */

static void bump(uint64_t *p, uint64_t by) { psim_relaxed_store(p, psim_relaxed_load(p) + by); }

void poolsim__site_sum(const psim_site *s, psim_site_counts *sum)
{
    psim_memset(sum, 0, sizeof *sum);
    for (unsigned i = 0; i < POOLSIM_SHARDS; i++)
        for (unsigned k = 0; k < 2; k++) {
            sum->allocs[k] += psim_relaxed_load(&s->c[i].allocs[k]);
            sum->frees[k] += psim_relaxed_load(&s->c[i].frees[k]);
            sum->bytes[k] += psim_relaxed_load(&s->c[i].bytes[k]);
        }
}

void poolsim__tag_counters(const psim_tagent *e, unsigned pool, poolsim_pool_counters *out)
{
    psim_memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < POOLSIM_SHARDS; i++) {
        const psim_counters *c = &e->c[i][pool];
        out->allocs += psim_relaxed_load(&c->allocs);
        out->frees += psim_relaxed_load(&c->frees);
        out->bytes += psim_relaxed_load(&c->bytes);
    }
    out->peak_bytes = psim_atomic_load(&e->peak[pool]);
    if (out->peak_bytes < out->bytes) { /* a peak the shards' high-water marks missed (docs/semantics.md) */
        poolsim__atomic_max((uint64_t *)(uintptr_t)&e->peak[pool], out->bytes); /* kept: peaks never drop */
        out->peak_bytes = out->bytes;
    }
    out->failed = psim_atomic_load(&e->failed[pool]);
}

void poolsim__totals(const psim *ps, uint64_t *allocs, uint64_t *frees, uint64_t *live)
{
    *allocs = *frees = *live = 0;
    for (unsigned i = 0; i < POOLSIM_SHARDS; i++) {
        *allocs += psim_relaxed_load(&ps->shards[i].allocs);
        *frees += psim_relaxed_load(&ps->shards[i].frees);
        *live += psim_relaxed_load(&ps->shards[i].live);
    }
}

uint64_t poolsim__pool_bytes(const psim *ps, unsigned pool)
{
    uint64_t bytes = 0;
    for (unsigned i = 0; i < POOLSIM_SHARDS; i++)
        bytes += psim_relaxed_load(&ps->shards[i].bytes[pool]);
    return bytes;
}

/* The tag's entry through the shard's one-entry cache; the shard's lock is held. */
static psim_tagent *tag_cached(psim *ps, psim_shard *sh, uint32_t tag)
{
    psim_tagent *e = sh->tag_cache;
    if (PSIM_LIKELY(e && e->tag == (tag & ~PSIM_PROTECTED_POOL)))
        return e;
    return sh->tag_cache = poolsim__tag_get(ps, tag);
}

/*
 * Peaks of a sum over shards: when a shard reaches a new high of its own, the
 * total is summed and the peak raised. With one thread per tag, outside
 * special pool (one shard), that is exact; when several threads allocate one
 * tag, or one thread's blocks are split between its shard and special pool's,
 * a total that peaks while no shard sets a record of its own can be missed;
 * a read raises the peak to the current total (docs/semantics.md). The pool
 * byte and live-block peaks are kept the same way over the shards' totals.
 */

void poolsim__count_alloc(psim *ps, unsigned shard, uint32_t tag, unsigned pool, uint32_t site, uint64_t n)
{
    psim_shard *sh = &ps->shards[shard];
    psim_tagent *e = tag_cached(ps, sh, tag);
    psim_counters *c = &e->c[shard][pool];
    bump(&c->allocs, 1);
    bump(&c->bytes, n);
    if (c->bytes > c->peak) {
        uint64_t total = 0;
        psim_relaxed_store(&c->peak, c->bytes);
        for (unsigned i = 0; i < POOLSIM_SHARDS; i++)
            total += psim_relaxed_load(&e->c[i][pool].bytes);
        poolsim__atomic_max(&e->peak[pool], total);
    }
    if (site) {
        psim_site_counts *s = &poolsim__site_mut(ps, site)->c[shard];
        bump(&s->allocs[pool], 1);
        bump(&s->bytes[pool], n);
    }
    bump(&sh->allocs, 1);
    bump(&sh->bytes[pool], n);
    if (sh->bytes[pool] > sh->bytes_peak[pool]) {
        psim_relaxed_store(&sh->bytes_peak[pool], sh->bytes[pool]);
        poolsim__atomic_max(&ps->tot.peak_bytes[pool], poolsim__pool_bytes(ps, pool));
    }
    bump(&sh->live, 1);
    if (sh->live > sh->live_peak) {
        uint64_t a, f, live;
        psim_relaxed_store(&sh->live_peak, sh->live);
        poolsim__totals(ps, &a, &f, &live);
        poolsim__atomic_max(&ps->tot.peak_live, live);
    }
}

void poolsim__count_free(psim *ps, unsigned shard, uint32_t tag, unsigned pool, uint32_t site, uint64_t n)
{
    psim_shard *sh = &ps->shards[shard];
    psim_counters *c = &tag_cached(ps, sh, tag)->c[shard][pool];
    bump(&c->frees, 1);
    psim_relaxed_store(&c->bytes, c->bytes - n);
    if (site) {
        psim_site_counts *s = &poolsim__site_mut(ps, site)->c[shard];
        bump(&s->frees[pool], 1);
        psim_relaxed_store(&s->bytes[pool], s->bytes[pool] - n);
    }
    bump(&sh->frees, 1);
    psim_relaxed_store(&sh->live, sh->live - 1);
    psim_relaxed_store(&sh->bytes[pool], sh->bytes[pool] - n);
    if (pool ? ps->opt.paged_limit : ps->opt.nonpaged_limit)
        poolsim__limit_trim(ps, sh, pool, 4u * PSIM_GRANT, PSIM_GRANT); /* keep one grant (tracker.c) */
}

void poolsim__count_failed(psim *ps, uint32_t tag, unsigned pool)
{
    /* A request refused for its tag (0, "BIG ") gets no row of its own. */
    uint32_t tagm = tag & ~PSIM_PROTECTED_POOL;
    if (tagm != 0 && tagm != PSIM_TAG_BIG)
        psim_atomic_add(&poolsim__tag_get(ps, tag)->failed[pool], 1);
    psim_atomic_add(&ps->tot.failed, 1);
}
