/*
 * A service built with static glibc: libc's start-up code runs (TLS, IRELATIVE
 * relocations, stdio) before main prints one line. Built with: gcc -O2 -static.
 */
#include <stdio.h>

int main(void)
{
    puts("hello from a service built with static glibc");
    return 0;
}
