/* SPDX-License-Identifier: MIT */
/*
 * pool.c — the kernel's pool routines: what each accepts, returns and raises.
 *
 * Every rule here is from wdk-semantics.md §2 (section numbers in comments).
 * The order of checks on allocation: pool type or flags, tag, size, IRQL,
 * pool limit. On free: the address, double free, IRQL, tag, guards. A check
 * that fails builds a bug check while the shard lock is held, releases the
 * lock, and delivers it last; if the handler returns, the allocation returns
 * NULL or the free does nothing.
 */
#include "core.h"
#include "irql.h"

/* ---- Routines ------------------------------------------------------------ */

#define RT_TAGGED 0x01u /* takes the caller's tag (else "None") */
#define RT_QUOTA 0x02u  /* charges quota; raises on failure by default */
#define RT_ZERO 0x04u   /* ORs POOL_ZERO_ALLOCATION (§2.4) */
#define RT_FLAGS 0x08u  /* takes POOL_FLAGS (ExAllocatePool2/3) */
#define RT_ALLOC 0x10u
#define RT_FREE 0x20u
#define RT_MM_CONTIG 0x40u    /* MmAllocate/FreeContiguousMemory */
#define RT_MM_NONCACHED 0x80u /* MmAllocate/FreeNonCachedMemory */
#define RT_MM (RT_MM_CONTIG | RT_MM_NONCACHED)

static const struct {
    const char *name;
    unsigned flags;
} routines[POOLSIM_RT_COUNT] = {
    [POOLSIM_RT_EX_ALLOCATE_POOL] = {"ExAllocatePool", RT_ALLOC},
    [POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG] = {"ExAllocatePoolWithTag", RT_ALLOC | RT_TAGGED},
    [POOLSIM_RT_EX_ALLOCATE_POOL_WITH_QUOTA] = {"ExAllocatePoolWithQuota", RT_ALLOC | RT_QUOTA},
    [POOLSIM_RT_EX_ALLOCATE_POOL_WITH_QUOTA_TAG] = {"ExAllocatePoolWithQuotaTag",
                                                    RT_ALLOC | RT_TAGGED | RT_QUOTA},
    [POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG_PRIORITY] = {"ExAllocatePoolWithTagPriority", RT_ALLOC | RT_TAGGED},
    [POOLSIM_RT_EX_ALLOCATE_POOL_ZERO] = {"ExAllocatePoolZero", RT_ALLOC | RT_TAGGED | RT_ZERO},
    [POOLSIM_RT_EX_ALLOCATE_POOL_QUOTA_ZERO] = {"ExAllocatePoolQuotaZero",
                                                RT_ALLOC | RT_TAGGED | RT_QUOTA | RT_ZERO},
    [POOLSIM_RT_EX_ALLOCATE_POOL_PRIORITY_ZERO] = {"ExAllocatePoolPriorityZero",
                                                   RT_ALLOC | RT_TAGGED | RT_ZERO},
    [POOLSIM_RT_EX_ALLOCATE_POOL_UNINITIALIZED] = {"ExAllocatePoolUninitialized", RT_ALLOC | RT_TAGGED},
    [POOLSIM_RT_EX_ALLOCATE_POOL_QUOTA_UNINITIALIZED] = {"ExAllocatePoolQuotaUninitialized",
                                                         RT_ALLOC | RT_TAGGED | RT_QUOTA},
    [POOLSIM_RT_EX_ALLOCATE_POOL_PRIORITY_UNINITIALIZED] = {"ExAllocatePoolPriorityUninitialized",
                                                            RT_ALLOC | RT_TAGGED},
    [POOLSIM_RT_EX_ALLOCATE_POOL2] = {"ExAllocatePool2", RT_ALLOC | RT_TAGGED | RT_FLAGS},
    [POOLSIM_RT_EX_ALLOCATE_POOL3] = {"ExAllocatePool3", RT_ALLOC | RT_TAGGED | RT_FLAGS},
    [POOLSIM_RT_EX_FREE_POOL] = {"ExFreePool", RT_FREE},
    [POOLSIM_RT_EX_FREE_POOL_WITH_TAG] = {"ExFreePoolWithTag", RT_FREE | RT_TAGGED},
    [POOLSIM_RT_EX_FREE_POOL2] = {"ExFreePool2", RT_FREE | RT_TAGGED},
    [POOLSIM_RT_EX_QUERY_POOL_BLOCK_SIZE] = {"ExQueryPoolBlockSize", 0},
    [POOLSIM_RT_MM_ALLOCATE_CONTIGUOUS_MEMORY] = {"MmAllocateContiguousMemory", RT_ALLOC | RT_MM_CONTIG},
    [POOLSIM_RT_MM_ALLOCATE_CONTIGUOUS_MEMORY_SPECIFY_CACHE] = {"MmAllocateContiguousMemorySpecifyCache",
                                                                RT_ALLOC | RT_MM_CONTIG},
    [POOLSIM_RT_MM_FREE_CONTIGUOUS_MEMORY] = {"MmFreeContiguousMemory", RT_FREE | RT_MM_CONTIG},
    [POOLSIM_RT_MM_ALLOCATE_NONCACHED_MEMORY] = {"MmAllocateNonCachedMemory", RT_ALLOC | RT_MM_NONCACHED},
    [POOLSIM_RT_MM_FREE_NONCACHED_MEMORY] = {"MmFreeNonCachedMemory", RT_FREE | RT_MM_NONCACHED},
    /* The lookaside routines, for reports (lookaside.c names the kind of list). */
    [POOLSIM_RT_EX_INITIALIZE_LOOKASIDE_LIST] = {"ExInitializeLookasideList", 0},
    [POOLSIM_RT_EX_ALLOCATE_FROM_LOOKASIDE_LIST] = {"ExAllocateFromLookasideList", 0},
    [POOLSIM_RT_EX_FREE_TO_LOOKASIDE_LIST] = {"ExFreeToLookasideList", 0},
    [POOLSIM_RT_EX_DELETE_LOOKASIDE_LIST] = {"ExDeleteLookasideList", 0},
    [POOLSIM_RT_EX_FLUSH_LOOKASIDE_LIST] = {"ExFlushLookasideListEx", 0},
};

