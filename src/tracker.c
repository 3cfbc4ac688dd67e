/* SPDX-License-Identifier: MIT */
/*
 * tracker.c — where blocks live and how any address finds its block.
 *
 * Pages come from the platform in chunks (POOLSIM_CHUNK_PAGES pages, or one
 * run for a very big block). Every page has an out-of-band descriptor, and a
 * three-level radix map (48-bit addresses) leads from any address to it in
 * three loads, with no hashing and no dependence on the number of blocks.
 *
 * Small blocks (up to PSIM_SMALL_MAX bytes) live in slab pages: one slot size
 * per page, so a block never crosses a page, its address is 16-byte aligned
 * (x64) and the slot of an address is one division. A slot is
 *   [header: PSIM_GRAN][caller bytes][footer: footer_bytes or more, to a multiple of PSIM_GRAN]
 * (with the header at 64 bytes and the slot a multiple of 64 when cache-aligned); a slot that would
 * not fit a page makes the block a big one.
 * Big blocks get a page run: a guard page (its last PSIM_BIG_GUARD bytes are
 * canaries), then the caller's pages, with at least PSIM_GRAN bytes of
 * guarded slack at the end; the caller's pointer is
 * page-aligned like the kernel's big pool (wdk-semantics.md §2.5, §7).
 *
 * Each shard owns its chunks; its lock guards their descriptors and records.
 * Threads are spread over shards by thread id, so two threads rarely share a
 * lock. Lock order: shard lock, then map_lock; only a request at a pool limit holds several shard locks,
 * taken in index order (poolsim__limit_fits).
 */
#include "core.h"

/* ---- Out-of-band memory ---------------------------------------------- */

void *poolsim__meta_alloc(psim *ps, size_t n)
{
    void *p = poolsim__prim_meta_alloc(n);
    if (p && ps)
        psim_atomic_add(&ps->meta_bytes, n);
    return p;
}

void poolsim__meta_free(psim *ps, void *p, size_t n)
{
    if (!p)
        return;
    poolsim__prim_meta_free(p, n);
    if (ps)
        psim_atomic_sub(&ps->meta_bytes, n);
}

/* ---- Radix page map ---------------------------------------------------- */

static uint64_t page_number(uintptr_t addr) { return ((uint64_t)addr & 0xFFFFFFFFFFFFull) >> 12; }

psim_page *poolsim__page_of(const psim *ps, uintptr_t addr)
{
    uint64_t pn = page_number(addr);
    void **l2 = (void **)psim_atomic_load_ptr(&ps->radix[pn >> (2 * PSIM_RADIX_BITS)]);
    if (!l2)
        return NULL;
    void **leaf = (void **)psim_atomic_load_ptr(&l2[(pn >> PSIM_RADIX_BITS) & (PSIM_RADIX_FAN - 1)]);
    if (!leaf)
        return NULL;
    psim_page *pg = (psim_page *)psim_atomic_load_ptr(&leaf[pn & (PSIM_RADIX_FAN - 1)]);
    /* The map keys on address bits 12-47: an address that differs above them is not this page. */
    return pg && pg->base == (addr & ~(uintptr_t)(PSIM_PAGE - 1)) ? pg : NULL;
}

/* Returns the radix slot of a page, creating nodes. Caller holds map_lock. */
static void **radix_slot(psim *ps, uint64_t pn)
{
    void **node = ps->radix;
    for (unsigned level = 2; level > 0; level--) {
        void **slot = &node[(pn >> (level * PSIM_RADIX_BITS)) & (PSIM_RADIX_FAN - 1)];
        void **next = (void **)*slot;
        if (!next) {
            next = (void **)poolsim__meta_alloc(ps, PSIM_RADIX_FAN * sizeof(void *));
            if (!next)
                return NULL;
            psim_atomic_store_ptr(slot, next);
        }
        node = next;
    }
    return &node[pn & (PSIM_RADIX_FAN - 1)];
}

/* ---- Chunks and page runs ---------------------------------------------- */

