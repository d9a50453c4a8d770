/*
 * guess: the demo challenge served by scripts/demo.sh.
 *
 * A player gets seven tries to guess a number from 1 to 100; a correct guess prints the
 * flag, read from the file named by the first argument. The program talks over stdin and
 * stdout only, as every inetd-style service does, and needs nothing beyond the syscalls
 * listed in ../demo.policy.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

enum { LOW = 1, HIGH = 100, TRIES = 7 };

/* Writes the flag file to stdout, or says why it cannot. */
static void print_flag(const char *path)
{
    char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("(the flag file %s cannot be opened)\n", path);
        return;
    }
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    close(fd);
}

static unsigned secret_number(void)
{
    unsigned r;
    if (getrandom(&r, sizeof r, 0) != sizeof r) {
        puts("no randomness available");
        exit(1);
    }
    return LOW + r % (HIGH - LOW + 1);
}

int main(int argc, char **argv)
{
    const char *flag_path = argc > 1 ? argv[1] : "flag.txt";
    char line[64];

    /* The socket is not a terminal, so stdio would buffer whole blocks; a player needs
     * each prompt as soon as it is written. */
    setvbuf(stdout, NULL, _IONBF, 0);

    unsigned secret = secret_number();
    printf("Welcome to kinetd's demo challenge!\n"
           "I am thinking of a number between %d and %d. You have %d tries.\n",
           LOW, HIGH, TRIES);

    for (int try = 1; try <= TRIES; try++) {
        printf("guess %d/%d> ", try, TRIES);
        if (!fgets(line, sizeof line, stdin)) {
            puts("\nbye");
            return 0;
        }

        char *end;
        long guess = strtol(line, &end, 10);
        if (end == line) {
            puts("that is not a number");
            continue;
        }

        if (guess < (long)secret) {
            puts("higher");
        } else if (guess > (long)secret) {
            puts("lower");
        } else {
            printf("correct, it was %u! here is your flag:\n", secret);
            print_flag(flag_path);
            return 0;
        }
    }

    printf("out of tries: it was %u\n", secret);
    return 0;
}
