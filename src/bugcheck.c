/* SPDX-License-Identifier: MIT */
/*
 * bugcheck.c — the one path every violation takes (design rule 3).
 *
 * A violation becomes a poolsim_bugcheck value: the code and P1-P4 exactly as
 * Windows documents them (wdk-semantics.md §1), the bug check's name, a one-
 * line summary, what each argument means, the owning block and the call site.
 * It then goes to one handler: the test's, or the default one that prints the
 * report (report.c) and stops the process like the machine would.
 *
 * Callers deliver with no lock held, as the last thing they do, so a handler
 * may longjmp out and poolsim's state stays consistent.
 */
#include "core.h"
#include "irql.h"

typedef struct bc_name {
    unsigned long code;
    const char *name;
} bc_name;

static const bc_name bc_names[] = {
    {0x01, "APC_INDEX_MISMATCH"},
    {0x08, "IRQL_NOT_DISPATCH_LEVEL"},
    {0x09, "IRQL_NOT_GREATER_OR_EQUAL"},
    {0x0A, "IRQL_NOT_LESS_OR_EQUAL"},
    {0x0F, "SPIN_LOCK_ALREADY_OWNED"},
    {0x10, "SPIN_LOCK_NOT_OWNED"},
    {0x19, "BAD_POOL_HEADER"},
    {0x1E, "KMODE_EXCEPTION_NOT_HANDLED"},
    {0x41, "MUST_SUCCEED_POOL_EMPTY"},
    {0x4A, "IRQL_GT_ZERO_AT_SYSTEM_SERVICE"},
    {0x7E, "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED"},
    {0xC1, "SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION"},
    {0xC2, "BAD_POOL_CALLER"},
    {0xC4, "DRIVER_VERIFIER_DETECTED_VIOLATION"},
    {0xC5, "DRIVER_CORRUPTED_EXPOOL"},
    {0xC6, "DRIVER_CAUGHT_MODIFYING_FREED_POOL"},
    {0xCC, "PAGE_FAULT_IN_FREED_SPECIAL_POOL"},
    {0xCD, "PAGE_FAULT_BEYOND_END_OF_ALLOCATION"},
    {0xD0, "DRIVER_CORRUPTED_MMPOOL"},
    {0xD1, "DRIVER_IRQL_NOT_LESS_OR_EQUAL"},
    {0xD4, "SYSTEM_SCAN_AT_RAISED_IRQL_CAUGHT_IMPROPER_DRIVER_UNLOAD"},
    {0xD5, "DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL"},
    {0xD6, "DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION"},
    {0x13A, "KERNEL_MODE_HEAP_CORRUPTION"},
};

/* Summary and argument meanings per (code, subcode). The subcode is Arg1,
 * except for 0xC1 where it is Arg4 (§1.3). sub = ~0 matches any. */
typedef struct bc_row {
    unsigned long code;
    uintptr_t sub;
    const char *summary;
    const char *arg[4];
} bc_row;

