/*
 * A service with no libc at all: it writes one line with a raw write(2) and exits with
 * a raw exit(2). Two syscalls after execve, no dynamic loader, no start-up code, so
 * what a benchmark of it measures is the server's own cost.
 *
 * Built with: gcc -O2 -static -no-pie -nostdlib -fno-stack-protector (x86-64 only).
 */
static long syscall3(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}

void _start(void)
{
    static const char line[] = "hello from a service with no libc\n";
    syscall3(1 /* write */, 1, (long)line, sizeof line - 1);
    for (;;)
        syscall3(60 /* exit */, 0, 0, 0);
}
