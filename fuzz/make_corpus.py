#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# make_corpus.py [DIR] — writes fuzz_pool's seed corpus (default: fuzz/corpus beside this script): one small
# program per scenario, spelled with the operation encoding of docs/fuzzing.md, so a campaign starts from every
# kind of operation and every planted violation instead of finding them by chance. The files are committed;
# run this again after changing the encoding in fuzz/fuzz_pool.c.
import os
import sys

# Operation codes: the index of the first slot of each operation in fuzz_pool.c's ops[] table.
ALLOC, FREE, FREE_BAD, WRITE, QUERY, VALIDATE, INSPECT, REPORT, FAULT = 0, 4, 7, 8, 11, 12, 13, 14, 15
RAISE, LOWER, SET_IRQL, SPIN_ACQ, SPIN_REL, MUTEX, CRITICAL, THREAD_CHECK = 16, 17, 18, 19, 20, 21, 22, 23
LAL_INIT, LAL_ALLOC, LAL_FREE, LAL_FLUSH_DELETE = 24, 25, 26, 27
NPAGED_LIST, PAGED_LIST, EX_LIST = 0, 1, 2

# Allocation routines (alloc_rts[]), legacy types (legacy_types[]), flag kinds (flag_kinds[]), tags.
WITH_TAG, POOL2, POOL3, EX_POOL, WITH_QUOTA, QUOTA_TAG, TAG_PRIORITY, ZERO = 0, 1, 2, 3, 4, 5, 6, 7
QUOTA_ZERO, PRIORITY_ZERO, UNINIT, QUOTA_UNINIT, PRIORITY_UNINIT, MM_CONTIG, MM_CONTIG_CACHE, MM_NONCACHED = (
    8, 9, 10, 11, 12, 13, 14, 15)
NONPAGED, PAGED, NONPAGED_CACHE, NX = 0, 1, 2, 7
MUST_SUCCEED, UNDEFINED = 14, 19
FL_NONPAGED, FL_PAGED, FL_NONE, FL_TWO_KINDS = 0, 1, 7, 8
TAG_XTAG, TAG_POOL, TAG_ZERO, TAG_PROTECTED_XTAG, TAG_BIG, TAG_BAD = 0x00, 0x01, 0x0A, 0x0B, 0x0D, 0x0F
FB_RAISE = 3 << 4  # flag_bits[3], POOL_FLAG_RAISE_ON_FAILURE, for an ExAllocatePool2/3 type byte
# free(): the routine is the low 5 bits; 0x20 a wrong MmFreeNonCachedMemory size, 0x40 ExFreePool2 parameters.
WRONG_SIZE, EXT_PARAMS = 0x20, 0x40


def options(retail=False, protected_check=False, no_zero_check=False, no_guards=False, qblocks=7, qbytes=7,
            limit=0, history=2):
    b0 = (1 if retail else 0) | (2 if protected_check else 0) | (4 if no_zero_check else 0) | (8 if no_guards else 0)
    return [b0, qblocks | qbytes << 3 | limit << 6, history]


def alloc(routine, type_sel, size, tag=TAG_XTAG):
    """size: ('small', n) for 1..64, ('gran', k) for 16*(k+1), ('zero',), ('big', n), ('edge', i), ('huge', i)."""
    kind = size[0]
    if kind == 'zero':
        ssel, extra = 0, []
    elif kind == 'small':
        ssel, extra = 1, [size[1] - 1]
    elif kind == 'gran':
        ssel, extra = 7, [size[1]]
    elif kind == 'edge':
        ssel, extra = 3, [size[1]]
    elif kind == 'big':
        ssel, extra = 4, list((size[1] - 0xFE1).to_bytes(2, 'little'))
    else:
        ssel, extra = 6 | size[1] << 3, []
    ext = [0, 0] if routine == POOL3 else []
    return [ALLOC, routine, type_sel, ssel, tag] + ext + extra


def free(k, right=True, routine=0, tag_variant=0):
    return [FREE, k, (0x80 if right else 0) | routine, tag_variant]


def write(k, where, at=0, value=0x41):
    """where: 0 inside, 2 past the end (slack, footer), 3 before (header, guard bytes)."""
    return [WRITE, k, where, at, value]


