/* SPDX-License-Identifier: MIT */
/*
 * forceirql.c — Force IRQL checking (wdk-semantics.md §5.3, §4.4, §1.6):
 * touching paged pool at DISPATCH_LEVEL or above is DRIVER_IRQL_NOT_LESS_OR_EQUAL
 * (0xD1), found at the instruction that does it.
 *
 * Windows trims all pageable memory whenever verified code raises to
 * DISPATCH_LEVEL, so the touch faults even when the page happened to be
 * resident. poolsim does the same with page protection: while any thread is
 * at DISPATCH_LEVEL or above, every chunk of paged pool is inaccessible. A
 * fault there (prim.h's trap) is then sorted:
 *   - from a thread at DISPATCH_LEVEL or above, outside poolsim: bug check
 *     0xD1 (address, IRQL, 0 read / 1 write / 8 execute, instruction) with
 *     the owning block and the thread's IRQL history; if the handler
 *     returns, the access proceeds as below;
 *   - from a thread at APC_LEVEL or below, or from poolsim itself (it holds
 *     a shard lock whenever it reads or writes block memory): legal. The page
 *     is opened, the one instruction runs single-stepped, and the page is
 *     closed again after it.
 * Costs and limits (docs/semantics.md, "Force IRQL checking"): the first
 * raise to DISPATCH_LEVEL and the last lower below it change the protection
 * of every paged chunk (one mprotect / VirtualProtect each); each legal
 * access to paged pool made while some thread is raised takes a fault, two
 * protection changes and a single step; while a legal access is being
 * stepped its page is open to every thread; chunks created while threads are
 * raised are protected at the next raise; system calls on protected pages
 * fail (EFAULT) instead of faulting.
 *
 * State: one word counts the threads at DISPATCH_LEVEL or above and carries
 * the "applied" bit; a small spin lock serialises protection changes and
 * the table of pages opened for single steps. A thread raising finds the bit
 * set in the result of its own increment, so it never runs ahead of the
 * protection: if the bit is clear it takes the lock and applies it. The last
 * thread to lower clears the bit (only if the count is still 0) before it
 * lifts the protection, so a thread raising meanwhile waits for the lock
 * and protects again. When the system refuses a protection change (the limit
 * on mappings), checking stops for the instance (g_fi_broken): every paged
 * chunk is opened, the bit stays clear while threads are still counted, and
 * each raise takes the lock to find nothing to do.
 */
#include "irql.h"

#if defined(__GNUC__) || defined(__clang__)
#define FI_RETURN_ADDRESS() ((uintptr_t)__builtin_extract_return_addr(__builtin_return_address(0)))
#elif defined(_MSC_VER)
#include <intrin.h>
#define FI_RETURN_ADDRESS() ((uintptr_t)_ReturnAddress())
#else
#define FI_RETURN_ADDRESS() ((uintptr_t)0)
#endif

#define FI_APPLIED ((uintptr_t)1 << 30)
#define FI_COUNT (FI_APPLIED - 1)
#define FI_OPEN_SLOTS 64u
#define FI_NEED (POOLSIM__CAP_PAGE_PROTECT | POOLSIM__CAP_FAULT_TRAP)

static uintptr_t g_fi;       /* threads at >= DISPATCH_LEVEL counted | FI_APPLIED */
static uintptr_t g_fi_lock;  /* guards everything below */
static void *g_fi_ps;        /* the instance whose paged chunks are protected (atomic reads) */
static uint64_t g_fi_secret; /* ... and its secret (atomic): a new instance may reuse the address */
static void *g_fi_head;      /* its chunk list's head when they were protected; older ones are too */
static uint32_t g_fi_caps;   /* poolsim__prim_caps() | 0x80000000, once read */
static bool g_fi_trap;       /* the trap was installed at the last apply */
static uint32_t g_fi_broken; /* atomic: a protection change was refused, checking stopped (1), and said (2) */
static struct {
    uintptr_t page;
    uint32_t refs; /* single steps that need it open */
} g_open[FI_OPEN_SLOTS];

