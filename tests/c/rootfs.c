/* The rootfs C API from a C program (tests/rootfs.rs runs it).
 *
 *   rootfs oneshot BUNDLE SCRIPT   nsboot_rootfs_prepare in a fresh child
 *   rootfs split N BUNDLE SCRIPT   one plan (nsboot_rootfs_plan_new) built
 *                                  here, executed in N forked children
 *   rootfs refused BUNDLE          a config the plan refuses
 *   rootfs null                    NULL arguments
 *
 * Each container child unshares mount/UTS/IPC/PID namespaces, forks into
 * the PID namespace, prepares the rootfs and execs /bin/sh -c SCRIPT.
 * Errors print "status=S errno=E msg=M" and exit 125.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nsboot.h"

static char *read_config(const char *bundle, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", bundle);
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(2);
    }
    static char buf[1 << 20];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

static int fail(enum nsboot_status st, struct nsboot_error *err) {
    printf("status=%d errno=%d msg=%s\n", (int)st, err ? nsboot_error_errno(err) : 0,
           err ? nsboot_error_message(err) : "(none)");
    fflush(stdout);
    nsboot_error_free(err);
    return 125;
}

static int wait_exit(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return 126;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Fork a container child: new namespaces, then `prepare` in PID 1 of the
 * new PID namespace and exec the script. Returns the child's pid. */
static pid_t container(int (*prepare)(const void *), const void *arg, const char *script) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID) < 0) {
        perror("unshare");
        _exit(2);
    }
    pid_t init = fork();
    if (init < 0)
        _exit(2);
    if (init > 0)
        _exit(wait_exit(init));
    int rc = prepare(arg);
    if (rc != 0)
        _exit(rc);
    execl("/bin/sh", "sh", "-c", script, (char *)NULL);
    perror("exec /bin/sh");
    _exit(127);
}

struct oneshot {
    const char *cfg;
    size_t len;
    const char *bundle;
};

static int prepare_oneshot(const void *arg) {
    const struct oneshot *o = arg;
    struct nsboot_error *err = NULL;
    enum nsboot_status st = nsboot_rootfs_prepare((const uint8_t *)o->cfg, o->len, o->bundle, 0, &err);
    return st == NSBOOT_STATUS_OK ? 0 : fail(st, err);
}

/* nsboot_rootfs_plan_new on BUNDLE/config.json. */
static enum nsboot_status make_plan(const char *bundle, struct nsboot_rootfs_plan **plan, struct nsboot_error **err) {
    size_t len;
    const char *cfg = read_config(bundle, &len);
    return nsboot_rootfs_plan_new((const uint8_t *)cfg, len, bundle, 0, plan, err);
}

static int prepare_plan(const void *arg) {
    struct nsboot_error *err = NULL;
    enum nsboot_status st = nsboot_rootfs_plan_prepare(arg, &err);
    return st == NSBOOT_STATUS_OK ? 0 : fail(st, err);
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "oneshot") == 0) {
        struct oneshot o = {.bundle = argv[2]};
        o.cfg = read_config(argv[2], &o.len);
        return wait_exit(container(prepare_oneshot, &o, argv[3]));
    }
    if (argc >= 5 && strcmp(argv[1], "split") == 0) {
        int n = atoi(argv[2]);
        struct nsboot_rootfs_plan *plan = NULL;
        struct nsboot_error *err = NULL;
        enum nsboot_status st = make_plan(argv[3], &plan, &err);
        if (st != NSBOOT_STATUS_OK)
            return fail(st, err);
        int worst = 0;
        for (int i = 0; i < n; i++) {
            int rc = wait_exit(container(prepare_plan, plan, argv[4]));
            printf("child %d exit %d\n", i, rc);
            if (rc > worst)
                worst = rc;
        }
        nsboot_rootfs_plan_free(plan);
        return worst;
    }
    if (argc >= 3 && strcmp(argv[1], "refused") == 0) {
        struct nsboot_rootfs_plan *plan = NULL;
        struct nsboot_error *err = NULL;
        enum nsboot_status st = make_plan(argv[2], &plan, &err);
        if (plan != NULL)
            printf("plan set on failure\n");
        return st == NSBOOT_STATUS_OK ? 0 : fail(st, err);
    }
    if (argc >= 2 && strcmp(argv[1], "null") == 0) {
        struct nsboot_error *err = NULL;
        struct nsboot_rootfs_plan *plan = NULL;
        enum nsboot_status a = nsboot_rootfs_plan_new(NULL, 0, NULL, 0, &plan, &err);
        printf("plan_new(NULL config) status=%d msg=%s\n", (int)a, err ? nsboot_error_message(err) : "");
        nsboot_error_free(err);
        err = NULL;
        enum nsboot_status b = nsboot_rootfs_plan_new((const uint8_t *)"{}", 2, NULL, 0, NULL, &err);
        printf("plan_new(NULL out) status=%d msg=%s\n", (int)b, err ? nsboot_error_message(err) : "");
        nsboot_error_free(err);
        err = NULL;
        enum nsboot_status c = nsboot_rootfs_plan_prepare(NULL, &err);
        printf("plan_prepare(NULL) status=%d msg=%s\n", (int)c, err ? nsboot_error_message(err) : "");
        nsboot_error_free(err);
        enum nsboot_status d = nsboot_rootfs_plan_new((const uint8_t *)"{}", 2, NULL, 0x80000000u, &plan, NULL);
        printf("plan_new(bad flags) status=%d\n", (int)d);
        nsboot_rootfs_plan_free(NULL);
        printf("free(NULL) ok\n");
        return 0;
    }
    fprintf(stderr, "usage: rootfs oneshot BUNDLE SCRIPT | split N BUNDLE SCRIPT | refused BUNDLE | null\n");
    return 2;
}