const char *poolsim_routine_name(poolsim_routine rt)
{
    return (unsigned)rt < POOLSIM_RT_COUNT ? routines[rt].name : "(unknown routine)";
}

static bool verifier(const psim *ps) { return ps->opt.family == POOLSIM_FAMILY_VERIFIER; }

void poolsim__not_initialised(const char *routine, const char *file, int line)
{
    poolsim__outf("poolsim: %s called at %s:%d while poolsim is not initialised (poolsim_init); "
                  "the call does nothing\n",
                  routine, file ? file : "?", line);
}

static void not_initialized(poolsim_routine rt, const char *file, int line)
{
    poolsim__not_initialised(poolsim_routine_name(rt), file, line);
}

/* ---- Decoding a request (§2.1, §2.2, §2.4) -------------------------------- */

typedef struct psim_req {
    uint32_t pool_type; /* POOL_TYPE without the request bits */
    unsigned pool;      /* 0 nonpaged, 1 paged */
    bool cache, zero, quota, raise;
    bool bad_type; /* legacy: not a pool type a driver may ask for */
    bool bad_args; /* Pool2/3: invalid flags or extended parameters */
} psim_req;

static void decode_type(const poolsim_alloc_req *req, unsigned rtf, psim_req *q)
{
    uint64_t t = req->type;
    uint64_t base = psim_pool_type_base(t);
    uint64_t rest = base & ~(uint64_t)PSIM_PT_NX;
    /* MustSucceed (2, 6), DontUseThisType (3) and anything undefined are refused. */
    q->bad_type = (rest & ~(uint64_t)(PSIM_PT_PAGED | PSIM_PT_CACHE_ALIGNED | PSIM_PT_SESSION)) != 0;
    q->pool_type = (uint32_t)(base & 0xFFFFu);
    q->pool = (unsigned)(rest & PSIM_PT_PAGED);
    q->cache = (rest & PSIM_PT_CACHE_ALIGNED) != 0;
    q->zero = (rtf & RT_ZERO) || (t & PSIM_PT_ZERO);
    q->quota = (rtf & RT_QUOTA) != 0;
    q->raise = q->quota ? !(t & PSIM_PT_QUOTA_FAIL) : (t & PSIM_PT_RAISE) != 0;
}

static bool ext_params_ok(const poolsim_alloc_req *req, uint64_t flags)
{
    if (req->ext_count && !req->ext)
        return false;
    for (uint32_t i = 0; i < req->ext_count; i++) {
        unsigned type = (unsigned)(req->ext[i].type_and_flags & 0xFFu);
        bool optional = (req->ext[i].type_and_flags >> 8) & 1u;
        /* 1 Priority, 3 NumaNode (nonpaged only); SecurePool (2) is not emulated. */
        bool ok = type == 1 || (type == 3 && (flags & PSIM_PF_NON_PAGED));
        if (!ok && !optional)
            return false;
    }
    return true;
}

static void decode_flags(const poolsim_alloc_req *req, psim_req *q)
{
    uint64_t f = req->type;
    const uint64_t known = PSIM_PF_USE_QUOTA | PSIM_PF_UNINITIALIZED | PSIM_PF_CACHE_ALIGNED |
                           PSIM_PF_RAISE_ON_FAILURE | PSIM_PF_NON_PAGED | PSIM_PF_NON_PAGED_EXECUTE |
                           PSIM_PF_PAGED;
    unsigned kinds = !!(f & PSIM_PF_NON_PAGED) + !!(f & PSIM_PF_NON_PAGED_EXECUTE) + !!(f & PSIM_PF_PAGED);
    q->raise = (f & PSIM_PF_RAISE_ON_FAILURE) != 0;
    /* Unknown or reserved required bits, SESSION (OS only) and not exactly one
     * pool kind fail; unknown optional bits (the high 32) are ignored. */
    q->bad_args = (f & 0xFFFFFFFFull & ~known) != 0 || kinds != 1 || !ext_params_ok(req, f);
    q->pool = (f & PSIM_PF_PAGED) ? 1u : 0u;
    q->pool_type = (f & PSIM_PF_PAGED) ? 1u : (f & PSIM_PF_NON_PAGED) ? PSIM_PT_NX : 0u;
    q->cache = (f & PSIM_PF_CACHE_ALIGNED) != 0;
    if (q->cache)
        q->pool_type |= PSIM_PT_CACHE_ALIGNED;
    q->zero = !(f & PSIM_PF_UNINITIALIZED);
    q->quota = (f & PSIM_PF_USE_QUOTA) != 0;
}

