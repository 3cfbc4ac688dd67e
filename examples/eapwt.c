/* SPDX-License-Identifier: MIT */
/*
 * eapwt.c — the seed's ExAllocatePoolWithTag walkthrough, run in user mode.
 *
 * A small "driver" keeps a FIFO of 8192-byte NonPagedPool blocks tagged
 * 'gaTX' (shown as XTag): key `a` allocates one, `d` frees the oldest. Its
 * DriverEntry also allocates a paged parameters buffer ('graP', "Parg") and a
 * nonpaged device context ('xtCD', "DCtx"), freed at unload. After each step
 * the demo prints WinDbg's `!poolused 1` table, so the XTag row reads like
 * the walkthrough: 10 0 10 81920, then 11 0 11 90112, 11 10 1 8192, 11 11 0 0.
 *
 * Usage: eapwt            the scripted walkthrough (10 a, 1 a, 10 d, 1 d)
 *        eapwt -i         keys from stdin: a d p (print) o (outstanding) q (unload)
 * Unloading with blocks still allocated shows poolsim's leak table and the
 * C4/0x62 bug check that Driver Verifier would raise.
 */
#include <poolsim/wdm.h>

#include <stdio.h>
#include <string.h>

#define XTAG 'gaTX'
#define PARAMS_TAG 'graP'
#define CONTEXT_TAG 'xtCD'
#define MAX_BLOCKS 64

/* ---- The "driver" ------------------------------------------------------- */

typedef struct driver_state {
    PVOID blocks[MAX_BLOCKS]; /* FIFO of XTag blocks */
    ULONG head, count;
    PVOID params, context;
} driver_state;

static NTSTATUS DriverEntry(driver_state *drv)
{
    memset(drv, 0, sizeof *drv);
    drv->params = ExAllocatePool2(POOL_FLAG_PAGED, 512, PARAMS_TAG);
    drv->context = ExAllocatePoolWithTag(NonPagedPoolNx, 256, CONTEXT_TAG);
    if (!drv->params || !drv->context)
        return STATUS_INSUFFICIENT_RESOURCES;
    return STATUS_SUCCESS;
}

static void driver_allocate(driver_state *drv)
{
    if (drv->count == MAX_BLOCKS) {
        printf("  (the demo keeps at most %d blocks)\n", MAX_BLOCKS);
        return;
    }
    PVOID p = ExAllocatePoolWithTag(NonPagedPool, 8192, XTAG);
    if (!p) {
        printf("  ExAllocatePoolWithTag failed\n");
        return;
    }
    drv->blocks[(drv->head + drv->count++) % MAX_BLOCKS] = p;
}

static void driver_free_oldest(driver_state *drv)
{
    if (!drv->count) {
        printf("  (no block to free)\n");
        return;
    }
    ExFreePoolWithTag(drv->blocks[drv->head], XTAG);
    drv->head = (drv->head + 1) % MAX_BLOCKS;
    drv->count--;
}

static void DriverUnload(driver_state *drv)
{
    /* The XTag blocks still in the FIFO are left behind on purpose: the
     * leak check at shutdown names each one. */
    ExFreePoolWithTag(drv->params, PARAMS_TAG);
    ExFreePool(drv->context);
}

/* ---- The walkthrough ------------------------------------------------------ */

static void to_stdout(const char *text, void *ctx)
{
    (void)ctx;
    fputs(text, stdout);
}

static void step(driver_state *drv, char key, int times)
{
    printf("\n> %c x%d\n", key, times);
    for (int i = 0; i < times; i++)
        key == 'a' ? driver_allocate(drv) : driver_free_oldest(drv);
    printf("kd> !poolused 1\n");
    poolsim_report_poolused(POOLSIM_POOLUSED_VERBOSE, NULL);
}

int main(int argc, char **argv)
{
    bool interactive = argc > 1 && strcmp(argv[1], "-i") == 0;
    if (argc > 1 && !interactive) {
        fprintf(stderr, "usage: %s [-i]\n", argv[0]);
        return 2;
    }
    poolsim_options opts;
    poolsim_options_default(&opts);
    poolsim_options_from_env(&opts);
    opts.continue_on_bugcheck = 1; /* show the leak bug check instead of stopping */
    opts.driver_name = "eapwt.sys";
    poolsim_set_output(to_stdout, NULL);
    if (poolsim_init(&opts) != POOLSIM_OK)
        return 1;

    driver_state drv;
    if (!NT_SUCCESS(DriverEntry(&drv))) {
        printf("DriverEntry failed\n");
        return 1;
    }
    if (!interactive) {
        step(&drv, 'a', 10);
        step(&drv, 'a', 1);
        step(&drv, 'd', 10);
        step(&drv, 'd', 1);
    } else {
        printf("keys: a = allocate 8192 bytes 'XTag', d = free the oldest, p = !poolused, o = outstanding, "
               "q = unload\n");
        for (int c; (c = getchar()) != EOF && c != 'q';) {
            if (c == 'a' || c == 'd')
                step(&drv, (char)c, 1);
            else if (c == 'p')
                poolsim_report_poolused(POOLSIM_POOLUSED_VERBOSE, NULL);
            else if (c == 'o')
                poolsim_report_outstanding();
        }
    }
    printf("\n> unload\n");
    DriverUnload(&drv);
    size_t leaked = poolsim_shutdown();
    printf("poolsim_shutdown: %zu block(s) leaked\n", leaked);
    return 0;
}