static void fi_lock(void)
{
    for (unsigned spins = 0;; spins++) {
        uintptr_t free_word = 0;
        if (psim_word_load(&g_fi_lock) == 0 && psim_word_cas(&g_fi_lock, &free_word, 1))
            return;
        if (spins % 64u == 63u)
            poolsim__prim_yield();
        else
            psim_cpu_pause();
    }
}

static void fi_unlock(void) { psim_word_release(&g_fi_lock, 0); }

static bool fi_capable(void)
{
    uint32_t c = psim_atomic_load32(&g_fi_caps);
    if (!c) {
        c = poolsim__prim_caps() | 0x80000000u;
        psim_atomic_store32(&g_fi_caps, c);
    }
    return (c & FI_NEED) == FI_NEED;
}

static bool fi_same_instance(const psim *ps);

bool poolsim_force_irql_active(void)
{
    psim *ps = poolsim__g;
    return ps && ps->opt.force_irql && fi_capable() &&
           !(fi_same_instance(ps) && psim_atomic_load32(&g_fi_broken));
}

/* ---- Applying and lifting the protection (under the lock) ---------------- */

/* Sets the protection of the paged chunks from `from` up to (not including) `stop`. False when the
 * platform refused one (the others are still done). */
static bool fi_protect(psim_chunk *from, const psim_chunk *stop, unsigned prot)
{
    bool ok = true;
    for (psim_chunk *c = from; c && c != stop; c = c->next)
        if (c->pool == 1 &&
            !poolsim__prim_pages_protect((void *)c->base, (size_t)c->npages * PSIM_PAGE, prot))
            ok = false;
    return ok;
}

/* The paged chunk starting at `addr`, or NULL. */
static const psim_chunk *fi_paged_at(const psim_chunk *list, uintptr_t addr)
{
    for (const psim_chunk *c = list; c; c = c->next)
        if (c->pool == 1 && c->base == addr)
            return c;
    return NULL;
}

/* The platform refused a protection change (on Linux, at the limit on mappings, vm.max_map_count: a page
 * opened inside a closed chunk is two more): stops checking for this instance and lifts the protection
 * of every paged chunk. Closed chunks next to each other are one mapping, so each run of them is lifted
 * with one call, which needs no new mapping (a chunk alone would split the run). Under fi_lock; fault
 * context too (no output: the next fi_sync says it). */
static void fi_give_up(psim *ps)
{
    uintptr_t v = psim_word_load(&g_fi);
    while ((v & FI_APPLIED) && !psim_word_cas_full(&g_fi, &v, v & ~FI_APPLIED)) {
    }
    const psim_chunk *list = ps ? (const psim_chunk *)psim_atomic_load_ptr((void *const *)&ps->chunks) : NULL;
    for (const psim_chunk *c = list; c; c = c->next) {
        if (c->pool != 1)
            continue;
        bool first = true; /* no paged chunk ends where this one starts: a run starts here */
        for (const psim_chunk *d = list; d && first; d = d->next)
            first = !(d->pool == 1 && d->base + (uintptr_t)d->npages * PSIM_PAGE == c->base);
        if (!first)
            continue;
        uintptr_t end = c->base + (uintptr_t)c->npages * PSIM_PAGE;
        for (const psim_chunk *d; (d = fi_paged_at(list, end)) != NULL;)
            end += (uintptr_t)d->npages * PSIM_PAGE;
        poolsim__prim_pages_protect((void *)c->base, end - c->base, POOLSIM__PROT_RW);
    }
    psim_atomic_store_ptr(&g_fi_head, NULL);
    if (!psim_atomic_load32(&g_fi_broken))
        psim_atomic_store32(&g_fi_broken, 1);
}

static void fi_bit_set(void)
{
    uintptr_t v = psim_word_load(&g_fi);
    while (!(v & FI_APPLIED) && !psim_word_cas_full(&g_fi, &v, v | FI_APPLIED)) {
    }
}

