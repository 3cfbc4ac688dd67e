/* SPDX-License-Identifier: MIT */
/*
 * poolsim.c — the default instance: init, shutdown and the query API.
 *
 * poolsim_init and poolsim_shutdown must not race with other poolsim calls
 * (call them from the test's setup and teardown, or DriverEntry and
 * DriverUnload); everything else is thread-safe.
 */
#include "core.h"

psim *poolsim__g;

static const char no_memory[] =
    "poolsim: poolsim_init: the platform gave no memory for poolsim's own tables; "
    "poolsim is not initialised\n";

int poolsim_init(const poolsim_options *opts)
{
    if (poolsim__g) {
        poolsim__out("poolsim: poolsim_init called twice; the second call is ignored (call poolsim_shutdown "
                     "first)\n");
        return POOLSIM_E_ALREADY;
    }
    poolsim_options o;
    if (opts) {
        o = *opts;
    } else {
        poolsim_options_default(&o);
        poolsim_options_from_env(&o);
    }
    const char *bad = poolsim__options_check(&o);
    if (bad) {
        poolsim__outf("poolsim: poolsim_init: option %s is out of range\n", bad);
        return POOLSIM_E_OPTION;
    }
    psim *ps = (psim *)poolsim__prim_meta_alloc(sizeof *ps);
    if (!ps) {
        poolsim__out(no_memory);
        return POOLSIM_E_NOMEM;
    }
    ps->opt = o;
    ps->secret = poolsim__prim_entropy() | 1u;
    ps->meta_bytes = sizeof *ps;
    poolsim__fault_init(ps);
    poolsim__special_init(ps);
    poolsim__prim_lock_init(&ps->lal_lock);
    if (!poolsim__tracker_init(ps) || !poolsim__tags_init(ps)) {
        poolsim__lookaside_fini(ps);
        poolsim__fault_fini(ps);
        poolsim__tags_fini(ps);
        poolsim__tracker_fini(ps);
        poolsim__special_fini(ps);
        poolsim__prim_meta_free(ps, sizeof *ps);
        poolsim__out(no_memory);
        return POOLSIM_E_NOMEM;
    }
    poolsim__bc_configure(&o);
#ifdef POOLSIM__THREAD_TLS
    psim_atomic_store32(&poolsim__irql_watch, o.force_irql ? 1u : 0u); /* wdm.h's inline raise looks */
#endif
    psim_atomic_store_ptr((void **)&poolsim__g, ps);
    return POOLSIM_OK;
}

bool poolsim_initialized(void) { return psim_atomic_load_ptr((void *const *)&poolsim__g) != NULL; }

size_t poolsim_shutdown(void)
{
    psim *ps = poolsim__g;
    if (!ps)
        return 0;
    poolsim_validate(); /* corruption of live blocks, writes into quarantined ones */
    poolsim__bc_summary();
    uint64_t allocs, frees, live;
    poolsim__totals(ps, &allocs, &frees, &live);
    uint64_t paged = poolsim__pool_bytes(ps, 1), nonpaged = poolsim__pool_bytes(ps, 0);
    bool report = live && ps->opt.leak_check;
    uint32_t code = ps->opt.leak_code;
    const char *driver = ps->opt.driver_name;
    if (report)
        poolsim__report_leaks(ps, live, paged + nonpaged);
#ifdef POOLSIM__THREAD_TLS
    psim_atomic_store32(&poolsim__irql_watch, 0);
#endif
    poolsim__g = NULL;
    poolsim__lookaside_fini(ps);
    poolsim__fault_fini(ps);
    poolsim__tags_fini(ps);
    poolsim__tracker_fini(ps);
    poolsim__special_fini(ps);
    poolsim__prim_meta_free(ps, sizeof *ps);
    if (report) {
        /* Raised after everything is released, so a handler may longjmp. §1.1, §5.2 */
        poolsim_bugcheck bc;
        if (code == 0x60)
            poolsim__bc_make(&bc, 0xC4, 0x60, (uintptr_t)paged, (uintptr_t)nonpaged, (uintptr_t)live);
        else
            poolsim__bc_make(&bc, 0xC4, 0x62, (uintptr_t)driver, 0, (uintptr_t)live);
        bc.site.routine = "poolsim_shutdown";
        poolsim__bc_deliver(NULL, &bc);
    }
    return (size_t)live;
}

/* ---- Queries ------------------------------------------------------------- */

/* Locates addr; true with the shard locked when it lies in a slot or run. */
static bool locate_any(psim *ps, const void *addr, psim_where *w)
{
    psim_page *pg = addr ? poolsim__page_of(ps, (uintptr_t)addr) : NULL;
    if (!pg)
        return false;
    poolsim__prim_lock_acquire(&poolsim__shard(ps, pg)->lock);
    if (poolsim__locate(pg, (uintptr_t)addr, w))
        return true;
    poolsim__unlock(ps, pg);
    return false;
}