#define ANY (~(uintptr_t)0)
static const bc_row bc_rows[] = {
    /* §1.1 DRIVER_VERIFIER_DETECTED_VIOLATION */
    {0xC4,
     0x00,
     "zero-byte pool allocation requested",
     {"subcode 0x00: zero-byte allocation", "current IRQL", "pool type", "number of bytes"}},
    {0xC4,
     0x01,
     "paged pool allocation at IRQL > APC_LEVEL",
     {"subcode 0x01: paged allocation at bad IRQL", "current IRQL", "pool type", "size in bytes"}},
    {0xC4,
     0x02,
     "nonpaged pool allocation at IRQL > DISPATCH_LEVEL",
     {"subcode 0x02: nonpaged allocation at bad IRQL", "current IRQL", "pool type", "size in bytes"}},
    {0xC4,
     0x10,
     "free of an address never returned by an allocator",
     {"subcode 0x10: free of a bad address", "bad address", "0", "0"}},
    {0xC4,
     0x11,
     "paged pool free at IRQL > APC_LEVEL",
     {"subcode 0x11: paged free at bad IRQL", "current IRQL", "pool type", "pool address"}},
    {0xC4,
     0x12,
     "nonpaged pool free at IRQL > DISPATCH_LEVEL",
     {"subcode 0x12: nonpaged free at bad IRQL", "current IRQL", "pool type", "pool address"}},
    {0xC4,
     0x13,
     "double free: the pool was already freed",
     {"subcode 0x13: double free", "reserved", "pointer to pool header", "pool header contents"}},
    {0xC4,
     0x16,
     "bad address passed to a pool routine",
     {"subcode 0x16: bad address or parameters", "reserved", "pool address", "0"}},
    {0xC4,
     0x51,
     "free of a block written past its end",
     {"subcode 0x51: write beyond the allocation", "allocation base", "address of the bad byte",
      "charged bytes"}},
    {0xC4,
     0x53,
     "free of a block whose header was overwritten",
     {"subcode 0x53: header overwritten", "allocation base", "header", "reserved"}},
    {0xC4,
     0x60,
     "driver unloading without freeing its pool allocations",
     {"subcode 0x60: leaked allocations", "bytes from paged pool", "bytes from nonpaged pool",
      "total allocations not freed"}},
    {0xC4,
     0x62,
     "driver unloading without freeing its pool allocations",
     {"subcode 0x62: leaked allocations", "driver name", "reserved", "total allocations not freed"}},
    {0xC4,
     0xCA,
     "a lookaside list was initialised again while live",
     {"subcode 0xCA: lookaside list re-initialised", "lookaside list address", "reserved", "reserved"}},
    {0xC4,
     0xCB,
     "a lookaside list that is not initialised (or was deleted) was used",
     {"subcode 0xCB: uninitialised lookaside list", "lookaside list address", "reserved", "reserved"}},
    {0xC4,
     0xCC,
     "freeing pool that contains a live lookaside list",
     {"subcode 0xCC: pool holds a live lookaside list", "lookaside list address",
      "start of the pool allocation", "allocation size"}},
    {0xC4,
     0xCD,
     "lookaside list block size too small",
     {"subcode 0xCD: block size too small", "lookaside list address", "block size given",
      "minimum supported block size"}},
    {0xC4,
     0x13F,
     "freed size differs from the allocated size",
     {"subcode 0x13F: wrong size freed", "block being freed", "bytes being freed",
      "pointer to the tracked size"}},
    {0xC4,
     0x13E,
     "freed address differs from the address of the block",
     {"subcode 0x13E: freed address not tracked", "block address given by the caller",
      "block address tracked", "pointer to the tracked address"}},
    /* §1.2 BAD_POOL_CALLER */
    {0xC2,
     0x00,
     "zero-byte pool allocation requested",
     {"subcode 0x00: zero-byte allocation", "0", "pool type", "pool tag"}},
    {0xC2,
     0x07,
     "double free: the pool was already freed",
     {"subcode 0x07: double free", "reserved (the block's tag)", "pool header contents",
      "address of the block"}},
    {0xC2,
     0x08,
     "pool allocation at an invalid IRQL",
     {"subcode 0x08: allocation at bad IRQL", "current IRQL", "pool type", "size in bytes"}},
    {0xC2,
     0x09,
     "pool free at an invalid IRQL",
     {"subcode 0x09: free at bad IRQL", "current IRQL", "pool type", "pool address"}},
    {0xC2,
     0x0A,
     "pool freed with the wrong tag",
     {"subcode 0x0A: wrong tag", "pool address", "allocator's tag", "tag being freed"}},
    {0xC2,
     0x46,
     "free of an invalid pool address",
     {"subcode 0x46: invalid pool address", "starting address", "0", "0"}},
    {0xC2,
     0x60,
     "invalid contiguous-memory address (MmFreeContiguousMemory)",
     {"subcode 0x60: not contiguous memory", "starting address", "0", "0"}},
    {0xC2,
     0x99,
     "free of an invalid address (not the start of a block)",
     {"subcode 0x99: invalid address", "address being freed", "0", "0"}},
    {0xC2,
     0x9A,
     "unsupported pool type requested (MUST_SUCCEED or undefined)",
     {"subcode 0x9A: bad pool type", "pool type", "number of bytes requested", "pool tag"}},
    {0xC2,
     0x9B,
     "pool allocation with tag 0",
     {"subcode 0x9B: tag 0", "pool type", "number of bytes", "caller's address"}},
    {0xC2,
     0x9C,
     "pool allocation with tag \"BIG\"",
     {"subcode 0x9C: BIG tag", "pool type", "number of bytes", "caller's address"}},
    {0xC2,
     0x9D,
     "pool tag has no letters or digits, or bytes outside 0x20-0x7E",
     {"subcode 0x9D: bad tag", "incorrect tag", "pool type", "caller's address"}},
    /* §1.4 BAD_POOL_HEADER */
    {0x19, 0x07, "block header corrupt", {"subcode 0x07: header corrupt", "0", "reserved", "bad entry"}},
    {0x19,
     0x21,
     "data after the end of the block is corrupt",
     {"subcode 0x21: tail overwritten", "pointer being freed", "bytes allocated", "corrupted value found"}},
    /* §1.8, §1.9: writes into freed (quarantined) pool */
    {0xC6,
     ANY,
     "a freed block was written after it was freed",
     {"memory referenced", "0 read / 1 write", "0 kernel mode / 1 user mode", "reserved"}},
    {0x13A,
     0x0B,
     "a freed block was written after it was freed (use after free)",
     {"corruption type 0xB: use after free", "heap address (the block)", "address of the corruption",
      "reserved"}},
    /* §4, §1.1, §1.6, §1.10: IRQL and locks (docs/semantics.md, "IRQL and locks") */
    {0xC4,
     0x30,
     "KeRaiseIrql to a lower IRQL, or above HIGH_LEVEL",
     {"subcode 0x30: bad raise", "current IRQL", "requested IRQL", "0"}},
    {0xC4,
     0x31,
     "KeLowerIrql to a higher IRQL, or above HIGH_LEVEL",
     {"subcode 0x31: bad lower", "current IRQL", "requested IRQL",
      "0: the new IRQL is bad; 1: bad inside a DPC"}},
    {0xC4,
     0x32,
     "spin lock released at an IRQL other than DISPATCH_LEVEL (possibly a double release)",
     {"subcode 0x32: release not at DISPATCH_LEVEL", "current IRQL", "spin lock address", "0"}},
    {0xC4,
     0x33,
     "fast mutex acquired at IRQL > APC_LEVEL",
     {"subcode 0x33: fast mutex acquire above APC_LEVEL", "current IRQL", "fast mutex address", "0"}},
    {0xC4,
     0x34,
     "fast mutex released at an IRQL other than APC_LEVEL",
     {"subcode 0x34: fast mutex release not at APC_LEVEL", "current IRQL",
      "thread's APC-disable count (critical regions)", "fast mutex address"}},
    {0xC4,
     0x40,
     "KeAcquireSpinLockAtDpcLevel below DISPATCH_LEVEL",
     {"subcode 0x40: AtDpcLevel acquire below DISPATCH_LEVEL", "current IRQL", "spin lock address", "0"}},
    {0xC4,
     0x41,
     "KeReleaseSpinLockFromDpcLevel below DISPATCH_LEVEL",
     {"subcode 0x41: FromDpcLevel release below DISPATCH_LEVEL", "current IRQL", "spin lock address", "0"}},
    {0xC4,
     0x42,
     "KeAcquireSpinLock above DISPATCH_LEVEL",
     {"subcode 0x42: spin lock acquire above DISPATCH_LEVEL", "current IRQL", "spin lock address", "0"}},
    {0xC4,
     0x11A,
     "KeEnterCriticalRegion above APC_LEVEL",
     {"subcode 0x11A: critical region entered above APC_LEVEL", "current IRQL", "0", "0"}},
    {0xC4,
     0x11B,
     "KeLeaveCriticalRegion above APC_LEVEL",
     {"subcode 0x11B: critical region left above APC_LEVEL", "current IRQL", "0", "0"}},
    {0xC4,
     0x1000,
     "self-deadlock: a thread acquires a lock it already owns",
     {"subcode 0x1000: self-deadlock", "lock address", "reserved", "reserved"}},
    {0xC4,
     0x1004,
     "a lock released by a thread that does not own it",
     {"subcode 0x1004: unexpected thread", "lock address", "owner thread", "current thread"}},
    {0xC4,
     0x1007,
     "a lock released that was never acquired",
     {"subcode 0x1007: unacquired resource", "lock address", "reserved", "reserved"}},
    {0xC4,
     0x1009,
     "a lock released through a routine that does not match its acquire",
     {"subcode 0x1009: mismatched release routine", "lock address", "reserved", "reserved"}},
    {0xC4,
     0x20015,
     "DDI rule IrqlKeReleaseSpinLock: KeReleaseSpinLock's NewIrql is not the acquire's OldIrql",
     {"rule 0x20015: IrqlKeReleaseSpinLock", "pointer to the rule's description",
      "spin lock address (rule state)", "reserved"}},
    {0xC4,
     0x20019,
     "DDI rule IrqlMmApcLte: MmAllocateNonCachedMemory or MmFreeNonCachedMemory above APC_LEVEL",
     {"rule 0x20019: IrqlMmApcLte", "pointer to the rule's description", "current IRQL",
      "bytes requested, or the address freed"}},
    {0xC4,
     0x40006,
     "DDI rule QueuedSpinLock: a lock used both queued and ordinary, or queued-acquired twice",
     {"rule 0x40006: QueuedSpinLock", "pointer to the rule's description", "spin lock address (rule state)",
      "reserved"}},
    {0xC4,
     0x40007,
     "DDI rule QueuedSpinLockRelease: a queued spin lock released while not held, or still held",
     {"rule 0x40007: QueuedSpinLockRelease", "pointer to the rule's description",
      "spin lock address (rule state)", "reserved"}},
    {0xC4,
     0x40009,
     "DDI rule SpinLock: a spin lock acquired twice, released while not held, or still held",
     {"rule 0x40009: SpinLock", "pointer to the rule's description", "spin lock address (rule state)",
      "reserved"}},
    {0x09,
     ANY,
     "IRQL raised to a lower level (or above HIGH_LEVEL)",
     {"current IRQL", "requested IRQL", "0", "0"}},
    {0x0A,
     ANY,
     "IRQL lowered to a higher level (or above HIGH_LEVEL)",
     {"current IRQL", "requested IRQL", "0", "0"}},
    {0x0F,
     ANY,
     "spin lock acquired by the thread that already owns it",
     {"spin lock address", "0", "0", "0"}},
    {0x10, ANY, "spin lock released by a thread that does not own it", {"spin lock address", "0", "0", "0"}},
    {0x01,
     ANY,
     "returned inside a critical region (kernel APCs still disabled)",
     {"system function (0: none)", "APC state index", "combined APC disable count", "0: a system call"}},
    {0x4A,
     ANY,
     "returned at IRQL > PASSIVE_LEVEL, or holding a lock",
     {"system function (0: none)", "IRQL", "0", "0"}},
    {0xD1,
     ANY,
     "pageable memory touched at IRQL >= DISPATCH_LEVEL",
     {"memory referenced", "IRQL", "0 read, 1 write, 8 execute", "address of the referencing code"}},
    /* §1.3, §1.7: special pool (subcode of 0xC1 in Arg4) */
    {0xC1,
     0x20,
     "free of special pool that is not allocated (double free, or a never-used page)",
     {"address being freed", "reserved", "0", "subcode 0x20: page not allocated"}},
    {0xC1,
     0x21,
     "free of a bad special-pool address: the block cannot fit after it",
     {"address being freed", "bytes requested", "bytes calculated", "subcode 0x21: bad address"}},
    {0xC1,
     0x22,
     "free of a bad special-pool address: not the pointer that was returned",
     {"address being freed", "bytes requested", "bytes calculated", "subcode 0x22: bad address"}},
    {0xC1,
     0x23,
     "bytes before the block, in its special-pool page, were overwritten (underrun)",
     {"address being freed", "address of the corrupted bytes", "reserved", "subcode 0x23: pattern damaged"}},
    {0xC1,
     0x24,
     "bytes after the end of the block, in its special-pool page, were overwritten (overrun)",
     {"address being freed", "address of the corrupted bytes", "reserved", "subcode 0x24: slack damaged"}},
    {0xC1,
     0x30,
     "special-pool allocation at an incorrect IRQL",
     {"current IRQL", "pool type", "number of bytes", "subcode 0x30: allocation at bad IRQL"}},
    {0xC1,
     0x31,
     "special-pool free at an incorrect IRQL",
     {"current IRQL", "pool type", "address being freed", "subcode 0x31: free at bad IRQL"}},
    {0xD5,
     ANY,
     "a driver touched freed special pool (use after free)",
     {"memory referenced", "0 read / 1 write", "address of the referencing code", "reserved"}},
    {0xD6,
     ANY,
     "a driver touched memory beyond its special-pool allocation (overrun or underrun)",
     {"memory referenced", "0 read / 1 write", "address of the referencing code", "reserved"}},
    /* Exceptions */
    {0x1E,
     ANY,
     "an exception was raised and not handled",
     {"exception code", "address of the exception", "exception parameter 0", "exception parameter 1"}},
};

