/* SPDX-License-Identifier: MIT */
/*
 * fuzz_pool.c — a libFuzzer harness that runs its input as a program of poolsim
 * operations and checks every step against a model that knows what poolsim must
 * report.
 *
 * One input is one poolsim instance: three bytes choose the options, the rest are
 * operations (allocate with every routine, free right and wrong, write inside and
 * around blocks and into quarantined ones, raise and lower the IRQL, take and
 * release spin locks and fast mutexes, validate, query, report, inspect). Each
 * operation is worked out by the model first: what the call returns, and which bug
 * checks it raises (code, Arg1..Arg4, the block, the damaged bytes, the IRQL
 * history). Then poolsim runs it with a bug-check handler that captures and
 * returns (report and continue). Any difference, a counter off by one, a block
 * that is not zeroed or not aligned, ends the run with abort() and a message that
 * names the operation. The model is docs/semantics.md and docs/bad-input.md
 * written as code; docs/fuzzing.md has the encoding and the rules.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <poolsim/poolsim.h>

#if UINTPTR_MAX != 0xFFFFFFFFFFFFFFFFu
#error "the model is the x64 pool: 16-byte granularity, the x64 POOL_HEADER"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* ---- Windows values (docs/semantics.md) --------------------------------------------------------------- */

#define PAGE 4096u
#define GRAN 16u
#define SMALL_MAX 0xFE0u
#define POISON 0xDDu
#define PROT 0x80000000u
#define TAG4(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define TAG_NONE TAG4('N', 'o', 'n', 'e')
#define TAG_BIG TAG4('B', 'I', 'G', ' ')
#define TAG_MMCT TAG4('M', 'm', 'C', 't')
#define TAG_MMNC TAG4('M', 'm', 'N', 'c')
#define STATUS_INSUFFICIENT_RESOURCES ((int32_t)0xC000009Au)

/* POOL_TYPE bits. */
#define PT_PAGED 0x1u
#define PT_CACHE 0x4u
#define PT_QUOTA_FAIL 0x8u
#define PT_RAISE 0x10u
#define PT_SESSION 0x20u
#define PT_COLD 0x100u
#define PT_NX 0x200u
#define PT_ZERO 0x400u
/* POOL_FLAGS bits. */
#define PF_QUOTA 0x1u
#define PF_UNINIT 0x2u
#define PF_CACHE 0x8u
#define PF_RAISE 0x20u
#define PF_NP 0x40u
#define PF_NPX 0x80u
#define PF_PAGED 0x100u

/* IRQL levels. */
#define APC 1u
#define DPC 2u
#define HIGH 15u

/* ---- Model sizes -------------------------------------------------------------------------------------- */

#define MAXB 48      /* blocks the model tracks at once */
#define MAXDMG 8     /* planted bytes per block */
#define MAXX 64      /* bug checks expected or captured in one operation */
#define MAXOPS 1024  /* operations per input */
#define MAXTAGS 1200 /* distinct tags (each operation adds at most one; the table holds 768) */
#define MAXSITES 2100
#define NLOCKS 4
#define NMUTEX 2
#define MAXHELD (NLOCKS + NMUTEX)

/* ---- Failure ------------------------------------------------------------------------------------------ */

static unsigned g_opi;        /* index of the running operation */
static char g_op[160];        /* what it is */
static char g_trail[16][160]; /* the operations before it */
static int g_trace;           /* FUZZ_POOL_TRACE=1: print every operation */

static void fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "\nfuzz_pool: ORACLE FAILURE in operation %u (%s):\n  ", g_opi, g_op);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nfuzz_pool: the operations before it, oldest first:\n");
    for (unsigned i = g_opi > 16 ? g_opi - 16 : 0; i < g_opi; i++)
        fprintf(stderr, "  #%u %s\n", i, g_trail[i % 16]);
    abort();
}

#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond))                                                                                         \
            fail(__VA_ARGS__);                                                                               \
    } while (0)

static void op_name(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_op, sizeof g_op, fmt, ap);
    va_end(ap);
    memcpy(g_trail[g_opi % 16], g_op, sizeof g_op);
    if (g_trace)
        fprintf(stderr, "fuzz_pool: #%u %s\n", g_opi, g_op);
}

/* ---- Input -------------------------------------------------------------------------------------------- */

static const uint8_t *g_in;
static size_t g_left;

static uint8_t u8(void)
{
    if (!g_left)
        return 0;
    g_left--;
    return *g_in++;
}

static uint16_t u16(void)
{
    uint16_t lo = u8();
    return (uint16_t)(lo | (uint16_t)u8() << 8);
}

static uint32_t u32(void)
{
    uint32_t lo = u16();
    return lo | (uint32_t)u16() << 16;
}

/* ---- Output: every report is formatted, then dropped -------------------------------------------------- */

static uint64_t g_out_bytes;

static void discard(const char *text, void *ctx)
{
    (void)ctx;
    g_out_bytes += strlen(text);
}

/* ---- Expected and captured bug checks ----------------------------------------------------------------- */

/* The block a bug check must name, as the model sees it when the check is raised. */
typedef struct xblock {
    bool has;
    const void *addr;
    size_t size;
    uint32_t tag, pool_type;
    poolsim_block_state state;
} xblock;

typedef struct xdamage {
    uint32_t kind;
    intptr_t offset;
    size_t count;
} xdamage;

typedef struct expect {
    unsigned long code;
    uintptr_t p[4];
    const char *rule; /* Arg2 points to a DDI rule text that starts with this, or NULL */
    xblock blk;
    xdamage dmg[2];
    const char *routine; /* site.routine */
    int line;            /* site.line */
    bool irql;           /* an IRQL or lock bug check: it carries the thread's history */
    uint32_t hist;       /* history events it must carry */
    uint8_t irql_now;    /* the IRQL when it is raised: the last event's `to` */
} expect;

typedef struct captured {
    poolsim_bugcheck bc;
    uint8_t last_to;
} captured;

static expect g_x[MAXX];
static unsigned g_nx;
static captured g_c[MAXX];
static unsigned g_nc;

static void on_bugcheck(const poolsim_bugcheck *bc, void *ctx)
{
    (void)ctx;
    CHECK(g_nc < MAXX, "more than %d bug checks in one operation", MAXX);
    captured *c = &g_c[g_nc++];
    c->bc = *bc;
    c->last_to = bc->irql_history_count ? bc->irql_history[bc->irql_history_count - 1].to : 0xFF;
    c->bc.irql_history = NULL;
    poolsim_report_bugcheck(bc); /* the report code runs on every bug check; the output is dropped */
}

/* ---- The model's state -------------------------------------------------------------------------------- */

enum { ST_NONE, ST_LIVE, ST_QUAR, ST_REL };
enum { AL_POOL, AL_CONTIG, AL_NONCACHED };

typedef struct mdmg {
    int32_t off; /* from the block's address */
    uint8_t orig;
} mdmg;

typedef struct mblock {
    int state; /* ST_*: ST_REL only while no later block has used its pages */
    uint8_t *p;
    size_t size;
    uint32_t tag;       /* as recorded, PROTECTED_POOL included */
    uint32_t pool_type; /* as recorded */
    unsigned pool;      /* 0 nonpaged, 1 paged */
    unsigned alloc;     /* AL_* */
    bool big, quota;
    unsigned ndmg; /* planted bytes not yet reported */
    mdmg dmg[MAXDMG];
    bool repair; /* reported in this operation: put the bytes back afterwards */
    bool cached; /* an entry in a lookaside list's cache: still live for the pool */
    bool holder; /* a lookaside list's handle was initialised in it (C4/0xCC while that list lives) */
} mblock;

/* A lookaside list as the model sees it (docs/semantics.md, "Lookaside lists"). The first two handles are
 * statics, the third lives in a pool block. */
#define NLISTS 3
typedef struct mlist {
    poolsim_lookaside *l;
    bool live;
    unsigned kind; /* POOLSIM_LOOKASIDE_* */
    uint64_t alloc_type;
    size_t size;
    uint32_t tag;
    unsigned depth;
    int cache[MAXB]; /* block indices, the newest last */
    unsigned count;
} mlist;

typedef struct mtag {
    uint32_t tag; /* PROTECTED_POOL masked */
    uint64_t allocs[2], frees[2], bytes[2], peak[2], failed[2];
} mtag;

typedef struct msite {
    int line;
    poolsim_routine rt;
    uint32_t tag;
} msite;

/* One lock a thread holds (irql.c's held[] as docs/semantics.md describes it). */
enum { LK_SPIN = 1, LK_QUEUED = 2, LK_MUTEX = 3 };
typedef struct mheld {
    const void *obj;
    unsigned kind;
    poolsim_irql_routine rt;
    uint8_t old;
    unsigned nest;
} mheld;

#define KIND_QUEUED 2u
#define KIND_ORDINARY 4u

static struct {
    poolsim_options opt;
    uint64_t limit[2];
    mblock b[MAXB];
    int q[MAXB]; /* the quarantine FIFO: block indices */
    unsigned qhead, qcount;
    uint64_t qbytes;
    uint64_t allocs, frees, failed, live, peak_live, bytes[2], peak_bytes[2], bugchecks, injected, seq;
    mtag tags[MAXTAGS];
    unsigned ntags;
    msite sites[MAXSITES];
    unsigned nsites;
    uint64_t nth, fcount;
    bool persistent;
    /* The thread. */
    uint8_t irql;
    mheld held[MAXHELD];
    unsigned nheld;
    uint32_t critical, hist;
    /* The locks. */
    bool lock_held[NLOCKS];
    unsigned lock_kinds[NLOCKS];
    uint8_t lock_saved[NLOCKS];
    bool mutex_held[NMUTEX];
    uint8_t mutex_old[NMUTEX];
    mlist lists[NLISTS];
} M;

static uintptr_t g_locks[NLOCKS];
static struct {
    void *owner;
    uint8_t pad[24];
} g_mutex[NMUTEX];
static const char *const g_file = "fuzz_pool.c";
static const char g_driver[] = "fuzzpool.sys";
static uint8_t g_static_obj[64];
static uint8_t *g_heap_obj;
static poolsim_lookaside g_lal[NLISTS - 1];

static bool verifier(void) { return M.opt.family == POOLSIM_FAMILY_VERIFIER; }

/* ---- Expectations ------------------------------------------------------------------------------------- */

static expect *x_new(unsigned long code, uintptr_t p1, uintptr_t p2, uintptr_t p3, uintptr_t p4,
                     const char *routine, int line)
{
    CHECK(g_nx < MAXX, "model: more than %d expected bug checks", MAXX);
    expect *x = &g_x[g_nx++];
    memset(x, 0, sizeof *x);
    x->code = code;
    x->p[0] = p1;
    x->p[1] = p2;
    x->p[2] = p3;
    x->p[3] = p4;
    x->routine = routine;
    x->line = line;
    M.bugchecks++;
    return x;
}

/* An IRQL or lock bug check: it carries the history as it is now. */
static expect *x_irql(unsigned long code, uintptr_t p1, uintptr_t p2, uintptr_t p3, uintptr_t p4,
                      const char *routine, int line)
{
    expect *x = x_new(code, p1, p2, p3, p4, routine, line);
    uint32_t want = M.opt.irql_history < 64 ? M.opt.irql_history : 64;
    x->irql = true;
    x->hist = M.hist < want ? M.hist : want;
    x->irql_now = M.irql;
    return x;
}

/* The noncached Mm routines above APC_LEVEL: C4/0x20019, DDI rule IrqlMmApcLte, in both families. */
static const char rule_mm_apc[] = "IrqlMmApcLte:";

static poolsim_block_state pub_state(int st)
{
    return st == ST_LIVE   ? POOLSIM_BLOCK_LIVE
           : st == ST_QUAR ? POOLSIM_BLOCK_QUARANTINED
                           : POOLSIM_BLOCK_RELEASED;
}

static void x_block(expect *x, const mblock *b)
{
    x->blk.has = true;
    x->blk.addr = b->p;
    x->blk.size = b->size;
    x->blk.tag = b->tag;
    x->blk.pool_type = b->pool_type;
    x->blk.state = pub_state(b->state);
}

static void print_bc(const char *what, unsigned long code, const uintptr_t *p, const xblock *blk)
{
    fprintf(stderr, "  %s 0x%lx (0x%llx, 0x%llx, 0x%llx, 0x%llx)", what, code, (unsigned long long)p[0],
            (unsigned long long)p[1], (unsigned long long)p[2], (unsigned long long)p[3]);
    if (blk && blk->has)
        fprintf(stderr, " block %p size 0x%zx tag 0x%x type 0x%x state %d", blk->addr, blk->size, blk->tag,
                blk->pool_type, (int)blk->state);
    fprintf(stderr, "\n");
}

/* Why captured c is not expectation x, or NULL when it is. */
static const char *differs(const expect *x, const captured *c)
{
    const poolsim_bugcheck *bc = &c->bc;
    if (bc->code != x->code || bc->param[0] != x->p[0])
        return "code or Arg1";
    if (x->rule) {
        if (!bc->param[1] || strncmp((const char *)bc->param[1], x->rule, strlen(x->rule)) != 0)
            return "Arg2 (the rule text)";
    } else if (bc->param[1] != x->p[1]) {
        return "Arg2";
    }
    if (bc->param[2] != x->p[2])
        return "Arg3";
    if (bc->param[3] != x->p[3])
        return "Arg4";
    if (bc->has_block != x->blk.has)
        return "has_block";
    if (x->blk.has &&
        (bc->block.address != x->blk.addr || bc->block.size != x->blk.size || bc->block.tag != x->blk.tag ||
         bc->block.pool_type != x->blk.pool_type || bc->block.state != x->blk.state))
        return "the block";
    if (!bc->site.routine || strcmp(bc->site.routine, x->routine) != 0)
        return "site.routine";
    if (bc->site.line != x->line)
        return "site.line";
    for (unsigned i = 0; i < 2; i++)
        if (bc->damage[i].kind != x->dmg[i].kind ||
            (x->dmg[i].kind &&
             (bc->damage[i].offset != x->dmg[i].offset || bc->damage[i].count != x->dmg[i].count)))
            return "damage[]";
    if (bc->irql_history_count != (x->irql ? x->hist : 0))
        return "irql_history_count";
    if (bc->irql_history_count && c->last_to != x->irql_now)
        return "the last IRQL event's `to` (not the IRQL when it was raised)";
    return NULL;
}

