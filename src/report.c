/* SPDX-License-Identifier: MIT */
/*
 * report.c — the only place that formats text or JSON.
 *
 * Reports are written through the output callback in pieces (a line, or a
 * JSON fragment); the concatenation of the pieces is the report. Nothing here
 * allocates memory: lines are built in a stack buffer, tables are sorted by
 * selection over the tag table, and each block is copied under its shard lock
 * and printed after the lock is released.
 *
 * Layouts follow WinDbg: !poolused (wdk-semantics.md §6.1), !verifier 3
 * (§6.4) and !analyze -v (§1.0).
 */
#include "core.h"
#include "irql.h"

/* ---- Output -------------------------------------------------------------- */

static poolsim_output_fn *g_out;
static void *g_out_ctx;

void poolsim_set_output(poolsim_output_fn *fn, void *ctx)
{
    g_out_ctx = ctx;
    g_out = fn;
}

void poolsim__out(const char *text)
{
    poolsim_output_fn *fn = g_out;
    if (fn)
        fn(text, g_out_ctx);
    else
        poolsim__prim_write(text);
}

void poolsim_write(const char *text)
{
    if (text)
        poolsim__out(text);
}

/* One line of at most 511 characters (the stack of a kernel thread is small, and reports allocate nothing):
 * a longer one is cut, and ends in "..." and its newline, so the next row still starts a line of its own. */
