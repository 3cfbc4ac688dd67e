# SPDX-License-Identifier: MIT
#
# toolchain-mingw64.cmake — cross-build poolsim for Windows user mode (x86-64) with Debian's mingw-w64.
# Executables are linked with -static so they need no mingw runtime DLL and run under Wine, which is set
# as CMAKE_CROSSCOMPILING_EMULATOR so ctest runs the Windows tests on Linux. Libraries and packages are
# searched only in the mingw sysroot and in the prefixes given in CMAKE_PREFIX_PATH (e.g. the cmocka built
# by scripts/build-cmocka-win.sh), never in the host's /usr, so a Linux libcmocka cannot leak in.

set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)

# A prefix that is itself a find root is searched as is instead of being re-rooted under the sysroot.
set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32 ${CMAKE_PREFIX_PATH})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc")

find_program(POOLSIM_WINE NAMES wine wine64 PATHS /usr/lib/wine DOC "Wine, to run the Windows tests")
if(POOLSIM_WINE)
    set(CMAKE_CROSSCOMPILING_EMULATOR "${POOLSIM_WINE}")
endif()