/* FUZZ_POOL_STATS=1: how often each (code, Arg1) was expected and matched, printed at exit. */
static struct {
    unsigned long code;
    uintptr_t sub;
    uint64_t n;
} g_seen[96];
static unsigned g_nseen;
static int g_stats;
static uint64_t g_inputs, g_ops;

static void count_seen(const expect *x)
{
    /* Arg1 is a subcode for these; for the others it is an address or an IRQL. */
    bool sub = x->code == 0xC4 || x->code == 0xC2 || x->code == 0x19 || x->code == 0x13A;
    unsigned i;
    for (i = 0; i < g_nseen; i++)
        if (g_seen[i].code == x->code && g_seen[i].sub == (sub ? x->p[0] : 0))
            break;
    if (i == g_nseen) {
        if (g_nseen == sizeof g_seen / sizeof g_seen[0])
            return;
        g_seen[g_nseen].code = x->code;
        g_seen[g_nseen++].sub = sub ? x->p[0] : 0;
    }
    g_seen[i].n++;
}

static void print_seen(void)
{
    fprintf(stderr, "fuzz_pool: %llu inputs, %llu operations; bug checks expected and matched:\n",
            (unsigned long long)g_inputs, (unsigned long long)g_ops);
    for (unsigned i = 0; i < g_nseen; i++)
        fprintf(stderr, "  0x%lx/0x%llx %llu\n", g_seen[i].code, (unsigned long long)g_seen[i].sub,
                (unsigned long long)g_seen[i].n);
}

/* Every expected bug check was raised exactly once, and nothing else was. */
static void match(void)
{
    bool used[MAXX] = {false};
    const char *why = NULL;
    unsigned bad = MAXX;
    for (unsigned i = 0; i < g_nx && bad == MAXX; i++) {
        unsigned j;
        for (j = 0; j < g_nc; j++)
            if (!used[j] && !differs(&g_x[i], &g_c[j]))
                break;
        if (j < g_nc)
            used[j] = true;
        else
            bad = i;
    }
    if (bad == MAXX && g_nc == g_nx) {
        for (unsigned i = 0; g_stats && i < g_nx; i++)
            count_seen(&g_x[i]);
        return;
    }
    fprintf(stderr, "\nfuzz_pool: expected %u bug checks, captured %u\n", g_nx, g_nc);
    for (unsigned i = 0; i < g_nx; i++) {
        print_bc(i == bad ? "expected (MISSING)" : "expected", g_x[i].code, g_x[i].p, &g_x[i].blk);
        fprintf(stderr, "    routine %s line %d irql %d hist %u damage %u@%ld/%zu %u@%ld/%zu\n",
                g_x[i].routine, g_x[i].line, g_x[i].irql, g_x[i].hist, g_x[i].dmg[0].kind,
                (long)g_x[i].dmg[0].offset, g_x[i].dmg[0].count, g_x[i].dmg[1].kind,
                (long)g_x[i].dmg[1].offset, g_x[i].dmg[1].count);
    }
    for (unsigned j = 0; j < g_nc; j++) {
        const poolsim_bugcheck *bc = &g_c[j].bc;
        xblock b = {bc->has_block, bc->block.address,   bc->block.size,
                    bc->block.tag, bc->block.pool_type, bc->block.state};
        print_bc("captured", bc->code, bc->param, &b);
        fprintf(stderr, "    routine %s line %d hist %u last_to %u damage %u@%ld/%zu %u@%ld/%zu\n",
                bc->site.routine ? bc->site.routine : "(null)", bc->site.line, bc->irql_history_count,
                g_c[j].last_to, bc->damage[0].kind, (long)bc->damage[0].offset, bc->damage[0].count,
                bc->damage[1].kind, (long)bc->damage[1].offset, bc->damage[1].count);
        if (bad < g_nx && (why = differs(&g_x[bad], &g_c[j])) != NULL)
            fprintf(stderr, "    (differs from the missing one in %s)\n", why);
    }
    fail("the bug checks raised are not the ones the model expects");
}

/* ---- Counters ----------------------------------------------------------------------------------------- */

static mtag *tag_row(uint32_t tag, bool create)
{
    uint32_t t = tag & ~PROT;
    for (unsigned i = 0; i < M.ntags; i++)
        if (M.tags[i].tag == t)
            return &M.tags[i];
    if (!create)
        return NULL;
    CHECK(M.ntags < MAXTAGS, "model: tag table full");
    mtag *e = &M.tags[M.ntags++];
    memset(e, 0, sizeof *e);
    e->tag = t;
    return e;
}

static void count_failed(uint32_t tag, unsigned pool)
{
    uint32_t t = tag & ~PROT;
    if (t != 0 && t != TAG_BIG)
        tag_row(tag, true)->failed[pool]++;
    M.failed++;
}

static void count_site(int line, poolsim_routine rt, uint32_t tag)
{
    if (!M.opt.track_sites)
        return;
    tag &= ~PROT;
    for (unsigned i = 0; i < M.nsites; i++)
        if (M.sites[i].line == line && M.sites[i].rt == rt && M.sites[i].tag == tag)
            return;
    CHECK(M.nsites < MAXSITES, "model: site table full");
    M.sites[M.nsites].line = line;
    M.sites[M.nsites].rt = rt;
    M.sites[M.nsites].tag = tag;
    M.nsites++;
}

static void check_stats(void)
{
    poolsim_stats s;
    poolsim_get_stats(&s);
#define EQ(field, want)                                                                                      \
    CHECK(s.field == (want), "stats." #field " is %llu, the model says %llu", (unsigned long long)s.field,   \
          (unsigned long long)(want))
    EQ(allocs, M.allocs);
    EQ(frees, M.frees);
    EQ(failed, M.failed);
    EQ(live_blocks, M.live);
    EQ(peak_blocks, M.peak_live);
    EQ(nonpaged_bytes, M.bytes[0]);
    EQ(paged_bytes, M.bytes[1]);
    EQ(peak_nonpaged_bytes, M.peak_bytes[0]);
    EQ(peak_paged_bytes, M.peak_bytes[1]);
    EQ(bugchecks, M.bugchecks);
    EQ(faults_injected, M.injected);
    EQ(tags, M.ntags);
    EQ(sites, M.nsites);
#undef EQ
    CHECK(poolsim_sequence() == M.seq, "poolsim_sequence() is %llu, the model says %llu",
          (unsigned long long)poolsim_sequence(), (unsigned long long)M.seq);
    CHECK(poolsim_irql() == M.irql, "the IRQL is %u, the model says %u", poolsim_irql(), M.irql);
    CHECK(poolsim_thread_locks(NULL, 0) == M.nheld, "the thread holds %zu locks, the model says %u",
          poolsim_thread_locks(NULL, 0), M.nheld);
    CHECK(poolsim_thread_critical_regions() == M.critical, "critical regions %u, the model says %u",
          poolsim_thread_critical_regions(), M.critical);
    /* The lock words (docs/semantics.md): held, the owner's block with bit 0 set and the kind bits;
     * free, 0, 2 (last used queued) or 4 (last used as an ordinary lock). */
    for (unsigned i = 0; i < NLOCKS; i++) {
        uintptr_t w = g_locks[i], want = (M.lock_held[i] ? 1u : 0u) | M.lock_kinds[i];
        CHECK((M.lock_held[i] ? w & 7u : w) == want && (!M.lock_held[i] || w > 7u),
              "spin lock %u's word is 0x%llx; the model says %s, kind bits 0x%x", i, (unsigned long long)w,
              M.lock_held[i] ? "held" : "free", M.lock_kinds[i]);
    }
    for (unsigned i = 0; i < NMUTEX; i++)
        CHECK(M.mutex_held[i] ? ((uintptr_t)g_mutex[i].owner & 1u) != 0 : g_mutex[i].owner == NULL,
              "fast mutex %u's owner is %p; the model says %s", i, g_mutex[i].owner,
              M.mutex_held[i] ? "held" : "free");
    poolsim_irql_event ev;
    if (M.hist) {
        CHECK(poolsim_thread_history(&ev, 1) == 1, "no IRQL history after %u transitions", M.hist);
        CHECK(ev.to == M.irql, "the last IRQL transition says %u, the IRQL is %u (routine %s)", ev.to, M.irql,
              poolsim_irql_routine_name((poolsim_irql_routine)ev.routine));
    }
}

static void check_tags(void)
{
    for (unsigned i = 0; i < M.ntags; i++) {
        const mtag *e = &M.tags[i];
        poolsim_tag_usage_t u;
        CHECK(poolsim_tag_usage(e->tag, &u), "poolsim_tag_usage(0x%x) is false", e->tag);
        CHECK(u.tag == e->tag, "poolsim_tag_usage(0x%x).tag is 0x%x", e->tag, u.tag);
        for (unsigned pool = 0; pool < 2; pool++) {
            const poolsim_pool_counters *c = pool ? &u.paged : &u.nonpaged;
            CHECK(c->allocs == e->allocs[pool] && c->frees == e->frees[pool] && c->bytes == e->bytes[pool] &&
                      c->peak_bytes == e->peak[pool] && c->failed == e->failed[pool],
                  "tag 0x%x pool %u: allocs %llu frees %llu bytes %llu peak %llu failed %llu; the model says "
                  "%llu %llu %llu %llu %llu",
                  e->tag, pool, (unsigned long long)c->allocs, (unsigned long long)c->frees,
                  (unsigned long long)c->bytes, (unsigned long long)c->peak_bytes,
                  (unsigned long long)c->failed, (unsigned long long)e->allocs[pool],
                  (unsigned long long)e->frees[pool], (unsigned long long)e->bytes[pool],
                  (unsigned long long)e->peak[pool], (unsigned long long)e->failed[pool]);
        }
    }
}

/* ---- Blocks ------------------------------------------------------------------------------------------- */

/* The pages a block's slot or run may use: its page, or the guard page, the block and the slack. */
static void page_range(const mblock *b, uintptr_t *lo, uintptr_t *hi)
{
    uintptr_t p = (uintptr_t)b->p;
    if (b->big) {
        *lo = p - PAGE;
        *hi = p + ((b->size + GRAN + PAGE - 1) / PAGE + 1) * PAGE;
    } else {
        *lo = p & ~(uintptr_t)(PAGE - 1);
        *hi = *lo + PAGE;
    }
}

#define NOT_CACHED 0x100u /* pick_block: leave out the entries lookaside lists hold */

/* The k-th block in a state of `mask` (1 << ST_*), or -1. */
static int pick_block(uint8_t k, unsigned mask)
{
    int idx[MAXB], n = 0;
    for (int i = 0; i < MAXB; i++)
        if (M.b[i].state != ST_NONE && (mask & (1u << M.b[i].state)) &&
            !((mask & NOT_CACHED) && M.b[i].cached))
            idx[n++] = i;
    return n ? idx[k % n] : -1;
}

static bool is_big(const void *p) { return ((uintptr_t)p & (PAGE - 1)) == 0; }

static uintptr_t header_word(const mblock *b)
{
    uintptr_t v = 0;
    if (!b->big)
        memcpy(&v, b->p - GRAN, sizeof v);
    return v;
}

static size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

/* Offset from a block of one past its last guarded byte: its slot's end (footer_bytes at least after
 * the block, rounded to the slot alignment), or a big run's end. */
static size_t guard_tail(const mblock *b)
{
    if (b->big)
        return round_up(b->size + GRAN, PAGE);
    return round_up((b->size ? b->size : 1) + M.opt.footer_bytes, (b->pool_type & PT_CACHE) ? 64u : GRAN);
}

/* Guarded bytes after a block a write or a bad free may aim at: up to GRAN, all in the block's slot. */
static size_t tail_span(const mblock *b)
{
    size_t span = guard_tail(b) - b->size;
    return span < GRAN ? span : GRAN;
}

/* True when n bytes at p all hold v: a page-sized pattern and memcmp, so the check costs little in the
 * instrumented harness even for a block of a megabyte. */
static bool all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
    static uint8_t pattern[PAGE];
    static int filled = -1;
    if (filled != v) {
        memset(pattern, v, sizeof pattern);
        filled = v;
    }
    for (size_t done = 0; done < n; done += PAGE)
        if (memcmp(p + done, pattern, n - done < PAGE ? n - done : PAGE) != 0)
            return false;
    return true;
}

static size_t first_not(const uint8_t *p, size_t n, uint8_t v)
{
    size_t i = 0;
    while (i < n && p[i] == v)
        i++;
    return i;
}

