/* SPDX-License-Identifier: MIT */
/*
 * main.c — the consumer project's program: proves that an installed poolsim's headers, generated version
 * header and library are found and link, by starting and stopping the default instance.
 */
#include <stdio.h>

#include <poolsim/poolsim.h>

int main(void)
{
    if (poolsim_init(NULL) != POOLSIM_OK) {
        fprintf(stderr, "consumer: poolsim_init failed\n");
        return 1;
    }
    if (poolsim_shutdown() != 0) {
        fprintf(stderr, "consumer: poolsim_shutdown reported outstanding blocks\n");
        return 1;
    }
    printf("consumer ok %s\n", POOLSIM_VERSION_STRING);
    return 0;
}
