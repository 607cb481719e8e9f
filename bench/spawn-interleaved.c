/*
 * spawn-interleaved: time `LD_PRELOAD=<lib> <program>` for several libs,
 * round-robin (one run of each per round), so drift and noise from other
 * load hit every variant alike. Prints the median and mean per lib, and the
 * ratio of each median to the first lib's.
 *
 *   cc -O2 -o spawn-interleaved bench/spawn-interleaved.c
 *   ./spawn-interleaved ROUNDS PROGRAM LIB0 [LIB1 ...]   (LIB "-" = no preload)
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s ROUNDS PROGRAM LIB0 [LIB1 ...]\n", argv[0]);
        return 2;
    }
    int rounds = atoi(argv[1]), nlib = argc - 3;
    char *prog = argv[2];
    double *t = calloc((size_t)rounds * nlib, sizeof *t);
    char **envs[16];
    for (int l = 0; l < nlib && l < 16; l++) {
        int n = 0;
        while (environ[n]) n++;
        char **e = calloc(n + 2, sizeof *e);
        int k = 0;
        for (int i = 0; i < n; i++)
            if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0) e[k++] = environ[i];
        if (strcmp(argv[3 + l], "-") != 0) {
            char *p = malloc(strlen(argv[3 + l]) + 12);
            sprintf(p, "LD_PRELOAD=%s", argv[3 + l]);
            e[k++] = p;
        }
        envs[l] = e;
    }
    char *args[] = {prog, NULL};
    for (int r = -rounds / 10; r < rounds; r++) { /* first 10%: warm-up */
        for (int l = 0; l < nlib; l++) {
            struct timespec a, b;
            pid_t pid;
            int st;
            clock_gettime(CLOCK_MONOTONIC, &a);
            if (posix_spawn(&pid, prog, NULL, NULL, args, envs[l]) != 0) return 1;
            waitpid(pid, &st, 0);
            clock_gettime(CLOCK_MONOTONIC, &b);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "%s with %s failed\n", prog, argv[3 + l]);
                return 1;
            }
            if (r >= 0)
                t[(size_t)l * rounds + r] = (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3;
        }
    }
    double base = 0;
    for (int l = 0; l < nlib; l++) {
        double *x = t + (size_t)l * rounds, sum = 0;
        for (int r = 0; r < rounds; r++) sum += x[r];
        qsort(x, rounds, sizeof *x, cmp);
        double med = x[rounds / 2];
        if (l == 0) base = med;
        printf("%-60s median %8.1f us  mean %8.1f us  p10 %8.1f  p90 %8.1f  ratio %.3f\n", argv[3 + l], med,
               sum / rounds, x[rounds / 10], x[rounds * 9 / 10], med / base);
    }
    return 0;
}
