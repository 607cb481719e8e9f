/* The rootfs C API, timed in fresh container children (BENCHMARKS.md §2).
 *
 *   cc -O2 -Iinclude bench/rootfs-capi.c -o /tmp/rootfs-capi \
 *      -Ltarget/release -lnsboot -Wl,-rpath,DIR   (DIR holding libnsboot.so.0
 *      and libnsboot_rootfs.so.0)
 *   /tmp/rootfs-capi BUNDLE RUNS
 *
 * Each sample forks a child that unshares mount/UTS/IPC/PID namespaces
 * and forks into the PID namespace (not timed); the child times one call
 * and reports it through a pipe. Alternating:
 *   oneshot  nsboot_rootfs_prepare(config): parse + prepare in the child
 *            (the plugin is already mapped: the parent loaded it for the
 *            plan, and the children inherit it);
 *   plan     nsboot_rootfs_plan_prepare(plan), the plan built once in the
 *            parent before the forks (JSON parsed there).
 * Medians over RUNS samples of each, after 2 discarded rounds. The first
 * line also gives the parent's nsboot_rootfs_plan_new time, which includes
 * loading the plugin (what a child pays on top of "oneshot" when nothing
 * loaded the plugin before the fork).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nsboot.h"

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static const char *bundle;
static char cfg[1 << 20];
static size_t cfg_len;
static struct nsboot_rootfs_plan *plan;

static double sample(int oneshot) {
    int p[2];
    if (pipe(p) < 0)
        exit(1);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID) < 0)
            _exit(1);
        pid_t g = fork();
        if (g != 0) {
            waitpid(g, NULL, 0);
            _exit(0);
        }
        struct nsboot_error *err = NULL;
        double a = now_us();
        enum nsboot_status st = oneshot ? nsboot_rootfs_prepare((const uint8_t *)cfg, cfg_len, bundle, 0, &err)
                                        : nsboot_rootfs_plan_prepare(plan, &err);
        double d = now_us() - a;
        if (st != NSBOOT_STATUS_OK) {
            fprintf(stderr, "prepare: %s\n", nsboot_error_message(err));
            _exit(1);
        }
        if (write(p[1], &d, sizeof d) != sizeof d)
            _exit(1);
        _exit(0);
    }
    close(p[1]);
    double d = -1;
    if (read(p[0], &d, sizeof d) != sizeof d) {
        fprintf(stderr, "sample failed\n");
        exit(1);
    }
    close(p[0]);
    waitpid(c, NULL, 0);
    return d;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: rootfs-capi BUNDLE RUNS\n");
        return 2;
    }
    bundle = argv[1];
    int runs = atoi(argv[2]);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", bundle);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    cfg_len = fread(cfg, 1, sizeof cfg, f);
    fclose(f);
    struct nsboot_error *err = NULL;
    double a = now_us();
    if (nsboot_rootfs_plan_new((const uint8_t *)cfg, cfg_len, bundle, 0, &plan, &err) != NSBOOT_STATUS_OK) {
        fprintf(stderr, "plan: %s\n", nsboot_error_message(err));
        return 1;
    }
    double plan_us = now_us() - a;
    double *one = calloc(runs, sizeof *one), *pl = calloc(runs, sizeof *pl);
    for (int i = 0; i < runs + 2; i++) {
        double x = sample(1), y = sample(0);
        if (i >= 2) {
            one[i - 2] = x;
            pl[i - 2] = y;
        }
    }
    qsort(one, runs, sizeof *one, cmp);
    qsort(pl, runs, sizeof *pl, cmp);
    printf("C API, runc default spec, %d runs: nsboot_rootfs_prepare %.1f us, nsboot_rootfs_plan_prepare %.1f us "
           "(plan built once in the parent: %.1f us incl. plugin load)\n",
           runs, one[runs / 2], pl[runs / 2], plan_us);
    nsboot_rootfs_plan_free(plan);
    return 0;
}