/* ---- Allocation ------------------------------------------------------------ */

/*
 * Sequence numbers. A thread takes them from the instance's counter in batches of PSIM_SEQ_BATCH, so two
 * threads do not pass the counter's line back and forth at every event. Along one thread they increase; a
 * free's number is above its block's allocation (a batch too low for it is dropped, like a Lamport clock);
 * a checkpoint (poolsim__seq_now) closes every open batch below it. One thread alone numbers 1, 2, 3...
 * as a single counter would: a checkpoint returns the unused rest of its batch when no other batch was
 * taken since.
 */
#define PSIM_SEQ_BATCH 64u

static uint64_t seq_next(psim *ps, uint64_t above)
{
    psim_thread *t = poolsim__thread();
    if (!t) /* the kernel: no thread state, one counter */
        return psim_atomic_add(&ps->seq, 1);
    uint64_t s = t->seq_next;
    if (PSIM_UNLIKELY(s > t->seq_end || s <= above || t->seq_secret != ps->secret ||
                      s <= psim_atomic_load(&ps->seq_floor))) {
        /* Every number handed out is at most the counter, so one new batch is above `above`; a rest
         * returned by a checkpoint may leave the counter below the floor for a moment, hence the loop. */
        do {
            t->seq_end = psim_atomic_add(&ps->seq, PSIM_SEQ_BATCH);
            s = t->seq_end - PSIM_SEQ_BATCH + 1;
        } while (s <= psim_atomic_load(&ps->seq_floor));
        t->seq_secret = ps->secret;
    }
    t->seq_next = s + 1;
    return s;
}

uint64_t poolsim__seq_now(psim *ps)
{
    psim_thread *t = poolsim__thread();
    if (t && t->seq_secret == ps->secret && t->seq_next <= t->seq_end) {
        uint64_t end = t->seq_end;
        if (psim_atomic_cas(&ps->seq, &end, t->seq_next - 1)) /* no batch was taken after this one */
            t->seq_end = t->seq_next - 1;
    }
    poolsim__atomic_max(&ps->seq_floor, psim_atomic_load(&ps->seq));
    return psim_atomic_load(&ps->seq_floor); /* never below an earlier checkpoint */
}

static void *alloc_failed(psim *ps, const psim_req *q, uint32_t tag, int32_t *raise_status)
{
    poolsim__count_failed(ps, tag, q->pool);
    if (q->raise)
        *raise_status = PSIM_STATUS_INSUFFICIENT_RESOURCES;
    return NULL;
}

/* Arg2 of C4/0x20019, the DDI compliance rule IrqlMmApcLte (the noncached Mm routines' IRQL): a pointer to
 * the text of the violated rule, as for the spin lock rules (irql.c). Paraphrased from the rule's page. */
static const char rule_mm_apc[] = "IrqlMmApcLte: MmAllocateNonCachedMemory and MmFreeNonCachedMemory (among "
                                  "other memory manager routines) are called only at IRQL <= APC_LEVEL";

/* Delivers a bug check about a request; the allocation then returns NULL. */
static void *alloc_violation(psim *ps, const psim_req *q, uint32_t tag, poolsim_routine rt, const char *file,
                             int line, unsigned long code, uintptr_t p1, uintptr_t p2, uintptr_t p3,
                             uintptr_t p4)
{
    poolsim_bugcheck bc;
    poolsim__bc_make(&bc, code, p1, p2, p3, p4);
    poolsim__bc_site(&bc, file, line, rt);
    poolsim__count_failed(ps, tag, q->pool);
    poolsim__bc_deliver(ps, &bc);
    return NULL;
}