static void list_push(psim_page **head, psim_page *pg)
{
    pg->prev = NULL;
    pg->next = *head;
    if (*head)
        (*head)->prev = pg;
    *head = pg;
}

static void list_remove(psim_page **head, psim_page *pg)
{
    if (pg->prev)
        pg->prev->next = pg->next;
    else
        *head = pg->next;
    if (pg->next)
        pg->next->prev = pg->prev;
    pg->next = pg->prev = NULL;
}

static psim_page **run_list(psim_shard *sh, unsigned pool, uint32_t npages)
{
    return &sh->runs[pool][npages < PSIM_RUN_LISTS - 1 ? npages : PSIM_RUN_LISTS - 1];
}

/* Marks npages pages from pg as one free run. */
static void run_put(psim_shard *sh, psim_page *pg, uint32_t npages)
{
    for (uint32_t i = 1; i < npages; i++) {
        pg[i].kind = PSIM_PG_FREE_RUN;
        pg[i].run = 0;
    }
    pg->kind = PSIM_PG_FREE_RUN;
    pg->run = npages;
    list_push(run_list(sh, pg->pool, npages), pg);
}

/* Parks a freed slab page or big run in the free-run lists without touching
 * its descriptors, so its records (history of the freed blocks) answer
 * lookups until the pages are handed out again. */
static void run_park(psim_shard *sh, psim_page *pg, uint32_t npages)
{
    pg->run = npages;
    list_push(run_list(sh, pg->pool, npages), pg);
}

/* Drops the history a parked page still holds. */
static void page_forget(psim *ps, psim_page *pg)
{
    if (pg->recs)
        poolsim__meta_free(ps, pg->recs, (pg->kind == PSIM_PG_SLAB ? pg->nslots : 1u) * sizeof(psim_rec));
    pg->recs = NULL;
}

/* The records for a page (or run) being handed out to hold n blocks: the array its last use left,
 * cleared, when it has n (the freed blocks' history ends either way), else a new one; NULL when the
 * platform has no memory. Reusing spares an allocation and a free at a quarter of live10k's operations. */
static psim_rec *recs_for(psim *ps, psim_page *pg, uint32_t n)
{
    if (pg->recs && (pg->kind == PSIM_PG_SLAB ? pg->nslots : 1u) == n) {
        psim_memset(pg->recs, 0, (size_t)n * sizeof(psim_rec));
        return pg->recs;
    }
    page_forget(ps, pg);
    return (psim_rec *)poolsim__meta_alloc(ps, (size_t)n * sizeof(psim_rec));
}

psim_chunk *poolsim__chunk_new(psim *ps, unsigned shard, unsigned pool, uint32_t npages, unsigned prot)
{
    size_t bytes = (size_t)npages * PSIM_PAGE;
    size_t desc = sizeof(psim_chunk) + (size_t)(npages - 1) * sizeof(psim_page);
    void *base = poolsim__prim_pages_map(bytes, prot);
    if (!base)
        return NULL;
    psim_chunk *c = (psim_chunk *)poolsim__meta_alloc(ps, desc);
    if (!c) {
        poolsim__prim_pages_unmap(base, bytes);
        return NULL;
    }
    c->base = (uintptr_t)base;
    c->npages = npages;
    c->shard = (uint8_t)shard;
    c->pool = (uint8_t)pool;
    for (uint32_t i = 0; i < npages; i++) {
        c->pages[i].base = c->base + (uintptr_t)i * PSIM_PAGE;
        c->pages[i].shard = (uint8_t)shard;
        c->pages[i].pool = (uint8_t)pool;
    }
    poolsim__prim_lock_acquire(&ps->map_lock);
    bool ok = true;
    for (uint32_t i = 0; i < npages && ok; i++) {
        void **slot = radix_slot(ps, page_number(c->pages[i].base));
        if (slot)
            psim_atomic_store_ptr(slot, &c->pages[i]);
        ok = slot != NULL;
    }
    /* A chunk the map could not take whole is kept all the same, every page carved: map entries already
     * made point at its descriptors, which a lock-free lookup may be reading, and none of its pages
     * ever holds a block. poolsim__tracker_fini frees it with the others. */
    if (!ok)
        c->carved = npages;
    c->next = ps->chunks;
    psim_atomic_store_ptr((void **)&ps->chunks, c);
    poolsim__prim_lock_release(&ps->map_lock);
    psim_atomic_add(&ps->arena_bytes, bytes);
    return ok ? c : NULL;
}

