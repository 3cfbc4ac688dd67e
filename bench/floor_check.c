/* SPDX-License-Identifier: MIT */
/*
 * floor_check.c — the floor model does the checks it is priced for: every size it serves is handed out
 * aligned, inside its page (a big one at a page start), and freed cleanly, while an overrun, an
 * underrun, an interior or foreign pointer, a wrong tag, a double free and a refused request each come
 * back as a violation. Without this, a model that skipped a check would still run the benchmark, faster.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floor.h"

#define TAG 0x74736554u /* "Test" */
#define NX 0x200u       /* NonPagedPoolNx */

static int g_failed;

#define CHECK(c)                                                                                             \
    do {                                                                                                     \
        if (!(c)) {                                                                                          \
            fprintf(stderr, "floor_check.c:%d: %s (size %u)\n", __LINE__, #c, (unsigned)n);                  \
            g_failed = 1;                                                                                    \
        }                                                                                                    \
    } while (0)

static void *alloc(size_t n, uint32_t tag) { return floor_alloc(NX, n, tag, __FILE__, 1); }
static int release(void *p, uint32_t tag) { return floor_free(p, tag, __FILE__, 2); }

int main(void)
{
    size_t n = 0;
    CHECK(floor_init());
    CHECK(!floor_init()); /* one instance */
    for (n = 1; n <= FLOOR_MAX; n++) {
        unsigned char *p = alloc(n, TAG), *q = alloc(n, TAG);
        CHECK(p && q);
        if (!p || !q)
            break;
        uintptr_t in_page = (uintptr_t)p & 4095u;
        CHECK(((uintptr_t)p & 15u) == 0);
        CHECK(n > 4064 ? in_page == 0 : in_page + n <= 4096);
        memset(p, 0xAB, n);
        p[n] ^= 0x5A; /* the byte after the block */
        CHECK(release(p, TAG) == -1);
        p[n] ^= 0x5A;
        p[-1] ^= 1; /* the byte before it */
        CHECK(release(p, TAG) == -1);
        p[-1] ^= 1;
        CHECK(n < 16 || release(p + 16, TAG) == -1); /* interior */
        CHECK(release(p, TAG + 1) == -1);            /* another tag */
        CHECK(release(p, TAG) == 0);
        CHECK(release(p, TAG) == -1); /* double free */
        CHECK(release(q, 0) == 0);    /* tag 0 frees any unprotected block */
    }
    n = 30; /* 48-byte slots: 85 to a page, 16 bytes unused at its end */
    unsigned char *b = alloc(n, TAG);
    CHECK(b != NULL);
    uintptr_t page = (uintptr_t)b & ~(uintptr_t)4095u;
    CHECK(release((void *)(page + 85 * 48 + 16), TAG) == -1);                 /* the page's unused tail */
    CHECK(release((void *)((uintptr_t)b | ((uintptr_t)1 << 50)), TAG) == -1); /* bits above 47 */
    CHECK(release(&n, TAG) == -1);                                            /* not the model's memory */
    CHECK(alloc(0, TAG) == NULL);
    CHECK(alloc(FLOOR_MAX + 1, TAG) == NULL);
    CHECK(alloc(8, 0) == NULL);
    CHECK(alloc(8, 0x01020304u) == NULL);                 /* not a well-formed tag */
    CHECK(floor_alloc(0x2, 8, TAG, __FILE__, 3) == NULL); /* NonPagedPoolMustSucceed */
    unsigned char *ab = alloc(8, 0x6261u);                /* "ab": two characters, then zeros */
    CHECK(ab != NULL);
    CHECK(release(b, TAG) == 0);
    CHECK(floor_fini() == 1); /* "ab" is still live */
    CHECK(floor_fini() == 0);
    if (!g_failed)
        printf("floor_check: every check held\n");
    return g_failed;
}