void *poolsim_pool_alloc(const poolsim_alloc_req *req, int32_t *raise_status, const char *file, int line)
{
    int32_t ignored;
    if (!raise_status)
        raise_status = &ignored;
    *raise_status = 0;
    psim *ps = poolsim__g;
    if (!req || (unsigned)req->routine >= POOLSIM_RT_COUNT || !(routines[req->routine].flags & RT_ALLOC)) {
        poolsim__outf("poolsim: poolsim_pool_alloc called at %s:%d without a valid allocation request\n",
                      file ? file : "?", line);
        return NULL;
    }
    poolsim_routine rt = req->routine;
    if (!ps) {
        not_initialized(rt, file, line);
        return NULL;
    }
    unsigned rtf = routines[rt].flags;
    size_t n = req->size;
    uint32_t tag = (rtf & RT_TAGGED) ? req->tag : PSIM_TAG_NONE;
    uint32_t tagm = tag & ~PSIM_PROTECTED_POOL;
    uint8_t irql = poolsim__prim_irql_get();
    psim_req q;
    psim_memset(&q, 0, sizeof q);

    if (rtf & RT_MM) {
        /* Mm allocators: whole nonpaged pages, uninitialised, NULL on failure. */
        tag = tagm = (rtf & RT_MM_CONTIG) ? PSIM_TAG_MM_CONTIG : PSIM_TAG_MM_NONCACHED;
        if (n == 0)
            return alloc_failed(ps, &q, tag, raise_status);
    } else if (rtf & RT_FLAGS) {
        decode_flags(req, &q);
        if (q.bad_args || tagm == 0) /* §2.4: NULL (or raise) for tag 0 or invalid flags */
            return alloc_failed(ps, &q, tag, raise_status);
    } else {
        decode_type(req, rtf, &q);
        if (q.bad_type) /* §1.2 0x9A; poolsim also uses it for undefined types */
            return alloc_violation(ps, &q, tag, rt, file, line, 0xC2, 0x9A, (uintptr_t)req->type, n, tag);
        if (tagm == 0) /* §2.6 */
            return alloc_violation(ps, &q, tag, rt, file, line, 0xC2, 0x9B, q.pool_type, n, 0);
    }
    if (tagm == PSIM_TAG_BIG)
        return alloc_violation(ps, &q, tag, rt, file, line, 0xC2, 0x9C, q.pool_type, n, 0);
    if (tagm != psim_atomic_load32(&ps->tag_ok)) { /* the last tag that passed: most calls repeat it */
        if (verifier(ps) && !poolsim__tag_well_formed(tagm)) /* 0x9D (§1.2) */
            return alloc_violation(ps, &q, tag, rt, file, line, 0xC2, 0x9D, tag, q.pool_type, 0);
        psim_atomic_store32(&ps->tag_ok, tagm); /* written only when it changes: threads share the line */
    }
    if (n == 0 && ps->opt.zero_size_check) /* §2.5 */
        return verifier(ps) ? alloc_violation(ps, &q, tag, rt, file, line, 0xC4, 0x00, irql, q.pool_type, 0)
                            : alloc_violation(ps, &q, tag, rt, file, line, 0xC2, 0x00, 0, q.pool_type, tag);
    bool special = !(rtf & RT_MM) && poolsim__special_wanted(ps, req, (rtf & RT_FLAGS) != 0, tag, n);
    /* The noncached routines' IRQL is APC_LEVEL at most (the WDK), checked as Verifier's DDI rule. */
    if ((rtf & RT_MM_NONCACHED) && irql > PSIM_IRQL_APC)
        return alloc_violation(ps, &q, tag, rt, file, line, 0xC4, 0x20019, (uintptr_t)rule_mm_apc, irql, n);
    if (irql > (q.pool ? PSIM_IRQL_APC : PSIM_IRQL_DISPATCH)) /* §2.4, §9 fact 2; special pool §1.3 */
        return special ? alloc_violation(ps, &q, tag, rt, file, line, 0xC1, irql, q.pool_type, n, 0x30)
               : verifier(ps)
                   ? alloc_violation(ps, &q, tag, rt, file, line, 0xC4, q.pool ? 0x01 : 0x02, irql,
                                     q.pool_type, n)
                   : alloc_violation(ps, &q, tag, rt, file, line, 0xC2, 0x08, irql, q.pool_type, n);

    if (poolsim__fault_fires(ps, tag, n, q.pool_type, file, line, rt)) /* §5.4 */
        return alloc_failed(ps, &q, tag, raise_status);

    /* Over the pool limit on its own; the bytes in use are counted against it by the shards (tracker.c). */
    uint64_t limit = q.pool ? ps->opt.paged_limit : ps->opt.nonpaged_limit;
    if ((uint64_t)n > PSIM_SIZE_MAX || (limit && (uint64_t)n > limit))
        return alloc_failed(ps, &q, tag, raise_status);

    psim_where w;
    void *p = special ? poolsim__special_alloc(ps, n, q.pool, q.cache,
                                               poolsim__special_underrun(ps, req, (rtf & RT_FLAGS) != 0), &w)
                      : NULL;
    if (!p)
        p = poolsim__block_alloc(ps, n, q.pool, q.cache, (rtf & RT_MM) != 0, &w);
    if (!p)
        return alloc_failed(ps, &q, tag, raise_status);
    uint32_t site = poolsim__site_cached(ps, poolsim__shard(ps, w.page), file, line, rt, tag);
    psim_rec *r = w.rec;
    r->size = n;
    r->pool_type = q.pool_type;
    r->alloc_rt = (unsigned)rt;
    r->alloc_seq = seq_next(ps, 0);
    r->free_seq = 0;
    r->state = PSIM_LIVE;
    /* §2.4: no quota is charged for blocks of a page or more. */
    r->flags = (q.quota && n < PSIM_PAGE ? PSIM_REC_QUOTA : 0) | (q.cache ? PSIM_REC_CACHE : 0) |
               (rtf & RT_MM_CONTIG ? PSIM_REC_CONTIG : 0) | (rtf & RT_MM_NONCACHED ? PSIM_REC_NONCACHED : 0);
    r->free_rt = 0;
    r->alloc_site = site;
    r->free_site = 0;
    r->tag = tag;
    r->thread = poolsim__prim_thread_id();
    poolsim__guard_arm(ps, &w, r);
    poolsim__count_alloc(ps, w.page->shard, tag, q.pool, site, n);
    poolsim__unlock(ps, w.page);

    if (q.zero)
        psim_memset(p, 0, n);
    else if (ps->opt.fill_uninit)
        psim_memset(p, (int)ps->opt.uninit_byte, n);
    return p;
}

/* ---- Checks shared by free, query and validate ------------------------------ */

