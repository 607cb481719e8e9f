/*
 * hello.c: start this same program inside new namespaces with nsboot.
 *
 *   cc -o hello hello.c $(pkg-config --cflags --libs nsboot)          # dynamic
 *   cc -o hello hello.c $(pkg-config --cflags --libs nsboot-static)   # static
 *   ./hello
 *
 * The parent builds a bootstrap message (new UTS and mount namespaces; a
 * user namespace mapping the caller to root when it is not root already)
 * and spawns /proc/self/exe with the init socket. In the child,
 * libnsboot's constructor runs the bootstrap before main, so main runs
 * inside the namespaces with argv[1] == "inside".
 */
#define _GNU_SOURCE
#include <nsboot.h>

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int inside(void)
{
    char host[65] = {0};
    if (sethostname("nsboot-hello", strlen("nsboot-hello")) != 0 ||
        gethostname(host, sizeof host - 1) != 0) {
        perror("hostname");
        return 1;
    }
    printf("inside: uid=%d hostname=%s\n", (int)getuid(), host);
    return 0;
}

/* Report a failed call: the status, the message with its context, errno. */
static int fail(const char *what, nsboot_status st, nsboot_error *err)
{
    fprintf(stderr, "%s: status %d: %s (errno %d)\n", what, (int)st,
            nsboot_error_message(err), nsboot_error_errno(err));
    nsboot_error_free(err);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "inside") == 0)
        return inside();

    nsboot_error *err = NULL;
    nsboot_status st;
    nsboot_msg *msg = nsboot_msg_new();
    if (msg == NULL)
        return 1;

    uint32_t flags = CLONE_NEWUTS | CLONE_NEWNS;
    if (geteuid() != 0) {
        char map[64];
        flags |= CLONE_NEWUSER;
        snprintf(map, sizeof map, "0 %d 1\n", (int)geteuid());
        if ((st = nsboot_msg_set_uid_map(msg, map, &err)) != NSBOOT_STATUS_OK)
            return fail("uid map", st, err);
        snprintf(map, sizeof map, "0 %d 1\n", (int)getegid());
        if ((st = nsboot_msg_set_gid_map(msg, map, &err)) != NSBOOT_STATUS_OK)
            return fail("gid map", st, err);
        nsboot_msg_set_rootless(msg, true);
    }
    if ((st = nsboot_msg_set_clone_flags(msg, flags, &err)) != NSBOOT_STATUS_OK)
        return fail("clone flags", st, err);

    /* Errors carry context: an unknown namespace type is refused. */
    st = nsboot_msg_add_ns_path(msg, "bogus", "/proc/1/ns/net", &err);
    if (st != NSBOOT_STATUS_INVALID_ARGUMENT) {
        fprintf(stderr, "expected INVALID_ARGUMENT, got %d\n", (int)st);
        return 1;
    }
    printf("refused as expected: %s\n", nsboot_error_message(err));
    nsboot_error_free(err);
    err = NULL;

    fflush(stdout);
    char *const child_argv[] = {argv[0], "inside", NULL};
    nsboot_spawned sp;
    st = nsboot_spawn(NULL, "/proc/self/exe", (const char *const *)child_argv, NULL, msg,
                      NSBOOT_DIALECT_RUNC_1_1, -1, &sp, &err);
    nsboot_msg_free(msg);
    if (st != NSBOOT_STATUS_OK)
        return fail("spawn", st, err);

    /* stage-1 and stage-2 are our children (CLONE_PARENT): reap both. */
    int status = 0;
    waitpid(sp.stage1_pid, NULL, 0);
    waitpid(sp.stage2_pid, &status, 0);
    close(sp.init_fd);
    printf("outside: child %d exited with %d\n", (int)sp.stage2_pid,
           WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