/* Builds the damage bug check of a block the model knows to be damaged; false when intact. */
static bool damage_expect(mblock *b, const char *routine, int line)
{
    if (!b->ndmg)
        return false;
    xdamage reg[3];
    memset(reg, 0, sizeof reg);
    for (unsigned i = 0; i < b->ndmg; i++) {
        int32_t off = b->dmg[i].off;
        unsigned r = off < 0 ? 1 : (size_t)off < b->size ? 0 : 2; /* after free, underrun, overrun */
        if (!reg[r].count || off < reg[r].offset)
            reg[r].offset = off;
        reg[r].count++;
        reg[r].kind = r == 0   ? POOLSIM_DAMAGE_AFTER_FREE
                      : r == 1 ? POOLSIM_DAMAGE_UNDERRUN
                               : POOLSIM_DAMAGE_OVERRUN;
    }
    xdamage d[2];
    unsigned n = 0;
    memset(d, 0, sizeof d);
    for (unsigned r = 0; r < 3 && n < 2; r++)
        if (reg[r].count)
            d[n++] = reg[r];
    uintptr_t p = (uintptr_t)b->p, first = p + (uintptr_t)d[0].offset;
    expect *x;
    if (d[0].kind == POOLSIM_DAMAGE_AFTER_FREE)
        x = verifier() ? x_new(0xC6, first, 1, 0, 0, routine, line)
                       : x_new(0x13A, 0x0B, p, first, 0, routine, line);
    else if (d[0].kind == POOLSIM_DAMAGE_UNDERRUN)
        x = verifier() ? x_new(0xC4, 0x53, p, p - GRAN, 0, routine, line)
                       : x_new(0x19, 0x07, 0, 0, p - GRAN, routine, line);
    else {
        uint64_t word;
        memcpy(&word, (const void *)(first & ~(uintptr_t)7), sizeof word);
        x = verifier() ? x_new(0xC4, 0x51, p, first, b->size, routine, line)
                       : x_new(0x19, 0x21, p, b->size, (uintptr_t)word, routine, line);
    }
    x_block(x, b);
    memcpy(x->dmg, d, sizeof d);
    b->repair = true;
    return true;
}

/* Puts back the bytes of every block whose damage was reported in this operation. */
static void repair(void)
{
    for (int i = 0; i < MAXB; i++) {
        mblock *b = &M.b[i];
        if (!b->repair)
            continue;
        for (unsigned k = 0; k < b->ndmg; k++)
            b->p[b->dmg[k].off] = b->dmg[k].orig;
        b->ndmg = 0;
        b->repair = false;
    }
}

/* Writes a byte that differs from what poolsim expects there, remembering the expected one. */
static void plant(mblock *b, int32_t off, uint8_t v)
{
    uint8_t flip = v ? v : 0x5A;
    for (unsigned i = 0; i < b->ndmg; i++)
        if (b->dmg[i].off == off) {
            b->p[off] = (uint8_t)(b->dmg[i].orig ^ flip);
            return;
        }
    if (b->ndmg == MAXDMG)
        return;
    b->dmg[b->ndmg].off = off;
    b->dmg[b->ndmg].orig = b->p[off];
    b->ndmg++;
    b->p[off] = (uint8_t)(b->p[off] ^ flip);
}

/* ---- Quarantine --------------------------------------------------------------------------------------- */

/* True when a block leaving the quarantine shows its damage: any guard byte, or a poison byte within
 * quarantine_check bytes of either end (0: anywhere). poolsim_validate and shutdown check everything. */
static bool seen_at_eviction(const mblock *b)
{
    uint64_t e = M.opt.quarantine_check;
    for (unsigned i = 0; i < b->ndmg; i++) {
        int32_t off = b->dmg[i].off;
        if (off < 0 || (size_t)off >= b->size || !e || b->size <= e || b->size - e <= e ||
            (uint64_t)off < e || (uint64_t)off >= b->size - e)
            return true;
    }
    return false;
}

/* The free of block s succeeded: it is quarantined, or released at once; the oldest
 * quarantined blocks leave while the quarantine is over a limit, and each damaged one is
 * reported at the free that pushed it out. */
static void quarantine(int s, const char *routine, int line)
{
    mblock *b = &M.b[s];
    uint64_t qb = M.opt.quarantine_bytes;
    if (!qb || !M.opt.quarantine_blocks || b->size > qb) {
        b->state = ST_REL;
        return;
    }
    M.q[(M.qhead + M.qcount++) % MAXB] = s;
    M.qbytes += b->size;
    b->state = ST_QUAR;
    while (M.qcount && (M.qcount > M.opt.quarantine_blocks || M.qbytes > qb)) {
        mblock *old = &M.b[M.q[M.qhead]];
        M.qhead = (M.qhead + 1) % MAXB;
        M.qcount--;
        M.qbytes -= old->size;
        if (seen_at_eviction(old))
            damage_expect(old, routine, line);
        else
            old->ndmg = 0; /* released with its damage unseen, as documented */
        old->state = ST_REL;
    }
}

/* ---- Allocation --------------------------------------------------------------------------------------- */

#define R_TAGGED 0x01u
#define R_QUOTA 0x02u
#define R_ZERO 0x04u
#define R_FLAGS 0x08u
#define R_CONTIG 0x10u
#define R_NONCACHED 0x20u

static unsigned rt_info(poolsim_routine rt)
{
    switch (rt) {
    case POOLSIM_RT_EX_ALLOCATE_POOL:
        return 0;
    case POOLSIM_RT_EX_ALLOCATE_POOL_WITH_QUOTA:
        return R_QUOTA;
    case POOLSIM_RT_EX_ALLOCATE_POOL_WITH_QUOTA_TAG:
    case POOLSIM_RT_EX_ALLOCATE_POOL_QUOTA_UNINITIALIZED:
        return R_TAGGED | R_QUOTA;
    case POOLSIM_RT_EX_ALLOCATE_POOL_QUOTA_ZERO:
        return R_TAGGED | R_QUOTA | R_ZERO;
    case POOLSIM_RT_EX_ALLOCATE_POOL_ZERO:
    case POOLSIM_RT_EX_ALLOCATE_POOL_PRIORITY_ZERO:
        return R_TAGGED | R_ZERO;
    case POOLSIM_RT_EX_ALLOCATE_POOL2:
    case POOLSIM_RT_EX_ALLOCATE_POOL3:
        return R_TAGGED | R_FLAGS;
    case POOLSIM_RT_MM_ALLOCATE_CONTIGUOUS_MEMORY:
    case POOLSIM_RT_MM_ALLOCATE_CONTIGUOUS_MEMORY_SPECIFY_CACHE:
        return R_CONTIG;
    case POOLSIM_RT_MM_ALLOCATE_NONCACHED_MEMORY:
        return R_NONCACHED;
    default: /* WithTag, WithTagPriority, Uninitialized, PriorityUninitialized */
        return R_TAGGED;
    }
}

static const poolsim_routine alloc_rts[16] = {
    POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG,
    POOLSIM_RT_EX_ALLOCATE_POOL2,
    POOLSIM_RT_EX_ALLOCATE_POOL3,
    POOLSIM_RT_EX_ALLOCATE_POOL,
    POOLSIM_RT_EX_ALLOCATE_POOL_WITH_QUOTA,
    POOLSIM_RT_EX_ALLOCATE_POOL_WITH_QUOTA_TAG,
    POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG_PRIORITY,
    POOLSIM_RT_EX_ALLOCATE_POOL_ZERO,
    POOLSIM_RT_EX_ALLOCATE_POOL_QUOTA_ZERO,
    POOLSIM_RT_EX_ALLOCATE_POOL_PRIORITY_ZERO,
    POOLSIM_RT_EX_ALLOCATE_POOL_UNINITIALIZED,
    POOLSIM_RT_EX_ALLOCATE_POOL_QUOTA_UNINITIALIZED,
    POOLSIM_RT_EX_ALLOCATE_POOL_PRIORITY_UNINITIALIZED,
    POOLSIM_RT_MM_ALLOCATE_CONTIGUOUS_MEMORY,
    POOLSIM_RT_MM_ALLOCATE_CONTIGUOUS_MEMORY_SPECIFY_CACHE,
    POOLSIM_RT_MM_ALLOCATE_NONCACHED_MEMORY,
};

/* Legacy POOL_TYPE values: the ones a driver may ask for, then MustSucceed and undefined ones. */
static const uint64_t legacy_types[24] = {
    0, 1,     4, 5, 0x20, 0x21, 0x24, 0x200, 0x204, 0x220,   0x200,       0,
    1, 0x200, 2, 3, 6,    7,    0x22, 0x40,  0x800, 0x10000, 0xFFFFFFFFu, 1ull << 40,
};
/* The request bits ORed on: raise, quota-fail-instead-of-raise, zero, cold. */
static const uint64_t legacy_bits[8] = {
    0, 0, 0, PT_RAISE, PT_QUOTA_FAIL, PT_ZERO, PT_COLD, PT_RAISE | PT_ZERO};

/* POOL_FLAGS pool kinds, good and bad. Bit 32 (POOL_FLAG_SPECIAL_POOL) is never used: it means
 * special pool, whose pages trap a one-byte overrun. */
static const uint64_t flag_kinds[16] = {
    PF_NP,
    PF_PAGED,
    PF_NPX,
    PF_NP,
    PF_PAGED,
    PF_NP | (1ull << 40),
    PF_PAGED | (1ull << 63),
    0,
    PF_NP | PF_PAGED,
    PF_PAGED | 0x4 /* SESSION */,
    PF_NP | 0x10,
    PF_NP | 0x200,
    PF_NP | 0x400,
    PF_NP | 0x80000000u,
    1 /* a POOL_TYPE passed as flags */,
    PF_NP | PF_NPX,
};
static const uint64_t flag_bits[8] = {0, PF_UNINIT, PF_CACHE, PF_RAISE, PF_QUOTA, PF_UNINIT | PF_CACHE, 0, 0};

static const uint32_t good_tags[10] = {
    TAG4('X', 'T', 'a', 'g'),
    TAG4('P', 'o', 'o', 'l'),
    TAG4('T', 'a', 'g', '1'),
    TAG4('A', 'B', 'C', 'D'),
    TAG4('a', ' ', 'b', ' '),
    TAG4('x', 0, 0, 0),
    TAG_MMCT,
    TAG_NONE,
    TAG4('9', '9', '9', '9'),
    TAG4('Z', 'z', ' ', ' '),
};
static const uint32_t bad_tags[6] = {
    0xFFFFFFFFu,
    TAG4('a', 0, 'b', 0),
    TAG4(' ', ' ', ' ', ' '),
    TAG4('-', '-', '-', '-'),
    TAG4('a', 'b', 'c', 0x7F),
    TAG4(0, 'a', 'b', 'c'),
};

static uint32_t pick_tag(uint8_t s)
{
    switch (s % 16) {
    case 10:
        return 0;
    case 11:
        return PROT | good_tags[(s >> 4) % 10];
    case 12:
        return PROT;
    case 13:
        return TAG_BIG;
    case 14:
        return u32();
    case 15:
        return bad_tags[(s >> 4) % 6];
    default:
        return good_tags[s % 16];
    }
}

/* docs/semantics.md "tag without letters or digits, or with bytes outside 0x20-0x7E": the tag's
 * characters come first, zero bytes only pad the end. */
static bool tag_well_formed(uint32_t tag)
{
    unsigned len = 0;
    bool alnum = false;
    while (len < 4 && ((tag >> (8 * len)) & 0xFFu) != 0)
        len++;
    if (len < 4 && (tag >> (8 * len)) != 0)
        return false; /* a character after a zero byte */
    for (unsigned i = 0; i < len; i++) {
        unsigned c = (tag >> (8 * i)) & 0xFFu;
        if (c < 0x20 || c > 0x7E)
            return false;
        alnum = alnum || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
    }
    return alnum;
}

static size_t pick_size(uint8_t s)
{
    static const size_t edges[12] = {0xFE0, 0xFE1,  0xFD0,  0xFB0,  4016,   4017,
                                     0xFFF, 0x1000, 0x1001, 0x1FF0, 0x2000, 0x2001};
    switch (s % 8) {
    case 0:
        return 0;
    case 1:
        return 1u + u8() % 64u;
    case 2:
        return 65u + u16() % (SMALL_MAX - 64u);
    case 3:
        return edges[u8() % 12];
    case 4:
        return SMALL_MAX + 1u + u16() % 0xF000u;
    case 5:
        return (size_t)u16() << 4; /* up to 1 MiB: sometimes above the pool limit */
    case 6: {
        uint64_t lim = M.limit[s >> 7];
        const size_t huge[8] = {(size_t)lim,  (size_t)lim + 1,  SIZE_MAX,        SIZE_MAX - 15,
                                SIZE_MAX / 2, SIZE_MAX / 2 + 1, (size_t)1 << 40, (size_t)lim - 16};
        return huge[(s >> 3) % 8];
    }
    default:
        return GRAN * (1u + u8() % 8u);
    }
}

typedef struct mreq {
    uint32_t pool_type;
    unsigned pool;
    bool cache, zero, quota, raise, bad;
} mreq;

/* A legacy POOL_TYPE: NonPaged/Paged, CacheAligned, Session and Nx, with the request bits ORed on;
 * any other bit (MustSucceed, DontUseThisType, undefined ones) makes it a bad type (C2/0x9A). */
static void decode_type(uint64_t t, unsigned ri, mreq *q)
{
    const uint64_t kind_bits = PT_PAGED | PT_CACHE | PT_SESSION | PT_NX;
    const uint64_t request_bits = PT_QUOTA_FAIL | PT_RAISE | PT_COLD | PT_ZERO;
    q->bad = (t & ~(kind_bits | request_bits)) != 0;
    q->pool_type = (uint32_t)(t & kind_bits);
    q->pool = (unsigned)(t & PT_PAGED);
    q->cache = (t & PT_CACHE) != 0;
    q->zero = (ri & R_ZERO) != 0 || (t & PT_ZERO) != 0;
    q->quota = (ri & R_QUOTA) != 0;
    q->raise = q->quota ? (t & PT_QUOTA_FAIL) == 0 : (t & PT_RAISE) != 0;
}

