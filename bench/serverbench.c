/*
 * serverbench: the bootstrap server (issue 19) against the syscall floor
 * and against spawning a bootstrapped helper, side by side in one run.
 *
 *   serverbench latency ITERS FLOOR
 *   serverbench throughput THREADS PER_THREAD HELPER
 *
 * The server is started first thing in main (one thread), then:
 *
 * latency: for {mnt,uts,ipc,pid} and + user (65536-id map), ITERS rounds
 *   in alternating order of
 *   floor  - posix_spawn of bench/floor (exec, fork, unshare, maps, fork;
 *            the grandchild exits at once), waitpid;
 *   server - nsboot_server_call: the server forks stage-0, the stages
 *            create the namespaces, stage-2 runs a callback of this program
 *            that returns 0 (no exec), the server reaps it and sends the
 *            status, which nsboot_served_wait reads.
 *   Prints the medians (µs) and server/floor.
 *
 * throughput: THREADS threads each make PER_THREAD bootstraps ({mnt,uts,
 *   ipc,pid}), first through the server (callback), then by nsboot_spawn
 *   of HELPER (a program linking libnsboot: exec, the constructor's
 *   bootstrap, main returns at once), each waited for. Prints both rates
 *   and the ratio.
 *
 * Both modes print the server's VmRSS when idle (before any request) and
 * after the run.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nsboot.h"

extern char **environ;
static nsboot_server *srv;

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static long rss_kib(int pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	long v = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int entry(void)
{
	return 0;
}

static void die(const char *what, nsboot_error *err)
{
	fprintf(stderr, "serverbench: %s: %s\n", what, err ? nsboot_error_message(err) : "");
	exit(1);
}

static nsboot_msg *message(unsigned flags, int user)
{
	nsboot_error *err = NULL;
	nsboot_msg *m = nsboot_msg_new();
	if (nsboot_msg_set_clone_flags(m, flags | (user ? CLONE_NEWUSER : 0), &err) != 0)
		die("flags", err);
	if (user && (nsboot_msg_set_uid_map(m, "0 100000 65536", &err) != 0 ||
		     nsboot_msg_set_gid_map(m, "0 100000 65536", &err) != 0))
		die("maps", err);
	return m;
}

static void served_once(nsboot_msg *m)
{
	nsboot_served *s = NULL;
	nsboot_error *err = NULL;
	int st = -1;
	if (nsboot_server_call(srv, m, entry, &s, &err) != 0)
		die("server_call", err);
	if (nsboot_served_wait(s, &st, &err) != 0 || st != 0)
		die("served_wait", err);
	nsboot_served_free(s);
}

static void floor_once(const char *floor, unsigned flags, int user)
{
	char hex[32];
	snprintf(hex, sizeof hex, "%x", flags | (user ? CLONE_NEWUSER : 0));
	char *argv[] = { "floor", hex, user ? "0 100000 65536" : NULL, NULL };
	pid_t pid;
	int st;
	if (posix_spawn(&pid, floor, NULL, NULL, argv, environ) != 0 || waitpid(pid, &st, 0) < 0 || st != 0)
		die("floor", NULL);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof *v, cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *helper;
static int per_thread;
static int use_server;

static void *worker(void *arg)
{
	(void)arg;
	nsboot_msg *m = message(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID, 0);
	for (int i = 0; i < per_thread; i++) {
		if (use_server) {
			served_once(m);
			continue;
		}
		nsboot_spawned out;
		nsboot_error *err = NULL;
		const char *argv[] = { "hello", NULL };
		if (nsboot_spawn(NULL, helper, argv, NULL, m, NSBOOT_DIALECT_RUNC_1_2, -1, &out, &err) != 0)
			die("spawn", err);
		int st;
		waitpid(out.stage1_pid, &st, 0);
		waitpid(out.stage2_pid, &st, 0);
		close(out.init_fd);
	}
	nsboot_msg_free(m);
	return NULL;
}

static double run_threads(int threads)
{
	pthread_t t[64];
	double t0 = now_us();
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	return now_us() - t0;
}

int main(int argc, char **argv)
{
	nsboot_error *err = NULL;
	if (nsboot_server_start(&srv, &err) != 0)
		die("server_start", err);
	int spid = nsboot_server_pid(srv);
	usleep(100000);
	long idle = rss_kib(spid);
	if (argc == 4 && strcmp(argv[1], "latency") == 0) {
		int iters = atoi(argv[2]);
		double *a = calloc(iters, sizeof(double)), *b = calloc(iters, sizeof(double));
		printf("| flag set | floor µs | server µs | server/floor |\n|---|---:|---:|---:|\n");
		for (int user = 0; user <= 1; user++) {
			unsigned flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID;
			if (getenv("BENCH_FLAGS"))
				flags = strtoul(getenv("BENCH_FLAGS"), NULL, 16);
			nsboot_msg *m = message(flags, user);
			for (int i = 0; i < 5; i++) {
				served_once(m);
				floor_once(argv[3], flags, user);
			}
			for (int i = 0; i < iters; i++) {
				double t0, t1;
				if (i % 2) {
					t0 = now_us();
					floor_once(argv[3], flags, user);
					t1 = now_us();
					a[i] = t1 - t0;
					served_once(m);
					b[i] = now_us() - t1;
				} else {
					t0 = now_us();
					served_once(m);
					t1 = now_us();
					b[i] = t1 - t0;
					floor_once(argv[3], flags, user);
					a[i] = now_us() - t1;
				}
			}
			double fa = median(a, iters), fb = median(b, iters);
			printf("| mnt,uts,ipc,pid%s | %.0f | %.0f | **%.2f×** |\n", user ? ",user (65536-id map)" : "", fa, fb,
			       fb / fa);
			nsboot_msg_free(m);
		}
	} else if (argc == 5 && strcmp(argv[1], "throughput") == 0) {
		int threads = atoi(argv[2]);
		per_thread = atoi(argv[3]);
		helper = argv[4];
		use_server = 1;
		double ts = run_threads(threads);
		use_server = 0;
		double th = run_threads(threads);
		double n = (double)threads * per_thread;
		printf("%d threads x %d: server %.0f bootstraps/s (%.2f s), spawned helper %.0f/s (%.2f s): **%.2f×**\n",
		       threads, per_thread, n / ts * 1e6, ts / 1e6, n / th * 1e6, th / 1e6, th / ts);
	} else {
		fprintf(stderr, "usage: serverbench latency ITERS FLOOR | throughput THREADS PER_THREAD HELPER\n");
		return 2;
	}
	printf("server VmRSS: idle %ld KiB, after the run %ld KiB\n", idle, rss_kib(spid));
	return 0;
}