static bool fi_same_instance(const psim *ps)
{
    return psim_atomic_load_ptr((void *const *)&g_fi_ps) == ps && ps &&
           ps->secret == psim_atomic_load(&g_fi_secret);
}

static unsigned fi_on_fault(const poolsim__prim_fault *f);
static void fi_on_report(const poolsim__prim_fault *f);
static void fi_on_step(void);

/* Brings the protection in line with the count of raised threads. */
static void fi_sync(psim *ps)
{
    fi_lock();
    if (!fi_same_instance(ps)) {
        /* Another instance (or none): the chunks protected before are gone with theirs. */
        uintptr_t v = psim_word_load(&g_fi);
        while ((v & FI_APPLIED) && !psim_word_cas_full(&g_fi, &v, v & ~FI_APPLIED)) {
        }
        psim_atomic_store_ptr(&g_fi_ps, ps);
        psim_atomic_store(&g_fi_secret, ps ? ps->secret : 0);
        psim_atomic_store_ptr(&g_fi_head, NULL);
        psim_memset(g_open, 0, sizeof g_open);
        psim_atomic_store32(&g_fi_broken, 0);
    }
    uintptr_t v = psim_word_load(&g_fi);
    if ((v & FI_COUNT) && ps && ps->opt.force_irql && fi_capable() && !psim_atomic_load32(&g_fi_broken)) {
        /* Each time: a test framework may have replaced the handlers since (prim.h). */
        if (!(v & FI_APPLIED) || !g_fi_trap)
            g_fi_trap = poolsim__prim_trap_install(fi_on_fault, fi_on_report, fi_on_step);
        if (g_fi_trap) {
            /* The chunks made since the last time (all of them the first time). */
            psim_chunk *head = (psim_chunk *)psim_atomic_load_ptr((void *const *)&ps->chunks);
            if (fi_protect(head, (const psim_chunk *)g_fi_head, POOLSIM__PROT_NONE)) {
                psim_atomic_store_ptr(&g_fi_head, head);
                fi_bit_set();
            } else {
                fi_give_up(ps);
            }
        }
    } else if (v == FI_APPLIED) {
        /* Nobody is raised: clear the bit first (only while the count is 0), then lift. */
        uintptr_t expected = FI_APPLIED;
        if (psim_word_cas_full(&g_fi, &expected, 0)) {
            if (!fi_protect((psim_chunk *)g_fi_head, NULL, POOLSIM__PROT_RW))
                fi_give_up(ps);
            psim_atomic_store_ptr(&g_fi_head, NULL);
        }
    }
    bool say = psim_atomic_load32(&g_fi_broken) == 1;
    if (say)
        psim_atomic_store32(&g_fi_broken, 2);
    fi_unlock();
    if (say) /* after the unlock: the output callback may raise */
        poolsim__out("poolsim: Force IRQL checking stopped: the system refused to change a page's protection "
                     "(on Linux, the limit on mappings: vm.max_map_count); paged pool stays accessible at "
                     "DISPATCH_LEVEL until the next poolsim_init\n");
}

void poolsim__fi_up(psim_thread *t)
{
    psim *ps = poolsim__g;
    if (!ps || !ps->opt.force_irql || !fi_capable())
        return;
    t->h.fi_counted = 1;
    uintptr_t v = psim_word_add(&g_fi, 1);
    if (!(v & FI_APPLIED) || !fi_same_instance(ps) ||
        psim_atomic_load_ptr((void *const *)&ps->chunks) != psim_atomic_load_ptr((void *const *)&g_fi_head))
        fi_sync(ps);
}

void poolsim__fi_down(psim_thread *t)
{
    if (!t->h.fi_counted)
        return;
    t->h.fi_counted = 0;
    if ((psim_word_add(&g_fi, -1) & FI_COUNT) == 0)
        fi_sync(poolsim__g);
}

