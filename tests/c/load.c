/*
 * load: many bootstraps through the nsboot C API from ONE long-lived
 * process (the situation of a runtime daemon), to show that the caller
 * side neither leaks (memory, fds, children) nor fails under load.
 *
 *   load -n TOTAL -c THREADS [--ns LIST] [--rootfs CONFIG.JSON --bundle DIR]
 *        -- PROGRAM [ARG...]
 *
 * THREADS threads each run TOTAL/THREADS bootstraps back to back
 * (nsboot_spawn, reap stage-1, wait for stage-2, which must exit 0).
 * Prints one JSON line: counts, failures, wall time, containers per
 * second, VmRSS (kB) after the first tenth of the runs, at half and at
 * the end, and the number of open fds before and after.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nsboot.h"

static unsigned flags;
static const char *rootfs_path, *bundle;
static char *rootfs_buf;
static size_t rootfs_len;
static char **prog;
static int per_thread, total_runs;
static atomic_int done, failures;
static atomic_long rss_tenth, rss_half;
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_error[512];

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n - 3; /* ".", "..", the directory's own fd */
}

static void fail(const char *what, nsboot_error *err)
{
	atomic_fetch_add(&failures, 1);
	pthread_mutex_lock(&err_lock);
	if (!first_error[0])
		snprintf(first_error, sizeof(first_error), "%s: %s", what, err ? nsboot_error_message(err) : strerror(errno));
	pthread_mutex_unlock(&err_lock);
	if (err)
		nsboot_error_free(err);
}

static void *worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < per_thread; i++) {
		nsboot_error *err = NULL;
		nsboot_msg *msg = nsboot_msg_new();
		if (nsboot_msg_set_clone_flags(msg, flags, &err) != NSBOOT_STATUS_OK ||
		    (rootfs_buf && nsboot_msg_set_rootfs_config(msg, (const uint8_t *)rootfs_buf, rootfs_len, bundle, 0,
								 &err) != NSBOOT_STATUS_OK)) {
			fail("message", err);
			nsboot_msg_free(msg);
			continue;
		}
		nsboot_spawned out;
		if (nsboot_spawn(NULL, prog[0], (const char *const *)prog, NULL, msg, NSBOOT_DIALECT_RUNC_1_1, -1, &out,
				 &err) != NSBOOT_STATUS_OK) {
			fail("spawn", err);
			nsboot_msg_free(msg);
			continue;
		}
		nsboot_msg_free(msg);
		waitpid(out.stage1_pid, NULL, 0);
		int status;
		while (waitpid(out.stage2_pid, &status, 0) < 0 && errno == EINTR)
			;
		close(out.init_fd);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			errno = 0;
			fail("container exit status", NULL);
		}
		int n = atomic_fetch_add(&done, 1) + 1;
		/* Memory samples (by whichever thread crosses the mark). */
		if (n == total_runs / 10 + 1)
			atomic_store(&rss_tenth, rss_kb());
		if (n == total_runs / 2)
			atomic_store(&rss_half, rss_kb());
	}
	return NULL;
}

static unsigned flag_of(const char *name)
{
	static const struct { const char *n; unsigned f; } t[] = {
		{ "cgroup", CLONE_NEWCGROUP }, { "ipc", CLONE_NEWIPC }, { "mnt", CLONE_NEWNS },
		{ "net", CLONE_NEWNET }, { "pid", CLONE_NEWPID }, { "uts", CLONE_NEWUTS },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].n, name) == 0)
			return t[i].f;
	fprintf(stderr, "load: unknown namespace %s\n", name);
	exit(2);
}

int main(int argc, char **argv)
{
	int threads = 1, i;
	total_runs = 1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "-n") == 0 && v) {
			total_runs = atoi(v);
			i++;
		} else if (strcmp(a, "-c") == 0 && v) {
			threads = atoi(v);
			i++;
		} else if (strcmp(a, "--ns") == 0 && v) {
			char *list = strdup(v), *save = NULL;
			for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
				flags |= flag_of(t);
			free(list);
			i++;
		} else if (strcmp(a, "--rootfs") == 0 && v) {
			rootfs_path = v;
			i++;
		} else if (strcmp(a, "--bundle") == 0 && v) {
			bundle = v;
			i++;
		} else {
			fprintf(stderr, "load: bad argument %s\n", a);
			return 2;
		}
	}
	if (i >= argc || threads < 1 || total_runs < threads) {
		fprintf(stderr, "usage: load -n TOTAL -c THREADS [--ns LIST] [--rootfs CFG --bundle DIR] -- PROG ARGS\n");
		return 2;
	}
	prog = argv + i;
	if (rootfs_path) {
		FILE *f = fopen(rootfs_path, "r");
		if (!f) {
			perror("load: rootfs config");
			return 2;
		}
		rootfs_buf = malloc(1 << 20);
		rootfs_len = fread(rootfs_buf, 1, 1 << 20, f);
		fclose(f);
	}
	per_thread = total_runs / threads;
	total_runs = per_thread * threads;
	int fds_before = open_fds();
	long rss_start = rss_kb();
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_t *tid = calloc((size_t)threads, sizeof(*tid));
	for (int t = 0; t < threads; t++)
		if (pthread_create(&tid[t], NULL, worker, NULL) != 0) {
			perror("load: pthread_create");
			return 2;
		}
	for (int t = 0; t < threads; t++)
		pthread_join(tid[t], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* Every child was reaped: nothing may be left to wait for. */
	int strays = 0;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		strays++;
	printf("{\"runs\":%d,\"threads\":%d,\"failures\":%d,\"seconds\":%.3f,\"per_sec\":%.1f,"
	       "\"rss_kb_start\":%ld,\"rss_kb_tenth\":%ld,\"rss_kb_half\":%ld,\"rss_kb_end\":%ld,"
	       "\"fds_before\":%d,\"fds_after\":%d,\"unreaped_children\":%d,\"first_error\":\"%s\"}\n",
	       total_runs, threads, atomic_load(&failures), secs, total_runs / secs, rss_start, atomic_load(&rss_tenth),
	       atomic_load(&rss_half), rss_kb(), fds_before, open_fds(), strays, first_error);
	free(tid);
	free(rootfs_buf);
	return atomic_load(&failures) ? 1 : 0;
}
