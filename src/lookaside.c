/* SPDX-License-Identifier: MIT */
/*
 * lookaside.c — ExInitialize*LookasideList* and friends (wdk-semantics.md §3).
 *
 * A list is LIFO: the last entry freed is the next one allocated. When it is
 * empty, an allocation calls the driver's Allocate routine or the pool with
 * the list's tag; when it holds `depth` entries, a free calls Free or the
 * pool. Entries are ordinary pool blocks of the list's size and tag, so they
 * are counted, guarded and leak-checked like any block.
 *
 * Everything poolsim knows of a list is out of band: the driver's struct
 * holds only a handle whose check word ties it to its record, so a list that
 * was never initialised, was deleted, or was overwritten is recognised (and
 * a cached entry's bytes are never read, unlike the kernel's in-band SLIST).
 * Verifier's checks: C4/0xCA re-initialising a live list, 0xCB using one that
 * is not initialised (documented for delete; poolsim reports every use),
 * 0xCC freeing pool that holds a live list, 0xCD a block size below a pointer.
 */
#include "core.h"

#if defined(_WIN32) && !defined(_WIN64)
#define PSIM_NTAPI __stdcall
#else
#define PSIM_NTAPI
#endif

typedef void *(PSIM_NTAPI *lal_alloc_fn)(int pool_type, size_t size, uint32_t tag);
typedef void(PSIM_NTAPI *lal_free_fn)(void *entry);
typedef void *(PSIM_NTAPI *lal_alloc_ex_fn)(int pool_type, size_t size, uint32_t tag, void *list);
typedef void(PSIM_NTAPI *lal_free_ex_fn)(void *entry, void *list);

#define LAL_MAX_DEPTH 256u /* EX_MAXIMUM_LOOKASIDE_DEPTH_BASE */
#define LAL_RAISE_ON_FAIL 0x1u
#define LAL_FAIL_NO_RAISE 0x2u

struct psim_lal {
    poolsim_lookaside *handle;
    poolsim__prim_lock lock; /* guards the cache */
    poolsim_lookaside_params p;
    uint64_t alloc_type; /* pool type with the raise / no-raise bits of the flags */
    uintptr_t block;     /* the pool block holding the list's struct, or 0 */
    uint32_t count;
    void *cache[LAL_MAX_DEPTH];
};

static const char *const kind_names[3][5] = {
    {"ExInitializeNPagedLookasideList", "ExAllocateFromNPagedLookasideList", "ExFreeToNPagedLookasideList",
     "ExDeleteNPagedLookasideList", "ExFlushLookasideListEx"},
    {"ExInitializePagedLookasideList", "ExAllocateFromPagedLookasideList", "ExFreeToPagedLookasideList",
     "ExDeletePagedLookasideList", "ExFlushLookasideListEx"},
    {"ExInitializeLookasideListEx", "ExAllocateFromLookasideListEx", "ExFreeToLookasideListEx",
     "ExDeleteLookasideListEx", "ExFlushLookasideListEx"},
};

enum { OP_INIT, OP_ALLOC, OP_FREE, OP_DELETE, OP_FLUSH };

static const char *routine_of(unsigned kind, unsigned op) { return kind_names[kind < 3 ? kind : 0][op]; }

static uint64_t handle_check(const psim *ps, const poolsim_lookaside *l, uint32_t index)
{
    uint64_t x =
        ps->secret ^ ((uint64_t)(uintptr_t)l * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)index << 32 | 0x4C414Cu);
    return x ? x : 1; /* never 0: zeroed memory is not a list */
}

/* The record of a handle, or NULL (and C4/0xCB reported) when it does not check out. */
static struct psim_lal *lal_of(psim *ps, poolsim_lookaside *l, unsigned op, unsigned kind, const char *file,
                               int line)
{
    struct psim_lal *e = NULL;
    if (l) {
        poolsim__prim_lock_acquire(&ps->lal_lock);
        uint32_t i = l->index;
        if (ps->lals && i < POOLSIM_LOOKASIDE_CAPACITY && ps->lals[i] && ps->lals[i]->handle == l &&
            l->check == handle_check(ps, l, i))
            e = ps->lals[i];
        poolsim__prim_lock_release(&ps->lal_lock);
    }
    if (!e)
        poolsim_bugcheck_raise(0xC4, 0xCB, (uintptr_t)l, 0, 0, file, line, routine_of(kind, op));
    return e;
}

/* §3: paged lists <= APC_LEVEL, the others <= DISPATCH_LEVEL, for every routine; reported with the pool's
 * codes: an initialisation or allocation as an allocation (Arg4 the entry size), a free, flush or delete as a
 * free (Arg4 the entry, or the list for a flush or delete). `type` is the list's pool type. */