/* ---- The trap (prim.h): fault context, async-signal-safe ------------------- */

/* Opens a page for the thread's pending single step. False when it stays closed. */
static bool fi_open(psim_thread *t, uintptr_t page)
{
    fi_lock();
    unsigned free_slot = FI_OPEN_SLOTS, k;
    for (k = 0; k < FI_OPEN_SLOTS; k++) {
        if (g_open[k].refs && g_open[k].page == page)
            break;
        if (!g_open[k].refs && free_slot == FI_OPEN_SLOTS)
            free_slot = k;
    }
    if (k == FI_OPEN_SLOTS && free_slot < FI_OPEN_SLOTS) {
        k = free_slot;
        g_open[k].page = page;
    }
    if (k < FI_OPEN_SLOTS)
        g_open[k].refs++;
    /* With the table full the page is opened unrecorded: it stays open until the protection is lifted. */
    bool open = poolsim__prim_pages_protect((void *)page, PSIM_PAGE, POOLSIM__PROT_RW);
    if (!open) {
        /* Paged pool: lifting all of the protection opens it, unless the system refuses that too (a
         * closed chunk merged with a no-access mapping of the program's own). A special-pool page the
         * system cannot open (a guard page, or a slot never used, next to others: a split) stays closed.
         * Either way the fault then goes to the handler before poolsim's rather than fault forever. */
        psim *ps = poolsim__g;
        psim_page *pg = ps ? poolsim__page_of(ps, page) : NULL;
        if (pg && !poolsim__is_special(pg)) {
            fi_give_up(ps);
            open = poolsim__prim_pages_protect((void *)page, PSIM_PAGE, POOLSIM__PROT_RW);
        }
    }
    if (open && t->nopen < PSIM_OPEN_MAX && k < FI_OPEN_SLOTS)
        t->open[t->nopen++] = page;
    else if (k < FI_OPEN_SLOTS)
        g_open[k].refs--; /* cannot close it later: leave it open (or it never opened) */
    fi_unlock();
    return open;
}

/* True when a page must be no-access once nobody steps through it: a
 * special-pool guard page, a special-pool page without a live block, or paged
 * pool while Force IRQL protection is applied. Under fi_lock. */
static bool fi_closed(const psim_page *pg, bool applied)
{
    if (pg->kind == PSIM_PG_SPECIAL_GUARD)
        return true;
    if (pg->kind == PSIM_PG_SPECIAL)
        return pg->nused == 0;
    return applied && pg->pool == 1;
}

/* The one fault dispatcher: special pool first, then Force IRQL. */
static unsigned fi_on_fault(const poolsim__prim_fault *f)
{
    psim *ps = poolsim__g;
    psim_page *pg = ps ? poolsim__page_of(ps, f->addr) : NULL;
    psim_thread *t = poolsim__thread();
    if (!pg || !t)
        return POOLSIM__TRAP_PASS; /* not poolsim's pool: not ours */
    if (poolsim__is_special(pg)) {
        /* A reported touch whose handler returned, or poolsim's own access: let it through. */
        if (t->fi_pass || poolsim__prim_locks_held())
            goto step;
        return POOLSIM__TRAP_REPORT;
    }
    if (pg->pool != 1)
        return POOLSIM__TRAP_PASS;
    if (t->h.irql >= PSIM_IRQL_DISPATCH && !t->fi_pass && poolsim__prim_locks_held() == 0)
        return POOLSIM__TRAP_REPORT;
step:
    return fi_open(t, f->addr & ~(uintptr_t)(PSIM_PAGE - 1)) ? POOLSIM__TRAP_STEP : POOLSIM__TRAP_PASS;
}