const char *poolsim_bugcheck_name(unsigned long code)
{
    for (size_t i = 0; i < PSIM_COUNTOF(bc_names); i++)
        if (bc_names[i].code == code)
            return bc_names[i].name;
    return NULL;
}

void poolsim__bc_make(poolsim_bugcheck *bc, unsigned long code, uintptr_t p1, uintptr_t p2, uintptr_t p3,
                      uintptr_t p4)
{
    static const char *const plain[4] = {"Arg1", "Arg2", "Arg3", "Arg4"};
    psim_memset(bc, 0, sizeof *bc);
    bc->code = code;
    bc->param[0] = p1;
    bc->param[1] = p2;
    bc->param[2] = p3;
    bc->param[3] = p4;
    bc->name = poolsim_bugcheck_name(code);
    if (!bc->name)
        bc->name = "UNKNOWN_BUGCHECK";
    bc->summary = "bug check raised by the driver";
    psim_memcpy(bc->arg_meaning, plain, sizeof plain);
    uintptr_t sub = code == 0xC1 ? p4 : p1;
    for (size_t i = 0; i < PSIM_COUNTOF(bc_rows); i++) {
        if (bc_rows[i].code == code && (bc_rows[i].sub == ANY || bc_rows[i].sub == sub)) {
            bc->summary = bc_rows[i].summary;
            psim_memcpy(bc->arg_meaning, bc_rows[i].arg, sizeof bc->arg_meaning);
            break;
        }
    }
}

