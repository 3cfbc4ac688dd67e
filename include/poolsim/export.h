/* SPDX-License-Identifier: MIT */
/*
 * export.h — symbol visibility for poolsim's public functions.
 *
 * The static library (the default) needs nothing. A shared build defines
 * POOLSIM_SHARED for users and POOLSIM_BUILDING while compiling poolsim.
 */
#ifndef POOLSIM_EXPORT_H
#define POOLSIM_EXPORT_H

#if defined(POOLSIM_SHARED) && defined(_WIN32)
#if defined(POOLSIM_BUILDING)
#define POOLSIM_API __declspec(dllexport)
#else
#define POOLSIM_API __declspec(dllimport)
#endif
#elif defined(POOLSIM_SHARED) && defined(__GNUC__)
#define POOLSIM_API __attribute__((visibility("default")))
#else
#define POOLSIM_API
#endif

#endif /* POOLSIM_EXPORT_H */