static bool ext_ok(const poolsim_ext_param *ext, uint32_t count, uint64_t flags)
{
    if (count && !ext)
        return false;
    for (uint32_t i = 0; i < count; i++) {
        unsigned type = (unsigned)(ext[i].type_and_flags & 0xFFu);
        bool optional = (ext[i].type_and_flags >> 8) & 1u;
        if (!(type == 1 || (type == 3 && (flags & PF_NP))) && !optional)
            return false;
    }
    return true;
}

static void decode_flags(uint64_t f, const poolsim_ext_param *ext, uint32_t count, mreq *q)
{
    const uint64_t known = PF_QUOTA | PF_UNINIT | PF_CACHE | PF_RAISE | PF_NP | PF_NPX | PF_PAGED;
    unsigned kinds = !!(f & PF_NP) + !!(f & PF_NPX) + !!(f & PF_PAGED);
    q->raise = (f & PF_RAISE) != 0;
    q->bad = (f & 0xFFFFFFFFull & ~known) != 0 || kinds != 1 || !ext_ok(ext, count, f);
    q->pool = (f & PF_PAGED) ? 1u : 0u;
    q->pool_type = (f & PF_PAGED) ? 1u : (f & PF_NP) ? PT_NX : 0u;
    q->cache = (f & PF_CACHE) != 0;
    if (q->cache)
        q->pool_type |= PT_CACHE;
    q->zero = !(f & PF_UNINIT);
    q->quota = (f & PF_QUOTA) != 0;
}

/* Checks what poolsim handed out: placement, contents, header, size and record. */
static void check_new_block(const mblock *b, bool zero)
{
    uintptr_t p = (uintptr_t)b->p;
    if (b->alloc != AL_POOL || b->size > SMALL_MAX)
        CHECK(is_big(b->p), "block %p of 0x%zx bytes is not page-aligned", b->p, b->size);
    CHECK(p % ((b->pool_type & PT_CACHE) ? 64u : GRAN) == 0, "block %p is misaligned", b->p);
    if (!b->big)
        CHECK((p & (PAGE - 1)) + b->size <= PAGE, "small block %p of 0x%zx bytes crosses a page", b->p,
              b->size);
    if (zero || M.opt.fill_uninit) {
        uint8_t want = zero ? 0 : (uint8_t)M.opt.uninit_byte;
        size_t i = all_bytes(b->p, b->size, want) ? b->size : first_not(b->p, b->size, want);
        CHECK(i == b->size, "block %p byte 0x%zx is 0x%02x, not 0x%02x", b->p, i, b->p[i], want);
    }
    if (!b->big && M.opt.guards) {
        /* The x64 POOL_HEADER: Ulong1 (BlockSize in bits 16-23, PoolType + 1 in bits 24-31), then the tag. */
        uint64_t h;
        memcpy(&h, b->p - GRAN, sizeof h);
        uint64_t units = (GRAN + round_up(b->size ? b->size : 1, GRAN)) / GRAN;
        uint64_t want = (units & 0xFF) << 16 | (uint64_t)(((b->pool_type & 0x7F) + 1) & 0xFF) << 24 |
                        (uint64_t)b->tag << 32;
        CHECK((h & ~(uint64_t)0xFFFF) == want, "block %p header 0x%llx, want 0x%llx (PreviousSize masked)",
              b->p, (unsigned long long)h, (unsigned long long)want);
    }
    poolsim_block_info info;
    CHECK(poolsim_find_block(b->p, &info), "poolsim_find_block(%p) is false for a new block", b->p);
    CHECK(info.address == b->p && info.size == b->size && info.tag == b->tag &&
              info.pool_type == b->pool_type && info.state == POOLSIM_BLOCK_LIVE && info.alloc_seq == M.seq &&
              info.quota_charged == b->quota,
          "poolsim_find_block(%p): size 0x%zx tag 0x%x type 0x%x state %d seq %llu quota %d", b->p, info.size,
          info.tag, info.pool_type, (int)info.state, (unsigned long long)info.alloc_seq, info.quota_charged);
    if (b->alloc == AL_POOL) {
        bool qc = false;
        size_t want = b->big ? round_up(b->size, PAGE) : round_up(b->size ? b->size : 1, GRAN);
        size_t got = poolsim_pool_block_size(b->p, &qc, g_file, 1);
        CHECK(got == want && qc == b->quota,
              "ExQueryPoolBlockSize(%p) is 0x%zx quota %d, want 0x%zx quota %d", b->p, got, qc, want,
              b->quota);
    }
}

static poolsim_alloc_req make_req(poolsim_routine rt, uint64_t type, size_t n, uint32_t tag)
{
    poolsim_alloc_req req;
    memset(&req, 0, sizeof req);
    req.routine = rt;
    req.type = type;
    req.size = n;
    req.tag = tag;
    return req;
}

/* Makes an allocation: poolsim_pool_alloc, or a lookaside list's allocation from the pool. */
typedef void *alloc_call(const poolsim_alloc_req *req, int32_t *raise, int line, void *ctx);

static void *call_pool_alloc(const poolsim_alloc_req *req, int32_t *raise, int line, void *ctx)
{
    (void)ctx;
    return poolsim_pool_alloc(req, raise, g_file, line);
}

/* The model of poolsim_pool_alloc around the call: the bug checks, the result, the counters and the new
 * block's checks. Returns the block's index, or -1 when nothing was allocated (or the model has no room:
 * then nothing is called). */
static int model_alloc(const poolsim_alloc_req *req, int line, alloc_call *call, void *ctx)
{
    const poolsim_routine rt = req->routine;
    const unsigned ri = rt_info(rt);
    const uint64_t type = req->type;
    const size_t n = req->size;
    const uint32_t tag = req->tag;
    int slot = -1;
    for (int i = 0; i < MAXB && slot < 0; i++)
        if (M.b[i].state == ST_NONE)
            slot = i;
    if (slot < 0)
        return -1; /* the model tracks MAXB blocks; this one is not made */

    /* The model: pool type or flags, tag, size 0, IRQL, fault injection, size and pool limit. */
    uint32_t t = (ri & R_TAGGED) ? tag : TAG_NONE;
    mreq q;
    memset(&q, 0, sizeof q);
    bool refused = false, bugcheck = false;
    const char *name = poolsim_routine_name(rt);
    if (ri & (R_CONTIG | R_NONCACHED)) {
        t = (ri & R_CONTIG) ? TAG_MMCT : TAG_MMNC;
        refused = n == 0;
    } else if (ri & R_FLAGS) {
        decode_flags(type, req->ext, req->ext_count, &q);
        refused = q.bad || (t & ~PROT) == 0;
    } else {
        decode_type(type, ri, &q);
        if (q.bad)
            x_new(0xC2, 0x9A, (uintptr_t)type, n, t, name, line), bugcheck = true;
        else if ((t & ~PROT) == 0)
            x_new(0xC2, 0x9B, q.pool_type, n, 0, name, line), bugcheck = true;
    }
    uint32_t tm = t & ~PROT;
    if (!refused && !bugcheck) {
        if (tm == TAG_BIG)
            x_new(0xC2, 0x9C, q.pool_type, n, 0, name, line), bugcheck = true;
        else if (verifier() && !tag_well_formed(tm))
            x_new(0xC2, 0x9D, t, q.pool_type, 0, name, line), bugcheck = true;
        else if (n == 0 && M.opt.zero_size_check)
            verifier() ? x_new(0xC4, 0x00, M.irql, q.pool_type, 0, name, line)
                       : x_new(0xC2, 0x00, 0, q.pool_type, t, name, line),
                bugcheck = true;
        else if ((ri & R_NONCACHED) && M.irql > APC)
            x_irql(0xC4, 0x20019, 0, M.irql, n, name, line)->rule = rule_mm_apc, bugcheck = true;
        else if (M.irql > (q.pool ? APC : DPC)) {
            verifier() ? x_irql(0xC4, q.pool ? 0x01 : 0x02, M.irql, q.pool_type, n, name, line)
                       : x_irql(0xC2, 0x08, M.irql, q.pool_type, n, name, line);
            bugcheck = true;
        } else {
            if (M.nth) {
                uint64_t k = ++M.fcount;
                if (k == M.nth || (M.persistent && k > M.nth))
                    refused = true, M.injected++;
            }
            uint64_t lim = M.limit[q.pool];
            if (!refused &&
                ((uint64_t)n > (uint64_t)(SIZE_MAX / 2) || (uint64_t)n > lim || M.bytes[q.pool] + n > lim))
                refused = true;
        }
    }
    if (refused || bugcheck)
        count_failed(t, q.pool);
    int32_t want_raise = refused && q.raise ? STATUS_INSUFFICIENT_RESOURCES : 0;

    int32_t raise = 0x1234;
    void *p = call(req, &raise, line, ctx);
    CHECK(raise == want_raise, "raise status 0x%x, the model says 0x%x", (unsigned)raise,
          (unsigned)want_raise);
    if (refused || bugcheck) {
        CHECK(p == NULL, "the allocation returned %p; the model says it fails", p);
        return -1;
    }
    CHECK(p != NULL, "the allocation failed; the model says it succeeds");

    mblock *b = &M.b[slot];
    memset(b, 0, sizeof *b);
    b->state = ST_LIVE;
    b->p = (uint8_t *)p;
    b->size = n;
    b->tag = t;
    b->pool_type = q.pool_type;
    b->pool = q.pool;
    b->alloc = (ri & R_CONTIG) ? AL_CONTIG : (ri & R_NONCACHED) ? AL_NONCACHED : AL_POOL;
    b->big = is_big(p);
    b->quota = q.quota && n < PAGE;
    /* Records of released blocks whose pages the new block uses are gone; a block a live or
     * quarantined one overlaps was handed out twice. */
    uintptr_t lo, hi, lo2, hi2;
    page_range(b, &lo, &hi);
    for (int i = 0; i < MAXB; i++) {
        mblock *o = &M.b[i];
        if (i == slot || o->state == ST_NONE)
            continue;
        page_range(o, &lo2, &hi2);
        if (lo2 >= hi || lo >= hi2)
            continue;
        if (o->state == ST_REL) {
            o->state = ST_NONE;
            continue;
        }
        uintptr_t a = (uintptr_t)p, e = a + (n ? n : 1), oa = (uintptr_t)o->p,
                  oe = oa + (o->size ? o->size : 1);
        CHECK(e <= oa || oe <= a, "block %p (0x%zx) overlaps the %s block %p (0x%zx)", p, n,
              o->state == ST_LIVE ? "live" : "quarantined", o->p, o->size);
    }
    M.allocs++;
    M.seq++;
    M.live++;
    if (M.live > M.peak_live)
        M.peak_live = M.live;
    M.bytes[b->pool] += n;
    if (M.bytes[b->pool] > M.peak_bytes[b->pool])
        M.peak_bytes[b->pool] = M.bytes[b->pool];
    mtag *e = tag_row(t, true);
    e->allocs[b->pool]++;
    e->bytes[b->pool] += n;
    if (e->bytes[b->pool] > e->peak[b->pool])
        e->peak[b->pool] = e->bytes[b->pool];
    count_site(line, rt, t);
    check_new_block(b, q.zero);
    return slot;
}

static void op_alloc(void)
{
    uint8_t rsel = u8(), tsel = u8(), ssel = u8(), gsel = u8();
    poolsim_routine rt = alloc_rts[rsel % 16];
    unsigned ri = rt_info(rt);
    int line = 100 + (rsel >> 4) % 4;
    uint64_t type;
    poolsim_ext_param ext[3];
    uint32_t ext_count = 0;
    const poolsim_ext_param *extp = NULL;
    if (ri & R_FLAGS) {
        type = flag_kinds[tsel % 16] | flag_bits[(tsel >> 4) % 8];
        if (rt == POOLSIM_RT_EX_ALLOCATE_POOL3) {
            static const uint64_t ext_types[4] = {1, 3, 2, 9};
            uint8_t e = u8(), o = u8();
            ext_count = e % 4u;
            extp = (e & 4) && ext_count ? NULL : ext;
            for (uint32_t i = 0; i < ext_count; i++) {
                ext[i].type_and_flags = ext_types[(e >> (3 + 2 * i)) & 3] | ((uint64_t)((o >> i) & 1) << 8);
                ext[i].value = o;
            }
        }
    } else {
        type = legacy_types[tsel % 24] | legacy_bits[(tsel >> 5) % 8];
    }
    size_t n = pick_size(ssel);
    uint32_t tag = pick_tag(gsel);
    op_name("alloc %s type 0x%llx size 0x%zx tag 0x%x ext %u%s", poolsim_routine_name(rt),
            (unsigned long long)type, n, tag, ext_count, ext_count && !extp ? " (NULL)" : "");

    poolsim_alloc_req req = make_req(rt, type, n, tag);
    req.priority = gsel;
    req.ext = extp;
    req.ext_count = ext_count;
    model_alloc(&req, line, call_pool_alloc, NULL);
}

/* ---- Free --------------------------------------------------------------------------------------------- */

/* An address handed to a free or a query: the start of block `slot`, inside it, or no block. */
typedef struct target {
    uint8_t *a;
    int slot;
    bool start;
} target;

/* A pool routine's bug check for an address that is not the start of a block it could free (bad,
 * interior, or inside a freed block), with the block named when there is one. */