static bool irql_ok(psim *ps, unsigned kind, uint64_t type, unsigned op, uintptr_t what, const char *file,
                    int line)
{
    uint8_t irql = poolsim__prim_irql_get();
    bool paged = kind == POOLSIM_LOOKASIDE_PAGED || (type & PSIM_PT_PAGED);
    if (irql <= (paged ? PSIM_IRQL_APC : PSIM_IRQL_DISPATCH))
        return true;
    bool verifier = ps->opt.family == POOLSIM_FAMILY_VERIFIER, alloc = op == OP_INIT || op == OP_ALLOC;
    unsigned long sub = alloc ? (paged ? 0x01 : 0x02) : (paged ? 0x11 : 0x12);
    /* The pool type as the pool routines show it. */
    uintptr_t shown = (uintptr_t)(psim_pool_type_base(type) & 0xFFFFu);
    verifier ? poolsim_bugcheck_raise(0xC4, sub, irql, shown, what, file, line, kind_names[kind][op])
             : poolsim_bugcheck_raise(0xC2, alloc ? 0x08 : 0x09, irql, shown, what, file, line,
                                      kind_names[kind][op]);
    return false;
}

/* ---- Backing allocations ----------------------------------------------------------- */

static void *backing_alloc(struct psim_lal *e, int32_t *raise_status, const char *file, int line)
{
    if (e->p.allocate) {
        if (e->p.kind == POOLSIM_LOOKASIDE_EX)
            return ((lal_alloc_ex_fn)e->p.allocate)((int)e->alloc_type, e->p.size, e->p.tag, e->p.owner);
        return ((lal_alloc_fn)e->p.allocate)((int)e->alloc_type, e->p.size, e->p.tag);
    }
    poolsim_alloc_req req;
    psim_memset(&req, 0, sizeof req);
    req.routine = POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG;
    req.type = e->alloc_type;
    req.size = e->p.size;
    req.tag = e->p.tag;
    return poolsim_pool_alloc(&req, raise_status, file, line);
}

static void backing_free(struct psim_lal *e, void *entry, const char *file, int line)
{
    if (e->p.free) {
        if (e->p.kind == POOLSIM_LOOKASIDE_EX)
            ((lal_free_ex_fn)e->p.free)(entry, e->p.owner);
        else
            ((lal_free_fn)e->p.free)(entry);
        return;
    }
    poolsim_pool_free(POOLSIM_RT_EX_FREE_POOL, entry, 0, NULL, 0, file, line);
}

/* Frees every cached entry (delete, flush). */
static void drain(struct psim_lal *e, const char *file, int line)
{
    for (;;) {
        poolsim__prim_lock_acquire(&e->lock);
        void *entry = e->count ? e->cache[--e->count] : NULL;
        poolsim__prim_lock_release(&e->lock);
        if (!entry)
            return;
        backing_free(e, entry, file, line);
    }
}

/* ---- The routines ------------------------------------------------------------------- */

