/* SPDX-License-Identifier: MIT */
/*
 * driver.c — the sample driver's entry points. DriverEntry starts poolsim
 * (POOLSIM_DRIVER_INIT, the constant STATUS_SUCCESS in the free build) and
 * runs the load half of the scenario; DriverUnload runs the unload half and
 * then POOLSIM_DRIVER_UNLOAD, which prints the driver's !poolused table, the
 * leak table naming xtag.c's allocating line, and the C4/0x62 leak report.
 *
 * The sample leaks one 8192-byte block on purpose, in both builds: load it on
 * a test machine only.
 */
#include <ntddk.h>
#include <poolsim/shim.h>

#include "xtag.h"

DRIVER_INITIALIZE DriverEntry;
static DRIVER_UNLOAD xtag_driver_unload;

static xtag_state g_state;

static VOID NTAPI xtag_driver_unload(PDRIVER_OBJECT DriverObject)
{
    UNREFERENCED_PARAMETER(DriverObject);
    xtag_unload(&g_state);
    POOLSIM_DRIVER_UNLOAD();
}

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    NTSTATUS status;

    UNREFERENCED_PARAMETER(RegistryPath);
    status = POOLSIM_DRIVER_INIT();
    if (!NT_SUCCESS(status))
        return status;
    status = xtag_load(&g_state);
    if (!NT_SUCCESS(status)) {
        POOLSIM_DRIVER_UNLOAD();
        return status;
    }
    DriverObject->DriverUnload = xtag_driver_unload;
    return STATUS_SUCCESS;
}