void poolsim__outf(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    size_t n = poolsim__vfmt(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t k = 0;
    while (fmt[k])
        k++;
    if (n >= sizeof line && k && fmt[k - 1] == '\n')
        psim_memcpy(line + sizeof line - 5, "...\n", 5);
    poolsim__out(line);
}

/* ---- Names --------------------------------------------------------------- */

const char *poolsim__pool_type_name(uint32_t t)
{
    static const struct {
        uint32_t type;
        const char *name;
    } names[] = {{0, "NonPagedPool"},
                 {1, "PagedPool"},
                 {4, "NonPagedPoolCacheAligned"},
                 {5, "PagedPoolCacheAligned"},
                 {32, "NonPagedPoolSession"},
                 {33, "PagedPoolSession"},
                 {36, "NonPagedPoolCacheAlignedSession"},
                 {37, "PagedPoolCacheAlignedSession"},
                 {512, "NonPagedPoolNx"},
                 {513, "PagedPool"}, /* paged pool is always NX (§3) */
                 {516, "NonPagedPoolNxCacheAligned"},
                 {517, "PagedPoolCacheAligned"},
                 {544, "NonPagedPoolSessionNx"},
                 {545, "PagedPoolSession"}};
    for (size_t i = 0; i < PSIM_COUNTOF(names); i++)
        if (names[i].type == t)
            return names[i].name;
    return "(invalid pool type)";
}

static const char *state_name(unsigned s)
{
    return s == PSIM_LIVE          ? "live"
           : s == PSIM_QUARANTINED ? "quarantined"
           : s == PSIM_RELEASED    ? "freed"
                                   : "unused";
}

/* Text reports show the last two components of a path ("examples/eapwt.c");
 * JSON keeps the whole path. */
const char *poolsim__short_path(const char *f)
{
    if (!f)
        return "(unknown)";
    const char *cut[2] = {f, f};
    for (const char *c = f; *c; c++) {
        if (*c == '/' || *c == '\\') {
            cut[0] = cut[1];
            cut[1] = c + 1;
        }
    }
    return cut[0];
}

/* ---- Bug check report ------------------------------------------------------ */

static void report_block(const poolsim_block_info *b)
{
    char tag[5];
    poolsim__tag_text(b->tag, tag);
    poolsim__outf("Block:  %p size 0x%zx (%zu) tag %s (0x%08x) %s, %s%s, thread %u\n", b->address, b->size,
                  b->size, tag, b->tag, poolsim__pool_type_name(b->pool_type), state_name(b->state),
                  b->quota_charged ? ", quota charged" : "", b->thread);
    poolsim__outf("  allocated at %s:%d by %s, seq %llu\n", poolsim__short_path(b->alloc_site.file),
                  b->alloc_site.line, b->alloc_site.routine, (unsigned long long)b->alloc_seq);
    if (b->state != POOLSIM_BLOCK_LIVE)
        poolsim__outf("  freed at %s:%d by %s, seq %llu\n", poolsim__short_path(b->free_site.file),
                      b->free_site.line, b->free_site.routine ? b->free_site.routine : "?",
                      (unsigned long long)b->free_seq);
}

/* KFENCE's diff: the value of each damaged byte, '.' for intact ones. */
static void report_damage(const poolsim_damage *d)
{
    static const char *const kinds[] = {"", "underrun", "overrun", "written after free"};
    char line[3 * POOLSIM_DAMAGE_BYTES + 8];
    size_t k = 0;
    long long off = (long long)d->offset;
    poolsim__outf("Damage: %s at block%c0x%llx (%p), %zu byte(s) differ:\n", kinds[d->kind < 4 ? d->kind : 0],
                  off < 0 ? '-' : '+', (unsigned long long)(off < 0 ? -off : off), d->first, d->count);
    line[k++] = '[';
    for (uint32_t i = 0; i < d->nbytes; i++)
        k += d->found[i] == d->expected[i] ? poolsim__fmt(line + k, sizeof line - k, " .")
                                           : poolsim__fmt(line + k, sizeof line - k, " %02x", d->found[i]);
    poolsim__fmt(line + k, sizeof line - k, " ]");
    poolsim__outf("  %s\n", line);
}

void poolsim_report_bugcheck(const poolsim_bugcheck *bc)
{
    if (!bc)
        return;
    const int w = (int)sizeof(uintptr_t) * 2;
    unsigned long long sub =
        bc->code == 0xC1 ? (unsigned long long)bc->param[3] : (unsigned long long)bc->param[0];
    poolsim__outf("\npoolsim: %s (%lx) Arg1 0x%llx %s\n", bc->name, bc->code,
                  (unsigned long long)bc->param[0], bc->summary);
    poolsim__outf(
        "*** Fatal System Error: 0x%08lx\n                       (0x%0*llx,0x%0*llx,0x%0*llx,0x%0*llx)\n\n",
        bc->code, w, (unsigned long long)bc->param[0], w, (unsigned long long)bc->param[1], w,
        (unsigned long long)bc->param[2], w, (unsigned long long)bc->param[3]);
    poolsim__outf("%s (%lx)\n%s\nArguments:\n", bc->name, bc->code, bc->summary);
    for (int i = 0; i < 4; i++)
        poolsim__outf("Arg%d: %0*llx, %s\n", i + 1, w, (unsigned long long)bc->param[i], bc->arg_meaning[i]);
    char tag[5] = "";
    if (bc->has_block)
        poolsim__tag_text(bc->block.tag, tag);
    poolsim__outf("\nBUGCHECK_STR:  0x%lx_%llx%s%s\n", bc->code, sub, bc->has_block ? "_" : "", tag);
    if (bc->has_block)
        report_block(&bc->block);
    for (int i = 0; i < 2; i++)
        if (bc->damage[i].kind)
            report_damage(&bc->damage[i]);
    if (bc->irql_history_count)
        poolsim__report_irql_history(bc->irql_history, bc->irql_history_count);
    if (bc->site.file)
        poolsim__outf("Raised: at %s:%d by %s, seq %llu\n\n", poolsim__short_path(bc->site.file),
                      bc->site.line, bc->site.routine ? bc->site.routine : "?", (unsigned long long)bc->seq);
    else
        poolsim__outf("Raised: by %s, seq %llu\n\n", bc->site.routine ? bc->site.routine : "?",
                      (unsigned long long)bc->seq);
}

/* ---- !pool ---------------------------------------------------------------- */

void poolsim_report_block(const void *p)
{
    psim *ps = poolsim__g;
    psim_page *pg = ps && p ? poolsim__page_of(ps, (uintptr_t)p) : NULL;
    psim_where w;
    if (!pg) {
        poolsim__outf("poolsim: !pool %p: not an address in poolsim's pool\n", p);
        return;
    }
    poolsim__prim_lock_acquire(&poolsim__shard(ps, pg)->lock);
    bool found = poolsim__locate(pg, (uintptr_t)p, &w);
    psim_page *page = found ? w.page : pg;
    bool slab = page->kind == PSIM_PG_SLAB, special = page->kind == PSIM_PG_SPECIAL;
    uint32_t nslots = slab ? page->nslots : 1;
    uint32_t slot_size = slab ? page->slot_size : special ? PSIM_PAGE : page->run * PSIM_PAGE;
    uintptr_t base = page->base;
    /* A special-pool page's pool and placement change with each block it holds: read under the lock. */
    bool guard_page = pg->kind == PSIM_PG_SPECIAL_GUARD, paged = page->pool != 0, verify_end = page->user_off;
    poolsim__unlock(ps, pg);
    if (!found) {
        poolsim__outf("poolsim: !pool %p: %s\n", p,
                      guard_page ? "a guard page of poolsim's special pool"
                      : paged    ? "a free page of poolsim's paged pool"
                                 : "a free page of poolsim's nonpaged pool");
        return;
    }
    poolsim__outf("poolsim: !pool %p: %s page %p, %s of %u-byte (0x%x) %s\n", p, paged ? "paged" : "nonpaged",
                  (void *)base,
                  slab      ? "slab"
                  : special ? (verify_end ? "special pool (Verify End)" : "special pool (Verify Start)")
                            : "big block",
                  slot_size, slot_size,
                  slab      ? "slots"
                  : special ? "page"
                            : "run");
    poolsim_block_info mine;
    psim_memset(&mine, 0, sizeof mine);
    uint32_t free_run = 0;
    for (uint32_t i = 0; i <= nslots; i++) {
        psim_where s;
        poolsim_block_info b;
        bool ok = false;
        if (i < nslots) {
            poolsim__prim_lock_acquire(&poolsim__shard(ps, page)->lock);
            ok = page->kind == (slab      ? PSIM_PG_SLAB
                                : special ? PSIM_PG_SPECIAL
                                          : PSIM_PG_BIG) &&
                 poolsim__locate(page, base + (uintptr_t)i * (slab ? slot_size : 0), &s);
            if (ok)
                poolsim__block_info(ps, &s, s.rec, &b);
            poolsim__unlock(ps, page);
        }
        uintptr_t first = slab ? s.start : base; /* a big block owns its whole run, guard page included */
        bool here = ok && (uintptr_t)p >= first && (uintptr_t)p < s.end;
        /* Runs of never-used slots are one line. */
        if (ok && !here && b.state == 0) {
            free_run++;
            continue;
        }
        if (free_run)
            poolsim__outf("  ... %u unused slot(s)\n", free_run);
        free_run = 0;
        if (!ok)
            break;
        char tag[5] = "    ";
        if (b.state)
            poolsim__tag_text(b.tag, tag);
        /* As !pool prints it (§6.2): the state in 12 columns, then '*' before the tag of the block holding
         * the address ("(Allocated) *ObDi"), a space before the others ("(Allocated)  MmDT"). poolsim's
         * own state (Quarantined) takes one column more. */
        static const char *const states[] = {"(Free)      ", "(Allocated) ", "(Quarantined)", "(Free)      "};
        poolsim__outf("%c%p size: %4x previous size: %4x  %s%c%s\n", here ? '*' : ' ', (void *)first,
                      slot_size, i ? slot_size : 0u, states[b.state & 3], here ? '*' : ' ', tag);
        if (here)
            mine = b;
    }
    if (mine.state)
        report_block(&mine);
}

/* ---- !poolused ------------------------------------------------------------- */

typedef struct tag_row {
    uint32_t tag;
    poolsim_pool_counters c[2];
} tag_row;

static void row_load(const psim_tagent *e, tag_row *r)
{
    r->tag = e->tag;
    for (unsigned k = 0; k < 2; k++)
        poolsim__tag_counters(e, k, &r->c[k]);
}

/* Order of rows: by tag text, or by bytes used (descending) in one pool. */
static int row_cmp(const tag_row *a, const tag_row *b, unsigned flags)
{
    int pool = (flags & POOLSIM_POOLUSED_SORT_NONPAGED) ? 0 : (flags & POOLSIM_POOLUSED_SORT_PAGED) ? 1 : -1;
    if (pool >= 0 && a->c[pool].bytes != b->c[pool].bytes)
        return a->c[pool].bytes > b->c[pool].bytes ? -1 : 1;
    char ta[5], tb[5];
    poolsim__tag_text(a->tag, ta);
    poolsim__tag_text(b->tag, tb);
    int d = psim_memcmp(ta, tb, 4);
    return d ? d : (a->tag < b->tag ? -1 : a->tag > b->tag ? 1 : 0);
}

/* The row after `prev` in report order, or false. prev == NULL: the first. */
static bool row_next(const psim *ps, const char *pattern, unsigned flags, const tag_row *prev, tag_row *out)
{
    bool found = false;
    for (uint32_t i = 0; i <= POOLSIM_TAG_CAPACITY; i++) {
        const psim_tagent *e = &ps->tags[i];
        if (!psim_atomic_load32(&e->used) || !poolsim__tag_match(e->tag, pattern))
            continue;
        tag_row r;
        row_load(e, &r);
        if (!r.c[0].allocs && !r.c[1].allocs && !r.c[0].failed && !r.c[1].failed)
            continue;
        if ((!prev || row_cmp(prev, &r, flags) < 0) && (!found || row_cmp(&r, out, flags) < 0)) {
            *out = r;
            found = true;
        }
    }
    return found;
}

static void poolused_sites(const psim *ps, uint32_t tag)
{
    uint32_t n = psim_atomic_load32(&ps->nsites);
    for (uint32_t i = 1; i < n; i++) {
        const psim_site *s = poolsim__site_at(ps, i);
        psim_site_counts c;
        if (!s || s->tag != tag)
            continue;
        poolsim__site_sum(s, &c);
        if (!(c.allocs[0] | c.allocs[1]))
            continue;
        uint64_t a0 = c.allocs[0], f0 = c.frees[0], a1 = c.allocs[1], f1 = c.frees[1];
        poolsim__outf("     %10llu%9llu%9llu%9llu%11llu%9llu%9llu%9llu  %s:%d %s\n", (unsigned long long)a0,
                      (unsigned long long)f0, (unsigned long long)(a0 - f0), (unsigned long long)c.bytes[0],
                      (unsigned long long)a1, (unsigned long long)f1, (unsigned long long)(a1 - f1),
                      (unsigned long long)c.bytes[1], poolsim__short_path(s->file), s->line, s->routine);
    }
}

void poolsim_report_poolused(unsigned flags, const char *pattern)
{
    psim *ps = poolsim__g;
    if (!ps) {
        poolsim__out("poolsim: !poolused: poolsim is not initialised\n");
        return;
    }
    bool verbose = flags & POOLSIM_POOLUSED_VERBOSE;
    const char *by = (flags & POOLSIM_POOLUSED_SORT_NONPAGED) ? "NonPaged Used"
                     : (flags & POOLSIM_POOLUSED_SORT_PAGED)  ? "Paged Used"
                                                              : "Tag";
    poolsim__outf("   Sorting by  %s\n\n  Pool Used:\n", by);
    if (verbose)
        poolsim__out("            NonPaged                                  Paged\n"
                     " Tag     Allocs    Frees     Diff     Used     Allocs    Frees     Diff     Used\n");
    else
        poolsim__out("            NonPaged            Paged\n"
                     " Tag    Allocs     Used    Allocs     Used\n");
    tag_row row, prev, total;
    psim_memset(&total, 0, sizeof total);
    const tag_row *after = NULL;
    while (row_next(ps, pattern, flags, after, &row)) {
        char tag[5];
        poolsim__tag_text(row.tag, tag);
        uint64_t d0 = row.c[0].allocs - row.c[0].frees, d1 = row.c[1].allocs - row.c[1].frees;
        if (verbose) {
            poolsim__outf(" %-4s%10llu%9llu%9llu%9llu%11llu%9llu%9llu%9llu\n", tag,
                          (unsigned long long)row.c[0].allocs, (unsigned long long)row.c[0].frees,
                          (unsigned long long)d0, (unsigned long long)row.c[0].bytes,
                          (unsigned long long)row.c[1].allocs, (unsigned long long)row.c[1].frees,
                          (unsigned long long)d1, (unsigned long long)row.c[1].bytes);
            poolused_sites(ps, row.tag);
        } else {
            poolsim__outf(" %-4s%9llu%9llu%10llu%9llu\n", tag, (unsigned long long)d0,
                          (unsigned long long)row.c[0].bytes, (unsigned long long)d1,
                          (unsigned long long)row.c[1].bytes);
        }
        for (int k = 0; k < 2; k++) {
            total.c[k].allocs += row.c[k].allocs;
            total.c[k].frees += row.c[k].frees;
            total.c[k].bytes += row.c[k].bytes;
        }
        prev = row;
        after = &prev;
    }
    uint64_t t0 = total.c[0].allocs - total.c[0].frees, t1 = total.c[1].allocs - total.c[1].frees;
    if (verbose)
        poolsim__outf(" TOTAL%9llu%9llu%9llu%9llu%11llu%9llu%9llu%9llu\n",
                      (unsigned long long)total.c[0].allocs, (unsigned long long)total.c[0].frees,
                      (unsigned long long)t0, (unsigned long long)total.c[0].bytes,
                      (unsigned long long)total.c[1].allocs, (unsigned long long)total.c[1].frees,
                      (unsigned long long)t1, (unsigned long long)total.c[1].bytes);
    else
        poolsim__outf(" TOTAL%8llu%9llu%10llu%9llu\n", (unsigned long long)t0,
                      (unsigned long long)total.c[0].bytes, (unsigned long long)t1,
                      (unsigned long long)total.c[1].bytes);
}

/* ---- JSON ---------------------------------------------------------------- */

/* Writes s as a JSON string (quotes included), in pieces: no length limit. */
static void json_out(const char *s)
{
    char buf[136];
    size_t k = 0;
    if (!s) {
        poolsim__out("null");
        return;
    }
    buf[k++] = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (k > sizeof buf - 8) {
            buf[k] = '\0';
            poolsim__out(buf);
            k = 0;
        }
        if (c == '"' || c == '\\') {
            buf[k++] = '\\';
            buf[k++] = (char)c;
        } else if (c < 0x20) {
            k += poolsim__fmt(buf + k, sizeof buf - k, "\\u%04x", c);
        } else {
            buf[k++] = (char)c;
        }
    }
    buf[k++] = '"';
    buf[k] = '\0';
    poolsim__out(buf);
}