void poolsim__bc_make_keep_block(poolsim_bugcheck *bc, unsigned long code, uintptr_t p1, uintptr_t p2,
                                 uintptr_t p3, uintptr_t p4)
{
    bool has = bc->has_block;
    poolsim_block_info b = bc->block;
    poolsim__bc_make(bc, code, p1, p2, p3, p4);
    bc->has_block = has;
    bc->block = b;
}

void poolsim__bc_site(poolsim_bugcheck *bc, const char *file, int line, poolsim_routine rt)
{
    bc->site.file = file;
    bc->site.line = line;
    bc->site.routine = poolsim_routine_name(rt);
}

/* Fills *s field by field: *s was zeroed, and its padding stays so (a sweep child writes block records to a
 * pipe, and Valgrind checks every byte written). */
static void site_of(const psim *ps, uint32_t idx, uint8_t rt, poolsim_site *s)
{
    const psim_site *e = idx ? poolsim__site_at(ps, idx) : NULL;
    s->file = e ? e->file : NULL;
    s->line = e ? e->line : 0;
    s->routine = poolsim_routine_name((poolsim_routine)rt);
}

void poolsim__block_info(const psim *ps, const psim_where *w, const psim_rec *r, poolsim_block_info *out)
{
    psim_memset(out, 0, sizeof *out);
    out->address = (const void *)w->user;
    out->size = (size_t)r->size;
    out->tag = r->tag;
    out->pool_type = r->pool_type;
    out->state = (poolsim_block_state)r->state;
    out->quota_charged = (r->flags & PSIM_REC_QUOTA) != 0;
    out->thread = r->thread;
    site_of(ps, r->alloc_site, r->alloc_rt, &out->alloc_site);
    out->alloc_seq = r->alloc_seq;
    if (r->state != PSIM_LIVE) {
        site_of(ps, r->free_site, r->free_rt, &out->free_site);
        out->free_seq = r->free_seq;
    }
}