/* Takes a run of npages free pages of pool, with the records its head page still holds (recs_for);
 * caller holds the shard lock. */
static psim_page *run_take(psim *ps, unsigned shard, unsigned pool, uint32_t npages)
{
    psim_shard *sh = &ps->shards[shard];
    psim_chunk *c = sh->cur[pool];
    /* Untouched pages first: freed pages wait until the chunk is used up, so a
     * stale pointer keeps meeting the history of its block for longer. */
    if (c && c->npages - c->carved >= npages) {
        psim_page *pg = &c->pages[c->carved];
        c->carved += npages;
        return pg;
    }
    for (uint32_t len = npages < PSIM_RUN_LISTS ? npages : PSIM_RUN_LISTS - 1; len < PSIM_RUN_LISTS; len++) {
        psim_page **head = &sh->runs[pool][len];
        for (psim_page *pg = *head; pg; pg = pg->next) {
            if (pg->run < npages)
                continue; /* only in the last list, which mixes lengths */
            uint32_t rest = pg->run - npages;
            list_remove(head, pg);
            if (rest)
                run_put(sh, pg + npages, rest);
            return pg;
        }
    }
    if (npages >= POOLSIM_CHUNK_PAGES) {
        /* A run this long gets a chunk of its own. */
        psim_chunk *own = poolsim__chunk_new(ps, shard, pool, npages, POOLSIM__PROT_RW);
        if (own)
            own->carved = npages;
        return own ? &own->pages[0] : NULL;
    }
    psim_chunk *fresh = poolsim__chunk_new(ps, shard, pool, POOLSIM_CHUNK_PAGES, POOLSIM__PROT_RW);
    if (!fresh)
        return NULL;
    if (c && c->carved < c->npages)
        run_put(sh, &c->pages[c->carved], c->npages - c->carved);
    if (c)
        c->carved = c->npages;
    c = sh->cur[pool] = fresh;
    psim_page *pg = &c->pages[c->carved];
    c->carved += npages;
    return pg;
}

/* ---- Slabs ------------------------------------------------------------- */

static psim_page *slab_new(psim *ps, unsigned shard, unsigned pool, uint16_t slot_size, uint16_t user_off)
{
    psim_page *pg = run_take(ps, shard, pool, 1);
    if (!pg)
        return NULL;
    uint16_t n = (uint16_t)(PSIM_PAGE / slot_size);
    psim_rec *recs = recs_for(ps, pg, n);
    if (!recs) {
        run_put(&ps->shards[shard], pg, 1);
        return NULL;
    }
    for (uint16_t i = 0; i < n; i++)
        recs[i].next_free = (uint16_t)(i + 1u < n ? i + 1u : PSIM_NO_SLOT);
    pg->kind = PSIM_PG_SLAB;
    pg->slot_size = slot_size;
    pg->user_off = user_off;
    pg->nslots = n;
    pg->nused = 0;
    pg->free_head = 0;
    pg->free_tail = (uint16_t)(n - 1);
    pg->recs = recs;
    return pg;
}

/* ---- Pool limits ---------------------------------------------------------- */

/* Each shard takes bytes of a pool's limit from the instance in grants and counts its blocks against
 * them under its own lock, so threads do not share a counter's line at every allocation and free. When
 * the instance has none left, the other shards' spare grants are taken back before a request fails:
 * the limit is exact. */
static bool grant_take(psim *ps, psim_shard *sh, unsigned pool, uint64_t more, uint64_t limit)
{
    if (psim_atomic_add(&ps->tot.granted[pool], more) > limit) {
        psim_atomic_sub(&ps->tot.granted[pool], more);
        return false;
    }
    sh->grant[pool] += more;
    return true;
}