static void json_counters(const char *name, const poolsim_pool_counters *c, bool last)
{
    poolsim__outf(
        "\"%s\":{\"allocs\":%llu,\"frees\":%llu,\"diff\":%llu,\"used\":%llu,\"peak\":%llu,\"failed\":%llu}%s",
        name, (unsigned long long)c->allocs, (unsigned long long)c->frees,
        (unsigned long long)(c->allocs - c->frees), (unsigned long long)c->bytes,
        (unsigned long long)c->peak_bytes, (unsigned long long)c->failed, last ? "" : ",");
}

void poolsim_report_poolused_json(const char *pattern)
{
    psim *ps = poolsim__g;
    if (!ps) {
        poolsim__out("{\"error\":\"not initialised\"}\n");
        return;
    }
    poolsim__out("{\"tags\":[");
    tag_row row, prev;
    const tag_row *after = NULL;
    while (row_next(ps, pattern, 0, after, &row)) {
        char tag[5];
        poolsim__tag_text(row.tag, tag);
        poolsim__out(after ? ",{\"tag\":" : "{\"tag\":");
        json_out(tag);
        poolsim__outf(",\"value\":%u,", row.tag);
        json_counters("nonpaged", &row.c[0], false);
        json_counters("paged", &row.c[1], false);
        poolsim__out("\"sites\":[");
        uint32_t n = psim_atomic_load32(&ps->nsites);
        bool first = true;
        for (uint32_t i = 1; i < n; i++) {
            const psim_site *st = poolsim__site_at(ps, i);
            psim_site_counts c;
            if (!st || st->tag != row.tag)
                continue;
            poolsim__site_sum(st, &c);
            if (!(c.allocs[0] | c.allocs[1]))
                continue;
            poolsim__out(first ? "{\"file\":" : ",{\"file\":");
            json_out(st->file);
            poolsim__outf(",\"line\":%d,\"routine\":\"%s\"", st->line, st->routine);
            for (int k = 0; k < 2; k++)
                poolsim__outf(",\"%s\":{\"allocs\":%llu,\"frees\":%llu,\"used\":%llu}",
                              k ? "paged" : "nonpaged", (unsigned long long)c.allocs[k],
                              (unsigned long long)c.frees[k], (unsigned long long)c.bytes[k]);
            poolsim__out("}");
            first = false;
        }
        poolsim__out("]}");
        prev = row;
        after = &prev;
    }
    poolsim__out("]}\n");
}