int32_t poolsim_lookaside_init(poolsim_lookaside *l, const poolsim_lookaside_params *params, const char *file,
                               int line)
{
    psim *ps = poolsim__g;
    if (!ps || !l || !params || params->kind > POOLSIM_LOOKASIDE_EX) {
        poolsim__outf("poolsim: %s:%d: lookaside list initialised %s\n", file ? file : "?", line,
                      ps ? "without a list or parameters" : "while poolsim is not initialised");
        return (int32_t)0xC000000Du; /* STATUS_INVALID_PARAMETER */
    }
    const char *routine = kind_names[params->kind][OP_INIT];
    poolsim_lookaside_params p = *params;
    uint64_t type = p.pool_type;
    if (p.kind == POOLSIM_LOOKASIDE_EX) {
        /* ExInitializeLookasideListEx validates its arguments (§3). */
        if (!poolsim__pool_type_valid(type))
            return (int32_t)0xC00000F2u; /* STATUS_INVALID_PARAMETER_4 */
        if ((p.flags & ~(LAL_RAISE_ON_FAIL | LAL_FAIL_NO_RAISE)) ||
            (p.flags & (LAL_RAISE_ON_FAIL | LAL_FAIL_NO_RAISE)) == (LAL_RAISE_ON_FAIL | LAL_FAIL_NO_RAISE))
            return (int32_t)0xC00000F3u; /* STATUS_INVALID_PARAMETER_5 */
        type |= (p.flags & LAL_RAISE_ON_FAIL) ? PSIM_PT_RAISE : 0;
        type |= (p.flags & LAL_FAIL_NO_RAISE) ? PSIM_PT_QUOTA_FAIL : 0;
    } else {
        /* NPaged: POOL_RAISE_IF_ALLOCATION_FAILURE and POOL_NX_ALLOCATION; paged: the raise bit. */
        type = p.kind == POOLSIM_LOOKASIDE_PAGED ? PSIM_PT_PAGED : (p.flags & PSIM_PT_NX);
        type |= p.flags & PSIM_PT_RAISE;
    }
    irql_ok(ps, p.kind, type, OP_INIT, p.size, file, line); /* reported, and the list is made all the same */
    if (p.size < sizeof(void *)) { /* §3: LOOKASIDE_MINIMUM_BLOCK_SIZE */
        poolsim_bugcheck_raise(0xC4, 0xCD, (uintptr_t)l, p.size, sizeof(void *), file, line, routine);
        p.size = sizeof(void *);
    }
    p.depth = (uint16_t)(p.depth && p.depth < LAL_MAX_DEPTH ? p.depth : LAL_MAX_DEPTH);
    if (!p.owner)
        p.owner = l;

    /* Where does the list itself live? Pool holding it must not be freed while it is live (0xCC). */
    poolsim_block_info holder;
    bool in_pool = poolsim_find_block(l, &holder) && holder.state == POOLSIM_BLOCK_LIVE;

    /* A live list at this address? Found by a search of the records, not by reading the handle: a list
     * being initialised is usually uninitialised memory (a local), and only a record proves a list was made
     * here and not deleted. Its handle may have been overwritten since (zeroed, as a new list's would be):
     * the report puts it back, so the list keeps working as it was. */
    poolsim__prim_lock_acquire(&ps->lal_lock);
    bool again = false;
    for (uint32_t i = 0; ps->lals && i < POOLSIM_LOOKASIDE_CAPACITY && !again; i++) {
        again = ps->lals[i] && ps->lals[i]->handle == l;
        if (again) {
            l->index = i;
            l->check = handle_check(ps, l, i);
        }
    }
    uint32_t slot = POOLSIM_LOOKASIDE_CAPACITY;
    struct psim_lal *e = NULL;
    if (!again) {
        if (!ps->lals)
            ps->lals =
                (struct psim_lal **)poolsim__meta_alloc(ps, POOLSIM_LOOKASIDE_CAPACITY * sizeof(void *));
        for (slot = 0; ps->lals && slot < POOLSIM_LOOKASIDE_CAPACITY && ps->lals[slot]; slot++) {
        }
        if (ps->lals && slot < POOLSIM_LOOKASIDE_CAPACITY)
            e = (struct psim_lal *)poolsim__meta_alloc(ps, sizeof *e);
        if (e) {
            e->handle = l;
            e->p = p;
            e->alloc_type = type;
            e->block = in_pool ? (uintptr_t)holder.address : 0;
            poolsim__prim_lock_init(&e->lock);
            ps->lals[slot] = e;
            l->index = slot;
            l->check = handle_check(ps, l, slot);
            l->reserved = 0;
        }
    }
    poolsim__prim_lock_release(&ps->lal_lock);
    if (again) { /* §1.1 C4/0xCA; the list stays as it was */
        poolsim_bugcheck_raise(0xC4, 0xCA, (uintptr_t)l, 0, 0, file, line, routine);
        return 0;
    }
    if (!e) {
        poolsim__outf("poolsim: %s:%d: %s: no room for more than %u live lookaside lists\n",
                      file ? file : "?", line, routine, POOLSIM_LOOKASIDE_CAPACITY);
        return (int32_t)0xC000009Au; /* STATUS_INSUFFICIENT_RESOURCES */
    }
    if (in_pool)
        poolsim__mark_list_holder(ps, (uintptr_t)holder.address);
    return 0;
}

void *poolsim_lookaside_alloc(poolsim_lookaside *l, unsigned kind, int32_t *raise_status, const char *file,
                              int line)
{
    psim *ps = poolsim__g;
    int32_t ignored;
    if (!raise_status)
        raise_status = &ignored;
    *raise_status = 0;
    if (!ps) {
        poolsim__not_initialised(routine_of(kind, OP_ALLOC), file, line);
        return NULL;
    }
    struct psim_lal *e = lal_of(ps, l, OP_ALLOC, kind, file, line);
    if (!e || !irql_ok(ps, e->p.kind, e->alloc_type, OP_ALLOC, e->p.size, file, line))
        return NULL;
    void *entry = NULL;
    poolsim__prim_lock_acquire(&e->lock);
    if (e->count && !ps->opt.lookaside_debug)
        entry = e->cache[--e->count];
    poolsim__prim_lock_release(&e->lock);
    return entry ? entry : backing_alloc(e, raise_status, file, line);
}