static void bad_address_expect(target tg, bool contig, const char *name, int line)
{
    uintptr_t a = (uintptr_t)tg.a;
    mblock *b = tg.slot >= 0 ? &M.b[tg.slot] : NULL;
    expect *x;
    if (contig)
        x = x_new(0xC2, 0x60, a, 0, 0, name, line);
    else if (b && b->state == ST_LIVE)
        x = verifier() ? x_new(0xC4, 0x13E, a, (uintptr_t)b->p, 0, name, line)
                       : x_new(0xC2, 0x99, a, 0, 0, name, line);
    else
        x = verifier() ? x_new(0xC4, 0x10, a, 0, 0, name, line) : x_new(0xC2, 0x46, a, 0, 0, name, line);
    if (b)
        x_block(x, b);
}

static void double_free_expect(mblock *b, const char *name, int line)
{
    uintptr_t a = (uintptr_t)b->p, hw = header_word(b);
    expect *x = verifier() ? x_new(0xC4, 0x13, 0, a - GRAN, hw, name, line)
                           : x_new(0xC2, 0x07, b->tag, (uint32_t)hw, a, name, line);
    x_block(x, b);
}

/* The model of every free: the pool routines (ExFreePool, ExFreePoolWithTag, ExFreePool2) and the Mm
 * ones, for a call made at `line`. Returns true when the block is freed. */
static bool free_model(poolsim_routine rt, target tg, uint32_t tag, uint32_t ext_count, size_t size_given,
                       int line)
{
    const char *name = poolsim_routine_name(rt);
    unsigned kind = rt == POOLSIM_RT_MM_FREE_CONTIGUOUS_MEMORY  ? AL_CONTIG
                    : rt == POOLSIM_RT_MM_FREE_NONCACHED_MEMORY ? AL_NONCACHED
                                                                : AL_POOL;
    uintptr_t a = (uintptr_t)tg.a;
    if (rt != POOLSIM_RT_EX_FREE_POOL_WITH_TAG && rt != POOLSIM_RT_EX_FREE_POOL2)
        tag = 0;
    mblock *b = tg.slot >= 0 ? &M.b[tg.slot] : NULL;
    bool freed = false;
    expect *x = NULL;
    if (ext_count) {
        verifier() ? x_new(0xC4, 0x16, 0, a, 0, name, line) : x_new(0xC2, 0x99, a, 0, 0, name, line);
    } else if (!b || !tg.start) {
        bad_address_expect(tg, kind == AL_CONTIG, name, line);
    } else if (b->state == ST_LIVE && b->alloc != kind) {
        x = kind == AL_CONTIG ? x_new(0xC2, 0x60, a, 0, 0, name, line)
            : verifier()      ? x_new(0xC4, 0x16, 0, a, 0, name, line)
                              : x_new(0xC2, 0x99, a, 0, 0, name, line);
        x_block(x, b);
    } else if (b->state == ST_LIVE && kind == AL_NONCACHED && size_given != b->size) {
        x = verifier() ? x_new(0xC4, 0x13F, a, size_given, 0, name, line)
                       : x_new(0xC2, 0x99, a, 0, 0, name, line);
        x_block(x, b);
    } else if (b->state == ST_LIVE && b->holder && M.lists[NLISTS - 1].live &&
               (uint8_t *)M.lists[NLISTS - 1].l == b->p) {
        x = x_new(0xC4, 0xCC, (uintptr_t)M.lists[NLISTS - 1].l, a, b->size, name,
                  line); /* a live list inside */
        x_block(x, b);
    } else if (b->state != ST_LIVE) {
        double_free_expect(b, name, line);
    } else if (kind == AL_NONCACHED && M.irql > APC) {
        x = x_irql(0xC4, 0x20019, 0, M.irql, a, name, line);
        x->rule = rule_mm_apc;
        x_block(x, b);
    } else if (M.irql > (b->pool ? APC : DPC)) {
        x = verifier() ? x_irql(0xC4, b->pool ? 0x11 : 0x12, M.irql, b->pool_type, a, name, line)
                       : x_irql(0xC2, 0x09, M.irql, b->pool_type, a, name, line);
        x_block(x, b);
    } else if ((tag & ~PROT) != (b->tag & ~PROT) &&
               ((b->tag & PROT) || (tag != 0 && M.opt.tag_check == POOLSIM_TAG_CHECK_STRICT))) {
        x = x_new(0xC2, 0x0A, a, b->tag, tag, name, line);
        x_block(x, b);
    } else if (!damage_expect(b, name, line)) {
        freed = true;
        M.frees++;
        M.seq++;
        M.live--;
        M.bytes[b->pool] -= b->size;
        mtag *e = tag_row(b->tag, false);
        e->frees[b->pool]++;
        e->bytes[b->pool] -= b->size;
        count_site(line, rt, b->tag);
        quarantine(tg.slot, name, line);
    }
    return freed;
}

/* A freed block that went to the quarantine is poisoned. */
static void check_poisoned(const mblock *b)
{
    if (b->state == ST_QUAR && !all_bytes(b->p, b->size, POISON)) {
        size_t i = first_not(b->p, b->size, POISON);
        fail("quarantined block %p byte 0x%zx is 0x%02x, not poisoned", b->p, i, b->p[i]);
    }
}

static void do_free(poolsim_routine rt, target tg, uint32_t tag, uint32_t ext_count, size_t size_given,
                    int line)
{
    bool freed = free_model(rt, tg, tag, ext_count, size_given, line);
    unsigned kind = rt == POOLSIM_RT_MM_FREE_CONTIGUOUS_MEMORY || rt == POOLSIM_RT_MM_FREE_NONCACHED_MEMORY;
    if (!kind)
        poolsim_pool_free(rt, tg.a, tag, ext_count ? (const poolsim_ext_param *)g_static_obj : NULL,
                          ext_count, g_file, line);
    else
        poolsim_mm_free(rt, tg.a, size_given, g_file, line);
    if (freed)
        check_poisoned(&M.b[tg.slot]);
}

static const poolsim_routine free_rts[5] = {
    POOLSIM_RT_EX_FREE_POOL_WITH_TAG,
    POOLSIM_RT_EX_FREE_POOL,
    POOLSIM_RT_EX_FREE_POOL2,
    POOLSIM_RT_MM_FREE_CONTIGUOUS_MEMORY,
    POOLSIM_RT_MM_FREE_NONCACHED_MEMORY,
};

static void op_free(void)
{
    uint8_t ssel = u8(), v = u8(), t = u8();
    int s = pick_block(ssel, 1u << ST_LIVE | 1u << ST_QUAR | 1u << ST_REL | NOT_CACHED);
    if (s < 0) {
        op_name("free (no block)");
        return;
    }
    mblock *b = &M.b[s];
    poolsim_routine rt;
    if (v & 0x80) /* the right routine for the allocator */
        rt = b->alloc == AL_CONTIG      ? POOLSIM_RT_MM_FREE_CONTIGUOUS_MEMORY
             : b->alloc == AL_NONCACHED ? POOLSIM_RT_MM_FREE_NONCACHED_MEMORY
                                        : free_rts[(v & 0x1F) % 3];
    else
        rt = free_rts[(v & 0x1F) % 5];
    uint32_t tag;
    switch (t % 8) {
    case 4:
        tag = b->tag ^ PROT;
        break;
    case 5:
        tag = 0;
        break;
    case 6:
        tag = pick_tag((uint8_t)(t >> 3));
        break;
    case 7:
        tag = b->tag & ~PROT;
        break;
    default:
        tag = b->tag;
        break;
    }
    uint32_t ext_count = rt == POOLSIM_RT_EX_FREE_POOL2 && (v & 0x40) ? 1u + (t >> 7) : 0u;
    size_t size = rt == POOLSIM_RT_MM_FREE_NONCACHED_MEMORY && (v & 0x20) ? b->size + 1 + (t >> 6) : b->size;
    int line = 200 + (t >> 6);
    op_name("free block %d (%p, 0x%zx, state %d) %s tag 0x%x ext %u size 0x%zx", s, b->p, b->size, b->state,
            poolsim_routine_name(rt), tag, ext_count, size);
    target tg = {b->p, s, true};
    do_free(rt, tg, tag, ext_count, size, line);
}

/* An address that is not the start of a block: NULL, the stack, a static, the C heap, or a
 * byte inside (or just around) a block the model knows. */
static target pick_bad_target(uint8_t k, uint8_t *stack_obj)
{
    target tg = {NULL, -1, false};
    uint16_t r = u16();
    switch (k % 6) {
    case 0:
        return tg;
    case 1:
        tg.a = stack_obj + (r % 32);
        return tg;
    case 2:
        tg.a = g_static_obj + (r % 32);
        return tg;
    case 3:
        tg.a = g_heap_obj + (r % 32);
        return tg;
    default:
        break;
    }
    int s = pick_block((uint8_t)(k >> 3), 1u << ST_LIVE | 1u << ST_QUAR | 1u << ST_REL);
    if (s < 0)
        return tg;
    mblock *b = &M.b[s];
    int64_t off;
    if (M.b[s].big && r % 4 == 2)
        off = -(int64_t)(GRAN + 1 + (r >> 2) % (PAGE - GRAN - 1)); /* in the guard page */
    else if (r & 1)
        off = -(int64_t)(1 + (r >> 1) % GRAN); /* the header */
    else
        off = 1 + (int64_t)((r >> 1) % (b->size + tail_span(b) - 1)); /* inside, the slack, the footer */
    tg.a = b->p + off;
    tg.slot = s;
    return tg;
}

static void op_free_bad(void)
{
    uint8_t k = u8(), v = u8();
    uint8_t stack_obj[64];
    memset(stack_obj, 0, sizeof stack_obj);
    target tg = pick_bad_target(k, stack_obj);
    poolsim_routine rt = free_rts[v % 5];
    uint32_t tag = tg.slot >= 0 ? M.b[tg.slot].tag : good_tags[0];
    int line = 300 + (v >> 6);
    op_name("free of a bad address %p (block %d) %s", (void *)tg.a, tg.slot, poolsim_routine_name(rt));
    do_free(rt, tg, tag, 0, tg.slot >= 0 ? M.b[tg.slot].size : 0, line);
}

/* ---- Writes ------------------------------------------------------------------------------------------- */

static void op_write(void)
{
    uint8_t ssel = u8(), where = u8(), k = u8(), v = u8();
    int s = pick_block(ssel, 1u << ST_LIVE | 1u << ST_QUAR);
    if (s < 0) {
        op_name("write (no block)");
        return;
    }
    mblock *b = &M.b[s];
    int32_t off;
    switch (where % 4) {
    case 2:
        off = (int32_t)(b->size + k % tail_span(b)); /* the slack and the footer */
        break;
    case 3:
        off = -1 - (int32_t)(k % GRAN); /* the header, or a big block's guard bytes */
        break;
    default:
        if (!b->size) {
            op_name("write inside block %d of 0 bytes (nothing)", s);
            return;
        }
        off = (int32_t)(((size_t)k * 257u + where) % b->size);
        break;
    }
    op_name("write 0x%02x at %p%+d (block %d, 0x%zx bytes, %s)", v, b->p, off, s, b->size,
            b->state == ST_LIVE ? "live" : "quarantined");
    bool inside = off >= 0 && (size_t)off < b->size;
    if (inside && M.lists[NLISTS - 1].live && (uint8_t *)M.lists[NLISTS - 1].l == b->p &&
        (size_t)off < sizeof(poolsim_lookaside)) {
        op_name("write at %p%+d: a live lookaside list's handle (nothing)", b->p, off);
        return;
    }
    if (inside && b->state == ST_LIVE)
        b->p[off] = v; /* the caller's own byte: legal */
    else if (inside || M.opt.guards)
        plant(b, off, v); /* after free, or a guard byte: reported at the next check of the block */
    else
        b->p[off] ^= (uint8_t)(v | 1); /* guards off: nothing checks these bytes */
}

/* ---- Queries and checks ------------------------------------------------------------------------------- */

static void op_query(void)
{
    uint8_t k = u8(), ssel = u8();
    uint8_t stack_obj[64];
    memset(stack_obj, 0, sizeof stack_obj);
    target tg = {NULL, -1, false};
    if (k & 1) {
        tg.slot = pick_block(ssel, 1u << ST_LIVE | 1u << ST_QUAR | 1u << ST_REL);
        if (tg.slot >= 0) {
            tg.a = M.b[tg.slot].p;
            tg.start = true;
        }
    } else {
        tg = pick_bad_target((uint8_t)(k >> 1), stack_obj);
    }
    const char *name = poolsim_routine_name(POOLSIM_RT_EX_QUERY_POOL_BLOCK_SIZE);
    op_name("ExQueryPoolBlockSize(%p) (block %d)", (void *)tg.a, tg.slot);
    mblock *b = tg.slot >= 0 ? &M.b[tg.slot] : NULL;
    uintptr_t a = (uintptr_t)tg.a;
    size_t want = 0;
    bool want_qc = false;
    if (!b || !tg.start || b->state != ST_LIVE || b->alloc != AL_POOL) {
        expect *x =
            verifier() ? x_new(0xC4, 0x16, 0, a, 0, name, 400) : x_new(0xC2, 0x99, a, 0, 0, name, 400);
        if (b)
            x_block(x, b);
    } else {
        want = b->big ? round_up(b->size, PAGE) : round_up(b->size ? b->size : 1, GRAN);
        want_qc = b->quota;
    }
    bool qc = true;
    size_t got = poolsim_pool_block_size(tg.a, &qc, g_file, 400);
    CHECK(got == want && qc == want_qc,
          "ExQueryPoolBlockSize returned 0x%zx quota %d; the model says 0x%zx quota %d", got, qc, want,
          want_qc);
}