/* Builds the bug check for a damaged block (shard locked), or returns false.
 * The code follows the first damaged region (§1.1, §1.4, §1.8, §1.9). */
bool poolsim__damage_violation(psim *ps, const psim_where *w, uint64_t edge, poolsim_bugcheck *bc)
{
    const psim_rec *r = w->rec;
    if (poolsim__block_intact(ps, w, r, edge))
        return false;
    poolsim_damage d[2];
    poolsim__damage_describe(ps, w, r, d);
    uintptr_t first = (uintptr_t)d[0].first;
    uint64_t found = 0;
    psim_memcpy(&found, (const void *)(first & ~(uintptr_t)7), 8);
    if (w->page->kind == PSIM_PG_SPECIAL) /* §1.3: the pattern before the block, or the slack after it */
        poolsim__bc_make(bc, 0xC1, w->user, first, 0, d[0].kind == POOLSIM_DAMAGE_UNDERRUN ? 0x23 : 0x24);
    else
        switch (d[0].kind) {
        case POOLSIM_DAMAGE_AFTER_FREE:
            verifier(ps) ? poolsim__bc_make(bc, 0xC6, first, 1, 0, 0)
                         : poolsim__bc_make(bc, 0x13A, 0x0B, w->user, first, 0);
            break;
        case POOLSIM_DAMAGE_UNDERRUN:
            verifier(ps) ? poolsim__bc_make(bc, 0xC4, 0x53, w->user, w->user - PSIM_GRAN, 0)
                         : poolsim__bc_make(bc, 0x19, 0x07, 0, 0, w->user - PSIM_GRAN);
            break;
        default:
            verifier(ps) ? poolsim__bc_make(bc, 0xC4, 0x51, w->user, first, (uintptr_t)r->size)
                         : poolsim__bc_make(bc, 0x19, 0x21, w->user, (uintptr_t)r->size, (uintptr_t)found);
            break;
        }
    poolsim__bc_block(ps, bc, w, r);
    psim_memcpy(bc->damage, d, sizeof d);
    return true;
}

/* The first pointer-sized word of a block's header as the caller left it. */
static uintptr_t header_word(const psim_where *w)
{
    uintptr_t v = 0;
    if (w->page->kind == PSIM_PG_SLAB)
        psim_memcpy(&v, (const void *)(w->user - PSIM_GRAN), sizeof v);
    return v;
}

/* A second free of the block at a (§2.7): C4/0x13 (0, header address, the header's first word); retail
 * C2/0x07 (tag, the header's first ULONG, address), as a real Win10 dump had it (§1.0). */
static void double_free_bc(const psim *ps, const psim_where *w, uintptr_t a, poolsim_bugcheck *bc)
{
    uintptr_t hw = header_word(w);
    verifier(ps) ? poolsim__bc_make(bc, 0xC4, 0x13, 0, w->user - PSIM_GRAN, hw)
                 : poolsim__bc_make(bc, 0xC2, 0x07, w->rec->tag, (uint32_t)hw, a);
}

/* Looks p up; on success returns true with the shard locked. On failure builds
 * the bug check for a bad address in *bc (unlocked). */
static bool lookup_block(psim *ps, uintptr_t a, psim_where *w, poolsim_bugcheck *bc, bool for_free)
{
    /* The guard check reads the header and the slot's last bytes last: asking for them now overlaps
     * their misses with the lookup's (a prefetch never faults, whatever the address). */
    PSIM_PREFETCH(a - PSIM_GRAN);
    psim_page *pg = a ? poolsim__page_of(ps, a) : NULL;
    bool located = false;
    if (pg) {
        poolsim__prim_lock_acquire(&poolsim__shard(ps, pg)->lock);
        located = poolsim__locate(pg, a, w);
        if (located && a == w->user && w->rec->state != PSIM_FREE) {
            PSIM_PREFETCH(w->end - 1);
            return true;
        }
    }
    /* Not the start of a block poolsim handed out. */
    bool interior = located && w->rec->state == PSIM_LIVE;
    if (for_free && pg && poolsim__is_special(pg)) {
        poolsim__special_bad_free(ps, pg, a, bc);
        poolsim__prim_lock_release(&poolsim__shard(ps, pg)->lock);
        return false;
    }
    if (interior && for_free)
        verifier(ps) ? poolsim__bc_make(bc, 0xC4, 0x13E, a, w->user, 0)
                     : poolsim__bc_make(bc, 0xC2, 0x99, a, 0, 0);
    else if (for_free && !interior)
        verifier(ps) ? poolsim__bc_make(bc, 0xC4, 0x10, a, 0, 0) : poolsim__bc_make(bc, 0xC2, 0x46, a, 0, 0);
    else
        verifier(ps) ? poolsim__bc_make(bc, 0xC4, 0x16, 0, a, 0) : poolsim__bc_make(bc, 0xC2, 0x99, a, 0, 0);
    if (located && w->rec->state != PSIM_FREE)
        poolsim__bc_block(ps, bc, w, w->rec);
    if (pg)
        poolsim__prim_lock_release(&poolsim__shard(ps, pg)->lock);
    return false;
}

/* ---- Quarantine ----------------------------------------------------------- */