/* Closes again the pages the thread's pending single step opened. */
static void fi_close_step(psim_thread *t)
{
    psim *ps = poolsim__g;
    fi_lock();
    bool applied = (psim_word_load(&g_fi) & FI_APPLIED) != 0;
    for (uint32_t i = 0; i < t->nopen; i++) {
        uintptr_t page = t->open[i];
        for (unsigned k = 0; k < FI_OPEN_SLOTS; k++) {
            if (!g_open[k].refs || g_open[k].page != page)
                continue;
            if (--g_open[k].refs == 0 && ps) {
                psim_page *pg = poolsim__page_of(ps, page);
                if (pg && fi_closed(pg, applied))
                    poolsim__prim_pages_protect((void *)page, PSIM_PAGE, POOLSIM__PROT_NONE);
            }
            break;
        }
    }
    t->nopen = 0;
    fi_unlock();
}

static void fi_on_step(void)
{
    psim_thread *t = poolsim__thread();
    if (!t)
        return;
    t->fi_pass = 0;
    fi_close_step(t);
}

/* ---- Special pool's pages (special.c) ---------------------------------------------- */

bool poolsim__trap_arm(void)
{
    fi_lock();
    g_fi_trap = poolsim__prim_trap_install(fi_on_fault, fi_on_report, fi_on_step);
    fi_unlock();
    return g_fi_trap;
}

bool poolsim_trap_rearm(void)
{
    fi_lock();
    bool armed = g_fi_trap; /* only once special pool or Force IRQL checking has installed it */
    if (armed)
        g_fi_trap = armed = poolsim__prim_trap_install(fi_on_fault, fi_on_report, fi_on_step);
    fi_unlock();
    return armed;
}

bool poolsim__trap_page(psim_page *pg, bool open)
{
    fi_lock();
    bool ok = poolsim__prim_pages_protect((void *)pg->base, PSIM_PAGE,
                                          open ? POOLSIM__PROT_RW : POOLSIM__PROT_NONE);
    if (ok || !open)
        pg->nused = open ? 1u : 0u;
    fi_unlock();
    return ok;
}

/* 0xD5 for a touch of a freed (or never used) special-pool page, 0xD6 for a
 * touch of a guard page (§1.7: P1 the address, P2 0 read / 1 write, P3 the
 * code). The block named is the page's, or for a guard page the neighbour
 * the address is closer to, a live one first. */
static void fi_report_special(psim *ps, psim_page *pg, const poolsim__prim_fault *f)
{
    poolsim_bugcheck bc;
    psim_where w;
    psim_page *owner = pg;
    poolsim__bc_make(&bc, pg->kind == PSIM_PG_SPECIAL ? 0xD5 : 0xD6, f->addr, f->access & 1u, f->ip, 0);
    bc.site.routine = poolsim_irql_routine_name(POOLSIM_IRQL_RT_ACCESS);
    poolsim__prim_lock_acquire(&ps->shards[0].lock);
    if (pg->kind == PSIM_PG_SPECIAL_GUARD) {
        psim_chunk *c = ps->special.chunk;
        uint32_t i = (uint32_t)(pg - c->pages);
        psim_page *below = i > 0 ? pg - 1 : NULL, *above = i + 1 < c->npages ? pg + 1 : NULL;
        bool low_half = (f->addr & (PSIM_PAGE - 1)) < PSIM_PAGE / 2;
        psim_page *near = low_half && below ? below : above ? above : below;
        psim_page *far = near == below ? above : below;
        owner = far && far->nused && !near->nused ? far : near;
    }
    if (owner && poolsim__locate(owner, owner->base, &w) && w.rec->state != PSIM_FREE)
        poolsim__bc_block(ps, &bc, &w, w.rec);
    poolsim__prim_lock_release(&ps->shards[0].lock);
    poolsim__bc_deliver(ps, &bc);
}

/* ---- The report ------------------------------------------------------------------- */

/* 0xD1 for a touch of paged pool at `addr` by a raised thread (§1.6: P1 the
 * address, P2 the IRQL, P3 0 read / 1 write / 8 execute, P4 the code). Always
 * 0xD1, never 0xA: in a test every instruction is the driver's. */