void poolsim__limit_trim(psim *ps, psim_shard *sh, unsigned pool, uint64_t over, uint64_t keep)
{
    uint64_t spare = sh->grant[pool] - sh->bytes[pool];
    if (spare > over) {
        sh->grant[pool] -= spare - keep;
        psim_atomic_sub(&ps->tot.granted[pool], spare - keep);
    }
}

bool poolsim__limit_fits(psim *ps, unsigned shard, unsigned pool, uint64_t n)
{
    uint64_t limit = pool ? ps->opt.paged_limit : ps->opt.nonpaged_limit;
    psim_shard *sh = &ps->shards[shard];
    if (!limit || sh->bytes[pool] + n <= sh->grant[pool])
        return true;
    uint64_t missing = sh->bytes[pool] + n - sh->grant[pool];
    if (grant_take(ps, sh, pool, missing + PSIM_GRANT, limit) || grant_take(ps, sh, pool, missing, limit))
        return true;
    /* Every shard locked (in index order: nothing else holds two), so no thread takes the spare
     * bytes back between the trims and the request's own grant. */
    poolsim__prim_lock_release(&sh->lock);
    for (unsigned i = 0; i < POOLSIM_SHARDS; i++) {
        poolsim__prim_lock_acquire(&ps->shards[i].lock);
        poolsim__limit_trim(ps, &ps->shards[i], pool, 0, 0);
    }
    bool fits = grant_take(ps, sh, pool, sh->bytes[pool] + n - sh->grant[pool], limit);
    for (unsigned i = 0; i < POOLSIM_SHARDS; i++)
        if (i != shard)
            poolsim__prim_lock_release(&ps->shards[i].lock);
    return fits;
}

/* Fibonacci hashing, top bits: consecutive thread ids (Linux) and ids four
 * apart (Windows) always land in different shards. */
unsigned poolsim__shard_of_thread(uint32_t thread)
{
    return (unsigned)(((uint64_t)(uint32_t)(thread * 0x9E3779B1u) * POOLSIM_SHARDS) >> 32);
}

void *poolsim__block_alloc(psim *ps, size_t n, unsigned pool, bool cache_aligned, bool whole_pages,
                           psim_where *w)
{
    unsigned shard = poolsim__shard_of_thread(poolsim__prim_thread_id());
    psim_shard *sh = &ps->shards[shard];
    uint16_t user_off = (uint16_t)(cache_aligned ? PSIM_CACHE_ALIGN : PSIM_GRAN);
    uintptr_t slot = psim_align_up(user_off + (n ? n : 1) + ps->opt.footer_bytes,
                                   cache_aligned ? PSIM_CACHE_ALIGN : (uintptr_t)PSIM_GRAN);

    poolsim__prim_lock_acquire(&sh->lock);
    if (!poolsim__limit_fits(ps, shard, pool, n))
        goto fail;
    if (!whole_pages && n <= PSIM_SMALL_MAX && slot <= PSIM_PAGE) {
        unsigned cls = (unsigned)(slot / PSIM_GRAN);
        psim_page **head = &sh->partial[pool][cache_aligned][cls];
        psim_page *pg = *head;
        if (!pg) {
            pg = slab_new(ps, shard, pool, (uint16_t)slot, user_off);
            if (!pg)
                goto fail;
            list_push(head, pg);
        }
        uint16_t s = pg->free_head;
        psim_rec *r = &pg->recs[s];
        pg->free_head = r->next_free;
        if (pg->free_head == PSIM_NO_SLOT) {
            pg->free_tail = PSIM_NO_SLOT;
            list_remove(head, pg);
        }
        pg->nused++;
        w->page = pg;
        w->slot = s;
        w->start = pg->base + (uintptr_t)s * pg->slot_size;
        w->end = w->start + pg->slot_size;
        w->user = w->start + user_off;
        w->rec = r;
        return (void *)w->user;
    }

    /* Big block: a guard page, then the caller's pages with >= PSIM_GRAN of slack. */
    uint64_t npages = 1 + ((uint64_t)n + PSIM_GRAN + PSIM_PAGE - 1) / PSIM_PAGE;
    if (npages > 0x7FFFFFFFu)
        goto fail;
    psim_page *pg = run_take(ps, shard, pool, (uint32_t)npages);
    if (!pg)
        goto fail;
    pg->recs = recs_for(ps, pg, 1);
    if (!pg->recs) {
        run_put(sh, pg, (uint32_t)npages);
        goto fail;
    }
    pg->kind = PSIM_PG_BIG;
    pg->run = (uint32_t)npages;
    for (uint32_t i = 1; i < npages; i++) {
        pg[i].kind = PSIM_PG_BIG_TAIL;
        pg[i].run = i;
    }
    w->page = pg;
    w->slot = 0;
    w->start = pg->base + PSIM_PAGE - PSIM_BIG_GUARD;
    w->end = pg->base + (uintptr_t)npages * PSIM_PAGE;
    w->user = pg->base + PSIM_PAGE;
    w->rec = pg->recs;
    return (void *)w->user;

fail:
    poolsim__prim_lock_release(&sh->lock);
    return NULL;
}

