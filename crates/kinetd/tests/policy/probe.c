/*
 * A probe for the kernel agreement tests: makes the one syscall given on its command
 * line and reports what the kernel returned.
 *
 *     probe NR [ARG]...      numbers in any base strtoull reads (0x..., decimal)
 *
 * prints "ret=R errno=E" and exits 0, or "trap=N" if the filter answered TRAP(N) (a
 * SIGSYS whose si_errno is N). The call goes through syscall(2) so that any
 * number, x32 ones included, reaches the kernel as given. Built static so that the
 * policies under test need to allow only a short start-up sequence.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reports a TRAP with write(2) only: the handler must be async-signal-safe. */
static void on_sigsys(int sig, siginfo_t *info, void *context) {
    char line[32] = "trap=";
    char digits[12];
    int len = 5, count = 0, n = info->si_errno;
    (void)sig;
    (void)context;
    do {
        digits[count++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    while (count > 0) {
        line[len++] = digits[--count];
    }
    line[len++] = '\n';
    (void)!write(1, line, (size_t)len);
    _exit(0);
}

int main(int argc, char **argv) {
    unsigned long args[6] = {0};
    if (argc < 2 || argc > 8) {
        fprintf(stderr, "usage: probe NR [ARG]...\n");
        return 2;
    }
    long nr = (long)strtoull(argv[1], NULL, 0);
    for (int i = 2; i < argc; i++) {
        args[i - 2] = (unsigned long)strtoull(argv[i], NULL, 0);
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigsys;
    action.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &action, NULL);

    errno = 0;
    long ret = syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]);
    printf("ret=%ld errno=%d\n", ret, ret == -1 ? errno : 0);
    return 0;
}
