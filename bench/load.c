/*
 * load: the benchmark's client. Connects to a service on 127.0.0.1, reads until the
 * server closes, and measures each connection from connect() to end of file.
 *
 *   load run PORT CONCURRENCY SECONDS MAX_CONNECTIONS
 *       CONCURRENCY threads, each making one connection after another, until SECONDS
 *       have passed or MAX_CONNECTIONS were made in all.
 *   load burst PORT COUNT
 *       COUNT connections opened at once, then served; gives up after 10 s.
 *
 * Prints one line of key=value fields, times in microseconds. Only ever connects to
 * 127.0.0.1, and every run is bounded in time and count.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in target;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return sorted[i];
}

/* ---- run: steady load from CONCURRENCY threads ---- */

struct worker {
    pthread_t thread;
    double deadline;
    double *latencies;
    size_t count, cap;
    size_t errors;
};

static atomic_long budget;

/* One connection: connect, read to EOF, close. Returns the bytes read, or -1. */
static long one_connection(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&target, sizeof target) < 0) {
        close(fd);
        return -1;
    }
    char buf[512];
    long total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        total += n;
    close(fd);
    return n < 0 ? -1 : total;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    while (now_us() < w->deadline && atomic_fetch_sub(&budget, 1) > 0) {
        double start = now_us();
        long got = one_connection();
        double took = now_us() - start;
        if (got <= 0) {
            w->errors++;
            continue;
        }
        if (w->count == w->cap) {
            w->cap = w->cap ? 2 * w->cap : 4096;
            w->latencies = realloc(w->latencies, w->cap * sizeof *w->latencies);
            if (!w->latencies) {
                perror("realloc");
                exit(1);
            }
        }
        w->latencies[w->count++] = took;
    }
    return NULL;
}

static int run(int concurrency, double seconds, long max_connections)
{
    struct worker *workers = calloc((size_t)concurrency, sizeof *workers);
    atomic_store(&budget, max_connections);
    double start = now_us();
    for (int i = 0; i < concurrency; i++) {
        workers[i].deadline = start + seconds * 1e6;
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    size_t total = 0, errors = 0;
    for (int i = 0; i < concurrency; i++) {
        pthread_join(workers[i].thread, NULL);
        total += workers[i].count;
        errors += workers[i].errors;
    }
    double elapsed = (now_us() - start) / 1e6;

    double *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < concurrency; i++) {
        memcpy(all + k, workers[i].latencies, workers[i].count * sizeof *all);
        k += workers[i].count;
        free(workers[i].latencies);
    }
    qsort(all, total, sizeof *all, cmp_double);
    printf("conns=%zu errors=%zu secs=%.3f rate=%.1f p50_us=%.0f p99_us=%.0f max_us=%.0f\n",
           total, errors, elapsed, (double)total / elapsed, percentile(all, total, 0.50),
           percentile(all, total, 0.99), total ? all[total - 1] : 0.0);
    free(all);
    free(workers);
    return 0;
}

/* ---- burst: COUNT connections at once ---- */

static int burst(int count)
{
    int *fds = calloc((size_t)count, sizeof *fds);
    double *connected = calloc((size_t)count, sizeof *connected);
    double *done = calloc((size_t)count, sizeof *done);
    enum { CONNECTING, READING, DONE } *state = calloc((size_t)count, sizeof *state);
    struct pollfd *pfds = calloc((size_t)count, sizeof *pfds);
    size_t refused = 0, reset = 0;

    /* Start every connection before waiting for any, so the server sees them all at
     * once; non-blocking connects let one thread do that. */
    double start = now_us();
    for (int i = 0; i < count; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 ||
            (connect(fds[i], (struct sockaddr *)&target, sizeof target) < 0 &&
             errno != EINPROGRESS)) {
            perror("connect");
            return 1;
        }
    }

    int open = count;
    double deadline = start + 10e6;
    while (open > 0 && now_us() < deadline) {
        for (int i = 0; i < count; i++) {
            pfds[i].fd = state[i] == DONE ? -1 : fds[i];
            pfds[i].events = state[i] == CONNECTING ? POLLOUT : POLLIN;
        }
        if (poll(pfds, (nfds_t)count, 1000) < 0) {
            perror("poll");
            return 1;
        }
        double t = now_us();
        for (int i = 0; i < count; i++) {
            if (pfds[i].fd < 0 || !pfds[i].revents)
                continue;
            if (state[i] == CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &len);
                connected[i] = t - start;
                state[i] = READING;
                if (err) {
                    refused++;
                    done[i] = t - start;
                    state[i] = DONE;
                    open--;
                }
                continue;
            }
            char buf[512];
            ssize_t n = read(fds[i], buf, sizeof buf);
            if (n > 0 || (n < 0 && errno == EAGAIN))
                continue;
            if (n < 0)
                reset++;
            done[i] = t - start;
            state[i] = DONE;
            open--;
        }
    }

    qsort(connected, (size_t)count, sizeof *connected, cmp_double);
    qsort(done, (size_t)count, sizeof *done, cmp_double);
    printf("conns=%d refused=%zu reset=%zu unfinished=%d max_connect_us=%.0f "
           "p50_done_us=%.0f max_done_us=%.0f\n",
           count, refused, reset, open, connected[count - 1], percentile(done, (size_t)count, 0.5),
           done[count - 1]);
    for (int i = 0; i < count; i++)
        close(fds[i]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: load run PORT CONCURRENCY SECONDS MAX_CONNECTIONS\n"
                        "       load burst PORT COUNT\n");
        return 2;
    }
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)atoi(argv[2]));
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (strcmp(argv[1], "run") == 0 && argc == 6)
        return run(atoi(argv[3]), atof(argv[4]), atol(argv[5]));
    if (strcmp(argv[1], "burst") == 0 && argc == 4)
        return burst(atoi(argv[3]));
    fprintf(stderr, "load: bad arguments\n");
    return 2;
}
