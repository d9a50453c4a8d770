/*
 * bare: the least a super-server can do for each connection, as the benchmark's
 * yardstick. It accepts, vforks, and in the child puts the socket on 0, 1 and 2, sets
 * rlimits, drops to the given uid and gid, installs the seccomp filter and executes the
 * service. Nothing else: no logging, no limits on connections, no configuration.
 *
 *   bare PORT FILTER UID GID SERVER
 *
 * FILTER is a raw seccomp-BPF program (8-byte sock_filter records, as written by
 * `kinetd policy compile --format raw`), so the bare loop installs the very filter
 * kinetd does; "-" installs none. Listens on 127.0.0.1 only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static struct sock_fprog load_filter(const char *path)
{
    struct sock_fprog prog = { 0, NULL };
    if (strcmp(path, "-") == 0)
        return prog;
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    static struct sock_filter insns[BPF_MAXINSNS];
    size_t n = fread(insns, sizeof insns[0], BPF_MAXINSNS, f);
    fclose(f);
    if (n == 0) {
        fprintf(stderr, "%s: empty filter\n", path);
        exit(1);
    }
    prog.len = (unsigned short)n;
    prog.filter = insns;
    return prog;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: bare PORT FILTER UID GID SERVER\n");
        return 2;
    }
    int port = atoi(argv[1]);
    struct sock_fprog filter = load_filter(argv[2]);
    uid_t uid = (uid_t)atol(argv[3]);
    gid_t gid = (gid_t)atol(argv[4]);

    /* Everything the child needs is ready before the first fork. */
    char *const child_argv[] = { argv[5], NULL };
    char *const child_envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", NULL };
    const struct rlimit cpu = { 20, 20 }, nofile = { 1024, 1024 };

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 4096) < 0) {
        perror("bind/listen");
        return 1;
    }

    for (;;) {
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;

        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR && errno != ECONNABORTED)
                perror("accept");
            continue;
        }

        /* The child shares our memory until it executes, so it only makes raw
         * syscalls: glibc's setuid and friends would coordinate with other threads. */
        pid_t pid = vfork();
        if (pid == 0) {
            if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
                _exit(127);
            if (setrlimit(RLIMIT_CPU, &cpu) || setrlimit(RLIMIT_NOFILE, &nofile))
                _exit(127);
            if (syscall(SYS_setgroups, 0, NULL) || syscall(SYS_setgid, gid) ||
                syscall(SYS_setuid, uid))
                _exit(127);
            if (filter.len && (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
                               syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter)))
                _exit(127);
            execve(child_argv[0], child_argv, child_envp);
            _exit(127);
        }
        if (pid < 0)
            perror("vfork");
        close(fd);
    }
}