/* ---- Outstanding blocks (!verifier 3) -------------------------------------- */

typedef void block_line_fn(const poolsim_block_info *b, bool first);

static void outstanding_text(const poolsim_block_info *b, bool first)
{
    const int w = (int)sizeof(uintptr_t) * 2;
    char tag[5];
    (void)first;
    poolsim__tag_text(b->tag, tag);
    poolsim__outf(" %p  0x%0*zx  %s  %-26s %8llu  %s:%d (%s)\n", b->address, w, b->size, tag,
                  poolsim__pool_type_name(b->pool_type), (unsigned long long)b->alloc_seq,
                  poolsim__short_path(b->alloc_site.file), b->alloc_site.line, b->alloc_site.routine);
}

static void outstanding_json(const poolsim_block_info *b, bool first)
{
    char tag[5];
    poolsim__tag_text(b->tag, tag);
    poolsim__outf("%s{\"address\":\"%p\",\"size\":%zu,\"tag\":", first ? "" : ",", b->address, b->size);
    json_out(tag);
    poolsim__outf(",\"value\":%u,\"pool\":\"%s\",\"seq\":%llu,\"file\":", b->tag,
                  poolsim__pool_type_name(b->pool_type), (unsigned long long)b->alloc_seq);
    json_out(b->alloc_site.file);
    poolsim__outf(",\"line\":%d,\"routine\":\"%s\",\"thread\":%u}", b->alloc_site.line, b->alloc_site.routine,
                  b->thread);
}

