/* SPDX-License-Identifier: MIT */
/*
 * capture.h — the tests' capture of what poolsim prints: capture_start()
 * sends poolsim's output to g_text (truncated at its size, always
 * NUL-terminated), capture_stop() back to the platform default. Include
 * after <string.h> and <poolsim/poolsim.h>.
 */
#ifndef POOLSIM_TESTS_CAPTURE_H
#define POOLSIM_TESTS_CAPTURE_H

static char g_text[1 << 16];
static size_t g_len;

static void capture(const char *text, void *ctx)
{
    size_t n = strlen(text);
    (void)ctx;
    if (n > sizeof g_text - 1 - g_len)
        n = sizeof g_text - 1 - g_len;
    memcpy(g_text + g_len, text, n);
    g_len += n;
    g_text[g_len] = '\0';
}

static void capture_start(void)
{
    g_len = 0;
    g_text[0] = '\0';
    poolsim_set_output(capture, NULL);
}

static void capture_stop(void) { poolsim_set_output(NULL, NULL); }

#endif /* POOLSIM_TESTS_CAPTURE_H */
