/* SPDX-License-Identifier: MIT */
/*
 * fault.c — failing allocations on purpose, to test a driver's error paths.
 *
 * Driver Verifier's Low Resources Simulation (wdk-semantics.md §5.4): fail
 * allocations with a probability in units of 1/10000, only for matching tags,
 * after a delay in allocations or milliseconds. SQLite's fail-the-Nth: fail
 * allocation N after configuring, once or from then on. And the per-site
 * failure the systematic sweep needs (§5.5): fail the first allocation made
 * at one file:line. Whether allocation k fails at random is a function of the
 * seed and k alone, so a run replays exactly for the same allocation order.
 * When nothing is configured the hot path costs one load and a branch.
 * Configure while no other thread allocates (test setup, DriverEntry).
 */
#include "core.h"

static void configure(psim *ps, const poolsim_fault_config *cfg)
{
    psim_fault *f = &ps->fault;
    poolsim__prim_lock_acquire(&f->lock);
    uint32_t trace = f->flags & PSIM_FAULT_TRACE;
    f->probability = cfg && cfg->probability < 10000u ? cfg->probability : cfg ? 10000u : 0u;
    f->tags[0] = '\0';
    for (size_t k = 0; cfg && cfg->tags && cfg->tags[k]; k++) { /* it fits (the callers check) */
        f->tags[k] = cfg->tags[k];
        f->tags[k + 1] = '\0';
    }
    f->delay_allocs = cfg ? cfg->delay_allocs : 0;
    f->delay_ns = !cfg ? 0 : cfg->delay_ms > UINT64_MAX / 1000000u ? UINT64_MAX : cfg->delay_ms * 1000000u;
    f->start_ns = poolsim__prim_now_ns();
    f->seed = cfg ? cfg->seed : 0;
    f->nth = cfg ? cfg->nth : 0;
    f->persistent = cfg && cfg->persistent;
    f->site_file = cfg && cfg->site_file ? cfg->site_file : NULL;
    f->site_line = cfg ? cfg->site_line : 0;
    psim_atomic_store(&f->site_done, 0);
    psim_atomic_store(&f->count, 0);
    bool on = f->probability || f->nth || f->site_file;
    psim_atomic_store32(&f->flags, trace | (on ? PSIM_FAULT_ON : 0u));
    poolsim__prim_lock_release(&f->lock);
}

void poolsim__fault_init(psim *ps)
{
    poolsim_fault_config cfg = {ps->opt.fault_probability,
                                ps->opt.fault_tags,
                                ps->opt.fault_delay_allocs,
                                ps->opt.fault_delay_ms,
                                ps->opt.fault_seed,
                                0,
                                false,
                                NULL,
                                0};
    poolsim__prim_lock_init(&ps->fault.lock);
    configure(ps, &cfg);
}

void poolsim__fault_fini(psim *ps) { poolsim__prim_lock_destroy(&ps->fault.lock); }

void poolsim_fault_configure(const poolsim_fault_config *cfg)
{
    if (!poolsim__g) {
        poolsim__outf(
            "poolsim: poolsim_fault_configure called while poolsim is not initialised (poolsim_init); "
            "the call does nothing\n");
    } else if (cfg && !poolsim__text_fits(cfg->tags, PSIM_FAULT_TAGS_MAX)) {
        /* Cut, a pattern could match more tags than asked ("...  *Qz?" cut to "*"): none is injected. */
        poolsim__outf("poolsim: poolsim_fault_configure: the tag list is longer than %u characters; fault "
                      "injection is off\n",
                      PSIM_FAULT_TAGS_MAX);
        configure(poolsim__g, NULL);
    } else {
        configure(poolsim__g, cfg);
    }
}

static void trace_add(psim_fault *f, const char *file, int line, const char *routine)
{
    if (!file)
        return;
    for (uint32_t i = 0; i < f->ntrace; i++)
        if (f->trace[i].line == line && f->trace[i].routine == routine &&
            poolsim__same_text(f->trace[i].file, file))
            return;
    if (f->ntrace < PSIM_TRACE_SITES) {
        /* Field by field, so the padding stays zeroed: a sweep child writes these to a pipe. */
        poolsim_site *s = &f->trace[f->ntrace++];
        s->file = file;
        s->line = line;
        s->routine = routine;
    }
}

bool poolsim__fault_decide(psim *ps, uint32_t tag, uint64_t n, uint32_t pool_type, const char *file, int line,
                           poolsim_routine rt)
{
    psim_fault *f = &ps->fault;
    uint32_t flags = psim_atomic_load32(&f->flags);
    if (flags & PSIM_FAULT_TRACE) {
        poolsim__prim_lock_acquire(&f->lock);
        trace_add(f, file, line, poolsim_routine_name(rt));
        poolsim__prim_lock_release(&f->lock);
    }
    if (!(flags & PSIM_FAULT_ON))
        return false;
    uint64_t k = psim_atomic_add(&f->count, 1);
    bool fire = f->nth && (k == f->nth || (f->persistent && k > f->nth));
    if (!fire && f->site_file && line == f->site_line && poolsim__same_text(file, f->site_file)) {
        uint64_t expected = 0;
        fire = psim_atomic_cas(&f->site_done, &expected, 1);
    }
    if (!fire && f->probability && k > f->delay_allocs &&
        (!f->delay_ns || poolsim__prim_now_ns() - f->start_ns >= f->delay_ns) &&
        poolsim__tag_match_list(tag, f->tags))
        fire = psim_mix64(f->seed ^ psim_mix64(k)) % 10000u < f->probability;
    if (!fire)
        return false;
    psim_atomic_add(&f->injected, 1);
    poolsim__prim_lock_acquire(&f->lock);
    poolsim_fault_record *r = &f->log[f->log_n++ % POOLSIM_FAULT_LOG];
    r->site.file = file;
    r->site.line = line;
    r->site.routine = poolsim_routine_name(rt);
    r->tag = tag;
    r->pool_type = pool_type;
    r->size = (size_t)n;
    r->index = k;
    poolsim__prim_lock_release(&f->lock);
    return true;
}

uint64_t poolsim_faults_injected(void)
{
    return poolsim__g ? psim_atomic_load(&poolsim__g->fault.injected) : 0;
}

size_t poolsim_fault_log(poolsim_fault_record *out, size_t max)
{
    psim *ps = poolsim__g;
    size_t n = 0;
    if (!ps || !out)
        return 0;
    psim_fault *f = &ps->fault;
    poolsim__prim_lock_acquire(&f->lock);
    uint32_t have = f->log_n < POOLSIM_FAULT_LOG ? f->log_n : POOLSIM_FAULT_LOG;
    for (; n < have && n < max; n++)
        out[n] = f->log[(f->log_n - 1 - n) % POOLSIM_FAULT_LOG];
    poolsim__prim_lock_release(&f->lock);
    return n;
}

void poolsim__fault_trace(psim *ps, bool on)
{
    psim_fault *f = &ps->fault;
    poolsim__prim_lock_acquire(&f->lock);
    f->ntrace = 0;
    psim_atomic_store32(&f->flags, (f->flags & ~PSIM_FAULT_TRACE) | (on ? PSIM_FAULT_TRACE : 0u));
    poolsim__prim_lock_release(&f->lock);
}

size_t poolsim__fault_traced(psim *ps, poolsim_site *out, size_t max)
{
    psim_fault *f = &ps->fault;
    size_t n = 0;
    poolsim__prim_lock_acquire(&f->lock);
    for (; n < f->ntrace && n < max; n++)
        out[n] = f->trace[n];
    poolsim__prim_lock_release(&f->lock);
    return n;
}
