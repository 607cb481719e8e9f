/*
 * bootbench: bootstrap latency, side by side in one run.
 *
 *   bootbench ITERS FLOOR RUNC NSBOOT
 *   bootbench dialects ITERS NSBOOT | cve ITERS BIN... | one ITERS BIN HEXFLAGS
 *
 * For each flag set ({mnt,uts,ipc,pid}; + net; + user with a 65536-id
 * mapping) and each iteration, runs every target once, in rotating order:
 *   floor   - bench/floor: fork/unshare/map/fork, no protocol
 *   runc    - bench/hello linked with runc 1.1.5's nsexec.c (Debian source)
 *   nsboot  - bench/hello linked with libnsboot
 * A run = spawn (posix_spawn) -> init-pipe protocol (\0, message, pid JSON)
 * -> stage-0 exits -> stage-1 and stage-2 reaped. runc and nsboot get the
 * same message bytes (built with nsboot's C encoder) and are both executed
 * from a sealed memfd made once (so neither re-executes itself for
 * CVE-2019-5736). Prints medians (µs) and ratios, then peak RSS of the
 * stage processes (max over children, getrusage).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nsboot.h"

extern char **environ;

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int seal(const char *path)
{
	int src = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (src < 0 || fstat(src, &st) < 0) {
		perror(path);
		exit(1);
	}
	int m = memfd_create("bench-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	off_t off = 0;
	while (off < st.st_size)
		if (sendfile(m, src, &off, st.st_size - off) <= 0) {
			perror("sendfile");
			exit(1);
		}
	if (fcntl(m, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
		perror("seal");
		exit(1);
	}
	close(src);
	return m;
}

struct target {
	const char *name;
	int floor;
	char exec_path[64];
	const char *plain_path;
	double *samples;
};

static uint8_t msgbuf[4096];
static size_t msglen;
static unsigned cur_flags;
static int cur_dialect = NSBOOT_DIALECT_RUNC_1_1;
static const char *map = "0 100000 65536";

static void run_floor(struct target *t)
{
	char flags[32];
	snprintf(flags, sizeof(flags), "%x", cur_flags);
	char *argv[] = { "floor", flags, (char *)map, NULL };
	pid_t pid;
	if (posix_spawn(&pid, t->exec_path, NULL, NULL, argv, environ) != 0) {
		perror("spawn floor");
		exit(1);
	}
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "floor failed\n");
		exit(1);
	}
}

static void run_proto(struct target *t)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		exit(1);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	char *argv[] = { "hello", NULL };
	char *envp[] = { "_LIBCONTAINER_INITPIPE=3",
			 cur_dialect == NSBOOT_DIALECT_RUNC_1_2 ? "NSBOOT_DIALECT=1.2" : NULL, NULL };
	pid_t pid;
	if (posix_spawn(&pid, t->exec_path, &fa, NULL, argv, envp) != 0) {
		perror("spawn");
		exit(1);
	}
	posix_spawn_file_actions_destroy(&fa);
	close(sv[1]);
	char c = 0;
	if (cur_dialect == NSBOOT_DIALECT_RUNC_1_1 && (read(sv[0], &c, 1) != 1 || c != 0)) {
		fprintf(stderr, "%s: no setup byte\n", t->name);
		exit(1);
	}
	if (write(sv[0], msgbuf, msglen) != (ssize_t)msglen)
		exit(1);
	char line[256];
	size_t n = 0;
	while (n < sizeof(line) - 1) {
		ssize_t r = read(sv[0], line + n, 1);
		if (r != 1)
			break;
		if (line[n++] == '\n')
			break;
	}
	line[n] = 0;
	int s1 = 0, s2 = 0;
	if (sscanf(line, "{\"stage1_pid\":%d,\"stage2_pid\":%d}", &s1, &s2) != 2) {
		fprintf(stderr, "%s: bad pid JSON %s\n", t->name, line);
		exit(1);
	}
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "%s: stage-0 failed\n", t->name);
		exit(1);
	}
	waitpid(s1, NULL, 0);
	waitpid(s2, NULL, 0);
	close(sv[0]);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(double), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void build_msg(void)
{
	nsboot_msg *m = nsboot_msg_new();
	nsboot_msg_set_clone_flags(m, cur_flags, NULL);
	if (cur_flags & CLONE_NEWUSER) {
		char gmap[64];
		nsboot_msg_set_uid_map(m, map, NULL);
		if (geteuid() != 0) {
			snprintf(gmap, sizeof(gmap), "0 %u 1", (unsigned)getegid());
			nsboot_msg_set_gid_map(m, gmap, NULL);
			nsboot_msg_set_rootless(m, true);
		} else {
			nsboot_msg_set_gid_map(m, map, NULL);
		}
	}
	if (nsboot_msg_encode(m, cur_dialect, msgbuf, sizeof(msgbuf), &msglen, NULL) != NSBOOT_STATUS_OK)
		exit(1);
	nsboot_msg_free(m);
}

/* Peak RSS (KiB) over the processes of n bootstraps: a fresh subprocess
 * runs them and reports getrusage(RUSAGE_CHILDREN).ru_maxrss. */