bool poolsim_valid_access(const void *p, size_t n)
{
    psim *ps = poolsim__g;
    psim_where w;
    if (!ps || !locate_any(ps, p, &w))
        return false;
    uintptr_t a = (uintptr_t)p;
    uint64_t size = w.rec->size;
    bool ok = w.rec->state == PSIM_LIVE && a >= w.user && a - w.user <= size && n <= size - (a - w.user);
    poolsim__unlock(ps, w.page);
    return ok;
}

bool poolsim_find_block(const void *p, poolsim_block_info *out)
{
    psim *ps = poolsim__g;
    psim_where w;
    if (out)
        psim_memset(out, 0, sizeof *out);
    if (!ps || !locate_any(ps, p, &w))
        return false;
    bool ok = w.rec->state != PSIM_FREE;
    if (ok && out)
        poolsim__block_info(ps, &w, w.rec, out);
    poolsim__unlock(ps, w.page);
    return ok;
}

size_t poolsim_validate(void)
{
    psim *ps = poolsim__g;
    size_t bad = 0;
    if (!ps)
        return 0;
    psim_iter it = {0};
    psim_where w;
    while (poolsim__iter_next(ps, &it, PSIM_ST(PSIM_LIVE) | PSIM_ST(PSIM_QUARANTINED), &w)) {
        poolsim_bugcheck bc;
        bool broken = poolsim__damage_violation(ps, &w, 0, &bc);
        poolsim__unlock(ps, w.page);
        if (broken) {
            bad++;
            bc.site.routine = "poolsim_validate";
            poolsim__bc_deliver(ps, &bc);
        }
    }
    return bad;
}

bool poolsim_tag_usage(unsigned long tag, poolsim_tag_usage_t *out)
{
    psim *ps = poolsim__g;
    if (!out)
        return false;
    psim_memset(out, 0, sizeof *out);
    const psim_tagent *e = ps ? poolsim__tag_find(ps, (uint32_t)tag) : NULL;
    if (!e)
        return false;
    poolsim__tag_counters(e, 0, &out->nonpaged);
    poolsim__tag_counters(e, 1, &out->paged);
    if (!out->nonpaged.allocs && !out->paged.allocs && !out->nonpaged.failed && !out->paged.failed) {
        psim_memset(out, 0, sizeof *out); /* the overflow row before any tag overflowed */
        return false;
    }
    out->tag = e->tag;
    return true;
}

void poolsim_get_stats(poolsim_stats *out)
{
    psim *ps = poolsim__g;
    if (!out)
        return;
    psim_memset(out, 0, sizeof *out);
    out->bugchecks = poolsim_bugcheck_count();
    if (!ps)
        return;
    poolsim__totals(ps, &out->allocs, &out->frees, &out->live_blocks);
    out->failed = psim_atomic_load(&ps->tot.failed);
    out->peak_blocks = psim_atomic_load(&ps->tot.peak_live);
    if (out->peak_blocks < out->live_blocks) { /* as for tags: never below what is live now, and kept */
        poolsim__atomic_max(&ps->tot.peak_live, out->live_blocks);
        out->peak_blocks = out->live_blocks;
    }
    uint64_t *bytes[2] = {&out->nonpaged_bytes, &out->paged_bytes};
    uint64_t *peak[2] = {&out->peak_nonpaged_bytes, &out->peak_paged_bytes};
    for (unsigned pool = 0; pool < 2; pool++) { /* peaks as peak_blocks */
        *bytes[pool] = poolsim__pool_bytes(ps, pool);
        poolsim__atomic_max(&ps->tot.peak_bytes[pool], *bytes[pool]);
        *peak[pool] = psim_atomic_load(&ps->tot.peak_bytes[pool]);
    }
    out->tags = psim_atomic_load32(&ps->ntags);
    out->sites = psim_atomic_load32(&ps->nsites) - 1;
    out->meta_bytes = psim_atomic_load(&ps->meta_bytes);
    out->faults_injected = psim_atomic_load(&ps->fault.injected);
    out->arena_bytes = psim_atomic_load(&ps->arena_bytes);
    out->special_allocs = psim_atomic_load(&ps->special.allocs);
    out->special_fallback = psim_atomic_load(&ps->special.fallback);
}

uint64_t poolsim_sequence(void) { return poolsim__g ? poolsim__seq_now(poolsim__g) : 0; }

size_t poolsim_live_since(uint64_t since, poolsim_block_info *out, size_t max)
{
    psim *ps = poolsim__g;
    size_t n = 0;
    if (!ps)
        return 0;
    psim_iter it = {0};
    psim_where w = {0};
    while (poolsim__iter_next(ps, &it, PSIM_ST(PSIM_LIVE), &w)) {
        if (w.rec->alloc_seq > since) {
            if (out && n < max)
                poolsim__block_info(ps, &w, w.rec, &out[n]);
            n++;
        }
        poolsim__unlock(ps, w.page);
    }
    return n;
}

/* poolsim_irql and poolsim_set_irql live in irql.c with the rest of the IRQL model. */