void poolsim__bc_block(const psim *ps, poolsim_bugcheck *bc, const psim_where *w, const psim_rec *r)
{
    bc->has_block = true;
    poolsim__block_info(ps, w, r, &bc->block);
}

/* ---- Delivery ------------------------------------------------------------ */

static poolsim_bugcheck_fn *g_handler;
static void *g_handler_ctx;
static uint64_t g_count; /* bug checks since poolsim_init */
static uint32_t g_continue, g_halt, g_max_reports = POOLSIM_DEFAULT_MAX_REPORTS,
                                    g_max_repeats = POOLSIM_DEFAULT_MAX_REPEATS;

/* ---- What the default handler printed (under the report lock) -------------------------------------------
 */

/* One violation the default handler saw: a bug check code and subcode at one call site (or, with the site
 * unknown, one code and its four parameters), and how often. No allocation: a fixed table; a violation
 * that finds it full is printed like a new one each time (max_reports still caps it). */
#define REPEAT_SLOTS 64u
typedef struct repeat_ent {
    unsigned long code;
    uintptr_t args[4]; /* the subcode (Arg1, Arg4 for 0xC1) with a site; all four without */
    const char *file;
    int line;
    const char *routine;
    uint64_t seen;
} repeat_ent;

static repeat_ent g_repeats[REPEAT_SLOTS];
static uint32_t g_nrepeats;
static uint64_t g_printed;      /* reports printed */
static uint64_t g_over_max;     /* reports not printed for max_reports */
static uintptr_t g_report_lock; /* the owning thread's id + 1 while a report is being printed */

