/* A challenge that describes the process it runs in, one key=value line per fact, so
 * that tests can check what the daemon set up between fork and exec. */
#define _GNU_SOURCE
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void print_mask(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
            char *value = line + strlen(key) + 1;
            while (*value == '\t' || *value == ' ') value++;
            printf("%s=%s", key, value);
        }
    }
    if (f) fclose(f);
}

int main(int argc, char **argv) {
    /* Descriptors first, before this program opens anything. */
    DIR *dir = opendir("/proc/self/fd");
    int own = dirfd(dir);
    printf("fds=");
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.' || atoi(entry->d_name) == own) continue;
        printf("%s ", entry->d_name);
    }
    printf("\n");
    closedir(dir);

    for (int i = 0; i < argc; i++) printf("argv%d=%s\n", i, argv[i]);
    printf("pid=%d sid=%d pgid=%d\n", getpid(), getsid(0), getpgid(0));
    printf("uid=%d gid=%d\n", getuid(), getgid());
    gid_t groups[64];
    int n = getgroups(64, groups);
    printf("groups=");
    for (int i = 0; i < n; i++) printf("%d ", groups[i]);
    printf("\n");
    char cwd[4096];
    printf("cwd=%s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
    mode_t mask = umask(0);
    printf("umask=%04o\n", mask);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("nofile=%llu/%llu\n", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
    getrlimit(RLIMIT_CPU, &rl);
    printf("cpu=%llu/%llu\n", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
    printf("nice=%d\n", getpriority(PRIO_PROCESS, 0));
    printf("no_new_privs=%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    int on = -1, keep = -1;
    socklen_t len = sizeof on;
    getsockopt(0, IPPROTO_TCP, TCP_NODELAY, &on, &len);
    len = sizeof keep;
    getsockopt(0, SOL_SOCKET, SO_KEEPALIVE, &keep, &len);
    printf("nodelay=%d keepalive=%d\n", on != 0, keep != 0);
    print_mask("SigIgn");
    print_mask("SigBlk");
    print_mask("Seccomp");
    fflush(stdout);
    return 0;
}
