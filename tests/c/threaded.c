/*
 * threaded: a multi-threaded caller whose spawning threads are short-lived,
 * as Go's locked, then retired, OS threads are (issue 14 item 1).
 *
 *   threaded PROBE [COUNT]
 *
 * COUNT times (default 1000): a new pthread starts PROBE (a program that
 * links libnsboot) as a runc 1.1 bootstrap (init socket at fd 3) and exits
 * right after: at once after the fork (i % 3 == 0), after reading the setup
 * byte, when stage-0 is running (i % 3 == 1), or after sending the message,
 * when stage-0 forks stage-1 and stage-2 (i % 3 == 2). The main thread
 * finishes the protocol (message, pid JSON) and reaps stage-0, -1 and -2:
 * each must exit 0. A thread of the caller exiting must kill nothing.
 * Prints "bootstraps N killed K failed F"; exits 0 iff K == F == 0, 77 when
 * not root (the message creates a UTS namespace).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nsboot.h"

static const char *probe;
static uint8_t msg[256];
static size_t msg_len;

struct job {
	int mode;
	pid_t stage0;
	int sock;
	int err;
};

static int read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = write(fd, (const char *)buf + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

static void *spawner(void *arg)
{
	struct job *j = arg;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		j->err = errno;
		return NULL;
	}
	pid_t pid = fork();
	if (pid < 0) {
		j->err = errno;
		return NULL;
	}
	if (pid == 0) {
		/* Only async-signal-safe calls until execve. */
		int null = open("/dev/null", O_WRONLY);
		if (dup2(sv[1], 3) < 0 || null < 0 || dup2(null, 1) < 0)
			_exit(126);
		char *argv[] = { (char *)probe, NULL };
		char *envp[] = { "_LIBCONTAINER_INITPIPE=3", "NSBOOT_DIALECT=1.1", NULL };
		execve(probe, argv, envp);
		_exit(127);
	}
	close(sv[1]);
	j->stage0 = pid;
	j->sock = sv[0];
	if (j->mode >= 1) {
		char b;
		if (read_full(j->sock, &b, 1) < 0 || b != 0)
			j->err = EPROTO;
	}
	if (j->mode >= 2 && j->err == 0 && write_full(j->sock, msg, msg_len) < 0)
		j->err = errno;
	return NULL; /* the thread exits: the bootstrap must not care */
}

/* 0: exited 0; 1: killed by a signal; 2: other failure. */
static int reap(pid_t pid, const char *what, int i)
{
	int st;
	while (waitpid(pid, &st, __WALL) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "bootstrap %d: waitpid %s (%d): %s\n", i, what, pid, strerror(errno));
			return 2;
		}
	}
	if (WIFSIGNALED(st)) {
		fprintf(stderr, "bootstrap %d: %s (%d) killed by signal %d\n", i, what, pid, WTERMSIG(st));
		return 1;
	}
	if (WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bootstrap %d: %s (%d) exited %d\n", i, what, pid, WEXITSTATUS(st));
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: threaded PROBE [COUNT]\n");
		return 2;
	}
	if (geteuid() != 0) {
		printf("SKIP: needs root (creates a UTS namespace)\n");
		return 77;
	}
	probe = argv[1];
	signal(SIGPIPE, SIG_IGN); /* a dead stage-0 is EPIPE, counted below */
	long count = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
	nsboot_msg *m = nsboot_msg_new();
	if (m == NULL || nsboot_msg_set_clone_flags(m, CLONE_NEWUTS, NULL) != NSBOOT_STATUS_OK ||
	    nsboot_msg_encode(m, NSBOOT_DIALECT_RUNC_1_1, msg, sizeof(msg), &msg_len, NULL) != NSBOOT_STATUS_OK) {
		fprintf(stderr, "threaded: cannot build the message\n");
		return 2;
	}
	nsboot_msg_free(m);
	long killed = 0, failed = 0;
	for (long i = 0; i < count; i++) {
		struct job j = { .mode = (int)(i % 3), .stage0 = -1, .sock = -1, .err = 0 };
		pthread_t t;
		if (pthread_create(&t, NULL, spawner, &j) != 0 || pthread_join(t, NULL) != 0) {
			fprintf(stderr, "threaded: pthread\n");
			return 2;
		}
		if (j.stage0 < 0) {
			fprintf(stderr, "bootstrap %ld: spawn: %s\n", i, strerror(j.err));
			failed++;
			continue;
		}
		int bad = j.err != 0;
		if (!bad && j.mode == 0) {
			char b;
			bad = read_full(j.sock, &b, 1) < 0 || b != 0;
		}
		if (!bad && j.mode <= 1)
			bad = write_full(j.sock, msg, msg_len) < 0;
		char line[128];
		size_t n = 0;
		while (!bad && n + 1 < sizeof(line)) {
			if (read_full(j.sock, &line[n], 1) < 0) {
				bad = 1;
				break;
			}
			if (line[n++] == '\n')
				break;
		}
		line[n] = 0;
		int s1 = -1, s2 = -1;
		if (!bad && sscanf(line, "{\"stage1_pid\":%d,\"stage2_pid\":%d}", &s1, &s2) != 2)
			bad = 1;
		int r0 = reap(j.stage0, "stage-0", (int)i);
		int r1 = s1 > 0 ? reap(s1, "stage-1", (int)i) : 0;
		int r2 = s2 > 0 ? reap(s2, "stage-2", (int)i) : 0;
		close(j.sock);
		if (r0 == 1 || r1 == 1 || r2 == 1)
			killed++;
		else if (bad || r0 || r1 || r2) {
			if (bad)
				fprintf(stderr, "bootstrap %ld (mode %d): protocol failed (pid line \"%s\")\n", i, j.mode, line);
			failed++;
		}
	}
	printf("bootstraps %ld killed %ld failed %ld\n", count, killed, failed);
	return killed == 0 && failed == 0 ? 0 : 1;
}