/* Holds a freed block back: poisons it and appends it to its shard's FIFO.
 * Returns false when the quarantine is off, the block is larger than the
 * whole quarantine, or its ring cannot be had. Shard lock held. */
static bool quarantine(psim *ps, psim_where *w)
{
    psim_shard *sh = poolsim__shard(ps, w->page);
    uint64_t size = w->rec->size;
    if (!ps->opt.quarantine_bytes || !ps->opt.quarantine_blocks || size > ps->opt.quarantine_bytes)
        return false;
    if (!sh->qring) {
        uint32_t cap = ps->opt.quarantine_blocks + 1u;
        sh->qring = (psim_qent *)poolsim__meta_alloc(ps, (size_t)cap * sizeof(psim_qent));
        if (!sh->qring)
            return false;
        sh->qcap = cap;
    }
    if (sh->qcount == sh->qcap)
        return false;
    poolsim__poison(w, w->rec);
    psim_qent *e = &sh->qring[(sh->qhead + sh->qcount++) % sh->qcap];
    e->page = w->page;
    e->slot = w->slot;
    sh->qbytes += size;
    return true;
}

/* The i-th block to leave shard sh's quarantine (i < qcount). */
static psim_qent *qnext(const psim_shard *sh, uint32_t i)
{
    uint32_t k = sh->qhead + i;
    return &sh->qring[k >= sh->qcap ? k - sh->qcap : k];
}

static void qlocate(const psim_qent *e, psim_where *w)
{
    uintptr_t addr =
        e->page->base + (uintptr_t)e->slot * (e->page->kind == PSIM_PG_SLAB ? e->page->slot_size : 0);
    poolsim__locate(e->page, addr, w);
}

/* The cache lines of [from, to), the first 512 bytes at most: the hardware
 * prefetcher follows a longer run on its own. */
static void prefetch_lines(uintptr_t from, uintptr_t to)
{
    if (to - from > 512)
        to = from + 512;
    for (from &= ~(uintptr_t)63; from < to; from += 64)
        PSIM_PREFETCH(from);
}

/* Asks for what the next evictions will read, a step ahead each: the third
 * block's page descriptor, the second one's record, the next one's bytes that
 * its check reads (its size now known: the header, the poison the check
 * covers, the footer). A block leaves the quarantine long after it entered,
 * so each of these is a cache miss; one eviction per free leaves them a whole
 * operation to arrive. Shard lock held. */
static void quarantine_prefetch(const psim *ps, const psim_shard *sh)
{
    psim_where w;
    if (sh->qcount > 2)
        PSIM_PREFETCH(qnext(sh, 2)->page);
    if (sh->qcount > 1) {
        const psim_qent *e = qnext(sh, 1);
        PSIM_PREFETCH(&e->page->recs[e->slot]); /* a big block's only record is slot 0's */
    }
    if (sh->qcount > 0) {
        qlocate(qnext(sh, 0), &w);
        uintptr_t size = (uintptr_t)w.rec->size, edge = (uintptr_t)ps->opt.quarantine_check;
        if (!edge || size <= edge || size - edge <= edge) {
            prefetch_lines(w.start, w.end);
        } else {
            prefetch_lines(w.start, w.user + edge);
            prefetch_lines(w.user + size - edge, w.end);
        }
    }
}

void poolsim__quarantine_trim(psim *ps, unsigned shard, uint64_t max_bytes, uint64_t max_blocks,
                              const char *file, int line, poolsim_routine rt)
{
    psim_shard *sh = &ps->shards[shard];
    for (;;) {
        poolsim__prim_lock_acquire(&sh->lock);
        if (!sh->qcount || (sh->qcount <= max_blocks && sh->qbytes <= max_bytes)) {
            poolsim__prim_lock_release(&sh->lock);
            return;
        }
        psim_qent e = *qnext(sh, 0);
        sh->qhead = (sh->qhead + 1) % sh->qcap;
        sh->qcount--;
        psim_where w;
        qlocate(&e, &w);
        quarantine_prefetch(ps, sh);
        poolsim_bugcheck bc;
        /* write after free, found on the way out */
        bool damaged = poolsim__damage_violation(ps, &w, ps->opt.quarantine_check, &bc);
        sh->qbytes -= w.rec->size;
        w.rec->state = PSIM_RELEASED;
        poolsim__block_release(ps, &w);
        poolsim__prim_lock_release(&sh->lock);
        if (damaged) {
            poolsim__bc_site(&bc, file, line, rt); /* the free that pushed the block out */
            poolsim__bc_deliver(ps, &bc);
        }
    }
}

/* ---- For the lookaside lists ------------------------------------------------- */

bool poolsim__pool_type_valid(uint64_t pool_type)
{
    poolsim_alloc_req req;
    psim_req q;
    psim_memset(&req, 0, sizeof req);
    req.type = pool_type;
    decode_type(&req, 0, &q);
    return !q.bad_type;
}

bool poolsim__check_live(psim *ps, uintptr_t a, poolsim_bugcheck *bc)
{
    psim_where w;
    if (!lookup_block(ps, a, &w, bc, true))
        return false;
    bool live = w.rec->state == PSIM_LIVE;
    if (!live) {
        double_free_bc(ps, &w, a, bc);
        poolsim__bc_block(ps, bc, &w, w.rec);
    }
    poolsim__unlock(ps, w.page);
    return live;
}