/* Visits live blocks; returns their count and bytes. */
static uint64_t each_live(psim *ps, block_line_fn *fn, uint64_t *bytes)
{
    psim_iter it = {0};
    psim_where w = {0};
    uint64_t n = 0;
    *bytes = 0;
    while (poolsim__iter_next(ps, &it, PSIM_ST(PSIM_LIVE), &w)) {
        poolsim_block_info b;
        poolsim__block_info(ps, &w, w.rec, &b);
        poolsim__unlock(ps, w.page);
        fn(&b, n == 0);
        n++;
        *bytes += b.size;
    }
    return n;
}

static void outstanding_table(psim *ps)
{
    uint64_t bytes;
    poolsim__outf(" %-*s  %-*s  Tag   %-26s %8s  Caller\n", (int)sizeof(uintptr_t) * 2 + 2, "Address",
                  (int)sizeof(uintptr_t) * 2 + 2, "Length", "Pool", "Seq");
    uint64_t n = each_live(ps, outstanding_text, &bytes);
    poolsim__outf(" %llu allocation(s) outstanding, %llu bytes\n", (unsigned long long)n,
                  (unsigned long long)bytes);
}

void poolsim_report_outstanding(void)
{
    psim *ps = poolsim__g;
    if (!ps) {
        poolsim__out("poolsim: outstanding: poolsim is not initialised\n");
        return;
    }
    poolsim__out("poolsim: outstanding allocations (!verifier 3)\n");
    outstanding_table(ps);
}