static long rss_of(struct target *t, int n)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < n; i++)
			t->floor ? run_floor(t) : run_proto(t);
		struct rusage ru;
		getrusage(RUSAGE_CHILDREN, &ru);
		long v = ru.ru_maxrss;
		if (write(p[1], &v, sizeof(v)) != sizeof(v))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	long v = -1;
	if (read(p[0], &v, sizeof(v)) != sizeof(v))
		v = -1;
	close(p[0]);
	waitpid(pid, NULL, 0);
	return v;
}

/* CVE-2019-5736 cost: each binary started from its plain (writable) path,
 * so the bootstrap must copy itself into a sealed memfd and re-execute, and
 * from a sealed memfd made once by the caller (no copy, no re-exec). */
static int cve_mode(int iters, int n, char **bins)
{
	/* Unprivileged: no namespaces, and the bootstrap cannot mount, so a
	 * writable binary costs the sealed memfd copy instead of a read-only
	 * bind mount. */
	static char own_map[64];
	if (geteuid() == 0) {
		cur_flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID;
	} else {
		cur_flags = CLONE_NEWUSER | CLONE_NEWUTS;
		snprintf(own_map, sizeof(own_map), "0 %u 1", (unsigned)geteuid());
		map = own_map;
	}
	build_msg();
	printf("| binary | size | from writable path (re-exec) µs | from sealed fd µs | saved |\n|---|---:|---:|---:|---:|\n");
	for (int b = 0; b < n; b++) {
		struct stat st;
		stat(bins[b], &st);
		struct target t[2] = { { "plain", 0, "", bins[b], NULL }, { "sealed", 0, "", bins[b], NULL } };
		snprintf(t[0].exec_path, sizeof(t[0].exec_path), "%s", bins[b]);
		int fd = seal(bins[b]);
		snprintf(t[1].exec_path, sizeof(t[1].exec_path), "/proc/self/fd/%d", fd);
		for (int k = 0; k < 2; k++)
			t[k].samples = calloc(iters, sizeof(double));
		for (int w = 0; w < 3; w++)
			run_proto(&t[0]), run_proto(&t[1]);
		for (int i = 0; i < iters; i++)
			for (int j = 0; j < 2; j++) {
				struct target *x = &t[(i + j) % 2];
				double a = now_us();
				run_proto(x);
				x->samples[i] = now_us() - a;
			}
		double p = median(t[0].samples, iters), q = median(t[1].samples, iters);
		printf("| %s | %.1f MB | %.0f | %.0f | %.0f µs |\n", bins[b], st.st_size / 1e6, p, q, p - q);
		close(fd);
	}
	return 0;
}

/* nsboot in both dialects, side by side (runc 1.1's nsexec speaks only
 * the first, so it is not in this table). */