static void fi_report(psim *ps, psim_thread *t, uintptr_t addr, unsigned access, uintptr_t ip,
                      poolsim_irql_routine rt)
{
    poolsim_bugcheck bc;
    poolsim__bc_make(&bc, 0xD1, addr, t ? t->h.irql : poolsim__prim_irql_get(), access, ip);
    bc.site.routine = poolsim_irql_routine_name(rt);
    psim_page *pg = poolsim__page_of(ps, addr);
    if (pg) {
        psim_where w;
        poolsim__prim_lock_acquire(&poolsim__shard(ps, pg)->lock);
        if (poolsim__locate(pg, addr, &w) && w.rec->state != PSIM_FREE)
            poolsim__bc_block(ps, &bc, &w, w.rec);
        poolsim__prim_lock_release(&poolsim__shard(ps, pg)->lock);
    }
    poolsim__bc_deliver(ps, &bc);
}

static void fi_on_report(const poolsim__prim_fault *f)
{
    psim_thread *t = poolsim__thread();
    psim *ps = poolsim__g;
    psim_page *pg = ps ? poolsim__page_of(ps, f->addr) : NULL;
    /* One instruction can take a legal fault (its page opened for a step) and then a reported one: a handler
     * that longjmps out of the report never ends that step, so close its pages first. If the handler returns,
     * the instruction runs again and opens what it needs. */
    if (t && t->nopen)
        fi_close_step(t);
    if (pg && poolsim__is_special(pg))
        fi_report_special(ps, pg, f);
    else if (ps)
        fi_report(ps, t, f->addr, f->access, f->ip, POOLSIM_IRQL_RT_ACCESS);
    /* The handler returned (report and continue): the access proceeds. */
    if (t)
        t->fi_pass = 1;
}

/* ---- poolsim_touch: the same check, explicit --------------------------------------- */

/* Whether a page holds paged pool. A chunk's pages keep the pool they were made with (before the page map
 * pointed at them): no lock, so an interrupt in a kernel build can touch its own buffer whatever locks the
 * code it interrupted holds. A special-pool page takes the pool of each block it holds, under shard 0's lock,
 * and holds none while closed. */
static bool fi_paged(psim *ps, psim_page *pg)
{
    const psim_chunk *sc = (const psim_chunk *)psim_atomic_load_ptr((void *const *)&ps->special.chunk);
    if (!sc || pg < sc->pages || pg >= sc->pages + sc->npages)
        return pg->pool == 1;
    poolsim__prim_lock_acquire(&ps->shards[0].lock);
    bool paged = pg->pool == 1 && pg->kind == PSIM_PG_SPECIAL && pg->nused;
    poolsim__prim_lock_release(&ps->shards[0].lock);
    return paged;
}

static bool fi_touch(const void *p, size_t n, unsigned access, uintptr_t ip)
{
    psim_thread *t = poolsim__thread();
    psim *ps = poolsim__g;
    unsigned irql = t ? t->h.irql : poolsim__prim_irql_get();
    if (!ps || !n || irql < PSIM_IRQL_DISPATCH)
        return true;
    uintptr_t a = (uintptr_t)p;
    uintptr_t last = n - 1 > UINTPTR_MAX - a ? UINTPTR_MAX : a + (n - 1);
    for (uintptr_t page = a & ~(uintptr_t)(PSIM_PAGE - 1);; page += PSIM_PAGE) {
        psim_page *pg = poolsim__page_of(ps, page);
        if (pg && fi_paged(ps, pg)) {
            fi_report(ps, t, page < a ? a : page, access, ip, POOLSIM_IRQL_RT_TOUCH);
            return false;
        }
        if (last - page < PSIM_PAGE)
            return true;
    }
}

bool poolsim_touch(const void *p, size_t n) { return fi_touch(p, n, 0, FI_RETURN_ADDRESS()); }

bool poolsim_touch_write(const void *p, size_t n) { return fi_touch(p, n, 1, FI_RETURN_ADDRESS()); }
