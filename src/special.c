/* SPDX-License-Identifier: MIT */
/*
 * special.c — Driver Verifier's special pool (wdk-semantics.md §5.1, §1.3,
 * §1.7), with KFENCE's sampling and slot reuse.
 *
 * A selected allocation gets a page of its own between two no-access guard
 * pages. Verify End (the default) puts the block as high as it fits, its
 * start rounded down to the granularity (16 bytes on x64), so the first byte
 * past it that is not slack is on the guard page; Verify Start puts it at the
 * page start, so the byte before it is. Everything else on the page is
 * canary bytes (guard.c). Touching a guard page, or the page of a freed
 * block, faults at the instruction: the trap (forceirql.c, the one fault
 * dispatcher) reports 0xD6 or 0xD5. Damage to the canaries in the page is
 * found at free or validation: C1 0x23 (before the block) or 0x24 (after).
 *
 * Selection: POOL_FLAG_SPECIAL_POOL, the ...SpecialPoolOverrun/Underrun
 * priorities (option special_pool_priority), a tag pattern, a GFlags size
 * class, and sampling (1 in N on average). The region is a fixed number of
 * slots made at the first special allocation. Freed slots queue last, so
 * the freed page reused is the one freed longest ago and a freed page stays
 * no-access as long as possible; with every slot in use the allocation comes
 * from normal pool and the `fallback` counter says so.
 *
 * Needs page protection and the fault trap (prim.h capabilities); without
 * them (the kernel, non-x86 user mode) nothing is selected.
 */
#include "irql.h"

#define SP_NEED (POOLSIM__CAP_PAGE_PROTECT | POOLSIM__CAP_FAULT_TRAP)

void poolsim__special_init(psim *ps)
{
    const poolsim_options *o = &ps->opt;
    bool chosen =
        (o->special_pool_tags && o->special_pool_tags[0]) || o->special_pool_size || o->special_pool_sample;
    ps->special.nslots = o->special_pool_slots;
    if ((poolsim__prim_caps() & SP_NEED) != SP_NEED) {
        if (chosen)
            poolsim__out("poolsim: special pool needs page protection and fault traps, which this platform "
                         "lacks: every allocation comes from normal pool\n");
        return;
    }
    ps->special.on = PSIM_SP_REQUESTS | (chosen ? PSIM_SP_CHOOSE : 0u);
}

void poolsim__special_fini(psim *ps)
{
    psim_special *sp = &ps->special;
    /* The region's pages went with the chunks (tracker.c). */
    poolsim__meta_free(ps, sp->recs, (size_t)sp->nslots * sizeof(psim_rec));
    poolsim__meta_free(ps, sp->fifo, (size_t)sp->nslots * sizeof(uint32_t));
    sp->recs = NULL;
    sp->fifo = NULL;
}

/* ---- Selection ------------------------------------------------------------ */

/* The next sample of a thread: a countdown drawn uniformly from 1..2N-1
 * (mean N), from a generator seeded by special_pool_seed and the thread's
 * number in the order threads first sampled. */
