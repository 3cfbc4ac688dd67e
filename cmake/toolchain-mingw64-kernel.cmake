# SPDX-License-Identifier: MIT
#
# toolchain-mingw64-kernel.cmake — cross-build Windows x64 kernel drivers (.sys) with Debian's mingw-w64 and
# its DDK headers (<sysroot>/include/ddk). With this toolchain poolsim's top-level CMakeLists.txt builds only
# examples/driver/ (POOLSIM_KERNEL): the sample driver with poolsim (POOLSIM_ENABLED=1) and without.
#
# Every executable is a driver image: PE32+ with the native subsystem, entered at DriverEntry (x64 has one
# calling convention, so the symbol is undecorated; x86 would need _DriverEntry@8), linked with -nostdlib
# against ntoskrnl.exe and HAL.dll only. Relocations are kept (--dynamicbase) because the kernel loads
# drivers at any address. Compiler checks build static libraries, since a test program cannot be linked
# without DriverEntry.

set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Read by poolsim's CMakeLists.txt and examples/driver/CMakeLists.txt.
set(POOLSIM_KERNEL ON)
set(POOLSIM_DDK_INCLUDE_DIR /usr/x86_64-w64-mingw32/include/ddk)
set(POOLSIM_KERNEL_LIBRARIES ntoskrnl hal)

# Kernel code: no stack protector (its __stack_chk_* helpers live in the CRT), no CRT startup files.
set(CMAKE_C_FLAGS_INIT "-fno-stack-protector")
set(CMAKE_EXE_LINKER_FLAGS_INIT
    "-nostdlib -nostartfiles -Wl,--subsystem,native -Wl,--entry,DriverEntry -Wl,--dynamicbase -Wl,--nxcompat")