static int dialect_mode(int iters, const char *bin)
{
	struct target t[2] = { { "1.1", 0, "", bin, NULL }, { "1.2", 0, "", bin, NULL } };
	int fd = seal(bin);
	for (int k = 0; k < 2; k++) {
		snprintf(t[k].exec_path, sizeof(t[k].exec_path), "/proc/self/fd/%d", fd);
		t[k].samples = calloc(iters, sizeof(double));
	}
	unsigned sets[] = { CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID,
			    CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET,
			    CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUSER };
	const char *names[] = { "mnt,uts,ipc,pid", "mnt,uts,ipc,pid,net", "mnt,uts,ipc,pid,net,user" };
	printf("| flag set | nsboot, runc 1.1 dialect µs | nsboot, runc >= 1.2 dialect µs | 1.2/1.1 |\n|---|---:|---:|---:|\n");
	for (int s = 0; s < 3; s++) {
		cur_flags = sets[s];
		for (int i = 0; i < iters; i++)
			for (int j = 0; j < 2; j++) {
				int k = (i + j) % 2;
				cur_dialect = k == 0 ? NSBOOT_DIALECT_RUNC_1_1 : NSBOOT_DIALECT_RUNC_1_2;
				build_msg();
				double a = now_us();
				run_proto(&t[k]);
				t[k].samples[i] = now_us() - a;
			}
		double m0 = median(t[0].samples, iters), m1 = median(t[1].samples, iters);
		printf("| %s | %.0f | %.0f | %.2fx |\n", names[s], m0, m1, m1 / m0);
	}
	cur_dialect = NSBOOT_DIALECT_RUNC_1_1;
	return 0;
}

/* N bootstraps of one binary with one flag set (hex), nothing timed: for
 * strace -f / perf stat, which then see only this binary's processes and
 * bootbench's own small loop. */
static int one_mode(int iters, const char *bin, const char *flags)
{
	struct target t = { "one", 0, "", bin, NULL };
	snprintf(t.exec_path, sizeof(t.exec_path), "/proc/self/fd/%d", seal(bin));
	cur_flags = strtoul(flags, NULL, 16);
	build_msg();
	for (int i = 0; i < iters; i++)
		run_proto(&t);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "one") == 0)
		return one_mode(atoi(argv[2]), argv[3], argv[4]);
	if (argc >= 4 && strcmp(argv[1], "dialects") == 0)
		return dialect_mode(atoi(argv[2]), argv[3]);
	if (argc >= 4 && strcmp(argv[1], "cve") == 0)
		return cve_mode(atoi(argv[2]), argc - 3, argv + 3);
	if (argc < 5) {
		fprintf(stderr, "usage: bootbench ITERS FLOOR RUNC NSBOOT\n");
		return 2;
	}
	int iters = atoi(argv[1]);
	struct target t[3] = {
		{ "floor", 1, "", argv[2], NULL },
		{ "runc", 0, "", argv[3], NULL },
		{ "nsboot", 0, "", argv[4], NULL },
	};
	int nt = 3;
	for (int i = 0; i < nt; i++) {
		if (t[i].floor)
			snprintf(t[i].exec_path, sizeof(t[i].exec_path), "%s", t[i].plain_path);
		else
			snprintf(t[i].exec_path, sizeof(t[i].exec_path), "/proc/self/fd/%d", seal(t[i].plain_path));
		t[i].samples = calloc(iters, sizeof(double));
	}
	struct {
		const char *name;
		unsigned flags;
	} sets[] = {
		{ "mnt,uts,ipc,pid", CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID },
		{ "mnt,uts,ipc,pid,net", CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET },
		{ "mnt,uts,ipc,pid,net,user", CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET |
						     CLONE_NEWUSER },
	};
	printf("| flag set | floor µs | runc nsexec µs | nsboot µs | nsboot/floor | nsboot/runc |\n");
	printf("|---|---:|---:|---:|---:|---:|\n");
	for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
		cur_flags = sets[s].flags;
		build_msg();
		for (int w = 0; w < 5; w++) /* warm-up */
			for (int k = 0; k < nt; k++)
				t[k].floor ? run_floor(&t[k]) : run_proto(&t[k]);
		for (int i = 0; i < iters; i++)
			for (int j = 0; j < nt; j++) {
				struct target *x = &t[(i + j) % nt];
				double a = now_us();
				x->floor ? run_floor(x) : run_proto(x);
				x->samples[i] = now_us() - a;
			}
		double m[3];
		for (int k = 0; k < nt; k++)
			m[k] = median(t[k].samples, iters);
		printf("| %s | %.0f | %.0f | %.0f | %.2fx | %.2fx |\n", sets[s].name, m[0], m[1], m[2], m[2] / m[0],
		       m[2] / m[1]);
		fflush(stdout);
	}
	cur_flags = sets[2].flags;
	build_msg();
	printf("\npeak RSS of the stage processes (KiB, max over 20 bootstraps, user flag set): floor %ld, runc %ld, nsboot %ld\n",
	       rss_of(&t[0], 20), rss_of(&t[1], 20), rss_of(&t[2], 20));
	return 0;
}