bool poolsim__locate(psim_page *pg, uintptr_t addr, psim_where *w)
{
    switch (pg->kind) {
    case PSIM_PG_SLAB: {
        uint32_t s = (uint32_t)((addr - pg->base) / pg->slot_size);
        if (s >= pg->nslots)
            return false;
        w->page = pg;
        w->slot = s;
        w->start = pg->base + (uintptr_t)s * pg->slot_size;
        w->end = w->start + pg->slot_size;
        w->user = w->start + pg->user_off;
        w->rec = &pg->recs[s];
        return true;
    }
    case PSIM_PG_BIG_TAIL:
        pg -= pg->run;
        /* fall through */
    case PSIM_PG_BIG:
        w->page = pg;
        w->slot = 0;
        w->start = pg->base + PSIM_PAGE - PSIM_BIG_GUARD;
        w->end = pg->base + (uintptr_t)pg->run * PSIM_PAGE;
        w->user = pg->base + PSIM_PAGE;
        w->rec = pg->recs;
        return true;
    case PSIM_PG_SPECIAL:
        w->page = pg;
        w->slot = 0;
        w->start = pg->base;
        w->end = pg->base + PSIM_PAGE;
        w->user = pg->base + pg->user_off;
        w->rec = pg->recs;
        return true;
    default:
        return false;
    }
}

void poolsim__block_release(psim *ps, psim_where *w)
{
    psim_page *pg = w->page;
    psim_shard *sh = poolsim__shard(ps, pg);
    if (pg->kind == PSIM_PG_BIG) {
        run_park(sh, pg, pg->run);
        return;
    }
    if (pg->kind == PSIM_PG_SPECIAL) {
        poolsim__special_release(ps, w);
        return;
    }
    /* Slab: FIFO free list, so a freed slot is reused as late as possible. */
    psim_rec *r = w->rec;
    uint16_t s = (uint16_t)w->slot;
    r->next_free = PSIM_NO_SLOT;
    if (pg->free_tail != PSIM_NO_SLOT)
        pg->recs[pg->free_tail].next_free = s;
    else
        pg->free_head = s;
    bool was_full = pg->free_tail == PSIM_NO_SLOT;
    pg->free_tail = s;
    pg->nused--;
    bool cache = pg->user_off == PSIM_CACHE_ALIGN;
    psim_page **head = &sh->partial[pg->pool][cache][pg->slot_size / PSIM_GRAN]; /* its class */
    if (was_full)
        list_push(head, pg);
    /* An empty page goes back to the runs unless it is its class's only page;
     * it keeps its records until it is reused. */
    if (pg->nused == 0 && (pg->next || pg->prev)) {
        list_remove(head, pg);
        run_park(sh, pg, 1);
    }
}