def free_bad(kind, k=0, offset=0, routine=0):
    """kind: 0 NULL, 1 stack, 2 static, 3 C heap, 4 inside the k-th block."""
    return [FREE_BAD, kind | k << 3, routine] + list(offset.to_bytes(2, 'little'))


def lal_init(where, kind, size_idx, depth_idx=0, flags_idx=0, type_sel=0, tag=TAG_XTAG):
    """where: 0, 1 static handles, 2 a handle at the start of a live block. size_idx: 0, 4, 8, 16, 40, 0xFE0,
    0x2000, SIZE_MAX. depth_idx: 0 (256), 1, 2, 300. flags_idx: NPaged/Paged 0, NX, raise, NX|raise|quota-fail;
    Ex 0, raise on failure, fail without raising, both, unknown."""
    return [LAL_INIT, where | kind << 2, size_idx | depth_idx << 3 | flags_idx << 5, type_sel, tag]


def lal_free(where, entry, k=0):
    """entry: 0 one the list holds, 1 a live block no list holds, 2 a freed block, 3 a bad address."""
    return [LAL_FREE, where, entry | k << 2] + ([0, 0] if entry == 3 else [])


SEEDS = {
    'basic': options() + alloc(WITH_TAG, NONPAGED, ('small', 40)) + free(0) + [INSPECT],
    'every-routine': options() + sum((alloc(r, NONPAGED, ('gran', 2)) for r in range(16)), []) + [INSPECT]
    + sum((free(i) for i in range(16)), []),
    'pool2-pool3': options() + alloc(POOL2, FL_NONPAGED, ('small', 24)) + alloc(POOL2, FL_PAGED | FB_RAISE, ('gran', 1))
    + alloc(POOL3, FL_NONPAGED, ('small', 8)) + alloc(POOL2, FL_NONE, ('small', 8))
    + alloc(POOL2, FL_TWO_KINDS, ('small', 8)) + alloc(POOL2, FL_NONPAGED, ('small', 8), TAG_ZERO) + [INSPECT],
    'overrun': options() + alloc(WITH_TAG, NONPAGED, ('small', 40)) + write(0, 2, 3) + free(0) + free(0),
    'overrun-exact': options() + alloc(WITH_TAG, PAGED, ('gran', 2)) + write(0, 2, 0) + [VALIDATE] + free(0),
    'underrun': options() + alloc(WITH_TAG, NONPAGED, ('small', 40)) + write(0, 3, 0) + [VALIDATE] + free(0),
    'header-smash': options() + alloc(WITH_TAG, NX, ('small', 64)) + write(0, 3, 9) + write(0, 3, 12) + free(0),
    'after-free': options() + alloc(WITH_TAG, NONPAGED, ('small', 40)) + free(0) + write(0, 0, 5) + [VALIDATE],
    'after-free-shutdown': options() + alloc(ZERO, PAGED, ('small', 32)) + free(0) + write(0, 0, 1, 0x00),
    'eviction': options(qblocks=1) + alloc(WITH_TAG, NONPAGED, ('small', 40)) + alloc(WITH_TAG, NONPAGED, ('small', 40))
    + free(0) + write(0, 0, 2) + free(1),
    'eviction-bytes': options(qblocks=7, qbytes=2) + alloc(WITH_TAG, NONPAGED, ('small', 64))
    + alloc(WITH_TAG, NONPAGED, ('small', 64)) + free(0) + write(0, 2, 1) + free(1) + [INSPECT],
    'double-free': options() + alloc(WITH_TAG, NONPAGED, ('small', 40)) + free(0) + free(0) + free(0, routine=1),
    'free2-params': options() + alloc(POOL2, FL_NONPAGED, ('small', 40)) + free(0, routine=2 | EXT_PARAMS) + free(0, routine=2),
    'double-free-released': options(qblocks=0) + alloc(WITH_TAG, NONPAGED, ('small', 40)) + free(0) + free(0)
    + [INSPECT],
    'interior': options() + alloc(WITH_TAG, NONPAGED, ('small', 40)) + free_bad(4, 0, 8) + free_bad(4, 0, 3)
    + free_bad(4, 0, 5, routine=3) + free(0) + free_bad(4, 0, 8),
    'foreign': options() + free_bad(0) + free_bad(1, offset=4) + free_bad(2) + free_bad(3) + free_bad(0, routine=3)
    + free_bad(1, routine=4),
    'wrong-tag': options() + alloc(WITH_TAG, NONPAGED, ('small', 40)) + free(0, tag_variant=6 | 1 << 3) + free(0),
    'protected': options(protected_check=True) + alloc(WITH_TAG, NONPAGED, ('small', 40), TAG_PROTECTED_XTAG)
    + free(0, routine=1) + free(0, tag_variant=5) + free(0, tag_variant=7),
    'bad-requests': options() + alloc(WITH_TAG, MUST_SUCCEED, ('small', 8)) + alloc(WITH_TAG, UNDEFINED, ('small', 8))
    + alloc(WITH_TAG, NONPAGED, ('small', 8), TAG_ZERO) + alloc(WITH_TAG, NONPAGED, ('small', 8), TAG_BIG)
    + alloc(WITH_TAG, NONPAGED, ('small', 8), TAG_BAD) + alloc(WITH_TAG, NONPAGED, ('zero',)) + [INSPECT],
    'zero-size-served': options(no_zero_check=True) + alloc(WITH_TAG, NONPAGED, ('zero',)) + [QUERY, 1, 0] + free(0),
    'big': options() + alloc(WITH_TAG, NONPAGED, ('big', 0x1800)) + [QUERY, 1, 0] + write(0, 2, 1) + free(0)
    + write(0, 3, 2) + free(0) + free_bad(4, 0, 0x8000 | 2),
    'edges': options() + sum((alloc(UNINIT, NONPAGED_CACHE if i % 2 else PAGED, ('edge', i)) for i in range(12)), [])
    + [INSPECT],
    'huge-and-limit': options(limit=3) + sum((alloc(WITH_QUOTA, NONPAGED, ('huge', i)) for i in range(8)), [])
    + alloc(WITH_TAG, NONPAGED, ('big', 0x7000)) + alloc(WITH_TAG, NONPAGED, ('big', 0x7000)) + [INSPECT],
    'mm': options() + alloc(MM_CONTIG, 0, ('small', 8)) + alloc(MM_NONCACHED, 0, ('big', 0x1000))
    + alloc(MM_CONTIG, 0, ('zero',)) + free(0, right=False, routine=0) + free(1, right=False, routine=3)
    + free(1, right=False, routine=4 | WRONG_SIZE) + free(0) + free(1) + free(0),
    'query-bad': options() + alloc(WITH_TAG, NONPAGED, ('small', 40)) + [QUERY, 0, 0, 0, 0] + [QUERY, 2, 0, 0, 0]
    + [QUERY, 8, 0, 5, 0] + free(0) + [QUERY, 1, 0],
    'irql-pool': options() + alloc(WITH_TAG, PAGED, ('small', 40)) + [RAISE, 2, 0] + alloc(WITH_TAG, PAGED, ('small', 8))
    + alloc(WITH_TAG, NONPAGED, ('small', 8)) + free(0) + [RAISE, 15, 0] + alloc(WITH_TAG, NONPAGED, ('small', 8))
    + [LOWER, 0] + free(0) + free(0),
    'irql-raise-lower': options() + [RAISE, 1, 0, RAISE, 0, 0, RAISE, 0, 1, RAISE, 0, 2, LOWER, 16, LOWER, 14, LOWER, 0,
                                     RAISE, 16, 0, SET_IRQL, 18, LOWER, 0, THREAD_CHECK],
    'spin-legal': options() + [SPIN_ACQ, 0, 0, SPIN_ACQ, 1, 2, SPIN_REL, 1, 1, SPIN_REL, 0, 0, SPIN_ACQ, 2, 3,
                               SPIN_REL, 2, 2, SPIN_ACQ, 3, 1, SPIN_REL, 3, 0, THREAD_CHECK],
    'spin-misuse': options() + [SPIN_ACQ, 0, 0, SPIN_ACQ, 0, 0, SPIN_REL, 0, 0, SPIN_REL, 0, 0, SPIN_REL, 1, 0,
                                SPIN_ACQ, 0, 3, SPIN_REL, 0, 2, SPIN_ACQ, 1, 2, SPIN_ACQ, 2, 0, SPIN_REL, 2, 1,
                                SPIN_ACQ, 3, 0, SPIN_REL, 3, 0x40 | 1 << 2, THREAD_CHECK],
    'spin-retail': options(retail=True) + [SPIN_ACQ, 0, 0, SPIN_ACQ, 0, 0, SPIN_REL, 0, 0, SPIN_REL, 0, 0, RAISE, 3, 0,
                                          SPIN_ACQ, 1, 0, LOWER, 0, RAISE, 1, 0, LOWER, 2, THREAD_CHECK],
    'mutex': options() + [MUTEX, 0, MUTEX, 0, MUTEX, 0x80, MUTEX, 0x80, MUTEX, 0x80, CRITICAL, 0, RAISE, 2, 0,
                          MUTEX, 1, CRITICAL, 1, LOWER, 1, MUTEX, 0x81, LOWER, 0, THREAD_CHECK],
    'fault-nth': options() + [FAULT, 2] + alloc(WITH_TAG, NONPAGED, ('small', 8)) + alloc(QUOTA_TAG, NONPAGED, ('small', 8))
    + alloc(POOL2, FL_NONPAGED | FB_RAISE, ('small', 8)) + [FAULT, 0x81] + alloc(MM_CONTIG, 0, ('small', 8))
    + alloc(WITH_TAG, PAGED, ('small', 8)) + [FAULT, 0, INSPECT],
    'reports': options() + alloc(WITH_TAG, NONPAGED, ('small', 40)) + alloc(WITH_TAG, PAGED, ('small', 40), TAG_POOL)
    + free(1) + sum(([REPORT, k, 1 | 2 << 3, 0x10, 0] for k in range(9)), []),
    'retail-corruption': options(retail=True) + alloc(WITH_TAG, NONPAGED, ('small', 40)) + write(0, 2, 1) + free(0)
    + write(0, 3, 1) + free(0) + free(0) + write(0, 0, 3) + free(0) + [VALIDATE] + free_bad(4, 0, 8),
    'guards-off': options(no_guards=True) + alloc(WITH_TAG, NONPAGED, ('small', 40)) + write(0, 2, 1) + write(0, 3, 1)
    + free(0) + write(0, 0, 2) + [VALIDATE],
    'lookaside': options() + lal_init(0, NPAGED_LIST, 4, depth_idx=2) + [LAL_ALLOC, 0, LAL_ALLOC, 0, LAL_ALLOC, 0]
    + lal_free(0, 1, 0) + lal_free(0, 1, 0) + lal_free(0, 1, 0) + lal_free(0, 0) + [LAL_ALLOC, 0, LAL_FLUSH_DELETE, 0]
    + [LAL_FLUSH_DELETE, 0x40, LAL_ALLOC, 0, INSPECT],
    'lookaside-in-block': options() + alloc(WITH_TAG, NONPAGED, ('small', 64)) + lal_init(2, EX_LIST, 3, 0, 1, PAGED)
    + [LAL_ALLOC, 2] + lal_free(2, 1, 1) + free(0) + [LAL_FLUSH_DELETE, 2 | 0x40] + free(0) + [LAL_ALLOC, 2],
    'lookaside-misuse': options() + lal_init(1, PAGED_LIST, 1) + lal_init(1, PAGED_LIST, 4)
    + lal_init(0, EX_LIST, 4, type_sel=MUST_SUCCEED) + lal_init(0, EX_LIST, 4, flags_idx=3) + [RAISE, 2, 0]
    + [LAL_ALLOC, 1] + lal_free(1, 3) + [LOWER, 0] + lal_free(1, 3) + lal_free(1, 2)
    + [LAL_FLUSH_DELETE, 1 | 0x40, LAL_ALLOC, 1, LAL_FLUSH_DELETE, 1 | 0x40],
    'lookaside-debug-retail': [1, 7 | 7 << 3, 2 | 32] + lal_init(0, NPAGED_LIST, 4) + [LAL_ALLOC, 0] + lal_free(0, 1, 0)
    + [LAL_ALLOC, 0] + [LAL_FLUSH_DELETE, 0x40],
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')
    os.makedirs(out, exist_ok=True)
    for name, prog in SEEDS.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(bytes(b & 0xFF for b in prog))
    print(f'make_corpus.py: {len(SEEDS)} seeds in {out}')


if __name__ == '__main__':
    main()