void poolsim__bc_configure(const poolsim_options *o)
{
    g_continue = o->continue_on_bugcheck;
    g_halt = o->halt_on_bad;
    g_max_reports = o->max_reports;
    g_max_repeats = o->max_repeats;
    psim_atomic_store(&g_count, 0);
    psim_memset(g_repeats, 0, sizeof g_repeats);
    g_nrepeats = 0;
    g_printed = 0;
    g_over_max = 0;
}

/* One report at a time, so concurrent reports do not interleave line by line (however slow the output).
 * The thread already printing may enter again (its output callback raised a bug check). Returns false when
 * it was already this thread's. */
static bool report_lock(void)
{
    const uintptr_t me = (uintptr_t)poolsim__prim_thread_id() + 1u;
    if (psim_word_load(&g_report_lock) == me)
        return false;
    for (unsigned spins = 0;; spins++) {
        uintptr_t free_word = 0;
        if (psim_word_cas(&g_report_lock, &free_word, me))
            return true;
        if (spins % 16u == 15u)
            poolsim__prim_yield();
        else
            psim_cpu_pause();
    }
}

static void report_unlock(bool taken)
{
    if (taken)
        psim_word_release(&g_report_lock, 0);
}

/* The codes whose Arg1 is a subcode (0xC1: Arg4); for the others every Arg is a value (an address, an IRQL).
 */
static uintptr_t subcode(const poolsim_bugcheck *bc)
{
    switch (bc->code) {
    case 0xC1:
        return bc->param[3];
    case 0x19:
    case 0xC2:
    case 0xC4:
    case 0x13A:
        return bc->param[0];
    default:
        return 0;
    }
}

/* The entry of this violation, its count raised by one; NULL when the table is full. */
static repeat_ent *repeat_find(const poolsim_bugcheck *bc)
{
    uintptr_t args[4] = {subcode(bc), 0, 0, 0};
    if (!bc->site.file)
        psim_memcpy(args, bc->param, sizeof args);
    for (uint32_t i = 0; i < g_nrepeats; i++) {
        repeat_ent *e = &g_repeats[i];
        if (e->code == bc->code && psim_memcmp(e->args, args, sizeof args) == 0 && e->line == bc->site.line &&
            poolsim__same_text(e->file, bc->site.file) && poolsim__same_text(e->routine, bc->site.routine)) {
            e->seen++;
            return e;
        }
    }
    if (g_nrepeats == REPEAT_SLOTS)
        return NULL;
    repeat_ent *e = &g_repeats[g_nrepeats++];
    e->code = bc->code;
    psim_memcpy(e->args, args, sizeof args);
    e->file = bc->site.file;
    e->line = bc->site.line;
    e->routine = bc->site.routine;
    e->seen = 1;
    return e;
}