static void op_validate(void)
{
    op_name("poolsim_validate");
    size_t want = 0;
    for (int i = 0; i < MAXB; i++)
        if ((M.b[i].state == ST_LIVE || M.b[i].state == ST_QUAR) &&
            damage_expect(&M.b[i], "poolsim_validate", 0))
            want++;
    size_t got = poolsim_validate();
    CHECK(got == want, "poolsim_validate() returned %zu; the model says %zu", got, want);
}

/* Every block the model knows, as poolsim's lookups see it. */
static void op_inspect(void)
{
    op_name("inspect: find_block, valid_access, live_since, tag usage");
    check_tags();
    size_t live = 0;
    for (int i = 0; i < MAXB; i++) {
        const mblock *b = &M.b[i];
        if (b->state == ST_NONE)
            continue;
        poolsim_block_info info;
        CHECK(poolsim_find_block(b->p, &info), "poolsim_find_block(%p) is false (block %d, state %d)", b->p,
              i, b->state);
        CHECK(info.address == b->p && info.size == b->size && info.tag == b->tag &&
                  info.state == pub_state(b->state),
              "poolsim_find_block(%p): address %p size 0x%zx tag 0x%x state %d; the model says 0x%zx 0x%x %d",
              b->p, info.address, info.size, info.tag, (int)info.state, b->size, b->tag,
              (int)pub_state(b->state));
        CHECK(poolsim_find_block(b->p + (b->size ? b->size - 1 : 0), &info) && info.address == b->p,
              "poolsim_find_block of the last byte of %p", b->p);
        bool live_b = b->state == ST_LIVE;
        live += live_b;
        CHECK(poolsim_valid_access(b->p, b->size) == live_b, "poolsim_valid_access(%p, 0x%zx) is %d", b->p,
              b->size, !live_b);
        CHECK(!poolsim_valid_access(b->p, b->size + 1), "poolsim_valid_access(%p, size + 1) is true", b->p);
        CHECK(poolsim_valid_access(b->p + b->size, 0) == live_b, "poolsim_valid_access(%p + size, 0)", b->p);
    }
    poolsim_block_info out[MAXB];
    size_t n = poolsim_live_since(0, out, MAXB);
    CHECK(n == live && n == M.live, "poolsim_live_since(0) is %zu; the model has %zu live blocks", n, live);
    for (size_t k = 0; k < n; k++) {
        int i;
        for (i = 0; i < MAXB; i++)
            if (M.b[i].state == ST_LIVE && M.b[i].p == out[k].address)
                break;
        CHECK(i < MAXB && out[k].size == M.b[i].size && out[k].tag == M.b[i].tag,
              "poolsim_live_since lists %p (0x%zx, tag 0x%x), which the model does not have live",
              out[k].address, out[k].size, out[k].tag);
    }
}

static void op_report(void)
{
    static const char *const patterns[6] = {NULL, "*", "X*", "?a*", "", "Tag1"};
    uint8_t k = u8(), v = u8();
    uint16_t r = u16();
    uint64_t before = g_out_bytes;
    op_name("report %u (%u)", k % 9, v);
    switch (k % 9) {
    case 0:
        poolsim_report_poolused(v & 7u, patterns[(v >> 3) % 6]);
        break;
    case 1:
        poolsim_report_poolused_json(patterns[(v >> 3) % 6]);
        break;
    case 2:
        poolsim_report_outstanding();
        break;
    case 3:
        poolsim_report_outstanding_json();
        break;
    case 4:
        poolsim_report_stats();
        break;
    case 5:
        poolsim_report_stats_json();
        break;
    case 6:
        poolsim_report_thread();
        break;
    default: {
        /* !pool of any address near a block: a slot, a free slot, a header, another page. */
        int s = pick_block(v, 1u << ST_LIVE | 1u << ST_QUAR | 1u << ST_REL);
        const uint8_t *a = s >= 0 ? M.b[s].p + (int16_t)r : g_static_obj;
        poolsim_report_block(a);
        poolsim_block_info info;
        poolsim_find_block(a, &info);
        break;
    }
    }
    CHECK(g_out_bytes > before, "the report printed nothing");
}

/* ---- Fault injection ---------------------------------------------------------------------------------- */

static void op_fault(void)
{
    uint8_t k = u8();
    poolsim_fault_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.nth = k % 8u;
    cfg.persistent = (k & 0x80) != 0;
    op_name("fault: fail allocation %llu%s", (unsigned long long)cfg.nth, cfg.persistent ? " and on" : "");
    M.nth = cfg.nth;
    M.persistent = cfg.persistent;
    M.fcount = 0;
    poolsim_fault_configure(&cfg);
}

/* ---- IRQL and locks (docs/semantics.md, "IRQL and locks") --------------------------------------------- */

/* The core's fast mutex routines with the routine named (src/wdm_entry.h): the try and unsafe forms. */
uint8_t poolsim__fast_mutex_acquire(const void *mutex, void **owner, poolsim_irql_routine rt,
                                    const char *file, int line);
void poolsim__fast_mutex_release(const void *mutex, void **owner, uint8_t old_irql, poolsim_irql_routine rt,
                                 const char *file, int line);

static const char rule_spin[] = "SpinLock:";
static const char rule_queued[] = "QueuedSpinLock:";
static const char rule_queued_release[] = "QueuedSpinLockRelease:";
static const char rule_irql_release[] = "IrqlKeReleaseSpinLock:";

static expect *x_rule(uintptr_t sub, const char *rule, const void *lock, const char *routine, int line)
{
    expect *x = x_irql(0xC4, sub, 0, (uintptr_t)lock, 0, routine, line);
    x->rule = rule;
    return x;
}

static int held_find(const void *obj)
{
    for (int i = (int)M.nheld - 1; i >= 0; i--)
        if (M.held[i].obj == obj)
            return i;
    return -1;
}

static void held_push(const void *obj, unsigned kind, poolsim_irql_routine rt, uint8_t old)
{
    CHECK(M.nheld < MAXHELD, "model: too many held locks");
    mheld *h = &M.held[M.nheld++];
    h->obj = obj;
    h->kind = kind;
    h->rt = rt;
    h->old = old;
    h->nest = 0;
}

static void held_drop(int i)
{
    for (unsigned k = (unsigned)i; k + 1 < M.nheld; k++)
        M.held[k] = M.held[k + 1];
    M.nheld--;
}

/* The IRQL after a release whose NewIrql may be wrong: only ever lower. */
static void lower_to(unsigned to)
{
    if (to <= M.irql)
        M.irql = (uint8_t)to;
}

static uint8_t pick_level(uint8_t k) { return (uint8_t)(k % 17u); /* 16: above HIGH_LEVEL */ }

static void op_raise(void)
{
    static const poolsim_irql_routine rts[3] = {POOLSIM_IRQL_RT_RAISE_IRQL, POOLSIM_IRQL_RT_RAISE_TO_DPC,
                                                POOLSIM_IRQL_RT_RAISE_TO_SYNCH};
    uint8_t k = u8(), v = u8();
    poolsim_irql_routine rt = rts[v % 3];
    uint8_t req = pick_level(k);
    uint8_t to = rt == POOLSIM_IRQL_RT_RAISE_TO_DPC     ? DPC
                 : rt == POOLSIM_IRQL_RT_RAISE_TO_SYNCH ? (uint8_t)M.opt.synch_level
                                                        : req;
    const char *name = poolsim_irql_routine_name(rt);
    op_name("%s(%u) at %u", name, to, M.irql);
    uint8_t cur = M.irql;
    if (to < cur || to > HIGH)
        M.opt.family == POOLSIM_FAMILY_RETAIL ? x_irql(0x09, cur, to, 0, 0, name, 500)
                                              : x_irql(0xC4, 0x30, cur, to, 0, name, 500);
    else
        M.hist++, M.irql = to;
    uint8_t got = poolsim_irql_raise(req, rt, g_file, 500);
    CHECK(got == cur, "%s returned %u; the IRQL was %u", name, got, cur);
}

static void op_lower(void)
{
    uint8_t to = pick_level(u8());
    const char *name = poolsim_irql_routine_name(POOLSIM_IRQL_RT_LOWER_IRQL);
    op_name("KeLowerIrql(%u) at %u", to, M.irql);
    uint8_t cur = M.irql;
    if (to > cur || to > HIGH)
        M.opt.family == POOLSIM_FAMILY_RETAIL ? x_irql(0x0A, cur, to, 0, 0, name, 501)
                                              : x_irql(0xC4, 0x31, cur, to, 0, name, 501);
    else
        M.hist++, M.irql = to;
    poolsim_irql_lower(to, g_file, 501);
}

static void op_set_irql(void)
{
    uint8_t to = (uint8_t)(u8() % 20u);
    op_name("poolsim_set_irql(%u) at %u", to, M.irql);
    M.hist++;
    M.irql = to;
    poolsim_set_irql(to);
}

static const poolsim_irql_routine acquire_rts[5] = {
    POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK,        POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_RAISE,
    POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_AT_DPC, POOLSIM_IRQL_RT_ACQUIRE_QUEUED,
    POOLSIM_IRQL_RT_ACQUIRE_QUEUED_AT_DPC,
};
static const poolsim_irql_routine release_rts[4] = {
    POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK,
    POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK_FROM_DPC,
    POOLSIM_IRQL_RT_RELEASE_QUEUED,
    POOLSIM_IRQL_RT_RELEASE_QUEUED_FROM_DPC,
};

static bool rt_queued(poolsim_irql_routine rt)
{
    return rt == POOLSIM_IRQL_RT_ACQUIRE_QUEUED || rt == POOLSIM_IRQL_RT_ACQUIRE_QUEUED_AT_DPC ||
           rt == POOLSIM_IRQL_RT_RELEASE_QUEUED || rt == POOLSIM_IRQL_RT_RELEASE_QUEUED_FROM_DPC;
}

static bool rt_at_dpc(poolsim_irql_routine rt)
{
    return rt == POOLSIM_IRQL_RT_ACQUIRE_SPIN_LOCK_AT_DPC || rt == POOLSIM_IRQL_RT_ACQUIRE_QUEUED_AT_DPC ||
           rt == POOLSIM_IRQL_RT_RELEASE_SPIN_LOCK_FROM_DPC || rt == POOLSIM_IRQL_RT_RELEASE_QUEUED_FROM_DPC;
}

static void op_spin_acquire(void)
{
    uint8_t k = u8(), v = u8();
    unsigned li = k % NLOCKS;
    poolsim_irql_routine rt = acquire_rts[v % 5];
    uintptr_t *lock = &g_locks[li];
    const char *name = poolsim_irql_routine_name(rt);
    const bool queued = rt_queued(rt), at_dpc = rt_at_dpc(rt);
    const unsigned kind = queued ? KIND_QUEUED : KIND_ORDINARY;
    const int line = 510;
    uint8_t cur = M.irql;
    op_name("%s(lock %u) at %u", name, li, cur);
    bool reported = false;
    if (!at_dpc && cur > DPC) {
        M.opt.family == POOLSIM_FAMILY_RETAIL ? x_irql(0x09, cur, DPC, 0, 0, name, line)
                                              : x_irql(0xC4, 0x42, cur, (uintptr_t)lock, 0, name, line);
        reported = true;
    } else if (at_dpc && cur < DPC) {
        x_irql(0xC4, 0x40, cur, (uintptr_t)lock, 0, name, line);
        reported = true;
    }
    uint8_t to = at_dpc || cur > DPC ? cur : DPC;
    if (M.lock_held[li]) {
        /* Acquired again by its holder: reported, no deadlock; the matching release undoes the nesting. */
        if (!reported) {
            if (M.opt.family == POOLSIM_FAMILY_RETAIL)
                x_irql(0x0F, (uintptr_t)lock, 0, 0, 0, name, line);
            else
                x_rule(queued ? 0x40006 : 0x40009, queued ? rule_queued : rule_spin, lock, name, line);
        }
        int i = held_find(lock);
        if (i >= 0 && M.held[i].nest < 255)
            M.held[i].nest++;
    } else {
        if ((M.lock_kinds[li] & ~kind) && !reported)
            x_rule(0x40006, rule_queued, lock, name, line);
        M.lock_held[li] = true;
        M.lock_kinds[li] = kind;
        held_push(lock, queued ? LK_QUEUED : LK_SPIN, rt, cur);
    }
    M.hist++;
    M.irql = to;
    uint8_t got = poolsim_spin_acquire(lock, rt, g_file, line);
    CHECK(got == cur, "%s returned %u; the IRQL was %u", name, got, cur);
    M.lock_saved[li] = got;
}