void poolsim__mark_list_holder(psim *ps, uintptr_t block)
{
    psim_page *pg = poolsim__page_of(ps, block);
    psim_where w;
    if (!pg)
        return;
    poolsim__prim_lock_acquire(&poolsim__shard(ps, pg)->lock);
    if (poolsim__locate(pg, block, &w) && w.user == block && w.rec->state == PSIM_LIVE)
        w.rec->flags |= PSIM_REC_LIST;
    poolsim__unlock(ps, pg);
}

/* ---- Free ---------------------------------------------------------------- */

/* The allocator kind a record says made the block (RT_MM_* or 0 for pool). */
static unsigned allocator_of(const psim_rec *r)
{
    return (r->flags & PSIM_REC_CONTIG)      ? RT_MM_CONTIG
           : (r->flags & PSIM_REC_NONCACHED) ? RT_MM_NONCACHED
                                             : 0u;
}

/* Every free: the pool routines (size_given = SIZE_MAX) and the Mm ones. */
static void free_block(poolsim_routine rt, void *p, uint32_t tag, const poolsim_ext_param *ext,
                       uint32_t ext_count, size_t size_given, const char *file, int line)
{
    psim *ps = poolsim__g;
    if (!ps) {
        not_initialized(rt, file, line);
        return;
    }
    if (!(routines[rt].flags & RT_TAGGED))
        tag = 0; /* ExFreePool == ExFreePoolWithTag(p, 0) (§2.4) */
    uintptr_t a = (uintptr_t)p;
    poolsim_bugcheck bc;
    psim_where w;
    (void)ext;       /* poolsim has no secure pools: any extended parameter is one it cannot honour */
    if (ext_count) { /* with a count of 0 the parameters are not read, as for ordinary blocks */
        /* ExFreePool2 bug checks on extended parameters it cannot honour (§2.4);
         * poolsim has no secure pools, so every extended parameter is one. The
         * page gives no subcode: poolsim uses "bad parameters" (C4/0x16, C2/0x99). */
        verifier(ps) ? poolsim__bc_make(&bc, 0xC4, 0x16, 0, a, 0)
                     : poolsim__bc_make(&bc, 0xC2, 0x99, a, 0, 0);
        poolsim__bc_site(&bc, file, line, rt);
        poolsim__bc_deliver(ps, &bc);
        return;
    }
    unsigned kind = routines[rt].flags & RT_MM;
    if (!lookup_block(ps, a, &w, &bc, true)) {
        if (kind == RT_MM_CONTIG) /* §1.2 C2/0x60: not contiguous memory */
            poolsim__bc_make_keep_block(&bc, 0xC2, 0x60, a, 0, 0);
        poolsim__bc_site(&bc, file, line, rt);
        poolsim__bc_deliver(ps, &bc);
        return;
    }
    psim_rec *r = w.rec;
    poolsim_lookaside *list;
    uint8_t irql = poolsim__prim_irql_get();
    unsigned pool = r->pool_type & PSIM_PT_PAGED;
    uint32_t have = r->tag & ~PSIM_PROTECTED_POOL, given = tag & ~PSIM_PROTECTED_POOL;
    bool protected_block = (r->tag & PSIM_PROTECTED_POOL) != 0;
    bool violation = true;
    if (r->state == PSIM_LIVE && allocator_of(r) != kind) /* freed by another allocator's routine */
        kind == RT_MM_CONTIG ? poolsim__bc_make(&bc, 0xC2, 0x60, a, 0, 0)
        : verifier(ps)       ? poolsim__bc_make(&bc, 0xC4, 0x16, 0, a, 0)
                             : poolsim__bc_make(&bc, 0xC2, 0x99, a, 0, 0);
    else if (r->state == PSIM_LIVE && kind == RT_MM_NONCACHED && size_given != r->size) /* size must match */
        verifier(ps) ? poolsim__bc_make(&bc, 0xC4, 0x13F, a, size_given, 0)
                     : poolsim__bc_make(&bc, 0xC2, 0x99, a, 0, 0);
    else if (r->state == PSIM_LIVE && (r->flags & PSIM_REC_LIST) &&
             (list = poolsim__lookaside_inside(ps, w.user, w.user + (uintptr_t)r->size)) != NULL)
        poolsim__bc_make(&bc, 0xC4, 0xCC, (uintptr_t)list, a,
                         (uintptr_t)r->size);                          /* §3: a live list inside */
    else if (r->state != PSIM_LIVE && w.page->kind == PSIM_PG_SPECIAL) /* §1.3: its page is not allocated */
        poolsim__bc_make(&bc, 0xC1, a, 0, 0, 0x20);
    else if (r->state != PSIM_LIVE) /* §2.7 double free */
        double_free_bc(ps, &w, a, &bc);
    else if (kind == RT_MM_NONCACHED && irql > PSIM_IRQL_APC)
        poolsim__bc_make(&bc, 0xC4, 0x20019, (uintptr_t)rule_mm_apc, irql, a);
    else if (irql > (pool ? PSIM_IRQL_APC : PSIM_IRQL_DISPATCH) && w.page->kind == PSIM_PG_SPECIAL)
        poolsim__bc_make(&bc, 0xC1, irql, r->pool_type, a, 0x31);
    else if (irql > (pool ? PSIM_IRQL_APC : PSIM_IRQL_DISPATCH))
        verifier(ps) ? poolsim__bc_make(&bc, 0xC4, pool ? 0x11 : 0x12, irql, r->pool_type, a)
                     : poolsim__bc_make(&bc, 0xC2, 0x09, irql, r->pool_type, a);
    else if (given != have &&
             (protected_block || (tag != 0 && ps->opt.tag_check == POOLSIM_TAG_CHECK_STRICT)))
        poolsim__bc_make(&bc, 0xC2, 0x0A, a, r->tag, tag); /* §2.6: a PROTECTED_POOL block needs its tag */
    else if (poolsim__damage_violation(ps, &w, 0, &bc))
        ;
    else
        violation = false;
    if (violation) {
        if (!bc.has_block)
            poolsim__bc_block(ps, &bc, &w, r);
        poolsim__unlock(ps, w.page);
        poolsim__bc_site(&bc, file, line, rt);
        poolsim__bc_deliver(ps, &bc);
        return;
    }
    uint64_t n = r->size;
    uint32_t rtag = r->tag, site = r->alloc_site;
    r->free_seq = seq_next(ps, r->alloc_seq);
    r->free_site = poolsim__site_cached(ps, poolsim__shard(ps, w.page), file, line, rt, rtag);
    r->free_rt = (uint8_t)rt;
    unsigned shard = w.page->shard;
    psim_shard *sh = poolsim__shard(ps, w.page);
    poolsim__count_free(ps, shard, rtag, pool, site, n);
    /* A special-pool page is its own quarantine: no-access until its slot is reused. */
    if (w.page->kind != PSIM_PG_SPECIAL && quarantine(ps, &w))
        r->state = PSIM_QUARANTINED;
    else {
        r->state = PSIM_RELEASED;
        poolsim__block_release(ps, &w);
    }
    bool trim = sh->qcount > ps->opt.quarantine_blocks || sh->qbytes > ps->opt.quarantine_bytes;
    poolsim__unlock(ps, w.page);
    if (ps->opt.print_frees) {
        char t[5];
        poolsim__tag_text(rtag, t);
        poolsim__outf("poolsim: free %p size %llu tag %s at %s:%d (%s)\n", p, (unsigned long long)n, t,
                      file ? file : "?", line, poolsim_routine_name(rt));
    }
    if (trim)
        poolsim__quarantine_trim(ps, shard, ps->opt.quarantine_bytes, ps->opt.quarantine_blocks, file, line,
                                 rt);
}