/* ---- Iteration ----------------------------------------------------------- */

bool poolsim__iter_next(psim *ps, psim_iter *it, unsigned states, psim_where *w)
{
    if (!it->chunk) {
        if (it->done)
            return false;
        it->chunk = (psim_chunk *)psim_atomic_load_ptr((void *const *)&ps->chunks);
        it->page = it->slot = 0;
    }
    while (it->chunk) {
        psim_chunk *c = it->chunk;
        psim_shard *sh = &ps->shards[c->shard];
        poolsim__prim_lock_acquire(&sh->lock);
        for (; it->page < c->npages; it->page++, it->slot = 0) {
            psim_page *pg = &c->pages[it->page];
            uint32_t n = pg->kind == PSIM_PG_SLAB ? pg->nslots
                                                  : pg->kind == PSIM_PG_BIG || pg->kind == PSIM_PG_SPECIAL;
            for (; it->slot < n; it->slot++) {
                psim_rec *r = &pg->recs[it->slot];
                if (!(states & (1u << r->state)))
                    continue;
                uintptr_t addr =
                    pg->base + (uintptr_t)it->slot * (pg->kind == PSIM_PG_SLAB ? pg->slot_size : 0);
                poolsim__locate(pg, addr, w);
                it->slot++;
                return true; /* with the shard lock held */
            }
        }
        poolsim__prim_lock_release(&sh->lock);
        it->chunk = c->next;
        it->page = it->slot = 0;
    }
    it->done = true;
    return false;
}

void poolsim__unlock(psim *ps, const psim_page *pg)
{
    poolsim__prim_lock_release(&poolsim__shard(ps, pg)->lock);
}

/* ---- Setup and teardown --------------------------------------------------- */

bool poolsim__tracker_init(psim *ps)
{
    poolsim__prim_lock_init(&ps->map_lock);
    for (unsigned i = 0; i < POOLSIM_SHARDS; i++)
        poolsim__prim_lock_init(&ps->shards[i].lock);
    ps->radix = (void **)poolsim__meta_alloc(ps, PSIM_RADIX_FAN * sizeof(void *));
    return ps->radix != NULL;
}

void poolsim__tracker_fini(psim *ps)
{
    psim_chunk *c = ps->chunks;
    while (c) {
        psim_chunk *next = c->next;
        for (uint32_t i = 0; i < c->npages; i++) {
            psim_page *pg = &c->pages[i];
            if (pg->kind == PSIM_PG_SLAB)
                poolsim__meta_free(ps, pg->recs, (size_t)pg->nslots * sizeof(psim_rec));
            else if (pg->kind == PSIM_PG_BIG)
                poolsim__meta_free(ps, pg->recs, sizeof(psim_rec));
        }
        poolsim__prim_pages_unmap((void *)c->base, (size_t)c->npages * PSIM_PAGE);
        poolsim__meta_free(ps, c, sizeof(psim_chunk) + (size_t)(c->npages - 1) * sizeof(psim_page));
        c = next;
    }
    ps->chunks = NULL;
    if (ps->radix) {
        for (unsigned i = 0; i < PSIM_RADIX_FAN; i++) {
            void **l2 = (void **)ps->radix[i];
            if (!l2)
                continue;
            for (unsigned j = 0; j < PSIM_RADIX_FAN; j++)
                poolsim__meta_free(ps, l2[j], PSIM_RADIX_FAN * sizeof(void *));
            poolsim__meta_free(ps, l2, PSIM_RADIX_FAN * sizeof(void *));
        }
        poolsim__meta_free(ps, ps->radix, PSIM_RADIX_FAN * sizeof(void *));
        ps->radix = NULL;
    }
    for (unsigned i = 0; i < POOLSIM_SHARDS; i++) {
        poolsim__meta_free(ps, ps->shards[i].qring, (size_t)ps->shards[i].qcap * sizeof(psim_qent));
        poolsim__prim_lock_destroy(&ps->shards[i].lock);
    }
    poolsim__prim_lock_destroy(&ps->map_lock);
}
