/* SPDX-License-Identifier: MIT */
/*
 * guard.c — the canaries around every block.
 *
 * A small block's header imitates the x64 POOL_HEADER (wdk-semantics.md §7:
 * Ulong1 with PreviousSize, PoolIndex, BlockSize and PoolType + 1, then the
 * PoolTag) so it reads right in a memory dump, followed by canary bytes. The
 * footer and the slack between the requested size and the slot end, the
 * padding before a cache-aligned header, and a big block's guard page and
 * tail slack are canary bytes too.
 *
 * A canary byte depends on its address and the instance's secret (KFENCE
 * style), so a block copied elsewhere, or bytes written by an older instance,
 * do not look intact. The expected values are always recomputed from the
 * out-of-band record; nothing in band is trusted.
 */
#include "core.h"

static uint64_t guard_word(const psim *ps, uintptr_t aligned8)
{
    return ps->secret ^ (((uint64_t)aligned8 >> 3) * 0x9E3779B97F4A7C15ull);
}

uint8_t poolsim__guard_byte(const psim *ps, uintptr_t addr)
{
    return (uint8_t)(guard_word(ps, addr & ~(uintptr_t)7) >> (8 * (addr & 7)));
}

static inline void guard_fill(const psim *ps, uintptr_t from, uintptr_t to)
{
    for (; from < to && (from & 7); from++)
        *(uint8_t *)from = poolsim__guard_byte(ps, from);
    for (; from + 8 <= to; from += 8) {
        uint64_t w = guard_word(ps, from);
        psim_memcpy((void *)from, &w, 8);
    }
    for (; from < to; from++)
        *(uint8_t *)from = poolsim__guard_byte(ps, from);
}

/* True when every byte of [from, to) is its canary. */
static inline bool guard_intact(const psim *ps, uintptr_t from, uintptr_t to)
{
    for (; from < to && (from & 7); from++)
        if (*(const uint8_t *)from != poolsim__guard_byte(ps, from))
            return false;
    for (; from + 8 <= to; from += 8) {
        uint64_t w;
        psim_memcpy(&w, (const void *)from, 8);
        if (w != guard_word(ps, from))
            return false;
    }
    for (; from < to; from++)
        if (*(const uint8_t *)from != poolsim__guard_byte(ps, from))
            return false;
    return true;
}

/* The header bytes a small block must carry: Ulong1 and the tag, little-endian
 * like the kernel's (x86, x64 and ARM64 are little-endian), then on x64 a word
 * of canary bytes. */
static void header_expected(const psim *ps, const psim_where *w, const psim_rec *r, uint8_t out[PSIM_GRAN])
{
    uint32_t units = (uint32_t)((PSIM_GRAN + psim_align_up(r->size ? r->size : 1, PSIM_GRAN)) / PSIM_GRAN);
    uint32_t prev = w->slot ? (uint32_t)(w->page->slot_size / PSIM_GRAN) : 0;
    uint32_t type = (uint32_t)(r->pool_type & 0x7Fu) + 1;
    uint32_t ulong1 = sizeof(void *) == 8 ? (prev & 0xFF) | ((units & 0xFF) << 16) | ((type & 0xFF) << 24)
                                          : (prev & 0x1FF) | ((units & 0x1FF) << 16) | ((type & 0x7F) << 25);
    uint64_t head = (uint64_t)ulong1 | ((uint64_t)r->tag << 32);
    psim_memcpy(out, &head, 8);
    if (PSIM_GRAN == 16) { /* x64: an 8-aligned word of canary bytes follows (little-endian, as guard_fill) */
        uint64_t canary = guard_word(ps, w->user - 8);
        psim_memcpy(out + 8, &canary, 8);
    }
}

/* Special-pool pages always carry their pattern; other blocks with the guards option. */
static bool guarded(const psim *ps, const psim_where *w)
{
    return ps->opt.guards || w->page->kind == PSIM_PG_SPECIAL;
}

void poolsim__guard_arm(const psim *ps, const psim_where *w, const psim_rec *r)
{
    if (!guarded(ps, w))
        return;
    uintptr_t tail = w->user + (uintptr_t)r->size;
    if (w->page->kind == PSIM_PG_SLAB) {
        uint8_t hdr[PSIM_GRAN];
        header_expected(ps, w, r, hdr);
        guard_fill(ps, w->start, w->user - PSIM_GRAN);
        psim_memcpy((void *)(w->user - PSIM_GRAN), hdr, PSIM_GRAN);
    } else {
        guard_fill(ps, w->start, w->user);
    }
    guard_fill(ps, tail, w->end);
}

void poolsim__poison(const psim_where *w, const psim_rec *r)
{
    psim_memset((void *)w->user, PSIM_POISON, (size_t)r->size);
}