void poolsim_report_outstanding_json(void)
{
    psim *ps = poolsim__g;
    uint64_t bytes = 0, n = 0;
    poolsim__out("{\"blocks\":[");
    if (ps)
        n = each_live(ps, outstanding_json, &bytes);
    poolsim__outf("],\"count\":%llu,\"bytes\":%llu}\n", (unsigned long long)n, (unsigned long long)bytes);
}

void poolsim__report_leaks(psim *ps, uint64_t blocks, uint64_t bytes)
{
    poolsim__outf(
        "poolsim: LEAK: %llu block(s), %llu bytes still allocated at poolsim_shutdown (driver %s):\n",
        (unsigned long long)blocks, (unsigned long long)bytes, ps->opt.driver_name);
    outstanding_table(ps);
}

/* ---- Statistics ------------------------------------------------------------ */

void poolsim_report_stats(void)
{
    poolsim_stats s;
    poolsim_get_stats(&s);
    if (!poolsim__g) {
        poolsim__out("poolsim: statistics: poolsim is not initialised\n");
        return;
    }
    poolsim__outf("poolsim: statistics\n"
                  "  Pool Allocations Attempted      %llu\n"
                  "  Pool Allocations Succeeded      %llu\n"
                  "  Pool Allocations Succeeded SpecialPool %llu (%llu more selected, no free slot)\n"
                  "  Pool Allocations Failed         %llu\n"
                  "  Pool Frees                      %llu\n",
                  (unsigned long long)(s.allocs + s.failed), (unsigned long long)s.allocs,
                  (unsigned long long)s.special_allocs, (unsigned long long)s.special_fallback,
                  (unsigned long long)s.failed, (unsigned long long)s.frees);
    poolsim__outf("  Current allocations             %llu (peak %llu)\n"
                  "  Current nonpaged bytes          %llu (peak %llu)\n"
                  "  Current paged bytes             %llu (peak %llu)\n",
                  (unsigned long long)s.live_blocks, (unsigned long long)s.peak_blocks,
                  (unsigned long long)s.nonpaged_bytes, (unsigned long long)s.peak_nonpaged_bytes,
                  (unsigned long long)s.paged_bytes, (unsigned long long)s.peak_paged_bytes);
    poolsim__outf("  Tags %llu, call sites %llu, bug checks %llu\n"
                  "  poolsim memory: %llu bytes of pages, %llu bytes of records\n",
                  (unsigned long long)s.tags, (unsigned long long)s.sites, (unsigned long long)s.bugchecks,
                  (unsigned long long)s.arena_bytes, (unsigned long long)s.meta_bytes);
}

