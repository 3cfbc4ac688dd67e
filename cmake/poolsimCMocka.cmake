# SPDX-License-Identifier: MIT
#
# poolsimCMocka.cmake — finds cmocka once and registers cmocka test executables. cmocka ships in several
# shapes: a config package with a cmocka::cmocka target (1.1.6 and later), Debian's 1.1.5 config package
# that only sets CMOCKA_LIBRARIES / CMOCKA_INCLUDE_DIR, a pkg-config file, or a bare library and header
# (the static Windows build of scripts/build-cmocka-win.sh). Whichever is found becomes the one INTERFACE
# target poolsim_cmocka. poolsim_add_test() builds a test and runs it through CMAKE_CROSSCOMPILING_EMULATOR,
# so the same test list runs under Wine when cross-compiled (like cmocka's AddCMockaTest.cmake).
include_guard(GLOBAL)

add_library(poolsim_cmocka INTERFACE)

find_package(cmocka CONFIG QUIET)
if(TARGET cmocka::cmocka)
    target_link_libraries(poolsim_cmocka INTERFACE cmocka::cmocka)
    set(_poolsim_cmocka_from "${cmocka_DIR} (cmocka::cmocka)")
elseif(cmocka_FOUND AND (CMOCKA_LIBRARIES OR CMOCKA_LIBRARY))
    if(CMOCKA_LIBRARIES)
        target_link_libraries(poolsim_cmocka INTERFACE ${CMOCKA_LIBRARIES})
    else()
        target_link_libraries(poolsim_cmocka INTERFACE ${CMOCKA_LIBRARY})
    endif()
    target_include_directories(poolsim_cmocka SYSTEM INTERFACE ${CMOCKA_INCLUDE_DIR})
    set(_poolsim_cmocka_from "${cmocka_DIR} (CMOCKA_LIBRARIES)")
else()
    # The host's pkg-config describes host libraries, so it is no use when cross-compiling.
    if(NOT CMAKE_CROSSCOMPILING)
        find_package(PkgConfig QUIET)
    endif()
    if(PKG_CONFIG_FOUND)
        pkg_check_modules(POOLSIM_PC_CMOCKA QUIET IMPORTED_TARGET cmocka)
    endif()
    if(TARGET PkgConfig::POOLSIM_PC_CMOCKA)
        target_link_libraries(poolsim_cmocka INTERFACE PkgConfig::POOLSIM_PC_CMOCKA)
        set(_poolsim_cmocka_from "pkg-config ${POOLSIM_PC_CMOCKA_VERSION}")
    else()
        find_library(POOLSIM_CMOCKA_LIBRARY NAMES cmocka)
        find_path(POOLSIM_CMOCKA_INCLUDE_DIR NAMES cmocka.h)
        if(NOT POOLSIM_CMOCKA_LIBRARY OR NOT POOLSIM_CMOCKA_INCLUDE_DIR)
            message(FATAL_ERROR "poolsim: cmocka not found, and the tests need it (POOLSIM_BUILD_TESTS=ON).\n"
                "  Linux: apt-get install libcmocka-dev.\n"
                "  mingw-w64: scripts/build-cmocka-win.sh build/deps, then configure with "
                "-DCMAKE_PREFIX_PATH=<repo>/build/deps/cmocka-win\n"
                "  (the mingw preset takes it from the environment: POOLSIM_CMOCKA_WIN=<repo>/build/deps/cmocka-win).\n"
                "  Or configure with -DPOOLSIM_BUILD_TESTS=OFF.")
        endif()
        target_link_libraries(poolsim_cmocka INTERFACE "${POOLSIM_CMOCKA_LIBRARY}")
        target_include_directories(poolsim_cmocka SYSTEM INTERFACE "${POOLSIM_CMOCKA_INCLUDE_DIR}")
        set(_poolsim_cmocka_from "${POOLSIM_CMOCKA_LIBRARY}")
    endif()
endif()
set_property(GLOBAL PROPERTY POOLSIM_CMOCKA_FROM "${_poolsim_cmocka_from}")

# poolsim_add_test(name [sources...]): a cmocka test executable (sources default to name.c) and its test, run
# under POOLSIM_TEST_LAUNCHER (the top CMakeLists.txt) when that is set.
function(poolsim_add_test name)
    set(sources ${ARGN})
    if(NOT sources)
        set(sources ${name}.c)
    endif()
    add_executable(${name} ${sources})
    target_link_libraries(${name} PRIVATE poolsim_internal poolsim_cmocka)
    add_test(NAME ${name} COMMAND ${CMAKE_CROSSCOMPILING_EMULATOR} ${POOLSIM_TEST_LAUNCHER} $<TARGET_FILE:${name}>)
    set_tests_properties(${name} PROPERTIES TIMEOUT ${POOLSIM_TEST_TIMEOUT})
    if(CMAKE_CROSSCOMPILING AND WIN32)
        # Quiet Wine, and keep a new prefix from offering to install Mono and Gecko.
        set_tests_properties(${name} PROPERTIES ENVIRONMENT "WINEDEBUG=-all;WINEDLLOVERRIDES=mscoree,mshtml=")
    endif()
endfunction()
