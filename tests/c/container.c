/* A whole OCI container through the C API (tests/c_container.rs runs it).
 *
 *   container run BUNDLE ID STATE        nsboot_container_run; "status=N"
 *   container lifecycle BUNDLE ID STATE  create ("created pid=P"), the
 *                                        process is this program's child and
 *                                        has not exec'd; start; waitpid;
 *                                        delete; "exited=N"
 *   container refused BUNDLE ID STATE    a config the library refuses
 *   container features                   the features document
 *
 * Errors print "status=S errno=E msg=M" and exit 125.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nsboot.h"

static int fail(const char *what, enum nsboot_status st, struct nsboot_error *err) {
    printf("%s: status=%d errno=%d msg=%s\n", what, (int)st, err ? nsboot_error_errno(err) : 0,
           err ? nsboot_error_message(err) : "(none)");
    fflush(stdout);
    nsboot_error_free(err);
    return 125;
}

int main(int argc, char **argv) {
    struct nsboot_error *err = NULL;
    enum nsboot_status st;
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 2 && strcmp(argv[1], "features") == 0) {
        size_t need = 0;
        st = nsboot_container_features(NULL, 0, &need, &err);
        if (st != NSBOOT_STATUS_BUFFER_TOO_SMALL)
            return fail("features (size)", st, err);
        nsboot_error_free(err);
        err = NULL;
        char *buf = malloc(need);
        if (!buf)
            return 125;
        st = nsboot_container_features(buf, need, NULL, &err);
        if (st != NSBOOT_STATUS_OK)
            return fail("features", st, err);
        printf("%s\n", buf);
        free(buf);
        return 0;
    }
    if (argc != 5) {
        fprintf(stderr, "usage: container run|lifecycle|refused BUNDLE ID STATE | features\n");
        return 2;
    }
    const char *cmd = argv[1], *bundle = argv[2], *id = argv[3], *state = argv[4];
    if (strcmp(cmd, "run") == 0) {
        int status = -1;
        st = nsboot_container_run(bundle, id, state, NULL, 0, &status, &err);
        if (st != NSBOOT_STATUS_OK)
            return fail("run", st, err);
        printf("status=%d\n", status);
        return 0;
    }
    if (strcmp(cmd, "refused") == 0) {
        int pid = -1;
        st = nsboot_container_create(bundle, id, state, NULL, 0, &pid, &err);
        if (st != NSBOOT_STATUS_INVALID_ARGUMENT || pid != -1)
            return fail("refused: unexpected", st, err);
        printf("refused: %s\n", nsboot_error_message(err));
        nsboot_error_free(err);
        return 0;
    }
    if (strcmp(cmd, "lifecycle") == 0) {
        int pid = -1;
        st = nsboot_container_create(bundle, id, state, NULL, 0, &pid, &err);
        if (st != NSBOOT_STATUS_OK)
            return fail("create", st, err);
        printf("created pid=%d\n", pid);
        /* Our child, alive, not yet the program. */
        int w = 0;
        if (waitpid(pid, &w, WNOHANG) != 0) {
            printf("the container process is not a live child\n");
            return 1;
        }
        char exe[4096];
        char link[64];
        snprintf(link, sizeof link, "/proc/%d/exe", pid);
        ssize_t n = readlink(link, exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = 0;
        printf("exe before start=%s\n", exe);
        st = nsboot_container_start(state, &err);
        if (st != NSBOOT_STATUS_OK)
            return fail("start", st, err);
        if (waitpid(pid, &w, 0) != pid)
            return 1;
        printf("exited=%d\n", WIFEXITED(w) ? WEXITSTATUS(w) : 128 + WTERMSIG(w));
        st = nsboot_container_delete(state, 0, &err);
        if (st != NSBOOT_STATUS_OK)
            return fail("delete", st, err);
        st = nsboot_container_start(state, &err);
        if (st == NSBOOT_STATUS_OK)
            return 1;
        printf("start after delete: %s\n", nsboot_error_message(err));
        nsboot_error_free(err);
        return 0;
    }
    return 2;
}