void poolsim_report_stats_json(void)
{
    if (!poolsim__g) {
        poolsim__out("{\"error\":\"not initialised\"}\n");
        return;
    }
    poolsim_stats s;
    poolsim_get_stats(&s);
    poolsim__outf(
        "{\"allocs\":%llu,\"frees\":%llu,\"failed\":%llu,\"live_blocks\":%llu,\"peak_blocks\":%llu,",
        (unsigned long long)s.allocs, (unsigned long long)s.frees, (unsigned long long)s.failed,
        (unsigned long long)s.live_blocks, (unsigned long long)s.peak_blocks);
    poolsim__outf("\"nonpaged_bytes\":%llu,\"peak_nonpaged_bytes\":%llu,\"paged_bytes\":%llu,"
                  "\"peak_paged_bytes\":%llu,",
                  (unsigned long long)s.nonpaged_bytes, (unsigned long long)s.peak_nonpaged_bytes,
                  (unsigned long long)s.paged_bytes, (unsigned long long)s.peak_paged_bytes);
    poolsim__outf("\"bugchecks\":%llu,\"tags\":%llu,\"sites\":%llu,\"arena_bytes\":%llu,\"meta_bytes\":%llu,"
                  "\"special_allocs\":%llu,\"special_fallback\":%llu}\n",
                  (unsigned long long)s.bugchecks, (unsigned long long)s.tags, (unsigned long long)s.sites,
                  (unsigned long long)s.arena_bytes, (unsigned long long)s.meta_bytes,
                  (unsigned long long)s.special_allocs, (unsigned long long)s.special_fallback);
}