static bool poison_intact(uintptr_t from, uintptr_t to)
{
    const uint64_t pattern = 0x0101010101010101ull * PSIM_POISON;
    for (; from < to && (from & 7); from++)
        if (*(const uint8_t *)from != PSIM_POISON)
            return false;
    for (; from + 8 <= to; from += 8) {
        uint64_t v;
        psim_memcpy(&v, (const void *)from, 8);
        if (v != pattern)
            return false;
    }
    for (; from < to; from++)
        if (*(const uint8_t *)from != PSIM_POISON)
            return false;
    return true;
}

/* The poison of [from, to), or only its first and last `edge` bytes. */
static bool poison_checked(uintptr_t from, uintptr_t to, uint64_t edge)
{
    if (edge && to - from > edge && to - from - edge > edge)
        return poison_intact(from, from + (uintptr_t)edge) && poison_intact(to - (uintptr_t)edge, to);
    return poison_intact(from, to);
}

bool poolsim__block_intact(const psim *ps, const psim_where *w, const psim_rec *r, uint64_t edge)
{
    if (!guarded(ps, w))
        return r->state != PSIM_QUARANTINED || poison_checked(w->user, w->user + (uintptr_t)r->size, edge);
    if (w->page->kind == PSIM_PG_SLAB) {
        uint8_t hdr[PSIM_GRAN];
        header_expected(ps, w, r, hdr);
        if (psim_memcmp((const void *)(w->user - PSIM_GRAN), hdr, PSIM_GRAN) != 0 ||
            !guard_intact(ps, w->start, w->user - PSIM_GRAN))
            return false;
    } else if (!guard_intact(ps, w->start, w->user)) {
        return false;
    }
    if (!guard_intact(ps, w->user + (uintptr_t)r->size, w->end))
        return false;
    return r->state != PSIM_QUARANTINED || poison_checked(w->user, w->user + (uintptr_t)r->size, edge);
}

/* ---- Describing damage (only after the fast check failed) ----------------- */

typedef struct damage_ctx {
    const psim *ps;
    const psim_where *w;
    const psim_rec *r;
    uint8_t hdr[PSIM_GRAN];
} damage_ctx;

static uint8_t expected_at(const damage_ctx *c, uintptr_t a)
{
    uintptr_t user = c->w->user;
    if (a >= user && a < user + (uintptr_t)c->r->size)
        return PSIM_POISON;
    if (c->w->page->kind == PSIM_PG_SLAB && a >= user - PSIM_GRAN && a < user)
        return c->hdr[a - (user - PSIM_GRAN)];
    return poolsim__guard_byte(c->ps, a);
}

static bool region_scan(const damage_ctx *c, uintptr_t from, uintptr_t to, uint32_t kind, poolsim_damage *d)
{
    uintptr_t first = 0;
    size_t count = 0;
    for (uintptr_t a = from; a < to; a++) {
        if (*(const uint8_t *)a != expected_at(c, a)) {
            if (!count)
                first = a;
            count++;
        }
    }
    if (!count)
        return false;
    d->kind = kind;
    d->first = (const void *)first;
    d->offset = (intptr_t)(first - c->w->user);
    d->count = count;
    d->nbytes = (uint32_t)(to - first < POOLSIM_DAMAGE_BYTES ? to - first : POOLSIM_DAMAGE_BYTES);
    for (uint32_t i = 0; i < d->nbytes; i++) {
        d->found[i] = *(const uint8_t *)(first + i);
        d->expected[i] = expected_at(c, first + i);
    }
    return true;
}

void poolsim__damage_describe(const psim *ps, const psim_where *w, const psim_rec *r, poolsim_damage d[2])
{
    damage_ctx c = {ps, w, r, {0}};
    poolsim_damage found[3];
    unsigned n = 0;
    psim_memset(d, 0, 2 * sizeof *d);
    psim_memset(found, 0, sizeof found);
    if (w->page->kind == PSIM_PG_SLAB)
        header_expected(ps, w, r, c.hdr);
    uintptr_t end = w->user + (uintptr_t)r->size;
    if (r->state == PSIM_QUARANTINED && region_scan(&c, w->user, end, POOLSIM_DAMAGE_AFTER_FREE, &found[n]))
        n++;
    if (guarded(ps, w) && region_scan(&c, w->start, w->user, POOLSIM_DAMAGE_UNDERRUN, &found[n]))
        n++;
    if (guarded(ps, w) && region_scan(&c, end, w->end, POOLSIM_DAMAGE_OVERRUN, &found[n]))
        n++;
    psim_memcpy(d, found, (n < 2 ? n : 2) * sizeof *d);
}
