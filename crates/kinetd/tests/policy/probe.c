/*
 * A probe for the kernel agreement tests: makes the one syscall given on its command
 * line and reports what the kernel returned.
 *
 *     probe NR [ARG]...      numbers in any base strtoull reads (0x..., decimal)
 *
 * prints "ret=R errno=E" and exits 0. The call goes through syscall(2) so that any
 * number, x32 ones included, reaches the kernel as given. Built static so that the
 * policies under test need to allow only a short start-up sequence.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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
    errno = 0;
    long ret = syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]);
    printf("ret=%ld errno=%d\n", ret, ret == -1 ? errno : 0);
    return 0;
}