/* ---- IRQL history and thread state (irql.c) ---------------------------------------- */

static const char *irql_name(unsigned irql, char buf[16])
{
    static const char *const names[] = {"PASSIVE_LEVEL", "APC_LEVEL", "DISPATCH_LEVEL"};
    if (irql < PSIM_COUNTOF(names))
        return names[irql];
    if (irql == PSIM_IRQL_HIGH)
        return "HIGH_LEVEL";
    poolsim__fmt(buf, 16, "IRQL %u", irql);
    return buf;
}

void poolsim__report_irql_history(const poolsim_irql_event *ev, size_t n)
{
    poolsim__report_irql_header(n);
    poolsim__report_irql_events(ev, n);
}

void poolsim__report_irql_header(size_t n) { poolsim__outf("IRQL history, oldest first (%zu):\n", n); }

void poolsim__report_irql_events(const poolsim_irql_event *ev, size_t n)
{
    static const char *const kinds[] = {"", "set", "raise", "lower", "acquire", "release"};
    for (size_t i = 0; i < n; i++) {
        const poolsim_irql_event *e = &ev[i];
        char a[16], b[16], obj[32] = "";
        if (e->object)
            poolsim__fmt(obj, sizeof obj, " %p", e->object);
        poolsim__outf("  %-14s -> %-14s %-7s %s%s", irql_name(e->from, a), irql_name(e->to, b),
                      kinds[e->kind < PSIM_COUNTOF(kinds) ? e->kind : 0],
                      poolsim_irql_routine_name((poolsim_irql_routine)e->routine), obj);
        if (e->file)
            poolsim__outf(" at %s:%u\n", poolsim__short_path(e->file), (unsigned)e->line);
        else
            poolsim__out("\n");
    }
}

void poolsim__report_thread_state(uint8_t irql, uint32_t critical, const poolsim_held_lock *locks,
                                  size_t nlocks, size_t shown, const poolsim_irql_event *ev, size_t nev)
{
    char a[16];
    poolsim__outf("poolsim: thread %u at %s, %zu lock(s) held, %u critical region(s)\n",
                  poolsim__prim_thread_id(), irql_name(irql, a), nlocks, critical);
    for (size_t i = 0; i < shown; i++) {
        poolsim__outf("  holds %p taken by %s", locks[i].object,
                      poolsim_irql_routine_name((poolsim_irql_routine)locks[i].routine));
        if (locks[i].file)
            poolsim__outf(" at %s:%d\n", poolsim__short_path(locks[i].file), locks[i].line);
        else
            poolsim__out("\n");
    }
    if (nlocks > shown)
        poolsim__outf("  ... and %zu more\n", nlocks - shown);
    if (nev)
        poolsim__report_irql_history(ev, nev);
}