static uint64_t sp_next(uint64_t *state)
{
    uint64_t x = *state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static bool sp_sample(psim *ps)
{
    uint32_t n = ps->opt.special_pool_sample;
    if (n == 1)
        return true;
    psim_thread *t = poolsim__thread();
    if (!t) /* no thread state: every Nth eligible allocation of the instance */
        return psim_atomic_add(&ps->special.sample_count, 1) % n == 0;
    if (t->sp_secret != ps->secret) {
        uint64_t k = psim_atomic_add(&ps->special.threads, 1);
        t->sp_secret = ps->secret;
        /* Mixed, not forced odd: seeds 2k and 2k + 1 must not sample alike. xorshift needs a state other than
         * 0. */
        uint64_t x = psim_mix64(ps->opt.special_pool_seed ^ (k * 0x9E3779B97F4A7C15ull));
        t->sp_rng = x ? x : 0x9E3779B97F4A7C15ull;
        t->sp_countdown = 1u + (uint32_t)(sp_next(&t->sp_rng) % (2u * (uint64_t)n - 1u));
    }
    if (--t->sp_countdown)
        return false;
    t->sp_countdown = 1u + (uint32_t)(sp_next(&t->sp_rng) % (2u * (uint64_t)n - 1u));
    return true;
}

/* The priority a request carries: the ...Priority routines' argument, or
 * ExAllocatePool3's Priority extended parameter (§2.3). */
static uint32_t sp_priority(const poolsim_alloc_req *req, bool flags_routine)
{
    if (!flags_routine)
        return req->priority;
    for (uint32_t i = 0; req->ext && i < req->ext_count; i++)
        if ((req->ext[i].type_and_flags & 0xFFu) == 1u)
            return (uint32_t)req->ext[i].value;
    return 0;
}

bool poolsim__special_underrun(const psim *ps, const poolsim_alloc_req *req, bool flags_routine)
{
    uint32_t pri = sp_priority(req, flags_routine);
    return (pri & 8u) ? (pri & 1u) != 0 : ps->opt.special_pool_underrun != 0;
}

bool poolsim__special_select(psim *ps, const poolsim_alloc_req *req, bool flags_routine, uint32_t tag,
                             size_t n)
{
    const poolsim_options *o = &ps->opt;
    uint32_t on = psim_atomic_load32(&ps->special.on);
    if (!on || n > PSIM_PAGE - PSIM_GRAN) /* a page less the header (§5.1) */
        return false;
    if (flags_routine && (req->type & PSIM_PF_SPECIAL_POOL))
        return true;
    if (o->special_pool_priority && (sp_priority(req, flags_routine) & 8u))
        return true;
    if (!(on & PSIM_SP_CHOOSE))
        return false;
    if (o->special_pool_tags[0] && poolsim__tag_match_list(tag, o->special_pool_tags))
        return true;
    if (o->special_pool_size && psim_align_up(n ? n : 1, PSIM_GRAN) + PSIM_GRAN == o->special_pool_size)
        return true;
    return o->special_pool_sample && sp_sample(ps);
}

/* ---- The region ------------------------------------------------------------ */

/* Makes the region: every page no-access, every slot free. Shard 0 locked. When the platform has no memory
 * for it, special pool is off for the instance (the caller says so once the lock is released). */
static bool sp_setup(psim *ps)
{
    psim_special *sp = &ps->special;
    uint32_t n = sp->nslots;
    sp->recs = (psim_rec *)poolsim__meta_alloc(ps, (size_t)n * sizeof(psim_rec));
    sp->fifo = (uint32_t *)poolsim__meta_alloc(ps, (size_t)n * sizeof(uint32_t));
    psim_chunk *c = sp->recs && sp->fifo ? poolsim__chunk_new(ps, 0, 2, 2 * n + 1, POOLSIM__PROT_NONE) : NULL;
    if (!c) {
        poolsim__special_fini(ps);
        psim_atomic_store32(&sp->on, 0); /* read without the lock by the selection */
        return false;
    }
    c->carved = c->npages;
    for (uint32_t i = 0; i < c->npages; i++) {
        psim_page *pg = &c->pages[i];
        pg->kind = (i & 1u) ? PSIM_PG_SPECIAL : PSIM_PG_SPECIAL_GUARD;
        pg->pool = 0;
        if (i & 1u) {
            pg->recs = &sp->recs[i / 2];
            pg->run = i / 2;
        }
    }
    for (uint32_t k = 0; k < n; k++)
        sp->fifo[k] = k;
    sp->fhead = 0;
    sp->fcount = n;
    psim_atomic_store_ptr((void **)&sp->chunk, c);
    return true;
}

void *poolsim__special_alloc(psim *ps, size_t n, unsigned pool, bool cache_aligned, bool underrun,
                             psim_where *w)
{
    psim_special *sp = &ps->special;
    psim_shard *sh = &ps->shards[0];
    poolsim__prim_lock_acquire(&sh->lock);
    if (!poolsim__limit_fits(ps, 0, pool, n)) { /* normal pool cannot serve it either */
        poolsim__prim_lock_release(&sh->lock);
        return NULL;
    }
    /* A thread that selected special pool before another one failed to make the region finds it off. */
    bool failed = !sp->chunk && psim_atomic_load32(&sp->on) && sp->nslots && !sp_setup(ps);
    if (!sp->chunk || !sp->fcount)
        goto fallback;
    uint32_t k = sp->fifo[sp->fhead];
    psim_page *pg = &sp->chunk->pages[2 * k + 1];
    poolsim__trap_arm();               /* a test framework may have replaced the fault handler since */
    if (!poolsim__trap_page(pg, true)) /* the system's limit on mappings reached */
        goto fallback;
    sp->fhead = (sp->fhead + 1) % sp->nslots;
    sp->fcount--;
    uintptr_t align = cache_aligned ? PSIM_CACHE_ALIGN : PSIM_GRAN;
    uintptr_t off = underrun ? 0 : (PSIM_PAGE - (n ? n : 1)) & ~(align - 1);
    pg->user_off = (uint16_t)off;
    pg->pool = (uint8_t)pool;
    poolsim__locate(pg, pg->base, w);
    psim_atomic_add(&sp->allocs, 1);
    return (void *)w->user;

fallback:
    poolsim__prim_lock_release(&sh->lock);
    psim_atomic_add(&sp->fallback, 1);
    if (failed) /* after the unlock: the output callback may allocate */
        poolsim__out("poolsim: special pool could not be set up: every allocation comes from normal pool\n");
    return NULL;
}

void poolsim__special_release(psim *ps, psim_where *w)
{
    psim_special *sp = &ps->special;
    psim_page *pg = w->page;
    poolsim__trap_arm(); /* a test framework may have replaced the fault handler since the allocation */
    poolsim__trap_page(pg, false);
    sp->fifo[(sp->fhead + sp->fcount++) % sp->nslots] = pg->run;
}

/* ---- Bad frees (§1.3) ----------------------------------------------------------- */

void poolsim__special_bad_free(psim *ps, psim_page *pg, uintptr_t a, poolsim_bugcheck *bc)
{
    psim_where w;
    if (poolsim__locate(pg, a, &w) && w.rec->state == PSIM_LIVE) {
        /* Inside a live block's page, not its pointer: 0x21 when the block
         * cannot fit between a and the page end, else 0x22. */
        uintptr_t calc = PSIM_PAGE - (a & (PSIM_PAGE - 1));
        poolsim__bc_make(bc, 0xC1, a, (uintptr_t)w.rec->size, calc, w.rec->size > calc ? 0x21 : 0x22);
        poolsim__bc_block(ps, bc, &w, w.rec);
        return;
    }
    /* A guard page, a freed block's page or a page never used. */
    poolsim__bc_make(bc, 0xC1, a, 0, 0, 0x20);
    if (pg->kind == PSIM_PG_SPECIAL && w.rec->state != PSIM_FREE)
        poolsim__bc_block(ps, bc, &w, w.rec);
}