static void op_spin_release(void)
{
    uint8_t k = u8(), v = u8();
    unsigned li = k % NLOCKS;
    poolsim_irql_routine rt = release_rts[v % 4];
    uintptr_t *lock = &g_locks[li];
    const char *name = poolsim_irql_routine_name(rt);
    const bool queued = rt_queued(rt), from_dpc = rt_at_dpc(rt);
    const unsigned hkind = queued ? LK_QUEUED : LK_SPIN;
    const int line = 511;
    /* NewIrql: what the acquire returned (a queued lock's handle always holds it), or any level. */
    uint8_t new_irql = queued || !(v & 0x40) ? M.lock_saved[li] : pick_level((uint8_t)(k >> 2));
    uint8_t cur = M.irql;
    op_name("%s(lock %u, %u) at %u", name, li, new_irql, cur);
    int i = held_find(lock);
    mheld *h = i >= 0 ? &M.held[i] : NULL;
    if (h && !h->nest && h->kind == hkind &&
        (from_dpc ? cur >= DPC && rt_at_dpc(h->rt)
                  : cur == DPC && (queued || new_irql == h->old) && new_irql <= cur)) {
        /* The legal release. */
        M.lock_held[li] = false;
        held_drop(i);
        M.hist++;
        M.irql = from_dpc ? cur : new_irql;
    } else {
        unsigned restore = from_dpc ? cur : new_irql;
        bool reported = false;
        if (!from_dpc && cur != DPC) {
            x_irql(0xC4, 0x32, cur, (uintptr_t)lock, 0, name, line);
            reported = true;
        } else if (from_dpc && cur < DPC) {
            x_irql(0xC4, 0x41, cur, (uintptr_t)lock, 0, name, line);
            reported = true;
        }
        if (!h) {
            if (!reported) {
                if (M.opt.family == POOLSIM_FAMILY_RETAIL)
                    x_irql(0x10, (uintptr_t)lock, 0, 0, 0, name, line);
                else
                    x_rule(queued ? 0x40007 : 0x40009, queued ? rule_queued_release : rule_spin, lock, name,
                           line);
            }
        } else if (h->nest) {
            h->nest--;
        } else {
            if (!reported && h->kind != hkind) {
                x_rule(0x40006, rule_queued, lock, name, line);
                reported = true;
            }
            if (!reported && from_dpc && !rt_at_dpc(h->rt)) {
                x_irql(0xC4, 0x1009, (uintptr_t)lock, 0, 0, name, line);
                reported = true;
                restore = h->old;
            }
            if (!from_dpc && !queued && new_irql != h->old) {
                if (!reported)
                    x_rule(0x20015, rule_irql_release, lock, name, line);
                reported = true;
                restore = h->old;
            }
            if (!from_dpc && !reported && restore > cur) /* a lower to a higher level: the IRQL stays */
                M.opt.family == POOLSIM_FAMILY_RETAIL ? x_irql(0x0A, cur, restore, 0, 0, name, line)
                                                      : x_irql(0xC4, 0x31, cur, restore, 0, name, line);
            M.lock_held[li] = false;
            held_drop(i);
        }
        M.hist++;
        lower_to(restore);
    }
    poolsim_spin_release(lock, new_irql, rt, g_file, line);
}

static void op_mutex(void)
{
    uint8_t k = u8();
    unsigned mi = k % NMUTEX;
    const void *mutex = &g_mutex[mi];
    uint8_t cur = M.irql;
    /* Bit 6: the variant (the try or the unsafe acquire, by bit 5; the unsafe release). */
    const bool variant = (k & 0x40) != 0;
    if (!(k & 0x80)) {
        const poolsim_irql_routine rt = !variant     ? POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX
                                        : (k & 0x20) ? POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX_UNSAFE
                                                     : POOLSIM_IRQL_RT_TRY_FAST_MUTEX;
        const char *name = poolsim_irql_routine_name(rt);
        op_name("%s(%u) at %u", name, mi, cur);
        bool reported = false;
        uint8_t want = cur;
        if (cur > APC) {
            x_irql(0xC4, 0x33, cur, (uintptr_t)mutex, 0, name, 520);
            reported = true;
        }
        if (M.mutex_held[mi] && rt == POOLSIM_IRQL_RT_TRY_FAST_MUTEX) {
            want = POOLSIM_NOT_ACQUIRED; /* no wait, no report, no history */
        } else if (M.mutex_held[mi]) {
            if (!reported)
                x_irql(0xC4, 0x1000, (uintptr_t)mutex, 0, 0, name, 520);
            int i = held_find(mutex);
            if (i >= 0 && M.held[i].nest < 255)
                M.held[i].nest++;
            M.hist++;
            want = POOLSIM_NOT_ACQUIRED;
        } else {
            M.mutex_held[mi] = true;
            held_push(mutex, LK_MUTEX, rt, cur);
            M.hist++;
            if (rt != POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX_UNSAFE) /* the unsafe acquire does not raise */
                M.irql = cur > APC ? cur : APC;
        }
        uint8_t got = poolsim__fast_mutex_acquire(mutex, &g_mutex[mi].owner, rt, g_file, 520);
        CHECK(got == want, "%s returned %u; the model says %u", name, got, want);
        if (got != POOLSIM_NOT_ACQUIRED && rt != POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX_UNSAFE)
            M.mutex_old[mi] = got; /* the FAST_MUTEX's OldIrql, as wdm.h keeps it */
        return;
    }
    const poolsim_irql_routine rt =
        variant ? POOLSIM_IRQL_RT_RELEASE_FAST_MUTEX_UNSAFE : POOLSIM_IRQL_RT_RELEASE_FAST_MUTEX;
    const char *name = poolsim_irql_routine_name(rt);
    uint8_t old = M.mutex_old[mi];
    op_name("%s(%u, %u) at %u", name, mi, old, cur);
    int i = held_find(mutex);
    mheld *h = i >= 0 && M.held[i].kind == LK_MUTEX ? &M.held[i] : NULL;
    const bool acq_unsafe = h && h->rt == POOLSIM_IRQL_RT_ACQUIRE_FAST_MUTEX_UNSAFE;
    if (h && !h->nest && cur == APC && !variant && !acq_unsafe) {
        M.mutex_held[mi] = false;
        held_drop(i);
        M.hist++;
        lower_to(old);
    } else {
        bool reported = false;
        if (variant ? cur > APC : cur != APC) {
            x_irql(0xC4, 0x34, cur, M.critical, (uintptr_t)mutex, name, 521);
            reported = true;
        }
        if (!h && !reported)
            x_irql(0xC4, 0x1007, (uintptr_t)mutex, 0, 0, name, 521); /* one thread: nobody else owns it */
        /* The pairs mixed: C4/0x1009 (before the release's history entry); the IRQL goes back as the acquire
         * needs, to what it found. */
        if (h && !h->nest && !reported && acq_unsafe != variant)
            x_irql(0xC4, 0x1009, (uintptr_t)mutex, 0, 0, name, 521);
        M.hist++;
        if (!h) {
            /* Nothing changes. */
        } else if (h->nest) {
            h->nest--;
        } else {
            uint8_t back = h->old;
            M.mutex_held[mi] = false;
            held_drop(i);
            if (!acq_unsafe)
                lower_to(back);
        }
    }
    poolsim__fast_mutex_release(mutex, &g_mutex[mi].owner, old, rt, g_file, 521);
}

static void op_critical(void)
{
    bool enter = (u8() & 1) == 0;
    poolsim_irql_routine rt =
        enter ? POOLSIM_IRQL_RT_ENTER_CRITICAL_REGION : POOLSIM_IRQL_RT_LEAVE_CRITICAL_REGION;
    const char *name = poolsim_irql_routine_name(rt);
    op_name("%s at %u", name, M.irql);
    if (M.irql > APC)
        x_irql(0xC4, enter ? 0x11A : 0x11B, M.irql, 0, 0, name, 530);
    if (enter)
        M.critical++;
    else if (M.critical)
        M.critical--;
    poolsim_critical_region(enter, g_file, 530);
}

static void op_thread_check(void)
{
    const char *name = poolsim_irql_routine_name(POOLSIM_IRQL_RT_THREAD_CHECK);
    op_name("poolsim_thread_check at %u holding %u in %u critical region(s)", M.irql, M.nheld, M.critical);
    bool want = M.irql == 0 && M.nheld == 0 && M.critical == 0;
    if (!want && M.irql == 0 && M.nheld == 0) {
        /* Only a critical region not left: 0x1 APC_INDEX_MISMATCH (0, 0, combined APC disable count, 0). */
        x_irql(0x01, 0, 0, (0x10000u - (M.critical & 0xFFFFu)) & 0xFFFFu, 0, name, 0);
    } else if (!want) {
        const mheld *spin = NULL;
        for (unsigned i = M.nheld; i-- > 0;)
            if (M.held[i].kind != LK_MUTEX) {
                spin = &M.held[i];
                break;
            }
        if (spin && verifier())
            x_rule(spin->kind == LK_QUEUED ? 0x40007 : 0x40009,
                   spin->kind == LK_QUEUED ? rule_queued_release : rule_spin, spin->obj, name, 0);
        else
            x_irql(0x4A, 0, M.irql, 0, 0, name, 0);
    }
    bool got = poolsim_thread_check();
    CHECK(got == want, "poolsim_thread_check() is %d", got);
}

/* ---- Lookaside lists (docs/semantics.md, "Lookaside lists") ---------------------------------- */

enum { LAL_INIT, LAL_ALLOC, LAL_FREE, LAL_DELETE, LAL_FLUSH };

static const char *lal_routine(unsigned kind, unsigned op)
{
    static const char *const names[3][5] = {
        {"ExInitializeNPagedLookasideList", "ExAllocateFromNPagedLookasideList",
         "ExFreeToNPagedLookasideList", "ExDeleteNPagedLookasideList", "ExFlushLookasideListEx"},
        {"ExInitializePagedLookasideList", "ExAllocateFromPagedLookasideList", "ExFreeToPagedLookasideList",
         "ExDeletePagedLookasideList", "ExFlushLookasideListEx"},
        {"ExInitializeLookasideListEx", "ExAllocateFromLookasideListEx", "ExFreeToLookasideListEx",
         "ExDeleteLookasideListEx", "ExFlushLookasideListEx"},
    };
    return names[kind % 3][op];
}

/* The list a routine is given, and the kind of routine called: usually the list's own kind. */
static mlist *pick_list(uint8_t k, unsigned *kind)
{
    mlist *ls = &M.lists[(k & 3u) % NLISTS];
    *kind = ls->live && !(k & 0x80) ? ls->kind : (k >> 2) % 3u;
    return ls;
}

/* A use of a list that is not live: C4/0xCB (list, 0, 0), named by the routine called. */
static bool lal_usable(const mlist *ls, unsigned kind, unsigned op, int line)
{
    if (ls->live)
        return true;
    x_new(0xC4, 0xCB, (uintptr_t)ls->l, 0, 0, lal_routine(kind, op), line);
    return false;
}

/* Paged lists work at <= APC_LEVEL, the others at <= DISPATCH_LEVEL, every routine of them, reported with the
 * pool's codes (an initialisation as an allocation, a flush or delete as a free) and pool type (without the
 * request bits a list's flags add). */
static bool lal_irql_ok(unsigned kind, uint64_t alloc_type, unsigned op, uintptr_t what, int line)
{
    bool paged = kind == POOLSIM_LOOKASIDE_PAGED || (alloc_type & PT_PAGED);
    if (M.irql <= (paged ? APC : DPC))
        return true;
    const char *name = lal_routine(kind, op);
    bool alloc = op == LAL_INIT || op == LAL_ALLOC;
    uintptr_t type =
        (uintptr_t)(alloc_type & ~(uint64_t)(PT_QUOTA_FAIL | PT_RAISE | PT_COLD | PT_ZERO) & 0xFFFFu);
    if (verifier())
        x_irql(0xC4, alloc ? (paged ? 0x01 : 0x02) : (paged ? 0x11 : 0x12), M.irql, type, what, name, line);
    else
        x_irql(0xC2, alloc ? 0x08 : 0x09, M.irql, type, what, name, line);
    return false;
}

static void op_lal_init(void)
{
    static const size_t sizes[8] = {0, 4, 8, 16, 40, 0xFE0, 0x2000, SIZE_MAX};
    static const uint32_t npaged_flags[4] = {0, PT_NX, PT_RAISE, PT_NX | PT_RAISE | PT_QUOTA_FAIL};
    static const uint16_t depths[4] = {0, 1, 2, 300};
    uint8_t k = u8(), v = u8(), t = u8(), g = u8();
    unsigned li = (k & 3u) % NLISTS;
    mlist *ls = &M.lists[li];
    poolsim_lookaside_params prm;
    memset(&prm, 0, sizeof prm);
    prm.kind = (k >> 2) % 3u;
    prm.size = sizes[v % 8];
    prm.depth = depths[(v >> 3) % 4];
    prm.tag = pick_tag(g);
    if (prm.kind == POOLSIM_LOOKASIDE_EX) {
        prm.pool_type = legacy_types[t % 24] | legacy_bits[(t >> 5) % 8];
        prm.flags = (v >> 5) % 5u; /* 1 raise on failure, 2 fail without raising, 3 both, 4 unknown */
    } else {
        prm.pool_type = prm.kind;
        prm.flags = npaged_flags[(v >> 5) % 4];
    }
    if (li == NLISTS - 1 && !ls->live) {
        /* A handle at the start of a live block that no list caches. */
        ls->l = NULL;
        for (int n = 0, s; n < MAXB && !ls->l; n++)
            if ((s = pick_block((uint8_t)(t + n), 1u << ST_LIVE | NOT_CACHED)) >= 0 &&
                M.b[s].size >= sizeof(poolsim_lookaside))
                ls->l = (poolsim_lookaside *)(void *)M.b[s].p;
    }
    const char *name = lal_routine(prm.kind, LAL_INIT);
    const int line = 600;
    op_name("%s(list %u at %p) size 0x%zx depth %u tag 0x%x type 0x%llx flags 0x%x", name, li, (void *)ls->l,
            prm.size, prm.depth, prm.tag, (unsigned long long)prm.pool_type, prm.flags);

    int32_t want = 0;
    uint64_t type;
    mreq q;
    memset(&q, 0, sizeof q);
    if (prm.kind == POOLSIM_LOOKASIDE_EX) {
        decode_type(prm.pool_type, 0, &q);
        type = prm.pool_type | (prm.flags & 1 ? PT_RAISE : 0) | (prm.flags & 2 ? PT_QUOTA_FAIL : 0);
    } else {
        type =
            (prm.kind == POOLSIM_LOOKASIDE_PAGED ? PT_PAGED : (prm.flags & PT_NX)) | (prm.flags & PT_RAISE);
    }
    if (!ls->l)
        want = (int32_t)0xC000000Du; /* STATUS_INVALID_PARAMETER: no list */
    else if (prm.kind == POOLSIM_LOOKASIDE_EX && q.bad)
        want = (int32_t)0xC00000F2u; /* STATUS_INVALID_PARAMETER_4 */
    else if (prm.kind == POOLSIM_LOOKASIDE_EX && prm.flags > 2)
        want = (int32_t)0xC00000F3u; /* STATUS_INVALID_PARAMETER_5 */
    else {
        size_t size = prm.size;
        lal_irql_ok(prm.kind, type, LAL_INIT, size, line); /* reported; the list is made all the same */
        if (size < sizeof(void *)) {
            x_new(0xC4, 0xCD, (uintptr_t)ls->l, size, sizeof(void *), name, line);
            size = sizeof(void *);
        }
        if (ls->live) {
            x_new(0xC4, 0xCA, (uintptr_t)ls->l, 0, 0, name, line); /* the list stays as it was */
        } else {
            ls->live = true;
            ls->kind = prm.kind;
            ls->alloc_type = type;
            ls->size = size;
            ls->tag = prm.tag;
            ls->depth = prm.depth && prm.depth < 256 ? prm.depth : 256;
            ls->count = 0;
            for (int s = 0; li == NLISTS - 1 && s < MAXB; s++)
                if (M.b[s].state == ST_LIVE && M.b[s].p == (uint8_t *)ls->l)
                    M.b[s].holder = true;
        }
    }
    int32_t got = poolsim_lookaside_init(ls->l, &prm, g_file, line);
    CHECK(got == want, "%s returned 0x%x; the model says 0x%x", name, (unsigned)got, (unsigned)want);
}