void poolsim_pool_free(poolsim_routine rt, void *p, uint32_t tag, const poolsim_ext_param *ext,
                       uint32_t ext_count, const char *file, int line)
{
    if ((unsigned)rt >= POOLSIM_RT_COUNT || (routines[rt].flags & (RT_FREE | RT_MM)) != RT_FREE)
        rt = POOLSIM_RT_EX_FREE_POOL;
    free_block(rt, p, tag, ext, ext_count, SIZE_MAX, file, line);
}

void poolsim_mm_free(poolsim_routine rt, void *p, size_t size, const char *file, int line)
{
    if ((unsigned)rt >= POOLSIM_RT_COUNT || !(routines[rt].flags & RT_FREE) || !(routines[rt].flags & RT_MM))
        rt = POOLSIM_RT_MM_FREE_CONTIGUOUS_MEMORY;
    free_block(rt, p, 0, NULL, 0, size, file, line);
}

/* ---- ExQueryPoolBlockSize ------------------------------------------------ */

size_t poolsim_pool_block_size(const void *p, bool *quota_charged, const char *file, int line)
{
    const poolsim_routine rt = POOLSIM_RT_EX_QUERY_POOL_BLOCK_SIZE;
    psim *ps = poolsim__g;
    bool ignored;
    if (!quota_charged)
        quota_charged = &ignored;
    *quota_charged = false;
    if (!ps) {
        not_initialized(rt, file, line);
        return 0;
    }
    psim_where w;
    poolsim_bugcheck bc;
    bool ok = lookup_block(ps, (uintptr_t)p, &w, &bc, false);
    if (ok && (w.rec->state != PSIM_LIVE || allocator_of(w.rec))) { /* a freed block, or Mm memory */
        verifier(ps) ? poolsim__bc_make(&bc, 0xC4, 0x16, 0, (uintptr_t)p, 0)
                     : poolsim__bc_make(&bc, 0xC2, 0x99, (uintptr_t)p, 0, 0);
        poolsim__bc_block(ps, &bc, &w, w.rec);
        poolsim__unlock(ps, w.page);
        ok = false;
    }
    if (!ok) {
        poolsim__bc_site(&bc, file, line, rt);
        poolsim__bc_deliver(ps, &bc);
        return 0;
    }
    uint64_t n = w.rec->size;
    bool big = w.page->kind == PSIM_PG_BIG;
    *quota_charged = (w.rec->flags & PSIM_REC_QUOTA) != 0;
    poolsim__unlock(ps, w.page);
    /* §7: small blocks report whole granules; big blocks whole pages. */
    return big ? (size_t)psim_align_up((uintptr_t)n, PSIM_PAGE)
               : (size_t)psim_align_up(n ? (uintptr_t)n : 1, PSIM_GRAN);
}
