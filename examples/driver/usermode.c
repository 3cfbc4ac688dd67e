/* SPDX-License-Identifier: MIT */
/*
 * usermode.c — the sample driver's scenario run in user mode, to show (and
 * test) what the checked driver prints at unload. xtag.c is compiled here
 * exactly as in the driver, with <poolsim/shim.h> on, over poolsim's user-mode
 * WDK surface instead of the real <ntddk.h>; main() does what driver.c's
 * DriverEntry and DriverUnload do. Options come from the environment here
 * (POOLSIM_CONTINUE_ON_BUGCHECK=1 POOLSIM_DRIVER_NAME=eapwt_checked.sys, as
 * the test sets them), and from the compile-time defaults in the driver.
 */
#include <poolsim/wdm.h>
#include <poolsim/shim.h>

#include "xtag.h"

int main(void)
{
    xtag_state state;
    NTSTATUS status = POOLSIM_DRIVER_INIT();
    if (!NT_SUCCESS(status))
        return 1;
    status = xtag_load(&state);
    if (!NT_SUCCESS(status)) {
        POOLSIM_DRIVER_UNLOAD();
        return 1;
    }
    xtag_unload(&state);
    POOLSIM_DRIVER_UNLOAD();
    return 0;
}