typedef struct lal_ctx {
    poolsim_lookaside *l;
    unsigned kind;
} lal_ctx;

static void *call_lal_alloc(const poolsim_alloc_req *req, int32_t *raise, int line, void *ctx)
{
    const lal_ctx *c = (const lal_ctx *)ctx;
    (void)req;
    return poolsim_lookaside_alloc(c->l, c->kind, raise, g_file, line);
}

static void op_lal_alloc(void)
{
    unsigned kind;
    mlist *ls = pick_list(u8(), &kind);
    const int line = 601;
    op_name("%s(list at %p)", lal_routine(kind, LAL_ALLOC), (void *)ls->l);
    int free_slot = -1;
    for (int i = 0; i < MAXB && free_slot < 0; i++)
        if (M.b[i].state == ST_NONE)
            free_slot = i;
    if (free_slot < 0)
        return; /* no room in the model for a new block */
    void *want = NULL;
    bool from_pool = false;
    if (lal_usable(ls, kind, LAL_ALLOC, line) &&
        lal_irql_ok(ls->kind, ls->alloc_type, LAL_ALLOC, ls->size, line)) {
        if (ls->count) { /* LIFO: the entry freed last */
            int s = ls->cache[--ls->count];
            M.b[s].cached = false;
            want = M.b[s].p;
        } else {
            from_pool = true;
        }
    }
    if (from_pool) {
        poolsim_alloc_req req =
            make_req(POOLSIM_RT_EX_ALLOCATE_POOL_WITH_TAG, ls->alloc_type, ls->size, ls->tag);
        lal_ctx c = {ls->l, kind};
        model_alloc(&req, line, call_lal_alloc, &c);
        return;
    }
    int32_t raise = 0x1234;
    void *got = poolsim_lookaside_alloc(ls->l, kind, &raise, g_file, line);
    CHECK(got == want && raise == 0, "%s returned %p (raise 0x%x); the model says %p",
          lal_routine(kind, LAL_ALLOC), got, (unsigned)raise, want);
}

/* A list gives an entry back to the pool with ExFreePool (flush, delete, a free to a full list). */
static void lal_pool_free(int s, int line, bool *freed)
{
    target tg = {M.b[s].p, s, true};
    freed[s] = free_model(POOLSIM_RT_EX_FREE_POOL, tg, 0, 0, SIZE_MAX, line);
}

static void op_lal_free(void)
{
    uint8_t k = u8(), v = u8();
    unsigned kind;
    mlist *ls = pick_list(k, &kind);
    const int line = 602;
    uint8_t stack_obj[64];
    memset(stack_obj, 0, sizeof stack_obj);
    /* The entry: one the list holds already, a live block no list holds, a freed block, a bad address. */
    target tg = {NULL, -1, false};
    switch (v % 4) {
    case 0:
        if (ls->live && ls->count) {
            tg.slot = ls->cache[(v >> 2) % ls->count];
            break;
        }
        /* fall through */
    case 1:
        tg.slot = pick_block((uint8_t)(v >> 2), 1u << ST_LIVE | NOT_CACHED);
        break;
    case 2:
        tg.slot = pick_block((uint8_t)(v >> 2), 1u << ST_QUAR | 1u << ST_REL);
        break;
    default:
        tg = pick_bad_target((uint8_t)(v >> 2), stack_obj);
        break;
    }
    if (tg.slot >= 0 && !tg.a) {
        tg.a = M.b[tg.slot].p;
        tg.start = true;
    }
    op_name("%s(list at %p, %p) (block %d)", lal_routine(kind, LAL_FREE), (void *)ls->l, (void *)tg.a,
            tg.slot);
    bool freed[MAXB] = {false};
    int to_pool = -1;
    if (lal_usable(ls, kind, LAL_FREE, line) &&
        lal_irql_ok(ls->kind, ls->alloc_type, LAL_FREE, (uintptr_t)tg.a, line)) {
        const char *name = lal_routine(ls->kind, LAL_FREE);
        mblock *b = tg.slot >= 0 ? &M.b[tg.slot] : NULL;
        bool twice = false;
        for (unsigned i = 0; b && i < ls->count; i++)
            twice = twice || ls->cache[i] == tg.slot;
        if (!b || !tg.start)
            bad_address_expect(tg, false, name, line);
        else if (b->state != ST_LIVE)
            double_free_expect(b, name, line);
        else if (twice) /* already in the list: a double free, without the block */
            verifier() ? x_new(0xC4, 0x13, 0, (uintptr_t)b->p - GRAN, 0, name, line)
                       : x_new(0xC2, 0x07, ls->tag, 0, (uintptr_t)b->p, name, line);
        else if (ls->count < ls->depth && !M.opt.lookaside_debug) {
            ls->cache[ls->count++] = tg.slot;
            b->cached = true;
        } else {
            to_pool = tg.slot;
            lal_pool_free(tg.slot, line, freed);
        }
    }
    poolsim_lookaside_free(ls->l, kind, tg.a, g_file, line);
    if (to_pool >= 0 && freed[to_pool])
        check_poisoned(&M.b[to_pool]);
}

static void op_lal_flush_delete(void)
{
    uint8_t k = u8();
    unsigned kind;
    mlist *ls = pick_list(k, &kind);
    unsigned op = k & 0x40 ? LAL_DELETE : LAL_FLUSH;
    const int line = 603;
    op_name("%s(list at %p)", lal_routine(kind, op), (void *)ls->l);
    bool freed[MAXB] = {false};
    /* Above the list's IRQL: reported, and nothing is done (the entries stay cached). */
    if (lal_usable(ls, kind, op, line) && lal_irql_ok(ls->kind, ls->alloc_type, op, (uintptr_t)ls->l, line)) {
        while (ls->count) {
            int s = ls->cache[--ls->count];
            M.b[s].cached = false;
            lal_pool_free(s, line, freed);
        }
        if (op == LAL_DELETE)
            ls->live = false;
    }
    if (op == LAL_DELETE)
        poolsim_lookaside_delete(ls->l, kind, g_file, line);
    else
        poolsim_lookaside_flush(ls->l, kind, g_file, line);
    for (int s = 0; s < MAXB; s++)
        if (freed[s])
            check_poisoned(&M.b[s]);
}

/* ---- One input ---------------------------------------------------------------------------------------- */

static void configure(void)
{
    static const uint32_t qblocks[8] = {0, 1, 2, 3, 4, 8, 64, 65536};
    static const uint64_t qbytes[8] = {0, 64, 256, 4096, 16384, 65536, 1u << 20, 32u << 20};
    static const uint64_t limits[4] = {8u << 20, 1u << 20, 128u << 10, 32u << 10};
    static const uint32_t history[4] = {0, 4, 16, 64};
    static const uint32_t uninit[4] = {0xC5, 0x00, 0xFF, 0x5A};
    uint8_t b0 = u8(), b1 = u8(), b2 = u8();
    memset(&M, 0, sizeof M);
    poolsim_options_default(&M.opt);
    poolsim_options *o = &M.opt;
    o->special_pool_priority = 0; /* the random priorities only place; special pool is not in the model */
    o->family = b0 & 1 ? POOLSIM_FAMILY_RETAIL : POOLSIM_FAMILY_VERIFIER;
    o->tag_check = b0 & 2 ? POOLSIM_TAG_CHECK_PROTECTED : POOLSIM_TAG_CHECK_STRICT;
    o->zero_size_check = !(b0 & 4);
    o->guards = !(b0 & 8);
    o->fill_uninit = !(b0 & 16);
    o->leak_code = b0 & 32 ? 0x60 : 0x62;
    o->track_sites = !(b0 & 64);
    o->synch_level = b0 & 128 ? 13 : 12;
    o->quarantine_blocks = qblocks[b1 % 8];
    o->quarantine_bytes = qbytes[(b1 >> 3) % 8];
    o->nonpaged_limit = limits[(b1 >> 6) % 4];
    o->paged_limit = limits[(b1 >> 6) % 4] / (b2 & 64 ? 2 : 1);
    o->irql_history = history[b2 % 4];
    o->uninit_byte = uninit[(b2 >> 2) % 4];
    o->print_frees = (b2 & 16) != 0;
    o->lookaside_debug = (b2 & 32) != 0;
    o->footer_bytes = b2 & 128 ? 16 : 1;      /* poolsim's older layout ... */
    o->quarantine_check = b2 & 128 ? 0 : 256; /* ... and full eviction checks */
    for (unsigned i = 0; i + 1 < NLISTS; i++)
        M.lists[i].l = &g_lal[i];
    o->continue_on_bugcheck = 1;
    o->leak_check = 1;
    o->force_irql = 0; /* no page protection and no signals in the fuzzer */
    o->halt_on_bad = 0;
    o->driver_name = g_driver;
    M.limit[0] = o->nonpaged_limit;
    M.limit[1] = o->paged_limit;
}

static void begin_op(void)
{
    g_nx = 0;
    g_nc = 0;
}

static void end_op(void)
{
    match();
    repair();
    check_stats();
}

static void shutdown(void)
{
    g_opi++;
    op_name("poolsim_shutdown");
    begin_op();
    for (int i = 0; i < MAXB; i++)
        if (M.b[i].state == ST_LIVE || M.b[i].state == ST_QUAR)
            damage_expect(&M.b[i], "poolsim_validate", 0);
    if (M.live) {
        expect *x = M.opt.leak_code == 0x60
                        ? x_new(0xC4, 0x60, M.bytes[1], M.bytes[0], M.live, "poolsim_shutdown", 0)
                        : x_new(0xC4, 0x62, (uintptr_t)g_driver, 0, M.live, "poolsim_shutdown", 0);
        (void)x;
    }
    size_t left = poolsim_shutdown();
    match();
    CHECK(left == M.live, "poolsim_shutdown() returned %zu; the model has %llu live blocks", left,
          (unsigned long long)M.live);
    CHECK(poolsim_bugcheck_count() == M.bugchecks,
          "poolsim_bugcheck_count() is %llu after shutdown; the model says %llu",
          (unsigned long long)poolsim_bugcheck_count(), (unsigned long long)M.bugchecks);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *t = getenv("FUZZ_POOL_TRACE");
    g_trace = t && *t == '1';
    t = getenv("FUZZ_POOL_STATS");
    g_stats = t && *t == '1';
    if (g_stats)
        atexit(print_seen);
    g_heap_obj = (uint8_t *)malloc(64);
    poolsim_set_output(discard, NULL);
    poolsim_set_bugcheck_handler(on_bugcheck, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_heap_obj)
        LLVMFuzzerInitialize(NULL, NULL);
    g_in = data;
    g_left = size;
    g_opi = 0;
    g_inputs++;
    configure();
    memset(g_locks, 0, sizeof g_locks);
    memset(g_mutex, 0, sizeof g_mutex);
    memset(g_lal, 0, sizeof g_lal);
    poolsim_thread_reset();
    op_name("poolsim_init");
    begin_op();
    CHECK(poolsim_init(&M.opt) == POOLSIM_OK, "poolsim_init failed");
    end_op();

    static void (*const ops[28])(void) = {
        op_alloc,        op_alloc,     op_alloc,    op_alloc,
        op_free,         op_free,      op_free,     op_free_bad,
        op_write,        op_write,     op_write,    op_query,
        op_validate,     op_inspect,   op_report,   op_fault,
        op_raise,        op_lower,     op_set_irql, op_spin_acquire,
        op_spin_release, op_mutex,     op_critical, op_thread_check,
        op_lal_init,     op_lal_alloc, op_lal_free, op_lal_flush_delete,
    };
    while (g_left && g_opi + 1 < MAXOPS) {
        g_opi++;
        uint8_t code = u8();
        begin_op();
        ops[code % 28]();
        end_op();
        g_ops++;
    }

    /* The end: every block as poolsim sees it, the thread back to PASSIVE_LEVEL, then shutdown. */
    g_opi++;
    begin_op();
    op_inspect();
    op_thread_check();
    end_op();
    poolsim_thread_reset();
    M.irql = 0;
    M.nheld = 0;
    M.critical = 0;
    M.hist = 0;
    shutdown();
    return 0;
}
