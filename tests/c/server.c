/*
 * server: a threaded C host of the nsboot bootstrap server (issue 19).
 *
 *   server THREADS PER_THREAD exit|hang
 *
 * Starts the server first thing in main (one thread), then THREADS
 * pthreads each start PER_THREAD containers (new UTS, IPC, mount and PID
 * namespaces) running /bin/sh -c 'exit 3' through it, concurrently, and
 * wait for each one's status by the server. Prints
 *   server PID ADDRESS
 *   ok N/TOTAL
 *   children [LIST]      (the server's remaining children)
 * then exits 0 ("exit") or prints "ready" and blocks ("hang", the test
 * SIGKILLs it). Exit 1 with a message when anything failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nsboot.h"

static nsboot_server *srv;
static int per_thread;
static int ok_count;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg)
{
	(void)arg;
	nsboot_error *err = NULL;
	nsboot_msg *m = nsboot_msg_new();
	if (!m || nsboot_msg_set_clone_flags(m, CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNS | CLONE_NEWPID, &err) != 0) {
		fprintf(stderr, "server: message: %s\n", nsboot_error_message(err));
		return NULL;
	}
	const char *argv[] = { "sh", "-c", "exit 3", NULL };
	for (int i = 0; i < per_thread; i++) {
		nsboot_served *s = NULL;
		if (nsboot_server_run(srv, m, "/bin/sh", -1, argv, NULL, -1, -1, 2, &s, &err) != NSBOOT_STATUS_OK) {
			fprintf(stderr, "server: run: %s\n", nsboot_error_message(err));
			nsboot_error_free(err);
			err = NULL;
			continue;
		}
		int st = -1;
		if (nsboot_served_wait(s, &st, &err) != NSBOOT_STATUS_OK) {
			fprintf(stderr, "server: wait: %s\n", nsboot_error_message(err));
			nsboot_error_free(err);
			err = NULL;
		} else if (st == 3) {
			pthread_mutex_lock(&mu);
			ok_count++;
			pthread_mutex_unlock(&mu);
		} else {
			fprintf(stderr, "server: status %d\n", st);
		}
		nsboot_served_free(s);
	}
	nsboot_msg_free(m);
	return NULL;
}

int main(int argc, char **argv)
{
	nsboot_error *err = NULL;
	/* First thing, while single-threaded. */
	if (nsboot_server_start(&srv, &err) != NSBOOT_STATUS_OK) {
		fprintf(stderr, "server: start: %s\n", nsboot_error_message(err));
		return 1;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc != 4)
		return 2;
	int threads = atoi(argv[1]);
	per_thread = atoi(argv[2]);
	printf("server %d\n", nsboot_server_pid(srv));
	pthread_t t[64];
	if (threads > 64)
		threads = 64;
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	printf("ok %d/%d\n", ok_count, threads * per_thread);
	char path[64], buf[4096] = "";
	int pid = nsboot_server_pid(srv);
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, pid);
	FILE *f = fopen(path, "r");
	if (f) {
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		buf[n] = 0;
		fclose(f);
	}
	printf("children [%s]\n", buf);
	if (strcmp(argv[3], "hang") == 0) {
		printf("ready\n");
		for (;;)
			pause();
	}
	return ok_count == threads * per_thread ? 0 : 1;
}