static void repeat_name(const repeat_ent *e, char *buf, size_t cap)
{
    if (e->file)
        poolsim__fmt(buf, cap, "0x%lx/0x%llx at %s:%d (%s)", e->code, (unsigned long long)e->args[0],
                     poolsim__short_path(e->file), e->line, e->routine ? e->routine : "?");
    else
        poolsim__fmt(buf, cap, "0x%lx (0x%llx, 0x%llx, 0x%llx, 0x%llx) by %s", e->code,
                     (unsigned long long)e->args[0], (unsigned long long)e->args[1],
                     (unsigned long long)e->args[2], (unsigned long long)e->args[3],
                     e->routine ? e->routine : "?");
}

void poolsim__bc_summary(void)
{
    bool taken = report_lock();
    for (uint32_t i = 0; i < g_nrepeats; i++) {
        const repeat_ent *e = &g_repeats[i];
        if (g_max_repeats && e->seen > g_max_repeats) {
            char name[200];
            repeat_name(e, name, sizeof name);
            poolsim__outf("poolsim: bug check %s: raised %llu times, %llu not printed (max_repeats)\n", name,
                          (unsigned long long)e->seen, (unsigned long long)(e->seen - g_max_repeats));
        }
    }
    if (g_over_max)
        poolsim__outf("poolsim: %llu more report(s) not printed (max_reports)\n",
                      (unsigned long long)g_over_max);
    report_unlock(taken);
}

void poolsim_set_bugcheck_handler(poolsim_bugcheck_fn *fn, void *ctx)
{
    g_handler_ctx = ctx;
    g_handler = fn;
}

void poolsim_get_bugcheck_handler(poolsim_bugcheck_fn **fn, void **ctx)
{
    if (fn)
        *fn = g_handler;
    if (ctx)
        *ctx = g_handler_ctx;
}

uint64_t poolsim_bugcheck_count(void) { return psim_atomic_load(&g_count); }

static void default_handler(const poolsim_bugcheck *bc)
{
    bool taken = report_lock();
    const repeat_ent *e = repeat_find(bc);
    if (e && g_max_repeats && e->seen > g_max_repeats) {
        /* The same violation at the same site again: one line the first time, then only counted. */
        if (e->seen == (uint64_t)g_max_repeats + 1) {
            char name[200];
            repeat_name(e, name, sizeof name);
            poolsim__outf("poolsim: bug check %s again: further reports of it are counted, not printed "
                          "(max_repeats)\n",
                          name);
        }
    } else if (!g_max_reports || g_printed < g_max_reports) {
        g_printed++;
        poolsim_report_bugcheck(bc);
    } else {
        if (g_over_max++ == 0)
            poolsim__outf(
                "poolsim: %u reports printed; further reports are counted, not printed (max_reports)\n",
                g_max_reports);
    }
    report_unlock(taken);
    if (!g_continue) {
        poolsim__outf("poolsim: stopping on bug check 0x%lx (0x%llx, 0x%llx, 0x%llx, 0x%llx)\n", bc->code,
                      (unsigned long long)bc->param[0], (unsigned long long)bc->param[1],
                      (unsigned long long)bc->param[2], (unsigned long long)bc->param[3]);
        poolsim__prim_stop(bc->code, bc->param);
    }
}

void poolsim__bc_deliver(psim *ps, poolsim_bugcheck *bc)
{
    bc->seq = ps ? poolsim__seq_now(ps) : 0;
    poolsim__irql_annotate(bc); /* IRQL and lock bug checks carry the thread's IRQL history */
    psim_atomic_add(&g_count, 1);
    if (g_halt)
        poolsim__prim_debug_break(); /* MemCheck's "halt on bad": the debugger sees the state first */
    poolsim_bugcheck_fn *fn = g_handler;
    if (fn)
        fn(bc, g_handler_ctx);
    else
        default_handler(bc);
}

void poolsim_bugcheck_raise(unsigned long code, uintptr_t p1, uintptr_t p2, uintptr_t p3, uintptr_t p4,
                            const char *file, int line, const char *routine)
{
    poolsim_bugcheck bc;
    poolsim__bc_make(&bc, code, p1, p2, p3, p4);
    bc.site.file = file;
    bc.site.line = line;
    bc.site.routine = routine;
    poolsim__bc_deliver(poolsim__g, &bc);
}
