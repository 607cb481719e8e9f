/*
 * pidfd: a C caller of nsboot_spawn_pidfds (issue 19, pidfds end to end).
 *
 *   pidfd kill PROBE    start PROBE (running `sleep 1000` in new UTS and
 *                       IPC namespaces) with pidfds, SIGKILL stage-2 by
 *                       pidfd, wait for it by pidfd; prints
 *                       "stage1 0 stage2 137".
 *   pidfd reuse PROBE   in a private PID namespace (this program forks
 *                       its pid 1): start PROBE (`true`) with pidfds, wait
 *                       for stage-2 by pidfd, then recycle its pid
 *                       (ns_last_pid = pid - 1, fork) and check that the
 *                       pidfd still says "exited" while kill(pid, 0)
 *                       reaches the new process; prints
 *                       "reused PID: pidfd ESRCH, pollin 1, waitid ECHILD, kill(pid) 0".
 * Exit 0 on success; 1 with a message on stderr otherwise; 77 when the
 * environment cannot run the test (message on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nsboot.h"

static void die(const char *what, nsboot_error *err)
{
	fprintf(stderr, "pidfd: %s: %s\n", what, err ? nsboot_error_message(err) : strerror(errno));
	exit(1);
}

static nsboot_msg *message(void)
{
	nsboot_msg *m = nsboot_msg_new();
	nsboot_error *err = NULL;
	if (!m)
		die("nsboot_msg_new", NULL);
	if (nsboot_msg_set_clone_flags(m, CLONE_NEWUTS | CLONE_NEWIPC, &err) != NSBOOT_STATUS_OK)
		die("set clone flags", err);
	return m;
}

static void start(const char *probe, char *const *argv, nsboot_spawned *out, nsboot_pidfds *fds)
{
	nsboot_msg *m = message();
	nsboot_error *err = NULL;
	if (nsboot_spawn_pidfds(NULL, probe, (const char *const *)argv, NULL, m, NSBOOT_DIALECT_RUNC_1_2, -1, out, fds,
				&err) != NSBOOT_STATUS_OK)
		die("nsboot_spawn_pidfds", err);
	nsboot_msg_free(m);
	if (fds->stage1_pidfd < 0 || fds->stage2_pidfd < 0)
		die("no pidfds", NULL);
	/* Close-on-exec, as documented. */
	if (!(fcntl(fds->stage2_pidfd, F_GETFD) & FD_CLOEXEC))
		die("stage-2 pidfd is not close-on-exec", NULL);
}

static int wait_fd(int fd)
{
	int st = -1;
	nsboot_error *err = NULL;
	if (nsboot_pidfd_wait(fd, false, &st, &err) != NSBOOT_STATUS_OK)
		die("nsboot_pidfd_wait", err);
	return st;
}

static int do_kill(const char *probe)
{
	char *argv[] = { (char *)"probe", (char *)"sleep", (char *)"1000", NULL };
	nsboot_spawned sp;
	nsboot_pidfds fds;
	nsboot_error *err = NULL;
	start(probe, argv, &sp, &fds);
	int s1 = wait_fd(fds.stage1_pidfd);
	/* Still running: a non-blocking wait says so (-1). */
	int st = 0;
	if (nsboot_pidfd_wait(fds.stage2_pidfd, true, &st, &err) != NSBOOT_STATUS_OK)
		die("nsboot_pidfd_wait(nohang)", err);
	if (st != -1) {
		fprintf(stderr, "pidfd: stage-2 ended early: %d\n", st);
		return 1;
	}
	if (nsboot_pidfd_kill(fds.stage2_pidfd, SIGKILL, &err) != NSBOOT_STATUS_OK)
		die("nsboot_pidfd_kill", err);
	int s2 = wait_fd(fds.stage2_pidfd);
	/* Exited and reaped: the pidfd refuses signals. */
	if (nsboot_pidfd_kill(fds.stage2_pidfd, SIGKILL, &err) == NSBOOT_STATUS_OK) {
		fprintf(stderr, "pidfd: kill after exit succeeded\n");
		return 1;
	}
	int e = nsboot_error_errno(err);
	nsboot_error_free(err);
	printf("stage1 %d stage2 %d after-exit %s\n", s1, s2, e == ESRCH ? "ESRCH" : strerror(e));
	return 0;
}

static int caller_in_pidns(const char *probe)
{
	char *argv[] = { (char *)"probe", (char *)"true", NULL };
	nsboot_spawned sp;
	nsboot_pidfds fds;
	nsboot_error *err = NULL;
	start(probe, argv, &sp, &fds);
	int pid = sp.stage2_pid;
	if (wait_fd(fds.stage1_pidfd) != 0 || wait_fd(fds.stage2_pidfd) != 0)
		die("a stage failed", NULL);
	/* The pid is free now: hand it to a new process. */
	int f = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
	if (f < 0)
		die("open ns_last_pid", NULL);
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%d", pid - 1);
	if (write(f, buf, n) != n)
		die("write ns_last_pid", NULL);
	close(f);
	pid_t other = fork();
	if (other < 0)
		die("fork", NULL);
	if (other == 0) {
		pause();
		_exit(0);
	}
	if (other != pid) {
		fprintf(stderr, "pidfd: the pid was not recycled (%d, wanted %d)\n", other, pid);
		kill(other, SIGKILL);
		return 1;
	}
	int rc = 0;
	/* The pid names the new process ... */
	int by_pid = kill(pid, 0);
	/* ... the pidfd still names the exited stage-2. */
	nsboot_status st = nsboot_pidfd_kill(fds.stage2_pidfd, 0, &err);
	int e = st == NSBOOT_STATUS_OK ? 0 : nsboot_error_errno(err);
	nsboot_error_free(err);
	err = NULL;
	struct pollfd p = { .fd = fds.stage2_pidfd, .events = POLLIN };
	int readable = poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
	int ws = 0;
	st = nsboot_pidfd_wait(fds.stage2_pidfd, true, &ws, &err);
	int we = st == NSBOOT_STATUS_OK ? 0 : nsboot_error_errno(err);
	nsboot_error_free(err);
	if (by_pid != 0 || e != ESRCH || !readable || we != ECHILD)
		rc = 1;
	printf("reused %d: pidfd %s, pollin %d, waitid %s, kill(pid) %d\n", pid, e == ESRCH ? "ESRCH" : strerror(e),
	       readable, we == ECHILD ? "ECHILD" : strerror(we), by_pid);
	kill(other, SIGKILL);
	waitpid(other, NULL, 0);
	return rc;
}

static int do_reuse(const char *probe)
{
	if (unshare(CLONE_NEWPID) < 0) {
		fprintf(stderr, "pidfd: unshare(CLONE_NEWPID): %s\n", strerror(errno));
		return 77;
	}
	pid_t init = fork();
	if (init < 0)
		die("fork", NULL);
	if (init == 0) {
		fflush(stdout);
		_exit(caller_in_pidns(probe));
	}
	int st;
	if (waitpid(init, &st, 0) < 0)
		die("waitpid", NULL);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: pidfd kill|reuse PROBE\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	if (strcmp(argv[1], "kill") == 0)
		return do_kill(argv[2]);
	if (strcmp(argv[1], "reuse") == 0)
		return do_reuse(argv[2]);
	return 2;
}