void poolsim_lookaside_free(poolsim_lookaside *l, unsigned kind, void *entry, const char *file, int line)
{
    psim *ps = poolsim__g;
    if (!ps) {
        poolsim__not_initialised(routine_of(kind, OP_FREE), file, line);
        return;
    }
    struct psim_lal *e = lal_of(ps, l, OP_FREE, kind, file, line);
    if (!e || !irql_ok(ps, e->p.kind, e->alloc_type, OP_FREE, (uintptr_t)entry, file, line))
        return;
    /* Entries the pool made must be live blocks: a bad or twice-freed entry is
     * reported like a bad pool free instead of poisoning the list. */
    poolsim_bugcheck bc;
    if ((!e->p.allocate || !entry) && !poolsim__check_live(ps, (uintptr_t)entry, &bc)) {
        poolsim__bc_site(&bc, file, line, POOLSIM_RT_EX_FREE_TO_LOOKASIDE_LIST);
        bc.site.routine = kind_names[e->p.kind][OP_FREE];
        poolsim__bc_deliver(ps, &bc);
        return;
    }
    bool cached = false, twice = false;
    poolsim__prim_lock_acquire(&e->lock);
    for (uint32_t i = 0; i < e->count; i++)
        twice |= e->cache[i] == entry;
    if (!twice && e->count < e->p.depth && !ps->opt.lookaside_debug) {
        e->cache[e->count++] = entry;
        cached = true;
    }
    poolsim__prim_lock_release(&e->lock);
    if (twice) { /* an entry freed to the list twice: a double free */
        bool verifier = ps->opt.family == POOLSIM_FAMILY_VERIFIER;
        verifier ? poolsim_bugcheck_raise(0xC4, 0x13, 0, (uintptr_t)entry - PSIM_GRAN, 0, file, line,
                                          kind_names[e->p.kind][OP_FREE])
                 : poolsim_bugcheck_raise(0xC2, 0x07, e->p.tag, 0, (uintptr_t)entry, file, line,
                                          kind_names[e->p.kind][OP_FREE]);
        return;
    }
    if (!cached)
        backing_free(e, entry, file, line);
}

void poolsim_lookaside_flush(poolsim_lookaside *l, unsigned kind, const char *file, int line)
{
    psim *ps = poolsim__g;
    if (!ps)
        poolsim__not_initialised(routine_of(kind, OP_FLUSH), file, line);
    struct psim_lal *e = ps ? lal_of(ps, l, OP_FLUSH, kind, file, line) : NULL;
    if (e && irql_ok(ps, e->p.kind, e->alloc_type, OP_FLUSH, (uintptr_t)l, file, line))
        drain(e, file, line);
}

void poolsim_lookaside_delete(poolsim_lookaside *l, unsigned kind, const char *file, int line)
{
    psim *ps = poolsim__g;
    if (!ps)
        poolsim__not_initialised(routine_of(kind, OP_DELETE), file, line);
    struct psim_lal *e = ps ? lal_of(ps, l, OP_DELETE, kind, file, line) : NULL;
    if (!e || !irql_ok(ps, e->p.kind, e->alloc_type, OP_DELETE, (uintptr_t)l, file, line))
        return; /* reported: the list stays live, its entries cached */
    drain(e, file, line);
    poolsim__prim_lock_acquire(&ps->lal_lock);
    ps->lals[l->index] = NULL;
    l->check = 0;
    poolsim__prim_lock_release(&ps->lal_lock);
    poolsim__prim_lock_destroy(&e->lock);
    poolsim__meta_free(ps, e, sizeof *e);
}

/* ---- For the pool's free path and teardown ---------------------------------------------- */

poolsim_lookaside *poolsim__lookaside_inside(psim *ps, uintptr_t from, uintptr_t to)
{
    poolsim_lookaside *found = NULL;
    poolsim__prim_lock_acquire(&ps->lal_lock);
    for (uint32_t i = 0; ps->lals && i < POOLSIM_LOOKASIDE_CAPACITY && !found; i++) {
        uintptr_t h = ps->lals[i] ? (uintptr_t)ps->lals[i]->handle : 0;
        if (h >= from && h < to)
            found = ps->lals[i]->handle;
    }
    poolsim__prim_lock_release(&ps->lal_lock);
    return found;
}

void poolsim__lookaside_fini(psim *ps)
{
    for (uint32_t i = 0; ps->lals && i < POOLSIM_LOOKASIDE_CAPACITY; i++) {
        if (ps->lals[i]) {
            poolsim__prim_lock_destroy(&ps->lals[i]->lock);
            poolsim__meta_free(ps, ps->lals[i], sizeof(struct psim_lal));
        }
    }
    poolsim__meta_free(ps, ps->lals, POOLSIM_LOOKASIDE_CAPACITY * sizeof(void *));
    ps->lals = NULL;
    poolsim__prim_lock_destroy(&ps->lal_lock);
}
